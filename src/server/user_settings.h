/*
 * user_settings.h: what a user may do beyond the base permissions, whatever the source the
 * user comes from (users file, PAM, LDAP, PostgreSQL): permissions per directory, quota,
 * bandwidth, sessions at once and the client networks a login is allowed from.
 *
 * Every source carries them as one text of space-separated items, parsed here (pure):
 *
 *   quota_bytes=100M quota_files=1000      a tally of the files under the user's root
 *   rate_down=2M rate_up=512K              bytes a second, each session
 *   user_rate_down=4M user_rate_up=1M      bytes a second, all the user's sessions together
 *   max_sessions=2                         sessions logged in at once
 *   allow=198.18.0.0/15,::1                client networks a login may come from
 *   /incoming=read,write                   permissions beneath a directory (its contents;
 *                                          the directory itself is its parent's)
 *
 * Sizes and rates take K, M or G (binary).  An empty text is no settings at all.
 */
#ifndef FERRY_SERVER_USER_SETTINGS_H
#define FERRY_SERVER_USER_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/netaddr.h"

#define USER_DIR_RULES_MAX 16
#define USER_DIR_PATH_MAX 256
#define USER_ALLOW_MAX 16
#define USER_SETTINGS_TEXT_MAX 2048

/* Permissions beneath one directory (a normalised virtual path, "/" excluded). */
struct user_dir_rule {
	char path[USER_DIR_PATH_MAX];
	unsigned perms; /* enum perm: replaces the base permissions beneath path */
};

struct user_settings {
	uint64_t quota_bytes;                 /* 0: no quota on bytes */
	uint64_t quota_files;                 /* 0: no quota on files */
	uint64_t rate_down, rate_up;          /* bytes/s of each session; 0: unlimited */
	uint64_t user_rate_down, user_rate_up; /* bytes/s of all the user's sessions; 0: none */
	unsigned max_sessions;                /* 0: no limit */
	unsigned n_allow;                     /* 0: any client network */
	struct netaddr_net allow[USER_ALLOW_MAX];
	unsigned n_dirs;
	struct user_dir_rule dirs[USER_DIR_RULES_MAX];
};

/*
 * Parse text (len bytes, no NUL needed) into out, which is zeroed first.  On error returns
 * FERR_INVALID or FERR_TOOBIG / FERR_RANGE with a reason (static string) in *why.
 */
int user_settings_parse(const char *text, size_t len, struct user_settings *out,
			const char **why);

/* Whether any setting is set (a session keeps a copy only then). */
bool user_settings_any(const struct user_settings *s);

/* Whether a quota, on bytes or files, applies. */
static inline bool user_settings_quota(const struct user_settings *s)
{
	return s->quota_bytes != 0 || s->quota_files != 0;
}

/*
 * The permissions that apply to vpath (a normalised absolute virtual path) for a user with
 * base permissions base: those of the longest rule whose directory holds vpath beneath
 * it, else base.  contents: the operation reads or changes what lies in vpath (LIST,
 * CWD), so a rule naming vpath itself applies too.
 */
unsigned user_settings_perms(const struct user_settings *s, unsigned base, const char *vpath,
			     bool contents);

/* Every permission the user holds somewhere: base and every rule's (the sandbox's rights). */
unsigned user_settings_any_perms(const struct user_settings *s, unsigned base);

/* Whether a login from addr is allowed (no allow list: any). */
bool user_settings_allows(const struct user_settings *s, const struct sockaddr_storage *addr);

/* "100M"-style sizes: digits with an optional K, M or G (x1024 each).  0 or FERR_*. */
int user_settings_size(const char *s, size_t len, uint64_t *out);

#endif
