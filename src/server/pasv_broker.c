/*
 * pasv_broker.c: passive listeners shared between sessions, in the master.  See
 * pasv_broker.h for the rules.
 *
 * Listeners are found by port (a small hash) and kept in a list whose order rotates, so
 * that waits spread over the listeners that exist before new ports are bound: binding
 * costs the kernel a walk over every socket on the port, TIME_WAIT ones included, and
 * an open listener costs nothing.  A listener's connections go to whoever waits on it;
 * the broker never reads a byte of them.
 */
#include "server/pasv_broker.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/hostport.h"
#include "server/log.h"

#define WAIT_BUCKETS 4096
#define PORT_BUCKETS 1024
/* A listener nobody waits on stays this long, for the next PASV to reuse. */
#define LINGER_SECONDS 10
#define BACKLOG 64
#define REFUSED_LOGS 10

struct pasv_listener;

struct pasv_wait {
	uint64_t session;
	uint32_t seq;
	unsigned worker;
	struct sockaddr_storage peer;
	struct pasv_listener *l;
	LIST_ENTRY(pasv_wait) on_listener;
	LIST_ENTRY(pasv_wait) by_session;
};

struct pasv_listener {
	struct pasv_broker *b;
	struct sockaddr_storage local; /* with the port */
	uint16_t port;
	int fd;
	struct event *ev;
	struct event *linger;
	LIST_HEAD(, pasv_wait) waits;
	TAILQ_ENTRY(pasv_listener) order;
	LIST_ENTRY(pasv_listener) same_port;
};

struct pasv_broker {
	struct event_base *base;
	pasv_deliver_fn *deliver;
	void *ctx;
	TAILQ_HEAD(, pasv_listener) order;
	LIST_HEAD(, pasv_listener) ports[PORT_BUCKETS];
	LIST_HEAD(, pasv_wait) sessions[WAIT_BUCKETS];
	time_t refused_second;  /* refusals are logged at most REFUSED_LOGS a second */
	unsigned refused_logged, refused_quiet;
	uint64_t foreign;        /* connections refused: nobody from there waits, in all */
};

static void listener_free(struct pasv_listener *l)
{
	struct pasv_broker *b = l->b;
	TAILQ_REMOVE(&b->order, l, order);
	LIST_REMOVE(l, same_port);
	if (l->ev != NULL)
		event_free(l->ev);
	if (l->linger != NULL)
		event_free(l->linger);
	close(l->fd);
	free(l);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
	struct pasv_listener *l = arg;
	if (LIST_EMPTY(&l->waits))
		listener_free(l);
}

static void wait_free(struct pasv_wait *w)
{
	struct pasv_listener *l = w->l;
	LIST_REMOVE(w, on_listener);
	LIST_REMOVE(w, by_session);
	free(w);
	if (LIST_EMPTY(&l->waits)) {
		struct timeval tv = { .tv_sec = LINGER_SECONDS, .tv_usec = 0 };
		evtimer_add(l->linger, &tv);
	}
}

static struct pasv_wait *wait_of_peer(struct pasv_listener *l, const struct sockaddr_storage *peer)
{
	struct pasv_wait *w;
	LIST_FOREACH(w, &l->waits, on_listener) {
		if (hostport_same_host(&w->peer, peer))
			return w;
	}
	return NULL;
}

/* A flood of strangers must not flood the log: a few lines a second, then a count. */
static void log_refused(struct pasv_broker *b, const struct sockaddr_storage *from, uint16_t port)
{
	b->foreign++;
	time_t now = time(NULL);
	if (now != b->refused_second) {
		if (b->refused_quiet > 0)
			log_warn("refused %u more data connections to passive ports without logging "
				 "each", b->refused_quiet);
		b->refused_second = now;
		b->refused_logged = b->refused_quiet = 0;
	}
	if (b->refused_logged >= REFUSED_LOGS) {
		b->refused_quiet++;
		return;
	}
	b->refused_logged++;
	char who[64];
	hostport_ntop(from, who, sizeof(who));
	log_warn("refused data connection from %s to passive port %u: no session from that "
		 "address is waiting on it", who, port);
}

/* Take every connection waiting in l's queue to whoever waits for it, or refuse it. */
static void accept_pending(struct pasv_listener *l)
{
	struct pasv_broker *b = l->b;
	int lfd = event_get_fd(l->ev);
	for (;;) {
		struct sockaddr_storage from;
		socklen_t len = sizeof(from);
		int fd = accept4(lfd, (struct sockaddr *)&from, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("accept on passive port %u: %s", l->port, strerror(errno));
			return;
		}
		hostport_unmap(&from);
		struct pasv_wait *w = wait_of_peer(l, &from);
		if (w == NULL) {
			/* Nobody from there waits here: a hijack attempt, or a client too late. */
			log_refused(b, &from, l->port);
			close(fd);
			continue;
		}
		unsigned worker = w->worker;
		uint64_t session = w->session;
		uint32_t seq = w->seq;
		wait_free(w); /* exactly one connection per PASV */
		b->deliver(b->ctx, worker, session, seq, fd);
	}
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	accept_pending(arg);
}

uint64_t pasv_broker_foreign(const struct pasv_broker *b)
{
	return b->foreign;
}

static unsigned session_bucket(uint64_t session)
{
	return (unsigned)(session % WAIT_BUCKETS);
}

static struct pasv_wait *wait_of_session(struct pasv_broker *b, uint64_t session)
{
	struct pasv_wait *w;
	LIST_FOREACH(w, &b->sessions[session_bucket(session)], by_session) {
		if (w->session == session)
			return w;
	}
	return NULL;
}

static struct pasv_listener *listener_at(struct pasv_broker *b, const struct sockaddr_storage *local,
					 uint16_t port)
{
	struct pasv_listener *l;
	LIST_FOREACH(l, &b->ports[port % PORT_BUCKETS], same_port) {
		if (l->port == port && hostport_same_host(&l->local, local))
			return l;
	}
	return NULL;
}

/* Bind and listen on local:port (0: the kernel picks).  Returns the fd or -errno. */
static int bind_listen(const struct sockaddr_storage *local, uint16_t port, uint16_t *bound)
{
	struct sockaddr_storage a = *local;
	hostport_set_port(&a, port);
	int fd = socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	/* Lets a port whose last connections are in TIME_WAIT be listened on again at once. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	socklen_t len = sizeof(a);
	if (bind(fd, (struct sockaddr *)&a, hostport_len(&a)) < 0 || listen(fd, BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	*bound = hostport_get_port(&a);
	return fd;
}

static struct pasv_listener *listener_new(struct pasv_broker *b, const struct sockaddr_storage *local,
					  uint16_t port, int *err)
{
	uint16_t bound = 0;
	int fd = bind_listen(local, port, &bound);
	if (fd < 0) {
		*err = fd;
		return NULL;
	}
	struct pasv_listener *l = calloc(1, sizeof(*l));
	if (l == NULL) {
		close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	l->b = b;
	l->local = *local;
	l->port = bound;
	hostport_set_port(&l->local, bound);
	l->fd = fd;
	LIST_INIT(&l->waits);
	l->ev = event_new(b->base, fd, EV_READ | EV_PERSIST, on_accept, l);
	l->linger = evtimer_new(b->base, on_linger, l);
	TAILQ_INSERT_TAIL(&b->order, l, order);
	LIST_INSERT_HEAD(&b->ports[bound % PORT_BUCKETS], l, same_port);
	if (l->ev == NULL || l->linger == NULL || event_add(l->ev, NULL) < 0) {
		listener_free(l);
		*err = -ENOMEM;
		return NULL;
	}
	return l;
}

static bool port_fits(uint16_t port, uint16_t min, uint16_t max)
{
	return min == 0 || (port >= min && port <= max);
}

/* An open listener on local, in the range, that nobody from peer waits on. */
static struct pasv_listener *reuse_listener(struct pasv_broker *b, const struct sockaddr_storage *local,
					    const struct sockaddr_storage *peer, uint16_t min,
					    uint16_t max)
{
	struct pasv_listener *l;
	TAILQ_FOREACH(l, &b->order, order) {
		if (port_fits(l->port, min, max) && hostport_same_host(&l->local, local) &&
		    wait_of_peer(l, peer) == NULL)
			return l;
	}
	return NULL;
}

/*
 * A new listener on a free port of the range, starting at a random point so that
 * concurrent requests spread; a busy port (bind or listen failing) is skipped.
 */
static struct pasv_listener *fresh_listener(struct pasv_broker *b, const struct sockaddr_storage *local,
					    uint16_t min, uint16_t max, int *err)
{
	if (min == 0)
		return listener_new(b, local, 0, err);
	unsigned span = (unsigned)max - min + 1;
	unsigned start = 0;
	if (getrandom(&start, sizeof(start), GRND_NONBLOCK) != sizeof(start))
		start = (unsigned)time(NULL);
	*err = -EADDRINUSE;
	for (unsigned i = 0; i < span; i++) {
		uint16_t port = (uint16_t)(min + (start + i) % span);
		if (listener_at(b, local, port) != NULL)
			continue; /* ours, and taken by this peer (reuse_listener said so) */
		struct pasv_listener *l = listener_new(b, local, port, err);
		if (l != NULL)
			return l;
		if (*err != -EADDRINUSE && *err != -EACCES)
			return NULL; /* not a busy port: another port will not do better */
	}
	*err = -EADDRINUSE;
	return NULL;
}

int pasv_broker_open(struct pasv_broker *b, unsigned worker, uint64_t session, uint32_t seq,
		     const struct sockaddr_storage *local, const struct sockaddr_storage *peer,
		     uint16_t min, uint16_t max, uint16_t *port)
{
	if ((local->ss_family != AF_INET && local->ss_family != AF_INET6) ||
	    local->ss_family != peer->ss_family || min > max)
		return -EINVAL;
	pasv_broker_close(b, session, 0);
	int err = 0;
	struct pasv_listener *l = reuse_listener(b, local, peer, min, max);
	/*
	 * A reused port may hold, not yet accepted, a connection this peer made for its
	 * previous PASV there (one it gave up on: its command failed first).  It must not be
	 * taken for the answer to this PASV, whose reply is not even out: settle the queue
	 * before this wait exists.
	 */
	if (l != NULL)
		accept_pending(l);
	if (l == NULL && (l = fresh_listener(b, local, min, max, &err)) == NULL)
		return err;
	struct pasv_wait *w = calloc(1, sizeof(*w));
	if (w == NULL) {
		if (LIST_EMPTY(&l->waits)) {
			struct timeval tv = { .tv_sec = LINGER_SECONDS, .tv_usec = 0 };
			evtimer_add(l->linger, &tv);
		}
		return -ENOMEM;
	}
	w->session = session;
	w->seq = seq;
	w->worker = worker;
	w->peer = *peer;
	w->l = l;
	evtimer_del(l->linger);
	LIST_INSERT_HEAD(&l->waits, w, on_listener);
	LIST_INSERT_HEAD(&b->sessions[session_bucket(session)], w, by_session);
	/* The next request tries the other listeners first. */
	TAILQ_REMOVE(&b->order, l, order);
	TAILQ_INSERT_TAIL(&b->order, l, order);
	*port = l->port;
	return 0;
}

void pasv_broker_close(struct pasv_broker *b, uint64_t session, uint32_t seq)
{
	struct pasv_wait *w = wait_of_session(b, session);
	if (w != NULL && (seq == 0 || w->seq == seq))
		wait_free(w);
}

void pasv_broker_forget_worker(struct pasv_broker *b, unsigned worker)
{
	for (unsigned i = 0; i < WAIT_BUCKETS; i++) {
		struct pasv_wait *w = LIST_FIRST(&b->sessions[i]);
		while (w != NULL) {
			struct pasv_wait *next = LIST_NEXT(w, by_session);
			if (w->worker == worker)
				wait_free(w);
			w = next;
		}
	}
}

struct pasv_broker *pasv_broker_new(struct event_base *base, pasv_deliver_fn *deliver, void *ctx)
{
	struct pasv_broker *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->base = base;
	b->deliver = deliver;
	b->ctx = ctx;
	TAILQ_INIT(&b->order);
	return b;
}

void pasv_broker_free(struct pasv_broker *b)
{
	if (b == NULL)
		return;
	for (unsigned i = 0; i < WAIT_BUCKETS; i++) {
		struct pasv_wait *w;
		while ((w = LIST_FIRST(&b->sessions[i])) != NULL) {
			LIST_REMOVE(w, on_listener);
			LIST_REMOVE(w, by_session);
			free(w);
		}
	}
	struct pasv_listener *l;
	while ((l = TAILQ_FIRST(&b->order)) != NULL)
		listener_free(l);
	free(b);
}
