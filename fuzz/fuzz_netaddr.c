/*
 * fuzz_netaddr.c: netaddr_parse_net and netaddr_parse_addr on arbitrary bytes, with
 * explicit lengths (never NUL-terminated), and the invariants every accepted network must
 * keep: its prefix is within its family's bound and its host bits are clear; it contains
 * its own first and last address (unless that is IPv4-mapped, which counts as IPv4) and
 * not the address just past it; printing it with
 * inet_ntop and "/%u" parses back to the same network; every shorter prefix of it contains
 * what it contains.  Membership is checked against a bit-by-bit reference, and every
 * address must classify to a class with a name.
 *
 * Input: "NET\nADDR" also tests ADDR against NET; without an LF the whole input is tried
 * as both a network and an address.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The address bytes of a, or NULL for a family that is neither; mapped ones are left as is. */
static unsigned char *raw_bytes(struct sockaddr_storage *a, size_t *n)
{
	if (a->ss_family == AF_INET) {
		*n = 4;
		return (unsigned char *)&((struct sockaddr_in *)a)->sin_addr;
	}
	if (a->ss_family == AF_INET6) {
		*n = 16;
		return ((struct sockaddr_in6 *)a)->sin6_addr.s6_addr;
	}
	*n = 0;
	return NULL;
}

static const unsigned char *craw_bytes(const struct sockaddr_storage *a, size_t *n)
{
	return raw_bytes((struct sockaddr_storage *)a, n);
}

static bool bit_of(const unsigned char *b, unsigned i)
{
	return (b[i / 8] >> (7 - i % 8)) & 1;
}

static void set_bit(unsigned char *b, unsigned i, bool v)
{
	unsigned char m = (unsigned char)(0x80u >> (i % 8));
	b[i / 8] = v ? (unsigned char)(b[i / 8] | m) : (unsigned char)(b[i / 8] & ~m);
}

static bool is_mapped(const struct sockaddr_storage *a)
{
	return a->ss_family == AF_INET6 &&
	       IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

/* The same address in the other form: IPv4 <-> IPv4-mapped IPv6.  False if there is none. */
static bool other_form(const struct sockaddr_storage *a, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (a->ss_family == AF_INET) {
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
		v6->sin6_family = AF_INET6;
		v6->sin6_addr.s6_addr[10] = 0xff;
		v6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(v6->sin6_addr.s6_addr + 12, &((const struct sockaddr_in *)a)->sin_addr, 4);
		return true;
	}
	if (is_mapped(a)) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)out;
		v4->sin_family = AF_INET;
		memcpy(&v4->sin_addr, ((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr + 12, 4);
		return true;
	}
	return false;
}

/* netaddr_in_net written the slow way, one bit at a time. */
static bool ref_in_net(const struct sockaddr_storage *a, const struct netaddr_net *n)
{
	struct sockaddr_storage v4;
	if (is_mapped(a)) {
		other_form(a, &v4);
		a = &v4;
	}
	if (a->ss_family != n->addr.ss_family)
		return false;
	size_t an, nn;
	const unsigned char *ab = craw_bytes(a, &an);
	const unsigned char *nb = craw_bytes(&n->addr, &nn);
	if (ab == NULL || nb == NULL || n->prefix > nn * 8)
		return false;
	for (unsigned i = 0; i < n->prefix; i++) {
		if (bit_of(ab, i) != bit_of(nb, i))
			return false;
	}
	return true;
}

static bool in_net_checked(const struct sockaddr_storage *a, const struct netaddr_net *n)
{
	bool got = netaddr_in_net(a, n);
	if (got != ref_in_net(a, n))
		abort();
	/* Mapped or not, the same address gives the same answer. */
	struct sockaddr_storage o;
	if (other_form(a, &o) && netaddr_in_net(&o, n) != got)
		abort();
	return got;
}

static void check_class(const struct sockaddr_storage *a)
{
	enum netaddr_class c = netaddr_classify(a);
	if (strcmp(netaddr_class_name(c), "unknown") == 0)
		abort();
	(void)netaddr_class_is_internal(c);
	struct sockaddr_storage o;
	if (other_form(a, &o) && netaddr_classify(&o) != c)
		abort();
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	size_t an, bn;
	const unsigned char *ab = craw_bytes(a, &an);
	const unsigned char *bb = craw_bytes(b, &bn);
	return a->ss_family == b->ss_family && ab != NULL && bb != NULL && an == bn &&
	       memcmp(ab, bb, an) == 0;
}

static unsigned family_bits(const struct sockaddr_storage *a)
{
	return a->ss_family == AF_INET ? 32 : 128;
}

/* inet_ntop + "/%u", parsed again with an explicit length (no NUL is read). */
static void round_trip(const struct netaddr_net *n)
{
	char host[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 8];
	size_t an;
	const unsigned char *ab = craw_bytes(&n->addr, &an);
	if (inet_ntop(n->addr.ss_family, ab, host, sizeof(host)) == NULL)
		abort();
	int len = snprintf(text, sizeof(text), "%s/%u", host, n->prefix);
	if (len <= 0 || (size_t)len >= sizeof(text))
		abort();
	struct netaddr_net back;
	if (netaddr_parse_net(text, (size_t)len, &back) != FERR_OK)
		abort();
	if (!same_addr(&back.addr, &n->addr) || back.prefix != n->prefix)
		abort();

	/* The address alone is a host network and an address. */
	struct sockaddr_storage a;
	if (netaddr_parse_net(host, strlen(host), &back) != FERR_OK ||
	    !same_addr(&back.addr, &n->addr) || back.prefix != family_bits(&n->addr))
		abort();
	if (netaddr_parse_addr(host, strlen(host), &a) != FERR_OK || !same_addr(&a, &n->addr))
		abort();
}

/* n cut to its first p bits. */
static struct netaddr_net shorter(const struct netaddr_net *n, unsigned p)
{
	struct netaddr_net m = *n;
	size_t mn;
	unsigned char *mb = raw_bytes(&m.addr, &mn);
	for (unsigned i = p; i < mn * 8; i++)
		set_bit(mb, i, false);
	m.prefix = p;
	return m;
}

/* What a network that parsed must be. */
static void check_net(const struct netaddr_net *n)
{
	if (n->addr.ss_family != AF_INET && n->addr.ss_family != AF_INET6)
		abort();
	if (is_mapped(&n->addr))
		abort();
	unsigned max = family_bits(&n->addr);
	if (n->prefix > max)
		abort();
	size_t an;
	const unsigned char *ab = craw_bytes(&n->addr, &an);
	if (an * 8 != max)
		abort();
	for (unsigned i = n->prefix; i < max; i++) {
		if (bit_of(ab, i))
			abort();
	}
	if (n->addr.ss_family == AF_INET && ((const struct sockaddr_in *)&n->addr)->sin_port != 0)
		abort();
	if (n->addr.ss_family == AF_INET6 &&
	    ((const struct sockaddr_in6 *)&n->addr)->sin6_port != 0)
		abort();

	round_trip(n);
	check_class(&n->addr);

	/* Its first address, its last address, and the one just past its range. */
	if (!in_net_checked(&n->addr, n))
		abort();
	struct sockaddr_storage last = n->addr;
	size_t ln;
	unsigned char *lb = raw_bytes(&last, &ln);
	for (unsigned i = n->prefix; i < max; i++)
		set_bit(lb, i, true);
	/* Except where it is IPv4-mapped (the end of ::/80, say): that is an IPv4 address. */
	if (in_net_checked(&last, n) == is_mapped(&last))
		abort();
	check_class(&last);
	if (n->prefix > 0) {
		struct sockaddr_storage out = n->addr;
		unsigned char *ob = raw_bytes(&out, &ln);
		set_bit(ob, n->prefix - 1, !bit_of(ob, n->prefix - 1));
		if (in_net_checked(&out, n))
			abort();
	}

	/* An address of the other family is never inside, not even for /0. */
	struct sockaddr_storage alien;
	memset(&alien, 0, sizeof(alien));
	alien.ss_family = n->addr.ss_family == AF_INET ? AF_INET6 : AF_INET;
	memcpy(raw_bytes(&alien, &ln), ab, ln < an ? ln : an);
	if (!is_mapped(&alien) && in_net_checked(&alien, n))
		abort();
}

/* Every shorter prefix of n holds a when n does, and is itself a network that parses. */
static void check_shorter(const struct sockaddr_storage *a, const struct netaddr_net *n)
{
	bool inside = in_net_checked(a, n);
	for (unsigned p = 0; p < n->prefix; p++) {
		struct netaddr_net m = shorter(n, p);
		if (!in_net_checked(&n->addr, &m))
			abort();
		if (inside && !in_net_checked(a, &m))
			abort();
	}
	/* Spot-check that the cut networks are valid ones, without making each run O(n^2). */
	struct netaddr_net m = shorter(n, n->prefix / 2);
	check_net(&m);
}

static void check_addr(const struct sockaddr_storage *a)
{
	if (a->ss_family != AF_INET && a->ss_family != AF_INET6)
		abort();
	check_class(a);
	char host[INET6_ADDRSTRLEN];
	size_t an;
	const unsigned char *ab = craw_bytes(a, &an);
	if (inet_ntop(a->ss_family, ab, host, sizeof(host)) == NULL)
		abort();
	struct sockaddr_storage back;
	if (netaddr_parse_addr(host, strlen(host), &back) != FERR_OK || !same_addr(&back, a))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 512)
		return 0;
	/* A heap copy of exactly size bytes, so ASan sees any read past len. */
	char *s = malloc(size > 0 ? size : 1);
	if (s == NULL)
		abort();
	if (size > 0)
		memcpy(s, data, size);

	struct netaddr_net n;
	memset(&n, 0xa5, sizeof(n));
	struct netaddr_net poison = n;
	int rc = netaddr_parse_net(s, size, &n);
	if (rc == FERR_OK) {
		check_net(&n);
		check_shorter(&n.addr, &n);
	} else if (rc != FERR_INVALID && rc != FERR_RANGE) {
		abort();
	} else if (memcmp(&n, &poison, sizeof(n)) != 0) {
		abort(); /* a failure must leave *out alone */
	}

	struct sockaddr_storage a;
	rc = netaddr_parse_addr(s, size, &a);
	if (rc == FERR_OK) {
		check_addr(&a);
		/* An address that is not mapped is also the host network of itself. */
		struct netaddr_net host;
		int nrc = netaddr_parse_net(s, size, &host);
		if (is_mapped(&a) ? nrc != FERR_INVALID
				  : nrc != FERR_OK || !same_addr(&host.addr, &a) ||
					    host.prefix != family_bits(&a))
			abort();
	} else if (rc != FERR_INVALID) {
		abort();
	}

	/* "NET\nADDR": the address against the network and all its shorter prefixes. */
	const char *nl = memchr(s, '\n', size);
	if (nl != NULL) {
		size_t nlen = (size_t)(nl - s);
		struct netaddr_net net;
		struct sockaddr_storage addr;
		if (netaddr_parse_net(s, nlen, &net) == FERR_OK &&
		    netaddr_parse_addr(nl + 1, size - nlen - 1, &addr) == FERR_OK) {
			check_addr(&addr);
			check_shorter(&addr, &net);
		}
	}

	free(s);
	return 0;
}
