/*
 * ldap_probe: drives src/server/userdb_ldap.c for tests/wire/test_ldap_store.py.
 *
 *   ldap_probe CONF login NAME   the password is read from stdin (one line)
 *   ldap_probe CONF ping
 *   ldap_probe CONF serve        many requests on one source (see do_serve())
 *
 * CONF holds key=value lines named as the fields of struct ldap_source_config (booleans
 * yes/no, default_perms as permission words).  Exit codes: 0 logged in (the mapped fields on
 * stdout, one "key=value" a line) or ping ok, 1 refused ("refused: why"), 2 error
 * ("error: why"), 3 bad usage or configuration.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/num.h"
#include "server/config.h"
#include "server/user_settings.h"
#include "server/userdb_ldap.h"

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_ERROR = 2, EXIT_USAGE = 3 };

#define STR(f)                                                                                     \
	{ #f, offsetof(struct ldap_source_config, f), sizeof(((struct ldap_source_config *)0)->f) }

static const struct {
	const char *key;
	size_t off, size;
} str_keys[] = {
	STR(uri), STR(ca_file), STR(bind_dn), STR(bind_password), STR(base), STR(filter),
	STR(attr_name), STR(attr_home), STR(attr_perms), STR(attr_settings), STR(home_prefix),
};

static int set_key(struct ldap_source_config *c, const char *k, const char *v)
{
	for (size_t i = 0; i < sizeof(str_keys) / sizeof(str_keys[0]); i++) {
		if (strcmp(k, str_keys[i].key) != 0)
			continue;
		if (strlen(v) >= str_keys[i].size)
			return -1;
		memcpy((char *)c + str_keys[i].off, v, strlen(v) + 1);
		return 0;
	}
	uint64_t n;
	if (strcmp(k, "starttls") == 0 || strcmp(k, "own_ids") == 0) {
		bool b = strcmp(v, "yes") == 0;
		if (!b && strcmp(v, "no") != 0)
			return -1;
		*(strcmp(k, "starttls") == 0 ? &c->starttls : &c->own_ids) = b;
		return 0;
	}
	if (strcmp(k, "default_perms") == 0)
		return perm_parse(v, &c->default_perms);
	if (strcmp(k, "timeout_ms") == 0) {
		if (num_parse_u64_cstr(v, 600000, &n) < 0)
			return -1;
		c->timeout_ms = (unsigned)n;
		return 0;
	}
	return -1;
}

static int read_conf(const char *path, struct ldap_source_config *c)
{
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	char line[8192];
	int rc = 0;
	while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		char *eq = strchr(line, '=');
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (eq == NULL) {
			rc = -1;
			break;
		}
		*eq = '\0';
		if (set_key(c, line, eq + 1) < 0) {
			fprintf(stderr, "%s: bad key or value: %s\n", path, line);
			rc = -1;
		}
	}
	explicit_bzero(line, sizeof(line));
	if (ferror(f))
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

static void print_entry(const struct user_entry *e)
{
	printf("name=%s\nhome=%s\nperms=%u\nhash=%s\nown_ids=%d\nuid=%u\ngid=%u\n", e->name,
	       e->home, e->perms, e->hash, e->own_ids, (unsigned)e->uid, (unsigned)e->gid);
	if (e->set == NULL) {
		printf("settings=none\n");
		return;
	}
	const struct user_settings *s = e->set;
	printf("quota_bytes=%llu\nquota_files=%llu\nrate_down=%llu\nrate_up=%llu\n"
	       "max_sessions=%u\nn_allow=%u\nn_dirs=%u\n",
	       (unsigned long long)s->quota_bytes, (unsigned long long)s->quota_files,
	       (unsigned long long)s->rate_down, (unsigned long long)s->rate_up, s->max_sessions,
	       s->n_allow, s->n_dirs);
	for (unsigned i = 0; i < s->n_dirs; i++)
		printf("dir=%s:%u\n", s->dirs[i].path, s->dirs[i].perms);
}

static int run_login(struct ldap_source *src, const char *name, const char *password)
{
	struct user_entry e;
	char err[1024];
	int rc = ldap_source_login(src, name, password, &e, err, sizeof(err));
	if (rc == 1) {
		print_entry(&e);
		user_entry_clear(&e);
		return EXIT_OK;
	}
	if (rc == 0) {
		printf("refused: %s\n", err);
		return EXIT_REFUSED;
	}
	printf("error: %s\n", err);
	return EXIT_ERROR;
}

static int run_ping(struct ldap_source *src)
{
	char err[1024];
	if (ldap_source_ping(src, err, sizeof(err)) < 0) {
		printf("error: %s\n", err);
		return EXIT_ERROR;
	}
	printf("ok\n");
	return EXIT_OK;
}

static int do_login(struct ldap_source *src, const char *name)
{
	char password[1024];
	if (fgets(password, sizeof(password), stdin) == NULL)
		password[0] = '\0';
	password[strcspn(password, "\n")] = '\0';
	int rc = run_login(src, name, password);
	explicit_bzero(password, sizeof(password));
	return rc;
}

/*
 * One source for many requests, so that a test can restart the server between them and see
 * the same source reconnect: "login NAME<TAB>PASSWORD" or "ping" a line; each answer ends
 * with "exit=CODE" and "end".
 */
static int do_serve(struct ldap_source *src)
{
	char line[2048];
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		int code = EXIT_USAGE;
		char *tab = strchr(line, '\t');
		if (strncmp(line, "login ", 6) == 0 && tab != NULL) {
			*tab = '\0';
			code = run_login(src, line + 6, tab + 1);
		} else if (strcmp(line, "ping") == 0) {
			code = run_ping(src);
		}
		printf("exit=%d\nend\n", code);
		if (fflush(stdout) != 0)
			break;
	}
	explicit_bzero(line, sizeof(line));
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	/* As ferryd: libldap writes to sockets the server may have closed. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return EXIT_USAGE;
	bool login = argc == 4 && strcmp(argv[2], "login") == 0;
	bool ping = argc == 3 && strcmp(argv[2], "ping") == 0;
	bool serve = argc == 3 && strcmp(argv[2], "serve") == 0;
	if (!login && !ping && !serve) {
		fprintf(stderr, "usage: ldap_probe CONF login NAME | ping | serve\n");
		return EXIT_USAGE;
	}
	struct ldap_source_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	if (read_conf(argv[1], &cfg) < 0)
		return EXIT_USAGE;
	struct ldap_source *src;
	char err[1024];
	int rc = ldap_source_new(&cfg, &src, err, sizeof(err));
	explicit_bzero(&cfg, sizeof(cfg));
	if (rc < 0) {
		printf("config: %s\n", err);
		return EXIT_USAGE;
	}
	int code = login ? do_login(src, argv[3]) : ping ? run_ping(src) : do_serve(src);
	ldap_source_free(src);
	return code;
}
