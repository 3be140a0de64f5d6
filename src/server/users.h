/*
 * users.h: virtual users, read from the users file ("name:hash:home:permissions[:settings]"
 * a line; settings as in user_settings.h).  Loaded once per configuration and then
 * read-only, so the password-checking thread can read it without locks.  struct
 * user_entry is also what every other source of users (PostgreSQL, LDAP, PAM) answers.
 */
#ifndef FERRY_SERVER_USERS_H
#define FERRY_SERVER_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

struct user_settings;

struct user_entry {
	char name[64];
	char hash[256];
	char home[4096];
	unsigned perms;
	struct user_settings *set; /* on the heap, or NULL when the user has none */
	bool disabled;             /* refused like a wrong password */
	bool own_ids;              /* files belong to uid:gid (a system or posixAccount user) */
	uid_t uid;
	gid_t gid;
};

struct users {
	struct user_entry *v;
	size_t n;
};

/*
 * Read and validate a users file.  Errors are printed as "FILE:LINE: message" to err,
 * and so are warnings about weak hashes (users_warn_weak()), which do not fail the load.
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

/*
 * The name of hash's method if it is weak, that is fast enough to crack offline should the
 * file leak (traditional DES, BSDi DES, MD5 "$1$", NT "$3$", SHA-256 "$5$"), else NULL.
 * A static string.
 */
const char *users_weak_method(const char *hash);
/*
 * Print one warning line on err for each weak method in u, naming (some of) its users.
 * users_load() calls it; returns the number of users with weak hashes.
 */
size_t users_warn_weak(const struct users *u, const char *path, FILE *err);
/*
 * A hash of u whose method and cost (such as "$6$rounds=5000$" or "$y$j9T$") most of u's
 * users share, for checking unknown users against so that they cost what a real user
 * costs.  NULL when u holds no crypt(3) hash at all (empty, or only locked entries).
 * Points into u, valid while u is.
 */
const char *users_typical_hash(const struct users *u);

/*
 * Parse one line into e; returns 0 or -1 with a reason in *why.  On success the caller
 * releases e with user_entry_clear().
 */
int users_parse_line(const char *line, struct user_entry *e, const char **why);
/* Free what e holds on the heap (its settings); e stays valid and has none. */
void user_entry_clear(struct user_entry *e);

#endif
