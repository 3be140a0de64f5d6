/*
 * port20.h: the port-20 helper.  Active data connections traditionally come from port 20,
 * which only a privileged process may bind.  When active_from_port_20 is set and ferryd
 * starts as root, a tiny helper keeps CAP_NET_BIND_SERVICE and nothing else; it does one
 * thing: create a TCP socket bound to port 20 on a local address and hand it back.
 */
#ifndef FERRY_SERVER_PORT20_H
#define FERRY_SERVER_PORT20_H

#include <sys/socket.h>
#include <sys/types.h>

/*
 * Fork the helper (call before dropping privileges).  *ctl gets the master's channel to
 * it.  Returns the helper's pid, or -errno.
 */
pid_t port20_start(const char *user, int *ctl);
/* Worker: a socket bound to port 20 on addr (blocking round trip).  fd or -errno. */
int port20_request(int chan, const struct sockaddr_storage *addr);

#endif
