/*
 * fuzz_session.c: a whole session of the server, from the greeting to the last reply: the
 * line parser, the command table and dispatcher, every handler, passive data connections,
 * transfers, the file system and the time-outs, with the network and the master replaced.
 *
 * Per input, as worker.c sets a worker up: a struct server with its own event base and a
 * frozen configuration (built once by config_load), a socketpair as the control connection
 * (session_new on one end, the harness as client on the other), and a SOCK_SEQPACKET
 * socketpair as the worker's channel, whose other end the harness serves as the master
 * would: PASV_OPEN gets a port and at once (or later) a data connection, itself a
 * socketpair; LOGIN_FAILED gets a delay of 0 ms.  There is no password check (no users
 * table and no password thread: other users fail like unknown ones) and no TLS context (AUTH
 * TLS gets 534).  The control connection is AF_UNIX, so PASV (IPv4 only) gets 425 and
 * PORT/EPRT, never the client's own address, get 500; EPSV carries the data connections.
 *
 * Time never passes by itself: the time-outs are long and the loop runs only until nothing
 * moves, so a run is deterministic and never waits.  The directive T stands for time
 * passing: the timer that would fire first fires now.
 *
 * Input: pieces separated by the byte 0x1E (RS).  Each piece is written to the control
 * connection and the loop runs until quiet, so one piece may hold several commands
 * (pipelining) or part of one (a line split across reads).  A piece that starts with 0x1F
 * (US) is a directive to the harness instead:
 *   D<bytes>  the client sends these bytes (then EOF) on the next data connections
 *             (default: a few lines of text)
 *   H         the next data connection stays open (no EOF) until C or the end
 *   C         the client closes every data connection (uploads end, downloads break)
 *   E         the master answers the next EPSV with an error (425)
 *   N         the master never answers the next EPSV (the session waits for it)
 *   L         the client connects to the next passive port only after the next piece
 *   W         the master never answers the next failed login (its longest delay stands)
 *   T         time passes: the pending timer that expires first fires
 *   B, U      the master closes the session before login (banned, max_unauthenticated)
 *   R         the client stops reading replies (so they pile up), or reads again
 *   O<digit>  first piece only: the configuration, 0 anonymous may do everything (the
 *             default), 1 read only, 2 no anonymous login, 3 low limits
 *
 * Checked, besides what the sanitizers see: every reply line is "ddd " or "ddd-" (first
 * digit 1-5), text, CR LF, with no other CR or LF and no NUL, at most REPLY_LINE_MAX bytes; a
 * multi-line reply ends with "ddd " of its own code and its other lines start with a space
 * (or "ddd-"); the first reply is 220; at a quiet point no reply is half sent; the worker
 * sends only the messages a worker sends, LOGIN_OK at most once, SESSION_END once,
 * nothing after the end; a session whose client has gone ends (once every pending timer has
 * fired, at the latest); no descriptor stays open; nothing is created outside the root (a
 * sentinel directory beside it, which symbolic links in the root point at, stays empty).
 *
 * The scratch directory (root/ and outside/) is made once per process with mkdtemp in
 * $FUZZ_SESSION_DIR, else /dev/shm, else /tmp; the tree in root/ is made again before an
 * input whenever the last one changed it (inotify tells).  ferryd logs every session on
 * stderr: run with -close_fd_mask=2 (fuzz/run.sh does) to keep libFuzzer's and the
 * sanitizers' output only; FUZZ_SESSION_TRACE=1 prints what goes over the control
 * connection, to read what an input does.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sanitizer/common_interface_defs.h>

#include "common/path.h"
#include "server/config.h"
#include "server/data.h"
#include "server/channel.h"
#include "server/session.h"
#include "server/throttle.h"
#include "server/transfer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PIECE_SEP 0x1e
#define DIRECTIVE 0x1f
#define SESSION_ID 7
#define N_CONFIGS 4
#define MAX_DATA 8                  /* data connections open at once */
#define DATA_READ_MAX (256u << 10)  /* a client reads this much of a download, then closes */
#define QUIET_ROUNDS 2              /* loop iterations without progress that mean "quiet" */
#define PUMP_ROUNDS 4000            /* at most, to reach quiet after one piece */
#define INPUT_ROUNDS 200000         /* at most, for a whole input */
#define REPLY_LINE_MAX (2 * VPATH_MAX + 1024) /* a quoted path of VPATH_MAX, doubled quotes */
#define FD_SCAN 64                  /* descriptors checked for leaks */

/*
 * The harness's own loops (checking every reply byte, polling the sockets) are no news to
 * the fuzzer, and tracing their comparisons would cost more than the session itself.
 */
#define NO_COVERAGE __attribute__((no_sanitize("coverage")))

static const char default_payload[] = "first line\nsecond line\r\nthird\rline\n";

/* ---- the fixtures, made once per process ---- */

static struct config configs[N_CONFIGS];
static char base_dir[64];           /* mkdtemp: root/ and outside/ */
static char root_dir[96];
static char outside_dir[96];
static int root_path_fd = -1;       /* O_PATH, as the master opens it: the anonymous root */
static int root_dir_fd = -1;        /* O_DIRECTORY, for resetting the tree */
static int xferlog_fd = -1;         /* /dev/null: the xferlog lines are formatted, then dropped */
static bool trace;                  /* $FUZZ_SESSION_TRACE: print what goes over the wire */
static int tree_watch = -1;         /* inotify on the tree's directories */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	char msg[1024];
	int n = snprintf(msg, sizeof(msg), "fuzz_session: ");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	/* Where the sanitizers report: still open under -close_fd_mask=2, unlike stderr. */
	__sanitizer_report_error_summary(msg);
	abort();
}

static void wipe(int dirfd);

/* At exit: the scratch directory goes (after a crash it stays, for the record). */
static void remove_base(void)
{
	if (root_dir_fd >= 0)
		wipe(root_dir_fd);
	rmdir(root_dir);
	rmdir(outside_dir); /* fails if something escaped into it: then it stays, to be seen */
	rmdir(base_dir);
}

static void load_config(struct config *cfg, int variant)
{
	char *argv[40];
	int argc = 0;
	argv[argc++] = "ferryd";
	argv[argc++] = "--root";
	argv[argc++] = root_dir;
	argv[argc++] = "--listen";
	argv[argc++] = "127.0.0.1:2121";
	argv[argc++] = "--workers";
	argv[argc++] = "1";
	/* Long: they never fire by themselves during a run (determinism); T fires them. */
	argv[argc++] = "--login-timeout";
	argv[argc++] = "60";
	argv[argc++] = "--idle-timeout";
	argv[argc++] = "300";
	argv[argc++] = "--data-timeout";
	argv[argc++] = "60";
	argv[argc++] = "--login-failure-delay";
	argv[argc++] = "0";
	argv[argc++] = "--banner";
	argv[argc++] = "ferry fuzz ready.";
	argv[argc++] = "--anon-permissions";
	argv[argc++] = variant == 1 ? "read" : "all";
	if (variant == 2) {
		argv[argc++] = "--anonymous";
		argv[argc++] = "no";
	}
	if (variant == 3) {
		argv[argc++] = "--max-bad-commands";
		argv[argc++] = "2";
		argv[argc++] = "--max-login-failures";
		argv[argc++] = "1";
	}
	argv[argc] = NULL;
	bool check_only;
	if (config_load(cfg, argc, argv, &check_only, stderr) != 0)
		fail("configuration %d rejected", variant);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	signal(SIGPIPE, SIG_IGN); /* as a worker: writes to closed sockets get EPIPE */
	/* As worker_main does before any session: the upload pipe lives as long as the worker. */
	int rc = transfer_init();
	if (rc < 0)
		fail("transfer_init: %s", strerror(-rc));
	umask(022);
	/*
	 * A RAM file system if there is one: on a disk mounted with discard, deleting what an
	 * input wrote waits for the device.
	 */
	const char *tmp = getenv("FUZZ_SESSION_DIR");
	struct stat st;
	if (tmp == NULL || tmp[0] != '/' || strlen(tmp) > 30)
		tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
			      ? "/dev/shm"
			      : "/tmp";
	snprintf(base_dir, sizeof(base_dir), "%s/ferry-fuzz-session.XXXXXX", tmp);
	if (mkdtemp(base_dir) == NULL)
		fail("mkdtemp %s: %s", base_dir, strerror(errno));
	atexit(remove_base);
	snprintf(root_dir, sizeof(root_dir), "%s/root", base_dir);
	snprintf(outside_dir, sizeof(outside_dir), "%s/outside", base_dir);
	if (mkdir(root_dir, 0755) < 0 || mkdir(outside_dir, 0755) < 0)
		fail("mkdir in %s: %s", base_dir, strerror(errno));
	root_path_fd = open(root_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	root_dir_fd = open(root_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	xferlog_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	tree_watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (root_path_fd < 0 || root_dir_fd < 0 || xferlog_fd < 0 || tree_watch < 0)
		fail("open: %s", strerror(errno));
	for (int i = 0; i < N_CONFIGS; i++)
		load_config(&configs[i], i);
	trace = getenv("FUZZ_SESSION_TRACE") != NULL;
	return 0;
}

/* ---- the file tree, the same at the start of every input ---- */

/*
 * Whether an input changed the tree: inotify on its directories (a change beneath a
 * directory an input made shows as that directory's creation).  Times cannot tell: ctime
 * moves in clock ticks, and a run is shorter than one.
 */
static bool tree_made;
static const char *const tree_dirs[] = { "", "/pub", "/pub/sub" };

NO_COVERAGE static bool drain_watch(void)
{
	bool any = false;
	char buf[4096] __attribute__((aligned(8)));
	while (read(tree_watch, buf, sizeof(buf)) > 0)
		any = true;
	return any;
}

/* Remove everything beneath the directory dirfd. */
static void wipe(int dirfd)
{
	for (;;) {
		int fd = dup(dirfd);
		DIR *d = fd < 0 ? NULL : fdopendir(fd);
		if (d == NULL)
			fail("fdopendir: %s", strerror(errno));
		rewinddir(d);
		bool removed = false;
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			if (unlinkat(dirfd, e->d_name, 0) < 0) {
				if (errno != EISDIR)
					fail("unlink %s: %s", e->d_name, strerror(errno));
				int sub = openat(dirfd, e->d_name,
						 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (sub < 0)
					fail("open %s: %s", e->d_name, strerror(errno));
				wipe(sub);
				close(sub);
				if (unlinkat(dirfd, e->d_name, AT_REMOVEDIR) < 0)
					fail("rmdir %s: %s", e->d_name, strerror(errno));
			}
			removed = true;
		}
		closedir(d);
		if (!removed)
			return;
	}
}

static void put_file(const char *name, const void *data, size_t len)
{
	int fd = openat(root_dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		fail("write %s: %s", name, strerror(errno));
	close(fd);
}

/* Make the tree again, unless the last input left it as it was (most do). */
static void reset_tree(void)
{
	if (tree_made && !drain_watch())
		return;
	wipe(root_dir_fd);
	static const char readme[] = "Welcome to the fuzzing root.\nSecond line\r\nThird\n";
	static const char binary[] = "\x00\x01\x02\r\n\xff\xfe\n\r\r\nbinary\x00tail";
	char abs_link[128];
	snprintf(abs_link, sizeof(abs_link), "%s", outside_dir);
	put_file("readme.txt", readme, sizeof(readme) - 1);
	put_file("empty", "", 0);
	put_file("bin.dat", binary, sizeof(binary) - 1);
	put_file(".hidden", "dot\n", 4);
	if (mkdirat(root_dir_fd, "pub", 0755) < 0 || mkdirat(root_dir_fd, "pub/sub", 0755) < 0)
		fail("mkdir: %s", strerror(errno));
	put_file("pub/nested.txt", "nested\n", 7);
	put_file("pub/sp ace \"q\"", "odd name\n", 9);
	if (symlinkat("readme.txt", root_dir_fd, "link") < 0 ||
	    symlinkat("../outside", root_dir_fd, "up") < 0 ||   /* escapes on the host */
	    symlinkat(abs_link, root_dir_fd, "abs") < 0 ||       /* so does this */
	    symlinkat("loop", root_dir_fd, "loop") < 0 ||
	    symlinkat("nowhere", root_dir_fd, "dangling") < 0 ||
	    mkfifoat(root_dir_fd, "fifo", 0644) < 0)
		fail("symlink/mkfifo: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(tree_dirs) / sizeof(tree_dirs[0]); i++) {
		char dir[160];
		snprintf(dir, sizeof(dir), "%s%s", root_dir, tree_dirs[i]);
		if (inotify_add_watch(tree_watch, dir,
				      IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE |
					      IN_DELETE_SELF | IN_MOVE_SELF | IN_MOVED_FROM |
					      IN_MOVED_TO) < 0)
			fail("inotify_add_watch %s: %s", dir, strerror(errno));
	}
	drain_watch(); /* what making it caused */
	tree_made = true;
}

/* Nothing may appear beside the root, nor in the sentinel the escaping links point at. */
static void check_confined(void)
{
	DIR *d = opendir(base_dir);
	if (d == NULL)
		fail("opendir %s: %s", base_dir, strerror(errno));
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
		    strcmp(e->d_name, "root") != 0 && strcmp(e->d_name, "outside") != 0)
			fail("%s/%s was created outside the root", base_dir, e->d_name);
	}
	closedir(d);
	d = opendir(outside_dir);
	if (d == NULL)
		fail("the sentinel %s is gone: %s", outside_dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			fail("%s/%s was created outside the root", outside_dir, e->d_name);
	}
	closedir(d);
}

/* ---- replies ---- */

struct replies {
	char line[REPLY_LINE_MAX + 2];
	size_t len;
	int multi;        /* code of the multi-line reply under way, or 0 */
	unsigned count;   /* complete lines */
	bool first_seen;
};

NO_COVERAGE static int code_of(const char *p, size_t len)
{
	if (len < 4 || p[0] < '1' || p[0] > '5' || p[1] < '0' || p[1] > '9' || p[2] < '0' ||
	    p[2] > '9')
		return 0;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

NO_COVERAGE static void check_line(struct replies *r)
{
	const char *p = r->line;
	size_t n = r->len;
	int code = code_of(p, n);
	if (r->multi != 0) {
		if (code == r->multi && p[3] == ' ') {
			r->multi = 0;
			return;
		}
		if (code == r->multi && p[3] == '-')
			return;
		if (n > 0 && p[0] == ' ')
			return;
		fail("line %u inside a %d multi-line reply neither starts with a space nor is "
		     "\"%d \": \"%.*s\"", r->count, r->multi, r->multi, (int)(n > 200 ? 200 : n), p);
	}
	if (code == 0 || (p[3] != ' ' && p[3] != '-'))
		fail("reply line %u is not \"ddd \" or \"ddd-\": \"%.*s\"", r->count,
		     (int)(n > 200 ? 200 : n), p);
	if (!r->first_seen && code != 220)
		fail("the first reply is %d, not 220", code);
	r->first_seen = true;
	if (p[3] == '-')
		r->multi = code;
}

NO_COVERAGE static void check_bytes(struct replies *r, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c == '\0')
			fail("NUL byte in reply line %u", r->count);
		if (r->len > 0 && r->line[r->len - 1] == '\r' && c != '\n')
			fail("bare CR in reply line %u: \"%.*s\"", r->count, (int)r->len, r->line);
		if (c == '\n') {
			if (r->len == 0 || r->line[r->len - 1] != '\r')
				fail("bare LF ending reply line %u: \"%.*s\"", r->count,
				     (int)(r->len > 200 ? 200 : r->len), r->line);
			r->len--; /* the CR */
			check_line(r);
			r->count++;
			r->len = 0;
			continue;
		}
		if (r->len >= REPLY_LINE_MAX + 1)
			fail("reply line %u is longer than %d bytes: \"%.200s...\"", r->count,
			     REPLY_LINE_MAX, r->line);
		r->line[r->len++] = (char)c;
	}
}

/* ---- one run ---- */

struct dconn {
	int fd;          /* the client's end */
	size_t got;      /* bytes read from the server */
};

struct late {
	int fd;          /* the server's end, not yet handed over */
	uint32_t seq;
	unsigned piece;  /* the piece during which the port was announced */
};

struct run {
	struct server srv;
	int ctl;                 /* the client's end of the control connection */
	int master;              /* the master's end of the worker channel */
	bool reading;            /* the client reads replies */
	bool ctl_eof;            /* the server closed the control connection */
	bool ctl_broken;         /* writes to it fail */
	/* directives waiting for their event */
	bool pasv_error, pasv_silent, late, hold, login_silent;
	const uint8_t *payload;
	size_t payload_len;
	struct dconn data[MAX_DATA];
	unsigned n_data;
	struct late late_q[MAX_DATA];
	unsigned n_late;
	unsigned piece;          /* pieces taken from the input so far */
	unsigned rounds;         /* loop iterations in this phase (input, then the end) */
	bool exhausted;          /* a phase ran out of rounds: the input is cut short */
	unsigned login_oks, session_ends;
	struct replies rep;
};

static struct run R;

static struct session *session(struct run *r)
{
	return session_find(&r->srv, SESSION_ID);
}

static void drop_data(struct run *r, unsigned i)
{
	close(r->data[i].fd);
	r->data[i] = r->data[--r->n_data];
}

static void hand_over(struct run *r, int fd, uint32_t seq)
{
	struct session *s = session(r);
	if (s == NULL) {
		close(fd);
		return;
	}
	struct msg_pasv_ref m = { .id = SESSION_ID, .seq = seq };
	data_passive_connected(s, &m, fd);
}

/* The master's PASV_PORT, and the client connecting to it. */
static void answer_pasv(struct run *r, struct session *s, const struct msg_pasv_open *req)
{
	struct msg_pasv_port a;
	memset(&a, 0, sizeof(a));
	a.id = req->id;
	a.seq = req->seq;
	int sv[2];
	if (r->pasv_error || r->n_data == MAX_DATA || r->n_late == MAX_DATA ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		r->pasv_error = false;
		a.err = EADDRINUSE;
		data_passive_answer(s, &a);
		return;
	}
	int sndbuf = 64 * 1024;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	const uint8_t *p = r->payload != NULL ? r->payload : (const uint8_t *)default_payload;
	size_t n = r->payload != NULL ? r->payload_len : sizeof(default_payload) - 1;
	if (n > 0 && write(sv[0], p, n) != (ssize_t)n)
		fail("data connection: short write of the payload");
	if (!r->hold)
		shutdown(sv[0], SHUT_WR);
	r->hold = false;
	r->data[r->n_data++] = (struct dconn){ .fd = sv[0] };

	a.port = (uint16_t)(50000 + req->seq % 1000);
	data_passive_answer(s, &a); /* may run further commands, even end the session */
	if (r->late) {
		r->late = false;
		r->late_q[r->n_late++] = (struct late){ .fd = sv[1], .seq = req->seq,
							 .piece = r->piece };
		return;
	}
	hand_over(r, sv[1], req->seq);
}

/* What the worker sent its master. */
static bool serve_master(struct run *r)
{
	bool moved = false;
	for (;;) {
		enum msg_type type;
		union msg_payload m;
		int fd = -1;
		int rc = msg_read(r->master, TO_MASTER, false, &type, &m, &fd);
		if (rc == -EAGAIN || rc == -EWOULDBLOCK)
			return moved;
		if (rc < 0)
			fail("worker channel: %s", strerror(-rc));
		moved = true;
		if (fd >= 0)
			fail("the worker sent a descriptor with message %u", type);
		/* Every message a worker sends names its session first. */
		uint64_t id;
		memcpy(&id, &m, sizeof(id));
		if (id != SESSION_ID)
			fail("message %u for session %llu, not ours", type, (unsigned long long)id);
		if (r->session_ends > 0)
			fail("message %u after SESSION_END", type);
		struct session *s = session(r);
		switch (type) {
		case MSG_PASV_OPEN:
			if (s == NULL)
				break;
			if (r->pasv_silent) {
				r->pasv_silent = false;
				break;
			}
			answer_pasv(r, s, &m.PASV_OPEN);
			break;
		case MSG_PASV_CLOSE:
			/* The master forgets the wait: a connection not handed over yet goes. */
			for (unsigned i = 0; i < r->n_late;) {
				if (r->late_q[i].seq == m.PASV_CLOSE.seq) {
					close(r->late_q[i].fd);
					r->late_q[i] = r->late_q[--r->n_late];
				} else {
					i++;
				}
			}
			break;
		case MSG_LOGIN_CHECKING:
			break;
		case MSG_LOGIN_FAILED:
			if (r->login_silent)
				r->login_silent = false;
			else if (s != NULL)
				login_delay_decided(s, 0);
			break;
		case MSG_LOGIN_OK:
			if (++r->login_oks > 1)
				fail("LOGIN_OK twice");
			break;
		case MSG_SESSION_END:
			r->session_ends++;
			break;
		default:
			fail("a worker never sends message type %u", type);
		}
	}
}

NO_COVERAGE static bool serve_data(struct run *r)
{
	bool moved = false;
	static uint8_t buf[64 * 1024];
	for (unsigned i = 0; i < r->n_data;) {
		struct dconn *d = &r->data[i];
		ssize_t n = read(d->fd, buf, sizeof(buf));
		if (n > 0) {
			moved = true;
			d->got += (size_t)n;
			if (d->got > DATA_READ_MAX)
				drop_data(r, i); /* enough: the client gives up */
			continue;
		}
		if (n == 0 || errno == ECONNRESET) {
			moved = true;
			drop_data(r, i);
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			fail("data connection: %s", strerror(errno));
		i++;
	}
	return moved;
}

NO_COVERAGE static bool read_replies(struct run *r)
{
	if (!r->reading || r->ctl_eof)
		return false;
	bool moved = false;
	static uint8_t buf[16 * 1024];
	for (;;) {
		ssize_t n = read(r->ctl, buf, sizeof(buf));
		if (n > 0) {
			moved = true;
			if (trace)
				fprintf(stderr, "<<< %.*s", (int)n, (const char *)buf);
			check_bytes(&r->rep, buf, (size_t)n);
			continue;
		}
		if (n == 0 || errno == ECONNRESET) {
			r->ctl_eof = true;
			return true;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			fail("control connection: %s", strerror(errno));
		return moved;
	}
}

/* What the loop changed in the session that the client cannot see yet. */
NO_COVERAGE static uint64_t signature(struct run *r)
{
	struct session *s = session(r);
	if (s == NULL)
		return 1;
	uint64_t h = s->flags;
	h = h * 31 + evbuffer_get_length(bufferevent_get_input(s->ctl));
	h = h * 31 + evbuffer_get_length(bufferevent_get_output(s->ctl));
	h = h * 31 + (uintptr_t)s->xfer + (uintptr_t)s->data * 7 + (uintptr_t)s->delay_timer * 13;
	return h;
}

/* Run the loop, the master and the client until nothing moves. */
NO_COVERAGE static void pump(struct run *r)
{
	unsigned quiet = 0;
	for (unsigned i = 0; i < PUMP_ROUNDS && quiet < QUIET_ROUNDS; i++) {
		if (++r->rounds > INPUT_ROUNDS) {
			r->exhausted = true;
			return;
		}
		uint64_t before = signature(r);
		event_base_loop(r->srv.base, EVLOOP_NONBLOCK);
		bool moved = signature(r) != before;
		moved |= serve_master(r);
		moved |= serve_data(r);
		moved |= read_replies(r);
		quiet = moved ? 0 : quiet + 1;
	}
}

static void write_ctl(struct run *r, const uint8_t *p, size_t n)
{
	while (n > 0 && !r->ctl_broken) {
		ssize_t w = write(r->ctl, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			/* The server does not read (busy, or its buffers are full): let it run. */
			unsigned before = r->rounds;
			pump(r);
			if (r->rounds - before <= QUIET_ROUNDS)
				return; /* it will not read more: the rest is lost, as on a stuck link */
			continue;
		}
		r->ctl_broken = true; /* EPIPE, ECONNRESET: the server has closed */
	}
}

struct earliest {
	struct event *ev;
	struct timeval at;
};

static int find_earliest(const struct event_base *base, const struct event *ev, void *arg)
{
	struct earliest *e = arg;
	struct timeval at;
	if (event_pending(ev, EV_TIMEOUT, &at) && (e->ev == NULL || timercmp(&at, &e->at, <))) {
		e->ev = (struct event *)ev;
		e->at = at;
	}
	return 0;
}

/* Time passes until the first pending timer expires (the session's, a data channel's, a
 * bufferevent's read or write time-out).  Returns whether there was one. */
static bool fire_timer(struct run *r)
{
	struct earliest e = { 0 };
	event_base_foreach_event(r->srv.base, find_earliest, &e);
	if (e.ev == NULL)
		return false;
	event_active(e.ev, EV_TIMEOUT, 1);
	return true;
}

static void directive(struct run *r, const uint8_t *p, size_t n)
{
	struct session *s;
	switch (n > 0 ? p[0] : 0) {
	case 'D':
		r->payload = p + 1;
		r->payload_len = n - 1;
		break;
	case 'H':
		r->hold = true;
		break;
	case 'C':
		while (r->n_data > 0)
			drop_data(r, 0);
		break;
	case 'E':
		r->pasv_error = true;
		break;
	case 'N':
		r->pasv_silent = true;
		break;
	case 'L':
		r->late = true;
		break;
	case 'W':
		r->login_silent = true;
		break;
	case 'T':
		fire_timer(r);
		break;
	case 'B':
	case 'U':
		if ((s = session(r)) != NULL)
			login_closed_by_master(s, p[0] == 'B');
		break;
	case 'R':
		r->reading = !r->reading;
		break;
	default:
		break;
	}
}

/* The connections to ports announced before the last piece (all of them at the end). */
static void deliver_late(struct run *r, bool all)
{
	for (unsigned i = 0; i < r->n_late;) {
		if (!all && r->late_q[i].piece + 1 >= r->piece) {
			i++;
			continue;
		}
		struct late l = r->late_q[i];
		r->late_q[i] = r->late_q[--r->n_late];
		hand_over(r, l.fd, l.seq); /* may change late_q: start again */
		i = 0;
	}
}

/* The set of open descriptors below FD_SCAN. */
NO_COVERAGE static void open_fds(uint8_t set[FD_SCAN / 8])
{
	memset(set, 0, FD_SCAN / 8);
	for (int fd = 0; fd < FD_SCAN; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			set[fd / 8] |= (uint8_t)(1u << (fd % 8));
	}
}

/* The harness calls the worker's handlers itself: nothing comes over the channel. */
static const struct channel_handlers no_messages;

static void on_channel_failed(void *ctx, enum channel_failure why, const char *detail)
{
	fail("the worker's channel failed (%d): %s", (int)why, detail);
}

static void start(struct run *r, int variant)
{
	memset(r, 0, sizeof(*r));
	r->reading = true;
	struct server *srv = &r->srv;
	srv->cfg = &configs[variant];
	srv->users = NULL; /* no users file: every other name fails as unknown, with no hash */
	srv->auth = NULL;  /* no password thread: auth_check fails at once */
	srv->worker_index = 1;
	srv->port20_fd = -1;
	srv->xferlog_fd = xferlog_fd;
	srv->anon_root_fd = root_path_fd;
	srv->tls = NULL;
	TAILQ_INIT(&srv->sessions);
	LIST_INIT(&srv->user_groups);
	srv->base = event_base_new();
	if (srv->base == NULL)
		fail("event_base_new");

	int chan[2], ctl[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, chan) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ctl) < 0)
		fail("socketpair: %s", strerror(errno));
	srv->master = channel_new(srv->base, chan[0], TO_WORKER, &no_messages, on_channel_failed, r);
	if (srv->master == NULL)
		fail("channel_new");
	r->master = chan[1];
	r->ctl = ctl[0];
	/* A small send buffer, so that replies back up (R) within a short input. */
	int sndbuf = 16 * 1024;
	setsockopt(ctl[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (session_new(srv, ctl[1], SESSION_ID, false) == NULL)
		fail("session_new failed");
}

/* The client has gone: the session must end, by the time its timers have fired at the latest. */
static void finish(struct run *r)
{
	r->rounds = 0; /* a fresh budget for the end */
	deliver_late(r, true);
	pump(r);
	if (!r->reading) {
		r->reading = true;
		pump(r);
	}
	struct session *s = session(r);
	if (s != NULL && !r->exhausted && !r->ctl_eof &&
	    evbuffer_get_length(bufferevent_get_output(s->ctl)) == 0) {
		if (r->rep.len != 0)
			fail("a reply line is half sent at a quiet point: \"%.*s\"", (int)r->rep.len,
			     r->rep.line);
		if (r->rep.multi != 0)
			fail("the %d multi-line reply is unfinished at a quiet point", r->rep.multi);
	}
	shutdown(r->ctl, SHUT_WR);
	pump(r);
	while (r->n_data > 0)
		drop_data(r, 0);
	pump(r);
	for (int i = 0; i < 32 && session(r) != NULL && fire_timer(r); i++)
		pump(r);
	if (session(r) != NULL) {
		if (!r->exhausted)
			fail("the session outlives its client, with no timer left to end it");
		session_close(session(r), "fuzz input over");
	}
	serve_master(r);
	if (r->session_ends != 1)
		fail("%u SESSION_END messages, want 1", r->session_ends);
	if (r->srv.n_sessions != 0 || !TAILQ_EMPTY(&r->srv.sessions))
		fail("sessions left in the server");

	while (r->n_late > 0)
		close(r->late_q[--r->n_late].fd);
	close(r->ctl);
	channel_free(r->srv.master);
	close(r->master);
	event_base_free(r->srv.base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t fds_before[FD_SCAN / 8], fds_after[FD_SCAN / 8];
	reset_tree();
	open_fds(fds_before);

	int variant = 0;
	if (size >= 3 && data[0] == DIRECTIVE && data[1] == 'O' && data[2] >= '0' &&
	    data[2] < '0' + N_CONFIGS)
		variant = data[2] - '0';
	struct run *r = &R;
	start(r, variant);
	pump(r);

	const uint8_t *p = data, *end = data + size;
	while (p < end && !r->exhausted) {
		const uint8_t *sep = memchr(p, PIECE_SEP, (size_t)(end - p));
		const uint8_t *stop = sep != NULL ? sep : end;
		size_t n = (size_t)(stop - p);
		if (trace)
			fprintf(stderr, ">>> %s%.*s\n", n > 0 && p[0] == DIRECTIVE ? "directive " : "",
				(int)n, (const char *)p);
		if (n > 0 && p[0] == DIRECTIVE) {
			directive(r, p + 1, n - 1);
		} else if (n > 0) {
			write_ctl(r, p, n);
		}
		pump(r);
		r->piece++;
		if (r->n_late > 0) {
			deliver_late(r, false);
			pump(r);
		}
		p = sep != NULL ? sep + 1 : end;
	}
	finish(r);

	open_fds(fds_after);
	for (int fd = 0; fd < FD_SCAN; fd++) {
		bool was = fds_before[fd / 8] & (1u << (fd % 8));
		bool is = fds_after[fd / 8] & (1u << (fd % 8));
		if (was != is)
			fail("descriptor %d %s during the input", fd, is ? "was left open" : "was closed");
	}
	check_confined();
	return 0;
}
