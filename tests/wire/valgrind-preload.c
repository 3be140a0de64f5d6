/*
 * valgrind-preload.c: an LD_PRELOAD library that lets ferryd run whole under Valgrind 3.19
 * (Debian 12), for tests/wire/valgrind-ferryd only.  It is never part of ferryd, and it
 * does nothing unless $FERRYD_VALGRIND_EXE is set.
 *
 * Three things stop ferryd under that Valgrind, none of them a bug of ferryd:
 *
 * - The master starts each worker with execv("/proc/self/exe", ...).  Under Valgrind that
 *   link names the Valgrind tool, not ferryd, so --trace-children=yes starts the tool as
 *   its own client and dies ("mmap(0x58000000) failed in UME").  Here an exec of
 *   /proc/self/exe goes to $FERRYD_VALGRIND_EXE, the same binary by name, which Valgrind
 *   follows like any other exec.
 * - A seccomp filter cannot work under Valgrind (it would filter Valgrind's own system
 *   calls, and libseccomp's probes fail there).  Here prctl(PR_GET_SECCOMP) answers EINVAL,
 *   as a kernel built without seccomp does, so sandbox.c logs its warning and applies its
 *   other layers.
 * - Valgrind 3.19 does not know openat2(2) (syscall 437) and answers ENOSYS, so every file
 *   operation of a session would fail.  Here syscall(SYS_openat2, ...) with RESOLVE_IN_ROOT
 *   is carried out in user space with openat/fstatat/readlinkat, one component at a time:
 *   ".." never climbs above the root and symbolic links are read and resolved against the
 *   root, as the kernel does.  It is a test double, not a security boundary (it has the
 *   races the kernel's lookup does not); the confinement itself is tested without Valgrind.
 *
 * Everything else goes to the real functions.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef int execve_fn(const char *, char *const[], char *const[]);
typedef int prctl_fn(int, unsigned long, unsigned long, unsigned long, unsigned long);
typedef long syscall_fn(long, ...);

static execve_fn *real_execve;
static prctl_fn *real_prctl;
static syscall_fn *real_syscall;
static const char *exe; /* $FERRYD_VALGRIND_EXE, or NULL: pass everything on */

/* Resolved at load time: between fork and exec only async-signal-safe calls may run. */
__attribute__((constructor)) static void preload_init(void)
{
	real_execve = (execve_fn *)dlsym(RTLD_NEXT, "execve");
	real_prctl = (prctl_fn *)dlsym(RTLD_NEXT, "prctl");
	real_syscall = (syscall_fn *)dlsym(RTLD_NEXT, "syscall");
	const char *e = getenv("FERRYD_VALGRIND_EXE");
	exe = e != NULL && e[0] == '/' ? e : NULL;
}

static int fail(int e)
{
	errno = e;
	return -1;
}

/* ---- exec ---- */

int execve(const char *path, char *const argv[], char *const envp[])
{
	if (real_execve == NULL)
		return fail(ENOSYS);
	if (exe != NULL && strcmp(path, "/proc/self/exe") == 0)
		path = exe;
	return real_execve(path, argv, envp);
}

int execv(const char *path, char *const argv[])
{
	extern char **environ;
	return execve(path, argv, environ);
}

/* ---- seccomp ---- */

int prctl(int option, ...)
{
	va_list ap;
	va_start(ap, option);
	unsigned long a2 = va_arg(ap, unsigned long);
	unsigned long a3 = va_arg(ap, unsigned long);
	unsigned long a4 = va_arg(ap, unsigned long);
	unsigned long a5 = va_arg(ap, unsigned long);
	va_end(ap);
	if (exe != NULL && option == PR_GET_SECCOMP)
		return fail(EINVAL);
	if (real_prctl == NULL)
		return fail(ENOSYS);
	return real_prctl(option, a2, a3, a4, a5);
}

/* ---- openat2 with RESOLVE_IN_ROOT ---- */

#define MAX_LINKS 40 /* the kernel's limit of symbolic links in one lookup */

static bool same_file(int fd, const struct stat *root)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_dev == root->st_dev && st.st_ino == root->st_ino;
}

/* Replace *cur by next (both O_PATH directory descriptors). */
static void move_to(int *cur, int next)
{
	close(*cur);
	*cur = next;
}

/*
 * Resolve path beneath root as RESOLVE_IN_ROOT does and open its last component with
 * flags.  rest holds the part of the path still to walk; a symbolic link's target is put
 * in front of it.
 */
static int open_in_root(int root, const char *path, int flags, mode_t mode)
{
	if (path[0] == '\0')
		return fail(ENOENT);
	struct stat rst;
	if (fstat(root, &rst) < 0)
		return -1;
	char rest[2 * PATH_MAX];
	if (strlen(path) >= sizeof(rest))
		return fail(ENAMETOOLONG);
	strcpy(rest, path);
	int cur = openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -1;
	unsigned links = 0;
	if (rest[0] == '/')
		move_to(&cur, openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
	size_t pos = 0;
	for (;;) {
		if (cur < 0)
			return -1;
		while (rest[pos] == '/')
			pos++;
		if (rest[pos] == '\0') {
			/* "/" or a path ending in "." or "..": the directory reached itself. */
			int fd = openat(cur, ".", flags, mode);
			int e = errno;
			close(cur);
			errno = e;
			return fd;
		}
		char comp[NAME_MAX + 1];
		size_t n = strcspn(rest + pos, "/");
		if (n > NAME_MAX) {
			close(cur);
			return fail(ENAMETOOLONG);
		}
		memcpy(comp, rest + pos, n);
		comp[n] = '\0';
		pos += n;
		bool slash = rest[pos] == '/';
		size_t after = pos;
		while (rest[after] == '/')
			after++;
		bool last = rest[after] == '\0';

		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			/* The root is "/" of this lookup: ".." there stays there. */
			if (!same_file(cur, &rst))
				move_to(&cur, openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
			continue;
		}
		struct stat st;
		int r = fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW);
		if (r < 0 && (errno != ENOENT || !last || !(flags & O_CREAT))) {
			int e = errno;
			close(cur);
			return fail(e);
		}
		bool follow = !(last && !slash && (flags & O_NOFOLLOW));
		if (r == 0 && S_ISLNK(st.st_mode) && last && !slash && (flags & O_CREAT) &&
		    (flags & O_EXCL)) {
			close(cur);
			return fail(EEXIST); /* O_EXCL never follows a final link */
		}
		if (r == 0 && S_ISLNK(st.st_mode) && follow) {
			char target[PATH_MAX];
			ssize_t len = readlinkat(cur, comp, target, sizeof(target) - 1);
			if (len < 0 || ++links > MAX_LINKS) {
				int e = len < 0 ? errno : ELOOP;
				close(cur);
				return fail(e);
			}
			target[len] = '\0';
			/* The rest of the path now follows the link's target. */
			char next[2 * PATH_MAX];
			size_t tail = strlen(rest + pos);
			if ((size_t)len + tail + 2 > sizeof(next)) {
				close(cur);
				return fail(ENAMETOOLONG);
			}
			memcpy(next, target, (size_t)len);
			memcpy(next + len, rest + pos, tail + 1);
			memcpy(rest, next, (size_t)len + tail + 1);
			pos = 0;
			if (rest[0] == '/')
				move_to(&cur, openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
			continue;
		}
		if (last) {
			if (slash && r == 0 && !S_ISDIR(st.st_mode)) {
				close(cur);
				return fail(ENOTDIR);
			}
			int fd = openat(cur, comp, flags | O_NOFOLLOW | (slash ? O_DIRECTORY : 0), mode);
			int e = errno;
			close(cur);
			errno = e;
			return fd;
		}
		if (!S_ISDIR(st.st_mode)) {
			close(cur);
			return fail(ENOTDIR);
		}
		move_to(&cur, openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	}
}

static long emulate_openat2(int dirfd, const char *path, const struct open_how *how, size_t size)
{
	if (size < sizeof(*how) || how->flags > INT_MAX || how->mode > 07777)
		return fail(EINVAL);
	const uint64_t known = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	if ((how->resolve & ~known) != 0)
		return fail(ENOSYS); /* not needed by ferryd: let the caller see it */
	if (!(how->resolve & RESOLVE_IN_ROOT))
		return openat(dirfd, path, (int)how->flags, (mode_t)how->mode);
	return open_in_root(dirfd, path, (int)how->flags, (mode_t)how->mode);
}

long syscall(long number, ...)
{
	va_list ap;
	va_start(ap, number);
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (exe != NULL && number == SYS_openat2)
		return emulate_openat2((int)a[0], (const char *)a[1], (const struct open_how *)a[2],
				       (size_t)a[3]);
	if (real_syscall == NULL)
		return fail(ENOSYS);
	return real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
