/*
 * firewall.h: "ferryd firewall": the packet filter rules that a configuration needs, as
 * nft rules, iptables-restore or ip6tables-restore input, or a table in words.
 *
 * FTP needs more than its control port: active mode opens data connections from the
 * server (port 20 or active_ports) to the client, passive mode lets the client connect
 * to a port of pasv_ports, and implicit FTPS has listeners of its own.  The rules are
 * derived from the same struct config the server runs with, so they open exactly the
 * ports it uses.  They match TCP ports only, never addresses.
 *
 * By default the rules only add FTP's channels to a firewall the host already has: they
 * accept, and never drop, so loading them cannot cut anything off (an administrator's
 * SSH session above all).  Only --standalone prints a rule set that drops everything it
 * does not accept, and that one keeps SSH open unless told otherwise.
 *
 * The generator is pure (a configuration in, text in a buffer out); only firewall_main()
 * reads arguments and writes to stdout.
 */
#ifndef FERRY_SERVER_FIREWALL_H
#define FERRY_SERVER_FIREWALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "server/config.h"

enum fw_format {
	FW_NFT,       /* nft chains to include (or with --standalone one table), IPv4 and IPv6 */
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

#define FW_MAX_KEEP 16 /* --keep-port, at most this many times */
#define FW_SSH_PORT 22

struct fw_options {
	enum fw_format format;
	bool stateful;        /* connection tracking: only new connections need rules */
	enum fw_modes modes;
	bool standalone;      /* a whole rule set that drops what it does not accept */
	bool keep_ssh;        /* standalone: keep FW_SSH_PORT open (cleared by --no-ssh) */
	uint16_t keep[FW_MAX_KEEP]; /* standalone: more TCP ports to keep open (--keep-port) */
	size_t n_keep;
};

/* The options "ferryd firewall" starts from: nft, stateless, both modes, additive. */
void firewall_default_options(struct fw_options *opt);

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
 * ferryd firewall [--format F] [--stateful] [--only M] [--standalone [--no-ssh]
 * [--keep-port N]...] [CONFIG OPTIONS...]: argv[1] is
 * "firewall".  Prints the rules on stdout.  Returns the exit status: 0, 1 when writing
 * failed, 2 for bad arguments or a bad configuration (with a message on stderr).
 */
int firewall_main(int argc, char **argv);

#endif
