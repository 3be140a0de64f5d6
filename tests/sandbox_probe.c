/*
 * sandbox_probe.c: proof that the worker's sandbox confines what a compromised worker
 * could do.  It applies the very function a worker calls, sandbox_worker(), in a forked
 * child and then tries what the sandbox must allow and what it must refuse; the parent,
 * outside the sandbox, reports how the child ended.  tests/wire/test_sandbox.py runs it.
 *
 *   sandbox_probe files ROOT HOME OUTSIDE
 *       ROOT is the anonymous root (read-only), HOME the home of a user with every
 *       permission, OUTSIDE a file in neither.  ROOT must hold "inside.txt", HOME "h.txt".
 *       Prints one line a check: "NAME ok" or "NAME ERRNO-NAME".
 *   sandbox_probe syscall NAME
 *       Makes one call (see calls[]) after the sandbox; "none" makes none.
 *
 * Both print "landlock ABI" first, then "child exit N" or "child signal N" (N: SIGSYS for
 * a call the seccomp filter forbids).  The exit status is 0 unless the probe itself failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/config.h"
#include "server/sandbox.h"
#include "server/session.h"
#include "server/users.h"

static void check(const char *name, int rc)
{
	printf("%s %s\n", name, rc >= 0 ? "ok" : strerrorname_np(-rc));
}

static int try_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static int try_openat(int dir, const char *name, int flags)
{
	int fd = openat(dir, name, flags | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static int sys_rc(int rc)
{
	return rc < 0 ? -errno : 0;
}

static void path_in(char *out, size_t n, const char *dir, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

/*
 * The child's checks, inside the sandbox, with the calls the worker uses (the *at family:
 * mkdir(2) and friends are not on the allow-list).  The expected results are the test's.
 */
static void file_checks(int root_fd, const char *root, const char *home, const char *outside)
{
	char p[8192], q[8192];
	path_in(p, sizeof(p), root, "inside.txt");
	check("root_read", try_open(p, O_RDONLY));
	check("root_read_at", try_openat(root_fd, "inside.txt", O_RDONLY));
	path_in(p, sizeof(p), root, "new.txt");
	check("root_create", try_open(p, O_WRONLY | O_CREAT | O_EXCL));
	path_in(p, sizeof(p), root, "inside.txt");
	check("root_write", try_open(p, O_WRONLY));
	path_in(p, sizeof(p), root, "newdir");
	check("root_mkdir", sys_rc(mkdirat(AT_FDCWD, p, 0755)));

	path_in(p, sizeof(p), home, "h.txt");
	check("home_read", try_open(p, O_RDONLY));
	check("home_truncate", try_open(p, O_WRONLY | O_TRUNC));
	path_in(p, sizeof(p), home, "new.txt");
	check("home_create", try_open(p, O_WRONLY | O_CREAT | O_EXCL));
	path_in(q, sizeof(q), home, "sub");
	check("home_mkdir", sys_rc(mkdirat(AT_FDCWD, q, 0755)));
	path_in(q, sizeof(q), home, "sub/moved.txt");
	check("home_rename", sys_rc(renameat(AT_FDCWD, p, AT_FDCWD, q)));
	check("home_unlink", sys_rc(unlinkat(AT_FDCWD, q, 0)));
	path_in(q, sizeof(q), home, "sub");
	check("home_rmdir", sys_rc(unlinkat(AT_FDCWD, q, AT_REMOVEDIR)));

	check("outside_read", try_open(outside, O_RDONLY));
	check("outside_write", try_open(outside, O_WRONLY));
	check("etc_passwd", try_open("/etc/passwd", O_RDONLY));
	check("proc_self_maps", try_open("/proc/self/maps", O_RDONLY));
	check("list_slash", try_open("/", O_RDONLY | O_DIRECTORY));
}

static void *volatile leaked;

#ifdef FERRY_SANITIZED
#include <sanitizer/common_interface_defs.h>

static int print_stack(const void *a, const void *b)
{
	__sanitizer_print_stack_trace();
	return *(const int *)a - *(const int *)b;
}
#endif

/* Calls a worker never makes: each must kill the child with SIGSYS. */
static int call(const char *name)
{
	if (strcmp(name, "none") == 0)
		return (int)getpid() > 0 ? 0 : -1;
	if (strcmp(name, "execve") == 0) {
		char *argv[] = { "true", NULL };
		return execve("/bin/true", argv, NULL);
	}
	if (strcmp(name, "fork") == 0)
		return (int)syscall(SYS_fork);
	if (strcmp(name, "clone_process") == 0)
		return (int)syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
	if (strcmp(name, "ptrace") == 0)
		return (int)ptrace(PTRACE_ATTACH, getppid(), NULL, NULL);
	if (strcmp(name, "kill_parent") == 0)
		return kill(getppid(), 0);
	if (strcmp(name, "socket_unix") == 0)
		return socket(AF_UNIX, SOCK_STREAM, 0);
	if (strcmp(name, "socket_netlink") == 0)
		return socket(AF_NETLINK, SOCK_RAW, 0);
	if (strcmp(name, "listen") == 0)
		return listen(0, 1);
	if (strcmp(name, "mmap_exec") == 0)
		return mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
			       MAP_FAILED
			       ? -1
			       : 0;
	if (strcmp(name, "setuid") == 0)
		return setuid(0);
	if (strcmp(name, "chmod") == 0)
		return chmod("/", 0755);
	if (strcmp(name, "heap_overflow") == 0) {
		/* For the sanitizer build: its report must come out whole from inside. */
		volatile size_t past_end = 16;
		volatile char *p = calloc(16, 1);
		int c = p[past_end];
		free((void *)p);
		return c;
	}
#ifdef FERRY_SANITIZED
	if (strcmp(name, "stack_in_libc") == 0) {
		/* A stack trace through the C library: its frames need the external symbolizer. */
		int v[2] = { 2, 1 };
		qsort(v, 2, sizeof(v[0]), print_stack);
		return 0;
	}
#endif
	if (strcmp(name, "segv") == 0) {
		/* For the sanitizer build: a crash report, too. */
		volatile int *volatile nowhere = NULL;
		return *nowhere;
	}
	if (strcmp(name, "leak") == 0) {
		/* For the sanitizer build: LeakSanitizer's check at exit works from inside. */
		leaked = malloc(32);
		leaked = NULL;
		exit(0);
	}
	fprintf(stderr, "unknown call %s\n", name);
	exit(2);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	bool files = argc == 5 && strcmp(argv[1], "files") == 0;
	if (!files && !(argc == 3 && strcmp(argv[1], "syscall") == 0)) {
		fprintf(stderr, "usage: %s files ROOT HOME OUTSIDE | syscall NAME\n", argv[0]);
		return 2;
	}
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	printf("landlock %ld\n", abi < 0 ? 0 : abi);

	/* What a worker has: a configuration, the anonymous root, and a users table. */
	static struct config cfg;
	static struct server srv;
	static struct user_entry user;
	struct users users = { .v = &user, .n = 1 };
	cfg.anonymous = true;
	cfg.anon_permissions = PERM_READ;
	srv.cfg = &cfg;
	srv.anon_root_fd = -1;
	if (files) {
		srv.anon_root_fd = open(argv[2], O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (srv.anon_root_fd < 0) {
			perror(argv[2]);
			return 1;
		}
		snprintf(user.name, sizeof(user.name), "probe");
		snprintf(user.home, sizeof(user.home), "%s", argv[3]);
		user.perms = PERM_ALL;
		srv.users = &users;
	}

	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		if (sandbox_worker(&srv) < 0)
			_exit(3);
		if (files)
			file_checks(srv.anon_root_fd, argv[2], argv[3], argv[4]);
		else
			printf("call %s returned %d\n", argv[2], call(argv[2]));
		_exit(0);
	}
	int status;
	if (waitpid(pid, &status, 0) < 0) {
		perror("waitpid");
		return 1;
	}
	if (WIFSIGNALED(status))
		printf("child signal %d\n", WTERMSIG(status));
	else
		printf("child exit %d\n", WEXITSTATUS(status));
	return 0;
}
