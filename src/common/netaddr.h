/*
 * netaddr.h: what an address is and where it belongs.  Networks in CIDR form
 * ("198.51.100.0/24", "fd00::/8"), whether an address lies in one, and the class of an
 * address (private, loopback, CGNAT, ...), which ferryd's start-up checks and NAT mapping
 * and the client's doctor use to tell an address that can be reached from the internet
 * from one that cannot.  Pure: no I/O, no name resolution.
 */
#ifndef FERRY_COMMON_NETADDR_H
#define FERRY_COMMON_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* A network: an address (AF_INET or AF_INET6, port 0) and a prefix length. */
struct netaddr_net {
	struct sockaddr_storage addr;
	unsigned prefix;   /* 0..32 for IPv4, 0..128 for IPv6 */
};

/*
 * "a.b.c.d/LEN", "x:y::/LEN", or a bare address (a /32 or /128 network), numeric only,
 * no spaces.  The host part must be zero ("192.168.1.5/24" is refused: a typo more often
 * than not).  Returns 0, FERR_INVALID (malformed) or FERR_RANGE (prefix too long, or host
 * bits set).
 */
int netaddr_parse_net(const char *s, size_t len, struct netaddr_net *out);
/* A numeric IPv4 or IPv6 address alone (port 0).  Returns 0 or FERR_INVALID. */
int netaddr_parse_addr(const char *s, size_t len, struct sockaddr_storage *out);

/*
 * Whether a lies in n.  An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is treated as the
 * IPv4 address a.b.c.d, on either side.  Different families never match.
 */
bool netaddr_in_net(const struct sockaddr_storage *a, const struct netaddr_net *n);

/* The classes of RFC 6890 that matter for reachability, and a catch-all. */
enum netaddr_class {
	NETADDR_PUBLIC,        /* globally routable, as far as we know */
	NETADDR_PRIVATE,       /* 10/8, 172.16/12, 192.168/16; fc00::/7 (unique local) */
	NETADDR_CGNAT,         /* 100.64/10: carrier-grade NAT, shared address space */
	NETADDR_LOOPBACK,      /* 127/8, ::1 */
	NETADDR_LINK_LOCAL,    /* 169.254/16, fe80::/10 */
	NETADDR_UNSPECIFIED,   /* 0.0.0.0/8, :: */
	NETADDR_DOCUMENTATION, /* 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32 */
	NETADDR_BENCHMARK,     /* 198.18/15 (RFC 2544): test networks, ours included */
	NETADDR_MULTICAST,     /* 224/4, ff00::/8 */
	NETADDR_RESERVED,      /* 240/4 and 255.255.255.255, other special IPv6 space */
};

/* The class of an address (IPv4-mapped IPv6 classified as IPv4).  Port ignored. */
enum netaddr_class netaddr_classify(const struct sockaddr_storage *a);
/* A short lower-case name for logs and reports: "public", "private", "CGNAT", ... */
const char *netaddr_class_name(enum netaddr_class c);
/*
 * Whether the class can only be reached from behind the same NAT or host: private,
 * CGNAT, loopback, link-local, unspecified.  Documentation and benchmark addresses count
 * as reachable (they stand in for public ones in examples and tests).
 */
bool netaddr_class_is_internal(enum netaddr_class c);

#endif
