/*
 * worker.c: the worker process.  It receives control connections from the master over
 * its channel (SCM_RIGHTS), runs their sessions on one event loop, and reports each
 * session's end so that the master's global counts stay right.
 */
#include "server/worker.h"

#include <errno.h>
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
#include "server/ipc.h"
#include "server/log.h"
#include "server/sandbox.h"
#include "server/session.h"
#include "server/throttle.h"
#include "server/tls_files.h"
#include "server/users.h"

struct worker {
	struct server srv;
	struct config cfg;
	struct users *users;
	struct event *chan_ev;
	struct event *sigterm_ev;
	struct event *deadline;
	char role[32];
};

static void maybe_exit(struct server *srv)
{
	if ((srv->draining || srv->shutting_down) && srv->n_sessions == 0)
		event_base_loopexit(srv->base, NULL);
}

int worker_send(struct server *srv, const struct ipc_msg *m, int fd)
{
	if (srv->master_fd < 0)
		return -EPIPE;
	int rc = ipc_send(srv->master_fd, m, fd);
	if (rc < 0)
		log_warn("cannot send to the master: %s", strerror(-rc));
	return rc;
}

void worker_session_ended(struct server *srv, uint64_t id)
{
	struct ipc_msg m;
	memset(&m, 0, sizeof(m));
	m.type = IPC_SESSION_END;
	m.id = id;
	if (srv->master_fd >= 0 && ipc_send(srv->master_fd, &m, -1) < 0)
		log_warn("cannot tell the master that session %llu ended", (unsigned long long)id);
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

static void on_channel(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	for (;;) {
		struct ipc_msg m;
		int cfd;
		int rc = ipc_recv(fd, &m, &cfd);
		if (rc == -EAGAIN)
			return;
		if (rc < 0) {
			/* The master is gone: finish what runs, as on SIGTERM. */
			event_del(w->chan_ev);
			w->srv.master_fd = -1;
			start_shutdown(w);
			return;
		}
		switch (m.type) {
		case IPC_NEW_SESSION:
			if (cfd < 0)
				break;
			if (w->srv.draining || w->srv.shutting_down) {
				close(cfd);
				worker_session_ended(&w->srv, m.id);
				break;
			}
			session_new(&w->srv, cfd, m.id, (m.flags & IPC_F_IMPLICIT_TLS) != 0);
			cfd = -1;
			break;
		case IPC_PASV_PORT: {
			struct session *s = session_find(&w->srv, m.id);
			if (s != NULL)
				data_passive_answer(s, &m);
			break;
		}
		case IPC_DATA_CONN: {
			struct session *s = cfd >= 0 ? session_find(&w->srv, m.id) : NULL;
			if (s != NULL) {
				data_passive_connected(s, &m, cfd);
				cfd = -1;
			}
			break;
		}
		case IPC_LOGIN_DELAY: {
			struct session *s = session_find(&w->srv, m.id);
			if (s != NULL)
				login_delay_decided(s, m.seq);
			break;
		}
		case IPC_CLOSE_UNAUTH: {
			struct session *s = session_find(&w->srv, m.id);
			if (s != NULL)
				login_closed_by_master(s, m.err == EACCES);
			break;
		}
		case IPC_DRAIN:
			w->srv.draining = true;
			maybe_exit(&w->srv);
			break;
		case IPC_SHUTDOWN:
			start_shutdown(w);
			break;
		default:
			break;
		}
		if (cfd >= 0)
			close(cfd);
	}
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
	char err[256];
	srv->tls = tls_server_new(&map.pem, err, sizeof(err));
	tls_files_unmap(&map);
	close(fd); /* the key is in the context now; no second copy stays reachable */
	if (srv->tls == NULL) {
		log_error("TLS: %s", err);
		return -1;
	}
	return 0;
}

int worker_main(const struct worker_fds *fds, int index)
{
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
	srv->master_fd = master_fd;
	srv->port20_fd = fds->port20;
	srv->xferlog_fd = fds->xferlog;
	srv->anon_root_fd = fds->root;
	TAILQ_INIT(&srv->sessions);
	umask(w->cfg.umask);

	srv->base = event_base_new();
	if (srv->base == NULL)
		return 1;
	if (fds->tls >= 0 && load_tls(srv, fds->tls) < 0)
		return 1;
	/*
	 * From here on only what the sandbox allows (sandbox.c): everything the worker opens
	 * for its whole life must be open by now.  Before the password thread starts, so that
	 * Landlock confines that thread too.
	 */
	if (sandbox_worker(srv) < 0)
		return 1;
	srv->auth = auth_pool_new(srv->base, w->users);
	if (srv->auth == NULL)
		return 1;
	evutil_make_socket_nonblocking(master_fd);
	w->chan_ev = event_new(srv->base, master_fd, EV_READ | EV_PERSIST, on_channel, w);
	w->sigterm_ev = evsignal_new(srv->base, SIGTERM, on_sigterm, w);
	if (w->chan_ev == NULL || w->sigterm_ev == NULL || event_add(w->chan_ev, NULL) < 0 ||
	    event_add(w->sigterm_ev, NULL) < 0)
		return 1;

	event_base_dispatch(srv->base);

	struct session *s;
	while ((s = TAILQ_FIRST(&srv->sessions)) != NULL)
		session_close(s, "worker exit");
	/* TLS objects are freed by callbacks deferred to the next turn of the loop (tls.c). */
	event_base_loop(srv->base, EVLOOP_NONBLOCK);
	tls_ctx_free(srv->tls);
	auth_pool_free(srv->auth);
	event_free(w->chan_ev);
	event_free(w->sigterm_ev);
	if (w->deadline != NULL)
		event_free(w->deadline);
	event_base_free(srv->base);
	users_free(w->users);
	free(w);
	return 0;
}
