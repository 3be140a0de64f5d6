/*
 * ipc.h: messages between ferryd's processes over SOCK_SEQPACKET socketpairs, with a file
 * descriptor attached where one is handed over (SCM_RIGHTS).  Each message is one fixed
 * struct, so a short or oversized read is a protocol error, never a partial parse.
 */
#ifndef FERRY_SERVER_IPC_H
#define FERRY_SERVER_IPC_H

#include <stddef.h>
#include <stdint.h>

enum ipc_type {
	IPC_NEW_SESSION = 1,  /* master -> worker: an accepted control connection (fd) */
	IPC_SESSION_END,      /* worker -> master: a session ended */
	IPC_DRAIN,            /* master -> worker: take no more sessions, exit when idle */
	IPC_SHUTDOWN,         /* master -> worker: SIGTERM semantics */
	IPC_PORT20_CHANNEL,   /* master -> port-20 helper: a new worker's channel (fd) */
	IPC_PORT20_REQUEST,   /* worker -> helper: a socket bound to port 20, please */
	IPC_PORT20_REPLY,     /* helper -> worker: the socket (fd), or an error */
};

struct ipc_msg {
	uint32_t type;
	int32_t err;          /* errno for replies, 0 on success */
	uint64_t id;          /* session id */
	unsigned char addr[128]; /* a struct sockaddr_storage, for port-20 requests */
};

/* Send msg with fd attached (fd < 0: none).  Returns 0 or -errno. */
int ipc_send(int sock, const struct ipc_msg *msg, int fd);
/* Receive one message; *fd gets an attached descriptor or -1.  Returns 0, -errno, or
 * -EPIPE at end of stream. */
int ipc_recv(int sock, struct ipc_msg *msg, int *fd);

#endif
