/*
 * master.c: ferryd's master process.
 *
 * It holds the listening sockets and accepts every connection itself, so that the global
 * limits (sessions in all, sessions per client address) are decided in one place, then
 * hands the connection to the least loaded worker over a socketpair (SCM_RIGHTS).  Workers
 * are separate programs (fork + exec of ourselves), each with a fresh address space and
 * nothing inherited but the descriptors it needs.
 */
#include "server/master.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "common/hostport.h"
#include "server/checks.h"
#include "server/ipc.h"
#include "server/log.h"
#include "server/pasv_broker.h"
#include "server/port20.h"
#include "server/resolver.h"
#include "server/sandbox.h"
#include "server/throttle.h"
#include "server/tls_files.h"
#include "server/users.h"

#define MAX_WORKER_SLOTS 512
#define REC_BUCKETS 4096
#define ADDR_BUCKETS 4096

struct worker_slot {
	pid_t pid;              /* 0: free slot */
	int fd;                 /* channel */
	int port20_fd;          /* the worker's channel to the helper (master's copy closed) */
	struct event *ev;
	unsigned load;
	unsigned index;
	bool draining;          /* replaced by a reload: no new sessions, not restarted */
	time_t started;
};

struct conn_rec {
	uint64_t id;
	unsigned worker;
	struct sockaddr_storage addr;
	struct conn_rec *next;
	bool unauth;            /* not logged in yet: on the master's unauth list */
	TAILQ_ENTRY(conn_rec) unauth_link;
};

struct addr_count {
	struct sockaddr_storage addr;
	unsigned n;
	struct addr_count *next;
};

struct master {
	struct event_base *base;
	struct config *cfg;
	int argc;
	char **argv;
	int listen_fds[2 * CONFIG_MAX_LISTEN];
	struct evconnlistener *listeners[2 * CONFIG_MAX_LISTEN];
	bool implicit_tls[2 * CONFIG_MAX_LISTEN]; /* a listen_implicit_tls listener */
	unsigned n_listeners;
	struct worker_slot slots[MAX_WORKER_SLOTS];
	struct conn_rec *recs[REC_BUCKETS];
	struct addr_count *addrs[ADDR_BUCKETS];
	unsigned total;
	uint64_t next_id;
	unsigned next_index;
	int xferlog_fd;
	int root_fd;            /* the anonymous root, opened before dropping privileges */
	int users_fd;           /* sealed snapshot of the users file, or -1 */
	int tls_fd;             /* sealed snapshot of the TLS files, or -1 */
	int port20_ctl;
	pid_t port20_pid;
	struct pasv_broker *broker;
	struct resolver *pasv_resolver; /* pasv_address when it is a host name */
	bool stopping;
	struct event *sig_ev[4];
	struct event *kill_timer;
	struct event *respawn_timer;
	/* abuse resistance (throttle.h) */
	TAILQ_HEAD(, conn_rec) unauth;  /* sessions not logged in, longest waiting first */
	unsigned n_unauth;
	struct throttle *throttle;      /* failed logins per client address */
	struct event *throttle_timer;   /* the table's next expiry */
	uint64_t ban_log_sec;           /* refusals of banned addresses: one line a second */
	unsigned ban_refused;           /* refusals not logged since */
};

/* ---- connection records and per-address counts ---- */

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

static unsigned addr_sessions(struct master *m, const struct sockaddr_storage *a)
{
	struct addr_count *c = *addr_find(m, a);
	return c != NULL ? c->n : 0;
}

static void unauth_forget(struct master *m, struct conn_rec *r)
{
	if (!r->unauth)
		return;
	TAILQ_REMOVE(&m->unauth, r, unauth_link);
	r->unauth = false;
	m->n_unauth--;
}

static int rec_add(struct master *m, uint64_t id, unsigned worker, const struct sockaddr_storage *a)
{
	struct conn_rec *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -1;
	struct addr_count **pp = addr_find(m, a);
	if (*pp == NULL) {
		*pp = calloc(1, sizeof(**pp));
		if (*pp == NULL) {
			free(r);
			return -1;
		}
		(*pp)->addr = *a;
	}
	(*pp)->n++;
	r->id = id;
	r->worker = worker;
	r->addr = *a;
	r->next = m->recs[id % REC_BUCKETS];
	m->recs[id % REC_BUCKETS] = r;
	r->unauth = true;
	TAILQ_INSERT_TAIL(&m->unauth, r, unauth_link);
	m->n_unauth++;
	m->total++;
	m->slots[worker].load++;
	return 0;
}

static struct conn_rec *rec_find(struct master *m, uint64_t id)
{
	struct conn_rec *r = m->recs[id % REC_BUCKETS];
	while (r != NULL && r->id != id)
		r = r->next;
	return r;
}

static void rec_unlink(struct master *m, struct conn_rec **pp)
{
	struct conn_rec *r = *pp;
	*pp = r->next;
	unauth_forget(m, r);
	struct addr_count **ap = addr_find(m, &r->addr);
	if (*ap != NULL && --(*ap)->n == 0) {
		struct addr_count *c = *ap;
		*ap = c->next;
		free(c);
	}
	m->total--;
	if (m->slots[r->worker].load > 0)
		m->slots[r->worker].load--;
	free(r);
}

static void rec_remove(struct master *m, uint64_t id)
{
	struct conn_rec **pp = &m->recs[id % REC_BUCKETS];
	while (*pp != NULL && (*pp)->id != id)
		pp = &(*pp)->next;
	if (*pp != NULL)
		rec_unlink(m, pp);
}

static void rec_remove_worker(struct master *m, unsigned worker)
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

/* ---- workers ---- */

static void on_worker_msg(evutil_socket_t fd, short what, void *arg);

static void clear_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl >= 0)
		fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
}

static int spawn_worker(struct master *m, unsigned slot_no)
{
	struct worker_slot *w = &m->slots[slot_no];
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* Room for the configuration, sent as one message. */
	int sz = (int)sizeof(struct config) * 2;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	int p20 = -1;
	if (m->port20_ctl >= 0) {
		p20 = port20_new_channel(m->port20_ctl);
		if (p20 < 0)
			log_warn("no channel to the port-20 helper: %s", strerror(-p20));
	}
	unsigned index = ++m->next_index;
	char a_fd[16], a_index[16], a_p20[16], a_xfer[16], a_root[16], a_users[16], a_tls[16];
	snprintf(a_fd, sizeof(a_fd), "%d", sv[1]);
	snprintf(a_index, sizeof(a_index), "%u", index);
	snprintf(a_p20, sizeof(a_p20), "%d", p20);
	snprintf(a_xfer, sizeof(a_xfer), "%d", m->xferlog_fd);
	snprintf(a_root, sizeof(a_root), "%d", m->root_fd);
	snprintf(a_users, sizeof(a_users), "%d", m->users_fd);
	snprintf(a_tls, sizeof(a_tls), "%d", m->tls_fd);
	char *args[] = { m->argv[0], "--worker", a_fd,    a_index, a_p20,
			 a_xfer,     a_root,     a_users, a_tls, NULL };

	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		if (p20 >= 0)
			close(p20);
		return -e;
	}
	if (pid == 0) {
		/* Only async-signal-safe calls between fork and exec. */
		clear_cloexec(sv[1]);
		if (p20 >= 0)
			clear_cloexec(p20);
		if (m->xferlog_fd >= 0)
			clear_cloexec(m->xferlog_fd);
		if (m->root_fd >= 0)
			clear_cloexec(m->root_fd);
		if (m->users_fd >= 0)
			clear_cloexec(m->users_fd);
		if (m->tls_fd >= 0)
			clear_cloexec(m->tls_fd);
		execv("/proc/self/exe", args);
		_exit(127);
	}
	close(sv[1]);
	if (p20 >= 0)
		close(p20);
	if (send(sv[0], m->cfg, sizeof(*m->cfg), MSG_NOSIGNAL) != (ssize_t)sizeof(*m->cfg)) {
		log_error("cannot send the configuration to worker %u: %s", index, strerror(errno));
		kill(pid, SIGKILL);
	}
	evutil_make_socket_nonblocking(sv[0]);
	memset(w, 0, sizeof(*w));
	w->pid = pid;
	w->fd = sv[0];
	w->index = index;
	w->started = time(NULL);
	w->ev = event_new(m->base, sv[0], EV_READ | EV_PERSIST, on_worker_msg, m);
	if (w->ev != NULL)
		event_add(w->ev, NULL);
	log_info("started worker %u (pid %d)", index, (int)pid);
	return 0;
}

static unsigned live_workers(const struct master *m, bool include_draining)
{
	unsigned n = 0;
	for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
		if (m->slots[i].pid != 0 && (include_draining || !m->slots[i].draining))
			n++;
	}
	return n;
}

/* Bring the number of active workers up to the configured count. */
static void fill_workers(struct master *m)
{
	for (unsigned i = 0; i < MAX_WORKER_SLOTS && live_workers(m, false) < m->cfg->workers; i++) {
		if (m->slots[i].pid == 0 && spawn_worker(m, i) < 0)
			log_error("cannot start a worker: %s", strerror(errno));
	}
}

static void free_slot(struct master *m, unsigned i)
{
	struct worker_slot *w = &m->slots[i];
	rec_remove_worker(m, i);
	pasv_broker_forget_worker(m->broker, i);
	if (w->ev != NULL)
		event_free(w->ev);
	close(w->fd);
	memset(w, 0, sizeof(*w));
}

static bool owned_by(struct master *m, uint64_t id, unsigned slot)
{
	const struct conn_rec *r = rec_find(m, id);
	return r != NULL && r->worker == slot;
}

/* ---- passive mode: the broker's side of the channel ---- */

static void answer_pasv(struct master *m, unsigned slot, const struct ipc_msg *req)
{
	struct sockaddr_storage local, peer;
	memcpy(&local, req->addr, sizeof(local));
	memcpy(&peer, req->addr2, sizeof(peer));
	struct ipc_msg rep;
	memset(&rep, 0, sizeof(rep));
	rep.type = IPC_PASV_PORT;
	rep.id = req->id;
	rep.seq = req->seq;
	/* A worker waits only for its own sessions, and only for their own clients. */
	const struct conn_rec *r = rec_find(m, req->id);
	int rc = -EPERM;
	uint16_t port = 0;
	if (r != NULL && r->worker == slot && hostport_same_host(&r->addr, &peer))
		rc = pasv_broker_open(m->broker, slot, req->id, req->seq, &local, &peer,
				      req->port_min, req->port_max, &port);
	if (rc < 0)
		rep.err = -rc;
	rep.port = port;
	if (m->pasv_resolver != NULL) {
		struct sockaddr_in sin;
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr = resolver_address(m->pasv_resolver);
		memcpy(rep.addr2, &sin, sizeof(sin));
	}
	if (ipc_send(m->slots[slot].fd, &rep, -1) < 0) {
		log_warn("cannot answer the passive request of session %llu",
			 (unsigned long long)req->id);
		pasv_broker_close(m->broker, req->id, req->seq);
	}
}

static void deliver_data(void *ctx, unsigned worker, uint64_t session, uint32_t seq, int fd)
{
	struct master *m = ctx;
	struct ipc_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = IPC_DATA_CONN;
	msg.id = session;
	msg.seq = seq;
	if (m->slots[worker].pid == 0 || ipc_send(m->slots[worker].fd, &msg, fd) < 0)
		log_warn("cannot hand the data connection of session %llu to its worker",
			 (unsigned long long)session);
	close(fd);
}

/* A pasv_address that is a host name gets a resolver; a numeric one needs none. */
static bool is_host_name(const char *a)
{
	struct in_addr x;
	return a[0] != '\0' && inet_pton(AF_INET, a, &x) != 1;
}

/* ---- failed logins and sessions not logged in (throttle.h) ---- */

static uint64_t now_ms(void)
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
	uint64_t now = now_ms();
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

/* Have a session that has not logged in answered 421 and closed by its worker. */
static void close_unauth(struct master *m, struct conn_rec *r, int why)
{
	unauth_forget(m, r);
	struct ipc_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = IPC_CLOSE_UNAUTH;
	msg.id = r->id;
	msg.err = why;
	if (m->slots[r->worker].pid == 0 || ipc_send(m->slots[r->worker].fd, &msg, -1) < 0)
		log_warn("cannot have session %llu closed by its worker", (unsigned long long)r->id);
}

/* max_unauthenticated: a flood of idle connections must not keep new clients out. */
static void evict_unauth(struct master *m)
{
	while (m->n_unauth > m->cfg->max_unauthenticated) {
		struct conn_rec *r = TAILQ_FIRST(&m->unauth);
		char who[64];
		hostport_ntop(&r->addr, who, sizeof(who));
		log_warn("closing session %llu of %s: the longest waiting of %u sessions not "
			 "logged in (max_unauthenticated)",
			 (unsigned long long)r->id, who, m->n_unauth);
		close_unauth(m, r, EUSERS);
	}
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
		if (hostport_same_host(&c->addr, &addr))
			close_unauth(m, c, EACCES);
	}
}

/*
 * A worker reports a failed login of its session id.  The address is the master's own
 * record of the session; the answer is the delay before the 530.  A ban's closes go out
 * before that answer, so that the failing session gets its 421 and never a 530 first
 * (the worker ignores a delay for a session it is closing).
 */
static void login_failed(struct master *m, unsigned slot, uint64_t id)
{
	struct conn_rec *r = rec_find(m, id);
	if (r != NULL && r->worker != slot)
		r = NULL; /* not this worker's session: answer, but count nothing */
	struct throttle_policy p = throttle_policy_of(m->cfg);
	struct throttle_verdict v = { .failures = 1, .delay_ms = p.base_delay_ms };
	uint64_t now = now_ms();
	if (r != NULL) {
		throttle_failure(m->throttle, &p, &r->addr, now, &v);
		if (v.ban_started)
			ban_begins(m, &r->addr, &v, now, p.ban_time);
		else if (v.banned && r->unauth)
			close_unauth(m, r, EACCES); /* its check was in flight when the ban began */
		throttle_sweep(m);
	}
	struct ipc_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = IPC_LOGIN_DELAY;
	msg.id = id;
	msg.seq = v.delay_ms;
	if (ipc_send(m->slots[slot].fd, &msg, -1) < 0)
		log_warn("cannot answer the failed login of session %llu", (unsigned long long)id);
}

static void on_worker_msg(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;
	unsigned slot;
	for (slot = 0; slot < MAX_WORKER_SLOTS; slot++) {
		if (m->slots[slot].pid != 0 && m->slots[slot].fd == fd)
			break;
	}
	if (slot == MAX_WORKER_SLOTS)
		return;
	for (;;) {
		struct ipc_msg msg;
		int cfd;
		int rc = ipc_recv(fd, &msg, &cfd);
		if (cfd >= 0)
			close(cfd);
		if (rc == -EAGAIN)
			return;
		if (rc < 0) {
			/* The worker is exiting; SIGCHLD does the rest. */
			event_del(m->slots[slot].ev);
			return;
		}
		switch (msg.type) {
		case IPC_SESSION_END:
			/* A worker speaks only for its own sessions. */
			if (owned_by(m, msg.id, slot)) {
				pasv_broker_close(m->broker, msg.id, 0);
				rec_remove(m, msg.id);
			}
			break;
		case IPC_PASV_OPEN:
			answer_pasv(m, slot, &msg);
			break;
		case IPC_PASV_CLOSE:
			if (owned_by(m, msg.id, slot))
				pasv_broker_close(m->broker, msg.id, msg.seq);
			break;
		case IPC_LOGIN_FAILED:
			login_failed(m, slot, msg.id);
			break;
		case IPC_LOGIN_OK: {
			struct conn_rec *r = rec_find(m, msg.id);
			if (r != NULL && r->worker == slot)
				unauth_forget(m, r);
			break;
		}
		default:
			break;
		}
	}
}

static void on_respawn(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;
	if (!m->stopping)
		fill_workers(m);
}

static void reap_children(struct master *m)
{
	int status;
	pid_t pid;
	bool lost = false;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == m->port20_pid) {
			log_error("the port-20 helper exited; active connections will use other ports");
			m->port20_pid = 0;
			close(m->port20_ctl);
			m->port20_ctl = -1;
			continue;
		}
		for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
			struct worker_slot *w = &m->slots[i];
			if (w->pid != pid)
				continue;
			bool expected = w->draining || m->stopping;
			if (!expected || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				if (WIFSIGNALED(status))
					log_error("worker %u (pid %d) killed by signal %d (SIG%s%s); "
						  "its %u sessions are lost",
						  w->index, (int)pid, WTERMSIG(status),
						  sigabbrev_np(WTERMSIG(status)) != NULL
							  ? sigabbrev_np(WTERMSIG(status))
							  : "?",
						  WTERMSIG(status) == SIGSYS
							  ? ": a system call the sandbox forbids"
							  : "",
						  w->load);
				else
					log_error("worker %u (pid %d) exited with status %d",
						  w->index, (int)pid, WEXITSTATUS(status));
			}
			if (!expected)
				lost = true;
			free_slot(m, i);
		}
	}
	if (m->stopping) {
		if (live_workers(m, true) == 0)
			event_base_loopexit(m->base, NULL);
		return;
	}
	if (lost) {
		/* A worker that dies at once would otherwise be restarted in a tight loop. */
		struct timeval tv = { .tv_sec = 1, .tv_usec = 0 };
		evtimer_add(m->respawn_timer, &tv);
	}
}

static void send_all(struct master *m, enum ipc_type type, bool only_active)
{
	struct ipc_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = type;
	for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
		if (m->slots[i].pid != 0 && (!only_active || !m->slots[i].draining))
			ipc_send(m->slots[i].fd, &msg, -1);
	}
}

/* ---- accepting ---- */

static void reject(int fd, const char *reply)
{
	/* Best effort: the socket is fresh, so the reply fits its buffer. */
	ssize_t n = send(fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)n;
	close(fd);
}

static int pick_worker(const struct master *m)
{
	int best = -1;
	for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
		const struct worker_slot *w = &m->slots[i];
		if (w->pid == 0 || w->draining)
			continue;
		if (best < 0 || w->load < m->slots[best].load)
			best = (int)i;
	}
	return best;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct master *m = arg;
	struct sockaddr_storage peer;
	memset(&peer, 0, sizeof(peer));
	memcpy(&peer, sa, (size_t)salen < sizeof(peer) ? (size_t)salen : sizeof(peer));
	hostport_unmap(&peer);
	char who[64];
	hostport_ntop(&peer, who, sizeof(who));

	uint64_t now = now_ms(), until;
	if (throttle_banned(m->throttle, &peer, now, &until)) {
		/* An attacker may knock very often: a line a second, with a count. */
		if (now / 1000 != m->ban_log_sec) {
			char more[80] = "";
			if (m->ban_refused > 0)
				snprintf(more, sizeof(more), " (and %u refusals of banned addresses "
					 "not logged)", m->ban_refused);
			log_warn("refused %s: banned for %llu s more (failed logins)%s", who,
				 (unsigned long long)((until - now + 999) / 1000), more);
			m->ban_log_sec = now / 1000;
			m->ban_refused = 0;
		} else {
			m->ban_refused++;
		}
		reject(fd, "421 Too many failed logins from your address; try again later.\r\n");
		return;
	}
	if (m->total >= m->cfg->max_sessions) {
		log_warn("refused %s: %u sessions (max_sessions)", who, m->total);
		reject(fd, "421 Too many users; try again later.\r\n");
		return;
	}
	if (addr_sessions(m, &peer) >= m->cfg->max_sessions_per_ip) {
		log_warn("refused %s: too many sessions from this address (max_sessions_per_ip)",
			 who);
		reject(fd, "421 Too many connections from your address.\r\n");
		return;
	}
	int slot = pick_worker(m);
	struct ipc_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = IPC_NEW_SESSION;
	msg.id = ++m->next_id;
	for (unsigned i = 0; i < m->n_listeners; i++) {
		if (m->listeners[i] == l && m->implicit_tls[i])
			msg.flags |= IPC_F_IMPLICIT_TLS;
	}
	if (slot < 0 || ipc_send(m->slots[slot].fd, &msg, fd) < 0) {
		log_error("no worker to take %s", who);
		reject(fd, "421 Service not available; try again later.\r\n");
		return;
	}
	close(fd);
	if (rec_add(m, msg.id, (unsigned)slot, &peer) < 0)
		log_error("out of memory counting sessions");
	evict_unauth(m);
}

static int bind_listener(const struct sockaddr_storage *a)
{
	int fd = socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->ss_family == AF_INET6) {
		const struct in6_addr *ip = &((const struct sockaddr_in6 *)a)->sin6_addr;
		/* "[::]" takes IPv4 too; a specific IPv6 address only IPv6. */
		int v6only = IN6_IS_ADDR_UNSPECIFIED(ip) ? zero : one;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
	}
	if (bind(fd, (const struct sockaddr *)a, hostport_len(a)) < 0 || listen(fd, 511) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static int drop_privileges(const char *user)
{
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		log_error("user '%s' does not exist (set 'user' to an unprivileged account)", user);
		return -1;
	}
	if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0) {
		log_error("cannot drop privileges to '%s': %s", user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		log_error("privileges were not dropped");
		return -1;
	}
	log_info("running as user %s (uid %d)", user, (int)pw->pw_uid);
	return 0;
}

static void log_check(void *ctx, enum check_level level, const char *msg)
{
	if (level == CHECK_WARNING)
		log_warn("%s", msg);
	else
		log_info("%s", msg);
}

/* ---- signals ---- */

static void begin_stop(struct master *m)
{
	if (m->stopping)
		return;
	m->stopping = true;
	log_info("shutting down: no new sessions; transfers may run %u s",
		 m->cfg->shutdown_timeout);
	for (unsigned i = 0; i < m->n_listeners; i++) {
		evconnlistener_free(m->listeners[i]);
		m->listeners[i] = NULL;
	}
	send_all(m, IPC_SHUTDOWN, false);
	struct timeval tv = { .tv_sec = m->cfg->shutdown_timeout + 5, .tv_usec = 0 };
	evtimer_add(m->kill_timer, &tv);
	if (live_workers(m, true) == 0)
		event_base_loopexit(m->base, NULL);
}

static void on_kill_timer(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;
	for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
		if (m->slots[i].pid != 0)
			kill(m->slots[i].pid, SIGKILL);
	}
	event_base_loopexit(m->base, NULL);
}

static int open_root(const char *dir)
{
	return open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static bool same_listeners(const struct config *a, const struct config *b)
{
	if (a->n_listen != b->n_listen)
		return false;
	for (unsigned i = 0; i < a->n_listen; i++) {
		if (!hostport_same_host(&a->listen[i], &b->listen[i]) ||
		    hostport_get_port(&a->listen[i]) != hostport_get_port(&b->listen[i]))
			return false;
	}
	return true;
}

static void reload(struct master *m)
{
	struct config *n = calloc(1, sizeof(*n));
	bool check;
	if (n == NULL || config_load(n, m->argc, m->argv, &check, stderr) != 0) {
		log_error("reload failed: keeping the running configuration");
		free(n);
		return;
	}
	if (n->listen_default) {
		/* The default depends on the privileges at start-up, which a reload lacks. */
		memcpy(n->listen, m->cfg->listen, sizeof(n->listen));
		n->n_listen = m->cfg->n_listen;
	} else if (!same_listeners(m->cfg, n)) {
		log_warn("listen addresses changed: they take effect after a restart");
		memcpy(n->listen, m->cfg->listen, sizeof(n->listen));
		n->n_listen = m->cfg->n_listen;
	}
	if (n->n_listen_tls != m->cfg->n_listen_tls ||
	    memcmp(n->listen_tls, m->cfg->listen_tls, sizeof(n->listen_tls)) != 0)
		log_warn("listen_implicit_tls changed: it takes effect after a restart");
	memcpy(n->listen_tls, m->cfg->listen_tls, sizeof(n->listen_tls));
	n->n_listen_tls = m->cfg->n_listen_tls;
	if (strcmp(n->root, m->cfg->root) != 0) {
		int fd = n->root[0] != '\0' ? open_root(n->root) : -1;
		if (n->root[0] != '\0' && fd < 0) {
			log_error("reload failed: root %s: %s", n->root, strerror(errno));
			free(n);
			return;
		}
		if (m->root_fd >= 0)
			close(m->root_fd);
		m->root_fd = fd;
	}
	int ufd = -1;
	if (n->users_file[0] != '\0' && (ufd = users_snapshot(n->users_file)) < 0) {
		log_error("reload failed: users file %s: %s (it must be readable by user %s)",
			  n->users_file, strerror(-ufd), n->user);
		free(n);
		return;
	}
	struct resolver *res = m->pasv_resolver;
	bool same_name = res != NULL && strcmp(resolver_name(res), n->pasv_address) == 0 &&
			 n->pasv_address_refresh == m->cfg->pasv_address_refresh;
	if (is_host_name(n->pasv_address) && !same_name) {
		res = resolver_new(m->base, n->pasv_address, n->pasv_address_refresh);
		if (res == NULL) {
			log_error("reload failed: keeping the running configuration");
			if (ufd >= 0)
				close(ufd);
			free(n);
			return;
		}
	} else if (!is_host_name(n->pasv_address)) {
		res = NULL;
	}
	int tfd = -1;
	if (n->tls_cert[0] != '\0') {
		char err[512];
		if ((tfd = tls_files_load(n, err, sizeof(err))) < 0) {
			log_error("reload failed: %s (the TLS files must be readable by user %s)",
				  err, n->user);
			if (ufd >= 0)
				close(ufd);
			if (res != m->pasv_resolver)
				resolver_free(res);
			free(n);
			return;
		}
	}
	if (res != m->pasv_resolver) {
		resolver_free(m->pasv_resolver);
		m->pasv_resolver = res;
	}
	if (m->tls_fd >= 0)
		close(m->tls_fd);
	m->tls_fd = tfd;
	if (m->users_fd >= 0)
		close(m->users_fd);
	m->users_fd = ufd;
	free(m->cfg);
	m->cfg = n;
	/* Old workers finish their sessions with the old configuration; new ones get this. */
	send_all(m, IPC_DRAIN, true);
	for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
		if (m->slots[i].pid != 0)
			m->slots[i].draining = true;
	}
	fill_workers(m);
	log_info("configuration reloaded; new sessions use it");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct master *m = arg;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		begin_stop(m);
		break;
	case SIGHUP:
		if (!m->stopping)
			reload(m);
		break;
	case SIGCHLD:
		reap_children(m);
		break;
	}
}

int master_main(struct config *cfg, int argc, char **argv)
{
	struct master *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return 1;
	m->cfg = cfg;
	m->argc = argc;
	m->argv = argv;
	m->xferlog_fd = -1;
	m->root_fd = -1;
	m->users_fd = -1;
	m->tls_fd = -1;
	m->port20_ctl = -1;
	TAILQ_INIT(&m->unauth);
	log_set_role("master");
	signal(SIGPIPE, SIG_IGN);
	/* Before the privilege drop: the checks judge the privileges ferryd started with. */
	checks_run(cfg, log_check, NULL);

	for (unsigned i = 0; i < cfg->n_listen + cfg->n_listen_tls; i++) {
		bool tls = i >= cfg->n_listen;
		const struct sockaddr_storage *a = tls ? &cfg->listen_tls[i - cfg->n_listen]
						       : &cfg->listen[i];
		char who[64];
		hostport_ntop(a, who, sizeof(who));
		int fd = bind_listener(a);
		if (fd < 0) {
			log_error("cannot listen on %s port %u: %s", who, hostport_get_port(a),
				  strerror(-fd));
			return 1;
		}
		m->implicit_tls[m->n_listeners] = tls;
		m->listen_fds[m->n_listeners++] = fd;
		log_info("listening on %s port %u%s", who, hostport_get_port(a),
			 tls ? " (implicit TLS)" : "");
	}
	if (cfg->tls_cert[0] != '\0') {
		char err[512];
		if ((m->tls_fd = tls_files_load(cfg, err, sizeof(err))) < 0) {
			log_error("%s", err);
			return 1;
		}
	}
	if (cfg->xferlog[0] != '\0') {
		m->xferlog_fd = open(cfg->xferlog, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (m->xferlog_fd < 0) {
			log_error("xferlog %s: %s", cfg->xferlog, strerror(errno));
			return 1;
		}
	}
	/*
	 * Opened now, with the privileges we start with, so that the served directory may
	 * sit below directories the unprivileged user cannot traverse (such as /root).
	 */
	if (cfg->root[0] != '\0' && (m->root_fd = open_root(cfg->root)) < 0) {
		log_error("root %s: %s", cfg->root, strerror(errno));
		return 1;
	}
	if (cfg->users_file[0] != '\0' && (m->users_fd = users_snapshot(cfg->users_file)) < 0) {
		log_error("users file %s: %s", cfg->users_file, strerror(-m->users_fd));
		return 1;
	}
	/* Before the helper is forked and privileges are dropped: see sandbox.h. */
	if (sandbox_master() < 0)
		return 1;
	if (geteuid() == 0) {
		if (cfg->active_from_port_20) {
			m->port20_pid = port20_start(cfg->user, &m->port20_ctl);
			if (m->port20_pid < 0) {
				log_error("cannot start the port-20 helper: %s",
					  strerror((int)-m->port20_pid));
				return 1;
			}
		}
		if (drop_privileges(cfg->user) < 0)
			return 1;
	} else if (cfg->active_from_port_20) {
		log_warn("active_from_port_20 needs root at start-up; active data connections "
			 "will come from unprivileged ports");
	}

	m->base = event_base_new();
	if (m->base == NULL)
		return 1;
	for (unsigned i = 0; i < m->n_listeners; i++) {
		m->listeners[i] = evconnlistener_new(m->base, on_accept, m, LEV_OPT_CLOSE_ON_FREE,
						     -1, m->listen_fds[i]);
		if (m->listeners[i] == NULL)
			return 1;
	}
	static const int sigs[4] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	for (unsigned i = 0; i < 4; i++) {
		m->sig_ev[i] = evsignal_new(m->base, sigs[i], on_signal, m);
		if (m->sig_ev[i] == NULL || event_add(m->sig_ev[i], NULL) < 0)
			return 1;
	}
	m->broker = pasv_broker_new(m->base, deliver_data, m);
	if (m->broker == NULL)
		return 1;
	if (is_host_name(cfg->pasv_address) &&
	    (m->pasv_resolver = resolver_new(m->base, cfg->pasv_address,
					     cfg->pasv_address_refresh)) == NULL)
		return 1;
	m->kill_timer = evtimer_new(m->base, on_kill_timer, m);
	m->respawn_timer = evtimer_new(m->base, on_respawn, m);
	uint32_t seed;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint32_t)time(NULL) ^ (uint32_t)getpid();
	m->throttle = throttle_new(THROTTLE_CAP, seed, on_ban_ended, m);
	m->throttle_timer = evtimer_new(m->base, on_throttle_timer, m);
	if (m->throttle == NULL || m->throttle_timer == NULL)
		return 1;
	fill_workers(m);
	log_info("ready: %u workers", live_workers(m, false));

	event_base_dispatch(m->base);

	for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
		if (m->slots[i].pid != 0)
			free_slot(m, i);
	}
	for (unsigned i = 0; i < m->n_listeners; i++) {
		if (m->listeners[i] != NULL)
			evconnlistener_free(m->listeners[i]);
	}
	pasv_broker_free(m->broker);
	resolver_free(m->pasv_resolver);
	for (unsigned i = 0; i < 4; i++)
		event_free(m->sig_ev[i]);
	event_free(m->kill_timer);
	event_free(m->respawn_timer);
	event_free(m->throttle_timer);
	throttle_free(m->throttle);
	event_base_free(m->base);
	if (m->port20_pid > 0)
		kill(m->port20_pid, SIGTERM);
	if (m->xferlog_fd >= 0)
		close(m->xferlog_fd);
	if (m->root_fd >= 0)
		close(m->root_fd);
	if (m->users_fd >= 0)
		close(m->users_fd);
	if (m->tls_fd >= 0)
		close(m->tls_fd);
	log_info("stopped");
	free(m->cfg);
	free(m);
	return 0;
}
