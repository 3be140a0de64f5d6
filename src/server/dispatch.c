/*
 * dispatch.c: the one place where command rules are enforced.  A handler runs only after
 * the verb is known, the login requirement met, the argument policy satisfied and EPSV ALL
 * respected; it never checks these again.
 */
#include "server/dispatch.h"

#include <string.h>

#include "common/command.h"
#include "common/reply.h"
#include "server/cmd_tls.h"
#include "server/data.h"
#include "server/log.h"
#include "server/session.h"

static const struct command command_table[] = {
#define FTP_COMMAND(verb, handler, flags, help) { #verb, handler, flags, help },
#include "server/commands.def"
#undef FTP_COMMAND
};

#define N_COMMANDS (sizeof(command_table) / sizeof(command_table[0]))

const struct command *command_find(const char *verb)
{
	/* The table is sorted by verb (commands.def keeps it so). */
	size_t lo = 0, hi = N_COMMANDS;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(verb, command_table[mid].verb);
		if (c == 0)
			return &command_table[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct command *command_all(unsigned *n)
{
	*n = N_COMMANDS;
	return command_table;
}

bool dispatch_during_transfer(const char *line, size_t len)
{
	struct cmd_split sp;
	cmd_split_line(line, len, &sp);
	const struct command *c = command_find(sp.verb);
	return c != NULL && (c->flags & DURING_XFER);
}

void dispatch_line(struct session *s, const char *line, size_t len)
{
	struct cmd_split sp;
	cmd_split_line(line, len, &sp);

	if (sp.verb[0] == '\0') {
		session_reply(s, R_500_SYNTAX_ERROR, "Empty command.");
		return;
	}
	const struct command *c = sp.verb_too_long ? NULL : command_find(sp.verb);
	if (c == NULL) {
		session_reply(s, R_502_NOT_IMPLEMENTED, "Command not implemented.");
		return;
	}
	/* RFC 959 s.4.1.3: RNTO must come right after RNFR. */
	if (c->handler != cmd_rnto && (s->flags & SF_HAVE_RNFR))
		session_forget_rnfr(s);

	if ((c->flags & NEED_LOGIN) && !(s->flags & SF_LOGGED_IN)) {
		session_reply(s, R_530_NOT_LOGGED_IN, "Please login with USER and PASS.");
		return;
	}
	if ((c->flags & ARG_NONE) && sp.has_arg && sp.arg_len > 0) {
		session_replyf(s, R_501_BAD_ARGUMENTS, "%s takes no argument.", c->verb);
		return;
	}
	if ((c->flags & ARG_REQUIRED) && (!sp.has_arg || sp.arg_len == 0)) {
		session_replyf(s, R_501_BAD_ARGUMENTS, "Syntax: %s.", c->help);
		return;
	}
	if ((c->flags & NOT_AFTER_EPSV_ALL) && (s->flags & SF_EPSV_ALL)) {
		/* RFC 2428 s.4: after EPSV ALL only EPSV may set up data connections. */
		session_replyf(s, R_503_BAD_SEQUENCE, "%s not allowed after EPSV ALL.", c->verb);
		return;
	}
	/* Before a handler opens, creates or truncates anything. */
	if ((c->flags & OPENS_DATA) && !data_prepared(s)) {
		session_reply(s, R_425_CANT_OPEN_DATA, "Use PORT, EPRT, PASV or EPSV first.");
		return;
	}
	if ((c->flags & OPENS_DATA) && !tls_transfer_allowed(s))
		return;
	c->handler(s, sp.has_arg ? sp.arg : "");
}
