/*
 * data.c: passive listeners and active connects.  See data.h for the rules.
 */
#include "server/data.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/buf.h"
#include "common/hostport.h"
#include "common/reply.h"
#include "server/channel.h"
#include "server/log.h"
#include "server/pasv_address.h"
#include "server/port20.h"
#include "server/session.h"
#include "server/worker.h"

enum data_mode { DATA_PASSIVE, DATA_ACTIVE };

struct data_chan {
	struct session *s;
	enum data_mode mode;
	bool extended;          /* passive: EPSV (229) rather than PASV (227) */
	bool asking;            /* passive: the master has not answered yet */
	bool waiting;           /* passive: the master waits for the connection for us */
	uint32_t seq;           /* passive: our request to the master */
	uint16_t port;          /* passive: the port the client was told */
	int conn_fd;            /* the connection, once made */
	int connect_fd;         /* active: the socket while it connects */
	struct sockaddr_storage target; /* active: where to connect */
	struct event *ev;       /* active: connect readiness */
	struct event *timer;    /* data_timeout */
	data_ready_fn *ready;   /* a transfer waiting for the connection */
};

/* Tell the master we wait no more (it may have matched a connection meanwhile: fine). */
static void stop_waiting(struct data_chan *d)
{
	if (!d->asking && !d->waiting)
		return;
	struct msg_pasv_ref m = { .id = d->s->id, .seq = d->seq };
	if (d->s->srv->master != NULL)
		send_PASV_CLOSE(d->s->srv->master, &m, -1);
	d->asking = d->waiting = false;
}

void data_free(struct session *s)
{
	struct data_chan *d = s->data;
	if (d == NULL)
		return;
	stop_waiting(d);
	if (d->ev != NULL)
		event_free(d->ev);
	if (d->connect_fd >= 0)
		close(d->connect_fd);
	if (d->conn_fd >= 0)
		close(d->conn_fd);
	if (d->timer != NULL)
		event_free(d->timer);
	free(d);
	s->data = NULL;
}

bool data_prepared(const struct session *s)
{
	const struct data_chan *d = s->data;
	return d != NULL && (d->mode == DATA_ACTIVE || d->waiting || d->conn_fd >= 0);
}

bool data_is_passive(const struct session *s)
{
	return s->data != NULL && s->data->mode == DATA_PASSIVE;
}

bool data_waiting_for_master(const struct session *s)
{
	return s->data != NULL && s->data->asking;
}

/*
 * A data connection that cannot be made is what firewalls cause: log which one, so the
 * administrator sees the channel that is missing.
 */
static void log_failure(const struct data_chan *d, const char *why)
{
	const struct session *s = d->s;
	if (d->mode == DATA_PASSIVE) {
		log_warn_limited(&s->srv->rl_data_failed,
				 "session %llu: no data connection from %s to passive port %u: %s",
				 (unsigned long long)s->id, s->peer_str, d->port, why);
		return;
	}
	char who[64];
	hostport_ntop(&d->target, who, sizeof(who));
	log_warn_limited(&s->srv->rl_data_failed,
			 "session %llu: active data connection to %s port %u failed: %s",
			 (unsigned long long)s->id, who, hostport_get_port(&d->target), why);
}

/* Hand the connection (or the failure) to the waiting transfer; the channel is spent. */
static void deliver(struct data_chan *d, const char *why)
{
	struct session *s = d->s;
	if (why != NULL)
		log_failure(d, why);
	data_ready_fn *ready = d->ready;
	int fd = d->conn_fd;
	d->conn_fd = -1;
	d->ready = NULL;
	data_free(s);
	ready(s, fd, why);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct data_chan *d = arg;
	struct session *s = d->s;
	if (d->asking) {
		log_warn("session %llu: no answer from the master to PASV/EPSV",
			 (unsigned long long)s->id);
		data_free(s);
		session_reply(s, R_425_CANT_OPEN_DATA, "Cannot open a passive port; try again later.");
		session_resume(s);
		return;
	}
	if (d->ready != NULL) {
		deliver(d, "timed out waiting for the data connection");
		return;
	}
	/* Nobody waits: stop waiting too.  A later transfer will ask for PASV again. */
	if (d->waiting)
		log_info("session %llu: no transfer command and no connection from %s to passive "
			 "port %u within %u s; no longer waiting", (unsigned long long)s->id,
			 s->peer_str, d->port, s->srv->cfg->data_timeout);
	stop_waiting(d);
}

static struct data_chan *chan_new(struct session *s, enum data_mode mode)
{
	data_free(s);
	struct data_chan *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->s = s;
	d->mode = mode;
	d->conn_fd = -1;
	d->connect_fd = -1;
	d->timer = evtimer_new(s->srv->base, on_timeout, d);
	if (d->timer == NULL) {
		free(d);
		return NULL;
	}
	s->data = d;
	return d;
}

static void arm_timer(struct data_chan *d)
{
	struct timeval tv = { .tv_sec = d->s->srv->cfg->data_timeout, .tv_usec = 0 };
	evtimer_add(d->timer, &tv);
}

/*
 * PASV and EPSV ask the master, which owns the passive listeners (pasv_broker.c), and the
 * session waits for the answer (data_passive_answer) before it reads another command.
 */
void data_passive(struct session *s, bool extended)
{
	if (!extended && s->local.family != AF_INET) {
		session_reply(s, R_425_CANT_OPEN_DATA,
			      "PASV works with IPv4 only; use EPSV on IPv6.");
		return;
	}
	struct data_chan *d = chan_new(s, DATA_PASSIVE);
	if (d == NULL) {
		session_reply(s, R_425_CANT_OPEN_DATA, "Out of memory.");
		return;
	}
	const struct config *cfg = s->srv->cfg;
	d->extended = extended;
	d->seq = ++s->srv->pasv_seq;
	struct msg_pasv_open m;
	memset(&m, 0, sizeof(m));
	m.id = s->id;
	m.seq = d->seq;
	m.port_min = cfg->pasv_ports.min;
	m.port_max = cfg->pasv_ports.max;
	m.local = session_local(s);
	m.peer = session_peer(s);
	int rc = s->srv->master != NULL ? send_PASV_OPEN(s->srv->master, &m, -1) : -EPIPE;
	if (rc < 0) {
		log_warn("session %llu: cannot ask the master for a passive port: %s",
			 (unsigned long long)s->id,
			 rc == -ENOBUFS ? "its queue is full" : strerror(-rc));
		data_free(s);
		session_reply(s, R_425_CANT_OPEN_DATA, "Cannot open a passive port; try again later.");
		return;
	}
	d->asking = true;
	arm_timer(d);
}

static void reply_passive(struct session *s, struct data_chan *d, const struct in_addr *resolved)
{
	struct buf b;
	buf_init(&b, 256);
	int rc;
	if (d->extended) {
		rc = hostport_format_epsv(&b, d->port);
	} else {
		struct sockaddr_storage peer = session_peer(s), local = session_local(s);
		struct in_addr addr = pasv_announce(s->srv->cfg, &peer, &local, resolved);
		rc = hostport_format_pasv(&b, &addr, d->port);
	}
	if (rc < 0) {
		data_free(s);
		session_reply(s, R_425_CANT_OPEN_DATA, "Cannot describe the data port.");
	} else {
		session_reply(s, d->extended ? R_229_EXTENDED_PASSIVE : R_227_PASSIVE, b.data);
	}
	buf_free(&b);
}

void data_passive_answer(struct session *s, const struct msg_pasv_port *m)
{
	struct data_chan *d = s->data;
	if (d == NULL || !d->asking || d->seq != m->seq)
		return; /* for a PASV since replaced; the master forgets it with our CLOSE */
	d->asking = false;
	if (m->err != 0) {
		const struct config *cfg = s->srv->cfg;
		log_warn_limited(&s->srv->rl_no_port,
				 "session %llu: no passive port available in %u-%u for %s: %s",
				 (unsigned long long)s->id, cfg->pasv_ports.min,
				 cfg->pasv_ports.min ? cfg->pasv_ports.max : 65535, s->peer_str,
				 strerror(m->err));
		data_free(s);
		session_reply(s, R_425_CANT_OPEN_DATA, "No passive port available; try again later.");
		session_resume(s);
		return;
	}
	d->waiting = true;
	d->port = m->port;
	struct sockaddr_in resolved;
	memcpy(&resolved, &m->resolved, sizeof(resolved));
	reply_passive(s, d, resolved.sin_family == AF_INET ? &resolved.sin_addr : NULL);
	arm_timer(d);
	session_resume(s);
}

void data_passive_connected(struct session *s, const struct msg_pasv_ref *m, int fd)
{
	struct data_chan *d = s->data;
	if (d == NULL || !d->waiting || d->seq != m->seq || d->conn_fd >= 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (fd < 0) {
		/* The connection came, but this worker had no descriptor left to take it. */
		d->waiting = false;
		if (d->ready != NULL) {
			deliver(d, strerror(-fd));
		} else {
			log_warn("session %llu: passive data connection lost: %s",
				 (unsigned long long)s->id, strerror(-fd));
			data_free(s);
		}
		return;
	}
	d->waiting = false; /* exactly one connection per PASV: the master forgot us */
	d->conn_fd = fd;
	if (d->ready != NULL)
		deliver(d, NULL);
}

static bool is_unspecified(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
	return false;
}

void data_active(struct session *s, const struct sockaddr_storage *target)
{
	struct sockaddr_storage t = *target, peer = session_peer(s);
	hostport_unmap(&t);
	if (is_unspecified(&t) && t.ss_family == peer.ss_family) {
		/* lftp sends "EPRT |2|::|port|": the unspecified address means the client itself. */
		uint16_t port = hostport_get_port(&t);
		t = peer;
		hostport_set_port(&t, port);
	}
	/* FTP bounce protection (RFC 2577): only the client itself, only unprivileged ports. */
	if (!hostport_same_host(&t, &peer)) {
		char who[64];
		hostport_ntop(&t, who, sizeof(who));
		log_warn_limited(&s->srv->rl_port_refused,
				 "session %llu: refused PORT/EPRT to %s (control connection is from %s)",
				 (unsigned long long)s->id, who, s->peer_str);
		session_reply(s, R_500_SYNTAX_ERROR,
			      "Illegal PORT command: the address must be your own.");
		return;
	}
	if (hostport_get_port(&t) < 1024) {
		session_reply(s, R_500_SYNTAX_ERROR, "Illegal PORT command: port must be >= 1024.");
		return;
	}
	struct data_chan *d = chan_new(s, DATA_ACTIVE);
	if (d == NULL) {
		session_reply(s, R_425_CANT_OPEN_DATA, "Out of memory.");
		return;
	}
	d->target = t;
	session_reply(s, R_200_OK, "PORT command successful. Consider using PASV.");
}

static void on_connected(evutil_socket_t fd, short what, void *arg)
{
	struct data_chan *d = arg;
	if (what & EV_TIMEOUT) {
		deliver(d, "timed out connecting to the client");
		return;
	}
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		char why[128];
		snprintf(why, sizeof(why), "cannot connect to the client: %s", strerror(err));
		deliver(d, why);
		return;
	}
	d->conn_fd = d->connect_fd;
	d->connect_fd = -1;
	event_free(d->ev);
	d->ev = NULL;
	deliver(d, NULL);
}

/* A socket bound to from (port included), set up to share the port with other
 * connections to other clients.  Returns the fd or -errno. */
static int bound_socket(const struct sockaddr_storage *from)
{
	int fd = socket(from->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	if (hostport_get_port(from) != 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)from, hostport_len(from)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* Start connecting fd to the target: 0, or -errno (EADDRNOTAVAIL: that source port is
 * already connected to that very client port, pick another). */
static int start_connect(int fd, const struct sockaddr_storage *target)
{
	if (connect(fd, (const struct sockaddr *)target, hostport_len(target)) < 0 &&
	    errno != EINPROGRESS)
		return -errno;
	return 0;
}

/*
 * A connecting socket: from port 20 through the helper, else from active_ports (a random
 * start, busy ports skipped), else from any port of the control connection's local
 * address.  Returns the fd or -errno; on failure *why says what went wrong.
 */
static int active_connect(struct session *s, const struct data_chan *d, const char **why)
{
	const struct config *cfg = s->srv->cfg;
	struct sockaddr_storage from = session_local(s);
	*why = "cannot create the data socket";
	if (from.ss_family != d->target.ss_family)
		return -EAFNOSUPPORT;
	if (cfg->active_from_port_20 && s->srv->port20_fd >= 0) {
		int fd = port20_request(s->srv->port20_fd, &from);
		if (fd >= 0) {
			int fl = fcntl(fd, F_GETFL);
			int rc = fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
			if (rc == 0)
				rc = start_connect(fd, &d->target);
			if (rc == 0)
				return fd;
			close(fd);
			*why = "cannot connect to the client";
			return rc;
		}
		log_warn_limited(&s->srv->rl_no_port,
				 "session %llu: port 20 unavailable (%s); connecting from another port",
				 (unsigned long long)s->id, strerror(-fd));
	}
	if (cfg->active_ports.min == 0) {
		hostport_set_port(&from, 0);
		int fd = bound_socket(&from);
		if (fd < 0)
			return fd;
		int rc = start_connect(fd, &d->target);
		if (rc < 0) {
			close(fd);
			*why = "cannot connect to the client";
			return rc;
		}
		return fd;
	}
	unsigned span = (unsigned)cfg->active_ports.max - cfg->active_ports.min + 1;
	unsigned start = 0;
	if (getrandom(&start, sizeof(start), GRND_NONBLOCK) != sizeof(start))
		start = (unsigned)s->id * 7919u;
	int last = -EADDRINUSE;
	for (unsigned i = 0; i < span; i++) {
		hostport_set_port(&from, (uint16_t)(cfg->active_ports.min + (start + i) % span));
		int fd = bound_socket(&from);
		int rc = fd < 0 ? fd : start_connect(fd, &d->target);
		if (rc == 0)
			return fd;
		if (fd >= 0)
			close(fd);
		last = rc;
		if (rc != -EADDRINUSE && rc != -EADDRNOTAVAIL) {
			*why = fd < 0 ? "cannot create the data socket" : "cannot connect to the client";
			return rc;
		}
	}
	log_warn_limited(&s->srv->rl_no_port,
			 "session %llu: no source port free in active_ports %u-%u",
			 (unsigned long long)s->id, cfg->active_ports.min, cfg->active_ports.max);
	*why = "no source port free for the data connection";
	return last;
}

static void connect_active(struct data_chan *d)
{
	struct session *s = d->s;
	const char *what;
	int fd = active_connect(s, d, &what);
	if (fd < 0) {
		char why[160];
		snprintf(why, sizeof(why), "%s: %s", what, strerror(-fd));
		deliver(d, why);
		return;
	}
	d->connect_fd = fd;
	d->ev = event_new(s->srv->base, fd, EV_WRITE, on_connected, d);
	struct timeval tv = { .tv_sec = s->srv->cfg->data_timeout, .tv_usec = 0 };
	if (d->ev == NULL || event_add(d->ev, &tv) < 0)
		deliver(d, "cannot wait for the data connection");
}

void data_connect(struct session *s, data_ready_fn *ready)
{
	struct data_chan *d = s->data;
	if (d == NULL) {
		ready(s, -1, "use PORT, EPRT, PASV or EPSV first");
		return;
	}
	d->ready = ready;
	if (d->mode == DATA_ACTIVE) {
		connect_active(d);
		return;
	}
	if (d->conn_fd >= 0) {
		deliver(d, NULL);
		return;
	}
	if (!d->waiting) {
		deliver(d, "the passive port timed out; send PASV or EPSV again");
		return;
	}
	/* Wait for the client, giving it a full data_timeout from the transfer command. */
	arm_timer(d);
}
