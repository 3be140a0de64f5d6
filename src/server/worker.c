/*
 * worker.c: the worker process.  It receives control connections from the master over
 * its channel (SCM_RIGHTS), runs their sessions on one event loop, and reports each
 * session's end so that the master's global counts stay right.
 */
#include "server/worker.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/reply.h"
#include "server/auth.h"
#include "server/data.h"
#include "server/channel.h"
#include "server/log.h"
#include "server/sandbox.h"
#include "server/session.h"
#include "server/throttle.h"
#include "server/tls_files.h"
#include "server/transfer.h"
#include "server/user_group.h"
#include "server/userdb_ldap.h"
#include "server/users.h"
#include "server/vhost_files.h"

struct worker {
	struct server srv;
	struct config cfg;
	struct users *users;
	struct users *host_users[CONFIG_MAX_VHOSTS]; /* the [host] sections' users files */
	struct event *sigterm_ev;
	struct event *deadline;
	struct event *sync_timer;
	uint64_t max_id;                  /* the newest session id received */
	struct log_ratelimit fd_lost_log; /* sessions lost to the descriptor limit */
	char role[32];
};

/* Freed heap a worker keeps for the next transfer; blocks from this size on are mmapped. */
#define WORKER_HEAP_KEEP (16 * 1024 * 1024)
#define WORKER_MMAP_MIN (4 * 1024 * 1024)

/* How often a worker lists its live sessions to the master (channel.h). */
#define SYNC_SECONDS 10

static void maybe_exit(struct server *srv)
{
	if ((srv->draining || srv->shutting_down) && srv->n_sessions == 0)
		event_base_loopexit(srv->base, NULL);
}

int worker_report(struct server *srv, enum msg_type type, uint64_t id)
{
	if (srv->master == NULL)
		return -EPIPE;
	struct msg_session m = { .id = id };
	int rc = channel_send(srv->master, type, &m, -1);
	if (rc < 0 && rc != -EPIPE)
		log_warn("session %llu: cannot tell the master (%s): %s", (unsigned long long)id,
			 msg_def_of(type)->name, strerror(-rc));
	return rc;
}

void worker_report_refusal(struct server *srv, uint64_t id, enum data_refusal why)
{
	if (srv->master == NULL)
		return;
	struct msg_data_refused m = { .id = id, .reason = (uint32_t)why };
	int rc = send_DATA_REFUSED(srv->master, &m, -1);
	if (rc < 0 && rc != -EPIPE)
		log_warn("session %llu: cannot tell the master of a refused data connection: %s",
			 (unsigned long long)id, strerror(-rc));
}

void worker_session_ended(struct server *srv, uint64_t id)
{
	worker_report(srv, MSG_SESSION_END, id);
}

void worker_session_freed(struct server *srv)
{
	maybe_exit(srv);
}

/* SIGTERM semantics: idle sessions go now, transfers may finish until the deadline. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct session *s, *next;
	for (s = TAILQ_FIRST(&w->srv.sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, link);
		session_reply(s, R_421_CLOSING, "Server shutting down.");
		session_close(s, "shutdown deadline");
	}
	event_base_loopexit(w->srv.base, NULL);
}

static void start_shutdown(struct worker *w)
{
	if (w->srv.shutting_down)
		return;
	w->srv.shutting_down = true;
	struct session *s, *next;
	for (s = TAILQ_FIRST(&w->srv.sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, link);
		if (s->xfer == NULL) {
			session_reply(s, R_421_CLOSING, "Server shutting down.");
			session_close_after_flush(s, "shutdown");
		}
	}
	w->deadline = evtimer_new(w->srv.base, on_deadline, w);
	struct timeval tv = { .tv_sec = w->cfg.shutdown_timeout, .tv_usec = 0 };
	if (w->deadline != NULL)
		evtimer_add(w->deadline, &tv);
	maybe_exit(&w->srv);
}

/* ---- the master's messages (messages.def) ---- */

static void on_new_session(void *ctx, const struct msg_new_session *p, int fd)
{
	struct worker *w = ctx;
	if (p->id > w->max_id)
		w->max_id = p->id;
	if (fd < 0) {
		log_warn_limited(&w->fd_lost_log,
				 "session %llu lost: its connection did not fit this worker's "
				 "descriptor limit (%s)",
				 (unsigned long long)p->id, strerror(-fd));
		worker_session_ended(&w->srv, p->id);
		return;
	}
	if (w->srv.draining || w->srv.shutting_down) {
		close(fd);
		worker_session_ended(&w->srv, p->id);
		return;
	}
	session_new(&w->srv, fd, p->id, (p->flags & MSG_F_IMPLICIT_TLS) != 0);
}

static void on_drain(void *ctx, const struct msg_empty *p, int fd)
{
	struct worker *w = ctx;
	w->srv.draining = true;
	channel_set_state(w->srv.master, CS_DRAIN);
	maybe_exit(&w->srv);
}

static void on_shutdown(void *ctx, const struct msg_empty *p, int fd)
{
	start_shutdown(ctx);
}

static void on_pasv_port(void *ctx, const struct msg_pasv_port *p, int fd)
{
	struct worker *w = ctx;
	struct session *s = session_find(&w->srv, p->id);
	if (s != NULL)
		data_passive_answer(s, p);
}

static void on_data_conn(void *ctx, const struct msg_pasv_ref *p, int fd)
{
	struct worker *w = ctx;
	struct session *s = session_find(&w->srv, p->id);
	if (s == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	data_passive_connected(s, p, fd);
}

static void on_login_delay(void *ctx, const struct msg_login_delay *p, int fd)
{
	struct worker *w = ctx;
	struct session *s = session_find(&w->srv, p->id);
	if (s != NULL)
		login_delay_decided(s, p->delay_ms);
}

static void on_user_admit(void *ctx, const struct msg_user_admit *p, int fd)
{
	struct worker *w = ctx;
	struct session *s = session_find(&w->srv, p->id);
	if (s != NULL)
		login_admitted(s, p->error, p->sessions);
}

static void on_user_share(void *ctx, const struct msg_user_share *p, int fd)
{
	struct worker *w = ctx;
	user_group_share(&w->srv, p);
}

static void on_close_unauth(void *ctx, const struct msg_close_unauth *p, int fd)
{
	struct worker *w = ctx;
	struct session *s = session_find(&w->srv, p->id);
	if (s != NULL)
		login_closed_by_master(s, p->reason == EACCES);
}

/*
 * Reconciliation (channel.h): the live sessions, those whose end has not been reported,
 * so that a record the master keeps for a session that is gone cannot keep a count up.
 */
static void send_sync(struct worker *w)
{
	struct channel *c = w->srv.master;
	if (c == NULL || channel_failed(c))
		return;
	struct msg_sync b = { .upto = w->max_id, .count = 0 };
	if (send_SYNC_BEGIN(c, &b, -1) < 0)
		return;
	struct msg_sync_ids ids;
	memset(&ids, 0, sizeof(ids));
	struct session *s;
	TAILQ_FOREACH(s, &w->srv.sessions, link) {
		if (s->flags & SF_END_REPORTED)
			continue;
		ids.ids[ids.n++] = s->id;
		b.count++;
		if (ids.n == MSG_SYNC_IDS_MAX) {
			send_SYNC_IDS(c, &ids, -1);
			memset(&ids, 0, sizeof(ids));
		}
	}
	if (ids.n > 0)
		send_SYNC_IDS(c, &ids, -1);
	send_SYNC_END(c, &b, -1);
}

static void on_sync_request(void *ctx, const struct msg_empty *p, int fd)
{
	send_sync(ctx);
}

static void on_sync_timer(evutil_socket_t fd, short what, void *arg)
{
	send_sync(arg);
}

static const struct channel_handlers master_msgs = {
	.on_NEW_SESSION = on_new_session,
	.on_DRAIN = on_drain,
	.on_SHUTDOWN = on_shutdown,
	.on_PASV_PORT = on_pasv_port,
	.on_DATA_CONN = on_data_conn,
	.on_LOGIN_DELAY = on_login_delay,
	.on_CLOSE_UNAUTH = on_close_unauth,
	.on_USER_ADMIT = on_user_admit,
	.on_USER_SHARE = on_user_share,
	.on_SYNC_REQUEST = on_sync_request,
};

static void on_channel_failed(void *ctx, enum channel_failure why, const char *detail)
{
	struct worker *w = ctx;
	switch (why) {
	case CHANNEL_CLOSED:
		if (!w->srv.shutting_down)
			log_error("the master's channel closed (%s): finishing the sessions",
				  detail);
		break;
	case CHANNEL_PROTOCOL:
		log_error("protocol error from the master: %s; finishing the sessions", detail);
		break;
	case CHANNEL_STUCK:
		log_error("the master has stopped reading (%s): finishing the sessions", detail);
		break;
	}
	/* Without a master nobody counts the sessions: finish what runs, as on SIGTERM. */
	start_shutdown(w);
}

static void on_sigterm(evutil_socket_t fd, short what, void *arg)
{
	start_shutdown(arg);
}

/* The master sends the frozen configuration as the channel's first message. */
static int read_config(int fd, struct config *cfg)
{
	ssize_t n;
	do {
		n = recv(fd, cfg, sizeof(*cfg), 0);
	} while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(*cfg) ? 0 : -1;
}

/* The master's snapshot of the certificate files becomes this worker's TLS context. */
static int load_tls(struct server *srv, int fd)
{
	struct tls_files_map map;
	int rc = tls_files_map(fd, &map);
	if (rc < 0) {
		log_error("cannot read the TLS files from the master: %s", strerror(-rc));
		return -1;
	}
	char err[512];
	srv->tls = tls_files_context(&map, srv->cfg, err, sizeof(err));
	tls_files_unmap(&map);
	close(fd); /* the key is in the context now; no second copy stays reachable */
	if (srv->tls == NULL) {
		log_error("TLS: %s", err);
		return -1;
	}
	return 0;
}

/* The default host, then the [host] sections with the descriptors the master opened. */
static int setup_hosts(struct worker *w, const struct worker_fds *fds)
{
	const struct config *cfg = &w->cfg;
	struct server *srv = &w->srv;
	srv->hosts[0] = (struct served_host){ .banner = cfg->banner, .anonymous = cfg->anonymous,
					      .root_fd = fds->root, .root = cfg->root,
					      .users = w->users };
	struct vhost_fds v;
	if (vhost_fds_parse(fds->hosts, &v) < 0 || v.n != cfg->n_vhosts) {
		log_error("the [host] descriptors from the master do not match the configuration");
		return -1;
	}
	for (unsigned i = 0; i < v.n; i++) {
		const struct vhost *h = &cfg->vhosts[i];
		if (v.users[i] >= 0) {
			int rc = users_load_fd(v.users[i], h->users_file, &w->host_users[i], stderr);
			close(v.users[i]); /* parsed: the snapshot is not needed any more */
			if (rc < 0)
				return -1;
		}
		srv->hosts[i + 1] = (struct served_host){
			.name = h->name, .banner = h->banner[0] != '\0' ? h->banner : cfg->banner,
			.anonymous = h->anonymous, .root_fd = v.root[i], .root = h->root,
			.users = w->host_users[i]
		};
	}
	srv->n_hosts = 1 + v.n;
	return 0;
}

int worker_main(const struct worker_fds *fds, int index)
{
	/*
	 * Transfers free and allocate megabytes of buffers all the time: without this, glibc
	 * gives the top of the heap back after each and faults it in again for the next
	 * (a fifth of a TLS download's CPU time went to brk and page faults).
	 */
	mallopt(M_TRIM_THRESHOLD, WORKER_HEAP_KEEP);
	mallopt(M_MMAP_THRESHOLD, WORKER_MMAP_MIN);
	int master_fd = fds->master;
	struct worker *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return 1;
	snprintf(w->role, sizeof(w->role), "worker %d", index);
	log_set_role(w->role);
	prctl(PR_SET_NAME, "ferryd-worker");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	/* Without a master nobody hands out sessions or counts them: go when it goes. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);

	if (read_config(master_fd, &w->cfg) < 0) {
		log_error("no configuration from the master");
		return 1;
	}
	if (fds->users >= 0 && users_load_fd(fds->users, w->cfg.users_file, &w->users, stderr) < 0)
		return 1;
	struct server *srv = &w->srv;
	srv->cfg = &w->cfg;
	srv->users = w->users;
	srv->worker_index = index;
	srv->port20_fd = fds->port20;
	srv->xferlog_fd = fds->xferlog;
	srv->anon_root_fd = fds->root;
	TAILQ_INIT(&srv->sessions);
	LIST_INIT(&srv->user_groups);
	umask(w->cfg.umask);
	if (setup_hosts(w, fds) < 0)
		return 1;

	srv->base = event_base_new();
	if (srv->base == NULL)
		return 1;
	if (fds->tls >= 0 && load_tls(srv, fds->tls) < 0)
		return 1;
	int rc = transfer_init();
	if (rc < 0)
		log_warn("no pipe for uploads (%s): they are read and written instead of spliced",
			 strerror(-rc));
	/* libldap's one-time set-up looks up this host's name: here, not in the sandbox. */
	if (w->cfg.ldap_uri[0] != '\0' && !w->cfg.ldap_own_ids)
		ldap_source_preinit();
	/*
	 * From here on only what the sandbox allows (sandbox.c): everything the worker opens
	 * for its whole life must be open by now.  Before the password thread starts, so that
	 * Landlock confines that thread too.
	 */
	if (sandbox_worker(srv) < 0)
		return 1;
	srv->auth = auth_pool_new(srv->base, w->users, &w->cfg, fds->local);
	if (srv->auth == NULL)
		return 1;
	for (unsigned i = 0; i < w->cfg.n_vhosts; i++) {
		if (w->host_users[i] != NULL && auth_pool_add_users(srv->auth, w->host_users[i]) < 0)
			return 1;
	}
	srv->master = channel_new(srv->base, master_fd, TO_WORKER, &master_msgs,
				  on_channel_failed, w);
	w->sigterm_ev = evsignal_new(srv->base, SIGTERM, on_sigterm, w);
	w->sync_timer = event_new(srv->base, -1, EV_PERSIST, on_sync_timer, w);
	struct timeval every = { .tv_sec = SYNC_SECONDS, .tv_usec = 0 };
	if (srv->master == NULL || w->sigterm_ev == NULL || w->sync_timer == NULL ||
	    event_add(w->sigterm_ev, NULL) < 0 || event_add(w->sync_timer, &every) < 0)
		return 1;

	event_base_dispatch(srv->base);

	struct session *s;
	while ((s = TAILQ_FIRST(&srv->sessions)) != NULL)
		session_close(s, "worker exit");
	/* TLS objects are freed by callbacks deferred to the next turn of the loop (tls.c). */
	event_base_loop(srv->base, EVLOOP_NONBLOCK);
	tls_ctx_free(srv->tls);
	auth_pool_free(srv->auth);
	channel_free(srv->master);
	event_free(w->sigterm_ev);
	event_free(w->sync_timer);
	if (w->deadline != NULL)
		event_free(w->deadline);
	event_base_free(srv->base);
	users_free(w->users);
	for (unsigned i = 0; i < CONFIG_MAX_VHOSTS; i++)
		users_free(w->host_users[i]);
	free(w);
	return 0;
}
