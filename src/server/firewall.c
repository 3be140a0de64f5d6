/*
 * firewall.c: the rules "ferryd firewall" prints.  See firewall.h.
 *
 * A configuration first becomes a plan: the FTP channels as rules of one model (chain,
 * server ports, client ports, whether the packets open a connection, why).  Each output
 * format then renders the same plan, so nft, iptables and the text table cannot drift
 * apart.  On the server's side the channels are:
 *
 *   control   in:  to each listen and listen_implicit_tls port, from any client port;
 *             out: from each of them, to client ports above 1023 (the replies);
 *   active    out: from port 20 (or active_ports) to client ports above 1023, which the
 *                  server connects to (PORT and EPRT refuse lower ports);
 *             in:  to those server ports, from client ports above 1023;
 *   passive   in:  to pasv_ports, from any client port, which the client connects to;
 *             out: from pasv_ports, to client ports above 1023.
 *
 * By default the plan is rendered as chains of ACCEPT rules for an existing firewall to
 * jump to: nothing in them drops, so they cannot cut off a connection that the firewall
 * let through before (SSH above all).  --standalone renders it as a whole rule set with
 * drop policies, which accepts, besides FTP, the packets of established connections,
 * loopback, ICMP, and the kept ports (SSH's unless --no-ssh).
 *
 * Comments on rules must stay below 128 bytes: nft refuses longer ones.  Nothing here
 * does I/O but firewall_main().
 */
#include "server/firewall.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/hostport.h"
#include "common/num.h"

#define RULE_COMMENT_MAX 128 /* nft's limit, the NUL included */
#define WRAP_WIDTH 88
#define OUTPUT_MAX (1u << 20)

enum fw_chain { FW_IN, FW_OUT };
enum fw_chan { CH_CONTROL, CH_IMPLICIT_TLS, CH_ACTIVE, CH_PASSIVE, CH_KEEP };

/* A range of TCP ports; min == 0 means any port. */
struct fw_ports {
	uint16_t min, max;
};

static const struct fw_ports ANY_PORT = { 0, 0 };
static const struct fw_ports UNPRIVILEGED = { 1024, 65535 };

struct fw_rule {
	enum fw_chan chan;
	enum fw_chain chain;
	struct fw_ports server, client;
	bool opens;      /* these packets open the connection (stateful: ct state new) */
	const char *why; /* a sentence without its capital and full stop */
};

#define MAX_RULES (2 * (2 * CONFIG_MAX_LISTEN + FW_MAX_KEEP + 1) + 4)

/* TCP ports, each once, in the order they were first named. */
struct fw_port_list {
	uint16_t port[CONFIG_MAX_LISTEN + FW_MAX_KEEP + 1];
	size_t n;
};

struct fw_plan {
	struct fw_rule rule[MAX_RULES];
	size_t n_rules;
	struct fw_port_list control;  /* listen ports */
	struct fw_port_list tls;      /* listen_implicit_tls ports not already in control */
	struct fw_port_list keep;     /* standalone only: ports kept open, SSH's first */
	struct fw_ports active, passive;
};

/* The chains of the default, additive output: the firewall's own chains jump to them. */
#define CHAIN_IN "ferryd_input"
#define CHAIN_OUT "ferryd_output"

/* Writes into a buffer and remembers the first failure, so callers need not check. */
struct out {
	struct buf *b;
	int rc;
	bool paragraphs; /* a paragraph was written: the next one needs a separator */
};

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_printf(struct out *o, const char *fmt, ...)
{
	if (o->rc < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	o->rc = buf_vprintf(o->b, fmt, ap);
	va_end(ap);
}

static void out_str(struct out *o, const char *s)
{
	if (o->rc >= 0)
		o->rc = buf_append_str(o->b, s);
}

int firewall_parse_format(const char *s, enum fw_format *out)
{
	static const struct {
		const char *name;
		enum fw_format f;
	} names[] = {
		{ "nft", FW_NFT },
		{ "iptables", FW_IPTABLES },
		{ "ip6tables", FW_IP6TABLES },
		{ "text", FW_TEXT },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].f;
			return 0;
		}
	}
	return FERR_INVALID;
}

int firewall_parse_modes(const char *s, enum fw_modes *out)
{
	if (strcmp(s, "active") == 0)
		*out = FW_ACTIVE_ONLY;
	else if (strcmp(s, "passive") == 0)
		*out = FW_PASSIVE_ONLY;
	else
		return FERR_INVALID;
	return 0;
}

/* -- the plan -------------------------------------------------------------------------- */

static void add_rule(struct fw_plan *p, enum fw_chan chan, enum fw_chain chain,
		     struct fw_ports server, struct fw_ports client, bool opens, const char *why)
{
	FERR_ASSERT(p->n_rules < MAX_RULES);
	p->rule[p->n_rules++] = (struct fw_rule){ chan, chain, server, client, opens, why };
}

static struct fw_ports range_or_unprivileged(struct port_range r)
{
	return r.min != 0 ? (struct fw_ports){ r.min, r.max } : UNPRIVILEGED;
}

static bool port_listed(const struct fw_port_list *l, uint16_t port)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->port[i] == port)
			return true;
	}
	return false;
}

/* Add port to l unless l or also (may be NULL) holds it already. */
static void port_add_once(struct fw_port_list *l, const struct fw_port_list *also, uint16_t port)
{
	if (port_listed(l, port) || (also != NULL && port_listed(also, port)))
		return;
	FERR_ASSERT(l->n < sizeof(l->port) / sizeof(l->port[0]));
	l->port[l->n++] = port;
}

static void listen_ports(const struct config *cfg, struct fw_plan *p)
{
	for (unsigned i = 0; i < cfg->n_listen; i++)
		port_add_once(&p->control, NULL, hostport_get_port(&cfg->listen[i]));
	/* A port that is also a plain listener's already has its rules. */
	for (unsigned i = 0; i < cfg->n_listen_tls; i++)
		port_add_once(&p->tls, &p->control, hostport_get_port(&cfg->listen_tls[i]));
}

static void add_both_ways(struct fw_plan *p, enum fw_chan chan, uint16_t port,
			  struct fw_ports client_out, const char *why_in, const char *why_out)
{
	struct fw_ports server = { port, port };
	add_rule(p, chan, FW_IN, server, ANY_PORT, true, why_in);
	add_rule(p, chan, FW_OUT, server, client_out, false, why_out);
}

static void make_plan(const struct config *cfg, const struct fw_options *opt, struct fw_plan *p)
{
	enum fw_modes modes = opt->modes;
	memset(p, 0, sizeof(*p));
	listen_ports(cfg, p);
	if (opt->standalone) {
		if (opt->keep_ssh)
			port_add_once(&p->keep, NULL, FW_SSH_PORT);
		for (size_t i = 0; i < opt->n_keep; i++)
			port_add_once(&p->keep, NULL, opt->keep[i]);
	}
	p->active = cfg->active_from_port_20 ? (struct fw_ports){ 20, 20 }
					      : range_or_unprivileged(cfg->active_ports);
	p->passive = range_or_unprivileged(cfg->pasv_ports);

	for (size_t i = 0; i < p->control.n; i++)
		add_both_ways(p, CH_CONTROL, p->control.port[i], UNPRIVILEGED,
			      "clients open the control connection from any port",
			      "the server's replies go back to the client's port above 1023");
	for (size_t i = 0; i < p->tls.n; i++)
		add_both_ways(p, CH_IMPLICIT_TLS, p->tls.port[i], UNPRIVILEGED,
			      "clients open the TLS control connection from any port",
			      "the server's replies go back to the client's port above 1023");
	if (modes != FW_PASSIVE_ONLY) {
		add_rule(p, CH_ACTIVE, FW_OUT, p->active, UNPRIVILEGED, true,
			 "the server connects to the port above 1023 the client named in PORT "
			 "or EPRT");
		add_rule(p, CH_ACTIVE, FW_IN, p->active, UNPRIVILEGED, false,
			 "the client's side of a data connection that the server opened");
	}
	if (modes != FW_ACTIVE_ONLY) {
		add_rule(p, CH_PASSIVE, FW_IN, p->passive, ANY_PORT, true,
			 "clients connect to the port named in the 227 or 229 reply");
		add_rule(p, CH_PASSIVE, FW_OUT, p->passive, UNPRIVILEGED, false,
			 "the server's side of a data connection that the client opened");
	}
	for (size_t i = 0; i < p->keep.n; i++)
		add_both_ways(p, CH_KEEP, p->keep.port[i], ANY_PORT,
			      "not FTP; --standalone keeps it open (SSH by default) so that these "
			      "rules cut no one off",
			      "the replies of the service kept open");
}

/* -- words shared by every format --------------------------------------------------------- */

static const char *chan_label(enum fw_chan c)
{
	switch (c) {
	case CH_CONTROL:
		return "FTP control";
	case CH_IMPLICIT_TLS:
		return "FTPS implicit TLS control";
	case CH_KEEP:
		return "Kept open";
	case CH_ACTIVE:
		return "FTP active data";
	case CH_PASSIVE:
		return "FTP passive data";
	}
	FERR_BUG("unknown channel");
}

/* "21", "50000-50100", or sep between the bounds ("50000:50100" for iptables). */
static void fmt_ports(char *dst, size_t n, struct fw_ports p, char sep)
{
	if (p.min == 0)
		snprintf(dst, n, "any");
	else if (p.min == p.max)
		snprintf(dst, n, "%u", p.min);
	else
		snprintf(dst, n, "%u%c%u", p.min, sep, p.max);
}

/* The rule's comment: "FTP control (port 21): clients open ... any port." */
static void rule_comment(char *dst, size_t n, const struct fw_rule *r)
{
	char ports[16];
	fmt_ports(ports, sizeof(ports), r->server, '-');
	int len = snprintf(dst, n, "%s (port%s %s): %s.", chan_label(r->chan),
			   r->server.min == r->server.max ? "" : "s", ports, r->why);
	/* The strings are ours: one that does not fit is a bug, not input. */
	FERR_ASSERT(len > 0 && (size_t)len < n);
}

/* Append text as lines of at most WRAP_WIDTH columns, each starting with prefix. */
static void wrap(struct out *o, const char *prefix, const char *text)
{
	size_t plen = strlen(prefix), col = 0;
	const char *p = text;
	while (*p != '\0') {
		size_t w = strcspn(p, " ");
		if (col > 0 && col + 1 + w > WRAP_WIDTH) {
			out_str(o, "\n");
			col = 0;
		}
		if (col == 0) {
			out_str(o, prefix);
			col = plen;
		} else {
			out_str(o, " ");
			col++;
		}
		out_printf(o, "%.*s", (int)w, p);
		col += w;
		p += w;
		while (*p == ' ')
			p++;
	}
	if (col > 0)
		out_str(o, "\n");
}

static void para(struct out *o, const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One paragraph, wrapped, after an empty comment line if it is not the first. */
static void para(struct out *o, const char *prefix, const char *fmt, ...)
{
	/* Room for the longest path and host name a configuration can hold. */
	struct buf text;
	buf_init(&text, 2 * CONFIG_STR_MAX);
	va_list ap;
	va_start(ap, fmt);
	int rc = buf_vprintf(&text, fmt, ap);
	va_end(ap);
	if (rc < 0) {
		buf_free(&text);
		if (o->rc >= 0)
			o->rc = rc;
		return;
	}
	if (o->paragraphs) {
		/* The prefix without its trailing space: "#", or nothing. */
		size_t plen = strlen(prefix);
		while (plen > 0 && prefix[plen - 1] == ' ')
			plen--;
		out_printf(o, "%.*s\n", (int)plen, prefix);
	}
	o->paragraphs = true;
	/* A file name may hold a newline, which would end the comment: no control bytes. */
	for (size_t i = 0; i < text.len; i++) {
		if ((unsigned char)text.data[i] < 0x20 || text.data[i] == 0x7f)
			text.data[i] = '?';
	}
	wrap(o, prefix, text.data);
	buf_free(&text);
}

static const char *format_name(enum fw_format f)
{
	switch (f) {
	case FW_NFT:
		return "nft";
	case FW_IPTABLES:
		return "iptables";
	case FW_IP6TABLES:
		return "ip6tables";
	case FW_TEXT:
		return "text";
	}
	FERR_BUG("unknown format");
}

static bool pasv_address_is_name(const struct config *cfg)
{
	struct in_addr a;
	return cfg->pasv_address[0] != '\0' && inet_pton(AF_INET, cfg->pasv_address, &a) != 1;
}

/* "port 21", "ports 21 and 990", "ports 21, 2121 and 990". */
static void fmt_port_list(char *dst, size_t size, const struct fw_port_list *l)
{
	size_t used = 0;
	int n = snprintf(dst, size, "port%s ", l->n > 1 ? "s" : "");
	for (size_t i = 0; n > 0 && (size_t)n < size - used && i < l->n; i++) {
		used += (size_t)n;
		const char *sep = i == 0 ? "" : (i + 1 == l->n ? " and " : ", ");
		n = snprintf(dst + used, size - used, "%s%u", sep, l->port[i]);
	}
	/* Room for every port a configuration can hold: a shortfall is a bug. */
	FERR_ASSERT(n > 0 && (size_t)n < size - used);
}

/* What the configuration opens, and what it needs that the rules do not give. */
static void config_paragraphs(struct out *o, const char *pfx, const struct config *cfg,
			      const struct fw_options *opt, const struct fw_plan *p)
{
	char list[(CONFIG_MAX_LISTEN + FW_MAX_KEEP + 1) * 8];
	if (cfg->config_file[0] != '\0')
		para(o, pfx, "Configuration file: %s (options on the command line override it).",
		     cfg->config_file);
	fmt_port_list(list, sizeof(list), &p->control);
	para(o, pfx, "Control connections: %s (listen).", list);
	if (cfg->listen_default)
		para(o, pfx,
		     "listen is not set: ferryd then listens on port 21 when it starts as root "
		     "and on port 2121 otherwise. These rules use port %u because this command "
		     "ran %s; set listen to make them independent of that.",
		     p->control.port[0], geteuid() == 0 ? "as root" : "without root");
	if (p->tls.n > 0) {
		fmt_port_list(list, sizeof(list), &p->tls);
		para(o, pfx, "Implicit FTPS control connections (TLS from the first byte): %s "
			     "(listen_implicit_tls).", list);
	}
	if (opt->standalone && p->keep.n > 0) {
		fmt_port_list(list, sizeof(list), &p->keep);
		para(o, pfx, "Kept open besides FTP, to connections from anywhere: %s.%s", list,
		     opt->keep_ssh ? " Port 22 is SSH's: --no-ssh closes it, and --keep-port N "
				     "keeps another port open." : "");
	} else if (opt->standalone) {
		para(o, pfx,
		     "No port is kept open besides FTP (--no-ssh): once these rules are loaded, "
		     "new SSH connections to this host are dropped.");
	}

	char ports[16];
	if (opt->modes != FW_ACTIVE_ONLY) {
		if (cfg->pasv_ports.min != 0) {
			fmt_ports(ports, sizeof(ports), p->passive, '-');
			para(o, pfx, "Passive data connections (PASV, EPSV): ports %s (pasv_ports).",
			     ports);
		} else {
			para(o, pfx,
			     "pasv_ports is not set, so passive data connections (PASV, EPSV) may "
			     "use any port from 1024 to 65535 that the kernel chooses, and the "
			     "passive rules open all of them to clients. Set pasv_ports, for "
			     "example 50000-50100, to open only that range.");
		}
	}
	if (opt->modes != FW_PASSIVE_ONLY) {
		if (cfg->active_from_port_20) {
			para(o, pfx,
			     "Active data connections (PORT, EPRT) come from port 20 "
			     "(active_from_port_20 = yes). ferryd binds port 20 only when it starts "
			     "as root; otherwise, or when binding port 20 fails, they come from "
			     "another port, which these rules do not open.");
		} else if (cfg->active_ports.min != 0) {
			fmt_ports(ports, sizeof(ports), p->active, '-');
			para(o, pfx,
			     "Active data connections (PORT, EPRT) come from ports %s "
			     "(active_ports).",
			     ports);
		} else {
			para(o, pfx,
			     "active_ports is not set and active_from_port_20 is no, so active "
			     "data connections (PORT, EPRT) come from any port the kernel chooses, "
			     "and the active rules use ports 1024 to 65535. Set active_ports to "
			     "narrow that.");
		}
	}
	if (opt->modes == FW_ACTIVE_ONLY)
		para(o, pfx,
		     "Only active mode is opened (--only active): passive data connections "
		     "(PASV, EPSV) will fail.");
	if (opt->modes == FW_PASSIVE_ONLY)
		para(o, pfx,
		     "Only passive mode is opened (--only passive): active data connections "
		     "(PORT, EPRT) will fail.");
	if (cfg->pasv_address[0] != '\0' && opt->modes != FW_ACTIVE_ONLY) {
		fmt_ports(ports, sizeof(ports), p->passive, '-');
		para(o, pfx,
		     "PASV replies announce pasv_address (%s). If that is the address of a NAT "
		     "gateway, the gateway must forward the control port%s and the passive "
		     "ports (%s) to this host; these rules are for this host, not for the "
		     "gateway.",
		     cfg->pasv_address, p->control.n + p->tls.n > 1 ? "s" : "", ports);
	}
	if (pasv_address_is_name(cfg))
		para(o, pfx,
		     "pasv_address is a host name, which ferryd resolves: that needs DNS, which "
		     "these rules do not allow. Add rules for your name servers.");
}

/* The command line that prints the same rules again. */
static void command_line(struct out *o, const char *pfx, const struct fw_options *opt)
{
	out_printf(o, "%s    ferryd firewall --format %s%s%s%s%s", pfx, format_name(opt->format),
		   opt->stateful ? " --stateful" : "",
		   opt->modes == FW_ACTIVE_ONLY ? " --only active"
		   : opt->modes == FW_PASSIVE_ONLY ? " --only passive" : "",
		   opt->standalone ? " --standalone" : "",
		   opt->standalone && !opt->keep_ssh ? " --no-ssh" : "");
	for (size_t i = 0; opt->standalone && i < opt->n_keep; i++)
		out_printf(o, " --keep-port %u", opt->keep[i]);
	out_str(o, "\n");
}

/* Lines printed as they are (an example to copy), each after the prefix. */
static void verbatim(struct out *o, const char *pfx, const char *const *lines, size_t n)
{
	out_printf(o, "%.*s\n", (int)strcspn(pfx, " "), pfx);
	for (size_t i = 0; i < n; i++)
		out_printf(o, "%s    %s\n", pfx, lines[i]);
}

/* How the default, additive rules join the host's firewall. */
static void additive_paragraphs(struct out *o, const char *pfx, const struct fw_options *opt)
{
	static const char *const nft_example[] = {
		"table inet filter {",
		"    include \"/etc/nftables.d/ferryd.nft\"",
		"    chain input {",
		"        type filter hook input priority filter; policy drop;",
		"        jump " CHAIN_IN,
		"        # ... your rules ...",
		"    }",
		"    chain output {",
		"        type filter hook output priority filter; policy accept;",
		"        jump " CHAIN_OUT,
		"    }",
		"}",
	};
	static const char *const ipt_jumps[][2] = {
		{ "INPUT", CHAIN_IN },
		{ "OUTPUT", CHAIN_OUT },
	};
	para(o, pfx,
	     "These rules only add FTP's channels to the firewall this host already has: they "
	     "accept FTP's packets and drop nothing, so they cut nothing else off (SSH "
	     "included). They are two chains, " CHAIN_IN " and " CHAIN_OUT ", for your "
	     "firewall's input and output chains to jump to before any rule that drops; a "
	     "packet they do not accept goes back to your chain, which decides. For a complete "
	     "rule set of its own, which drops everything else but keeps SSH open, use "
	     "--standalone.");
	if (opt->format == FW_NFT) {
		para(o, pfx,
		     "Save this file as, for example, /etc/nftables.d/ferryd.nft, include it in "
		     "the table of your rule set (/etc/nftables.conf), jump to its chains, and "
		     "load the whole rule set again (nft -f /etc/nftables.conf):");
		verbatim(o, pfx, nft_example, sizeof(nft_example) / sizeof(nft_example[0]));
	} else {
		const char *tool = opt->format == FW_IP6TABLES ? "ip6tables" : "iptables";
		para(o, pfx,
		     "Load with `%s-restore --noflush FILE`, which creates the two chains, or "
		     "empties and refills them, and touches no other rule (never without "
		     "--noflush: that replaces every rule of the filter table). Then jump to them "
		     "once:",
		     tool);
		out_printf(o, "%.*s\n", (int)strcspn(pfx, " "), pfx);
		/* -C first: jumping twice would do no harm, but clutter the chain. */
		for (size_t i = 0; i < sizeof(ipt_jumps) / sizeof(ipt_jumps[0]); i++)
			out_printf(o, "%s    %s -C %s -j %s 2>/dev/null || %s -I %s -j %s\n", pfx,
				   tool, ipt_jumps[i][0], ipt_jumps[i][1], tool, ipt_jumps[i][0],
				   ipt_jumps[i][1]);
		para(o, pfx, "%s", opt->format == FW_IP6TABLES
					   ? "These are the IPv6 rules; for IPv4 use --format iptables."
					   : "These are the IPv4 rules; for IPv6 use --format ip6tables.");
	}
}

/* What --standalone's whole rule set accepts and drops. */
static void standalone_paragraphs(struct out *o, const char *pfx, const struct fw_options *opt)
{
	para(o, pfx,
	     "This is a complete, standalone rule set (--standalone) for a host that serves "
	     "FTP: the input and output chains drop every packet that no rule accepts, and "
	     "nothing is forwarded. It accepts the packets of connections already established "
	     "(so loading it does not cut off the session it is loaded from), loopback "
	     "traffic, ICMP and ICMPv6 (IPv6 needs ICMPv6 for neighbour discovery), the kept "
	     "ports (SSH's by default), then the FTP channels.");
	if (opt->format == FW_NFT)
		para(o, pfx,
		     "Load with `nft -f FILE`. The file first declares the table, then deletes "
		     "it, then defines it: loading it again replaces the rules instead of adding "
		     "to them, and the deletion also succeeds where the table does not exist "
		     "yet. A packet has to be accepted by every table's chains on its hook, so "
		     "this table's drop policy also drops what other tables accept.");
	else
		para(o, pfx,
		     "Load with `%s-restore FILE`: it replaces every rule of the %s filter "
		     "table, including rules ferryd did not write. %s",
		     opt->format == FW_IP6TABLES ? "ip6tables" : "iptables",
		     opt->format == FW_IP6TABLES ? "IPv6" : "IPv4",
		     opt->format == FW_IP6TABLES
			     ? "For IPv4 use --format iptables, or --format nft for both."
			     : "For IPv6 use --format ip6tables, or --format nft for both.");
}

static void header(struct out *o, const char *pfx, const struct config *cfg,
		   const struct fw_options *opt, const struct fw_plan *p)
{
	para(o, pfx, "%s, printed by", opt->format == FW_TEXT
						 ? "The FTP channels of a ferryd configuration"
						 : "Firewall rules for ferryd");
	command_line(o, pfx, opt);
	out_printf(o, "%sfrom the configuration summed up below.\n", pfx);
	if (opt->format == FW_TEXT)
		para(o, pfx,
		     "These are the FTP channels of this configuration, seen from the server: "
		     "\"in\" is a packet to the server, \"out\" a packet from it; \"opened by\" "
		     "is the side that opens the TCP connection, whose first packet is the one "
		     "that --stateful rules accept as new. By default the rule sets "
		     "(--format nft, iptables or ip6tables) only add these channels to the "
		     "host's firewall and drop nothing; with --standalone they are a complete "
		     "rule set that drops what it does not accept but keeps SSH open.");
	else if (opt->standalone)
		standalone_paragraphs(o, pfx, opt);
	else
		additive_paragraphs(o, pfx, opt);
	para(o, pfx,
	     "The rules match TCP ports only, never addresses, so they hold for every listen "
	     "address, and for IPv4 and IPv6 alike.");
	if (opt->stateful)
		para(o, pfx,
		     "Stateful rules: new connections are accepted only to the control port%s%s%s. "
		     "The packets of connections already accepted, and ICMP errors about them, "
		     "are accepted %s. No FTP connection-tracking helper is needed: the data "
		     "ports come from the configuration.",
		     p->control.n + p->tls.n > 1 ? "s" : "",
		     opt->modes != FW_ACTIVE_ONLY ? " and to the passive ports" : "",
		     opt->modes != FW_PASSIVE_ONLY ? ", and out from the server's active ports "
						     "to client ports above 1023" : "",
		     opt->standalone || opt->format == FW_TEXT
			     ? "by connection tracking (ct state established,related)"
			     : "by your firewall's own rule for established connections (nft: ct "
			       "state established,related accept), which it must have, as most "
			       "have");
	else
		para(o, pfx,
		     "Stateless rules: every channel is opened in both directions by port, "
		     "without connection tracking. With --stateful, new connections are "
		     "accepted only where FTP opens them.");
	config_paragraphs(o, pfx, cfg, opt, p);
}

/* The comments of the rules that are not FTP's, the same in every format. */
#define LOOPBACK_WHY "Loopback traffic is accepted: programs on this host may talk to each other."
#define TRACKED_WHY "Packets of accepted connections, and ICMP errors about them, are accepted."
#define ICMP_WHY "ICMP is accepted: its errors, such as fragmentation needed, keep TCP working."
#define ICMPV6_WHY "ICMPv6 is accepted: IPv6 needs it for neighbour discovery."
#define INVALID_WHY "Packets that belong to no known connection are dropped."

/* -- nft ----------------------------------------------------------------------------------- */

static void nft_rule(struct out *o, const struct fw_rule *r, bool stateful, const char *indent)
{
	char server[16], client[16], comment[RULE_COMMENT_MAX];
	fmt_ports(server, sizeof(server), r->server, '-');
	fmt_ports(client, sizeof(client), r->client, '-');
	rule_comment(comment, sizeof(comment), r);
	const char *sdir = r->chain == FW_IN ? "dport" : "sport";
	const char *cdir = r->chain == FW_IN ? "sport" : "dport";
	out_printf(o, "%stcp %s %s", indent, sdir, server);
	if (r->client.min != 0)
		out_printf(o, " tcp %s %s", cdir, client);
	if (stateful)
		out_str(o, " ct state new");
	out_printf(o, " accept comment \"%s\"\n", comment);
}

/* What a standalone set accepts besides FTP and the kept ports. */
static void nft_common(struct out *o, enum fw_chain chain, bool stateful)
{
	out_printf(o, "\t\t%s \"lo\" accept comment \"" LOOPBACK_WHY "\"\n",
		   chain == FW_IN ? "iif" : "oif");
	out_str(o, "\t\tct state established,related accept comment \"" TRACKED_WHY "\"\n");
	out_str(o, "\t\tmeta l4proto icmp accept comment \"" ICMP_WHY "\"\n");
	out_str(o, "\t\tmeta l4proto ipv6-icmp accept comment \"" ICMPV6_WHY "\"\n");
	if (stateful)
		out_str(o, "\t\tct state invalid drop comment \"" INVALID_WHY "\"\n");
}

/* The rules of one chain of the plan, in the plan's order. */
static void nft_rules(struct out *o, const struct fw_plan *p, enum fw_chain chain, bool stateful,
		      const char *indent)
{
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct fw_rule *r = &p->rule[i];
		if (r->chain == chain && (!stateful || r->opens))
			nft_rule(o, r, stateful, indent);
	}
}

/* Two regular chains, to be included in the table of an existing rule set. */
static void render_nft_additive(struct out *o, const struct fw_plan *p, bool stateful)
{
	out_str(o, "chain " CHAIN_IN " {\n");
	nft_rules(o, p, FW_IN, stateful, "\t");
	out_str(o, "}\n\nchain " CHAIN_OUT " {\n");
	nft_rules(o, p, FW_OUT, stateful, "\t");
	out_str(o, "}\n");
}

static void render_nft_standalone(struct out *o, const struct fw_plan *p, bool stateful)
{
	out_str(o, "table inet ferryd\n"
		   "delete table inet ferryd\n"
		   "\n"
		   "table inet ferryd {\n");
	static const struct {
		enum fw_chain chain;
		const char *name;
	} chains[] = { { FW_IN, "input" }, { FW_OUT, "output" } };
	for (size_t c = 0; c < 2; c++) {
		out_printf(o, "%s\tchain %s {\n", c == 0 ? "" : "\n", chains[c].name);
		out_printf(o, "\t\ttype filter hook %s priority filter; policy drop;\n",
			   chains[c].name);
		nft_common(o, chains[c].chain, stateful);
		nft_rules(o, p, chains[c].chain, stateful, "\t\t");
		out_str(o, "\t}\n");
	}
	out_str(o, "\n\tchain forward {\n"
		   "\t\ttype filter hook forward priority filter; policy drop;\n"
		   "\t}\n"
		   "}\n");
}

/* -- iptables-restore, ip6tables-restore -------------------------------------------------- */

static void ipt_rule(struct out *o, const struct fw_rule *r, bool stateful, const char *chain)
{
	char server[16], client[16], comment[RULE_COMMENT_MAX];
	fmt_ports(server, sizeof(server), r->server, ':');
	fmt_ports(client, sizeof(client), r->client, ':');
	rule_comment(comment, sizeof(comment), r);
	bool in = r->chain == FW_IN;
	out_printf(o, "-A %s -p tcp --%s %s", chain, in ? "dport" : "sport", server);
	if (r->client.min != 0)
		out_printf(o, " --%s %s", in ? "sport" : "dport", client);
	if (stateful)
		out_str(o, " -m conntrack --ctstate NEW");
	out_printf(o, " -m comment --comment \"%s\" -j ACCEPT\n", comment);
}

static void ipt_common(struct out *o, enum fw_chain chain, bool stateful, bool v6)
{
	const char *c = chain == FW_IN ? "INPUT" : "OUTPUT";
	out_printf(o, "-A %s -%c lo -m comment --comment \"" LOOPBACK_WHY "\" -j ACCEPT\n", c,
		   chain == FW_IN ? 'i' : 'o');
	out_printf(o, "-A %s -m conntrack --ctstate ESTABLISHED,RELATED -m comment "
		   "--comment \"" TRACKED_WHY "\" -j ACCEPT\n", c);
	if (v6)
		out_printf(o, "-A %s -p ipv6-icmp -m comment --comment \"" ICMPV6_WHY "\" "
			   "-j ACCEPT\n", c);
	else
		out_printf(o, "-A %s -p icmp -m comment --comment \"" ICMP_WHY "\" -j ACCEPT\n", c);
	if (stateful)
		out_printf(o, "-A %s -m conntrack --ctstate INVALID -m comment --comment "
			   "\"" INVALID_WHY "\" -j DROP\n", c);
}

/*
 * standalone: the built-in chains, with drop policies; otherwise two chains of our own,
 * which iptables-restore --noflush creates, or empties and refills, leaving the rest.
 */
static void render_iptables(struct out *o, const struct fw_plan *p, bool stateful, bool v6,
			    bool standalone)
{
	const char *names[2] = { "INPUT", "OUTPUT" };
	if (standalone)
		out_str(o, "*filter\n"
			   ":INPUT DROP [0:0]\n"
			   ":FORWARD DROP [0:0]\n"
			   ":OUTPUT DROP [0:0]\n");
	else
		out_str(o, "*filter\n"
			   ":" CHAIN_IN " - [0:0]\n"
			   ":" CHAIN_OUT " - [0:0]\n");
	if (!standalone) {
		names[FW_IN] = CHAIN_IN;
		names[FW_OUT] = CHAIN_OUT;
	}
	for (int c = FW_IN; c <= FW_OUT; c++) {
		if (standalone)
			ipt_common(o, (enum fw_chain)c, stateful, v6);
		for (size_t i = 0; i < p->n_rules; i++) {
			const struct fw_rule *r = &p->rule[i];
			if ((int)r->chain == c && (!stateful || r->opens))
				ipt_rule(o, r, stateful, names[c]);
		}
	}
	out_str(o, "COMMIT\n");
}

/* -- text ----------------------------------------------------------------------------------- */

static void render_text(struct out *o, const struct fw_plan *p)
{
	/* Indexed by enum fw_chan. */
	static const char *const opener[] = { "client", "client", "server", "client", "client" };
	static const char *const name[] = { "control", "implicit TLS", "active data",
					    "passive data", "kept open" };
	const char *row = "%-9s  %-12s  %-12s  %-9s  %-12s  %s\n";
	out_printf(o, row, "direction", "server ports", "client ports", "opened by", "channel",
		   "why");
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct fw_rule *r = &p->rule[i];
		char server[16], client[16], why[160];
		fmt_ports(server, sizeof(server), r->server, '-');
		fmt_ports(client, sizeof(client), r->client, '-');
		snprintf(why, sizeof(why), "%c%s.", toupper((unsigned char)r->why[0]), r->why + 1);
		out_printf(o, row, r->chain == FW_IN ? "in" : "out", server, client,
			   opener[r->chan], name[r->chan], why);
	}
}

int firewall_rules(const struct config *cfg, const struct fw_options *opt, struct buf *b)
{
	struct fw_plan *p = malloc(sizeof(*p));
	if (p == NULL)
		return FERR_NOMEM;
	make_plan(cfg, opt, p);
	struct out o = { b, 0, false };
	const char *pfx = opt->format == FW_TEXT ? "" : "# ";
	header(&o, pfx, cfg, opt, p);
	switch (opt->format) {
	case FW_NFT:
		out_str(&o, "\n");
		if (opt->standalone)
			render_nft_standalone(&o, p, opt->stateful);
		else
			render_nft_additive(&o, p, opt->stateful);
		break;
	case FW_IPTABLES:
	case FW_IP6TABLES:
		out_str(&o, "\n");
		render_iptables(&o, p, opt->stateful, opt->format == FW_IP6TABLES, opt->standalone);
		break;
	case FW_TEXT:
		out_str(&o, "\n");
		render_text(&o, p);
		break;
	}
	free(p);
	return o.rc < 0 ? o.rc : 0;
}

/* -- the subcommand --------------------------------------------------------------------------- */

static void firewall_usage(FILE *f)
{
	fprintf(f,
		"usage: ferryd firewall [--format nft|iptables|ip6tables|text] [--stateful]\n"
		"                       [--only active|passive] [--standalone [--no-ssh]\n"
		"                       [--keep-port PORT]...] [--config FILE] [--OPTION VALUE ...]\n"
		"\n"
		"Print the firewall rules the configuration needs (default: --format nft).\n"
		"By default they only add FTP's channels to the host's firewall: chains of\n"
		"accept rules to jump to, which drop nothing.\n"
		"The configuration options are the server's (see ferryd --help); root and\n"
		"users_file are not needed.\n"
		"\n"
		"  --format FORMAT   nft (IPv4 and IPv6), iptables or ip6tables (restore input),\n"
		"                    or text (the channels as a table)\n"
		"  --stateful        use connection tracking: rules only for new connections\n"
		"  --only MODE       open the data connections of one mode only: active or passive\n"
		"  --standalone      a complete rule set that drops every packet it does not\n"
		"                    accept; it keeps SSH (port 22), established connections,\n"
		"                    loopback and ICMP\n"
		"  --no-ssh          with --standalone: do not keep port 22 open\n"
		"  --keep-port PORT  with --standalone: keep this TCP port open too (repeatable)\n");
}

/*
 * Our own option at argv[*i] ("--name VALUE" or "--name=VALUE"): sets *value and moves
 * *i past it.  Returns 1 if it is ours, 0 if not, -1 if the value is missing.
 */
static int own_option(int argc, char **argv, int *i, const char *name, const char **value)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*value = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*value = argv[++*i];
	return 1;
}

void firewall_default_options(struct fw_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->format = FW_NFT;
	opt->modes = FW_BOTH_MODES;
	opt->keep_ssh = true;
}

/* --keep-port's value: a TCP port, 1 to 65535. */
static int keep_port(struct fw_options *opt, const char *v, int present)
{
	uint64_t port;
	if (present < 0 || num_parse_u64_cstr(v, 65535, &port) < 0 || port == 0) {
		fprintf(stderr, "ferryd firewall: --keep-port: %s%s%sa port from 1 to 65535\n",
			present < 0 ? "needs " : "'", present < 0 ? "" : v,
			present < 0 ? "" : "' is not ");
		return -1;
	}
	if (opt->n_keep == FW_MAX_KEEP) {
		fprintf(stderr, "ferryd firewall: --keep-port: at most %d ports\n", FW_MAX_KEEP);
		return -1;
	}
	opt->keep[opt->n_keep++] = (uint16_t)port;
	return 0;
}

/* Options that shape a standalone rule set mean nothing without one: say so. */
static int check_standalone(const struct fw_options *opt, bool no_ssh)
{
	if (opt->standalone || (!no_ssh && opt->n_keep == 0))
		return 0;
	fprintf(stderr, "ferryd firewall: %s only matters with --standalone: without it the "
			"rules drop nothing, so every other port stays as it is\n",
		no_ssh ? "--no-ssh" : "--keep-port");
	return -1;
}

/* Split argv into our options and the configuration's (copied to cargv after argv[0]). */
static int parse_args(int argc, char **argv, struct fw_options *opt, char **cargv, int *cargc)
{
	bool no_ssh = false;
	*cargc = 0;
	cargv[(*cargc)++] = argv[0];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		int rc;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			firewall_usage(stdout);
			return 1;
		}
		if (strcmp(a, "--stateful") == 0) {
			opt->stateful = true;
			continue;
		}
		if (strcmp(a, "--standalone") == 0) {
			opt->standalone = true;
			continue;
		}
		if (strcmp(a, "--no-ssh") == 0) {
			no_ssh = true;
			opt->keep_ssh = false;
			continue;
		}
		if ((rc = own_option(argc, argv, &i, "--keep-port", &v)) != 0) {
			if (keep_port(opt, v, rc) < 0)
				return -1;
			continue;
		}
		if (strcmp(a, "--check-config") == 0) {
			fprintf(stderr, "ferryd firewall: --check-config: not an option of the "
					"firewall subcommand (try --help)\n");
			return -1;
		}
		if ((rc = own_option(argc, argv, &i, "--format", &v)) != 0) {
			if (rc < 0 || firewall_parse_format(v, &opt->format) < 0) {
				fprintf(stderr, "ferryd firewall: --format: %s%s%snft, iptables, "
						"ip6tables or text\n", rc < 0 ? "needs " : "'",
					rc < 0 ? "" : v, rc < 0 ? "" : "' is not ");
				return -1;
			}
			continue;
		}
		if ((rc = own_option(argc, argv, &i, "--only", &v)) != 0) {
			if (rc < 0 || firewall_parse_modes(v, &opt->modes) < 0) {
				fprintf(stderr, "ferryd firewall: --only: %s%s%sactive or passive\n",
					rc < 0 ? "needs " : "'", rc < 0 ? "" : v,
					rc < 0 ? "" : "' is not ");
				return -1;
			}
			continue;
		}
		/* A configuration option: it and its value go to config_load_unserved. */
		cargv[(*cargc)++] = argv[i];
		if (strncmp(a, "--", 2) == 0 && strchr(a, '=') == NULL && i + 1 < argc)
			cargv[(*cargc)++] = argv[++i];
	}
	cargv[*cargc] = NULL;
	return check_standalone(opt, no_ssh);
}

int firewall_main(int argc, char **argv)
{
	struct fw_options opt;
	firewall_default_options(&opt);
	char **cargv = calloc((size_t)argc + 1, sizeof(*cargv));
	struct config *cfg = calloc(1, sizeof(*cfg));
	int status = 2, cargc;
	if (cargv == NULL || cfg == NULL) {
		fprintf(stderr, "ferryd firewall: out of memory\n");
		status = 1;
		goto out;
	}
	int rc = parse_args(argc, argv, &opt, cargv, &cargc);
	if (rc != 0) {
		status = rc > 0 ? 0 : 2;
		goto out;
	}
	rc = config_load_unserved(cfg, cargc, cargv, stderr);
	if (rc != 0) {
		status = rc > 0 ? 0 : 2;
		goto out;
	}
	struct buf b;
	buf_init(&b, OUTPUT_MAX);
	rc = firewall_rules(cfg, &opt, &b);
	if (rc < 0) {
		fprintf(stderr, "ferryd firewall: %s\n", ferr_str(rc));
		status = 1;
	} else if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0) {
		perror("ferryd firewall: stdout");
		status = 1;
	} else {
		status = 0;
	}
	buf_free(&b);
out:
	free(cargv);
	free(cfg);
	return status;
}
