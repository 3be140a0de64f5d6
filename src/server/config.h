/*
 * config.h: ferryd's configuration, defined once as a table (config.c) in the manner of
 * nginx's ngx_command_t: name, type, field, bounds, default and one line of documentation.
 * The same table parses the configuration file, the long command-line options, --help and
 * the man page's option list.  After validation the configuration is frozen: nothing
 * writes to it while sessions run.  A reload (SIGHUP) builds a new one.
 */
#ifndef FERRY_SERVER_CONFIG_H
#define FERRY_SERVER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/netaddr.h"

#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_PASV_MAP 32
#define CONFIG_MAX_REUSE_EXEMPT 32
#define CONFIG_STR_MAX 4096
#define CONFIG_MAX_VHOSTS 16
#define VHOST_NAME_MAX 254   /* a DNS name: at most 253 characters */
#define VHOST_PATH_MAX 1024  /* smaller than CONFIG_STR_MAX: 16 hosts go to each worker */

/* Permissions a user can be granted (users file and anon_permissions). */
enum perm {
	PERM_READ = 1 << 0,
	PERM_WRITE = 1 << 1, /* upload and append */
	PERM_DELETE = 1 << 2,
	PERM_RENAME = 1 << 3,
	PERM_MKDIR = 1 << 4,
};
#define PERM_ALL (PERM_READ | PERM_WRITE | PERM_DELETE | PERM_RENAME | PERM_MKDIR)

/* "read,write" -> bits.  Returns 0 or -1 on an unknown word. */
int perm_parse(const char *s, unsigned *out);

/* A port range; min == 0 means unset (any unprivileged port). */
struct port_range {
	uint16_t min, max;
};

/* pasv_address_map: clients in net are told announce in PASV replies. */
struct pasv_map {
	struct netaddr_net net;
	struct in_addr announce;
};

/* tls, anon_tls: whether a session may, or must, protect its control connection. */
enum tls_mode { TLS_OFF, TLS_OPTIONAL, TLS_REQUIRED };
/* tls_data: whether data connections must be protected (PROT P). */
enum tls_data_mode { TLS_DATA_OPTIONAL, TLS_DATA_REQUIRED };
/* quota_partial: what becomes of an upload stopped at the user's quota (quota.h). */
enum quota_partial_mode { QUOTA_PARTIAL_KEEP, QUOTA_PARTIAL_REMOVE };

/*
 * A [host NAME] section of the configuration file: a virtual host (RFC 7151) that a client
 * chooses with HOST, or with TLS SNI.  What it does not set is the default host's (the keys
 * outside any section): the users database (users_pg, LDAP), permissions, limits, TLS
 * policy.  An empty tls_cert means the default host's certificate; an empty banner, its
 * banner.
 */
struct vhost {
	char name[VHOST_NAME_MAX];       /* lower case, without a final dot */
	char root[VHOST_PATH_MAX];       /* anonymous root; empty: no anonymous access here */
	bool anonymous;
	char users_file[VHOST_PATH_MAX];
	char banner[256];
	char tls_cert[VHOST_PATH_MAX];
	char tls_key[VHOST_PATH_MAX];
	char tls_chain[VHOST_PATH_MAX];
};

struct config {
	struct sockaddr_storage listen[CONFIG_MAX_LISTEN];
	unsigned n_listen;
	bool listen_default;             /* no listen was given: the default was applied */
	char root[CONFIG_STR_MAX];        /* anonymous root; empty: no anonymous access */
	bool anonymous;
	unsigned anon_permissions;
	char users_file[CONFIG_STR_MAX];
	char users_pg[CONFIG_STR_MAX];    /* libpq connection string; empty: no PostgreSQL users */
	unsigned users_pg_timeout;       /* milliseconds */
	char home_base[CONFIG_STR_MAX];   /* homes of database users lie beneath it */
	/* LDAP users (userdb_ldap.h): search, then bind as the user */
	char ldap_uri[512];
	bool ldap_starttls;
	char ldap_ca_file[CONFIG_STR_MAX];
	char ldap_bind_dn[512];
	char ldap_bind_password[256];
	char ldap_base[512];
	char ldap_filter[512];
	char ldap_attr_name[64];
	char ldap_attr_home[64];
	char ldap_attr_permissions[64];
	char ldap_attr_settings[64];
	unsigned ldap_permissions;
	unsigned ldap_timeout;           /* milliseconds */
	bool ldap_own_ids;               /* files of directory users belong to their uidNumber */
	/* local system users (local_auth.h) */
	bool local_users;
	char local_root[CONFIG_STR_MAX];  /* %h, %u */
	unsigned local_permissions;
	bool local_check_shell;
	char ftpusers[CONFIG_STR_MAX];
	char pam_service[64];
	char user[64];                   /* unprivileged account when started as root */
	unsigned workers;                /* 0: one per CPU */
	bool workers_auto;               /* workers was 0: the master may start more, so that
					    max_sessions fit under the descriptor limit */
	struct port_range pasv_ports;    /* passive listeners; unset: any unprivileged port */
	char pasv_address[256];          /* IPv4 address or host name announced in PASV replies */
	unsigned pasv_address_refresh;   /* seconds between resolutions of a host name; 0: once */
	struct pasv_map pasv_map[CONFIG_MAX_PASV_MAP];
	unsigned n_pasv_map;
	bool active_from_port_20;
	struct port_range active_ports;  /* source ports of active connections (not port 20) */
	unsigned max_sessions;
	unsigned max_sessions_per_ip;
	unsigned login_timeout;          /* seconds */
	unsigned idle_timeout;           /* seconds */
	unsigned data_timeout;           /* seconds */
	unsigned max_login_failures;
	unsigned login_failure_delay;    /* milliseconds */
	unsigned max_bad_commands;
	unsigned shutdown_timeout;       /* seconds */
	unsigned umask;
	unsigned quota_partial;          /* enum quota_partial_mode */
	/* FTPS (RFC 4217) */
	struct sockaddr_storage listen_tls[CONFIG_MAX_LISTEN]; /* implicit TLS listeners */
	unsigned n_listen_tls;
	char tls_cert[CONFIG_STR_MAX];   /* certificate (PEM; may hold the chain too) */
	char tls_key[CONFIG_STR_MAX];    /* its private key (PEM) */
	char tls_chain[CONFIG_STR_MAX];  /* intermediate certificates (PEM), optional */
	unsigned tls;                    /* enum tls_mode, for users of the users file */
	unsigned anon_tls;               /* enum tls_mode, for anonymous users */
	unsigned tls_data;               /* enum tls_data_mode */
	bool tls_require_reuse;          /* data connections must resume the control session */
	struct netaddr_net tls_reuse_exempt[CONFIG_MAX_REUSE_EXEMPT]; /* ... except from these */
	unsigned n_tls_reuse_exempt;
	bool tls_ccc;                    /* allow CCC (clear the control connection) */
	char tls_client_ca[CONFIG_STR_MAX]; /* ask for client certificates, verified with this CA */
	bool tls_cert_login;             /* a verified client certificate's CN logs in as that user */
	/* abuse resistance */
	unsigned ban_after;              /* failed logins from one address before a ban; 0: never */
	unsigned ban_time;               /* seconds a banned address is refused */
	unsigned max_unauthenticated;    /* sessions not logged in, in all, before the oldest goes */
	char banner[256];
	char xferlog[CONFIG_STR_MAX];
	char config_file[CONFIG_STR_MAX]; /* where the configuration came from, if anywhere */
	struct vhost vhosts[CONFIG_MAX_VHOSTS]; /* [host NAME] sections, in the file's order */
	unsigned n_vhosts;
};

/*
 * Build a configuration from argv (long options, and --config FILE read first so that the
 * command line overrides it).  On error, prints "FILE:LINE: message" or "option: message"
 * to err and returns -1.  *check_only is set by --check-config.  Returns 1 when --help or
 * --version was printed (nothing more to do), 0 on success.
 */
int config_load(struct config *cfg, int argc, char **argv, bool *check_only, FILE *err);

/*
 * As config_load, for tools that read the configuration but serve nothing (ferryd
 * firewall): root and users_file may both be unset.  --check-config is accepted and
 * ignored; --help and --version print and return 1 as for config_load.
 */
int config_load_unserved(struct config *cfg, int argc, char **argv, FILE *err);

/* Print the option table as --help text. */
void config_print_help(FILE *out);

/* tls_require_reuse for a client at addr: yes, or a list of exempt networks without it. */
bool config_reuse_required(const struct config *cfg, const struct sockaddr_storage *addr);

/* Whether users are looked up in a database (users_pg, LDAP) by the workers. */
bool config_has_user_db(const struct config *cfg);

/* Apply derived defaults (listen, workers) and check cross-key consistency. */
int config_finish(struct config *cfg, FILE *err);
/*
 * Check that root and users_file can be reached, at start-up (with the privileges ferryd
 * starts with; a reload runs unprivileged and relies on what the master opened).
 */
int config_check_access(const struct config *cfg, FILE *err);

/* Whether name (len bytes) is a DNS name a [host] section or HOST may give. */
bool config_vhost_name_ok(const char *name, size_t len);
/* The index in cfg->vhosts of the host called name (any case, a final dot or not), or -1. */
int config_vhost_find(const struct config *cfg, const char *name);

#endif
