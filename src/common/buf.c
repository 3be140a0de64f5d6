/*
 * buf.c: bounded owning buffers and non-owning slices.
 *
 * The maximum of a buffer counts data bytes; one more byte is always kept for the trailing
 * NUL, so that text buffers can be handed to C string functions.  Growth is geometric but
 * never past the maximum, so no peer can make us allocate more than the caller allowed.
 */
#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* ASCII only: FTP verbs and facts are compared without regard to the C locale. */
static unsigned char ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* The first allocation; small enough for replies, big enough to avoid early regrowth. */
#define BUF_MIN_CAP 64

struct slice slice_cstr(const char *s)
{
	if (s == NULL)
		return (struct slice){ "", 0 };
	return (struct slice){ s, strlen(s) };
}

bool slice_eq(struct slice a, struct slice b)
{
	if (a.len != b.len)
		return false;
	/* memcmp with a NULL pointer is undefined even for zero bytes. */
	return a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0;
}

bool slice_eq_nocase(struct slice a, struct slice b)
{
	if (a.len != b.len)
		return false;
	for (size_t i = 0; i < a.len; i++) {
		if (ascii_lower((unsigned char)a.ptr[i]) != ascii_lower((unsigned char)b.ptr[i]))
			return false;
	}
	return true;
}

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	/* Keep one byte of the address space for the NUL, so len + 1 never wraps. */
	b->max = max < SIZE_MAX ? max : SIZE_MAX - 1;
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* Make room for n more data bytes plus the NUL.  Nothing changes on failure. */
static int buf_reserve(struct buf *b, size_t n)
{
	if (n > b->max - b->len)
		return FERR_TOOBIG;
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return FERR_OK;

	size_t limit = b->max + 1;
	size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
	while (cap < need && cap <= limit / 2)
		cap *= 2;
	if (cap < need)
		cap = need;
	if (cap > limit)
		cap = limit;

	char *p = realloc(b->data, cap);
	if (p == NULL)
		return FERR_NOMEM;
	if (b->data == NULL)
		p[0] = '\0';
	b->data = p;
	b->cap = cap;
	return FERR_OK;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	int rc = buf_reserve(b, n);
	if (rc != FERR_OK)
		return rc;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return FERR_OK;
}

int buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_append_char(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;

	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return FERR_INVALID;

	int rc = buf_reserve(b, (size_t)n);
	if (rc != FERR_OK)
		return rc;
	/* The reservation holds n bytes and the NUL, so this cannot truncate. */
	int m = vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	if (m != n) {
		b->data[b->len] = '\0';
		return FERR_INVALID;
	}
	b->len += (size_t)n;
	return FERR_OK;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void buf_consume(struct buf *b, size_t n)
{
	FERR_ASSERT(n <= b->len);
	if (n == 0)
		return;
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

struct slice buf_slice(const struct buf *b)
{
	if (b->data == NULL)
		return (struct slice){ "", 0 };
	return (struct slice){ b->data, b->len };
}

int str_copy(char *dst, size_t dstsz, const char *src)
{
	if (dstsz == 0)
		return FERR_TOOBIG;
	size_t n = strlen(src);
	if (n >= dstsz) {
		dst[0] = '\0';
		return FERR_TOOBIG;
	}
	memcpy(dst, src, n + 1);
	return FERR_OK;
}
