/*
 * throttle.c: the master's table of failed logins per client address (policy in
 * throttle.h).  Fixed memory, taken at creation: an array of entries, a hash table over
 * them and one list in the order of their last failure, oldest first.  Because every
 * entry expires a fixed time after its last counted failure (a ban starts at that failure
 * and lasts as long), that list is also the order of expiry: sweeping and evicting look
 * at its head only.  (A reload that changes ban_time can leave a few entries out of
 * order; they are then swept a little late, while every decision compares times itself.)
 *
 * This file must stay free of I/O and clocks, so that tests can drive it with any times.
 */
#include "server/throttle.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "common/hostport.h"

/* An address reduced to what identifies it: family and 4 or 16 bytes, no port. */
struct key {
	uint8_t family;
	uint8_t ip[16];
};

struct entry {
	struct key key;
	unsigned failures;
	uint64_t last;         /* the last counted failure */
	uint64_t ban_until;    /* 0: not banned */
	struct entry *hnext;   /* hash chain */
	struct entry *older, *newer; /* the age list, or the free list (newer only) */
};

struct throttle {
	struct entry *entries;   /* cap of them */
	struct entry **buckets;  /* n_buckets, a power of two */
	unsigned n_buckets;
	unsigned cap, used;
	uint32_t seed;
	struct entry *oldest, *newest;
	struct entry *free_list;
	throttle_ended_fn *ended;
	void *ctx;
};

static bool make_key(const struct sockaddr_storage *a, struct key *k)
{
	struct sockaddr_storage u = *a;
	hostport_unmap(&u);
	memset(k, 0, sizeof(*k));
	if (u.ss_family == AF_INET) {
		k->family = AF_INET;
		memcpy(k->ip, &((const struct sockaddr_in *)&u)->sin_addr, 4);
		return true;
	}
	if (u.ss_family == AF_INET6) {
		k->family = AF_INET6;
		memcpy(k->ip, &((const struct sockaddr_in6 *)&u)->sin6_addr, 16);
		return true;
	}
	return false;
}

static void key_to_addr(const struct key *k, struct sockaddr_storage *a)
{
	memset(a, 0, sizeof(*a));
	if (k->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)a;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, k->ip, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)a;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, k->ip, 16);
	}
}

static unsigned bucket_of(const struct throttle *t, const struct key *k)
{
	/* FNV-1a, started from the seed. */
	uint32_t h = 2166136261u ^ t->seed;
	const uint8_t *p = (const uint8_t *)k;
	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 16777619u;
	h ^= h >> 15;
	return h & (t->n_buckets - 1);
}

static struct entry **find_slot(const struct throttle *t, const struct key *k)
{
	struct entry **pp = &t->buckets[bucket_of(t, k)];
	while (*pp != NULL && memcmp(&(*pp)->key, k, sizeof(*k)) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

static struct entry *find(const struct throttle *t, const struct sockaddr_storage *a)
{
	struct key k;
	return make_key(a, &k) ? *find_slot(t, &k) : NULL;
}

static void age_unlink(struct throttle *t, struct entry *e)
{
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		t->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		t->newest = e->older;
	e->older = e->newer = NULL;
}

static void age_append(struct throttle *t, struct entry *e)
{
	e->newer = NULL;
	e->older = t->newest;
	if (t->newest != NULL)
		t->newest->newer = e;
	else
		t->oldest = e;
	t->newest = e;
}

static void drop(struct throttle *t, struct entry *e)
{
	struct entry **pp = find_slot(t, &e->key);
	if (*pp == e)
		*pp = e->hnext;
	age_unlink(t, e);
	memset(e, 0, sizeof(*e));
	e->newer = t->free_list;
	t->free_list = e;
	t->used--;
}

static void report_end(struct throttle *t, const struct entry *e, enum throttle_end how)
{
	if (t->ended == NULL)
		return;
	struct sockaddr_storage a;
	key_to_addr(&e->key, &a);
	t->ended(t->ctx, &a, e->failures, how);
}

static uint64_t window_ms(const struct throttle_policy *p)
{
	return (uint64_t)p->ban_time * 1000u;
}

static uint64_t expiry(const struct entry *e, const struct throttle_policy *p)
{
	return e->ban_until != 0 ? e->ban_until : e->last + window_ms(p);
}

/* Room for one more entry: the oldest that is not banned goes, else the oldest ban. */
static void make_room(struct throttle *t)
{
	struct entry *victim = t->oldest;
	for (struct entry *e = t->oldest; e != NULL; e = e->newer) {
		if (e->ban_until == 0) {
			victim = e;
			break;
		}
	}
	if (victim->ban_until != 0)
		report_end(t, victim, THROTTLE_BAN_EVICTED);
	drop(t, victim);
}

static struct entry *insert(struct throttle *t, const struct key *k)
{
	if (t->used == t->cap)
		make_room(t);
	struct entry *e = t->free_list;
	t->free_list = e->newer;
	memset(e, 0, sizeof(*e));
	e->key = *k;
	struct entry **head = &t->buckets[bucket_of(t, k)];
	e->hnext = *head;
	*head = e;
	t->used++;
	return e;
}

static unsigned delay_for(const struct throttle_policy *p, unsigned failures)
{
	uint64_t cap = p->base_delay_ms > THROTTLE_MAX_DELAY_MS ? p->base_delay_ms
								: THROTTLE_MAX_DELAY_MS;
	uint64_t d = p->base_delay_ms;
	for (unsigned i = 1; i < failures && d < cap; i++)
		d *= 2;
	return (unsigned)(d < cap ? d : cap);
}

void throttle_failure(struct throttle *t, const struct throttle_policy *p,
		      const struct sockaddr_storage *addr, uint64_t now, struct throttle_verdict *v)
{
	memset(v, 0, sizeof(*v));
	struct key k;
	if (!make_key(addr, &k)) {
		v->failures = 1;
		v->delay_ms = p->base_delay_ms;
		return;
	}
	struct entry *e = *find_slot(t, &k);
	if (e != NULL && e->ban_until != 0) {
		if (now < e->ban_until) {
			/* A check that was in flight when the ban began: it changes nothing. */
			v->failures = e->failures;
			v->delay_ms = delay_for(p, e->failures);
			v->banned = true;
			v->ban_until = e->ban_until;
			return;
		}
		report_end(t, e, THROTTLE_BAN_OVER);
		drop(t, e);
		e = NULL;
	}
	if (e != NULL && now - e->last >= window_ms(p))
		e->failures = 0; /* quiet for ban_time: forgotten */
	if (e == NULL)
		e = insert(t, &k);
	else
		age_unlink(t, e);
	if (e->failures < UINT_MAX)
		e->failures++;
	e->last = now;
	age_append(t, e);
	v->failures = e->failures;
	v->delay_ms = delay_for(p, e->failures);
	if (p->ban_after != 0 && e->failures >= p->ban_after) {
		e->ban_until = now + window_ms(p);
		if (e->ban_until == 0)
			e->ban_until = 1;
		v->banned = v->ban_started = true;
		v->ban_until = e->ban_until;
	}
}

bool throttle_banned(const struct throttle *t, const struct sockaddr_storage *addr, uint64_t now,
		     uint64_t *until)
{
	const struct entry *e = find(t, addr);
	if (e == NULL || e->ban_until == 0 || now >= e->ban_until)
		return false;
	if (until != NULL)
		*until = e->ban_until;
	return true;
}

unsigned throttle_failures(const struct throttle *t, const struct throttle_policy *p,
			   const struct sockaddr_storage *addr, uint64_t now)
{
	const struct entry *e = find(t, addr);
	if (e == NULL || now >= expiry(e, p))
		return 0;
	return e->failures;
}

uint64_t throttle_expire(struct throttle *t, const struct throttle_policy *p, uint64_t now)
{
	while (t->oldest != NULL && expiry(t->oldest, p) <= now) {
		struct entry *e = t->oldest;
		if (e->ban_until != 0)
			report_end(t, e, THROTTLE_BAN_OVER);
		drop(t, e);
	}
	return t->oldest != NULL ? expiry(t->oldest, p) : UINT64_MAX;
}

unsigned throttle_size(const struct throttle *t)
{
	return t->used;
}

struct throttle *throttle_new(unsigned cap, uint32_t seed, throttle_ended_fn *ended, void *ctx)
{
	if (cap == 0 || cap > (1u << 24))
		return NULL;
	struct throttle *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->n_buckets = 1;
	while (t->n_buckets < cap)
		t->n_buckets *= 2;
	t->entries = calloc(cap, sizeof(*t->entries));
	t->buckets = calloc(t->n_buckets, sizeof(*t->buckets));
	if (t->entries == NULL || t->buckets == NULL) {
		throttle_free(t);
		return NULL;
	}
	for (unsigned i = cap; i-- > 0;) {
		t->entries[i].newer = t->free_list;
		t->free_list = &t->entries[i];
	}
	t->cap = cap;
	t->seed = seed;
	t->ended = ended;
	t->ctx = ctx;
	return t;
}

void throttle_free(struct throttle *t)
{
	if (t == NULL)
		return;
	free(t->entries);
	free(t->buckets);
	free(t);
}
