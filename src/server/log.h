/*
 * log.h: ferryd's logs.  One line an event on stderr (systemd and containers collect it),
 * and optionally the classic xferlog transfer log.  No global state but the process role,
 * which is fixed once at start-up and only decorates lines.
 *
 * Lines are "key=value" fields that fail2ban-style filters read.  Text a client can choose
 * (user names, paths, command arguments, CLNT, certificate names) goes into a line only
 * through LOG_Q() (common/logsafe.h), which quotes and escapes it, so that it can neither
 * add a field nor start a line:
 *     log_info("session %llu login client=%s user=%s", id, s->peer_str, LOG_Q(s->username));
 * As a second line of defence every line is passed through log_sanitize_line() before it
 * is written: no control byte ever reaches the log, whatever a call site forgot.
 */
#ifndef FERRY_SERVER_LOG_H
#define FERRY_SERVER_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/logsafe.h"

void log_set_role(const char *role); /* "master", "worker 1", ... ; the string must live on */

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Rate limiting of one kind of repeated event (a token bucket), so that a client that
 * repeats what causes a warning thousands of times a second cannot fill the disk with it.
 *
 * The caller owns one struct per kind of event, in its own long-lived struct (struct
 * server, struct master, ...), and zeroes it or uses LOG_RATELIMIT_INIT.  No locking: one
 * struct belongs to one process and one thread.
 *
 * Behaviour: the first `burst` events pass; after that one event passes every
 * `interval_ms` (the bucket refills by one token per interval, up to `burst`).  Events that
 * do not pass are counted; the next one that passes carries the count, and
 * log_*_limited() appends " (N similar messages suppressed)" to its line.  If the events
 * stop, the count waits for the next event or for log_ratelimit_flush().
 */
struct log_ratelimit {
	/* Settings, read at every call; 0 means the default (10 lines, 1000 ms). */
	unsigned burst;
	unsigned interval_ms;
	/* State: log.c's only. */
	bool started;
	unsigned tokens;
	unsigned suppressed;             /* since the last line that passed (saturates) */
	struct timespec refilled;        /* time the tokens are counted up to */
	struct timespec last_suppressed; /* time of the last event that did not pass */
};

#define LOG_RATELIMIT_BURST 10
#define LOG_RATELIMIT_INTERVAL_MS 1000
/* An initialiser with other settings: struct log_ratelimit rl = LOG_RATELIMIT_INIT(5, 500); */
#define LOG_RATELIMIT_INIT(burst_, interval_ms_)                                                   \
	{ .burst = (burst_), .interval_ms = (interval_ms_) }

/*
 * Decides one event.  now is the current CLOCK_MONOTONIC time, or NULL to read that clock
 * (tests pass their own clock; it must not go backwards, a time before the last one counts
 * as no time passed).  Returns true when the event may be logged; then *suppressed (if not
 * NULL) is the number of events that did not pass since the previous one that did, and that
 * count starts again from 0.  Returns false when the event must be dropped (it is counted;
 * *suppressed is set to 0).
 */
bool log_ratelimit_allow(struct log_ratelimit *rl, const struct timespec *now,
			 unsigned *suppressed);

/*
 * log_warn() / log_info() for an event limited by rl (log_ratelimit_allow() with the
 * monotonic clock): nothing at all when it does not pass; when it does and events were
 * dropped before it, the line ends in " (N similar messages suppressed)".
 */
void log_warn_limited(struct log_ratelimit *rl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_info_limited(struct log_ratelimit *rl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * The summary for events that stopped: when events were dropped and none came for a whole
 * interval since the last dropped one, logs the warning "<what>: N similar messages
 * suppressed", starts the count again and returns N; otherwise logs nothing and returns 0
 * (during a flood the next line that passes carries the count instead).  now as for
 * log_ratelimit_allow().  Meant for a periodic timer (once an interval is enough); what
 * is a short description of the event, such as "evicted connections".
 */
unsigned log_ratelimit_flush(struct log_ratelimit *rl, const struct timespec *now,
			     const char *what);

struct xfer_record {
	const char *client;   /* client address */
	const char *user;
	bool anonymous;
	const char *path;     /* virtual path */
	uint64_t bytes;
	double seconds;
	bool upload;
	bool ascii;
	bool passive;
	bool complete;
};

/*
 * One line on stderr for a transfer, and one in the xferlog format on xferlog_fd when it
 * is >= 0: "Thu Nov 25 17:51:00 2026 1 host bytes path b _ o a user ftp 0 * c".
 */
void log_transfer(int xferlog_fd, const struct xfer_record *r);

#endif
