/*
 * doctor_json.c: ferry doctor --json, the report as one JSON document (RFC 8259) on
 * standard output once every check is made: the URL (its password masked), the probe
 * time-out, the families and their addresses, each check with its details, the summary
 * and the exit status.
 *
 * What this file must never do: write anything that is not valid JSON in UTF-8.  Every
 * string goes through json_str(): quotes, backslashes and control characters escaped,
 * bytes that are not UTF-8 (a server's text can hold anything) as U+FFFD.
 */
#include <stdio.h>

#include "client/doctor_int.h"

/* The second byte's bounds after a lead byte c (RFC 3629 s.4: no overlong forms, no surrogates). */
static void utf8_second(unsigned char c, unsigned char *lo, unsigned char *hi)
{
	*lo = 0x80;
	*hi = 0xbf;
	if (c == 0xe0)
		*lo = 0xa0;
	else if (c == 0xed)
		*hi = 0x9f;   /* no surrogates */
	else if (c == 0xf0)
		*lo = 0x90;
	else if (c == 0xf4)
		*hi = 0x8f;
}

/* The length of the valid UTF-8 sequence at s (RFC 3629 s.4), or 0. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0], lo, hi;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	utf8_second(c, &lo, &hi);
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	}
	return n;
}

/* A JSON string (RFC 8259 s.7); bytes that are not UTF-8 become U+FFFD. */
static void json_str(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', out);
	while (*p != '\0') {
		if (*p == '"' || *p == '\\') {
			fprintf(out, "\\%c", *p++);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(out, "\\u%04x", *p++);
		} else if (*p < 0x80) {
			fputc(*p++, out);
		} else {
			size_t n = utf8_len(p);
			if (n == 0) {
				fputs("\\ufffd", out);
				p++;
			} else {
				fwrite(p, 1, n, out);
				p += n;
			}
		}
	}
	fputc('"', out);
}

/* A string, or null for NULL. */
static void json_str_or_null(FILE *out, const char *s)
{
	if (s != NULL)
		json_str(out, s);
	else
		fputs("null", out);
}

static void json_details(FILE *out, const struct check *c)
{
	fputs("{", out);
	for (size_t i = 0; i < c->nd; i++) {
		const struct detail *d = &c->d[i];
		fputs(i > 0 ? ", " : "", out);
		json_str(out, d->key);
		fputs(": ", out);
		switch (d->type) {
		case D_STR: json_str(out, d->s); break;
		case D_INT: fprintf(out, "%lld", d->i); break;
		case D_REAL: fprintf(out, "%.6f", d->r); break;
		case D_BOOL: fputs(d->i ? "true" : "false", out); break;
		}
	}
	fputs("}", out);
}

static void json_check(FILE *out, const struct check *c)
{
	bool has_fix = (c->v == V_WARN || c->v == V_FAIL) && c->fix[0] != '\0';

	fputs("    {\"name\": ", out);
	json_str(out, c->name);
	fputs(", \"label\": ", out);
	json_str(out, c->label);
	fprintf(out, ", \"family\": \"%s\", \"mode\": ", c->family == AF_INET6 ? "ipv6" : "ipv4");
	json_str_or_null(out, c->mode);
	fprintf(out, ", \"status\": \"%s\", \"explanation\": ", verdict_names[c->v]);
	json_str(out, c->why);
	fputs(", \"fix\": ", out);
	json_str_or_null(out, has_fix ? c->fix : NULL);
	fputs(", \"details\": ", out);
	json_details(out, c);
	fputs("}", out);
}

static void json_families(FILE *out, const struct doctor *dr)
{
	fputs("[", out);
	for (size_t i = 0; i < dr->nfams; i++) {
		const struct family_seen *fs = &dr->fams[i];
		fprintf(out, "%s{\"family\": \"%s\", \"addresses\": [", i > 0 ? ", " : "",
			fs->family == AF_INET6 ? "ipv6" : "ipv4");
		for (size_t j = 0; j < fs->n; j++) {
			fputs(j > 0 ? ", " : "", out);
			json_str(out, fs->addrs[j]);
		}
		fputs("]}", out);
	}
	fputs("]", out);
}

void json_report(const struct doctor *dr, int status)
{
	FILE *out = stdout;

	fputs("{\n  \"url\": ", out);
	json_str(out, dr->shown);
	fprintf(out, ",\n  \"probe_timeout_seconds\": %.3f,\n  \"families\": ", dr->probe_ms / 1000.0);
	json_families(out, dr);
	fputs(",\n  \"checks\": [\n", out);
	for (size_t i = 0; i < dr->n; i++) {
		json_check(out, &dr->checks[i]);
		fputs(i + 1 < dr->n ? ",\n" : "\n", out);
	}
	fprintf(out, "  ],\n  \"summary\": {\"pass\": %zu, \"warn\": %zu, \"fail\": %zu, "
		     "\"skip\": %zu},\n  \"exit_status\": %d\n}\n",
		dr->count[V_PASS], dr->count[V_WARN], dr->count[V_FAIL], dr->count[V_SKIP], status);
}
