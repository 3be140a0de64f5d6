/*
 * seccomp_refuse.c: run a program under a seccomp filter that answers EPERM to the
 * system calls a service manager's filter may refuse (systemd 252's SystemCallFilter=
 * @system-service with SystemCallErrorNumber=EPERM: seccomp and the landlock_* calls), to
 * test what ferryd says and does when it cannot build its sandbox.
 *
 *   seccomp_refuse CALL[,CALL...] PROGRAM [ARG...]
 */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s CALL[,CALL...] PROGRAM [ARG...]\n", argv[0]);
		return 2;
	}
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (ctx == NULL)
		return 1;
	char calls[1024];
	snprintf(calls, sizeof(calls), "%s", argv[1]);
	for (char *save = NULL, *c = strtok_r(calls, ",", &save); c != NULL;
	     c = strtok_r(NULL, ",", &save)) {
		int nr = seccomp_syscall_resolve_name(c);
		if (nr == __NR_SCMP_ERROR) {
			fprintf(stderr, "%s: unknown system call %s\n", argv[0], c);
			return 2;
		}
		if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0) < 0)
			return 1;
	}
	if (seccomp_load(ctx) < 0) {
		perror("seccomp_load");
		return 1;
	}
	seccomp_release(ctx);
	execv(argv[2], argv + 2);
	perror(argv[2]);
	return 127;
}
