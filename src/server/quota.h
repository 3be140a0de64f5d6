/*
 * quota.h: users' quotas (quota_bytes, quota_files of user_settings.h), kept as a tally of
 * the regular files beneath the user's root and the sum of their sizes.
 *
 * The tally lives in the root itself, in the file VFS_TALLY_NAME (".ftpquota"), as the text
 * "FILES BYTES\n".  Every session of the user, in any worker and any ferryd sharing the
 * home, reads and changes it under flock(LOCK_EX), so changes from several processes add
 * up.  A tally that is missing or does not parse is counted anew by walking the tree.
 * Clients never see or touch the file: vfs.c hides it.
 *
 * The pure part (parser, formatter, arithmetic) is unit-tested and fuzzed; the I/O part
 * works on the root's descriptor only, never on a client's name, and logs nothing: its
 * callers say what failed.  All functions return 0 or -errno / FERR_*.
 */
#ifndef FERRY_SERVER_QUOTA_H
#define FERRY_SERVER_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest tally text: two 20-digit numbers, a space and a newline. */
#define QUOTA_TEXT_MAX 42
/* A walk stops after this many directory entries; what it counted stands. */
#define QUOTA_SCAN_MAX_ENTRIES 1000000u
/* ... and does not go deeper than this (each level holds a descriptor meanwhile). */
#define QUOTA_SCAN_MAX_DEPTH 256u

/* What a user's root holds: regular files and the sum of their sizes. */
struct quota_usage {
	uint64_t files;
	uint64_t bytes;
};

/* A user's limits; 0 is none. */
struct quota_limits {
	uint64_t bytes;
	uint64_t files;
};

enum quota_verdict {
	QUOTA_OK = 0,
	QUOTA_OVER_FILES, /* a new file would be one too many */
	QUOTA_OVER_BYTES, /* not one byte may be written */
};

/* ---- pure ---- */

/*
 * Parse "FILES BYTES\n" (len bytes, no NUL needed): decimal digits, one space, digits, an
 * optional newline, nothing else.  Returns 0, FERR_INVALID or FERR_RANGE.
 */
int quota_parse(const char *text, size_t len, struct quota_usage *out);
/* Format u as the tally's text into out (size >= QUOTA_TEXT_MAX + 1).  Returns its length. */
size_t quota_format(const struct quota_usage *u, char *out, size_t size);
/*
 * A file went from old_size bytes to new_size (0 when it is gone), files more or fewer
 * files (-1, 0, +1) for it.  Saturates at 0 and UINT64_MAX: a tally that drifted from the
 * tree never wraps.
 */
void quota_change(struct quota_usage *u, int files, uint64_t old_size, uint64_t new_size);
/*
 * How many bytes an upload may write into a file of old_size bytes (0: a new one) that it
 * starts writing at start (STOR: 0 or its REST offset, where the file is cut; APPE: the
 * file's end): what keeps the usage, with the file's new size in place of its old one,
 * within the byte quota.  UINT64_MAX without a byte quota.
 */
uint64_t quota_room(const struct quota_limits *q, const struct quota_usage *u, uint64_t old_size,
		    uint64_t start);
/* Whether an upload may begin: a new file within quota_files, and room for a byte. */
enum quota_verdict quota_admit(const struct quota_limits *q, const struct quota_usage *u,
			       bool new_file, uint64_t room);

/* ---- I/O: the tally file beneath the root descriptor root (O_PATH is enough) ---- */

/*
 * Read the tally, under flock(LOCK_EX).  A tally missing, empty or not parsing is counted
 * anew (quota_scan) and written; *rebuilt (may be NULL) says so, *partial that the walk
 * stopped at one of its bounds.
 */
int quota_load(int root, struct quota_usage *out, bool *rebuilt, bool *partial);
/*
 * Apply one change (quota_change's arguments) to the tally under flock(LOCK_EX), counting
 * it anew first when it does not parse.  *after (may be NULL) gets the new usage.
 */
int quota_update(int root, int files, uint64_t old_size, uint64_t new_size,
		 struct quota_usage *after);
/*
 * Count the regular files beneath root and their sizes: symlinks are not followed, other
 * file systems not entered, the tally itself not counted; at most QUOTA_SCAN_MAX_ENTRIES
 * entries and QUOTA_SCAN_MAX_DEPTH levels (*partial then says it stopped short).
 * Directories that cannot be read are skipped.
 */
int quota_scan(int root, struct quota_usage *out, bool *partial);

/*
 * ---- a session's quota (quota_session.c): the commands' side ----
 * Each does nothing for a session whose user has no quota (s->set, user_settings_quota).
 * The tally failing (not readable, not writable, flock refused) never fails a command:
 * it is logged, and the upload goes on unchecked.
 */
struct session;
struct stat;

/* Whether the session's user has a quota (the tally follows its changes). */
bool quota_session_applies(const struct session *s);
/* At login: read the tally, counting it anew when it is missing or does not parse. */
void quota_session_login(struct session *s);
/*
 * Before STOR, APPE or STOU of vpath (fresh: STOU, which always makes a new file; append:
 * APPE; rest: STOR's REST offset): 0 with *room, the bytes the upload may write
 * (UINT64_MAX: no limit), or -1 after replying 552 (nothing is created then).
 */
int quota_session_admit(struct session *s, const char *vpath, bool fresh, bool append,
			uint64_t rest, uint64_t *room);
/* A file of the user's went from old_size bytes to new_size, files: -1, 0 or +1. */
void quota_session_changed(struct session *s, int files, uint64_t old_size, uint64_t new_size);
/* DELE or RNTO took away what *gone describes (st_mode 0: nothing). */
void quota_session_removed(struct session *s, const struct stat *gone);

#endif
