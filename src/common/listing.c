/*
 * listing.c: directory listing lines for both ends: LIST in the "ls -l" shape vsftpd
 * writes, MLSx fact lines (RFC 3659 s.7) and the YYYYMMDDHHMMSS time (s.2.3).
 *
 * Never locale-dependent: month names come from our own table and all times are UTC, so a
 * listing reads the same whatever the server's environment.  A name holding CR or LF is
 * written with '?' in their place: a file name must not be able to forge listing lines.
 */
#include "listing.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "num.h"

/* ls -l shows the year instead of the time for entries older than about six months. */
#define RECENT_SECONDS (180 * 24 * 60 * 60)

static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static char type_letter(mode_t m)
{
	if (S_ISDIR(m))
		return 'd';
	if (S_ISLNK(m))
		return 'l';
	if (S_ISCHR(m))
		return 'c';
	if (S_ISBLK(m))
		return 'b';
	if (S_ISFIFO(m))
		return 'p';
	if (S_ISSOCK(m))
		return 's';
	return '-';
}

/* x is the execute bit; special is setuid/setgid/sticky, shown as lower (x) or upper. */
static char exec_letter(mode_t m, mode_t x, mode_t special, char lower, char upper)
{
	if (m & special)
		return (m & x) ? lower : upper;
	return (m & x) ? 'x' : '-';
}

static void perm_string(mode_t m, char out[11])
{
	out[0] = type_letter(m);
	out[1] = (m & S_IRUSR) ? 'r' : '-';
	out[2] = (m & S_IWUSR) ? 'w' : '-';
	out[3] = exec_letter(m, S_IXUSR, S_ISUID, 's', 'S');
	out[4] = (m & S_IRGRP) ? 'r' : '-';
	out[5] = (m & S_IWGRP) ? 'w' : '-';
	out[6] = exec_letter(m, S_IXGRP, S_ISGID, 's', 'S');
	out[7] = (m & S_IROTH) ? 'r' : '-';
	out[8] = (m & S_IWOTH) ? 'w' : '-';
	out[9] = exec_letter(m, S_IXOTH, S_ISVTX, 't', 'T');
	out[10] = '\0';
}

/*
 * Numbers are written by hand rather than with printf: a listing of 10,000 entries spent a
 * third of its user time in vfprintf.  The decimal digits of v, right-aligned with pad in
 * at least width characters, at out (which holds 20 + width bytes); returns the length.
 */
static size_t put_dec(char *out, uint64_t v, size_t width, char pad)
{
	char tmp[20];
	size_t n = 0, len = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (len + n < width)
		out[len++] = pad;
	while (n > 0)
		out[len++] = tmp[--n];
	return len;
}

/* A signed year: a time_t far in the past has a negative one. */
static size_t put_year(char *out, long long y)
{
	if (y >= 0)
		return put_dec(out, (uint64_t)y, 1, ' ');
	out[0] = '-';
	return 1 + put_dec(out + 1, (uint64_t)(-(y + 1)) + 1, 1, ' ');
}

/* s, then spaces up to width (never cut: a longer s widens its column, as ls does). */
static int append_left(struct buf *b, const char *s, size_t width)
{
	static const char spaces[] = "        ";
	size_t n = strlen(s);
	int rc = buf_append(b, s, n);
	while (rc == FERR_OK && n < width) {
		size_t k = width - n < sizeof(spaces) - 1 ? width - n : sizeof(spaces) - 1;
		rc = buf_append(b, spaces, k);
		n += k;
	}
	return rc;
}

/* "Jan 01 12:00" or "Jan 01  2023" at out (32 bytes at least); returns the length. */
static size_t list_date(time_t t, time_t now, char *out)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_mon < 0 || tm.tm_mon > 11) {
		memcpy(out, "Jan 01  1970", 12);
		return 12;
	}
	memcpy(out, months[tm.tm_mon], 3);
	size_t n = 3;
	out[n++] = ' ';
	n += put_dec(out + n, (uint64_t)tm.tm_mday, 2, '0');
	out[n++] = ' ';
	/* Computed in double: the difference of two extreme time_t values would overflow. */
	double age = (double)now - (double)t;
	if (age < RECENT_SECONDS && age > -RECENT_SECONDS) {
		n += put_dec(out + n, (uint64_t)tm.tm_hour, 2, '0');
		out[n++] = ':';
		n += put_dec(out + n, (uint64_t)tm.tm_min, 2, '0');
	} else {
		out[n++] = ' ';
		n += put_year(out + n, (long long)tm.tm_year + 1900);
	}
	return n;
}

/* Append a name with CR and LF replaced, so it stays on its own line. */
static int append_name(struct buf *b, const char *name)
{
	for (;;) {
		size_t n = strcspn(name, "\r\n");
		int rc = buf_append(b, name, n);
		if (rc != FERR_OK || name[n] == '\0')
			return rc;
		rc = buf_append_char(b, '?');
		if (rc != FERR_OK)
			return rc;
		name += n + 1;
	}
}

static int rollback(struct buf *b, size_t len, int rc)
{
	b->len = len;
	if (b->data != NULL)
		b->data[len] = '\0';
	return rc;
}

int listing_format_list(struct buf *b, const struct listing_entry *e, time_t now)
{
	char head[64], tail[96];
	size_t old = b->len, h = 0, t = 0;

	/* vsftpd's widths: nlink 4, owner and group 8 (left), size 8 (wider if needed). */
	perm_string(e->mode, head);
	h = 10;
	head[h++] = ' ';
	h += put_dec(head + h, e->nlink, 4, ' ');
	head[h++] = ' ';
	t = put_dec(tail, e->size, 8, ' ');
	tail[t++] = ' ';
	t += list_date(e->mtime, now, tail + t);
	tail[t++] = ' ';
	int rc = buf_append(b, head, h);
	if (rc == FERR_OK)
		rc = append_left(b, e->owner ? e->owner : "?", 8);
	if (rc == FERR_OK)
		rc = buf_append_char(b, ' ');
	if (rc == FERR_OK)
		rc = append_left(b, e->group ? e->group : "?", 8);
	if (rc == FERR_OK)
		rc = buf_append_char(b, ' ');
	if (rc == FERR_OK)
		rc = buf_append(b, tail, t);
	if (rc == FERR_OK)
		rc = append_name(b, e->name ? e->name : "");
	if (rc == FERR_OK)
		rc = buf_append(b, "\r\n", 2);
	return rc == FERR_OK ? FERR_OK : rollback(b, old, rc);
}

/* RFC 3659 s.7.5.1 types, with the "OS.unix=" escape for everything else. */
static const char *mlsx_type(mode_t m)
{
	if (S_ISREG(m))
		return "file";
	if (S_ISDIR(m))
		return "dir";
	if (S_ISLNK(m))
		return "OS.unix=symlink";
	if (S_ISCHR(m))
		return "OS.unix=chr";
	if (S_ISBLK(m))
		return "OS.unix=blk";
	if (S_ISFIFO(m))
		return "OS.unix=fifo";
	if (S_ISSOCK(m))
		return "OS.unix=socket";
	return "OS.unix=unknown";
}

/* The hexadecimal digits of v (lower case, no leading zeros) at out; returns the length. */
static size_t put_hex(char *out, uint64_t v)
{
	static const char hex[] = "0123456789abcdef";
	char tmp[16];
	size_t n = 0, len = 0;
	do {
		tmp[n++] = hex[v & 15];
		v >>= 4;
	} while (v != 0);
	while (n > 0)
		out[len++] = tmp[--n];
	return len;
}

/* "name=value;" */
static int append_fact(struct buf *b, const char *name, const char *value, size_t len)
{
	int rc = buf_append_str(b, name);
	if (rc == FERR_OK)
		rc = buf_append(b, value, len);
	if (rc == FERR_OK)
		rc = buf_append_char(b, ';');
	return rc;
}

static int mlsx_facts(struct buf *b, const struct listing_entry *e, const char *type,
		      const char *perm, unsigned facts)
{
	char v[64];
	size_t n;
	int rc = FERR_OK;

	if (facts & FACT_TYPE)
		rc = append_fact(b, "type=", type, strlen(type));
	if (rc == FERR_OK && (facts & FACT_SIZE) && strcmp(type, "file") == 0) {
		n = put_dec(v, e->size, 1, ' ');
		rc = append_fact(b, "size=", v, n);
	}
	if (rc == FERR_OK && (facts & FACT_MODIFY) &&
	    listing_format_time(v, sizeof(v), e->mtime) == FERR_OK)
		rc = append_fact(b, "modify=", v, 14);
	if (rc == FERR_OK && (facts & FACT_PERM) && perm != NULL)
		rc = append_fact(b, "perm=", perm, strlen(perm));
	if (rc == FERR_OK && (facts & FACT_UNIQUE)) {
		n = put_hex(v, e->dev);
		v[n++] = 'U';
		n += put_hex(v + n, e->ino);
		rc = append_fact(b, "unique=", v, n);
	}
	if (rc == FERR_OK && (facts & FACT_UNIX_MODE)) {
		unsigned m = (unsigned)(e->mode & 07777);
		v[0] = (char)('0' + ((m >> 9) & 7));
		v[1] = (char)('0' + ((m >> 6) & 7));
		v[2] = (char)('0' + ((m >> 3) & 7));
		v[3] = (char)('0' + (m & 7));
		rc = append_fact(b, "unix.mode=", v, 4);
	}
	return rc;
}

int listing_format_mlsx(struct buf *b, const struct listing_entry *e, const char *type,
			const char *perm, unsigned facts, bool leading_space)
{
	size_t old = b->len;
	int rc = FERR_OK;

	if (type == NULL)
		type = mlsx_type(e->mode);
	if (leading_space)
		rc = buf_append_char(b, ' ');
	if (rc == FERR_OK)
		rc = mlsx_facts(b, e, type, perm, facts);
	/* RFC 3659 s.7.2: the facts end with ';', then one space, then the name. */
	if (rc == FERR_OK)
		rc = buf_append_char(b, ' ');
	if (rc == FERR_OK)
		rc = append_name(b, e->name ? e->name : "");
	if (rc == FERR_OK)
		rc = buf_append(b, "\r\n", 2);
	return rc == FERR_OK ? FERR_OK : rollback(b, old, rc);
}

static const struct {
	const char *name;
	unsigned bit;
} fact_names[] = {
	{ "type", FACT_TYPE },	 { "size", FACT_SIZE }, { "modify", FACT_MODIFY },
	{ "perm", FACT_PERM },	 { "unique", FACT_UNIQUE },
	{ "unix.mode", FACT_UNIX_MODE },
};
#define N_FACTS (sizeof(fact_names) / sizeof(fact_names[0]))

int listing_format_fact_list(struct buf *b, unsigned selected)
{
	size_t old = b->len;
	for (size_t i = 0; i < N_FACTS; i++) {
		int rc = buf_printf(b, "%s%s;", fact_names[i].name,
				    (selected & fact_names[i].bit) ? "*" : "");
		if (rc != FERR_OK)
			return rollback(b, old, rc);
	}
	return FERR_OK;
}

unsigned listing_parse_fact_list(const char *arg)
{
	unsigned set = 0;

	if (arg == NULL)
		return 0;
	while (*arg != '\0') {
		size_t n = strcspn(arg, ";");
		struct slice tok = { arg, n };
		for (size_t i = 0; i < N_FACTS; i++) {
			if (slice_eq_nocase(tok, slice_cstr(fact_names[i].name)))
				set |= fact_names[i].bit;
		}
		arg += n;
		if (*arg == ';')
			arg++;
	}
	return set;
}

int listing_format_time(char *out, size_t outsz, time_t t)
{
	struct tm tm;

	if (outsz < 15) {
		if (outsz > 0)
			out[0] = '\0';
		return FERR_TOOBIG;
	}
	/* Fourteen digits hold the years 0 to 9999 only. */
	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
		out[0] = '\0';
		return FERR_RANGE;
	}
	size_t n = put_dec(out, (uint64_t)(tm.tm_year + 1900), 4, '0');
	n += put_dec(out + n, (uint64_t)tm.tm_mon + 1, 2, '0');
	n += put_dec(out + n, (uint64_t)tm.tm_mday, 2, '0');
	n += put_dec(out + n, (uint64_t)tm.tm_hour, 2, '0');
	n += put_dec(out + n, (uint64_t)tm.tm_min, 2, '0');
	n += put_dec(out + n, (uint64_t)tm.tm_sec, 2, '0');
	out[n] = '\0';
	return FERR_OK;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return (m == 2 && is_leap(y)) ? 29 : days[m - 1];
}

/* The number in s[0..n), which the caller has checked to be n digits. */
static int digits(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

int listing_parse_time(const char *s, time_t *out)
{
	if (s == NULL || strnlen(s, 15) < 14 || !all_digits(s, 14))
		return FERR_INVALID;
	const char *rest = s + 14;
	if (*rest == '.') {
		/* RFC 3659 s.2.3: a fraction of a second may follow; we keep whole seconds. */
		size_t n = strspn(rest + 1, "0123456789");
		if (n == 0 || rest[1 + n] != '\0')
			return FERR_INVALID;
	} else if (*rest != '\0') {
		return FERR_INVALID;
	}

	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	int year = digits(s, 4), mon = digits(s + 4, 2), day = digits(s + 6, 2);
	int hour = digits(s + 8, 2), min = digits(s + 10, 2), sec = digits(s + 12, 2);
	if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 ||
	    min > 59 || sec > 60)
		return FERR_INVALID;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	*out = timegm(&tm);
	return FERR_OK;
}

static void parsed_init(struct listing_parsed *out)
{
	memset(out, 0, sizeof(*out));
}

/* Store a type value, canonical lower case for the RFC 3659 s.7.5.1 names. */
static void set_type(struct listing_parsed *out, const char *v, size_t n)
{
	static const char *const known[] = { "file", "dir", "cdir", "pdir" };
	struct slice val = { v, n };

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (slice_eq_nocase(val, slice_cstr(known[i]))) {
			(void)str_copy(out->type, sizeof(out->type), known[i]);
			return;
		}
	}
	/* Others (OS.unix=...) are kept as far as they fit: the client only shows them. */
	if (n >= sizeof(out->type))
		n = sizeof(out->type) - 1;
	memcpy(out->type, v, n);
	out->type[n] = '\0';
}

/* One "key=value" fact (without its ';'). */
static int mlsx_fact(struct listing_parsed *out, const char *f, size_t n)
{
	const char *eq = memchr(f, '=', n);
	if (eq == NULL || eq == f)
		return FERR_INVALID;
	struct slice key = { f, (size_t)(eq - f) };
	const char *v = eq + 1;
	size_t vn = n - key.len - 1;

	if (slice_eq_nocase(key, SLICE_LIT("type"))) {
		set_type(out, v, vn);
	} else if (slice_eq_nocase(key, SLICE_LIT("size"))) {
		if (num_parse_u64((struct slice){ v, vn }, UINT64_MAX, &out->size) != FERR_OK)
			return FERR_INVALID;
		out->has_size = true;
	} else if (slice_eq_nocase(key, SLICE_LIT("modify"))) {
		char t[40];
		if (vn >= sizeof(t))
			return FERR_INVALID;
		memcpy(t, v, vn);
		t[vn] = '\0';
		if (listing_parse_time(t, &out->modify) != FERR_OK)
			return FERR_INVALID;
		out->has_modify = true;
	}
	/* RFC 3659 s.7.9: facts we do not know are ignored. */
	return FERR_OK;
}

/* RFC 3659 s.7.2: entry = [facts] SP pathname, facts = 1*(fact ";"). */
int listing_parse_mlsx(const char *line, struct listing_parsed *out)
{
	parsed_init(out);
	if (line == NULL)
		return FERR_INVALID;

	const char *p = line;
	while (*p != ' ') {
		size_t n = strcspn(p, "; ");
		if (p[n] != ';')
			return FERR_INVALID;
		if (mlsx_fact(out, p, n) != FERR_OK)
			return FERR_INVALID;
		p += n + 1;
	}
	p++;
	if (*p == '\0')
		return FERR_INVALID;
	out->name = p;
	out->name_len = strlen(p);
	return FERR_OK;
}

/* A field of an ls -l line: start and length. */
struct field {
	const char *p;
	size_t n;
};

static bool month_index(struct field f, int *mon)
{
	if (f.n != 3)
		return false;
	for (int i = 0; i < 12; i++) {
		if (slice_eq_nocase((struct slice){ f.p, 3 }, (struct slice){ months[i], 3 })) {
			*mon = i;
			return true;
		}
	}
	return false;
}

/*
 * Date fields "Mon DD HH:MM" or "Mon DD YYYY" into a UTC time.  Without a year, the year is
 * now's, or the one before if that would put the date in the future (as ls -l means it).
 */
static bool list_time(const struct field f[3], time_t now, time_t *out)
{
	int mon, tm_year, hour = 0, min = 0; /* tm_year counts from 1900, as in struct tm */
	bool guess_year = false;

	if (!month_index(f[0], &mon) || f[1].n < 1 || f[1].n > 2 || !all_digits(f[1].p, f[1].n))
		return false;
	int day = digits(f[1].p, f[1].n);
	if (day < 1 || day > 31)
		return false;

	if (f[2].n == 4 && all_digits(f[2].p, 4)) {
		tm_year = digits(f[2].p, 4) - 1900;
	} else if (f[2].n == 5 && f[2].p[2] == ':' && all_digits(f[2].p, 2) &&
		   all_digits(f[2].p + 3, 2)) {
		hour = digits(f[2].p, 2);
		min = digits(f[2].p + 3, 2);
		if (hour > 23 || min > 59)
			return false;
		struct tm nt;
		if (gmtime_r(&now, &nt) == NULL)
			return false;
		tm_year = nt.tm_year;
		guess_year = tm_year > INT_MIN;
	} else {
		return false;
	}

	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = tm_year;
	tm.tm_mon = mon;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	struct tm copy = tm;
	time_t t = timegm(&copy);
	/* A day of slack for clocks and time zones that disagree. */
	if (guess_year && t > now && t - now > 24 * 60 * 60) {
		tm.tm_year--;
		t = timegm(&tm);
	}
	*out = t;
	return true;
}

/* Split off the next space-separated field; false at the end of the line. */
static bool next_field(const char **s, struct field *f)
{
	while (**s == ' ')
		(*s)++;
	if (**s == '\0')
		return false;
	f->p = *s;
	while (**s != ' ' && **s != '\0')
		(*s)++;
	f->n = (size_t)(*s - f->p);
	return true;
}

#define LIST_FIELDS_MAX 8

/*
 * Best effort, for the shape vsftpd and ls -l write: perms, links, owner, [group], size,
 * month, day, time or year, name.  The date is found by its month name, so a listing
 * without the group column is read too.  The name is everything after the one space that
 * follows the date, so inner and trailing spaces survive; "a -> b" keeps only "a".
 */
int listing_parse_list(const char *line, time_t now, struct listing_parsed *out)
{
	struct field f[LIST_FIELDS_MAX];
	const char *ends[LIST_FIELDS_MAX];
	size_t nf = 0;

	parsed_init(out);
	if (line == NULL)
		return FERR_INVALID;
	const char *s = line;
	while (nf < LIST_FIELDS_MAX && next_field(&s, &f[nf])) {
		ends[nf] = s;
		nf++;
	}
	if (nf < 7 || f[0].n < 10 || f[0].n > 11 || strchr("-dlcbps", f[0].p[0]) == NULL)
		return FERR_INVALID;

	/* The month is field 5 with a group column (4 without); try both. */
	size_t k;
	for (k = 4; k <= 5; k++) {
		if (k + 2 < nf && list_time(&f[k], now, &out->modify))
			break;
	}
	if (k > 5)
		return FERR_INVALID;
	out->has_modify = true;
	if (all_digits(f[k - 1].p, f[k - 1].n) &&
	    num_parse_u64((struct slice){ f[k - 1].p, f[k - 1].n }, UINT64_MAX, &out->size) ==
		    FERR_OK)
		out->has_size = true;

	const char *name = ends[k + 2];
	if (*name != ' ' || name[1] == '\0')
		return FERR_INVALID;
	name++;
	out->name = name;
	out->name_len = strlen(name);

	if (f[0].p[0] == 'd') {
		(void)str_copy(out->type, sizeof(out->type), "dir");
	} else if (f[0].p[0] == '-') {
		(void)str_copy(out->type, sizeof(out->type), "file");
	} else if (f[0].p[0] == 'l') {
		const char *arrow = strstr(name, " -> ");
		if (arrow != NULL && arrow > name)
			out->name_len = (size_t)(arrow - name);
	}
	return FERR_OK;
}
