/*
 * worker.h: a worker process: one libevent loop serving many sessions, fed with accepted
 * connections by the master.
 */
#ifndef FERRY_SERVER_WORKER_H
#define FERRY_SERVER_WORKER_H

#include <stdint.h>

struct server;

/*
 * Entry point of a worker process (ferryd --worker FD INDEX PORT20FD XFERLOGFD ROOTFD, started by
 * the master).  Reads its frozen configuration from the master channel.  Returns the exit
 * status.
 */
int worker_main(int master_fd, int index, int port20_fd, int xferlog_fd, int root_fd);

/* A session ended: tell the master, and exit the loop if draining and idle. */
void worker_session_ended(struct server *srv, uint64_t id);

#endif
