/* test_path.c: virtual path normalisation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/err.h"
#include "common/path.h"

static void resolve_ok(const char *cwd, const char *arg, const char *want)
{
	char out[VPATH_MAX];
	int rc = path_resolve(cwd, arg, strlen(arg), out, sizeof(out));
	if (rc != FERR_OK)
		fail_msg("resolve('%s', '%s') gave %d", cwd, arg, rc);
	if (strcmp(out, want) != 0)
		fail_msg("resolve('%s', '%s') = '%s', want '%s'", cwd, arg, out, want);
}

static void test_basic(void **state)
{
	(void)state;
	resolve_ok("/", "", "/");
	resolve_ok("/pub", "", "/pub");
	resolve_ok("/", "a", "/a");
	resolve_ok("/pub", "a/b", "/pub/a/b");
	resolve_ok("/pub", "/etc", "/etc");
	resolve_ok("/pub", "a/", "/pub/a");
	resolve_ok("/pub", "//a///b//", "/a/b");
	resolve_ok("/pub", "./a/./b/.", "/pub/a/b");
	resolve_ok("/pub/x", "..", "/pub");
	resolve_ok("/pub/x", "../..", "/");
	resolve_ok("/pub/x", "../y/../z", "/pub/z");
	resolve_ok("/", ".", "/");
	resolve_ok("/", "/", "/");
	resolve_ok("/a", "...", "/a/...");
	resolve_ok("/a", "..b", "/a/..b");
	resolve_ok("/a", "b..", "/a/b..");
	resolve_ok("/a", " spaced name ", "/a/ spaced name ");
}

static void test_never_above_root(void **state)
{
	(void)state;
	resolve_ok("/", "..", "/");
	resolve_ok("/", "../../etc/passwd", "/etc/passwd");
	resolve_ok("/home/ftp", "../../../../../../etc/passwd", "/etc/passwd");
	resolve_ok("/", "/../../..", "/");
	resolve_ok("/a", "../../../a/../../b", "/b");
	resolve_ok("/", "..//..//./..", "/");
}

static void test_cwd_not_clean(void **state)
{
	(void)state;
	/* cwd is normalised too, should a caller pass one that is not. */
	resolve_ok("/a//b/./c/..", "d", "/a/b/d");
	resolve_ok("/../..", "x", "/x");
}

static void test_rejects(void **state)
{
	(void)state;
	char out[VPATH_MAX];
	assert_int_equal(path_resolve("/", "a\nb", 3, out, sizeof(out)), FERR_INVALID);
	assert_int_equal(path_resolve("/", "a\rb", 3, out, sizeof(out)), FERR_INVALID);
	assert_int_equal(path_resolve("/", "a\0b", 3, out, sizeof(out)), FERR_INVALID);
	assert_int_equal(path_resolve("relative", "a", 1, out, sizeof(out)), FERR_INVALID);
	assert_int_equal(path_resolve(NULL, "a", 1, out, sizeof(out)), FERR_INVALID);
	/* An absolute arg needs no cwd. */
	assert_int_equal(path_resolve(NULL, "/a", 2, out, sizeof(out)), FERR_OK);
	assert_string_equal(out, "/a");
	/* The length is what counts, not a NUL. */
	assert_int_equal(path_resolve("/", "abc/def", 3, out, sizeof(out)), FERR_OK);
	assert_string_equal(out, "/abc");
}

static void test_name_ok(void **state)
{
	(void)state;
	assert_true(path_name_ok("abc", 3));
	assert_true(path_name_ok("", 0));
	assert_true(path_name_ok("a b\t\xff", 5));
	assert_false(path_name_ok("a\rb", 3));
	assert_false(path_name_ok("a\nb", 3));
	assert_false(path_name_ok("a\0b", 3));
}

static void test_toobig(void **state)
{
	(void)state;
	char out[8];
	assert_int_equal(path_resolve("/", "abcdef", 6, out, sizeof(out)), FERR_OK);
	assert_string_equal(out, "/abcdef");
	assert_int_equal(path_resolve("/", "abcdefg", 7, out, sizeof(out)), FERR_TOOBIG);
	assert_int_equal(path_resolve("/ab", "cd", 2, out, sizeof(out)), FERR_OK);
	assert_string_equal(out, "/ab/cd");
	assert_int_equal(path_resolve("/ab", "cdef", 4, out, sizeof(out)), FERR_TOOBIG);
	/* A long detour that comes back is fine: only the result must fit. */
	assert_int_equal(path_resolve("/", "averyveryverylongname/more/../../x", 34, out,
				      sizeof(out)),
			 FERR_OK);
	assert_string_equal(out, "/x");
	assert_int_equal(path_resolve("/", "a", 1, out, 1), FERR_TOOBIG);
	assert_int_equal(path_resolve("/", "", 0, out, 2), FERR_OK);
	assert_string_equal(out, "/");
}

static void test_huge_input(void **state)
{
	(void)state;
	char arg[3 * VPATH_MAX];
	char out[VPATH_MAX];
	/* Thousands of "../" stay at the root. */
	for (size_t i = 0; i + 3 <= sizeof(arg); i += 3)
		memcpy(arg + i, "../", 3);
	assert_int_equal(path_resolve("/", arg, sizeof(arg), out, sizeof(out)), FERR_OK);
	assert_string_equal(out, "/");
	/* A name longer than VPATH_MAX does not fit. */
	memset(arg, 'n', sizeof(arg));
	assert_int_equal(path_resolve("/", arg, sizeof(arg), out, sizeof(out)), FERR_TOOBIG);
	/* The largest result that fits: '/' and VPATH_MAX - 2 bytes. */
	assert_int_equal(path_resolve("/", arg, VPATH_MAX - 2, out, sizeof(out)), FERR_OK);
	assert_int_equal(strlen(out), VPATH_MAX - 1);
	assert_int_equal(path_resolve("/", arg, VPATH_MAX - 1, out, sizeof(out)), FERR_TOOBIG);
}

static void test_in_place(void **state)
{
	(void)state;
	/* out may be the cwd buffer itself, as a CWD handler would call it. */
	char cwd[64] = "/pub/a";
	assert_int_equal(path_resolve(cwd, "../b/./c", 8, cwd, sizeof(cwd)), FERR_OK);
	assert_string_equal(cwd, "/pub/b/c");
	assert_int_equal(path_resolve(cwd, "d//e", 4, cwd, sizeof(cwd)), FERR_OK);
	assert_string_equal(cwd, "/pub/b/c/d/e");
	char messy[64] = "//x/./y//z/..";
	assert_int_equal(path_resolve(messy, "w", 1, messy, sizeof(messy)), FERR_OK);
	assert_string_equal(messy, "/x/y/w");
}

static void test_relative_basename(void **state)
{
	(void)state;
	assert_string_equal(path_relative("/"), ".");
	assert_string_equal(path_relative("/a/b"), "a/b");
	assert_string_equal(path_relative("/a"), "a");
	assert_string_equal(path_basename("/"), "/");
	assert_string_equal(path_basename("/a"), "a");
	assert_string_equal(path_basename("/a/b"), "b");
}

static void test_split(void **state)
{
	(void)state;
	char parent[16];
	const char *name = NULL;
	assert_int_equal(path_split("/a/b", parent, sizeof(parent), &name), FERR_OK);
	assert_string_equal(parent, "/a");
	assert_string_equal(name, "b");
	assert_int_equal(path_split("/a", parent, sizeof(parent), &name), FERR_OK);
	assert_string_equal(parent, "/");
	assert_string_equal(name, "a");
	assert_int_equal(path_split("/x/y/zz", parent, sizeof(parent), &name), FERR_OK);
	assert_string_equal(parent, "/x/y");
	assert_string_equal(name, "zz");
	assert_int_equal(path_split("/", parent, sizeof(parent), &name), FERR_INVALID);
	assert_int_equal(path_split("rel", parent, sizeof(parent), &name), FERR_INVALID);
	assert_int_equal(path_split("/abc/d", parent, 4, &name), FERR_TOOBIG);
	assert_int_equal(path_split("/abc/d", parent, 5, &name), FERR_OK);
	assert_string_equal(parent, "/abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_never_above_root),
		cmocka_unit_test(test_cwd_not_clean),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_name_ok),
		cmocka_unit_test(test_toobig),
		cmocka_unit_test(test_huge_input),
		cmocka_unit_test(test_in_place),
		cmocka_unit_test(test_relative_basename),
		cmocka_unit_test(test_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
