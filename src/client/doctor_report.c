/*
 * doctor_report.c: the record the doctor keeps of each check, and the text report.  A
 * check is begun (check_begin), explained (check_why, check_fix, the details for
 * --json) and ended with its verdict (check_end), which counts it, keeps it for the JSON
 * report and, without --json, prints it at once: "PASS  label: explanation", and for
 * WARN and FAIL a "fix:" line under it.
 *
 * What this file must never do: let text from a server reach the terminal as it is (its
 * control characters are printed as '?'), or lose a verdict: the counts that make the
 * exit status go on even when the array of checks cannot grow.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/doctor_int.h"
#include "common/hostport.h"

const char *const verdict_names[4] = { "PASS", "WARN", "FAIL", "SKIP" };

static const char *family_name(int af)
{
	return af == AF_INET6 ? "IPv6" : "IPv4";
}

/* ---- the record ---- */

struct check *check_begin(struct doctor *dr, int family, const char *name, const char *label,
			  const char *mode)
{
	struct check *c = &dr->cur;

	memset(c, 0, sizeof(*c));
	c->name = name;
	c->family = family;
	c->mode = mode;
	snprintf(c->label, sizeof(c->label), "%s", label);
	return c;
}

static void vappend(char *dst, size_t dstsz, const char *fmt, va_list ap)
{
	size_t n = strnlen(dst, dstsz);

	if (n + 1 < dstsz)
		vsnprintf(dst + n, dstsz - n, fmt, ap);
}

void check_why(struct check *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vappend(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
}

void check_fix(struct check *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vappend(c->fix, sizeof(c->fix), fmt, ap);
	va_end(ap);
}

static struct detail *detail_new(struct check *c, const char *key, enum dtype t)
{
	if (c->nd >= DETAILS_MAX)
		return NULL;
	struct detail *d = &c->d[c->nd++];
	memset(d, 0, sizeof(*d));
	d->key = key;
	d->type = t;
	return d;
}

void detail_str(struct check *c, const char *key, const char *fmt, ...)
{
	struct detail *d = detail_new(c, key, D_STR);
	va_list ap;

	if (d == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(d->s, sizeof(d->s), fmt, ap);
	va_end(ap);
}

/* An integer or a boolean: both are kept in d->i. */
static void detail_number(struct check *c, const char *key, enum dtype t, long long v)
{
	struct detail *d = detail_new(c, key, t);

	if (d != NULL)
		d->i = v;
}

void detail_int(struct check *c, const char *key, long long v)
{
	detail_number(c, key, D_INT, v);
}

void detail_bool(struct check *c, const char *key, bool v)
{
	detail_number(c, key, D_BOOL, v);
}

void detail_real(struct check *c, const char *key, double v)
{
	struct detail *d = detail_new(c, key, D_REAL);

	if (d != NULL)
		d->r = v;
}

void doctor_addr(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6) {
		snprintf(out, outsz, "?");
		return;
	}
	hostport_ntop(ss, out, outsz);
}

void detail_addr(struct check *c, const char *key, const struct sockaddr_storage *ss)
{
	char a[INET6_ADDRSTRLEN];

	doctor_addr(ss, a, sizeof(a));
	detail_str(c, key, "%s", a);
}

/* ---- the text report ---- */

/* Text from a server goes out with its control characters as '?'. */
static void put_clean(FILE *out, const char *s)
{
	for (; *s != '\0'; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
}

static void print_check(const struct check *c)
{
	printf("%s  %s: ", verdict_names[c->v], c->label);
	put_clean(stdout, c->why);
	fputc('\n', stdout);
	if ((c->v == V_WARN || c->v == V_FAIL) && c->fix[0] != '\0') {
		fputs("      fix: ", stdout);
		put_clean(stdout, c->fix);
		fputc('\n', stdout);
	}
	fflush(stdout);
}

void check_end(struct doctor *dr, enum verdict v)
{
	struct check *c = &dr->cur;

	c->v = v;
	dr->count[v]++;
	if (dr->n == dr->cap) {
		size_t cap = dr->cap ? dr->cap * 2 : 32;
		struct check *nv = realloc(dr->checks, cap * sizeof(*nv));
		if (nv != NULL) {
			dr->checks = nv;
			dr->cap = cap;
		}
	}
	if (dr->n < dr->cap)
		dr->checks[dr->n++] = *c;
	if (!dr->json)
		print_check(c);
}

void check_skip(struct doctor *dr, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vappend(dr->cur.why, sizeof(dr->cur.why), fmt, ap);
	va_end(ap);
	check_end(dr, V_SKIP);
}

void doctor_note(struct doctor *dr, const char *fmt, ...)
{
	va_list ap;

	if (!dr->verbose)
		return;
	fputs("* doctor: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void report_start(const struct doctor *dr)
{
	if (!dr->json)
		printf("ferry doctor %s (each probe waits at most %.0f s)\n", dr->shown,
		       dr->probe_ms / 1000.0);
}

void report_family(const struct doctor *dr, const struct family_seen *fs)
{
	if (dr->json)
		return;
	printf("\n%s:", family_name(fs->family));
	for (size_t i = 0; i < fs->n; i++)
		printf("%s %s", i > 0 ? "," : "", fs->addrs[i]);
	printf("\n");
}

void report_end(const struct doctor *dr, int status)
{
	if (dr->json)
		json_report(dr, status);
	else
		printf("\nsummary: %zu pass, %zu warn, %zu fail, %zu skip\n",
		       dr->count[V_PASS], dr->count[V_WARN], dr->count[V_FAIL], dr->count[V_SKIP]);
}
