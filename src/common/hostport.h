/*
 * hostport.h: the codecs of FTP's data-connection commands and replies, for both ends:
 * PORT and PASV (RFC 959: "h1,h2,h3,h4,p1,p2"), EPRT and EPSV (RFC 2428), plus the
 * ADDRESS:PORT and MIN-MAX forms of the configuration.  Pure: no I/O.
 */
#ifndef FERRY_COMMON_HOSTPORT_H
#define FERRY_COMMON_HOSTPORT_H

#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "buf.h"

/*
 * PORT argument "h1,h2,h3,h4,p1,p2" (each 0..255, decimal, one to three digits, no spaces
 * or signs) -> IPv4 address and port.  Any port 0..65535 is accepted: refusing low ports
 * is the caller's policy.  Returns 0 or FERR_INVALID.
 */
int hostport_parse_port(const char *arg, struct sockaddr_storage *out);
/*
 * EPRT argument "<d><af><d><addr><d><port><d>" (RFC 2428 s.2): the delimiter is any
 * printable ASCII byte 33..126; af 1 = IPv4, 2 = IPv6; port 1..65535.
 * Returns 0, FERR_INVALID, or FERR_RANGE for an unknown address family (the caller answers
 * 522 and lists the families it supports).
 */
int hostport_parse_eprt(const char *arg, struct sockaddr_storage *out);

/* "Entering Passive Mode (h1,h2,h3,h4,p1,p2)." for an IPv4 address and port (host order). */
int hostport_format_pasv(struct buf *b, const struct in_addr *addr, uint16_t port);
/* "Entering Extended Passive Mode (|||port|)" */
int hostport_format_epsv(struct buf *b, uint16_t port);
/*
 * Client side: the argument of PORT / EPRT for a local address.  An IPv4-mapped IPv6
 * address is written as IPv4 ("|1|..." for EPRT); PORT of real IPv6 is FERR_INVALID.
 */
int hostport_format_port(struct buf *b, const struct sockaddr_storage *addr);
int hostport_format_eprt(struct buf *b, const struct sockaddr_storage *addr);
/* Client side: find "(h1,...,p2)" (or bare h1,..,p2) in a 227 reply text. */
int hostport_parse_pasv_reply(const char *text, struct sockaddr_storage *out);
/* Client side: find "(|||port|)" (any delimiter) in a 229 reply text. */
int hostport_parse_epsv_reply(const char *text, uint16_t *port);

/*
 * "ADDRESS:PORT", "[IPV6]:PORT", or ":PORT" / "PORT" alone (meaning every address, IPv6
 * dual-stack "::").  Numeric addresses only.  Returns 0 or FERR_INVALID / FERR_RANGE.
 */
int hostport_parse_listen(const char *s, struct sockaddr_storage *out);
/* "MIN-MAX" with 1024 <= MIN <= MAX <= 65535. */
int hostport_parse_range(const char *s, uint16_t *min, uint16_t *max);

/*
 * Helpers over sockaddr_storage (IPv4 and IPv6 only; others give 0 / are left alone).
 * Ports are in host order: these do the byte swapping to and from the network order.
 */
uint16_t hostport_get_port(const struct sockaddr_storage *ss);
void hostport_set_port(struct sockaddr_storage *ss, uint16_t port);
socklen_t hostport_len(const struct sockaddr_storage *ss);
/*
 * Whether two addresses are the same host, ports ignored; an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) equals the IPv4 address a.b.c.d.
 */
int hostport_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/* If ss is IPv4-mapped IPv6, rewrite it as plain IPv4 (port kept). */
void hostport_unmap(struct sockaddr_storage *ss);
/* "a.b.c.d" or "::1" (no port) into out; always NUL-terminated. */
void hostport_ntop(const struct sockaddr_storage *ss, char *out, size_t outsz);

/*
 * An IPv4 or IPv6 address and port in the 28 bytes they need, where a sockaddr_storage
 * takes 128: what records kept for a connection's whole life hold (a session's two
 * addresses, the master's record of each connection), which at 10,000 sessions is memory
 * that counts.  Anything else is kept as family AF_UNSPEC.
 */
struct hostport_addr {
	union {
		sa_family_t family;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	};
};

void hostport_addr_set(struct hostport_addr *a, const struct sockaddr_storage *ss);
struct sockaddr_storage hostport_addr_get(const struct hostport_addr *a);

#endif
