/*
 * checks.h: start-up checks of a valid configuration against the host it runs on.
 *
 * config.c refuses what cannot work; these checks find what works on the bench but fails
 * for clients elsewhere: a private pasv_address on a public server, no pasv_address
 * behind NAT, a passive range too small for max_sessions_per_ip, active_from_port_20
 * without the privilege to bind port 20.  Each problem gives one message saying what to
 * do.  A server that only listens on loopback addresses (tests, `make run`) gets none.
 * Nothing here changes the configuration or stops the server.
 */
#ifndef FERRY_SERVER_CHECKS_H
#define FERRY_SERVER_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "server/config.h"

enum check_level {
	CHECK_WARNING, /* clients will fail: log as a warning */
	CHECK_NOTE,    /* worth knowing, nothing fails: log as information */
};

/* Called once per finding; msg is one line without a newline, valid during the call. */
typedef void check_report_fn(void *ctx, enum check_level level, const char *msg);

/*
 * Run every check for cfg on this host (interface addresses from getifaddrs(3), the
 * effective uid and capabilities of the calling process).  Reports nothing when all is
 * well.
 */
void checks_run(const struct config *cfg, check_report_fn *report, void *ctx);

/* What the checks need to know about the host; checks_run() fills it in. */
struct checks_host {
	bool root;                  /* effective uid 0 */
	bool cap_net_bind_service;  /* CAP_NET_BIND_SERVICE in the effective set */
	bool ifaddrs_known;         /* false: getifaddrs failed; wildcards are not judged */
	const struct sockaddr_storage *ifaddrs; /* the addresses of interfaces that are up */
	size_t n_ifaddrs;
	uint64_t fd_limit;          /* RLIMIT_NOFILE's soft limit (after fdlimit_raise) */
};

/*
 * Descriptors one process may need for max_sessions sessions: the control connection, the
 * root, a data connection and a file each, and FD_RESERVE for listeners, channels, logs.
 */
#define FD_PER_SESSION 4
#define FD_RESERVE 64
/* The most workers "workers = 0" starts to fit max_sessions under the descriptor limit. */
#define AUTO_WORKERS_MAX 64
uint64_t checks_fds_needed(const struct config *cfg);
/* The sessions one worker can hold under a descriptor limit (at least 1). */
unsigned checks_worker_capacity(uint64_t fd_limit);

/* The checks themselves, on a given host: pure, for tests. */
void checks_evaluate(const struct config *cfg, const struct checks_host *host,
		     check_report_fn *report, void *ctx);

#endif
