/*
 * master_pasv.c: a worker's passive requests, answered with pasv_broker.c's shared
 * listeners, and the connections it hands over.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/hostport.h"
#include "server/master_int.h"
#include "server/pasv_broker.h"
#include "server/resolver.h"

void answer_pasv(struct master *m, unsigned slot, const struct msg_pasv_open *req)
{
	struct msg_pasv_port rep;
	memset(&rep, 0, sizeof(rep));
	rep.id = req->id;
	rep.seq = req->seq;
	/* A worker waits only for its own sessions, and only for their own clients. */
	const struct conn_rec *r = rec_owned(m, req->id, slot);
	int rc = -EPERM;
	uint16_t port = 0;
	struct sockaddr_storage addr;
	if (r != NULL)
		addr = hostport_addr_get(&r->addr);
	if (r != NULL && hostport_same_host(&addr, &req->peer))
		rc = pasv_broker_open(m->broker, slot, req->id, req->seq, &req->local, &req->peer,
				      req->port_min, req->port_max, &port);
	if (rc < 0)
		rep.err = -rc;
	rep.port = port;
	if (m->pasv_resolver != NULL) {
		struct sockaddr_in sin;
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr = resolver_address(m->pasv_resolver);
		memcpy(&rep.resolved, &sin, sizeof(sin));
	}
	if (send_PASV_PORT(m->slots[slot].ch, &rep, -1) < 0) {
		log_warn("cannot answer the passive request of session %llu: its worker is ending",
			 (unsigned long long)req->id);
		pasv_broker_close(m->broker, req->id, req->seq);
	}
}

void deliver_data(void *ctx, unsigned worker, uint64_t session, uint32_t seq, int fd)
{
	struct master *m = ctx;
	struct msg_pasv_ref msg = { .id = session, .seq = seq };
	struct worker_slot *w = &m->slots[worker];
	if (w->pid == 0 || w->ch == NULL) {
		close(fd);
		return;
	}
	if (send_DATA_CONN(w->ch, &msg, fd) < 0)
		log_warn("cannot hand the data connection of session %llu to its worker: the "
			 "worker is ending",
			 (unsigned long long)session);
}

/* A pasv_address that is a host name gets a resolver; a numeric one needs none. */
bool is_host_name(const char *a)
{
	struct in_addr x;
	return a[0] != '\0' && inet_pton(AF_INET, a, &x) != 1;
}
