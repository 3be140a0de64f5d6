/*
 * quota_session.c: a session's quota (quota.h): the tally read at login and before each
 * upload, changed after each upload, DELE and RNTO.  Replies 552 when an upload cannot
 * begin; never fails a command because the tally failed (that is logged: the administrator
 * must hear of it, the client's transfer must not depend on it).
 */
#include "server/quota.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common/reply.h"
#include "server/log.h"
#include "server/fs_proxy.h"
#include "server/session.h"
#include "server/user_settings.h"
#include "server/vfs.h"

/*
 * Users served by a file helper of their own uid (local users, ldap_own_ids) keep no
 * tally: their files are theirs, and the system's disk quotas (quota(8)) are the tool.
 */
static bool has_quota(const struct session *s)
{
	return s->set != NULL && user_settings_quota(s->set) && s->root_fd >= 0 &&
	       !fs_proxy_is_remote(s->root_fd);
}

bool quota_session_applies(const struct session *s)
{
	return has_quota(s);
}

static struct quota_limits limits_of(const struct session *s)
{
	return (struct quota_limits){ .bytes = s->set->quota_bytes, .files = s->set->quota_files };
}

static void tally_failed(const struct session *s, const char *what, int rc)
{
	log_warn("session %llu: the quota tally of user=%s could not be %s: %s",
		 (unsigned long long)s->id, LOG_Q(s->username), what,
		 strerror(-rc));
}

void quota_session_login(struct session *s)
{
	if (s->set != NULL && user_settings_quota(s->set) && fs_proxy_is_remote(s->root_fd))
		log_warn("session %llu: user=%s has a quota, which ferryd does not keep for users "
			 "with their own ids (use the system's disk quotas)",
			 (unsigned long long)s->id, LOG_Q(s->username));
	/* A user who can write nowhere changes nothing: no tally to make (nor to log about). */
	if (!has_quota(s) || !(user_settings_any_perms(s->set, s->perms) & PERM_WRITE))
		return;
	struct quota_usage u;
	bool rebuilt, partial;
	int rc = quota_load(s->root_fd, &u, &rebuilt, &partial);
	if (rc < 0) {
		tally_failed(s, "read", rc);
		return;
	}
	if (rebuilt)
		log_info("session %llu: quota tally of user=%s counted anew: %llu files, %llu bytes%s",
			 (unsigned long long)s->id, LOG_Q(s->username), (unsigned long long)u.files,
			 (unsigned long long)u.bytes,
			 partial ? " (the walk stopped at its bound: more lie beneath)" : "");
}

int quota_session_admit(struct session *s, const char *vpath, bool fresh, bool append,
			uint64_t rest, uint64_t *room)
{
	*room = UINT64_MAX;
	if (!has_quota(s))
		return 0;
	struct quota_usage u;
	int rc = quota_load(s->root_fd, &u, NULL, NULL);
	if (rc < 0) {
		tally_failed(s, "read", rc);
		return 0;
	}
	uint64_t old = 0;
	if (!fresh) {
		struct stat st;
		rc = vfs_stat(s->root_fd, vpath, &st);
		fresh = rc == -ENOENT;
		if (rc == 0 && S_ISREG(st.st_mode))
			old = (uint64_t)st.st_size;
	}
	/* STOR cuts the file at its REST offset (a REST past the end is refused later). */
	uint64_t start = append ? old : rest < old ? rest : old;
	struct quota_limits q = limits_of(s);
	*room = quota_room(&q, &u, old, start);
	switch (quota_admit(&q, &u, fresh, *room)) {
	case QUOTA_OVER_FILES:
		session_replyf(s, R_552_EXCEEDED, "Quota exceeded: %llu files of %llu.",
			       (unsigned long long)u.files, (unsigned long long)q.files);
		return -1;
	case QUOTA_OVER_BYTES:
		session_replyf(s, R_552_EXCEEDED, "Quota exceeded: %llu bytes of %llu used.",
			       (unsigned long long)u.bytes, (unsigned long long)q.bytes);
		return -1;
	case QUOTA_OK:
		break;
	}
	return 0;
}

void quota_session_changed(struct session *s, int files, uint64_t old_size, uint64_t new_size)
{
	if (!has_quota(s) || (files == 0 && old_size == new_size))
		return;
	int rc = quota_update(s->root_fd, files, old_size, new_size, NULL);
	if (rc < 0)
		tally_failed(s, "updated", rc);
}

void quota_session_removed(struct session *s, const struct stat *gone)
{
	if (S_ISREG(gone->st_mode))
		quota_session_changed(s, -1, (uint64_t)gone->st_size, 0);
}
