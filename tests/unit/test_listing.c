/* test_listing.c: LIST and MLSx lines, both ways, and the YYYYMMDDHHMMSS time. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/listing.h"

static time_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	return timegm(&tm);
}

#define DAY (24 * 60 * 60)

static struct listing_entry entry(const char *name, mode_t mode, uint64_t size, time_t mtime)
{
	struct listing_entry e = { .name = name, .mode = mode, .nlink = 1, .owner = "ftp",
				   .group = "ftp", .size = size, .mtime = mtime, .dev = 0x803,
				   .ino = 0x1f };
	return e;
}

static void expect_list(const struct listing_entry *e, time_t now, const char *want)
{
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(listing_format_list(&b, e, now), FERR_OK);
	assert_string_equal(b.data, want);
	buf_free(&b);
}

static void test_list_recent(void **state)
{
	(void)state;
	time_t mt = utc(2024, 1, 1, 12, 0, 0);
	struct listing_entry e = entry("name", S_IFDIR | 0755, 4096, mt);
	e.nlink = 2;
	expect_list(&e, utc(2024, 3, 1, 0, 0, 0),
		    "drwxr-xr-x    2 ftp      ftp          4096 Jan 01 12:00 name\r\n");
	e = entry("f.txt", S_IFREG | 0644, 12, utc(2024, 7, 9, 8, 5, 0));
	expect_list(&e, utc(2024, 7, 9, 9, 0, 0),
		    "-rw-r--r--    1 ftp      ftp            12 Jul 09 08:05 f.txt\r\n");
}

static void test_list_old_shows_year(void **state)
{
	(void)state;
	time_t now = utc(2024, 7, 1, 0, 0, 0);
	/* Six months (and more) ago: the year, two spaces before it. */
	struct listing_entry e = entry("old", S_IFREG | 0644, 1, now - 200 * DAY);
	expect_list(&e, now, "-rw-r--r--    1 ftp      ftp             1 Dec 14  2023 old\r\n");
	e.mtime = now - 180 * DAY;
	expect_list(&e, now, "-rw-r--r--    1 ftp      ftp             1 Jan 03  2024 old\r\n");
	e.mtime = now - 179 * DAY;
	expect_list(&e, now, "-rw-r--r--    1 ftp      ftp             1 Jan 04 00:00 old\r\n");
	/* Far in the future: the year too. */
	e.mtime = utc(2030, 5, 6, 7, 8, 9);
	expect_list(&e, now, "-rw-r--r--    1 ftp      ftp             1 May 06  2030 old\r\n");
	/* Before year 0 (a hostile or broken mtime): a negative year, as ls shows it. */
	e.mtime = (time_t)-62198755200 - 400 * DAY;
	struct tm tm;
	assert_non_null(gmtime_r(&e.mtime, &tm));
	char want[128];
	snprintf(want, sizeof(want), "-rw-r--r--    1 ftp      ftp             1 %s %02d  %lld old\r\n",
		 (const char *[]){ "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
				   "Oct", "Nov", "Dec" }[tm.tm_mon],
		 tm.tm_mday, (long long)tm.tm_year + 1900);
	assert_true(tm.tm_year + 1900 < 0);
	expect_list(&e, now, want);
}

static void test_list_modes(void **state)
{
	(void)state;
	time_t now = utc(2024, 1, 2, 0, 0, 0), mt = utc(2024, 1, 1, 0, 0, 0);
	struct {
		mode_t mode;
		const char *perms;
	} cases[] = {
		{ S_IFREG | 04755, "-rwsr-xr-x" }, { S_IFREG | 04644, "-rwSr--r--" },
		{ S_IFREG | 02755, "-rwxr-sr-x" }, { S_IFREG | 02745, "-rwxr-Sr-x" },
		{ S_IFDIR | 01777, "drwxrwxrwt" }, { S_IFDIR | 01776, "drwxrwxrwT" },
		{ S_IFLNK | 0777, "lrwxrwxrwx" },  { S_IFCHR | 0620, "crw--w----" },
		{ S_IFBLK | 0660, "brw-rw----" },  { S_IFIFO | 0600, "prw-------" },
		{ S_IFSOCK | 0755, "srwxr-xr-x" }, { S_IFREG | 0, "----------" },
		{ S_IFREG | 07777, "-rwsrwsrwt" },
	};
	struct buf b;
	buf_init(&b, 4096);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct listing_entry e = entry("x", cases[i].mode, 0, mt);
		buf_reset(&b);
		assert_int_equal(listing_format_list(&b, &e, now), FERR_OK);
		assert_memory_equal(b.data, cases[i].perms, 10);
		assert_int_equal(b.data[10], ' ');
	}
	buf_free(&b);
}

static void test_list_wide_fields(void **state)
{
	(void)state;
	time_t now = utc(2024, 1, 2, 0, 0, 0);
	struct listing_entry e = entry("big file", S_IFREG | 0600, 1234567890123ULL,
				       utc(2024, 1, 1, 23, 59, 0));
	e.owner = "averylongowner";
	e.group = "g";
	e.nlink = 123456;
	expect_list(&e, now,
		    "-rw------- 123456 averylongowner g        1234567890123 Jan 01 23:59 big file\r\n");
}

static void test_list_hostile_name(void **state)
{
	(void)state;
	time_t now = utc(2024, 1, 2, 0, 0, 0);
	struct listing_entry e = entry("a\r\n226 forged", S_IFREG | 0644, 0, now);
	expect_list(&e, now, "-rw-r--r--    1 ftp      ftp             0 Jan 02 00:00 a??226 forged\r\n");
}

static void test_list_toobig(void **state)
{
	(void)state;
	struct buf b;
	struct listing_entry e = entry("name", S_IFREG | 0644, 0, 0);
	buf_init(&b, 40);
	assert_int_equal(buf_append_str(&b, "keep"), FERR_OK);
	assert_int_equal(listing_format_list(&b, &e, 0), FERR_TOOBIG);
	assert_string_equal(b.data, "keep");
	assert_int_equal(listing_format_mlsx(&b, &e, NULL, "r", FACT_ALL, false), FERR_TOOBIG);
	assert_string_equal(b.data, "keep");
	buf_free(&b);
}

static void expect_mlsx(const struct listing_entry *e, const char *type, const char *perm,
			unsigned facts, bool lead, const char *want)
{
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(listing_format_mlsx(&b, e, type, perm, facts, lead), FERR_OK);
	assert_string_equal(b.data, want);
	buf_free(&b);
}

static void test_mlsx(void **state)
{
	(void)state;
	time_t mt = utc(2024, 1, 1, 12, 0, 0);
	struct listing_entry e = entry("name", S_IFREG | 0644, 12, mt);
	expect_mlsx(&e, "file", "rw", FACT_ALL, false,
		    "type=file;size=12;modify=20240101120000;perm=rw;unique=803U1f;"
		    "unix.mode=0644; name\r\n");
	expect_mlsx(&e, NULL, "rw", FACT_TYPE | FACT_SIZE, true, " type=file;size=12; name\r\n");
	expect_mlsx(&e, NULL, NULL, FACT_PERM | FACT_UNIX_MODE, false, "unix.mode=0644; name\r\n");
	expect_mlsx(&e, NULL, NULL, 0, false, " name\r\n");

	struct listing_entry d = entry("sub dir", S_IFDIR | 02775, 4096, mt);
	expect_mlsx(&d, NULL, "flcdmpe", FACT_ALL, false,
		    "type=dir;modify=20240101120000;perm=flcdmpe;unique=803U1f;"
		    "unix.mode=2775; sub dir\r\n");
	expect_mlsx(&d, "cdir", "el", FACT_TYPE | FACT_SIZE, false, "type=cdir; sub dir\r\n");
	struct listing_entry l = entry("link", S_IFLNK | 0777, 7, mt);
	expect_mlsx(&l, NULL, NULL, FACT_TYPE | FACT_SIZE | FACT_UNIX_MODE, false,
		    "type=OS.unix=symlink;unix.mode=0777; link\r\n");
}

static void test_fact_list(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 256);
	assert_int_equal(listing_format_fact_list(&b, FACT_ALL), FERR_OK);
	assert_string_equal(b.data, "type*;size*;modify*;perm*;unique*;unix.mode*;");
	buf_reset(&b);
	assert_int_equal(listing_format_fact_list(&b, FACT_TYPE | FACT_UNIX_MODE), FERR_OK);
	assert_string_equal(b.data, "type*;size;modify;perm;unique;unix.mode*;");
	buf_free(&b);

	assert_int_equal(listing_parse_fact_list("type;SIZE;bogus;;unix.mode"),
			 FACT_TYPE | FACT_SIZE | FACT_UNIX_MODE);
	assert_int_equal(listing_parse_fact_list(""), 0);
	assert_int_equal(listing_parse_fact_list(";;;"), 0);
	assert_int_equal(listing_parse_fact_list("Modify;perm;unique;"),
			 FACT_MODIFY | FACT_PERM | FACT_UNIQUE);
	assert_int_equal(listing_parse_fact_list("types;siz;type "), 0);
	assert_int_equal(listing_parse_fact_list(NULL), 0);
}

static void test_format_time(void **state)
{
	(void)state;
	char s[15];
	assert_int_equal(listing_format_time(s, sizeof(s), 0), FERR_OK);
	assert_string_equal(s, "19700101000000");
	assert_int_equal(listing_format_time(s, sizeof(s), utc(2024, 2, 29, 23, 59, 58)), FERR_OK);
	assert_string_equal(s, "20240229235958");
	assert_int_equal(listing_format_time(s, 14, 0), FERR_TOOBIG);
	assert_int_equal(listing_format_time(s, sizeof(s), utc(10000, 1, 1, 0, 0, 0)), FERR_RANGE);
}

static void test_parse_time(void **state)
{
	(void)state;
	time_t t = 0;
	assert_int_equal(listing_parse_time("20240101120000", &t), FERR_OK);
	assert_true(t == utc(2024, 1, 1, 12, 0, 0));
	assert_int_equal(listing_parse_time("20240229000000.123", &t), FERR_OK);
	assert_true(t == utc(2024, 2, 29, 0, 0, 0));
	assert_int_equal(listing_parse_time("19700101000000", &t), FERR_OK);
	assert_true(t == 0);
	assert_int_equal(listing_parse_time("20001231235960", &t), FERR_OK);
	assert_int_equal(listing_parse_time("20000229000000", &t), FERR_OK);

	const char *bad[] = { "", "2024010112000", "202401011200000", "2024010112000a",
			      "20240101120000.", "20240101120000.1a", "20240101120000 ",
			      " 20240101120000", "20230229000000", "21000229000000", "20241301000000",
			      "20240001000000", "20240100000000", "20240431000000",
			      "20240101240000", "20240101126000", "20240101120061",
			      "-2024010112000", "2024-01-01T12:0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (listing_parse_time(bad[i], &t) != FERR_INVALID)
			fail_msg("time '%s' accepted", bad[i]);
	}
	assert_int_equal(listing_parse_time(NULL, &t), FERR_INVALID);
}

static void test_time_round_trip(void **state)
{
	(void)state;
	char s[15];
	time_t back;
	for (time_t t = 0; t < (time_t)4102444800; t += 12345677) {
		assert_int_equal(listing_format_time(s, sizeof(s), t), FERR_OK);
		assert_int_equal(listing_parse_time(s, &back), FERR_OK);
		assert_true(back == t);
	}
}

static void test_parse_mlsx(void **state)
{
	(void)state;
	struct listing_parsed p;
	const char *line = "type=file;size=12;modify=20240101120000;perm=rw;unique=803U1f;"
			   "unix.mode=0644; my file;x";
	assert_int_equal(listing_parse_mlsx(line, &p), FERR_OK);
	assert_string_equal(p.type, "file");
	assert_true(p.has_size);
	assert_int_equal(p.size, 12);
	assert_true(p.has_modify);
	assert_true(p.modify == utc(2024, 1, 1, 12, 0, 0));
	assert_string_equal(p.name, "my file;x");
	assert_int_equal(p.name_len, 9);

	assert_int_equal(listing_parse_mlsx("Type=DIR;Modify=19991231235959.5; d", &p), FERR_OK);
	assert_string_equal(p.type, "dir");
	assert_false(p.has_size);
	assert_true(p.has_modify);
	assert_string_equal(p.name, "d");

	assert_int_equal(listing_parse_mlsx("type=OS.unix=slink:/very/long/target; l", &p),
			 FERR_OK);
	assert_string_equal(p.type, "OS.unix=slink:/");
	assert_int_equal(listing_parse_mlsx(" bare name", &p), FERR_OK);
	assert_string_equal(p.name, "bare name");
	assert_string_equal(p.type, "");
	assert_int_equal(listing_parse_mlsx("x.y=;sizd=4096;  two", &p), FERR_OK);
	assert_string_equal(p.name, " two");

	const char *bad[] = { "", "name", "type=file; ", "type=file;size=1;name",
			      "type=file name", "size=-1; n", "size=18446744073709551616; n",
			      "size=; n", "modify=2024; n", "modify=20241301000000; n", "=x; n",
			      "type; n", "type=file;;size=1; n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (listing_parse_mlsx(bad[i], &p) != FERR_INVALID)
			fail_msg("mlsx '%s' accepted", bad[i]);
	}
	assert_int_equal(listing_parse_mlsx(NULL, &p), FERR_INVALID);
}

static void expect_list_parse(const char *line, time_t now, const char *type,
			      const char *name, uint64_t size, time_t mtime)
{
	struct listing_parsed p;
	if (listing_parse_list(line, now, &p) != FERR_OK)
		fail_msg("LIST line '%s' refused", line);
	assert_string_equal(p.type, type);
	assert_int_equal(p.name_len, strlen(name));
	assert_memory_equal(p.name, name, p.name_len);
	assert_true(p.has_size);
	assert_int_equal(p.size, size);
	assert_true(p.has_modify);
	assert_true(p.modify == mtime);
}

static void test_parse_list(void **state)
{
	(void)state;
	time_t now = utc(2024, 3, 1, 0, 0, 0);
	expect_list_parse("drwxr-xr-x    2 ftp      ftp          4096 Jan 01 12:00 name", now,
			  "dir", "name", 4096, utc(2024, 1, 1, 12, 0, 0));
	expect_list_parse("-rw-r--r--    1 ftp      ftp            12 Dec 14  2023 a  b ", now,
			  "file", "a  b ", 12, utc(2023, 12, 14, 0, 0, 0));
	/* No year: the latest date not in the future. */
	expect_list_parse("-rw-r--r-- 1 u g 5 Dec 25 10:00 x", now, "file", "x", 5,
			  utc(2023, 12, 25, 10, 0, 0));
	/* Up to a day ahead is clock skew, not last year. */
	expect_list_parse("-rw-r--r-- 1 u g 5 Mar 01 10:00 x", now, "file", "x", 5,
			  utc(2024, 3, 1, 10, 0, 0));
	expect_list_parse("-rw-r--r-- 1 u g 5 Mar 02 10:00 x", now, "file", "x", 5,
			  utc(2023, 3, 2, 10, 0, 0));
	expect_list_parse("-rw-r--r-- 1 u g 5 Mar 05 10:00 x", now, "file", "x", 5,
			  utc(2023, 3, 5, 10, 0, 0));
	/* Symlinks keep only their own name; other types get no type. */
	expect_list_parse("lrwxrwxrwx 1 u g 7 Feb  3 04:05 my link -> /etc/passwd", now, "",
			  "my link", 7, utc(2024, 2, 3, 4, 5, 0));
	/* Without the group column; ACL marker after the permissions. */
	expect_list_parse("-rw-r--r--+ 1 owner 99 Jan 1 2020 nogroup", now, "file", "nogroup",
			  99, utc(2020, 1, 1, 0, 0, 0));
	/* A group called like a month does not confuse it. */
	expect_list_parse("-rw-r--r-- 1 may jan 123 feb 29 23:59 leap", now, "file", "leap", 123,
			  utc(2024, 2, 29, 23, 59, 0));

	struct listing_parsed p;
	const char *bad[] = { "", "total 12", "drwxr-xr-x 2 ftp ftp 4096 Jan 01 12:00",
			      "drwxr-xr-x 2 ftp ftp 4096 Jan 01 12:00 ",
			      "drwxr-xr-x 2 ftp ftp 4096 Foo 01 12:00 x",
			      "drwxr-xr-x 2 ftp ftp 4096 Jan 32 12:00 x",
			      "drwxr-xr-x 2 ftp ftp 4096 Jan 01 24:00 x",
			      "drwxr-xr-x 2 ftp ftp 4096 Jan 01 12-00 x",
			      "xrwxr-xr-x 2 ftp ftp 4096 Jan 01 12:00 x",
			      "drwx 2 ftp ftp 4096 Jan 01 12:00 x",
			      "type=file;size=1; name" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (listing_parse_list(bad[i], now, &p) != FERR_INVALID)
			fail_msg("LIST '%s' accepted", bad[i]);
	}
	assert_int_equal(listing_parse_list(NULL, now, &p), FERR_INVALID);
}

static void test_list_round_trip(void **state)
{
	(void)state;
	time_t now = utc(2024, 6, 15, 12, 0, 0);
	time_t times[] = { utc(2024, 6, 1, 8, 30, 0), utc(2020, 2, 29, 0, 0, 0),
			   utc(2024, 1, 1, 0, 0, 0) };
	const char *names[] = { "plain", "with  spaces ", "x" };
	struct buf b;
	buf_init(&b, 4096);
	for (size_t i = 0; i < 3; i++) {
		struct listing_entry e = entry(names[i], S_IFREG | 0644, 1000 + i, times[i]);
		buf_reset(&b);
		assert_int_equal(listing_format_list(&b, &e, now), FERR_OK);
		assert_true(b.len > 2);
		b.data[b.len - 2] = '\0'; /* drop CR LF as the client does */
		expect_list_parse(b.data, now, "file", names[i], 1000 + i, times[i]);

		buf_reset(&b);
		assert_int_equal(listing_format_mlsx(&b, &e, NULL, "r", FACT_ALL, false), FERR_OK);
		b.data[b.len - 2] = '\0';
		struct listing_parsed p;
		assert_int_equal(listing_parse_mlsx(b.data, &p), FERR_OK);
		assert_string_equal(p.name, names[i]);
		assert_int_equal(p.size, 1000 + i);
		assert_true(p.modify == times[i]);
	}
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_recent),
		cmocka_unit_test(test_list_old_shows_year),
		cmocka_unit_test(test_list_modes),
		cmocka_unit_test(test_list_wide_fields),
		cmocka_unit_test(test_list_hostile_name),
		cmocka_unit_test(test_list_toobig),
		cmocka_unit_test(test_mlsx),
		cmocka_unit_test(test_fact_list),
		cmocka_unit_test(test_format_time),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_time_round_trip),
		cmocka_unit_test(test_parse_mlsx),
		cmocka_unit_test(test_parse_list),
		cmocka_unit_test(test_list_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
