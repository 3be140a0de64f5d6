/*
 * firewall.c: the rules "ferryd firewall" prints.  See firewall.h.
 *
 * A configuration first becomes a plan: the FTP channels as rules of one model (chain,
 * server ports, client ports, whether the packets open a connection, why).  Each output
 * format then renders the same plan, so nft, iptables and the text table cannot drift
 * apart.  On the server's side the channels are:
 *
 *   control   in:  to each listen port, from any client port;
 *             out: from each listen port, to client ports above 1023 (the replies);
 *   active    out: from port 20 (or active_ports) to client ports above 1023, which the
 *                  server connects to (PORT and EPRT refuse lower ports);
 *             in:  to those server ports, from client ports above 1023;
 *   passive   in:  to pasv_ports, from any client port, which the client connects to;
 *             out: from pasv_ports, to client ports above 1023.
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

#define RULE_COMMENT_MAX 128 /* nft's limit, the NUL included */
#define WRAP_WIDTH 88
#define OUTPUT_MAX (1u << 20)

enum fw_chain { FW_IN, FW_OUT };
enum fw_chan { CH_CONTROL, CH_ACTIVE, CH_PASSIVE };

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

#define MAX_RULES (2 * CONFIG_MAX_LISTEN + 4)

struct fw_plan {
	struct fw_rule rule[MAX_RULES];
	size_t n_rules;
	uint16_t control[CONFIG_MAX_LISTEN]; /* listen ports, each once, in order */
	size_t n_control;
	struct fw_ports active, passive;
};

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

static void make_plan(const struct config *cfg, enum fw_modes modes, struct fw_plan *p)
{
	memset(p, 0, sizeof(*p));
	for (unsigned i = 0; i < cfg->n_listen; i++) {
		uint16_t port = hostport_get_port(&cfg->listen[i]);
		bool seen = false;
		for (size_t j = 0; j < p->n_control; j++)
			seen = seen || p->control[j] == port;
		if (!seen)
			p->control[p->n_control++] = port;
	}
	p->active = cfg->active_from_port_20 ? (struct fw_ports){ 20, 20 }
					      : range_or_unprivileged(cfg->active_ports);
	p->passive = range_or_unprivileged(cfg->pasv_ports);

	for (size_t i = 0; i < p->n_control; i++) {
		struct fw_ports port = { p->control[i], p->control[i] };
		add_rule(p, CH_CONTROL, FW_IN, port, ANY_PORT, true,
			 "clients open the control connection from any port");
		add_rule(p, CH_CONTROL, FW_OUT, port, UNPRIVILEGED, false,
			 "the server's replies go back to the client's port above 1023");
	}
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
}

/* -- words shared by every format --------------------------------------------------------- */

static const char *chan_label(enum fw_chan c)
{
	switch (c) {
	case CH_CONTROL:
		return "FTP control";
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

/* What the configuration opens, and what it needs that the rules do not give. */
static void config_paragraphs(struct out *o, const char *pfx, const struct config *cfg,
			      const struct fw_options *opt, const struct fw_plan *p)
{
	char list[CONFIG_MAX_LISTEN * 8] = "";
	size_t used = 0;
	for (size_t i = 0; i < p->n_control; i++) {
		const char *sep = i == 0 ? "" : (i + 1 == p->n_control ? " and " : ", ");
		int n = snprintf(list + used, sizeof(list) - used, "%s%u", sep, p->control[i]);
		FERR_ASSERT(n > 0 && (size_t)n < sizeof(list) - used);
		used += (size_t)n;
	}
	if (cfg->config_file[0] != '\0')
		para(o, pfx, "Configuration file: %s (options on the command line override it).",
		     cfg->config_file);
	para(o, pfx, "Control connections: port%s %s (listen).", p->n_control > 1 ? "s" : "",
	     list);
	if (cfg->listen_default)
		para(o, pfx,
		     "listen is not set: ferryd then listens on port 21 when it starts as root "
		     "and on port 2121 otherwise. These rules use port %u because this command "
		     "ran %s; set listen to make them independent of that.",
		     p->control[0], geteuid() == 0 ? "as root" : "without root");

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
		     cfg->pasv_address, p->n_control > 1 ? "s" : "", ports);
	}
	if (pasv_address_is_name(cfg))
		para(o, pfx,
		     "pasv_address is a host name, which ferryd resolves: that needs DNS, which "
		     "these rules do not allow. Add rules for your name servers.");
}

static void header(struct out *o, const char *pfx, const struct config *cfg,
		   const struct fw_options *opt, const struct fw_plan *p)
{
	para(o, pfx, "%s, printed by", opt->format == FW_TEXT
						 ? "The FTP channels of a ferryd configuration"
						 : "Firewall rules for ferryd");
	out_printf(o, "%s    ferryd firewall --format %s%s%s\n", pfx, format_name(opt->format),
		   opt->stateful ? " --stateful" : "",
		   opt->modes == FW_ACTIVE_ONLY ? " --only active"
		   : opt->modes == FW_PASSIVE_ONLY ? " --only passive" : "");
	out_printf(o, "%sfrom the configuration summed up below.\n", pfx);
	if (opt->format == FW_TEXT)
		para(o, pfx,
		     "These are the FTP channels of this configuration, seen from the server: "
		     "\"in\" is a packet to the server, \"out\" a packet from it; \"opened by\" "
		     "is the side that opens the TCP connection, whose first packet is the one "
		     "that --stateful rules accept as new. The rule sets "
		     "(--format nft, iptables or ip6tables) are complete and standalone for a "
		     "host that serves only FTP: they drop every packet that no rule accepts "
		     "and forward nothing; they "
		     "accept loopback traffic, ICMP and ICMPv6 (IPv6 needs ICMPv6 for "
		     "neighbour discovery), then these channels.");
	else
		para(o, pfx,
		     "This is a complete, standalone rule set for a host that serves only FTP: "
		     "the input and output chains drop every packet that no rule accepts, and "
		     "nothing is forwarded. "
		     "Loopback traffic is accepted, and so are ICMP and ICMPv6 (IPv6 needs "
		     "ICMPv6 for neighbour discovery), then the FTP channels. Admins with an "
		     "existing firewall should merge the FTP rules into theirs instead of "
		     "loading this as it is.");
	para(o, pfx,
	     "The rules match TCP ports only, never addresses, so they hold for every listen "
	     "address, and for IPv4 and IPv6 alike.");
	if (opt->stateful)
		para(o, pfx,
		     "Stateful rules: connection tracking accepts the packets of connections "
		     "already accepted, and ICMP errors about them. New connections are accepted "
		     "only to the control port%s%s%s. No FTP connection-tracking helper is "
		     "needed: the data ports come from the configuration.",
		     p->n_control > 1 ? "s" : "",
		     opt->modes != FW_ACTIVE_ONLY ? " and to the passive ports" : "",
		     opt->modes != FW_PASSIVE_ONLY ? ", and out from the server's active ports "
						     "to client ports above 1023" : "");
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

static void nft_rule(struct out *o, const struct fw_rule *r, bool stateful)
{
	char server[16], client[16], comment[RULE_COMMENT_MAX];
	fmt_ports(server, sizeof(server), r->server, '-');
	fmt_ports(client, sizeof(client), r->client, '-');
	rule_comment(comment, sizeof(comment), r);
	const char *sdir = r->chain == FW_IN ? "dport" : "sport";
	const char *cdir = r->chain == FW_IN ? "sport" : "dport";
	out_printf(o, "\t\ttcp %s %s", sdir, server);
	if (r->client.min != 0)
		out_printf(o, " tcp %s %s", cdir, client);
	if (stateful)
		out_str(o, " ct state new");
	out_printf(o, " accept comment \"%s\"\n", comment);
}

static void nft_common(struct out *o, enum fw_chain chain, bool stateful)
{
	out_printf(o, "\t\t%s \"lo\" accept comment \"" LOOPBACK_WHY "\"\n",
		   chain == FW_IN ? "iif" : "oif");
	if (stateful)
		out_str(o, "\t\tct state established,related accept comment \"" TRACKED_WHY "\"\n");
	out_str(o, "\t\tmeta l4proto icmp accept comment \"" ICMP_WHY "\"\n");
	out_str(o, "\t\tmeta l4proto ipv6-icmp accept comment \"" ICMPV6_WHY "\"\n");
	if (stateful)
		out_str(o, "\t\tct state invalid drop comment \"" INVALID_WHY "\"\n");
}

static void render_nft(struct out *o, const struct fw_plan *p, bool stateful)
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
		for (size_t i = 0; i < p->n_rules; i++) {
			const struct fw_rule *r = &p->rule[i];
			if (r->chain == chains[c].chain && (!stateful || r->opens))
				nft_rule(o, r, stateful);
		}
		out_str(o, "\t}\n");
	}
	out_str(o, "\n\tchain forward {\n"
		   "\t\ttype filter hook forward priority filter; policy drop;\n"
		   "\t}\n"
		   "}\n");
}

/* -- iptables-restore, ip6tables-restore -------------------------------------------------- */

static void ipt_rule(struct out *o, const struct fw_rule *r, bool stateful)
{
	char server[16], client[16], comment[RULE_COMMENT_MAX];
	fmt_ports(server, sizeof(server), r->server, ':');
	fmt_ports(client, sizeof(client), r->client, ':');
	rule_comment(comment, sizeof(comment), r);
	bool in = r->chain == FW_IN;
	out_printf(o, "-A %s -p tcp --%s %s", in ? "INPUT" : "OUTPUT", in ? "dport" : "sport",
		   server);
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
	if (stateful)
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

static void render_iptables(struct out *o, const struct fw_plan *p, bool stateful, bool v6)
{
	out_str(o, "*filter\n"
		   ":INPUT DROP [0:0]\n"
		   ":FORWARD DROP [0:0]\n"
		   ":OUTPUT DROP [0:0]\n");
	for (int c = FW_IN; c <= FW_OUT; c++) {
		ipt_common(o, (enum fw_chain)c, stateful, v6);
		for (size_t i = 0; i < p->n_rules; i++) {
			const struct fw_rule *r = &p->rule[i];
			if ((int)r->chain == c && (!stateful || r->opens))
				ipt_rule(o, r, stateful);
		}
	}
	out_str(o, "COMMIT\n");
}

/* -- text ----------------------------------------------------------------------------------- */

static void render_text(struct out *o, const struct fw_plan *p)
{
	static const char *const opener[] = { "client", "server", "client" };
	static const char *const name[] = { "control", "active data", "passive data" };
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
	make_plan(cfg, opt->modes, p);
	struct out o = { b, 0, false };
	const char *pfx = opt->format == FW_TEXT ? "" : "# ";
	header(&o, pfx, cfg, opt, p);
	switch (opt->format) {
	case FW_NFT:
		para(&o, pfx,
		     "Load with `nft -f FILE`. The file first declares the table, then deletes "
		     "it, then defines it: loading it again replaces the rules instead of adding "
		     "to them, and the deletion also succeeds where the table does not exist "
		     "yet.");
		out_str(&o, "\n");
		render_nft(&o, p, opt->stateful);
		break;
	case FW_IPTABLES:
	case FW_IP6TABLES: {
		bool v6 = opt->format == FW_IP6TABLES;
		para(&o, pfx,
		     "Load with `%s-restore FILE`: it replaces every rule of the %s filter "
		     "table, including rules ferryd did not write. %s",
		     v6 ? "ip6tables" : "iptables", v6 ? "IPv6" : "IPv4",
		     v6 ? "For IPv4 use --format iptables, or --format nft for both."
			: "For IPv6 use --format ip6tables, or --format nft for both.");
		out_str(&o, "\n");
		render_iptables(&o, p, opt->stateful, v6);
		break;
	}
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
		"                       [--only active|passive] [--config FILE] [--OPTION VALUE ...]\n"
		"\n"
		"Print the firewall rules the configuration needs (default: --format nft).\n"
		"The configuration options are the server's (see ferryd --help); root and\n"
		"users_file are not needed.\n"
		"\n"
		"  --format FORMAT   nft (IPv4 and IPv6), iptables or ip6tables (restore input),\n"
		"                    or text (the channels as a table)\n"
		"  --stateful        use connection tracking: rules only for new connections\n"
		"  --only MODE       open the data connections of one mode only: active or passive\n");
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

/* Split argv into our options and the configuration's (copied to cargv after argv[0]). */
static int parse_args(int argc, char **argv, struct fw_options *opt, char **cargv, int *cargc)
{
	*cargc = 0;
	cargv[(*cargc)++] = argv[0];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v;
		int rc;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			firewall_usage(stdout);
			return 1;
		}
		if (strcmp(a, "--stateful") == 0) {
			opt->stateful = true;
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
	return 0;
}

int firewall_main(int argc, char **argv)
{
	struct fw_options opt = { FW_NFT, false, FW_BOTH_MODES };
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
