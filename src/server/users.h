/*
 * users.h: virtual users, read from the users file ("name:hash:home:permissions" a line).
 * Loaded once per configuration and then read-only, so the password-checking thread can
 * read it without locks.
 */
#ifndef FERRY_SERVER_USERS_H
#define FERRY_SERVER_USERS_H

#include <stddef.h>
#include <stdio.h>

struct user_entry {
	char name[64];
	char hash[256];
	char home[4096];
	unsigned perms;
};

struct users {
	struct user_entry *v;
	size_t n;
};

/*
 * Read and validate a users file.  Errors are printed as "FILE:LINE: message" to err.
 * On success *out is a new table the caller frees with users_free().
 */
int users_load(const char *path, struct users **out, FILE *err);
/* The same from an open descriptor (read from its start; not closed); name is for messages. */
int users_load_fd(int fd, const char *name, struct users **out, FILE *err);
/*
 * Copy the users file into a sealed memory file, so that workers, which run unprivileged,
 * read the exact snapshot the master validated.  Returns the descriptor or -errno.
 */
int users_snapshot(const char *path);
void users_free(struct users *u);
const struct user_entry *users_find(const struct users *u, const char *name);

/* Parse one line into e; returns 0 or -1 with a reason in *why. */
int users_parse_line(const char *line, struct user_entry *e, const char **why);

#endif
