/*
 * log.c: formatting and writing of log lines.  Each line is built whole in a local buffer
 * and written with one write(2), so lines from several workers never interleave.
 */
#include "server/log.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/path.h"

static const char *log_role = "ferryd";

void log_set_role(const char *role)
{
	log_role = role;
}

/* Longest line written, newline included; longer ones are cut and end in "...". */
#define LOG_LINE_MAX 4096

/* suffix (may be NULL) is appended after the formatted text. */
static void vlog(const char *level, const char *suffix, const char *fmt, va_list ap)
{
	char raw[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || gmtime_r(&ts.tv_sec, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	int n = snprintf(raw, sizeof(raw), "%04d-%02d-%02dT%02d:%02d:%02dZ ferryd[%d] %s %s: ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (int)getpid(), log_role, level);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1;
	int m = vsnprintf(raw + len, sizeof(raw) - len, fmt, ap);
	if (m > 0)
		len += (size_t)m < sizeof(raw) - len ? (size_t)m : sizeof(raw) - len - 1;
	if (suffix != NULL) {
		m = snprintf(raw + len, sizeof(raw) - len, "%s", suffix);
		if (m > 0)
			len += (size_t)m < sizeof(raw) - len ? (size_t)m : sizeof(raw) - len - 1;
	}
	/*
	 * Values from clients were quoted by LOG_Q() at the call site; this catches what a call
	 * site forgot: no control byte, no line break, no terminal escape reaches the log.
	 */
	char line[LOG_LINE_MAX];
	size_t out = log_sanitize_line(line, sizeof(line) - 1, raw, len);
	line[out++] = '\n';
	(void)fd_write_all(STDERR_FILENO, line, out); /* nowhere left to report a failing log */
}

#define DEFINE_LOG(fn, level)                                                                      \
	void fn(const char *fmt, ...)                                                              \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		vlog(level, NULL, fmt, ap);                                                        \
		va_end(ap);                                                                        \
	}

DEFINE_LOG(log_info, "info")
DEFINE_LOG(log_warn, "warning")
DEFINE_LOG(log_error, "error")

static unsigned rl_burst(const struct log_ratelimit *rl)
{
	return rl->burst != 0 ? rl->burst : LOG_RATELIMIT_BURST;
}

static uint64_t rl_interval_ms(const struct log_ratelimit *rl)
{
	return rl->interval_ms != 0 ? rl->interval_ms : LOG_RATELIMIT_INTERVAL_MS;
}

/* Milliseconds from a to b, 0 when b is not after a. */
static uint64_t ms_between(const struct timespec *a, const struct timespec *b)
{
	if (b->tv_sec < a->tv_sec || (b->tv_sec == a->tv_sec && b->tv_nsec <= a->tv_nsec))
		return 0;
	int64_t ns = b->tv_nsec - a->tv_nsec;
	uint64_t sec = (uint64_t)(b->tv_sec - a->tv_sec);
	if (ns < 0) {
		ns += 1000000000;
		sec--;
	}
	return sec * 1000 + (uint64_t)ns / 1000000;
}

static void add_ms(struct timespec *t, uint64_t ms)
{
	t->tv_sec += (time_t)(ms / 1000);
	t->tv_nsec += (long)(ms % 1000) * 1000000;
	if (t->tv_nsec >= 1000000000) {
		t->tv_nsec -= 1000000000;
		t->tv_sec++;
	}
}

static struct timespec rl_now(const struct timespec *now)
{
	struct timespec t = { 0, 0 };
	if (now != NULL)
		return *now;
	if (clock_gettime(CLOCK_MONOTONIC, &t) < 0)
		abort(); /* CLOCK_MONOTONIC exists on every Linux ferryd runs on */
	return t;
}

/* One token per whole interval since rl->refilled, up to the burst. */
static void rl_refill(struct log_ratelimit *rl, const struct timespec *t)
{
	unsigned burst = rl_burst(rl);
	uint64_t interval = rl_interval_ms(rl);
	uint64_t add = ms_between(&rl->refilled, t) / interval;
	if (add == 0)
		return;
	if (add >= burst - rl->tokens) {
		rl->tokens = burst;
		rl->refilled = *t;
		return;
	}
	rl->tokens += (unsigned)add;
	add_ms(&rl->refilled, add * interval); /* keeps the part of an interval already gone */
}

bool log_ratelimit_allow(struct log_ratelimit *rl, const struct timespec *now,
			 unsigned *suppressed)
{
	struct timespec t = rl_now(now);
	if (!rl->started) {
		rl->started = true;
		rl->tokens = rl_burst(rl);
		rl->refilled = t;
	}
	if (rl->tokens > rl_burst(rl))
		rl->tokens = rl_burst(rl); /* the caller lowered the burst */
	rl_refill(rl, &t);
	if (rl->tokens == 0) {
		if (rl->suppressed < UINT_MAX)
			rl->suppressed++;
		rl->last_suppressed = t;
		if (suppressed != NULL)
			*suppressed = 0;
		return false;
	}
	rl->tokens--;
	if (suppressed != NULL)
		*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

static void vlog_limited(struct log_ratelimit *rl, const char *level, const char *fmt,
			 va_list ap)
{
	unsigned dropped;
	if (!log_ratelimit_allow(rl, NULL, &dropped))
		return;
	char suffix[64];
	if (dropped == 0 ||
	    snprintf(suffix, sizeof(suffix), " (%u similar messages suppressed)", dropped) < 0)
		suffix[0] = '\0';
	vlog(level, suffix, fmt, ap);
}

#define DEFINE_LOG_LIMITED(fn, level)                                                              \
	void fn(struct log_ratelimit *rl, const char *fmt, ...)                                    \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		vlog_limited(rl, level, fmt, ap);                                                  \
		va_end(ap);                                                                        \
	}

DEFINE_LOG_LIMITED(log_warn_limited, "warning")
DEFINE_LOG_LIMITED(log_info_limited, "info")

unsigned log_ratelimit_flush(struct log_ratelimit *rl, const struct timespec *now,
			     const char *what)
{
	if (rl->suppressed == 0)
		return 0;
	struct timespec t = rl_now(now);
	if (ms_between(&rl->last_suppressed, &t) < rl_interval_ms(rl))
		return 0;
	unsigned n = rl->suppressed;
	rl->suppressed = 0;
	log_warn("%s: %u similar messages suppressed", what, n);
	return n;
}

void log_transfer(int xferlog_fd, const struct xfer_record *r)
{
	log_info("transfer client=%s user=%s %s path=%s bytes=%llu seconds=%.3f mode=%s type=%s "
		 "result=%s",
		 LOG_Q(r->client), LOG_Q(r->user), r->upload ? "upload" : "download",
		 LOG_Q(r->path),
		 (unsigned long long)r->bytes, r->seconds, r->passive ? "passive" : "active",
		 r->ascii ? "ascii" : "binary", r->complete ? "ok" : "incomplete");
	if (xferlog_fd < 0)
		return;
	char when[64];
	time_t now = time(NULL);
	struct tm tm;
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(when, sizeof(when), "%a %b %d %H:%M:%S %Y", &tm) == 0)
		return;
	/*
	 * xferlog fields are separated by spaces: a space in a name would shift them, a control
	 * byte would forge a line.  log_escape_field() leaves neither.  The path is kept whole
	 * (statistics read it), even when every byte of it needs an escape.
	 */
	char client[128], path[4 * VPATH_MAX + 8], user[256];
	log_escape_field(client, sizeof(client), r->client, strlen(r->client));
	log_escape_field(path, sizeof(path), r->path, strlen(r->path));
	log_escape_field(user, sizeof(user), r->user, strlen(r->user));
	char line[sizeof(client) + sizeof(path) + sizeof(user) + 256];
	int n = snprintf(line, sizeof(line), "%s %.0f %s %llu %s %c _ %c %c %s ftp 0 * %c\n", when,
			 r->seconds < 1 ? 1.0 : r->seconds, client, (unsigned long long)r->bytes,
			 path, r->ascii ? 'a' : 'b', r->upload ? 'i' : 'o', r->anonymous ? 'a' : 'r',
			 user, r->complete ? 'c' : 'i');
	if (n > 0 && (size_t)n < sizeof(line))
		(void)fd_write_all(xferlog_fd, line, (size_t)n);
}
