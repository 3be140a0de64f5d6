/*
 * cmd_auth.c: USER, PASS, ACCT.  Logins are the same to an observer whatever went wrong:
 * one reply text, one delay, one hash computed, for unknown users and wrong passwords alike.
 *
 * The delay is the master's to decide, since only it sees every session of an address
 * (throttle.h): each failure is reported (LOGIN_FAILED) and the session stays busy,
 * reading no command, until the master's LOGIN_DELAY sets when the 530 goes out.
 * Each login is reported too (LOGIN_OK), so that the master counts the sessions that
 * have not logged in (max_unauthenticated).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/reply.h"
#include "server/auth.h"
#include "server/cmd_tls.h"
#include "server/dispatch.h"
#include "server/fs_proxy.h"
#include "server/log.h"
#include "server/quota.h"
#include "server/session.h"
#include "server/throttle.h"
#include "server/user_group.h"
#include "server/user_settings.h"
#include "server/users.h"
#include "server/vfs.h"
#include "server/worker.h"

static bool is_anonymous_name(const char *name)
{
	return strcasecmp(name, "anonymous") == 0 || strcasecmp(name, "ftp") == 0;
}

void cmd_user(struct session *s, const char *arg)
{
	if (s->flags & SF_LOGGED_IN) {
		session_reply(s, R_530_NOT_LOGGED_IN, "Cannot change to another user.");
		return;
	}
	if (!tls_login_allowed(s, is_anonymous_name(arg)))
		return;
	if (str_copy(s->username, sizeof(s->username), arg) < 0)
		s->username[0] = '\0'; /* too long to exist: fails at PASS like any unknown user */
	s->flags |= SF_USER_GIVEN;
	session_reply(s, R_331_NEED_PASSWORD,
		      is_anonymous_name(arg) ? "Anonymous login ok, send your e-mail address as password."
					     : "Please specify the password.");
}

static void on_delay_over(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	event_free(s->delay_timer);
	s->delay_timer = NULL;
	session_reply(s, R_530_NOT_LOGGED_IN, "Login incorrect.");
	if (s->login_failures >= s->srv->cfg->max_login_failures) {
		log_warn("session %llu: %u failed logins from %s; closing", (unsigned long long)s->id,
			 s->login_failures, s->peer_str);
		session_close_after_flush(s, "too many failed logins");
		return;
	}
	session_resume(s);
}

static int arm_delay(struct session *s, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	return evtimer_add(s->delay_timer, &tv);
}

/* Tell the master about a login, failed or not; returns 0 or -errno (logged). */
static int report(struct session *s, enum msg_type type)
{
	return worker_report(s->srv, type, s->id);
}

static void login_failed(struct session *s)
{
	s->login_failures++;
	log_info("session %llu login failed client=%s user=%s", (unsigned long long)s->id,
		 s->peer_str, LOG_Q(s->username));
	s->username[0] = '\0';
	s->flags &= ~SF_USER_GIVEN;
	/*
	 * The delay slows guessing; the session waits (busy) until it is over.  Its length
	 * comes from the master: until the answer, the timer stands at the longest delay,
	 * which only matters if the master never answers.  Without a master, the base delay.
	 */
	s->delay_timer = evtimer_new(s->srv->base, on_delay_over, s);
	if (s->delay_timer == NULL) {
		session_close(s, "out of memory");
		return;
	}
	unsigned ms = report(s, MSG_LOGIN_FAILED) == 0 ? THROTTLE_MAX_DELAY_MS
						       : s->srv->cfg->login_failure_delay;
	if (arm_delay(s, ms) < 0)
		session_close(s, "out of memory");
}

void login_delay_decided(struct session *s, unsigned ms)
{
	/* The same timer, re-armed: a session the master has closed meanwhile has none. */
	if (s->delay_timer != NULL && arm_delay(s, ms) < 0)
		session_close(s, "out of memory");
}

void login_abandon(struct session *s)
{
	if (s->delay_timer != NULL) {
		event_free(s->delay_timer);
		s->delay_timer = NULL;
	}
	if (s->auth != NULL) {
		auth_cancel(s->auth);
		s->auth = NULL;
	}
	s->admit = NULL;
}

void login_closed_by_master(struct session *s, bool banned)
{
	if (s->flags & (SF_LOGGED_IN | SF_CLOSING))
		return; /* logged in since the master decided, or going anyway */
	/* Nothing more from this login: no 530 or 230 after the 421. */
	login_abandon(s);
	if (banned) {
		session_reply(s, R_421_CLOSING,
			      "Too many failed logins from your address; try again later.");
		session_close_after_flush(s, "address banned");
	} else {
		session_reply(s, R_421_CLOSING,
			      "Too many connections waiting to log in; closing the oldest.");
		session_close_after_flush(s, "oldest not logged in (max_unauthenticated)");
	}
}

/* The session is logged in: its root is open, its settings (if any) in place. */
static void logged_in(struct session *s, bool anonymous)
{
	s->flags |= SF_LOGGED_IN;
	if (anonymous) {
		s->flags |= SF_ANONYMOUS;
		str_copy(s->username, sizeof(s->username), "anonymous");
	}
	if (session_set_cwd(s, "/") < 0) {
		session_reply(s, R_421_CLOSING, "Out of memory; try again later.");
		session_close_after_flush(s, "out of memory");
		return;
	}
	log_info("session %llu login client=%s user=%s%s%s%s", (unsigned long long)s->id,
		 s->peer_str, LOG_Q(s->username), anonymous ? " (anonymous)" : "",
		 s->host->name != NULL ? " host=" : "", s->host->name != NULL ? s->host->name : "");
	quota_session_login(s); /* a missing tally is counted here, not during an upload */
	session_reply(s, R_230_LOGGED_IN, "Login successful.");
	session_touch(s);
}

/* Open the user's root; false (replied) when it cannot be. */
static bool open_root(struct session *s, const char *home, bool anonymous)
{
	if (!anonymous && s->pending_conn >= 0) {
		/* A local user: the root is the connection to the user's file helper. */
		int conn = s->pending_conn;
		s->pending_conn = -1;
		int rc = fs_proxy_attach(conn);
		if (rc < 0) {
			close(conn);
			log_error("session %llu: the file helper of user=%s does not answer: %s",
				  (unsigned long long)s->id, LOG_Q(s->username), strerror(-rc));
			session_reply(s, R_421_CLOSING, "Service not available; try again later.");
			session_close_after_flush(s, "file helper unavailable");
			return false;
		}
		s->root_fd = conn;
		return true;
	}
	/* The anonymous root was opened by the master, before it dropped privileges. */
	int fd = anonymous ? fcntl(s->host->root_fd, F_DUPFD_CLOEXEC, 0) : vfs_open_root(home);
	if (fd < 0 && anonymous)
		fd = -errno;
	if (fd == -EMFILE || fd == -ENFILE) {
		/* Not the user's fault, and not a failed login: the server is full. */
		log_warn("session %llu: out of descriptors at login: %s", (unsigned long long)s->id,
			 strerror(-fd));
		session_reply(s, R_421_CLOSING, "Server out of resources; try again later.");
		session_close_after_flush(s, "out of descriptors");
		return false;
	}
	if (fd < 0) {
		log_error("session %llu: home of user=%s home=%s unavailable: %s",
			  (unsigned long long)s->id, LOG_Q(s->username), LOG_Q(home), strerror(-fd));
		session_reply(s, R_530_NOT_LOGGED_IN, "Login failed: home directory unavailable.");
		s->flags &= ~SF_USER_GIVEN;
		return false;
	}
	s->root_fd = fd;
	return true;
}

static void login_anonymous(struct session *s)
{
	if (!open_root(s, s->host->root, true))
		return;
	s->perms = s->srv->cfg->anon_permissions;
	report(s, MSG_LOGIN_OK); /* no longer counts as waiting to log in */
	logged_in(s, true);
}

/* Whether u has limits the master must count across its sessions (master_users.c). */
static bool spans_sessions(const struct user_entry *u)
{
	return u->set != NULL &&
	       (u->set->max_sessions != 0 || u->set->user_rate_down != 0 || u->set->user_rate_up != 0);
}

/*
 * The name limits across sessions count under: a [host] users file's user is that host's
 * ("HOST:name": ':' is in no user name), any other source's is the same on every host.
 */
static void user_key(const struct session *s, const struct user_entry *u, char *out,
		     size_t outsz)
{
	const struct users *t = s->host->users;
	bool hosts_own = s->host->name != NULL && t != NULL && u >= t->v && u < t->v + t->n;
	snprintf(out, outsz, "%s%s%s", hosts_own ? s->host->name : "", hosts_own ? ":" : "",
		 u->name);
}

/* Take u's permissions, settings and shared rates; false (replied) on failure. */
static bool take_user(struct session *s, const struct user_entry *u)
{
	s->perms = u->perms;
	s->set = u->set; /* the frozen users table's, or user_owned's: both outlive the session */
	if (u->set != NULL && (u->set->user_rate_down != 0 || u->set->user_rate_up != 0)) {
		char key[USER_KEY_MAX];
		user_key(s, u, key, sizeof(key));
		s->group = user_group_get(s->srv, key, u->set->user_rate_down,
					  u->set->user_rate_up);
		if (s->group == NULL) {
			session_reply(s, R_421_CLOSING, "Out of memory; try again later.");
			session_close_after_flush(s, "out of memory");
			return false;
		}
	}
	return true;
}

/* The password was right (or the certificate stands for it): the user u logs in. */
static void login_user(struct session *s, const struct user_entry *u)
{
	struct sockaddr_storage peer = session_peer(s);
	if (!user_settings_allows(u->set, &peer)) {
		/* Told apart in the log only: to the client, a wrong password. */
		log_warn("session %llu: user=%s may not log in from %s (allow)",
			 (unsigned long long)s->id, LOG_Q(u->name), s->peer_str);
		login_failed(s);
		return;
	}
	if (!spans_sessions(u)) {
		if (!open_root(s, u->home, false) || !take_user(s, u))
			return;
		report(s, MSG_LOGIN_OK);
		logged_in(s, false);
		return;
	}
	/* The master counts the user's sessions in every worker: wait for its word. */
	struct msg_user_login msg = { .id = s->id,
				      .max_sessions = u->set->max_sessions,
				      .rate_down = (uint32_t)u->set->user_rate_down,
				      .rate_up = (uint32_t)u->set->user_rate_up };
	user_key(s, u, msg.name, sizeof(msg.name));
	if (s->srv->master == NULL || send_USER_LOGIN(s->srv->master, &msg, -1) < 0) {
		session_reply(s, R_421_CLOSING, "Service not available; try again later.");
		session_close_after_flush(s, "cannot reach the master");
		return;
	}
	s->admit = u;
}

void login_admitted(struct session *s, int error, unsigned sessions)
{
	const struct user_entry *u = s->admit;
	if (u == NULL)
		return; /* closed or abandoned meanwhile */
	s->admit = NULL;
	if (error != 0) {
		log_info("session %llu: user=%s refused: %u sessions already (max_sessions %u)",
			 (unsigned long long)s->id, LOG_Q(u->name), sessions, u->set->max_sessions);
		session_replyf(s, R_530_NOT_LOGGED_IN,
			       "Too many sessions for this user (at most %u); try again later.",
			       u->set->max_sessions);
		s->username[0] = '\0';
		s->flags &= ~SF_USER_GIVEN;
		session_resume(s);
		return;
	}
	/* Counted by the master from now on: a root that fails ends the session's count too. */
	if (open_root(s, u->home, false) && take_user(s, u))
		logged_in(s, false);
	session_resume(s);
}

static void on_checked(void *ctx, struct auth_result *res)
{
	struct session *s = ctx;
	s->auth = NULL;
	if (res->status < 0) {
		/* Logged by the check: an outage of the user database is not the user's failure. */
		report(s, MSG_LOGIN_OK); /* not idle any more; the session ends anyway */
		session_reply(s, R_421_CLOSING, "Service not available: the user database cannot be "
						"reached; try again later.");
		session_close_after_flush(s, "user database unreachable");
		return;
	}
	if (res->status == 0) {
		login_failed(s);
	} else {
		session_forget_user(s); /* a previous login's, refused after its password */
		s->user_owned = res->owned;
		res->owned = NULL;
		if (s->pending_conn >= 0)
			close(s->pending_conn);
		s->pending_conn = res->fs_conn;
		res->fs_conn = -1;
		login_user(s, res->user);
	}
	session_resume(s);
}

void cmd_pass(struct session *s, const char *arg)
{
	if (s->flags & SF_LOGGED_IN) {
		session_reply(s, R_230_LOGGED_IN, "Already logged in.");
		return;
	}
	if (!(s->flags & SF_USER_GIVEN)) {
		session_reply(s, R_503_BAD_SEQUENCE, "Login with USER first.");
		return;
	}
	/* Anonymous users and the users file are the session's host's (cmd_host.c). */
	if (is_anonymous_name(s->username) && s->host->anonymous && s->host->root_fd >= 0) {
		login_anonymous(s);
		return;
	}
	const struct user_entry *cu = tls_cert_names_user(s) ? users_find(s->host->users, s->username)
							      : NULL;
	if (cu != NULL) {
		/* tls_cert_login: the verified certificate stands for the password. */
		log_info("session %llu: user=%s logs in by client certificate",
			 (unsigned long long)s->id, LOG_Q(s->username));
		login_user(s, cu);
		return;
	}
	/* Everything else, even a user that cannot exist, costs one hash off the loop. */
	s->auth = auth_check_in(s->srv->auth, s->host->users, s->username, arg, on_checked, s);
	if (s->auth == NULL)
		login_failed(s);
	else
		report(s, MSG_LOGIN_CHECKING); /* not idle: max_unauthenticated spares it */
}

void cmd_acct(struct session *s, const char *arg)
{
	session_reply(s, R_202_SUPERFLUOUS, "ACCT not needed.");
}
