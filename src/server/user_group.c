/*
 * user_group.c: the buckets a worker's sessions of one user share (user_group.h).
 */
#include "server/user_group.h"

#include <stdlib.h>
#include <string.h>

#include "server/channel.h"
#include "server/session.h"

struct user_group *user_group_get(struct server *srv, const char *name, uint64_t down,
				  uint64_t up)
{
	struct user_group *g;
	LIST_FOREACH(g, &srv->user_groups, link) {
		if (strcmp(g->name, name) == 0) {
			g->refs++;
			return g;
		}
	}
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	if (str_copy(g->name, sizeof(g->name), name) < 0) {
		free(g);
		return NULL;
	}
	uint64_t now = rate_now_ns();
	rate_init(&g->down, down, now);
	rate_init(&g->up, up, now);
	g->refs = 1;
	LIST_INSERT_HEAD(&srv->user_groups, g, link);
	return g;
}

void user_group_put(struct user_group *g)
{
	if (g == NULL || --g->refs > 0)
		return;
	LIST_REMOVE(g, link);
	free(g);
}

void user_group_share(struct server *srv, const struct msg_user_share *p)
{
	char name[sizeof(p->name)];
	memcpy(name, p->name, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	struct user_group *g;
	LIST_FOREACH(g, &srv->user_groups, link) {
		if (strcmp(g->name, name) == 0) {
			uint64_t now = rate_now_ns();
			rate_set(&g->down, p->rate_down, now);
			rate_set(&g->up, p->rate_up, now);
			return;
		}
	}
	/* Its sessions here have ended meanwhile: nothing to share. */
}
