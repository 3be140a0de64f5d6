/*
 * sandbox.c: the last step of each process's start-up, after which it can do only what its
 * job needs (docs/security.md).  Layers, in the order they are applied:
 *
 *   1. capabilities: none in any set (the port-20 helper keeps CAP_NET_BIND_SERVICE);
 *   2. no_new_privs: no execve can grant privileges again (set-user-ID, file capabilities);
 *      workers and the helper are also made non-dumpable;
 *   3. Landlock (raw system calls, the best ABI the kernel offers): file access only beneath
 *      the data roots, with the rights their users' permissions need; no signals to, and no
 *      abstract sockets of, processes outside the sandbox;
 *   4. seccomp (libseccomp): an allow-list of the system calls the process makes, found by
 *      tracing the test suites; anything else kills the whole process (SIGSYS).
 *
 * This file never reads the configuration file and has no switch to turn a layer off: a
 * kernel without Landlock or seccomp gets a warning, never a silent pass.  It must never be
 * called before a process has opened what it needs for its whole life, and never while a
 * second thread runs (Landlock confines only the calling thread and its future children).
 */
#include "server/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "server/config.h"
#include "server/log.h"
#include "server/session.h"
#include "server/user_settings.h"
#include "server/users.h"

/* ---- capabilities and no_new_privs ---- */

/* Only a process with CAP_SETPCAP in its effective set can shrink its bounding set. */
static bool have_setpcap(void)
{
	cap_flag_value_t v = CAP_CLEAR;
	cap_t cur = cap_get_proc();
	if (cur != NULL)
		cap_get_flag(cur, CAP_SETPCAP, CAP_EFFECTIVE, &v);
	cap_free(cur);
	return v == CAP_SET;
}

static int drop_bounding_set(void)
{
	if (!have_setpcap())
		return 0;
	cap_value_t n = cap_max_bits();
	for (cap_value_t c = 0; c < n; c++) {
		if (cap_drop_bound(c) < 0 && errno != EINVAL)
			return -errno;
	}
	return 0;
}

/* keep: the one capability to leave in the permitted and effective sets, or -1. */
static int clear_capabilities(cap_value_t keep)
{
	int rc = drop_bounding_set();
	if (rc < 0)
		return rc;
	/* Ambient capabilities survive execve for unprivileged programs: clear them too. */
	if (CAP_AMBIENT_SUPPORTED() && cap_reset_ambient() < 0)
		return -errno;
	cap_t caps = cap_init(); /* every set empty */
	if (caps == NULL)
		return -errno;
	if (keep >= 0 && (cap_set_flag(caps, CAP_PERMITTED, 1, &keep, CAP_SET) < 0 ||
			  cap_set_flag(caps, CAP_EFFECTIVE, 1, &keep, CAP_SET) < 0)) {
		rc = -errno;
		cap_free(caps);
		return rc;
	}
	rc = cap_set_proc(caps) < 0 ? -errno : 0;
	cap_free(caps);
	return rc;
}

/*
 * no_new_privs, and not dumpable: no core file, and no other process of the same user
 * (the default `nobody` is often shared) may ptrace us or read our memory through /proc.
 */
static int set_no_new_privs(bool dumpable)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (!dumpable && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

/* Landlock and seccomp confine one thread and the ones it creates later: be alone. */
static int count_threads(void)
{
	FILE *f = fopen("/proc/self/stat", "re");
	if (f == NULL)
		return -errno;
	char buf[1024];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Field 20, num_threads; the command name (field 2) may hold spaces, so count from ')'. */
	const char *p = strrchr(buf, ')');
	for (int field = 2; p != NULL && field < 20; field++)
		p = strchr(p + 1, ' ');
	return p != NULL ? atoi(p + 1) : -EPROTO;
}

/* ---- Landlock ---- */

/*
 * Rights and structures of Landlock ABIs newer than the oldest header we build with
 * (Debian 12's knows ABI 2).  The kernel accepts a larger structure than it knows as long
 * as the fields it does not know are zero, so the full one is always passed.
 */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#endif
#define LL_ACCESS_NET_BIND_TCP (1ULL << 0)        /* ABI 4 */
#define LL_ACCESS_NET_CONNECT_TCP (1ULL << 1)     /* ABI 4 */
#define LL_RULE_NET_PORT 2                        /* ABI 4 */
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)               /* ABI 6 */

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

struct ll_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
};

#define LL_FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_FS_ABI1                                                                                 \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LL_FS_READ |                 \
	 LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |                          \
	 LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG | \
	 LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |                             \
	 LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM)

/*
 * The Landlock ABI, 0 when the kernel has none (ENOSYS: not built in; EOPNOTSUPP: not
 * enabled at boot), or -errno when the call itself was refused, by a system call filter
 * around ferryd (a service manager's): that is no kernel's answer, and must not pass for
 * one.
 */
static int ll_abi(const char *who)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (v >= 0)
		return (int)v;
	int e = errno;
	if (e == ENOSYS)
		log_warn("%s: the kernel has no Landlock (not built in): file access is not "
			 "restricted by the kernel (the other sandbox layers apply)", who);
	else if (e == EOPNOTSUPP)
		log_warn("%s: Landlock is not enabled in this kernel (add landlock to the lsm= boot "
			 "parameter): file access is not restricted by the kernel (the other "
			 "sandbox layers apply)", who);
	else
		log_error("%s: Landlock: the system call landlock_create_ruleset was refused (%s): "
			  "a system call filter around ferryd forbids it; allow "
			  "landlock_create_ruleset, landlock_add_rule and landlock_restrict_self "
			  "(systemd: the unit's SystemCallFilter=, as packaging/ferryd.service does)",
			  who, strerror(e));
	return e == ENOSYS || e == EOPNOTSUPP ? 0 : -e;
}

/* Everything the kernel can deny, so that what no rule grants is refused. */
static struct ll_ruleset_attr ll_handled(int abi, bool net)
{
	struct ll_ruleset_attr a = { .handled_access_fs = LL_FS_ABI1 };
	if (abi >= 2)
		a.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		a.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		a.handled_access_fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	if (abi >= 4 && net)
		a.handled_access_net = LL_ACCESS_NET_BIND_TCP | LL_ACCESS_NET_CONNECT_TCP;
	if (abi >= 6)
		a.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
	return a;
}

/*
 * The rights a root needs for sessions with these permissions (config.h), as the
 * handlers use them (cmd_fs.c, cmd_xfer.c, cmd_list.c).  Directories are always listable:
 * a user without read may still change directory and list.  Never granted: executing,
 * devices, FIFOs, sockets, symbolic links, device ioctls.  A rename is removing one name
 * and making another (and REFER across directories); replacing a file removes it.
 */
static uint64_t ll_rights(unsigned perms, uint64_t handled)
{
	uint64_t r = LANDLOCK_ACCESS_FS_READ_DIR;
	if (perms & PERM_READ)
		r |= LANDLOCK_ACCESS_FS_READ_FILE;
	if (perms & PERM_WRITE)
		r |= LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG |
		     LANDLOCK_ACCESS_FS_TRUNCATE;
	if (perms & PERM_DELETE)
		r |= LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR;
	if (perms & PERM_RENAME)
		r |= LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
		     LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_DIR |
		     LANDLOCK_ACCESS_FS_REFER;
	if (perms & PERM_MKDIR)
		r |= LANDLOCK_ACCESS_FS_MAKE_DIR;
	return r & handled;
}

static int ll_add_dir(int ruleset, int dirfd, uint64_t rights)
{
	struct landlock_path_beneath_attr pb = { .allowed_access = rights, .parent_fd = dirfd };
	return syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0
		       ? -errno
		       : 0;
}

static int ll_new(const struct ll_ruleset_attr *a)
{
	long fd = syscall(SYS_landlock_create_ruleset, a, sizeof(*a), 0);
	return fd < 0 ? -errno : (int)fd;
}

static int ll_enforce(int ruleset)
{
	int rc = syscall(SYS_landlock_restrict_self, ruleset, 0) < 0 ? -errno : 0;
	close(ruleset);
	return rc;
}

#ifdef FERRY_SANITIZED
/*
 * Only in the sanitizer build: LeakSanitizer reads /proc/PID/task and /proc/PID/maps, and
 * reports are symbolized from the executable and the libraries (read, never written or
 * executed).
 */
static int ll_sanitizer_rules(int rs, uint64_t fs)
{
	static const struct {
		const char *path;
		uint64_t rights;
	} extra[] = {
		{ "/proc", LL_FS_READ },
		{ "/proc/self/exe", LANDLOCK_ACCESS_FS_READ_FILE },
		{ "/usr/lib", LANDLOCK_ACCESS_FS_READ_FILE },
	};
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		int fd = open(extra[i].path, O_PATH | O_CLOEXEC);
		int rc = fd < 0 ? -errno : ll_add_dir(rs, fd, extra[i].rights & fs);
		if (fd >= 0)
			close(fd);
		if (rc < 0)
			return rc;
	}
	return 0;
}
#endif

/* Each user's home, with the rights the user's permissions need. */
static int ll_add_homes(int rs, const struct users *users, uint64_t fs, unsigned *n_roots)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && users != NULL && i < users->n; i++) {
		const struct user_entry *u = &users->v[i];
		/* Opened as the sessions open it (vfs_open_root), with our own credentials. */
		int fd = open(u->home, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			log_warn("sandbox: home of %s (%s): %s; its sessions may read and write "
				 "nothing", u->name, u->home, strerror(errno));
			continue;
		}
		/* The kernel keeps the home; rules beneath it (user_settings.h) are ferryd's. */
		/* A quota's tally is read even by a user who may only write (quota.c). */
		unsigned perms = user_settings_any_perms(u->set, u->perms) |
				 (u->set != NULL && user_settings_quota(u->set) ? PERM_READ : 0);
		rc = ll_add_dir(rs, fd, ll_rights(perms, fs));
		close(fd);
		(*n_roots)++;
	}
	return rc;
}

static int landlock_worker(const struct server *srv)
{
	int abi = ll_abi("sandbox");
	if (abi <= 0)
		return abi == 0 ? 0 : -ECANCELED; /* logged */
	struct ll_ruleset_attr handled = ll_handled(abi, false);
	int rs = ll_new(&handled);
	if (rs < 0)
		return rs;
	uint64_t fs = handled.handled_access_fs;
	int rc = 0;
	unsigned n_roots = 0;
	if (srv->cfg->anonymous && srv->anon_root_fd >= 0) {
		rc = ll_add_dir(rs, srv->anon_root_fd, ll_rights(srv->cfg->anon_permissions, fs));
		n_roots++;
	}
	if (rc == 0)
		rc = ll_add_homes(rs, srv->users, fs, &n_roots);
	/* The [host] sections' roots and homes (hosts[0] is the default host, above). */
	for (unsigned h = 1; rc == 0 && h < srv->n_hosts; h++) {
		const struct served_host *sh = &srv->hosts[h];
		if (sh->anonymous && sh->root_fd >= 0) {
			rc = ll_add_dir(rs, sh->root_fd, ll_rights(srv->cfg->anon_permissions, fs));
			n_roots++;
		}
		if (rc == 0)
			rc = ll_add_homes(rs, sh->users, fs, &n_roots);
	}
	if (rc == 0 && config_has_user_db(srv->cfg)) {
		/* Homes known only at login: the base they must lie beneath (auth.c checks it). */
		int fd = open(srv->cfg->home_base, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			log_warn("sandbox: home_base %s: %s; database users may read and write "
				 "nothing", srv->cfg->home_base, strerror(errno));
		else {
			rc = ll_add_dir(rs, fd, ll_rights(PERM_ALL, fs));
			close(fd);
			n_roots++;
		}
	}
	if (rc == 0 && srv->cfg->ldap_ca_file[0] != '\0') {
		/* libldap reads its CA file at each TLS connection, inside the sandbox. */
		int fd = open(srv->cfg->ldap_ca_file, O_PATH | O_CLOEXEC);
		if (fd < 0)
			log_warn("sandbox: ldap_ca_file %s: %s; TLS to the directory will fail",
				 srv->cfg->ldap_ca_file, strerror(errno));
		else {
			rc = ll_add_dir(rs, fd, LANDLOCK_ACCESS_FS_READ_FILE & fs);
			close(fd);
		}
	}
#ifdef FERRY_SANITIZED
	if (rc == 0)
		rc = ll_sanitizer_rules(rs, fs);
#endif
	if (rc < 0) {
		close(rs);
		return rc;
	}
	if (abi < 2)
		log_warn("sandbox: Landlock ABI 1: renames between directories fail (EXDEV)");
	rc = ll_enforce(rs);
	if (rc == 0)
		log_info("sandbox: Landlock ABI %d, %u data roots", abi, n_roots);
	return rc;
}

static int landlock_port20(void)
{
	int abi = ll_abi("port-20 helper");
	if (abi <= 0)
		return abi == 0 ? 0 : -ECANCELED; /* logged */
	/* No file at all; TCP: bind to port 20 only, connect nowhere. */
	struct ll_ruleset_attr handled = ll_handled(abi, true);
	int rs = ll_new(&handled);
	if (rs < 0)
		return rs;
	if (abi >= 4) {
		struct ll_net_port_attr np = { .allowed_access = LL_ACCESS_NET_BIND_TCP, .port = 20 };
		if (syscall(SYS_landlock_add_rule, rs, LL_RULE_NET_PORT, &np, 0) < 0) {
			int e = errno;
			close(rs);
			return -e;
		}
	}
	return ll_enforce(rs);
}

/* ---- seccomp ---- */

/*
 * The system calls a worker makes after the sandbox is applied, for its whole life: the
 * event loop and sockets (libevent, OpenSSL), files beneath the roots (vfs.c, cmd_list.c,
 * transfer.c), memory (malloc), the password thread (started after the sandbox) and exit.
 * Found by tracing the wire suites (strace -f on the normal and the sanitizer builds); see
 * docs/security.md.  Calls with arguments worth checking are in worker_rules().
 */
static const int worker_calls[] = {
	/* descriptors and sockets (socket and ioctl: worker_rules) */
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(sendfile), SCMP_SYS(close),
	SCMP_SYS(splice), SCMP_SYS(fcntl), SCMP_SYS(pipe2), SCMP_SYS(lseek), SCMP_SYS(connect),
	SCMP_SYS(bind), SCMP_SYS(setsockopt), SCMP_SYS(getsockopt), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername),
	/* the event loop and time (the clocks are system calls only where the vDSO is not) */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_ctl), SCMP_SYS(getrandom),
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(time),
	/* files, always relative to a root descriptor (vfs.c); fstat for older C libraries */
	SCMP_SYS(openat), SCMP_SYS(openat2), SCMP_SYS(newfstatat), SCMP_SYS(fstat),
	SCMP_SYS(getdents64), SCMP_SYS(mkdirat), SCMP_SYS(unlinkat), SCMP_SYS(renameat),
	SCMP_SYS(utimensat), SCMP_SYS(ftruncate),
	/* the quota tally's lock, shared with other workers and servers (quota.c) */
	SCMP_SYS(flock),
	/* memory (mmap, mprotect: allow_memory); mremap for realloc of a large block */
	SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(madvise), SCMP_SYS(mremap),
	/* signals, the password thread (clone: worker_rules), abort() (tgkill: self only), exit */
	SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
	SCMP_SYS(restart_syscall), SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
	SCMP_SYS(getpid), SCMP_SYS(exit), SCMP_SYS(exit_group),
};

static int allow_list(scmp_filter_ctx ctx, const int *calls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* A negative number is a call this architecture does not have. */
		if (calls[i] < 0)
			continue;
		int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* mmap and mprotect, but never executable memory: no code can be loaded after start-up. */
static int allow_memory(scmp_filter_ctx ctx)
{
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				  SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	return rc;
}

/* Signals only to ourselves (abort(), raise()): never to the master or another worker. */
static int allow_self_signals(scmp_filter_ctx ctx)
{
	scmp_datum_t self = (scmp_datum_t)getpid();
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
				  SCMP_A0(SCMP_CMP_EQ, self, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
				      SCMP_A0(SCMP_CMP_EQ, self, 0));
	return rc;
}

#ifdef FERRY_SANITIZED
/*
 * Only in the sanitizer build (meson -Db_sanitize=...), never in a release: what the ASan,
 * LSan and UBSan runtimes do inside a sandboxed process, found by running the wire suite
 * under build-san with a logging filter (SCMP_ACT_LOG, read back from the kernel log).  LeakSanitizer's check at exit clones a task that shares
 * our memory (not a thread), which ptraces our threads to stop them and reads
 * /proc/PID/task; reports open files with the raw open(2) and name threads and modules.
 */
static const int sanitizer_calls[] = {
	SCMP_SYS(open), SCMP_SYS(ptrace), SCMP_SYS(wait4), SCMP_SYS(prctl), SCMP_SYS(getppid),
	SCMP_SYS(getdents), SCMP_SYS(sched_getaffinity), SCMP_SYS(readlink),
	SCMP_SYS(sigaltstack), SCMP_SYS(sched_yield), SCMP_SYS(gettid),
};

static int sanitizer_rules(scmp_filter_ctx ctx, uint64_t never)
{
	int rc = allow_list(ctx, sanitizer_calls,
			    sizeof(sanitizer_calls) / sizeof(sanitizer_calls[0]));
	/* isatty(stderr), to colour a report. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				      SCMP_A1(SCMP_CMP_EQ, TCGETS, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_VM | never, CLONE_VM));
	return rc;
}
#endif

/*
 * A worker that looks users up in a database (users_pg, LDAP) from its password thread:
 * the client libraries talk with send and recv (sendto, recvfrom).
 * Only then: a worker of a users file has no use for them.
 */
static const int user_db_calls[] = {
	SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(shutdown),
	/* libpq asks who it runs as (a default user name, TLS files in the home) */
	SCMP_SYS(geteuid), SCMP_SYS(getuid), SCMP_SYS(getegid), SCMP_SYS(getgid),
	/* libldap asks the host name (uname) when it sets up a handle */
	SCMP_SYS(uname),
};

static int worker_rules(scmp_filter_ctx ctx, const struct config *cfg)
{
	int rc = allow_list(ctx, worker_calls, sizeof(worker_calls) / sizeof(worker_calls[0]));
	if (rc == 0 && config_has_user_db(cfg))
		rc = allow_list(ctx, user_db_calls, sizeof(user_db_calls) / sizeof(user_db_calls[0]));
	/*
	 * The password thread waits for a database or the local-users helper, and a local
	 * user's file helper, with poll: each wait bounded.
	 */
	static const int waits[] = { SCMP_SYS(poll), SCMP_SYS(ppoll) };
	if (rc == 0 && (config_has_user_db(cfg) || cfg->local_users || cfg->ldap_own_ids))
		rc = allow_list(ctx, waits, 2);
	/*
	 * glibc's name lookups (getaddrinfo in libldap and libpq, even of a numeric address)
	 * first try nscd over a unix socket: refused with an error, not killed, they go on
	 * without it.
	 */
	if (rc == 0 && config_has_user_db(cfg))
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
				      SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
	if (rc == 0)
		rc = allow_memory(ctx);
	if (rc == 0)
		rc = allow_self_signals(ctx);
	/* Data connections are TCP over IPv4 or IPv6; no other socket family. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				      SCMP_A0(SCMP_CMP_EQ, AF_INET, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				      SCMP_A0(SCMP_CMP_EQ, AF_INET6, 0));
	/* libevent asks how much a socket holds before reading it. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				      SCMP_A1(SCMP_CMP_EQ, FIONREAD, 0));
	/*
	 * Threads, not processes: the password thread starts after the sandbox (so that it is
	 * inside Landlock too), and a thread shares everything, namespaces included.  glibc
	 * tries clone3 first, whose flags seccomp cannot see: it gets ENOSYS and falls back.
	 */
	uint64_t must = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
	uint64_t never = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
			 CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_VFORK | CLONE_PTRACE;
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, must | never, must));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
#ifdef FERRY_SANITIZED
	if (rc == 0)
		rc = sanitizer_rules(ctx, never);
#endif
	return rc;
}

/*
 * The port-20 helper's loop (port20.c helper_main): wait, read a request, make a socket,
 * bind it to port 20, send it back; calloc of its table; _exit when the master goes.
 */
static const int port20_calls[] = {
	SCMP_SYS(poll), SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(setsockopt),
	SCMP_SYS(bind), SCMP_SYS(close), SCMP_SYS(brk), SCMP_SYS(rt_sigreturn),
	SCMP_SYS(restart_syscall), SCMP_SYS(exit_group),
};

static int port20_rules(scmp_filter_ctx ctx, const struct config *cfg)
{
	int rc = allow_list(ctx, port20_calls, sizeof(port20_calls) / sizeof(port20_calls[0]));
#ifdef FERRY_SANITIZED
	if (rc == 0)
		rc = allow_list(ctx, sanitizer_calls,
				sizeof(sanitizer_calls) / sizeof(sanitizer_calls[0]));
#endif
	if (rc == 0)
		rc = allow_memory(ctx);
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				      SCMP_A0(SCMP_CMP_EQ, AF_INET, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				      SCMP_A0(SCMP_CMP_EQ, AF_INET6, 0));
	return rc;
}

static int seccomp_apply(const char *who, int (*rules)(scmp_filter_ctx, const struct config *),
			 const struct config *cfg)
{
	/* A kernel built without seccomp filters answers EINVAL here. */
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 && errno == EINVAL) {
		log_warn("%s: the kernel has no seccomp: system calls are not filtered (the other "
			 "sandbox layers apply)", who);
		return 0;
	}
	/*
	 * A filter around ferryd may refuse seccomp(2) itself; libseccomp would then report a
	 * misleading error of its own.  Ask the kernel something harmless first.
	 */
	uint32_t action = SECCOMP_RET_KILL_PROCESS;
	if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) < 0 && errno != ENOSYS &&
	    errno != EINVAL && errno != EOPNOTSUPP) {
		int e = errno;
		log_error("%s: seccomp: the system call seccomp was refused (%s): a system call "
			  "filter around ferryd forbids it; allow seccomp (systemd: the unit's "
			  "SystemCallFilter=, as packaging/ferryd.service does)",
			  who, strerror(e));
		return -ECANCELED; /* logged */
	}
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL)
		return -ENOMEM;
	/* Another architecture's calls (i386 on x86_64) would bypass the rules: kill too. */
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	/* The kernel's own errno when it refuses, not libseccomp's summary of it. */
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
	/* Every thread, should a library have started one; we check that none did. */
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc == 0)
		rc = rules(ctx, cfg);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc;
}

/* ---- the processes ---- */

int sandbox_master(void)
{
	int rc = drop_bounding_set();
	if (rc < 0) {
		log_error("cannot empty the capability bounding set: %s", strerror(-rc));
		return rc;
	}
	rc = set_no_new_privs(true);
	if (rc < 0)
		log_error("cannot set no_new_privs: %s", strerror(-rc));
	return rc;
}

int sandbox_worker(const struct server *srv)
{
	int threads = count_threads();
	if (threads != 1) {
		log_error("sandbox: %d threads running (want 1): a thread started before the "
			  "sandbox would escape Landlock", threads);
		return -EBUSY;
	}
	int rc = clear_capabilities(-1);
	const char *layer = "capabilities";
	if (rc == 0 && (rc = set_no_new_privs(false)) < 0)
		layer = "no_new_privs";
	if (rc == 0 && (rc = landlock_worker(srv)) < 0)
		layer = "Landlock";
	if (rc == 0 && (rc = seccomp_apply("sandbox", worker_rules, srv->cfg)) < 0)
		layer = "seccomp";
	if (rc < 0 && rc != -ECANCELED)
		log_error("sandbox: %s: %s", layer, strerror(-rc));
	return rc;
}

/* A local user's file helper: its root with every right; the user's own ids do the rest. */
static int landlock_file_helper(int root)
{
	int abi = ll_abi("file helper");
	if (abi <= 0)
		return abi == 0 ? 0 : -ECANCELED;
	struct ll_ruleset_attr handled = ll_handled(abi, true);
	int rs = ll_new(&handled);
	if (rs < 0)
		return rs;
	uint64_t fs = handled.handled_access_fs;
	int rc = ll_add_dir(rs, root, ll_rights(PERM_ALL, fs));
#ifdef FERRY_SANITIZED
	if (rc == 0)
		rc = ll_sanitizer_rules(rs, fs);
#endif
	if (rc < 0) {
		close(rs);
		return rc;
	}
	return ll_enforce(rs); /* and no TCP at all: it handles network rights, grants none */
}

/*
 * What a file helper does: vfs.c's calls beneath its root, listings into a memory file,
 * and the channel's messages with descriptors (fs_proxy.c, file_helper.c).
 */
static const int file_helper_calls[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(close),
	SCMP_SYS(fcntl), SCMP_SYS(dup), SCMP_SYS(lseek), SCMP_SYS(poll), SCMP_SYS(ppoll),
	SCMP_SYS(openat), SCMP_SYS(openat2), SCMP_SYS(newfstatat), SCMP_SYS(fstat),
	SCMP_SYS(getdents64), SCMP_SYS(mkdirat), SCMP_SYS(unlinkat), SCMP_SYS(renameat),
	SCMP_SYS(utimensat), SCMP_SYS(memfd_create), SCMP_SYS(brk), SCMP_SYS(munmap),
	SCMP_SYS(madvise), SCMP_SYS(mremap), SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(restart_syscall), SCMP_SYS(futex), SCMP_SYS(getpid),
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(exit), SCMP_SYS(exit_group),
};

static int file_helper_rules(scmp_filter_ctx ctx, const struct config *cfg)
{
	(void)cfg;
	int rc = allow_list(ctx, file_helper_calls,
			    sizeof(file_helper_calls) / sizeof(file_helper_calls[0]));
	if (rc == 0)
		rc = allow_memory(ctx);
	if (rc == 0)
		rc = allow_self_signals(ctx);
#ifdef FERRY_SANITIZED
	uint64_t never = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
			 CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_VFORK | CLONE_PTRACE;
	if (rc == 0)
		rc = sanitizer_rules(ctx, never);
#endif
	return rc;
}

int sandbox_file_helper(int root)
{
	int rc = clear_capabilities(-1);
	const char *layer = "capabilities";
	if (rc == 0 && (rc = set_no_new_privs(false)) < 0)
		layer = "no_new_privs";
	if (rc == 0 && (rc = landlock_file_helper(root)) < 0)
		layer = "Landlock";
	if (rc == 0 && (rc = seccomp_apply("file helper", file_helper_rules, NULL)) < 0)
		layer = "seccomp";
	if (rc < 0 && rc != -ECANCELED)
		log_error("file helper sandbox: %s: %s", layer, strerror(-rc));
	return rc;
}

int sandbox_port20(void)
{
	int rc = clear_capabilities(CAP_NET_BIND_SERVICE);
	const char *layer = "capabilities";
	if (rc == 0 && (rc = set_no_new_privs(false)) < 0)
		layer = "no_new_privs";
	if (rc == 0 && (rc = landlock_port20()) < 0)
		layer = "Landlock";
	if (rc == 0 && (rc = seccomp_apply("port-20 helper", port20_rules, NULL)) < 0)
		layer = "seccomp";
	if (rc < 0 && rc != -ECANCELED)
		log_error("port-20 helper sandbox: %s: %s", layer, strerror(-rc));
	return rc;
}
