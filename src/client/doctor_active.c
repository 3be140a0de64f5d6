/*
 * doctor_active.c: the doctor's verdicts on active mode, EPRT (RFC 2428) and PORT
 * (RFC 959, IPv4 only), each from its own probe: whether the server took the address we
 * named, and whether it connected back to us in time.  The fixes name this machine's
 * side (its firewall, its NAT: --active-address, --active-ports) or the server's (its
 * firewall letting port 20 or its active_ports out), as the evidence says.
 *
 * What this file must never do: blame the server for a connection that this machine's
 * side drops, or take a server that is still trying to connect when our wait ends (the
 * session is lost then) for one that refused the address: that is "blocked".
 */
#include <errno.h>
#include <string.h>

#include "client/doctor_int.h"
#include "common/hostport.h"
#include "common/netaddr.h"
#include "common/reply.h"

static bool setup_unsupported(const struct ftp_data_probe *p)
{
	return p->setup_code == R_502_NOT_IMPLEMENTED || p->setup_code == R_504_BAD_PARAMETER ||
	       p->setup_code == R_522_BAD_PROTOCOL || text_has(p->setup_reply, "not implemented") ||
	       text_has(p->setup_reply, "unknown command") ||
	       text_has(p->setup_reply, "not understood") ||
	       text_has(p->setup_reply, "unrecognized");
}

/* Whether this machine looks to be behind NAT: an internal address towards a public server. */
static bool behind_nat(const struct fam *fm)
{
	return netaddr_class_is_internal(netaddr_classify(&fm->si.local)) &&
	       !netaddr_class_is_internal(netaddr_classify(&fm->si.peer));
}

/* The kind of address this machine has ("private", "public", ...). */
static const char *local_class(const struct fam *fm)
{
	return netaddr_class_name(netaddr_classify(&fm->si.local));
}

/* Nothing came in: this machine's firewall or NAT, or the server's way out. */
static void blocked_here(struct fam *fm, struct check *c, unsigned port)
{
	check_why(c, ": something drops incoming connections on this side (this machine's "
		     "firewall or NAT), or the server cannot connect out");
	if (!behind_nat(fm)) {
		check_fix(c, "this machine's firewall or NAT must accept incoming connections on "
			     "the data port (here %u), or use passive mode; if it does, the server's "
			     "firewall must let port 20 (or its active_ports) connect out to client "
			     "ports > 1023", port);
		return;
	}
	char local[INET6_ADDRSTRLEN];
	doctor_addr(&fm->si.local, local, sizeof(local));
	check_why(c, "; this machine's address %s is %s: it is behind NAT", local, local_class(fm));
	check_fix(c, "announce the public address with --active-address and forward the data "
		     "port (--active-ports) to this machine, or use passive mode");
}

/* The server could not connect back to us (425, or our wait ended first). */
static void active_blocked(struct doctor *dr, struct fam *fm, struct check *c,
			   const struct probe *pr, const char *cmd)
{
	const struct ftp_data_probe *p = &pr->p;
	const char *reply = p->final_code == R_425_CANT_OPEN_DATA ? p->final_reply
			  : p->setup_code == R_425_CANT_OPEN_DATA ? p->setup_reply : "";
	unsigned port = p->port;

	if (pr->lost)
		check_why(c, "the server did not answer within %.0f s after %s: it is probably "
			     "still trying to connect to our port %u", dr->probe_ms / 1000.0, cmd,
			  port);
	else if (reply[0] != '\0')
		check_why(c, "the server could not connect back to our port %u (%s)", port, reply);
	else
		check_why(c, "the server did not connect to our port %u within %.0f s", port,
			  dr->probe_ms / 1000.0);
	if (text_has(reply, "not permitted") || text_has(reply, "permission denied")) {
		check_why(c, ": the server's own firewall forbids it to connect out");
		check_fix(c, "the server's firewall must let port 20 (or its active_ports) connect "
			     "out to client ports > 1023");
	} else {
		blocked_here(fm, c, port);
	}
	check_end(dr, V_FAIL);
}

/* The server would not take EPRT or PORT: not supported, or not the address we named. */
static void active_refused(struct doctor *dr, struct fam *fm, struct check *c,
			   const struct ftp_data_probe *p, enum data_kind k)
{
	const char *cmd = kind_names[k];
	bool other_works = probe_connected(&fm->pr[k == DK_EPRT ? DK_PORT : DK_EPRT]);

	if (probe_unanswered(dr, c, p, cmd))
		return;
	if (setup_unsupported(p)) {
		check_why(c, "the server does not support %s: %s%s", cmd, p->setup_reply,
			  other_works ? (k == DK_EPRT ? " (PORT works)" : " (EPRT works)") : "");
		check_fix(c, "%s", k == DK_EPRT ? "offer EPRT (RFC 2428): IPv6 clients need it "
						  "for active mode" : "offer PORT for active mode");
		bool needed = k == DK_EPRT ? fm->family == AF_INET6 : !other_works;
		check_end(dr, other_works && !needed ? V_WARN : V_FAIL);
		return;
	}
	char local[INET6_ADDRSTRLEN];
	doctor_addr(&fm->si.local, local, sizeof(local));
	check_why(c, "the server refused the address we named, %s port %u: %s", local,
		  (unsigned)p->port, p->setup_reply);
	if (behind_nat(fm))
		check_why(c, " (%s is %s: a NAT between us changes it)", local, local_class(fm));
	check_fix(c, "announce the address the server sees with --active-address (and forward "
		     "the data port to this machine), or use passive mode");
	check_end(dr, V_FAIL);
}

/* The server took the address: did it connect, and what did NLST say? */
static void active_result(struct doctor *dr, struct fam *fm, struct check *c,
			  const struct probe *pr)
{
	const struct ftp_data_probe *p = &pr->p;

	if (p->connected) {
		char from[INET6_ADDRSTRLEN];
		doctor_addr(&p->target, from, sizeof(from));
		detail_str(c, "server_address", "%s", from);
		detail_int(c, "server_port", hostport_get_port(&p->target));
		check_why(c, "the server connected to our port %u from %s port %u in %.1f ms",
			  (unsigned)p->port, from, (unsigned)hostport_get_port(&p->target),
			  p->connect_seconds * 1000.0);
		check_end(dr, V_PASS);
	} else if (pr->lost || p->prelim_code == R_425_CANT_OPEN_DATA ||
		   p->final_code == R_425_CANT_OPEN_DATA || p->connect_error == ETIMEDOUT) {
		active_blocked(dr, fm, c, pr, "NLST");
	} else if (p->prelim_code / 100 == 4 || p->prelim_code / 100 == 5) {
		check_skip(dr, "not checked: the server answered NLST with %s before any data "
			       "connection", p->final_reply[0] ? p->final_reply : "an error");
	} else {
		check_why(c, "no data connection: %s",
			  p->final_reply[0] ? p->final_reply : p->setup_reply);
		check_fix(c, "this machine's firewall or NAT must accept incoming connections on the "
			     "data port (here %u), or use passive mode", (unsigned)p->port);
		check_end(dr, V_FAIL);
	}
}

void check_active(struct doctor *dr, struct fam *fm, enum data_kind k)
{
	const char *cmd = kind_names[k];
	struct check *c = check_begin(dr, fm->family, k == DK_EPRT ? "eprt" : "port", cmd, cmd);
	const struct probe *pr = &fm->pr[k];
	const struct ftp_data_probe *p = &pr->p;

	if (!probe_checkable(dr, fm, c, pr, k == DK_PORT ? "PORT is for IPv4 only; over IPv6 "
			     "active mode is EPRT (RFC 2428)" : NULL))
		return;
	detail_addr(c, "local_address", &fm->si.local);
	if (p->setup_code == R_425_CANT_OPEN_DATA)
		active_blocked(dr, fm, c, pr, cmd);   /* servers that connect at PORT time */
	else if (p->setup_code / 100 != 2)
		active_refused(dr, fm, c, p, k);
	else
		active_result(dr, fm, c, pr);
}
