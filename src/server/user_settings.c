/*
 * user_settings.c: the per-user settings text (user_settings.h).  Pure: no I/O, so the
 * same parser serves every user source and the fuzzer.
 */
#include "server/user_settings.h"

#include <string.h>

#include "common/err.h"
#include "common/num.h"
#include "common/path.h"
#include "server/config.h"

int user_settings_size(const char *s, size_t len, uint64_t *out)
{
	unsigned shift = 0;
	if (len > 0) {
		switch (s[len - 1]) {
		case 'K': case 'k': shift = 10; break;
		case 'M': case 'm': shift = 20; break;
		case 'G': case 'g': shift = 30; break;
		default: break;
		}
		if (shift != 0)
			len--;
	}
	uint64_t v;
	int rc = num_parse_u64((struct slice){ .ptr = s, .len = len }, UINT64_MAX >> shift, &v);
	if (rc < 0)
		return rc;
	*out = v << shift;
	return 0;
}

static bool key_is(const char *key, size_t klen, const char *name)
{
	return strlen(name) == klen && memcmp(key, name, klen) == 0;
}

static int parse_allow(const char *v, size_t vlen, struct user_settings *out, const char **why)
{
	if (vlen == 0) {
		*why = "allow takes networks such as 198.18.0.0/15,::1";
		return FERR_INVALID;
	}
	while (vlen > 0) {
		const char *comma = memchr(v, ',', vlen);
		size_t n = comma != NULL ? (size_t)(comma - v) : vlen;
		if (out->n_allow == USER_ALLOW_MAX) {
			*why = "more than 16 networks in allow";
			return FERR_TOOBIG;
		}
		if (n == 0 || netaddr_parse_net(v, n, &out->allow[out->n_allow]) < 0) {
			*why = "allow takes networks such as 198.18.0.0/15,::1";
			return FERR_INVALID;
		}
		out->n_allow++;
		if (comma == NULL)
			break;
		v += n + 1;
		vlen -= n + 1;
		if (vlen == 0) {
			*why = "allow ends with a comma";
			return FERR_INVALID;
		}
	}
	return 0;
}

static int parse_dir(const char *key, size_t klen, const char *v, size_t vlen,
		     struct user_settings *out, const char **why)
{
	if (out->n_dirs == USER_DIR_RULES_MAX) {
		*why = "more than 16 directory rules";
		return FERR_TOOBIG;
	}
	struct user_dir_rule *r = &out->dirs[out->n_dirs];
	if (path_resolve("/", key, klen, r->path, sizeof(r->path)) < 0) {
		*why = "a directory rule's path is too long or holds a control character";
		return FERR_INVALID;
	}
	if (strcmp(r->path, "/") == 0) {
		*why = "a rule for / is the base permissions: set those instead";
		return FERR_INVALID;
	}
	char words[64];
	if (vlen >= sizeof(words)) {
		*why = "a directory rule's permissions are too long";
		return FERR_TOOBIG;
	}
	memcpy(words, v, vlen);
	words[vlen] = '\0';
	if (perm_parse(words, &r->perms) < 0) {
		*why = "a directory rule takes read, write, delete, rename, mkdir, all or none";
		return FERR_INVALID;
	}
	for (unsigned i = 0; i < out->n_dirs; i++) {
		if (strcmp(out->dirs[i].path, r->path) == 0) {
			*why = "two rules for the same directory";
			return FERR_INVALID;
		}
	}
	out->n_dirs++;
	return 0;
}

static int parse_item(const char *item, size_t len, struct user_settings *out, const char **why)
{
	const char *eq = memchr(item, '=', len);
	if (eq == NULL || eq == item) {
		*why = "settings are key=value items";
		return FERR_INVALID;
	}
	size_t klen = (size_t)(eq - item);
	const char *v = eq + 1;
	size_t vlen = len - klen - 1;
	if (item[0] == '/')
		return parse_dir(item, klen, v, vlen, out, why);
	if (key_is(item, klen, "allow"))
		return parse_allow(v, vlen, out, why);
	if (key_is(item, klen, "max_sessions")) {
		uint64_t n;
		if (num_parse_u64((struct slice){ .ptr = v, .len = vlen }, 100000, &n) < 0) {
			*why = "max_sessions takes a number up to 100000";
			return FERR_RANGE;
		}
		out->max_sessions = (unsigned)n;
		return 0;
	}
	static const struct {
		const char *name;
		size_t off;
	} sizes[] = {
		{ "quota_bytes", offsetof(struct user_settings, quota_bytes) },
		{ "quota_files", offsetof(struct user_settings, quota_files) },
		{ "rate_down", offsetof(struct user_settings, rate_down) },
		{ "rate_up", offsetof(struct user_settings, rate_up) },
		{ "user_rate_down", offsetof(struct user_settings, user_rate_down) },
		{ "user_rate_up", offsetof(struct user_settings, user_rate_up) },
	};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (!key_is(item, klen, sizes[i].name))
			continue;
		uint64_t n;
		/* Rates above 2^31 bytes/s could not be told to libevent's rate limits. */
		if (user_settings_size(v, vlen, &n) < 0 || (i >= 2 && n > INT32_MAX)) {
			*why = "a quota or rate takes a number with an optional K, M or G "
			       "(rates at most 2047M)";
			return FERR_RANGE;
		}
		memcpy((char *)out + sizes[i].off, &n, sizeof(n));
		return 0;
	}
	*why = "unknown setting (quota_bytes, quota_files, rate_down, rate_up, user_rate_down, "
	       "user_rate_up, max_sessions, allow, or /dir=permissions)";
	return FERR_INVALID;
}

int user_settings_parse(const char *text, size_t len, struct user_settings *out,
			const char **why)
{
	memset(out, 0, sizeof(*out));
	if (len > USER_SETTINGS_TEXT_MAX) {
		*why = "settings longer than 2048 bytes";
		return FERR_TOOBIG;
	}
	size_t i = 0;
	while (i < len) {
		if (text[i] == ' ' || text[i] == '\t') {
			i++;
			continue;
		}
		size_t start = i;
		while (i < len && text[i] != ' ' && text[i] != '\t')
			i++;
		int rc = parse_item(text + start, i - start, out, why);
		if (rc < 0)
			return rc;
	}
	return 0;
}

bool user_settings_any(const struct user_settings *s)
{
	return s->quota_bytes != 0 || s->quota_files != 0 || s->rate_down != 0 ||
	       s->rate_up != 0 || s->user_rate_down != 0 || s->user_rate_up != 0 ||
	       s->max_sessions != 0 || s->n_allow != 0 || s->n_dirs != 0;
}

/* Whether vpath is rule beneath it ("/a" holds "/a/b", not "/ab"), or rule itself if self. */
static size_t holds(const char *rule, const char *vpath, bool self)
{
	size_t n = strlen(rule);
	if (strncmp(rule, vpath, n) != 0)
		return 0;
	if (vpath[n] == '/' || (self && vpath[n] == '\0'))
		return n;
	return 0;
}

unsigned user_settings_perms(const struct user_settings *s, unsigned base, const char *vpath,
			     bool contents)
{
	size_t best = 0;
	unsigned perms = base;
	for (unsigned i = 0; s != NULL && i < s->n_dirs; i++) {
		size_t n = holds(s->dirs[i].path, vpath, contents);
		if (n > best) {
			best = n;
			perms = s->dirs[i].perms;
		}
	}
	return perms;
}

unsigned user_settings_any_perms(const struct user_settings *s, unsigned base)
{
	for (unsigned i = 0; s != NULL && i < s->n_dirs; i++)
		base |= s->dirs[i].perms;
	return base;
}

bool user_settings_allows(const struct user_settings *s, const struct sockaddr_storage *addr)
{
	if (s == NULL || s->n_allow == 0)
		return true;
	for (unsigned i = 0; i < s->n_allow; i++) {
		if (netaddr_in_net(addr, &s->allow[i]))
			return true;
	}
	return false;
}
