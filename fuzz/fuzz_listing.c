/*
 * fuzz_listing.c: the client-side listing parsers (MLSx, LIST, times, OPTS MLST facts),
 * then format/parse round trips with the input as a file name.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/listing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 2024-03-01 00:00:00 UTC: a fixed "now", so runs are reproducible. */
#define NOW ((time_t)1709251200)
#define DAY (24 * 60 * 60)

static void check_parsed(const char *line, const struct listing_parsed *p)
{
	size_t n = strlen(line);
	if (p->name == NULL || p->name < line || p->name + p->name_len > line + n ||
	    p->name_len == 0)
		abort();
	if (memchr(p->type, '\0', sizeof(p->type)) == NULL)
		abort();
}

static uint64_t mix(const uint8_t *data, size_t size)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 1099511628211ULL;
	return h;
}

/* The name is the whole input when it can be one: no CR, LF, and not empty. */
static void format_round_trips(const char *name, uint64_t h)
{
	size_t n = strlen(name);
	if (n == 0 || n > 2000 || strpbrk(name, "\r\n") != NULL)
		return;

	bool recent = h & 1;
	time_t mtime = recent ? NOW - (time_t)((h >> 1) % (179 * DAY))
			      : NOW - 200 * DAY - (time_t)((h >> 1) % (3650 * (uint64_t)DAY));
	struct listing_entry e = { .name = name, .mode = S_IFREG | (mode_t)((h >> 8) & 07777),
				   .nlink = (h >> 20) & 0xffff, .owner = "ftp", .group = "ftp",
				   .size = h >> 3, .mtime = mtime, .dev = h >> 5, .ino = h };
	struct buf b;
	struct listing_parsed p;
	buf_init(&b, 8192);

	if (listing_format_list(&b, &e, NOW) != FERR_OK || b.len < 2)
		abort();
	b.data[b.len - 2] = '\0';
	if (listing_parse_list(b.data, NOW, &p) != FERR_OK)
		abort();
	time_t want = recent ? mtime - mtime % 60 : mtime - mtime % DAY;
	if (p.name_len != n || memcmp(p.name, name, n) != 0 || strcmp(p.type, "file") != 0 ||
	    !p.has_size || p.size != e.size || !p.has_modify || p.modify != want)
		abort();

	buf_reset(&b);
	if (listing_format_mlsx(&b, &e, NULL, "adfrw", FACT_ALL, false) != FERR_OK)
		abort();
	b.data[b.len - 2] = '\0';
	if (listing_parse_mlsx(b.data, &p) != FERR_OK)
		abort();
	if (strcmp(p.name, name) != 0 || strcmp(p.type, "file") != 0 || !p.has_size ||
	    p.size != e.size || !p.has_modify || p.modify != mtime)
		abort();
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	uint64_t h = mix(data, size);

	struct listing_parsed p;
	if (listing_parse_mlsx(s, &p) == FERR_OK)
		check_parsed(s, &p);
	if (listing_parse_list(s, NOW, &p) == FERR_OK)
		check_parsed(s, &p);
	/* Any "now" at all, extremes included, must be safe. */
	if (listing_parse_list(s, (time_t)h, &p) == FERR_OK)
		check_parsed(s, &p);

	time_t t, back;
	if (listing_parse_time(s, &t) == FERR_OK) {
		char f[15];
		if (listing_format_time(f, sizeof(f), t) != FERR_OK ||
		    listing_parse_time(f, &back) != FERR_OK || back != t)
			abort();
	}

	unsigned facts = listing_parse_fact_list(s);
	if (facts & ~(unsigned)FACT_ALL)
		abort();

	/* Arbitrary times and modes must format without trouble. */
	struct listing_entry e = { .name = "x", .mode = (mode_t)h, .nlink = h, .owner = "o",
				   .group = "g", .size = h, .mtime = (time_t)h, .dev = h, .ino = h };
	struct buf b;
	buf_init(&b, 4096);
	if (listing_format_list(&b, &e, (time_t)(h >> 7)) != FERR_OK)
		abort();
	if (listing_format_mlsx(&b, &e, NULL, NULL, facts, true) != FERR_OK)
		abort();
	buf_free(&b);

	format_round_trips(s, h);
	free(s);
	return 0;
}
