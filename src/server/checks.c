/*
 * checks.c: start-up checks.  See checks.h.
 *
 * checks_run() gathers what the checks need to know about the host (interface
 * addresses, uid, capabilities); checks_evaluate() decides, without touching the system,
 * so that its rules can be tested on any host.  The checks never change the
 * configuration: a warning is advice, and the server starts either way.
 *
 * Address checks consider IPv4 only where PASV is concerned: PASV (and so pasv_address)
 * serves IPv4 control connections only, and EPSV replies carry no address at all.
 */
#include "server/checks.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/hostport.h"
#include "common/netaddr.h"

#define MAX_IFADDRS 256
#define MSG_MAX 2048

typedef bool addr_pred(const struct sockaddr_storage *a);

static bool is_wildcard(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
	return false;
}

static bool not_loopback(const struct sockaddr_storage *a)
{
	return netaddr_classify(a) != NETADDR_LOOPBACK;
}

static bool reachable(const struct sockaddr_storage *a)
{
	return !netaddr_class_is_internal(netaddr_classify(a));
}

static bool internal_not_loopback(const struct sockaddr_storage *a)
{
	enum netaddr_class c = netaddr_classify(a);
	return netaddr_class_is_internal(c) && c != NETADDR_LOOPBACK;
}

/*
 * Find an address clients can reach the server at that satisfies pred: the listen
 * addresses, with a wildcard standing for the interfaces' addresses ("0.0.0.0" for the
 * IPv4 ones; "[::]" is dual-stack, so for all).  With ipv4_only, IPv6 addresses (other
 * than IPv4-mapped ones) are left out.  The address found goes to *hit.
 */
static bool find_served(const struct config *cfg, const struct checks_host *h, bool ipv4_only,
			addr_pred *pred, struct sockaddr_storage *hit)
{
	for (unsigned i = 0; i < cfg->n_listen; i++) {
		struct sockaddr_storage a = cfg->listen[i];
		hostport_unmap(&a);
		if (!is_wildcard(&a)) {
			if ((!ipv4_only || a.ss_family == AF_INET) && pred(&a)) {
				*hit = a;
				return true;
			}
			continue;
		}
		for (size_t j = 0; h->ifaddrs_known && j < h->n_ifaddrs; j++) {
			struct sockaddr_storage x = h->ifaddrs[j];
			hostport_unmap(&x);
			if ((a.ss_family == AF_INET || ipv4_only) && x.ss_family != AF_INET)
				continue;
			if (pred(&x)) {
				*hit = x;
				return true;
			}
		}
	}
	return false;
}

/* Whether every address the server can be reached at is a loopback address. */
static bool loopback_only(const struct config *cfg, const struct checks_host *h)
{
	struct sockaddr_storage hit;
	if (find_served(cfg, h, false, not_loopback, &hit))
		return false;
	if (h->ifaddrs_known)
		return true;
	for (unsigned i = 0; i < cfg->n_listen; i++) {
		if (is_wildcard(&cfg->listen[i]))
			return false; /* a wildcard on interfaces we could not list */
	}
	return true;
}

static void report_msg(check_report_fn *report, void *ctx, enum check_level level,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void report_msg(check_report_fn *report, void *ctx, enum check_level level,
		       const char *fmt, ...)
{
	struct buf b;
	buf_init(&b, MSG_MAX);
	va_list ap;
	va_start(ap, fmt);
	int rc = buf_vprintf(&b, fmt, ap);
	va_end(ap);
	/* Our own messages are far below MSG_MAX; out of memory loses one message. */
	if (rc == 0)
		report(ctx, level, b.data);
	buf_free(&b);
}

/* 1. A pasv_address clients on the internet cannot reach, on a server they can reach. */
static void check_private_pasv_address(const struct config *cfg, const struct checks_host *h,
				       check_report_fn *report, void *ctx)
{
	struct sockaddr_storage pasv, pub;
	const char *name = cfg->pasv_address;
	if (name[0] == '\0' || netaddr_parse_addr(name, strlen(name), &pasv) < 0)
		return; /* unset, or a host name: not resolved here */
	enum netaddr_class c = netaddr_classify(&pasv);
	if (!netaddr_class_is_internal(c) || !find_served(cfg, h, true, reachable, &pub))
		return;
	char where[INET6_ADDRSTRLEN];
	hostport_ntop(&pub, where, sizeof(where));
	report_msg(report, ctx, CHECK_WARNING,
		   "pasv_address %s is a %s address, but ferryd listens on the public address "
		   "%s: PASV replies tell every client to connect to %s, which clients on the "
		   "internet cannot reach. Set pasv_address to the address they reach this "
		   "server at (with pasv_address_map for clients on the inside network), or "
		   "leave it unset.",
		   name, netaddr_class_name(c), where, name);
}

/* 4. Only internal addresses and no pasv_address: NAT is likely, PASV would mislead. */
static void check_nat_without_pasv_address(const struct config *cfg,
					   const struct checks_host *h,
					   check_report_fn *report, void *ctx)
{
	struct sockaddr_storage any, inside;
	if (cfg->pasv_address[0] != '\0' || find_served(cfg, h, true, reachable, &any) ||
	    !find_served(cfg, h, true, internal_not_loopback, &inside))
		return;
	char where[INET6_ADDRSTRLEN];
	hostport_ntop(&inside, where, sizeof(where));
	report_msg(report, ctx, CHECK_WARNING,
		   "no pasv_address is set and every IPv4 address ferryd listens on is internal "
		   "(%s is %s): if clients reach this server through NAT, PASV replies will carry "
		   "that internal address and their data connections will fail. Set "
		   "pasv_address to the public address (or a host name for it), and forward the "
		   "passive ports to this host; clients that use EPSV are not affected, as EPSV "
		   "replies carry no address.",
		   where, netaddr_class_name(netaddr_classify(&inside)));
}

/* 2. Ports are shared between client addresses, never between sessions of one address. */
static void check_pasv_range(const struct config *cfg, check_report_fn *report, void *ctx)
{
	if (cfg->pasv_ports.min == 0)
		return; /* any port the kernel chooses: thousands */
	unsigned n = (unsigned)cfg->pasv_ports.max - cfg->pasv_ports.min + 1;
	if (n < cfg->max_sessions_per_ip) {
		report_msg(report, ctx, CHECK_WARNING,
			   "pasv_ports %u-%u has %u port%s, fewer than max_sessions_per_ip (%u): "
			   "ferryd shares passive ports between client addresses, but never "
			   "between two sessions of one address, so at most %u session%s of one "
			   "address (all clients behind one NAT gateway count as one) can wait for "
			   "a passive data connection at once, and the next PASV or EPSV gets 425. "
			   "Widen pasv_ports to at least %u ports, or lower max_sessions_per_ip "
			   "to %u.",
			   cfg->pasv_ports.min, cfg->pasv_ports.max, n, n == 1 ? "" : "s",
			   cfg->max_sessions_per_ip, n, n == 1 ? "" : "s", cfg->max_sessions_per_ip, n);
	} else if (n < cfg->max_sessions) {
		report_msg(report, ctx, CHECK_NOTE,
			   "pasv_ports %u-%u has %u port%s, fewer than max_sessions (%u). That is "
			   "enough: ferryd shares passive ports between client addresses, and one "
			   "address has at most max_sessions_per_ip (%u) sessions, which the range "
			   "covers. Keep max_sessions_per_ip at %u or below.",
			   cfg->pasv_ports.min, cfg->pasv_ports.max, n, n == 1 ? "" : "s",
			   cfg->max_sessions, cfg->max_sessions_per_ip, n);
	}
}

/*
 * 3. active_from_port_20 without the means to bind port 20.  master.c starts the port-20
 * helper only when ferryd starts as root, and the helper needs CAP_NET_BIND_SERVICE.
 */
static void check_port_20(const struct config *cfg, const struct checks_host *h,
			  check_report_fn *report, void *ctx)
{
	if (!cfg->active_from_port_20 || (h->root && h->cap_net_bind_service))
		return;
	const char *why, *todo;
	if (!h->root && !h->cap_net_bind_service) {
		why = "ferryd does not run as root, so it cannot bind port 20";
		todo = "Start ferryd as root";
	} else if (!h->root) {
		why = "ferryd does not run as root: it has CAP_NET_BIND_SERVICE, yet it starts "
		      "its port-20 helper only when started as root";
		todo = "Start ferryd as root";
	} else {
		why = "ferryd runs as root without CAP_NET_BIND_SERVICE in its effective "
		      "capability set, so it cannot bind port 20";
		todo = "Start ferryd with that capability (see the service's "
		       "CapabilityBoundingSet)";
	}
	report_msg(report, ctx, CHECK_WARNING,
		   "active_from_port_20 = yes, but %s: active data connections (PORT, EPRT) will "
		   "come from other ports (active_ports, or any port the kernel chooses), which a "
		   "firewall that expects port 20 drops. %s, or set active_from_port_20 = no and "
		   "open active_ports in the firewall.",
		   why, todo);
}

uint64_t checks_fds_needed(const struct config *cfg)
{
	return (uint64_t)cfg->max_sessions * FD_PER_SESSION + FD_RESERVE;
}

unsigned checks_worker_capacity(uint64_t fd_limit)
{
	uint64_t n = fd_limit > FD_RESERVE ? (fd_limit - FD_RESERVE) / FD_PER_SESSION : 1;
	return n < 1 ? 1 : n > UINT_MAX ? UINT_MAX : (unsigned)n;
}

/*
 * A worker takes only the sessions that fit its descriptor limit and the master answers
 * the rest 421.  With "workers = 0" the master starts as many workers as max_sessions needs
 * (up to AUTO_WORKERS_MAX); with a fixed count, workers x capacity is what it can hold.
 */
static void check_fd_limit(const struct config *cfg, const struct checks_host *h,
			   check_report_fn *report, void *ctx)
{
	uint64_t need = checks_fds_needed(cfg);
	if (h->fd_limit == 0 || h->fd_limit >= need)
		return;
	unsigned per_worker = checks_worker_capacity(h->fd_limit);
	unsigned workers = cfg->workers_auto ? AUTO_WORKERS_MAX : cfg->workers;
	uint64_t total = (uint64_t)per_worker * workers;
	if (total >= cfg->max_sessions)
		return;
	report_msg(report, ctx, CHECK_WARNING,
		   "the descriptor limit (RLIMIT_NOFILE) is %llu, below the %llu that max_sessions "
		   "= %u may need (%d a session: control, root, data and file; and %d more): a "
		   "worker holds about %u sessions, %u workers about %llu; beyond that clients get "
		   "421. Raise the limit (LimitNOFILE= in the systemd unit, ulimit -n in a shell), "
		   "raise workers, or lower max_sessions.",
		   (unsigned long long)h->fd_limit, (unsigned long long)need, cfg->max_sessions,
		   FD_PER_SESSION, FD_RESERVE, per_worker, workers, (unsigned long long)total);
}

void checks_evaluate(const struct config *cfg, const struct checks_host *host,
		     check_report_fn *report, void *ctx)
{
	check_fd_limit(cfg, host, report, ctx);
	if (loopback_only(cfg, host))
		return; /* only local clients: the bench, the tests, `make run` */
	check_private_pasv_address(cfg, host, report, ctx);
	check_pasv_range(cfg, report, ctx);
	check_port_20(cfg, host, report, ctx);
	check_nat_without_pasv_address(cfg, host, report, ctx);
}

static bool has_cap_net_bind_service(void)
{
	cap_t caps = cap_get_proc();
	if (caps == NULL)
		return false;
	cap_flag_value_t v = CAP_CLEAR;
	if (cap_get_flag(caps, CAP_NET_BIND_SERVICE, CAP_EFFECTIVE, &v) < 0)
		v = CAP_CLEAR;
	cap_free(caps);
	return v == CAP_SET;
}

/* The IPv4 and IPv6 addresses of interfaces that are up, at most max.  -1 on failure. */
static int list_ifaddrs(struct sockaddr_storage *out, size_t max, size_t *n)
{
	struct ifaddrs *ifa;
	if (getifaddrs(&ifa) < 0)
		return -1;
	*n = 0;
	for (struct ifaddrs *i = ifa; i != NULL && *n < max; i = i->ifa_next) {
		if (i->ifa_addr == NULL || !(i->ifa_flags & IFF_UP))
			continue;
		size_t len = i->ifa_addr->sa_family == AF_INET	? sizeof(struct sockaddr_in)
			     : i->ifa_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								  : 0;
		if (len == 0)
			continue;
		memset(&out[*n], 0, sizeof(out[*n]));
		memcpy(&out[*n], i->ifa_addr, len);
		(*n)++;
	}
	freeifaddrs(ifa);
	return 0;
}

void checks_run(const struct config *cfg, check_report_fn *report, void *ctx)
{
	struct sockaddr_storage *addrs = calloc(MAX_IFADDRS, sizeof(*addrs));
	struct rlimit nofile = { 0, 0 };
	if (getrlimit(RLIMIT_NOFILE, &nofile) < 0 || nofile.rlim_cur == RLIM_INFINITY)
		nofile.rlim_cur = 0;
	struct checks_host h = {
		.fd_limit = (uint64_t)nofile.rlim_cur,
		.root = geteuid() == 0,
		.cap_net_bind_service = has_cap_net_bind_service(),
		.ifaddrs = addrs,
	};
	h.ifaddrs_known = addrs != NULL && list_ifaddrs(addrs, MAX_IFADDRS, &h.n_ifaddrs) == 0;
	checks_evaluate(cfg, &h, report, ctx);
	free(addrs);
}
