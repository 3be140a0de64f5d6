/*
 * ftp.h: the client's engine: one FTP session (control connection, login, TLS, data
 * connections in every mode), in blocking I/O bounded by time-outs.  Everything the
 * commands (get, put, ls, mirror, shell, doctor) do goes through here; none of them
 * touches a socket.  Pure protocol work (reply parsing, PORT/PASV codecs, listings) is
 * in src/common/.
 *
 * Errors: functions return 0 or a negative FTPC_E* code and leave a human sentence in
 * ftp_error(f) ("550 No such file or directory", "connect to 192.0.2.1 port 21: timed
 * out").  The codes map to the exit statuses of ferry(1).
 */
#ifndef FERRY_CLIENT_FTP_H
#define FERRY_CLIENT_FTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "common/listing.h"
#include "common/tls.h"
#include "common/url.h"

/* Failure classes: each is one exit status of ferry (see exit_status()). */
enum ftpc_err {
	FTPC_OK = 0,
	FTPC_EUSAGE = -1,     /* bad arguments (exit 2) */
	FTPC_ECONNECT = -2,   /* no control connection, or it broke (exit 3) */
	FTPC_ELOGIN = -3,     /* login refused (exit 4) */
	FTPC_ENOTFOUND = -4,  /* the remote file or directory does not exist (exit 5) */
	FTPC_ETRANSFER = -5,  /* a data connection or transfer failed (exit 6) */
	FTPC_ETLS = -6,       /* TLS failed: handshake, certificate, server without TLS (exit 7) */
	FTPC_EREMOTE = -7,    /* any other refusal by the server (exit 8) */
	FTPC_ELOCAL = -8,     /* a local file could not be read or written (exit 9) */
};
/* The process exit status of a failure class (0 for FTPC_OK). */
int ftpc_exit_status(int err);

enum data_mode {
	DATA_PASSIVE,  /* EPSV, then PASV if EPSV is refused */
	DATA_ACTIVE,   /* EPRT, then PORT if EPRT is refused */
	DATA_AUTO,     /* passive; if the data connection cannot be made, active (said so) */
};

enum tls_use {
	TLSU_OFF,       /* never */
	TLSU_TRY,       /* --tls: AUTH TLS, go on in the clear if the server refuses (warned) */
	TLSU_REQUIRED,  /* --tls-required, or ftps:// (implicit) */
};

struct ftp_options {
	enum data_mode mode;
	enum tls_use tls;
	const char *ca_file;       /* NULL: the system store */
	bool insecure;             /* accept any certificate (warned) */
	bool prot_clear;           /* PROT C instead of the default PROT P */
	int tls_min_version;       /* the doctor: 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3); 0: 1.2 */
	int tls_max_version;       /* 0: the newest there is */
	int timeout_ms;            /* each connect, reply and data stall (default 30 s) */
	int family;                /* AF_UNSPEC, AF_INET (-4) or AF_INET6 (-6) */
	/*
	 * PASV: connect to the address the 227 names (--pasv-address-from-reply) instead of
	 * the control connection's, at the port it names.  Off by default: a server could
	 * name any host, and ferry would send it the file.
	 */
	bool pasv_address_from_reply;
	/* active mode */
	uint16_t data_port;        /* --data-port N: listen on N; 1 = "control port + 1" */
	uint16_t active_min, active_max; /* --active-ports MIN-MAX */
	const char *active_address;      /* --active-address: announce this instead */
	/* output */
	bool verbose;              /* -v: the control dialogue on stderr, passwords masked */
	bool quiet;                /* --quiet: no progress bar, no notes (warnings stay) */
	FILE *log;                 /* where -v and warnings go (stderr) */
	/*
	 * Credentials: not used by the engine, but by the callers' URL resolution (cli_url()
	 * in commands.h), which every subcommand calls.
	 */
	const char *netrc_file;    /* --netrc-file; NULL: ~/.netrc */
	bool no_netrc;             /* --no-netrc */
};
void ftp_options_default(struct ftp_options *o);

struct ftp;

/*
 * Connect to u's host and port, read the greeting, do TLS as asked (implicit for
 * ftps://, else AUTH TLS), log in (u's user and password, else from netrc (already
 * resolved by the caller into u), else anonymous), send TYPE I.  NULL on failure, with
 * the class in *err and the sentence in errbuf.
 */
struct ftp *ftp_open(const struct ftp_url *u, const struct ftp_options *o, int *err,
		     char *errbuf, size_t errsz);
/* QUIT (best effort) and free. */
void ftp_close(struct ftp *f);

const char *ftp_error(const struct ftp *f);
/* Change the data mode or the verbosity for what follows (the shell). */
void ftp_set_mode(struct ftp *f, enum data_mode m);
void ftp_set_verbose(struct ftp *f, bool verbose);
/* Follow the address of 227 replies, or connect to the control connection's (the shell). */
void ftp_set_pasv_address_from_reply(struct ftp *f, bool from_reply);
/* FEAT said so (after ftp_open). */
bool ftp_has_feature(const struct ftp *f, const char *feature); /* "MLSD", "EPSV", "AUTH TLS", ... */

/*
 * One command, one reply (multi-line replies joined with "\n" in text).  For commands the
 * engine has no function for (shell's "quote", the doctor).  Returns the reply code, or
 * a negative FTPC_E* when the control connection fails.
 */
int ftp_command(struct ftp *f, char *text, size_t textsz, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Remote paths are relative to the login directory unless they start with '/'. */
int ftp_cwd(struct ftp *f, const char *path);
int ftp_pwd(struct ftp *f, char *out, size_t outsz);
int ftp_mkdir(struct ftp *f, const char *path);
int ftp_rmdir(struct ftp *f, const char *path);
int ftp_delete(struct ftp *f, const char *path);
int ftp_rename(struct ftp *f, const char *from, const char *to);
/* SIZE and MDTM; FTPC_ENOTFOUND when there is no such file. */
int ftp_size(struct ftp *f, const char *path, uint64_t *size);
int ftp_mdtm(struct ftp *f, const char *path, time_t *mtime);
/* MFMT (the time of an uploaded file, for mirror --reverse); FTPC_EREMOTE if refused. */
int ftp_mfmt(struct ftp *f, const char *path, time_t mtime);

/* Progress of a transfer: called now and then, and once at the end (done = true). */
struct ftp_progress {
	const char *name;       /* the remote path */
	uint64_t offset;        /* where the transfer started (REST) */
	uint64_t done;          /* bytes moved so far, from offset */
	uint64_t total;         /* expected bytes from offset, 0 if unknown */
	double seconds;         /* since the data began to flow */
	bool finished;
};
typedef void ftp_progress_fn(void *ctx, const struct ftp_progress *p);

/*
 * Download path into the open file out (written from its current position); with
 * offset > 0, REST offset first (resume).  progress may be NULL.
 */
int ftp_get(struct ftp *f, const char *path, int out_fd, uint64_t offset,
	    ftp_progress_fn *progress, void *ctx);
/* Upload from in_fd (read from its current position) to path; offset > 0: REST + STOR. */
int ftp_put(struct ftp *f, int in_fd, const char *path, uint64_t offset,
	    ftp_progress_fn *progress, void *ctx);

/*
 * List a directory: MLSD when the server offers it, else LIST (parsed), so callers see
 * the same entries either way.  Calls each for every entry (not "." or "..").
 */
typedef void ftp_entry_fn(void *ctx, const struct listing_parsed *e);
int ftp_list(struct ftp *f, const char *path, ftp_entry_fn *each, void *ctx);

/*
 * For the doctor: one data connection made exactly one way, for one command ("NLST",
 * "LIST", "RETR name"), and a record of what happened at each step.  Returns the final
 * reply code, or a negative FTPC_E* if the control connection failed.  When the sequence
 * stopped before a final reply (EPSV refused, the passive connect failed), it returns the
 * last reply there was: prelim_code, else setup_code.  No fallback of any kind: EPSV is
 * never replaced by PASV here, nor EPRT by PORT.
 */
enum data_kind { DK_EPSV, DK_PASV, DK_EPRT, DK_PORT };
struct ftp_data_probe {
	int setup_code;                 /* reply to EPSV/PASV/EPRT/PORT */
	char setup_reply[256];
	struct sockaddr_storage target; /* passive: where we connected (see pasv_address_from_reply) */
	struct sockaddr_storage announced; /* passive PASV: the address the 227 named */
	uint16_t port;                  /* the data port (server's in passive, ours in active) */
	bool connected;                 /* the TCP data connection was made */
	int connect_error;              /* errno of a failed connect/accept, ETIMEDOUT too */
	double connect_seconds;
	int prelim_code, final_code;    /* 150/125, then 226 or the error */
	char final_reply[256];
	uint64_t bytes;                 /* received */
	bool tls;                       /* the data connection was protected */
	bool tls_resumed;
};
int ftp_probe_data(struct ftp *f, enum data_kind kind, const char *command, int timeout_ms,
		   struct ftp_data_probe *out);

/* What the doctor needs to look inside (read-only). */
struct ftp_session_info {
	char greeting[512];
	struct sockaddr_storage peer;   /* the control connection's server address */
	struct sockaddr_storage local;
	bool tls;                       /* the control connection is protected */
	bool data_protected;            /* PROT P */
	char last_pasv_reply[256];      /* the text of the last 227, for the doctor */
	bool pasv_address_replaced;     /* a 227 named another address than we used, warned */
	bool fell_back_to_active;       /* DATA_AUTO used active mode */
	struct tls_peer_info tls_peer;  /* when tls */
};
void ftp_session_info(const struct ftp *f, struct ftp_session_info *out);

#endif
