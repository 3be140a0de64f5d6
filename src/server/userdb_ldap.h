/*
 * userdb_ldap.h: users from an LDAP directory (OpenLDAP's libldap), answered as the same
 * struct user_entry the users file gives.
 *
 * A login is search-then-bind: a service connection (bound as bind_dn, or anonymous) finds
 * the one entry that the filter matches for the login name, then the password is checked by
 * a simple bind as that entry's DN on a connection of its own, which is closed at once: the
 * service connection never holds a user's rights, so no later search runs with them.
 *
 * Disabled accounts: an entry the filter does not match cannot log in.  The administrator
 * writes the exclusion into the filter, for example with packaging/ferry.schema.ldif's
 * attribute
 *     (&(objectClass=posixAccount)(uid=%u)(!(ferryDisabled=TRUE)))
 * or, with the ppolicy overlay, (!(pwdAccountLockedTime=*)); a bind the directory refuses
 * (ppolicy's lockout answers invalidCredentials) is a refusal too.
 *
 * Threads: an ldap_source keeps one service connection and is not locked; one thread at a
 * time may use it (give each thread its own).  Different sources may be used at once.
 *
 * Secrets: the password of a login is never copied, logged or kept; it is handed to libldap
 * for the bind and nothing else.  The service password is kept (for reconnects) and wiped
 * when the source is freed.
 */
#ifndef FERRY_SERVER_USERDB_LDAP_H
#define FERRY_SERVER_USERDB_LDAP_H

#include <stdbool.h>
#include <stddef.h>

#include "server/users.h"

#define LDAP_SOURCE_TIMEOUT_DEFAULT 5000 /* ms, when timeout_ms is 0 */

struct ldap_source_config {
	char uri[512];          /* ldap://HOST:PORT, ldaps://HOST:PORT or ldapi://; a space-separated
				   list is tried in order */
	bool starttls;          /* StartTLS on ldap:// (required: a failure is an error) */
	char ca_file[4096];     /* CA to verify the server's certificate; empty: system store */
	char bind_dn[512];      /* service account for the search; empty: anonymous search */
	char bind_password[256]; /* its password: required with bind_dn, refused without */
	char base[512];         /* where the search starts (subtree) */
	char filter[512];       /* e.g. "(&(objectClass=posixAccount)(uid=%u))": %u is the login
				   name escaped per RFC 4515, %% a '%'; %u must appear */
	char attr_name[64];     /* optional: e->name is the entry's value of this attribute (as
				   "uid"), so that "ALICE" and "alice " are one user; empty: the
				   login name as typed */
	char attr_home[64];     /* empty: "homeDirectory" */
	char attr_perms[64];    /* permission words (perm_parse); empty, or absent on the entry:
				   default_perms */
	char attr_settings[64]; /* the user_settings.h text; empty, or absent on the entry: none */
	unsigned default_perms;
	bool own_ids;           /* take uidNumber/gidNumber: e->own_ids, e->uid, e->gid (0 refused) */
	char home_prefix[4096]; /* optional: the home must lie strictly beneath this directory */
	unsigned timeout_ms;    /* bounds each login or ping as a whole: connect, StartTLS, TLS
				   handshake, every bind and search; 0: LDAP_SOURCE_TIMEOUT_DEFAULT */
};

struct ldap_source;
struct config;

/*
 * libldap's one-time set-up of the process (it reads the environment and resolves this
 * host's name, which a sandbox would refuse): call before the sandbox.
 */
void ldap_source_preinit(void);

/* The source's settings from ferryd's configuration (ldap_* keys, home_base). */
void ldap_source_config_from(const struct config *cfg, struct ldap_source_config *out);

/*
 * Check cfg and make a source (no connection yet: the first login or ping connects).
 * Returns 0 with *out for ldap_source_free(), or -1 with the reason in err.
 */
int ldap_source_new(const struct ldap_source_config *cfg, struct ldap_source **out, char *err,
		    size_t errlen);
/* Close the connection and wipe the kept service password.  NULL is allowed. */
void ldap_source_free(struct ldap_source *s);

/*
 * Search-then-bind.  Returns
 *   1: authenticated; e is filled (name, home, perms, set: on the heap through
 *      user_settings_parse, NULL when none; own_ids/uid/gid; hash empty, disabled false)
 *      and the caller releases it with user_entry_clear();
 *   0: refused: unknown user, more than one entry, wrong or empty password, disabled
 *      (not matched by the filter), a name that cannot be a user; err says which, for the
 *      log only (never tell the client: it would reveal which names exist);
 *  -1: the directory is unreachable, timed out or failed TLS, or the entry cannot be mapped
 *      (no home, home outside home_prefix, bad permissions or settings, uid 0): err says
 *      why and names the user.  An entry's faults are reported only after its password
 *      was accepted, so they reveal nothing to someone who does not know it.
 * On 0 and -1, e holds nothing to release.  An empty password is refused before any
 * network traffic: LDAP takes a simple bind with an empty password as an unauthenticated
 * bind that succeeds (RFC 4513 s.5.1.2).
 */
int ldap_source_login(struct ldap_source *s, const char *name, const char *password,
		      struct user_entry *e, char *err, size_t errlen);

/*
 * For --check-config: connect (with StartTLS when set), bind as the service account and
 * read the base entry with the filter applied to a name no one has, which checks that the
 * base exists and that the server accepts the filter.  0, or -1 with the reason in err.
 */
int ldap_source_ping(struct ldap_source *s, char *err, size_t errlen);

#endif
