/*
 * data.h: setting up data connections, the heart of FTP.
 *
 * Passive (PASV, EPSV): the master listens on the control connection's local address, on
 * a port of pasv_ports that may be shared with sessions of other client addresses, and
 * hands over exactly one connection whose source address equals the control connection's
 * peer; any other source is refused and logged (pasv_broker.h).  Active (PORT, EPRT): a
 * connect to the address the client named, which must be its own (no FTP bounce) with a
 * port >= 1024, from port 20 through the helper when configured, else from active_ports
 * or any unprivileged port of the control connection's local address.  Both sides time out (data_timeout).
 */
#ifndef FERRY_SERVER_DATA_H
#define FERRY_SERVER_DATA_H

#include <stdbool.h>
#include <sys/socket.h>

struct session;

struct msg_pasv_port;
struct msg_pasv_ref;

/*
 * PASV (extended = false) or EPSV: asks the master for a port; the session waits until
 * the answer comes (data_passive_answer), which replies 227 / 229 / 425.
 */
void data_passive(struct session *s, bool extended);
/* The master's PASV_PORT for this session. */
void data_passive_answer(struct session *s, const struct msg_pasv_port *m);
/*
 * The master's DATA_CONN: the client connected (fd owned by the callee), or fd is -errno
 * when the descriptor was lost on the way (the worker's limit): the wait fails.
 */
void data_passive_connected(struct session *s, const struct msg_pasv_ref *m, int fd);
/* Whether the session waits for the master's answer to PASV/EPSV (it reads no command). */
bool data_waiting_for_master(const struct session *s);
/* PORT / EPRT: checks the target and replies 200 or an error. */
void data_active(struct session *s, const struct sockaddr_storage *target);

/*
 * Called once the data connection is up (fd >= 0, non-blocking, owned by the callee) or
 * could not be made (fd == -1, reason in why, reply not yet sent).
 */
typedef void data_ready_fn(struct session *s, int fd, const char *why);
/*
 * Get the connection for a transfer, now or later: the callback may run before
 * data_connect returns.  Without a prior PASV/EPSV/PORT/EPRT it fails at once.
 */
void data_connect(struct session *s, data_ready_fn *ready);
/* Whether PORT/EPRT was given, or a passive listener or connection is still there. */
bool data_prepared(const struct session *s);
/* Whether the next transfer uses passive mode (for logs). */
bool data_is_passive(const struct session *s);
/* Forget PASV/PORT state, closing any listener or connection. */
void data_free(struct session *s);

#endif
