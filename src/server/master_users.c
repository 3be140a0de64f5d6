/*
 * master_users.c: limits that span a user's sessions, counted where every session is seen.
 *
 * A user with max_sessions or a user-wide rate (user_settings.h) logs in through
 * USER_LOGIN: the master counts the user's sessions, across workers, admits the session or
 * refuses it (USER_ADMIT), and tells each worker holding sessions of the user its part of
 * the user's rates (USER_SHARE), in proportion to the sessions it holds.  A record
 * (conn_rec) points at its user's count, which goes when the record goes, however that
 * happens (end, reconciliation, a dead worker).  Users without such limits cost nothing
 * here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/master_int.h"

struct user_part {
	unsigned slot;
	unsigned n;
};

struct user_count {
	char name[USER_KEY_MAX];
	unsigned total;
	uint32_t rate_down, rate_up;   /* the user's, as its latest login said */
	unsigned n_parts, cap_parts;
	struct user_part *parts;       /* one per worker holding sessions of the user */
	struct user_count *next;
};

static unsigned bucket_of(const char *name)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return h % USER_BUCKETS;
}

static struct user_count **find(struct master *m, const char *name)
{
	struct user_count **pp = &m->users[bucket_of(name)];
	while (*pp != NULL && strcmp((*pp)->name, name) != 0)
		pp = &(*pp)->next;
	return pp;
}

static struct user_part *part_of(struct user_count *u, unsigned slot, bool add)
{
	for (unsigned i = 0; i < u->n_parts; i++) {
		if (u->parts[i].slot == slot)
			return &u->parts[i];
	}
	if (!add)
		return NULL;
	if (u->n_parts == u->cap_parts) {
		unsigned cap = u->cap_parts ? u->cap_parts * 2 : 2;
		struct user_part *p = realloc(u->parts, cap * sizeof(*p));
		if (p == NULL)
			return NULL;
		u->parts = p;
		u->cap_parts = cap;
	}
	u->parts[u->n_parts] = (struct user_part){ .slot = slot, .n = 0 };
	return &u->parts[u->n_parts++];
}

static uint32_t share(uint32_t rate, unsigned n, unsigned total)
{
	if (rate == 0)
		return 0;
	uint64_t s = (uint64_t)rate * n / total;
	return s == 0 ? 1 : (uint32_t)s;
}

/* Every worker holding sessions of u learns its part of u's rates. */
static void send_shares(struct master *m, const struct user_count *u)
{
	if (u->rate_down == 0 && u->rate_up == 0)
		return;
	for (unsigned i = 0; i < u->n_parts; i++) {
		const struct user_part *p = &u->parts[i];
		struct worker_slot *w = &m->slots[p->slot];
		if (p->n == 0 || w->pid == 0 || w->ch == NULL)
			continue;
		struct msg_user_share msg = { .rate_down = share(u->rate_down, p->n, u->total),
					      .rate_up = share(u->rate_up, p->n, u->total) };
		memcpy(msg.name, u->name, sizeof(msg.name));
		if (send_USER_SHARE(w->ch, &msg, -1) < 0)
			log_warn("cannot tell worker %u its part of user %s's rates: the worker is "
				 "ending", p->slot, LOG_Q(u->name));
	}
}

static void answer(struct master *m, unsigned slot, uint64_t id, int error, unsigned sessions)
{
	struct msg_user_admit msg = { .id = id, .error = error, .sessions = sessions };
	if (send_USER_ADMIT(m->slots[slot].ch, &msg, -1) < 0)
		log_warn("cannot answer the login of session %llu: its worker is ending",
			 (unsigned long long)id);
}

void user_login(struct master *m, unsigned slot, const struct msg_user_login *p)
{
	char name[sizeof(p->name)];
	memcpy(name, p->name, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	struct conn_rec *r = rec_owned(m, p->id, slot);
	if (r == NULL || r->user != NULL) {
		/* Gone meanwhile (or a second login, which a worker never sends): count nothing. */
		answer(m, slot, p->id, EUSERS, 0);
		return;
	}
	struct user_count **pp = find(m, name);
	struct user_count *u = *pp;
	unsigned total = u != NULL ? u->total : 0;
	if (p->max_sessions != 0 && total >= p->max_sessions) {
		log_info("session %llu: user=%s has %u sessions (max_sessions %u): refused",
			 (unsigned long long)p->id, LOG_Q(name), total, (unsigned)p->max_sessions);
		unauth_checking(m, r, false);
		answer(m, slot, p->id, EUSERS, total);
		return;
	}
	if (u == NULL) {
		u = calloc(1, sizeof(*u));
		if (u == NULL) {
			answer(m, slot, p->id, EUSERS, 0);
			return;
		}
		memcpy(u->name, name, sizeof(u->name));
		*pp = u;
	}
	struct user_part *part = part_of(u, slot, true);
	if (part == NULL) {
		if (u->total == 0) {
			*pp = u->next;
			free(u->parts);
			free(u);
		}
		answer(m, slot, p->id, EUSERS, total);
		return;
	}
	part->n++;
	u->total++;
	u->rate_down = p->rate_down;
	u->rate_up = p->rate_up;
	r->user = u;
	unauth_forget(m, r);
	answer(m, slot, p->id, 0, u->total);
	send_shares(m, u);
}

void user_release(struct master *m, struct conn_rec *r)
{
	struct user_count *u = r->user;
	if (u == NULL)
		return;
	r->user = NULL;
	struct user_part *part = part_of(u, r->worker, false);
	if (part != NULL && part->n > 0)
		part->n--;
	if (--u->total > 0) {
		send_shares(m, u);
		return;
	}
	struct user_count **pp = find(m, u->name);
	if (*pp == u)
		*pp = u->next;
	free(u->parts);
	free(u);
}

unsigned user_sessions(struct master *m, const char *name)
{
	struct user_count *u = *find(m, name);
	return u != NULL ? u->total : 0;
}
