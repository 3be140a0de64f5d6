/*
 * ftpload.c: the load client of bench/peers.py's 'small' and 'logins' scenarios.
 *
 * Many concurrent FTP sessions from one thread (epoll, non-blocking sockets), so that on a
 * machine with few cores the client costs far less CPU than the server it measures; the
 * Python threads it replaces took about as much as the servers did.  The same binary drives
 * every server, so the ratios between servers stay fair.
 *
 *   ftpload small  --port P --user U --sessions N --files M --dir small --expect DIR
 *   ftpload logins --port P --user U --sessions N [--logins T]
 *   (the password is the first line of standard input: not in argv, which ps shows)
 *   --user-list instead of --user U: standard input holds one "NAME PASSWORD" line a user
 *   (the password is the rest of the line), and login k (counted from 0 over the whole
 *   run, in the order the connections are opened) is made as user k modulo their number,
 *   so that many users, not one, are looked up and checked.
 *
 * small:  every session logs in (USER, PASS, TYPE I, CWD --dir) and waits at a barrier;
 *         when all are there, each does M times: EPSV, connect to the port of the 229
 *         reply, RETR sNNNN, read the data to EOF.  The 1xx and 226/250 replies may come
 *         before, between or after the data bytes; all three are awaited.  Every byte is
 *         compared with --expect DIR/sNNNN.  Rate: files / (last file done - barrier).
 * logins: N connections are opened at once; each: 220, USER -> 331, PASS -> 230, QUIT -> 221;
 *         a session that has its 221 connects again while fewer than T (--logins, default
 *         N) logins have begun, so N stay under way until the last T - N have started.
 *         Rate: T / (last 230 - first connect); latency: connect() to 230, p50 and p99.
 *
 * Output: one JSON line on standard output ("ok": true or false); the reason of a failure
 * also on standard error, exit status 1.  The first failed check or time-out ends the run:
 * a greeting must come within --greeting-timeout seconds (a server whose accept queue
 * overflows leaves a connection the client thinks open without ever greeting it), every
 * later reply or data byte within --timeout seconds of the previous one.
 * The client's own CPU time (getrusage) is reported for the measured interval.
 *
 * It must never write to the server's files, and never leave a check out to go faster.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
	CTL_BUF = 4096,         /* longest reply line accepted, as servers cap command lines */
	TEXT_MAX = 512,         /* reply text kept for messages and the EPSV port */
	ERR_MAX = 1024,
	MAX_FILE = 1 << 20,     /* an --expect file larger than this is a mistake */
	MAX_SESSIONS = 100000,
	MAX_LOGINS = 10000000,
	CRED_MAX = 256,         /* a user name or a password, its NUL included */
	EVENTS = 256,
	SCAN_MS = 100,          /* how often deadlines are checked */
};

enum reply_code {
	R_125_DATA_OPEN_STARTING = 125,
	R_150_OPENING_DATA = 150,
	R_200_OK = 200,
	R_220_READY = 220,
	R_221_BYE = 221,
	R_226_CLOSING_DATA = 226,
	R_229_EXTENDED_PASSIVE = 229,
	R_230_LOGGED_IN = 230,
	R_250_FILE_ACTION_OK = 250,
	R_331_NEED_PASSWORD = 331,
};

enum mode { MODE_SMALL, MODE_LOGINS };

enum state {
	S_GREETING, S_USER, S_PASS, S_TYPE, S_CWD, S_BARRIER, S_EPSV, S_RETR, S_QUIT, S_DONE,
};

static const char *const state_name[] = {
	[S_GREETING] = "greeting", [S_USER] = "USER", [S_PASS] = "PASS", [S_TYPE] = "TYPE I",
	[S_CWD] = "CWD", [S_BARRIER] = "barrier", [S_EPSV] = "EPSV", [S_RETR] = "RETR",
	[S_QUIT] = "QUIT", [S_DONE] = "done",
};

/* A reply being read: RFC 959 s.4.2, "ddd-" opens a multi-line reply, "ddd " ends it. */
struct reply_parser {
	char buf[CTL_BUF];
	size_t len;
	int multi_code;         /* the code of the open multi-line reply, 0 outside one */
	char text[TEXT_MAX];    /* the reply's first line, then its last: for messages */
};

struct reply {
	int code;
	const char *text;       /* points into the parser; valid until the next read */
};

struct session {
	int idx;
	int login;              /* which login of the run this connection makes, from 0 */
	int ctl;                /* -1 once closed */
	int data;               /* -1 when no data connection is open */
	enum state st;
	int file;               /* the file being fetched */
	size_t got;             /* its bytes so far */
	bool prelim, final, eof;
	double started;         /* connect() of the control connection */
	double deadline;
	struct reply_parser rp;
};

struct expected {
	unsigned char *bytes;
	size_t len;
};

/* One user to log in as. */
struct cred {
	char name[CRED_MAX];
	char password[CRED_MAX];
};

struct options {
	enum mode mode;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	const char *user;       /* NULL with --user-list */
	bool user_list;
	struct cred *creds;     /* from standard input; owned here, wiped and freed at the end */
	int ncreds;
	int sessions;
	int logins;             /* logins: in all, over the sessions (0 until parsed: N) */
	int files;
	const char *dir;
	const char *expect;
	double timeout;
	double greeting_timeout;
};

/* Everything of one run: no globals. */
struct load {
	struct options opt;
	int ep;
	struct session *s;
	struct expected *exp;
	double *latency;        /* logins: connect() to 230, per login */
	int logins_begun;       /* connections opened so far: the next one's login number */
	int at_barrier;
	int done;
	int files_done;
	double t_first;         /* logins: first connect(); small: the barrier */
	double t_last;          /* logins: last 230; small: last file complete */
	double t_logged_in;     /* small: the barrier, for the login phase's length */
	double last_scan;
	struct rusage ru0, ru1; /* the client's own CPU over the measured interval */
	double t_ru1;
	unsigned char rbuf[65536];
	char error[ERR_MAX];
};

static double now(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		abort();        /* cannot fail with a valid clock id */
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Records the first failure; returns -EPROTO so callers can "return fail(...)". */
__attribute__((format(printf, 3, 4)))
static int fail(struct load *l, const struct session *s, const char *fmt, ...)
{
	if (l->error[0] != '\0')
		return -EPROTO;
	int n = 0;
	if (s != NULL)
		n = snprintf(l->error, sizeof(l->error), "session %d, at %s: ", s->idx,
			     state_name[s->st]);
	if (n < 0 || (size_t)n >= sizeof(l->error))
		n = 0;
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(l->error + n, sizeof(l->error) - (size_t)n, fmt, ap);
	va_end(ap);
	if (r < 0)
		snprintf(l->error, sizeof(l->error), "failure (message unprintable)");
	return -EPROTO;
}

/* ------------------------------------------------------------------ reply parsing */

/* Copies the printable part of one line (without CR LF) into dst. */
static void keep_text(char *dst, size_t cap, const char *line, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len && n + 1 < cap; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c == '\r' || c == '\n')
			break;
		dst[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[n] = '\0';
}

static int code_of(const char *line, size_t len)
{
	if (len < 4)
		return -1;
	for (int i = 0; i < 3; i++)
		if (line[i] < '0' || line[i] > '9')
			return -1;
	if (line[3] != ' ' && line[3] != '-' && line[3] != '\r' && line[3] != '\n')
		return -1;
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/*
 * Takes the next complete reply out of p->buf.  Returns 1 with *out set, 0 when more bytes
 * are needed, -EPROTO for a line that is not a reply or is longer than the buffer.
 */
static int reply_next(struct reply_parser *p, struct reply *out)
{
	for (;;) {
		char *nl = memchr(p->buf, '\n', p->len);
		if (nl == NULL)
			return p->len == sizeof(p->buf) ? -EPROTO : 0;
		size_t ll = (size_t)(nl - p->buf) + 1;
		int code = code_of(p->buf, ll);
		int done = 0;
		if (p->multi_code == 0) {
			if (code < 0)
				return -EPROTO;
			keep_text(p->text, sizeof(p->text), p->buf, ll);
			if (p->buf[3] == '-')
				p->multi_code = code;
			else
				done = code;
		} else if (code == p->multi_code && p->buf[3] == ' ') {
			/* The first line names the reply; the last one may carry what matters. */
			if (p->multi_code != R_220_READY)
				keep_text(p->text, sizeof(p->text), p->buf, ll);
			done = code;
			p->multi_code = 0;
		}
		p->len -= ll;
		memmove(p->buf, p->buf + ll, p->len);
		if (done != 0) {
			out->code = done;
			out->text = p->text;
			return 1;
		}
	}
}

/* ------------------------------------------------------------------ sockets */

/* A non-blocking connect() begun; the fd, or -errno. */
static int connect_to(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)ss, len) < 0 && errno != EINPROGRESS) {
		int e = -errno;
		(void)close(fd);
		return e;
	}
	return fd;
}

static int watch(struct load *l, int fd, uint64_t key)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u64 = key };
	return epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		(void)close(*fd);   /* nothing to do about an error on a socket we are done with */
	*fd = -1;
}

/* Control commands are short and the send buffer is empty between them: one send(). */
static int send_cmd(struct load *l, struct session *s, const char *line)
{
	char buf[600];
	int n = snprintf(buf, sizeof(buf), "%s\r\n", line);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return fail(l, s, "command too long");
	ssize_t w = send(s->ctl, buf, (size_t)n, MSG_NOSIGNAL);
	if (w < 0)
		return fail(l, s, "send: %s", strerror(errno));
	if (w != n)
		return fail(l, s, "send: %zd of %d bytes (control send buffer full)", w, n);
	s->deadline = now() + l->opt.timeout;
	return 0;
}

static int send_cmd2(struct load *l, struct session *s, const char *verb, const char *arg)
{
	char line[560];
	int n = snprintf(line, sizeof(line), "%s %s", verb, arg);
	if (n < 0 || (size_t)n >= sizeof(line))
		return fail(l, s, "%s: argument too long", verb);
	return send_cmd(l, s, line);
}

/* ------------------------------------------------------------------ the small scenario */

static int begin_file(struct load *l, struct session *s)
{
	s->got = 0;
	s->prelim = s->final = s->eof = false;
	s->st = S_EPSV;
	return send_cmd(l, s, "EPSV");
}

/* RFC 2428 s.3: "229 text (<d><d><d><port><d>)", where <d> is any one delimiter. */
static int epsv_port(const char *text)
{
	const char *p = strchr(text, '(');
	if (p == NULL || p[1] == '\0')
		return -EPROTO;
	char d = p[1];
	if (p[2] != d || p[3] != d)
		return -EPROTO;
	char *end;
	errno = 0;
	unsigned long port = strtoul(p + 4, &end, 10);
	if (errno != 0 || end == p + 4 || *end != d || end[1] != ')' || port == 0 || port > 65535)
		return -EPROTO;
	return (int)port;
}

static int open_data(struct load *l, struct session *s, const char *text)
{
	int port = epsv_port(text);
	if (port < 0)
		return fail(l, s, "no port in the 229 reply: %s", text);
	struct sockaddr_storage ss = l->opt.addr;
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
	int fd = connect_to(&ss, l->opt.addrlen);
	if (fd < 0)
		return fail(l, s, "data connect to port %d: %s", port, strerror(-fd));
	s->data = fd;
	if (watch(l, fd, ((uint64_t)s->idx << 1) | 1) < 0)
		return fail(l, s, "epoll_ctl: %s", strerror(errno));
	char name[16];
	(void)snprintf(name, sizeof(name), "s%04d", s->file);
	s->st = S_RETR;
	return send_cmd2(l, s, "RETR", name);
}

static int end_session(struct load *l, struct session *s)
{
	s->st = S_QUIT;
	return send_cmd(l, s, "QUIT");
}

/* The file is done when its 1xx, its 226/250 and the data's EOF have all come. */
static int maybe_file_done(struct load *l, struct session *s)
{
	if (!(s->prelim && s->final && s->eof))
		return 0;
	l->files_done++;
	l->t_last = now();
	if (++s->file < l->opt.files)
		return begin_file(l, s);
	return end_session(l, s);
}

static int start_all(struct load *l)
{
	if (getrusage(RUSAGE_SELF, &l->ru0) < 0)
		return fail(l, NULL, "getrusage: %s", strerror(errno));
	l->t_first = l->t_logged_in = now();
	for (int i = 0; i < l->opt.sessions; i++) {
		int r = begin_file(l, &l->s[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int on_data(struct load *l, struct session *s)
{
	if (s->data < 0)
		return 0;       /* an event for a connection closed earlier in this batch */
	const struct expected *e = &l->exp[s->file];
	for (;;) {
		ssize_t n = read(s->data, l->rbuf, sizeof(l->rbuf));
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return fail(l, s, "data connection, s%04d: %s", s->file, strerror(errno));
		}
		if (n == 0)
			break;
		if (s->got + (size_t)n > e->len)
			return fail(l, s, "s%04d: more than its %zu bytes", s->file, e->len);
		if (memcmp(l->rbuf, e->bytes + s->got, (size_t)n) != 0)
			return fail(l, s, "s%04d: content differs within bytes %zu-%zu", s->file,
				    s->got, s->got + (size_t)n);
		s->got += (size_t)n;
		s->deadline = now() + l->opt.timeout;
	}
	if (s->got != e->len)
		return fail(l, s, "s%04d: %zu bytes of %zu", s->file, s->got, e->len);
	close_fd(&s->data);
	s->eof = true;
	return maybe_file_done(l, s);
}

static int on_retr_reply(struct load *l, struct session *s, const struct reply *r)
{
	if (!s->prelim && (r->code == R_150_OPENING_DATA || r->code == R_125_DATA_OPEN_STARTING)) {
		s->prelim = true;
		return 0;
	}
	if (s->prelim && !s->final &&
	    (r->code == R_226_CLOSING_DATA || r->code == R_250_FILE_ACTION_OK)) {
		s->final = true;
		return maybe_file_done(l, s);
	}
	return fail(l, s, "RETR s%04d: unexpected reply: %s", s->file, r->text);
}

/* ------------------------------------------------------------------ the reply state machine */

static int open_session(struct load *l, struct session *s);

static int expect(struct load *l, struct session *s, const struct reply *r, int want)
{
	if (r->code == want)
		return 0;
	return fail(l, s, "expected %d, got: %s", want, r->text);
}

static const struct cred *cred_of(const struct load *l, const struct session *s)
{
	return &l->opt.creds[s->login % l->opt.ncreds];
}

static int logged_in(struct load *l, struct session *s)
{
	if (l->opt.mode == MODE_LOGINS) {
		double t = now();
		l->latency[s->login] = t - s->started;
		if (t > l->t_last)
			l->t_last = t;
		return end_session(l, s);
	}
	s->st = S_TYPE;
	return send_cmd(l, s, "TYPE I");
}

static int at_barrier(struct load *l, struct session *s)
{
	s->st = S_BARRIER;
	s->deadline = 0;        /* waiting for the others is not this session's time-out */
	if (++l->at_barrier == l->opt.sessions)
		return start_all(l);
	return 0;
}

static int on_reply(struct load *l, struct session *s, const struct reply *r)
{
	int e;
	switch (s->st) {
	case S_GREETING:
		if ((e = expect(l, s, r, R_220_READY)) < 0)
			return e;
		s->st = S_USER;
		return send_cmd2(l, s, "USER", cred_of(l, s)->name);
	case S_USER:
		if ((e = expect(l, s, r, R_331_NEED_PASSWORD)) < 0)
			return e;
		s->st = S_PASS;
		return send_cmd2(l, s, "PASS", cred_of(l, s)->password);
	case S_PASS:
		if (r->code != R_230_LOGGED_IN)
			return fail(l, s, "user %s: expected 230, got: %s", cred_of(l, s)->name,
				    r->text);
		return logged_in(l, s);
	case S_TYPE:
		if ((e = expect(l, s, r, R_200_OK)) < 0)
			return e;
		s->st = S_CWD;
		return send_cmd2(l, s, "CWD", l->opt.dir);
	case S_CWD:
		if ((e = expect(l, s, r, R_250_FILE_ACTION_OK)) < 0)
			return e;
		return at_barrier(l, s);
	case S_EPSV:
		if ((e = expect(l, s, r, R_229_EXTENDED_PASSIVE)) < 0)
			return e;
		return open_data(l, s, r->text);
	case S_RETR:
		return on_retr_reply(l, s, r);
	case S_QUIT:
		if ((e = expect(l, s, r, R_221_BYE)) < 0)
			return e;
		close_fd(&s->ctl);
		if (l->opt.mode == MODE_LOGINS && l->logins_begun < l->opt.logins)
			return open_session(l, s);
		s->st = S_DONE;
		s->deadline = 0;
		l->done++;
		return 0;
	case S_BARRIER:
	case S_DONE:
		break;
	}
	return fail(l, s, "unsolicited reply: %s", r->text);
}

static int on_ctl(struct load *l, struct session *s)
{
	if (s->ctl < 0)
		return 0;
	struct reply_parser *p = &s->rp;
	ssize_t n = read(s->ctl, p->buf + p->len, sizeof(p->buf) - p->len);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		return fail(l, s, "control connection: %s", strerror(errno));
	}
	if (n == 0)
		return fail(l, s, "the server closed the control connection");
	p->len += (size_t)n;
	s->deadline = now() + l->opt.timeout;
	for (;;) {
		struct reply r;
		int k = reply_next(p, &r);
		if (k < 0)
			return fail(l, s, "not an FTP reply (or a line over %d bytes): %.60s",
				    CTL_BUF, p->buf);
		if (k == 0)
			return 0;
		int e = on_reply(l, s, &r);
		if (e < 0 || s->ctl < 0)
			return e;
	}
}

/* ------------------------------------------------------------------ the loop */

static int greetings_missing(const struct load *l)
{
	int n = 0;
	for (int i = 0; i < l->opt.sessions; i++)
		n += l->s[i].st == S_GREETING;
	return n;
}

static int on_timeout(struct load *l, struct session *s)
{
	if (s->st == S_GREETING) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		if (getpeername(s->ctl, (struct sockaddr *)&peer, &len) < 0)
			return fail(l, s, "TCP connect not complete within %g s (%s); %d of %d "
				    "sessions without a greeting", l->opt.greeting_timeout,
				    strerror(errno), greetings_missing(l), l->opt.sessions);
		return fail(l, s, "connected, but no greeting within %g s; %d of %d sessions "
			    "without one (a connection that the kernel completed while the "
			    "server's accept queue was full is never accepted: see nstat -az "
			    "TcpExtListenOverflows)", l->opt.greeting_timeout, greetings_missing(l),
			    l->opt.sessions);
	}
	if (s->st == S_RETR)
		return fail(l, s, "s%04d: nothing for %g s (%zu bytes, 1xx %s, 226 %s, EOF %s)",
			    s->file, l->opt.timeout, s->got, s->prelim ? "seen" : "not seen",
			    s->final ? "seen" : "not seen", s->eof ? "seen" : "not seen");
	return fail(l, s, "no reply within %g s", l->opt.timeout);
}

static int scan_deadlines(struct load *l, double t)
{
	l->last_scan = t;
	for (int i = 0; i < l->opt.sessions; i++) {
		struct session *s = &l->s[i];
		if (s->deadline > 0 && t > s->deadline)
			return on_timeout(l, s);
	}
	return 0;
}

/* A new control connection for s, making the run's next login. */
static int open_session(struct load *l, struct session *s)
{
	memset(&s->rp, 0, sizeof(s->rp));
	s->st = S_GREETING;
	s->login = l->logins_begun++;
	s->started = now();
	s->deadline = s->started + l->opt.greeting_timeout;
	int fd = connect_to(&l->opt.addr, l->opt.addrlen);
	if (fd < 0)
		return fail(l, s, "connect: %s", strerror(-fd));
	s->ctl = fd;
	if (watch(l, fd, (uint64_t)s->idx << 1) < 0)
		return fail(l, s, "epoll_ctl: %s", strerror(errno));
	return 0;
}

static int run(struct load *l)
{
	if (l->opt.mode == MODE_LOGINS && getrusage(RUSAGE_SELF, &l->ru0) < 0)
		return fail(l, NULL, "getrusage: %s", strerror(errno));
	l->t_first = now();
	for (int i = 0; i < l->opt.sessions; i++) {
		int r = open_session(l, &l->s[i]);
		if (r < 0)
			return r;
	}
	struct epoll_event ev[EVENTS];
	l->last_scan = now();
	while (l->done < l->opt.sessions) {
		int n = epoll_wait(l->ep, ev, EVENTS, SCAN_MS);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fail(l, NULL, "epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			struct session *s = &l->s[ev[i].data.u64 >> 1];
			int r = (ev[i].data.u64 & 1) ? on_data(l, s) : on_ctl(l, s);
			if (r < 0)
				return r;
		}
		double t = now();
		if (t - l->last_scan >= SCAN_MS / 1000.0) {
			int r = scan_deadlines(l, t);
			if (r < 0)
				return r;
		}
	}
	if (getrusage(RUSAGE_SELF, &l->ru1) < 0)
		return fail(l, NULL, "getrusage: %s", strerror(errno));
	l->t_ru1 = now();
	if (l->opt.mode == MODE_SMALL && l->files_done != l->opt.sessions * l->opt.files)
		return fail(l, NULL, "%d files fetched of %d", l->files_done,
			    l->opt.sessions * l->opt.files);
	return 0;
}

/* ------------------------------------------------------------------ set-up and report */

static int load_file(const char *path, struct expected *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode) || st.st_size > MAX_FILE)
		r = -EINVAL;
	else if ((e->bytes = malloc(st.st_size > 0 ? (size_t)st.st_size : 1)) == NULL)
		r = -ENOMEM;
	e->len = 0;
	while (r == 0 && e->len < (size_t)st.st_size) {
		ssize_t n = read(fd, e->bytes + e->len, (size_t)st.st_size - e->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			r = n < 0 ? -errno : -EIO;
		else
			e->len += (size_t)n;
	}
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

static int load_expected(struct load *l)
{
	l->exp = calloc((size_t)l->opt.files, sizeof(*l->exp));
	if (l->exp == NULL)
		return fail(l, NULL, "out of memory");
	for (int k = 0; k < l->opt.files; k++) {
		char path[PATH_MAX];
		int n = snprintf(path, sizeof(path), "%s/s%04d", l->opt.expect, k);
		if (n < 0 || (size_t)n >= sizeof(path))
			return fail(l, NULL, "--expect: path too long");
		int r = load_file(path, &l->exp[k]);
		if (r < 0)
			return fail(l, NULL, "--expect: %s: %s", path, strerror(-r));
	}
	return 0;
}

static int raise_nofile(int need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur >= (rlim_t)need)
		return 0;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	return rl.rlim_cur >= (rlim_t)need ? 0 : -EMFILE;
}

/* Copies src[0..len) into a CRED_MAX field; -EINVAL if it does not fit. */
static int set_field(char *dst, const char *src, size_t len)
{
	if (len >= CRED_MAX)
		return -EINVAL;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

static int add_cred(struct options *o, size_t *cap, const char *name, size_t nlen,
		    const char *pw, size_t plen)
{
	if ((size_t)o->ncreds == *cap) {
		size_t ncap = *cap == 0 ? 64 : 2 * *cap;
		if (ncap > MAX_SESSIONS)
			return -E2BIG;
		struct cred *c = realloc(o->creds, ncap * sizeof(*c));
		if (c == NULL)
			return -ENOMEM;
		o->creds = c;
		*cap = ncap;
	}
	struct cred *c = &o->creds[o->ncreds];
	if (nlen == 0 || set_field(c->name, name, nlen) < 0 || set_field(c->password, pw, plen) < 0)
		return -EINVAL;
	o->ncreds++;
	return 0;
}

/*
 * The credentials from standard input: the password line for --user, or the "NAME PASSWORD"
 * lines of --user-list.  A realloc() can leave a copy of the earlier lines in freed memory;
 * for a benchmark's throw-away passwords that is acceptable.
 */
static int read_creds(struct options *o)
{
	size_t cap = 0, n = 0;
	char *line = NULL;
	ssize_t len;
	int r = 0;
	while (r == 0 && (len = getline(&line, &n, stdin)) >= 0) {
		size_t ll = strcspn(line, "\r\n");
		if (!o->user_list) {
			r = add_cred(o, &cap, o->user, strlen(o->user), line, ll);
			break;
		}
		const char *sp = memchr(line, ' ', ll);
		if (sp == NULL)
			r = -EINVAL;
		else
			r = add_cred(o, &cap, line, (size_t)(sp - line), sp + 1,
				     ll - (size_t)(sp - line) - 1);
	}
	if (line != NULL)
		explicit_bzero(line, n);
	free(line);
	if (r == 0 && o->ncreds == 0)
		r = -ENODATA;
	return r;
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double cpu_s(const struct rusage *a, const struct rusage *b, bool user)
{
	return user ? tv_s(b->ru_utime) - tv_s(a->ru_utime) : tv_s(b->ru_stime) - tv_s(a->ru_stime);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted xs. */
static double percentile(const double *xs, int n, double p)
{
	int k = (int)(p * n + 0.999999) - 1;
	if (k < 0)
		k = 0;
	if (k >= n)
		k = n - 1;
	return xs[k];
}

static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

static int report(struct load *l)
{
	double wall = l->t_last - l->t_first;
	double user = cpu_s(&l->ru0, &l->ru1, true), sys = cpu_s(&l->ru0, &l->ru1, false);
	/* The CPU was read after the QUITs, a little after the last file or login. */
	double cpu_wall = l->t_ru1 - l->t_first;
	if (wall <= 0)
		wall = 1e-9;
	if (cpu_wall <= 0)
		cpu_wall = 1e-9;
	if (l->opt.mode == MODE_SMALL) {
		printf("{\"ok\": true, \"mode\": \"small\", \"sessions\": %d, \"files\": %d, "
		       "\"files_per_s\": %.1f, \"seconds\": %.4f, \"client_cpu_user_s\": %.3f, "
		       "\"client_cpu_sys_s\": %.3f, \"client_cpu_share\": %.3f}\n",
		       l->opt.sessions, l->files_done, l->files_done / wall, wall, user, sys,
		       (user + sys) / cpu_wall);
	} else {
		int n = l->opt.logins;
		qsort(l->latency, (size_t)n, sizeof(double), cmp_double);
		printf("{\"ok\": true, \"mode\": \"logins\", \"sessions\": %d, \"logins\": %d, "
		       "\"users\": %d, \"logins_per_s\": %.1f, "
		       "\"seconds\": %.4f, \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f, "
		       "\"client_cpu_user_s\": %.3f, \"client_cpu_sys_s\": %.3f, "
		       "\"client_cpu_share\": %.3f}\n",
		       l->opt.sessions, n, l->opt.ncreds, n / wall, wall,
		       1000 * percentile(l->latency, n, 0.50), 1000 * percentile(l->latency, n, 0.99),
		       1000 * l->latency[n - 1], user, sys, (user + sys) / cpu_wall);
	}
	return fflush(stdout) == 0 ? 0 : -EIO;
}

static void report_failure(const struct load *l)
{
	printf("{\"ok\": false, \"error\": ");
	print_json_string(l->error);
	printf("}\n");
	(void)fflush(stdout);
	fprintf(stderr, "ftpload: %s\n", l->error);
}

static _Noreturn void usage(void)
{
	fprintf(stderr,
		"usage: ftpload small|logins [--host IP] --port P --user U|--user-list --sessions N\n"
		"               [--files M --dir DIR --expect LOCALDIR]   (small)\n"
		"               [--logins T]                              (logins; T >= N)\n"
		"               [--timeout S] [--greeting-timeout S]\n"
		"       the password is read from the first line of standard input; with\n"
		"       --user-list, one 'NAME PASSWORD' line a user, login k made as user k mod count\n");
	exit(2);
}

static long number(const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "ftpload: %s: not a number in %ld..%ld\n", s, lo, hi);
		exit(2);
	}
	return v;
}

static double seconds(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0.1 && v <= 3600)) {
		fprintf(stderr, "ftpload: %s: not a number of seconds in 0.1..3600\n", s);
		exit(2);
	}
	return v;
}

static int parse_host(struct options *o, const char *host, int port)
{
	memset(&o->addr, 0, sizeof(o->addr));
	struct sockaddr_in *a4 = (struct sockaddr_in *)&o->addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&o->addr;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		o->addrlen = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		o->addrlen = sizeof(*a6);
		return 0;
	}
	return -EINVAL;
}

static void parse_args(struct options *o, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "user", required_argument, NULL, 'u' },
		{ "user-list", no_argument, NULL, 'U' },
		{ "logins", required_argument, NULL, 'l' },
		{ "sessions", required_argument, NULL, 'n' },
		{ "files", required_argument, NULL, 'm' },
		{ "dir", required_argument, NULL, 'd' },
		{ "expect", required_argument, NULL, 'e' },
		{ "timeout", required_argument, NULL, 't' },
		{ "greeting-timeout", required_argument, NULL, 'g' },
		{ NULL, 0, NULL, 0 },
	};
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "small") == 0)
		o->mode = MODE_SMALL;
	else if (strcmp(argv[1], "logins") == 0)
		o->mode = MODE_LOGINS;
	else
		usage();
	const char *host = "127.0.0.1";
	int port = 0, c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'h': host = optarg; break;
		case 'p': port = (int)number(optarg, 1, 65535); break;
		case 'u': o->user = optarg; break;
		case 'U': o->user_list = true; break;
		case 'l': o->logins = (int)number(optarg, 1, MAX_LOGINS); break;
		case 'n': o->sessions = (int)number(optarg, 1, MAX_SESSIONS); break;
		case 'm': o->files = (int)number(optarg, 1, 10000); break;
		case 'd': o->dir = optarg; break;
		case 'e': o->expect = optarg; break;
		case 't': o->timeout = seconds(optarg); break;
		case 'g': o->greeting_timeout = seconds(optarg); break;
		default: usage();
		}
	}
	if (optind != argc || port == 0 || (o->user == NULL) == !o->user_list || o->sessions == 0 ||
	    (o->mode == MODE_SMALL && (o->files == 0 || o->dir == NULL || o->expect == NULL ||
				       o->logins != 0)))
		usage();
	if (o->logins == 0)
		o->logins = o->sessions;
	if (o->logins < o->sessions) {
		fprintf(stderr, "ftpload: --logins %d: fewer than the %d sessions\n", o->logins,
			o->sessions);
		exit(2);
	}
	if (parse_host(o, host, port) < 0) {
		fprintf(stderr, "ftpload: --host %s: not an IPv4 or IPv6 address\n", host);
		exit(2);
	}
}

static int setup(struct load *l)
{
	int r = raise_nofile(2 * l->opt.sessions + 64);
	if (r < 0)
		return fail(l, NULL, "RLIMIT_NOFILE too low for %d sessions: %s", l->opt.sessions,
			    strerror(-r));
	if ((r = read_creds(&l->opt)) < 0)
		return fail(l, NULL, "%s on standard input (%s)", l->opt.user_list ?
			    "no 'NAME PASSWORD' lines, or one without a space or too long" :
			    "no password line, or one too long", strerror(-r));
	if (l->opt.mode == MODE_SMALL && (r = load_expected(l)) < 0)
		return r;
	l->s = calloc((size_t)l->opt.sessions, sizeof(*l->s));
	l->latency = calloc((size_t)l->opt.logins, sizeof(*l->latency));
	if (l->s == NULL || l->latency == NULL)
		return fail(l, NULL, "out of memory");
	for (int i = 0; i < l->opt.sessions; i++) {
		l->s[i].idx = i;
		l->s[i].ctl = l->s[i].data = -1;
	}
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0)
		return fail(l, NULL, "epoll_create1: %s", strerror(errno));
	return 0;
}

static void teardown(struct load *l)
{
	if (l->s != NULL)
		for (int i = 0; i < l->opt.sessions; i++) {
			close_fd(&l->s[i].ctl);
			close_fd(&l->s[i].data);
		}
	if (l->exp != NULL)
		for (int k = 0; k < l->opt.files; k++)
			free(l->exp[k].bytes);
	free(l->exp);
	free(l->s);
	free(l->latency);
	close_fd(&l->ep);
}

int main(int argc, char **argv)
{
	struct load *l = calloc(1, sizeof(*l));  /* 64 KiB read buffer: off the stack */
	if (l == NULL) {
		fprintf(stderr, "ftpload: out of memory\n");
		return 1;
	}
	l->ep = -1;
	l->opt.timeout = 30;
	l->opt.greeting_timeout = 15;
	parse_args(&l->opt, argc, argv);
	int r = setup(l);
	if (r == 0)
		r = run(l);
	if (r == 0)
		r = report(l);
	if (r < 0 && l->error[0] == '\0')
		(void)fail(l, NULL, "writing the report: %s", strerror(-r));
	if (r < 0)
		report_failure(l);
	if (l->opt.creds != NULL)
		explicit_bzero(l->opt.creds, (size_t)l->opt.ncreds * sizeof(*l->opt.creds));
	free(l->opt.creds);
	teardown(l);
	free(l);
	return r < 0 ? 1 : 0;
}
