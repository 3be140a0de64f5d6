/*
 * cli.c: ferry's global options, as one table (STYLE.md item 11): name, short letter,
 * value, and one line of documentation, from which --help is printed; ferry.1 lists the
 * same.  Also the URL and credentials part shared by every subcommand: URL parsing, the
 * netrc file (with the permission check of ftp(1)), and connecting with the error shown.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/cli.h"
#include "client/commands.h"
#include "common/hostport.h"
#include "common/netrc.h"
#include "common/num.h"

enum opt_id {
	OPT_PASSIVE, OPT_ACTIVE, OPT_MODE, OPT_PASV_FROM_REPLY, OPT_DATA_PORT, OPT_ACTIVE_PORTS,
	OPT_ACTIVE_ADDRESS, OPT_TLS, OPT_TLS_REQUIRED, OPT_CA_FILE, OPT_INSECURE, OPT_PROT_CLEAR,
	OPT_IPV4, OPT_IPV6, OPT_TIMEOUT, OPT_VERBOSE, OPT_QUIET, OPT_CONTINUE, OPT_OUTPUT,
	OPT_NETRC, OPT_NETRC_FILE, OPT_NO_NETRC, OPT_HELP, OPT_VERSION,
};

struct cli_option {
	const char *name;      /* long name, without "--" */
	char letter;           /* short name, 0 for none */
	const char *value;     /* the value's name in --help; NULL for a flag */
	enum opt_id id;
	const char *doc;
};

static const struct cli_option options[] = {
	{ "passive", 0, NULL, OPT_PASSIVE, "passive data connections: EPSV, then PASV (default)" },
	{ "active", 0, NULL, OPT_ACTIVE, "active data connections: EPRT, then PORT" },
	{ "mode", 0, "passive|active|auto", OPT_MODE,
	  "data connection mode; auto falls back to active when passive fails" },
	{ "pasv-address-from-reply", 0, NULL, OPT_PASV_FROM_REPLY,
	  "PASV: connect to the address the 227 names, not the control connection's" },
	{ "data-port", 0, "N", OPT_DATA_PORT,
	  "active mode: listen on port N (1: the control port + 1, the classic N+1)" },
	{ "active-ports", 0, "MIN-MAX", OPT_ACTIVE_PORTS, "active mode: listen on a port of this range" },
	{ "active-address", 0, "ADDRESS", OPT_ACTIVE_ADDRESS,
	  "active mode: announce ADDRESS in EPRT/PORT (behind NAT)" },
	{ "tls", 0, NULL, OPT_TLS, "AUTH TLS; go on in the clear (warned) if the server refuses" },
	{ "tls-required", 0, NULL, OPT_TLS_REQUIRED, "AUTH TLS, and fail if the server refuses" },
	{ "ca-file", 0, "FILE", OPT_CA_FILE,
	  "verify server certificates with the CA certificates in FILE (PEM)" },
	{ "insecure", 0, NULL, OPT_INSECURE, "do not verify the server's certificate (warned)" },
	{ "prot-clear", 0, NULL, OPT_PROT_CLEAR, "with TLS, leave data connections in the clear (PROT C)" },
	{ "ipv4", '4', NULL, OPT_IPV4, "connect over IPv4 only" },
	{ "ipv6", '6', NULL, OPT_IPV6, "connect over IPv6 only" },
	{ "timeout", 0, "SECONDS", OPT_TIMEOUT,
	  "limit of each connect, reply and stalled transfer (default 30)" },
	{ "verbose", 'v', NULL, OPT_VERBOSE, "show the control dialogue on stderr (passwords masked)" },
	{ "quiet", 'q', NULL, OPT_QUIET, "no progress bar and no notes; errors and warnings only" },
	{ "continue", 'c', NULL, OPT_CONTINUE, "get, put: resume a partial transfer (REST)" },
	{ "output", 'o', "FILE", OPT_OUTPUT, "get: write to FILE ('-': standard output)" },
	{ "netrc", 0, NULL, OPT_NETRC, "take missing credentials from ~/.netrc (the default)" },
	{ "netrc-file", 0, "FILE", OPT_NETRC_FILE, "take missing credentials from FILE" },
	{ "no-netrc", 0, NULL, OPT_NO_NETRC, "never read a netrc file" },
	{ "help", 'h', NULL, OPT_HELP, "show this help and exit" },
	{ "version", 0, NULL, OPT_VERSION, "show the version and exit" },
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("ferry: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_options_help(FILE *out)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct cli_option *op = &options[i];
		char head[64];
		snprintf(head, sizeof(head), "%s%c%s--%s%s%s", op->letter ? "-" : "",
			 op->letter ? op->letter : ' ', op->letter ? ", " : "  ", op->name,
			 op->value ? " " : "", op->value ? op->value : "");
		fprintf(out, "  %-34s %s\n", op->letter ? head : head + 2, op->doc);
	}
}

static int number(const char *opt, const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	if (num_parse_u64_cstr(v, max, out) != 0 || *out < min) {
		cli_error("--%s: expected a number from %llu to %llu, not '%s'", opt,
			  (unsigned long long)min, (unsigned long long)max, v);
		return 2;
	}
	return 0;
}

static int apply(struct cli *c, const struct cli_option *op, const char *v)
{
	struct ftp_options *o = &c->o;
	uint64_t n;

	switch (op->id) {
	case OPT_PASSIVE: o->mode = DATA_PASSIVE; break;
	case OPT_ACTIVE: o->mode = DATA_ACTIVE; break;
	case OPT_MODE:
		if (strcmp(v, "passive") == 0)
			o->mode = DATA_PASSIVE;
		else if (strcmp(v, "active") == 0)
			o->mode = DATA_ACTIVE;
		else if (strcmp(v, "auto") == 0)
			o->mode = DATA_AUTO;
		else {
			cli_error("--mode: expected passive, active or auto, not '%s'", v);
			return 2;
		}
		break;
	case OPT_PASV_FROM_REPLY: o->pasv_address_from_reply = true; break;
	case OPT_DATA_PORT:
		if (number(op->name, v, 1, 65535, &n) != 0)
			return 2;
		o->data_port = (uint16_t)n;
		break;
	case OPT_ACTIVE_PORTS:
		if (hostport_parse_range(v, &o->active_min, &o->active_max) != 0) {
			cli_error("--active-ports: expected MIN-MAX with 1024 <= MIN <= MAX <= 65535, "
				  "not '%s'", v);
			return 2;
		}
		break;
	case OPT_ACTIVE_ADDRESS: o->active_address = v; break;
	case OPT_TLS:
		if (o->tls == TLSU_OFF)
			o->tls = TLSU_TRY;
		break;
	case OPT_TLS_REQUIRED: o->tls = TLSU_REQUIRED; break;
	case OPT_CA_FILE: o->ca_file = v; break;
	case OPT_INSECURE: o->insecure = true; break;
	case OPT_PROT_CLEAR: o->prot_clear = true; break;
	case OPT_IPV4: o->family = AF_INET; break;
	case OPT_IPV6: o->family = AF_INET6; break;
	case OPT_TIMEOUT:
		if (number(op->name, v, 1, 86400, &n) != 0)
			return 2;
		o->timeout_ms = (int)n * 1000;
		break;
	case OPT_VERBOSE: o->verbose = true; break;
	case OPT_QUIET: o->quiet = true; break;
	case OPT_CONTINUE: c->resume = true; break;
	case OPT_OUTPUT: c->output = v; break;
	case OPT_NETRC: o->no_netrc = false; break;
	case OPT_NETRC_FILE: o->netrc_file = v; o->no_netrc = false; break;
	case OPT_NO_NETRC: o->no_netrc = true; break;
	case OPT_HELP: c->help = true; break;
	case OPT_VERSION: c->version = true; break;
	}
	return 0;
}

static const struct cli_option *by_letter(char l)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (options[i].letter == l)
			return &options[i];
	}
	return NULL;
}

/* "--name" or "--name=value"; NULL if unknown (left to the subcommand). */
static const struct cli_option *by_name(const char *arg, const char **inline_value)
{
	const char *name = arg + 2;
	size_t n = strcspn(name, "=");

	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (strlen(options[i].name) == n && strncmp(options[i].name, name, n) == 0) {
			*inline_value = name[n] == '=' ? name + n + 1 : NULL;
			return &options[i];
		}
	}
	return NULL;
}

/* A bundle of short options ("-4v", "-oFILE") is ours only if every letter up to a value is. */
static bool short_bundle_is_ours(const char *arg)
{
	for (const char *p = arg + 1; *p != '\0'; p++) {
		const struct cli_option *op = by_letter(*p);
		if (op == NULL)
			return false;
		if (op->value != NULL)
			return true;
	}
	return true;
}

static int take_short(struct cli *c, int argc, char **argv, int *i)
{
	const char *arg = argv[*i];

	for (const char *p = arg + 1; *p != '\0'; p++) {
		const struct cli_option *op = by_letter(*p);
		if (op->value == NULL) {
			if (apply(c, op, NULL) != 0)
				return 2;
			continue;
		}
		const char *v = p[1] != '\0' ? p + 1 : NULL;
		if (v == NULL) {
			if (*i + 1 >= argc) {
				cli_error("-%c needs a value (%s)", *p, op->value);
				return 2;
			}
			v = argv[++*i];
		}
		return apply(c, op, v);
	}
	return 0;
}

int cli_parse(int argc, char **argv, struct cli *c)
{
	memset(c, 0, sizeof(*c));
	ftp_options_default(&c->o);
	c->argv = calloc((size_t)argc + 1, sizeof(char *));
	if (c->argv == NULL) {
		cli_error("out of memory");
		return 2;
	}
	bool options_end = false;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (options_end || arg[0] != '-' || arg[1] == '\0') {
			c->argv[c->argc++] = argv[i];
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			options_end = true;
			c->argv[c->argc++] = argv[i];   /* the subcommand sees it too */
			continue;
		}
		if (arg[1] != '-') {
			if (!short_bundle_is_ours(arg)) {
				c->argv[c->argc++] = argv[i];
				continue;
			}
			if (take_short(c, argc, argv, &i) != 0)
				return 2;
			continue;
		}
		const char *v = NULL;
		const struct cli_option *op = by_name(arg, &v);
		if (op == NULL) {
			c->argv[c->argc++] = argv[i];
			continue;
		}
		if (op->value == NULL && v != NULL) {
			cli_error("--%s takes no value", op->name);
			return 2;
		}
		if (op->value != NULL && v == NULL) {
			if (i + 1 >= argc) {
				cli_error("--%s needs a value (%s)", op->name, op->value);
				return 2;
			}
			v = argv[++i];
		}
		if (apply(c, op, v) != 0)
			return 2;
	}
	c->argv[c->argc] = NULL;
	if (c->o.verbose && c->o.quiet)
		c->o.quiet = false;   /* asking for the dialogue wins */
	return 0;
}

/* ---- URLs and credentials ---- */

#define NETRC_MAX (1 << 20)

static bool anonymous_name(const char *user)
{
	return strcasecmp(user, "anonymous") == 0 || strcasecmp(user, "ftp") == 0;
}

/* Read the netrc file: 0 with *text (to free, wiped) or 1 when there is none to read. */
static int netrc_read(const char *path, bool explicit, char **text, size_t *len,
		      struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		if (errno == ENOENT && !explicit)
			return 1;
		cli_error("cannot read the netrc file %s: %s", path, strerror(errno));
		return 9;
	}
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_size > NETRC_MAX) {
		cli_error("the netrc file %s is not a regular file of at most 1 MiB", path);
		close(fd);
		return 9;
	}
	char *t = malloc((size_t)st->st_size + 1);
	size_t got = 0;
	while (t != NULL && got < (size_t)st->st_size) {
		ssize_t n = read(fd, t + got, (size_t)st->st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (t == NULL) {
		cli_error("out of memory");
		return 9;
	}
	t[got] = '\0';
	*text = t;
	*len = got;
	return 0;
}

static int netrc_fill(const struct ftp_options *o, struct ftp_url *u)
{
	char home_path[4096];
	const char *path = o->netrc_file;

	if (path == NULL) {
		const char *home = getenv("HOME");
		if (home == NULL || *home == '\0')
			return 0;
		snprintf(home_path, sizeof(home_path), "%s/.netrc", home);
		path = home_path;
	}
	char *text = NULL;
	size_t len = 0;
	struct stat st;
	int rc = netrc_read(path, o->netrc_file != NULL, &text, &len, &st);
	if (rc != 0)
		return rc == 1 ? 0 : rc;

	struct netrc_entry e;
	unsigned line = 0;
	int found = netrc_lookup(text, len, u->host, &e, &line);
	explicit_bzero(text, len);
	free(text);
	if (found < 0) {
		cli_error("the netrc file %s is malformed at line %u", path, line);
		return 9;
	}
	rc = 0;
	if (found == 1) {
		bool use_login = !u->has_user && e.has_login;
		const char *login = use_login ? e.login : u->has_user ? u->user : NULL;
		bool same_user = login != NULL && e.has_login && strcmp(login, e.login) == 0;
		if (use_login) {
			str_copy(u->user, sizeof(u->user), e.login);
			u->has_user = true;
		}
		if (!u->has_password && e.has_password && same_user) {
			/* ftp(1): a password in a file others can read is as good as public. */
			if ((st.st_mode & 077) != 0 && !anonymous_name(login)) {
				cli_error("the netrc file %s can be read by others (mode %04o): its "
					  "password is refused; make it private with chmod 600 %s",
					  path, (unsigned)(st.st_mode & 07777), path);
				rc = 9;
			} else {
				str_copy(u->password, sizeof(u->password), e.password);
				u->has_password = true;
			}
		}
	}
	explicit_bzero(&e, sizeof(e));
	return rc;
}

int cli_url(const char *arg, const struct ftp_options *o, struct ftp_url *u)
{
	const char *why = "malformed";

	if (url_parse(arg, u, &why) != 0) {
		cli_error("not an ftp:// or ftps:// URL: '%s' (%s)", arg, why);
		return 2;
	}
	if (u->has_password || o->no_netrc)
		return 0;
	return netrc_fill(o, u);
}

struct ftp *cli_connect(struct ftp_url *u, const struct ftp_options *o, int *status)
{
	char err[600];
	int rc;
	struct ftp_options eff = *o;

	/* ftps:// means TLS from the first byte, and nothing else will do. */
	if (u->implicit_tls)
		eff.tls = TLSU_REQUIRED;
	struct ftp *f = ftp_open(u, &eff, &rc, err, sizeof(err));
	explicit_bzero(u->password, sizeof(u->password));
	if (f == NULL) {
		cli_error("%s", err);
		*status = ftpc_exit_status(rc);
		return NULL;
	}
	*status = 0;
	return f;
}
