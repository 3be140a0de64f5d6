/* test_netaddr.c: CIDR networks, membership and address classes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "common/err.h"
#include "common/netaddr.h"

/* Parse a NUL-terminated network; out is poisoned first so a failure that writes is seen. */
static int pnet(const char *s, struct netaddr_net *out)
{
	memset(out, 0xa5, sizeof(*out));
	return netaddr_parse_net(s, strlen(s), out);
}

static bool poisoned(const struct netaddr_net *n)
{
	const unsigned char *p = (const unsigned char *)n;
	for (size_t i = 0; i < sizeof(*n); i++) {
		if (p[i] != 0xa5)
			return false;
	}
	return true;
}

static void expect_net(const struct netaddr_net *n, int family, const char *addr, unsigned prefix)
{
	char s[INET6_ADDRSTRLEN];
	const void *raw = family == AF_INET
				  ? (const void *)&((const struct sockaddr_in *)&n->addr)->sin_addr
				  : (const void *)&((const struct sockaddr_in6 *)&n->addr)->sin6_addr;
	assert_int_equal(n->addr.ss_family, family);
	assert_non_null(inet_ntop(family, raw, s, sizeof(s)));
	assert_string_equal(s, addr);
	assert_int_equal(n->prefix, prefix);
	if (family == AF_INET)
		assert_int_equal(((const struct sockaddr_in *)&n->addr)->sin_port, 0);
	else
		assert_int_equal(((const struct sockaddr_in6 *)&n->addr)->sin6_port, 0);
}

static void net_ok(const char *s, int family, const char *addr, unsigned prefix)
{
	struct netaddr_net n;
	int rc = pnet(s, &n);
	if (rc != FERR_OK)
		fail_msg("network '%s' gave %d", s, rc);
	expect_net(&n, family, addr, prefix);
}

static void net_fails(const char *s, int want)
{
	struct netaddr_net n;
	int rc = pnet(s, &n);
	if (rc != want)
		fail_msg("network '%s' gave %d, not %d", s, rc, want);
	assert_true(poisoned(&n));
}

static struct sockaddr_storage addr(const char *s)
{
	struct sockaddr_storage a;
	int rc = netaddr_parse_addr(s, strlen(s), &a);
	if (rc != FERR_OK)
		fail_msg("address '%s' gave %d", s, rc);
	return a;
}

static struct netaddr_net net(const char *s)
{
	struct netaddr_net n;
	int rc = pnet(s, &n);
	if (rc != FERR_OK)
		fail_msg("network '%s' gave %d", s, rc);
	return n;
}

static bool in(const char *a, const char *n)
{
	struct sockaddr_storage sa = addr(a);
	struct netaddr_net sn = net(n);
	return netaddr_in_net(&sa, &sn);
}

static void test_parse_net_valid(void **state)
{
	(void)state;
	net_ok("10.0.0.0/8", AF_INET, "10.0.0.0", 8);
	net_ok("192.168.1.0/24", AF_INET, "192.168.1.0", 24);
	net_ok("100.64.0.0/10", AF_INET, "100.64.0.0", 10);
	net_ok("198.51.100.128/25", AF_INET, "198.51.100.128", 25);
	net_ok("192.168.1.4/30", AF_INET, "192.168.1.4", 30);
	net_ok("fd00::/8", AF_INET6, "fd00::", 8);
	net_ok("2001:db8::/32", AF_INET6, "2001:db8::", 32);
	net_ok("2001:DB8:0:1::/64", AF_INET6, "2001:db8:0:1::", 64);
	net_ok("fe80::/10", AF_INET6, "fe80::", 10);
	net_ok("2001:db8::8000/113", AF_INET6, "2001:db8::8000", 113);
	/* Leading zeros in the prefix are digits like any other. */
	net_ok("10.0.0.0/08", AF_INET, "10.0.0.0", 8);
}

static void test_parse_net_bare_and_zero(void **state)
{
	(void)state;
	net_ok("192.168.1.5", AF_INET, "192.168.1.5", 32);
	net_ok("192.168.1.5/32", AF_INET, "192.168.1.5", 32);
	net_ok("255.255.255.255", AF_INET, "255.255.255.255", 32);
	net_ok("2001:db8::1", AF_INET6, "2001:db8::1", 128);
	net_ok("2001:db8::1/128", AF_INET6, "2001:db8::1", 128);
	net_ok("::1", AF_INET6, "::1", 128);
	net_ok("::", AF_INET6, "::", 128);
	net_ok("0.0.0.0/0", AF_INET, "0.0.0.0", 0);
	net_ok("::/0", AF_INET6, "::", 0);
}

static void test_parse_net_range(void **state)
{
	(void)state;
	/* Host bits set. */
	net_fails("192.168.1.5/24", FERR_RANGE);
	net_fails("10.0.0.1/8", FERR_RANGE);
	net_fails("100.64.0.0/9", FERR_RANGE);
	net_fails("100.64.0.0/8", FERR_RANGE);
	net_fails("1.0.0.0/0", FERR_RANGE);
	net_fails("0.0.0.1/31", FERR_RANGE);
	net_fails("2001:db8::1/64", FERR_RANGE);
	net_fails("2001:db8::1/127", FERR_RANGE);
	net_fails("fe80::/8", FERR_RANGE);
	net_fails("fec0::/9", FERR_RANGE);
	net_fails("::1/0", FERR_RANGE);
	/* Prefix too long for the family. */
	net_fails("10.0.0.0/33", FERR_RANGE);
	net_fails("10.0.0.0/999", FERR_RANGE);
	net_fails("2001:db8::/129", FERR_RANGE);
	net_fails("2001:db8::/200", FERR_RANGE);
}

static void test_parse_net_malformed(void **state)
{
	(void)state;
	const char *bad[] = {
		"",
		"/",
		"/8",
		"1.2.3.4/",
		"1.2.3.4/08x",
		"1.2.3.4/x",
		"1.2.3.4/-1",
		"1.2.3.4/+8",
		"1.2.3.0/24/",
		"1.2.3.0/24/8",
		"1.2.3.0//24",
		"1.2.3.0/0024",
		" 1.2.3.0/24",
		"1.2.3.0/24 ",
		"1.2.3.0 /24",
		"1.2.3.0/ 24",
		"1.2.3",
		"1.2.3.256",
		"01.2.3.4",
		"1.2.3.4.5",
		"localhost",
		"10/8",
		"fe80::1%eth0",
		"fe80::1%eth0/128",
		"[::1]",
		"[::1]/128",
		"1:2:3:4:5:6:7:8:9",
		"::g",
		"::ffff:1.2.3.0/120", /* IPv4-mapped: matched as IPv4, so write it as one */
		"::ffff:1.2.3.4",
		"::ffff:0:0/96",
		"0123456789012345678901234567890123456789012345678901234567890123456789",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		net_fails(bad[i], FERR_INVALID);
}

static void test_parse_net_explicit_len(void **state)
{
	(void)state;
	struct netaddr_net n;

	/* Only len bytes are read: a prefix of a longer buffer. */
	memset(&n, 0, sizeof(n));
	assert_int_equal(netaddr_parse_net("10.0.0.0/8 trailing", 10, &n), FERR_OK);
	expect_net(&n, AF_INET, "10.0.0.0", 8);
	assert_int_equal(netaddr_parse_net("128.0.0.0/16", 11, &n), FERR_OK);
	expect_net(&n, AF_INET, "128.0.0.0", 1);
	assert_int_equal(netaddr_parse_net("10.0.0.0/16", 10, &n), FERR_RANGE); /* "10.0.0.0/1" */
	assert_int_equal(netaddr_parse_net("192.168.1.5/24", 11, &n), FERR_OK);
	expect_net(&n, AF_INET, "192.168.1.5", 32);
	assert_int_equal(netaddr_parse_net("fd00::/8,10.0.0.0/8", 8, &n), FERR_OK);
	expect_net(&n, AF_INET6, "fd00::", 8);
	/* The cut leaves "1.2.3.0/": the prefix is missing, whatever follows. */
	memset(&n, 0xa5, sizeof(n));
	assert_int_equal(netaddr_parse_net("1.2.3.0/24", 8, &n), FERR_INVALID);
	assert_true(poisoned(&n));
	assert_int_equal(netaddr_parse_net("1.2.3.0/24", 0, &n), FERR_INVALID);
	assert_true(poisoned(&n));

	/* An embedded NUL is malformed, in the address or in the prefix. */
	static const char nul_addr[] = "10.0.0.0\0/8";
	static const char nul_prefix[] = "10.0.0.0/8\0";
	static const char nul_mid[] = "10.0\0.0.0/8";
	assert_int_equal(netaddr_parse_net(nul_addr, sizeof(nul_addr) - 1, &n), FERR_INVALID);
	assert_int_equal(netaddr_parse_net(nul_prefix, sizeof(nul_prefix) - 1, &n), FERR_INVALID);
	assert_int_equal(netaddr_parse_net(nul_mid, sizeof(nul_mid) - 1, &n), FERR_INVALID);
	assert_true(poisoned(&n));
	/* The same bytes without the NUL parse. */
	assert_int_equal(netaddr_parse_net(nul_prefix, sizeof(nul_prefix) - 2, &n), FERR_OK);
	expect_net(&n, AF_INET, "10.0.0.0", 8);
}

static void test_parse_addr(void **state)
{
	(void)state;
	struct sockaddr_storage a;
	char s[INET6_ADDRSTRLEN];

	a = addr("203.0.113.7");
	assert_int_equal(a.ss_family, AF_INET);
	assert_int_equal(((struct sockaddr_in *)&a)->sin_port, 0);
	assert_non_null(inet_ntop(AF_INET, &((struct sockaddr_in *)&a)->sin_addr, s, sizeof(s)));
	assert_string_equal(s, "203.0.113.7");

	a = addr("::ffff:10.1.2.3");
	assert_int_equal(a.ss_family, AF_INET6);
	assert_int_equal(((struct sockaddr_in6 *)&a)->sin6_port, 0);
	assert_non_null(inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a)->sin6_addr, s, sizeof(s)));
	assert_string_equal(s, "::ffff:10.1.2.3");

	/* Only len bytes count. */
	assert_int_equal(netaddr_parse_addr("10.1.2.3:21", 8, &a), FERR_OK);
	assert_int_equal(a.ss_family, AF_INET);
	assert_non_null(inet_ntop(AF_INET, &((struct sockaddr_in *)&a)->sin_addr, s, sizeof(s)));
	assert_string_equal(s, "10.1.2.3");

	const char *bad[] = { "", "10.0.0.0/8", "::/0", "1.2.3", " 1.2.3.4", "1.2.3.4 ",
			      "example.com", "fe80::1%1", "::1::", "1.2.3.4:21" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&a, 0xa5, sizeof(a));
		int rc = netaddr_parse_addr(bad[i], strlen(bad[i]), &a);
		if (rc != FERR_INVALID)
			fail_msg("address '%s' gave %d", bad[i], rc);
		assert_int_equal(((unsigned char *)&a)[0], 0xa5);
	}
	static const char nul[] = "1.2.3.4\0";
	assert_int_equal(netaddr_parse_addr(nul, sizeof(nul) - 1, &a), FERR_INVALID);
}

static void test_in_net_edges(void **state)
{
	(void)state;
	/* A /10: the second octet's top two bits. */
	assert_false(in("100.63.255.255", "100.64.0.0/10"));
	assert_true(in("100.64.0.0", "100.64.0.0/10"));
	assert_true(in("100.100.1.1", "100.64.0.0/10"));
	assert_true(in("100.127.255.255", "100.64.0.0/10"));
	assert_false(in("100.128.0.0", "100.64.0.0/10"));
	/* A /12. */
	assert_false(in("172.15.255.255", "172.16.0.0/12"));
	assert_true(in("172.16.0.0", "172.16.0.0/12"));
	assert_true(in("172.31.255.255", "172.16.0.0/12"));
	assert_false(in("172.32.0.0", "172.16.0.0/12"));
	/* A /7 in IPv6. */
	assert_false(in("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fc00::/7"));
	assert_true(in("fc00::", "fc00::/7"));
	assert_true(in("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fc00::/7"));
	assert_false(in("fe00::", "fc00::/7"));
	/* A /7 in IPv4. */
	assert_false(in("1.255.255.255", "2.0.0.0/7"));
	assert_true(in("2.0.0.0", "2.0.0.0/7"));
	assert_true(in("3.255.255.255", "2.0.0.0/7"));
	assert_false(in("4.0.0.0", "2.0.0.0/7"));
	/* Whole bytes, and single hosts. */
	assert_true(in("2001:db8:ffff:ffff::1", "2001:db8::/32"));
	assert_false(in("2001:db9::", "2001:db8::/32"));
	assert_true(in("192.0.2.1", "192.0.2.1"));
	assert_false(in("192.0.2.2", "192.0.2.1/32"));
	assert_true(in("2001:db8::1", "2001:db8::1/128"));
	assert_false(in("2001:db8::", "2001:db8::1/128"));
	assert_true(in("2001:db8::8001", "2001:db8::8000/113"));
	assert_false(in("2001:db8::7fff", "2001:db8::8000/113"));
}

static void test_in_net_mapped_and_families(void **state)
{
	(void)state;
	/* A mapped client address is the IPv4 address it carries. */
	assert_true(in("::ffff:10.1.2.3", "10.0.0.0/8"));
	assert_true(in("::ffff:100.64.0.1", "100.64.0.0/10"));
	assert_false(in("::ffff:100.128.0.1", "100.64.0.0/10"));
	assert_true(in("::ffff:192.0.2.1", "192.0.2.1"));
	assert_true(in("::ffff:0.0.0.0", "0.0.0.0/0"));
	/* Families never cross, /0 included. */
	assert_false(in("::ffff:10.1.2.3", "::/0"));
	assert_false(in("10.1.2.3", "::/0"));
	assert_false(in("::1", "0.0.0.0/0"));
	assert_false(in("::a01:203", "10.0.0.0/8")); /* IPv4-compatible is not mapped */
	assert_false(in("::", "0.0.0.0/0"));
	/* /0 matches all of its family. */
	assert_true(in("0.0.0.0", "0.0.0.0/0"));
	assert_true(in("255.255.255.255", "0.0.0.0/0"));
	assert_true(in("::", "::/0"));
	assert_true(in("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0"));
	assert_true(in("::1", "::/0"));

	/* Something that is neither family is in nothing. */
	struct sockaddr_storage u;
	struct netaddr_net any4 = net("0.0.0.0/0"), any6 = net("::/0");
	memset(&u, 0, sizeof(u));
	u.ss_family = AF_UNIX;
	assert_false(netaddr_in_net(&u, &any4));
	assert_false(netaddr_in_net(&u, &any6));
	/* A hand-made network with an impossible prefix matches nothing. */
	struct sockaddr_storage a = addr("10.0.0.1");
	any4.prefix = 33;
	assert_false(netaddr_in_net(&a, &any4));
}

struct class_case {
	const char *addr;
	enum netaddr_class cls;
};

static void check_classes(const struct class_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage a = addr(cases[i].addr);
		enum netaddr_class got = netaddr_classify(&a);
		if (got != cases[i].cls)
			fail_msg("'%s' is %s, not %s", cases[i].addr, netaddr_class_name(got),
				 netaddr_class_name(cases[i].cls));
	}
}

static void test_classify_v4(void **state)
{
	(void)state;
	static const struct class_case cases[] = {
		{ "0.0.0.0", NETADDR_UNSPECIFIED },
		{ "0.255.255.255", NETADDR_UNSPECIFIED },
		{ "1.0.0.0", NETADDR_PUBLIC },
		{ "8.8.8.8", NETADDR_PUBLIC },
		{ "9.255.255.255", NETADDR_PUBLIC },
		{ "10.0.0.0", NETADDR_PRIVATE },
		{ "10.255.255.255", NETADDR_PRIVATE },
		{ "11.0.0.0", NETADDR_PUBLIC },
		{ "100.63.255.255", NETADDR_PUBLIC },
		{ "100.64.0.0", NETADDR_CGNAT },
		{ "100.127.255.255", NETADDR_CGNAT },
		{ "100.128.0.0", NETADDR_PUBLIC },
		{ "126.255.255.255", NETADDR_PUBLIC },
		{ "127.0.0.1", NETADDR_LOOPBACK },
		{ "127.255.255.255", NETADDR_LOOPBACK },
		{ "128.0.0.0", NETADDR_PUBLIC },
		{ "169.253.255.255", NETADDR_PUBLIC },
		{ "169.254.0.0", NETADDR_LINK_LOCAL },
		{ "169.254.255.255", NETADDR_LINK_LOCAL },
		{ "169.255.0.0", NETADDR_PUBLIC },
		{ "172.15.255.255", NETADDR_PUBLIC },
		{ "172.16.0.0", NETADDR_PRIVATE },
		{ "172.31.255.255", NETADDR_PRIVATE },
		{ "172.32.0.0", NETADDR_PUBLIC },
		{ "192.0.0.0", NETADDR_RESERVED },
		{ "192.0.0.255", NETADDR_RESERVED },
		{ "192.0.1.255", NETADDR_PUBLIC },
		{ "192.0.2.0", NETADDR_DOCUMENTATION },
		{ "192.0.2.255", NETADDR_DOCUMENTATION },
		{ "192.0.3.0", NETADDR_PUBLIC },
		{ "192.167.255.255", NETADDR_PUBLIC },
		{ "192.168.0.0", NETADDR_PRIVATE },
		{ "192.168.255.255", NETADDR_PRIVATE },
		{ "192.169.0.0", NETADDR_PUBLIC },
		{ "198.17.255.255", NETADDR_PUBLIC },
		{ "198.18.0.0", NETADDR_BENCHMARK },
		{ "198.19.255.255", NETADDR_BENCHMARK },
		{ "198.20.0.0", NETADDR_PUBLIC },
		{ "198.51.99.255", NETADDR_PUBLIC },
		{ "198.51.100.0", NETADDR_DOCUMENTATION },
		{ "198.51.100.255", NETADDR_DOCUMENTATION },
		{ "198.51.101.0", NETADDR_PUBLIC },
		{ "203.0.112.255", NETADDR_PUBLIC },
		{ "203.0.113.0", NETADDR_DOCUMENTATION },
		{ "203.0.113.255", NETADDR_DOCUMENTATION },
		{ "203.0.114.0", NETADDR_PUBLIC },
		{ "223.255.255.255", NETADDR_PUBLIC },
		{ "224.0.0.0", NETADDR_MULTICAST },
		{ "239.255.255.255", NETADDR_MULTICAST },
		{ "240.0.0.0", NETADDR_RESERVED },
		{ "255.255.255.254", NETADDR_RESERVED },
		{ "255.255.255.255", NETADDR_RESERVED },
	};
	check_classes(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_classify_v6(void **state)
{
	(void)state;
	static const struct class_case cases[] = {
		{ "::", NETADDR_UNSPECIFIED },
		{ "::1", NETADDR_LOOPBACK },
		{ "::2", NETADDR_RESERVED },
		{ "::10.1.2.3", NETADDR_RESERVED }, /* IPv4-compatible, deprecated */
		{ "100::1", NETADDR_RESERVED },
		{ "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", NETADDR_PUBLIC },
		{ "2001:db8::", NETADDR_DOCUMENTATION },
		{ "2001:db8::1", NETADDR_DOCUMENTATION },
		{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", NETADDR_DOCUMENTATION },
		{ "2001:db9::", NETADDR_PUBLIC },
		{ "2001:2::1", NETADDR_BENCHMARK },
		{ "2001:2:0:ffff::1", NETADDR_BENCHMARK },
		{ "2001:2:1::", NETADDR_PUBLIC },
		{ "2606:4700::1", NETADDR_PUBLIC },
		{ "2a00:1450:4001::200e", NETADDR_PUBLIC },
		{ "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETADDR_PUBLIC },
		{ "fc00::", NETADDR_PRIVATE },
		{ "fc00::1", NETADDR_PRIVATE },
		{ "fd12:3456:789a::1", NETADDR_PRIVATE },
		{ "fdff::", NETADDR_PRIVATE },
		{ "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETADDR_PRIVATE },
		{ "fe80::", NETADDR_LINK_LOCAL },
		{ "fe80::1", NETADDR_LINK_LOCAL },
		{ "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETADDR_LINK_LOCAL },
		{ "fec0::1", NETADDR_RESERVED },
		{ "ff00::", NETADDR_MULTICAST },
		{ "ff02::1", NETADDR_MULTICAST },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NETADDR_MULTICAST },
	};
	check_classes(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_classify_mapped(void **state)
{
	(void)state;
	/* IPv4-mapped addresses take the class of the IPv4 address they carry. */
	static const struct class_case cases[] = {
		{ "::ffff:10.1.2.3", NETADDR_PRIVATE },
		{ "::ffff:100.64.0.1", NETADDR_CGNAT },
		{ "::ffff:100.128.0.1", NETADDR_PUBLIC },
		{ "::ffff:127.0.0.1", NETADDR_LOOPBACK },
		{ "::ffff:169.254.1.1", NETADDR_LINK_LOCAL },
		{ "::ffff:0.0.0.0", NETADDR_UNSPECIFIED },
		{ "::ffff:192.0.2.1", NETADDR_DOCUMENTATION },
		{ "::ffff:198.18.0.1", NETADDR_BENCHMARK },
		{ "::ffff:224.0.0.1", NETADDR_MULTICAST },
		{ "::ffff:255.255.255.255", NETADDR_RESERVED },
		{ "::ffff:8.8.8.8", NETADDR_PUBLIC },
	};
	check_classes(cases, sizeof(cases) / sizeof(cases[0]));

	/* Neither family: reserved, whatever the bytes. */
	struct sockaddr_storage u;
	memset(&u, 0, sizeof(u));
	u.ss_family = AF_UNIX;
	assert_int_equal(netaddr_classify(&u), NETADDR_RESERVED);

	/* The port is ignored. */
	struct sockaddr_storage a = addr("127.0.0.1");
	((struct sockaddr_in *)&a)->sin_port = htons(21);
	assert_int_equal(netaddr_classify(&a), NETADDR_LOOPBACK);
}

static void test_class_names(void **state)
{
	(void)state;
	assert_string_equal(netaddr_class_name(NETADDR_PUBLIC), "public");
	assert_string_equal(netaddr_class_name(NETADDR_PRIVATE), "private");
	assert_string_equal(netaddr_class_name(NETADDR_CGNAT), "CGNAT");
	assert_string_equal(netaddr_class_name(NETADDR_LOOPBACK), "loopback");
	assert_string_equal(netaddr_class_name(NETADDR_LINK_LOCAL), "link-local");
	assert_string_equal(netaddr_class_name(NETADDR_UNSPECIFIED), "unspecified");
	assert_string_equal(netaddr_class_name(NETADDR_DOCUMENTATION), "documentation");
	assert_string_equal(netaddr_class_name(NETADDR_BENCHMARK), "benchmark");
	assert_string_equal(netaddr_class_name(NETADDR_MULTICAST), "multicast");
	assert_string_equal(netaddr_class_name(NETADDR_RESERVED), "reserved");
	assert_string_equal(netaddr_class_name((enum netaddr_class)(NETADDR_RESERVED + 1)),
			    "unknown");
}

static void test_class_internal(void **state)
{
	(void)state;
	assert_false(netaddr_class_is_internal(NETADDR_PUBLIC));
	assert_true(netaddr_class_is_internal(NETADDR_PRIVATE));
	assert_true(netaddr_class_is_internal(NETADDR_CGNAT));
	assert_true(netaddr_class_is_internal(NETADDR_LOOPBACK));
	assert_true(netaddr_class_is_internal(NETADDR_LINK_LOCAL));
	assert_true(netaddr_class_is_internal(NETADDR_UNSPECIFIED));
	assert_false(netaddr_class_is_internal(NETADDR_DOCUMENTATION));
	assert_false(netaddr_class_is_internal(NETADDR_BENCHMARK));
	assert_false(netaddr_class_is_internal(NETADDR_MULTICAST));
	assert_false(netaddr_class_is_internal(NETADDR_RESERVED));

	/* End to end, as the start-up checks use it. */
	struct sockaddr_storage a = addr("::ffff:100.64.1.2");
	assert_true(netaddr_class_is_internal(netaddr_classify(&a)));
	a = addr("2606:4700::1");
	assert_false(netaddr_class_is_internal(netaddr_classify(&a)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_net_valid),
		cmocka_unit_test(test_parse_net_bare_and_zero),
		cmocka_unit_test(test_parse_net_range),
		cmocka_unit_test(test_parse_net_malformed),
		cmocka_unit_test(test_parse_net_explicit_len),
		cmocka_unit_test(test_parse_addr),
		cmocka_unit_test(test_in_net_edges),
		cmocka_unit_test(test_in_net_mapped_and_families),
		cmocka_unit_test(test_classify_v4),
		cmocka_unit_test(test_classify_v6),
		cmocka_unit_test(test_classify_mapped),
		cmocka_unit_test(test_class_names),
		cmocka_unit_test(test_class_internal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
