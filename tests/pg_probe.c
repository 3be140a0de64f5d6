/*
 * pg_probe.c: drives the PostgreSQL user store (src/server/userdb_pg.c) from the command
 * line, for tests/wire/test_pg_store.py.
 *
 *   pg_probe CONNINFO TIMEOUT_MS COMMAND ARGS...
 *     lookup NAME                    the user's fields, one "key=value" a line, or "none"
 *     put NAME HASH HOME PERMS SETTINGS [disabled]
 *                                    "added" or "updated"; "-" for a field keeps the user's
 *     delete NAME                    "deleted" or "none"
 *     passwd NAME HASH               "updated" or "none"
 *     list                           pg_store_list()'s lines
 *     ping                           "ok"
 *   pg_probe CONNINFO TIMEOUT_MS -
 *     reads commands from stdin, one a line with tab-separated words, all on one store
 *     (so that its reconnection can be tested), and ends each command's output with
 *     "status N"; stops at an empty line or end of input.
 *
 * Exit status (or N): 0 done/found, 1 no such user, 2 usage, 3 the store failed ("error:
 * REASON"), 4 refused input ("invalid: REASON"), 5 the store could not be made.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/num.h"
#include "server/user_settings.h"
#include "server/userdb_pg.h"
#include "server/users.h"

enum { OK, NONE, USAGE, FAILED, INVALID, NOSTORE };

#define ARGS_MAX 8

static void print_settings(const struct user_settings *s)
{
	if (s == NULL) {
		printf("settings=none\n");
		return;
	}
	printf("quota_bytes=%llu\nquota_files=%llu\n", (unsigned long long)s->quota_bytes,
	       (unsigned long long)s->quota_files);
	printf("rate_down=%llu\nrate_up=%llu\n", (unsigned long long)s->rate_down,
	       (unsigned long long)s->rate_up);
	printf("user_rate_down=%llu\nuser_rate_up=%llu\n", (unsigned long long)s->user_rate_down,
	       (unsigned long long)s->user_rate_up);
	printf("max_sessions=%u\nallow=%u\n", s->max_sessions, s->n_allow);
	for (unsigned i = 0; i < s->n_dirs; i++)
		printf("dir=%s:%u\n", s->dirs[i].path, s->dirs[i].perms);
}

static int cmd_lookup(struct pg_store *st, const char *name)
{
	struct user_entry e;
	char err[512];
	int rc = pg_store_lookup(st, name, &e, err, sizeof(err));
	if (rc < 0) {
		printf("error: %s\n", err);
		return FAILED;
	}
	if (rc == 0) {
		printf("none\n");
		return NONE;
	}
	printf("name=%s\nhash=%s\nhome=%s\nperms=%u\ndisabled=%d\n", e.name, e.hash, e.home,
	       e.perms, e.disabled);
	print_settings(e.set);
	user_entry_clear(&e);
	return OK;
}

static const char *field(const char *s)
{
	return strcmp(s, "-") == 0 ? NULL : s;
}

/* A failed write: "invalid" for what ferryd refuses, "error" for a failed store. */
static int write_failed(int rc, const char *err)
{
	printf("%s: %s\n", rc == -EINVAL ? "invalid" : "error", err);
	return rc == -EINVAL ? INVALID : FAILED;
}

static int cmd_put(struct pg_store *st, int argc, char **argv)
{
	if (argc < 6 || argc > 7 || (argc == 7 && strcmp(argv[6], "disabled") != 0))
		return USAGE;
	struct user_entry_text u = {
		.name = argv[1], .hash = field(argv[2]), .home = field(argv[3]),
		.perms = field(argv[4]), .settings = field(argv[5]), .disabled = argc == 7,
	};
	bool added;
	char err[512];
	int rc = pg_store_put(st, &u, &added, err, sizeof(err));
	if (rc < 0)
		return write_failed(rc, err);
	printf("%s\n", added ? "added" : "updated");
	return OK;
}

static int cmd_found(int rc, bool found, const char *word, const char *err)
{
	if (rc < 0)
		return write_failed(rc, err);
	printf("%s\n", found ? word : "none");
	return found ? OK : NONE;
}

static int run(struct pg_store *st, int argc, char **argv)
{
	char err[512];
	bool found;
	const char *cmd = argv[0];
	if (strcmp(cmd, "lookup") == 0 && argc == 2)
		return cmd_lookup(st, argv[1]);
	if (strcmp(cmd, "put") == 0)
		return cmd_put(st, argc, argv);
	if (strcmp(cmd, "delete") == 0 && argc == 2) {
		int rc = pg_store_delete(st, argv[1], &found, err, sizeof(err));
		return cmd_found(rc, found, "deleted", err);
	}
	if (strcmp(cmd, "passwd") == 0 && argc == 3) {
		int rc = pg_store_set_hash(st, argv[1], argv[2], &found, err, sizeof(err));
		return cmd_found(rc, found, "updated", err);
	}
	if (strcmp(cmd, "list") == 0 && argc == 1) {
		int rc = pg_store_list(st, stdout, err, sizeof(err));
		return rc < 0 ? write_failed(rc, err) : OK;
	}
	if (strcmp(cmd, "ping") == 0 && argc == 1) {
		int rc = pg_store_ping(st, err, sizeof(err));
		if (rc < 0)
			return write_failed(rc, err);
		printf("ok\n");
		return OK;
	}
	return USAGE;
}

/* Commands from stdin, tab-separated, on the one store. */
static int run_stdin(struct pg_store *st)
{
	char line[8192];
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '\0')
			break;
		char *argv[ARGS_MAX + 1];
		int argc = 0;
		/* strsep, not strtok: an empty word (no settings) is a word. */
		char *rest = line, *w;
		while ((w = strsep(&rest, "\t")) != NULL && argc < ARGS_MAX)
			argv[argc++] = w;
		argv[argc] = NULL;
		int rc = run(st, argc, argv);
		printf("status %d\n", rc);
		fflush(stdout);
	}
	return OK;
}

int main(int argc, char **argv)
{
	uint64_t timeout;
	if (argc < 4 || num_parse_u64_cstr(argv[2], UINT32_MAX, &timeout) < 0) {
		fprintf(stderr, "usage: pg_probe CONNINFO TIMEOUT_MS COMMAND ARGS... | -\n");
		return USAGE;
	}
	struct pg_store *st;
	int rc = pg_store_new(argv[1], (unsigned)timeout, &st);
	if (rc < 0) {
		printf("error: pg_store_new: %s\n", strerror(-rc));
		return NOSTORE;
	}
	rc = strcmp(argv[3], "-") == 0 ? run_stdin(st) : run(st, argc - 3, argv + 3);
	pg_store_free(st);
	if (rc == USAGE)
		fprintf(stderr, "pg_probe: bad command\n");
	return rc;
}
