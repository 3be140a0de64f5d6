/*
 * mirror_entries.c: what mirror knows of one directory and of where it is.  The entries
 * of a directory on either side (struct entries, sorted by name, so that the other
 * side's entry of the same name is a bsearch away); the two paths that follow the walk
 * (m->remote for the server, m->rel for messages), one component deeper for each entry
 * and back; and which names a server may give us.
 *
 * What this file must never do: pass a name with a '/', a NUL, CR or LF, or a "." or
 * ".." as safe (entries_name_ok() is the one test, which mirror_remote.c applies to every
 * name a server lists), or let a path grow past MIRROR_PATH_MAX (a longer one is refused,
 * not cut short).  It makes no system call and sends nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "client/listing_out.h"
#include "client/mirror_int.h"
#include "common/path.h"

/* ---- paths ---- */

/* Append "/name" (no slash after an empty path or one ending in '/'); -1 if too long. */
static int mpath_push(struct mpath *p, const char *name, size_t *mark)
{
	size_t n = strlen(name);
	bool slash = p->len > 0 && p->s[p->len - 1] != '/';

	*mark = p->len;
	if (p->len + (slash ? 1 : 0) + n + 1 > sizeof(p->s))
		return -1;
	if (slash)
		p->s[p->len++] = '/';
	memcpy(p->s + p->len, name, n + 1);
	p->len += n;
	return 0;
}

static void mpath_pop(struct mpath *p, size_t mark)
{
	p->len = mark;
	p->s[mark] = '\0';
}

int mpath_set(struct mpath *p, const char *s)
{
	size_t n = strlen(s);

	if (n + 1 > sizeof(p->s))
		return -1;
	memcpy(p->s, s, n + 1);
	p->len = n;
	return 0;
}

const char *mpath_shown(const struct mpath *p, char *out, size_t outsz)
{
	return shown(p->len > 0 ? p->s : ".", p->len > 0 ? p->len : 1, out, outsz);
}

/* Both paths one component deeper; a failure (too long) is reported and counted. */
static int descend(struct mirror *m, const char *name, size_t marks[2])
{
	char b[512], nb[256];

	if (mpath_push(&m->remote, name, &marks[0]) == 0) {
		if (mpath_push(&m->rel, name, &marks[1]) == 0)
			return 0;
		mpath_pop(&m->remote, marks[0]);
	}
	mirror_fail(m, FTPC_ELOCAL, "%s/%s: the path is too long", mirror_rel(m, b, sizeof(b)),
		    shown(name, strlen(name), nb, sizeof(nb)));
	return -1;
}

static void ascend(struct mirror *m, const size_t marks[2])
{
	mpath_pop(&m->remote, marks[0]);
	mpath_pop(&m->rel, marks[1]);
}

/* ---- entry lists ---- */

/*
 * Not empty, not "." or "..", no '/', and no NUL, CR or LF (which no control line could
 * carry back; path_name_ok()).
 */
bool entries_name_ok(const char *s, size_t len)
{
	if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	return memchr(s, '/', len) == NULL && path_name_ok(s, len);
}

/* Room for one more entry; false (and l->oom) when there is none. */
static bool entries_grow(struct entries *l)
{
	if (l->n < l->cap)
		return true;
	size_t cap = l->cap ? l->cap * 2 : 32;
	struct entry *v = realloc(l->v, cap * sizeof(*v));
	if (v == NULL) {
		l->oom = true;
		return false;
	}
	l->v = v;
	l->cap = cap;
	return true;
}

struct entry *entries_add(struct entries *l, const char *name, size_t len)
{
	if (l->oom || l->too_many)
		return NULL;
	if (l->n >= MIRROR_DIR_MAX) {
		l->too_many = true;
		return NULL;
	}
	if (!entries_grow(l))
		return NULL;
	struct entry *e = &l->v[l->n];
	memset(e, 0, sizeof(*e));
	e->name = strndup(name, len);
	if (e->name == NULL) {
		l->oom = true;
		return NULL;
	}
	l->n++;
	return e;
}

void entries_free(struct entries *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

void entries_sort(struct entries *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), entry_cmp);
}

const struct entry *entries_find(const struct entries *l, const char *name)
{
	struct entry key = { .name = (char *)name };

	return l->n == 0 ? NULL : bsearch(&key, l->v, l->n, sizeof(*l->v), entry_cmp);
}

void entries_each(struct mirror *m, const struct entries *l, const struct entries *except,
		  entry_fn *fn, const struct at *at)
{
	for (size_t i = 0; i < l->n && !m->gone; i++) {
		const struct entry *e = &l->v[i];
		size_t marks[2];
		if (except != NULL && entries_find(except, e->name) != NULL)
			continue;
		if (descend(m, e->name, marks) != 0)
			continue;
		fn(m, e, at);
		ascend(m, marks);
	}
}
