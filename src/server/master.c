/*
 * master.c: ferryd's master process: start-up (listeners, files opened with the privileges
 * it starts with, the privilege drop), the event loop, signals, reload and stop.  The
 * rest of its work is in the files master_int.h lists.
 */
#include "server/master.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/hostport.h"
#include "server/checks.h"
#include "server/master_int.h"
#include "server/pasv_broker.h"
#include "server/local_auth.h"
#include "server/port20.h"
#include "server/sd_notify.h"
#include "server/privdrop.h"
#include "server/resolver.h"
#include "server/sandbox.h"
#include "server/tls_files.h"
#include "server/users.h"

static void log_check(void *ctx, enum check_level level, const char *msg)
{
	if (level == CHECK_WARNING)
		log_warn("%s", msg);
	else
		log_info("%s", msg);
}

/* ---- signals ---- */

void master_stop(struct master *m, int status)
{
	if (status != 0)
		m->exit_status = status;
	if (m->stopping)
		return;
	m->stopping = true;
	sd_notifier_send(m->notify, "STOPPING=1");
	log_info("shutting down: no new sessions; transfers may run %u s",
		 m->cfg->shutdown_timeout);
	master_accept_stop(m);
	send_all(m, MSG_SHUTDOWN, false);
	struct timeval tv = { .tv_sec = m->cfg->shutdown_timeout + 5, .tv_usec = 0 };
	evtimer_add(m->kill_timer, &tv);
	if (live_workers(m, true) == 0)
		event_base_loopexit(m->base, NULL);
}

static void on_kill_timer(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;
	for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
		if (m->slots[i].pid != 0)
			kill(m->slots[i].pid, SIGKILL);
	}
	event_base_loopexit(m->base, NULL);
}

static int open_root(const char *dir)
{
	return open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static bool same_listeners(const struct config *a, const struct config *b)
{
	if (a->n_listen != b->n_listen)
		return false;
	for (unsigned i = 0; i < a->n_listen; i++) {
		if (!hostport_same_host(&a->listen[i], &b->listen[i]) ||
		    hostport_get_port(&a->listen[i]) != hostport_get_port(&b->listen[i]))
			return false;
	}
	return true;
}

/* Workers inherit the limit: what one holds is what one may be given (checks.h). */
/*
 * What a worker may hold under the descriptor limit; with "workers = 0", enough workers
 * for max_sessions (10,000 sessions under a limit of 20,000 need three, not one per CPU).
 */
static void set_worker_capacity(struct master *m)
{
	struct rlimit nofile;
	m->worker_capacity = m->cfg->max_sessions;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
	    nofile.rlim_cur < checks_fds_needed(m->cfg))
		m->worker_capacity = checks_worker_capacity(nofile.rlim_cur);
	if (!m->cfg->workers_auto)
		return;
	unsigned need = m->cfg->max_sessions / m->worker_capacity +
			(m->cfg->max_sessions % m->worker_capacity != 0);
	if (need > AUTO_WORKERS_MAX)
		need = AUTO_WORKERS_MAX;
	if (need > m->cfg->workers) {
		log_info("%u workers instead of one per CPU: each holds %u sessions under the "
			 "descriptor limit, and max_sessions is %u", need, m->worker_capacity,
			 m->cfg->max_sessions);
		m->cfg->workers = need;
	}
}

static void reload_files(struct master *m)
{
	struct config *n = calloc(1, sizeof(*n));
	bool check;
	if (n == NULL || config_load(n, m->argc, m->argv, &check, stderr) != 0) {
		log_error("reload failed: keeping the running configuration");
		free(n);
		return;
	}
	if (n->listen_default) {
		/* The default depends on the privileges at start-up, which a reload lacks. */
		memcpy(n->listen, m->cfg->listen, sizeof(n->listen));
		n->n_listen = m->cfg->n_listen;
	} else if (!same_listeners(m->cfg, n)) {
		log_warn("listen addresses changed: they take effect after a restart");
		memcpy(n->listen, m->cfg->listen, sizeof(n->listen));
		n->n_listen = m->cfg->n_listen;
	}
	if (n->n_listen_tls != m->cfg->n_listen_tls ||
	    memcmp(n->listen_tls, m->cfg->listen_tls, sizeof(n->listen_tls)) != 0)
		log_warn("listen_implicit_tls changed: it takes effect after a restart");
	memcpy(n->listen_tls, m->cfg->listen_tls, sizeof(n->listen_tls));
	n->n_listen_tls = m->cfg->n_listen_tls;
	if (strcmp(n->root, m->cfg->root) != 0) {
		int fd = n->root[0] != '\0' ? open_root(n->root) : -1;
		if (n->root[0] != '\0' && fd < 0) {
			log_error("reload failed: root %s: %s", n->root, strerror(errno));
			free(n);
			return;
		}
		if (m->root_fd >= 0)
			close(m->root_fd);
		m->root_fd = fd;
	}
	int ufd = -1;
	if (n->users_file[0] != '\0' && (ufd = users_snapshot(n->users_file)) < 0) {
		log_error("reload failed: users file %s: %s", n->users_file, strerror(-ufd));
		free(n);
		return;
	}
	struct users *parsed = NULL;
	if (ufd >= 0 && users_load_fd(ufd, n->users_file, &parsed, stderr) < 0) {
		/* Caught here, the running workers keep serving; caught by new workers, none would. */
		log_error("reload failed: users file %s is not valid: keeping the running "
			  "configuration", n->users_file);
		close(ufd);
		free(n);
		return;
	}
	users_free(parsed);
	struct vhost_fds hosts;
	char herr[512];
	if (vhost_fds_open(&hosts, n, herr, sizeof(herr)) < 0) {
		log_error("reload failed: %s: keeping the running configuration", herr);
		if (ufd >= 0)
			close(ufd);
		free(n);
		return;
	}
	struct resolver *res = m->pasv_resolver;
	bool same_name = res != NULL && strcmp(resolver_name(res), n->pasv_address) == 0 &&
			 n->pasv_address_refresh == m->cfg->pasv_address_refresh;
	if (is_host_name(n->pasv_address) && !same_name) {
		res = resolver_new(m->base, n->pasv_address, n->pasv_address_refresh);
		if (res == NULL) {
			log_error("reload failed: keeping the running configuration");
			vhost_fds_close(&hosts);
			if (ufd >= 0)
				close(ufd);
			free(n);
			return;
		}
	} else if (!is_host_name(n->pasv_address)) {
		res = NULL;
	}
	int tfd = -1;
	if (n->tls_cert[0] != '\0') {
		char err[512];
		if ((tfd = tls_files_load(n, err, sizeof(err))) < 0) {
			log_error("reload failed: %s", err);
			vhost_fds_close(&hosts);
			if (ufd >= 0)
				close(ufd);
			if (res != m->pasv_resolver)
				resolver_free(res);
			free(n);
			return;
		}
	}
	if (res != m->pasv_resolver) {
		resolver_free(m->pasv_resolver);
		m->pasv_resolver = res;
	}
	if (m->tls_fd >= 0)
		close(m->tls_fd);
	m->tls_fd = tfd;
	if (m->users_fd >= 0)
		close(m->users_fd);
	m->users_fd = ufd;
	vhost_fds_close(&m->hosts);
	m->hosts = hosts;
	free(m->cfg);
	m->cfg = n;
	set_worker_capacity(m);
	/* Old workers finish their sessions with the old configuration; new ones get this. */
	send_all(m, MSG_DRAIN, true);
	for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
		if (m->slots[i].pid != 0)
			m->slots[i].draining = true;
	}
	fill_workers(m);
	log_info("configuration reloaded; new sessions use it");
}

/* What start-up read with its privileges, a reload reads with the one it kept for that. */
static void reload(struct master *m)
{
	/* systemd >= 253 wants the time with it (Type=notify-reload); older ones ignore it. */
	char state[64];
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
	sd_notifier_send(m->notify, state);
	int rc = privdrop_read_privilege(true);
	if (rc < 0)
		log_warn("reload: cannot raise CAP_DAC_READ_SEARCH: %s; reading the files as user %s",
			 strerror(-rc), m->cfg->user);
	reload_files(m);
	if ((rc = privdrop_read_privilege(false)) < 0)
		log_error("reload: cannot lower CAP_DAC_READ_SEARCH again: %s", strerror(-rc));
	/* Reloaded or not (a bad file keeps the running configuration): serving either way. */
	sd_notifier_send(m->notify, "READY=1");
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;
	sd_notifier_send(m->notify, "WATCHDOG=1");
}

/* READY=1, and the watchdog's pings from the loop when the manager asks for them. */
static int notify_ready(struct master *m)
{
	char state[96];
	snprintf(state, sizeof(state), "READY=1\nSTATUS=serving with %u workers",
		 live_workers(m, false));
	sd_notifier_send(m->notify, state);
	uint64_t usec = sd_notifier_watchdog_usec(m->notify);
	if (usec == 0)
		return 0;
	m->watchdog_ev = event_new(m->base, -1, EV_PERSIST, on_watchdog, m);
	struct timeval tv = { .tv_sec = (time_t)(usec / 1000000u),
			      .tv_usec = (suseconds_t)(usec % 1000000u) };
	if (m->watchdog_ev == NULL || event_add(m->watchdog_ev, &tv) < 0)
		return -1;
	sd_notifier_send(m->notify, "WATCHDOG=1");
	return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct master *m = arg;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		master_stop(m, 0);
		break;
	case SIGHUP:
		if (!m->stopping)
			reload(m);
		break;
	case SIGCHLD:
		reap_children(m);
		break;
	case SIGUSR1:
		master_log_status(m);
		break;
	}
}

/* Everything opened with the privileges ferryd starts with; then they are dropped. */
static int start_privileged(struct master *m)
{
	struct config *cfg = m->cfg;
	if (master_listen(m) < 0)
		return -1;
	if (cfg->tls_cert[0] != '\0') {
		char err[512];
		if ((m->tls_fd = tls_files_load(cfg, err, sizeof(err))) < 0) {
			log_error("%s", err);
			return -1;
		}
	}
	if (cfg->xferlog[0] != '\0') {
		m->xferlog_fd = open(cfg->xferlog, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (m->xferlog_fd < 0) {
			log_error("xferlog %s: %s", cfg->xferlog, strerror(errno));
			return -1;
		}
	}
	/*
	 * Opened now, with the privileges we start with, so that the served directory may
	 * sit below directories the unprivileged user cannot traverse (such as /root).
	 */
	if (cfg->root[0] != '\0' && (m->root_fd = open_root(cfg->root)) < 0) {
		log_error("root %s: %s", cfg->root, strerror(errno));
		return -1;
	}
	if (cfg->users_file[0] != '\0' && (m->users_fd = users_snapshot(cfg->users_file)) < 0) {
		log_error("users file %s: %s", cfg->users_file, strerror(-m->users_fd));
		return -1;
	}
	char herr[512];
	if (vhost_fds_open(&m->hosts, cfg, herr, sizeof(herr)) < 0) {
		log_error("%s", herr);
		return -1;
	}
	/* Before the helper is forked and privileges are dropped: see sandbox.h. */
	if (sandbox_master() < 0)
		return -1;
	if (geteuid() == 0) {
		if (cfg->active_from_port_20) {
			m->port20_pid = port20_start(cfg->user, &m->port20_ctl);
			if (m->port20_pid < 0) {
				log_error("cannot start the port-20 helper: %s",
					  strerror((int)-m->port20_pid));
				return -1;
			}
		}
		if (cfg->local_users || (cfg->ldap_own_ids && cfg->ldap_uri[0] != '\0')) {
			m->local_pid = local_auth_start(cfg, &m->local_ctl);
			if (m->local_pid < 0) {
				log_error("cannot start the local-users helper: %s",
					  strerror((int)-m->local_pid));
				return -1;
			}
		}
		if (privdrop_to_user(cfg->user, true) < 0)
			return -1;
	} else if (cfg->local_users || cfg->ldap_own_ids) {
		log_error("%s needs ferryd started as root (PAM reads /etc/shadow, and each user's "
			  "file helper takes the user's ids)",
			  cfg->local_users ? "local_users" : "ldap_own_ids");
		return -1;
	} else if (cfg->active_from_port_20) {
		log_warn("active_from_port_20 needs root at start-up; active data connections "
			 "will come from unprivileged ports");
	}
	return 0;
}

static int start_loop(struct master *m)
{
	m->base = event_base_new();
	if (m->base == NULL || master_accept_start(m) < 0)
		return -1;
	static const int sigs[5] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1 };
	for (unsigned i = 0; i < 5; i++) {
		m->sig_ev[i] = evsignal_new(m->base, sigs[i], on_signal, m);
		if (m->sig_ev[i] == NULL || event_add(m->sig_ev[i], NULL) < 0)
			return -1;
	}
	m->broker = pasv_broker_new(m->base, deliver_data, m);
	if (m->broker == NULL)
		return -1;
	if (is_host_name(m->cfg->pasv_address) &&
	    (m->pasv_resolver = resolver_new(m->base, m->cfg->pasv_address,
					     m->cfg->pasv_address_refresh)) == NULL)
		return -1;
	m->kill_timer = evtimer_new(m->base, on_kill_timer, m);
	if (m->kill_timer == NULL || master_login_init(m) < 0)
		return -1;
	return 0;
}

static void master_free(struct master *m)
{
	for (unsigned i = 0; i < MAX_WORKER_SLOTS; i++) {
		if (m->slots[i].pid != 0)
			free_slot(m, i);
	}
	master_accept_stop(m);
	pasv_broker_free(m->broker);
	resolver_free(m->pasv_resolver);
	for (unsigned i = 0; i < 5; i++) {
		if (m->sig_ev[i] != NULL)
			event_free(m->sig_ev[i]);
	}
	if (m->kill_timer != NULL)
		event_free(m->kill_timer);
	if (m->respawn_timer != NULL)
		event_free(m->respawn_timer);
	if (m->evict_timer != NULL)
		event_free(m->evict_timer);
	if (m->watchdog_ev != NULL)
		event_free(m->watchdog_ev);
	sd_notifier_free(m->notify);
	master_login_free(m);
	if (m->base != NULL)
		event_base_free(m->base);
	if (m->port20_pid > 0)
		kill(m->port20_pid, SIGTERM);
	if (m->local_pid > 0)
		kill(m->local_pid, SIGTERM);
	if (m->xferlog_fd >= 0)
		close(m->xferlog_fd);
	if (m->root_fd >= 0)
		close(m->root_fd);
	if (m->users_fd >= 0)
		close(m->users_fd);
	if (m->tls_fd >= 0)
		close(m->tls_fd);
	vhost_fds_close(&m->hosts);
	free(m->cfg);
	free(m);
}

int master_main(struct config *cfg, int argc, char **argv)
{
	struct master *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return 1;
	m->cfg = cfg;
	m->argc = argc;
	m->argv = argv;
	m->xferlog_fd = -1;
	m->root_fd = -1;
	m->users_fd = -1;
	m->tls_fd = -1;
	vhost_fds_init(&m->hosts);
	m->port20_ctl = -1;
	m->local_ctl = -1;
	m->reserve_fd = -1;
	TAILQ_INIT(&m->unauth);
	log_set_role("master");
	/* Connected now: after the privilege drop its path may be out of reach. */
	m->notify = sd_notifier_open();
	set_worker_capacity(m);
	signal(SIGPIPE, SIG_IGN);
	/* Before the privilege drop: the checks judge the privileges ferryd started with. */
	checks_run(cfg, log_check, NULL);

	if (start_privileged(m) < 0 || start_loop(m) < 0) {
		master_free(m);
		return 1;
	}
	fill_workers(m);
	log_info("ready: %u workers", live_workers(m, false));
	if (notify_ready(m) < 0) {
		log_error("cannot start the watchdog's timer");
		master_free(m);
		return 1;
	}

	event_base_dispatch(m->base);

	int status = m->exit_status;
	master_free(m);
	log_info("stopped%s", status != 0 ? " (failure)" : "");
	return status;
}
