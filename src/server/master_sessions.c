/*
 * master_sessions.c: the master's record of every session (id, worker, client address),
 * the counts the global limits are decided on, and the sessions not logged in.
 *
 * The counts must come back down whatever happens to a worker's messages: a session's
 * record goes when its worker reports the end, when the worker dies, or when the worker's
 * periodic list of live sessions (reconciliation, channel.h) no longer names it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/hostport.h"
#include "server/master_int.h"
#include "server/pasv_broker.h"

/* A session not logged in counts as idle, and may be evicted, after this long. */
#define UNAUTH_IDLE_MS 5000u

static unsigned addr_hash(const struct sockaddr_storage *a)
{
	const unsigned char *p;
	size_t n;
	if (a->ss_family == AF_INET) {
		p = (const unsigned char *)&((const struct sockaddr_in *)a)->sin_addr;
		n = 4;
	} else {
		p = (const unsigned char *)&((const struct sockaddr_in6 *)a)->sin6_addr;
		n = 16;
	}
	unsigned h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h % ADDR_BUCKETS;
}

static struct addr_count **addr_find(struct master *m, const struct sockaddr_storage *a)
{
	struct addr_count **pp = &m->addrs[addr_hash(a)];
	while (*pp != NULL && !hostport_same_host(&(*pp)->addr, a))
		pp = &(*pp)->next;
	return pp;
}

unsigned addr_sessions(struct master *m, const struct sockaddr_storage *a)
{
	struct addr_count *c = *addr_find(m, a);
	return c != NULL ? c->n : 0;
}

void unauth_forget(struct master *m, struct conn_rec *r)
{
	if (!r->unauth)
		return;
	TAILQ_REMOVE(&m->unauth, r, unauth_link);
	r->unauth = false;
	r->checking = false;
	m->n_unauth--;
}

void unauth_checking(struct master *m, struct conn_rec *r, bool checking)
{
	if (!r->unauth)
		return;
	r->checking = checking;
	if (!checking) {
		/* A failed login is activity: the session is not idle, it starts waiting anew. */
		r->since_ms = master_now_ms();
		TAILQ_REMOVE(&m->unauth, r, unauth_link);
		TAILQ_INSERT_TAIL(&m->unauth, r, unauth_link);
	}
}

int rec_add(struct master *m, uint64_t id, unsigned worker, const struct sockaddr_storage *a)
{
	struct conn_rec *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	struct addr_count **pp = addr_find(m, a);
	if (*pp == NULL) {
		*pp = calloc(1, sizeof(**pp));
		if (*pp == NULL) {
			free(r);
			return -ENOMEM;
		}
		(*pp)->addr = *a;
		m->n_addrs++;
	}
	(*pp)->n++;
	r->id = id;
	r->worker = worker;
	hostport_addr_set(&r->addr, a);
	r->since_ms = master_now_ms();
	r->next = m->recs[id % REC_BUCKETS];
	m->recs[id % REC_BUCKETS] = r;
	r->unauth = true;
	TAILQ_INSERT_TAIL(&m->unauth, r, unauth_link);
	m->n_unauth++;
	m->total++;
	m->slots[worker].load++;
	return 0;
}

struct conn_rec *rec_find(struct master *m, uint64_t id)
{
	struct conn_rec *r = m->recs[id % REC_BUCKETS];
	while (r != NULL && r->id != id)
		r = r->next;
	return r;
}

struct conn_rec *rec_owned(struct master *m, uint64_t id, unsigned slot)
{
	struct conn_rec *r = rec_find(m, id);
	return r != NULL && r->worker == slot ? r : NULL;
}

static void rec_unlink(struct master *m, struct conn_rec **pp)
{
	struct conn_rec *r = *pp;
	*pp = r->next;
	unauth_forget(m, r);
	user_release(m, r);
	struct sockaddr_storage addr = hostport_addr_get(&r->addr);
	struct addr_count **ap = addr_find(m, &addr);
	if (*ap != NULL && --(*ap)->n == 0) {
		struct addr_count *c = *ap;
		*ap = c->next;
		free(c);
		m->n_addrs--;
	}
	m->total--;
	if (m->slots[r->worker].load > 0)
		m->slots[r->worker].load--;
	free(r);
}

void rec_remove(struct master *m, uint64_t id)
{
	struct conn_rec **pp = &m->recs[id % REC_BUCKETS];
	while (*pp != NULL && (*pp)->id != id)
		pp = &(*pp)->next;
	if (*pp != NULL)
		rec_unlink(m, pp);
}

void rec_remove_worker(struct master *m, unsigned worker)
{
	for (unsigned b = 0; b < REC_BUCKETS; b++) {
		struct conn_rec **pp = &m->recs[b];
		while (*pp != NULL) {
			if ((*pp)->worker == worker)
				rec_unlink(m, pp);
			else
				pp = &(*pp)->next;
		}
	}
}

static void on_evict_timer(evutil_socket_t fd, short what, void *arg)
{
	evict_unauth(arg);
}

/*
 * max_unauthenticated: a flood of idle connections must not keep new clients out, but a
 * storm of real clients must not evict each other either.  So only a session that has sat
 * UNAUTH_IDLE_MS without logging in, and whose password is not being checked, is closed,
 * the longest waiting first.  When none is idle yet the cap is exceeded for a moment, and
 * a timer comes back when the oldest becomes idle.
 */
void evict_unauth(struct master *m)
{
	uint64_t now = master_now_ms();
	struct conn_rec *r = TAILQ_FIRST(&m->unauth);
	while (m->n_unauth > m->cfg->max_unauthenticated && r != NULL) {
		struct conn_rec *next = TAILQ_NEXT(r, unauth_link);
		if (r->checking) {
			r = next;
			continue;
		}
		if (now - r->since_ms < UNAUTH_IDLE_MS) {
			/* The list is in order of waiting: nobody after it is idle either. */
			uint64_t ms = UNAUTH_IDLE_MS - (now - r->since_ms);
			struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
					      .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
			if (m->evict_timer == NULL)
				m->evict_timer = evtimer_new(m->base, on_evict_timer, m);
			if (m->evict_timer != NULL)
				evtimer_add(m->evict_timer, &tv);
			return;
		}
		char who[64];
		struct sockaddr_storage addr = hostport_addr_get(&r->addr);
		hostport_ntop(&addr, who, sizeof(who));
		log_warn_limited(&m->log_evict,
				 "closing session %llu of %s: idle for %llu s without logging in, "
				 "the longest of %u such sessions (max_unauthenticated)",
				 (unsigned long long)r->id, who,
				 (unsigned long long)((now - r->since_ms) / 1000), m->n_unauth);
		close_unauth(m, r, EUSERS);
		r = next;
	}
}

/* ---- reconciliation (channel.h) ---- */

void sync_begin(struct master *m, unsigned slot, const struct msg_sync *p)
{
	struct worker_slot *w = &m->slots[slot];
	w->sync_upto = p->upto;
	w->sync_gen++;
	w->sync_named = 0;
	channel_set_state(w->ch, CS_SYNC);
}

void sync_ids(struct master *m, unsigned slot, const struct msg_sync_ids *p)
{
	struct worker_slot *w = &m->slots[slot];
	unsigned n = p->n <= MSG_SYNC_IDS_MAX ? p->n : MSG_SYNC_IDS_MAX;
	for (unsigned i = 0; i < n; i++) {
		struct conn_rec *r = rec_owned(m, p->ids[i], slot);
		if (r != NULL)
			r->sync_gen = w->sync_gen;
	}
	w->sync_named += n;
}

void sync_end(struct master *m, unsigned slot, const struct msg_sync *p)
{
	struct worker_slot *w = &m->slots[slot];
	channel_set_state(w->ch, w->draining ? CS_DRAIN : CS_RUN);
	if (p->count != w->sync_named) {
		log_error("worker %u: its list of sessions names %u of %u: ignored", w->index,
			  w->sync_named, p->count);
		return;
	}
	unsigned dropped = 0;
	for (unsigned b = 0; b < REC_BUCKETS; b++) {
		struct conn_rec **pp = &m->recs[b];
		while (*pp != NULL) {
			struct conn_rec *r = *pp;
			if (r->worker == slot && r->id <= w->sync_upto && r->sync_gen != w->sync_gen) {
				rec_unlink(m, pp);
				dropped++;
			} else {
				pp = &r->next;
			}
		}
	}
	if (dropped > 0) {
		m->reconciled += dropped;
		log_warn("worker %u: %u sessions had ended without their end reaching the master: "
			 "counted as ended now",
			 w->index, dropped);
	}
}

void master_log_status(struct master *m)
{
	size_t queued = 0;
	for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
		if (m->slots[i].pid != 0 && m->slots[i].ch != NULL)
			queued += channel_queued(m->slots[i].ch);
	}
	log_info("status sessions=%u unauthenticated=%u addresses=%u workers=%u queued=%zu "
		 "reconciled=%llu",
		 m->total, m->n_unauth, m->n_addrs, live_workers(m, true), queued,
		 (unsigned long long)m->reconciled);
	/* Refused data connections, by reason: firewall and NAT trouble apart from TLS trouble. */
	char refused[512];
	size_t len = 0;
	m->data_refused[DR_FOREIGN_ADDRESS] = pasv_broker_foreign(m->broker);
	for (unsigned r = 0; r < DR_COUNT && len < sizeof(refused); r++) {
		int n = snprintf(refused + len, sizeof(refused) - len, " %s=%llu",
				 data_refusal_name((enum data_refusal)r),
				 (unsigned long long)m->data_refused[r]);
		if (n < 0)
			break;
		len += (size_t)n;
	}
	log_info("status data_refused%s", refused);
}
