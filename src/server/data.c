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
#include "server/log.h"
#include "server/port20.h"
#include "server/session.h"

enum data_mode { DATA_PASSIVE, DATA_ACTIVE };

struct data_chan {
	struct session *s;
	enum data_mode mode;
	int listen_fd;          /* passive: the listener until its one connection arrives */
	int conn_fd;            /* the connection, once made */
	uint16_t port;          /* passive: the listening port */
	struct sockaddr_storage target; /* active: where to connect */
	struct event *ev;       /* accept or connect readiness */
	struct event *timer;    /* data_timeout */
	data_ready_fn *ready;   /* a transfer waiting for the connection */
};

static void chan_close_fds(struct data_chan *d)
{
	if (d->ev != NULL) {
		event_free(d->ev);
		d->ev = NULL;
	}
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		d->listen_fd = -1;
	}
}

void data_free(struct session *s)
{
	struct data_chan *d = s->data;
	if (d == NULL)
		return;
	chan_close_fds(d);
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
	return d != NULL && (d->mode == DATA_ACTIVE || d->listen_fd >= 0 || d->conn_fd >= 0);
}

bool data_is_passive(const struct session *s)
{
	return s->data != NULL && s->data->mode == DATA_PASSIVE;
}

/* Hand the connection (or the failure) to the waiting transfer; the channel is spent. */
static void deliver(struct data_chan *d, const char *why)
{
	struct session *s = d->s;
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
	if (d->ready != NULL) {
		deliver(d, "timed out waiting for the data connection");
		return;
	}
	/* Nobody waits: just stop listening.  A later transfer will ask for PASV again. */
	chan_close_fds(d);
}

static struct data_chan *chan_new(struct session *s, enum data_mode mode)
{
	data_free(s);
	struct data_chan *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->s = s;
	d->mode = mode;
	d->listen_fd = -1;
	d->conn_fd = -1;
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

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct data_chan *d = arg;
	struct session *s = d->s;
	for (;;) {
		struct sockaddr_storage from;
		socklen_t len = sizeof(from);
		int fd = accept4(lfd, (struct sockaddr *)&from, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("session %llu: accept on passive port %u: %s",
					 (unsigned long long)s->id, d->port, strerror(errno));
			return;
		}
		hostport_unmap(&from);
		if (!hostport_same_host(&from, &s->peer)) {
			/* Someone else raced for the port: the classic passive-mode hijack. */
			char who[64];
			hostport_ntop(&from, who, sizeof(who));
			log_warn("session %llu: refused data connection from %s to passive port %u "
				 "(control connection is from %s)",
				 (unsigned long long)s->id, who, d->port, s->peer_str);
			close(fd);
			continue;
		}
		d->conn_fd = fd;
		chan_close_fds(d); /* exactly one connection per PASV */
		if (d->ready != NULL)
			deliver(d, NULL);
		return;
	}
}

/* Bind and listen on addr with the given port (0: any).  Returns the fd or -errno. */
static int try_listen(const struct sockaddr_storage *addr, uint16_t port)
{
	struct sockaddr_storage a = *addr;
	hostport_set_port(&a, port);
	int fd = socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	/* Lets a port whose last connection is in TIME_WAIT be listened on again at once. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, hostport_len(&a)) < 0 || listen(fd, 1) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/*
 * A listener on a port of the range, starting at a random point so that concurrent
 * sessions spread over it; a busy port (bind or listen failing) is skipped.
 */
static int open_listener(struct session *s, uint16_t *port_out)
{
	const struct config *cfg = s->srv->cfg;
	if (cfg->pasv_ports.min == 0) {
		int fd = try_listen(&s->local, 0);
		if (fd < 0)
			return fd;
		struct sockaddr_storage a;
		socklen_t len = sizeof(a);
		if (getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		*port_out = hostport_get_port(&a);
		return fd;
	}
	unsigned span = (unsigned)cfg->pasv_ports.max - cfg->pasv_ports.min + 1;
	unsigned start = 0;
	if (getrandom(&start, sizeof(start), GRND_NONBLOCK) != sizeof(start))
		start = (unsigned)s->id * 7919u;
	int last = -EADDRINUSE;
	for (unsigned i = 0; i < span; i++) {
		uint16_t port = (uint16_t)(cfg->pasv_ports.min + (start + i) % span);
		int fd = try_listen(&s->local, port);
		if (fd >= 0) {
			*port_out = port;
			return fd;
		}
		last = fd;
		if (fd != -EADDRINUSE && fd != -EACCES)
			break; /* not a busy port: another port will not do better */
	}
	return last;
}

void data_passive(struct session *s, bool extended)
{
	if (!extended && s->local.ss_family != AF_INET) {
		session_reply(s, R_425_CANT_OPEN_DATA,
			      "PASV works with IPv4 only; use EPSV on IPv6.");
		return;
	}
	struct data_chan *d = chan_new(s, DATA_PASSIVE);
	if (d == NULL) {
		session_reply(s, R_425_CANT_OPEN_DATA, "Out of memory.");
		return;
	}
	int fd = open_listener(s, &d->port);
	if (fd < 0) {
		log_warn("session %llu: no passive port available in %u-%u: %s",
			 (unsigned long long)s->id, s->srv->cfg->pasv_ports.min, s->srv->cfg->pasv_ports.max,
			 strerror(-fd));
		data_free(s);
		session_reply(s, R_425_CANT_OPEN_DATA, "No passive port available; try again later.");
		return;
	}
	d->listen_fd = fd;
	d->ev = event_new(s->srv->base, fd, EV_READ | EV_PERSIST, on_accept, d);
	if (d->ev == NULL || event_add(d->ev, NULL) < 0) {
		data_free(s);
		session_reply(s, R_425_CANT_OPEN_DATA, "Cannot listen for the data connection.");
		return;
	}
	arm_timer(d);

	struct buf b;
	buf_init(&b, 256);
	int rc;
	if (extended) {
		rc = hostport_format_epsv(&b, d->port);
	} else {
		struct in_addr addr = ((const struct sockaddr_in *)&s->local)->sin_addr;
		const char *ext = s->srv->cfg->pasv_address;
		if (ext[0] != '\0' && inet_pton(AF_INET, ext, &addr) != 1)
			addr = ((const struct sockaddr_in *)&s->local)->sin_addr;
		rc = hostport_format_pasv(&b, &addr, d->port);
	}
	if (rc < 0) {
		buf_free(&b);
		data_free(s);
		session_reply(s, R_425_CANT_OPEN_DATA, "Cannot describe the data port.");
		return;
	}
	session_reply(s, extended ? R_229_EXTENDED_PASSIVE : R_227_PASSIVE, b.data);
	buf_free(&b);
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
	struct sockaddr_storage t = *target;
	hostport_unmap(&t);
	if (is_unspecified(&t) && t.ss_family == s->peer.ss_family) {
		/* lftp sends "EPRT |2|::|port|": the unspecified address means the client itself. */
		uint16_t port = hostport_get_port(&t);
		t = s->peer;
		hostport_set_port(&t, port);
	}
	/* FTP bounce protection (RFC 2577): only the client itself, only unprivileged ports. */
	if (!hostport_same_host(&t, &s->peer)) {
		char who[64];
		hostport_ntop(&t, who, sizeof(who));
		log_warn("session %llu: refused PORT/EPRT to %s (control connection is from %s)",
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
	d->conn_fd = d->listen_fd; /* the connecting socket, kept in listen_fd until now */
	d->listen_fd = -1;
	event_free(d->ev);
	d->ev = NULL;
	deliver(d, NULL);
}

/* A socket to connect from: port 20 through the helper, else the control's local address. */
static int active_socket(struct session *s, const struct data_chan *d)
{
	struct sockaddr_storage from = s->local;
	if (from.ss_family != d->target.ss_family)
		return -EAFNOSUPPORT;
	if (s->srv->cfg->active_from_port_20 && s->srv->port20_fd >= 0) {
		int fd = port20_request(s->srv->port20_fd, &from);
		if (fd >= 0)
			return fd;
		log_warn("session %llu: port 20 unavailable (%s); connecting from another port",
			 (unsigned long long)s->id, strerror(-fd));
	}
	hostport_set_port(&from, 0);
	int fd = socket(from.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&from, hostport_len(&from)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void connect_active(struct data_chan *d)
{
	struct session *s = d->s;
	int fd = active_socket(s, d);
	if (fd < 0) {
		deliver(d, "cannot create the data socket");
		return;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		close(fd);
		deliver(d, "cannot create the data socket");
		return;
	}
	if (connect(fd, (const struct sockaddr *)&d->target, hostport_len(&d->target)) < 0 &&
	    errno != EINPROGRESS) {
		char why[128];
		snprintf(why, sizeof(why), "cannot connect to the client: %s", strerror(errno));
		close(fd);
		deliver(d, why);
		return;
	}
	d->listen_fd = fd;
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
	if (d->listen_fd < 0) {
		deliver(d, "the passive listener timed out; send PASV or EPSV again");
		return;
	}
	/* Wait for the client, giving it a full data_timeout from the transfer command. */
	arm_timer(d);
}
