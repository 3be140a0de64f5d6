/*
 * transfer.c: the data pumps.  Binary downloads go out with sendfile(2) (libevent writes
 * evbuffer file segments that way); TYPE A and listings through a producer.  Binary
 * uploads in the clear are moved from the socket into the file with splice(2) through a
 * pipe of the worker, never copied into user space; TYPE A ones, and files splice cannot
 * write (O_APPEND), are read into one buffer of the worker and written (no bufferevent:
 * see on_plain_upload).  Over TLS they are written from the worker's buffer (on_tls_upload).
 */
#include "server/transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/ascii.h"
#include "common/fdio.h"
#include "common/hostport.h"
#include "common/reply.h"
#include "common/tls.h"
#include "server/data.h"
#include "server/log.h"
#include "server/ratelimit.h"
#include "server/session.h"
#include "server/user_group.h"
#include "server/user_settings.h"
#include "server/worker.h"

/* Refill the output when it falls below LOW; never queue far more than HIGH. */
#define OUT_LOW (256 * 1024)
#define OUT_HIGH (1024 * 1024)
/*
 * A listing stops producing sooner: its first lines then leave while the next are being
 * formatted (the client reads them on the other core) instead of after the whole listing.
 */
#define LISTING_HIGH (64 * 1024)
/*
 * The most a binary download sends in one sendfile call: at once (send_at_once), and from
 * then on per piece of the output (fill_file_binary): 1 ms at the 4-5 GiB/s of loopback.
 */
#define SEND_AT_ONCE_MAX (1024 * 1024)
#define SEND_MAX (4 * 1024 * 1024)
/* Stop reading an upload when this much waits to be written (it never should). */
#define IN_HIGH (4 * 1024 * 1024)
#define CHUNK (64 * 1024)
/* A clear upload reads this much at a time, and at most UPLOAD_READS times a wake-up so
 * that one fast client cannot starve the worker's other sessions. */
#define UPLOAD_BUF (256 * 1024)
#define UPLOAD_READS 4

/*
 * The buffer of uploads on their way to the file.  The worker's: a worker runs one loop on
 * one thread, and nothing is left in it between calls.
 */
static uint8_t upload_buf[UPLOAD_BUF];
/*
 * The worker's pipe for spliced uploads ([0] reads, [1] writes), made by transfer_init
 * with everything else the worker holds for its whole life.  Like upload_buf, it is empty
 * whenever a callback returns: bytes in it belong to the transfer that put them there and
 * to no other.  Without it (-1), clear uploads read and write.
 */
static int upload_pipe[2] = { -1, -1 };
static size_t upload_pipe_size;
/* A TLS binary download reads the file this much at a time. */
#define OUT_BUF (256 * 1024)

struct transfer {
	struct session *s;
	struct transfer_spec spec;
	struct bufferevent *bev;   /* downloads, and uploads over TLS */
	struct event *io_ev;       /* the transfer's own event: clear uploads, and TLS binary
				      transfers past the handshake (on_tls_upload, on_tls_download) */
	struct evbuffer_file_segment *seg; /* a clear binary download's file ... */
	uint64_t seg_queued;       /* ... and how much of it is in the output so far */
	uint8_t *out_buf;          /* a TLS binary download's file data (OUT_BUF bytes) */
	size_t out_len, out_off;   /* ... held, and already given to OpenSSL */
	bool out_eof;              /* ... the file has been read to its end */
	int sock_fd;               /* the data socket when no bufferevent owns it: clear
				      uploads, and downloads sent whole by send_at_once */
	bool connected;
	bool tls;              /* PROT P: bev is a TLS bufferevent */
	bool verified;         /* the TLS handshake is over and passed the reuse rule */
	bool produced_all;     /* the producer is done */
	bool passive;
	bool complete;         /* ended in 226 */
	bool no_splice;        /* a clear binary upload that reads and writes (O_APPEND) */
	bool over_quota;       /* the client sent more than spec.quota_room */
	uint64_t queued;       /* bytes handed to the output buffer */
	uint64_t written;      /* upload bytes written to the file (after TYPE A conversion) */
	struct timespec start;
	struct ascii_state ascii;
	/* Bandwidth limits (ratelimit.h): the session's own, and its user's share. */
	bool paced;
	struct rate_bucket own;
	struct rate_bucket *shared; /* the user group's bucket for this direction, or NULL */
	struct event *pace_timer;   /* brings a paused transfer back */
};

static double elapsed(const struct transfer *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->start.tv_sec) +
	       (double)(now.tv_nsec - t->start.tv_nsec) / 1e9;
}

static uint64_t bytes_moved(const struct transfer *t)
{
	if (t->spec.upload)
		return t->written;
	uint64_t pending = t->bev != NULL ? evbuffer_get_length(bufferevent_get_output(t->bev)) : 0;
	return t->queued - pending;
}

/* Tell the upload's owner how it ended, once, with the file still open. */
static void end_upload(struct transfer *t)
{
	void (*fn)(void *, const struct upload_result *) = t->spec.upload_end;
	if (fn == NULL)
		return;
	t->spec.upload_end = NULL;
	struct upload_result r = {
		.stored = t->complete || t->written > 0,
		.over_quota = t->over_quota,
		.file_fd = t->spec.file_fd,
	};
	fn(t->spec.upload_ctx, &r);
}

static void release(struct transfer *t)
{
	end_upload(t);
	if (t->pace_timer != NULL)
		event_free(t->pace_timer);
	if (t->io_ev != NULL)
		event_free(t->io_ev); /* before its descriptor closes (a TLS transfer's is bev's) */
	free(t->out_buf);
	if (t->seg != NULL)
		evbuffer_file_segment_free(t->seg); /* the output's chains hold their own references */
	if (t->bev != NULL && t->tls)
		tls_close(t->bev);
	else if (t->bev != NULL)
		bufferevent_free(t->bev);
	if (t->sock_fd >= 0)
		close(t->sock_fd);
	if (t->spec.file_fd >= 0)
		close(t->spec.file_fd);
	if (t->spec.fill_free != NULL)
		t->spec.fill_free(t->spec.fill_ctx);
	free(t);
}

/*
 * The transfer record (stderr and xferlog), written exactly once, when the transfer ends
 * for whatever reason: for an upload, with the bytes that are in the file.  A transfer
 * whose data connection never came moved nothing and has none.
 */
static void record(const struct transfer *t, bool complete)
{
	const struct session *s = t->s;
	if (!t->connected || t->spec.is_listing)
		return;
	struct xfer_record r = {
		.client = s->peer_str,
		.user = s->username,
		.anonymous = (s->flags & SF_ANONYMOUS) != 0,
		.path = t->spec.path,
		.bytes = bytes_moved(t),
		.seconds = elapsed(t),
		.upload = t->spec.upload,
		.ascii = t->spec.ascii,
		.passive = t->passive,
		.complete = complete,
	};
	log_transfer(s->srv->xferlog_fd, &r);
}

/* Why a transfer stopped early, for the administrator: what failed, with the errno text. */
static void log_stopped(const struct transfer *t, const char *what, int err)
{
	log_warn("session %llu: %s of %s stopped after %llu bytes: %s: %s",
		 (unsigned long long)t->s->id, t->spec.upload ? "upload" : "download",
		 LOG_Q(t->spec.path),
		 (unsigned long long)bytes_moved(t), what, strerror(err));
}

/* End the transfer: log, free, reply, and let waiting commands run. */
static void finish(struct transfer *t, int code, const char *text)
{
	struct session *s = t->s;
	record(t, code == R_226_CLOSING_DATA);
	t->complete = code == R_226_CLOSING_DATA;
	/* What the upload's end changes (its file, the quota tally) is done before the reply. */
	end_upload(t);
	/* text may live in t (done_text): reply before t goes. */
	if (text != NULL)
		session_reply(s, code, text);
	s->xfer = NULL;
	release(t);
	data_free(s);
	session_resume(s);
}

static int drain_upload(struct transfer *t);

void transfer_free(struct session *s)
{
	struct transfer *t = s->xfer;
	if (t == NULL)
		return;
	if (t->connected && !t->spec.is_listing) {
		/* Keep what arrived over TLS: a cut upload can be resumed with REST. */
		if (t->spec.upload && t->verified)
			(void)drain_upload(t);
		log_info("session %llu: %s of %s cut after %llu bytes: the session is closing",
			 (unsigned long long)s->id, t->spec.upload ? "upload" : "download",
			 LOG_Q(t->spec.path), (unsigned long long)bytes_moved(t));
	}
	record(t, false);
	s->xfer = NULL;
	release(t);
}

void transfer_abort(struct session *s)
{
	struct transfer *t = s->xfer;
	if (t == NULL) {
		data_free(s);
		session_reply(s, R_225_DATA_OPEN, "No transfer to abort.");
		return;
	}
	finish(t, R_426_TRANSFER_ABORTED, "Transfer aborted; data connection closed.");
	session_reply(s, R_226_CLOSING_DATA, "ABOR successful.");
}

bool transfer_outlives_control(const struct session *s)
{
	return s->xfer != NULL && s->xfer->spec.upload && s->xfer->connected;
}

void transfer_status(const struct session *s, struct buf *out)
{
	const struct transfer *t = s->xfer;
	if (t == NULL)
		return;
	if (!t->connected) {
		buf_printf(out, "Waiting for the data connection for %s", t->spec.path);
		return;
	}
	uint64_t moved = bytes_moved(t);
	if (t->spec.size > 0 && !t->spec.upload)
		buf_printf(out, "%s %s: %llu of %llu bytes in %.1f s", t->spec.upload ? "Receiving" : "Sending",
			   t->spec.path, (unsigned long long)(t->spec.offset + moved),
			   (unsigned long long)(t->spec.offset + t->spec.size), elapsed(t));
	else
		buf_printf(out, "%s %s: %llu bytes in %.1f s", t->spec.upload ? "Receiving" : "Sending",
			   t->spec.path, (unsigned long long)(t->spec.offset + moved), elapsed(t));
}

/* ---- downloads ---- */

static int fill_file_binary(void *ctx, struct evbuffer *out);

/* Bytes the transfer may move now: what the emptier of its buckets allows. */
static uint64_t pace_allowed(struct transfer *t)
{
	if (!t->paced)
		return UINT64_MAX;
	uint64_t now = rate_now_ns();
	uint64_t a = rate_allowed(&t->own, now), b = rate_allowed(t->shared, now);
	return a < b ? a : b;
}

static void pace_charge(struct transfer *t, uint64_t n)
{
	if (!t->paced)
		return;
	rate_charge(&t->own, n);
	rate_charge(t->shared, n);
}

/*
 * Nothing may move now: the transfer's I/O event is taken off the loop (a TLS or clear
 * upload, a paced download) and the pace timer brings it back, or calls fill_output for
 * a bufferevent's producer.  Returns 0, or -1 after finishing the transfer.
 */
static int pace_pause(struct transfer *t)
{
	uint64_t now = rate_now_ns();
	uint64_t a = rate_wait_ns(&t->own, now), b = rate_wait_ns(t->shared, now);
	uint64_t ns = a > b ? a : b;
	struct timeval tv = { .tv_sec = (time_t)(ns / 1000000000u),
			      .tv_usec = (suseconds_t)(ns % 1000000000u / 1000u) };
	if (t->io_ev != NULL)
		event_del(t->io_ev);
	if (evtimer_add(t->pace_timer, &tv) < 0) {
		finish(t, R_451_LOCAL_ERROR, "Out of memory; transfer aborted.");
		return -1;
	}
	return 0;
}

static void fill_output(struct transfer *t);

static void on_pace_timer(evutil_socket_t fd, short what, void *arg)
{
	struct transfer *t = arg;
	if (t->io_ev != NULL) {
		struct timeval tv = { .tv_sec = t->s->srv->cfg->data_timeout, .tv_usec = 0 };
		if (event_add(t->io_ev, &tv) < 0) {
			finish(t, R_451_LOCAL_ERROR, "Out of memory; transfer aborted.");
			return;
		}
		event_active(t->io_ev, t->spec.upload ? EV_READ : EV_WRITE, 0);
		return;
	}
	if (t->bev != NULL)
		fill_output(t);
}

static void fill_output(struct transfer *t)
{
	if (t->tls && !t->verified)
		return; /* not a byte before the handshake has passed the reuse rule */
	struct evbuffer *out = bufferevent_get_output(t->bev);
	/* File segments cost no memory: two pieces queued, so the output never runs dry. */
	size_t high = t->spec.is_listing		    ? LISTING_HIGH
		      : t->spec.fill == fill_file_binary ? 2 * SEND_MAX
							 : OUT_HIGH;
	while (!t->produced_all && evbuffer_get_length(out) < high) {
		if (pace_allowed(t) == 0) {
			/* Paced: what is queued leaves; the timer queues the next piece. */
			if (!evtimer_pending(t->pace_timer, NULL))
				pace_pause(t);
			return;
		}
		size_t before = evbuffer_get_length(out);
		int rc = t->spec.fill(t->spec.fill_ctx, out);
		t->queued += evbuffer_get_length(out) - before;
		pace_charge(t, evbuffer_get_length(out) - before);
		if (rc < 0) {
			char text[160];
			log_stopped(t, "reading the file", -rc);
			snprintf(text, sizeof(text), "Read error: %s; transfer aborted.", strerror(-rc));
			finish(t, R_451_LOCAL_ERROR, text);
			return;
		}
		if (rc == 1)
			t->produced_all = true;
	}
	if (t->produced_all) {
		/* From now on, call back only once everything has left. */
		bufferevent_setwatermark(t->bev, EV_WRITE, 0, 0);
		if (evbuffer_get_length(out) == 0)
			finish(t, R_226_CLOSING_DATA,
			       t->spec.done_text[0] ? t->spec.done_text : "Transfer complete.");
	}
}

static void on_write(struct bufferevent *bev, void *arg)
{
	fill_output(arg);
}

/*
 * The producer of binary file downloads: the file is one segment, sent with sendfile, and
 * goes into the output SEND_MAX at a time.  libevent 2.1 gives sendfile a whole chain, not
 * the bufferevent's max_single_write: queued as one piece, a 512 MiB file went out in a
 * few calls of 30-50 ms each (the client reads on the other core, so the socket never
 * fills), during which the worker's other sessions waited.
 */
static int fill_file_binary(void *ctx, struct evbuffer *out)
{
	struct transfer *t = ctx;
	if (t->spec.size == 0)
		return 1;
	if (t->seg == NULL) {
		t->seg = evbuffer_file_segment_new(t->spec.file_fd, (ev_off_t)t->spec.offset,
						   (ev_off_t)t->spec.size, EVBUF_FS_CLOSE_ON_FREE);
		if (t->seg == NULL)
			return -EIO;
		t->spec.file_fd = -1; /* the segment owns it now */
	}
	uint64_t left = t->spec.size - t->seg_queued;
	uint64_t n = left < SEND_MAX ? left : SEND_MAX;
	uint64_t allowed = pace_allowed(t); /* a paced download queues what it may send */
	if (n > allowed)
		n = allowed;
	if (evbuffer_add_file_segment(out, t->seg, (ev_off_t)t->seg_queued, (ev_off_t)n) < 0)
		return -EIO;
	t->seg_queued += n;
	return t->seg_queued == t->spec.size ? 1 : 0;
}

/* Binary downloads over TLS: sendfile cannot encrypt, so the file is read in chunks. */
static int fill_file_read(void *ctx, struct evbuffer *out)
{
	struct transfer *t = ctx;
	struct evbuffer_iovec v;
	if (evbuffer_reserve_space(out, CHUNK, &v, 1) < 1)
		return -ENOMEM;
	size_t want = v.iov_len < CHUNK ? v.iov_len : CHUNK;
	ssize_t n;
	do {
		n = read(t->spec.file_fd, v.iov_base, want);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	v.iov_len = (size_t)n;
	if (evbuffer_commit_space(out, &v, 1) < 0)
		return -ENOMEM;
	return n == 0 ? 1 : 0;
}

/*
 * A TLS binary download past its handshake, written here rather than through libevent's
 * TLS bufferevent: the file is read 256 KiB at a time into the transfer's buffer, OpenSSL
 * encrypts from it into a buffering BIO that reaches the socket 256 KiB a write(2)
 * (tls_take_over_writing) instead of one 16 KiB record a write, and at the end flushes it.
 * At most 1 MiB a wake-up, as uploads; the socket staying writable brings the next.
 */
static void on_tls_download(evutil_socket_t fd, short what, void *arg)
{
	struct transfer *t = arg;
	if (what & EV_TIMEOUT) {
		log_stopped(t, "data connection", ETIMEDOUT);
		finish(t, R_426_TRANSFER_ABORTED, "Data connection timed out; transfer aborted.");
		return;
	}
	size_t budget = (size_t)UPLOAD_BUF * UPLOAD_READS;
	for (;;) {
		if (t->out_off == t->out_len && !t->out_eof) {
			if (budget == 0)
				return;
			uint64_t allowed = pace_allowed(t);
			if (allowed == 0) {
				pace_pause(t);
				return;
			}
			size_t want = allowed < OUT_BUF ? (size_t)allowed : OUT_BUF;
			ssize_t n;
			do {
				n = read(t->spec.file_fd, t->out_buf, want);
			} while (n < 0 && errno == EINTR);
			if (n > 0)
				pace_charge(t, (uint64_t)n);
			if (n < 0) {
				char text[160];
				int err = errno;
				log_stopped(t, "reading the file", err);
				snprintf(text, sizeof(text), "Read error: %s; transfer aborted.",
					 strerror(err));
				finish(t, R_451_LOCAL_ERROR, text);
				return;
			}
			t->out_len = (size_t)n;
			t->out_off = 0;
			t->out_eof = n == 0;
			continue;
		}
		ssize_t w;
		if (t->out_off < t->out_len)
			w = tls_write(t->bev, t->out_buf + t->out_off, t->out_len - t->out_off);
		else
			w = tls_flush(t->bev); /* the end: what the buffering BIO holds */
		if (w == -EAGAIN)
			return; /* the socket is full: EV_WRITE brings us back */
		if (w < 0) {
			log_stopped(t, "data connection", (int)-w);
			finish(t, R_426_TRANSFER_ABORTED, "Data connection broken; transfer aborted.");
			return;
		}
		if (t->out_off == t->out_len) {
			t->produced_all = true;
			finish(t, R_226_CLOSING_DATA,
			       t->spec.done_text[0] ? t->spec.done_text : "Transfer complete.");
			return;
		}
		t->out_off += (size_t)w;
		t->queued += (uint64_t)w;
		budget = (size_t)w < budget ? budget - (size_t)w : 0;
	}
}

/* The producer of TYPE A file downloads: LF becomes CR LF on the way out. */
static int fill_file_ascii(void *ctx, struct evbuffer *out)
{
	struct transfer *t = ctx;
	uint8_t in[CHUNK];
	ssize_t n;
	do {
		n = read(t->spec.file_fd, in, sizeof(in));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return 1;
	struct evbuffer_iovec v;
	if (evbuffer_reserve_space(out, 2 * (size_t)n, &v, 1) < 1)
		return -ENOMEM;
	v.iov_len = ascii_to_crlf(&t->ascii, in, (size_t)n, v.iov_base);
	if (evbuffer_commit_space(out, &v, 1) < 0)
		return -ENOMEM;
	return 0;
}

/* ---- uploads ---- */

/* Write to the file, counting every byte that reaches it, also before a failure. */
static int write_file(struct transfer *t, const uint8_t *p, size_t n)
{
	size_t done;
	int rc = fd_write_all_counted(t->spec.file_fd, p, n, &done);
	t->written += done;
	return rc;
}

/* Bytes the upload may still write within the user's quota (UINT64_MAX: no quota). */
static uint64_t room_left(const struct transfer *t)
{
	return t->spec.quota_room > t->written ? t->spec.quota_room - t->written : 0;
}

/* drain_upload's answer when the client sent more than the quota leaves room for. */
#define OVER_QUOTA 1

/*
 * The client sent more than fits: the bytes beyond the quota are not written, the reply
 * is 552 (RFC 959: "exceeded storage allocation") and the data connection closes.
 */
static void stop_at_quota(struct transfer *t)
{
	char text[96];
	t->over_quota = true;
	log_info("session %llu: upload of %s stopped at the user's quota after %llu bytes",
		 (unsigned long long)t->s->id, LOG_Q(t->spec.path), (unsigned long long)t->written);
	snprintf(text, sizeof(text), "Quota exceeded; %llu bytes stored.",
		 (unsigned long long)t->written);
	finish(t, R_552_EXCEEDED, text);
}

/* Write n bytes that arrived to the file, TYPE A converted.  Returns 0 or -errno. */
static int store(struct transfer *t, const uint8_t *p, size_t n)
{
	if (!t->spec.ascii)
		return write_file(t, p, n);
	uint8_t conv[CHUNK + 1];
	while (n > 0) {
		size_t take = n < CHUNK ? n : CHUNK;
		size_t m = ascii_from_crlf(&t->ascii, p, take, conv);
		int rc = write_file(t, conv, m);
		if (rc < 0)
			return rc;
		p += take;
		n -= take;
	}
	return 0;
}

/*
 * Write what has arrived over TLS to the file, as far as the quota allows.  Returns 0,
 * OVER_QUOTA when bytes are left that do not fit, or -errno.
 */
static int drain_upload(struct transfer *t)
{
	if (t->bev == NULL)
		return 0; /* a clear upload: nothing waits in user space */
	struct evbuffer *in = bufferevent_get_input(t->bev);
	while (evbuffer_get_length(in) > 0) {
		uint64_t room = room_left(t);
		if (room == 0)
			return OVER_QUOTA;
		if (!t->spec.ascii) {
			size_t most = room < (uint64_t)INT32_MAX ? (size_t)room : (size_t)INT32_MAX;
			int n = evbuffer_write_atmost(in, t->spec.file_fd, (ev_ssize_t)most);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			t->written += (uint64_t)n;
			continue;
		}
		uint8_t raw[CHUNK];
		/* TYPE A writes at most what it reads (CR LF becomes LF): never past the room. */
		int n = evbuffer_remove(in, raw, room < sizeof(raw) ? (size_t)room : sizeof(raw));
		if (n <= 0)
			return -EIO;
		int rc = store(t, raw, (size_t)n);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void upload_failed(struct transfer *t, int err)
{
	char text[160];
	bool full = err == -ENOSPC || err == -EDQUOT;
	log_stopped(t, "writing the file", -err);
	snprintf(text, sizeof(text), "%s; transfer aborted.",
		 full ? "Insufficient storage space" : strerror(-err));
	finish(t, full ? R_452_NO_SPACE : R_451_LOCAL_ERROR, text);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct transfer *t = arg;
	if (t->tls && !t->verified)
		return;
	int rc = drain_upload(t);
	if (rc < 0)
		upload_failed(t, rc);
	else if (rc == OVER_QUOTA)
		stop_at_quota(t);
}

static void upload_done(struct transfer *t);

int transfer_init(void)
{
	if (upload_pipe[0] >= 0)
		return 0;
	if (pipe2(upload_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		upload_pipe[0] = upload_pipe[1] = -1;
		return -errno;
	}
	/* A pipe of the default 64 KiB would take four splices where one does. */
	int size = fcntl(upload_pipe[1], F_SETPIPE_SZ, UPLOAD_BUF);
	if (size < 0)
		size = fcntl(upload_pipe[1], F_GETPIPE_SZ);
	upload_pipe_size = size > 0 && size < UPLOAD_BUF ? (size_t)size : UPLOAD_BUF;
	return 0;
}

/* Throw away what a failed write left in the pipe: the next upload must find it empty. */
static void empty_pipe(void)
{
	for (;;) {
		ssize_t n = read(upload_pipe[0], upload_buf, UPLOAD_BUF);
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		return;
	}
}

/* The n bytes in the pipe go to the file through upload_buf (O_APPEND files). */
static int copy_from_pipe(struct transfer *t, size_t n)
{
	while (n > 0) {
		ssize_t m = read(upload_pipe[0], upload_buf, n < UPLOAD_BUF ? n : UPLOAD_BUF);
		if (m < 0 && errno == EINTR)
			continue;
		int rc = m > 0 ? write_file(t, upload_buf, (size_t)m) : m < 0 ? -errno : -EIO;
		if (rc < 0) {
			empty_pipe();
			return rc;
		}
		n -= (size_t)m;
	}
	return 0;
}

/*
 * Move the n bytes waiting in the pipe into the file, counting every byte that reaches it.
 * Returns 0, or -errno with the rest thrown away (the file has what it has, for REST).
 */
static int pipe_to_file(struct transfer *t, size_t n)
{
	while (n > 0) {
		ssize_t m = splice(upload_pipe[0], NULL, t->spec.file_fd, NULL, n, SPLICE_F_MOVE);
		if (m > 0) {
			t->written += (uint64_t)m;
			n -= (size_t)m;
			continue;
		}
		if (m < 0 && errno == EINTR)
			continue;
		if (m < 0 && errno == EINVAL) {
			/* A file system that splice cannot write to: copy from now on. */
			t->no_splice = true;
			return copy_from_pipe(t, n);
		}
		int rc = m < 0 ? -errno : -EIO;
		empty_pipe();
		return rc;
	}
	return 0;
}

/*
 * A clear upload has filled its quota room: one byte more from the client is one too many
 * (552); the end of the data instead is a complete upload that fit exactly.
 */
static void plain_at_quota(struct transfer *t, int fd)
{
	uint8_t probe;
	ssize_t n;
	do {
		n = read(fd, &probe, 1);
	} while (n < 0 && errno == EINTR);
	if (n > 0) {
		stop_at_quota(t);
	} else if (n == 0) {
		upload_done(t);
	} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
		log_stopped(t, "data connection", errno);
		finish(t, R_426_TRANSFER_ABORTED, "Data connection broken; transfer aborted.");
	}
}

/*
 * A clear upload's socket is readable (or the data time-out passed: the event is
 * persistent, so the time-out restarts whenever data comes).  Not a bufferevent: libevent
 * 2.1 reads at most 16 KiB a call (EVBUFFER_MAX_READ), with an ioctl(FIONREAD), a readv
 * and an epoll_wait each time.  Here a wake-up moves up to UPLOAD_READS pieces of 256 KiB,
 * each with two splices (socket to pipe, pipe to file: the bytes are copied once, by the
 * kernel, instead of into upload_buf and out again), or a read and a write for TYPE A.
 */
static void on_plain_upload(evutil_socket_t fd, short what, void *arg)
{
	struct transfer *t = arg;
	if (what & EV_TIMEOUT) {
		log_stopped(t, "data connection", ETIMEDOUT);
		finish(t, R_426_TRANSFER_ABORTED, "Data connection timed out; transfer aborted.");
		return;
	}
	for (int i = 0; i < UPLOAD_READS; i++) {
		bool spliced = !t->spec.ascii && !t->no_splice && upload_pipe[0] >= 0;
		size_t want = spliced ? upload_pipe_size : UPLOAD_BUF;
		uint64_t room = room_left(t);
		if (room == 0) {
			plain_at_quota(t, fd);
			return;
		}
		uint64_t allowed = pace_allowed(t);
		if (allowed == 0) {
			pace_pause(t);
			return;
		}
		if (want > allowed)
			want = (size_t)allowed;
		if (want > room)
			want = (size_t)room; /* TYPE A writes at most what it reads */
		ssize_t n = spliced ? splice(fd, NULL, upload_pipe[1], NULL, want,
					     SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
				    : read(fd, upload_buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 && spliced && errno == EINVAL) {
			t->no_splice = true; /* not a socket splice can read: read it */
			continue;
		}
		if (n < 0) {
			log_stopped(t, "data connection", errno);
			finish(t, R_426_TRANSFER_ABORTED, "Data connection broken; transfer aborted.");
			return;
		}
		if (n == 0) {
			upload_done(t);
			return;
		}
		pace_charge(t, (uint64_t)n);
		int rc = spliced ? pipe_to_file(t, (size_t)n) : store(t, upload_buf, (size_t)n);
		if (rc < 0) {
			upload_failed(t, rc);
			return;
		}
		if ((size_t)n < want)
			return; /* the socket is empty: spare the call that would say EAGAIN */
	}
}

/* The same as plain_at_quota, over TLS. */
static void tls_at_quota(struct transfer *t)
{
	uint8_t probe;
	ssize_t n = tls_read(t->bev, &probe, 1);
	if (n > 0) {
		stop_at_quota(t);
	} else if (n == 0) {
		upload_done(t);
	} else if (n != -EAGAIN) {
		log_stopped(t, "data connection", (int)-n);
		finish(t, R_426_TRANSFER_ABORTED, "Data connection broken; transfer aborted.");
	}
}

/*
 * A TLS upload past its handshake, read here rather than by libevent's TLS bufferevent,
 * which takes one 16 KiB record per wake-up (two reads and an epoll_wait each): OpenSSL
 * reads ahead several records a read(2) (tls_take_over_reading), and the file gets 256 KiB
 * a write.  The same bound per wake-up as a clear upload; what OpenSSL still holds when the
 * bound is reached would raise no event, so the event is made active again for it.
 */
static void on_tls_upload(evutil_socket_t fd, short what, void *arg)
{
	struct transfer *t = arg;
	if (what & EV_TIMEOUT) {
		log_stopped(t, "data connection", ETIMEDOUT);
		finish(t, R_426_TRANSFER_ABORTED, "Data connection timed out; transfer aborted.");
		return;
	}
	for (int i = 0; i < UPLOAD_READS; i++) {
		uint64_t room = room_left(t);
		if (room == 0) {
			tls_at_quota(t);
			return;
		}
		uint64_t allowed = pace_allowed(t);
		if (allowed == 0) {
			pace_pause(t);
			return;
		}
		size_t limit = allowed < UPLOAD_BUF ? (size_t)allowed : UPLOAD_BUF;
		if (limit > room)
			limit = (size_t)room; /* TYPE A writes at most what it reads */
		size_t got = 0;
		ssize_t n = 1;
		while (got < limit && (n = tls_read(t->bev, upload_buf + got, limit - got)) > 0)
			got += (size_t)n;
		pace_charge(t, got);
		int rc = got > 0 ? store(t, upload_buf, got) : 0;
		if (rc < 0) {
			upload_failed(t, rc);
			return;
		}
		if (n > 0 || got == limit)
			continue; /* the buffer filled: more may wait */
		if (n == -EAGAIN)
			return;
		if (n == 0) {
			upload_done(t);
			return;
		}
		/* A reset, or a TLS error: what reached the file stays, for REST. */
		log_stopped(t, "data connection", (int)-n);
		finish(t, R_426_TRANSFER_ABORTED, "Data connection broken; transfer aborted.");
		return;
	}
	if (tls_read_pending(t->bev))
		event_active(t->io_ev, EV_READ, 0);
}

static void upload_done(struct transfer *t)
{
	int rc = drain_upload(t);
	if (rc == 0 && t->spec.ascii) {
		uint8_t cr[1];
		size_t m = ascii_from_crlf_flush(&t->ascii, cr);
		rc = m > room_left(t) ? OVER_QUOTA : write_file(t, cr, m);
	}
	if (rc == OVER_QUOTA) {
		stop_at_quota(t);
		return;
	}
	if (rc < 0) {
		upload_failed(t, rc);
		return;
	}
	finish(t, R_226_CLOSING_DATA, t->spec.done_text[0] ? t->spec.done_text : "Transfer complete.");
}

/*
 * STOR cuts the file only once the data connection is really the client's: a STOR whose
 * data connection fails, or is refused, must not destroy the old file.  Returns -1 after
 * finishing the transfer with an error.
 */
static int truncate_for_store(struct transfer *t)
{
	if (!t->spec.truncate || ftruncate(t->spec.file_fd, (off_t)t->spec.offset) == 0)
		return 0;
	char text[160];
	snprintf(text, sizeof(text), "Cannot write the file: %s.", strerror(errno));
	finish(t, R_451_LOCAL_ERROR, text);
	return -1;
}

/*
 * An upload over TLS ends with the client's close_notify, or at least with a FIN: libevent
 * reports a reset as an end too (dirty shutdowns are allowed, since many clients skip the
 * close_notify), so the TCP state tells a cut connection from a closed one.
 */
static bool tls_upload_ended(struct transfer *t)
{
	if (tls_peer_closed_cleanly(t->bev))
		return true;
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int fd = bufferevent_getfd(t->bev);
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return false;
	return ti.tcpi_state == TCP_CLOSE_WAIT;
}

/* A refused data connection: counted by the master, logged (rate-limited), answered. */
static void refuse(struct transfer *t, enum data_refusal why, const char *log_what,
		   const char *reply)
{
	struct session *s = t->s;
	worker_report_refusal(s->srv, s->id, why);
	log_warn_limited(&s->srv->rl_data_tls, "session %llu: data connection from %s %s; refused (%s)",
			 (unsigned long long)s->id, s->peer_str, log_what, data_refusal_name(why));
	finish(t, R_522_TLS_REFUSED, reply);
}

/* A data connection that did not resume this control connection's session: say how. */
static void refuse_not_resumed(struct transfer *t, enum tls_reuse reuse)
{
	switch (reuse) {
	case TLS_REUSE_OTHER:
		refuse(t, DR_TLS_OTHER_SESSION,
		       "offered the TLS session of another control connection",
		       "Data connection refused: it offered the TLS session of another control "
		       "connection; it must resume this one's.");
		return;
	case TLS_REUSE_UNKNOWN:
		refuse(t, DR_TLS_UNKNOWN_SESSION,
		       "offered a TLS session that cannot be resumed here (expired, or issued "
		       "before a restart)",
		       "Data connection refused: it offered a TLS session that cannot be resumed "
		       "here (expired?); log in again for a fresh one.");
		return;
	default:
		refuse(t, DR_TLS_NEW_SESSION,
		       "made a new TLS session instead of resuming the control connection's",
		       "Data connection refused: TLS session reuse is required and it offered no "
		       "session to resume; use a client that reuses the control connection's TLS "
		       "session.");
		return;
	}
}

/*
 * The TLS handshake of a data connection is over.  Where reuse is required, a handshake
 * that did not resume a session of this control connection (tls.h) was stopped before it
 * completed (on_event); this is the rule's second line.  Whoever connected otherwise is
 * not the client that logged in, or a client that forgets its session; either way, no
 * byte moves.
 */
static void data_handshake_done(struct transfer *t)
{
	struct session *s = t->s;
	enum tls_reuse reuse = tls_data_reuse(t->bev);
	struct sockaddr_storage peer = session_peer(s);
	if (reuse != TLS_REUSE_RESUMED && config_reuse_required(s->srv->cfg, &peer)) {
		refuse_not_resumed(t, reuse);
		return;
	}
	t->verified = true;
	/* The session this connection resumed is spent for the client: a fresh one for the next. */
	if (s->ctl != s->sock && tls_renew_ticket(s->ctl) < 0)
		log_warn("session %llu: cannot issue a new TLS session ticket on the control "
			 "connection", (unsigned long long)s->id);
	if (t->spec.upload) {
		if (truncate_for_store(t) < 0)
			return;
		int rc = drain_upload(t); /* anything libevent read with the handshake */
		if (rc == OVER_QUOTA) {
			stop_at_quota(t);
			return;
		}
		if (rc < 0) {
			upload_failed(t, rc);
			return;
		}
		tls_take_over_reading(t->bev);
		struct timeval tv = { .tv_sec = s->srv->cfg->data_timeout, .tv_usec = 0 };
		t->io_ev = event_new(s->srv->base, bufferevent_getfd(t->bev), EV_READ | EV_PERSIST,
					 on_tls_upload, t);
		if (t->io_ev == NULL || event_add(t->io_ev, &tv) < 0) {
			finish(t, R_451_LOCAL_ERROR, "Out of memory; transfer aborted.");
			return;
		}
		event_active(t->io_ev, EV_READ, 0); /* OpenSSL may hold more already */
		return;
	}
	if (t->spec.fill == fill_file_read) {
		t->out_buf = malloc(OUT_BUF);
		struct timeval tv = { .tv_sec = s->srv->cfg->data_timeout, .tv_usec = 0 };
		if (t->out_buf != NULL && tls_take_over_writing(t->bev) == 0)
			t->io_ev = event_new(s->srv->base, bufferevent_getfd(t->bev),
					     EV_WRITE | EV_PERSIST, on_tls_download, t);
		if (t->io_ev == NULL || event_add(t->io_ev, &tv) < 0) {
			finish(t, R_451_LOCAL_ERROR, "Out of memory; transfer aborted.");
			return;
		}
		return;
	}
	fill_output(t);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct transfer *t = arg;
	int err = EVUTIL_SOCKET_ERROR(); /* what failed, before anything else can change it */
	if (what & BEV_EVENT_CONNECTED) {
		if (t->tls)
			data_handshake_done(t);
		return;
	}
	if (t->tls && !t->verified && tls_data_stopped(bev)) {
		refuse_not_resumed(t, tls_data_reuse(bev));
		return;
	}
	if (t->tls && !t->verified) {
		char why[256], failed[300], text[320];
		tls_last_error(bev, why, sizeof(why));
		snprintf(failed, sizeof(failed), "failed its TLS handshake: %s", why);
		snprintf(text, sizeof(text), "TLS negotiation on the data connection failed: %s.",
			 why);
		refuse(t, DR_TLS_HANDSHAKE, failed, text);
		return;
	}
	if (t->spec.upload && (what & BEV_EVENT_EOF) && (!t->tls || tls_upload_ended(t))) {
		upload_done(t);
		return;
	}
	if (t->spec.upload) {
		/* Keep what arrived: a broken upload can be resumed with REST. */
		drain_upload(t);
	}
	if (what & BEV_EVENT_TIMEOUT)
		log_stopped(t, "data connection", ETIMEDOUT);
	else
		log_stopped(t, "data connection", (what & BEV_EVENT_ERROR) && err != 0 ? err : EPIPE);
	const char *text = (what & BEV_EVENT_TIMEOUT)
				   ? "Data connection timed out; transfer aborted."
				   : "Data connection broken; transfer aborted.";
	finish(t, R_426_TRANSFER_ABORTED, text);
}

/* A download's client has nothing to send; whatever it sends is dropped. */
static void discard_input(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	evbuffer_drain(in, evbuffer_get_length(in));
}

/*
 * A binary download in the clear tries sendfile at once, on a fresh connection whose send
 * buffer is empty: a small file (most of them) then leaves in that one call and the
 * transfer ends here, without a bufferevent, a write event, an epoll_wait and the two
 * epoll_ctl calls around it.  What did not fit goes on through the bufferevent.  Returns
 * true when the file is all sent.
 */
static bool send_at_once(struct transfer *t, int fd)
{
	if (t->spec.fill != fill_file_binary)
		return false;
	if (t->spec.size == 0)
		return true;
	/*
	 * Bounded: while the client reads on the other core, one sendfile can go on for as
	 * long as the socket keeps draining (hundreds of MiB), and the worker's other sessions
	 * would wait for it.
	 */
	size_t want = t->spec.size < SEND_AT_ONCE_MAX ? (size_t)t->spec.size : SEND_AT_ONCE_MAX;
	off_t off = (off_t)t->spec.offset;
	ssize_t n;
	do {
		n = sendfile(fd, t->spec.file_fd, &off, want);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return false; /* EAGAIN, or an error the bufferevent will meet and report */
	t->queued += (uint64_t)n;
	t->spec.offset += (uint64_t)n;
	t->spec.size -= (uint64_t)n;
	return t->spec.size == 0;
}

static void on_data_ready(struct session *s, int fd, const char *why)
{
	struct transfer *t = s->xfer;
	if (fd < 0) {
		char text[256];
		snprintf(text, sizeof(text), "Cannot open data connection: %s.", why ? why : "failed");
		finish(t, R_425_CANT_OPEN_DATA, text);
		return;
	}
	bool plain_upload = t->spec.upload && !t->tls;
	clock_gettime(CLOCK_MONOTONIC, &t->start);
	if (!t->tls && !t->spec.upload && !t->paced && send_at_once(t, fd)) {
		t->sock_fd = fd;
		t->connected = true;
		session_reply(s, R_150_OPENING_DATA, t->spec.opening);
		finish(t, R_226_CLOSING_DATA,
		       t->spec.done_text[0] ? t->spec.done_text : "Transfer complete.");
		return;
	}
	if (t->tls) {
		struct sockaddr_storage peer = session_peer(s);
		t->bev = tls_socket_accept(s->srv->tls, s->srv->base, fd, &s->tls_id,
					   config_reuse_required(s->srv->cfg, &peer), s->host->name);
	} else if (plain_upload) {
		t->sock_fd = fd;
		t->io_ev = event_new(s->srv->base, fd, EV_READ | EV_PERSIST, on_plain_upload, t);
	} else if ((t->bev = bufferevent_socket_new(s->srv->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
	}
	if (t->bev == NULL && t->io_ev == NULL) {
		finish(t, R_425_CANT_OPEN_DATA, "Cannot open data connection: out of memory.");
		return;
	}
	/* Over TLS only once the handshake has passed the reuse rule (data_handshake_done). */
	if (!t->tls && truncate_for_store(t) < 0)
		return;
	t->connected = true;
	session_reply(s, R_150_OPENING_DATA, t->spec.opening);

	struct timeval tv = { .tv_sec = s->srv->cfg->data_timeout, .tv_usec = 0 };
	if (plain_upload) {
		if (event_add(t->io_ev, &tv) < 0)
			finish(t, R_425_CANT_OPEN_DATA, "Cannot open data connection: out of memory.");
		return;
	}
	bufferevent_set_timeouts(t->bev, &tv, &tv);
	bufferevent_set_max_single_read(t->bev, 256 * 1024);
	bufferevent_set_max_single_write(t->bev, SEND_MAX);
	if (t->spec.upload) {
		/* Over TLS, records of 16 KiB: write the file in larger pieces (the end: EOF). */
		bufferevent_setwatermark(t->bev, EV_READ, t->tls ? UPLOAD_BUF : 0, IN_HIGH);
		bufferevent_setcb(t->bev, on_read, NULL, on_event, t);
		bufferevent_enable(t->bev, EV_READ);
		/* TLS writes during the handshake and for the close_notify. */
		bufferevent_enable(t->bev, EV_WRITE);
		return;
	}
	bufferevent_setwatermark(t->bev, EV_WRITE, t->spec.fill == fill_file_binary ? SEND_MAX : OUT_LOW,
				 0);
	bufferevent_setcb(t->bev, t->tls ? discard_input : NULL, on_write, on_event, t);
	bufferevent_enable(t->bev, EV_WRITE);
	/* A TLS download still reads: the handshake, and the client's close_notify. */
	if (t->tls)
		bufferevent_enable(t->bev, EV_READ);
	else
		bufferevent_disable(t->bev, EV_READ);
	fill_output(t);
}

/* The session's rate for the direction, and its user's shared one: a paced transfer. */
static int set_pace(struct transfer *t)
{
	const struct session *s = t->s;
	uint64_t own = 0;
	if (s->set != NULL)
		own = t->spec.upload ? s->set->rate_up : s->set->rate_down;
	struct rate_bucket *shared = NULL;
	if (s->group != NULL)
		shared = t->spec.upload ? &s->group->up : &s->group->down;
	if (own == 0 && shared == NULL)
		return 0;
	t->pace_timer = evtimer_new(s->srv->base, on_pace_timer, t);
	if (t->pace_timer == NULL)
		return -1;
	rate_init(&t->own, own, rate_now_ns());
	t->shared = shared;
	t->paced = true;
	return 0;
}

void transfer_start(struct session *s, struct transfer_spec *spec)
{
	struct transfer *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		if (spec->upload_end != NULL) {
			struct upload_result r = { .stored = false, .file_fd = spec->file_fd };
			spec->upload_end(spec->upload_ctx, &r);
		}
		if (spec->file_fd >= 0)
			close(spec->file_fd);
		if (spec->fill_free != NULL)
			spec->fill_free(spec->fill_ctx);
		session_reply(s, R_451_LOCAL_ERROR, "Out of memory.");
		return;
	}
	t->s = s;
	t->spec = *spec;
	t->sock_fd = -1;
	t->tls = (s->flags & SF_PROT_P) && s->srv->tls != NULL;
	ascii_init(&t->ascii);
	if (!t->spec.upload && t->spec.fill == NULL) {
		t->spec.fill = t->spec.ascii ? fill_file_ascii
					      : t->tls ? fill_file_read : fill_file_binary;
		t->spec.fill_ctx = t;
	}
	t->passive = data_is_passive(s);
	if (!t->spec.is_listing && set_pace(t) < 0) {
		release(t);
		session_reply(s, R_451_LOCAL_ERROR, "Out of memory.");
		return;
	}
	s->xfer = t;
	data_connect(s, on_data_ready);
}
