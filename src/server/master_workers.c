/*
 * master_workers.c: starting and supervising the workers, and what their channels say.
 *
 * Workers are separate programs (fork + exec of ourselves), each with a fresh address
 * space and nothing inherited but the descriptors it needs.  A worker that breaks the
 * protocol or stops reading its channel is ended explicitly; one that dies is replaced
 * after a second; workers that keep dying as soon as they start (a sandbox the system
 * refuses, say) stop the server with an error instead of a silent respawn loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "server/master_int.h"
#include "server/pasv_broker.h"
#include "server/local_auth.h"
#include "server/port20.h"

/* A worker that dies within this time of its start counts as failing to start. */
#define QUICK_DEATH_SECONDS 10
/* That many in a row stop the server. */
#define QUICK_DEATHS_MAX 5

static const struct channel_handlers worker_msgs;
static void on_channel_failed(void *ctx, enum channel_failure why, const char *detail);

static void clear_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl >= 0)
		fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
}

static int spawn_worker(struct master *m, unsigned slot_no)
{
	struct worker_slot *w = &m->slots[slot_no];
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* Room for the configuration, sent as one message. */
	int sz = (int)sizeof(struct config) * 2;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	int p20 = -1;
	if (m->port20_ctl >= 0) {
		p20 = msg_hand_over(m->port20_ctl, MSG_PORT20_CHANNEL);
		if (p20 < 0)
			log_warn("no channel to the port-20 helper: %s", strerror(-p20));
	}
	int loc = -1;
	if (m->local_ctl >= 0) {
		loc = msg_hand_over(m->local_ctl, MSG_LOCAL_CHANNEL);
		if (loc < 0)
			log_warn("no channel to the local-users helper: %s; local users cannot "
				 "log in on this worker", strerror(-loc));
	}
	unsigned index = ++m->next_index;
	char a_fd[16], a_index[16], a_p20[16], a_xfer[16], a_root[16], a_users[16], a_tls[16],
		a_loc[16];
	snprintf(a_fd, sizeof(a_fd), "%d", sv[1]);
	snprintf(a_index, sizeof(a_index), "%u", index);
	snprintf(a_p20, sizeof(a_p20), "%d", p20);
	snprintf(a_xfer, sizeof(a_xfer), "%d", m->xferlog_fd);
	snprintf(a_root, sizeof(a_root), "%d", m->root_fd);
	snprintf(a_users, sizeof(a_users), "%d", m->users_fd);
	snprintf(a_tls, sizeof(a_tls), "%d", m->tls_fd);
	snprintf(a_loc, sizeof(a_loc), "%d", loc);
	char a_hosts[CONFIG_MAX_VHOSTS * 24 + 2];
	if (vhost_fds_format(&m->hosts, a_hosts, sizeof(a_hosts)) < 0)
		FERR_BUG("vhost descriptors do not fit the argument");
	char *args[] = { m->argv[0], "--worker", a_fd,  a_index, a_p20,   a_xfer,
			 a_root,     a_users,    a_tls, a_hosts, a_loc,  NULL };

	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		if (p20 >= 0)
			close(p20);
		if (loc >= 0)
			close(loc);
		return -e;
	}
	if (pid == 0) {
		/* Only async-signal-safe calls between fork and exec. */
		clear_cloexec(sv[1]);
		if (p20 >= 0)
			clear_cloexec(p20);
		if (loc >= 0)
			clear_cloexec(loc);
		if (m->xferlog_fd >= 0)
			clear_cloexec(m->xferlog_fd);
		if (m->root_fd >= 0)
			clear_cloexec(m->root_fd);
		if (m->users_fd >= 0)
			clear_cloexec(m->users_fd);
		if (m->tls_fd >= 0)
			clear_cloexec(m->tls_fd);
		vhost_fds_inherit(&m->hosts);
		execv("/proc/self/exe", args);
		_exit(127);
	}
	close(sv[1]);
	if (p20 >= 0)
		close(p20);
	if (loc >= 0)
		close(loc);
	if (send(sv[0], m->cfg, sizeof(*m->cfg), MSG_NOSIGNAL) != (ssize_t)sizeof(*m->cfg)) {
		log_error("cannot send the configuration to worker %u: %s", index, strerror(errno));
		kill(pid, SIGKILL);
	}
	memset(w, 0, sizeof(*w));
	w->m = m;
	w->pid = pid;
	w->index = index;
	w->started = time(NULL);
	w->ch = channel_new(m->base, sv[0], TO_MASTER, &worker_msgs, on_channel_failed, w);
	if (w->ch == NULL) {
		log_error("cannot watch the channel of worker %u: out of memory", index);
		kill(pid, SIGKILL);
		w->ending = w->draining = true;
	}
	log_info("started worker %u (pid %d)", index, (int)pid);
	return 0;
}

unsigned live_workers(const struct master *m, bool include_draining)
{
	unsigned n = 0;
	for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
		if (m->slots[i].pid != 0 && (include_draining || !m->slots[i].draining))
			n++;
	}
	return n;
}

/* Bring the number of active workers up to the configured count. */
void fill_workers(struct master *m)
{
	for (unsigned i = 0; i < MAX_WORKER_SLOTS && live_workers(m, false) < m->cfg->workers; i++) {
		int rc;
		if (m->slots[i].pid == 0 && (rc = spawn_worker(m, i)) < 0)
			log_error("cannot start a worker: %s", strerror(-rc));
	}
}

void free_slot(struct master *m, unsigned i)
{
	struct worker_slot *w = &m->slots[i];
	rec_remove_worker(m, i);
	pasv_broker_forget_worker(m->broker, i);
	channel_free(w->ch);
	memset(w, 0, sizeof(*w));
}

int pick_worker(const struct master *m)
{
	int best = -1;
	for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
		const struct worker_slot *w = &m->slots[i];
		if (w->pid == 0 || w->draining || w->ch == NULL || channel_failed(w->ch) ||
		    channel_queued(w->ch) >= CHANNEL_SOFT_LIMIT || w->load >= m->worker_capacity)
			continue;
		if (best < 0 || w->load < m->slots[best].load)
			best = (int)i;
	}
	return best;
}

void send_all(struct master *m, enum msg_type type, bool only_active)
{
	struct msg_empty e = { 0 };
	for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
		struct worker_slot *w = &m->slots[i];
		if (w->pid != 0 && w->ch != NULL && (!only_active || !w->draining))
			channel_send(w->ch, type, &e, -1);
	}
}

void poll_workers(struct master *m)
{
	for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
		if (m->slots[i].pid != 0 && m->slots[i].ch != NULL)
			channel_poll(m->slots[i].ch);
	}
}

void request_sync(struct master *m)
{
	uint64_t now = master_now_ms();
	if (now - m->sync_asked_ms < 1000)
		return;
	m->sync_asked_ms = now;
	send_all(m, MSG_SYNC_REQUEST, false);
}

/* ---- a worker's messages (messages.def) ---- */

static unsigned slot_of(const struct worker_slot *w)
{
	return (unsigned)(w - w->m->slots);
}

static void on_session_end(void *ctx, const struct msg_session *p, int fd)
{
	struct worker_slot *w = ctx;
	if (rec_owned(w->m, p->id, slot_of(w)) != NULL) {
		pasv_broker_close(w->m->broker, p->id, 0);
		rec_remove(w->m, p->id);
	}
}

static void on_pasv_open(void *ctx, const struct msg_pasv_open *p, int fd)
{
	struct worker_slot *w = ctx;
	answer_pasv(w->m, slot_of(w), p);
}

static void on_pasv_close(void *ctx, const struct msg_pasv_ref *p, int fd)
{
	struct worker_slot *w = ctx;
	if (rec_owned(w->m, p->id, slot_of(w)) != NULL)
		pasv_broker_close(w->m->broker, p->id, p->seq);
}

static void on_login_checking(void *ctx, const struct msg_session *p, int fd)
{
	struct worker_slot *w = ctx;
	struct conn_rec *r = rec_owned(w->m, p->id, slot_of(w));
	if (r != NULL)
		unauth_checking(w->m, r, true);
}

static void on_login_failed(void *ctx, const struct msg_session *p, int fd)
{
	struct worker_slot *w = ctx;
	login_failed(w->m, slot_of(w), p->id);
}

static void on_login_ok(void *ctx, const struct msg_session *p, int fd)
{
	struct worker_slot *w = ctx;
	struct conn_rec *r = rec_owned(w->m, p->id, slot_of(w));
	if (r != NULL)
		unauth_forget(w->m, r);
}

static void on_user_login(void *ctx, const struct msg_user_login *p, int fd)
{
	struct worker_slot *w = ctx;
	user_login(w->m, slot_of(w), p);
}

static void on_data_refused(void *ctx, const struct msg_data_refused *p, int fd)
{
	struct worker_slot *w = ctx;
	if (p->reason < DR_COUNT && p->reason != DR_FOREIGN_ADDRESS)
		w->m->data_refused[p->reason]++;
	else
		log_warn("worker %u reported a data connection refused for reason %u, which is "
			 "not a worker's; ignored", slot_of(w), (unsigned)p->reason);
}

static void on_sync_begin(void *ctx, const struct msg_sync *p, int fd)
{
	struct worker_slot *w = ctx;
	sync_begin(w->m, slot_of(w), p);
}

static void on_sync_ids(void *ctx, const struct msg_sync_ids *p, int fd)
{
	struct worker_slot *w = ctx;
	sync_ids(w->m, slot_of(w), p);
}

static void on_sync_end(void *ctx, const struct msg_sync *p, int fd)
{
	struct worker_slot *w = ctx;
	sync_end(w->m, slot_of(w), p);
}

static const struct channel_handlers worker_msgs = {
	.on_SESSION_END = on_session_end,
	.on_PASV_OPEN = on_pasv_open,
	.on_PASV_CLOSE = on_pasv_close,
	.on_LOGIN_CHECKING = on_login_checking,
	.on_LOGIN_FAILED = on_login_failed,
	.on_LOGIN_OK = on_login_ok,
	.on_USER_LOGIN = on_user_login,
	.on_DATA_REFUSED = on_data_refused,
	.on_SYNC_BEGIN = on_sync_begin,
	.on_SYNC_IDS = on_sync_ids,
	.on_SYNC_END = on_sync_end,
};

/*
 * A worker that breaks the protocol, or stops reading, is ended: SIGTERM lets its sessions
 * get their 421; SIGCHLD then frees its slot and its records.  One that merely closed its
 * channel is exiting anyway.
 */
static void on_channel_failed(void *ctx, enum channel_failure why, const char *detail)
{
	struct worker_slot *w = ctx;
	if (why == CHANNEL_CLOSED)
		return; /* it is exiting: SIGCHLD tells how */
	log_error("worker %u (pid %d) %s: %s; stopping it and starting another", w->index,
		  (int)w->pid, why == CHANNEL_PROTOCOL ? "broke the protocol" : "stopped reading",
		  detail);
	w->draining = w->ending = true;
	kill(w->pid, why == CHANNEL_PROTOCOL ? SIGKILL : SIGTERM);
	fill_workers(w->m);
}

/* ---- supervision ---- */

static void log_death(const struct worker_slot *w, pid_t pid, int status)
{
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		log_error("worker %u (pid %d) killed by signal %d (SIG%s%s); its %u sessions are "
			  "lost",
			  w->index, (int)pid, sig, sigabbrev_np(sig) != NULL ? sigabbrev_np(sig) : "?",
			  sig == SIGSYS ? ": a system call the sandbox forbids" : "", w->load);
	} else {
		log_error("worker %u (pid %d) exited with status %d", w->index, (int)pid,
			  WEXITSTATUS(status));
	}
}

static void on_respawn(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;
	if (!m->stopping)
		fill_workers(m);
}

void reap_children(struct master *m)
{
	int status;
	pid_t pid;
	bool lost = false;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == m->port20_pid) {
			log_error("the port-20 helper exited; active connections will use other ports");
			m->port20_pid = 0;
			close(m->port20_ctl);
			m->port20_ctl = -1;
			continue;
		}
		if (pid == m->local_pid) {
			if (!m->stopping)
				log_error("the local-users helper exited; local users cannot log in "
					  "until ferryd is restarted");
			m->local_pid = 0;
			close(m->local_ctl);
			m->local_ctl = -1;
			continue;
		}
		for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
			struct worker_slot *w = &m->slots[i];
			if (w->pid != pid)
				continue;
			bool expected = (w->draining && !w->ending) || m->stopping;
			bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
			if (!expected || !clean)
				log_death(w, pid, status);
			if (!expected && !w->ending) {
				lost = true;
				if (time(NULL) - w->started < QUICK_DEATH_SECONDS)
					m->quick_deaths++;
				else
					m->quick_deaths = 0;
			}
			free_slot(m, i);
		}
	}
	if (m->stopping) {
		if (live_workers(m, true) == 0)
			event_base_loopexit(m->base, NULL);
		return;
	}
	if (m->quick_deaths >= QUICK_DEATHS_MAX) {
		log_error("%u workers in a row died within %d s of starting (see their errors "
			  "above): stopping instead of starting more",
			  m->quick_deaths, QUICK_DEATH_SECONDS);
		master_stop(m, 1);
		return;
	}
	if (lost) {
		/* A worker that dies at once would otherwise be restarted in a tight loop. */
		if (m->respawn_timer == NULL)
			m->respawn_timer = evtimer_new(m->base, on_respawn, m);
		struct timeval tv = { .tv_sec = 1, .tv_usec = 0 };
		if (m->respawn_timer != NULL)
			evtimer_add(m->respawn_timer, &tv);
	}
}
