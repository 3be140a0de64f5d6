/*
 * pasv_address.c: the address of a PASV reply.  See pasv_address.h.
 */
#include "server/pasv_address.h"

#include <arpa/inet.h>

struct in_addr pasv_announce(const struct config *cfg, const struct sockaddr_storage *peer,
			     const struct sockaddr_storage *local, const struct in_addr *resolved)
{
	const struct pasv_map *best = NULL;
	for (unsigned i = 0; i < cfg->n_pasv_map; i++) {
		const struct pasv_map *m = &cfg->pasv_map[i];
		if (netaddr_in_net(peer, &m->net) && (best == NULL || m->net.prefix > best->net.prefix))
			best = m;
	}
	if (best != NULL)
		return best->announce;
	struct in_addr a;
	if (cfg->pasv_address[0] != '\0') {
		if (inet_pton(AF_INET, cfg->pasv_address, &a) == 1)
			return a;
		if (resolved != NULL)
			return *resolved;
	}
	return ((const struct sockaddr_in *)local)->sin_addr;
}
