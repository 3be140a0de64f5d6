/*
 * doctor_passive.c: the doctor's verdicts on passive mode, PASV (RFC 959, IPv4 only) and
 * EPSV (RFC 2428), each from its own probe: whether the server took the command, whether
 * the address a 227 names is the one we connected to, and whether its port let us in.
 * The fixes name the server's side: the passive port range and the external address
 * (ferryd: pasv_ports, pasv_address), and the firewall in front of them.
 *
 * The PASV probe connects where ferry's transfers would: the control connection's address
 * at the 227's port, or with --pasv-address-from-reply the 227's address.  A mismatch is
 * reported all the same, since clients that follow the 227 go there.
 *
 * What this file must never do: call a PASV that works only because ferry did not follow
 * the address in the 227 a pass (clients that follow it will fail), or blame this machine
 * for a port that the server's side drops.
 */
#include <errno.h>
#include <string.h>

#include "client/doctor_int.h"
#include "common/hostport.h"
#include "common/netaddr.h"
#include "common/reply.h"

/*
 * Why the connection to the passive port failed; true when the cause is on this side
 * (and its fix given), false when it is on the server's side or the way there.
 */
static bool passive_unreached(struct doctor *dr, struct check *c,
			      const struct ftp_data_probe *p, const char *where)
{
	unsigned port = p->port;

	switch (p->connect_error) {
	case ETIMEDOUT:
		check_why(c, "the connection to %s port %u timed out after %.0f s: a firewall "
			     "drops it (the server's, or one on the way)", where, port,
			  dr->probe_ms / 1000.0);
		return false;
	case ECONNREFUSED:
		check_why(c, "the connection to %s port %u was refused: nothing listens there, "
			     "or a firewall rejects it", where, port);
		return false;
	case EHOSTUNREACH:
	case ENETUNREACH:
		check_why(c, "%s cannot be reached from here (%s)", where,
			  strerror(p->connect_error));
		check_fix(c, "this machine needs a route to %s, or the server must announce an "
			     "address it can reach", where);
		return true;
	case EPERM:
	case EACCES:
		check_why(c, "this machine's own firewall forbids the connection to %s port %u",
			  where, port);
		check_fix(c, "this machine's firewall must let connections out to server port %u "
			     "(passive mode)", port);
		return true;
	default:
		check_why(c, "the connection to %s port %u failed: %s", where, port,
			  p->connect_error != 0 ? strerror(p->connect_error) : "no data connection");
		return false;
	}
}

/*
 * Whether we reached the passive port: appends to the explanation and the fix, and
 * returns the verdict.
 */
static enum verdict passive_reach(struct doctor *dr, struct check *c,
				  const struct ftp_data_probe *p, const char *reply)
{
	char where[INET6_ADDRSTRLEN];
	unsigned port = p->port;

	doctor_addr(&p->target, where, sizeof(where));
	if (p->connected) {
		check_why(c, "connected to %s port %u in %.1f ms", where, port,
			  p->connect_seconds * 1000.0);
		if (port >= 1024)
			return V_PASS;
		check_why(c, "; but port %u is below 1024, where firewalls expect services", port);
		check_fix(c, "give the server a passive port range above 1023 (ferryd: pasv_ports "
			     "= 50000-50100)");
		return V_WARN;
	}
	if (!passive_unreached(dr, c, p, where))
		check_fix(c, "server port %u (the port in the %s reply; open the whole passive "
			     "range, ferryd: pasv_ports) must be open from anywhere for passive mode",
			  port, reply);
	return V_FAIL;
}

/* A PASV or EPSV the server refused. */
static void passive_refused(struct doctor *dr, struct fam *fm, struct check *c,
			    const struct ftp_data_probe *p, const char *cmd, bool other_works)
{
	bool epsv = strcmp(cmd, "EPSV") == 0;
	bool ipv6_epsv = epsv && fm->family == AF_INET6;

	if (probe_unanswered(dr, c, p, cmd))
		return;
	check_why(c, "the server refused %s: %s", cmd, p->setup_reply);
	if (p->setup_code == R_425_CANT_OPEN_DATA) {
		check_fix(c, "the server has no passive port left: widen its passive port range "
			     "(ferryd: pasv_ports)");
		check_end(dr, V_FAIL);
		return;
	}
	if (epsv)
		check_fix(c, "offer EPSV (RFC 2428): it names no address, so NAT cannot get it "
			     "wrong%s",
			  fm->family == AF_INET6 ? ", and it is IPv6's only passive mode" : "");
	else
		check_fix(c, "offer PASV: IPv4 clients without EPSV need it for passive mode");
	if (other_works && !ipv6_epsv)
		check_why(c, " (%s works)", epsv ? "PASV" : "EPSV");
	check_end(dr, other_works && !ipv6_epsv ? V_WARN : V_FAIL);
}

/* Docker's and Podman's default networks: private, and a sign of a server in a container. */
static bool container_address(const struct sockaddr_storage *a)
{
	static const char *const nets[] = { "172.17.0.0/16", "10.88.0.0/16" };

	for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
		struct netaddr_net n;
		if (netaddr_parse_net(nets[i], strlen(nets[i]), &n) == 0 && netaddr_in_net(a, &n))
			return true;
	}
	return false;
}

/* The 227 named 0.0.0.0: "the address you connected to", which many clients do not take. */
static void pasv_unspecified(struct doctor *dr, struct fam *fm, struct check *c,
			     const struct ftp_data_probe *p)
{
	char said[INET6_ADDRSTRLEN], peer[INET6_ADDRSTRLEN];

	doctor_addr(&p->announced, said, sizeof(said));
	doctor_addr(&fm->si.peer, peer, sizeof(peer));
	check_why(c, "the 227 names %s (\"the address you connected to\"), which ferry "
		     "understands but many clients do not; ", said);
	enum verdict v = passive_reach(dr, c, p, "227");
	check_fix(c, "%sset the server's passive (external) address to %s (ferryd: pasv_address)",
		  v == V_FAIL ? "; and " : "", peer);
	check_end(dr, v == V_FAIL ? V_FAIL : V_WARN);
}

/*
 * We did not follow the 227 (ferry connects to the control connection's address unless
 * --pasv-address-from-reply): where we connected, and whether it answered.  That it
 * answered vouches for the port only; clients that follow the 227 go elsewhere.
 */
static void pasv_not_followed(struct doctor *dr, struct check *c, const struct ftp_data_probe *p)
{
	char target[INET6_ADDRSTRLEN];

	doctor_addr(&p->target, target, sizeof(target));
	if (p->connected) {
		check_why(c, "; ferry connected to %s instead (it answered), clients that follow "
			     "the 227 will not", target);
		return;
	}
	check_why(c, "; ferry connects to %s instead, and ", target);
	(void)passive_reach(dr, c, p, "227");
	check_fix(c, "; and ");
}

/* The 227 named another address than the one we connected to. */
static void pasv_elsewhere(struct doctor *dr, struct fam *fm, struct check *c,
			   const struct ftp_data_probe *p)
{
	char said[INET6_ADDRSTRLEN], peer[INET6_ADDRSTRLEN];
	enum netaddr_class ac = netaddr_classify(&p->announced), pc = netaddr_classify(&fm->si.peer);
	bool internal = netaddr_class_is_internal(ac) && !netaddr_class_is_internal(pc);
	bool followed = hostport_same_host(&p->announced, &p->target);

	if (ac == NETADDR_UNSPECIFIED) {
		pasv_unspecified(dr, fm, c, p);
		return;
	}
	doctor_addr(&p->announced, said, sizeof(said));
	doctor_addr(&fm->si.peer, peer, sizeof(peer));
	check_why(c, "the 227 names the %s address %s%s, not %s, the address we connected to",
		  netaddr_class_name(ac), said,
		  container_address(&p->announced) ? " (a container's network)" : "", peer);
	if (internal)
		check_why(c, ": clients outside its network cannot reach it");
	if (!followed) {
		pasv_not_followed(dr, c, p);
	} else if (p->connected) {
		check_why(c, "; it answered, but firewalls and clients that expect the control "
			     "connection's address may not allow it");
	} else {
		check_why(c, "; ");
		(void)passive_reach(dr, c, p, "227");
		c->fix[0] = '\0';
	}
	check_fix(c, "set the server's passive (external) address to %s (ferryd: pasv_address = "
		     "%s)%s", peer, peer, internal ? ", and forward its passive ports to the server" : "");
	check_end(dr, !followed || internal || !p->connected ? V_FAIL : V_WARN);
}

/* The details of a 227: what it named, and where we connected. */
static void pasv_details(struct check *c, const struct fam *fm, const struct ftp_data_probe *p)
{
	detail_addr(c, "announced_address", &p->announced);
	detail_int(c, "announced_port", hostport_get_port(&p->announced));
	detail_str(c, "announced_class", "%s", netaddr_class_name(netaddr_classify(&p->announced)));
	detail_addr(c, "control_address", &fm->si.peer);
	detail_addr(c, "connected_to", &p->target);
	detail_bool(c, "replaced", !hostport_same_host(&p->announced, &p->target));
}

void check_pasv(struct doctor *dr, struct fam *fm)
{
	struct check *c = check_begin(dr, fm->family, "pasv", "PASV", "PASV");
	const struct probe *pr = &fm->pr[DK_PASV];
	const struct ftp_data_probe *p = &pr->p;

	if (!probe_checkable(dr, fm, c, pr, "PASV is for IPv4 only; over IPv6 passive mode is "
			     "EPSV (RFC 2428)"))
		return;
	if (p->setup_code != R_227_PASSIVE) {
		passive_refused(dr, fm, c, p, "PASV", probe_connected(&fm->pr[DK_EPSV]));
		return;
	}
	pasv_details(c, fm, p);
	if (!hostport_same_host(&p->announced, &fm->si.peer)) {
		pasv_elsewhere(dr, fm, c, p);
		return;
	}
	char said[INET6_ADDRSTRLEN];
	doctor_addr(&p->announced, said, sizeof(said));
	check_why(c, "the 227 names %s port %u, the address we connected to; ", said,
		  (unsigned)hostport_get_port(&p->announced));
	check_end(dr, passive_reach(dr, c, p, "227"));
}

void check_epsv(struct doctor *dr, struct fam *fm)
{
	struct check *c = check_begin(dr, fm->family, "epsv", "EPSV", "EPSV");
	const struct probe *pr = &fm->pr[DK_EPSV];
	const struct ftp_data_probe *p = &pr->p;

	if (!probe_checkable(dr, fm, c, pr, NULL))
		return;
	if (p->setup_code != R_229_EXTENDED_PASSIVE) {
		passive_refused(dr, fm, c, p, "EPSV", probe_connected(&fm->pr[DK_PASV]));
		return;
	}
	check_why(c, "the 229 names port %u; ", (unsigned)p->port);
	check_end(dr, passive_reach(dr, c, p, "229"));
}
