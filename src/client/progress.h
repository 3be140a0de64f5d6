/*
 * progress.h: the progress bar of a transfer (bytes, rate, ETA), drawn on a terminal.
 *
 * The commands call progress_begin() before a transfer, hand progress_update() to the
 * engine as its ftp_progress_fn with the bar as its context, and call progress_end()
 * after it.  The bar decides by itself whether to draw: never under --quiet (o->quiet),
 * never when standard output is not a terminal; progress_begin() then returns NULL, and
 * the commands pass no progress function to the engine at all.
 */
#ifndef FERRY_CLIENT_PROGRESS_H
#define FERRY_CLIENT_PROGRESS_H

#include <stdbool.h>

#include "client/ftp.h"

struct progress;

/* A bar for one transfer named label (the file's name), or NULL for none.  Freed by progress_end. */
struct progress *progress_begin(const char *label, const struct ftp_options *o);
/* An ftp_progress_fn: ctx is the struct progress. */
void progress_update(void *ctx, const struct ftp_progress *p);
/* Finish the bar's line (ok: the transfer completed) and free it; NULL is a no-op. */
void progress_end(struct progress *bar, bool ok);

#endif
