/*
 * resolver.h: a host name resolved now and again, off the master's event loop.
 *
 * pasv_address may name a host whose address changes (a dynamic DNS name for a home or
 * office connection).  The first resolution happens at start-up, where a name that does
 * not resolve is an error; after that a thread resolves it every refresh seconds, so a
 * slow DNS server never stalls the master, and the loop learns the result through a
 * pipe.  A failed resolution keeps the last address.
 */
#ifndef FERRY_SERVER_RESOLVER_H
#define FERRY_SERVER_RESOLVER_H

#include <stdbool.h>
#include <netinet/in.h>

#include <event2/event.h>

struct resolver;

/*
 * Resolve name (an IPv4 address for it) now, then every refresh seconds (0: never
 * again).  Returns NULL, with the reason logged, when it does not resolve now.
 */
struct resolver *resolver_new(struct event_base *base, const char *name, unsigned refresh);
/* The name's current address. */
struct in_addr resolver_address(const struct resolver *r);
/* The name, as given. */
const char *resolver_name(const struct resolver *r);
/* Stops the thread (waiting for a resolution under way) and frees. */
void resolver_free(struct resolver *r);

#endif
