/*
 * user_group.h: a worker's sessions of one user that share the user's rates
 * (user_rate_down, user_rate_up): one bucket each way for all of them, at the part of the
 * user's rate that the master gives this worker (USER_SHARE, master_users.c).
 */
#ifndef FERRY_SERVER_USER_GROUP_H
#define FERRY_SERVER_USER_GROUP_H

#include <sys/queue.h>

#include "server/ratelimit.h"

struct server;
struct msg_user_share;

struct user_group {
	char name[320];            /* USER_KEY_MAX (channel.h): host names are up to 253 */
	unsigned refs;             /* sessions holding it */
	struct rate_bucket down, up;
	LIST_ENTRY(user_group) link;
};

/*
 * The group of user name, made at the full rates (down, up bytes/s) if this worker has
 * none yet; the master's share follows.  NULL when out of memory.
 */
struct user_group *user_group_get(struct server *srv, const char *name, uint64_t down,
				  uint64_t up);
/* A session lets go; the last one frees the group. */
void user_group_put(struct user_group *g);
/* The master's USER_SHARE: this worker's part of the user's rates. */
void user_group_share(struct server *srv, const struct msg_user_share *p);

#endif
