/*
 * command.c: the control-connection line parser.
 *
 * A byte-at-a-time state machine in the manner of nginx's ngx_mail_parse.c: it never
 * allocates, never reads past what it was given, and keeps every partial sequence (a
 * pending IAC, a pending CR, an unfinished subnegotiation) in the struct, so input split at
 * any byte boundary gives the same lines as input delivered whole.  Telnet (RFC 854) is
 * decoded first; the NVT line rules (CR LF, CR NUL) are applied to what remains.
 */
#include "command.h"

#include <string.h>

/* RFC 854 command bytes. */
#define TN_SE 240
#define TN_DM 242
#define TN_IP 244
#define TN_SB 250
#define TN_WILL 251
#define TN_DONT 254
#define TN_IAC 255

enum {
	ST_DATA = 0, /* ordinary bytes */
	ST_CR,       /* a CR was decoded; the next byte decides what it meant */
	ST_IAC,      /* an IAC was read */
	ST_OPT,      /* WILL/WONT/DO/DONT was read; the option byte follows */
	ST_SB,       /* inside a subnegotiation, discarded until IAC SE */
	ST_SB_IAC,   /* an IAC inside a subnegotiation */
	ST_DONE,     /* a result was returned; clear the line before reading on */
};

void cmd_parser_init(struct cmd_parser *p)
{
	p->state = ST_DATA;
	p->len = 0;
	p->overflow = false;
	p->nul = false;
	p->saw_ip = false;
	p->saw_dm = false;
	p->line[0] = '\0';
}

/* Store one decoded byte; bytes past the cap are counted as overflow and dropped. */
static void put(struct cmd_parser *p, uint8_t c)
{
	if (p->len < CMD_LINE_MAX)
		p->line[p->len++] = (char)c;
	else
		p->overflow = true;
}

/* The line ended at LF: terminate it and say what the caller got. */
static enum cmd_status finish(struct cmd_parser *p)
{
	p->line[p->len] = '\0';
	p->state = ST_DONE;
	if (p->overflow)
		return CMD_TOOLONG;
	if (p->nul)
		return CMD_HASNUL;
	return CMD_LINE;
}

/* Decode one byte in the NVT data state; returns true when the byte was a line's LF. */
static bool data_byte(struct cmd_parser *p, uint8_t c)
{
	switch (c) {
	case '\n':
		return true;
	case '\r':
		p->state = ST_CR;
		break;
	case TN_IAC:
		p->state = ST_IAC;
		break;
	case '\0':
		/* A NUL not after CR is not a valid NVT character in a command. */
		p->nul = true;
		break;
	default:
		put(p, c);
		break;
	}
	return false;
}

/* The byte after IAC (RFC 854 "Telnet command structure"). */
static void iac_byte(struct cmd_parser *p, uint8_t c)
{
	p->state = ST_DATA;
	if (c == TN_IAC)
		put(p, TN_IAC);
	else if (c >= TN_WILL && c <= TN_DONT)
		p->state = ST_OPT;
	else if (c == TN_SB)
		p->state = ST_SB;
	else if (c == TN_IP)
		p->saw_ip = true;
	else if (c == TN_DM)
		p->saw_dm = true;
	/* Every other command (NOP, AYT, GA, ...) carries no meaning for FTP and is dropped. */
}

/* One raw byte; returns true when it ended a line. */
static bool step(struct cmd_parser *p, uint8_t c)
{
	switch (p->state) {
	case ST_CR:
		p->state = ST_DATA;
		if (c == '\n')
			return true; /* CR LF: the CR is the line ending, not data */
		put(p, '\r');        /* a bare CR is data, whether as CR NUL or lone */
		if (c == '\0')
			return false;
		return data_byte(p, c);
	case ST_IAC:
		iac_byte(p, c);
		return false;
	case ST_OPT:
		p->state = ST_DATA;
		return false;
	case ST_SB:
		if (c == TN_IAC)
			p->state = ST_SB_IAC;
		return false;
	case ST_SB_IAC:
		p->state = (c == TN_SE) ? ST_DATA : ST_SB;
		return false;
	default:
		return data_byte(p, c);
	}
}

enum cmd_status cmd_parser_feed(struct cmd_parser *p, const uint8_t *in, size_t n, size_t *used)
{
	if (p->state == ST_DONE)
		cmd_parser_init(p);

	for (size_t i = 0; i < n; i++) {
		if (step(p, in[i])) {
			*used = i + 1;
			return finish(p);
		}
	}
	*used = n;
	return CMD_AGAIN;
}

static char ascii_upper(char c)
{
	return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

void cmd_split_line(const char *line, size_t len, struct cmd_split *out)
{
	memset(out, 0, sizeof(*out));
	if (line == NULL) {
		out->arg = "";
		return;
	}

	const char *sp = memchr(line, ' ', len);
	size_t vlen = sp ? (size_t)(sp - line) : len;
	size_t keep = vlen;
	if (keep > CMD_VERB_MAX) {
		keep = CMD_VERB_MAX;
		out->verb_too_long = true;
	}
	for (size_t i = 0; i < keep; i++)
		out->verb[i] = ascii_upper(line[i]);
	out->verb[keep] = '\0';

	if (sp != NULL) {
		out->has_arg = true;
		out->arg = sp + 1;
		out->arg_len = len - vlen - 1;
	} else {
		/* Points at the line's own terminator, so arg is always a valid string. */
		out->arg = line + len;
		out->arg_len = 0;
	}
}
