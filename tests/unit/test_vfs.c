/*
 * test_vfs.c: the server's file-system boundary on a scratch directory: the root known by
 * its inode whatever name reaches it, and a file made for an upload removed only while it
 * is still that empty file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/vfs.h"

struct scratch {
	char dir[PATH_MAX];
	int root;
};

static void at(const struct scratch *t, const char *rel, char *out)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", t->dir, rel);
	assert_true(n > 0 && n < PATH_MAX);
}

static bool exists(const struct scratch *t, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;
	at(t, rel, p);
	return lstat(p, &st) == 0;
}

/* root/ with pub/, pub/inner/, top -> /, pub/up -> .. and dangling -> /nowhere. */
static int setup(void **state)
{
	struct scratch *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	snprintf(t->dir, sizeof(t->dir), "%s/test_vfs.XXXXXX", tmp);
	assert_non_null(mkdtemp(t->dir));
	char p[PATH_MAX];
	at(t, "pub", p);
	assert_int_equal(mkdir(p, 0755), 0);
	at(t, "pub/inner", p);
	assert_int_equal(mkdir(p, 0755), 0);
	at(t, "top", p);
	assert_int_equal(symlink("/", p), 0);
	at(t, "pub/up", p);
	assert_int_equal(symlink("..", p), 0);
	at(t, "dangling", p);
	assert_int_equal(symlink("/nowhere", p), 0);
	t->root = vfs_open_root(t->dir);
	assert_true(t->root >= 0);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct scratch *t = *state;
	const char *names[] = { "dangling", "pub/up", "top", "pub/inner", "pub", NULL };
	char p[PATH_MAX];
	/* Whatever a test left: plain files at the top and in pub. */
	const char *files[] = { "new", "pub/new", "other", "nowhere", NULL };
	for (int i = 0; files[i] != NULL; i++) {
		at(t, files[i], p);
		unlink(p);
	}
	for (int i = 0; names[i] != NULL; i++) {
		at(t, names[i], p);
		if (unlink(p) < 0)
			rmdir(p);
	}
	close(t->root);
	assert_int_equal(rmdir(t->dir), 0);
	free(t);
	return 0;
}

static void test_root_by_any_name(void **state)
{
	struct scratch *t = *state;
	const char *roots[] = { "/", "/top", "/pub/up", "/top/pub/up", "/top/top" };
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		int fd = vfs_opendir(t->root, roots[i]);
		assert_true(fd >= 0);
		assert_int_equal(vfs_is_root(t->root, fd), 1);
		close(fd);
	}
	const char *others[] = { "/pub", "/top/pub", "/pub/up/pub/inner" };
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		int fd = vfs_opendir(t->root, others[i]);
		assert_true(fd >= 0);
		assert_int_equal(vfs_is_root(t->root, fd), 0);
		close(fd);
	}
	assert_int_equal(vfs_is_root(t->root, -1), -EBADF);
}

static void test_create_and_uncreate(void **state)
{
	struct scratch *t = *state;
	struct vfs_created made;
	/* Through a symlinked parent: the file lands where the link leads, inside the root. */
	int fd = vfs_create(t->root, "/pub/up/pub/new", O_WRONLY, 0644, &made);
	assert_true(fd >= 0);
	close(fd);
	assert_true(made.dir >= 0);
	assert_string_equal(made.name, "new");
	assert_true(exists(t, "pub/new"));
	assert_int_equal(vfs_uncreate(&made), 0);
	assert_false(exists(t, "pub/new"));
	assert_int_equal(vfs_uncreate(&made), -ENOENT);
	vfs_created_close(&made);
	assert_int_equal(made.dir, -1);
	vfs_created_close(&made);
}

static void test_create_refuses_what_exists(void **state)
{
	struct scratch *t = *state;
	struct vfs_created made;
	const char *taken[] = { "/", "/pub", "/top", "/dangling" };
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
		assert_int_equal(vfs_create(t->root, taken[i], O_WRONLY, 0644, &made), -EEXIST);
		assert_int_equal(made.dir, -1);
		vfs_created_close(&made);
	}
	/* O_EXCL did not follow the dangling link: nothing was made at its target. */
	assert_false(exists(t, "nowhere"));
	assert_int_equal(vfs_create(t->root, "/missing/new", O_WRONLY, 0644, &made), -ENOENT);
	assert_int_equal(made.dir, -1);
	assert_int_equal(vfs_uncreate(&made), -EBADF);
}

static void test_uncreate_keeps_a_written_file(void **state)
{
	struct scratch *t = *state;
	struct vfs_created made;
	int fd = vfs_create(t->root, "/new", O_WRONLY, 0644, &made);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	assert_int_equal(vfs_uncreate(&made), -ESTALE);
	assert_true(exists(t, "new"));
	vfs_created_close(&made);
}

static void test_uncreate_keeps_a_file_renamed_over_it(void **state)
{
	struct scratch *t = *state;
	struct vfs_created made;
	int fd = vfs_create(t->root, "/new", O_WRONLY, 0644, &made);
	assert_true(fd >= 0);
	close(fd);
	/* Another, empty file takes the name: not the one this upload made. */
	char other[PATH_MAX], name[PATH_MAX];
	at(t, "other", other);
	at(t, "new", name);
	int o = open(other, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(o >= 0);
	close(o);
	assert_int_equal(rename(other, name), 0);
	assert_int_equal(vfs_uncreate(&made), -ESTALE);
	assert_true(exists(t, "new"));
	vfs_created_close(&made);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_root_by_any_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_and_uncreate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_refuses_what_exists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uncreate_keeps_a_written_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uncreate_keeps_a_file_renamed_over_it, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
