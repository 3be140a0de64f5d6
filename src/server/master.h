/*
 * master.h: the master process: binds the listeners, drops privileges, starts and
 * supervises the workers, and decides the global limits for every new connection.
 */
#ifndef FERRY_SERVER_MASTER_H
#define FERRY_SERVER_MASTER_H

#include "server/config.h"

/* Run the server until SIGTERM.  argv is kept for reloads (SIGHUP).  Returns exit status. */
int master_main(struct config *cfg, int argc, char **argv);

#endif
