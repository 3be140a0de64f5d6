/*
 * log.h: ferryd's logs.  One line an event on stderr (systemd and containers collect it),
 * and optionally the classic xferlog transfer log.  No global state but the process role,
 * which is fixed once at start-up and only decorates lines.
 */
#ifndef FERRY_SERVER_LOG_H
#define FERRY_SERVER_LOG_H

#include <stdbool.h>
#include <stdint.h>

void log_set_role(const char *role); /* "master", "worker 1", ... ; the string must live on */

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

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
