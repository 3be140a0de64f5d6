/*
 * master_login.c: failed logins, decided where every session of an address is seen.
 *
 * A worker reports each failure of its session (LOGIN_FAILED); the master counts it
 * against the address of its own record of that session (throttle.c), answers how long the
 * 530 waits (LOGIN_DELAY), and bans the address after ban_after failures: 421 at accept,
 * and its sessions not logged in are closed (CLOSE_UNAUTH).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/hostport.h"
#include "server/master_int.h"
#include "server/throttle.h"

uint64_t master_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct throttle_policy throttle_policy_of(const struct config *cfg)
{
	struct throttle_policy p = { .ban_after = cfg->ban_after,
				     .ban_time = cfg->ban_time,
				     .base_delay_ms = cfg->login_failure_delay };
	return p;
}

/* A deadline of the monotonic clock as wall-clock UTC, for log lines. */
static void format_deadline(uint64_t until, uint64_t now, char *out, size_t n)
{
	time_t t = time(NULL) + (time_t)((until - now + 999) / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	if (strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 && n > 0)
		out[0] = '\0';
}

static void on_ban_ended(void *ctx, const struct sockaddr_storage *a, unsigned failures,
			 enum throttle_end how)
{
	char who[64];
	hostport_ntop(a, who, sizeof(who));
	if (how == THROTTLE_BAN_OVER)
		log_info("ban of %s ended (it had %u failed logins)", who, failures);
	else
		log_warn("ban of %s lifted early (%u failed logins): all %u remembered addresses "
			 "are banned, and a new one needs room",
			 who, failures, THROTTLE_CAP);
}

/* Forget what has expired, and wake up when the next entry does (to log a ban's end). */
static void throttle_sweep(struct master *m)
{
	struct throttle_policy p = throttle_policy_of(m->cfg);
	uint64_t now = master_now_ms();
	uint64_t next = throttle_expire(m->throttle, &p, now);
	if (next == UINT64_MAX) {
		evtimer_del(m->throttle_timer);
		return;
	}
	uint64_t ms = next > now ? next - now : 0;
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(m->throttle_timer, &tv);
}

static void on_throttle_timer(evutil_socket_t fd, short what, void *arg)
{
	throttle_sweep(arg);
}

int master_login_init(struct master *m)
{
	uint32_t seed;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint32_t)time(NULL) ^ (uint32_t)getpid();
	m->throttle = throttle_new(THROTTLE_CAP, seed, on_ban_ended, m);
	m->throttle_timer = evtimer_new(m->base, on_throttle_timer, m);
	return m->throttle != NULL && m->throttle_timer != NULL ? 0 : -ENOMEM;
}

void master_login_free(struct master *m)
{
	if (m->throttle_timer != NULL)
		event_free(m->throttle_timer);
	throttle_free(m->throttle);
}

/* Have a session that has not logged in answered 421 and closed by its worker. */
void close_unauth(struct master *m, struct conn_rec *r, int why)
{
	unauth_forget(m, r);
	struct msg_close_unauth msg = { .id = r->id, .reason = why };
	struct worker_slot *w = &m->slots[r->worker];
	if (w->pid == 0 || w->ch == NULL || send_CLOSE_UNAUTH(w->ch, &msg, -1) < 0)
		log_warn("cannot have session %llu closed by its worker: the worker is ending",
			 (unsigned long long)r->id);
}

/* A ban begins: log it, and close every session of the address not logged in. */
static void ban_begins(struct master *m, const struct sockaddr_storage *a,
		       const struct throttle_verdict *v, uint64_t now, unsigned ban_time)
{
	struct sockaddr_storage addr = *a;
	char who[64], until[32];
	hostport_ntop(&addr, who, sizeof(who));
	format_deadline(v->ban_until, now, until, sizeof(until));
	log_warn("banning %s until %s (ban_time %u s): %u failed logins (ban_after)", who, until,
		 ban_time, v->failures);
	struct conn_rec *c, *next;
	for (c = TAILQ_FIRST(&m->unauth); c != NULL; c = next) {
		next = TAILQ_NEXT(c, unauth_link);
		struct sockaddr_storage c_addr = hostport_addr_get(&c->addr);
		if (hostport_same_host(&c_addr, &addr))
			close_unauth(m, c, EACCES);
	}
}

/*
 * A worker reports a failed login of its session id.  The address is the master's own
 * record of the session; the answer is the delay before the 530.  A ban's closes go out
 * before that answer, so that the failing session gets its 421 and never a 530 first
 * (the worker ignores a delay for a session it is closing).
 */
void login_failed(struct master *m, unsigned slot, uint64_t id)
{
	struct conn_rec *r = rec_owned(m, id, slot); /* another's: answer, count nothing */
	struct throttle_policy p = throttle_policy_of(m->cfg);
	struct throttle_verdict v = { .failures = 1, .delay_ms = p.base_delay_ms };
	uint64_t now = master_now_ms();
	if (r != NULL) {
		unauth_checking(m, r, false);
		struct sockaddr_storage addr = hostport_addr_get(&r->addr);
		throttle_failure(m->throttle, &p, &addr, now, &v);
		if (v.ban_started)
			ban_begins(m, &addr, &v, now, p.ban_time);
		else if (v.banned && r->unauth)
			close_unauth(m, r, EACCES); /* its check was in flight when the ban began */
		throttle_sweep(m);
	}
	struct msg_login_delay msg = { .id = id, .delay_ms = v.delay_ms };
	if (send_LOGIN_DELAY(m->slots[slot].ch, &msg, -1) < 0)
		log_warn("cannot answer the failed login of session %llu: its worker is ending",
			 (unsigned long long)id);
}
