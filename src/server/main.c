/*
 * main.c: ferryd's entry point: the passwd and firewall tools, the worker entry
 * (internal), or the master after the configuration has been loaded and validated.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/num.h"
#include "common/tls.h"
#include "server/checks.h"
#include "server/config.h"
#include "server/file_helper.h"
#include "server/firewall.h"
#include "server/master.h"
#include "server/passwd.h"
#include "server/privdrop.h"
#include "server/tls_files.h"
#include "server/usercmd.h"
#include "server/userdb_ldap.h"
#include "server/userdb_pg.h"
#include "server/users.h"
#include "server/worker.h"

/* --check-config prints what the start-up checks find; the exit status stays 0. */
static void print_check(void *ctx, enum check_level level, const char *msg)
{
	fprintf(ctx, "%s: %s\n", level == CHECK_WARNING ? "warning" : "note", msg);
}

/*
 * --check-config tries the user database as a login would.  Unreachable is a warning, not
 * an error: the database may be down for now, and ferryd then answers 421 until it is back.
 */
static void check_user_db(const struct config *cfg)
{
	if (cfg->ldap_uri[0] != '\0') {
		struct ldap_source_config lc;
		struct ldap_source *ls;
		char err[512] = "", line[700];
		ldap_source_config_from(cfg, &lc);
		if (ldap_source_new(&lc, &ls, err, sizeof(err)) == 0) {
			if (ldap_source_ping(ls, err, sizeof(err)) < 0)
				snprintf(line, sizeof(line), "ldap: %s; logins of its users get 421 "
							     "until it answers", err);
			else
				snprintf(line, sizeof(line), "ldap: reached, the search works");
			print_check(stderr, err[0] != '\0' ? CHECK_WARNING : CHECK_NOTE, line);
			ldap_source_free(ls);
		}
		explicit_bzero(&lc, sizeof(lc));
	}
	if (cfg->users_pg[0] == '\0')
		return;
	struct pg_store *st;
	char err[512] = "";
	int rc = pg_store_new(cfg->users_pg, cfg->users_pg_timeout, &st);
	if (rc < 0) {
		print_check(stderr, CHECK_WARNING,
			    rc == -EINVAL ? "users_pg: the connection string does not parse"
					  : "users_pg: out of memory");
		return;
	}
	char line[700];
	if (pg_store_ping(st, err, sizeof(err)) < 0)
		snprintf(line, sizeof(line), "users_pg: %s; logins of its users get 421 until it "
					     "answers", err);
	else
		snprintf(line, sizeof(line), "users_pg: reached, table ferry_users readable");
	print_check(stderr, err[0] != '\0' ? CHECK_WARNING : CHECK_NOTE, line);
	pg_store_free(st);
}

/* A certificate that expires within 30 days: said at start-up, while there is time. */
static void warn_cert_expiry(const char *file)
{
	if (file[0] == '\0')
		return;
	FILE *f = fopen(file, "re");
	if (f == NULL)
		return; /* tls_files_load has said why */
	static char pem[1 << 20];
	size_t n = fread(pem, 1, sizeof(pem), f);
	fclose(f);
	long days;
	if (tls_cert_days_left(pem, n, &days) == 0 && days < 30)
		fprintf(stderr, "warning: tls_cert %s expires in %ld days: renew it before "
				"clients refuse it\n",
			file, days);
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
	/* Started by the local-users helper: ferryd --file-helper CTLFD ROOTFD (internal) */
	if (argc == 4 && strcmp(argv[1], "--file-helper") == 0)
		return file_helper_main(parse_fd(argv[2]), parse_fd(argv[3]));
	/*
	 * Started by the master:
	 * ferryd --worker FD INDEX PORT20FD XFERLOGFD ROOTFD USERSFD TLSFD HOSTS LOCALFD
	 */
	if (argc == 11 && strcmp(argv[1], "--worker") == 0) {
		struct worker_fds fds = {
			.master = parse_fd(argv[2]),
			.port20 = parse_fd(argv[4]),
			.xferlog = parse_fd(argv[5]),
			.root = parse_fd(argv[6]),
			.users = parse_fd(argv[7]),
			.tls = parse_fd(argv[8]),
			.hosts = argv[9],
			.local = parse_fd(argv[10]),
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
	/* As root, ferryd becomes `user`: one that does not exist would fail only then. */
	if (geteuid() == 0 && getpwnam(cfg->user) == NULL) {
		fprintf(stderr, "user %s does not exist: create it (useradd --system --no-create-home "
				"%s) or name another in user\n",
			cfg->user, cfg->user);
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
	for (unsigned i = 0; i < cfg->n_vhosts; i++) {
		struct users *u;
		if (cfg->vhosts[i].users_file[0] != '\0' &&
		    users_load(cfg->vhosts[i].users_file, &u, stderr) < 0) {
			fprintf(stderr, "host %s: users_file is not valid\n", cfg->vhosts[i].name);
			free(cfg);
			return 2;
		}
		if (cfg->vhosts[i].users_file[0] != '\0')
			users_free(u);
	}
	if (cfg->ldap_uri[0] != '\0') {
		/* Its settings are checked here, where a mistake stops the start with a reason. */
		struct ldap_source_config lc;
		struct ldap_source *ls;
		char err[512];
		ldap_source_config_from(cfg, &lc);
		int lrc = ldap_source_new(&lc, &ls, err, sizeof(err));
		explicit_bzero(&lc, sizeof(lc));
		if (lrc < 0) {
			fprintf(stderr, "ldap: %s\n", err);
			free(cfg);
			return 2;
		}
		ldap_source_free(ls);
		/* libldap would read ldap.conf and ~/.ldaprc: ferryd's keys say it all. */
		setenv("LDAPNOINIT", "1", 1);
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
		warn_cert_expiry(cfg->tls_cert);
	}
	if (check_only) {
		checks_run(cfg, print_check, stderr);
		check_user_db(cfg);
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
