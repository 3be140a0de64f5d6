/*
 * log.c: formatting and writing of log lines.  Each line is built whole in a local buffer
 * and written with one write(2), so lines from several workers never interleave.
 */
#include "server/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fdio.h"

static const char *log_role = "ferryd";

void log_set_role(const char *role)
{
	log_role = role;
}

static void vlog(const char *level, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02dZ ferryd[%d] %s %s: ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (int)getpid(), log_role, level);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	int m = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (m > 0)
		len += (size_t)m < sizeof(line) - len ? (size_t)m : sizeof(line) - len - 1;
	/* Whatever a client put in a name stays on one line. */
	for (size_t i = 0; i < len; i++) {
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = '?';
	}
	if (len >= sizeof(line) - 1)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	(void)fd_write_all(STDERR_FILENO, line, len); /* nowhere left to report a failing log */
}

#define DEFINE_LOG(fn, level)                                                                      \
	void fn(const char *fmt, ...)                                                              \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		vlog(level, fmt, ap);                                                              \
		va_end(ap);                                                                        \
	}

DEFINE_LOG(log_info, "info")
DEFINE_LOG(log_warn, "warning")
DEFINE_LOG(log_error, "error")

void log_transfer(int xferlog_fd, const struct xfer_record *r)
{
	log_info("transfer client=%s user=%s %s path=%s bytes=%llu seconds=%.3f mode=%s type=%s "
		 "result=%s",
		 r->client, r->user, r->upload ? "upload" : "download", r->path,
		 (unsigned long long)r->bytes, r->seconds, r->passive ? "passive" : "active",
		 r->ascii ? "ascii" : "binary", r->complete ? "ok" : "incomplete");
	if (xferlog_fd < 0)
		return;
	char when[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	if (strftime(when, sizeof(when), "%a %b %d %H:%M:%S %Y", &tm) == 0)
		return;
	/* xferlog fields are separated by spaces: a space in a name would shift them. */
	char path[4096];
	size_t i;
	for (i = 0; r->path[i] != '\0' && i < sizeof(path) - 1; i++)
		path[i] = r->path[i] == ' ' ? '_' : r->path[i];
	path[i] = '\0';
	char line[4096 + 512];
	int n = snprintf(line, sizeof(line), "%s %.0f %s %llu %s %c _ %c %c %s ftp 0 * %c\n", when,
			 r->seconds < 1 ? 1.0 : r->seconds, r->client,
			 (unsigned long long)r->bytes, path, r->ascii ? 'a' : 'b',
			 r->upload ? 'i' : 'o', r->anonymous ? 'a' : 'r', r->user,
			 r->complete ? 'c' : 'i');
	if (n > 0 && (size_t)n < sizeof(line))
		(void)fd_write_all(xferlog_fd, line, (size_t)n);
}
