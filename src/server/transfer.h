/*
 * transfer.h: moving bytes over a data connection once it is up.
 *
 * A download pulls from a producer (a file through sendfile, a file through the TYPE A
 * converter, a directory listing) whenever the connection's output runs low, so memory
 * stays bounded whatever the size.  An upload writes what arrives straight to the file.
 * One transfer at a time per session; it ends in 226, 426 (broken or aborted), 425 (no
 * data connection) or a 45x/55x file error, and with exactly one transfer record (log.h)
 * once its data connection was up, whatever ended it.
 */
#ifndef FERRY_SERVER_TRANSFER_H
#define FERRY_SERVER_TRANSFER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/path.h"

struct session;
struct evbuffer;
struct transfer;

/*
 * A producer appends the next bytes to out.  Returns 0 when more will follow, 1 when it
 * has appended its last bytes, or -errno.
 */
typedef int xfer_fill_fn(void *ctx, struct evbuffer *out);

/* How an upload ended, for its upload_end callback. */
struct upload_result {
	bool stored;     /* a byte was written, or the upload completed (an empty file is one) */
	bool over_quota; /* stopped at quota_room: ends in 552 */
	int file_fd;     /* the file, still open (the callback may fstat or cut it) */
};

struct transfer_spec {
	bool upload;
	int file_fd;                  /* uploads and file downloads; owned by the transfer */
	uint64_t offset;              /* REST offset, already applied to file_fd for uploads */
	uint64_t size;                /* download size if known (for 150 and STAT), else 0 */
	bool ascii;                   /* TYPE A conversion */
	bool truncate;                /* STOR: cut the file at offset once the data connection is up */
	bool is_listing;              /* not logged as a file transfer */
	xfer_fill_fn *fill;           /* downloads other than files: the producer */
	void *fill_ctx;
	void (*fill_free)(void *ctx); /* frees fill_ctx; called exactly once */
	/*
	 * Uploads: called exactly once at the end, before the final reply is queued (so that
	 * what it changes is done when the client reads it); frees upload_ctx.  STOR uses it
	 * to remove a file it created for an upload that never came, and for the quota tally.
	 */
	void (*upload_end)(void *ctx, const struct upload_result *r);
	void *upload_ctx;
	/*
	 * Uploads: the most bytes that may be written to the file (the user's quota, quota.h;
	 * UINT64_MAX: no limit).  A client that sends more gets 552 and its data connection
	 * closed; what fit stays in the file (upload_end decides).
	 */
	uint64_t quota_room;
	char path[VPATH_MAX];         /* virtual path, for logs and replies */
	char opening[512];            /* text of the 150 reply */
	char done_text[VPATH_MAX + 64]; /* text of the 226 reply ("" = default) */
};

/*
 * Start a transfer: waits for the data connection, replies 150, moves the bytes, replies
 * 226/426.  Takes ownership of spec's descriptor and producer even on failure.  The
 * session processes no other command (but ABOR, STAT, NOOP, QUIT) until it ends.
 */
void transfer_start(struct session *s, struct transfer_spec *spec);
/*
 * Once per worker, before its sandbox: the pipe that clear binary uploads are spliced
 * through.  Returns 0 or -errno (then clear uploads read and write instead).
 */
int transfer_init(void);
/* ABOR: stop the running transfer with 426, then 226 (RFC 959 s.4.1.3). */
void transfer_abort(struct session *s);
/*
 * The session is closing under its transfer (shutdown deadline, control connection gone):
 * end it without a reply.  One that had its data connection gets its transfer record,
 * incomplete, with the bytes moved (for an upload, those in the file).
 */
void transfer_free(struct session *s);
/* Whether the running transfer must go on when the control connection goes (an upload). */
bool transfer_outlives_control(const struct session *s);
/* A progress line for STAT during a transfer. */
void transfer_status(const struct session *s, struct buf *out);

#endif
