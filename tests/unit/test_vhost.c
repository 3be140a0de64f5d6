/*
 * test_vhost.c: virtual hosts (RFC 7151): the host names a [host] section and HOST accept,
 * the sections as config_load() reads them, and the worker's argument that carries the
 * hosts' descriptors (src/server/vhost_files.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/config.h"
#include "server/vhost_files.h"

static bool name_ok(const char *s)
{
	return config_vhost_name_ok(s, strlen(s));
}

static void test_host_names(void **state)
{
	assert_true(name_ok("a.test"));
	assert_true(name_ok("localhost"));
	assert_true(name_ok("FTP.Example.ORG."));
	assert_true(name_ok("x-1.example"));
	assert_false(name_ok(""));
	assert_false(name_ok("."));
	assert_false(name_ok("a..b"));
	assert_false(name_ok("-a.test"));
	assert_false(name_ok("a-.test"));
	assert_false(name_ok("bad_name"));
	assert_false(name_ok("a test"));
	assert_false(name_ok("[127.0.0.1]"));
	char label[70];
	memset(label, 'a', 64);
	strcpy(label + 64, ".x");
	assert_false(name_ok(label)); /* a label of 64 */
	label[63] = '.';
	label[64] = 'a'; /* labels of 63 and 2 */
	assert_true(name_ok(label));
	char longest[300];
	memset(longest, 'a', sizeof(longest));
	for (size_t i = 60; i < sizeof(longest); i += 61)
		longest[i] = '.';
	longest[253] = '\0';
	assert_true(name_ok(longest));
	longest[253] = 'a';
	longest[254] = '\0';
	assert_false(name_ok(longest));
}

/* config_load() of a file with text; returns its status, the errors in err. */
static int load_text(struct config *cfg, const char *text, char *err, size_t errsz)
{
	char path[] = "/tmp/test_vhost_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	char *argv[] = { "ferryd", "--config", path, NULL };
	bool check;
	FILE *f = fmemopen(err, errsz, "w");
	int rc = config_load(cfg, 3, argv, &check, f);
	fclose(f);
	unlink(path);
	return rc;
}

static void test_sections(void **state)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	char err[1024] = "";
	assert_int_equal(load_text(cfg, "root = /tmp\nbanner = default\n"
				   "[host A.Test]\nroot = /srv/a\nanonymous = no\nbanner = A\n"
				   "[ host b.test. ]\nusers_file = /etc/b.users\n", err, sizeof(err)),
			 0);
	assert_int_equal(cfg->n_vhosts, 2);
	assert_string_equal(cfg->vhosts[0].name, "a.test");
	assert_string_equal(cfg->vhosts[0].root, "/srv/a");
	assert_false(cfg->vhosts[0].anonymous);
	assert_string_equal(cfg->vhosts[0].banner, "A");
	assert_string_equal(cfg->vhosts[1].name, "b.test");
	assert_true(cfg->vhosts[1].anonymous);
	assert_string_equal(cfg->vhosts[1].users_file, "/etc/b.users");
	assert_string_equal(cfg->banner, "default"); /* the section did not touch it */
	assert_int_equal(config_vhost_find(cfg, "B.TEST"), 1);
	assert_int_equal(config_vhost_find(cfg, "a.test."), 0);
	assert_int_equal(config_vhost_find(cfg, "c.test"), -1);

	err[0] = '\0';
	assert_true(load_text(cfg, "root = /tmp\n[host a.test]\nroot = /srv/a\nworkers = 2\n", err,
			      sizeof(err)) < 0);
	assert_non_null(strstr(err, ":4: workers: not allowed in a [host] section"));
	free(cfg);
}

static void test_seventeen_hosts_are_refused(void **state)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	char text[4096] = "root = /tmp\n", err[512] = "";
	for (int i = 0; i <= CONFIG_MAX_VHOSTS; i++) {
		size_t n = strlen(text);
		snprintf(text + n, sizeof(text) - n, "[host h%d.test]\nroot = /tmp\n", i);
	}
	assert_true(load_text(cfg, text, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "at most 16 [host] sections"));
	free(cfg);
}

static void test_descriptor_argument_round_trip(void **state)
{
	struct vhost_fds v, back;
	char arg[CONFIG_MAX_VHOSTS * 24 + 2];
	vhost_fds_init(&v);
	assert_int_equal(vhost_fds_format(&v, arg, sizeof(arg)), 0);
	assert_string_equal(arg, "-");
	assert_int_equal(vhost_fds_parse(arg, &back), 0);
	assert_int_equal(back.n, 0);
	v.n = CONFIG_MAX_VHOSTS;
	for (unsigned i = 0; i < v.n; i++) {
		v.root[i] = i % 3 == 0 ? -1 : (int)(1000000 + i);
		v.users[i] = i % 5 == 0 ? -1 : (int)(1000100 + i);
	}
	assert_int_equal(vhost_fds_format(&v, arg, sizeof(arg)), 0);
	assert_int_equal(vhost_fds_parse(arg, &back), 0);
	assert_int_equal(back.n, v.n);
	assert_memory_equal(back.root, v.root, sizeof(v.root));
	assert_memory_equal(back.users, v.users, sizeof(v.users));
	char small[8];
	assert_int_equal(vhost_fds_format(&v, small, sizeof(small)), -1);
	assert_int_equal(vhost_fds_parse("3:4,5", &back), -1);
	assert_int_equal(vhost_fds_parse("3:x", &back), -1);
	assert_int_equal(vhost_fds_parse("", &back), -1);
	assert_int_equal(vhost_fds_parse("3:4,", &back), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_names),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_seventeen_hosts_are_refused),
		cmocka_unit_test(test_descriptor_argument_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
