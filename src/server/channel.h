/*
 * channel.h: the typed channel between ferryd's processes (master, workers, port-20
 * helper), after OpenSSH's monitor: every message has one payload struct and one row in
 * messages.def saying who receives it, whether a descriptor comes with it, how urgent it
 * is and in which states it is accepted.  Senders are typed functions generated from that
 * table; a receiver gets typed handler calls, after the table's checks.  An unknown,
 * malformed or unexpected message is a protocol error, reported to the owner, never acted
 * on.
 *
 * A channel never drops a message silently.  Sends go to the socket at once when they can,
 * else into a queue in user space that is flushed when the socket is writable.  The queue
 * is bounded: a MAY message (a new request) is refused with -ENOBUFS at CHANNEL_SOFT_LIMIT
 * queued messages, and the sender answers its client accordingly; at CHANNEL_HARD_LIMIT,
 * or when nothing could be written for CHANNEL_STALL_SECONDS, the peer has stopped reading
 * and the owner's on_fail is called once, to end that peer explicitly.
 *
 * Wire format: SOCK_SEQPACKET, one message a packet: struct msg_hdr then the payload,
 * whose length must equal the type's payload size.  Both ends are the same binary
 * (workers are exec'd from /proc/self/exe), so payloads are plain structs.
 */
#ifndef FERRY_SERVER_CHANNEL_H
#define FERRY_SERVER_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "server/fs_proxy.h"
#include "server/user_settings.h"

struct event_base;

/* Receiving roles (messages.def). */
enum msg_role { TO_MASTER = 1, TO_WORKER, TO_PORT20, TO_LOCAL, TO_FILES };
enum msg_fd { FD_NONE, FD_REQUIRED, FD_OPTIONAL };
enum msg_prio { MAY, MUST };
/* Channel states, set by the owner; messages.def says which each message needs. */
enum channel_state {
	CS_RUN = 1 << 0,   /* normal work */
	CS_DRAIN = 1 << 1, /* worker: told to drain (no NEW_SESSION any more) */
	CS_SYNC = 1 << 2,  /* master: between a worker's SYNC_BEGIN and SYNC_END */
};

#define CHANNEL_SOFT_LIMIT 4096u   /* queued messages before MAY messages are refused */
#define CHANNEL_HARD_LIMIT 65536u  /* queued messages before the peer counts as stuck */
#define CHANNEL_STALL_SECONDS 30   /* no progress on a non-empty queue: stuck */
#define MSG_SYNC_IDS_MAX 64        /* session ids in one SYNC_IDS */

/* ---- payloads ---- */

struct msg_empty {
	uint8_t unused;
};

struct msg_session {
	uint64_t id;
};

#define MSG_F_IMPLICIT_TLS 1u /* from a listen_implicit_tls listener: TLS before the greeting */
struct msg_new_session {
	uint64_t id;
	uint32_t flags;              /* MSG_F_* */
	uint32_t reserved;           /* 0 */
};

/*
 * Passive mode goes through the master, which owns the passive listeners so that sessions
 * of different client addresses, in any worker, can share a port.  seq numbers a session's
 * requests, so a stale answer (for a PASV since replaced) is told from the current one.
 */
struct msg_pasv_open {
	uint64_t id;
	uint32_t seq;
	uint16_t port_min, port_max;     /* the range, 0-0 for any */
	struct sockaddr_storage local;   /* the control connection's local address: listen here */
	struct sockaddr_storage peer;    /* its peer: the only source accepted */
};

struct msg_pasv_port {
	uint64_t id;
	uint32_t seq;
	int32_t err;                     /* errno, or 0 with port set */
	uint16_t port;
	uint16_t reserved[3];            /* 0 */
	struct sockaddr_storage resolved; /* a pasv_address host name's address, or family 0 */
};

/* PASV_CLOSE (the session waits no more) and DATA_CONN (the awaited connection, as fd). */
struct msg_pasv_ref {
	uint64_t id;
	uint32_t seq;
	uint32_t reserved;               /* 0 */
};

/*
 * Logins are throttled per client address by the master (throttle.h), which takes the
 * address from its own record of the session, never from the worker.  LOGIN_CHECKING: a
 * password check began (the session is not idle: max_unauthenticated spares it).
 * LOGIN_FAILED: the session reads no command until LOGIN_DELAY says how long its 530
 * waits.  CLOSE_UNAUTH: reason EACCES when its address was just banned, EUSERS when it is
 * the longest idle of more than max_unauthenticated sessions; 421 unless it logged in.
 */
struct msg_login_delay {
	uint64_t id;
	uint32_t delay_ms;
	uint32_t reserved;               /* 0 */
};

struct msg_close_unauth {
	uint64_t id;
	int32_t reason;
	uint32_t reserved;               /* 0 */
};

/*
 * Users with limits that span sessions (user_settings.h: max_sessions, user_rate_*): the
 * sessions of one user may be in any worker, so the master counts them.  USER_LOGIN takes
 * the place of LOGIN_OK for such a user, once the password has been checked: the session
 * reads no command until USER_ADMIT answers, error 0 (logged in: it counts) or EUSERS
 * (max_sessions reached: 530, not logged in).  USER_SHARE then tells every worker holding
 * sessions of the user its part of the user's rates: the rate times its sessions of the
 * user over all of them.  Names are NUL-terminated.
 */
#define USER_KEY_MAX 320 /* a user's name, or "HOST:name" for a [host] users file's user */
struct msg_user_login {
	uint64_t id;
	char name[USER_KEY_MAX];
	uint32_t max_sessions;           /* 0: none */
	uint32_t rate_down;              /* bytes/s across the user's sessions; 0: none */
	uint32_t rate_up;
	uint32_t reserved;               /* 0 */
};

struct msg_user_admit {
	uint64_t id;
	int32_t error;                   /* 0, or EUSERS */
	uint32_t sessions;               /* the user's sessions, this one included if admitted */
};

struct msg_user_share {
	char name[USER_KEY_MAX];
	uint32_t rate_down;              /* this worker's part; 0: no limit */
	uint32_t rate_up;
};

/*
 * Local system users (local_auth.c, file_helper.c).  The local-auth helper, the one
 * process that keeps root, gets a channel per worker (LOCAL_CHANNEL).  On it a worker's
 * password thread asks LOCAL_LOGIN (PAM) and waits for LOCAL_REPLY: status 1 with the
 * user's ids, name and root, and a connection to the user's file helper (a process of
 * that uid, made on demand); 0 refused; -1 the check could not be made.  A file helper
 * gets each new connection as FILES_CONN; with none left it says FILES_IDLE, and ends on
 * FILES_EXIT (or goes on, if a FILES_CONN came first).  On a connection, FS_REQUEST and
 * FS_REPLY (fs_proxy.h) carry one file operation each.
 */
#define LOCAL_SOURCE_PAM 0
#define LOCAL_SOURCE_LDAP 1 /* ldap_own_ids: the helper binds, and trusts the entry's ids */
struct msg_local_login {
	char name[64];
	char password[512];
	uint32_t source;                 /* LOCAL_SOURCE_* */
	uint32_t reserved;               /* 0 */
};

struct msg_local_reply {
	int32_t status;
	uint32_t uid, gid;
	uint32_t perms;                  /* LDAP users: the entry's (PAM users: local_permissions) */
	uint32_t has_set;                /* set holds the entry's settings */
	uint32_t reserved;               /* 0 */
	char name[64];
	char root[4096];
	struct user_settings set;
};

/*
 * Reconciliation: a worker lists its live sessions (SYNC_BEGIN, SYNC_IDS..., SYNC_END),
 * periodically and when the master asks (SYNC_REQUEST).  upto is the highest session id the
 * worker had received when it began: every record of that worker up to it that the list
 * does not name has ended, whatever happened to its end message.
 */
/* DATA_REFUSED: a data connection of session id was refused, for reason (data_refusal.h). */
struct msg_data_refused {
	uint64_t id;
	uint32_t reason;                 /* enum data_refusal */
	uint32_t reserved;               /* 0 */
};

struct msg_sync {
	uint64_t upto;
	uint32_t count;                  /* SYNC_END: ids sent */
	uint32_t reserved;               /* 0 */
};

struct msg_sync_ids {
	uint32_t n;
	uint32_t reserved;               /* 0 */
	uint64_t ids[MSG_SYNC_IDS_MAX];
};

struct msg_port20_req {
	struct sockaddr_storage local;   /* bind here, port 20 */
};

struct msg_port20_reply {
	int32_t err;                     /* errno, or 0 with the socket attached */
};

/*
 * No payload has padding (reserved fields stand where the compiler would put it), so that
 * every byte sent is one the sender wrote: a designated initializer zeroes the fields, not
 * the padding, and a peer must never see a sender's stack.
 */
_Static_assert(sizeof(struct msg_new_session) == 16, "padding in msg_new_session");
_Static_assert(sizeof(struct msg_pasv_open) == 16 + 2 * sizeof(struct sockaddr_storage),
	       "padding in msg_pasv_open");
_Static_assert(sizeof(struct msg_pasv_port) == 24 + sizeof(struct sockaddr_storage),
	       "padding in msg_pasv_port");
_Static_assert(sizeof(struct msg_pasv_ref) == 16, "padding in msg_pasv_ref");
_Static_assert(sizeof(struct msg_login_delay) == 16, "padding in msg_login_delay");
_Static_assert(sizeof(struct msg_close_unauth) == 16, "padding in msg_close_unauth");
_Static_assert(sizeof(struct msg_sync) == 16, "padding in msg_sync");
_Static_assert(sizeof(struct msg_data_refused) == 16, "padding in msg_data_refused");
_Static_assert(sizeof(struct msg_user_login) == 8 + USER_KEY_MAX + 16,
	       "padding in msg_user_login");
_Static_assert(sizeof(struct msg_user_admit) == 16, "padding in msg_user_admit");
_Static_assert(sizeof(struct msg_user_share) == USER_KEY_MAX + 8, "padding in msg_user_share");
_Static_assert(sizeof(struct msg_local_reply) == 24 + 64 + 4096 + sizeof(struct user_settings),
	       "padding in msg_local_reply");
_Static_assert(sizeof(struct msg_sync_ids) == 8 + 8 * MSG_SYNC_IDS_MAX, "padding in msg_sync_ids");
_Static_assert(sizeof(struct msg_port20_req) == sizeof(struct sockaddr_storage),
	       "padding in msg_port20_req");

/* ---- message types ---- */

enum msg_type {
	MSG_INVALID = 0,
#define MSG(name, payload, to, fd, prio, states) MSG_##name,
#include "server/messages.def"
#undef MSG
	MSG_COUNT
};

union msg_payload {
#define MSG(name, payload, to, fd, prio, states) struct payload name;
#include "server/messages.def"
#undef MSG
};

struct msg_def {
	const char *name;
	size_t size;
	enum msg_role to;
	enum msg_fd fd;
	enum msg_prio prio;
	unsigned states;
};

/* The row of a type, or NULL for an unknown one. */
const struct msg_def *msg_def_of(unsigned type);

/* ---- blocking use (the port-20 helper and its clients) ---- */

/*
 * Write one message; fd (>= 0) is attached and stays the caller's.  Returns 0 or -errno
 * (-EAGAIN on a full non-blocking socket).
 */
int msg_write(int sock, enum msg_type type, const void *payload, int fd);
/*
 * Fork a helper process joined to the caller by a channel: in the child (0 returned) *ctl
 * is the helper's end, SIGINT and SIGHUP ignored, SIGTERM when the parent dies, name its
 * name; in the parent the child's pid (or -errno) and *ctl the parent's end.
 */
pid_t msg_fork_helper(const char *name, int *ctl);
/*
 * A new connection handed to a helper: a socketpair whose one end goes to ctl attached to
 * an empty message of type (PORT20_CHANNEL, LOCAL_CHANNEL, FILES_CONN).  Returns the other
 * end, or -errno.
 */
int msg_hand_over(int ctl, enum msg_type type);
/* Send len bytes as one packet, as they are (the fuzz target's hostile peer). */
int msg_write_raw(int sock, const void *buf, size_t len, int fd);
/*
 * Read one message (waiting for it when block) meant for role into *type and *p, checked against its row (size,
 * receiver, descriptor).  *fd gets the attached descriptor (close-on-exec) or -1; for a
 * type whose descriptor did not fit (MSG_CTRUNC: the process is out of descriptors) it
 * gets -EMFILE and the message is still delivered.  Returns 0, -EAGAIN, -EPIPE at end of
 * stream, -EPROTO for a malformed or unexpected message (logged by the caller), or -errno.
 */
int msg_read(int sock, enum msg_role role, bool block, enum msg_type *type, union msg_payload *p,
	     int *fd);

/* ---- event-driven channels (master <-> worker) ---- */

struct channel;

/*
 * The receiver's handlers, one typed function per message (NULL: not accepted on this
 * channel).  fd is the attached descriptor, which the handler owns, or -1; for FD_REQUIRED
 * messages it may be -EMFILE (the descriptor was lost to the receiver's limit), which the
 * handler must answer as a failure of that one request.
 */
struct channel_handlers {
#define MSG(name, payload, to, fd, prio, states)                                                   \
	void (*on_##name)(void *ctx, const struct payload *p, int fd);
#include "server/messages.def"
#undef MSG
};

enum channel_failure {
	CHANNEL_CLOSED,   /* end of stream or a socket error: the peer is gone */
	CHANNEL_PROTOCOL, /* the peer sent something the table forbids */
	CHANNEL_STUCK,    /* the peer stopped reading (hard limit or stall) */
};

/* Called once per failure kind; after CHANNEL_CLOSED nothing more is read or written. */
typedef void channel_fail_fn(void *ctx, enum channel_failure why, const char *detail);

/*
 * A channel over a connected SOCK_SEQPACKET socket (made non-blocking; the channel owns it
 * and closes it in channel_free).  role: what this end receives.  Returns NULL on failure
 * (sock closed).
 */
struct channel *channel_new(struct event_base *base, int sock, enum msg_role role,
			    const struct channel_handlers *h, channel_fail_fn *on_fail, void *ctx);
void channel_free(struct channel *c);

void channel_set_state(struct channel *c, unsigned state);
unsigned channel_state(const struct channel *c);
/* Messages waiting in the queue. */
size_t channel_queued(const struct channel *c);
/* The peer is gone or stuck: sends fail with -EPIPE. */
bool channel_failed(const struct channel *c);
/* Read whatever has arrived now (used before refusing a client for a limit). */
void channel_poll(struct channel *c);

/*
 * Send or queue a message.  fd (>= 0) is always consumed: sent, or closed on failure.
 * Returns 0, -ENOBUFS (MAY at the soft limit: refuse the request), or -EPIPE (the channel
 * failed).  Use the typed senders below.
 */
int channel_send(struct channel *c, enum msg_type type, const void *payload, int fd);

#define MSG(name, payload, to, fd, prio, states)                                                   \
	static inline int send_##name(struct channel *c, const struct payload *p, int fd_)         \
	{                                                                                          \
		return channel_send(c, MSG_##name, p, fd_);                                        \
	}
#include "server/messages.def"
#undef MSG

#endif
