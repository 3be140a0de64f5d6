/*
 * ftp.c: the engine's small commands (one command, one reply: CWD, PWD, MKD, RMD, DELE,
 * RNFR/RNTO, SIZE, MDTM, MFMT, raw commands), the session's life (ftp_open, ftp_close),
 * and how a failure reply becomes one of ferry's failure classes and a sentence.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ftp_int.h"
#include "common/listing.h"
#include "common/num.h"

int ftpc_exit_status(int err)
{
	switch (err) {
	case FTPC_OK: return 0;
	case FTPC_EUSAGE: return 2;
	case FTPC_ECONNECT: return 3;
	case FTPC_ELOGIN: return 4;
	case FTPC_ENOTFOUND: return 5;
	case FTPC_ETRANSFER: return 6;
	case FTPC_ETLS: return 7;
	case FTPC_EREMOTE: return 8;
	case FTPC_ELOCAL: return 9;
	}
	return 8;
}

void ftp_options_default(struct ftp_options *o)
{
	memset(o, 0, sizeof(*o));
	o->mode = DATA_PASSIVE;
	o->tls = TLSU_OFF;
	o->timeout_ms = 30000;
	o->family = AF_UNSPEC;
	o->log = stderr;
}

int ftp_fail(struct ftp *f, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->err, sizeof(f->err), fmt, ap);
	va_end(ap);
	return err;
}

static void vlog_line(struct ftp *f, const char *kind, const char *fmt, va_list ap)
{
	fprintf(f->o.log, "ferry: %s", kind);
	vfprintf(f->o.log, fmt, ap);
	fputc('\n', f->o.log);
	fflush(f->o.log);
}

void ftp_note(struct ftp *f, const char *fmt, ...)
{
	va_list ap;

	if (f->o.quiet)
		return;
	va_start(ap, fmt);
	vlog_line(f, "", fmt, ap);
	va_end(ap);
}

void ftp_warn(struct ftp *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_line(f, "warning: ", fmt, ap);
	va_end(ap);
}

static bool text_has(const char *text, const char *const *words)
{
	char low[512];
	size_t i;

	for (i = 0; text[i] != '\0' && i + 1 < sizeof(low); i++)
		low[i] = (char)tolower((unsigned char)text[i]);
	low[i] = '\0';
	for (; *words != NULL; words++) {
		if (strstr(low, *words) != NULL)
			return true;
	}
	return false;
}

static const char *const missing_words[] = {
	"no such", "not found", "does not exist", "doesn't exist", "not exist", "cannot find",
	"can't find", "no files found", NULL
};
static const char *const refusal_words[] = {
	"permission", "denied", "not allowed", "access", "forbidden", "exists", "not empty",
	"is a directory", "not a directory", "not a regular", "read-only", "in use", "busy",
	"quota", "space", NULL
};

int ftp_fail_reply(struct ftp *f, int code, bool lookup, const char *what)
{
	char line[300];
	int err;

	if (code < 0)
		return code;
	ctl_reply_line(f, line, sizeof(line));
	const char *text = ctl_text(f);
	switch (code) {
	case R_530_NOT_LOGGED_IN:
	case R_532_NEED_ACCOUNT:
		err = FTPC_ELOGIN;
		break;
	case R_550_UNAVAILABLE:
	case R_450_FILE_BUSY:
		/* RFC 959 gives 550 for "not found" and "no access" alike: the text decides. */
		if (text_has(text, missing_words))
			err = FTPC_ENOTFOUND;
		else if (lookup && code == R_550_UNAVAILABLE && !text_has(text, refusal_words))
			err = FTPC_ENOTFOUND;
		else
			err = FTPC_EREMOTE;
		break;
	case R_425_CANT_OPEN_DATA:
	case R_426_TRANSFER_ABORTED:
	case R_451_LOCAL_ERROR:
	case R_452_NO_SPACE:
	case R_552_EXCEEDED:
		err = FTPC_ETRANSFER;
		break;
	case R_521_PROT_REFUSED:
	case R_533_PROTECTION_DENIED:
	case R_534_POLICY:
	case R_536_PROT_UNSUPPORTED:
		err = FTPC_ETLS;
		break;
	default:
		/* 501 "No such directory." (pyftpdlib's MLSD) and the like. */
		err = lookup && text_has(text, missing_words) ? FTPC_ENOTFOUND : FTPC_EREMOTE;
		break;
	}
	return ftp_fail(f, err, "%s: %s", what, line);
}

struct ftp *ftp_open(const struct ftp_url *u, const struct ftp_options *o, int *err,
		     char *errbuf, size_t errsz)
{
	struct ftp *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		*err = FTPC_ELOCAL;
		snprintf(errbuf, errsz, "out of memory");
		return NULL;
	}
	f->o = *o;
	if (f->o.log == NULL)
		f->o.log = stderr;
	if (f->o.timeout_ms <= 0)
		f->o.timeout_ms = 30000;
	f->ctl.fd = -1;
	reply_parser_init(&f->rp);
	buf_init(&f->feat, 64 * 1024);

	int rc = ctl_open(f, u);
	if (rc != FTPC_OK) {
		*err = rc;
		snprintf(errbuf, errsz, "%s", f->err);
		ftp_close(f);
		return NULL;
	}
	*err = FTPC_OK;
	return f;
}

void ftp_close(struct ftp *f)
{
	if (f == NULL)
		return;
	if (!f->broken && f->ctl.fd >= 0) {
		/* Best effort, and not worth a long wait: the work is done. */
		if (f->o.timeout_ms > 5000)
			f->o.timeout_ms = 5000;
		(void)ctl_cmd(f, "QUIT");
	}
	stream_close(&f->ctl, 1000);
	if (f->tls_ctx != NULL)
		tls_ctx_free(f->tls_ctx);
	reply_parser_free(&f->rp);
	buf_free(&f->feat);
	explicit_bzero(f, sizeof(*f));
	free(f);
}

void ftp_set_mode(struct ftp *f, enum data_mode m)
{
	f->o.mode = m;
	f->active_now = false; /* a new choice forgets an earlier fall-back */
}

void ftp_set_verbose(struct ftp *f, bool verbose)
{
	f->o.verbose = verbose;
}

void ftp_set_pasv_address_from_reply(struct ftp *f, bool from_reply)
{
	f->o.pasv_address_from_reply = from_reply;
}

const char *ftp_error(const struct ftp *f)
{
	return f->err;
}

/* A feature "VERB [ARGS]" is there if FEAT has a line for VERB whose arguments include ARGS. */
bool ftp_has_feature(const struct ftp *f, const char *feature)
{
	size_t vn = strcspn(feature, " ");
	const char *want = feature[vn] == ' ' ? feature + vn + 1 : NULL;
	const char *t = f->feat.data;

	/* RFC 3659 s.7.8: a server with MLST also has MLSD, and lists only MLST. */
	if (strcasecmp(feature, "MLSD") == 0)
		return ftp_has_feature(f, "MLST");
	for (; t != NULL && *t != '\0';) {
		size_t n = strcspn(t, "\n");
		size_t ln = strcspn(t, " \n");
		if (ln == vn && strncasecmp(t, feature, vn) == 0) {
			if (want == NULL)
				return true;
			/* Arguments: "AUTH TLS;SSL", "AUTH TLS", "REST STREAM"... */
			const char *a = t + ln;
			const char *end = t + n;
			while (a < end) {
				while (a < end && (*a == ' ' || *a == ';' || *a == ','))
					a++;
				size_t an = 0;
				while (a + an < end && a[an] != ' ' && a[an] != ';' && a[an] != ',')
					an++;
				if (an > 0 && an == strlen(want) && strncasecmp(a, want, an) == 0)
					return true;
				a += an;
			}
		}
		t += n;
		if (*t == '\n')
			t++;
	}
	return false;
}

int ftp_command(struct ftp *f, char *text, size_t textsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int rc = ctl_vsend(f, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return rc;
	rc = ctl_reply(f);
	if (rc >= 0 && text != NULL && textsz > 0)
		snprintf(text, textsz, "%s", ctl_text(f));
	return rc;
}

/* One command whose reply must be 2xx (or want); else the failure class. */
static int simple(struct ftp *f, int want, bool lookup, const char *verb, const char *arg)
{
	char what[300];
	int code = ctl_cmd(f, "%s %s", verb, arg);

	if (code < 0)
		return code;
	if (want != 0 ? code == want : code / 100 == 2)
		return FTPC_OK;
	snprintf(what, sizeof(what), "%s %s", verb, arg);
	return ftp_fail_reply(f, code, lookup, what);
}

int ftp_cwd(struct ftp *f, const char *path)
{
	return simple(f, 0, true, "CWD", path);
}

/* RFC 959 Appendix II: 257 "PATH" with every '"' inside doubled. */
int ftp_pwd(struct ftp *f, char *out, size_t outsz)
{
	int code = ctl_cmd(f, "PWD");

	if (code < 0)
		return code;
	if (code != R_257_CREATED)
		return ftp_fail_reply(f, code, false, "PWD");
	const char *t = strchr(ctl_text(f), '"');
	size_t n = 0;
	if (t == NULL || outsz == 0)
		return ftp_fail(f, FTPC_EREMOTE, "PWD: the reply names no directory");
	for (t++; *t != '\0' && *t != '\n'; t++) {
		if (*t == '"') {
			if (t[1] != '"')
				break;
			t++;
		}
		if (n + 1 >= outsz)
			return ftp_fail(f, FTPC_EREMOTE, "PWD: the directory name is too long");
		out[n++] = *t;
	}
	out[n] = '\0';
	return FTPC_OK;
}

int ftp_mkdir(struct ftp *f, const char *path)
{
	return simple(f, 0, false, "MKD", path);
}

int ftp_rmdir(struct ftp *f, const char *path)
{
	return simple(f, 0, true, "RMD", path);
}

int ftp_delete(struct ftp *f, const char *path)
{
	return simple(f, 0, true, "DELE", path);
}

int ftp_rename(struct ftp *f, const char *from, const char *to)
{
	int rc = simple(f, R_350_PENDING, true, "RNFR", from);

	return rc != FTPC_OK ? rc : simple(f, 0, false, "RNTO", to);
}

int ftp_size(struct ftp *f, const char *path, uint64_t *size)
{
	int rc = simple(f, R_213_FILE_STATUS, true, "SIZE", path);

	if (rc != FTPC_OK)
		return rc;
	const char *t = ctl_text(f);
	while (*t == ' ')
		t++;
	char digits[32];
	size_t n = strcspn(t, " \n\r");
	if (n == 0 || n >= sizeof(digits))
		return ftp_fail(f, FTPC_EREMOTE, "SIZE %s: the reply holds no size", path);
	memcpy(digits, t, n);
	digits[n] = '\0';
	if (num_parse_u64_cstr(digits, UINT64_MAX, size) != 0)
		return ftp_fail(f, FTPC_EREMOTE, "SIZE %s: the reply holds no size", path);
	return FTPC_OK;
}

int ftp_mdtm(struct ftp *f, const char *path, time_t *mtime)
{
	int rc = simple(f, R_213_FILE_STATUS, true, "MDTM", path);

	if (rc != FTPC_OK)
		return rc;
	char stamp[40];
	const char *t = ctl_text(f);
	while (*t == ' ')
		t++;
	size_t n = strcspn(t, " \n\r");
	if (n == 0 || n >= sizeof(stamp))
		return ftp_fail(f, FTPC_EREMOTE, "MDTM %s: the reply holds no time", path);
	memcpy(stamp, t, n);
	stamp[n] = '\0';
	if (listing_parse_time(stamp, mtime) != 0)
		return ftp_fail(f, FTPC_EREMOTE, "MDTM %s: the reply holds no time", path);
	return FTPC_OK;
}

int ftp_mfmt(struct ftp *f, const char *path, time_t mtime)
{
	char stamp[32], what[300];

	if (listing_format_time(stamp, sizeof(stamp), mtime) != 0)
		return ftp_fail(f, FTPC_EUSAGE, "MFMT %s: the time cannot be written", path);
	int code = ctl_cmd(f, "MFMT %s %s", stamp, path);
	if (code < 0)
		return code;
	if (code / 100 == 2)
		return FTPC_OK;
	snprintf(what, sizeof(what), "MFMT %s %s", stamp, path);
	int rc = ftp_fail_reply(f, code, false, what);
	return rc == FTPC_ELOGIN ? rc : FTPC_EREMOTE;
}

void ftp_session_info(const struct ftp *f, struct ftp_session_info *out)
{
	memset(out, 0, sizeof(*out));
	str_copy(out->greeting, sizeof(out->greeting), f->greeting);
	out->peer = f->peer;
	out->local = f->local;
	out->tls = f->tls_on;
	out->data_protected = f->prot_p;
	str_copy(out->last_pasv_reply, sizeof(out->last_pasv_reply), f->last_pasv_reply);
	out->pasv_address_replaced = f->pasv_replaced;
	out->fell_back_to_active = f->fell_back;
	if (f->tls_on && f->ctl.tls != NULL)
		tls_stream_peer_info(f->ctl.tls, &out->tls_peer);
}
