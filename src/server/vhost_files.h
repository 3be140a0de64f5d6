/*
 * vhost_files.h: the files of the [host] sections (config.h struct vhost), as workers get
 * them.  The master opens each host's anonymous root and snapshots its users file, as it
 * does the default host's (with the privileges it starts with, at SIGHUP as `user` with
 * CAP_DAC_READ_SEARCH), and passes the descriptors on the worker's command line.  Their
 * certificates travel in the TLS snapshot (tls_files.h).
 */
#ifndef FERRY_SERVER_VHOST_FILES_H
#define FERRY_SERVER_VHOST_FILES_H

#include <stddef.h>

#include "server/config.h"

struct vhost_fds {
	int root[CONFIG_MAX_VHOSTS];  /* O_PATH anonymous root of cfg->vhosts[i], or -1 */
	int users[CONFIG_MAX_VHOSTS]; /* sealed snapshot of its users file, or -1 */
	unsigned n;                   /* cfg->n_vhosts */
};

/* No hosts, no descriptors. */
void vhost_fds_init(struct vhost_fds *v);
/*
 * Open the roots and snapshot the users files of cfg's hosts; each users file must parse
 * (its errors go to stderr as FILE:LINE).  Returns 0, or -1 with a message in err and v
 * left empty.
 */
int vhost_fds_open(struct vhost_fds *v, const struct config *cfg, char *err, size_t errsz);
/* Close what v holds; v is empty again. */
void vhost_fds_close(struct vhost_fds *v);
/* The worker's argument: "ROOT:USERS" a host, comma-separated; "-" when none.  0 or -1. */
int vhost_fds_format(const struct vhost_fds *v, char *out, size_t outsz);
/* The other way round (descriptor numbers, -1 where unused).  0, or -1 when malformed. */
int vhost_fds_parse(const char *arg, struct vhost_fds *v);
/* Between fork and exec: the worker inherits them (only async-signal-safe calls). */
void vhost_fds_inherit(const struct vhost_fds *v);

#endif
