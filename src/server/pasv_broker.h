/*
 * pasv_broker.h: the master's passive listeners, shared between sessions.
 *
 * A worker that gets PASV or EPSV asks the master for a port (PASV_OPEN, messages.def).  The broker
 * finds a listener on the control connection's local address, in the session's range,
 * that no other session of the same client address waits on: an existing one if it can,
 * else a new one on a free port.  So sessions from different client addresses share
 * ports, and a range of a handful of ports, or one, serves many clients; two sessions of
 * one address never share, so each incoming connection belongs to exactly one session,
 * found by its source address.  A connection that no session waits for is refused and
 * logged.  Listeners nobody waits on are closed after a while.
 */
#ifndef FERRY_SERVER_PASV_BROKER_H
#define FERRY_SERVER_PASV_BROKER_H

#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>

struct pasv_broker;

/*
 * The awaited connection arrived: hand fd (owned by the callee) to session of worker
 * slot worker, as the answer to request seq.
 */
typedef void pasv_deliver_fn(void *ctx, unsigned worker, uint64_t session, uint32_t seq, int fd);

struct pasv_broker *pasv_broker_new(struct event_base *base, pasv_deliver_fn *deliver, void *ctx);
void pasv_broker_free(struct pasv_broker *b);

/*
 * Session session of worker slot worker waits for one connection from peer to local, on
 * a port of min-max (0-0: any unprivileged port).  Replaces the session's previous wait.
 * Returns 0 with *port set, or -errno (-EADDRINUSE: no port left in the range).
 */
int pasv_broker_open(struct pasv_broker *b, unsigned worker, uint64_t session, uint32_t seq,
		     const struct sockaddr_storage *local, const struct sockaddr_storage *peer,
		     uint16_t min, uint16_t max, uint16_t *port);
/* The session waits no more (seq 0: whatever its request). */
void pasv_broker_close(struct pasv_broker *b, uint64_t session, uint32_t seq);
/* A worker died: forget every wait of its sessions. */
void pasv_broker_forget_worker(struct pasv_broker *b, unsigned worker);
/* Connections refused because no session from their address waited on the port, in all. */
uint64_t pasv_broker_foreign(const struct pasv_broker *b);

#endif
