/*
 * worker.h: a worker process: one libevent loop serving many sessions, fed with accepted
 * connections by the master.
 */
#ifndef FERRY_SERVER_WORKER_H
#define FERRY_SERVER_WORKER_H

#include <stdint.h>

struct server;
struct ipc_msg;

/* The descriptors a worker inherits from the master (-1 where not used). */
struct worker_fds {
	int master;   /* channel to the master */
	int port20;   /* channel to the port-20 helper */
	int xferlog;  /* transfer log */
	int root;     /* anonymous root, O_PATH */
	int users;    /* sealed snapshot of the users file */
	int tls;      /* sealed snapshot of the TLS files (tls_files.h) */
};

/*
 * Entry point of a worker process (ferryd --worker ..., started by the master).  Reads its
 * frozen configuration from the master channel.  Returns the exit status.
 */
int worker_main(const struct worker_fds *fds, int index);

/* Send a message to the master (fd attached if >= 0).  Returns 0 or -errno, logged. */
int worker_send(struct server *srv, const struct ipc_msg *m, int fd);
/* A session ended: tell the master, and exit the loop if draining and idle. */
void worker_session_ended(struct server *srv, uint64_t id);

#endif
