/*
 * ratelimit.h: a token bucket for bandwidth limits (pure: the caller passes the time).
 *
 * Transfers in ferryd move bytes through four paths of their own (sendfile, splice,
 * OpenSSL reads and writes into the transfer's buffer), most without a bufferevent, so
 * libevent's rate limits would see only some of them.  Each path instead asks a bucket how
 * much it may move now, moves at most that, and charges what it moved; a charge may take
 * the bucket below zero (a whole TLS record, a piece already queued), which the next
 * waits pay back.  A session's own limit and its user's share across sessions are two
 * buckets, and a transfer moves what the fuller of the two allows.
 */
#ifndef FERRY_SERVER_RATELIMIT_H
#define FERRY_SERVER_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct rate_bucket {
	uint64_t rate;     /* bytes a second; 0: unlimited */
	uint64_t burst;    /* the most it holds: a tenth of a second of rate, at least 16 KiB */
	int64_t tokens;    /* bytes it may move now; below 0 after an overdraft */
	uint64_t last_ns;  /* when tokens was last brought up to date */
};

/* A bucket of rate bytes/s (0: unlimited), full at now_ns. */
void rate_init(struct rate_bucket *b, uint64_t rate, uint64_t now_ns);
/* A new rate, keeping what the bucket holds (up to the new burst). */
void rate_set(struct rate_bucket *b, uint64_t rate, uint64_t now_ns);
/*
 * Bytes that may move now: 0 when the bucket holds less than half its burst; UINT64_MAX
 * when unlimited (b NULL, or rate 0).
 */
uint64_t rate_allowed(struct rate_bucket *b, uint64_t now_ns);
/* n bytes have moved. */
void rate_charge(struct rate_bucket *b, uint64_t n);
/*
 * Nanoseconds until the bucket holds half its burst again, when it allows nothing now;
 * 0 when it allows something.
 */
uint64_t rate_wait_ns(struct rate_bucket *b, uint64_t now_ns);
/* The current CLOCK_MONOTONIC time in nanoseconds. */
uint64_t rate_now_ns(void);

#endif
