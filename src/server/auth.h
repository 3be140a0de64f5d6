/*
 * auth.h: password checks off the event loop.
 *
 * crypt(3) with yescrypt costs about 0.1 s of CPU by design; run on the worker's loop it
 * would stall every other session.  A worker therefore hands each check to its own small
 * thread and learns the result through a pipe watched by the loop.  The thread touches
 * only the request and the frozen users table; sessions are never seen by it.
 */
#ifndef FERRY_SERVER_AUTH_H
#define FERRY_SERVER_AUTH_H

#include <stdbool.h>

#include <event2/event.h>

struct users;
struct user_entry;
struct auth_pool;
struct auth_request;

/*
 * Called on the loop when a check ends.  u is the matching user on success, NULL when the
 * user is unknown or the password wrong (the two cannot be told apart, on purpose).
 */
typedef void auth_done_fn(void *ctx, const struct user_entry *u);

struct auth_pool *auth_pool_new(struct event_base *base, const struct users *users);
void auth_pool_free(struct auth_pool *p);

/* Queue a check.  Returns NULL if it could not be queued (treat as a failed login). */
struct auth_request *auth_check(struct auth_pool *p, const char *user, const char *password,
				auth_done_fn *done, void *ctx);
/* The session went away: the check finishes but its result is dropped. */
void auth_cancel(struct auth_request *req);

#endif
