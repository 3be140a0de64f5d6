/*
 * master_accept.c: the listeners, and every new control connection.
 *
 * The master accepts every connection itself, so that the global limits (sessions in all,
 * sessions per client address, banned addresses) are decided in one place, then hands it
 * to the least loaded worker.  Refusals are a 421 and a log line, rate-limited: a client
 * that knocks thousands of times a second must not fill the disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/hostport.h"
#include "server/master_int.h"
#include "server/throttle.h"

static void reject(int fd, const char *reply)
{
	/* Best effort: the socket is fresh, so the reply fits its buffer. */
	ssize_t n = send(fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)n;
	close(fd);
}

/*
 * The limits that depend on what the workers have told us.  A session that has just ended
 * may have said so in a message still unread while the client's new connection is here:
 * read the workers' news before refusing anyone for these.
 */
static const char *over_limits(struct master *m, const struct sockaddr_storage *peer)
{
	if (m->total >= m->cfg->max_sessions)
		return "421 Too many users; try again later.\r\n";
	if (addr_sessions(m, peer) >= m->cfg->max_sessions_per_ip)
		return "421 Too many connections from your address.\r\n";
	return NULL;
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

	uint64_t now = master_now_ms(), until;
	if (throttle_banned(m->throttle, &peer, now, &until)) {
		log_warn_limited(&m->log_banned, "refused %s: banned for %llu s more (failed logins)",
				 who, (unsigned long long)((until - now + 999) / 1000));
		reject(fd, "421 Too many failed logins from your address; try again later.\r\n");
		return;
	}
	const char *refusal = over_limits(m, &peer);
	if (refusal != NULL) {
		poll_workers(m);
		refusal = over_limits(m, &peer);
	}
	if (refusal != NULL) {
		/* Counts that refuse someone are worth checking against the workers' own. */
		request_sync(m);
		if (m->total >= m->cfg->max_sessions)
			log_warn_limited(&m->log_full, "refused %s: %u sessions (max_sessions)", who,
					 m->total);
		else
			log_warn_limited(&m->log_per_ip,
					 "refused %s: too many sessions from this address "
					 "(max_sessions_per_ip)",
					 who);
		reject(fd, refusal);
		return;
	}
	struct msg_new_session msg = { .id = ++m->next_id, .flags = 0 };
	for (unsigned i = 0; i < m->n_listeners; i++) {
		if (m->listeners[i] == l && m->implicit_tls[i])
			msg.flags |= MSG_F_IMPLICIT_TLS;
	}
	/* pick_worker() skips workers that lag (queue at its soft limit) or are ending. */
	int slot = pick_worker(m);
	if (slot < 0) {
		if (m->total >= m->worker_capacity * live_workers(m, false) &&
		    live_workers(m, false) > 0) {
			log_warn_limited(&m->log_emfile,
					 "refused %s: every worker holds the %u sessions its "
					 "descriptor limit allows (raise LimitNOFILE)",
					 who, m->worker_capacity);
			reject(fd, "421 Server out of resources; try again later.\r\n");
			return;
		}
		log_warn_limited(&m->log_no_worker, "no worker to take %s: %s", who,
				 live_workers(m, false) > 0 ? "every worker lags behind"
							    : "none running");
		reject(fd, "421 Service not available; try again later.\r\n");
		return;
	}
	int rc = send_NEW_SESSION(m->slots[slot].ch, &msg, fd); /* fd is the channel's now */
	if (rc < 0) {
		log_warn_limited(&m->log_no_worker, "could not hand %s to worker %u: %s", who,
				 m->slots[slot].index, strerror(-rc));
		return;
	}
	if ((rc = rec_add(m, msg.id, (unsigned)slot, &peer)) < 0)
		log_error("cannot count session %llu: %s", (unsigned long long)msg.id,
			  strerror(-rc));
	evict_unauth(m);
}

/*
 * Out of descriptors (EMFILE/ENFILE): the connection waits in the backlog and the
 * listener would fire again at once.  The reserve descriptor is given up for a moment to
 * accept it and answer 421, so clients learn why while existing sessions go on.
 */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct master *m = arg;
	int err = EVUTIL_SOCKET_ERROR();
	if (err != EMFILE && err != ENFILE) {
		log_warn_limited(&m->log_emfile, "accept: %s", strerror(err));
		return;
	}
	/*
	 * One connection a time: the listener fires again at once, and libevent's next
	 * accept tells whether descriptors are still short.  Refusing the whole backlog here
	 * would also refuse clients that came after descriptors were freed.
	 */
	unsigned refused = 0;
	if (m->reserve_fd >= 0) {
		close(m->reserve_fd);
		m->reserve_fd = -1;
	}
	int fd = accept4(evconnlistener_get_fd(l), NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd >= 0) {
		reject(fd, "421 Server out of resources; try again later.\r\n");
		refused++;
	}
	m->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	log_warn_limited(&m->log_emfile,
			 "out of descriptors (%s): refused %u connections with 421; raise the "
			 "descriptor limit (LimitNOFILE) or lower max_sessions",
			 strerror(err), refused);
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

int master_listen(struct master *m)
{
	const struct config *cfg = m->cfg;
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
			return -1;
		}
		m->implicit_tls[m->n_listeners] = tls;
		m->listen_fds[m->n_listeners++] = fd;
		log_info("listening on %s port %u%s", who, hostport_get_port(a),
			 tls ? " (implicit TLS)" : "");
	}
	return 0;
}

int master_accept_start(struct master *m)
{
	m->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (unsigned i = 0; i < m->n_listeners; i++) {
		m->listeners[i] = evconnlistener_new(m->base, on_accept, m, LEV_OPT_CLOSE_ON_FREE,
						     -1, m->listen_fds[i]);
		if (m->listeners[i] == NULL)
			return -1;
		evconnlistener_set_error_cb(m->listeners[i], on_accept_error);
	}
	return 0;
}

void master_accept_stop(struct master *m)
{
	for (unsigned i = 0; i < m->n_listeners; i++) {
		if (m->listeners[i] != NULL)
			evconnlistener_free(m->listeners[i]);
		m->listeners[i] = NULL;
	}
	if (m->reserve_fd >= 0)
		close(m->reserve_fd);
	m->reserve_fd = -1;
}
