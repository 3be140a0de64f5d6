/*
 * mirror_delete.c: ferry mirror --delete, on the side being written: what the other side
 * no longer has goes, files and whole directories.  Both sides follow the same steps:
 * what is neither a file nor a directory is left with a warning, a dry run prints
 * "delete NAME" (and "NAME/" for a directory), a directory is emptied before it goes.
 *
 * What this file must never do: delete on the strength of a listing that had refused
 * names (it cannot say what vanished: the walks call it only when there were none, and a
 * remote directory to be removed is left whole when its own listing has one), follow a
 * local link (one is kept, and so is the directory that holds it), or make a local
 * system call other than closing what mirror_local.c opened.
 */
#include <stdio.h>
#include <unistd.h>

#include "client/mirror_int.h"

/* A dry run's deletion: printed and counted, and true. */
static bool would_delete(struct mirror *m, const struct entry *e)
{
	char b[512];

	if (!m->dry_run)
		return false;
	printf("delete %s%s\n", mirror_rel(m, b, sizeof(b)), e->kind == K_DIR ? "/" : "");
	m->deleted++;
	return true;
}

/* ---- the local side ---- */

static void remove_local_tree(struct mirror *m, int dfd, const char *name, int depth);

static void remove_local(struct mirror *m, const struct entry *e, const struct at *at)
{
	if (e->kind == K_OTHER)
		local_other(m, at->dfd, e->name, "not deleted");
	else if (would_delete(m, e))
		return;
	else if (e->kind == K_DIR)
		remove_local_tree(m, at->dfd, e->name, at->depth);
	else
		local_unlink(m, at->dfd, e->name);
}

/* Everything in dfd/name (links inside are kept, and so is the directory then), then it. */
static void remove_local_tree(struct mirror *m, int dfd, const char *name, int depth)
{
	struct entries l;

	if (mirror_too_deep(m, depth, FTPC_ELOCAL, true))
		return;
	int sub = local_open_dir(m, dfd, name, true);
	if (sub < 0)
		return;
	if (local_list(m, sub, &l) == FTPC_OK) {
		entries_each(m, &l, NULL, remove_local, &(struct at){ sub, depth + 1, NULL });
		entries_free(&l);
	}
	close(sub);
	local_rmdir(m, dfd, name);
}

void delete_local_extras(struct mirror *m, int dfd, const struct entries *remote)
{
	struct entries local;

	if (dfd < 0 || local_list(m, dfd, &local) != FTPC_OK)
		return;
	entries_each(m, &local, remote, remove_local, &(struct at){ dfd, 0, NULL });
	entries_free(&local);
}

/* ---- the remote side ---- */

static void remove_remote_tree(struct mirror *m, int depth);

/* An engine call that removed m->remote: counted, or reported. */
static void count_removal(struct mirror *m, int rc)
{
	if (rc != FTPC_OK)
		mirror_engine_fail(m, rc);
	else
		m->deleted++;
}

static void remove_remote(struct mirror *m, const struct entry *e, const struct at *at)
{
	if (e->kind == K_OTHER)
		mirror_neither(m, true, "not deleted");
	else if (would_delete(m, e))
		return;
	else if (e->kind == K_DIR)
		remove_remote_tree(m, at->depth);
	else
		count_removal(m, ftp_delete(m->f, m->remote.s));
}

/* The remote directory m->remote and all in it; nothing if its listing had refused names. */
static void remove_remote_tree(struct mirror *m, int depth)
{
	struct entries l;

	if (mirror_too_deep(m, depth, FTPC_EREMOTE, true))
		return;
	if (remote_list(m, &l, false) != FTPC_OK)
		return;
	bool whole = l.refused == 0;
	if (whole)
		entries_each(m, &l, NULL, remove_remote, &(struct at){ -1, depth + 1, NULL });
	entries_free(&l);
	if (whole && !m->gone)
		count_removal(m, ftp_rmdir(m->f, m->remote.s));
}

void delete_remote_extras(struct mirror *m, const struct entries *local,
			  const struct entries *remote)
{
	entries_each(m, remote, local, remove_remote, &(struct at){ -1, 0, NULL });
}
