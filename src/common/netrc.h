/*
 * netrc.h: credentials from a ~/.netrc text (the format of ftp(1) and curl): tokens
 * "machine NAME", "default", "login NAME", "password SECRET", "account X" and
 * "macdef NAME" (a macro, skipped up to the next empty line), separated by any white
 * space; a token may be written in double quotes with backslash escapes.  Pure: the
 * caller reads the file (and checks its permissions).
 */
#ifndef FERRY_COMMON_NETRC_H
#define FERRY_COMMON_NETRC_H

#include <stdbool.h>
#include <stddef.h>

struct netrc_entry {
	char login[256];
	char password[256];
	bool has_login, has_password;
};

/*
 * The entry for host (compared without case) in text, else the "default" entry.
 * Returns 1 when found, 0 when not, FERR_INVALID for a malformed text (a token too long,
 * an unterminated quote) with the line number in *line.
 */
int netrc_lookup(const char *text, size_t len, const char *host, struct netrc_entry *out,
		 unsigned *line);

#endif
