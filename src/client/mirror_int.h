/*
 * mirror_int.h: the inside of `ferry mirror`, shared by its files only; main.c sees
 * cmd_mirror() in commands.h and nothing of this.
 *
 *   mirror.c          the command: arguments, the top directory, the server's features,
 *                     failures reported and counted, the summary, the exit status
 *   mirror_walk.c     the two walks (download, upload) and the decision: what to send
 *   mirror_delete.c   --delete: what the other side no longer has, on either side
 *   mirror_entries.c  the entries of one directory (either side), the paths the walk
 *                     goes down and back up, and which names a server may give us
 *   mirror_local.c    every local file system call: directory descriptors, no link
 *                     followed, temporary files renamed into place, modes and times
 *   mirror_remote.c   the remote side through the engine: listings, SIZE and MDTM,
 *                     RETR and STOR with the progress bar, MFMT
 *
 * Nothing here allocates behind the caller's back except the entry lists (struct
 * entries), which their owner frees with entries_free().
 */
#ifndef FERRY_CLIENT_MIRROR_INT_H
#define FERRY_CLIENT_MIRROR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "client/ftp.h"

/* Deeper trees are refused: a server could otherwise nest directories without end. */
#define MIRROR_DEPTH_MAX 64
/* Bytes of a remote or relative path (the control line's limit is 4096 as well). */
#define MIRROR_PATH_MAX 4096
/* Entries of one directory, either side. */
#define MIRROR_DIR_MAX 1000000

/* One path that grows by a component on the way down and shrinks on the way back. */
struct mpath {
	char s[MIRROR_PATH_MAX];
	size_t len;
};

struct mirror {
	struct ftp *f;
	const struct ftp_options *o;
	bool reverse, delete, dry_run;
	bool mlsd;            /* listings carry exact times (the modify fact) */
	bool mdtm, mfmt;      /* the server's FEAT */
	struct mpath remote;  /* the remote directory or file being worked on */
	struct mpath rel;     /* the same relative to the top, for messages ("a/b.txt") */
	unsigned sent, up_to_date, deleted, failed;
	int first_err;        /* FTPC_E* of the first failure */
	bool gone;            /* the control connection broke: stop */
	bool warned_mfmt;
	unsigned tmp_seq;
};

/* An entry of a directory on either side. */
enum kind { K_FILE, K_DIR, K_OTHER };

struct entry {
	char *name;
	enum kind kind;
	bool has_size, has_time;
	uint64_t size;
	time_t mtime;
};

/* Zero-initialised by whoever lists into it; freed with entries_free(). */
struct entries {
	struct entry *v;
	size_t n, cap;
	bool oom, too_many;
	unsigned refused;     /* names that were not safe to use */
};

/*
 * Where the walk is: the local directory (-1: none, as in a dry run below a directory
 * that would be made), how deep, and the other side's listing of the same directory
 * (NULL where the step needs none).
 */
struct at {
	int dfd;
	int depth;
	const struct entries *other;
};

/* One step of the walk, for an entry whose name m->remote and m->rel end with. */
typedef void entry_fn(struct mirror *m, const struct entry *e, const struct at *at);

/* ---- mirror.c: messages, each failure counted ---- */

/* "ferry: <sentence>" for one failure, counted (err: its FTPC_E* class). */
void mirror_fail(struct mirror *m, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* An engine call that failed: its own sentence. */
void mirror_engine_fail(struct mirror *m, int rc);
/* "ferry: warning: <sentence>", not counted. */
void mirror_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The relative path of the current entry ("a/b.txt", "." for the top), shown safely. */
const char *mirror_rel(const struct mirror *m, char *out, size_t outsz);
/* The current entry is neither a file nor a directory: left alone ("skipped", "not deleted"). */
void mirror_neither(struct mirror *m, bool on_server, const char *what);
/* The sides disagree on what the current entry is; want: what it is on the side we copy from. */
void mirror_mismatch(struct mirror *m, enum kind want, bool upload);
/* Past MIRROR_DEPTH_MAX: reported and counted as err, and true. */
bool mirror_too_deep(struct mirror *m, int depth, int err, bool deleting);

/* ---- mirror_entries.c ---- */

int mpath_set(struct mpath *p, const char *s);
/* p shown safely ("." for the empty path); returns out. */
const char *mpath_shown(const struct mpath *p, char *out, size_t outsz);

/* A name a server listed may become a local name: one plain component. */
bool entries_name_ok(const char *s, size_t len);
/* A new entry named name (len bytes) at the end of l, zeroed; NULL on oom or too_many. */
struct entry *entries_add(struct entries *l, const char *name, size_t len);
void entries_free(struct entries *l);
void entries_sort(struct entries *l);
/* l sorted: the entry named name, or NULL. */
const struct entry *entries_find(const struct entries *l, const char *name);
/*
 * fn for each entry of l that except (when not NULL) does not hold, with both paths one
 * component deeper for the call; stops once the control connection is gone.
 */
void entries_each(struct mirror *m, const struct entries *l, const struct entries *except,
		  entry_fn *fn, const struct at *at);

/* ---- mirror_walk.c ---- */

/* Download: the remote directory m->remote into dfd (-1: a dry run's DIR not there). */
void mirror_down(struct mirror *m, int dfd);
/* Upload: dfd into the remote directory m->remote, made when it is not there. */
void mirror_up(struct mirror *m, int dfd);

/* ---- mirror_delete.c ---- */

/* What dfd holds that the server's listing of the same directory does not. */
void delete_local_extras(struct mirror *m, int dfd, const struct entries *remote);
/* What the server's listing of m->remote holds that the local listing does not. */
void delete_remote_extras(struct mirror *m, const struct entries *local,
			  const struct entries *remote);

/* ---- mirror_local.c ---- */

/* A temporary file of a download, beside the file it will replace. */
struct temp {
	int dfd, fd;
	char name[64];
};

/*
 * The top directory, opened before connecting (so that a bad DIR costs no session);
 * *missing: a download's DIR that is not there yet.  0, or the exit status (reported).
 */
int local_top_open(const struct mirror *m, const char *dir, int *dfd, bool *missing);
/* Download: make DIR once the session is there (a dry run leaves it, as -1). */
int local_top_make(const struct mirror *m, const char *dir, int *dfd);

/* The names in dfd (not "." or ".."), sorted, with their lstat; reported on failure. */
int local_list(struct mirror *m, int dfd, struct entries *l);
/* Neither a file nor a directory in dfd: a link is skipped, and so is anything else (what). */
void local_other(struct mirror *m, int dfd, const char *name, const char *what);
/*
 * What dfd holds under name: 1 a want (*st filled), 0 nothing (errno says why; also when
 * dfd is -1), -1 something else (reported: a link skipped, another kind refused).
 */
int local_match(struct mirror *m, int dfd, const char *name, enum kind want, struct stat *st);
/* A subdirectory, opened without following a link; -1 reported ("cannot delete" if to_delete). */
int local_open_dir(struct mirror *m, int dfd, const char *name, bool to_delete);
/*
 * Download: the local directory for a remote one, made when missing: 0 with *sub (-1 in a
 * dry run where it would be made, and where dfd is -1), or -1 (reported).
 */
int local_dir_for(struct mirror *m, int dfd, const char *name, int *sub);
/* Upload: a regular file of dfd opened for reading; -1 reported. */
int local_open_file(struct mirror *m, int dfd, const char *name);

/* Download: a new temporary file in dfd (never an existing one); 0 or -1 reported. */
int local_temp_create(struct mirror *m, int dfd, struct temp *t);
/* The transfer failed: the temporary file closed and removed. */
void local_temp_drop(struct temp *t);
/* Given the old file's mode and the time (NULL: none), renamed over name; 0 or -1 reported. */
int local_temp_keep(struct mirror *m, struct temp *t, const char *name, const struct stat *old,
		    const time_t *mtime);
/* --delete: a file; an emptied directory (kept with a warning when something is left). */
void local_unlink(struct mirror *m, int dfd, const char *name);
void local_rmdir(struct mirror *m, int dfd, const char *name);

/* ---- mirror_remote.c ---- */

/* List m->remote into l (sorted); reported and counted on failure unless quiet_enoent. */
int remote_list(struct mirror *m, struct entries *l, bool quiet_enoent);
/* The remote file's time, from the listing or MDTM; false when there is none. */
bool remote_time(struct mirror *m, const struct entry *e, time_t *t);
/* The remote file's size, from the listing or SIZE; false when unknown. */
bool remote_size(struct mirror *m, const struct entry *e, uint64_t *size);
/* RETR m->remote into fd, or (upload) STOR fd to it, with the progress bar. */
int remote_transfer(struct mirror *m, int fd, bool upload);
/* After an upload: MFMT, so that the next run sees the same time on both sides. */
void remote_set_time(struct mirror *m, time_t t);

#endif
