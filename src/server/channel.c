/*
 * channel.c: the typed message channel (channel.h): encoding, the table's checks, and the
 * bounded send queue.  It must never lose a message without telling its owner: a message
 * is on the socket, in the queue, refused to its sender, or the channel has failed.
 */
#include "server/channel.h"

#include <errno.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/err.h"

struct msg_hdr {
	uint16_t type;
	uint16_t len;
	uint32_t zero;
};

#define MSG_MAX (sizeof(struct msg_hdr) + sizeof(union msg_payload))

static const struct msg_def msg_defs[MSG_COUNT] = {
#define MSG(name_, payload, to_, fd_, prio_, states_)                                              \
	[MSG_##name_] = { .name = #name_,                                                          \
			  .size = sizeof(struct payload),                                          \
			  .to = to_,                                                               \
			  .fd = fd_,                                                               \
			  .prio = prio_,                                                           \
			  .states = (states_) },
#include "server/messages.def"
#undef MSG
};

const struct msg_def *msg_def_of(unsigned type)
{
	if (type == MSG_INVALID || type >= MSG_COUNT)
		return NULL;
	return &msg_defs[type];
}

/* ---- one message on the wire ---- */

static size_t encode(unsigned char *out, enum msg_type type, const void *payload)
{
	const struct msg_def *d = msg_def_of(type);
	FERR_ASSERT(d != NULL);
	struct msg_hdr h = { .type = (uint16_t)type, .len = (uint16_t)d->size, .zero = 0 };
	memcpy(out, &h, sizeof(h));
	memcpy(out + sizeof(h), payload, d->size);
	return sizeof(h) + d->size;
}

/* Room for one descriptor's control message. */
union cmsg_one {
	struct cmsghdr h;
	char buf[CMSG_SPACE(sizeof(int))];
};

int msg_write_raw(int sock, const void *buf, size_t len, int fd)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	union cmsg_one ctl;
	struct msghdr mh;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	ssize_t n;
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n == (ssize_t)len ? 0 : -EPROTO;
}

int msg_write(int sock, enum msg_type type, const void *payload, int fd)
{
	unsigned char buf[MSG_MAX];
	size_t len = encode(buf, type, payload);
	return msg_write_raw(sock, buf, len, fd);
}

pid_t msg_fork_helper(const char *name, int *ctl)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (pid == 0) {
		close(sv[0]);
		/* The master's signals are its own; the helper goes when the master goes. */
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		prctl(PR_SET_NAME, name);
		*ctl = sv[1];
		return 0;
	}
	close(sv[1]);
	*ctl = sv[0];
	return pid;
}

int msg_hand_over(int ctl, enum msg_type type)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	struct msg_empty m = { 0 };
	int rc = msg_write(ctl, type, &m, sv[1]);
	close(sv[1]);
	if (rc < 0) {
		close(sv[0]);
		return rc;
	}
	return sv[0];
}

int msg_read(int sock, enum msg_role role, bool block, enum msg_type *type, union msg_payload *p,
	     int *fd)
{
	*fd = -1;
	*type = MSG_INVALID;
	unsigned char buf[MSG_MAX + 1];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	union cmsg_one ctl;
	struct msghdr mh;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	ssize_t n;
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | (block ? 0 : MSG_DONTWAIT));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	int got = -1;
	unsigned n_fds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int x;
			memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (n_fds++ == 0)
				got = x;
			else
				close(x);
		}
	}
	if (n == 0) {
		if (got >= 0)
			close(got);
		return -EPIPE;
	}
	struct msg_hdr h;
	const struct msg_def *d = NULL;
	if ((size_t)n >= sizeof(h)) {
		memcpy(&h, buf, sizeof(h));
		d = msg_def_of(h.type);
	}
	bool ok = d != NULL && !(mh.msg_flags & MSG_TRUNC) && n_fds <= 1 && h.zero == 0 &&
		  h.len == d->size && (size_t)n == sizeof(h) + d->size && d->to == role &&
		  !(d->fd == FD_NONE && n_fds > 0);
	/* A descriptor that did not fit fails this message's request, not the channel. */
	bool lost = (mh.msg_flags & MSG_CTRUNC) && n_fds == 0;
	if (ok && d->fd == FD_REQUIRED && got < 0 && !lost)
		ok = false;
	if (!ok) {
		if (got >= 0)
			close(got);
		if (d != NULL)
			*type = (enum msg_type)h.type;
		return -EPROTO;
	}
	*type = (enum msg_type)h.type;
	memcpy(p, buf + sizeof(h), d->size);
	*fd = got >= 0 ? got : (lost ? -EMFILE : -1);
	return 0;
}

/* ---- the event-driven channel ---- */

struct queued {
	STAILQ_ENTRY(queued) link;
	int fd;
	size_t len;
	unsigned char buf[MSG_MAX];
};

struct channel {
	int sock;
	enum msg_role role;
	unsigned state;
	const struct channel_handlers *h;
	channel_fail_fn *on_fail;
	void *ctx;
	struct event *rd, *wr, *stall;
	STAILQ_HEAD(, queued) q;
	size_t n_queued;
	bool closed;       /* CHANNEL_CLOSED reported: nothing more in or out */
	bool stuck;        /* CHANNEL_STUCK reported */
	bool in_dispatch;  /* freeing is deferred while a handler runs */
	bool free_asked;
};

static void fail(struct channel *c, enum channel_failure why, const char *detail)
{
	if (why == CHANNEL_CLOSED) {
		if (c->closed)
			return;
		c->closed = true;
		event_del(c->rd);
		event_del(c->wr);
		event_del(c->stall);
	} else if (why == CHANNEL_STUCK) {
		if (c->stuck)
			return;
		c->stuck = true;
	}
	c->on_fail(c->ctx, why, detail);
}

static void arm_stall(struct channel *c)
{
	struct timeval tv = { .tv_sec = CHANNEL_STALL_SECONDS, .tv_usec = 0 };
	event_add(c->stall, &tv);
}

static void drop_queue(struct channel *c)
{
	struct queued *m;
	while ((m = STAILQ_FIRST(&c->q)) != NULL) {
		STAILQ_REMOVE_HEAD(&c->q, link);
		if (m->fd >= 0)
			close(m->fd);
		free(m);
	}
	c->n_queued = 0;
}

/* Write what the socket takes; the write event waits for the rest. */
static void flush(struct channel *c)
{
	struct queued *m;
	bool progress = false;
	while ((m = STAILQ_FIRST(&c->q)) != NULL) {
		int rc = msg_write_raw(c->sock, m->buf, m->len, m->fd);
		if (rc == -EAGAIN || rc == -ENOBUFS)
			break;
		if (rc < 0) {
			char why[96];
			snprintf(why, sizeof(why), "send: %s", strerror(-rc));
			drop_queue(c);
			fail(c, CHANNEL_CLOSED, why);
			return;
		}
		STAILQ_REMOVE_HEAD(&c->q, link);
		c->n_queued--;
		if (m->fd >= 0)
			close(m->fd);
		free(m);
		progress = true;
	}
	if (STAILQ_EMPTY(&c->q)) {
		event_del(c->wr);
		event_del(c->stall);
		return;
	}
	event_add(c->wr, NULL);
	if (progress || !event_pending(c->stall, EV_TIMEOUT, NULL))
		arm_stall(c);
}

int channel_send(struct channel *c, enum msg_type type, const void *payload, int fd)
{
	const struct msg_def *d = msg_def_of(type);
	FERR_ASSERT(d != NULL && d->to != c->role);
	if (c->closed || c->stuck) {
		if (fd >= 0)
			close(fd);
		return -EPIPE;
	}
	if (d->prio == MAY && c->n_queued >= CHANNEL_SOFT_LIMIT) {
		if (fd >= 0)
			close(fd);
		return -ENOBUFS;
	}
	if (c->n_queued >= CHANNEL_HARD_LIMIT) {
		if (fd >= 0)
			close(fd);
		fail(c, CHANNEL_STUCK, "its queue reached the hard limit");
		return -EPIPE;
	}
	struct queued *m = malloc(sizeof(*m));
	if (m == NULL) {
		if (fd >= 0)
			close(fd);
		return -ENOBUFS;
	}
	m->len = encode(m->buf, type, payload);
	m->fd = fd;
	bool was_empty = STAILQ_EMPTY(&c->q);
	STAILQ_INSERT_TAIL(&c->q, m, link);
	c->n_queued++;
	/* Order is kept: a message goes out directly only when nothing waits before it. */
	if (was_empty)
		flush(c);
	return 0;
}

static void protocol_error(struct channel *c, enum msg_type type, const char *what)
{
	const struct msg_def *d = msg_def_of(type);
	char detail[128];
	snprintf(detail, sizeof(detail), "%s %s", d != NULL ? d->name : "unknown message", what);
	fail(c, CHANNEL_PROTOCOL, detail);
	/* Nothing more is believed from a peer that broke the protocol, nor sent to it. */
	c->closed = true;
	event_del(c->rd);
	event_del(c->wr);
	event_del(c->stall);
}

static void dispatch(struct channel *c, enum msg_type type, const union msg_payload *p, int fd)
{
	const struct msg_def *d = msg_def_of(type);
	if (!(d->states & c->state)) {
		if (fd >= 0)
			close(fd);
		protocol_error(c, type, "in a state that does not accept it");
		return;
	}
	switch (type) {
#define MSG(name, payload, to, fd_, prio, states)                                                  \
	case MSG_##name:                                                                           \
		if (c->h->on_##name == NULL)                                                       \
			break;                                                                     \
		c->h->on_##name(c->ctx, &p->name, fd);                                             \
		return;
#include "server/messages.def"
#undef MSG
	default:
		break;
	}
	if (fd >= 0)
		close(fd);
	protocol_error(c, type, "not accepted on this channel");
}

/* At most this many messages a wake-up, so that one busy peer cannot starve the loop. */
#define READ_BATCH 256

static void read_some(struct channel *c)
{
	c->in_dispatch = true;
	for (unsigned i = 0; i < READ_BATCH && !c->closed && !c->free_asked; i++) {
		enum msg_type type;
		union msg_payload p;
		int fd;
		int rc = msg_read(c->sock, c->role, false, &type, &p, &fd);
		if (rc == -EAGAIN)
			break;
		if (rc == -EPROTO) {
			protocol_error(c, type, "malformed (size, receiver or descriptor)");
			break;
		}
		if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM) {
			/* Nothing was taken from the socket: try again on the next turn. */
			break;
		}
		if (rc < 0) {
			char why[96];
			snprintf(why, sizeof(why), "%s",
				 rc == -EPIPE ? "end of stream" : strerror(-rc));
			fail(c, CHANNEL_CLOSED, why);
			break;
		}
		dispatch(c, type, &p, fd);
	}
	c->in_dispatch = false;
	if (c->free_asked)
		channel_free(c);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	read_some(arg);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	flush(arg);
}

static void on_stall(evutil_socket_t fd, short what, void *arg)
{
	struct channel *c = arg;
	if (!STAILQ_EMPTY(&c->q)) {
		char why[64];
		snprintf(why, sizeof(why), "it has read nothing for %d s", CHANNEL_STALL_SECONDS);
		fail(c, CHANNEL_STUCK, why);
	}
}

struct channel *channel_new(struct event_base *base, int sock, enum msg_role role,
			    const struct channel_handlers *h, channel_fail_fn *on_fail, void *ctx)
{
	struct channel *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(sock);
		return NULL;
	}
	c->sock = sock;
	c->role = role;
	c->state = CS_RUN;
	c->h = h;
	c->on_fail = on_fail;
	c->ctx = ctx;
	STAILQ_INIT(&c->q);
	evutil_make_socket_nonblocking(sock);
	c->rd = event_new(base, sock, EV_READ | EV_PERSIST, on_readable, c);
	c->wr = event_new(base, sock, EV_WRITE, on_writable, c);
	c->stall = evtimer_new(base, on_stall, c);
	if (c->rd == NULL || c->wr == NULL || c->stall == NULL || event_add(c->rd, NULL) < 0) {
		channel_free(c);
		return NULL;
	}
	return c;
}

void channel_free(struct channel *c)
{
	if (c == NULL)
		return;
	if (c->in_dispatch) {
		c->free_asked = true;
		return;
	}
	drop_queue(c);
	if (c->rd != NULL)
		event_free(c->rd);
	if (c->wr != NULL)
		event_free(c->wr);
	if (c->stall != NULL)
		event_free(c->stall);
	close(c->sock);
	free(c);
}

void channel_set_state(struct channel *c, unsigned state)
{
	c->state = state;
}

unsigned channel_state(const struct channel *c)
{
	return c->state;
}

size_t channel_queued(const struct channel *c)
{
	return c->n_queued;
}

bool channel_failed(const struct channel *c)
{
	return c->closed || c->stuck;
}

void channel_poll(struct channel *c)
{
	if (!c->closed && !c->in_dispatch)
		read_some(c);
}
