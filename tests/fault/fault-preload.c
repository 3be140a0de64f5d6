/*
 * fault-preload.c: an LD_PRELOAD library that makes chosen system calls of a running ferryd
 * fail on demand, so that the wire tests can show what ferryd does when a disk fills, a
 * data connection is reset or the master-worker channel is full (tests/wire/faults.py,
 * tests/wire/test_faults.py).  It is never part of ferryd and does nothing unless
 * $FERRY_FAULTS is set.
 *
 * Syntax of $FERRY_FAULTS: rules separated by ';' (at most 32), each
 *
 *     CALLS:ACTION[:OPTION]...
 *
 * CALLS   one or more of read readv recv recvfrom recvmsg write writev pwrite pwritev send
 *         sendto sendmsg sendfile splice copy_file_range accept accept4, separated by ','.
 *         libevent's listeners call accept4; its bufferevents readv, writev and sendfile;
 *         ferryd's clear binary uploads splice (socket to pipe, pipe to file), TYPE A ones
 *         read and write; the master-worker channel sendmsg/recvmsg.
 * ACTION  an errno name (EAGAIN, EMFILE, ENFILE, ENOSPC, EDQUOT, EIO, ECONNRESET, EPIPE, ...)
 *         or number: the call does nothing and fails with it.
 *         SHORT: the call moves at most max= bytes (default: half of what it was asked,
 *         at least 1) and returns that count, as a short write or read does.
 *         CTRUNC (recvmsg): the message is received, but the descriptors it carries are
 *         closed and MSG_CTRUNC is set, which is what Linux does when the receiver has no
 *         free descriptor (a real EMFILE never fails recvmsg itself).
 *         DROP (sendmsg): the call reports the whole message sent and sends nothing, a
 *         message lost on the way (no kernel does that; a bug could): what the master's
 *         reconciliation of live sessions is for.
 * OPTION  (all optional; a call must satisfy every filter to match the rule)
 *   after=BYTES  let BYTES bytes through the matching calls first; the call that crosses
 *                the mark is cut short at it, as on a disk that fills; then ACTION.
 *   skip=N       let the first N matching calls pass.
 *   every=N      then act on every Nth matching call only.
 *   count=N      act at most N times, then let everything pass.
 *   max=BYTES    the bytes a SHORT call moves.
 *   fdtype=T,... the descriptor is one of: reg dir fifo chr sock unix seqpacket stream dgram
 *                tcp tcp4 tcp6 (for sendfile and copy_file_range: the output one; for
 *                splice: the end that is not a pipe, else the output; for accept: the
 *                listener).
 *   lport=A[-B]  the socket's local port is in A-B (a data connection: set pasv_ports).
 *   rport=A[-B]  its peer's port is in A-B.
 *   path=SUBSTR  the file was opened (open, openat, syscall(SYS_openat2)) with a name that
 *                contains SUBSTR.  ferryd opens files relative to the user's root, so the
 *                name is "dir/file", without a leading '/'.
 *   role=R       only in the master, a worker or the port-20 helper (master|worker|port20).
 *                Rules without role= never apply in the port-20 helper, whose seccomp
 *                filter does not allow the calls the fd filters make (fstat, getsockopt,
 *                getsockname): role=port20 takes none of them, and its faults are not
 *                logged (no write(2) there either).
 * The first rule whose filters match a call decides it.  Each injected fault is logged on
 * stderr: "fault-preload: pid 12 write(fd 9) -> ENOSPC (rule 0)".  A rule that cannot be
 * parsed stops the process at load with exit status 2.
 *
 * Switching rules while ferryd runs: $FERRY_FAULTS_CTL names an existing file of at least
 * 4096 bytes, which every process maps shared (read-write) when it loads this library, so
 * that no system call is needed later: workers apply seccomp and Landlock after start-up,
 * which a stat(2) or open(2) of a control file would break.  Its layout:
 *   byte i (i < 32)              rule i is on unless the byte is '0'
 *   offset 64 + 32 * i           rule i's counters, shared by all processes, native
 *                                uint64: matching calls seen, faults injected, bytes
 *                                through its calls (the after= count), and one spare.
 * A test writes the bytes in place (never truncate the file: a shared mapping past the end
 * of a file faults) and may write zeros to the counters to re-arm a rule.  Without
 * $FERRY_FAULTS_CTL every rule is on and counts per process.
 *
 * Example: "write:ENOSPC:after=1048576:path=full.bin;sendfile:ECONNRESET:fdtype=tcp:lport=40000"
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_RULES 32
#define MAX_FDS 65536
#define CTL_SIZE 4096
#define SLOTS_AT 64
#define PATH_SUB_MAX 128

enum call {
	C_READ, C_READV, C_RECV, C_RECVFROM, C_RECVMSG, C_WRITE, C_WRITEV, C_PWRITE, C_PWRITEV,
	C_SEND, C_SENDTO, C_SENDMSG, C_SENDFILE, C_SPLICE, C_COPY_FILE_RANGE, C_ACCEPT,
	C_ACCEPT4, C_COUNT
};

static const char *const call_names[C_COUNT] = {
	"read", "readv", "recv", "recvfrom", "recvmsg", "write", "writev", "pwrite", "pwritev",
	"send", "sendto", "sendmsg", "sendfile", "splice", "copy_file_range", "accept", "accept4",
};

enum fdtype {
	FT_REG = 1 << 0, FT_DIR = 1 << 1, FT_FIFO = 1 << 2, FT_CHR = 1 << 3, FT_SOCK = 1 << 4,
	FT_UNIX = 1 << 5, FT_SEQPACKET = 1 << 6, FT_STREAM = 1 << 7, FT_DGRAM = 1 << 8,
	FT_TCP = 1 << 9, FT_TCP4 = 1 << 10, FT_TCP6 = 1 << 11,
};

static const struct {
	const char *name;
	unsigned bit;
} fdtype_names[] = {
	{ "reg", FT_REG },	       { "dir", FT_DIR },	{ "fifo", FT_FIFO },
	{ "chr", FT_CHR },	       { "sock", FT_SOCK },	{ "unix", FT_UNIX },
	{ "seqpacket", FT_SEQPACKET }, { "stream", FT_STREAM }, { "dgram", FT_DGRAM },
	{ "tcp", FT_TCP },	       { "tcp4", FT_TCP4 },	{ "tcp6", FT_TCP6 },
};

enum role { ROLE_ANY, ROLE_MASTER, ROLE_WORKER, ROLE_PORT20 };

/* Actions that are not an errno. */
#define ACT_SHORT (-1)
#define ACT_CTRUNC (-2)
#define ACT_DROP (-3)

struct rule {
	uint32_t calls; /* bit per enum call */
	int action;     /* errno, ACT_SHORT or ACT_CTRUNC */
	bool has_after;
	uint64_t after, skip, every, count, max;
	unsigned fdtypes; /* 0: any */
	int lport_min, lport_max, rport_min, rport_max; /* -1: any */
	enum role role;
	char path[PATH_SUB_MAX]; /* "": any */
};

/* Shared with the test through $FERRY_FAULTS_CTL (see the layout above). */
struct slot {
	uint64_t seen, fired, bytes, spare;
};

static struct rule rules[MAX_RULES];
static unsigned n_rules;
static enum role my_role = ROLE_MASTER;
static pid_t my_pid; /* for the log lines: getpid(2) is not allowed in every sandbox */
static const volatile unsigned char *ctl_on; /* NULL: every rule is on */
static struct slot *slots;
static struct slot local_slots[MAX_RULES];
/* Bit i: the descriptor was opened with a name that matches rule i's path=. */
static uint32_t fd_path_match[MAX_FDS];

/* ---- the real functions ---- */

#define REAL(name) static __typeof__(name) *real_##name
REAL(read);
REAL(readv);
REAL(recv);
REAL(recvfrom);
REAL(recvmsg);
REAL(write);
REAL(writev);
REAL(pwrite);
REAL(pwrite64);
REAL(pwritev);
REAL(send);
REAL(sendto);
REAL(sendmsg);
REAL(sendfile);
REAL(sendfile64);
REAL(splice);
REAL(copy_file_range);
REAL(accept);
REAL(accept4);
REAL(close);
REAL(open);
REAL(open64);
REAL(openat);
REAL(openat64);
REAL(syscall);
REAL(prctl);

/*
 * Resolved at load time (before any sandbox), and again on first use should another
 * library's constructor call in before ours ran.
 */
#define RESOLVE(name)                                                            \
	do {                                                                     \
		if (real_##name == NULL)                                         \
			real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name); \
	} while (0)

static void resolve_all(void)
{
	RESOLVE(read); RESOLVE(readv); RESOLVE(recv); RESOLVE(recvfrom); RESOLVE(recvmsg);
	RESOLVE(write); RESOLVE(writev); RESOLVE(pwrite); RESOLVE(pwrite64); RESOLVE(pwritev);
	RESOLVE(send); RESOLVE(sendto); RESOLVE(sendmsg); RESOLVE(sendfile);
	RESOLVE(sendfile64); RESOLVE(splice); RESOLVE(copy_file_range); RESOLVE(accept);
	RESOLVE(accept4); RESOLVE(close); RESOLVE(open); RESOLVE(open64); RESOLVE(openat);
	RESOLVE(openat64); RESOLVE(syscall); RESOLVE(prctl);
}

/* ---- parsing $FERRY_FAULTS ---- */

static const struct {
	const char *name;
	int value;
} errno_names[] = {
	{ "EAGAIN", EAGAIN },	    { "EWOULDBLOCK", EWOULDBLOCK },
	{ "EINTR", EINTR },	    { "EMFILE", EMFILE },
	{ "ENFILE", ENFILE },	    { "ENOSPC", ENOSPC },
	{ "EDQUOT", EDQUOT },	    { "EFBIG", EFBIG },
	{ "EIO", EIO },		    { "ENOMEM", ENOMEM },
	{ "ENOBUFS", ENOBUFS },	    { "ECONNRESET", ECONNRESET },
	{ "ECONNABORTED", ECONNABORTED }, { "EPIPE", EPIPE },
	{ "ETIMEDOUT", ETIMEDOUT }, { "EHOSTUNREACH", EHOSTUNREACH },
	{ "ENETDOWN", ENETDOWN },   { "EBADF", EBADF },
	{ "EINVAL", EINVAL },	    { "EACCES", EACCES },
	{ "EPERM", EPERM },	    { "EROFS", EROFS },
};

static const char *errno_name(int e)
{
	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++) {
		if (errno_names[i].value == e)
			return errno_names[i].name;
	}
	return "errno";
}

static _Noreturn void bad_spec(const char *what, const char *text)
{
	fprintf(stderr, "fault-preload: $FERRY_FAULTS: %s: '%s'\n", what, text);
	_exit(2);
}

static uint64_t parse_u64(const char *v, const char *opt)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || v[0] == '-')
		bad_spec("not a number", opt);
	return n;
}

static void parse_range(const char *v, const char *opt, int *lo, int *hi)
{
	char *end;
	long a = strtol(v, &end, 10);
	long b = a;
	if (*end == '-')
		b = strtol(end + 1, &end, 10);
	if (end == v || *end != '\0' || a < 0 || b < a || b > 65535)
		bad_spec("not a port range", opt);
	*lo = (int)a;
	*hi = (int)b;
}

static int parse_action(const char *v)
{
	if (strcmp(v, "SHORT") == 0)
		return ACT_SHORT;
	if (strcmp(v, "CTRUNC") == 0)
		return ACT_CTRUNC;
	if (strcmp(v, "DROP") == 0)
		return ACT_DROP;
	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++) {
		if (strcmp(v, errno_names[i].name) == 0)
			return errno_names[i].value;
	}
	char *end;
	long n = strtol(v, &end, 10);
	if (end == v || *end != '\0' || n <= 0 || n > 4095)
		bad_spec("unknown action", v);
	return (int)n;
}

static uint32_t parse_calls(char *v)
{
	uint32_t calls = 0;
	for (char *save = NULL, *c = strtok_r(v, ",", &save); c != NULL;
	     c = strtok_r(NULL, ",", &save)) {
		size_t i;
		for (i = 0; i < C_COUNT && strcmp(c, call_names[i]) != 0; i++)
			;
		if (i == C_COUNT)
			bad_spec("unknown call", c);
		calls |= 1u << i;
	}
	if (calls == 0)
		bad_spec("no call", v);
	return calls;
}

static unsigned parse_fdtypes(char *v)
{
	unsigned bits = 0;
	for (char *save = NULL, *t = strtok_r(v, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		size_t i, n = sizeof(fdtype_names) / sizeof(fdtype_names[0]);
		for (i = 0; i < n && strcmp(t, fdtype_names[i].name) != 0; i++)
			;
		if (i == n)
			bad_spec("unknown fdtype", t);
		bits |= fdtype_names[i].bit;
	}
	return bits;
}

static enum role parse_role(const char *v)
{
	if (strcmp(v, "master") == 0)
		return ROLE_MASTER;
	if (strcmp(v, "worker") == 0)
		return ROLE_WORKER;
	if (strcmp(v, "port20") == 0)
		return ROLE_PORT20;
	bad_spec("unknown role", v);
}

static void parse_option(struct rule *r, char *opt)
{
	char *eq = strchr(opt, '=');
	if (eq == NULL)
		bad_spec("option without '='", opt);
	*eq = '\0';
	char *v = eq + 1;
	if (strcmp(opt, "after") == 0) {
		r->after = parse_u64(v, opt);
		r->has_after = true;
	} else if (strcmp(opt, "skip") == 0) {
		r->skip = parse_u64(v, opt);
	} else if (strcmp(opt, "every") == 0) {
		r->every = parse_u64(v, opt);
	} else if (strcmp(opt, "count") == 0) {
		r->count = parse_u64(v, opt);
	} else if (strcmp(opt, "max") == 0) {
		r->max = parse_u64(v, opt);
	} else if (strcmp(opt, "fdtype") == 0) {
		r->fdtypes = parse_fdtypes(v);
	} else if (strcmp(opt, "lport") == 0) {
		parse_range(v, opt, &r->lport_min, &r->lport_max);
	} else if (strcmp(opt, "rport") == 0) {
		parse_range(v, opt, &r->rport_min, &r->rport_max);
	} else if (strcmp(opt, "path") == 0) {
		if (strlen(v) == 0 || strlen(v) >= sizeof(r->path))
			bad_spec("path= empty or too long", v);
		strcpy(r->path, v);
	} else if (strcmp(opt, "role") == 0) {
		r->role = parse_role(v);
	} else {
		bad_spec("unknown option", opt);
	}
}

static void parse_rule(struct rule *r, char *text)
{
	memset(r, 0, sizeof(*r));
	r->lport_min = r->lport_max = r->rport_min = r->rport_max = -1;
	char *save = NULL;
	char *calls = strtok_r(text, ":", &save);
	char *action = strtok_r(NULL, ":", &save);
	if (calls == NULL || action == NULL)
		bad_spec("want CALLS:ACTION[:OPTION]...", text);
	r->action = parse_action(action);
	for (char *o = strtok_r(NULL, ":", &save); o != NULL; o = strtok_r(NULL, ":", &save))
		parse_option(r, o);
	r->calls = parse_calls(calls);
	if (r->action == ACT_CTRUNC && r->calls != 1u << C_RECVMSG)
		bad_spec("CTRUNC is for recvmsg only", action);
	if (r->action == ACT_DROP && r->calls != 1u << C_SENDMSG)
		bad_spec("DROP is for sendmsg only", action);
	/* The helper's seccomp filter allows neither fstat, getsockopt, getsockname nor write. */
	if (r->role == ROLE_PORT20 && (r->fdtypes != 0 || r->lport_min >= 0 || r->rport_min >= 0))
		bad_spec("role=port20 takes no fdtype, lport or rport", action);
}

static void parse_spec(const char *spec)
{
	char *copy = strdup(spec);
	if (copy == NULL)
		bad_spec("out of memory", spec);
	for (char *save = NULL, *t = strtok_r(copy, ";", &save); t != NULL;
	     t = strtok_r(NULL, ";", &save)) {
		if (n_rules == MAX_RULES)
			bad_spec("more than 32 rules", spec);
		parse_rule(&rules[n_rules++], t);
	}
	free(copy);
}

/* Map the control file; without one, the rules are on and count in this process. */
static void map_control(const char *path)
{
	slots = local_slots;
	if (path == NULL || path[0] == '\0')
		return;
	int fd = real_open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		bad_spec(strerror(errno), path);
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size < CTL_SIZE)
		bad_spec("control file shorter than 4096 bytes", path);
	void *p = mmap(NULL, CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	real_close(fd);
	if (p == MAP_FAILED)
		bad_spec(strerror(errno), path);
	ctl_on = p;
	slots = (struct slot *)((char *)p + SLOTS_AT);
}

/* glibc hands constructors argc, argv and envp: a worker is ferryd started with --worker. */
__attribute__((constructor)) static void fault_init(int argc, char **argv, char **envp)
{
	resolve_all();
	my_pid = getpid();
	for (int i = 1; i < argc && argv != NULL; i++) {
		if (argv[i] != NULL && strcmp(argv[i], "--worker") == 0)
			my_role = ROLE_WORKER;
	}
	const char *spec = getenv("FERRY_FAULTS");
	if (spec == NULL || spec[0] == '\0')
		return;
	parse_spec(spec);
	map_control(getenv("FERRY_FAULTS_CTL"));
}

/* ---- matching ---- */

/* What kind of descriptor fd is: fstat, getsockopt (both allowed by the worker's sandbox). */
static unsigned fd_kind(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return 0;
	if (S_ISREG(st.st_mode))
		return FT_REG;
	if (S_ISDIR(st.st_mode))
		return FT_DIR;
	if (S_ISFIFO(st.st_mode))
		return FT_FIFO;
	if (S_ISCHR(st.st_mode))
		return FT_CHR;
	if (!S_ISSOCK(st.st_mode))
		return 0;
	int domain = 0, type = 0;
	socklen_t len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		return FT_SOCK;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return FT_SOCK;
	unsigned k = FT_SOCK;
	k |= type == SOCK_STREAM ? FT_STREAM : type == SOCK_DGRAM ? FT_DGRAM
		: type == SOCK_SEQPACKET ? FT_SEQPACKET : 0;
	if (domain == AF_UNIX)
		k |= FT_UNIX;
	if ((domain == AF_INET || domain == AF_INET6) && type == SOCK_STREAM)
		k |= FT_TCP | (domain == AF_INET ? FT_TCP4 : FT_TCP6);
	return k;
}

static int port_of(int fd, bool local)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int rc = local ? getsockname(fd, (struct sockaddr *)&ss, &len)
		       : getpeername(fd, (struct sockaddr *)&ss, &len);
	if (rc < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

static bool rule_on(unsigned i)
{
	return ctl_on == NULL || ctl_on[i] != '0';
}

static bool in_range(int v, int lo, int hi)
{
	return lo < 0 || (v >= lo && v <= hi);
}

/* Whether fd was opened with a name that matches rule i's path=. */
static bool opened_as(int fd, unsigned i)
{
	if (fd < 0 || fd >= MAX_FDS)
		return false;
	return (__atomic_load_n(&fd_path_match[fd], __ATOMIC_RELAXED) & (1u << i)) != 0;
}

static bool rule_matches(unsigned i, enum call c, int fd)
{
	const struct rule *r = &rules[i];
	if (!(r->calls & (1u << c)) || !rule_on(i))
		return false;
	if (r->role == ROLE_ANY ? my_role == ROLE_PORT20 : r->role != my_role)
		return false;
	if (r->path[0] != '\0' && !opened_as(fd, i))
		return false;
	if (r->fdtypes != 0 && !(fd_kind(fd) & r->fdtypes))
		return false;
	if (r->lport_min >= 0 && !in_range(port_of(fd, true), r->lport_min, r->lport_max))
		return false;
	if (r->rport_min >= 0 && !in_range(port_of(fd, false), r->rport_min, r->rport_max))
		return false;
	return true;
}

/*
 * The decision for one call.  rule: the matching rule or -1; err: fail with it (0: make
 * the call); len: the bytes the call may move (cut short for after= and SHORT).
 */
struct verdict {
	int rule;
	int err;
	size_t len;
	bool ctrunc;
	bool drop;
};

static bool take_fault(const struct rule *r, struct slot *sl)
{
	uint64_t seen = __atomic_add_fetch(&sl->seen, 1, __ATOMIC_RELAXED);
	if (seen <= r->skip)
		return false;
	if (r->every > 1 && (seen - r->skip) % r->every != 0)
		return false;
	uint64_t fired = __atomic_fetch_add(&sl->fired, 1, __ATOMIC_RELAXED);
	if (r->count > 0 && fired >= r->count) {
		__atomic_fetch_sub(&sl->fired, 1, __ATOMIC_RELAXED);
		return false;
	}
	return true;
}

static void log_fault(enum call c, int fd, int rule, const char *what)
{
	if (my_role == ROLE_PORT20)
		return; /* its sandbox would kill it for the write */
	char line[160];
	int n = snprintf(line, sizeof(line), "fault-preload: pid %d %s(fd %d) -> %s (rule %d)\n",
			 (int)my_pid, call_names[c], fd, what, rule);
	if (n > 0 && real_write != NULL)
		(void)real_write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static struct verdict decide(enum call c, int fd, size_t len)
{
	struct verdict v = { .rule = -1, .err = 0, .len = len };
	unsigned i;
	for (i = 0; i < n_rules && !rule_matches(i, c, fd); i++)
		;
	if (i == n_rules)
		return v;
	const struct rule *r = &rules[i];
	struct slot *sl = &slots[i];
	v.rule = (int)i;
	if (r->has_after) {
		uint64_t done = __atomic_load_n(&sl->bytes, __ATOMIC_RELAXED);
		if (done < r->after) {
			if (len > r->after - done)
				v.len = (size_t)(r->after - done);
			return v;
		}
	}
	if (!take_fault(r, sl))
		return v;
	if (r->action == ACT_SHORT) {
		size_t most = r->max > 0 ? (size_t)r->max : len / 2;
		v.len = len < 2 ? len : most < 1 ? 1 : most < len ? most : len;
		log_fault(c, fd, (int)i, "SHORT");
	} else if (r->action == ACT_CTRUNC) {
		v.ctrunc = true;
		log_fault(c, fd, (int)i, "CTRUNC");
	} else if (r->action == ACT_DROP) {
		v.drop = true;
		log_fault(c, fd, (int)i, "DROP");
	} else {
		v.err = r->action;
		log_fault(c, fd, (int)i, errno_name(r->action));
	}
	return v;
}

/* After the real call: count what it moved towards the rule's after=. */
static void account(const struct verdict *v, ssize_t moved)
{
	if (v->rule >= 0 && moved > 0)
		__atomic_fetch_add(&slots[v->rule].bytes, (uint64_t)moved, __ATOMIC_RELAXED);
}

static size_t iov_total(const struct iovec *iov, int n)
{
	size_t t = 0;
	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* Copy iov into out (IOV_MAX entries) holding at most max bytes; returns the new count. */
static int iov_clip(const struct iovec *iov, int n, size_t max, struct iovec *out)
{
	int m = 0;
	for (int i = 0; i < n && i < IOV_MAX && max > 0; i++) {
		out[m] = iov[i];
		if (out[m].iov_len > max)
			out[m].iov_len = max;
		max -= out[m].iov_len;
		m++;
	}
	return m;
}

static ssize_t fail(int e)
{
	errno = e;
	return -1;
}

/* Nothing to decide (no rule, or not a call any rule names): the common, cheap case. */
static bool untouched(enum call c)
{
	for (unsigned i = 0; i < n_rules; i++) {
		if (rules[i].calls & (1u << c))
			return false;
	}
	return true;
}

/* ---- reads and writes ---- */

#define BUFFER_CALL(call_enum, fd, nbytes, real_call)              \
	do {                                                       \
		if (untouched(call_enum))                          \
			return real_call(nbytes);                  \
		struct verdict v = decide(call_enum, fd, nbytes);  \
		if (v.err != 0)                                    \
			return fail(v.err);                        \
		ssize_t moved = real_call(v.len);                  \
		account(&v, moved);                                \
		return moved;                                      \
	} while (0)

ssize_t read(int fd, void *buf, size_t count)
{
	RESOLVE(read);
#define CALL(n) real_read(fd, buf, n)
	BUFFER_CALL(C_READ, fd, count, CALL);
#undef CALL
}

ssize_t write(int fd, const void *buf, size_t count)
{
	RESOLVE(write);
#define CALL(n) real_write(fd, buf, n)
	BUFFER_CALL(C_WRITE, fd, count, CALL);
#undef CALL
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t off)
{
	RESOLVE(pwrite);
#define CALL(n) real_pwrite(fd, buf, n, off)
	BUFFER_CALL(C_PWRITE, fd, count, CALL);
#undef CALL
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t off)
{
	RESOLVE(pwrite64);
#define CALL(n) real_pwrite64(fd, buf, n, off)
	BUFFER_CALL(C_PWRITE, fd, count, CALL);
#undef CALL
}

ssize_t recv(int fd, void *buf, size_t count, int flags)
{
	RESOLVE(recv);
#define CALL(n) real_recv(fd, buf, n, flags)
	BUFFER_CALL(C_RECV, fd, count, CALL);
#undef CALL
}

ssize_t recvfrom(int fd, void *buf, size_t count, int flags, struct sockaddr *a, socklen_t *al)
{
	RESOLVE(recvfrom);
#define CALL(n) real_recvfrom(fd, buf, n, flags, a, al)
	BUFFER_CALL(C_RECVFROM, fd, count, CALL);
#undef CALL
}

ssize_t send(int fd, const void *buf, size_t count, int flags)
{
	RESOLVE(send);
#define CALL(n) real_send(fd, buf, n, flags)
	BUFFER_CALL(C_SEND, fd, count, CALL);
#undef CALL
}

ssize_t sendto(int fd, const void *buf, size_t count, int flags, const struct sockaddr *a,
	       socklen_t al)
{
	RESOLVE(sendto);
#define CALL(n) real_sendto(fd, buf, n, flags, a, al)
	BUFFER_CALL(C_SENDTO, fd, count, CALL);
#undef CALL
}

ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
	RESOLVE(sendfile);
#define CALL(n) real_sendfile(out, in, off, n)
	BUFFER_CALL(C_SENDFILE, out, count, CALL);
#undef CALL
}

ssize_t sendfile64(int out, int in, off64_t *off, size_t count)
{
	RESOLVE(sendfile64);
#define CALL(n) real_sendfile64(out, in, off, n)
	BUFFER_CALL(C_SENDFILE, out, count, CALL);
#undef CALL
}

/* Judged by the end that is not a pipe: the socket of socket-to-pipe, the file of pipe-to-file. */
ssize_t splice(int in, off64_t *in_off, int out, off64_t *out_off, size_t count, unsigned flags)
{
	RESOLVE(splice);
	struct stat st;
	int judged = fstat(out, &st) == 0 && S_ISFIFO(st.st_mode) ? in : out;
#define CALL(n) real_splice(in, in_off, out, out_off, n, flags)
	BUFFER_CALL(C_SPLICE, judged, count, CALL);
#undef CALL
}

ssize_t copy_file_range(int in, off64_t *in_off, int out, off64_t *out_off, size_t count,
			unsigned flags)
{
	RESOLVE(copy_file_range);
#define CALL(n) real_copy_file_range(in, in_off, out, out_off, n, flags)
	BUFFER_CALL(C_COPY_FILE_RANGE, out, count, CALL);
#undef CALL
}

/* The vector calls: the same, with the vector cut short when the verdict says so. */
#define VECTOR_CALL(call_enum, fd, iov, cnt, real_call)                  \
	do {                                                             \
		if (untouched(call_enum))                                \
			return real_call(iov, cnt);                      \
		size_t total = iov_total(iov, cnt);                      \
		struct verdict v = decide(call_enum, fd, total);         \
		if (v.err != 0)                                          \
			return fail(v.err);                              \
		if (v.len == total) {                                    \
			ssize_t n = real_call(iov, cnt);                 \
			account(&v, n);                                  \
			return n;                                        \
		}                                                        \
		struct iovec cut[IOV_MAX];                               \
		int m = iov_clip(iov, cnt, v.len, cut);                  \
		ssize_t n = real_call(cut, m);                           \
		account(&v, n);                                          \
		return n;                                                \
	} while (0)

ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	RESOLVE(readv);
#define CALL(i, c) real_readv(fd, i, c)
	VECTOR_CALL(C_READV, fd, iov, cnt, CALL);
#undef CALL
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	RESOLVE(writev);
#define CALL(i, c) real_writev(fd, i, c)
	VECTOR_CALL(C_WRITEV, fd, iov, cnt, CALL);
#undef CALL
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	RESOLVE(pwritev);
#define CALL(i, c) real_pwritev(fd, i, c, off)
	VECTOR_CALL(C_PWRITEV, fd, iov, cnt, CALL);
#undef CALL
}

/* Close the descriptors a received message carries and mark it truncated. */
static void drop_rights(struct msghdr *msg)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			real_close(fd);
		}
	}
	msg->msg_controllen = 0;
	msg->msg_flags |= MSG_CTRUNC;
}

static ssize_t real_msg(enum call c, int fd, struct msghdr *msg, int flags)
{
	return c == C_RECVMSG ? real_recvmsg(fd, msg, flags) : real_sendmsg(fd, msg, flags);
}

static ssize_t msg_call(enum call c, int fd, struct msghdr *msg, int flags)
{
	if (untouched(c))
		return real_msg(c, fd, msg, flags);
	size_t total = iov_total(msg->msg_iov, (int)msg->msg_iovlen);
	struct verdict v = decide(c, fd, total);
	if (v.err != 0)
		return fail(v.err);
	if (v.drop)
		return (ssize_t)total;
	ssize_t n;
	if (v.len == total) {
		n = real_msg(c, fd, msg, flags);
	} else {
		struct iovec cut[IOV_MAX];
		struct iovec *orig = msg->msg_iov;
		size_t orig_len = msg->msg_iovlen;
		msg->msg_iovlen = (size_t)iov_clip(orig, (int)orig_len, v.len, cut);
		msg->msg_iov = cut;
		n = real_msg(c, fd, msg, flags);
		msg->msg_iov = orig;
		msg->msg_iovlen = orig_len;
	}
	if (n >= 0 && v.ctrunc)
		drop_rights(msg);
	account(&v, n);
	return n;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	RESOLVE(recvmsg);
	return msg_call(C_RECVMSG, fd, msg, flags);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	RESOLVE(sendmsg);
	/* Only the iovec pointer is changed, and restored before returning. */
	return msg_call(C_SENDMSG, fd, (struct msghdr *)msg, flags);
}

/* ---- accept ---- */

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	RESOLVE(accept);
	if (!untouched(C_ACCEPT)) {
		struct verdict v = decide(C_ACCEPT, fd, 0);
		if (v.err != 0)
			return (int)fail(v.err);
	}
	return real_accept(fd, addr, len);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	RESOLVE(accept4);
	if (!untouched(C_ACCEPT4)) {
		struct verdict v = decide(C_ACCEPT4, fd, 0);
		if (v.err != 0)
			return (int)fail(v.err);
	}
	return real_accept4(fd, addr, len, flags);
}

/* ---- remembering which descriptors path= rules name ---- */

static void note_open(int fd, const char *name)
{
	if (fd < 0 || fd >= MAX_FDS || name == NULL)
		return;
	uint32_t mask = 0;
	for (unsigned i = 0; i < n_rules; i++) {
		if (rules[i].path[0] != '\0' && strstr(name, rules[i].path) != NULL)
			mask |= 1u << i;
	}
	__atomic_store_n(&fd_path_match[fd], mask, __ATOMIC_RELAXED);
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
	RESOLVE(open);
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	int fd = real_open(path, flags, mode);
	note_open(fd, path);
	return fd;
}

int open64(const char *path, int flags, ...)
{
	RESOLVE(open64);
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	int fd = real_open64(path, flags, mode);
	note_open(fd, path);
	return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
	RESOLVE(openat);
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	int fd = real_openat(dirfd, path, flags, mode);
	note_open(fd, path);
	return fd;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	RESOLVE(openat64);
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	int fd = real_openat64(dirfd, path, flags, mode);
	note_open(fd, path);
	return fd;
}

/* ferryd opens every file of a session with syscall(SYS_openat2, ...) (src/server/vfs.c). */
long syscall(long number, ...)
{
	RESOLVE(syscall);
	va_list ap;
	va_start(ap, number);
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	long rc = real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (number == SYS_openat2 && rc >= 0 && rc < INT_MAX)
		note_open((int)rc, (const char *)a[1]);
	return rc;
}

int close(int fd)
{
	RESOLVE(close);
	if (fd >= 0 && fd < MAX_FDS)
		__atomic_store_n(&fd_path_match[fd], 0, __ATOMIC_RELAXED);
	return real_close(fd);
}

/* ---- which process this is ---- */

/* The port-20 helper is forked, not executed: it names itself (src/server/port20.c). */
int prctl(int option, ...)
{
	RESOLVE(prctl);
	va_list ap;
	va_start(ap, option);
	unsigned long a2 = va_arg(ap, unsigned long);
	unsigned long a3 = va_arg(ap, unsigned long);
	unsigned long a4 = va_arg(ap, unsigned long);
	unsigned long a5 = va_arg(ap, unsigned long);
	va_end(ap);
	if (option == PR_SET_NAME && a2 != 0) {
		/* Before the process's sandbox, which may not allow getpid. */
		my_pid = getpid();
		if (strcmp((const char *)a2, "ferryd-port20") == 0)
			my_role = ROLE_PORT20;
	}
	return real_prctl(option, a2, a3, a4, a5);
}
