/*
 * config.c: the configuration table and its parsers.
 *
 * Every key is defined once in config_table[]; the file parser ("key = value", '#'
 * comments), the command-line parser ("--key value", underscores becoming dashes) and
 * --help all read that table.  Values are validated here, with the file name and line
 * number of any error, so that nothing later has to second-guess them.
 */
#include "server/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <strings.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/hostport.h"
#include "common/num.h"

enum config_type {
	CT_STRING,  /* bounded string */
	CT_BOOL,    /* yes/no, true/false, on/off, 1/0 */
	CT_UINT,    /* decimal, within [min, max] */
	CT_OCTAL,   /* octal (umask) */
	CT_LISTEN,  /* ADDRESS:PORT, repeatable */
	CT_LISTEN_TLS, /* the same, for implicit TLS listeners */
	CT_CHOICE,  /* one of the words of arg ("off|optional|required"), stored as its index */
	CT_RANGE,   /* MIN-MAX port range (struct port_range) */
	CT_PERMS,   /* comma list of permissions */
	CT_HOST,    /* numeric IPv4 address or a host name */
	CT_PASV_MAP, /* NETWORK/LEN = ADDRESS, repeatable */
	CT_REUSE,   /* yes, no, or NETWORK/LEN,... exempted from yes */
};

struct config_key {
	const char *name;
	enum config_type type;
	size_t offset;
	size_t size;       /* for strings: the field's size */
	uint64_t min, max; /* for numbers */
	const char *defval;
	const char *arg;   /* placeholder shown in --help */
	const char *doc;
};

#define STR(field) offsetof(struct config, field), sizeof(((struct config *)0)->field)
#define NUM(field) offsetof(struct config, field), 0

static const struct config_key config_table[] = {
	{ "listen", CT_LISTEN, NUM(listen), 0, 0, NULL, "ADDRESS:PORT",
	  "control connection listener, repeatable (default: port 21 on all addresses as root, "
	  "2121 otherwise)" },
	{ "root", CT_STRING, STR(root), 0, 0, "", "DIR",
	  "directory served to anonymous users; setting it enables anonymous login" },
	{ "anonymous", CT_BOOL, NUM(anonymous), 0, 0, "yes", "yes|no",
	  "allow anonymous login (users 'anonymous' and 'ftp', any password) when root is set" },
	{ "anon_permissions", CT_PERMS, NUM(anon_permissions), 0, 0, "read", "LIST",
	  "what anonymous users may do: read, write, delete, rename, mkdir or all" },
	{ "users_file", CT_STRING, STR(users_file), 0, 0, "", "FILE",
	  "virtual users, one 'name:hash:home:permissions' a line (see 'ferryd passwd')" },
	{ "users_pg", CT_STRING, STR(users_pg), 0, 0, "", "CONNINFO",
	  "PostgreSQL users (table ferry_users, packaging/ferryd-users.sql), looked up after "
	  "the users file: a libpq connection string naming the server by address (hostaddr=)" },
	{ "users_pg_timeout", CT_UINT, NUM(users_pg_timeout), 100, 60000, "3000", "MS",
	  "the longest a PostgreSQL lookup may take, connecting included; then 421" },
	{ "ldap_uri", CT_STRING, STR(ldap_uri), 0, 0, "", "URI",
	  "directory users: ldap://ADDRESS:PORT or ldaps://ADDRESS:PORT (numeric), looked up "
	  "after the users file and users_pg with a search, then a bind as the user" },
	{ "ldap_starttls", CT_BOOL, NUM(ldap_starttls), 0, 0, "no", "yes|no",
	  "StartTLS on an ldap:// URI, required once set" },
	{ "ldap_ca_file", CT_STRING, STR(ldap_ca_file), 0, 0, "", "FILE",
	  "CA certificates (PEM) the directory's certificate must chain to" },
	{ "ldap_bind_dn", CT_STRING, STR(ldap_bind_dn), 0, 0, "", "DN",
	  "service account the search binds as (empty: an anonymous search)" },
	{ "ldap_bind_password", CT_STRING, STR(ldap_bind_password), 0, 0, "", "PASSWORD",
	  "its password (keep the configuration file unreadable to others)" },
	{ "ldap_base", CT_STRING, STR(ldap_base), 0, 0, "", "DN",
	  "where the search for a user starts (subtree)" },
	{ "ldap_filter", CT_STRING, STR(ldap_filter), 0, 0,
	  "(&(objectClass=posixAccount)(uid=%u))", "FILTER",
	  "the search for a user: %u is the login name, escaped (RFC 4515); leave out disabled "
	  "users here, e.g. (!(ferryDisabled=TRUE))" },
	{ "ldap_attr_name", CT_STRING, STR(ldap_attr_name), 0, 0, "uid", "ATTRIBUTE",
	  "the attribute whose value is the user's name in ferryd (its limits and logs)" },
	{ "ldap_attr_home", CT_STRING, STR(ldap_attr_home), 0, 0, "homeDirectory", "ATTRIBUTE",
	  "the attribute holding the user's home, beneath home_base" },
	{ "ldap_attr_permissions", CT_STRING, STR(ldap_attr_permissions), 0, 0,
	  "ferryPermissions", "ATTRIBUTE",
	  "the attribute holding the user's permissions (absent: ldap_permissions)" },
	{ "ldap_attr_settings", CT_STRING, STR(ldap_attr_settings), 0, 0, "ferrySettings",
	  "ATTRIBUTE", "the attribute holding the user's settings (user_settings text)" },
	{ "ldap_permissions", CT_PERMS, NUM(ldap_permissions), 0, 0, "read", "LIST",
	  "permissions of directory users whose entry has none" },
	{ "ldap_own_ids", CT_BOOL, NUM(ldap_own_ids), 0, 0, "no", "yes|no",
	  "directory users work as their uidNumber/gidNumber (posixAccount), through a file "
	  "helper of that uid, as local users do (needs root at start-up)" },
	{ "ldap_timeout", CT_UINT, NUM(ldap_timeout), 100, 60000, "5000", "MS",
	  "the longest a directory login may take, connecting included; then 421" },
	{ "home_base", CT_STRING, STR(home_base), 0, 0, "", "DIR",
	  "directory beneath which the homes of users_pg users lie (needed with users_pg): the "
	  "workers' sandbox opens it, a home outside it is refused" },
	{ "local_users", CT_BOOL, NUM(local_users), 0, 0, "no", "yes|no",
	  "local system users log in through PAM (service pam_service), each with the "
	  "system's own permissions on its files (needs root at start-up)" },
	{ "local_root", CT_STRING, STR(local_root), 0, 0, "%h", "PATTERN",
	  "a local user's root: %h is the home directory, %u the name" },
	{ "local_permissions", CT_PERMS, NUM(local_permissions), 0, 0, "all", "LIST",
	  "what local users may do on top of what the system lets them" },
	{ "local_check_shell", CT_BOOL, NUM(local_check_shell), 0, 0, "no", "yes|no",
	  "refuse local users whose shell is not listed in /etc/shells" },
	{ "ftpusers", CT_STRING, STR(ftpusers), 0, 0, "/etc/ftpusers", "FILE",
	  "local users listed here (one name a line) may not log in" },
	{ "pam_service", CT_STRING, STR(pam_service), 0, 0, "ferryd", "NAME",
	  "the PAM service that checks local users (/etc/pam.d/NAME)" },
	{ "user", CT_STRING, STR(user), 0, 0, "nobody", "NAME",
	  "unprivileged account the server runs as when started as root; owns all files" },
	{ "workers", CT_UINT, NUM(workers), 0, 256, "0", "N",
	  "worker processes, each serving many sessions (0: one per CPU)" },
	{ "pasv_ports", CT_RANGE, NUM(pasv_ports), 0, 0, "", "MIN-MAX",
	  "port range for passive data connections, shared by clients of different addresses "
	  "(default: any unprivileged port)" },
	{ "pasv_address", CT_HOST, STR(pasv_address), 0, 0, "", "ADDRESS|HOSTNAME",
	  "IPv4 address announced in PASV replies, for servers behind NAT; a host name is "
	  "resolved again every pasv_address_refresh seconds" },
	{ "pasv_address_refresh", CT_UINT, NUM(pasv_address_refresh), 0, 86400, "300", "SECONDS",
	  "how often a pasv_address host name is resolved again (0: at start-up only)" },
	{ "pasv_address_map", CT_PASV_MAP, NUM(pasv_map), 0, 0, NULL, "NETWORK/LEN=ADDRESS",
	  "clients in NETWORK are told ADDRESS in PASV replies instead, repeatable (the "
	  "longest matching prefix wins)" },
	{ "active_from_port_20", CT_BOOL, NUM(active_from_port_20), 0, 0, "no", "yes|no",
	  "open active data connections from port 20 (needs root at start-up)" },
	{ "active_ports", CT_RANGE, NUM(active_ports), 0, 0, "", "MIN-MAX",
	  "source ports of active data connections when not from port 20 (default: any "
	  "unprivileged port)" },
	{ "max_sessions", CT_UINT, NUM(max_sessions), 1, 1000000, "2000", "N",
	  "sessions in all; more connections get 421" },
	{ "max_sessions_per_ip", CT_UINT, NUM(max_sessions_per_ip), 1, 1000000, "50", "N",
	  "sessions from one client address; more get 421" },
	{ "login_timeout", CT_UINT, NUM(login_timeout), 1, 86400, "60", "SECONDS",
	  "time allowed to log in after connecting" },
	{ "idle_timeout", CT_UINT, NUM(idle_timeout), 1, 86400, "300", "SECONDS",
	  "an idle session is closed with 421 after this long" },
	{ "data_timeout", CT_UINT, NUM(data_timeout), 1, 86400, "60", "SECONDS",
	  "time allowed to open a data connection, and for a stalled transfer to move" },
	{ "max_login_failures", CT_UINT, NUM(max_login_failures), 1, 1000, "3", "N",
	  "failed logins before the session is closed" },
	{ "login_failure_delay", CT_UINT, NUM(login_failure_delay), 0, 60000, "1000", "MS",
	  "delay before answering a failed login, in milliseconds" },
	{ "max_bad_commands", CT_UINT, NUM(max_bad_commands), 1, 100000, "50", "N",
	  "malformed lines (too long, NUL) before the session is closed" },
	{ "shutdown_timeout", CT_UINT, NUM(shutdown_timeout), 0, 86400, "30", "SECONDS",
	  "on SIGTERM, how long running transfers may go on" },
	{ "umask", CT_OCTAL, NUM(umask), 0, 0777, "022", "OCTAL",
	  "umask for uploaded files and created directories" },
	{ "quota_partial", CT_CHOICE, NUM(quota_partial), 0, 0, "keep", "keep|remove",
	  "an upload stopped at the user's quota keeps the bytes that fit, or is removed" },
	{ "listen_implicit_tls", CT_LISTEN_TLS, NUM(listen_tls), 0, 0, NULL, "ADDRESS:PORT",
	  "listener for implicit FTPS (TLS from the first byte, port 990 by convention), "
	  "repeatable" },
	{ "tls_cert", CT_STRING, STR(tls_cert), 0, 0, "", "FILE",
	  "TLS certificate (PEM, may hold the intermediate chain after it); enables FTPS" },
	{ "tls_key", CT_STRING, STR(tls_key), 0, 0, "", "FILE",
	  "private key of tls_cert (PEM; default: in the tls_cert file)" },
	{ "tls_chain", CT_STRING, STR(tls_chain), 0, 0, "", "FILE",
	  "intermediate certificates (PEM), if not in the tls_cert file" },
	{ "tls", CT_CHOICE, NUM(tls), 0, 0, "optional", "off|optional|required",
	  "TLS on the control connection for users of the users file (AUTH TLS or implicit)" },
	{ "anon_tls", CT_CHOICE, NUM(anon_tls), 0, 0, "optional", "off|optional|required",
	  "TLS on the control connection for anonymous users" },
	{ "tls_data", CT_CHOICE, NUM(tls_data), 0, 0, "optional", "optional|required",
	  "whether a session with TLS must protect its data connections too (PROT P)" },
	{ "tls_require_reuse", CT_REUSE, NUM(tls_require_reuse), 0, 0, "yes",
	  "yes|no|NETWORK/LEN,...",
	  "a protected data connection must resume the control connection's TLS session; "
	  "a list of networks: required except for clients in them" },
	{ "tls_ccc", CT_BOOL, NUM(tls_ccc), 0, 0, "no", "yes|no",
	  "allow CCC, which returns the control connection to the clear after login" },
	{ "tls_client_ca", CT_STRING, STR(tls_client_ca), 0, 0, "", "FILE",
	  "ask clients for a certificate and verify it with these CA certificates (PEM)" },
	{ "tls_cert_login", CT_BOOL, NUM(tls_cert_login), 0, 0, "no", "yes|no",
	  "a verified client certificate whose CN names a user logs that user in without a "
	  "password" },
	{ "ban_after", CT_UINT, NUM(ban_after), 0, 1000000, "10", "N",
	  "failed logins from one client address, over all its sessions, before it is banned "
	  "(0: never)" },
	{ "ban_time", CT_UINT, NUM(ban_time), 1, 604800, "900", "SECONDS",
	  "how long a banned address is refused" },
	{ "max_unauthenticated", CT_UINT, NUM(max_unauthenticated), 1, 1000000, "256", "N",
	  "sessions not yet logged in, in all; beyond it the one that has waited longest is "
	  "closed" },
	{ "banner", CT_STRING, STR(banner), 0, 0, "ferry FTP server ready.", "TEXT",
	  "text of the 220 greeting" },
	{ "xferlog", CT_STRING, STR(xferlog), 0, 0, "", "FILE",
	  "also log transfers to FILE in the xferlog format" },
};

#define N_KEYS (sizeof(config_table) / sizeof(config_table[0]))

int perm_parse(const char *s, unsigned *out)
{
	static const struct {
		const char *word;
		unsigned bits;
	} words[] = {
		{ "read", PERM_READ },     { "write", PERM_WRITE },   { "delete", PERM_DELETE },
		{ "rename", PERM_RENAME }, { "mkdir", PERM_MKDIR },   { "all", PERM_ALL },
		{ "none", 0 },
	};
	unsigned bits = 0;
	const char *p = s;
	for (;;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, ", ");
		if (n == 0)
			return -1;
		size_t i;
		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
			if (strlen(words[i].word) == n && strncmp(words[i].word, p, n) == 0)
				break;
		}
		if (i == sizeof(words) / sizeof(words[0]))
			return -1;
		bits |= words[i].bits;
		p += n;
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (*p != ',')
			return -1;
		p++;
	}
	*out = bits;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* A host name as DNS allows it (RFC 1123 labels), or a numeric IPv4 address. */
static bool host_ok(const char *v)
{
	struct in_addr a;
	if (inet_pton(AF_INET, v, &a) == 1)
		return true;
	size_t n = strlen(v), label = 0;
	if (n == 0 || n > 253)
		return false;
	bool all_digits = true;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (c == '.') {
			if (label == 0 || v[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (!isdigit((unsigned char)c))
			all_digits = false;
		if (++label > 63)
			return false;
	}
	/* "1.2.3" or "300.1.1.1" is a mistyped address, not a name. */
	return label > 0 && v[n - 1] != '-' && !all_digits;
}

/* "NETWORK/LEN = ADDRESS": the spaces around '=' are optional. */
static int set_pasv_map(struct config *cfg, const char *v, char *why, size_t whysz)
{
	if (cfg->n_pasv_map >= CONFIG_MAX_PASV_MAP) {
		snprintf(why, whysz, "at most %d entries", CONFIG_MAX_PASV_MAP);
		return -1;
	}
	struct pasv_map *m = &cfg->pasv_map[cfg->n_pasv_map];
	const char *eq = strchr(v, '=');
	if (eq == NULL) {
		snprintf(why, whysz, "'%s' is not NETWORK/LEN = ADDRESS", v);
		return -1;
	}
	size_t nlen = (size_t)(eq - v);
	while (nlen > 0 && v[nlen - 1] == ' ')
		nlen--;
	const char *addr = eq + 1;
	while (*addr == ' ')
		addr++;
	int rc = netaddr_parse_net(v, nlen, &m->net);
	if (rc < 0) {
		snprintf(why, whysz, "'%.*s' is not a network such as 192.168.0.0/16%s", (int)nlen,
			 v, rc == FERR_RANGE ? " (prefix too long, or host bits set)" : "");
		return -1;
	}
	if (inet_pton(AF_INET, addr, &m->announce) != 1) {
		snprintf(why, whysz, "'%s' is not a numeric IPv4 address to announce", addr);
		return -1;
	}
	cfg->n_pasv_map++;
	return 0;
}

/* "yes", "no", or networks whose clients are exempted from a "yes". */
static int set_reuse(struct config *cfg, const char *v, char *why, size_t whysz)
{
	bool b;
	cfg->n_tls_reuse_exempt = 0;
	if (parse_bool(v, &b) == 0) {
		cfg->tls_require_reuse = b;
		return 0;
	}
	cfg->tls_require_reuse = true;
	for (;;) {
		size_t n = strcspn(v, ",");
		bool more = v[n] == ',';
		size_t len = n;
		while (len > 0 && v[len - 1] == ' ')
			len--;
		if (cfg->n_tls_reuse_exempt >= CONFIG_MAX_REUSE_EXEMPT) {
			snprintf(why, whysz, "at most %d networks", CONFIG_MAX_REUSE_EXEMPT);
			return -1;
		}
		int rc = netaddr_parse_net(v, len, &cfg->tls_reuse_exempt[cfg->n_tls_reuse_exempt]);
		if (rc < 0) {
			snprintf(why, whysz,
				 "'%.*s' is neither yes, no, nor a network such as 10.0.0.0/8%s",
				 (int)len, v,
				 rc == FERR_RANGE ? " (prefix too long, or host bits set)" : "");
			return -1;
		}
		cfg->n_tls_reuse_exempt++;
		if (!more)
			return 0;
		v += n + 1;
		while (*v == ' ')
			v++;
	}
}

bool config_reuse_required(const struct config *cfg, const struct sockaddr_storage *addr)
{
	if (!cfg->tls_require_reuse)
		return false;
	for (unsigned i = 0; i < cfg->n_tls_reuse_exempt; i++) {
		if (netaddr_in_net(addr, &cfg->tls_reuse_exempt[i]))
			return false;
	}
	return true;
}

/* One of the '|'-separated words of k->arg; stored as its position. */
static int set_choice(const struct config_key *k, const char *v, unsigned *out, char *why,
		      size_t whysz)
{
	const char *w = k->arg;
	for (unsigned i = 0;; i++) {
		size_t n = strcspn(w, "|");
		if (strlen(v) == n && strncmp(v, w, n) == 0) {
			*out = i;
			return 0;
		}
		if (w[n] == '\0')
			break;
		w += n + 1;
	}
	snprintf(why, whysz, "'%s' is not one of %s", v, k->arg);
	return -1;
}

/* Set one key from its textual value.  On error, writes a message into why. */
static int set_key(struct config *cfg, const struct config_key *k, const char *v, char *why,
		   size_t whysz)
{
	char *field = (char *)cfg + k->offset;
	switch (k->type) {
	case CT_STRING:
		if (str_copy(field, k->size, v) < 0) {
			snprintf(why, whysz, "value too long (at most %zu bytes)", k->size - 1);
			return -1;
		}
		return 0;
	case CT_HOST:
		if (*v != '\0' && !host_ok(v)) {
			snprintf(why, whysz, "'%s' is neither a numeric IPv4 address nor a host name",
				 v);
			return -1;
		}
		return str_copy(field, k->size, v) < 0 ? -1 : 0;
	case CT_PASV_MAP:
		return set_pasv_map(cfg, v, why, whysz);
	case CT_REUSE:
		return set_reuse(cfg, v, why, whysz);
	case CT_BOOL:
		if (parse_bool(v, (bool *)field) < 0) {
			snprintf(why, whysz, "'%s' is not yes or no", v);
			return -1;
		}
		return 0;
	case CT_UINT: {
		uint64_t n;
		if (num_parse_u64_cstr(v, k->max, &n) < 0 || n < k->min) {
			snprintf(why, whysz, "'%s' is not a number from %llu to %llu", v,
				 (unsigned long long)k->min, (unsigned long long)k->max);
			return -1;
		}
		*(unsigned *)field = (unsigned)n;
		return 0;
	}
	case CT_OCTAL: {
		char *end;
		errno = 0;
		unsigned long n = strtoul(v, &end, 8);
		if (*v == '\0' || *end != '\0' || errno != 0 || n > k->max) {
			snprintf(why, whysz, "'%s' is not an octal mode up to %llo", v,
				 (unsigned long long)k->max);
			return -1;
		}
		*(unsigned *)field = (unsigned)n;
		return 0;
	}
	case CT_LISTEN:
		if (cfg->n_listen >= CONFIG_MAX_LISTEN) {
			snprintf(why, whysz, "at most %d listeners", CONFIG_MAX_LISTEN);
			return -1;
		}
		if (hostport_parse_listen(v, &cfg->listen[cfg->n_listen]) < 0) {
			snprintf(why, whysz,
				 "'%s' is not ADDRESS:PORT ([IPV6]:PORT for IPv6, numeric)", v);
			return -1;
		}
		cfg->n_listen++;
		return 0;
	case CT_LISTEN_TLS:
		if (*v == '\0') {
			cfg->n_listen_tls = 0; /* "listen_implicit_tls =": none */
			return 0;
		}
		if (cfg->n_listen_tls >= CONFIG_MAX_LISTEN) {
			snprintf(why, whysz, "at most %d listeners", CONFIG_MAX_LISTEN);
			return -1;
		}
		if (hostport_parse_listen(v, &cfg->listen_tls[cfg->n_listen_tls]) < 0) {
			snprintf(why, whysz,
				 "'%s' is not ADDRESS:PORT ([IPV6]:PORT for IPv6, numeric)", v);
			return -1;
		}
		cfg->n_listen_tls++;
		return 0;
	case CT_CHOICE:
		return set_choice(k, v, (unsigned *)field, why, whysz);
	case CT_RANGE: {
		struct port_range *r = (struct port_range *)field;
		if (*v == '\0') {
			r->min = r->max = 0;
			return 0;
		}
		if (hostport_parse_range(v, &r->min, &r->max) < 0) {
			snprintf(why, whysz, "'%s' is not MIN-MAX with 1024 <= MIN <= MAX <= 65535",
				 v);
			return -1;
		}
		return 0;
	}
	case CT_PERMS:
		if (perm_parse(v, (unsigned *)field) < 0) {
			snprintf(why, whysz,
				 "'%s' is not a list of read, write, delete, rename, mkdir, all",
				 v);
			return -1;
		}
		return 0;
	}
	FERR_BUG("unknown config type");
}

static const struct config_key *find_key(const char *name, size_t len)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		if (strlen(config_table[i].name) == len && strncmp(config_table[i].name, name, len) == 0)
			return &config_table[i];
	}
	return NULL;
}

static void set_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	char why[256];
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct config_key *k = &config_table[i];
		if (k->defval != NULL && set_key(cfg, k, k->defval, why, sizeof(why)) < 0)
			FERR_BUG("bad default in config table");
	}
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/*
 * Repeatable keys add to a list, but their first occurrence in a source (the file, then
 * the command line) starts the list afresh; seen records which lists were started.
 */
static void reset_repeatable(struct config *cfg, const struct config_key *k, unsigned *seen)
{
	unsigned bit = k->type == CT_LISTEN ? 1u : k->type == CT_PASV_MAP ? 2u :
		       k->type == CT_LISTEN_TLS ? 4u : 0u;
	if (bit == 0 || (*seen & bit))
		return;
	*seen |= bit;
	if (bit == 1)
		cfg->n_listen = 0;
	else if (bit == 2)
		cfg->n_pasv_map = 0;
	else
		cfg->n_listen_tls = 0;
}

/* ---- [host NAME] sections: virtual hosts (RFC 7151) ---- */

#define VSTR(field) offsetof(struct vhost, field), sizeof(((struct vhost *)0)->field)

/* What a [host] section may set; every other key is the whole server's. */
static const struct {
	const char *name;
	enum config_type type; /* CT_STRING or CT_BOOL */
	size_t offset, size;
} vhost_keys[] = {
	{ "root", CT_STRING, VSTR(root) },
	{ "anonymous", CT_BOOL, offsetof(struct vhost, anonymous), 0 },
	{ "users_file", CT_STRING, VSTR(users_file) },
	{ "banner", CT_STRING, VSTR(banner) },
	{ "tls_cert", CT_STRING, VSTR(tls_cert) },
	{ "tls_key", CT_STRING, VSTR(tls_key) },
	{ "tls_chain", CT_STRING, VSTR(tls_chain) },
};
#define N_VHOST_KEYS (sizeof(vhost_keys) / sizeof(vhost_keys[0]))

/* RFC 1123 s.2.1 host names: letters, digits and hyphens, labels of 1 to 63. */
bool config_vhost_name_ok(const char *name, size_t len)
{
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > VHOST_NAME_MAX - 1)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0 || name[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(c) && !(c == '-' && label > 0))
			return false;
		if (++label > 63)
			return false;
	}
	return name[len - 1] != '-';
}

int config_vhost_find(const struct config *cfg, const char *name)
{
	size_t len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	for (unsigned i = 0; i < cfg->n_vhosts; i++) {
		const char *v = cfg->vhosts[i].name;
		if (strlen(v) == len && strncasecmp(v, name, len) == 0)
			return (int)i;
	}
	return -1;
}

/* "[host NAME]": a new section, its keys at their defaults. */
static struct vhost *begin_vhost(struct config *cfg, char *line, char *why, size_t whysz)
{
	size_t n = strlen(line);
	if (n < 2 || line[n - 1] != ']') {
		snprintf(why, whysz, "expected '[host NAME]'");
		return NULL;
	}
	line[n - 1] = '\0';
	char *s = trim(line + 1);
	if (strcmp(s, "host") == 0) {
		snprintf(why, whysz, "[host] needs a NAME: '[host ftp.example.org]'");
		return NULL;
	}
	if (strncmp(s, "host", 4) != 0 || !isspace((unsigned char)s[4])) {
		snprintf(why, whysz, "unknown section '[%s]' (only [host NAME])", s);
		return NULL;
	}
	char *name = trim(s + 4);
	size_t len = strlen(name);
	if (!config_vhost_name_ok(name, len)) {
		snprintf(why, whysz, "'%s' is not a host name (letters, digits, '-' and '.')", name);
		return NULL;
	}
	if (config_vhost_find(cfg, name) >= 0) {
		snprintf(why, whysz, "host %s: a second section of the same name", name);
		return NULL;
	}
	if (cfg->n_vhosts >= CONFIG_MAX_VHOSTS) {
		snprintf(why, whysz, "at most %d [host] sections", CONFIG_MAX_VHOSTS);
		return NULL;
	}
	struct vhost *v = &cfg->vhosts[cfg->n_vhosts++];
	memset(v, 0, sizeof(*v));
	if (name[len - 1] == '.')
		name[--len] = '\0';
	for (size_t i = 0; i <= len; i++)
		v->name[i] = (char)tolower((unsigned char)name[i]);
	v->anonymous = true;
	return v;
}

static int set_vhost_key(struct vhost *v, const char *key, const char *val, char *why,
			 size_t whysz)
{
	for (size_t i = 0; i < N_VHOST_KEYS; i++) {
		if (strcmp(vhost_keys[i].name, key) != 0)
			continue;
		char *field = (char *)v + vhost_keys[i].offset;
		if (vhost_keys[i].type == CT_BOOL && parse_bool(val, (bool *)field) < 0) {
			snprintf(why, whysz, "%s: '%s' is not yes or no", key, val);
			return -1;
		}
		if (vhost_keys[i].type == CT_STRING && str_copy(field, vhost_keys[i].size, val) < 0) {
			snprintf(why, whysz, "%s: value too long (at most %zu bytes)", key,
				 vhost_keys[i].size - 1);
			return -1;
		}
		return 0;
	}
	snprintf(why, whysz, "%s: not allowed in a [host] section (only root, anonymous, "
			     "users_file, banner, tls_cert, tls_key, tls_chain; the others go "
			     "before the first section)", key);
	return -1;
}

/* A relative root is made absolute by name, as the default host's is (finish()). */
static int absolute_root(char *root, size_t size)
{
	if (root[0] == '\0' || root[0] == '/')
		return 0;
	char cwd[CONFIG_STR_MAX], abs[CONFIG_STR_MAX];
	if (getcwd(cwd, sizeof(cwd)) == NULL ||
	    (size_t)snprintf(abs, sizeof(abs), "%s/%s", cwd, root) >= sizeof(abs))
		return -1;
	return str_copy(root, size, abs) < 0 ? -1 : 0;
}

static int finish_vhosts(struct config *cfg, FILE *err)
{
	for (unsigned i = 0; i < cfg->n_vhosts; i++) {
		struct vhost *v = &cfg->vhosts[i];
		if (v->root[0] == '\0' && v->users_file[0] == '\0' && !config_has_user_db(cfg)) {
			fprintf(err, "host %s: nothing to serve: set root (anonymous) or users_file "
				     "(users_pg and LDAP serve every host)\n", v->name);
			return -1;
		}
		if (v->tls_cert[0] == '\0' && (v->tls_key[0] != '\0' || v->tls_chain[0] != '\0')) {
			fprintf(err, "host %s: tls_key and tls_chain need tls_cert\n", v->name);
			return -1;
		}
		if (v->tls_cert[0] != '\0' && cfg->tls_cert[0] == '\0') {
			fprintf(err, "host %s: tls_cert needs a tls_cert outside the sections too: the "
				     "certificate of clients that name no host\n", v->name);
			return -1;
		}
		if (absolute_root(v->root, sizeof(v->root)) < 0) {
			fprintf(err, "host %s: root: path too long\n", v->name);
			return -1;
		}
	}
	return 0;
}

static int check_vhost_access(const struct config *cfg, FILE *err)
{
	for (unsigned i = 0; i < cfg->n_vhosts; i++) {
		const struct vhost *v = &cfg->vhosts[i];
		struct stat st;
		if (v->root[0] != '\0' && stat(v->root, &st) < 0) {
			fprintf(err, "host %s: root: %s: %s\n", v->name, v->root, strerror(errno));
			return -1;
		}
		if (v->root[0] != '\0' && !S_ISDIR(st.st_mode)) {
			fprintf(err, "host %s: root: %s: not a directory\n", v->name, v->root);
			return -1;
		}
		const char *files[][2] = { { "users_file", v->users_file }, { "tls_cert", v->tls_cert },
					   { "tls_key", v->tls_key }, { "tls_chain", v->tls_chain } };
		for (size_t j = 0; j < sizeof(files) / sizeof(files[0]); j++) {
			if (files[j][1][0] != '\0' && access(files[j][1], R_OK) != 0) {
				fprintf(err, "host %s: %s: %s: %s\n", v->name, files[j][0], files[j][1],
					strerror(errno));
				return -1;
			}
		}
	}
	return 0;
}

static int load_file(struct config *cfg, const char *path, FILE *err)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(err, "%s: cannot open: %s\n", path, strerror(errno));
		return -1;
	}
	char line[CONFIG_STR_MAX + 128];
	unsigned lineno = 0;
	int rc = 0;
	unsigned seen = 0;
	struct vhost *section = NULL; /* the [host] section being read, if any */
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			fprintf(err, "%s:%u: line too long\n", path, lineno);
			rc = -1;
			break;
		}
		char *hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		char *s = trim(line);
		if (*s == '\0')
			continue;
		char why[512];
		if (*s == '[') {
			if ((section = begin_vhost(cfg, s, why, sizeof(why))) == NULL) {
				fprintf(err, "%s:%u: %s\n", path, lineno, why);
				rc = -1;
				break; /* the section's keys would be misread as the default host's */
			}
			continue;
		}
		char *eq = strchr(s, '=');
		if (eq == NULL) {
			fprintf(err, "%s:%u: expected 'key = value'\n", path, lineno);
			rc = -1;
			continue;
		}
		*eq = '\0';
		char *key = trim(s);
		char *val = trim(eq + 1);
		if (section != NULL) {
			if (set_vhost_key(section, key, val, why, sizeof(why)) < 0) {
				fprintf(err, "%s:%u: %s\n", path, lineno, why);
				rc = -1;
			}
			continue;
		}
		const struct config_key *k = find_key(key, strlen(key));
		if (k == NULL) {
			fprintf(err, "%s:%u: unknown key '%s'\n", path, lineno, key);
			rc = -1;
			continue;
		}
		/* The file's first listen line replaces the default instead of adding to it. */
		reset_repeatable(cfg, k, &seen);
		if (set_key(cfg, k, val, why, sizeof(why)) < 0) {
			fprintf(err, "%s:%u: %s: %s\n", path, lineno, key, why);
			rc = -1;
		}
	}
	if (ferror(f)) {
		fprintf(err, "%s: read error\n", path);
		rc = -1;
	}
	fclose(f);
	return rc;
}

void config_print_help(FILE *out)
{
	fprintf(out,
		"usage: ferryd [--config FILE] [--check-config] [--OPTION VALUE ...]\n"
		"       ferryd passwd FILE NAME [--home DIR] [--permissions LIST]\n"
		"       ferryd firewall [--format nft|iptables|ip6tables|text] [--stateful]\n"
		"                       [--only active|passive] [--standalone [--no-ssh]\n"
		"                       [--keep-port PORT]...] [--config FILE] [--OPTION VALUE ...]\n"
		"\n"
		"Every configuration file key is also a long option, '_' becoming '-'.\n"
		"\n"
		"  --config FILE              read the configuration file FILE first\n"
		"  --check-config             validate the configuration and exit\n"
		"  --help, --version\n");
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct config_key *k = &config_table[i];
		char opt[64];
		size_t j;
		for (j = 0; k->name[j] != '\0' && j < sizeof(opt) - 1; j++)
			opt[j] = k->name[j] == '_' ? '-' : k->name[j];
		opt[j] = '\0';
		char left[96];
		snprintf(left, sizeof(left), "--%s %s", opt, k->arg);
		fprintf(out, "  %-26s %s", left, k->doc);
		if (k->defval != NULL && k->defval[0] != '\0')
			fprintf(out, " [%s]", k->defval);
		fputc('\n', out);
	}
}

static int finish(struct config *cfg, bool serving, FILE *err);

static int load(struct config *cfg, int argc, char **argv, bool serving, bool *check_only,
		FILE *err)
{
	set_defaults(cfg);
	*check_only = false;

	/* First pass: --config, --help, --version, --check-config. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			config_print_help(stdout);
			return 1;
		}
		if (strcmp(a, "--version") == 0) {
			printf("ferryd " FERRY_VERSION "\n");
			return 1;
		}
		if (strcmp(a, "--check-config") == 0) {
			*check_only = true;
		} else if (strcmp(a, "--config") == 0 || strncmp(a, "--config=", 9) == 0) {
			const char *v = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
			if (v == NULL) {
				fprintf(err, "--config: needs a FILE\n");
				return -1;
			}
			if (str_copy(cfg->config_file, sizeof(cfg->config_file), v) < 0) {
				fprintf(err, "--config: path too long\n");
				return -1;
			}
		}
	}
	if (cfg->config_file[0] != '\0' && load_file(cfg, cfg->config_file, err) < 0)
		return -1;

	/* Second pass: every other option overrides the file. */
	unsigned seen = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--check-config") == 0)
			continue;
		if (strcmp(a, "--config") == 0) {
			i++;
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0)
			continue;
		if (strncmp(a, "--", 2) != 0) {
			fprintf(err, "%s: unexpected argument (try --help)\n", a);
			return -1;
		}
		const char *name = a + 2;
		const char *eq = strchr(name, '=');
		size_t nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
		char key[64];
		if (nlen >= sizeof(key)) {
			fprintf(err, "%s: unknown option (try --help)\n", a);
			return -1;
		}
		for (size_t j = 0; j < nlen; j++)
			key[j] = name[j] == '-' ? '_' : name[j];
		key[nlen] = '\0';
		const struct config_key *k = find_key(key, nlen);
		if (k == NULL) {
			fprintf(err, "%s: unknown option (try --help)\n", a);
			return -1;
		}
		const char *v = eq != NULL ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (v == NULL) {
			fprintf(err, "--%.*s: needs a value\n", (int)nlen, name);
			return -1;
		}
		/* A repeatable key on the command line replaces the file's list. */
		reset_repeatable(cfg, k, &seen);
		char why[512];
		if (set_key(cfg, k, v, why, sizeof(why)) < 0) {
			fprintf(err, "--%.*s: %s\n", (int)nlen, name, why);
			return -1;
		}
	}
	return finish(cfg, serving, err);
}

int config_load(struct config *cfg, int argc, char **argv, bool *check_only, FILE *err)
{
	return load(cfg, argc, argv, true, check_only, err);
}

int config_load_unserved(struct config *cfg, int argc, char **argv, FILE *err)
{
	bool check_only;
	return load(cfg, argc, argv, false, &check_only, err);
}

bool config_has_user_db(const struct config *cfg)
{
	return cfg->users_pg[0] != '\0' || cfg->ldap_uri[0] != '\0';
}

int config_finish(struct config *cfg, FILE *err)
{
	return finish(cfg, true, err);
}

static int finish(struct config *cfg, bool serving, FILE *err)
{
	if (cfg->n_listen == 0) {
		const char *port = geteuid() == 0 ? "21" : "2121";
		/* "[::]:PORT" is dual-stack: it takes IPv4 connections too. */
		char spec[32];
		snprintf(spec, sizeof(spec), "[::]:%s", port);
		if (hostport_parse_listen(spec, &cfg->listen[0]) < 0)
			FERR_BUG("default listen");
		cfg->n_listen = 1;
		cfg->listen_default = true;
	}
	cfg->workers_auto = cfg->workers == 0;
	if (cfg->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		cfg->workers = n < 1 ? 1 : (n > 64 ? 64 : (unsigned)n);
	}
	if (cfg->tls_cert[0] == '\0' &&
	    (cfg->n_listen_tls > 0 || cfg->tls == TLS_REQUIRED || cfg->anon_tls == TLS_REQUIRED ||
	     cfg->tls_client_ca[0] != '\0')) {
		fprintf(err, "TLS is asked for (listen_implicit_tls, tls or anon_tls = required, "
			     "or tls_client_ca) but tls_cert is not set\n");
		return -1;
	}
	if (cfg->tls_cert_login && cfg->tls_client_ca[0] == '\0') {
		fprintf(err, "tls_cert_login needs tls_client_ca to verify client certificates\n");
		return -1;
	}
	if (config_has_user_db(cfg) && cfg->home_base[0] != '/') {
		fprintf(err, "users_pg and ldap_uri need home_base, an absolute directory beneath "
			     "which their users' homes lie\n");
		return -1;
	}
	/* With [host] sections, clients that name no host may be given nothing. */
	if (serving && cfg->root[0] == '\0' && cfg->users_file[0] == '\0' &&
	    !config_has_user_db(cfg) && !cfg->local_users && cfg->n_vhosts == 0) {
		fprintf(err, "nothing to serve: set root (anonymous), users_file, users_pg, "
			     "ldap_uri or local_users\n");
		return -1;
	}
	if (cfg->root[0] != '\0' && cfg->root[0] != '/') {
		/*
		 * Made absolute by name, not resolved: a reload, which runs unprivileged, must
		 * reach the same string without needing to search the directories above.
		 */
		char cwd[CONFIG_STR_MAX], abs[CONFIG_STR_MAX];
		if (getcwd(cwd, sizeof(cwd)) == NULL ||
		    (size_t)snprintf(abs, sizeof(abs), "%s/%s", cwd, cfg->root) >= sizeof(abs) ||
		    str_copy(cfg->root, sizeof(cfg->root), abs) < 0) {
			fprintf(err, "root: path too long\n");
			return -1;
		}
	}
	return finish_vhosts(cfg, err);
}

int config_check_access(const struct config *cfg, FILE *err)
{
	struct stat st;
	if (cfg->root[0] != '\0') {
		if (stat(cfg->root, &st) < 0) {
			fprintf(err, "root: %s: %s\n", cfg->root, strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			fprintf(err, "root: %s: not a directory\n", cfg->root);
			return -1;
		}
	}
	const struct {
		const char *key, *path;
	} files[] = {
		{ "users_file", cfg->users_file }, { "tls_cert", cfg->tls_cert },
		{ "tls_key", cfg->tls_key },       { "tls_chain", cfg->tls_chain },
		{ "tls_client_ca", cfg->tls_client_ca },
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (files[i].path[0] != '\0' && access(files[i].path, R_OK) != 0) {
			fprintf(err, "%s: %s: %s\n", files[i].key, files[i].path, strerror(errno));
			return -1;
		}
	}
	return check_vhost_access(cfg, err);
}
