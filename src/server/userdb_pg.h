/*
 * userdb_pg.h: virtual users kept in PostgreSQL (table ferry_users, packaging/ferryd-users.sql)
 * instead of a users file, so that several ferryd instances share them and a change takes
 * effect at the next login without a reload.
 *
 * A login must never hang on the database: every call is bounded by the store's time-out,
 * connecting included, and answers "unreachable" rather than wait.  The bound holds when
 * the connection string names the server by address (hostaddr=, or a socket directory
 * in host=): libpq resolves a host name with a blocking getaddrinfo().  When a query
 * overruns, its connection is dropped after a cancel request; libpq 15 sends that one
 * blocking, bounded by tcp_user_timeout, which defaults to the store's time-out, so a
 * server host that has vanished from the network can make that one call last up to
 * twice the time-out.  Every session also gets statement_timeout = the time-out, so that
 * the server gives up a query the client has given up on, even when the cancel request
 * never arrives.
 *
 * A pg_store holds one connection and is used by one thread at a time (libpq's rule for a
 * PGconn); threads that look users up at once each make their own.
 */
#ifndef FERRY_SERVER_USERDB_PG_H
#define FERRY_SERVER_USERDB_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct pg_store;
struct user_entry;

/* A user as `ferryd user` writes it: the texts of the table's columns. */
struct user_entry_text {
	const char *name;
	const char *hash;     /* crypt(3) hash; NULL: keep the user's (a new user needs one) */
	const char *home;     /* absolute path; NULL: keep the user's (a new user needs one) */
	const char *perms;    /* "read,write"...; NULL: keep the user's ("read" for a new one) */
	const char *settings; /* user_settings.h text; NULL: keep the user's ("" for a new one) */
	bool disabled;
};

/* Time-outs a store accepts, in milliseconds. */
#define PG_STORE_TIMEOUT_MIN 1
#define PG_STORE_TIMEOUT_MAX 600000

/*
 * A store for conninfo (a libpq connection string or URI, copied); timeout_ms bounds every
 * call.  Nothing is connected yet.  Returns 0, -EINVAL (conninfo does not parse, or
 * timeout_ms out of range) or -ENOMEM.  The caller frees *out with pg_store_free().
 */
int pg_store_new(const char *conninfo, unsigned timeout_ms, struct pg_store **out);
/* Close the connection and free st; NULL is allowed. */
void pg_store_free(struct pg_store *st);

/*
 * Look name up.  Returns
 *    1: found; e is filled (name, hash, home, perms, set from user_settings_parse() on the
 *       heap or NULL when the user has none, disabled; own_ids false) and the caller calls
 *       user_entry_clear(e);
 *    0: no such user (also for a name no row can hold: too long, a space, ':'...);
 *   -1: the store is unreachable, did not answer in time, or the user's row is malformed
 *       (the reason, naming the user, in err).
 * A connection found broken is made again once, within the same time-out.  e is zeroed
 * unless 1 is returned.
 */
int pg_store_lookup(struct pg_store *st, const char *name, struct user_entry *e, char *err,
		    size_t errlen);

/*
 * The functions below serve `ferryd user`.  They return 0, or with a reason in err:
 * -EINVAL for a value ferryd would refuse (checked with the users file's parsers before
 * anything is sent) or a new user without a hash or home, -EIO when the store failed
 * (unreachable, timed out, refused the statement), -ENOMEM.
 */

/* Insert u, or update the user of that name; *added tells which. */
int pg_store_put(struct pg_store *st, const struct user_entry_text *u, bool *added, char *err,
		 size_t errlen);
/* Delete name; *found tells whether there was such a user. */
int pg_store_delete(struct pg_store *st, const char *name, bool *found, char *err,
		    size_t errlen);
/* Give name a new crypt(3) hash; *found tells whether there was such a user. */
int pg_store_set_hash(struct pg_store *st, const char *name, const char *hash, bool *found,
		      char *err, size_t errlen);
/*
 * Print every user on out, sorted by name, one line each: "name home permissions settings"
 * and " disabled" when so, each field as log_quote() gives it (so a field with a space is
 * in double quotes, "" is no settings, and no field can start a line of its own).  Never
 * the hash.  A row lookup would refuse ends with " invalid=" and the reason.
 */
int pg_store_list(struct pg_store *st, FILE *out, char *err, size_t errlen);
/*
 * For --check-config: connect (if need be) and read no row of ferry_users, which fails
 * without the table or the right to read the columns a lookup reads.
 */
int pg_store_ping(struct pg_store *st, char *err, size_t errlen);

#endif
