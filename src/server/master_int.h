/*
 * master_int.h: the master process's own state, shared by its files and nothing else.
 *
 *   master.c           start-up, the event loop, signals, reload, stop
 *   master_accept.c    listeners, accepting, the global limits at accept
 *   master_sessions.c  the record of every session, per-address counts, the sessions not
 *                      logged in (max_unauthenticated), reconciliation, the status line
 *   master_workers.c   starting and supervising workers, and their channels' messages
 *   master_login.c     failed logins: delays and bans (throttle.h does the counting)
 *   master_users.c     users' sessions across workers: max_sessions, shares of user rates
 *   master_pasv.c      passive requests, the glue beside pasv_broker.c
 */
#ifndef FERRY_SERVER_MASTER_INT_H
#define FERRY_SERVER_MASTER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "common/hostport.h"
#include "server/channel.h"
#include "server/config.h"
#include "server/data_refusal.h"
#include "server/log.h"
#include "server/vhost_files.h"

#define MAX_WORKER_SLOTS 512
#define REC_BUCKETS 4096
#define ADDR_BUCKETS 4096
#define USER_BUCKETS 1024

struct master;
struct user_count;
struct sd_notifier;

struct worker_slot {
	struct master *m;       /* the channel handlers' way back */
	pid_t pid;              /* 0: free slot */
	struct channel *ch;
	unsigned load;          /* sessions the master counts on it */
	unsigned index;
	bool draining;          /* replaced by a reload, or ending: no new sessions */
	bool ending;            /* broke the protocol or stopped reading: being stopped */
	time_t started;
	uint64_t sync_upto;     /* a reconciliation in progress (CS_SYNC): its upto */
	uint32_t sync_gen;      /* generation marking the records it names */
	uint32_t sync_named;    /* ids named so far */
};

struct conn_rec {
	uint64_t id;
	unsigned worker;
	struct hostport_addr addr;  /* compact: one record per connection (hostport.h) */
	struct conn_rec *next;
	uint64_t since_ms;      /* accepted, on the monotonic clock */
	uint32_t sync_gen;      /* see worker_slot */
	bool unauth;            /* not logged in yet: on the master's unauth list */
	bool checking;          /* a password check is in flight: never evicted */
	struct user_count *user; /* its user's count, for users with limits across sessions */
	TAILQ_ENTRY(conn_rec) unauth_link;
};

struct addr_count {
	struct sockaddr_storage addr;
	unsigned n;
	struct addr_count *next;
};

struct master {
	struct event_base *base;
	struct config *cfg;
	int argc;
	char **argv;
	int listen_fds[2 * CONFIG_MAX_LISTEN];
	struct evconnlistener *listeners[2 * CONFIG_MAX_LISTEN];
	bool implicit_tls[2 * CONFIG_MAX_LISTEN]; /* a listen_implicit_tls listener */
	unsigned n_listeners;
	int reserve_fd;         /* spent to answer 421 when out of descriptors */
	unsigned worker_capacity; /* sessions a worker's descriptor limit holds */
	struct worker_slot slots[MAX_WORKER_SLOTS];
	struct conn_rec *recs[REC_BUCKETS];
	struct addr_count *addrs[ADDR_BUCKETS];
	struct user_count *users[USER_BUCKETS]; /* users with limits across sessions */
	unsigned total;
	unsigned n_addrs;
	uint64_t next_id;
	unsigned next_index;
	int xferlog_fd;
	int root_fd;            /* the anonymous root, opened before dropping privileges */
	int users_fd;           /* sealed snapshot of the users file, or -1 */
	int tls_fd;             /* sealed snapshot of the TLS files, or -1 */
	struct vhost_fds hosts; /* roots and users snapshots of the [host] sections */
	int port20_ctl;
	pid_t port20_pid;
	int local_ctl;          /* the local-users helper (local_auth.c), or -1 */
	struct sd_notifier *notify; /* the service manager ($NOTIFY_SOCKET), or NULL */
	struct event *watchdog_ev;  /* WATCHDOG=1 from the loop, when asked for */
	pid_t local_pid;
	struct pasv_broker *broker;
	struct resolver *pasv_resolver; /* pasv_address when it is a host name */
	bool stopping;
	int exit_status;
	struct event *sig_ev[5];
	struct event *kill_timer;
	struct event *respawn_timer;
	unsigned quick_deaths;  /* workers that died soon after starting, in a row */
	/* abuse resistance (throttle.h) */
	TAILQ_HEAD(, conn_rec) unauth;  /* sessions not logged in, longest waiting first */
	unsigned n_unauth;
	struct event *evict_timer;      /* over max_unauthenticated with nobody idle yet */
	struct throttle *throttle;      /* failed logins per client address */
	struct event *throttle_timer;   /* the table's next expiry */
	struct log_ratelimit log_banned, log_full, log_per_ip, log_evict, log_no_worker,
		log_emfile;
	uint64_t reconciled;            /* records dropped by reconciliation, in all */
	uint64_t data_refused[DR_COUNT]; /* data connections refused, by reason (workers') */
	uint64_t sync_asked_ms;         /* when the workers were last asked for their lists */
};

uint64_t master_now_ms(void);

/* master.c: stop (SIGTERM semantics), then exit with status. */
void master_stop(struct master *m, int status);

/* master_sessions.c */
int rec_add(struct master *m, uint64_t id, unsigned worker, const struct sockaddr_storage *a);
struct conn_rec *rec_find(struct master *m, uint64_t id);
/* The record of id if it is on worker slot's, else NULL: a worker speaks for its own only. */
struct conn_rec *rec_owned(struct master *m, uint64_t id, unsigned slot);
void rec_remove(struct master *m, uint64_t id);
void rec_remove_worker(struct master *m, unsigned worker);
unsigned addr_sessions(struct master *m, const struct sockaddr_storage *a);
void unauth_forget(struct master *m, struct conn_rec *r);
void unauth_checking(struct master *m, struct conn_rec *r, bool checking);
void evict_unauth(struct master *m);
void sync_begin(struct master *m, unsigned slot, const struct msg_sync *p);
void sync_ids(struct master *m, unsigned slot, const struct msg_sync_ids *p);
void sync_end(struct master *m, unsigned slot, const struct msg_sync *p);
void master_log_status(struct master *m);

/* master_workers.c */
void fill_workers(struct master *m);
void free_slot(struct master *m, unsigned i);
unsigned live_workers(const struct master *m, bool include_draining);
int pick_worker(const struct master *m);
void send_all(struct master *m, enum msg_type type, bool only_active);
void reap_children(struct master *m);
/* Read what every worker has sent by now (before refusing a client for a limit). */
void poll_workers(struct master *m);
/* Ask every worker for its list of live sessions (SYNC_REQUEST), at most once a second. */
void request_sync(struct master *m);

/* master_login.c */
int master_login_init(struct master *m);
void master_login_free(struct master *m);
void close_unauth(struct master *m, struct conn_rec *r, int why);
void login_failed(struct master *m, unsigned slot, uint64_t id);

/* master_users.c */
void user_login(struct master *m, unsigned slot, const struct msg_user_login *p);
/* The record goes: its user's count goes down, and the shares of the user's rates change. */
void user_release(struct master *m, struct conn_rec *r);
unsigned user_sessions(struct master *m, const char *name);

/* master_pasv.c */
bool is_host_name(const char *a);
void answer_pasv(struct master *m, unsigned slot, const struct msg_pasv_open *req);
void deliver_data(void *ctx, unsigned worker, uint64_t session, uint32_t seq, int fd);

/* master_accept.c */
int master_listen(struct master *m);
int master_accept_start(struct master *m);
void master_accept_stop(struct master *m);

#endif
