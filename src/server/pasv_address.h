/*
 * pasv_address.h: which IPv4 address a PASV reply announces.
 *
 * Behind NAT the control connection's local address is not the one clients must
 * connect to.  In order: a pasv_address_map network holding the client (the longest
 * prefix wins), so LAN clients get the inside address; pasv_address, numeric or the
 * current address of its host name; the control connection's local address.
 */
#ifndef FERRY_SERVER_PASV_ADDRESS_H
#define FERRY_SERVER_PASV_ADDRESS_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "server/config.h"

/*
 * peer and local are the control connection's addresses (local is IPv4: PASV is refused
 * otherwise); resolved is the master's current address for a pasv_address host name, or
 * NULL when there is none.
 */
struct in_addr pasv_announce(const struct config *cfg, const struct sockaddr_storage *peer,
			     const struct sockaddr_storage *local, const struct in_addr *resolved);

#endif
