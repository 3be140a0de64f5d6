/*
 * local_auth.c: local system users (local_users = yes).  The local-auth helper is the one
 * process of ferryd that keeps root, with no capability but CAP_SETUID and CAP_SETGID:
 * it checks a password and the account through PAM (service pam_service), and it starts
 * each user's file helper (file_helper.c) under the user's own ids.
 *
 * Why a helper: pam_unix reads /etc/shadow, which only root may, and making a process of
 * another uid needs CAP_SETUID; a worker, which faces the network, must hold neither.  Why
 * a file helper per user and not per session: the kernel must judge every file operation
 * of the user with the user's own ids (what alice cannot read on the shell she cannot read
 * here, and what she uploads is hers), and a process per session would cost what ferryd's
 * sessions do not.  One process per user with sessions, made at the first login, ended
 * when the last session of the user has gone.
 *
 * The helper takes requests on one channel per worker (LOCAL_LOGIN -> LOCAL_REPLY,
 * messages.def); a worker's password thread waits for its answer, so a channel has at
 * most one in flight.  Each PAM check runs in a child of its own (up to LOCAL_MAX_CHECKS at
 * once), so that logins are checked in parallel.  Workers never see a hash: PAM reads
 * it, here.
 */
#include "server/local_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <security/pam_appl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "server/channel.h"
#include "server/log.h"
#include "server/userdb_ldap.h"
#include "server/user_settings.h"
#include "server/users.h"

#define LOCAL_MAX_CHANNELS 1024
#define LOCAL_MAX_HELPERS 4096
#define LOGIN_TIMEOUT_MS 30000

/* Who a file helper runs as: a system account (its groups from the system) or not. */
struct identity {
	const char *name;
	uid_t uid;
	gid_t gid;
	bool system;               /* initgroups(name); else the one group gid */
};

struct files_helper {
	uid_t uid;
	char root[4096];
	pid_t pid;
	int ctl;               /* FILES_CONN, FILES_IDLE, FILES_EXIT */
};

/* A login whose PAM check runs in a child (check_in_child). */
struct pending {
	int chan;              /* the worker's channel that waits for the answer */
	int pipe;              /* the child's verdict */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	char name[64];
	char home[4096];
};

struct verdict {
	int status;
	char why[124];
};

#define LOCAL_MAX_CHECKS 32

struct local {
	const struct config *cfg;
	int ctl;               /* from the master: LOCAL_CHANNEL */
	int chans[LOCAL_MAX_CHANNELS];
	unsigned n_chans;
	struct files_helper *helpers[LOCAL_MAX_HELPERS];
	unsigned n_helpers;
	struct ldap_source *ldap; /* ldap_own_ids: directory logins are checked here */
	struct pending pending[LOCAL_MAX_CHECKS];
	unsigned n_pending;
};

static void serve_login_pam(struct local *l, int chan, struct msg_local_login *q);

/* ---- PAM ---- */

struct conv_data {
	const char *password;
};

/* PAM asks for the password (echo off) and may tell us things; nothing else is answered. */
static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *arg)
{
	struct conv_data *d = arg;
	struct pam_response *r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF) {
			r[i].resp = strdup(d->password);
			if (r[i].resp == NULL) {
				free(r);
				return PAM_BUF_ERR;
			}
		} else if (msg[i]->msg_style == PAM_PROMPT_ECHO_ON) {
			for (int j = 0; j < i; j++) {
				if (r[j].resp != NULL) {
					explicit_bzero(r[j].resp, strlen(r[j].resp));
					free(r[j].resp);
				}
			}
			free(r);
			return PAM_CONV_ERR; /* a second question (a token, a name): not over FTP */
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

/* ferryd delays failed logins itself (the master's throttle): no sleep in here. */
static void no_delay(int retval, unsigned usec, void *arg)
{
	(void)retval;
	(void)usec;
	(void)arg;
}

/* 1: the password and the account are good; 0: refused (why in *why); -1: PAM failed. */
static int pam_check(const char *service, const char *name, const char *password,
		     const char **why)
{
	struct conv_data d = { .password = password };
	struct pam_conv c = { .conv = conv, .appdata_ptr = &d };
	pam_handle_t *h = NULL;
	int rc = pam_start(service, name, &c, &h);
	if (rc != PAM_SUCCESS) {
		*why = "pam_start failed";
		return -1;
	}
	pam_set_item(h, PAM_FAIL_DELAY, (const void *)no_delay);
	rc = pam_authenticate(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	int result = 1;
	if (rc != PAM_SUCCESS) {
		*why = pam_strerror(h, rc);
		result = rc == PAM_ABORT || rc == PAM_BUF_ERR || rc == PAM_SYSTEM_ERR ? -1 : 0;
	} else if ((rc = pam_acct_mgmt(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK)) != PAM_SUCCESS) {
		/* Expired, locked, or a password that must change first: all refused here. */
		*why = pam_strerror(h, rc);
		result = 0;
	}
	static char why_copy[128];
	if (result != 1) {
		snprintf(why_copy, sizeof(why_copy), "%s", *why);
		*why = why_copy;
	}
	pam_end(h, rc);
	return result;
}

/* ---- checks beyond PAM ---- */

/* Whether name is listed in the ftpusers file (one name a line, '#' comments). */
static bool in_ftpusers(const char *file, const char *name)
{
	FILE *f = fopen(file, "re");
	if (f == NULL)
		return false; /* no file: nobody is listed */
	char line[256];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, " \t\r\n#")] = '\0';
		found = strcmp(line, name) == 0;
	}
	fclose(f);
	return found;
}

static bool shell_valid(const char *shell)
{
	bool ok = false;
	setusershell();
	for (const char *s; !ok && (s = getusershell()) != NULL;)
		ok = strcmp(s, shell) == 0;
	endusershell();
	return ok;
}

/* local_root with %u (the name) and %h (the home) filled in. */
static int expand_root(const char *pattern, const char *name, const char *home, char *out,
		       size_t outsz)
{
	struct buf b;
	buf_init(&b, outsz - 1);
	int rc = 0;
	for (const char *p = pattern; *p != '\0' && rc == 0; p++) {
		if (p[0] == '%' && p[1] == 'u') {
			rc = buf_append(&b, name, strlen(name));
			p++;
		} else if (p[0] == '%' && p[1] == 'h') {
			rc = buf_append(&b, home, strlen(home));
			p++;
		} else {
			rc = buf_append(&b, p, 1);
		}
	}
	if (rc == 0)
		rc = b.len > 0 && b.data[0] == '/' ? str_copy(out, outsz, "") : -EINVAL;
	if (rc == 0) {
		memcpy(out, b.data, b.len);
		out[b.len] = '\0';
	}
	buf_free(&b);
	return rc < 0 ? -EINVAL : 0;
}

/* ---- file helpers ---- */

static void forget_helper(struct local *l, unsigned i)
{
	close(l->helpers[i]->ctl);
	free(l->helpers[i]);
	l->helpers[i] = l->helpers[--l->n_helpers];
}

/*
 * Start the file helper of uid beneath root: a child that takes the user's ids and groups,
 * opens the root as the user, and becomes `ferryd --file-helper CTL ROOT` (a fresh address
 * space: nothing of PAM's memory goes along).  Returns the helper or NULL (logged).
 */
static struct files_helper *start_helper(struct local *l, const struct identity *id,
					 const char *root)
{
	if (l->n_helpers == LOCAL_MAX_HELPERS) {
		log_error("local users: %u users have sessions; no file helper for %s",
			  LOCAL_MAX_HELPERS, id->name);
		return NULL;
	}
	struct files_helper *h = calloc(1, sizeof(*h));
	int sv[2];
	if (h == NULL || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_error("local users: no file helper for %s: %s", id->name, strerror(errno));
		free(h);
		return NULL;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_error("local users: cannot fork a file helper for %s: %s", id->name,
			  strerror(errno));
		close(sv[0]);
		close(sv[1]);
		free(h);
		return NULL;
	}
	if (pid == 0) {
		close(sv[0]);
		/* Files the user uploads get the configured umask, as a virtual user's do. */
		umask((mode_t)l->cfg->umask);
		/* Our own executable, found as root: the user need not reach its directory. */
		int exe = open("/proc/self/exe", O_PATH | O_CLOEXEC);
		if ((id->system ? initgroups(id->name, id->gid) : setgroups(1, &id->gid)) < 0 ||
		    setresgid(id->gid, id->gid, id->gid) < 0 ||
		    setresuid(id->uid, id->uid, id->uid) < 0) {
			log_error("file helper of %s: cannot take its ids: %s", id->name,
				  strerror(errno));
			_exit(1);
		}
		/* After the ids change, which clears it: the helper goes when we go. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		/* Opened as the user: a root the user may not enter is refused here. */
		int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (rfd < 0) {
			log_error("file helper of %s: root %s: %s", id->name, root,
				  strerror(errno));
			_exit(2);
		}
		int ctl = fcntl(sv[1], F_DUPFD, 3), r = fcntl(rfd, F_DUPFD, 3);
		char a_ctl[16], a_root[16];
		snprintf(a_ctl, sizeof(a_ctl), "%d", ctl);
		snprintf(a_root, sizeof(a_root), "%d", r);
		char *argv[] = { "ferryd", "--file-helper", a_ctl, a_root, NULL };
		char *envp[] = { NULL };
		syscall(SYS_execveat, exe, "", argv, envp, AT_EMPTY_PATH);
		log_error("file helper of %s: exec: %s", id->name, strerror(errno));
		_exit(1);
	}
	close(sv[1]);
	h->uid = id->uid;
	str_copy(h->root, sizeof(h->root), root);
	h->pid = pid;
	h->ctl = sv[0];
	l->helpers[l->n_helpers++] = h;
	log_info("local users: file helper of %s (uid %u) started, pid %d, root %s", id->name,
		 (unsigned)id->uid, (int)pid, root);
	return h;
}

/* A new connection to the user's file helper (made if needed): the worker's end, or -1. */
static int connect_helper(struct local *l, const struct identity *id, const char *root)
{
	struct files_helper *h = NULL;
	for (unsigned i = 0; i < l->n_helpers && h == NULL; i++) {
		if (l->helpers[i]->uid == id->uid && strcmp(l->helpers[i]->root, root) == 0)
			h = l->helpers[i];
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		if (h == NULL && (h = start_helper(l, id, root)) == NULL)
			return -1;
		int conn = msg_hand_over(h->ctl, MSG_FILES_CONN);
		if (conn >= 0)
			return conn;
		/* It has just ended: forget it, and start another. */
		for (unsigned i = 0; i < l->n_helpers; i++) {
			if (l->helpers[i] == h) {
				forget_helper(l, i);
				break;
			}
		}
		h = NULL;
	}
	return -1;
}

/* ---- requests ---- */

static void answer(int chan, struct msg_local_reply *rep, int fd)
{
	if (msg_write(chan, MSG_LOCAL_REPLY, rep, fd) < 0)
		log_warn("local users: cannot answer a worker: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	explicit_bzero(rep, sizeof(*rep));
}

/*
 * A directory user with its own ids (ldap_own_ids): the bind is checked here, where the
 * uid cannot be made up by a worker, and the file helper runs as uidNumber/gidNumber.
 */
static void serve_ldap_login(struct local *l, int chan, struct msg_local_login *q)
{
	struct msg_local_reply *rep = calloc(1, sizeof(*rep));
	struct user_entry *e = calloc(1, sizeof(*e));
	char err[512] = "";
	if (rep == NULL || e == NULL) {
		free(rep);
		free(e);
		return;
	}
	if (l->ldap == NULL) {
		struct ldap_source_config lc;
		ldap_source_config_from(l->cfg, &lc);
		lc.own_ids = true;
		if (ldap_source_new(&lc, &l->ldap, err, sizeof(err)) < 0)
			l->ldap = NULL;
		explicit_bzero(&lc, sizeof(lc));
	}
	int rc = l->ldap == NULL ? -1 : ldap_source_login(l->ldap, q->name, q->password, e, err,
							  sizeof(err));
	explicit_bzero(q->password, sizeof(q->password));
	int conn = -1;
	if (rc == 1) {
		struct identity id = { .name = e->name, .uid = e->uid, .gid = e->gid };
		if (e->uid == 0 || e->gid == 0 || !e->own_ids) {
			snprintf(err, sizeof(err), "user %s: no uidNumber/gidNumber other than 0",
				 e->name);
			rc = -1;
		} else if ((conn = connect_helper(l, &id, e->home)) < 0) {
			snprintf(err, sizeof(err), "user %s: no file helper", e->name);
			rc = -1;
		}
	}
	rep->status = rc;
	if (rc == 1) {
		rep->uid = e->uid;
		rep->gid = e->gid;
		rep->perms = e->perms;
		str_copy(rep->name, sizeof(rep->name), e->name);
		str_copy(rep->root, sizeof(rep->root), e->home);
		if (e->set != NULL) {
			rep->set = *e->set;
			rep->has_set = 1;
		}
	} else if (rc < 0) {
		log_error("ldap: %s", err);
		/* An entry ferryd cannot use is refused like a wrong password (logged above). */
		rep->status = strstr(err, "user ") == err ? 0 : -1;
	}
	user_entry_clear(e);
	explicit_bzero(e, sizeof(*e));
	free(e);
	answer(chan, rep, conn);
	free(rep);
}

static void serve_login(struct local *l, int chan, struct msg_local_login *q)
{
	if (q->source == LOCAL_SOURCE_LDAP) {
		q->name[sizeof(q->name) - 1] = '\0';
		q->password[sizeof(q->password) - 1] = '\0';
		serve_ldap_login(l, chan, q);
		return;
	}
	if (!l->cfg->local_users) {
		explicit_bzero(q->password, sizeof(q->password));
		struct msg_local_reply rep = { .status = 0 };
		answer(chan, &rep, -1);
		return;
	}
	serve_login_pam(l, chan, q);
}

/* After PAM: the root, the file helper, the answer. */
static void finish_login_pam(struct local *l, struct pending *p, int status, const char *why)
{
	struct msg_local_reply *rep = calloc(1, sizeof(*rep));
	if (rep == NULL)
		return;
	rep->status = status;
	char root[4096];
	if (rep->status == 1 && expand_root(l->cfg->local_root, p->name, p->home, root,
					    sizeof(root)) < 0) {
		why = "local_root gives no absolute directory";
		rep->status = -1;
	}
	int conn = -1;
	struct identity id = { .name = p->name, .uid = p->uid, .gid = p->gid, .system = true };
	if (rep->status == 1 && (conn = connect_helper(l, &id, root)) < 0) {
		why = "no file helper";
		rep->status = -1;
	}
	if (rep->status != 1) {
		log_info("local users: user=%s refused: %s", LOG_Q(p->name), why);
		answer(p->chan, rep, -1);
		free(rep);
		return;
	}
	rep->uid = p->uid;
	rep->gid = p->gid;
	str_copy(rep->name, sizeof(rep->name), p->name);
	str_copy(rep->root, sizeof(rep->root), root);
	answer(p->chan, rep, conn);
	free(rep);
}

/*
 * PAM in a child of its own, so that logins are checked in parallel (a yescrypt check is
 * tens of milliseconds of one core): the child writes its verdict to a pipe and ends; the
 * loop finishes the login when the verdict comes (finish_pending).  Without room for
 * another child, or when fork fails, the check is made here.
 */
static void check_in_child(struct local *l, struct pending *p, const char *password)
{
	int fds[2] = { -1, -1 };
	pid_t pid = -1;
	if (l->n_pending < LOCAL_MAX_CHECKS && pipe2(fds, O_CLOEXEC) == 0)
		pid = fork();
	if (pid == 0) {
		close(fds[0]);
		struct verdict v = { 0 };
		const char *why = "";
		v.status = pam_check(l->cfg->pam_service, p->name, password, &why);
		snprintf(v.why, sizeof(v.why), "%s", why);
		ssize_t w = write(fds[1], &v, sizeof(v));
		_exit(w == (ssize_t)sizeof(v) ? 0 : 1);
	}
	if (pid < 0) {
		if (fds[0] >= 0) {
			close(fds[0]);
			close(fds[1]);
		}
		const char *why = "";
		int status = pam_check(l->cfg->pam_service, p->name, password, &why);
		finish_login_pam(l, p, status, why);
		return;
	}
	close(fds[1]);
	p->pipe = fds[0];
	p->pid = pid;
	l->pending[l->n_pending++] = *p;
}

/*
 * A worker's channel goes: its check in flight is dropped with it, before the descriptor
 * number can come back as another worker's channel and get this answer.
 */
static void drop_pending_of(struct local *l, int chan)
{
	for (unsigned i = 0; i < l->n_pending; i++) {
		if (l->pending[i].chan != chan)
			continue;
		kill(l->pending[i].pid, SIGKILL);
		close(l->pending[i].pipe);
		l->pending[i] = l->pending[--l->n_pending];
		i--;
	}
}

/* A checker's verdict has come (or it died): finish its login. */
static void finish_pending(struct local *l, unsigned i)
{
	struct pending p = l->pending[i];
	l->pending[i] = l->pending[--l->n_pending];
	struct verdict v = { .status = -1 };
	ssize_t n;
	do {
		n = read(p.pipe, &v, sizeof(v));
	} while (n < 0 && errno == EINTR);
	close(p.pipe);
	if (n != (ssize_t)sizeof(v)) {
		v.status = -1;
		snprintf(v.why, sizeof(v.why), "the PAM check ended without a verdict");
	}
	v.why[sizeof(v.why) - 1] = '\0';
	finish_login_pam(l, &p, v.status, v.why);
}

static void serve_login_pam(struct local *l, int chan, struct msg_local_login *q)
{
	const struct config *cfg = l->cfg;
	q->name[sizeof(q->name) - 1] = '\0';
	q->password[sizeof(q->password) - 1] = '\0';
	const char *name = q->name, *why = NULL;
	struct passwd pwbuf, *pw = NULL;
	char strings[4096];
	int e = getpwnam_r(name, &pwbuf, strings, sizeof(strings), &pw);
	int status = 0;
	if (pw == NULL) {
		why = e != 0 ? "the account database cannot be read" : "no such user";
		status = e != 0 ? -1 : 0;
	} else if (pw->pw_uid == 0) {
		why = "root may not log in";
	} else if (in_ftpusers(cfg->ftpusers, name)) {
		why = "listed in the ftpusers file";
	} else if (cfg->local_check_shell && !shell_valid(pw->pw_shell)) {
		why = "the shell is not in /etc/shells";
	} else {
		struct pending p = { .chan = chan, .uid = pw->pw_uid, .gid = pw->pw_gid };
		str_copy(p.name, sizeof(p.name), pw->pw_name);
		if (str_copy(p.home, sizeof(p.home), pw->pw_dir) == 0) {
			check_in_child(l, &p, q->password);
			explicit_bzero(q->password, sizeof(q->password));
			return;
		}
		why = "the home directory's name is too long";
		status = -1;
	}
	explicit_bzero(q->password, sizeof(q->password));
	struct pending p = { .chan = chan };
	str_copy(p.name, sizeof(p.name), name);
	finish_login_pam(l, &p, status, why);
}

/* The helper's own privileges: root's uid, but only CAP_SETUID and CAP_SETGID. */
static int keep_only_setid(void)
{
	cap_t caps = cap_init();
	cap_value_t keep[] = { CAP_SETUID, CAP_SETGID };
	int rc = 0;
	if (caps == NULL || cap_set_flag(caps, CAP_PERMITTED, 2, keep, CAP_SET) < 0 ||
	    cap_set_flag(caps, CAP_EFFECTIVE, 2, keep, CAP_SET) < 0 || cap_set_proc(caps) < 0)
		rc = -errno;
	cap_free(caps);
	if (rc == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		rc = -errno;
	return rc;
}

static void reap(struct local *l)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (unsigned i = 0; i < l->n_helpers; i++) {
			if (l->helpers[i]->pid == pid) {
				forget_helper(l, i);
				break;
			}
		}
		if (WIFSIGNALED(status))
			log_warn("local users: file helper pid %d killed by signal %d", (int)pid,
				 WTERMSIG(status));
	}
}

static _Noreturn void helper_main(struct local *l)
{
	struct pollfd *fds = calloc(1 + LOCAL_MAX_CHANNELS + LOCAL_MAX_HELPERS + LOCAL_MAX_CHECKS,
				    sizeof(*fds));
	union msg_payload *m = malloc(sizeof(*m));
	if (fds == NULL || m == NULL)
		_exit(1);
	for (;;) {
		reap(l);
		nfds_t n = 0;
		fds[n++] = (struct pollfd){ .fd = l->ctl, .events = POLLIN };
		for (unsigned i = 0; i < l->n_chans; i++)
			fds[n++] = (struct pollfd){ .fd = l->chans[i], .events = POLLIN };
		for (unsigned i = 0; i < l->n_helpers; i++)
			fds[n++] = (struct pollfd){ .fd = l->helpers[i]->ctl, .events = POLLIN };
		for (unsigned i = 0; i < l->n_pending; i++)
			fds[n++] = (struct pollfd){ .fd = l->pending[i].pipe, .events = POLLIN };
		/* A second at most: ended file helpers are reaped even when nothing comes. */
		if (poll(fds, n, 1000) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		enum msg_type type;
		int fd;
		if (fds[0].revents != 0) {
			int rc = msg_read(l->ctl, TO_LOCAL, false, &type, m, &fd);
			if (rc == -EPIPE)
				_exit(0); /* the master is gone */
			if (rc == 0 && type == MSG_LOCAL_CHANNEL && fd >= 0 &&
			    l->n_chans < LOCAL_MAX_CHANNELS) {
				l->chans[l->n_chans++] = fd;
				fd = -1;
			}
			if (fd >= 0)
				close(fd);
		}
		/* By descriptor: a channel or helper dropped below changes the positions. */
		for (nfds_t k = 1; k < n; k++) {
			if (fds[k].revents == 0)
				continue;
			int c = fds[k].fd;
			unsigned i;
			for (i = 0; i < l->n_chans && l->chans[i] != c; i++)
				;
			if (i < l->n_chans) {
				int rc = msg_read(c, TO_LOCAL, false, &type, m, &fd);
				if (fd >= 0)
					close(fd);
				if (rc == 0 && type == MSG_LOCAL_LOGIN) {
					serve_login(l, c, &m->LOCAL_LOGIN);
				} else if (rc != -EAGAIN) {
					/* The worker is gone (or broke the protocol): forget it. */
					drop_pending_of(l, c);
					close(c);
					l->chans[i] = l->chans[--l->n_chans];
				}
				explicit_bzero(m, sizeof(*m));
				continue;
			}
			for (i = 0; i < l->n_pending && l->pending[i].pipe != c; i++)
				;
			if (i < l->n_pending) {
				finish_pending(l, i);
				continue;
			}
			for (i = 0; i < l->n_helpers && l->helpers[i]->ctl != c; i++)
				;
			if (i == l->n_helpers)
				continue;
			int rc = msg_read(c, TO_LOCAL, false, &type, m, &fd);
			if (fd >= 0)
				close(fd);
			if (rc == 0 && type == MSG_FILES_IDLE) {
				/*
				 * Its last session has gone: it ends (a connection sent meanwhile
				 * keeps it until that one ends too, then it sees its channel closed).
				 */
				struct msg_empty e = { 0 };
				(void)msg_write(c, MSG_FILES_EXIT, &e, -1);
				forget_helper(l, i);
			} else if (rc != -EAGAIN) {
				forget_helper(l, i);
			}
		}
	}
}

pid_t local_auth_start(const struct config *cfg, int *ctl)
{
	int end = -1;
	pid_t pid = msg_fork_helper("ferryd-local", &end);
	if (pid != 0) {
		*ctl = end;
		return pid;
	}
	log_set_role("local users");
	int rc = keep_only_setid();
	if (rc < 0) {
		log_error("cannot reduce privileges to CAP_SETUID and CAP_SETGID: %s", strerror(-rc));
		_exit(1);
	}
	static struct local l;
	l.cfg = cfg;
	l.ctl = end;
	helper_main(&l);
}

int local_auth_login(int chan, unsigned source, const char *name, const char *password,
		     struct msg_local_reply *rep, int *conn)
{
	*conn = -1;
	struct msg_local_login *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	int rc = str_copy(q->name, sizeof(q->name), name) < 0 ||
			 str_copy(q->password, sizeof(q->password), password) < 0
		 ? -ENAMETOOLONG
		 : (q->source = source, msg_write(chan, MSG_LOCAL_LOGIN, q, -1));
	explicit_bzero(q, sizeof(*q));
	free(q);
	if (rc == -ENAMETOOLONG) {
		rep->status = 0;
		return 0;
	}
	if (rc < 0)
		return rc;
	struct pollfd p = { .fd = chan, .events = POLLIN };
	int n;
	do {
		n = poll(&p, 1, LOGIN_TIMEOUT_MS);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? -ETIMEDOUT : -errno;
	union msg_payload *m = malloc(sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	enum msg_type type;
	int fd;
	rc = msg_read(chan, TO_WORKER, false, &type, m, &fd);
	if (rc == 0 && type != MSG_LOCAL_REPLY)
		rc = -EPROTO;
	if (rc == 0) {
		*rep = m->LOCAL_REPLY;
		rep->name[sizeof(rep->name) - 1] = '\0';
		rep->root[sizeof(rep->root) - 1] = '\0';
		if (rep->status == 1 && fd < 0)
			rc = -EPROTO;
	}
	free(m);
	if (rc < 0 || rep->status != 1) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	*conn = fd;
	return 0;
}
