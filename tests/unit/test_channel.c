/*
 * test_channel.c: the typed channel (src/server/channel.c): the table's checks on what
 * arrives, descriptors lost to the receiver's limit, and the send queue that never drops a
 * message: order kept across a full socket, MAY refused at the soft limit, a peer that
 * stops reading reported once.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "server/channel.h"

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void roundtrip_typed_payload(void **state)
{
	int sv[2];
	pair(sv);
	struct msg_pasv_open o;
	memset(&o, 0, sizeof(o));
	o.id = 42;
	o.seq = 7;
	o.port_min = 50000;
	o.port_max = 50010;
	o.peer.ss_family = AF_INET6;
	assert_int_equal(msg_write(sv[0], MSG_PASV_OPEN, &o, -1), 0);
	enum msg_type t;
	union msg_payload p;
	int fd;
	assert_int_equal(msg_read(sv[1], TO_MASTER, false, &t, &p, &fd), 0);
	assert_int_equal(t, MSG_PASV_OPEN);
	assert_int_equal(fd, -1);
	assert_int_equal(p.PASV_OPEN.id, 42);
	assert_int_equal(p.PASV_OPEN.seq, 7);
	assert_int_equal(p.PASV_OPEN.port_max, 50010);
	assert_int_equal(p.PASV_OPEN.peer.ss_family, AF_INET6);
	assert_int_equal(msg_read(sv[1], TO_MASTER, false, &t, &p, &fd), -EAGAIN);
	close(sv[0]);
	assert_int_equal(msg_read(sv[1], TO_MASTER, false, &t, &p, &fd), -EPIPE);
	close(sv[1]);
}

/* What the table forbids is -EPROTO, and an attached descriptor is not leaked. */
static void table_checks(void **state)
{
	int sv[2];
	pair(sv);
	enum msg_type t;
	union msg_payload p;
	int fd;
	struct msg_session s = { .id = 1 };
	/* A worker never receives SESSION_END. */
	assert_int_equal(msg_write(sv[0], MSG_SESSION_END, &s, -1), 0);
	assert_int_equal(msg_read(sv[1], TO_WORKER, false, &t, &p, &fd), -EPROTO);
	assert_int_equal(t, MSG_SESSION_END);
	/* NEW_SESSION without its descriptor. */
	struct msg_new_session n = { .id = 2 };
	assert_int_equal(msg_write(sv[0], MSG_NEW_SESSION, &n, -1), 0);
	assert_int_equal(msg_read(sv[1], TO_WORKER, false, &t, &p, &fd), -EPROTO);
	/* A descriptor on a message that takes none. */
	int dev = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(dev >= 0);
	assert_int_equal(msg_write(sv[0], MSG_SESSION_END, &s, dev), 0);
	assert_int_equal(msg_read(sv[1], TO_MASTER, false, &t, &p, &fd), -EPROTO);
	assert_int_equal(fd, -1);
	/* Unknown type, wrong length, trailing bytes. */
	unsigned char raw[64];
	memset(raw, 0, sizeof(raw));
	uint16_t hdr[4] = { 999, 8, 0, 0 };
	memcpy(raw, hdr, sizeof(hdr));
	assert_int_equal(send(sv[0], raw, 16, 0), 16);
	assert_int_equal(msg_read(sv[1], TO_MASTER, false, &t, &p, &fd), -EPROTO);
	uint16_t hdr2[4] = { MSG_SESSION_END, 8, 0, 0 };
	memcpy(raw, hdr2, sizeof(hdr2));
	assert_int_equal(send(sv[0], raw, 17, 0), 17);
	assert_int_equal(msg_read(sv[1], TO_MASTER, false, &t, &p, &fd), -EPROTO);
	assert_int_equal(send(sv[0], raw, 16, 0), 16);
	assert_int_equal(msg_read(sv[1], TO_MASTER, false, &t, &p, &fd), 0);
	assert_int_equal(t, MSG_SESSION_END);
	assert_int_equal(send(sv[0], raw, 3, 0), 3);
	assert_int_equal(msg_read(sv[1], TO_MASTER, false, &t, &p, &fd), -EPROTO);
	/* The descriptor came across and was closed: only the original is open. */
	assert_int_equal(close(dev), 0);
	close(sv[0]);
	close(sv[1]);
}

/* At the descriptor limit the message still arrives, with -EMFILE for its descriptor. */
static void descriptor_lost_fails_one_message(void **state)
{
	int sv[2];
	pair(sv);
	struct rlimit old;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	int dev = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct msg_new_session n = { .id = 9, .flags = 0 };
	assert_int_equal(msg_write(sv[0], MSG_NEW_SESSION, &n, dev), 0);
	struct msg_session s = { .id = 10 };
	assert_int_equal(msg_write(sv[0], MSG_SESSION_END, &s, -1), 0);
	/* Nothing above the highest open descriptor can be installed. */
	int top = fcntl(0, F_DUPFD_CLOEXEC, 0);
	close(top);
	struct rlimit low = { .rlim_cur = (rlim_t)top, .rlim_max = old.rlim_max };
	int fill[4];
	unsigned nfill = 0;
	for (int fd; nfill < 4 && (fd = fcntl(0, F_DUPFD_CLOEXEC, 0)) >= 0 && fd < top;)
		fill[nfill++] = fd;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	enum msg_type t;
	union msg_payload p;
	int fd;
	assert_int_equal(msg_read(sv[1], TO_WORKER, false, &t, &p, &fd), 0);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(t, MSG_NEW_SESSION);
	assert_int_equal(p.NEW_SESSION.id, 9);
	assert_int_equal(fd, -EMFILE);
	close(dev);
	while (nfill > 0)
		close(fill[--nfill]);
	close(sv[0]);
	close(sv[1]);
}

/* ---- the queue ---- */

struct sink {
	unsigned ends;
	uint64_t last;
	bool in_order;
	unsigned failures[3];
};

static void on_end(void *ctx, const struct msg_session *p, int fd)
{
	struct sink *k = ctx;
	if (p->id != k->last + 1)
		k->in_order = false;
	k->last = p->id;
	k->ends++;
}

static void on_fail(void *ctx, enum channel_failure why, const char *detail)
{
	struct sink *k = ctx;
	k->failures[why]++;
}

static const struct channel_handlers master_side = { .on_SESSION_END = on_end };
static const struct channel_handlers worker_side;

static void full_socket_loses_nothing(void **state)
{
	struct event_base *base = event_base_new();
	int sv[2];
	pair(sv);
	int small = 4096;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	struct sink wk = { 0 }, ms = { .in_order = true };
	struct channel *w = channel_new(base, sv[0], TO_WORKER, &worker_side, on_fail, &wk);
	struct channel *m = channel_new(base, sv[1], TO_MASTER, &master_side, on_fail, &ms);
	assert_non_null(w);
	assert_non_null(m);
	/* A burst of session ends, far more than the socket holds. */
	const unsigned n = 3000;
	for (unsigned i = 1; i <= n; i++) {
		struct msg_session s = { .id = i };
		assert_int_equal(send_SESSION_END(w, &s, -1), 0);
	}
	assert_true(channel_queued(w) > 0); /* the socket filled: the rest waits in the queue */
	for (unsigned i = 0; i < 10000 && ms.ends < n; i++)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(ms.ends, n);
	assert_true(ms.in_order);
	assert_int_equal(channel_queued(w), 0);
	assert_int_equal(wk.failures[CHANNEL_STUCK] + wk.failures[CHANNEL_CLOSED], 0);
	channel_free(w);
	channel_free(m);
	event_base_free(base);
}

/* A peer that never reads: new requests are refused at the soft limit, ends still queue,
 * and at the hard limit the owner hears, once, that the peer is stuck. */
static void limits(void **state)
{
	struct event_base *base = event_base_new();
	int sv[2];
	pair(sv);
	struct sink wk = { 0 };
	struct channel *w = channel_new(base, sv[0], TO_WORKER, &worker_side, on_fail, &wk);
	struct msg_session s = { .id = 1 };
	struct msg_pasv_open o;
	memset(&o, 0, sizeof(o));
	unsigned i = 0;
	while (channel_queued(w) < CHANNEL_SOFT_LIMIT) {
		assert_int_equal(send_PASV_OPEN(w, &o, -1), 0);
		assert_true(++i < 1000000);
	}
	assert_int_equal(send_PASV_OPEN(w, &o, -1), -ENOBUFS); /* MAY */
	assert_int_equal(send_SESSION_END(w, &s, -1), 0);         /* MUST */
	while (channel_queued(w) < CHANNEL_HARD_LIMIT)
		assert_int_equal(send_SESSION_END(w, &s, -1), 0);
	assert_int_equal(wk.failures[CHANNEL_STUCK], 0);
	assert_int_equal(send_SESSION_END(w, &s, -1), -EPIPE);
	assert_int_equal(send_SESSION_END(w, &s, -1), -EPIPE);
	assert_int_equal(wk.failures[CHANNEL_STUCK], 1);
	assert_true(channel_failed(w));
	channel_free(w);
	close(sv[1]);
	event_base_free(base);
}

/* A message the receiver's state does not accept is a protocol error, reported once. */
static void state_checked(void **state)
{
	struct event_base *base = event_base_new();
	int sv[2];
	pair(sv);
	struct sink ms = { .in_order = true };
	struct channel *m = channel_new(base, sv[1], TO_MASTER, &master_side, on_fail, &ms);
	struct msg_sync y = { .upto = 1, .count = 0 };
	/* SYNC_END outside a SYNC_BEGIN ... SYNC_END. */
	assert_int_equal(msg_write(sv[0], MSG_SYNC_END, &y, -1), 0);
	struct msg_session s = { .id = 1 };
	assert_int_equal(msg_write(sv[0], MSG_SESSION_END, &s, -1), 0);
	channel_poll(m);
	assert_int_equal(ms.failures[CHANNEL_PROTOCOL], 1);
	assert_int_equal(ms.ends, 0); /* nothing is believed after the error */
	assert_true(channel_failed(m));
	channel_free(m);
	close(sv[0]);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(roundtrip_typed_payload),
		cmocka_unit_test(table_checks),
		cmocka_unit_test(descriptor_lost_fails_one_message),
		cmocka_unit_test(full_socket_loses_nothing),
		cmocka_unit_test(limits),
		cmocka_unit_test(state_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
