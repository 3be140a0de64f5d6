/*
 * reply.h: FTP reply codes and their wire format (RFC 959 s.4.2), for both ends.
 *
 * The server side formats single-line and multi-line replies into a bounded buffer; the
 * client side parses them with a resumable parser, the twin of command.h's line parser.
 */
#ifndef FERRY_COMMON_REPLY_H
#define FERRY_COMMON_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum reply_code {
	R_110_RESTART_MARKER = 110,
	R_120_READY_SOON = 120,
	R_125_DATA_OPEN_STARTING = 125,
	R_150_OPENING_DATA = 150,
	R_200_OK = 200,
	R_202_SUPERFLUOUS = 202,
	R_211_SYSTEM_STATUS = 211,
	R_212_DIR_STATUS = 212,
	R_213_FILE_STATUS = 213,
	R_214_HELP = 214,
	R_215_SYSTEM_TYPE = 215,
	R_220_READY = 220,
	R_221_BYE = 221,
	R_225_DATA_OPEN = 225,
	R_226_CLOSING_DATA = 226,
	R_227_PASSIVE = 227,
	R_229_EXTENDED_PASSIVE = 229,
	R_230_LOGGED_IN = 230,
	R_234_AUTH_OK = 234,           /* RFC 4217: AUTH TLS accepted, handshake next */
	R_250_FILE_ACTION_OK = 250,
	R_257_CREATED = 257,
	R_331_NEED_PASSWORD = 331,
	R_332_NEED_ACCOUNT = 332,
	R_350_PENDING = 350,
	R_421_CLOSING = 421,
	R_425_CANT_OPEN_DATA = 425,
	R_426_TRANSFER_ABORTED = 426,
	R_450_FILE_BUSY = 450,
	R_451_LOCAL_ERROR = 451,
	R_452_NO_SPACE = 452,
	R_500_SYNTAX_ERROR = 500,
	R_501_BAD_ARGUMENTS = 501,
	R_502_NOT_IMPLEMENTED = 502,
	R_503_BAD_SEQUENCE = 503,
	R_504_BAD_PARAMETER = 504,
	R_521_PROT_REFUSED = 521,      /* RFC 4217: not with this PROT setting */
	R_522_BAD_PROTOCOL = 522,
	R_522_TLS_REFUSED = 522,       /* a data connection without the required TLS */
	R_530_NOT_LOGGED_IN = 530,
	R_532_NEED_ACCOUNT = 532,
	R_533_PROTECTION_DENIED = 533, /* RFC 2228: CCC refused by policy */
	R_534_POLICY = 534,            /* RFC 2228: denied for policy reasons */
	R_536_PROT_UNSUPPORTED = 536,  /* RFC 2228: PROT level not supported */
	R_550_UNAVAILABLE = 550,
	R_551_PAGE_TYPE = 551,
	R_552_EXCEEDED = 552,
	R_553_BAD_NAME = 553,
	R_554_BAD_RESTART = 554,
};

/*
 * Append a reply to b.  A text holding '\n' becomes a multi-line reply: "CODE-first",
 * continuation lines, "CODE last" (RFC 959 s.4.2); continuation lines are indented by one
 * space so that none can be mistaken for the last line.  CR bytes inside text are dropped,
 * one trailing '\n' is ignored, and an empty text gives "CODE \r\n".  code must be
 * 100..599 (a constant: anything else is a bug and aborts).
 * Returns 0, FERR_TOOBIG or FERR_NOMEM (b unchanged on error).
 */
int reply_format(struct buf *b, int code, const char *text);
int reply_formatf(struct buf *b, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Builders for long multi-line replies (FEAT, HELP, STAT) written piece by piece. */
/* Each appends one line; CR in the text is dropped, LF becomes a space; b unchanged on error. */
int reply_begin(struct buf *b, int code, const char *first);     /* "CODE-first\r\n" */
int reply_line(struct buf *b, const char *line);                 /* " line\r\n" */
int reply_end(struct buf *b, int code, const char *last);        /* "CODE last\r\n" */

/*
 * Append a path in the quoted form of RFC 959 Appendix II (used by 257): enclosed in
 * double quotes, each embedded '"' doubled.  CR and LF, never present in names we accept,
 * are replaced by '?' defensively.  b unchanged on error.
 */
int reply_quote_path(struct buf *b, const char *path);

/* Client side: a resumable reply parser. */
#define REPLY_TEXT_MAX 65536

enum reply_status {
	REPLY_DONE = 0,     /* a complete reply is in p->code / p->text */
	REPLY_AGAIN = 1,    /* all input consumed; no complete reply yet */
	REPLY_INVALID = 2,  /* the peer sent something that is not an FTP reply */
};

struct reply_parser {
	int state;            /* internal */
	int code;             /* the reply's code, 100..599 */
	bool multiline;       /* internal: inside a multi-line reply */
	struct buf line;      /* internal: the line being read */
	struct buf text;      /* the reply's text: lines joined with '\n', codes stripped */
};

void reply_parser_init(struct reply_parser *p);
void reply_parser_free(struct reply_parser *p);
/*
 * Consume bytes up to the end of one complete reply; *used says how many.  A multi-line
 * reply "NNN-..." ends at the first line "NNN " (or bare "NNN") with the same code; the
 * lines between are text, with one leading space or a repeated "NNN-" removed.  NUL bytes
 * are dropped (the NVT's no-op).  A line over 8192 bytes or a text over REPLY_TEXT_MAX is
 * REPLY_INVALID.  After DONE or INVALID the next call starts a new reply; p->code and
 * p->text (always NUL-terminated after DONE) stay readable until then.
 */
enum reply_status reply_parser_feed(struct reply_parser *p, const uint8_t *in, size_t n,
				    size_t *used);

#endif
