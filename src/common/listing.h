/*
 * listing.h: directory listing lines, for both ends (pure).
 *
 * LIST lines in the "ls -l" shape every client parses (as vsftpd writes them), MLSD/MLST
 * fact lines of RFC 3659 s.7, and the YYYYMMDDHHMMSS times of MDTM and MFMT (s.2.3).  The
 * client parses both forms back into the same entry.
 */
#ifndef FERRY_COMMON_LISTING_H
#define FERRY_COMMON_LISTING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"

struct listing_entry {
	const char *name;   /* file name only, no directory */
	mode_t mode;        /* type and permission bits, as st_mode */
	uint64_t nlink;
	const char *owner;  /* shown as is, e.g. "ftp" */
	const char *group;
	uint64_t size;
	time_t mtime;       /* seconds since the epoch, UTC */
	uint64_t dev;       /* for the unique fact */
	uint64_t ino;
};

/*
 * "drwxr-xr-x    2 ftp      ftp          4096 Jan 01 12:00 name\r\n": time of day for
 * entries modified within six months of now, the year otherwise; dates in UTC; symlinks
 * shown as links ("lrwxrwxrwx"), without a target.
 */
int listing_format_list(struct buf *b, const struct listing_entry *e, time_t now);

/* Which MLSx facts to emit (OPTS MLST selects them). */
enum listing_fact {
	FACT_TYPE = 1 << 0,
	FACT_SIZE = 1 << 1,
	FACT_MODIFY = 1 << 2,
	FACT_PERM = 1 << 3,
	FACT_UNIQUE = 1 << 4,
	FACT_UNIX_MODE = 1 << 5,
};
#define FACT_ALL (FACT_TYPE | FACT_SIZE | FACT_MODIFY | FACT_PERM | FACT_UNIQUE | FACT_UNIX_MODE)

/*
 * One MLSx line: "type=file;size=12;modify=20240101120000;perm=rw;unique=803U1f;
 * unix.mode=0644; name\r\n".  type is "file", "dir", "cdir" or "pdir" (or "OS.unix=..."
 * for other file types); perm is the RFC 3659 s.7.5.5 letters the user holds on this entry.
 * size is emitted for files only.  With leading_space (MLST's reply body), the line starts
 * with one space.
 */
int listing_format_mlsx(struct buf *b, const struct listing_entry *e, const char *type,
			const char *perm, unsigned facts, bool leading_space);

/*
 * The fact names for FEAT and OPTS MLST: "type*;size*;modify*;perm*;unique*;unix.mode*;"
 * with '*' after the selected ones.
 */
int listing_format_fact_list(struct buf *b, unsigned selected);
/*
 * Parse OPTS MLST's argument "type;size;" (case-insensitive; unknown facts ignored, as
 * RFC 3659 s.7.9 says).  Returns the selected set.
 */
unsigned listing_parse_fact_list(const char *arg);

/* MDTM / modify time: 14 digits YYYYMMDDHHMMSS, UTC, into out (at least 15 bytes). */
int listing_format_time(char *out, size_t outsz, time_t t);
/*
 * Parse YYYYMMDDHHMMSS with an optional ".sss" fraction (ignored), UTC.  Validates ranges
 * (month 1-12, day for the month, hour < 24, minute < 60, second <= 60).
 * Returns 0 or FERR_INVALID.
 */
int listing_parse_time(const char *s, time_t *out);

/* Client side: what one listing line (MLSx or LIST) says about an entry. */
struct listing_parsed {
	char type[16];      /* "file", "dir", "cdir", "pdir", "" if absent */
	bool has_size;
	uint64_t size;
	bool has_modify;
	time_t modify;
	const char *name;   /* points into the parsed line */
	size_t name_len;    /* bytes of name: for "a -> b" the name is "a" and not NUL-ended */
};
/*
 * Parse one MLSx line (without CR LF) into out; name points into line.  A malformed size or
 * modify fact makes the line invalid; unknown facts are ignored.  Returns 0 or FERR_INVALID.
 */
int listing_parse_mlsx(const char *line, struct listing_parsed *out);
/*
 * Client side: parse one "ls -l" line; name points into line (use name_len: a symlink's
 * " -> target" is not part of the name).  now picks the year.  type is "dir" or "file"
 * from the first letter, "" for other kinds.  Returns 0 or FERR_INVALID.
 */
int listing_parse_list(const char *line, time_t now, struct listing_parsed *out);

#endif
