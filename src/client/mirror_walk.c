/*
 * mirror_walk.c: the two walks of ferry mirror and the one decision they make, what to
 * send.  The download walks the server's tree (each remote directory listed, each entry
 * against what DIR holds under its name); the upload walks DIR (each local directory
 * listed, each entry against the server's listing of the same directory).  A file is
 * sent when the other side has none of that name, or its size differs, or its time
 * does; without MFMT, an uploaded file counts as up to date when the server's copy is at
 * least as new (the server stamps it with the time it arrived).
 *
 * What this file must never do: make a local system call other than closing what
 * mirror_local.c opened (it makes them all), go on once the control connection is gone,
 * or change anything in a dry run, which prints what it would send ("get NAME", "put
 * NAME") instead.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client/mirror_int.h"

/* Whether to send the current file: counted as up to date, or (dry run) as sent. */
static bool must_send(struct mirror *m, bool changed, const char *verb)
{
	char b[512];

	if (!changed) {
		m->up_to_date++;
		return false;
	}
	if (!m->dry_run)
		return true;
	printf("%s %s\n", verb, mirror_rel(m, b, sizeof(b)));
	m->sent++;
	return false;
}

/* ---- download ---- */

static void down_dir(struct mirror *m, int dfd, int depth);

/* RETR into a temporary file, its time (and an old file's mode) set, renamed over name. */
static void fetch(struct mirror *m, int dfd, const char *name, const time_t *rtime,
		  const struct stat *old)
{
	struct temp t;

	if (local_temp_create(m, dfd, &t) != 0)
		return;
	int rc = remote_transfer(m, t.fd, false);
	if (rc != FTPC_OK) {
		local_temp_drop(&t);
		mirror_engine_fail(m, rc);
	} else if (local_temp_keep(m, &t, name, old, rtime) == 0) {
		m->sent++;
	}
}

static void down_file(struct mirror *m, const struct entry *e, const struct at *at)
{
	struct stat st;
	int have = local_match(m, at->dfd, e->name, K_FILE, &st);

	if (have < 0)
		return;
	time_t rtime = 0;
	uint64_t rsize = 0;
	bool has_time = remote_time(m, e, &rtime);
	if (m->gone)
		return;
	bool changed = !have;
	if (have) {
		changed = !remote_size(m, e, &rsize) || rsize != (uint64_t)st.st_size ||
			  (has_time && rtime != st.st_mtim.tv_sec);
		if (m->gone)
			return;
	}
	if (must_send(m, changed, "get"))
		fetch(m, at->dfd, e->name, has_time ? &rtime : NULL, have ? &st : NULL);
}

static void down_subdir(struct mirror *m, const struct entry *e, const struct at *at)
{
	int sub;

	if (local_dir_for(m, at->dfd, e->name, &sub) != 0)
		return;
	down_dir(m, sub, at->depth + 1);
	if (sub >= 0)
		close(sub);
}

static void down_entry(struct mirror *m, const struct entry *e, const struct at *at)
{
	if (e->kind == K_FILE)
		down_file(m, e, at);
	else if (e->kind == K_DIR)
		down_subdir(m, e, at);
	else
		mirror_neither(m, true, "skipped");
}

/* The remote directory m->remote into dfd (-1: not there, dry run). */
static void down_dir(struct mirror *m, int dfd, int depth)
{
	struct entries l;

	if (mirror_too_deep(m, depth, FTPC_EREMOTE, false))
		return;
	if (remote_list(m, &l, false) != FTPC_OK)
		return;
	entries_each(m, &l, NULL, down_entry, &(struct at){ dfd, depth, NULL });
	/* A listing with refused names cannot say what vanished: delete nothing then. */
	if (m->delete && !m->gone && l.refused == 0)
		delete_local_extras(m, dfd, &l);
	entries_free(&l);
}

void mirror_down(struct mirror *m, int dfd)
{
	down_dir(m, dfd, 0);
}

/* ---- upload ---- */

static void up_dir(struct mirror *m, int dfd, bool remote_new, int depth);

/* STOR, then MFMT so that the next run sees the same time on both sides. */
static void send_file(struct mirror *m, int dfd, const char *name, time_t ltime)
{
	int fd = local_open_file(m, dfd, name);

	if (fd < 0)
		return;
	int rc = remote_transfer(m, fd, true);
	close(fd);
	if (rc != FTPC_OK) {
		mirror_engine_fail(m, rc);
		return;
	}
	m->sent++;
	remote_set_time(m, ltime);
}

/* A local file against r, the server's entry of the same name (NULL: none). */
static void up_file(struct mirror *m, const struct entry *l, const struct entry *r,
		    const struct at *at)
{
	bool changed = r == NULL;
	if (r != NULL) {
		uint64_t rsize;
		time_t rtime;
		changed = !remote_size(m, r, &rsize) || rsize != l->size;
		if (!changed && !m->gone && remote_time(m, r, &rtime))
			/* Without MFMT the server's time is when the upload arrived. */
			changed = m->mfmt ? rtime != l->mtime : rtime < l->mtime;
		if (m->gone)
			return;
	}
	if (must_send(m, changed, "put"))
		send_file(m, at->dfd, l->name, l->mtime);
}

/* A local directory against r, the server's entry of the same name (NULL: none). */
static void up_subdir(struct mirror *m, const struct entry *l, const struct entry *r,
		      const struct at *at)
{
	if (r == NULL && !m->dry_run) {
		int rc = ftp_mkdir(m->f, m->remote.s);
		if (rc != FTPC_OK) {
			mirror_engine_fail(m, rc);
			return;
		}
	}
	int sub = local_open_dir(m, at->dfd, l->name, false);
	if (sub < 0)
		return;
	up_dir(m, sub, r == NULL, at->depth + 1);
	close(sub);
}

static void up_entry(struct mirror *m, const struct entry *l, const struct at *at)
{
	const struct entry *r = entries_find(at->other, l->name);
	char b[512];

	if (strpbrk(l->name, "\r\n") != NULL)
		mirror_fail(m, FTPC_ELOCAL, "%s: a name with a line break cannot be sent over FTP",
			    mirror_rel(m, b, sizeof(b)));
	else if (l->kind == K_OTHER)
		local_other(m, at->dfd, l->name, "skipped");
	else if (r != NULL && r->kind != l->kind)
		mirror_mismatch(m, l->kind, true);
	else if (l->kind == K_FILE)
		up_file(m, l, r, at);
	else
		up_subdir(m, l, r, at);
}

/* Each entry of dfd against the server's listing of the same directory. */
static void up_entries(struct mirror *m, int dfd, const struct entries *remote, int depth)
{
	struct entries local;

	if (local_list(m, dfd, &local) != FTPC_OK)
		return;
	entries_each(m, &local, NULL, up_entry, &(struct at){ dfd, depth, remote });
	if (m->delete && !m->gone && remote->refused == 0)
		delete_remote_extras(m, &local, remote);
	entries_free(&local);
}

/* The local directory dfd to m->remote; remote_new: just made (or, dry run, not there). */
static void up_dir(struct mirror *m, int dfd, bool remote_new, int depth)
{
	struct entries remote = { 0 };

	if (mirror_too_deep(m, depth, FTPC_ELOCAL, false))
		return;
	if (!remote_new && remote_list(m, &remote, false) != FTPC_OK)
		return;
	up_entries(m, dfd, &remote, depth);
	entries_free(&remote);
}

void mirror_up(struct mirror *m, int dfd)
{
	struct entries remote;
	int rc = remote_list(m, &remote, true);

	if (rc == FTPC_ENOTFOUND && !m->dry_run) {
		rc = ftp_mkdir(m->f, m->remote.s);
		if (rc != FTPC_OK) {
			mirror_engine_fail(m, rc);
			return;
		}
	} else if (rc != FTPC_OK && rc != FTPC_ENOTFOUND) {
		return;   /* reported */
	}
	up_entries(m, dfd, &remote, 0);
	entries_free(&remote);
}
