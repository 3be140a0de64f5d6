/*
 * buf.h: bounded owning buffers and non-owning slices.
 *
 * Every buffer has a maximum size fixed when it is made, so that no peer can make us grow
 * memory without bound (compare OpenSSH's sshbuf_set_max_size).  A slice is a pointer and a
 * length into memory someone else owns; it is never NUL-terminated by contract.
 */
#ifndef FERRY_COMMON_BUF_H
#define FERRY_COMMON_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct slice {
	const char *ptr;
	size_t len;
};

#define SLICE_LIT(s) ((struct slice){ (s), sizeof(s) - 1 })
struct slice slice_cstr(const char *s);
bool slice_eq(struct slice a, struct slice b);
/* ASCII case-insensitive comparison, as FTP verbs and facts are compared. */
bool slice_eq_nocase(struct slice a, struct slice b);

/*
 * An owning, growable buffer holding at most `max` bytes (the trailing NUL is extra and not
 * counted).  buf_init() allocates nothing and data stays NULL until the first successful
 * append (even of zero bytes); from then on data is always NUL-terminated, so a buffer of
 * text can be handed to C string functions.  buf_slice() of an empty buffer is {"", 0}.
 * Growth is geometric but never beyond max.  The caller owns the buffer and frees it with
 * buf_free().
 */
struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Returns 0, FERR_TOOBIG (nothing appended) or FERR_NOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_append_char(struct buf *b, char c);
/* printf into the buffer; on FERR_TOOBIG the buffer is left as it was. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Drops the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
struct slice buf_slice(const struct buf *b);

/*
 * Copy a NUL-terminated string into dst of size dstsz.  Returns 0, or FERR_TOOBIG (dst then
 * holds an empty string) when it does not fit.  Use instead of strcpy/strncpy.
 */
int str_copy(char *dst, size_t dstsz, const char *src);

#endif
