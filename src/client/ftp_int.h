/*
 * ftp_int.h: the inside of the client's engine, shared by its files only (ftp.c, net.c,
 * ctl.c, data.c, xfer.c); the commands see ftp.h and nothing of this.
 *
 *   net.c   every socket system call: connect with a time-out, listen, accept, and a
 *           stream (a socket, with TLS over it or not) read and written with time-outs
 *   ctl.c   the control connection: commands, replies, -v, greeting, AUTH TLS, login
 *   data.c  data connections: EPSV/PASV and connect, EPRT/PORT and accept, TLS on them
 *   xfer.c  transfers and listings over a data connection, the passive -> active fallback
 *   ftp.c   the small commands (CWD, MKD, SIZE, ...), errors, options, session info
 */
#ifndef FERRY_CLIENT_FTP_INT_H
#define FERRY_CLIENT_FTP_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "client/ftp.h"
#include "common/buf.h"
#include "common/reply.h"
#include "common/tls.h"

/* A connected socket, with TLS over it or not.  fd -1: closed. */
struct stream {
	int fd;
	struct tls_stream *tls;
};

/* Bytes of one command line we send, CR LF excluded (RFC 959 leaves it open; 4 KiB as vsftpd). */
#define CMD_MAX 4096

struct ftp {
	struct ftp_options o;
	char host[256];                 /* as the URL gave it: TLS names, messages */
	struct stream ctl;
	struct tls_ctx *tls_ctx;        /* when TLS was asked for */
	struct sockaddr_storage peer, local;

	struct reply_parser rp;         /* code and text of the last reply */
	uint8_t in[4096];               /* control bytes read but not yet parsed */
	size_t in_off, in_len;
	bool broken;                    /* the control connection is gone */

	char err[512];
	char greeting[512];
	struct buf feat;                /* FEAT lines, each ending in '\n' */

	bool no_epsv, no_eprt;          /* refused once: PASV / PORT from then on */
	bool active_now;                /* DATA_AUTO fell back: active for the rest */
	bool tls_on, prot_p;
	bool warned_pasv;               /* about a 227's address we did not follow: once */
	char last_pasv_reply[256];
	bool pasv_replaced, fell_back;
};

/* ---- net.c ---- */
/* Resolve host:port (family as -4/-6 say) and connect to the first address that answers. */
int net_connect_host(const char *host, uint16_t port, int family, int timeout_ms, int *fd,
		     char *err, size_t errsz);
/* Connect to one address; 0 or -errno (-ETIMEDOUT after timeout_ms). */
int net_connect_addr(const struct sockaddr_storage *ss, int timeout_ms, int *fd);
/* A listener on addr (its port, or a port of min..max when min > 0); 0 or -errno. */
int net_listen(const struct sockaddr_storage *addr, uint16_t min, uint16_t max, int *fd);
/* Wait up to timeout_ms for one connection on lfd; 0 or -errno (-ETIMEDOUT). */
int net_accept(int lfd, int timeout_ms, int *fd, struct sockaddr_storage *peer);
/* Wait for fd to be readable (events POLLIN) or writable (POLLOUT); 0 or -errno. */
int net_wait(int fd, short events, int timeout_ms);
void net_close(int *fd);
int net_names(int fd, struct sockaddr_storage *local, struct sockaddr_storage *peer);
/* "127.0.0.1 port 21" (or "[::1] port 21") for messages. */
void net_describe(const struct sockaddr_storage *ss, char *out, size_t outsz);
double net_now(void);

long stream_read(struct stream *s, void *buf, size_t n, int timeout_ms);
int stream_write(struct stream *s, const void *buf, size_t n, int timeout_ms);
/* Whether bytes wait to be read (TLS already decrypted them, or the socket has some). */
bool stream_pending(struct stream *s);
/* End TLS (a close_notify) and close the socket. */
void stream_close(struct stream *s, int timeout_ms);
/* The same after an upload: close_notify, FIN, and wait for the server's end. */
void stream_finish_upload(struct stream *s, int timeout_ms);

/* ---- ctl.c ---- */
/* Send one command; CR or LF inside it is refused (FTPC_EUSAGE).  0 or an FTPC_E*. */
int ctl_send(struct ftp *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ctl_vsend(struct ftp *f, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Read one reply: its code, or an FTPC_E* (the connection failed; 421 counts). */
int ctl_reply(struct ftp *f);
/* Send, then read the reply: the code or an FTPC_E*. */
int ctl_cmd(struct ftp *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last reply's text (lines joined by '\n'). */
const char *ctl_text(const struct ftp *f);
/* The last reply on one line: "550 No such file or directory." into out. */
void ctl_reply_line(const struct ftp *f, char *out, size_t outsz);
/* Connect, greet, TLS, log in, PBSZ/PROT, FEAT, TYPE I. */
int ctl_open(struct ftp *f, const struct ftp_url *u);
/* Start TLS as the client on a connected socket (control or data). */
int ctl_tls_start(struct ftp *f, struct stream *s, const struct stream *resume_from);

/* ---- ftp.c ---- */
/* Record the error sentence and return err. */
int ftp_fail(struct ftp *f, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*
 * A failure reply to what (e.g. "RETR a.txt"): the FTPC_E* it means, with the sentence
 * "what: 550 ..." recorded.  lookup: the command names something that should exist, so
 * 550 means "not found" unless the text says otherwise.
 */
int ftp_fail_reply(struct ftp *f, int code, bool lookup, const char *what);
/* A note (not a warning: --quiet hides it) or a warning on o.log. */
void ftp_note(struct ftp *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ftp_warn(struct ftp *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- data.c ---- */
struct dconn {
	struct stream s;
	int lfd;                 /* active: the listener, until accept */
	bool active;
	bool no_connection;      /* the failure was "no data connection" (DATA_AUTO falls back) */
};
void dconn_init(struct dconn *d);
/*
 * Before the transfer command: passive = EPSV (PASV when refused, or kind says so) and
 * connect; active = listen and EPRT (PORT ...).  rec, if not NULL, records each step.
 */
int data_prepare(struct ftp *f, enum data_kind kind, bool exact, struct dconn *d,
		 struct ftp_data_probe *rec);
/* After the 1xx reply: accept (active), then TLS under PROT P. */
int data_start(struct ftp *f, struct dconn *d, struct ftp_data_probe *rec);
void data_close(struct ftp *f, struct dconn *d);

#endif
