/*
 * progress_fmt.h: the pure half of the progress bar (progress.h): numbers in, one line
 * of text out, and the smoothing of the transfer rate.  No I/O, no clock, no globals:
 * progress.c feeds it the engine's numbers and the terminal's width, and
 * tests/unit/test_progress_fmt.c feeds it made-up ones.
 *
 * Every function writes into a buffer the caller owns, never past outsz, and always leaves
 * a NUL-terminated string there (outsz > 0).  Nothing is allocated.
 *
 * Units are binary with one decimal (1.5 KiB = 1536 bytes); below 1 KiB, whole bytes.
 */
#ifndef FERRY_CLIENT_PROGRESS_FMT_H
#define FERRY_CLIENT_PROGRESS_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Enough for any pfmt_bytes() ("1023.9 KiB", "16.0 EiB") and its NUL. */
#define PFMT_BYTES_MAX 16
/* Enough for any pfmt_clock() ("99999:59:59", "--:--") and its NUL. */
#define PFMT_CLOCK_MAX 16
/* The widest line pfmt_line() draws (wider terminals get this), and a buffer for it. */
#define PFMT_WIDTH_MAX 400
#define PFMT_LINE_MAX (4 * PFMT_WIDTH_MAX + 1)

/* "0 B", "1023 B", "1.0 KiB", "12.3 MiB", "4.0 GiB" (then TiB, PiB, EiB). */
void pfmt_bytes(char *out, size_t outsz, uint64_t n);
/* pfmt_bytes() of a rate and "/s"; "-- B/s" when bytes_per_s < 0 (unknown). */
void pfmt_rate(char *out, size_t outsz, double bytes_per_s);
/*
 * A duration rounded to the second: "mm:ss" with pad_minutes ("01:05", for the ETA),
 * "m:ss" without ("1:05", for "in 1:05"), "h:mm:ss" from an hour on; "--:--" when
 * seconds is negative, not a number, or more than 99999 hours.
 */
void pfmt_clock(char *out, size_t outsz, double seconds, bool pad_minutes);
/* The seconds left at rate for the bytes from done to total; -1 when it cannot be known. */
double pfmt_eta(uint64_t done, uint64_t total, double bytes_per_s);

/*
 * A file name made safe for a terminal and shortened to at most cols columns: control
 * characters (C0, DEL, C1), bidirectional overrides and bytes that are not UTF-8 become
 * '?', so that a remote name cannot move the cursor, change colours or reorder the line;
 * a name wider than cols keeps its start and its end around "..." (so "report-2025-
 * final.tar.gz" keeps its extension).  Characters from U+1100 on count as two columns (East
 * Asian wide ones do; the others are shortened a little early).  Returns the columns
 * written.
 */
unsigned pfmt_name(char *out, size_t outsz, const char *name, unsigned cols);
/* The columns name takes on a terminal, as pfmt_name() counts them. */
unsigned pfmt_name_cols(const char *name);

/* "[=====>    ]": inner columns between the brackets, fraction (0..1) of them filled. */
void pfmt_bar(char *out, size_t outsz, unsigned inner, double fraction);

enum pfmt_state {
	PFMT_RUNNING,  /* "name  [===>  ]  45%  5.6 MiB / 12.3 MiB  4.1 MiB/s  ETA 00:02" */
	PFMT_DONE,     /* "name  100%  12.3 MiB  4.1 MiB/s  in 0:03" */
	PFMT_FAILED,   /* "name  45%  5.6 MiB of 12.3 MiB  failed" */
};

/* What one line shows. */
struct pfmt_view {
	const char *name;     /* NULL or "": none */
	uint64_t done;        /* bytes of the file there are now, a resumed part included */
	uint64_t total;       /* the file's size, a resumed part included; 0: unknown */
	double rate;          /* bytes per second; < 0: unknown */
	double elapsed;       /* seconds of this run (PFMT_DONE's "in m:ss") */
	enum pfmt_state state;
};

/*
 * One line for a terminal of width columns (80 when 0; at most PFMT_WIDTH_MAX), which
 * never reaches the last column (so that no terminal wraps it) and holds no newline or
 * carriage return.  While running, the bar's place and length depend only on the width
 * and the name, so that they stay put from one redraw to the next; only the numbers on
 * its right change.  The name is shortened (pfmt_name()) before the numbers are.  Returns
 * the columns written; out should have PFMT_LINE_MAX bytes (less cuts the line short).
 */
unsigned pfmt_line(char *out, size_t outsz, const struct pfmt_view *v, unsigned width);

/*
 * The rate of a transfer as an average over its last window seconds, not since the start,
 * so that it follows a transfer that speeds up or slows down.  Feed it (time, bytes so
 * far) at each update; a time or byte count that goes back (the transfer was started
 * again) starts the average afresh.
 */
#define PFMT_RATE_SLOTS 32
struct pfmt_rate {
	double window;
	double t[PFMT_RATE_SLOTS];      /* a ring of samples, at least window/16 apart */
	uint64_t bytes[PFMT_RATE_SLOTS];
	unsigned first, count;
	double now_t;                   /* the latest sample, stored or not */
	uint64_t now_bytes;
	bool have_now;
};
void pfmt_rate_init(struct pfmt_rate *r, double window);
void pfmt_rate_add(struct pfmt_rate *r, double t, uint64_t bytes);
/* Bytes per second, or -1 before two samples apart in time. */
double pfmt_rate_get(const struct pfmt_rate *r);

#endif
