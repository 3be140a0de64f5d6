/*
 * auth.c: the password-checking thread of a worker.
 *
 * Requests go in through a mutex-protected queue; finished requests come back as pointers
 * written to a pipe, read on the loop.  A request is owned by the queue until it comes back
 * on the pipe; auth_cancel() only clears its callback, so a session can go away at any time.
 */
#include "server/auth.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/path.h"
#include "server/local_auth.h"
#include "server/log.h"
#include "server/user_check.h"
#include "server/config.h"
#include "server/userdb_ldap.h"
#include "server/userdb_pg.h"
#include "server/users.h"

struct auth_request {
	TAILQ_ENTRY(auth_request) link;
	char user[64];
	char password[512];
	struct auth_result result;
	bool reject; /* name or password too long: hash anyway, then fail */
	const struct users *users; /* the table the name is looked up in first */
	const char *dummy;         /* that table's hash for unknown names (make_dummy_hash) */
	auth_done_fn *done; /* NULL once cancelled */
	void *ctx;
};

struct auth_pool {
	const struct users *users;
	struct pg_store *pg;  /* users_pg, or NULL; used by the thread only */
	struct ldap_source *ldap; /* ldap_uri, or NULL; used by the thread only */
	int local_chan;       /* the local-users helper (local_auth.h), or -1 */
	unsigned local_perms;
	bool local_users;
	bool ldap_own_ids;    /* directory users are checked by the local-users helper */
	char home_base[4096]; /* homes of database users lie beneath it */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	TAILQ_HEAD(, auth_request) queue;
	bool stop;
	int pipe_rd, pipe_wr;
	struct event *ev;
	char dummy_hash[256]; /* see make_dummy_hash() */
	struct {
		const struct users *users;
		char dummy_hash[256];
	} more[CONFIG_MAX_VHOSTS]; /* tables of [host] sections (auth_pool_add_users) */
	unsigned n_more;
};

/* Compare without an early exit, so that timing says nothing about where a hash differs. */
static bool equal_ct(const char *a, const char *b, size_t n)
{
	unsigned char diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/* Whether password hashes to hash (NULL: no such user, the dummy costs the same). */
static bool hash_matches(const struct auth_pool *p, const struct auth_request *r,
			 const char *hash)
{
	/* An unknown user costs the same hash as a known one: no timing oracle. */
	const char *setting = hash != NULL ? hash : r->dummy;
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return false;
	const char *h = crypt_r(r->password, setting, cd);
	bool ok = hash != NULL && h != NULL && h[0] != '*' && strlen(h) == strlen(hash) &&
		  equal_ct(h, hash, strlen(h)) && !r->reject;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

/* Whether home lies beneath base, normalised (user_check.h: as `ferryd user` checks it). */
static bool beneath(const char *base, const char *home)
{
	return user_check_beneath(base, home);
}

/*
 * A local system user, through the local-users helper (PAM).  Returns false when the
 * system has no such account and the next source may look; the helper cannot tell
 * "unknown" from "wrong password" apart for us, so with a directory configured too, a
 * local user's refusal lets the directory try the name as well.
 */
static bool check_local(struct auth_pool *p, struct auth_request *r, unsigned source)
{
	struct auth_result *res = &r->result;
	struct msg_local_reply *rep = calloc(1, sizeof(*rep));
	int conn = -1;
	int rc = rep == NULL ? -ENOMEM
			     : local_auth_login(p->local_chan, source, r->user, r->password, rep,
						&conn);
	if (rc < 0) {
		log_error("local users: the helper did not answer: %s", strerror(-rc));
		free(rep);
		res->status = -1;
		return true;
	}
	if (rep->status != 1) {
		bool refused = rep->status == 0;
		free(rep);
		if (refused && source == LOCAL_SOURCE_PAM && (p->ldap != NULL || p->ldap_own_ids))
			return false;
		res->status = refused ? 0 : -1;
		return true;
	}
	struct user_entry *e = calloc(1, sizeof(*e));
	if (e == NULL) {
		close(conn);
		free(rep);
		res->status = -1;
		return true;
	}
	str_copy(e->name, sizeof(e->name), rep->name);
	str_copy(e->home, sizeof(e->home), rep->root);
	e->perms = source == LOCAL_SOURCE_LDAP ? rep->perms : p->local_perms;
	if (rep->has_set && (e->set = malloc(sizeof(*e->set))) != NULL)
		*e->set = rep->set;
	if (rep->has_set && e->set == NULL) {
		close(conn);
		free(e);
		free(rep);
		res->status = -1;
		return true;
	}
	e->own_ids = true;
	e->uid = rep->uid;
	e->gid = rep->gid;
	free(rep);
	res->status = 1;
	res->user = e;
	res->owned = e;
	res->fs_conn = conn;
	return true;
}

/* A user neither the file nor the table knows: the directory decides, by a bind. */
static void check_ldap(struct auth_pool *p, struct auth_request *r)
{
	struct auth_result *res = &r->result;
	struct user_entry *e = calloc(1, sizeof(*e));
	char err[512] = "";
	int rc = e == NULL ? -1 : ldap_source_login(p->ldap, r->user, r->password, e, err,
						      sizeof(err));
	if (rc == 1 && strchr(e->name, ':') != NULL) {
		/* Not a name ferryd's other sources could hold (logs, the master's counts). */
		snprintf(err, sizeof(err), "user %s: the name holds ':'", e->name);
		rc = -1;
	}
	if (rc == 1) {
		res->status = 1;
		res->user = e;
		res->owned = e;
		return;
	}
	if (e != NULL) {
		user_entry_clear(e);
		explicit_bzero(e, sizeof(*e));
		free(e);
	}
	if (rc == 0) {
		res->status = 0;
		return;
	}
	/*
	 * An entry the directory holds but ferryd cannot use (no home, one outside home_base,
	 * bad settings) is the administrator's to fix: logged, and a failed login for the
	 * client, since only the right password gets this far.  An unreachable directory
	 * is 421.
	 */
	log_error("ldap: %s", e == NULL ? "out of memory" : err);
	res->status = strstr(err, "user ") == err ? 0 : -1;
}

/*
 * The users file first, then PostgreSQL: a name is decided by the first source that
 * knows it.  A database that cannot answer is -1 (421), never a failed login: the user
 * did nothing wrong, and counting it would ban addresses for an outage.
 */
static void check_password(struct auth_pool *p, struct auth_request *r)
{
	struct auth_result *res = &r->result;
	const struct user_entry *u = r->reject ? NULL : users_find(r->users, r->user);
	struct user_entry *owned = NULL;
	if (u == NULL && p->pg != NULL && !r->reject) {
		owned = calloc(1, sizeof(*owned));
		char err[256] = "";
		int rc = owned == NULL ? -1 : pg_store_lookup(p->pg, r->user, owned, err, sizeof(err));
		if (rc < 0) {
			log_error("users_pg: %s", owned == NULL ? "out of memory" : err);
			free(owned);
			res->status = -1;
			return;
		}
		if (rc == 0) {
			free(owned);
			owned = NULL;
		}
		u = owned;
		if (owned != NULL && !beneath(p->home_base, owned->home)) {
			log_error("users_pg: user %s: home %s is not beneath home_base %s",
				  LOG_Q(owned->name), LOG_Q(owned->home), p->home_base);
			u = NULL; /* refused like an unknown user, after the same hash */
		}
	}
	if (u == NULL && p->local_chan >= 0 && p->local_users && !r->reject &&
	    check_local(p, r, LOCAL_SOURCE_PAM))
		return;
	if (u == NULL && p->ldap_own_ids && p->local_chan >= 0 && !r->reject) {
		/* Bound by the local-users helper, which alone may start a process of a uid. */
		check_local(p, r, LOCAL_SOURCE_LDAP);
		return;
	}
	if (u == NULL && p->ldap != NULL && !r->reject) {
		check_ldap(p, r);
		return;
	}
	bool ok = hash_matches(p, r, u != NULL ? u->hash : NULL) && !u->disabled;
	if (ok) {
		res->status = 1;
		res->user = u;
		res->owned = owned;
		return;
	}
	if (owned != NULL) {
		user_entry_clear(owned);
		explicit_bzero(owned, sizeof(*owned));
		free(owned);
	}
	res->status = 0;
}

static void *auth_thread(void *arg)
{
	struct auth_pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (!p->stop && TAILQ_EMPTY(&p->queue))
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		struct auth_request *r = TAILQ_FIRST(&p->queue);
		TAILQ_REMOVE(&p->queue, r, link);
		pthread_mutex_unlock(&p->lock);

		check_password(p, r);
		explicit_bzero(r->password, sizeof(r->password));
		ssize_t w;
		do {
			w = write(p->pipe_wr, &r, sizeof(r));
		} while (w < 0 && errno == EINTR);
		if (w != (ssize_t)sizeof(r))
			FERR_BUG("auth result pipe");
	}
}

/* A request and what its result still owns (a database's user nobody took). */
static void free_request(struct auth_request *r)
{
	if (r->result.fs_conn >= 0)
		close(r->result.fs_conn);
	if (r->result.owned != NULL) {
		user_entry_clear(r->result.owned);
		explicit_bzero(r->result.owned, sizeof(*r->result.owned));
		free(r->result.owned);
	}
	explicit_bzero(r, sizeof(*r));
	free(r);
}

static void on_result(evutil_socket_t fd, short what, void *arg)
{
	struct auth_pool *p = arg;
	struct auth_request *r;
	for (;;) {
		ssize_t n = read(p->pipe_rd, &r, sizeof(r));
		if (n != (ssize_t)sizeof(r))
			return; /* EAGAIN: drained (pointer-sized writes to a pipe are atomic) */
		if (r->done != NULL)
			r->done(r->ctx, &r->result);
		free_request(r);
	}
}

/*
 * The hash unknown users are checked against.  It must cost what a real user's check
 * costs: a yescrypt dummy (18 ms) against a file of "$6$" hashes (1 ms) let anyone tell
 * the names that exist by timing their failures.  So it takes the method, cost and salt
 * of the file's most common kind of hash (users_typical_hash()), with another digest, so
 * that it matches no user's.  Only a file without any hash falls back to the default
 * method, which then costs no more than a real user would anyway: there is none.
 */
static void make_dummy_hash(const struct users *users, char *out, size_t outsz)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *setting = users_typical_hash(users);
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *h = NULL;
	if (cd != NULL && setting != NULL)
		h = crypt_r("ferry-dummy-password", setting, cd);
	if (cd != NULL && (h == NULL || h[0] == '*')) {
		if (setting != NULL)
			log_warn("the users file's most common hash method is not supported by "
				 "crypt(3) here; unknown users are checked against the default method");
		h = crypt_gensalt_rn(NULL, 0, NULL, 0, salt, sizeof(salt)) != NULL
			    ? crypt_r("ferry-dummy-password", salt, cd)
			    : NULL;
	}
	/* "*" fails every check at no cost: better than no check, and only when crypt fails. */
	if (h == NULL || h[0] == '*' || str_copy(out, outsz, h) < 0)
		str_copy(out, outsz, "*");
	if (cd != NULL) {
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
	}
}

struct auth_pool *auth_pool_new(struct event_base *base, const struct users *users,
				const struct config *cfg, int local_chan)
{
	struct auth_pool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->users = users;
	p->local_chan = local_chan;
	p->local_perms = cfg->local_permissions;
	p->local_users = cfg->local_users;
	p->ldap_own_ids = cfg->ldap_own_ids;
	str_copy(p->home_base, sizeof(p->home_base), cfg->home_base);
	if (cfg->ldap_uri[0] != '\0' && !cfg->ldap_own_ids) {
		struct ldap_source_config lc;
		char err[512];
		ldap_source_config_from(cfg, &lc);
		int rc = ldap_source_new(&lc, &p->ldap, err, sizeof(err));
		explicit_bzero(&lc, sizeof(lc));
		if (rc < 0) {
			log_error("ldap: %s", err);
			free(p);
			return NULL;
		}
	}
	if (cfg->users_pg[0] != '\0') {
		int rc = pg_store_new(cfg->users_pg, cfg->users_pg_timeout, &p->pg);
		if (rc < 0) {
			log_error("users_pg: %s", rc == -EINVAL ? "the connection string does not parse"
							      : strerror(-rc));
			ldap_source_free(p->ldap);
			free(p);
			return NULL;
		}
	}
	TAILQ_INIT(&p->queue);
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		free(p);
		return NULL;
	}
	p->pipe_rd = fds[0];
	p->pipe_wr = fds[1];
	fcntl(p->pipe_rd, F_SETFL, O_NONBLOCK);
	make_dummy_hash(users, p->dummy_hash, sizeof(p->dummy_hash));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->ev = event_new(base, p->pipe_rd, EV_READ | EV_PERSIST, on_result, p);
	if (p->ev == NULL || event_add(p->ev, NULL) < 0 ||
	    pthread_create(&p->thread, NULL, auth_thread, p) != 0) {
		log_error("cannot start the password-checking thread");
		if (p->ev != NULL)
			event_free(p->ev);
		pg_store_free(p->pg);
		close(p->pipe_rd);
		close(p->pipe_wr);
		free(p);
		return NULL;
	}
	return p;
}

void auth_pool_free(struct auth_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	struct auth_request *r;
	while ((r = TAILQ_FIRST(&p->queue)) != NULL) {
		TAILQ_REMOVE(&p->queue, r, link);
		free_request(r);
	}
	/* Results already in the pipe. */
	while (read(p->pipe_rd, &r, sizeof(r)) == (ssize_t)sizeof(r))
		free_request(r);
	pg_store_free(p->pg);
	ldap_source_free(p->ldap);
	event_free(p->ev);
	close(p->pipe_rd);
	close(p->pipe_wr);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

int auth_pool_add_users(struct auth_pool *p, const struct users *users)
{
	if (p->n_more >= CONFIG_MAX_VHOSTS)
		return -ENOSPC;
	p->more[p->n_more].users = users;
	make_dummy_hash(users, p->more[p->n_more].dummy_hash, sizeof(p->more[0].dummy_hash));
	p->n_more++;
	return 0;
}

struct auth_request *auth_check(struct auth_pool *p, const char *user, const char *password,
				auth_done_fn *done, void *ctx)
{
	return p == NULL ? NULL : auth_check_in(p, p->users, user, password, done, ctx);
}

struct auth_request *auth_check_in(struct auth_pool *p, const struct users *users,
				   const char *user, const char *password, auth_done_fn *done,
				   void *ctx)
{
	if (p == NULL)
		return NULL;
	struct auth_request *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->users = users;
	r->dummy = p->dummy_hash;
	for (unsigned i = 0; users != p->users && i < p->n_more; i++) {
		if (p->more[i].users == users)
			r->dummy = p->more[i].dummy_hash;
	}
	/* Over-long names or passwords cannot match, but they cost the same hash. */
	if (str_copy(r->user, sizeof(r->user), user) < 0 ||
	    str_copy(r->password, sizeof(r->password), password) < 0)
		r->reject = true;
	r->done = done;
	r->ctx = ctx;
	r->result.fs_conn = -1;
	pthread_mutex_lock(&p->lock);
	TAILQ_INSERT_TAIL(&p->queue, r, link);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return r;
}

void auth_cancel(struct auth_request *req)
{
	req->done = NULL;
	req->ctx = NULL;
}
