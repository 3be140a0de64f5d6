/*
 * ratelimit.c: the token bucket of ratelimit.h.
 */
#include "server/ratelimit.h"

#include <time.h>

#define BURST_MIN (16 * 1024)

static uint64_t burst_of(uint64_t rate)
{
	uint64_t b = rate / 10;
	return b < BURST_MIN ? BURST_MIN : b;
}

void rate_init(struct rate_bucket *b, uint64_t rate, uint64_t now_ns)
{
	b->rate = rate;
	b->burst = burst_of(rate);
	b->tokens = (int64_t)b->burst;
	b->last_ns = now_ns;
}

static void refill(struct rate_bucket *b, uint64_t now_ns)
{
	if (now_ns <= b->last_ns)
		return;
	uint64_t dt = now_ns - b->last_ns;
	/*
	 * At most 8 s at a time: rate (< 2^31) times 2^33 ns cannot overflow, and 8 s pays
	 * back the largest debt (4 s of rate, rate_charge) with room to spare.
	 */
	if (dt > 8000000000ull)
		dt = 8000000000ull;
	uint64_t add = b->rate * dt / 1000000000ull;
	if (add == 0)
		return;
	int64_t t = b->tokens + (int64_t)add;
	if (t >= (int64_t)b->burst || dt < now_ns - b->last_ns) {
		b->tokens = (int64_t)b->burst < t ? (int64_t)b->burst : t;
		b->last_ns = now_ns;
		return;
	}
	/* Only the time the whole bytes stand for: small steps lose no fraction of a byte. */
	b->tokens = t;
	b->last_ns += add * 1000000000ull / b->rate;
}

void rate_set(struct rate_bucket *b, uint64_t rate, uint64_t now_ns)
{
	refill(b, now_ns);
	b->rate = rate;
	b->burst = burst_of(rate);
	if (b->tokens > (int64_t)b->burst)
		b->tokens = (int64_t)b->burst;
	b->last_ns = now_ns;
}

uint64_t rate_allowed(struct rate_bucket *b, uint64_t now_ns)
{
	if (b == NULL || b->rate == 0)
		return UINT64_MAX;
	refill(b, now_ns);
	/*
	 * Half a burst at least, or nothing: a transfer woken as soon as a few bytes are due
	 * would move them a few at a time (a sendfile of one byte per wake-up).
	 */
	return b->tokens >= (int64_t)(b->burst / 2) ? (uint64_t)b->tokens : 0;
}

void rate_charge(struct rate_bucket *b, uint64_t n)
{
	if (b == NULL || b->rate == 0)
		return;
	/* A debt of more than a second is never needed, and would overflow no sooner. */
	int64_t floor = -(int64_t)(b->rate > INT32_MAX ? INT32_MAX : b->rate) * 4;
	int64_t t = b->tokens - (int64_t)(n > (uint64_t)INT64_MAX / 2 ? (uint64_t)INT64_MAX / 2 : n);
	b->tokens = t < floor ? floor : t;
}

uint64_t rate_wait_ns(struct rate_bucket *b, uint64_t now_ns)
{
	if (rate_allowed(b, now_ns) > 0)
		return 0;
	uint64_t need = (uint64_t)((int64_t)(b->burst / 2) - b->tokens);
	return (need * 1000000000ull + b->rate - 1) / b->rate; /* rounded up: not a moment early */
}

uint64_t rate_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
