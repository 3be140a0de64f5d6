/*
 * netaddr.c: CIDR networks and address classes.  See netaddr.h.
 */
#include "common/netaddr.h"

#include <arpa/inet.h>
#include <string.h>

#include "common/err.h"
#include "common/num.h"

/* inet_pton wants a NUL-terminated string; addresses are short. */
#define ADDR_TEXT_MAX 64

int netaddr_parse_addr(const char *s, size_t len, struct sockaddr_storage *out)
{
	char text[ADDR_TEXT_MAX];
	if (len == 0 || len >= sizeof(text) || memchr(s, '\0', len) != NULL)
		return FERR_INVALID;
	memcpy(text, s, len);
	text[len] = '\0';
	struct sockaddr_storage a;
	memset(&a, 0, sizeof(a));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a;
		if (inet_pton(AF_INET6, text, &v6->sin6_addr) != 1)
			return FERR_INVALID;
		v6->sin6_family = AF_INET6;
	} else {
		struct sockaddr_in *v4 = (struct sockaddr_in *)&a;
		if (inet_pton(AF_INET, text, &v4->sin_addr) != 1)
			return FERR_INVALID;
		v4->sin_family = AF_INET;
	}
	*out = a;
	return FERR_OK;
}

/* The address bytes (network order) of an IPv4 or IPv6 address, IPv4-mapped unmapped. */
static const unsigned char *addr_bytes(const struct sockaddr_storage *a, size_t *n)
{
	if (a->ss_family == AF_INET) {
		*n = 4;
		return (const unsigned char *)&((const struct sockaddr_in *)a)->sin_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct in6_addr *ip = &((const struct sockaddr_in6 *)a)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(ip)) {
			*n = 4;
			return ip->s6_addr + 12;
		}
		*n = 16;
		return ip->s6_addr;
	}
	*n = 0;
	return NULL;
}

/* Whether the first prefix bits of p and q agree. */
static bool prefix_equal(const unsigned char *p, const unsigned char *q, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;
	if (memcmp(p, q, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xffu << (8 - rest));
	return (p[whole] & mask) == (q[whole] & mask);
}

int netaddr_parse_net(const char *s, size_t len, struct netaddr_net *out)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash != NULL ? (size_t)(slash - s) : len;
	struct netaddr_net n;
	memset(&n, 0, sizeof(n));
	if (netaddr_parse_addr(s, alen, &n.addr) < 0)
		return FERR_INVALID;
	/* Mapped addresses are matched as IPv4; a network written that way would mislead. */
	size_t nbytes;
	addr_bytes(&n.addr, &nbytes);
	if (n.addr.ss_family == AF_INET6 && nbytes == 4)
		return FERR_INVALID;
	unsigned max = n.addr.ss_family == AF_INET ? 32 : 128;
	n.prefix = max;
	if (slash != NULL) {
		uint64_t v;
		struct slice p = { slash + 1, len - alen - 1 };
		if (p.len == 0 || p.len > 3)
			return FERR_INVALID;
		int rc = num_parse_u64(p, max, &v);
		if (rc < 0)
			return rc == FERR_RANGE ? FERR_RANGE : FERR_INVALID;
		n.prefix = (unsigned)v;
	}
	/* Host bits must be clear: the network is n.addr, exactly. */
	const unsigned char *b = addr_bytes(&n.addr, &nbytes);
	for (unsigned bit = n.prefix; bit < max; bit++) {
		if (b[bit / 8] & (0x80u >> (bit % 8)))
			return FERR_RANGE;
	}
	*out = n;
	return FERR_OK;
}

bool netaddr_in_net(const struct sockaddr_storage *a, const struct netaddr_net *n)
{
	size_t an, nn;
	const unsigned char *ab = addr_bytes(a, &an);
	const unsigned char *nb = addr_bytes(&n->addr, &nn);
	if (ab == NULL || nb == NULL || an != nn || n->prefix > an * 8)
		return false;
	return prefix_equal(ab, nb, n->prefix);
}

struct class_rule {
	unsigned char net[16];
	unsigned prefix;
	enum netaddr_class cls;
};

/* First match wins, so narrower networks come before the wider ones they lie in. */
static const struct class_rule v4_rules[] = {
	{ { 0 }, 8, NETADDR_UNSPECIFIED },
	{ { 10 }, 8, NETADDR_PRIVATE },
	{ { 100, 64 }, 10, NETADDR_CGNAT },
	{ { 127 }, 8, NETADDR_LOOPBACK },
	{ { 169, 254 }, 16, NETADDR_LINK_LOCAL },
	{ { 172, 16 }, 12, NETADDR_PRIVATE },
	{ { 192, 0, 0 }, 24, NETADDR_RESERVED },
	{ { 192, 0, 2 }, 24, NETADDR_DOCUMENTATION },
	{ { 192, 168 }, 16, NETADDR_PRIVATE },
	{ { 198, 18 }, 15, NETADDR_BENCHMARK },
	{ { 198, 51, 100 }, 24, NETADDR_DOCUMENTATION },
	{ { 203, 0, 113 }, 24, NETADDR_DOCUMENTATION },
	{ { 224 }, 4, NETADDR_MULTICAST },
	{ { 240 }, 4, NETADDR_RESERVED },
};

static const struct class_rule v6_rules[] = {
	{ { 0 }, 128, NETADDR_UNSPECIFIED },
	{ { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, 128, NETADDR_LOOPBACK },
	{ { 0 }, 96, NETADDR_RESERVED },            /* IPv4-compatible, deprecated */
	{ { 0x01 }, 8, NETADDR_RESERVED },          /* 100::/64 discard and the like */
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32, NETADDR_DOCUMENTATION },
	{ { 0x20, 0x01, 0x00, 0x02, 0x00, 0x00 }, 48, NETADDR_BENCHMARK },
	{ { 0xfc }, 7, NETADDR_PRIVATE },
	{ { 0xfe, 0x80 }, 10, NETADDR_LINK_LOCAL },
	{ { 0xfe, 0xc0 }, 10, NETADDR_RESERVED },   /* site-local, deprecated */
	{ { 0xff }, 8, NETADDR_MULTICAST },
};

static enum netaddr_class classify_bytes(const unsigned char *b, size_t n)
{
	const struct class_rule *rules = n == 4 ? v4_rules : v6_rules;
	size_t count = n == 4 ? sizeof(v4_rules) / sizeof(v4_rules[0])
			      : sizeof(v6_rules) / sizeof(v6_rules[0]);
	for (size_t i = 0; i < count; i++) {
		if (prefix_equal(b, rules[i].net, rules[i].prefix))
			return rules[i].cls;
	}
	return NETADDR_PUBLIC;
}

enum netaddr_class netaddr_classify(const struct sockaddr_storage *a)
{
	size_t n;
	const unsigned char *b = addr_bytes(a, &n);
	if (b == NULL)
		return NETADDR_RESERVED;
	return classify_bytes(b, n);
}

const char *netaddr_class_name(enum netaddr_class c)
{
	switch (c) {
	case NETADDR_PUBLIC:
		return "public";
	case NETADDR_PRIVATE:
		return "private";
	case NETADDR_CGNAT:
		return "CGNAT";
	case NETADDR_LOOPBACK:
		return "loopback";
	case NETADDR_LINK_LOCAL:
		return "link-local";
	case NETADDR_UNSPECIFIED:
		return "unspecified";
	case NETADDR_DOCUMENTATION:
		return "documentation";
	case NETADDR_BENCHMARK:
		return "benchmark";
	case NETADDR_MULTICAST:
		return "multicast";
	case NETADDR_RESERVED:
		return "reserved";
	}
	return "unknown";
}

bool netaddr_class_is_internal(enum netaddr_class c)
{
	return c == NETADDR_PRIVATE || c == NETADDR_CGNAT || c == NETADDR_LOOPBACK ||
	       c == NETADDR_LINK_LOCAL || c == NETADDR_UNSPECIFIED;
}
