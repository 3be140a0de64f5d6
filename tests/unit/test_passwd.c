/*
 * test_passwd.c: how `ferryd passwd` replaces the users file (src/server/passwd.c).  It
 * runs as root in a directory others may write to, so nothing they plant there may be
 * written through.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/passwd.h"

#define HASH "$y$j9T$fiWcxgVkF.D3dauQWoZsK1$rdNOgsioMeubrlUnMWTxOnvKZSaeKcIKrR.cy3SN/t5"
#define VICTIM_TEXT "root:x:0:0:root:/root:/bin/bash\n"

struct dir {
	char path[64];
	char users[128];
	char victim[128];
};

static int setup(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));
	snprintf(d->path, sizeof(d->path), "/tmp/test_passwd.XXXXXX");
	assert_non_null(mkdtemp(d->path));
	snprintf(d->users, sizeof(d->users), "%s/users", d->path);
	snprintf(d->victim, sizeof(d->victim), "%s/victim", d->path);
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	struct dir *d = *state;
	DIR *dir = opendir(d->path);
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		char p[512];
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", d->path, e->d_name);
		unlink(p);
	}
	closedir(dir);
	rmdir(d->path);
	free(d);
	return 0;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static char *read_text(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The names in the directory, sorted, joined by spaces. */
static char *listing(const char *path)
{
	static char out[1024];
	struct dirent **v;
	int n = scandir(path, &v, NULL, alphasort);
	assert_true(n >= 0);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (v[i]->d_name[0] != '.') {
			strcat(out, out[0] ? " " : "");
			strcat(out, v[i]->d_name);
		}
		free(v[i]);
	}
	free(v);
	return out;
}

static int update(const char *file, const char *name, const char *home, const char *perms,
		  bool *added)
{
	struct passwd_change c = { .name = name, .hash = HASH, .home = home, .perms = perms };
	FILE *null = fopen("/dev/null", "w");
	int rc = passwd_update_file(file, &c, added, null);
	fclose(null);
	return rc;
}

static void test_link_planted_at_the_old_temp_name_is_not_followed(void **state)
{
	struct dir *d = *state;
	write_text(d->victim, VICTIM_TEXT);
	assert_int_equal(chmod(d->victim, 0644), 0);
	write_text(d->users, "bob:" HASH ":/srv/bob:read\n");
	assert_int_equal(chmod(d->users, 0640), 0);
	char planted[160];
	snprintf(planted, sizeof(planted), "%s.tmp", d->users);
	assert_int_equal(symlink(d->victim, planted), 0);

	bool added;
	assert_int_equal(update(d->users, "alice", "/srv/alice", NULL, &added), 0);
	assert_true(added);
	assert_string_equal(read_text(d->victim), VICTIM_TEXT);
	struct stat st;
	assert_int_equal(stat(d->victim, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_string_equal(read_text(d->users),
			    "bob:" HASH ":/srv/bob:read\nalice:" HASH ":/srv/alice:read\n");
	/* The new file took the old one's mode; the planted link is still just a link. */
	assert_int_equal(lstat(d->users, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(lstat(planted, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_string_equal(listing(d->path), "users users.tmp victim");
}

static void test_update_keeps_home_and_permissions(void **state)
{
	struct dir *d = *state;
	write_text(d->users, "# users\nbob:old:/srv/bob:read,write\ncarol:" HASH ":/srv/c:read\n");
	bool added;
	assert_int_equal(update(d->users, "bob", NULL, NULL, &added), 0);
	assert_false(added);
	assert_string_equal(read_text(d->users), "# users\nbob:" HASH ":/srv/bob:read,write\n"
						 "carol:" HASH ":/srv/c:read\n");
	assert_int_equal(update(d->users, "carol", "/srv/carol", "all", &added), 0);
	assert_string_equal(read_text(d->users), "# users\nbob:" HASH ":/srv/bob:read,write\n"
						 "carol:" HASH ":/srv/carol:all\n");
	assert_string_equal(listing(d->path), "users");
}

static void test_update_keeps_settings(void **state)
{
	struct dir *d = *state;
	write_text(d->users, "dan:old:/srv/d:read:allow=::1,127.0.0.0/8 /in=write max_sessions=3\n");
	bool added;
	assert_int_equal(update(d->users, "dan", NULL, NULL, &added), 0);
	assert_string_equal(read_text(d->users),
			    "dan:" HASH ":/srv/d:read:allow=::1,127.0.0.0/8 /in=write max_sessions=3\n");
	assert_int_equal(update(d->users, "dan", "/srv/dan", "read,write", &added), 0);
	assert_false(added);
	assert_string_equal(read_text(d->users), "dan:" HASH
			    ":/srv/dan:read,write:allow=::1,127.0.0.0/8 /in=write max_sessions=3\n");
}

static void test_add_after_a_last_line_without_newline(void **state)
{
	struct dir *d = *state;
	write_text(d->users, "bob:" HASH ":/srv/bob:read");
	bool added;
	assert_int_equal(update(d->users, "eve", "/srv/eve", NULL, &added), 0);
	assert_true(added);
	assert_string_equal(read_text(d->users),
			    "bob:" HASH ":/srv/bob:read\neve:" HASH ":/srv/eve:read\n");
}

static void test_new_file_is_private(void **state)
{
	struct dir *d = *state;
	bool added;
	assert_int_equal(update(d->users, "alice", "/srv/alice", "read", &added), 0);
	assert_true(added);
	struct stat st;
	assert_int_equal(stat(d->users, &st), 0);
	assert_int_equal(st.st_mode & 0077, 0);
	assert_string_equal(read_text(d->users), "alice:" HASH ":/srv/alice:read\n");
}

static void test_failure_leaves_nothing_behind(void **state)
{
	struct dir *d = *state;
	const char *text = "bob:" HASH ":/srv/bob:read\n";
	write_text(d->users, text);
	bool added;
	/* A new user without a home: refused once the file has been read. */
	assert_int_equal(update(d->users, "dora", NULL, NULL, &added), -EINVAL);
	assert_string_equal(read_text(d->users), text);
	assert_string_equal(listing(d->path), "users");
	/* A users file that is not a regular file is not read, nor anything created. */
	char sub[160];
	snprintf(sub, sizeof(sub), "%s/sub", d->path);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_true(update(sub, "dora", "/srv/dora", NULL, &added) < 0);
	assert_string_equal(listing(d->path), "sub users");
	assert_int_equal(rmdir(sub), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_link_planted_at_the_old_temp_name_is_not_followed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_keeps_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_after_a_last_line_without_newline, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_update_keeps_home_and_permissions, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_new_file_is_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_leaves_nothing_behind, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
