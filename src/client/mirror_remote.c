/*
 * mirror_remote.c: mirror's remote side, through the engine (ftp.h): the listing of a
 * remote directory as entries, each name checked; a remote file's size and time, from
 * the listing or asked for (SIZE, MDTM); RETR and STOR of the current file with the
 * progress bar; MFMT after an upload.
 *
 * Times: LIST's are to the minute, or the day, so only MLSD's modify fact is taken from
 * a listing; MDTM gives the rest.
 *
 * What this file must never do: let a listed name that entries_name_ok() refuses into a
 * listing (it is reported, and counted in refused, so that --delete deletes nothing in
 * that directory), or touch the local file system: the descriptors it reads and writes
 * come from mirror_local.c.
 */
#include <stdio.h>
#include <string.h>

#include "client/listing_out.h"
#include "client/mirror_int.h"
#include "client/progress.h"

/* For the listing callback: where the entries go and whom to tell about bad names. */
struct collect {
	struct mirror *m;
	struct entries *list;
};

static void collect_remote(void *ctx, const struct listing_parsed *e)
{
	struct collect *c = ctx;
	char b[512], nb[256];

	if (!entries_name_ok(e->name, e->name_len)) {
		c->list->refused++;
		mirror_fail(c->m, FTPC_EREMOTE, "listing %s: the server listed the name '%s', "
			    "which is not a plain file name: refused",
			    mpath_shown(&c->m->remote, b, sizeof(b)),
			    shown(e->name, e->name_len, nb, sizeof(nb)));
		return;
	}
	struct entry *x = entries_add(c->list, e->name, e->name_len);
	if (x == NULL)
		return;
	x->kind = strcmp(e->type, "file") == 0 ? K_FILE : strcmp(e->type, "dir") == 0 ? K_DIR
										: K_OTHER;
	x->has_size = e->has_size;
	x->size = e->size;
	/* LIST's times are to the minute, or the day: only MLSD's are worth comparing. */
	x->has_time = c->m->mlsd && e->has_modify;
	x->mtime = e->modify;
}

int remote_list(struct mirror *m, struct entries *l, bool quiet_enoent)
{
	struct collect c = { m, l };
	char b[512];

	memset(l, 0, sizeof(*l));
	int rc = ftp_list(m->f, m->remote.s, collect_remote, &c);
	if (rc == FTPC_ENOTFOUND && quiet_enoent)
		return rc;
	if (rc != FTPC_OK) {
		mirror_engine_fail(m, rc);
	} else if (l->oom || l->too_many) {
		rc = FTPC_ELOCAL;
		mirror_fail(m, rc, "%s: %s", mirror_rel(m, b, sizeof(b)),
			    l->oom ? "out of memory" : "more than a million entries in one directory");
	}
	if (rc != FTPC_OK) {
		entries_free(l);
		return rc;
	}
	entries_sort(l);
	return FTPC_OK;
}

/* SIZE or MDTM answered: true with the value; a lost connection reported and counted. */
static bool answered(struct mirror *m, int rc)
{
	if (rc == FTPC_ECONNECT)
		mirror_engine_fail(m, rc);
	return rc == FTPC_OK;
}

bool remote_time(struct mirror *m, const struct entry *e, time_t *t)
{
	if (e->has_time) {
		*t = e->mtime;
		return true;
	}
	if (!m->mdtm)
		return false;
	return answered(m, ftp_mdtm(m->f, m->remote.s, t));   /* else the size alone decides */
}

bool remote_size(struct mirror *m, const struct entry *e, uint64_t *size)
{
	if (e->has_size) {
		*size = e->size;
		return true;
	}
	return answered(m, ftp_size(m->f, m->remote.s, size));   /* else unknown: sent again */
}

int remote_transfer(struct mirror *m, int fd, bool upload)
{
	char b[512];
	struct progress *bar = progress_begin(mirror_rel(m, b, sizeof(b)), m->o);
	ftp_progress_fn *fn = bar != NULL ? progress_update : NULL;
	int rc = upload ? ftp_put(m->f, fd, m->remote.s, 0, fn, bar)
			: ftp_get(m->f, m->remote.s, fd, 0, fn, bar);

	progress_end(bar, rc == FTPC_OK);
	return rc;
}

void remote_set_time(struct mirror *m, time_t t)
{
	if (!m->mfmt)
		return;
	int rc = ftp_mfmt(m->f, m->remote.s, t);
	if (rc == FTPC_ECONNECT) {
		mirror_engine_fail(m, rc);
	} else if (rc != FTPC_OK && !m->warned_mfmt) {
		/* The file is there: only the next run's comparison suffers. */
		m->warned_mfmt = true;
		mirror_warn("%s (the next run may send the file again)", ftp_error(m->f));
	}
}
