/*
 * sd_notify.h: telling a service manager (systemd, Type=notify) how the master is doing,
 * with the datagrams of sd_notify(3) written directly: READY=1 once it serves,
 * RELOADING=1 then READY=1 around a reload, STOPPING=1 when it stops, and WATCHDOG=1 from
 * its event loop, so that a master whose loop hangs is noticed and restarted.
 *
 * Nothing happens without $NOTIFY_SOCKET.  The socket is connected once at start-up,
 * before privileges are dropped; later sends need no access to its path.
 */
#ifndef FERRY_SERVER_SD_NOTIFY_H
#define FERRY_SERVER_SD_NOTIFY_H

#include <stdint.h>

struct sd_notifier;

/*
 * From the environment ($NOTIFY_SOCKET, "@name" for an abstract socket; $WATCHDOG_USEC
 * and $WATCHDOG_PID).  NULL when there is nothing to notify (or it cannot be reached:
 * logged).  The variables are removed from the environment, so workers do not inherit
 * them.
 */
struct sd_notifier *sd_notifier_open(void);
void sd_notifier_free(struct sd_notifier *n);
/* Send one state text ("READY=1", "STOPPING=1\nSTATUS=..."); failures are logged once. */
void sd_notifier_send(struct sd_notifier *n, const char *state);
/*
 * The interval at which WATCHDOG=1 should be sent (half the manager's WatchdogSec), in
 * microseconds, or 0 when no watchdog is asked for (or it is for another pid).
 */
uint64_t sd_notifier_watchdog_usec(const struct sd_notifier *n);

#endif
