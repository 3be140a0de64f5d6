/*
 * progress_fmt.c: the pure half of the progress bar: human units, durations, the bar, the
 * shortening of a name to a width, the layout of one line, and the smoothed rate.  It
 * must never do I/O or read a clock (progress.c does both), so that every line it can draw
 * is a unit test away (tests/unit/test_progress_fmt.c).
 *
 * The lines are plain ASCII apart from the name, which is sanitised here: a remote or
 * percent-decoded name is untrusted, and a terminal obeys the escape sequences in it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "client/progress_fmt.h"

#define SEP "  "                 /* between the fields of a line */
#define SEP_COLS 2
#define BAR_MIN 10               /* inner columns of the bar: fewer and it is left out */
#define BAR_MAX 40
#define NAME_MIN 12              /* a name is shortened to this before the bar goes */
/*
 * The columns kept for the numbers of a running line with a known size, so that the bar
 * does not move when they grow: " 45%  5.6 MiB / 12.3 MiB  4.1 MiB/s  ETA 00:02" is 46;
 * 50 holds all but the rarer ones with "1023.9 KiB" in them.
 */
#define STATS_RESERVE 50
/* The same without a size: "1023.9 KiB  1023.9 KiB/s  ETA --:--" is 35. */
#define STATS_RESERVE_UNSIZED 36

/* A bounded writer into a caller's buffer: what does not fit whole is left out. */
struct out {
	char *p;
	size_t sz, len;
};

static struct out out_start(char *p, size_t sz)
{
	if (sz > 0)
		p[0] = '\0';
	return (struct out){ .p = p, .sz = sz, .len = 0 };
}

static bool out_put(struct out *o, const char *s, size_t n)
{
	if (o->sz == 0 || n >= o->sz - o->len)
		return false;
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
	return true;
}

static void out_spaces(struct out *o, unsigned n)
{
	while (n-- > 0 && out_put(o, " ", 1))
		;
}

/* ---- numbers ---- */

void pfmt_bytes(char *out, size_t outsz, uint64_t n)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	const unsigned last = sizeof(unit) / sizeof(unit[0]) - 1;

	if (n < 1024) {
		snprintf(out, outsz, "%" PRIu64 " B", n);
		return;
	}
	for (unsigned k = 1;; k++) {
		unsigned shift = 10 * k;
		uint64_t q = n >> shift;
		if (q >= 1024 && k < last)
			continue;
		/* Tenths, rounded, in integers: (n mod 2^shift) * 10 fits for shift <= 60. */
		uint64_t rem = n & ((UINT64_C(1) << shift) - 1);
		uint64_t tenths = q * 10 + ((rem * 10 + (UINT64_C(1) << (shift - 1))) >> shift);
		if (tenths >= 10240 && k < last)
			continue;   /* 1023.95 KiB rounds to 1.0 MiB, not to "1024.0 KiB" */
		snprintf(out, outsz, "%" PRIu64 ".%u %s", tenths / 10, (unsigned)(tenths % 10),
			 unit[k]);
		return;
	}
}

void pfmt_rate(char *out, size_t outsz, double bytes_per_s)
{
	char b[PFMT_BYTES_MAX];

	if (!(bytes_per_s >= 0)) {
		snprintf(out, outsz, "-- B/s");
		return;
	}
	uint64_t n = bytes_per_s >= 1.8e19 ? UINT64_MAX : (uint64_t)(bytes_per_s + 0.5);
	pfmt_bytes(b, sizeof(b), n);
	snprintf(out, outsz, "%s/s", b);
}

void pfmt_clock(char *out, size_t outsz, double seconds, bool pad_minutes)
{
	if (!(seconds >= 0) || seconds > 99999.0 * 3600) {
		snprintf(out, outsz, "--:--");
		return;
	}
	uint64_t t = (uint64_t)(seconds + 0.5);
	unsigned h = (unsigned)(t / 3600), m = (unsigned)(t / 60 % 60), s = (unsigned)(t % 60);
	if (h > 0)
		snprintf(out, outsz, "%u:%02u:%02u", h, m, s);
	else
		snprintf(out, outsz, pad_minutes ? "%02u:%02u" : "%u:%02u", m, s);
}

double pfmt_eta(uint64_t done, uint64_t total, double bytes_per_s)
{
	if (total == 0 || !(bytes_per_s > 0))
		return -1;
	if (done >= total)
		return 0;
	return (double)(total - done) / bytes_per_s;
}

/* Whole percent, and never 100 before the end. */
static unsigned percent(uint64_t done, uint64_t total)
{
	if (total == 0)
		return 0;
	if (done >= total)
		return 100;
	unsigned p = (unsigned)((double)done * 100.0 / (double)total);
	return p >= 100 ? 99 : p;
}

/* ---- names ---- */

/* One character of a name as the terminal will see it: its bytes, or one '?' if bad. */
struct glyph {
	size_t len;
	unsigned cols;
	bool bad;
};

static bool unsafe_code_point(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) ||          /* C1 controls (CSI is 0x9b) */
	       (cp >= 0x202a && cp <= 0x202e) ||      /* bidirectional embeddings, overrides */
	       (cp >= 0x2066 && cp <= 0x2069);        /* bidirectional isolates */
}

static struct glyph next_glyph(const unsigned char *s)
{
	struct glyph bad = { .len = 1, .cols = 1, .bad = true };
	unsigned char c = s[0];
	unsigned need;
	uint32_t cp, min;

	if (c < 0x80)
		return (struct glyph){ .len = 1, .cols = 1, .bad = c < 0x20 || c == 0x7f };
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1, cp = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2, cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3, cp = c & 0x07, min = 0x10000;
	} else {
		return bad;
	}
	for (unsigned i = 1; i <= need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return bad;    /* a NUL stops here too */
		cp = cp << 6 | (s[i] & 0x3f);
	}
	bad.len = need + 1;
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || unsafe_code_point(cp))
		return bad;
	return (struct glyph){ .len = need + 1, .cols = cp >= 0x1100 ? 2 : 1, .bad = false };
}

static bool put_glyph(struct out *o, const char *s, struct glyph g)
{
	return g.bad ? out_put(o, "?", 1) : out_put(o, s, g.len);
}

unsigned pfmt_name_cols(const char *name)
{
	unsigned cols = 0;

	for (const char *s = name; *s != '\0';) {
		struct glyph g = next_glyph((const unsigned char *)s);
		cols += g.cols;
		s += g.len;
	}
	return cols;
}

/* Writes the glyphs of s while they fit in cols columns; returns the columns written. */
static unsigned put_head(struct out *o, const char *s, unsigned cols)
{
	unsigned used = 0;

	while (*s != '\0') {
		struct glyph g = next_glyph((const unsigned char *)s);
		if (used + g.cols > cols || !put_glyph(o, s, g))
			break;
		used += g.cols;
		s += g.len;
	}
	return used;
}

unsigned pfmt_name(char *out, size_t outsz, const char *name, unsigned cols)
{
	struct out o = out_start(out, outsz);
	unsigned total = pfmt_name_cols(name);

	if (total <= cols || cols < 4)
		return put_head(&o, name, cols);
	unsigned keep = cols - 3, tail = keep / 2;
	unsigned used = put_head(&o, name, keep - tail);
	if (!out_put(&o, "...", 3))
		return used;
	used += 3;
	/* The tail: from the first character after which at most tail columns are left. */
	const char *s = name;
	unsigned before = 0;
	while (*s != '\0' && total - before > tail) {
		struct glyph g = next_glyph((const unsigned char *)s);
		before += g.cols;
		s += g.len;
	}
	return used + put_head(&o, s, tail);
}

void pfmt_bar(char *out, size_t outsz, unsigned inner, double fraction)
{
	struct out o = out_start(out, outsz);

	if (!(fraction >= 0))
		fraction = 0;
	if (fraction > 1)
		fraction = 1;
	unsigned full = (unsigned)(fraction * inner);
	if (full > inner)
		full = inner;
	out_put(&o, "[", 1);
	for (unsigned i = 0; i < inner; i++) {
		const char *c = i < full ? "=" : i == full && full > 0 ? ">" : " ";
		out_put(&o, c, 1);
	}
	out_put(&o, "]", 1);
}

/* ---- lines ---- */

/* The numbers on the right of a line (ASCII). */
static void stats(char *s, size_t sz, const struct pfmt_view *v)
{
	char done[PFMT_BYTES_MAX], total[PFMT_BYTES_MAX], rate[PFMT_BYTES_MAX + 2],
		clock[PFMT_CLOCK_MAX];
	unsigned pct = percent(v->done, v->total);

	pfmt_bytes(done, sizeof(done), v->done);
	pfmt_bytes(total, sizeof(total), v->total);
	pfmt_rate(rate, sizeof(rate), v->rate);
	switch (v->state) {
	case PFMT_DONE:
		pfmt_clock(clock, sizeof(clock), v->elapsed, false);
		if (v->rate >= 0)
			snprintf(s, sz, "100%%" SEP "%s" SEP "%s" SEP "in %s", done, rate, clock);
		else
			snprintf(s, sz, "100%%" SEP "%s" SEP "in %s", done, clock);
		return;
	case PFMT_FAILED:
		if (v->total > 0)
			snprintf(s, sz, "%u%%" SEP "%s of %s" SEP "failed", pct, done, total);
		else
			snprintf(s, sz, "%s" SEP "failed", done);
		return;
	case PFMT_RUNNING:
		break;
	}
	pfmt_clock(clock, sizeof(clock), pfmt_eta(v->done, v->total, v->rate), true);
	if (v->total > 0)
		snprintf(s, sz, "%3u%%" SEP "%s / %s" SEP "%s" SEP "ETA %s", pct, done, total, rate,
			 clock);
	else
		snprintf(s, sz, "%s" SEP "%s" SEP "ETA %s", done, rate, clock);
}

/*
 * The columns of the name and of the bar's inside (0: no bar), given the columns a line
 * may take (avail) and those of its numbers (ncols).  A running line keeps a fixed room
 * for its numbers (STATS_RESERVE*), so that its name and its bar stay put as the numbers
 * grow; only one with a known size has a bar.  A final line is drawn once: its name gets
 * all the room the numbers leave.
 */
static void layout(const struct pfmt_view *v, const char *name, int avail, int ncols,
		   int *name_room, int *bar)
{
	*bar = 0;
	if (v->state != PFMT_RUNNING) {
		*name_room = avail - SEP_COLS - ncols;
		return;
	}
	int reserve = v->total > 0 ? STATS_RESERVE : STATS_RESERVE_UNSIZED;
	int left = avail - SEP_COLS - (ncols > reserve ? ncols : reserve);
	*name_room = left;
	if (v->total == 0)
		return;
	int name_cols = (int)pfmt_name_cols(name);
	int around = SEP_COLS + 2;    /* "  [" and "]" */
	if (left >= name_cols + around + BAR_MIN) {
		*name_room = name_cols;
		*bar = left - name_cols - around;
		if (*bar > BAR_MAX)
			*bar = BAR_MAX;
	} else if (left >= NAME_MIN + around + BAR_MIN) {
		*name_room = left - around - BAR_MIN;
		*bar = BAR_MIN;
	}
}

unsigned pfmt_line(char *out, size_t outsz, const struct pfmt_view *v, unsigned width)
{
	char nums[128], name[PFMT_LINE_MAX], bar[BAR_MAX + 3];
	struct out o = out_start(out, outsz);
	int name_room, bar_inner;

	if (width == 0)
		width = 80;
	if (width > PFMT_WIDTH_MAX)
		width = PFMT_WIDTH_MAX;
	int avail = (int)width - 1;       /* the last column stays empty: no wrap */
	stats(nums, sizeof(nums), v);
	int ncols = (int)strlen(nums);
	const char *label = v->name != NULL ? v->name : "";
	layout(v, label, avail, ncols, &name_room, &bar_inner);

	int cols = 0;
	if (name_room > 0 && label[0] != '\0') {
		cols = (int)pfmt_name(name, sizeof(name), label, (unsigned)name_room);
		out_put(&o, name, strlen(name));
		if (bar_inner > 0) {
			out_spaces(&o, (unsigned)(name_room - cols));   /* the bar stays put */
			cols = name_room;
		}
	}
	if (bar_inner > 0) {
		double fraction = v->total > 0 ? (double)v->done / (double)v->total : 0;
		pfmt_bar(bar, sizeof(bar), (unsigned)bar_inner, fraction);
		if (cols > 0) {
			out_put(&o, SEP, SEP_COLS);
			cols += SEP_COLS;
		}
		out_put(&o, bar, strlen(bar));
		cols += bar_inner + 2;
	}
	if (cols > 0 && cols + SEP_COLS < avail) {
		out_put(&o, SEP, SEP_COLS);
		cols += SEP_COLS;
	}
	/* On a terminal too narrow for them, the numbers are cut (they are ASCII). */
	int fit = avail - cols;
	if (fit > ncols)
		fit = ncols;
	if (fit > 0) {
		out_put(&o, nums, (size_t)fit);
		cols += fit;
	}
	return (unsigned)cols;
}

/* ---- the rate ---- */

void pfmt_rate_init(struct pfmt_rate *r, double window)
{
	memset(r, 0, sizeof(*r));
	r->window = window > 0 ? window : 5.0;
}

static unsigned slot(const struct pfmt_rate *r, unsigned i)
{
	return (r->first + i) % PFMT_RATE_SLOTS;
}

void pfmt_rate_add(struct pfmt_rate *r, double t, uint64_t bytes)
{
	if (r->have_now && (t < r->now_t || bytes < r->now_bytes))
		pfmt_rate_init(r, r->window);
	r->now_t = t;
	r->now_bytes = bytes;
	r->have_now = true;
	if (r->count == 0 || t - r->t[slot(r, r->count - 1)] >= r->window / 16) {
		if (r->count == PFMT_RATE_SLOTS) {
			r->first = slot(r, 1);
			r->count--;
		}
		unsigned i = slot(r, r->count++);
		r->t[i] = t;
		r->bytes[i] = bytes;
	}
	/* Keep one sample at or before the window's start, none older. */
	while (r->count >= 2 && r->t[slot(r, 1)] <= t - r->window) {
		r->first = slot(r, 1);
		r->count--;
	}
}

double pfmt_rate_get(const struct pfmt_rate *r)
{
	if (r->count == 0 || !r->have_now)
		return -1;
	unsigned i = r->first;
	double span = r->now_t - r->t[i];
	if (span < 1e-3)
		return -1;
	return (double)(r->now_bytes - r->bytes[i]) / span;
}
