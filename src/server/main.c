/*
 * main.c: ferryd's entry point: the passwd and firewall tools, the worker entry
 * (internal), or the master after the configuration has been loaded and validated.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/num.h"
#include "server/checks.h"
#include "server/config.h"
#include "server/firewall.h"
#include "server/master.h"
#include "server/passwd.h"
#include "server/privdrop.h"
#include "server/tls_files.h"
#include "server/usercmd.h"
#include "server/users.h"
#include "server/worker.h"

/* --check-config prints what the start-up checks find; the exit status stays 0. */
static void print_check(void *ctx, enum check_level level, const char *msg)
{
	fprintf(ctx, "%s: %s\n", level == CHECK_WARNING ? "warning" : "note", msg);
}

static int parse_fd(const char *s)
{
	if (s[0] == '-')
		return -1;
	uint64_t v;
	return num_parse_u64_cstr(s, 1 << 20, &v) == 0 ? (int)v : -1;
}

/*
 * A server must not pass on what its parent left open (an fd on /etc/shadow in the
 * starting shell would reach the sandboxed workers), and should not run out of
 * descriptors before max_sessions: everything above stderr is closed, and the soft
 * RLIMIT_NOFILE goes up to the hard limit (checks.c warns when even that is too low).
 */
static void prepare_process(void)
{
	if (close_range(3, ~0U, 0) < 0) {
		for (int fd = 3; fd < 1024; fd++)
			(void)close(fd);
	}
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &r) < 0)
			fprintf(stderr, "ferryd: cannot raise the descriptor limit to %llu: %s\n",
				(unsigned long long)r.rlim_max, strerror(errno));
	}
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "passwd") == 0)
		return passwd_main(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "user") == 0)
		return usercmd_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "firewall") == 0)
		return firewall_main(argc, argv);
	/* Started by the master: ferryd --worker FD INDEX PORT20FD XFERLOGFD ROOTFD USERSFD TLSFD */
	if (argc == 9 && strcmp(argv[1], "--worker") == 0) {
		struct worker_fds fds = {
			.master = parse_fd(argv[2]),
			.port20 = parse_fd(argv[4]),
			.xferlog = parse_fd(argv[5]),
			.root = parse_fd(argv[6]),
			.users = parse_fd(argv[7]),
			.tls = parse_fd(argv[8]),
		};
		return worker_main(&fds, parse_fd(argv[3]));
	}

	prepare_process();
	struct config *cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL)
		return 1;
	bool check_only;
	int rc = config_load(cfg, argc, argv, &check_only, stderr);
	if (rc != 0) {
		free(cfg);
		return rc < 0 ? 2 : 0;
	}
	if (config_check_access(cfg, stderr) < 0) {
		free(cfg);
		return 2;
	}
	if (cfg->users_file[0] != '\0') {
		struct users *u;
		if (users_load(cfg->users_file, &u, stderr) < 0) {
			free(cfg);
			return 2;
		}
		users_free(u);
	}
	if (cfg->tls_cert[0] != '\0') {
		char err[512];
		int fd = tls_files_load(cfg, err, sizeof(err));
		if (fd < 0) {
			fprintf(stderr, "%s\n", err);
			free(cfg);
			return 2;
		}
		close(fd);
	}
	if (check_only) {
		checks_run(cfg, print_check, stderr);
		if (privdrop_check_reload(cfg, stderr) > 0) {
			free(cfg);
			return 2;
		}
		printf("configuration OK\n");
		free(cfg);
		return 0;
	}
	return master_main(cfg, argc, argv);
}
