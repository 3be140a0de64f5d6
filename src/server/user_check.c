/*
 * user_check.c: the checks of user_check.h.  Pure: no I/O, no allocation, so that the
 * same function can guard every store and be tested on its own.
 */
#include "server/user_check.h"

#include <errno.h>
#include <string.h>

#include "common/path.h"
#include "server/config.h"
#include "server/user_settings.h"
#include "server/userdb_pg.h"
#include "server/users.h"

/* users.c reads a line's permissions into a buffer of this size. */
#define PERMS_TEXT_MAX 256

static int refuse(const char **why, const char *reason)
{
	*why = reason;
	return -EINVAL;
}

/* A byte no field may hold: it would start a new line or act on a terminal. */
static bool is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* 1 to max bytes, none a space, a control character or ':'. */
static bool token_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
		if (*c == ' ' || *c == ':' || is_control(*c))
			return false;
	}
	return true;
}

int user_check_name(const char *name, const char **why)
{
	/* A users-file line that starts with '#' is a comment: its user would not exist. */
	if (!token_ok(name, sizeof(((struct user_entry *)0)->name) - 1) || name[0] == '#')
		return refuse(why, "user names are 1-63 bytes without spaces, control characters "
				   "or ':', and do not start with '#'");
	return 0;
}

int user_check_hash(const char *hash, const char **why)
{
	if (!token_ok(hash, sizeof(((struct user_entry *)0)->hash) - 1))
		return refuse(why, "the password hash is empty, too long or holds a space, "
				   "control character or ':'");
	return 0;
}

bool user_check_beneath(const char *base, const char *home)
{
	char norm[VPATH_MAX];
	size_t n = strlen(base);
	/* "/srv/ftp/" is "/srv/ftp"; "/" becomes "", so that every "/x" is beneath it. */
	while (n > 0 && base[n - 1] == '/')
		n--;
	if (base[0] != '/' || path_resolve("/", home, strlen(home), norm, sizeof(norm)) < 0)
		return false;
	/* A normalised path ends in '/' only when it is "/" itself. */
	return strncmp(base, norm, n) == 0 && norm[n] == '/' && norm[n + 1] != '\0';
}

int user_check_home(const char *home, const char *home_base, const char **why)
{
	if (home[0] != '/')
		return refuse(why, "home must be an absolute path");
	if (strlen(home) >= sizeof(((struct user_entry *)0)->home))
		return refuse(why, "home must be under 4096 bytes");
	for (const unsigned char *c = (const unsigned char *)home; *c != '\0'; c++) {
		if (*c == ':' || is_control(*c))
			return refuse(why, "home must not hold control characters or ':'");
	}
	if (home_base != NULL && home_base[0] != '\0' && !user_check_beneath(home_base, home))
		return refuse(why, "home must lie beneath home_base");
	return 0;
}

int user_check_perms(const char *perms, const char **why)
{
	unsigned bits;
	if (strlen(perms) >= PERMS_TEXT_MAX || perm_parse(perms, &bits) < 0)
		return refuse(why, "permissions must be a list of read, write, delete, rename, "
				   "mkdir, all, none");
	return 0;
}

int user_check_settings(const char *settings, const char **why)
{
	for (const unsigned char *c = (const unsigned char *)settings; *c != '\0'; c++) {
		if (*c != '\t' && is_control(*c))
			return refuse(why, "settings must not hold control characters but tab");
	}
	struct user_settings set;
	if (user_settings_parse(settings, strlen(settings), &set, why) < 0)
		return -EINVAL;
	if (user_settings_quota(&set))
		return refuse(why, "quota_bytes and quota_files are not enforced by this version");
	return 0;
}

int user_check_entry(const struct user_entry_text *u, const char *home_base, const char **why)
{
	int rc = user_check_name(u->name, why);
	if (rc == 0 && u->hash != NULL)
		rc = user_check_hash(u->hash, why);
	if (rc == 0 && u->home != NULL)
		rc = user_check_home(u->home, home_base, why);
	if (rc == 0 && u->perms != NULL)
		rc = user_check_perms(u->perms, why);
	if (rc == 0 && u->settings != NULL)
		rc = user_check_settings(u->settings, why);
	return rc;
}
