/*
 * throttle.h: failed logins per client address, remembered across sessions and reconnects.
 *
 * The master keeps one table (throttle.c) because it sees every session of every worker:
 * a worker reports each failed login (LOGIN_FAILED) and the master, which knows the
 * session's address from its own records, answers how long the session must wait before
 * its 530 (LOGIN_DELAY), and bans the address once it has failed too often.
 *
 * Policy, as ferryd.conf(5) documents it:
 * - An address's failures count until it has had none for ban_time seconds; then they are
 *   forgotten.  A successful login does not reset them: anonymous logins, or one account
 *   an attacker holds, would otherwise wipe the count between guesses.
 * - The n-th recent failure waits login_failure_delay * 2^(n-1), at most 30 s (or
 *   login_failure_delay itself when that is longer).
 * - The ban_after-th recent failure bans the address for ban_time seconds (ban_after 0:
 *   never).  Failures reported while a ban runs neither count nor extend it.  When the
 *   ban ends the address starts again from nothing.
 * - The table holds at most `cap` addresses, so an attack from many addresses costs
 *   bounded memory: a new address replaces the oldest one that is not banned, or, when
 *   every entry is banned, the oldest ban (reported as ended early).
 *
 * Nothing here does I/O or reads a clock: times are milliseconds of the caller's
 * monotonic clock, passed in, so that the logic can be tested with made-up times.
 */
#ifndef FERRY_SERVER_THROTTLE_H
#define FERRY_SERVER_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define THROTTLE_MAX_DELAY_MS 30000u
#define THROTTLE_CAP 8192u /* addresses the master remembers */

struct throttle;

/* Taken from the configuration at each call, so that a reload applies at once. */
struct throttle_policy {
	unsigned ban_after;      /* failures before a ban; 0: never */
	unsigned ban_time;       /* seconds: length of a ban, and of the memory of failures */
	unsigned base_delay_ms;  /* login_failure_delay */
};

/* What the master answers to one failed login. */
struct throttle_verdict {
	unsigned failures;  /* recent failures of the address, this one included */
	unsigned delay_ms;  /* wait this long before answering the failure */
	bool banned;        /* the address is banned (now or already): close its session */
	bool ban_started;   /* this failure started the ban */
	uint64_t ban_until; /* when the ban ends (caller's clock), if banned */
};

enum throttle_end {
	THROTTLE_BAN_OVER,    /* ban_time has passed */
	THROTTLE_BAN_EVICTED, /* the table was full of bans: the oldest made room */
};
/* Called as a ban ends; addr is valid for the call only. */
typedef void throttle_ended_fn(void *ctx, const struct sockaddr_storage *addr,
			       unsigned failures, enum throttle_end how);

/*
 * A table for up to cap addresses (all memory taken now).  seed varies the hash so that
 * addresses chosen to collide cannot be found offline.  ended may be NULL.  Returns NULL
 * when out of memory; free with throttle_free.
 */
struct throttle *throttle_new(unsigned cap, uint32_t seed, throttle_ended_fn *ended, void *ctx);
void throttle_free(struct throttle *t);

/* Record a failed login from addr (AF_INET or AF_INET6; IPv4-mapped counts as IPv4). */
void throttle_failure(struct throttle *t, const struct throttle_policy *p,
		      const struct sockaddr_storage *addr, uint64_t now,
		      struct throttle_verdict *v);
/* Whether addr is banned at now; *until (if not NULL) gets the ban's end. */
bool throttle_banned(const struct throttle *t, const struct sockaddr_storage *addr, uint64_t now,
		     uint64_t *until);
/* Recent failures of addr (0 when unknown or forgotten). */
unsigned throttle_failures(const struct throttle *t, const struct throttle_policy *p,
			   const struct sockaddr_storage *addr, uint64_t now);
/*
 * Forget what has expired by now (ended bans are reported).  Returns when the next entry
 * expires (caller's clock), or UINT64_MAX when the table is empty: the caller's timer.
 */
uint64_t throttle_expire(struct throttle *t, const struct throttle_policy *p, uint64_t now);
/* Addresses in the table. */
unsigned throttle_size(const struct throttle *t);

/*
 * The worker's side (cmd_auth.c): the master's answers about one of its sessions.
 * LOGIN_DELAY: the failed login waits ms more before its 530.
 * CLOSE_UNAUTH: unless it has logged in meanwhile, the session gets 421 and closes;
 * banned tells the two reasons apart (its address was banned, or max_unauthenticated).
 */
struct session;
void login_delay_decided(struct session *s, unsigned ms);
void login_closed_by_master(struct session *s, bool banned);
/* The master's USER_ADMIT: error 0 logs the session in, EUSERS refuses it (max_sessions). */
void login_admitted(struct session *s, int error, unsigned sessions);
/* The session is ending: a password check or a failed login's delay in flight is dropped. */
void login_abandon(struct session *s);

#endif
