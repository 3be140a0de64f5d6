/*
 * cmd_misc.c: the commands that touch neither files nor data connections: CLNT, QUIT,
 * SYST, NOOP, HELP, FEAT, OPTS, STAT, TYPE, MODE, STRU, ALLO.
 */
#include <ctype.h>
#include <string.h>

#include "common/listing.h"
#include "common/reply.h"
#include "server/dispatch.h"
#include "server/log.h"
#include "server/session.h"
#include "server/transfer.h"

#define REPLY_BUF_MAX (1024 * 1024)

void cmd_clnt(struct session *s, const char *arg)
{
	/* Only logged: an idle session keeps no copy. */
	char name[64];
	str_copy(name, sizeof(name), arg);
	log_info("session %llu client software: clnt=%s", (unsigned long long)s->id, LOG_Q(name));
	session_reply(s, R_200_OK, "Noted.");
}

void cmd_quit(struct session *s, const char *arg)
{
	if (s->xfer != NULL) {
		/* RFC 959 s.4.1.1: the transfer finishes, its reply goes out, then 221. */
		s->flags |= SF_QUIT_PENDING;
		return;
	}
	session_quit(s);
}

void cmd_syst(struct session *s, const char *arg)
{
	session_reply(s, R_215_SYSTEM_TYPE, "UNIX Type: L8");
}

void cmd_noop(struct session *s, const char *arg)
{
	session_reply(s, R_200_OK, "NOOP ok.");
}

void cmd_help(struct session *s, const char *arg)
{
	unsigned n;
	const struct command *all = command_all(&n);
	if (arg[0] != '\0') {
		char verb[16];
		size_t i;
		for (i = 0; arg[i] != '\0' && arg[i] != ' ' && i < sizeof(verb) - 1; i++)
			verb[i] = (char)toupper((unsigned char)arg[i]);
		verb[i] = '\0';
		const struct command *c = command_find(verb);
		if (c == NULL) {
			session_replyf(s, R_502_NOT_IMPLEMENTED, "Unknown command %s.", verb);
			return;
		}
		session_replyf(s, R_214_HELP, "Syntax: %s", c->help);
		return;
	}
	struct buf b;
	buf_init(&b, REPLY_BUF_MAX);
	reply_begin(&b, R_214_HELP, "The following commands are recognized:");
	char line[128] = "";
	size_t len = 0;
	for (unsigned i = 0; i < n; i++) {
		if (all[i].flags & FEAT_HIDDEN)
			continue;
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%-5s", all[i].verb);
		if (len > 60) {
			reply_line(&b, line);
			len = 0;
			line[0] = '\0';
		}
	}
	if (len > 0)
		reply_line(&b, line);
	reply_end(&b, R_214_HELP, "Help OK.");
	session_reply_raw(s, &b);
	buf_free(&b);
}

void cmd_feat(struct session *s, const char *arg)
{
	struct buf b, facts;
	buf_init(&b, REPLY_BUF_MAX);
	buf_init(&facts, 512);
	listing_format_fact_list(&facts, s->mlst_facts);
	char mlst[600];
	snprintf(mlst, sizeof(mlst), "MLST %s", facts.data != NULL ? facts.data : "");
	/* RFC 2389: each feature on its own line, indented by one space. */
	static const char *const feats[] = { "CLNT", "EPRT", "EPSV", "HOST", "MDTM", "MFMT", NULL,
					     "PASV", "REST STREAM", "SIZE", "TVFS", "UTF8" };
	reply_begin(&b, R_211_SYSTEM_STATUS, "Features:");
	if (s->srv->tls != NULL) {
		/* RFC 4217 s.6 */
		reply_line(&b, "AUTH TLS");
		reply_line(&b, "AUTH SSL");
		reply_line(&b, "PBSZ");
		reply_line(&b, "PROT");
		if (s->srv->cfg->tls_ccc)
			reply_line(&b, "CCC");
	}
	for (size_t i = 0; i < sizeof(feats) / sizeof(feats[0]); i++)
		reply_line(&b, feats[i] != NULL ? feats[i] : mlst);
	reply_end(&b, R_211_SYSTEM_STATUS, "End");
	session_reply_raw(s, &b);
	buf_free(&b);
	buf_free(&facts);
}

void cmd_opts(struct session *s, const char *arg)
{
	const char *sp = strchr(arg, ' ');
	size_t vlen = sp != NULL ? (size_t)(sp - arg) : strlen(arg);
	const char *rest = sp != NULL ? sp + 1 : "";
	if (vlen == 4 && strncasecmp(arg, "UTF8", 4) == 0) {
		if (strcasecmp(rest, "ON") == 0 || rest[0] == '\0') {
			s->flags |= SF_UTF8;
			session_reply(s, R_200_OK, "UTF8 mode on.");
		} else if (strcasecmp(rest, "OFF") == 0) {
			s->flags &= ~SF_UTF8;
			session_reply(s, R_200_OK, "UTF8 mode off; names are passed as they are.");
		} else {
			session_reply(s, R_501_BAD_ARGUMENTS, "OPTS UTF8 takes ON or OFF.");
		}
		return;
	}
	if (vlen == 4 && strncasecmp(arg, "MLST", 4) == 0) {
		/* RFC 3659 s.7.9: unknown facts are ignored; the reply lists those selected. */
		static const struct {
			unsigned bit;
			const char *name;
		} facts[] = { { FACT_TYPE, "type;" },     { FACT_SIZE, "size;" },
			      { FACT_MODIFY, "modify;" }, { FACT_PERM, "perm;" },
			      { FACT_UNIQUE, "unique;" }, { FACT_UNIX_MODE, "unix.mode;" } };
		s->mlst_facts = listing_parse_fact_list(rest);
		struct buf list;
		buf_init(&list, 512);
		buf_append_str(&list, "MLST OPTS ");
		for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++) {
			if (s->mlst_facts & facts[i].bit)
				buf_append_str(&list, facts[i].name);
		}
		session_reply(s, R_200_OK, list.data);
		buf_free(&list);
		return;
	}
	session_reply(s, R_501_BAD_ARGUMENTS, "Option not understood.");
}

void cmd_type(struct session *s, const char *arg)
{
	char t = (char)toupper((unsigned char)arg[0]);
	const char *rest = arg + 1;
	while (*rest == ' ')
		rest++;
	if (t == 'I' && *rest == '\0') {
		s->type_ascii = false;
		session_reply(s, R_200_OK, "Switching to Binary mode.");
	} else if (t == 'A' && (*rest == '\0' || toupper((unsigned char)*rest) == 'N') &&
		   (rest[0] == '\0' || rest[1] == '\0')) {
		s->type_ascii = true;
		session_reply(s, R_200_OK, "Switching to ASCII mode.");
	} else if (t == 'L' && strcmp(rest, "8") == 0) {
		s->type_ascii = false;
		session_reply(s, R_200_OK, "Switching to Binary mode (L 8).");
	} else if (t == 'E' || t == 'A' || t == 'L') {
		session_replyf(s, R_504_BAD_PARAMETER, "TYPE %s not supported.", arg);
	} else {
		session_reply(s, R_501_BAD_ARGUMENTS, "Syntax: TYPE A | I | L 8.");
	}
}

void cmd_mode(struct session *s, const char *arg)
{
	if (strcasecmp(arg, "S") == 0)
		session_reply(s, R_200_OK, "Mode set to S.");
	else if (strcasecmp(arg, "B") == 0 || strcasecmp(arg, "C") == 0 || strcasecmp(arg, "Z") == 0)
		session_reply(s, R_504_BAD_PARAMETER, "Only MODE S is supported.");
	else
		session_reply(s, R_501_BAD_ARGUMENTS, "Syntax: MODE S.");
}

void cmd_stru(struct session *s, const char *arg)
{
	if (strcasecmp(arg, "F") == 0)
		session_reply(s, R_200_OK, "Structure set to F.");
	else if (strcasecmp(arg, "R") == 0 || strcasecmp(arg, "P") == 0)
		session_reply(s, R_504_BAD_PARAMETER, "Only STRU F is supported.");
	else
		session_reply(s, R_501_BAD_ARGUMENTS, "Syntax: STRU F.");
}

void cmd_allo(struct session *s, const char *arg)
{
	/* RFC 959: servers that need no allocation answer 202. */
	session_reply(s, R_202_SUPERFLUOUS, "ALLO not needed; command ignored.");
}

void cmd_list_status(struct session *s, const char *path); /* cmd_list.c */

void cmd_stat(struct session *s, const char *arg)
{
	if (s->xfer != NULL) {
		struct buf b;
		buf_init(&b, 8192);
		transfer_status(s, &b);
		session_replyf(s, R_213_FILE_STATUS, "Status: %s.", b.data != NULL ? b.data : "");
		buf_free(&b);
		return;
	}
	if (arg[0] != '\0') {
		if (!(s->flags & SF_LOGGED_IN)) {
			session_reply(s, R_530_NOT_LOGGED_IN, "Please login with USER and PASS.");
			return;
		}
		cmd_list_status(s, arg);
		return;
	}
	struct buf b;
	buf_init(&b, 8192);
	reply_begin(&b, R_211_SYSTEM_STATUS, "FTP server status:");
	char line[256];
	snprintf(line, sizeof(line), "Connected to %s", s->peer_str);
	reply_line(&b, line);
	snprintf(line, sizeof(line), "Logged in as %s",
		 (s->flags & SF_LOGGED_IN) ? s->username : "nobody (not logged in)");
	reply_line(&b, line);
	snprintf(line, sizeof(line), "TYPE: %s; STRUcture: File; transfer MODE: Stream",
		 s->type_ascii ? "ASCII" : "BINARY");
	reply_line(&b, line);
	reply_line(&b, s->data != NULL ? "Data connection prepared" : "No data connection");
	reply_end(&b, R_211_SYSTEM_STATUS, "End of status");
	session_reply_raw(s, &b);
	buf_free(&b);
}
