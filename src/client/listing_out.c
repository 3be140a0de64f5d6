/*
 * listing_out.c: see listing_out.h.
 */
#include "client/listing_out.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static char type_letter(const struct listing_parsed *e)
{
	if (strcmp(e->type, "dir") == 0)
		return 'd';
	if (strcmp(e->type, "file") == 0)
		return '-';
	if (strstr(e->type, "link") != NULL)
		return 'l';
	return '?';
}

void ls_collect(void *ctx, const struct listing_parsed *e)
{
	struct ls_list *l = ctx;
	if (l->oom || (l->max > 0 && l->n >= l->max)) {
		l->oom = true;
		return;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct ls_entry *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL) {
			l->oom = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	struct ls_entry *x = &l->v[l->n];
	x->name = strndup(e->name, e->name_len);
	if (x->name == NULL) {
		l->oom = true;
		return;
	}
	x->type = type_letter(e);
	x->size = x->type == 'd' || !e->has_size ? 0 : e->size;
	x->has_time = e->has_modify;
	x->mtime = e->modify;
	l->n++;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct ls_entry *)a)->name, ((const struct ls_entry *)b)->name);
}

int ls_print_all(struct ls_list *l, FILE *out)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), by_name);
	for (size_t i = 0; i < l->n; i++) {
		const struct ls_entry *e = &l->v[i];
		char when[32] = "\?\?\?\?-\?\?-\?\? \?\?:\?\?", name[1024];
		struct tm tm;
		if (e->has_time && gmtime_r(&e->mtime, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
		fprintf(out, "%c%9" PRIu64 " %s %s%s\n", e->type, e->size, when,
			shown(e->name, strlen(e->name), name, sizeof(name)), e->type == 'd' ? "/" : "");
	}
	return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}

void ls_free(struct ls_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

const char *shown(const char *s, size_t len, char *out, size_t outsz)
{
	size_t n = 0;
	for (size_t i = 0; i < len && n + 1 < outsz; i++)
		out[n++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	out[n] = '\0';
	return out;
}
