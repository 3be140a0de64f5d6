/*
 * test_pasv_broker.c: the master's passive listeners (src/server/pasv_broker.c) on real
 * loopback sockets: a connection a client made for a PASV it gave up on, still in the
 * queue of a port that its next PASV reuses, is not the answer to that next PASV (rclone
 * hit this: the stale connection, already closed, got the next transfer's TLS handshake);
 * and settling that queue still hands other clients' connections to them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "server/pasv_broker.h"

#define MAX_DELIVERED 8

struct delivered {
	unsigned n;
	uint64_t session[MAX_DELIVERED];
	uint32_t seq[MAX_DELIVERED];
	int fd[MAX_DELIVERED];
};

static void on_deliver(void *ctx, unsigned worker, uint64_t session, uint32_t seq, int fd)
{
	struct delivered *d = ctx;
	assert_true(d->n < MAX_DELIVERED);
	d->session[d->n] = session;
	d->seq[d->n] = seq;
	d->fd[d->n] = fd;
	d->n++;
}

static struct sockaddr_storage v4(const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
	return ss;
}

/* A connection from source (any port) to 127.0.0.1:port, left in the listener's queue. */
static int connect_from(const char *source, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_storage src = v4(source, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(struct sockaddr_in)), 0);
	struct sockaddr_storage dst = v4("127.0.0.1", port);
	assert_int_equal(connect(fd, (struct sockaddr *)&dst, sizeof(struct sockaddr_in)), 0);
	return fd;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

static uint16_t peer_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	assert_int_equal(getpeername(fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

static void run_until(struct event_base *base, const struct delivered *d, unsigned n)
{
	for (int i = 0; i < 200 && d->n < n; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
}

static void stale_connection_is_not_the_answer(void **state)
{
	struct event_base *base = event_base_new();
	struct delivered d = { 0 };
	struct pasv_broker *b = pasv_broker_new(base, on_deliver, &d);
	assert_non_null(b);
	struct sockaddr_storage local = v4("127.0.0.1", 0), peer = v4("127.0.0.1", 0);
	uint16_t port1, port2;
	assert_int_equal(pasv_broker_open(b, 0, 1, 1, &local, &peer, 0, 0, &port1), 0);
	/* The client connects for PASV 1, then its command fails before the master accepts. */
	int stale = connect_from("127.0.0.1", port1);
	pasv_broker_close(b, 1, 1);
	/* PASV 2 gets the same port back: the connection of PASV 1 still waits in its queue. */
	assert_int_equal(pasv_broker_open(b, 0, 1, 2, &local, &peer, 0, 0, &port2), 0);
	assert_int_equal(port2, port1);
	int fresh = connect_from("127.0.0.1", port2);
	run_until(base, &d, 1);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.seq[0], 2);
	assert_int_equal(peer_port(d.fd[0]), local_port(fresh));
	assert_int_equal(pasv_broker_foreign(b), 1); /* the stale one, refused */
	close(d.fd[0]);
	close(stale);
	close(fresh);
	pasv_broker_free(b);
	event_base_free(base);
}

static void settling_the_queue_serves_other_clients(void **state)
{
	struct event_base *base = event_base_new();
	struct delivered d = { 0 };
	struct pasv_broker *b = pasv_broker_new(base, on_deliver, &d);
	assert_non_null(b);
	struct sockaddr_storage local = v4("127.0.0.1", 0);
	struct sockaddr_storage one = v4("127.0.0.1", 0), two = v4("127.0.0.2", 0);
	uint16_t p1, p2, p3;
	assert_int_equal(pasv_broker_open(b, 0, 1, 1, &local, &one, 0, 0, &p1), 0);
	/* Another client address shares the listener. */
	assert_int_equal(pasv_broker_open(b, 1, 2, 1, &local, &two, 0, 0, &p2), 0);
	assert_int_equal(p2, p1);
	int other = connect_from("127.0.0.2", p2);
	pasv_broker_close(b, 1, 1);
	assert_int_equal(pasv_broker_open(b, 0, 1, 2, &local, &one, 0, 0, &p3), 0);
	assert_int_equal(p3, p1);
	/* Settling the queue for session 1's new wait handed session 2 its connection. */
	assert_int_equal(d.n, 1);
	assert_int_equal(d.session[0], 2);
	assert_int_equal(peer_port(d.fd[0]), local_port(other));
	assert_int_equal(pasv_broker_foreign(b), 0);
	close(d.fd[0]);
	close(other);
	pasv_broker_free(b);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stale_connection_is_not_the_answer),
		cmocka_unit_test(settling_the_queue_serves_other_clients),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
