/*
 * user_check.h: what a user's fields must be before any store (the users file, PostgreSQL)
 * is given them, pure.  `ferryd user` checks here whatever store it writes to, so that a
 * user one store accepts is a user every store accepts, and the server would load it.
 *
 * The rules are the union of the stores' own: those of a users-file line
 * (users_parse_line(): ':' separates the fields, a line is read into fixed buffers) and
 * those of the table's CHECKs (packaging/ferryd-users.sql: no control characters).
 *
 * Each function returns 0, or -EINVAL with a reason in *why (a static string).
 */
#ifndef FERRY_SERVER_USER_CHECK_H
#define FERRY_SERVER_USER_CHECK_H

#include <stdbool.h>

struct user_entry_text;

/* 1-63 bytes, no space, control character or ':', not starting with '#'. */
int user_check_name(const char *name, const char **why);
/* A crypt(3) hash: 1-255 bytes, no space, control character or ':'. */
int user_check_hash(const char *hash, const char **why);
/*
 * Absolute, under 4096 bytes, no control character or ':'; when home_base is neither
 * NULL nor "", strictly beneath it (user_check_beneath()).
 */
int user_check_home(const char *home, const char *home_base, const char **why);
/* A list perm_parse() accepts, under 256 bytes. */
int user_check_perms(const char *perms, const char **why);
/*
 * A settings text user_settings_parse() accepts, with no control character but tab, and
 * no quota: this version does not enforce quota_bytes or quota_files, and a limit an
 * administrator set must not be silently ignored.
 */
int user_check_settings(const char *settings, const char **why);
/* Every field of u that is set (a NULL field is not checked); the name always. */
int user_check_entry(const struct user_entry_text *u, const char *home_base, const char **why);

/*
 * Whether home, once normalised ("." and ".." resolved, as the server resolves it),
 * lies strictly beneath base: "/srv/ftp" holds "/srv/ftp/a", not "/srv/ftp" itself nor
 * "/srv/ftpx"; "/" holds every absolute path but itself.
 */
bool user_check_beneath(const char *base, const char *home);

#endif
