/*
 * test_quota.c: the quota tally (src/server/quota.c): its text, the arithmetic of changes
 * and of an upload's room, what may begin, and the file itself on a scratch directory:
 * counted by a walk (symlinks not followed, the tally not counted), read, changed, and
 * counted anew when it does not parse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "server/quota.h"
#include "server/vfs.h"

static int parse(const char *text, struct quota_usage *u)
{
	return quota_parse(text, strlen(text), u);
}

static void test_parse_accepts_the_tally(void **state)
{
	(void)state;
	struct quota_usage u;
	assert_int_equal(parse("3 1000\n", &u), 0);
	assert_int_equal(u.files, 3);
	assert_int_equal(u.bytes, 1000);
	assert_int_equal(parse("0 0", &u), 0); /* the newline is optional */
	assert_int_equal(u.files, 0);
	assert_int_equal(parse("18446744073709551615 18446744073709551615\n", &u), 0);
	assert_true(u.files == UINT64_MAX && u.bytes == UINT64_MAX);
}

static void test_parse_refuses_anything_else(void **state)
{
	(void)state;
	static const char *bad[] = {
		"", "\n", "3", "3\n", "3 ", " 3 4", "3  4", "3 4 ", "3 4\n\n", "3\t4", "-3 4",
		"3 +4", "3 4x", "0x3 4", "3 4\r\n", "a b",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct quota_usage u = { 7, 7 };
		assert_int_not_equal(quota_parse(bad[i], strlen(bad[i]), &u), 0);
		assert_true(u.files == 7 && u.bytes == 7); /* untouched on failure */
	}
	struct quota_usage u;
	assert_int_equal(parse("18446744073709551616 0", &u), FERR_RANGE);
	/* A NUL inside is not a digit: the length given decides, not a terminator. */
	assert_int_equal(quota_parse("1 2\0003", 5, &u), FERR_INVALID);
}

static void test_format_round_trips(void **state)
{
	(void)state;
	char text[QUOTA_TEXT_MAX + 1];
	struct quota_usage u = { UINT64_MAX, UINT64_MAX }, v;
	size_t n = quota_format(&u, text, sizeof(text));
	assert_int_equal(n, QUOTA_TEXT_MAX);
	assert_int_equal(quota_parse(text, n, &v), 0);
	assert_true(v.files == u.files && v.bytes == u.bytes);
	u = (struct quota_usage){ 2, 51000 };
	assert_int_equal(quota_format(&u, text, sizeof(text)), 8);
	assert_string_equal(text, "2 51000\n");
}

static void test_change_saturates(void **state)
{
	(void)state;
	struct quota_usage u = { 2, 100 };
	quota_change(&u, 1, 0, 50); /* a new file of 50 bytes */
	assert_true(u.files == 3 && u.bytes == 150);
	quota_change(&u, 0, 50, 20); /* overwritten shorter */
	assert_true(u.files == 3 && u.bytes == 120);
	quota_change(&u, -1, 20, 0); /* deleted */
	assert_true(u.files == 2 && u.bytes == 100);
	/* A tally that drifted below the tree never wraps. */
	quota_change(&u, -1, 500, 0);
	quota_change(&u, -1, 0, 0);
	quota_change(&u, -1, 0, 0);
	assert_true(u.files == 0 && u.bytes == 0);
	u = (struct quota_usage){ UINT64_MAX, UINT64_MAX - 1 };
	quota_change(&u, 1, 0, 10);
	assert_true(u.files == UINT64_MAX && u.bytes == UINT64_MAX);
}

static void test_room_of_an_upload(void **state)
{
	(void)state;
	struct quota_limits q = { .bytes = 1000 };
	struct quota_usage u = { 3, 600 };
	/* A new file: what is left. */
	assert_int_equal(quota_room(&q, &u, 0, 0), 400);
	/* STOR over a 200-byte file: those 200 bytes go first. */
	assert_int_equal(quota_room(&q, &u, 200, 0), 600);
	/* ... resumed at 50: the first 50 stay. */
	assert_int_equal(quota_room(&q, &u, 200, 50), 550);
	/* APPE to it: it keeps all it has. */
	assert_int_equal(quota_room(&q, &u, 200, 200), 400);
	/* Usage at or past the quota: nothing. */
	u.bytes = 1000;
	assert_int_equal(quota_room(&q, &u, 0, 0), 0);
	u.bytes = 5000;
	assert_int_equal(quota_room(&q, &u, 100, 100), 0);
	/* A tally below the file's size (drift) does not wrap. */
	u.bytes = 10;
	assert_int_equal(quota_room(&q, &u, 200, 0), 1000);
	/* No byte quota: no limit. */
	q.bytes = 0;
	assert_true(quota_room(&q, &u, 0, 0) == UINT64_MAX);
}

static void test_admit(void **state)
{
	(void)state;
	struct quota_limits q = { .bytes = 1000, .files = 2 };
	struct quota_usage u = { 2, 10 };
	assert_int_equal(quota_admit(&q, &u, true, 990), QUOTA_OVER_FILES);
	assert_int_equal(quota_admit(&q, &u, false, 990), QUOTA_OK); /* an overwrite */
	u.files = 1;
	assert_int_equal(quota_admit(&q, &u, true, 990), QUOTA_OK);
	assert_int_equal(quota_admit(&q, &u, true, 0), QUOTA_OVER_BYTES);
	q.bytes = 0;
	assert_int_equal(quota_admit(&q, &u, true, 0), QUOTA_OK); /* files only */
	q = (struct quota_limits){ .bytes = 5 };
	u.files = 1000000;
	assert_int_equal(quota_admit(&q, &u, true, 1), QUOTA_OK); /* bytes only */
}

/* ---- the file, on a scratch directory ---- */

struct scratch {
	char dir[64];
	int root;
};

static void put(const struct scratch *s, const char *name, size_t size)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static void get_tally(const struct scratch *s, char *out, size_t size)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", s->dir, VFS_TALLY_NAME);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, out, size - 1);
	assert_true(n >= 0);
	out[n] = '\0';
	close(fd);
}

static int setup(void **state)
{
	struct scratch *s = calloc(1, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/ferry-quota-XXXXXX");
	if (mkdtemp(s->dir) == NULL)
		return -1;
	s->root = open(s->dir, O_PATH | O_DIRECTORY);
	*state = s;
	return s->root < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	struct scratch *s = *state;
	char cmd[128];
	close(s->root);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", s->dir);
	if (system(cmd) != 0)
		return -1;
	free(s);
	return 0;
}

static void test_scan_counts_regular_files_only(void **state)
{
	struct scratch *s = *state;
	char path[256];
	put(s, "a", 100);
	snprintf(path, sizeof(path), "%s/d", s->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/d/e", s->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	put(s, "d/b", 20);
	put(s, "d/e/c", 3);
	put(s, VFS_TALLY_NAME, 0); /* the tally is not the user's */
	snprintf(path, sizeof(path), "%s/up", s->dir);
	assert_int_equal(symlink("/usr", path), 0); /* never followed */
	snprintf(path, sizeof(path), "%s/d/loop", s->dir);
	assert_int_equal(symlink("..", path), 0);
	struct quota_usage u;
	bool partial = true;
	assert_int_equal(quota_scan(s->root, &u, &partial), 0);
	assert_false(partial);
	assert_int_equal(u.files, 3);
	assert_int_equal(u.bytes, 123);
}

static void test_load_builds_then_update_changes(void **state)
{
	struct scratch *s = *state;
	put(s, "a", 100);
	put(s, "b", 5);
	struct quota_usage u;
	bool rebuilt = false, partial = true;
	assert_int_equal(quota_load(s->root, &u, &rebuilt, &partial), 0);
	assert_true(rebuilt);
	assert_false(partial);
	assert_true(u.files == 2 && u.bytes == 105);
	char text[64];
	get_tally(s, text, sizeof(text));
	assert_string_equal(text, "2 105\n");
	/* Read again: as written, not counted. */
	put(s, "c", 1000); /* behind the tally's back */
	assert_int_equal(quota_load(s->root, &u, &rebuilt, NULL), 0);
	assert_false(rebuilt);
	assert_true(u.files == 2 && u.bytes == 105);
	struct quota_usage after;
	assert_int_equal(quota_update(s->root, 1, 0, 7, &after), 0);
	assert_true(after.files == 3 && after.bytes == 112);
	get_tally(s, text, sizeof(text));
	assert_string_equal(text, "3 112\n");
	/* A tally that does not parse is counted anew, and the change is already in the tree. */
	put(s, VFS_TALLY_NAME, 3);
	assert_int_equal(quota_update(s->root, -1, 1000, 0, &after), 0);
	assert_true(after.files == 3 && after.bytes == 1105);
}

static void test_a_symlinked_tally_is_not_followed(void **state)
{
	struct scratch *s = *state;
	char path[256];
	put(s, "elsewhere", 0);
	snprintf(path, sizeof(path), "%s/%s", s->dir, VFS_TALLY_NAME);
	assert_int_equal(symlink("elsewhere", path), 0);
	struct quota_usage u;
	assert_int_equal(quota_load(s->root, &u, NULL, NULL), -ELOOP);
	assert_int_equal(quota_update(s->root, 1, 0, 1, NULL), -ELOOP);
	struct stat st;
	snprintf(path, sizeof(path), "%s/elsewhere", s->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_accepts_the_tally),
		cmocka_unit_test(test_parse_refuses_anything_else),
		cmocka_unit_test(test_format_round_trips),
		cmocka_unit_test(test_change_saturates),
		cmocka_unit_test(test_room_of_an_upload),
		cmocka_unit_test(test_admit),
		cmocka_unit_test_setup_teardown(test_scan_counts_regular_files_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_builds_then_update_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_symlinked_tally_is_not_followed, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
