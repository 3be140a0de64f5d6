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
	IPC_PASV_OPEN,        /* worker -> master: wait for a data connection (see below) */
	IPC_PASV_PORT,        /* master -> worker: the port waited on, or an error */
	IPC_PASV_CLOSE,       /* worker -> master: the session waits no more */
	IPC_DATA_CONN,        /* master -> worker: the awaited data connection (fd) */
	IPC_LOGIN_FAILED,     /* worker -> master: a session's login failed (see below) */
	IPC_LOGIN_DELAY,      /* master -> worker: how long that failure waits for its 530 */
	IPC_LOGIN_OK,         /* worker -> master: a session logged in */
	IPC_CLOSE_UNAUTH,     /* master -> worker: close a session that has not logged in */
};

/*
 * Logins are throttled per client address by the master (throttle.h), which takes the
 * address from its own record of the session, never from the worker.  IPC_LOGIN_FAILED:
 * id; the session reads no command until IPC_LOGIN_DELAY: id, seq = milliseconds to wait
 * before the 530.  IPC_LOGIN_OK: id.  IPC_CLOSE_UNAUTH: id, err = EACCES when the
 * session's address has just been banned, EUSERS when it is the longest waiting of more
 * than max_unauthenticated sessions; it gets 421, unless it has logged in meanwhile.
 */

/*
 * Passive mode goes through the master, which owns the passive listeners so that
 * sessions of different client addresses, in any worker, can share a port.
 * IPC_PASV_OPEN: id, seq, addr = the control connection's local address (where to
 * listen), addr2 = its peer (the only source accepted), port_min/port_max = the range
 * (0: any).  IPC_PASV_PORT: id, seq, err or port, and addr2 = the current address of a
 * pasv_address host name (AF_INET) or nothing (family 0).  IPC_PASV_CLOSE: id, seq.
 * IPC_DATA_CONN: id, seq, the connection attached.  seq tells a stale answer (for a PASV
 * the session has since replaced) from the current one.
 */
/* IPC_NEW_SESSION flags */
#define IPC_F_IMPLICIT_TLS 1u /* from a listen_implicit_tls listener: TLS before the greeting */

struct ipc_msg {
	uint32_t type;
	int32_t err;          /* errno for replies, 0 on success */
	uint64_t id;          /* session id */
	uint32_t seq;         /* passive requests: the session's request number */
	uint32_t flags;       /* IPC_NEW_SESSION: IPC_F_* */
	uint16_t port;        /* IPC_PASV_PORT: the port */
	uint16_t port_min, port_max; /* IPC_PASV_OPEN: the range, 0-0 for any */
	unsigned char addr[128];  /* a struct sockaddr_storage: port-20 and passive requests */
	unsigned char addr2[128]; /* a second one, see above */
};

/* Send msg with fd attached (fd < 0: none).  Returns 0 or -errno. */
int ipc_send(int sock, const struct ipc_msg *msg, int fd);
/* Receive one message; *fd gets an attached descriptor or -1.  Returns 0, -errno, or
 * -EPIPE at end of stream. */
int ipc_recv(int sock, struct ipc_msg *msg, int *fd);

#endif
