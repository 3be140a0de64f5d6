/*
 * net.c: the client's one boundary to the socket system calls (STYLE.md item 3).
 *
 * Sockets stay in blocking mode, but nothing here ever blocks without a bound: every
 * connect, accept, read and write first waits with poll(2) for at most the time-out it is
 * given, and then does a non-blocking call (MSG_DONTWAIT, or O_NONBLOCK around connect).
 * A stream is a socket with TLS over it or not (common/tls.c does the TLS part), so the
 * protocol code above reads and writes without knowing which.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "client/ftp_int.h"
#include "common/hostport.h"

double net_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* poll(2) for one descriptor, restarted after signals with the time that is left. */
int net_wait(int fd, short events, int timeout_ms)
{
	double end = net_now() + timeout_ms / 1000.0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		double left = end - net_now();
		int ms = left > 0 ? (int)(left * 1000.0 + 0.5) : 0;
		int n = poll(&p, 1, ms);
		if (n > 0)
			return 0;   /* readable, writable, or an error the next call will report */
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

void net_close(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

int net_names(int fd, struct sockaddr_storage *local, struct sockaddr_storage *peer)
{
	socklen_t len = sizeof(*local);

	if (local != NULL) {
		memset(local, 0, sizeof(*local));
		if (getsockname(fd, (struct sockaddr *)local, &len) != 0)
			return -errno;
	}
	len = sizeof(*peer);
	if (peer != NULL) {
		memset(peer, 0, sizeof(*peer));
		if (getpeername(fd, (struct sockaddr *)peer, &len) != 0)
			return -errno;
	}
	return 0;
}

void net_describe(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	char host[INET6_ADDRSTRLEN];

	hostport_ntop(ss, host, sizeof(host));
	snprintf(out, outsz, "%s port %u", host, (unsigned)hostport_get_port(ss));
}

static int set_nonblocking(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl) == 0 ? 0 : -errno;
}

int net_connect_addr(const struct sockaddr_storage *ss, int timeout_ms, int *out)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)ss, hostport_len(ss)) != 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
		} else if ((rc = net_wait(fd, POLLOUT, timeout_ms)) == 0) {
			int soerr = 0;
			socklen_t len = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
				rc = -errno;
			else
				rc = -soerr;
		}
	}
	if (rc == 0)
		rc = set_nonblocking(fd, false);
	if (rc != 0) {
		close(fd);
		return rc;
	}
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*out = fd;
	return 0;
}

int net_connect_host(const char *host, uint16_t port, int family, int timeout_ms, int *fd,
		     char *err, size_t errsz)
{
	struct addrinfo hints, *res = NULL;
	char portstr[8];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	int g = getaddrinfo(host, portstr, &hints, &res);
	if (g != 0) {
		snprintf(err, errsz, "cannot resolve %s: %s", host,
			 g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
		return FTPC_ECONNECT;
	}

	int rc = FTPC_ECONNECT;
	snprintf(err, errsz, "%s has no address%s", host,
		 family == AF_INET ? " for IPv4" : family == AF_INET6 ? " for IPv6" : "");
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		struct sockaddr_storage ss;
		char where[80];
		if (ai->ai_addrlen > sizeof(ss))
			continue;
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		int e = net_connect_addr(&ss, timeout_ms, fd);
		if (e == 0) {
			rc = FTPC_OK;
			break;
		}
		net_describe(&ss, where, sizeof(where));
		snprintf(err, errsz, "connect to %s: %s", where,
			 e == -ETIMEDOUT ? "timed out" : strerror(-e));
	}
	freeaddrinfo(res);
	return rc;
}

static int bind_listen(const struct sockaddr_storage *addr, uint16_t port, int *out)
{
	struct sockaddr_storage ss = *addr;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -errno;
	/* The classic N+1 port is used again at each transfer, with the last one in TIME_WAIT. */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	hostport_set_port(&ss, port);
	if (bind(fd, (struct sockaddr *)&ss, hostport_len(&ss)) != 0 || listen(fd, 4) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	*out = fd;
	return 0;
}

int net_listen(const struct sockaddr_storage *addr, uint16_t min, uint16_t max, int *fd)
{
	if (min == 0)
		return bind_listen(addr, hostport_get_port(addr), fd);

	/* A range: start anywhere in it, so that two clients do not fight for its first port. */
	uint32_t span = (uint32_t)max - min + 1, start = 0;
	if (getrandom(&start, sizeof(start), 0) != (ssize_t)sizeof(start))
		start = (uint32_t)getpid();
	int rc = -EADDRINUSE;
	for (uint32_t i = 0; i < span; i++) {
		uint16_t port = (uint16_t)(min + (start + i) % span);
		rc = bind_listen(addr, port, fd);
		if (rc == 0 || (rc != -EADDRINUSE && rc != -EACCES))
			return rc;
	}
	return rc;
}

int net_accept(int lfd, int timeout_ms, int *fd, struct sockaddr_storage *peer)
{
	int rc = net_wait(lfd, POLLIN, timeout_ms);

	if (rc != 0)
		return rc;
	socklen_t len = sizeof(*peer);
	memset(peer, 0, sizeof(*peer));
	int s = accept4(lfd, (struct sockaddr *)peer, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (s < 0)
		return -errno;
	/* accept4's SOCK_NONBLOCK only keeps a vanished peer from blocking us here. */
	if ((rc = set_nonblocking(s, false)) != 0) {
		close(s);
		return rc;
	}
	*fd = s;
	return 0;
}

long stream_read(struct stream *s, void *buf, size_t n, int timeout_ms)
{
	if (s->tls != NULL)
		return tls_stream_read(s->tls, buf, n, timeout_ms);
	for (;;) {
		int rc = net_wait(s->fd, POLLIN, timeout_ms);
		if (rc != 0)
			return rc;
		ssize_t got = recv(s->fd, buf, n, MSG_DONTWAIT);
		if (got >= 0)
			return (long)got;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
	}
}

int stream_write(struct stream *s, const void *buf, size_t n, int timeout_ms)
{
	if (s->tls != NULL)
		return tls_stream_write(s->tls, buf, n, timeout_ms);
	const char *p = buf;
	while (n > 0) {
		int rc = net_wait(s->fd, POLLOUT, timeout_ms);
		if (rc != 0)
			return rc;
		ssize_t put = send(s->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (put < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			return -errno;
		}
		p += put;
		n -= (size_t)put;
	}
	return 0;
}

bool stream_pending(struct stream *s)
{
	if (s->tls != NULL && tls_stream_pending(s->tls) > 0)
		return true;
	return s->fd >= 0 && net_wait(s->fd, POLLIN, 0) == 0;
}

void stream_close(struct stream *s, int timeout_ms)
{
	if (s->tls != NULL) {
		tls_stream_shutdown(s->tls, timeout_ms);
		tls_stream_free(s->tls);
		s->tls = NULL;
	}
	net_close(&s->fd);
}

/*
 * The end of an upload: our close_notify (TLS), then FIN, then read until the server
 * closes, so that nothing it still sends (its close_notify) meets a closed socket, which
 * the kernel would answer with a reset that can cost the server the last bytes.
 */
void stream_finish_upload(struct stream *s, int timeout_ms)
{
	char sink[4096];
	size_t drained = 0;

	if (s->tls != NULL) {
		tls_stream_shutdown(s->tls, timeout_ms);
		tls_stream_free(s->tls);
		s->tls = NULL;
	}
	if (s->fd >= 0 && shutdown(s->fd, SHUT_WR) == 0) {
		while (drained < (1u << 20) && net_wait(s->fd, POLLIN, timeout_ms) == 0) {
			ssize_t n = recv(s->fd, sink, sizeof(sink), MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0)
				break;
			drained += (size_t)n;
		}
	}
	net_close(&s->fd);
}
