/*
 * worker.h: a worker process: one libevent loop serving many sessions, fed with accepted
 * connections by the master.
 */
#ifndef FERRY_SERVER_WORKER_H
#define FERRY_SERVER_WORKER_H

#include <stdint.h>

#include "server/channel.h"
#include "server/data_refusal.h"

struct server;

/* The descriptors a worker inherits from the master (-1 where not used). */
struct worker_fds {
	int master;   /* channel to the master */
	int port20;   /* channel to the port-20 helper */
	int xferlog;  /* transfer log */
	int root;     /* anonymous root, O_PATH */
	int users;    /* sealed snapshot of the users file */
	int tls;      /* sealed snapshot of the TLS files (tls_files.h) */
	int local;    /* channel to the local-users helper (local_auth.h), or -1 */
	const char *hosts; /* the [host] sections' descriptors (vhost_files.h) */
};

/*
 * Entry point of a worker process (ferryd --worker ..., started by the master).  Reads its
 * frozen configuration from the master channel.  Returns the exit status.
 */
int worker_main(const struct worker_fds *fds, int index);

/*
 * Tell the master about session id with a message whose payload is struct msg_session
 * (LOGIN_CHECKING, LOGIN_FAILED, LOGIN_OK, SESSION_END).  Returns 0 or -errno (logged,
 * except -EPIPE: the master is gone and the worker is finishing anyway).
 */
int worker_report(struct server *srv, enum msg_type type, uint64_t id);
/* A data connection of session id was refused (counted by the master; failures logged). */
void worker_report_refusal(struct server *srv, uint64_t id, enum data_refusal why);
/* A session has ended for the master: its counts drop now, even while a 221 still flushes. */
void worker_session_ended(struct server *srv, uint64_t id);
/* A session was freed: exit the loop if draining and idle. */
void worker_session_freed(struct server *srv);

#endif
