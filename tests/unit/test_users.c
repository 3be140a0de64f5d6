/*
 * test_users.c: the users file (src/server/users.c): weak-method warnings at load, and the
 * choice of the hash unknown users are checked against.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/users.h"

/* Syntactically right hashes; users.c never hashes, so their digests need not be real. */
#define YESCRYPT "$y$j9T$fiWcxgVkF.D3dauQWoZsK1$rdNOgsioMeubrlUnMWTxOnvKZSaeKcIKrR.cy3SN/t5"
#define SHA512 "$6$Q1wd0dXqg8dl9qJQ$Jq6Rk4lXfmNdd9f0pQwY2.gq0H0E0nY8s9cJ4fS1V0m"
#define SHA512_9000 "$6$rounds=9000$Q1wd0dXqg8dl9qJQ$Jq6Rk4lXfmNdd9f0pQwY2.gq0H0E0"
#define MD5 "$1$su8r/.Wa$W4fzoKPAC6rR5sz58cwoD0"
#define SHA256 "$5$Q1wd0dXqg8dl9qJQ$Jq6Rk4lXfmNdd9f0pQwY2.gq0H0E0nY8s9cJ4fS1V0m"
#define DES "abJnggxhB/yWI"
#define BSDI "_J9..CCCCXBrJUJV154M"
#define NT "$3$$8846f7eaee8fb117ad06bdd830b7586c"
#define BCRYPT "$2b$12$Q1wd0dXqg8dl9qJQJq6Rk4lXfmNdd9f0pQwY2.gq0H0E0nY8s9cJ4f"

/* Write text to a new temporary file; returns its name (static storage). */
static const char *temp_file(const char *text)
{
	static char name[64];
	snprintf(name, sizeof(name), "/tmp/test_users.XXXXXX");
	int fd = mkstemp(name);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
	return name;
}

/* Load text as a users file; *warnings receives what users_load() printed (free it). */
static struct users *load(const char *text, char **warnings)
{
	const char *f = temp_file(text);
	size_t len;
	FILE *err = open_memstream(warnings, &len);
	assert_non_null(err);
	struct users *u = NULL;
	assert_int_equal(users_load(f, &u, err), 0);
	assert_int_equal(fclose(err), 0);
	assert_int_equal(unlink(f), 0);
	return u;
}

static void test_weak_methods(void **state)
{
	assert_string_equal(users_weak_method(MD5), "MD5 ($1$)");
	assert_string_equal(users_weak_method(SHA256), "SHA-256 ($5$)");
	assert_string_equal(users_weak_method(DES), "DES");
	assert_string_equal(users_weak_method(BSDI), "BSDi DES (_)");
	assert_string_equal(users_weak_method(NT), "NT ($3$)");
	assert_null(users_weak_method(YESCRYPT));
	assert_null(users_weak_method(SHA512));
	assert_null(users_weak_method(SHA512_9000));
	assert_null(users_weak_method(BCRYPT));
	/* Locked entries are no method at all, and no password works for them. */
	assert_null(users_weak_method("!"));
	assert_null(users_weak_method("*"));
	assert_null(users_weak_method("!" MD5));
	assert_null(users_weak_method("abJnggxhB/yW")); /* 12 characters: not DES */
	assert_null(users_weak_method("abJnggxhB/yW:")); /* 13, but not its alphabet */
}

static void test_load_warns_about_weak_users_by_name(void **state)
{
	char *w;
	struct users *u = load("alice:" MD5 ":/home/alice:read\n"
			       "bob:" YESCRYPT ":/home/bob:read\n"
			       "carol:" MD5 ":/home/carol:all\n"
			       "dave:" DES ":/home/dave:read\n"
			       "erin:" SHA512 ":/home/erin:read\n",
			       &w);
	assert_int_equal(u->n, 5);
	/* One line per method, naming its users and only them. */
	assert_non_null(strstr(w, ": 2 users with MD5 ($1$) password hashes"));
	assert_non_null(strstr(w, ": alice, carol;"));
	assert_non_null(strstr(w, ": 1 user with DES password hashes"));
	assert_non_null(strstr(w, ": dave;"));
	assert_null(strstr(w, "bob"));
	assert_null(strstr(w, "erin"));
	FILE *null = fopen("/dev/null", "w");
	assert_non_null(null);
	assert_int_equal(users_warn_weak(u, "x", null), 3);
	assert_int_equal(fclose(null), 0);
	free(w);
	users_free(u);
}

static void test_strong_file_loads_without_warnings(void **state)
{
	char *w;
	struct users *u = load("bob:" YESCRYPT ":/home/bob:read\n"
			       "# alice:" MD5 ":/home/alice:read (a comment)\n"
			       "erin:" SHA512 ":/home/erin:read\n"
			       "fred:" BCRYPT ":/home/fred:read\n"
			       "locked:!:/home/locked:read\n",
			       &w);
	assert_int_equal(u->n, 4);
	assert_string_equal(w, "");
	free(w);
	users_free(u);
}

static void test_many_weak_users_stay_one_line(void **state)
{
	char text[8192] = "";
	for (int i = 0; i < 25; i++) {
		char line[128];
		snprintf(line, sizeof(line), "user%02d:" MD5 ":/home/u:read\n", i);
		strcat(text, line);
	}
	char *w;
	struct users *u = load(text, &w);
	assert_true(strncmp(w, "warning: /tmp/test_users.", 25) == 0);
	assert_non_null(strstr(w, ": 25 users with MD5"));
	assert_non_null(strstr(w, "user00, user01"));
	assert_non_null(strstr(w, "user09 and 15 more;"));
	assert_null(strstr(w, "user10"));
	assert_non_null(strchr(w, '\n'));
	assert_string_equal(strchr(w, '\n'), "\n");
	free(w);
	users_free(u);
}

static void test_workers_do_not_repeat_the_warning(void **state)
{
	/* users_load_fd() is the workers' load, one per worker: the master already warned. */
	const char *f = temp_file("alice:" MD5 ":/home/alice:read\n");
	int fd = open(f, O_RDONLY);
	assert_true(fd >= 0);
	char *w;
	size_t len;
	FILE *err = open_memstream(&w, &len);
	struct users *u = NULL;
	assert_int_equal(users_load_fd(fd, f, &u, err), 0);
	assert_int_equal(fclose(err), 0);
	assert_string_equal(w, "");
	free(w);
	users_free(u);
	close(fd);
	unlink(f);
}

static void test_typical_hash_is_the_most_common_method_and_cost(void **state)
{
	char *w;
	/* Sorted by name: amy (yescrypt) comes first, yet "$6$" is what most users have. */
	struct users *u = load("amy:" YESCRYPT ":/h:read\n"
			       "bob:" SHA512 ":/h:read\n"
			       "cat:" SHA512_9000 ":/h:read\n"
			       "dan:" SHA512_9000 ":/h:read\n"
			       "eve:" SHA512 ":/h:read\n"
			       "fay:" SHA512_9000 ":/h:read\n"
			       "gus:!:/h:read\n"
			       "hal:*:/h:read\n"
			       "ida:!:/h:read\n"
			       "jon:!:/h:read\n",
			       &w);
	/* The rounds count as part of the cost: 3 at 9000 beat 2 at the default. */
	assert_string_equal(users_typical_hash(u), SHA512_9000);
	free(w);
	users_free(u);

	u = load("amy:" YESCRYPT ":/h:read\nbob:" SHA512 ":/h:read\n", &w);
	assert_string_equal(users_typical_hash(u), YESCRYPT); /* a tie: the first by name */
	free(w);
	users_free(u);

	u = load("amy:" BCRYPT ":/h:read\nbob:$2b$04$Q1wd0dXqg8dl9qJQJq6Rk4lXfmNdd9f0pQwY2:/h:read\n"
		 "cid:$2b$04$Q1wd0dXqg8dl9qJQJq6Rk4lXfmNdd9f0pQwY3:/h:read\n",
		 &w);
	assert_string_equal(users_typical_hash(u), "$2b$04$Q1wd0dXqg8dl9qJQJq6Rk4lXfmNdd9f0pQwY2");
	free(w);
	users_free(u);
}

static void test_typical_hash_of_no_hash_is_null(void **state)
{
	char *w;
	struct users *u = load("", &w);
	assert_null(users_typical_hash(u));
	free(w);
	users_free(u);
	u = load("gus:!:/h:read\nhal:*:/h:read\n", &w);
	assert_null(users_typical_hash(u));
	free(w);
	users_free(u);
	assert_null(users_typical_hash(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_weak_methods),
		cmocka_unit_test(test_load_warns_about_weak_users_by_name),
		cmocka_unit_test(test_strong_file_loads_without_warnings),
		cmocka_unit_test(test_many_weak_users_stay_one_line),
		cmocka_unit_test(test_workers_do_not_repeat_the_warning),
		cmocka_unit_test(test_typical_hash_is_the_most_common_method_and_cost),
		cmocka_unit_test(test_typical_hash_of_no_hash_is_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
