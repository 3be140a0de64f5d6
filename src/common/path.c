/*
 * path.c: virtual path normalisation.
 *
 * Works in place in the caller's buffer, with no allocation, so out may even be the cwd
 * buffer itself (writing never overtakes reading: the result of a prefix is never longer
 * than the prefix).  This is bookkeeping for names the client sees; confinement is the
 * kernel's job (openat2 RESOLVE_IN_ROOT), so a bug here must never be the only barrier.
 */
#include "path.h"

#include <string.h>

#include "err.h"

bool path_name_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
			return false;
	}
	return true;
}

/*
 * The result being built: out[0..len) holds the components that fit, and `ghost` counts
 * the deeper ones that did not.  A later ".." can pop a ghost, so a long intermediate path
 * whose final result fits is not refused.
 */
struct vpath {
	char *out;
	size_t outsz;
	size_t len;
	size_t ghost;
};

static void push(struct vpath *v, const char *comp, size_t n)
{
	if (n == 1 && comp[0] == '.')
		return;
	if (n == 2 && comp[0] == '.' && comp[1] == '.') {
		if (v->ghost > 0) {
			v->ghost--;
			return;
		}
		/* Back to the last '/', but never above the root. */
		while (v->len > 1 && v->out[v->len - 1] != '/')
			v->len--;
		if (v->len > 1)
			v->len--;
		return;
	}
	size_t sep = v->len > 1 ? 1 : 0;
	/* len <= outsz - 1 always holds, so this cannot wrap. */
	size_t avail = v->outsz - 1 - v->len;
	if (v->ghost > 0 || n + sep > avail) {
		v->ghost++;
		return;
	}
	if (sep)
		v->out[v->len++] = '/';
	memmove(v->out + v->len, comp, n);
	v->len += n;
}

/* Feed every component of s[0..n) ('/'-separated; empty ones ignored). */
static void push_all(struct vpath *v, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && s[i] == '/')
			i++;
		size_t start = i;
		while (i < n && s[i] != '/')
			i++;
		if (i > start)
			push(v, s + start, i - start);
	}
}

int path_resolve(const char *cwd, const char *arg, size_t arg_len, char *out, size_t outsz)
{
	if (arg == NULL)
		arg_len = 0;
	if (arg_len > 0 && !path_name_ok(arg, arg_len))
		return FERR_INVALID;
	if (outsz < 2)
		return FERR_TOOBIG;

	bool absolute = arg_len > 0 && arg[0] == '/';
	size_t cwd_len = 0;
	if (!absolute) {
		if (cwd == NULL || cwd[0] != '/')
			return FERR_INVALID;
		cwd_len = strlen(cwd);
		if (!path_name_ok(cwd, cwd_len))
			return FERR_INVALID;
	}

	struct vpath v = { out, outsz, 1, 0 };
	out[0] = '/';
	if (!absolute)
		push_all(&v, cwd, cwd_len);
	push_all(&v, arg, arg_len);
	if (v.ghost > 0) {
		out[0] = '\0';
		return FERR_TOOBIG;
	}
	out[v.len] = '\0';
	return FERR_OK;
}

const char *path_relative(const char *abs)
{
	while (*abs == '/')
		abs++;
	return *abs == '\0' ? "." : abs;
}

const char *path_basename(const char *abs)
{
	const char *slash = strrchr(abs, '/');
	if (slash == NULL)
		return abs;
	if (slash == abs && slash[1] == '\0')
		return abs; /* the root names itself */
	return slash + 1;
}

int path_split(const char *abs, char *parent, size_t parentsz, const char **name)
{
	if (abs == NULL || abs[0] != '/' || abs[1] == '\0')
		return FERR_INVALID;
	const char *slash = strrchr(abs, '/');
	if (slash[1] == '\0')
		return FERR_INVALID;
	size_t n = (size_t)(slash - abs);
	if (n == 0)
		n = 1; /* the parent is the root */
	if (n >= parentsz) {
		if (parentsz > 0)
			parent[0] = '\0';
		return FERR_TOOBIG;
	}
	memcpy(parent, abs, n);
	parent[n] = '\0';
	*name = slash + 1;
	return FERR_OK;
}

