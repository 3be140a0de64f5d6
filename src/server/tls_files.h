/*
 * tls_files.h: the certificate, key, chain and client CA files, as workers get them.
 *
 * The key is usually readable by root alone, and workers run unprivileged and sandboxed,
 * so the master reads the files (at start-up with the privileges it starts with, at
 * SIGHUP as `user`) into one sealed memory file that workers map read-only, the way the
 * users file reaches them.  The master adds session ticket keys of its own making, so that
 * all workers of one generation share them (tls.h).  Layout: little-endian 64-bit lengths
 * (cert, key, chain, client CA, ticket keys, then cert, key and chain of each of the
 * CONFIG_MAX_VHOSTS [host] sections, empty where unused), then the parts in that order.
 */
#ifndef FERRY_SERVER_TLS_FILES_H
#define FERRY_SERVER_TLS_FILES_H

#include <stddef.h>

#include "common/tls.h"
#include "server/config.h"

/*
 * Snapshot the TLS files of cfg.  Returns the memory file's descriptor, or -errno with
 * the configuration key of the file that failed in *what.
 */
int tls_files_snapshot(const struct config *cfg, const char **what);

/*
 * Snapshot the TLS files and check them (they parse, the key matches): the snapshot's
 * descriptor, or -1 with a message ("tls_key: ...") in err.
 */
int tls_files_load(const struct config *cfg, char *err, size_t errsz);

struct tls_files_map {
	void *base;
	size_t len;
	struct tls_pem pem;   /* points into the mapping */
	struct tls_pem hosts[CONFIG_MAX_VHOSTS]; /* cfg->vhosts[i]'s; cert_len 0: none */
};
/* Map a snapshot.  Returns 0 or -errno (-EINVAL for a malformed one). */
int tls_files_map(int fd, struct tls_files_map *m);
/*
 * The TLS context of a snapshot made from cfg: the default certificate and each host's
 * (tls_server_add_host).  NULL with a reason in err ("host NAME: ..." for a host's).
 */
struct tls_ctx *tls_files_context(const struct tls_files_map *m, const struct config *cfg,
				  char *err, size_t errsz);
/* Unmap (wiping is the kernel's business: the pages are the memory file's). */
void tls_files_unmap(struct tls_files_map *m);

#endif
