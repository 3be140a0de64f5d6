/*
 * logsafe.h: making untrusted text safe to put in a log line, pure.
 *
 * ferryd's log lines are "key=value" fields that fail2ban-style filters parse, and they end
 * up on terminals.  A user name, a path or a CLNT string comes from the network: written
 * as is, it could add fields ("USER x client=203.0.113.7"), start a new line, or send
 * escape sequences to the terminal of whoever reads the log.  Everything here turns such
 * text into bytes that can do none of that, and never writes past the buffer it is given.
 *
 * The escapes, shared by all three functions:
 *   \xNN   (two lower-case hex digits) for every byte below 0x20, for 0x7f, and for every
 *          byte of 0x80 and above that is not part of an acceptable UTF-8 sequence.
 *   UTF-8  is copied as is when it is well formed (shortest form, no surrogates, at most
 *          U+10FFFF) and is not a code point that changes how a line looks: the C1 controls
 *          U+0080-U+009F (some terminals obey them), U+2028/U+2029 (line and paragraph
 *          separators) and the bidirectional controls U+200E, U+200F, U+202A-U+202E,
 *          U+2066-U+2069 (they can make a line read differently from what it holds).  The
 *          bytes of such a code point, and of any malformed sequence, are escaped one by
 *          one, so names in other scripts stay readable and the output is always valid
 *          UTF-8 without controls.
 * A sequence of input bytes is never split by truncation: an escape or a UTF-8 character
 * is written whole or not at all.
 */
#ifndef FERRY_COMMON_LOGSAFE_H
#define FERRY_COMMON_LOGSAFE_H

#include <stddef.h>

/* Room log_quote() and LOG_Q() give one value, terminating NUL included. */
#define LOG_VALUE_MAX 1024

/* The smallest cap that can hold a truncated value: "..." and the NUL. */
#define LOG_ESCAPE_MIN_CAP 6

/*
 * A value for a key=value field.  Writes into out (cap bytes, NUL-terminated whenever
 * cap >= 1) and returns the length written, NUL excluded.
 *   - in[0..len) of printable ASCII (0x21-0x7e) other than '"', '\\' and '=', not empty:
 *     copied as is ("anonymous", "127.0.0.1", "/pub/file.txt").
 *   - anything else, the empty string included: in double quotes, with '"' as \",
 *     '\\' as \\ and the escapes above; spaces and '=' stay as they are inside the quotes.
 * Either way the result holds no space outside quotes, so it is exactly one field.
 * When the result does not fit in cap - 1 bytes it is quoted, cut after the last whole
 * character that fits, and followed by "...": "abc"... (the three dots after the closing
 * quote say "truncated": an untruncated value never has anything after its quote).  With
 * cap < LOG_ESCAPE_MIN_CAP, a value that is not copied as is gives the empty string.
 * in may hold NUL bytes (escaped as \x00); in may be NULL when len is 0.
 */
size_t log_escape(char *out, size_t cap, const char *in, size_t len);

/*
 * log_escape() of a NUL-terminated string into buf (cap bytes); NULL counts as the empty
 * string.  Returns buf, so it can be a printf argument.
 */
const char *log_quote(char *buf, size_t cap, const char *s);

/*
 * log_quote() into a buffer that lives until the end of the enclosing block (a compound
 * literal of LOG_VALUE_MAX bytes), for use directly in a log call:
 *     log_info("session %llu login user=%s", id, LOG_Q(s->username));
 */
#define LOG_Q(s) log_quote((char[LOG_VALUE_MAX]){ 0 }, LOG_VALUE_MAX, (s))

/*
 * A whole log line, as the last line of defence: only the escapes above, '"' and '\\'
 * are left alone (the line's values were quoted by log_escape() already).  A line cut
 * short ends in "...".  Same return and NUL rules as log_escape().
 */
size_t log_sanitize_line(char *out, size_t cap, const char *in, size_t len);

/*
 * One field of a space-separated format (xferlog(5)): a space becomes '_' (the format's
 * own convention, so "a b" and "a_b" look the same), '\\' becomes \\ and the escapes
 * above apply; the empty string becomes "-".  A field cut short ends in "...".  Same
 * return and NUL rules as log_escape().
 */
size_t log_escape_field(char *out, size_t cap, const char *in, size_t len);

#endif
