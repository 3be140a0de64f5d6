/*
 * passwd.h: "ferryd passwd FILE NAME [--home DIR] [--permissions LIST]": add a virtual
 * user or change one's password, reading the password without echo.
 *
 * It runs as root, in a directory that others may be able to write to: it never opens a
 * name it did not just create itself (see passwd_update_file()).
 */
#ifndef FERRY_SERVER_PASSWD_H
#define FERRY_SERVER_PASSWD_H

#include <stdbool.h>
#include <stdio.h>

int passwd_main(int argc, char **argv);

/* One run's change to the users file. */
struct passwd_change {
	const char *name;
	const char *hash;  /* crypt(3) hash of the new password */
	const char *home;  /* NULL: keep the user's; a new user needs one */
	const char *perms; /* NULL: keep the user's; "read" for a new user */
};

/*
 * Rewrite file with the change: the new content goes to a new file of a random name in
 * the same directory (created exclusively, so no link planted there is followed), takes
 * the old file's owner and mode, is synced and renamed over file.  On failure the new
 * file is removed and file left as it was.  *added tells whether the user is new.
 * Returns 0, or -errno with a message on err (-EINVAL: a new user without a home).
 */
int passwd_update_file(const char *file, const struct passwd_change *c, bool *added,
		       FILE *err);

/*
 * Write the new content of a users file for passwd_replace_file(): from in, the current
 * file (NULL when there is none yet), to out.  Returns 0, or -errno to leave the file as
 * it was (a refusal, of which it has said why).
 */
typedef int passwd_copy_fn(FILE *in, FILE *out, void *arg);
/*
 * Replace file with what copy(in, out, arg) writes, the way passwd_update_file() does
 * (which is this with its own copy).  Returns 0, copy's refusal, or -errno with a
 * message on err.
 */
int passwd_replace_file(const char *file, passwd_copy_fn *copy, void *arg, FILE *err);

/* The longest password read, its newline included. */
#define PASSWD_PASSWORD_MAX 512
/*
 * Read a new password from stdin into pw: twice and without echo on a terminal, else
 * one line.  Returns 0, or 1 after a message on stderr (none read, empty, not the same).
 */
int passwd_read_new(char *pw, size_t pwsz);
/*
 * Hash pw with libxcrypt's preferred method (yescrypt on Debian) into out.  Returns 0,
 * or 1 after a message on stderr.
 */
int passwd_hash(const char *pw, char *out, size_t outsz);

#endif
