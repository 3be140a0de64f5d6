/*
 * auth.h: password checks off the event loop.
 *
 * crypt(3) with yescrypt costs about 0.1 s of CPU by design; run on the worker's loop it
 * would stall every other session.  A worker therefore hands each check to its own small
 * thread and learns the result through a pipe watched by the loop.  The thread touches
 * only the request, the frozen users table and its own connection to PostgreSQL (whose
 * lookups block too, bounded by users_pg_timeout); sessions are never seen by it.
 */
#ifndef FERRY_SERVER_AUTH_H
#define FERRY_SERVER_AUTH_H

#include <stdbool.h>

#include <event2/event.h>

struct users;
struct config;
struct user_entry;
struct auth_pool;
struct auth_request;

/* What a check found. */
struct auth_result {
	/*
	 * 1: the password is right and the user may log in; 0: refused (an unknown user, a
	 * wrong password and a disabled user cannot be told apart, on purpose); -1: a source of
	 * users (PostgreSQL) could not answer: 421, not a failed login.
	 */
	int status;
	const struct user_entry *user; /* status 1: the users table's entry, or owned */
	struct user_entry *owned;      /* a database's user: the callback takes it (and frees it
					  with user_entry_clear() and free()), else NULL */
	int fs_conn;                   /* a local user's file helper connection (fs_proxy.h):
					  the callback takes it (sets it to -1), else -1 */
};

/* Called on the loop when a check ends. */
typedef void auth_done_fn(void *ctx, struct auth_result *res);

/*
 * users: the frozen users table (NULL: none); cfg: users_pg, LDAP and local users, looked
 * up after the table by the same thread; local_chan: the channel to the local-users
 * helper (-1: none), which only this thread uses.
 */
struct auth_pool *auth_pool_new(struct event_base *base, const struct users *users,
				const struct config *cfg, int local_chan);
void auth_pool_free(struct auth_pool *p);
/*
 * Another frozen users table checks may name (a [host] section's, config.h); before any
 * check.  Its unknown users cost what its own users cost.  Returns 0, or -ENOSPC.
 */
int auth_pool_add_users(struct auth_pool *p, const struct users *users);

/* Queue a check.  Returns NULL if it could not be queued (treat as a failed login). */
struct auth_request *auth_check(struct auth_pool *p, const char *user, const char *password,
				auth_done_fn *done, void *ctx);
/*
 * The same, looking the name up in users (the pool's first table, or one added with
 * auth_pool_add_users) before the databases.
 */
struct auth_request *auth_check_in(struct auth_pool *p, const struct users *users,
				   const char *user, const char *password, auth_done_fn *done,
				   void *ctx);
/* The session went away: the check finishes but its result is dropped. */
void auth_cancel(struct auth_request *req);

#endif
