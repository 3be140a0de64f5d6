/*
 * userdb_pg.c: the PostgreSQL user store (userdb_pg.h).  All of libpq is used here only.
 *
 * Everything runs on libpq's asynchronous calls, polled against one deadline per call:
 * a blocking PQexec or PQconnectdb could hold a login (and the thread checking
 * passwords for every other login) for as long as the network or a lock pleases.  Every
 * statement is parameterised: a user name is never part of SQL text.  A row is checked
 * with the users file's own parsers before ferryd may trust it, so a row edited by hand
 * cannot give a user more than its text says, nor crash the server.
 */
#include "server/userdb_pg.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/logsafe.h"
#include "server/config.h"
#include "server/user_settings.h"
#include "server/users.h"

struct pg_store {
	char *conninfo;
	unsigned timeout_ms;
	char timeout_text[16]; /* timeout_ms in decimal, for libpq and the server */
	PGconn *conn;          /* NULL: not connected */
};

/* How a statement failed, for the callers' return values and for the one retry. */
enum outcome {
	DONE = 0,
	FAILED = -EIO,        /* the server refused it; the connection is fine */
	LOST = -ECONNRESET,   /* no connection, or it broke: worth one new one */
	TIMEDOUT = -ETIMEDOUT,
	NOMEM = -ENOMEM,
};

/* The columns every reader selects, in the order of enum column. */
#define USER_COLUMNS "name, hash, home, permissions, settings, disabled"
enum column { C_NAME, C_HASH, C_HOME, C_PERMS, C_SETTINGS, C_DISABLED, C_COUNT };

static uint64_t now_ms(void)
{
	struct timespec ts;
	/* CLOCK_MONOTONIC cannot fail with a valid clock id; a set clock must not move it. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* libpq's messages end in a newline and may hold several lines: make them one. */
static void set_err_pq(char *err, size_t errlen, const char *what, const char *msg)
{
	set_err(err, errlen, "PostgreSQL: %s: %s", what, msg != NULL && *msg != '\0' ? msg : "?");
	size_t n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
	for (char *p = err; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	}
}

/* libpq prints notices on stderr by default; ferryd's stderr is its log. */
static void ignore_notice(void *arg, const char *message)
{
}

/*
 * Wait until fd is ready for events or the deadline passes.  Returns the revents seen,
 * -ETIMEDOUT, or -errno.
 */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	if (fd < 0)
		return -EBADF;
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = events };
		int n = poll(&p, 1, (int)(deadline - now));
		if (n > 0)
			return p.revents;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

int pg_store_new(const char *conninfo, unsigned timeout_ms, struct pg_store **out)
{
	if (timeout_ms < PG_STORE_TIMEOUT_MIN || timeout_ms > PG_STORE_TIMEOUT_MAX)
		return -EINVAL;
	/* A typo in the connection string is a configuration error, not a failed login. */
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	if (opts == NULL) {
		int rc = msg != NULL ? -EINVAL : -ENOMEM;
		PQfreemem(msg);
		return rc;
	}
	PQconninfoFree(opts);
	struct pg_store *st = calloc(1, sizeof(*st));
	if (st == NULL || (st->conninfo = strdup(conninfo)) == NULL) {
		free(st);
		return -ENOMEM;
	}
	st->timeout_ms = timeout_ms;
	snprintf(st->timeout_text, sizeof(st->timeout_text), "%u", timeout_ms);
	*out = st;
	return 0;
}

static void drop_conn(struct pg_store *st)
{
	if (st->conn != NULL)
		PQfinish(st->conn);
	st->conn = NULL;
}

void pg_store_free(struct pg_store *st)
{
	if (st == NULL)
		return;
	drop_conn(st);
	/* The connection string may hold a password. */
	explicit_bzero(st->conninfo, strlen(st->conninfo));
	free(st->conninfo);
	free(st);
}

/*
 * The server has been waited for too long: ask it to stop the statement (it may hold a
 * lock or a backend) and forget the connection, whose protocol state is now unknown.
 */
static void abandon(struct pg_store *st)
{
	PGcancel *c = PQgetCancel(st->conn);
	if (c != NULL) {
		char buf[256];
		(void)PQcancel(c, buf, (int)sizeof(buf)); /* best effort: it is dropped anyway */
		PQfreeCancel(c);
	}
	drop_conn(st);
}

/* Drive PQconnectPoll to the end.  Returns DONE, LOST, TIMEDOUT or NOMEM. */
static int connect_poll(struct pg_store *st, uint64_t deadline, char *err, size_t errlen)
{
	/* libpq's rule: start as if PQconnectPoll had asked to wait for writing. */
	PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
	for (;;) {
		if (ps == PGRES_POLLING_OK)
			return DONE;
		if (ps == PGRES_POLLING_FAILED) {
			set_err_pq(err, errlen, "cannot connect", PQerrorMessage(st->conn));
			return LOST;
		}
		/* The socket may change between calls: libpq tries one host after another. */
		int r = wait_fd(PQsocket(st->conn), ps == PGRES_POLLING_READING ? POLLIN : POLLOUT,
				deadline);
		if (r == -ETIMEDOUT) {
			set_err(err, errlen, "PostgreSQL: no connection within %u ms", st->timeout_ms);
			return TIMEDOUT;
		}
		if (r < 0) {
			set_err(err, errlen, "PostgreSQL: cannot connect: poll: %s", strerror(-r));
			return LOST;
		}
		ps = PQconnectPoll(st->conn);
	}
}

static int exchange(struct pg_store *st, const char *sql, int n, const char *const *params,
		    uint64_t deadline, PGresult **res, char *err, size_t errlen);

/*
 * Connect, within deadline.  Returns DONE, LOST, TIMEDOUT or NOMEM with a reason in err.
 *
 * Our defaults come before the connection string, which libpq then lets override them:
 * the application name shows ferryd in pg_stat_activity, and tcp_user_timeout bounds
 * what libpq does blocking (its cancel request) on a server that vanished.  GSSAPI
 * encryption comes after it, off whatever it says: Kerberos reads files and asks for
 * things the worker's sandbox refuses (it killed the worker before this).
 */
static int connect_store(struct pg_store *st, uint64_t deadline, char *err, size_t errlen)
{
	const char *const keys[] = { "fallback_application_name", "tcp_user_timeout", "dbname",
				     "gssencmode", NULL };
	const char *const values[] = { "ferryd", st->timeout_text, st->conninfo, "disable", NULL };
	st->conn = PQconnectStartParams(keys, values, 1);
	if (st->conn == NULL) {
		set_err(err, errlen, "PostgreSQL: out of memory");
		return NOMEM;
	}
	PQsetNoticeProcessor(st->conn, ignore_notice, NULL);
	int rc;
	if (PQstatus(st->conn) == CONNECTION_BAD) {
		set_err_pq(err, errlen, "cannot connect", PQerrorMessage(st->conn));
		rc = LOST;
	} else {
		rc = connect_poll(st, deadline, err, errlen);
	}
	/* Without it a full socket buffer would block PQsendQueryParams, even PQfinish. */
	if (rc == DONE && PQsetnonblocking(st->conn, 1) != 0) {
		set_err_pq(err, errlen, "cannot connect", PQerrorMessage(st->conn));
		rc = LOST;
	}
	if (rc == DONE) {
		/* The server gives up what we give up, even if our cancel request is lost. */
		char ms[24];
		snprintf(ms, sizeof(ms), "%sms", st->timeout_text);
		const char *const p[] = { ms };
		PGresult *r = NULL;
		rc = exchange(st, "SELECT set_config('statement_timeout', $1, false)", 1, p,
			      deadline, &r, err, errlen);
		PQclear(r);
		if (rc == FAILED)
			rc = LOST; /* a server that refuses this is not one to talk to */
	}
	if (rc != DONE)
		drop_conn(st);
	return rc;
}

/* Send what libpq has queued; returns DONE, LOST or TIMEDOUT. */
static int flush_all(struct pg_store *st, uint64_t deadline)
{
	int f;
	while ((f = PQflush(st->conn)) == 1) {
		/* The server may be waiting for us to read before it reads more. */
		int r = wait_fd(PQsocket(st->conn), POLLOUT | POLLIN, deadline);
		if (r == -ETIMEDOUT)
			return TIMEDOUT;
		if (r < 0 || ((r & POLLIN) != 0 && PQconsumeInput(st->conn) == 0))
			return LOST;
	}
	return f == 0 ? DONE : LOST;
}

/* Read until a result can be taken without blocking; returns DONE, LOST or TIMEDOUT. */
static int await_result(struct pg_store *st, uint64_t deadline)
{
	while (PQisBusy(st->conn)) {
		int r = wait_fd(PQsocket(st->conn), POLLIN, deadline);
		if (r == -ETIMEDOUT)
			return TIMEDOUT;
		if (r < 0 || PQconsumeInput(st->conn) == 0)
			return LOST;
	}
	return DONE;
}

/* Take every result of the statement, keeping the first; returns DONE, LOST or TIMEDOUT. */
static int collect(struct pg_store *st, uint64_t deadline, PGresult **res)
{
	for (;;) {
		int rc = await_result(st, deadline);
		if (rc != DONE)
			return rc;
		PGresult *r = PQgetResult(st->conn);
		if (r == NULL)
			return DONE;
		if (*res == NULL)
			*res = r;
		else
			PQclear(r);
	}
}

/*
 * Run one statement on the current connection and wait for its result.  Returns DONE
 * with *res a successful result the caller PQclear()s, or FAILED (with *res, for its
 * SQLSTATE), LOST, TIMEDOUT, NOMEM with a reason in err.  After TIMEDOUT and LOST the
 * connection is gone.
 */
static int exchange(struct pg_store *st, const char *sql, int n, const char *const *params,
		    uint64_t deadline, PGresult **res, char *err, size_t errlen)
{
	*res = NULL;
	int rc = LOST;
	if (PQsendQueryParams(st->conn, sql, n, NULL, params, NULL, NULL, 0) == 1)
		rc = flush_all(st, deadline);
	if (rc == DONE)
		rc = collect(st, deadline, res);
	if (rc == TIMEDOUT) {
		PQclear(*res);
		*res = NULL;
		abandon(st);
		set_err(err, errlen, "PostgreSQL: no answer within %u ms", st->timeout_ms);
		return TIMEDOUT;
	}
	if (rc == DONE && *res == NULL)
		rc = LOST; /* no result at all: only a broken connection does that */
	if (rc == DONE) {
		ExecStatusType s = PQresultStatus(*res);
		if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)
			return DONE;
		rc = PQstatus(st->conn) == CONNECTION_BAD ? LOST : FAILED;
		set_err_pq(err, errlen, "statement failed", PQresultErrorMessage(*res));
		if (rc == FAILED)
			return FAILED;
	} else {
		set_err_pq(err, errlen, "connection lost", PQerrorMessage(st->conn));
	}
	PQclear(*res);
	*res = NULL;
	drop_conn(st);
	return rc;
}

/*
 * A connection idle since the last call may have been closed by the server (a restart,
 * idle_session_timeout, a DBA's pg_terminate_backend).  The server speaks unasked on an
 * idle connection mostly to say goodbye (its last error, then EOF, which may come a
 * little later), otherwise only to report a parameter a reload changed: anything to read
 * now is reason enough to start afresh, at the cost of one connection set-up, and spares
 * the statement a failure.  The retry in statement() covers a goodbye that has not
 * arrived yet.
 */
static void drop_if_closed(struct pg_store *st)
{
	if (st->conn == NULL)
		return;
	struct pollfd p = { .fd = PQsocket(st->conn), .events = POLLIN };
	if (PQstatus(st->conn) != CONNECTION_OK || poll(&p, 1, 0) != 0)
		drop_conn(st);
}

/*
 * Run sql with params within the store's time-out, connecting when need be.  idempotent:
 * a statement that may be sent twice, so that a connection that broke under it (and had
 * been made before this call) is made again and the statement sent once more, within
 * the same deadline.  Writes are not: their result would tell the wrong story (a user
 * "not found" by the delete that had deleted it).  Returns as exchange().
 */
static int statement(struct pg_store *st, const char *sql, int n, const char *const *params,
		     bool idempotent, PGresult **res, char *err, size_t errlen)
{
	uint64_t deadline = now_ms() + st->timeout_ms;
	*res = NULL;
	drop_if_closed(st);
	for (int attempt = 0;; attempt++) {
		bool fresh = st->conn == NULL;
		if (fresh) {
			int rc = connect_store(st, deadline, err, errlen);
			if (rc != DONE)
				return rc;
		}
		int rc = exchange(st, sql, n, params, deadline, res, err, errlen);
		if (rc != LOST || fresh || !idempotent || attempt > 0)
			return rc;
	}
}

/*
 * A name or a hash as a users file could hold it (and the table's CHECKs allow): 1 to max
 * bytes, no space, no control character, no ':' (the users file's separator).
 */
static bool token_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
		if (*c <= 0x20 || *c == 0x7f || *c == ':')
			return false;
	}
	return true;
}

static bool name_ok(const char *name)
{
	return token_ok(name, sizeof(((struct user_entry *)0)->name) - 1);
}

static bool hash_ok(const char *hash)
{
	return token_ok(hash, sizeof(((struct user_entry *)0)->hash) - 1);
}

static bool home_ok(const char *home)
{
	if (home[0] != '/' || strlen(home) >= sizeof(((struct user_entry *)0)->home))
		return false;
	for (const unsigned char *c = (const unsigned char *)home; *c != '\0'; c++) {
		if (*c < 0x20 || *c == 0x7f)
			return false;
	}
	return true;
}

static bool sqlstate_is(const PGresult *r, const char *code)
{
	const char *s = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	return s != NULL && strncmp(s, code, strlen(code)) == 0;
}

/* What `ferryd user` returns for a statement that did not succeed. */
static int store_errno(int rc)
{
	return rc == NOMEM ? -ENOMEM : -EIO;
}

/*
 * The checks users_parse_line() makes of a line's home, permissions and settings, with
 * the same parsers; on success, fills e's (set: on the heap, NULL when none).  Returns
 * NULL or why the row is refused.
 */
static const char *check_fields(const char *home, const char *perms, const char *settings,
				const char *disabled, struct user_entry *e)
{
	if (!home_ok(home))
		return "home must be an absolute path without control characters, under 4096 bytes";
	if (perm_parse(perms, &e->perms) < 0)
		return "permissions must be a list of read, write, delete, rename, mkdir, all, none";
	if (strcmp(disabled, "t") != 0 && strcmp(disabled, "f") != 0)
		return "disabled is not a boolean";
	const char *why;
	struct user_settings set;
	if (user_settings_parse(settings, strlen(settings), &set, &why) < 0)
		return why;
	if (str_copy(e->home, sizeof(e->home), home) < 0)
		return "home too long";
	e->disabled = disabled[0] == 't';
	if (user_settings_any(&set)) {
		e->set = malloc(sizeof(*e->set));
		if (e->set == NULL)
			return "out of memory";
		*e->set = set;
	}
	return NULL;
}

/* The column of a lookup or list row, never NULL (a NULL column was refused before). */
#define COL(r, row, i) PQgetvalue((r), (row), (i))

/* Why row of r (columns as USER_COLUMNS) is unfit for a login, or NULL with e filled. */
static const char *row_check(const PGresult *r, int row, struct user_entry *e)
{
	memset(e, 0, sizeof(*e));
	if (PQnfields(r) != C_COUNT)
		return "the table's columns are not those of ferryd-users.sql";
	for (int i = 0; i < C_COUNT; i++) {
		if (PQgetisnull(r, row, i))
			return "a column is NULL";
	}
	if (!name_ok(COL(r, row, C_NAME)) || str_copy(e->name, sizeof(e->name), COL(r, row, C_NAME)) < 0)
		return "name too long or holding a space, control character or ':'";
	if (!hash_ok(COL(r, row, C_HASH)) || str_copy(e->hash, sizeof(e->hash), COL(r, row, C_HASH)) < 0)
		return "password hash empty, too long or holding a space, control character or ':'";
	return check_fields(COL(r, row, C_HOME), COL(r, row, C_PERMS), COL(r, row, C_SETTINGS),
			    COL(r, row, C_DISABLED), e);
}

/* A result's copy of a hash is wiped like the users file's (users_free()). */
static void clear_wiping_hashes(PGresult *r)
{
	for (int i = 0; r != NULL && PQnfields(r) > C_HASH && i < PQntuples(r); i++) {
		char *h = PQgetvalue(r, i, C_HASH);
		explicit_bzero(h, strlen(h));
	}
	PQclear(r);
}

int pg_store_lookup(struct pg_store *st, const char *name, struct user_entry *e, char *err,
		    size_t errlen)
{
	memset(e, 0, sizeof(*e));
	if (!name_ok(name))
		return 0;
	const char *const p[] = { name };
	PGresult *r;
	int rc = statement(st, "SELECT " USER_COLUMNS " FROM ferry_users WHERE name = $1", 1, p,
			   true, &r, err, errlen);
	/* A name that is not text in the database's encoding cannot be anyone's. */
	if (rc == FAILED && (sqlstate_is(r, "22021") || sqlstate_is(r, "22P05")))
		rc = 0;
	else if (rc != DONE)
		rc = -1;
	else if (PQntuples(r) == 0)
		rc = 0;
	else {
		const char *why = PQntuples(r) == 1 ? row_check(r, 0, e)
						    : "more than one row (no primary key on name?)";
		rc = 1;
		if (why != NULL) {
			char q[LOG_VALUE_MAX];
			set_err(err, errlen, "PostgreSQL: user %s: %s", log_quote(q, sizeof(q), name),
				why);
			user_entry_clear(e);
			explicit_bzero(e, sizeof(*e));
			rc = -1;
		}
	}
	clear_wiping_hashes(r);
	return rc;
}

/* Why u cannot be stored, checked as ferryd would check it when reading, or NULL. */
static const char *put_check(const struct user_entry_text *u)
{
	unsigned bits;
	struct user_settings set;
	const char *why = NULL;
	if (!name_ok(u->name))
		return "user names are 1-63 bytes without spaces, control characters or ':'";
	if (u->hash != NULL && !hash_ok(u->hash))
		return "the password hash is empty, too long or holds a space, control character or ':'";
	if (u->home != NULL && !home_ok(u->home))
		return "home must be an absolute path without control characters, under 4096 bytes";
	if (u->perms != NULL && perm_parse(u->perms, &bits) < 0)
		return "permissions must be a list of read, write, delete, rename, mkdir, all, none";
	if (u->settings != NULL && user_settings_parse(u->settings, strlen(u->settings), &set, &why) < 0)
		return why;
	return NULL;
}

/*
 * Insert, or update the given columns.  The row to insert must pass NOT NULL even when it
 * is an update (PostgreSQL checks it before it finds the conflict), hence the user's own
 * hash and home in its VALUES when none are given.  xmax is 0 on a row this statement
 * inserted and the updating transaction's id on one it updated: the usual way to tell
 * which an upsert did without a second statement.
 */
#define PUT_SQL                                                                                    \
	"INSERT INTO ferry_users AS u (name, hash, home, permissions, settings, disabled) "        \
	"VALUES ($1, COALESCE($2, (SELECT hash FROM ferry_users WHERE name = $1)), "               \
	"COALESCE($3, (SELECT home FROM ferry_users WHERE name = $1)), "                           \
	"COALESCE($4, 'read'), COALESCE($5, ''), $6) "                                            \
	"ON CONFLICT (name) DO UPDATE SET hash = COALESCE($2, u.hash), "                          \
	"home = COALESCE($3, u.home), permissions = COALESCE($4, u.permissions), "                \
	"settings = COALESCE($5, u.settings), disabled = $6 "                                     \
	"RETURNING u.xmax = 0"

int pg_store_put(struct pg_store *st, const struct user_entry_text *u, bool *added, char *err,
		 size_t errlen)
{
	char q[LOG_VALUE_MAX];
	const char *why = put_check(u);
	if (why != NULL) {
		set_err(err, errlen, "user %s: %s", log_quote(q, sizeof(q), u->name), why);
		return -EINVAL;
	}
	const char *const p[] = { u->name,  u->hash,     u->home,
				  u->perms, u->settings, u->disabled ? "t" : "f" };
	PGresult *r;
	int rc = statement(st, PUT_SQL, 6, p, false, &r, err, errlen);
	if (rc == FAILED && sqlstate_is(r, "23502")) {
		set_err(err, errlen, "new user %s needs a password hash and a home",
			log_quote(q, sizeof(q), u->name));
		rc = -EINVAL;
	} else if (rc == FAILED && sqlstate_is(r, "23")) {
		rc = -EINVAL; /* a CHECK of the table's: err has the server's words */
	} else if (rc != DONE) {
		rc = store_errno(rc);
	} else if (PQntuples(r) != 1 || PQnfields(r) != 1) {
		set_err(err, errlen, "PostgreSQL: the upsert returned no row");
		rc = -EIO;
	} else {
		*added = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	}
	PQclear(r);
	return rc;
}

/* Run a one-row write (a DELETE or UPDATE by name); *found: whether it hit a row. */
static int write_by_name(struct pg_store *st, const char *sql, int n, const char *const *p,
			 bool *found, char *err, size_t errlen)
{
	PGresult *r;
	int rc = statement(st, sql, n, p, false, &r, err, errlen);
	if (rc == FAILED && sqlstate_is(r, "23"))
		rc = -EINVAL;
	else if (rc != DONE)
		rc = store_errno(rc);
	else
		*found = strcmp(PQcmdTuples(r), "0") != 0;
	PQclear(r);
	return rc;
}

int pg_store_delete(struct pg_store *st, const char *name, bool *found, char *err,
		    size_t errlen)
{
	*found = false;
	if (!name_ok(name))
		return 0; /* no row can hold it */
	const char *const p[] = { name };
	return write_by_name(st, "DELETE FROM ferry_users WHERE name = $1", 1, p, found, err,
			     errlen);
}

int pg_store_set_hash(struct pg_store *st, const char *name, const char *hash, bool *found,
		      char *err, size_t errlen)
{
	*found = false;
	if (!hash_ok(hash)) {
		set_err(err, errlen, "the password hash is empty, too long or holds a space, "
				     "control character or ':'");
		return -EINVAL;
	}
	if (!name_ok(name))
		return 0;
	const char *const p[] = { name, hash };
	return write_by_name(st, "UPDATE ferry_users SET hash = $2 WHERE name = $1", 2, p, found,
			     err, errlen);
}

/* One line of pg_store_list(). */
static void list_row(const PGresult *r, int row, FILE *out)
{
	char q[LOG_VALUE_MAX];
	struct user_entry e;
	const char *why = row_check(r, row, &e);
	user_entry_clear(&e);
	explicit_bzero(&e, sizeof(e));
	for (int i = 0; i < C_COUNT; i++) {
		if (i == C_HASH || i == C_DISABLED)
			continue;
		const char *v = PQgetisnull(r, row, i) ? "" : COL(r, row, i);
		fprintf(out, "%s%s", i == C_NAME ? "" : " ", log_quote(q, sizeof(q), v));
	}
	if (!PQgetisnull(r, row, C_DISABLED) && strcmp(COL(r, row, C_DISABLED), "t") == 0)
		fputs(" disabled", out);
	if (why != NULL)
		fprintf(out, " invalid=%s", log_quote(q, sizeof(q), why));
	fputc('\n', out);
}

int pg_store_list(struct pg_store *st, FILE *out, char *err, size_t errlen)
{
	PGresult *r;
	/* The hash is read only to check it as a lookup would; it is never printed. */
	int rc = statement(st,
			   "SELECT " USER_COLUMNS " FROM ferry_users ORDER BY name",
			   0, NULL, true, &r, err, errlen);
	if (rc != DONE) {
		PQclear(r);
		return store_errno(rc);
	}
	for (int i = 0; i < PQntuples(r); i++)
		list_row(r, i, out);
	clear_wiping_hashes(r);
	if (fflush(out) != 0 || ferror(out)) {
		set_err(err, errlen, "cannot write the list: %s", strerror(errno));
		return -EIO;
	}
	return 0;
}

int pg_store_ping(struct pg_store *st, char *err, size_t errlen)
{
	PGresult *r;
	/* Reads no row, but fails without the table or the right to read its columns. */
	int rc = statement(st,
			   "SELECT " USER_COLUMNS " FROM ferry_users LIMIT 0",
			   0, NULL, true, &r, err, errlen);
	PQclear(r);
	return rc == DONE ? 0 : store_errno(rc);
}
