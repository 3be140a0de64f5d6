/*
 * fuzz_path.c: path_resolve with varying cwd and output sizes.
 *
 * Input: "CWD-ARG\nARG" (the part before the first LF is resolved from "/" into a cwd; a
 * missing LF means cwd "/").  Every accepted result must be clean: starting with '/', no
 * "//", "/./" or "/../", no trailing '/' or "/." or "/..".  Resolving in place (out ==
 * cwd) and resolving the joined string from "/" must agree with the plain call.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static void check_clean(const char *p, size_t outsz)
{
	size_t n = strlen(p);
	if (n == 0 || n >= outsz || p[0] != '/')
		abort();
	if (strstr(p, "//") || strstr(p, "/./") || strstr(p, "/../"))
		abort();
	if (n > 1 && (ends_with(p, "/") || ends_with(p, "/.") || ends_with(p, "/..")))
		abort();
	if (!path_name_ok(p, n))
		abort();

	/* A clean path resolves to itself. */
	char again[VPATH_MAX];
	if (path_resolve("/", p, n, again, sizeof(again)) != FERR_OK || strcmp(again, p) != 0)
		abort();

	const char *rel = path_relative(p);
	if (rel[0] == '/' || (n == 1 && strcmp(rel, ".") != 0))
		abort();
	const char *base = path_basename(p);
	char parent[VPATH_MAX];
	const char *name = NULL;
	int rc = path_split(p, parent, sizeof(parent), &name);
	if (n == 1) {
		if (rc != FERR_INVALID || strcmp(base, "/") != 0)
			abort();
	} else if (rc != FERR_OK || strcmp(name, base) != 0 || strchr(name, '/') ||
		   parent[0] != '/' || strlen(parent) + (strlen(parent) > 1) + strlen(name) != n) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t sizes[] = { 1, 2, 3, 8, 64, VPATH_MAX };
	const char *in = (const char *)data;
	char cwd[VPATH_MAX] = "/";

	if (size > 3 * VPATH_MAX)
		return 0;
	size_t outsz = sizes[size % (sizeof(sizes) / sizeof(sizes[0]))];

	const char *nl = memchr(in, '\n', size);
	const char *arg = in;
	size_t arg_len = size;
	if (nl != NULL) {
		size_t clen = (size_t)(nl - in);
		if (path_resolve("/", in, clen, cwd, sizeof(cwd)) != FERR_OK)
			return 0;
		check_clean(cwd, sizeof(cwd));
		arg = nl + 1;
		arg_len = size - clen - 1;
	}

	char *out = malloc(outsz);
	if (out == NULL)
		abort();
	int rc = path_resolve(cwd, arg, arg_len, out, outsz);
	if (rc == FERR_OK)
		check_clean(out, outsz);
	else if (rc != FERR_INVALID && rc != FERR_TOOBIG)
		abort();
	if (rc == FERR_INVALID && path_name_ok(arg, arg_len))
		abort();

	/* In place, as a CWD handler calls it. */
	char *inplace = malloc(outsz > VPATH_MAX ? outsz : VPATH_MAX);
	if (inplace == NULL)
		abort();
	if (strlen(cwd) < outsz) {
		memcpy(inplace, cwd, strlen(cwd) + 1);
		int rc2 = path_resolve(inplace, arg, arg_len, inplace, outsz);
		if (rc2 != rc || (rc == FERR_OK && strcmp(inplace, out) != 0))
			abort();
	}

	/* The same as resolving "cwd/arg" from the root. */
	size_t clen = strlen(cwd);
	char *joined = malloc(clen + 1 + arg_len);
	if (joined == NULL)
		abort();
	memcpy(joined, cwd, clen);
	joined[clen] = '/';
	if (arg_len > 0)
		memcpy(joined + clen + 1, arg, arg_len);
	bool absolute = arg_len > 0 && arg[0] == '/';
	if (!absolute) {
		int rc3 = path_resolve("/", joined, clen + 1 + arg_len, inplace, outsz);
		if (rc3 != rc || (rc == FERR_OK && strcmp(inplace, out) != 0))
			abort();
	}

	free(joined);
	free(inplace);
	free(out);
	return 0;
}
