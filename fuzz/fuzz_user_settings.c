/*
 * fuzz_user_settings.c: the per-user settings text (src/server/user_settings.c) on
 * arbitrary bytes with an explicit length, and the invariants of what it accepts: within
 * every bound, directory rules normalised and distinct, and a rule's own path decided by
 * the rule only when its contents are meant.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "server/config.h"
#include "server/user_settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct user_settings s;
	const char *why = NULL;
	if (user_settings_parse((const char *)data, size, &s, &why) < 0) {
		if (why == NULL)
			__builtin_trap();
		return 0;
	}
	if (s.n_allow > USER_ALLOW_MAX || s.n_dirs > USER_DIR_RULES_MAX ||
	    s.max_sessions > 100000 || s.rate_down > INT32_MAX || s.rate_up > INT32_MAX ||
	    s.user_rate_down > INT32_MAX || s.user_rate_up > INT32_MAX)
		__builtin_trap();
	for (unsigned i = 0; i < s.n_dirs; i++) {
		const char *p = s.dirs[i].path;
		size_t n = strnlen(p, sizeof(s.dirs[i].path));
		if (n == sizeof(s.dirs[i].path) || p[0] != '/' || n < 2 || p[n - 1] == '/' ||
		    strstr(p, "//") != NULL || strstr(p, "/./") != NULL || strstr(p, "/../") != NULL ||
		    (s.dirs[i].perms & ~(unsigned)PERM_ALL) != 0)
			__builtin_trap();
		for (unsigned j = 0; j < i; j++) {
			if (strcmp(s.dirs[j].path, p) == 0)
				__builtin_trap();
		}
		/* Its contents are its own rule's (no longer rule can hold the path itself). */
		if (user_settings_perms(&s, 1u << 30, p, true) != s.dirs[i].perms)
			__builtin_trap();
		/* The path itself is decided by a shorter rule holding it, else the base. */
		bool held = false;
		for (unsigned j = 0; j < s.n_dirs; j++) {
			size_t m = strlen(s.dirs[j].path);
			if (m < n && strncmp(s.dirs[j].path, p, m) == 0 && p[m] == '/')
				held = true;
		}
		if (!held && user_settings_perms(&s, 1u << 30, p, false) != 1u << 30)
			__builtin_trap();
	}
	return 0;
}
