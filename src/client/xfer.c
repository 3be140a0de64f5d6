/*
 * xfer.c: everything that moves bytes over a data connection: downloads (RETR), uploads
 * (STOR), listings (MLSD, else LIST, parsed into the same entries) and the doctor's
 * probes.  One runner does the sequence for all of them (RFC 959 s.5.4):
 *
 *   data connection set up (data.c)  ->  [REST n]  ->  command  ->  1xx
 *     ->  [accept]  ->  [TLS]  ->  pump  ->  close  ->  2xx
 *
 * and, in DATA_AUTO mode, runs it again in active mode when passive mode could not make a
 * data connection (no connect, or 425), saying so once.  A retry is safe: nothing has
 * moved when the data connection could not be made.  Offsets are uint64_t from end to
 * end, so resuming works beyond 4 GiB.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/ftp_int.h"
#include "common/fdio.h"
#include "common/listing.h"
#include "common/num.h"

#define XFER_CHUNK (256 * 1024)
#define LIST_LINE_MAX 16384
#define PROGRESS_INTERVAL 0.1   /* seconds: at most ~10 calls a second */

enum pump_kind { PUMP_DOWNLOAD, PUMP_UPLOAD, PUMP_LIST, PUMP_COUNT };

struct xfer {
	const char *verb;
	const char *arg;           /* NULL or "": the command alone */
	uint64_t rest;
	enum pump_kind kind;
	int fd;                    /* the local file */
	ftp_progress_fn *progress;
	void *ctx;
	uint64_t total;
	/* listings */
	bool mlsd;
	ftp_entry_fn *each;
	void *ectx;
	time_t now;
	/* doctor */
	struct ftp_data_probe *rec;
	/* the state of one run */
	uint64_t moved;
	double t0, last;
	bool no_connection;
	char *chunk;
};

static void progress(struct xfer *x, bool final)
{
	if (x->progress == NULL)
		return;
	double now = net_now();
	if (!final && now - x->last < PROGRESS_INTERVAL)
		return;
	x->last = now;
	struct ftp_progress p = {
		.name = x->arg != NULL ? x->arg : "",
		.offset = x->rest,
		.done = x->moved,
		.total = x->total,
		.seconds = now - x->t0,
		.finished = final,
	};
	x->progress(x->ctx, &p);
}

static int data_error(struct ftp *f, long e)
{
	if (e == -ETIMEDOUT)
		return ftp_fail(f, FTPC_ETRANSFER, "the data connection stalled for %d s",
				f->o.timeout_ms / 1000);
	if (e == -EPROTO)
		return ftp_fail(f, FTPC_ETRANSFER, "TLS error on the data connection");
	return ftp_fail(f, FTPC_ETRANSFER, "data connection: %s", strerror((int)-e));
}

static int pump_download(struct ftp *f, struct xfer *x, struct dconn *d)
{
	for (;;) {
		long n = stream_read(&d->s, x->chunk, XFER_CHUNK, f->o.timeout_ms);
		if (n == 0)
			return FTPC_OK;
		if (n < 0)
			return data_error(f, n);
		if (x->kind == PUMP_DOWNLOAD) {
			int e = fd_write_all(x->fd, x->chunk, (size_t)n);
			if (e != 0)
				return ftp_fail(f, FTPC_ELOCAL, "cannot write the local file: %s",
						strerror(-e));
		}
		x->moved += (uint64_t)n;
		if (x->rec != NULL)
			x->rec->bytes += (uint64_t)n;
		progress(x, false);
	}
}

static int pump_upload(struct ftp *f, struct xfer *x, struct dconn *d)
{
	for (;;) {
		ssize_t n = read(x->fd, x->chunk, XFER_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ftp_fail(f, FTPC_ELOCAL, "cannot read the local file: %s",
					strerror(errno));
		if (n == 0)
			return FTPC_OK;
		int e = stream_write(&d->s, x->chunk, (size_t)n, f->o.timeout_ms);
		if (e != 0)
			return data_error(f, e);
		x->moved += (uint64_t)n;
		progress(x, false);
	}
}

/* One listing line: MLSx facts or "ls -l"; ".", ".." and lines that do not parse skipped. */
static void list_line(struct ftp *f, struct xfer *x, char *line, size_t n)
{
	struct listing_parsed e;

	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	if (n == 0)
		return;
	int rc = x->mlsd ? listing_parse_mlsx(line, &e) : listing_parse_list(line, x->now, &e);
	if (rc != 0) {
		if (f->o.verbose)
			fprintf(f->o.log, "* listing line not understood: %s\n", line);
		return;
	}
	if (strcmp(e.type, "cdir") == 0 || strcmp(e.type, "pdir") == 0)
		return;
	if ((e.name_len == 1 && e.name[0] == '.') ||
	    (e.name_len == 2 && e.name[0] == '.' && e.name[1] == '.'))
		return;
	x->each(x->ectx, &e);
}

static int pump_list(struct ftp *f, struct xfer *x, struct dconn *d)
{
	struct buf line;
	bool skipping = false;   /* inside a line over LIST_LINE_MAX */
	int rc = FTPC_OK;

	buf_init(&line, LIST_LINE_MAX);
	for (;;) {
		long n = stream_read(&d->s, x->chunk, XFER_CHUNK, f->o.timeout_ms);
		if (n < 0) {
			rc = data_error(f, n);
			break;
		}
		if (n == 0) {
			if (line.len > 0 && !skipping && buf_append_char(&line, '\0') == 0)
				list_line(f, x, line.data, line.len - 1);
			break;
		}
		x->moved += (uint64_t)n;
		for (long i = 0; i < n;) {
			char *nl = memchr(x->chunk + i, '\n', (size_t)(n - i));
			size_t take = nl != NULL ? (size_t)(nl - (x->chunk + i)) : (size_t)(n - i);
			if (!skipping && buf_append(&line, x->chunk + i, take) != 0)
				skipping = true;
			i += (long)take;
			if (nl == NULL)
				break;
			i++;
			/* One byte more for the NUL list_line writes. */
			if (!skipping && buf_append_char(&line, '\0') == 0)
				list_line(f, x, line.data, line.len - 1);
			buf_reset(&line);
			skipping = false;
		}
	}
	buf_free(&line);
	return rc;
}

/* "150 Opening BINARY mode data connection for f (1234 bytes)." */
static void size_from_150(struct xfer *x, const char *text)
{
	const char *p = strrchr(text, '(');
	uint64_t v;
	char digits[24];

	if (x->total != 0 || p == NULL)
		return;
	p++;
	size_t n = strspn(p, "0123456789");
	if (n == 0 || n >= sizeof(digits) || strncmp(p + n, " bytes", 6) != 0)
		return;
	memcpy(digits, p, n);
	digits[n] = '\0';
	if (num_parse_u64_cstr(digits, UINT64_MAX, &v) == 0)
		x->total = v;
}

static int run_pump(struct ftp *f, struct xfer *x, struct dconn *d)
{
	switch (x->kind) {
	case PUMP_UPLOAD:
		return pump_upload(f, x, d);
	case PUMP_LIST:
		return pump_list(f, x, d);
	case PUMP_DOWNLOAD:
	case PUMP_COUNT:
		break;
	}
	return pump_download(f, x, d);
}

static void record_final(struct ftp *f, struct xfer *x, int code)
{
	if (x->rec == NULL || code < 0)
		return;
	x->rec->final_code = code;
	ctl_reply_line(f, x->rec->final_reply, sizeof(x->rec->final_reply));
}

static int send_command(struct ftp *f, const struct xfer *x)
{
	if (x->arg != NULL && x->arg[0] != '\0')
		return ctl_cmd(f, "%s %s", x->verb, x->arg);
	return ctl_cmd(f, "%s", x->verb);
}

static void command_name(const struct xfer *x, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s%s%s", x->verb, x->arg != NULL && x->arg[0] != '\0' ? " " : "",
		 x->arg != NULL ? x->arg : "");
}

/* The reply after the data: 2xx, or why not. */
static int final_reply(struct ftp *f, struct xfer *x, int pumped)
{
	char what[300];
	int code = ctl_reply(f);

	record_final(f, x, code);
	if (code < 0)
		return pumped != FTPC_OK ? pumped : code;
	if (code / 100 == 2)
		return pumped;
	if (pumped == FTPC_ELOCAL)
		return pumped;
	command_name(x, what, sizeof(what));
	if (code == R_425_CANT_OPEN_DATA && x->moved == 0)
		x->no_connection = true;
	if (code == R_522_TLS_REFUSED && f->prot_p) {
		char line[300];
		ctl_reply_line(f, line, sizeof(line));
		return ftp_fail(f, FTPC_ETLS, "%s: the server refused the data connection's TLS: %s",
				what, line);
	}
	int rc = ftp_fail_reply(f, code, x->kind == PUMP_DOWNLOAD || x->kind == PUMP_LIST, what);
	return rc == FTPC_EREMOTE ? FTPC_ETRANSFER : rc;
}

static int xfer_once(struct ftp *f, struct xfer *x, enum data_kind kind, bool exact)
{
	struct dconn d;
	char what[300];
	int rc;

	x->moved = 0;
	x->no_connection = false;
	dconn_init(&d);
	rc = data_prepare(f, kind, exact, &d, x->rec);
	if (rc != FTPC_OK) {
		x->no_connection = d.no_connection;
		data_close(f, &d);
		return rc;
	}
	if (x->rest > 0) {
		int code = ctl_cmd(f, "REST %" PRIu64, x->rest);
		if (code != R_350_PENDING) {
			data_close(f, &d);
			if (code < 0)
				return code;
			char line[300];
			ctl_reply_line(f, line, sizeof(line));
			return ftp_fail(f, code == R_530_NOT_LOGGED_IN ? FTPC_ELOGIN : FTPC_EREMOTE,
					"the server cannot resume at byte %" PRIu64 " (REST): %s",
					x->rest, line);
		}
	}
	int code = send_command(f, x);
	if (x->rec != NULL && code >= 0)
		x->rec->prelim_code = code;
	if (code < 0 || code / 100 != 1) {
		data_close(f, &d);
		if (code < 0)
			return code;
		record_final(f, x, code);
		if (code / 100 == 2)
			return FTPC_OK;     /* done with nothing to move (some servers, empty lists) */
		if (code == R_425_CANT_OPEN_DATA)
			x->no_connection = true;
		command_name(x, what, sizeof(what));
		return ftp_fail_reply(f, code, x->kind != PUMP_UPLOAD, what);
	}
	size_from_150(x, ctl_text(f));

	rc = data_start(f, &d, x->rec);
	if (rc != FTPC_OK) {
		x->no_connection = d.no_connection;
		data_close(f, &d);
		/* The server's verdict follows; ours (no connection, TLS) says more. */
		char keep[sizeof(f->err)];
		memcpy(keep, f->err, sizeof(keep));
		record_final(f, x, ctl_reply(f));
		memcpy(f->err, keep, sizeof(keep));
		return rc;
	}
	/* A first call at once, so that a bar shows before the first bytes arrive. */
	x->t0 = net_now();
	x->last = x->t0 - PROGRESS_INTERVAL;
	progress(x, false);
	int pumped = run_pump(f, x, &d);
	if (x->kind == PUMP_UPLOAD && pumped == FTPC_OK)
		stream_finish_upload(&d.s, f->o.timeout_ms);
	data_close(f, &d);
	rc = final_reply(f, x, pumped);
	if (rc == FTPC_OK)
		progress(x, true);
	return rc;
}

static int xfer_run(struct ftp *f, struct xfer *x)
{
	bool act = f->o.mode == DATA_ACTIVE || f->active_now;
	off_t start = x->kind == PUMP_UPLOAD ? lseek(x->fd, 0, SEEK_CUR) : -1;

	x->chunk = malloc(XFER_CHUNK);
	if (x->chunk == NULL)
		return ftp_fail(f, FTPC_ELOCAL, "out of memory");
	int rc = xfer_once(f, x, act ? DK_EPRT : DK_EPSV, false);
	if (rc != FTPC_OK && x->no_connection && f->o.mode == DATA_AUTO && !act && !f->broken) {
		ftp_note(f, "passive mode failed (%s); falling back to active mode", f->err);
		f->active_now = f->fell_back = true;
		if (start >= 0)
			(void)lseek(x->fd, start, SEEK_SET);
		rc = xfer_once(f, x, DK_EPRT, false);
	}
	free(x->chunk);
	x->chunk = NULL;
	return rc;
}

int ftp_get(struct ftp *f, const char *path, int out_fd, uint64_t offset,
	    ftp_progress_fn *progress_fn, void *ctx)
{
	struct xfer x = { .verb = "RETR", .arg = path, .rest = offset, .kind = PUMP_DOWNLOAD,
			  .fd = out_fd, .progress = progress_fn, .ctx = ctx };

	if (path == NULL || path[0] == '\0')
		return ftp_fail(f, FTPC_EUSAGE, "no file to download");
	if (progress_fn != NULL) {
		uint64_t size;
		char keep[sizeof(f->err)];
		memcpy(keep, f->err, sizeof(keep));
		if (ftp_size(f, path, &size) == FTPC_OK)
			x.total = size > offset ? size - offset : 0;
		else if (f->broken)
			return FTPC_ECONNECT;
		memcpy(f->err, keep, sizeof(keep));
	}
	return xfer_run(f, &x);
}

int ftp_put(struct ftp *f, int in_fd, const char *path, uint64_t offset,
	    ftp_progress_fn *progress_fn, void *ctx)
{
	struct xfer x = { .verb = "STOR", .arg = path, .rest = offset, .kind = PUMP_UPLOAD,
			  .fd = in_fd, .progress = progress_fn, .ctx = ctx };
	struct stat st;

	if (path == NULL || path[0] == '\0')
		return ftp_fail(f, FTPC_EUSAGE, "no remote name to upload to");
	if (fstat(in_fd, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t pos = lseek(in_fd, 0, SEEK_CUR);
		if (pos >= 0 && st.st_size > pos)
			x.total = (uint64_t)(st.st_size - pos);
	}
	return xfer_run(f, &x);
}

int ftp_list(struct ftp *f, const char *path, ftp_entry_fn *each, void *ctx)
{
	bool mlsd = ftp_has_feature(f, "MLSD");
	struct xfer x = { .verb = mlsd ? "MLSD" : "LIST", .arg = path, .kind = PUMP_LIST,
			  .fd = -1, .mlsd = mlsd, .each = each, .ectx = ctx, .now = time(NULL) };

	return xfer_run(f, &x);
}

int ftp_probe_data(struct ftp *f, enum data_kind kind, const char *command, int timeout_ms,
		   struct ftp_data_probe *out)
{
	char verb[16];
	size_t vn = strcspn(command, " ");
	struct xfer x = { .kind = PUMP_COUNT, .fd = -1, .rec = out };

	memset(out, 0, sizeof(*out));
	if (vn == 0 || vn >= sizeof(verb))
		return ftp_fail(f, FTPC_EUSAGE, "not a command: %s", command);
	memcpy(verb, command, vn);
	verb[vn] = '\0';
	x.verb = verb;
	x.arg = command[vn] == ' ' ? command + vn + 1 : NULL;
	x.chunk = malloc(XFER_CHUNK);
	if (x.chunk == NULL)
		return ftp_fail(f, FTPC_ELOCAL, "out of memory");

	int keep = f->o.timeout_ms;
	if (timeout_ms > 0)
		f->o.timeout_ms = timeout_ms;
	int rc = xfer_once(f, &x, kind, true);
	f->o.timeout_ms = keep;
	free(x.chunk);
	if (f->broken)
		return rc < 0 ? rc : FTPC_ECONNECT;
	/* The last reply the server gave: the final one, else the one we stopped at. */
	if (out->final_code != 0)
		return out->final_code;
	if (out->prelim_code != 0)
		return out->prelim_code;
	return out->setup_code;
}
