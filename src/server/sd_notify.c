/*
 * sd_notify.c: the notification protocol of sd_notify(3), written directly (sd_notify.h):
 * one AF_UNIX datagram a state, to the path or abstract name in $NOTIFY_SOCKET.
 */
#include "server/sd_notify.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/num.h"
#include "server/log.h"

struct sd_notifier {
	int fd;
	uint64_t watchdog_usec; /* 0: none */
	bool failed;            /* a send failed: said once */
};

struct sd_notifier *sd_notifier_open(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	const char *wd = getenv("WATCHDOG_USEC"), *wd_pid = getenv("WATCHDOG_PID");
	uint64_t usec = 0, pid = 0;
	/* Only for the process the manager names (none named: the main process, us). */
	bool ours = wd_pid == NULL || (num_parse_u64_cstr(wd_pid, UINT32_MAX, &pid) == 0 &&
				       (pid_t)pid == getpid());
	if (wd == NULL || !ours || num_parse_u64_cstr(wd, UINT64_MAX, &usec) < 0)
		usec = 0;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = path != NULL ? strlen(path) : 0;
	bool usable = len > 0 && len < sizeof(sa.sun_path) && (path[0] == '/' || path[0] == '@');
	if (usable) {
		memcpy(sa.sun_path, path, len);
		if (path[0] == '@')
			sa.sun_path[0] = '\0'; /* an abstract name */
	}
	/* The workers and helpers are not the service's main process: they must not notify. */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (path == NULL)
		return NULL;
	if (!usable) {
		log_warn("NOTIFY_SOCKET=%s is neither a path nor an abstract name: the service "
			 "manager is not told when ferryd is ready", LOG_Q(path));
		return NULL;
	}
	struct sd_notifier *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	if (n->fd < 0 || connect(n->fd, (struct sockaddr *)&sa, salen) < 0) {
		log_warn("NOTIFY_SOCKET %s: %s: the service manager is not told when ferryd is "
			 "ready", LOG_Q(path), strerror(errno));
		if (n->fd >= 0)
			close(n->fd);
		free(n);
		return NULL;
	}
	n->watchdog_usec = usec / 2; /* twice an interval, as sd_watchdog_enabled(3) advises */
	return n;
}

void sd_notifier_free(struct sd_notifier *n)
{
	if (n == NULL)
		return;
	close(n->fd);
	free(n);
}

void sd_notifier_send(struct sd_notifier *n, const char *state)
{
	if (n == NULL)
		return;
	ssize_t r;
	do {
		r = send(n->fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (r < 0 && errno == EINTR);
	if (r < 0 && !n->failed) {
		n->failed = true;
		log_warn("cannot notify the service manager (%s): %s", state, strerror(errno));
	}
}

uint64_t sd_notifier_watchdog_usec(const struct sd_notifier *n)
{
	return n != NULL ? n->watchdog_usec : 0;
}
