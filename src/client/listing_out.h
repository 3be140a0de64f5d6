/*
 * listing_out.h: what ferry prints of remote listings and names, the same in `ferry ls`,
 * the shell and mirror: one line per entry, "d        0 2026-12-01 10:00 dir/", sorted by
 * name, whether the server answered MLSD or LIST; names from a server shown with control
 * bytes as '?' (shown, never obeyed by the terminal).
 */
#ifndef FERRY_CLIENT_LISTING_OUT_H
#define FERRY_CLIENT_LISTING_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "common/listing.h"

struct ls_entry {
	char type;          /* 'd', '-', 'l' or '?' */
	uint64_t size;      /* 0 for directories: their sizes mean nothing alike */
	bool has_time;
	time_t mtime;
	char *name;
};

/* Entries collected from ftp_list(); zero-initialise, free with ls_free(). */
struct ls_list {
	struct ls_entry *v;
	size_t n, cap;
	size_t max;         /* 0: no bound; beyond it, oom is set */
	bool oom;
};

/* An ftp_entry_fn: ctx is a struct ls_list. */
void ls_collect(void *ctx, const struct listing_parsed *e);
/* Sort by name and print every entry to out.  Returns 0, or -1 if out failed. */
int ls_print_all(struct ls_list *l, FILE *out);
void ls_free(struct ls_list *l);

/* s (len bytes) with control bytes as '?', cut to fit outsz; returns out. */
const char *shown(const char *s, size_t len, char *out, size_t outsz);

#endif
