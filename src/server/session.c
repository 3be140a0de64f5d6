/*
 * session.c: a session's control connection: reading command lines, queueing replies, the
 * order of commands, time-outs and the end of the session.
 *
 * Commands are answered strictly in order.  While a transfer or a password check runs,
 * the next line waits in the parser (only ABOR, STAT, NOOP and QUIT are taken during a
 * transfer), and input is not read further, so pipelined commands cost no memory beyond
 * the socket's input watermark.
 */
#include "server/session.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "common/err.h"
#include "common/hostport.h"
#include "common/listing.h"
#include "common/reply.h"
#include "server/auth.h"
#include "server/fs_proxy.h"
#include "server/user_group.h"
#include "server/user_settings.h"
#include "server/users.h"
#include "server/data.h"
#include "server/dispatch.h"
#include "server/log.h"
#include "server/throttle.h"
#include "server/transfer.h"
#include "server/worker.h"

/* Stop reading commands while this much output waits for a client that does not read. */
#define CTL_OUT_HIGH (256 * 1024)
/* Bytes of unread input kept per session (pipelining); the socket holds the rest. */
#define CTL_IN_HIGH (64 * 1024)
#define REPLY_MAX (1024 * 1024)
/* A closing session whose last replies cannot leave (a client that does not read) goes. */
#define CLOSE_FLUSH_SECONDS 10

static void process_input(struct session *s);

struct session *session_find(struct server *srv, uint64_t id)
{
	struct session *s = srv->by_id[id % SESSION_ID_BUCKETS];
	while (s != NULL && s->id != id)
		s = s->id_next;
	return s;
}

static void drop_parser(struct session *s)
{
	if (s->parser == NULL)
		return;
	explicit_bzero(s->parser, sizeof(*s->parser)); /* it may hold a PASS line */
	free(s->parser);
	s->parser = NULL;
}

static void free_session(struct session *s)
{
	struct server *srv = s->srv;
	struct session **pp = &srv->by_id[s->id % SESSION_ID_BUCKETS];
	while (*pp != NULL && *pp != s)
		pp = &(*pp)->id_next;
	if (*pp == s)
		*pp = s->id_next;
	transfer_free(s);
	data_free(s);
	if (s->auth != NULL)
		auth_cancel(s->auth);
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->delay_timer != NULL)
		event_free(s->delay_timer);
	if (s->ctl != NULL && s->ctl != s->sock)
		tls_release(s->ctl);
	if (s->sock != NULL)
		bufferevent_free(s->sock);
	if (s->root_fd >= 0) {
		fs_proxy_detach(s->root_fd);
		close(s->root_fd);
	}
	if (s->pending_conn >= 0)
		close(s->pending_conn);
	drop_parser(s);
	free(s->cwd);
	free(s->rnfr);
	free(s->cert_cn);
	user_group_put(s->group);
	session_forget_user(s);
	TAILQ_REMOVE(&srv->sessions, s, link);
	srv->n_sessions--;
	uint64_t id = s->id;
	bool reported = s->flags & SF_END_REPORTED;
	explicit_bzero(s, sizeof(*s));
	free(s);
	if (!reported)
		worker_session_ended(srv, id);
	worker_session_freed(srv);
}

/*
 * The session is over for the master as soon as it is decided, not when the client has
 * read the last reply: a client at its per-address limit that reconnects at once after
 * its 221 must find its count already down.
 */
static void report_end(struct session *s)
{
	if (s->flags & SF_END_REPORTED)
		return;
	s->flags |= SF_END_REPORTED;
	worker_session_ended(s->srv, s->id);
}

void session_close(struct session *s, const char *why)
{
	if (s->flags & SF_PROCESSING) {
		if (!(s->flags & SF_CLOSE_NOW))
			s->close_why = why;
		s->flags |= SF_CLOSE_NOW;
		return;
	}
	log_info("session %llu end client=%s user=%s reason=%s", (unsigned long long)s->id,
		 s->peer_str, s->username[0] ? LOG_Q(s->username) : "-", why);
	free_session(s);
}

static void on_ctl_read(struct bufferevent *bev, void *arg);
static void on_ctl_write(struct bufferevent *bev, void *arg);
static void on_ctl_event(struct bufferevent *bev, short what, void *arg);

/* The replies have left ctl: end TLS (its close_notify still has to go), then close. */
static void close_when_flushed(struct session *s)
{
	if (s->ctl != s->sock) {
		tls_release(s->ctl);
		s->ctl = s->sock;
		bufferevent_setcb(s->sock, NULL, on_ctl_write, on_ctl_event, s);
		bufferevent_disable(s->sock, EV_READ);
		bufferevent_enable(s->sock, EV_WRITE);
	}
	if (evbuffer_get_length(bufferevent_get_output(s->sock)) == 0)
		session_close(s, s->close_why);
}

void session_close_after_flush(struct session *s, const char *why)
{
	if (!(s->flags & SF_CLOSING))
		s->close_why = why;
	s->flags |= SF_CLOSING;
	transfer_free(s);
	data_free(s);
	/* A login in progress ends with the session: nothing about it reaches the master later. */
	login_abandon(s);
	report_end(s);
	bufferevent_disable(s->ctl, EV_READ);
	struct timeval tv = { .tv_sec = CLOSE_FLUSH_SECONDS, .tv_usec = 0 };
	evtimer_add(s->timer, &tv);
	/* Before the handshake no reply can get through TLS: give up on them. */
	if (evbuffer_get_length(bufferevent_get_output(s->ctl)) == 0 ||
	    (s->ctl != s->sock && !tls_handshake_done(s->ctl)))
		close_when_flushed(s);
}

/*
 * A reply in the clear with nothing queued before it is sent at once: one write(2), where
 * queueing it costs arming the write event, an epoll_wait, a writev and disarming the event
 * again (two epoll_ctl), three times for every small file a client fetches.  What the
 * socket does not take, and every error, is left to the bufferevent, which reports it.
 */
static void queue_reply(struct session *s, const struct buf *b)
{
	if (s->flags & SF_CTL_GONE)
		return; /* nobody left to read it */
	size_t sent = 0;
	if (s->ctl == s->sock && evbuffer_get_length(bufferevent_get_output(s->ctl)) == 0) {
		/* The socket is non-blocking and SIGPIPE ignored (worker.c): a plain write. */
		ssize_t n = write(bufferevent_getfd(s->sock), b->data, b->len);
		if (n > 0)
			sent = (size_t)n;
	}
	if (sent < b->len && bufferevent_write(s->ctl, b->data + sent, b->len - sent) < 0)
		session_close(s, "out of memory");
}

void session_reply(struct session *s, int code, const char *text)
{
	struct buf b;
	buf_init(&b, REPLY_MAX);
	if (reply_format(&b, code, text) == 0)
		queue_reply(s, &b);
	buf_free(&b);
}

void session_replyf(struct session *s, int code, const char *fmt, ...)
{
	char text[VPATH_MAX + 512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	session_reply(s, code, text);
}

void session_reply_raw(struct session *s, const struct buf *b)
{
	queue_reply(s, b);
}

void session_forget_user(struct session *s)
{
	if (s->user_owned == NULL)
		return;
	if (s->set == s->user_owned->set)
		s->set = NULL;
	user_entry_clear(s->user_owned);
	explicit_bzero(s->user_owned, sizeof(*s->user_owned));
	free(s->user_owned);
	s->user_owned = NULL;
}

bool session_need(struct session *s, unsigned perm)
{
	if ((user_settings_any_perms(s->set, s->perms) & perm) == perm)
		return true;
	session_reply(s, R_550_UNAVAILABLE, "Permission denied.");
	return false;
}

unsigned session_perms_at(const struct session *s, const char *vpath, bool contents)
{
	return user_settings_perms(s->set, s->perms, vpath, contents);
}

int session_path_need(struct session *s, const char *arg, unsigned perm, bool contents,
		      char *out)
{
	if (session_path(s, arg, out) < 0)
		return -1;
	if ((session_perms_at(s, out, contents) & perm) == perm)
		return 0;
	session_reply(s, R_550_UNAVAILABLE, "Permission denied.");
	return -1;
}

void session_reply_errno(struct session *s, int rc, const char *what)
{
	int e = -rc;
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		session_replyf(s, R_550_UNAVAILABLE, "%s: No such file or directory.", what);
		break;
	case EACCES:
	case EPERM:
	case EROFS:
		session_replyf(s, R_550_UNAVAILABLE, "%s: Permission denied.", what);
		break;
	case EEXIST:
		session_replyf(s, R_550_UNAVAILABLE, "%s: File exists.", what);
		break;
	case ENOTEMPTY:
		session_replyf(s, R_550_UNAVAILABLE, "%s: Directory not empty.", what);
		break;
	case EISDIR:
		session_replyf(s, R_550_UNAVAILABLE, "%s: Is a directory.", what);
		break;
	case ELOOP:
		session_replyf(s, R_550_UNAVAILABLE, "%s: Too many levels of symbolic links.", what);
		break;
	case EINVAL:
	case EBUSY:
		session_replyf(s, R_550_UNAVAILABLE, "%s: Not allowed.", what);
		break;
	case ENOSPC:
	case EDQUOT:
		session_replyf(s, R_452_NO_SPACE, "%s: Insufficient storage space.", what);
		break;
	case ENAMETOOLONG:
		session_replyf(s, R_553_BAD_NAME, "%s: File name too long.", what);
		break;
	default:
		session_replyf(s, R_451_LOCAL_ERROR, "%s: %s.", what, strerror(e));
		break;
	}
}

int session_path(struct session *s, const char *arg, char *out)
{
	int rc = path_resolve(s->cwd != NULL ? s->cwd : "/", arg, strlen(arg), out, VPATH_MAX);
	if (rc == FERR_INVALID) {
		session_reply(s, R_553_BAD_NAME, "File name not allowed.");
		return -1;
	}
	if (rc < 0) {
		session_reply(s, R_553_BAD_NAME, "Path too long.");
		return -1;
	}
	return 0;
}

void session_touch(struct session *s)
{
	const struct config *cfg = s->srv->cfg;
	/* The login timeout counts from the connection: commands do not extend it. */
	if (!(s->flags & SF_LOGGED_IN) && evtimer_pending(s->timer, NULL))
		return;
	unsigned secs = (s->flags & SF_LOGGED_IN) ? cfg->idle_timeout : cfg->login_timeout;
	struct timeval tv = { .tv_sec = secs, .tv_usec = 0 };
	evtimer_add(s->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	if (s->flags & SF_CLOSING) {
		session_close(s, s->close_why);
		return;
	}
	if (s->xfer != NULL) {
		/* A running transfer has its own time-out; the session is not idle. */
		session_touch(s);
		return;
	}
	bool login = !(s->flags & SF_LOGGED_IN);
	session_reply(s, R_421_CLOSING,
		      login ? "Login timeout: closing control connection."
			    : "Idle timeout: closing control connection.");
	session_close_after_flush(s, login ? "login timeout" : "idle timeout");
}

static bool busy(const struct session *s)
{
	return s->xfer != NULL || s->auth != NULL || s->delay_timer != NULL || s->admit != NULL ||
	       data_waiting_for_master(s) || (s->flags & SF_CCC);
}

/* A malformed line: 500, and the session ends when it keeps happening. */
static void bad_line(struct session *s, const char *why)
{
	s->bad_commands++;
	session_replyf(s, R_500_SYNTAX_ERROR, "%s", why);
	if (s->bad_commands >= s->srv->cfg->max_bad_commands) {
		session_reply(s, R_421_CLOSING, "Too many malformed commands.");
		session_close_after_flush(s, "too many malformed commands");
	}
}

static void run_line(struct session *s)
{
	session_touch(s);
	dispatch_line(s, s->parser->line, s->parser->len);
}

static void process_input(struct session *s)
{
	if (s->flags & SF_PROCESSING)
		return;
	s->flags |= SF_PROCESSING;
	while (!(s->flags & (SF_CLOSING | SF_CLOSE_NOW))) {
		/* Fetched each time: AUTH TLS and CCC change what ctl is. */
		struct evbuffer *in = bufferevent_get_input(s->ctl);
		struct evbuffer *out = bufferevent_get_output(s->ctl);
		if (evbuffer_get_length(out) > CTL_OUT_HIGH)
			break; /* resumed by on_ctl_write when the client reads */
		if (s->flags & SF_HELD_LINE) {
			if (busy(s) && !(s->xfer != NULL && s->auth == NULL &&
					 dispatch_during_transfer(s->parser->line, s->parser->len)))
				break;
			s->flags &= ~SF_HELD_LINE;
			run_line(s);
			continue;
		}
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		if (s->parser == NULL) {
			if ((s->parser = malloc(sizeof(*s->parser))) == NULL) {
				session_close(s, "out of memory"); /* deferred: SF_PROCESSING */
				break;
			}
			cmd_parser_init(s->parser);
		}
		size_t used = 0;
		enum cmd_status st = cmd_parser_feed(s->parser, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
		if (st == CMD_AGAIN)
			s->flags |= SF_MID_LINE; /* it consumed bytes without ending a line */
		else
			s->flags &= ~SF_MID_LINE;
		switch (st) {
		case CMD_AGAIN:
			break;
		case CMD_TOOLONG:
			bad_line(s, "Command line too long.");
			break;
		case CMD_HASNUL:
			bad_line(s, "Command line holds a NUL byte.");
			break;
		case CMD_LINE:
			s->flags |= SF_HELD_LINE; /* run at the top of the loop, in its turn */
			break;
		}
	}
	s->flags &= ~SF_PROCESSING;
	if (!(s->flags & (SF_HELD_LINE | SF_MID_LINE)))
		drop_parser(s);
	if (s->flags & SF_CLOSE_NOW)
		session_close(s, s->close_why);
}

void session_quit(struct session *s)
{
	/*
	 * The master hears of the end before the client can read the 221 (replies are written
	 * at once): a client that reconnects right away is not refused by
	 * max_sessions_per_ip for the session it has just left.
	 */
	transfer_free(s);
	data_free(s);      /* a passive port still asked for is given back: before the end */
	login_abandon(s);
	report_end(s);
	session_reply(s, R_221_BYE, "Goodbye.");
	session_close_after_flush(s, "quit");
}

void session_resume(struct session *s)
{
	if ((s->flags & SF_QUIT_PENDING) && s->xfer == NULL && !(s->flags & SF_CLOSING)) {
		session_quit(s);
		return;
	}
	if ((s->flags & SF_CTL_GONE) && !busy(s)) {
		session_close(s, "client closed");
		return;
	}
	if (s->srv->shutting_down && !busy(s) && !(s->flags & SF_CLOSING)) {
		/* SIGTERM let this transfer finish; the session ends with it. */
		session_reply(s, R_421_CLOSING, "Server shutting down.");
		session_close_after_flush(s, "shutdown");
		return;
	}
	process_input(s);
}

static void on_ctl_read(struct bufferevent *bev, void *arg)
{
	process_input(arg);
}

static void on_ctl_write(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	if (s->flags & SF_CLOSING) {
		close_when_flushed(s);
		return;
	}
	if ((s->flags & SF_CCC) && s->ctl != s->sock) {
		/* The 200 of CCC is out: our close_notify follows; the client's ends TLS. */
		tls_shutdown(s->ctl);
		return;
	}
	process_input(s);
}

static void tls_established(struct session *s)
{
	char how[128], cn[64];
	tls_describe(s->ctl, how, sizeof(how));
	free(s->cert_cn);
	/* Kept only when there is one (most clients send none): for a certificate login. */
	if (!tls_peer_cn(s->ctl, cn, sizeof(cn)))
		cn[0] = '\0';
	s->cert_cn = cn[0] != '\0' ? strdup(cn) : NULL;
	bool joined = tls_joined_identity(s->ctl, &s->tls_id);
	/* A client that named a host by SNI and gives no HOST is on that host (cmd_host.c). */
	char sni[VHOST_NAME_MAX + 1];
	const struct served_host *h = NULL;
	if (!(s->flags & (SF_HOST_GIVEN | SF_USER_GIVEN | SF_LOGGED_IN)) &&
	    tls_server_name(s->ctl, sni, sizeof(sni)) && (h = server_find_host(s->srv, sni)) != NULL)
		s->host = h;
	log_info("session %llu TLS %s%s%s%s%s%s", (unsigned long long)s->id, how,
		 joined ? " (joined the TLS session of an earlier control connection)" : "",
		 cn[0] != '\0' ? " client certificate CN=" : "", cn[0] != '\0' ? LOG_Q(cn) : "",
		 h != NULL ? " host by SNI=" : "", h != NULL ? h->name : "");
	if (s->flags & SF_GREET_AFTER_TLS) {
		s->flags &= ~SF_GREET_AFTER_TLS;
		session_reply(s, R_220_READY, s->host->banner);
	}
}

/* After CCC: the client's close_notify came; commands are in the clear from here on. */
static void end_tls_layer(struct session *s)
{
	tls_release(s->ctl);
	s->ctl = s->sock;
	s->flags &= ~(SF_CCC | SF_TLS);
	bufferevent_setcb(s->sock, on_ctl_read, on_ctl_write, on_ctl_event, s);
	bufferevent_setwatermark(s->sock, EV_READ, 0, CTL_IN_HIGH);
	bufferevent_enable(s->sock, EV_READ | EV_WRITE);
	log_info("session %llu: control connection back in the clear (CCC)",
		 (unsigned long long)s->id);
	process_input(s);
}

static void on_ctl_event(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (bev == s->ctl && s->ctl != s->sock)
			tls_established(s);
		return;
	}
	if ((s->flags & SF_CCC) && (what & BEV_EVENT_EOF) && bev == s->ctl && s->ctl != s->sock) {
		end_tls_layer(s);
		return;
	}
	if ((what & BEV_EVENT_ERROR) && s->ctl != s->sock && !(s->flags & SF_CLOSING)) {
		char why[256];
		tls_last_error(s->ctl, why, sizeof(why));
		log_info("session %llu: TLS on the control connection: %s", (unsigned long long)s->id,
			 why);
		/* Let the alert that OpenSSL queued reach the client (protocol_version, ...). */
		s->close_why = "TLS error";
		s->flags |= SF_CLOSING;
		struct timeval tv = { .tv_sec = CLOSE_FLUSH_SECONDS, .tv_usec = 0 };
		evtimer_add(s->timer, &tv);
		close_when_flushed(s);
		return;
	}
	if (transfer_outlives_control(s)) {
		/*
		 * A client may close both connections at once after an upload; the last
		 * bytes can still be in flight on the data connection.  Keep them: the
		 * session ends when the upload does (bounded by the data time-out).
		 */
		s->flags |= SF_CTL_GONE;
		bufferevent_disable(bev, EV_READ | EV_WRITE);
		return;
	}
	session_close(s, (what & BEV_EVENT_EOF) ? "client closed" : "connection error");
}

int session_start_tls(struct session *s)
{
	if (s->srv->tls == NULL || s->ctl != s->sock)
		return -1;
	struct evbuffer *in = bufferevent_get_input(s->sock);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (s->parser != NULL)
		cmd_parser_init(s->parser);
	s->flags &= ~(SF_HELD_LINE | SF_MID_LINE);
	tls_id_new(&s->tls_id);
	struct bufferevent *f = tls_filter_accept(s->srv->tls, s->sock, &s->tls_id, s->host->name);
	if (f == NULL)
		return -1;
	s->ctl = f;
	s->flags |= SF_TLS | SF_TLS_USED;
	bufferevent_setcb(f, on_ctl_read, on_ctl_write, on_ctl_event, s);
	bufferevent_setwatermark(f, EV_READ, 0, CTL_IN_HIGH);
	bufferevent_enable(f, EV_READ | EV_WRITE);
	return 0;
}

void session_clear_control(struct session *s)
{
	s->flags |= SF_CCC;
}

int session_set_cwd(struct session *s, const char *path)
{
	char *copy = strdup(path);
	if (copy == NULL)
		return -ENOMEM;
	free(s->cwd);
	s->cwd = copy;
	return 0;
}

int session_set_rnfr(struct session *s, const char *path)
{
	session_forget_rnfr(s);
	if ((s->rnfr = strdup(path)) == NULL)
		return -ENOMEM;
	s->flags |= SF_HAVE_RNFR;
	return 0;
}

void session_forget_rnfr(struct session *s)
{
	free(s->rnfr);
	s->rnfr = NULL;
	s->flags &= ~SF_HAVE_RNFR;
}

struct session *session_new(struct server *srv, int fd, uint64_t id, bool implicit_tls)
{
	struct session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		return NULL;
	}
	s->srv = srv;
	s->id = id;
	s->root_fd = -1;
	s->pending_conn = -1;
	s->host = &srv->hosts[0];
	s->mlst_facts = FACT_ALL;
	s->type_ascii = true; /* RFC 959 s.3.1.1.5: the default representation type */
	TAILQ_INSERT_TAIL(&srv->sessions, s, link);
	s->id_next = srv->by_id[id % SESSION_ID_BUCKETS];
	srv->by_id[id % SESSION_ID_BUCKETS] = s;
	srv->n_sessions++;

	struct sockaddr_storage peer, local;
	int one = 1;
	if (getpeername(fd, (struct sockaddr *)&peer, &(socklen_t){ sizeof(peer) }) < 0 ||
	    getsockname(fd, (struct sockaddr *)&local, &(socklen_t){ sizeof(local) }) < 0) {
		close(fd);
		free_session(s);
		return NULL;
	}
	hostport_unmap(&peer);
	hostport_unmap(&local);
	hostport_addr_set(&s->peer, &peer);
	hostport_addr_set(&s->local, &local);
	hostport_ntop(&peer, s->peer_str, sizeof(s->peer_str));
	/* Telnet Synch arrives as urgent data; keep it in line so ABOR is read in order. */
	setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	evutil_make_socket_nonblocking(fd);

	s->sock = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->ctl = s->sock;
	s->timer = evtimer_new(srv->base, on_timer, s);
	if (s->ctl == NULL || s->timer == NULL) {
		if (s->ctl == NULL)
			close(fd);
		free_session(s);
		return NULL;
	}
	bufferevent_setcb(s->ctl, on_ctl_read, on_ctl_write, on_ctl_event, s);
	bufferevent_setwatermark(s->ctl, EV_READ, 0, CTL_IN_HIGH);
	bufferevent_enable(s->ctl, EV_READ | EV_WRITE);
	log_info("session %llu start client=%s%s", (unsigned long long)id, s->peer_str,
		 implicit_tls ? " (implicit TLS)" : "");
	if (implicit_tls && session_start_tls(s) < 0) {
		log_warn("session %llu: cannot start TLS", (unsigned long long)id);
		free_session(s);
		return NULL;
	}
	/* With implicit TLS the greeting is the host's that SNI names (tls_established). */
	if (implicit_tls)
		s->flags |= SF_GREET_AFTER_TLS;
	else
		session_reply(s, R_220_READY, s->host->banner);
	session_touch(s);
	return s;
}
