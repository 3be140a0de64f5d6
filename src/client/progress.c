/*
 * progress.c: the progress bar of one transfer (progress.h): one line on standard output,
 * redrawn in place with "\r", ended with a complete line and a newline.  It draws only on
 * a terminal and never under --quiet, so scripts and pipes see nothing from it; and it
 * never writes anything but that line (errors are the commands' business, on stderr).
 *
 * The engine (xfer.c) calls progress_update() at most ~10 times a second and once at the
 * end; this file redraws at most as often (PROGRESS_REDRAW) whatever it is called with,
 * and leaves the final line to progress_end(), which alone knows whether the transfer
 * succeeded.  The text is made in progress_fmt.c; what is here is the terminal: whether
 * there is one, its width (asked at each redraw, so a resized window is followed), and
 * the writing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "client/progress.h"
#include "client/progress_fmt.h"

#define PROGRESS_REDRAW 0.09    /* seconds between redraws: ~10 a second at most */
#define PROGRESS_WINDOW 5.0     /* seconds the shown rate is averaged over */

struct progress {
	char *label;                /* owned */
	struct pfmt_rate rate;
	struct ftp_progress last;   /* the latest update (its name not kept) */
	bool seen;                  /* an update came */
	bool drawn;                 /* a line is on the screen, not yet ended */
	unsigned drawn_cols;        /* its columns, blanked before a shorter one */
	double drawn_at;            /* its time (last.seconds) */
};

static unsigned terminal_width(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/* The bytes of the file there are now, and its size (0: unknown), a resumed part included. */
static struct pfmt_view view_of(const struct progress *bar, enum pfmt_state state)
{
	const struct ftp_progress *p = &bar->last;

	return (struct pfmt_view){
		.name = bar->label,
		.done = p->offset + p->done,
		.total = p->total > 0 ? p->offset + p->total : 0,
		.rate = pfmt_rate_get(&bar->rate),
		.elapsed = p->seconds,
		.state = state,
	};
}

/*
 * "\r", the line, and spaces over what is left of a longer line before it; a final line
 * is written over a blanked one, so that it holds no trailing spaces, and ends with "\n".
 * Errors are ignored: a progress bar is not worth failing a transfer for.
 */
static void draw(struct progress *bar, const struct pfmt_view *v, bool final)
{
	char line[PFMT_LINE_MAX];
	unsigned cols = pfmt_line(line, sizeof(line), v, terminal_width());

	if (final) {
		if (bar->drawn) {
			fputc('\r', stdout);
			for (unsigned i = 0; i < bar->drawn_cols; i++)
				fputc(' ', stdout);
		}
		fprintf(stdout, "\r%s\n", line);
		bar->drawn = false;
	} else {
		fprintf(stdout, "\r%s", line);
		for (unsigned i = cols; i < bar->drawn_cols; i++)
			fputc(' ', stdout);
		bar->drawn = true;
		bar->drawn_cols = cols;
	}
	fflush(stdout);
}

struct progress *progress_begin(const char *label, const struct ftp_options *o)
{
	if (o->quiet || !isatty(STDOUT_FILENO))
		return NULL;
	struct progress *bar = calloc(1, sizeof(*bar));
	if (bar == NULL)
		return NULL;
	bar->label = strdup(label != NULL ? label : "");
	if (bar->label == NULL) {
		free(bar);
		return NULL;
	}
	pfmt_rate_init(&bar->rate, PROGRESS_WINDOW);
	return bar;
}

void progress_update(void *ctx, const struct ftp_progress *p)
{
	struct progress *bar = ctx;

	/* Fewer bytes or an earlier time: the engine started again (passive, then active). */
	if (bar->seen && (p->done < bar->last.done || p->seconds < bar->last.seconds))
		bar->drawn_at = p->seconds - PROGRESS_REDRAW;
	bar->last = *p;
	bar->last.name = NULL;
	bar->seen = true;
	pfmt_rate_add(&bar->rate, p->seconds, p->done);
	if (p->finished)
		return;     /* progress_end() draws the last line */
	if (bar->drawn && p->seconds - bar->drawn_at < PROGRESS_REDRAW)
		return;
	bar->drawn_at = p->seconds;
	struct pfmt_view v = view_of(bar, PFMT_RUNNING);
	draw(bar, &v, false);
}

void progress_end(struct progress *bar, bool ok)
{
	if (bar == NULL)
		return;
	/* A transfer refused before its data flowed needs no line: its error says it all. */
	if (ok || bar->drawn) {
		struct pfmt_view v = view_of(bar, ok ? PFMT_DONE : PFMT_FAILED);
		/* The rate of the whole run (bytes moved by it, not the resumed part). */
		double secs = bar->last.seconds;
		v.rate = secs >= 1e-3 ? (double)bar->last.done / secs : -1;
		draw(bar, &v, true);
	}
	free(bar->label);
	free(bar);
}
