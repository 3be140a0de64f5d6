/*
 * session.h: one client of a worker: its control connection, login, working directory,
 * data channel and transfer.  A session is owned by its worker (struct server) and freed
 * by session_close(); nothing else keeps a pointer to it beyond a callback's lifetime.
 */
#ifndef FERRY_SERVER_SESSION_H
#define FERRY_SERVER_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/bufferevent.h>

#include "common/buf.h"
#include "common/command.h"
#include "common/hostport.h"
#include "common/path.h"
#include "common/tls.h"
#include "server/config.h"
#include "server/log.h"

struct auth_pool;
struct user_entry;
struct user_group;
struct user_settings;
struct users;
struct data_chan;
struct transfer;
struct auth_request;
struct channel;

#define SESSION_ID_BUCKETS 1024

/*
 * A host a worker serves (RFC 7151): the listener's default one (the keys outside any
 * section), or a [host] section.  A session is on the default host until HOST, or the SNI
 * of its TLS handshake, names another (cmd_host.c).
 */
struct served_host {
	const char *name;           /* NULL: the default host */
	const char *banner;
	bool anonymous;             /* anonymous = yes (it also needs a root) */
	int root_fd;                /* O_PATH descriptor of its anonymous root, or -1 */
	const char *root;
	const struct users *users;  /* frozen; NULL when it has no users file */
};

/* One worker process: its event loop and everything its sessions share. */
struct server {
	struct event_base *base;
	const struct config *cfg;   /* frozen */
	const struct users *users;  /* frozen; NULL when no users file */
	struct auth_pool *auth;
	int worker_index;
	struct channel *master;     /* channel to the master (channel.h) */
	int port20_fd;              /* channel to the port-20 helper, or -1 */
	int xferlog_fd;             /* -1 when not logging transfers */
	int anon_root_fd;           /* O_PATH descriptor of the anonymous root, or -1 */
	struct tls_ctx *tls;        /* NULL when FTPS is not configured */
	struct served_host hosts[1 + CONFIG_MAX_VHOSTS]; /* [0]: the default, then cfg->vhosts */
	unsigned n_hosts;
	TAILQ_HEAD(, session) sessions;
	LIST_HEAD(, user_group) user_groups; /* users whose rates span sessions (user_group.h) */
	struct session *by_id[SESSION_ID_BUCKETS]; /* chained through id_next */
	unsigned n_sessions;
	uint32_t pasv_seq;          /* numbers passive requests to the master */
	bool draining;              /* finishing sessions; no new ones */
	bool shutting_down;         /* SIGTERM: close sessions as their transfers end */
	/*
	 * Warnings a client can cause again and again (log.h; zeroed = 10 lines, then 1 a
	 * second): a flood of them costs the disk a line a second, with a count.
	 */
	struct log_ratelimit rl_port_refused; /* PORT/EPRT to another host */
	struct log_ratelimit rl_data_failed;  /* data connections not made */
	struct log_ratelimit rl_no_port;      /* no local port for a data connection */
	struct log_ratelimit rl_data_tls;     /* TLS refused or failed on data connections */
};

/* The [host] section called name (any case), or NULL (cmd_host.c). */
const struct served_host *server_find_host(const struct server *srv, const char *name);

enum session_flags {
	SF_CLOSING = 1 << 0,        /* flush the output, then close */
	SF_LOGGED_IN = 1 << 1,
	SF_ANONYMOUS = 1 << 2,
	SF_EPSV_ALL = 1 << 3,
	SF_UTF8 = 1 << 4,
	SF_HAVE_RNFR = 1 << 5,
	SF_USER_GIVEN = 1 << 6,
	SF_HELD_LINE = 1 << 7,      /* parser.line holds a command waiting for its turn */
	SF_PROCESSING = 1 << 8,     /* inside the command loop: closes and resumes wait */
	SF_CLOSE_NOW = 1 << 9,      /* close asked for while processing */
	SF_CTL_GONE = 1 << 10,      /* the client hung up; an upload still drains */
	SF_TLS = 1 << 11,           /* the control connection is protected */
	SF_PBSZ = 1 << 12,          /* PBSZ was given (PROT may follow) */
	SF_PROT_P = 1 << 13,        /* data connections are protected (PROT P) */
	SF_CCC = 1 << 14,           /* CCC: waiting for the TLS layer to end */
	SF_TLS_USED = 1 << 15,      /* AUTH TLS or implicit TLS happened (stays after CCC) */
	SF_QUIT_PENDING = 1 << 16,  /* QUIT came during a transfer: 221 once it ends */
	SF_END_REPORTED = 1 << 17,  /* the master has been told the session ended */
	SF_MID_LINE = 1 << 18,      /* the parser holds part of a line */
	SF_HOST_GIVEN = 1 << 19,    /* HOST chose the host: SNI no longer does */
	SF_GREET_AFTER_TLS = 1 << 20, /* implicit TLS: the 220 waits for SNI to pick the host */
};

struct session {
	struct server *srv;
	TAILQ_ENTRY(session) link;
	struct session *id_next;
	uint64_t id;
	struct bufferevent *ctl;        /* what commands are read from: plain, or TLS over sock */
	struct bufferevent *sock;       /* the plain connection (ctl itself without TLS) */
	struct tls_id tls_id;           /* shared with the data connections (tls.h) */
	char *cert_cn;                  /* CN of a verified client certificate, or NULL */
	/* Compact (hostport.h); session_peer() and session_local() give sockaddr_storage. */
	struct hostport_addr peer;      /* control connection's peer (IPv4-mapped unmapped) */
	struct hostport_addr local;     /* control connection's local address */
	char peer_str[INET6_ADDRSTRLEN];
	unsigned flags;
	const char *close_why;          /* a string literal: every caller passes one */

	/*
	 * Taken when a command comes in and given back once it has run and no other is part
	 * read or waiting: an idle session holds no line buffer (CMD_LINE_MAX), nor the
	 * last line it read (a PASS among them).
	 */
	struct cmd_parser *parser;
	unsigned bad_commands;
	struct event *timer;            /* login and idle time-outs */

	/* login */
	const struct served_host *host; /* never NULL */
	char username[64];
	unsigned login_failures;
	struct auth_request *auth;      /* a password check in flight, or NULL */
	struct event *delay_timer;      /* a failed login's delay */
	unsigned perms;                 /* base permissions */
	const struct user_settings *set; /* per-user settings, or NULL (user_settings.h) */
	struct user_entry *user_owned;  /* a database's user (auth.h), the session's to free */
	struct user_group *group;       /* the user's shared rates, or NULL */
	const struct user_entry *admit; /* logged in once the master admits it (USER_ADMIT) */
	int root_fd;                    /* O_PATH descriptor of the user's root, or a local user's
					   file helper connection (fs_proxy.h); -1 before login */
	int pending_conn;               /* a local user's file helper, until the login ends */
	char *cwd;                      /* the working directory (from login on), exactly sized */

	/* transfer parameters */
	bool type_ascii;
	uint64_t rest;                  /* REST offset for the next transfer */
	char *rnfr;                     /* RNFR's path while SF_HAVE_RNFR, else NULL */
	unsigned mlst_facts;

	struct data_chan *data;         /* PASV/PORT state, or NULL */
	struct transfer *xfer;          /* the running transfer, or NULL */
};

/*
 * Take over an accepted control connection; implicit_tls: TLS starts before the greeting.
 * Returns NULL (fd closed) on failure.
 */
struct session *session_new(struct server *srv, int fd, uint64_t id, bool implicit_tls);
/*
 * Start TLS on the control connection (after the 234 of AUTH TLS, which must be queued
 * already, or at once for implicit FTPS).  Anything the client sent in the clear after the
 * command is dropped: it cannot have seen the 234 (no command injection).  Returns 0, or
 * -1 when TLS could not be set up (the caller replies).
 */
int session_start_tls(struct session *s);
/* CCC: end the TLS layer once the reply has gone out and the client's close_notify came. */
void session_clear_control(struct session *s);
/*
 * The working directory becomes path (copied to the heap: an idle session holds only what
 * its directory needs, not VPATH_MAX).  Returns 0, or -ENOMEM with the old one kept.
 */
int session_set_cwd(struct session *s, const char *path);
/* Keep path as the pending RNFR.  Returns 0, or -ENOMEM (then no RNFR is pending). */
int session_set_rnfr(struct session *s, const char *path);
/* No RNFR is pending any more. */
void session_forget_rnfr(struct session *s);
static inline struct sockaddr_storage session_peer(const struct session *s)
{
	return hostport_addr_get(&s->peer);
}

static inline struct sockaddr_storage session_local(const struct session *s)
{
	return hostport_addr_get(&s->local);
}

/* The session with this id (from the master's messages), or NULL when it has gone. */
struct session *session_find(struct server *srv, uint64_t id);
/* Close at once: frees everything, tells the master.  why: a string literal, for the log. */
void session_close(struct session *s, const char *why);
/* QUIT: tell the master the session ends, reply 221, then close once it has left. */
void session_quit(struct session *s);
/* Flush what is queued, then close (after QUIT or a 421). */
void session_close_after_flush(struct session *s, const char *why);

/* Queue a reply.  Text may hold '\n' for a multi-line reply. */
void session_reply(struct session *s, int code, const char *text);
void session_replyf(struct session *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Queue bytes already formatted as a reply (multi-line builders). */
void session_reply_raw(struct session *s, const struct buf *b);

/* Free user_owned (a login that did not complete, or the session's end). */
void session_forget_user(struct session *s);
/* Whether the user holds the permission (enum perm) anywhere; replies 550 when not. */
bool session_need(struct session *s, unsigned perm);
/*
 * The permissions at vpath: the base ones, or a directory rule's (user_settings_perms;
 * contents: the command acts on what lies in vpath, as LIST does).
 */
unsigned session_perms_at(const struct session *s, const char *vpath, bool contents);
/*
 * session_path(), then whether the user holds perm at the path (session_perms_at).
 * Replies 553/501/550 and returns -1 on failure.
 */
int session_path_need(struct session *s, const char *arg, unsigned perm, bool contents,
		      char *out);

/* Reply to a failed file operation, choosing the code from errno (negative rc). */
void session_reply_errno(struct session *s, int rc, const char *what);

/*
 * Resolve a client path against the working directory into out (VPATH_MAX bytes).
 * On a bad name, replies 553/501 and returns -1.
 */
int session_path(struct session *s, const char *arg, char *out);

/* Called when a transfer or password check ends: process commands that waited. */
void session_resume(struct session *s);

/* Restart the idle (or login) timer after activity. */
void session_touch(struct session *s);

#endif
