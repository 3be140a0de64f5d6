/*
 * path.h: virtual path normalisation (pure).
 *
 * Turns the current virtual directory and a client's path argument into a clean absolute
 * virtual path: no "." or ".." components, no repeated slashes.  ".." at the root stays at
 * the root, as on any Unix.  This is for presentation and bookkeeping (PWD, logs, names in
 * replies); confinement itself is the kernel's job (openat2 RESOLVE_IN_ROOT in vfs.c), so a
 * bug here can produce a wrong name but never an escape.
 */
#ifndef FERRY_COMMON_PATH_H
#define FERRY_COMMON_PATH_H

#include <stdbool.h>
#include <stddef.h>

#define VPATH_MAX 4096

/* Whether a client-supplied name may be used at all: no NUL, CR or LF. */
bool path_name_ok(const char *s, size_t len);

/*
 * Resolve arg (absolute, or relative to cwd, which must be absolute) into out.  An empty
 * arg means cwd.  Works in place without allocating: out may be the cwd buffer itself.
 * Returns 0, FERR_INVALID (NUL, CR or LF in arg; a relative arg with a cwd that is not
 * absolute), or FERR_TOOBIG (result longer than outsz - 1; out is then "").
 */
int path_resolve(const char *cwd, const char *arg, size_t arg_len, char *out, size_t outsz);

/* For openat2 relative to the root: "/" -> ".", "/a/b" -> "a/b".  Points into abs. */
const char *path_relative(const char *abs);

/* The last component of a normalised absolute path ("/" for the root). Points into abs. */
const char *path_basename(const char *abs);

/*
 * Split a normalised absolute path into parent and last component: "/a/b" -> "/a", "b".
 * Returns 0, FERR_INVALID for "/" (no parent), FERR_TOOBIG if parent does not fit.
 */
int path_split(const char *abs, char *parent, size_t parentsz, const char **name);

#endif
