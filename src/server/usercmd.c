/*
 * usercmd.c: "ferryd user" (usercmd.h), one command for the users of both stores.
 *
 * Every value is checked with user_check.c before a store sees it, so that the users file
 * and PostgreSQL refuse the same things; a store's own checks come after, as a second
 * line.  The users file is rewritten by passwd.c's passwd_replace_file() (a new file
 * beside it, created exclusively, renamed over it), with a copy written here: a line is
 * only ever replaced by one users_parse_line() accepts, so an edit cannot leave a file
 * the server refuses to load.
 *
 * It must never print a password hash (list shows every field but the hash), and wipes
 * the password it read.
 */
#include "server/usercmd.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/logsafe.h"
#include "server/config.h"
#include "server/passwd.h"
#include "server/user_check.h"
#include "server/userdb_pg.h"
#include "server/users.h"

enum sub { SUB_ADD, SUB_PASSWD, SUB_SET, SUB_DEL, SUB_LIST };

/* The options a subcommand takes. */
enum {
	OPT_HOME = 1 << 0,
	OPT_PERMS = 1 << 1,
	OPT_SETTINGS = 1 << 2,
	OPT_DISABLED = 1 << 3,
	OPT_ENABLED = 1 << 4,
	OPT_FIELDS = OPT_HOME | OPT_PERMS | OPT_SETTINGS,
};

static const struct subcommand {
	const char *word;
	enum sub sub;
	bool takes_name;
	unsigned opts;
} subcommands[] = {
	{ "add", SUB_ADD, true, OPT_FIELDS | OPT_DISABLED },
	{ "passwd", SUB_PASSWD, true, 0 },
	{ "set", SUB_SET, true, OPT_FIELDS | OPT_DISABLED | OPT_ENABLED },
	{ "del", SUB_DEL, true, 0 },
	{ "list", SUB_LIST, false, 0 },
};

/* One run, as the command line asks it. */
struct request {
	const struct subcommand *cmd;
	struct user_entry_text u; /* the name and the fields given (NULL: not given) */
	bool disabled_given;      /* --disabled or --enabled: u.disabled says which */
	const char *users_file;   /* --users-file, or NULL */
	const char *users_pg;     /* --users-pg, or NULL */
};

/* Exit statuses. */
enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_STORE = 2 };

static void usage(FILE *out)
{
	fprintf(out,
		"usage: ferryd user [--config FILE] [--users-file FILE | --users-pg CONNINFO] "
		"[OPTION...] COMMAND\n"
		"  add NAME --home DIR [--permissions LIST] [--settings TEXT] [--disabled]\n"
		"  passwd NAME\n"
		"  set NAME [--home DIR] [--permissions LIST] [--settings TEXT] "
		"[--disabled|--enabled]\n"
		"  del NAME\n"
		"  list\n"
		"add and passwd read the password from the terminal (twice), or one line from stdin.\n"
		"OPTIONs are those of ferryd (--home-base, --users-pg-timeout...).\n"
		"Exit status: 0 done, 1 refused or no such user, 2 the store failed.\n");
}

/* The usage error "what", then a hint; returns -1 for the caller to pass on. */
static int bad_usage(const char *what, const char *arg)
{
	char q[LOG_VALUE_MAX];
	fprintf(stderr, "ferryd user: %s%s%s (try ferryd user --help)\n", what,
		arg != NULL ? " " : "", arg != NULL ? log_quote(q, sizeof(q), arg) : "");
	return -1;
}

/*
 * Whether argv[*i] is the option opt, as "--opt VALUE" or "--opt=VALUE": 1 with *value
 * (and *i past it), 0 when it is another argument, -1 when the value is missing.
 */
static int option_value(int argc, char **argv, int *i, const char *opt, const char **value)
{
	size_t n = strlen(opt);
	if (strncmp(argv[*i], opt, n) != 0)
		return 0;
	if (argv[*i][n] == '=') {
		*value = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*value = argv[++*i];
	return 1;
}

/* The options before the command: ours, and ferryd's for config_load_unserved(). */
static int parse_store_options(int argc, char **argv, int *i, struct request *r, char **cargv,
			       int *cargc)
{
	cargv[(*cargc)++] = argv[0];
	for (; *i < argc && strncmp(argv[*i], "--", 2) == 0; ++*i) {
		const char *a = argv[*i], *v;
		int rc;
		if (strcmp(a, "--help") == 0) {
			usage(stdout);
			return 1;
		}
		if (strcmp(a, "--check-config") == 0)
			return bad_usage("not an option of ferryd user:", a);
		if ((rc = option_value(argc, argv, i, "--users-file", &v)) != 0) {
			if (rc < 0 || v[0] == '\0')
				return bad_usage("--users-file needs a FILE", NULL);
			r->users_file = v;
		} else if ((rc = option_value(argc, argv, i, "--users-pg", &v)) != 0) {
			if (rc < 0 || v[0] == '\0')
				return bad_usage("--users-pg needs a CONNINFO", NULL);
			r->users_pg = v;
		} else {
			/* ferryd's own: every one but --version takes a value. */
			cargv[(*cargc)++] = argv[*i];
			if (strchr(a, '=') == NULL && strcmp(a, "--version") != 0 && *i + 1 < argc)
				cargv[(*cargc)++] = argv[++*i];
		}
	}
	cargv[*cargc] = NULL;
	if (r->users_file != NULL && r->users_pg != NULL)
		return bad_usage("give one of --users-file and --users-pg", NULL);
	return 0;
}

/* One option of a subcommand at argv[*i]; returns 1 taken, 0 not an option, -1 error. */
static int parse_field_option(int argc, char **argv, int *i, struct request *r)
{
	static const struct {
		const char *opt;
		unsigned bit;
		size_t field;
	} fields[] = {
		{ "--home", OPT_HOME, offsetof(struct user_entry_text, home) },
		{ "--permissions", OPT_PERMS, offsetof(struct user_entry_text, perms) },
		{ "--settings", OPT_SETTINGS, offsetof(struct user_entry_text, settings) },
	};
	const char *a = argv[*i];
	for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
		const char *v;
		int rc = option_value(argc, argv, i, fields[k].opt, &v);
		if (rc < 0)
			return bad_usage("needs a value:", a);
		if (rc == 0)
			continue;
		if ((r->cmd->opts & fields[k].bit) == 0)
			return bad_usage("not an option of this command:", a);
		*(const char **)((char *)&r->u + fields[k].field) = v;
		return 1;
	}
	bool dis = strcmp(a, "--disabled") == 0;
	if (!dis && strcmp(a, "--enabled") != 0)
		return 0;
	if ((r->cmd->opts & (dis ? OPT_DISABLED : OPT_ENABLED)) == 0)
		return bad_usage("not an option of this command:", a);
	if (r->disabled_given && r->u.disabled != dis)
		return bad_usage("--disabled and --enabled contradict each other", NULL);
	r->disabled_given = true;
	r->u.disabled = dis;
	return 1;
}

/* The command, its NAME and options. */
static int parse_command(int argc, char **argv, int i, struct request *r)
{
	if (i >= argc)
		return bad_usage("no command given", NULL);
	for (size_t k = 0; k < sizeof(subcommands) / sizeof(subcommands[0]); k++) {
		if (strcmp(argv[i], subcommands[k].word) == 0)
			r->cmd = &subcommands[k];
	}
	if (r->cmd == NULL)
		return bad_usage("unknown command", argv[i]);
	for (i++; i < argc; i++) {
		int rc = parse_field_option(argc, argv, &i, r);
		if (rc < 0)
			return -1;
		if (rc > 0)
			continue;
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			return bad_usage("unknown option", argv[i]);
		if (!r->cmd->takes_name || r->u.name != NULL)
			return bad_usage("unexpected argument", argv[i]);
		r->u.name = argv[i];
	}
	if (r->cmd->takes_name && r->u.name == NULL)
		return bad_usage("this command needs a user NAME", NULL);
	if (r->cmd->sub == SUB_ADD && r->u.home == NULL)
		return bad_usage("add needs --home DIR", NULL);
	if (r->cmd->sub == SUB_SET && r->u.home == NULL && r->u.perms == NULL &&
	    r->u.settings == NULL && !r->disabled_given)
		return bad_usage("set needs --home, --permissions, --settings, --disabled or "
				 "--enabled", NULL);
	return 0;
}

/* Returns 0, 1 (help printed: exit 0) or -1 (refused, said why). */
static int parse_args(int argc, char **argv, struct request *r, char **cargv, int *cargc)
{
	int i = 1;
	int rc = parse_store_options(argc, argv, &i, r, cargv, cargc);
	return rc != 0 ? rc : parse_command(argc, argv, i, r);
}

/* -- the stores ------------------------------------------------------------------------- */

/*
 * What each store does.  Every operation returns 0; -ENOENT (no such user) or -EEXIST
 * (the user exists), for the caller to say; or, after a message on stderr, -EINVAL
 * (refused) or another -errno (the store failed).
 */
struct store;
struct store_ops {
	int (*exists)(struct store *st, const char *name, bool *found);
	int (*add)(struct store *st, const struct user_entry_text *u);
	int (*set)(struct store *st, const struct request *r);
	int (*passwd)(struct store *st, const char *name, const char *hash);
	int (*del)(struct store *st, const char *name);
	int (*list)(struct store *st, FILE *out);
};

struct store {
	const struct store_ops *ops;
	const char *file;    /* the users file */
	struct pg_store *pg; /* or PostgreSQL */
};

/* -- the users file --------------------------------------------------------------------- */

/* name, hash, home, permissions, settings: the fields of a users-file line. */
enum { F_NAME, F_HASH, F_HOME, F_PERMS, F_SETTINGS, FIELDS };

/* users.c reads a line into a buffer of this size, newline included. */
#define LINE_MAX_BYTES 8192

/* Whether line (as read) is one of name's: its text up to the first ':' is name. */
static bool line_is_user(const char *line, const char *name)
{
	size_t n = strlen(name);
	return line[0] != '#' && strncmp(line, name, n) == 0 && line[n] == ':';
}

/* Cut line at its first four ':' into the fields; those it lacks are NULL. */
static void split_line(char *line, char *f[FIELDS])
{
	char *p = line;
	for (int i = 0; i < FIELDS; i++) {
		f[i] = p;
		char *colon = p != NULL && i < FIELDS - 1 ? strchr(p, ':') : NULL;
		if (colon != NULL)
			*colon = '\0';
		p = colon != NULL ? colon + 1 : NULL;
	}
}

static void strip_newline(char *line)
{
	line[strcspn(line, "\r\n")] = '\0';
}

/*
 * Write name's new line to out: u's fields, the others from old (a split line; NULL for a
 * new user, whose permissions default to read).  Refused (-EINVAL, said why) unless
 * users_parse_line() accepts the result, so that the file still loads.
 */
static int write_user_line(FILE *out, const struct user_entry_text *u, char *const *old)
{
	const char *given[FIELDS] = { u->name, u->hash, u->home, u->perms, u->settings };
	const char *v[FIELDS];
	for (int i = 0; i < FIELDS; i++)
		v[i] = given[i] != NULL ? given[i] : old != NULL ? old[i] : NULL;
	if (v[F_PERMS] == NULL && old == NULL)
		v[F_PERMS] = "read";
	char line[LINE_MAX_BYTES];
	const char *why = "the user's line lacks a field";
	bool more = v[F_SETTINGS] != NULL && v[F_SETTINGS][0] != '\0';
	int n = v[F_HASH] != NULL && v[F_HOME] != NULL && v[F_PERMS] != NULL
			? snprintf(line, sizeof(line), "%s:%s:%s:%s%s%s", v[F_NAME], v[F_HASH],
				   v[F_HOME], v[F_PERMS], more ? ":" : "", more ? v[F_SETTINGS] : "")
			: -1;
	int rc = -EINVAL;
	if (n >= (int)sizeof(line) - 1) {
		why = "the line would be too long";
	} else if (n >= 0) {
		struct user_entry e;
		rc = users_parse_line(line, &e, &why) < 0 ? -EINVAL : 0;
		if (rc == 0)
			user_entry_clear(&e);
		explicit_bzero(&e, sizeof(e));
	}
	if (rc < 0)
		fprintf(stderr, "ferryd user: user %s: %s; nothing changed\n", u->name, why);
	else
		fprintf(out, "%s\n", line); /* write_new() checks the stream for errors */
	explicit_bzero(line, sizeof(line));
	return rc;
}

/* An edit of the users file: add u, change its given fields (set, passwd), or delete it. */
struct file_edit {
	enum sub sub; /* SUB_ADD, SUB_SET or SUB_DEL */
	const struct user_entry_text *u;
	int refusal; /* what copy_edit() refused with */
};

/* The user's line (as read) changed by x, or nothing for a delete. */
static int edit_line(const struct file_edit *x, char *line, FILE *out)
{
	if (x->sub == SUB_ADD)
		return -EEXIST;
	if (x->sub == SUB_DEL)
		return 0;
	char *f[FIELDS];
	strip_newline(line);
	split_line(line, f);
	return write_user_line(out, x->u, f);
}

/* A passwd_copy_fn: in to out with x's edit.  Every line not the user's is kept as is. */
static int copy_edit(FILE *in, FILE *out, void *arg)
{
	struct file_edit *x = arg;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	bool found = false, ends_line = true;
	int rc = 0;
	errno = 0;
	while (rc == 0 && in != NULL && (n = getline(&line, &cap, in)) > 0) {
		if (line_is_user(line, x->u->name)) {
			found = true;
			rc = edit_line(x, line, out);
			ends_line = true;
		} else {
			(void)fwrite(line, 1, (size_t)n, out); /* write_new() checks the stream */
			ends_line = line[n - 1] == '\n';
		}
	}
	if (rc == 0 && in != NULL && !feof(in) && !ferror(in) && errno == ENOMEM) {
		fprintf(stderr, "ferryd user: out of memory\n");
		rc = -ENOMEM;
	}
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	if (rc == 0 && !found && x->sub != SUB_ADD)
		rc = -ENOENT;
	if (rc == 0 && x->sub == SUB_ADD) {
		/* A last line without its newline would take the new user into it. */
		if (!ends_line)
			fputc('\n', out);
		rc = write_user_line(out, x->u, NULL);
	}
	x->refusal = rc;
	return rc;
}

static int file_edit(struct store *st, enum sub sub, const struct user_entry_text *u)
{
	struct file_edit x = { .sub = sub, .u = u };
	int rc = passwd_replace_file(st->file, copy_edit, &x, stderr);
	if (rc < 0 && x.refusal == 0)
		return -EIO; /* passwd_replace_file() has said why */
	return rc;
}

static int file_exists(struct store *st, const char *name, bool *found)
{
	*found = false;
	FILE *in = fopen(st->file, "re");
	if (in == NULL && errno == ENOENT)
		return 0; /* add makes it, as ferryd passwd does */
	if (in == NULL) {
		fprintf(stderr, "ferryd user: %s: %s\n", st->file, strerror(errno));
		return -EIO;
	}
	char *line = NULL;
	size_t cap = 0;
	while (!*found && getline(&line, &cap, in) > 0)
		*found = line_is_user(line, name);
	int rc = ferror(in) ? -EIO : 0;
	if (rc < 0)
		fprintf(stderr, "ferryd user: cannot read %s\n", st->file);
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	fclose(in);
	return rc;
}

static int file_add(struct store *st, const struct user_entry_text *u)
{
	return file_edit(st, SUB_ADD, u);
}

static int file_set(struct store *st, const struct request *r)
{
	return file_edit(st, SUB_SET, &r->u);
}

static int file_passwd(struct store *st, const char *name, const char *hash)
{
	struct user_entry_text u = { .name = name, .hash = hash };
	return file_edit(st, SUB_SET, &u);
}

static int file_del(struct store *st, const char *name)
{
	struct user_entry_text u = { .name = name };
	return file_edit(st, SUB_DEL, &u);
}

/* One user line for file_list(): its text cut into fields, and why it would not load. */
struct list_row {
	char *text;
	char *f[FIELDS];
	char why[128];
};

static int cmp_row(const void *a, const void *b)
{
	return strcmp(((const struct list_row *)a)->f[F_NAME], ((const struct list_row *)b)->f[F_NAME]);
}

/* The users of the file into *rows (*n of them); -errno after a message. */
static int read_rows(FILE *in, const char *file, struct list_row **rows, size_t *n)
{
	char *line = NULL;
	size_t cap = 0, room = 0;
	int rc = 0;
	while (rc == 0 && getline(&line, &cap, in) > 0) {
		strip_newline(line);
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (*n == room) {
			room = room != 0 ? room * 2 : 16;
			struct list_row *nr = reallocarray(*rows, room, sizeof(**rows));
			if (nr == NULL) {
				rc = -ENOMEM;
				break;
			}
			*rows = nr;
		}
		struct list_row *row = &(*rows)[*n];
		struct user_entry e;
		const char *why = NULL;
		if (users_parse_line(line, &e, &why) == 0)
			user_entry_clear(&e);
		explicit_bzero(&e, sizeof(e));
		snprintf(row->why, sizeof(row->why), "%s", why != NULL ? why : "");
		if ((row->text = strdup(line)) == NULL) {
			rc = -ENOMEM;
			break;
		}
		split_line(row->text, row->f);
		++*n;
	}
	if (rc == 0 && ferror(in))
		rc = -EIO;
	if (rc < 0)
		fprintf(stderr, "ferryd user: cannot read %s: %s\n", file, strerror(-rc));
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	return rc;
}

/* As pg_store_list() prints: "name home permissions settings", never the hash. */
static void print_row(const struct list_row *row, FILE *out)
{
	char q[LOG_VALUE_MAX];
	static const int shown[] = { F_NAME, F_HOME, F_PERMS, F_SETTINGS };
	for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
		fprintf(out, "%s%s", i > 0 ? " " : "", log_quote(q, sizeof(q), row->f[shown[i]]));
	if (row->why[0] != '\0')
		fprintf(out, " invalid=%s", log_quote(q, sizeof(q), row->why));
	fputc('\n', out);
}

static int file_list(struct store *st, FILE *out)
{
	FILE *in = fopen(st->file, "re");
	if (in == NULL) {
		fprintf(stderr, "ferryd user: %s: %s\n", st->file, strerror(errno));
		return -EIO;
	}
	struct list_row *rows = NULL;
	size_t n = 0;
	int rc = read_rows(in, st->file, &rows, &n);
	fclose(in);
	if (rc == 0) {
		qsort(rows, n, sizeof(*rows), cmp_row);
		for (size_t i = 0; i < n; i++)
			print_row(&rows[i], out);
		if (fflush(out) != 0 || ferror(out)) {
			fprintf(stderr, "ferryd user: cannot write the list\n");
			rc = -EIO;
		}
	}
	for (size_t i = 0; i < n; i++) {
		explicit_bzero(rows[i].text, strlen(rows[i].text)); /* the hash is in there */
		free(rows[i].text);
	}
	free(rows);
	return rc;
}

static const struct store_ops file_ops = {
	.exists = file_exists,
	.add = file_add,
	.set = file_set,
	.passwd = file_passwd,
	.del = file_del,
	.list = file_list,
};

/* -- PostgreSQL ------------------------------------------------------------------------- */

#define PG_ERR_MAX 512

/* A pg_store_* result: its message said, unless it is for the caller to say. */
static int pg_result(int rc, const char *err)
{
	if (rc < 0)
		fprintf(stderr, "ferryd user: %s\n", err[0] != '\0' ? err : strerror(-rc));
	return rc;
}

/* name's row, into e (the caller clears it when *found). */
static int pg_lookup(struct store *st, const char *name, struct user_entry *e, bool *found)
{
	char err[PG_ERR_MAX] = "";
	int rc = pg_store_lookup(st->pg, name, e, err, sizeof(err));
	*found = rc == 1;
	return rc < 0 ? pg_result(-EIO, err) : 0;
}

static int pg_exists(struct store *st, const char *name, bool *found)
{
	struct user_entry e;
	int rc = pg_lookup(st, name, &e, found);
	if (*found)
		user_entry_clear(&e);
	explicit_bzero(&e, sizeof(e));
	return rc;
}

static int pg_add(struct store *st, const struct user_entry_text *u)
{
	char err[PG_ERR_MAX] = "";
	bool added = false;
	int rc = pg_result(pg_store_put(st->pg, u, &added, err, sizeof(err)), err);
	if (rc == 0 && !added) {
		/* pg_store_put() is an upsert: someone added the user since we looked. */
		fprintf(stderr, "ferryd user: user %s was added meanwhile by someone else, and this "
				"add has overwritten it\n", u->name);
		rc = -EEXIST;
	}
	return rc;
}

static int pg_set(struct store *st, const struct request *r)
{
	/*
	 * pg_store_put() writes the disabled flag whatever it is given: the user's own is
	 * read first, so that a set of other fields does not enable a disabled user.
	 */
	struct user_entry e;
	bool found;
	int rc = pg_lookup(st, r->u.name, &e, &found);
	if (rc < 0 || !found)
		return rc < 0 ? rc : -ENOENT;
	struct user_entry_text u = r->u;
	u.hash = NULL;
	u.disabled = r->disabled_given ? r->u.disabled : e.disabled;
	user_entry_clear(&e);
	explicit_bzero(&e, sizeof(e));
	char err[PG_ERR_MAX] = "";
	bool added;
	return pg_result(pg_store_put(st->pg, &u, &added, err, sizeof(err)), err);
}

static int pg_passwd(struct store *st, const char *name, const char *hash)
{
	char err[PG_ERR_MAX] = "";
	bool found = false;
	int rc = pg_result(pg_store_set_hash(st->pg, name, hash, &found, err, sizeof(err)), err);
	return rc == 0 && !found ? -ENOENT : rc;
}

static int pg_del(struct store *st, const char *name)
{
	char err[PG_ERR_MAX] = "";
	bool found = false;
	int rc = pg_result(pg_store_delete(st->pg, name, &found, err, sizeof(err)), err);
	return rc == 0 && !found ? -ENOENT : rc;
}

static int pg_list(struct store *st, FILE *out)
{
	char err[PG_ERR_MAX] = "";
	return pg_result(pg_store_list(st->pg, out, err, sizeof(err)), err);
}

static const struct store_ops pg_ops = {
	.exists = pg_exists,
	.add = pg_add,
	.set = pg_set,
	.passwd = pg_passwd,
	.del = pg_del,
	.list = pg_list,
};

/* -- the command ------------------------------------------------------------------------ */

/* The store the command line and the configuration name; an exit status. */
static int choose_store(const struct request *r, const struct config *cfg, struct store *st)
{
	const char *file = r->users_file, *pg = r->users_pg;
	if (file == NULL && pg == NULL) {
		file = cfg->users_file[0] != '\0' ? cfg->users_file : NULL;
		pg = cfg->users_pg[0] != '\0' ? cfg->users_pg : NULL;
		if (file != NULL && pg != NULL) {
			fprintf(stderr, "ferryd user: both users_file and users_pg are configured: say "
					"which with --users-file or --users-pg\n");
			return EXIT_REFUSED;
		}
	}
	if (file != NULL) {
		*st = (struct store){ .ops = &file_ops, .file = file };
		return EXIT_OK;
	}
	if (pg == NULL) {
		fprintf(stderr, "ferryd user: no users store: give --users-file FILE or --users-pg "
				"CONNINFO, or a --config FILE that sets users_file or users_pg\n");
		return EXIT_REFUSED;
	}
	*st = (struct store){ .ops = &pg_ops };
	int rc = pg_store_new(pg, cfg->users_pg_timeout, &st->pg);
	if (rc < 0) {
		fprintf(stderr, "ferryd user: users_pg: %s\n",
			rc == -EINVAL ? "the connection string does not parse" : strerror(-rc));
		return rc == -EINVAL ? EXIT_REFUSED : EXIT_STORE;
	}
	return EXIT_OK;
}

/* Refuse what no store may hold, and what this store cannot; 0 or -EINVAL. */
static int check_request(const struct request *r, const struct store *st, const char *home_base)
{
	const char *why = NULL;
	char q[LOG_VALUE_MAX];
	if (r->cmd->sub == SUB_LIST)
		return 0;
	if (user_check_name(r->u.name, &why) < 0) {
		fprintf(stderr, "ferryd user: bad user name %s: %s\n",
			log_quote(q, sizeof(q), r->u.name), why);
		return -EINVAL;
	}
	if (r->u.home != NULL && user_check_home(r->u.home, home_base, &why) < 0) {
		/* Name home_base when it is the reason. */
		const char *own;
		bool base = user_check_home(r->u.home, NULL, &own) == 0;
		fprintf(stderr, "ferryd user: --home %s: %s%s%s\n", log_quote(q, sizeof(q), r->u.home),
			why, base ? ", which is " : "", base ? home_base : "");
		return -EINVAL;
	}
	if (r->u.perms != NULL && user_check_perms(r->u.perms, &why) < 0) {
		fprintf(stderr, "ferryd user: --permissions %s: %s\n",
			log_quote(q, sizeof(q), r->u.perms), why);
		return -EINVAL;
	}
	if (r->u.settings != NULL && user_check_settings(r->u.settings, &why) < 0) {
		fprintf(stderr, "ferryd user: --settings %s: %s\n",
			log_quote(q, sizeof(q), r->u.settings), why);
		return -EINVAL;
	}
	if (st->file != NULL && r->disabled_given && r->u.disabled) {
		fprintf(stderr, "ferryd user: --disabled: the users file has no disabled flag (del "
				"removes a user; PostgreSQL users can be disabled)\n");
		return -EINVAL;
	}
	return 0;
}

/* Read a new password and hash it into hash; 0, or -EINVAL / -EIO after a message. */
static int new_hash(char *hash, size_t hashsz)
{
	char pw[PASSWD_PASSWORD_MAX];
	int rc = passwd_read_new(pw, sizeof(pw)) != 0 ? -EINVAL : 0;
	if (rc == 0 && passwd_hash(pw, hash, hashsz) != 0)
		rc = -EIO;
	explicit_bzero(pw, sizeof(pw));
	return rc;
}

/* Whether name exists matters before a password is asked for: 0, -ENOENT, -EEXIST... */
static int expect(struct store *st, const char *name, bool want)
{
	bool found;
	int rc = st->ops->exists(st, name, &found);
	if (rc == 0 && found != want)
		rc = found ? -EEXIST : -ENOENT;
	return rc;
}

static int run(struct store *st, struct request *r)
{
	char hash[256];
	int rc = 0;
	switch (r->cmd->sub) {
	case SUB_ADD:
		if ((rc = expect(st, r->u.name, false)) == 0 && (rc = new_hash(hash, sizeof(hash))) == 0) {
			r->u.hash = hash;
			rc = st->ops->add(st, &r->u);
		}
		break;
	case SUB_PASSWD:
		if ((rc = expect(st, r->u.name, true)) == 0 && (rc = new_hash(hash, sizeof(hash))) == 0)
			rc = st->ops->passwd(st, r->u.name, hash);
		break;
	case SUB_SET:
		rc = st->ops->set(st, r);
		break;
	case SUB_DEL:
		rc = st->ops->del(st, r->u.name);
		break;
	case SUB_LIST:
		rc = st->ops->list(st, stdout);
		break;
	}
	explicit_bzero(hash, sizeof(hash));
	return rc;
}

/* The exit status of run()'s result, with the messages it left to say. */
static int exit_status(const struct request *r, int rc)
{
	static const char *const done[] = {
		[SUB_ADD] = "added", [SUB_PASSWD] = "changed the password of", [SUB_SET] = "changed",
		[SUB_DEL] = "deleted",
	};
	if (rc == 0 && r->cmd->sub != SUB_LIST)
		fprintf(stderr, "ferryd user: %s user %s\n", done[r->cmd->sub], r->u.name);
	if (rc == -ENOENT)
		fprintf(stderr, "ferryd user: no user %s\n", r->u.name);
	else if (rc == -EEXIST)
		fprintf(stderr, "ferryd user: user %s exists (use set or passwd)\n", r->u.name);
	if (rc == 0)
		return EXIT_OK;
	return rc == -ENOENT || rc == -EEXIST || rc == -EINVAL ? EXIT_REFUSED : EXIT_STORE;
}

int usercmd_main(int argc, char **argv)
{
	struct request r = { 0 };
	struct store st = { 0 };
	int status = EXIT_STORE, cargc = 0;
	char **cargv = calloc((size_t)argc + 1, sizeof(*cargv));
	struct config *cfg = calloc(1, sizeof(*cfg));
	if (cargv == NULL || cfg == NULL) {
		fprintf(stderr, "ferryd user: out of memory\n");
		goto out;
	}
	int rc = parse_args(argc, argv, &r, cargv, &cargc);
	if (rc == 0)
		rc = config_load_unserved(cfg, cargc, cargv, stderr);
	if (rc != 0) {
		status = rc > 0 ? EXIT_OK : EXIT_REFUSED;
		goto out;
	}
	status = choose_store(&r, cfg, &st);
	if (status != EXIT_OK)
		goto out;
	rc = check_request(&r, &st, cfg->home_base);
	status = rc < 0 ? EXIT_REFUSED : exit_status(&r, run(&st, &r));
out:
	pg_store_free(st.pg);
	free(cfg);
	free(cargv);
	return status;
}
