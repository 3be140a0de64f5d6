/*
 * firewall.h: "ferryd firewall": the packet filter rules that a configuration needs, as
 * an nft script, iptables-restore or ip6tables-restore input, or a table in words.
 *
 * FTP needs more than its control port: active mode opens data connections from the
 * server (port 20 or active_ports) to the client, passive mode lets the client connect
 * to a port of pasv_ports.  The rules are derived from the same struct config the server
 * runs with, so they open exactly the ports it uses.  They match TCP ports only, never
 * addresses.  The generator is pure (a configuration in, text in a buffer out); only
 * firewall_main() reads arguments and writes to stdout.
 */
#ifndef FERRY_SERVER_FIREWALL_H
#define FERRY_SERVER_FIREWALL_H

#include <stdbool.h>

#include "common/buf.h"
#include "server/config.h"

enum fw_format {
	FW_NFT,       /* one "table inet ferryd" for nft -f, IPv4 and IPv6 */
	FW_IPTABLES,  /* iptables-restore input (IPv4) */
	FW_IP6TABLES, /* ip6tables-restore input (IPv6) */
	FW_TEXT,      /* the channels as a table, for people */
};

/* Which data connections to open: both modes, or one (the control channel always). */
enum fw_modes {
	FW_BOTH_MODES,
	FW_ACTIVE_ONLY,
	FW_PASSIVE_ONLY,
};

struct fw_options {
	enum fw_format format;
	bool stateful;        /* connection tracking: only new connections need rules */
	enum fw_modes modes;
};

/* "nft", "iptables", "ip6tables", "text".  Returns 0 or FERR_INVALID. */
int firewall_parse_format(const char *s, enum fw_format *out);
/* "active", "passive".  Returns 0 or FERR_INVALID. */
int firewall_parse_modes(const char *s, enum fw_modes *out);

/*
 * Append the complete rule set for cfg to out, header comments included.  Returns 0,
 * or FERR_TOOBIG / FERR_NOMEM from the buffer (out then holds a partial text).
 */
int firewall_rules(const struct config *cfg, const struct fw_options *opt, struct buf *out);

/*
 * ferryd firewall [--format F] [--stateful] [--only M] [CONFIG OPTIONS...]: argv[1] is
 * "firewall".  Prints the rules on stdout.  Returns the exit status: 0, 1 when writing
 * failed, 2 for bad arguments or a bad configuration (with a message on stderr).
 */
int firewall_main(int argc, char **argv);

#endif
