/*
 * data.c: making data connections, every way FTP has.
 *
 * Passive (RFC 2428 s.3, RFC 959 s.4.1.1): EPSV, connect to the control connection's
 * server address at the port it names; PASV when EPSV is refused (remembered for the
 * session), and the same address at the port the 227 names: the address in a 227 is the
 * server's word, and a hostile server could name a third host and have us send it a file.
 * When the 227 names another address, we say so once.  Only --pasv-address-from-reply
 * follows it, and then not to an internal address (private, CGNAT, loopback, ...) while
 * the control connection goes to a public one: that is a server behind NAT that does not
 * know its outside address.
 *
 * Active (RFC 2428 s.2, RFC 959 PORT): a listener on the control connection's local
 * address (the port --data-port or --active-ports say), announced by EPRT, or PORT when
 * EPRT is refused.  The connection we accept must come from the server's address: any
 * other is logged and closed (RFC 2577 s.5: a third party racing for the port).
 *
 * Under PROT P the data connection's TLS handshake offers the control connection's session,
 * which servers demand (RFC 4217 s.10.2) so that nobody else can take over the transfer.
 * Everything is recorded in a struct ftp_data_probe when the doctor asks.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "client/ftp_int.h"
#include "common/hostport.h"
#include "common/netaddr.h"

void dconn_init(struct dconn *d)
{
	memset(d, 0, sizeof(*d));
	d->s.fd = -1;
	d->lfd = -1;
}

void data_close(struct ftp *f, struct dconn *d)
{
	stream_close(&d->s, f->o.timeout_ms < 2000 ? f->o.timeout_ms : 2000);
	net_close(&d->lfd);
}

static void record_setup(struct ftp *f, struct ftp_data_probe *rec, int code)
{
	if (rec == NULL || code < 0)
		return;
	rec->setup_code = code;
	ctl_reply_line(f, rec->setup_reply, sizeof(rec->setup_reply));
}

/* A refused EPSV/PASV/EPRT/PORT: no data connection can be made this way. */
static int setup_refused(struct ftp *f, struct dconn *d, int code, const char *what)
{
	int rc = ftp_fail_reply(f, code, false, what);

	if (code < 0 || rc == FTPC_ELOGIN || rc == FTPC_ECONNECT)
		return rc;
	d->no_connection = true;
	return FTPC_ETRANSFER;
}

/* The one warning a session about a 227 we do not follow. */
static void pasv_warn(struct ftp *f, const struct sockaddr_storage *said_ss,
		      enum netaddr_class ac)
{
	char said[INET6_ADDRSTRLEN], real[INET6_ADDRSTRLEN];

	if (f->warned_pasv)
		return;
	f->warned_pasv = true;
	hostport_ntop(said_ss, said, sizeof(said));
	hostport_ntop(&f->peer, real, sizeof(real));
	if (f->o.pasv_address_from_reply)
		ftp_warn(f, "the server's PASV reply names the %s address %s; connecting to "
			 "%s, the server's address, instead", netaddr_class_name(ac), said, real);
	else
		ftp_warn(f, "the server's PASV reply names the %s address %s, not %s, the "
			 "address of the control connection; connecting to %s instead "
			 "(--pasv-address-from-reply follows the reply)", netaddr_class_name(ac),
			 said, real, real);
}

/*
 * Where the data connection of a 227 goes: *target is what the 227 named, and becomes the
 * control connection's address at that port unless the 227 is to be followed.  0.0.0.0
 * means "the address you connected to", so it is no surprise and needs no warning.
 */
static void pasv_target(struct ftp *f, struct sockaddr_storage *target)
{
	enum netaddr_class ac = netaddr_classify(target), pc = netaddr_classify(&f->peer);
	bool behind_nat = netaddr_class_is_internal(ac) && !netaddr_class_is_internal(pc);
	bool follow = f->o.pasv_address_from_reply && ac != NETADDR_UNSPECIFIED && !behind_nat;

	if (follow || hostport_same_host(target, &f->peer))
		return;
	if (ac != NETADDR_UNSPECIFIED) {
		pasv_warn(f, target, ac);
		f->pasv_replaced = true;
	}
	uint16_t port = hostport_get_port(target);
	*target = f->peer;
	hostport_set_port(target, port);
}

/* RFC 2428 s.3 / RFC 959: 229 or 227, and where to connect. */
static int passive_setup(struct ftp *f, enum data_kind kind, bool exact, struct dconn *d,
			 struct ftp_data_probe *rec, struct sockaddr_storage *target)
{
	bool pasv = kind == DK_PASV || (!exact && f->no_epsv);
	int code;

	if (!pasv) {
		code = ctl_cmd(f, "EPSV");
		record_setup(f, rec, code);
		if (code == R_229_EXTENDED_PASSIVE) {
			uint16_t port;
			if (hostport_parse_epsv_reply(ctl_text(f), &port) != 0) {
				d->no_connection = true;
				return ftp_fail(f, FTPC_ETRANSFER, "EPSV: the reply names no port: %s",
						ctl_text(f));
			}
			*target = f->peer;
			hostport_set_port(target, port);
			return FTPC_OK;
		}
		bool unsupported = code == R_500_SYNTAX_ERROR || code == R_502_NOT_IMPLEMENTED ||
				   code == R_522_BAD_PROTOCOL;
		if (exact || !unsupported || f->peer.ss_family != AF_INET)
			return setup_refused(f, d, code, "EPSV");
		if (f->o.verbose)
			fprintf(f->o.log, "* EPSV refused: PASV from now on\n");
		f->no_epsv = true;
	}

	if (f->peer.ss_family != AF_INET) {
		d->no_connection = true;
		return ftp_fail(f, FTPC_ETRANSFER, "PASV works over IPv4 only, and the server "
				"refused EPSV");
	}
	code = ctl_cmd(f, "PASV");
	record_setup(f, rec, code);
	if (code != R_227_PASSIVE)
		return setup_refused(f, d, code, "PASV");
	snprintf(f->last_pasv_reply, sizeof(f->last_pasv_reply), "%s", ctl_text(f));
	if (hostport_parse_pasv_reply(ctl_text(f), target) != 0) {
		d->no_connection = true;
		return ftp_fail(f, FTPC_ETRANSFER, "PASV: the reply names no address: %s",
				ctl_text(f));
	}
	if (rec != NULL)
		rec->announced = *target;
	pasv_target(f, target);
	return FTPC_OK;
}

static int passive(struct ftp *f, enum data_kind kind, bool exact, struct dconn *d,
		   struct ftp_data_probe *rec)
{
	struct sockaddr_storage target;
	int rc = passive_setup(f, kind, exact, d, rec, &target);

	if (rc != FTPC_OK)
		return rc;
	if (rec != NULL) {
		rec->target = target;
		rec->port = hostport_get_port(&target);
	}
	double t0 = net_now();
	int e = net_connect_addr(&target, f->o.timeout_ms, &d->s.fd);
	if (rec != NULL) {
		rec->connect_seconds = net_now() - t0;
		rec->connected = e == 0;
		rec->connect_error = -e;
	}
	char where[80];
	net_describe(&target, where, sizeof(where));
	if (e != 0) {
		d->no_connection = true;
		return ftp_fail(f, FTPC_ETRANSFER, "passive data connection to %s: %s", where,
				e == -ETIMEDOUT ? "timed out" : strerror(-e));
	}
	/* Which mode carried the data: what --mode auto chose, for -v. */
	if (f->o.verbose)
		fprintf(f->o.log, "* data connection: passive (%s) to %s\n",
			kind == DK_PASV || (!exact && f->no_epsv) ? "PASV" : "EPSV", where);
	return FTPC_OK;
}

/* --active-address: numeric, or a name resolved in the control connection's family. */
static int announce_address(struct ftp *f, struct sockaddr_storage *out)
{
	const char *a = f->o.active_address;

	if (a == NULL || *a == '\0') {
		*out = f->local;
		return FTPC_OK;
	}
	if (netaddr_parse_addr(a, strlen(a), out) == 0) {
		hostport_unmap(out);
		return FTPC_OK;
	}
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = f->local.ss_family;
	hints.ai_socktype = SOCK_STREAM;
	int g = getaddrinfo(a, NULL, &hints, &res);
	if (g != 0 || res == NULL || res->ai_addrlen > sizeof(*out))
		return ftp_fail(f, FTPC_EUSAGE, "--active-address %s: %s", a,
				g != 0 ? gai_strerror(g) : "no address");
	memset(out, 0, sizeof(*out));
	memcpy(out, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return FTPC_OK;
}

static int active(struct ftp *f, enum data_kind kind, bool exact, struct dconn *d,
		  struct ftp_data_probe *rec)
{
	struct sockaddr_storage where = f->local, said;
	uint16_t lport = hostport_get_port(&f->local);
	uint16_t min = 0, max = 0, port = 0;
	char desc[80];

	d->active = true;
	if (f->o.data_port == 1) {
		/* RFC 959 s.3.2: by default the client listens on its control port's number + 1. */
		if (lport == 65535)
			return ftp_fail(f, FTPC_ETRANSFER, "--data-port 1: the control port is 65535");
		port = (uint16_t)(lport + 1);
	} else if (f->o.data_port > 1) {
		port = f->o.data_port;
	} else if (f->o.active_min > 0) {
		min = f->o.active_min;
		max = f->o.active_max;
	}
	hostport_set_port(&where, port);
	int e = net_listen(&where, min, max, &d->lfd);
	if (e != 0) {
		d->no_connection = true;
		net_describe(&where, desc, sizeof(desc));
		if (min > 0)
			return ftp_fail(f, FTPC_ETRANSFER, "cannot listen on a port of %u-%u: %s",
					(unsigned)min, (unsigned)max, strerror(-e));
		return ftp_fail(f, FTPC_ETRANSFER, "cannot listen on %s for active mode: %s", desc,
				strerror(-e));
	}
	struct sockaddr_storage bound;
	if ((e = net_names(d->lfd, &bound, NULL)) != 0)
		return ftp_fail(f, FTPC_ETRANSFER, "active mode listener: %s", strerror(-e));
	int rc = announce_address(f, &said);
	if (rc != FTPC_OK)
		return rc;
	hostport_set_port(&said, hostport_get_port(&bound));
	if (rec != NULL)
		rec->port = hostport_get_port(&bound);

	struct buf arg;
	buf_init(&arg, 128);
	bool port_cmd = kind == DK_PORT || (!exact && f->no_eprt);
	int code;
	if (!port_cmd) {
		if (hostport_format_eprt(&arg, &said) != 0) {
			buf_free(&arg);
			return ftp_fail(f, FTPC_EUSAGE, "cannot write EPRT for this address");
		}
		code = ctl_cmd(f, "EPRT %s", arg.data);
		record_setup(f, rec, code);
		bool unsupported = code == R_500_SYNTAX_ERROR || code == R_502_NOT_IMPLEMENTED ||
				   code == R_522_BAD_PROTOCOL;
		if (code / 100 == 2 || exact || !unsupported || said.ss_family != AF_INET) {
			buf_free(&arg);
			return code / 100 == 2 ? FTPC_OK : setup_refused(f, d, code, "EPRT");
		}
		if (f->o.verbose)
			fprintf(f->o.log, "* EPRT refused: PORT from now on\n");
		f->no_eprt = true;
		buf_reset(&arg);
	}
	if (hostport_format_port(&arg, &said) != 0) {
		buf_free(&arg);
		d->no_connection = true;
		return ftp_fail(f, FTPC_ETRANSFER, "PORT works over IPv4 only, and the server "
				"refused EPRT");
	}
	code = ctl_cmd(f, "PORT %s", arg.data);
	buf_free(&arg);
	record_setup(f, rec, code);
	return code / 100 == 2 ? FTPC_OK : setup_refused(f, d, code, "PORT");
}

int data_prepare(struct ftp *f, enum data_kind kind, bool exact, struct dconn *d,
		 struct ftp_data_probe *rec)
{
	if (kind == DK_EPSV || kind == DK_PASV)
		return passive(f, kind, exact, d, rec);
	return active(f, kind, exact, d, rec);
}

/* The server connects to our listener: only the server's own address is taken. */
static int accept_server(struct ftp *f, struct dconn *d, struct ftp_data_probe *rec)
{
	double t0 = net_now(), end = t0 + f->o.timeout_ms / 1000.0;

	for (;;) {
		struct sockaddr_storage from;
		int left = (int)((end - net_now()) * 1000.0);
		int e = left > 0 ? net_accept(d->lfd, left, &d->s.fd, &from) : -ETIMEDOUT;
		if (e != 0) {
			if (rec != NULL) {
				rec->connect_error = -e;
				rec->connect_seconds = net_now() - t0;
			}
			d->no_connection = true;
			if (e == -ETIMEDOUT)
				return ftp_fail(f, FTPC_ETRANSFER, "the server did not connect to our data "
						"port within %d s (does a firewall drop incoming "
						"connections? try --passive)", f->o.timeout_ms / 1000);
			return ftp_fail(f, FTPC_ETRANSFER, "active data connection: %s", strerror(-e));
		}
		hostport_unmap(&from);
		if (hostport_same_host(&from, &f->peer))
			break;
		char who[80];
		net_describe(&from, who, sizeof(who));
		ftp_warn(f, "refused a data connection from %s: not the server's address", who);
		net_close(&d->s.fd);
	}
	net_close(&d->lfd);
	if (f->o.verbose) {
		struct sockaddr_storage from;
		char who[80];
		net_names(d->s.fd, NULL, &from);
		net_describe(&from, who, sizeof(who));
		fprintf(f->o.log, "* data connection: active, from %s\n", who);
	}
	if (rec != NULL) {
		rec->connected = true;
		rec->connect_seconds = net_now() - t0;
		net_names(d->s.fd, NULL, &rec->target);
	}
	return FTPC_OK;
}

int data_start(struct ftp *f, struct dconn *d, struct ftp_data_probe *rec)
{
	if (d->active) {
		int rc = accept_server(f, d, rec);
		if (rc != FTPC_OK)
			return rc;
	}
	if (!f->prot_p)
		return FTPC_OK;
	int rc = ctl_tls_start(f, &d->s, &f->ctl);
	if (rc != FTPC_OK)
		return rc;
	if (rec != NULL) {
		rec->tls = true;
		rec->tls_resumed = tls_stream_resumed(d->s.tls);
	}
	if (f->o.verbose)
		fprintf(f->o.log, "* data connection TLS: %s\n",
			tls_stream_resumed(d->s.tls) ? "session resumed" : "new session (not resumed)");
	return FTPC_OK;
}
