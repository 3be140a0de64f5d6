/*
 * command.h: the control-connection line parser (pure: no I/O, no allocation).
 *
 * Resumable in the style of nginx's ngx_mail_parse.c: feed it whatever bytes arrived, it
 * consumes up to the end of one line and keeps its state in the struct between calls.  It
 * handles Telnet (RFC 854) IAC sequences explicitly, because FTP's control connection is a
 * Telnet NVT: IAC IAC is a literal 0xFF, option negotiation (WILL/WONT/DO/DONT x) and
 * commands such as IP and DM are removed from the line; IP and DM are remembered so that
 * ABOR sent after "Telnet IP and Synch" (RFC 959 s.4.1.3) is recognised.
 */
#ifndef FERRY_COMMON_COMMAND_H
#define FERRY_COMMON_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* vsftpd caps a command line at 4096 bytes; so do we (not counting CR LF). */
#define CMD_LINE_MAX 4096

enum cmd_status {
	CMD_LINE = 0,     /* a complete, valid line is in p->line */
	CMD_AGAIN = 1,    /* all input consumed, no complete line yet */
	CMD_TOOLONG = 2,  /* a complete line was consumed but it exceeded CMD_LINE_MAX */
	CMD_HASNUL = 3,   /* a complete line was consumed but it held a NUL byte */
};

struct cmd_parser {
	int state;           /* internal: Telnet decoding state */
	size_t len;          /* bytes in line */
	bool overflow;       /* the current line is longer than CMD_LINE_MAX */
	bool nul;            /* the current line holds a NUL */
	bool saw_ip;         /* a Telnet IP (interrupt process) was seen in this line */
	bool saw_dm;         /* a Telnet DM (data mark, Synch) was seen in this line */
	char line[CMD_LINE_MAX + 1]; /* NUL-terminated, without the line ending */
};

void cmd_parser_init(struct cmd_parser *p);

/*
 * Consume bytes from in[0..n) up to and including the end of one line (LF, with an optional
 * CR before it).  A CR not followed by LF is kept as data, and CR NUL (Telnet's bare CR)
 * becomes CR; any other NUL makes the line CMD_HASNUL.  A line longer than CMD_LINE_MAX is
 * consumed to its LF, its excess discarded, and reported as CMD_TOOLONG.  Sets *used to the
 * number of bytes consumed.  Input may be split anywhere, even inside an IAC sequence.
 * After CMD_LINE / CMD_TOOLONG / CMD_HASNUL the parser is ready for the next line: the
 * result (line, len and the flags) stays readable until the next call, which clears them.
 */
enum cmd_status cmd_parser_feed(struct cmd_parser *p, const uint8_t *in, size_t n, size_t *used);

/* A command line split into verb and argument. */
#define CMD_VERB_MAX 8
struct cmd_split {
	char verb[CMD_VERB_MAX + 1]; /* upper-cased; empty if the line had no verb */
	bool verb_too_long;          /* the verb had more than CMD_VERB_MAX letters */
	bool has_arg;                /* a space followed the verb */
	const char *arg;             /* points into the line: everything after the first space */
	size_t arg_len;
};

/*
 * Split a line at its first space: the verb (letters only are expected, any byte but space
 * is accepted and upper-cased) and the argument (the rest of the line, kept byte for byte,
 * so file names with leading or trailing spaces survive).  Never fails.
 */
void cmd_split_line(const char *line, size_t len, struct cmd_split *out);

#endif
