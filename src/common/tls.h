/*
 * tls.h: TLS as a transport, the only place that sees OpenSSL.
 *
 * Protocol code asks for a TLS bufferevent in place of a plain one and otherwise reads
 * and writes as before (STYLE.md item 10).  TLS 1.2 and 1.3 only, forward-secret AEAD
 * ciphers, no renegotiation, no compression; ALPN "ftp" is accepted.
 *
 * Data connections must resume the TLS session of their control connection (RFC 4217
 * s.10.2), or a third party that races for the data port could take the transfer.  Each
 * control connection gets a random tls_id, used as OpenSSL's session id context on the
 * control connection and on its data connections: OpenSSL resumes a session (from the
 * session cache or a ticket, TLS 1.2 or 1.3, whichever ticket of several) only when its
 * context matches, so tls_resumed() on a data connection means "resumed a session of this
 * very control connection".
 */
#ifndef FERRY_COMMON_TLS_H
#define FERRY_COMMON_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

struct tls_ctx;

/* A control connection's identity, shared with its data connections. */
struct tls_id {
	unsigned char bytes[32];
};

/* PEM texts (need not be NUL-terminated); a NULL or empty member is absent. */
struct tls_pem {
	const char *cert;      /* the certificate, optionally followed by its chain */
	size_t cert_len;
	const char *key;       /* its key; absent: the key is in cert */
	size_t key_len;
	const char *chain;     /* more intermediate certificates */
	size_t chain_len;
	const char *client_ca; /* present: ask for client certificates, verified with these */
	size_t client_ca_len;
	/*
	 * Session ticket keys (TLS_TICKET_KEYS_LEN random bytes) shared by the contexts of all
	 * workers: a data connection that offers another control connection's ticket can then
	 * be told from one whose ticket is merely unknown, whichever worker issued it.
	 * Absent: OpenSSL's own random keys.
	 */
	const unsigned char *ticket_keys;
	size_t ticket_keys_len;
};
#define TLS_TICKET_KEYS_LEN 80

/*
 * A server context from PEM texts.  Returns NULL with a reason in err (the certificate
 * does not parse, the key does not match, ...).  Freed with tls_ctx_free().
 */
/*
 * Whether this CPU encrypts AES-GCM in hardware: the server then prefers AES-128-GCM,
 * otherwise ChaCha20-Poly1305.  FERRY_TLS_ASSUME_NO_AES=1 in the environment says no.
 */
bool tls_cpu_has_aes(void);

struct tls_ctx *tls_server_new(const struct tls_pem *pem, char *err, size_t errsz);
/*
 * A virtual host's certificate (pem: cert, key, chain; the rest is the context's): a client
 * whose SNI names host (any case) gets it, and so do connections started with host (see
 * tls_filter_accept).  Returns 0, or -1 with a reason in err (it does not parse, the key
 * does not match).
 */
int tls_server_add_host(struct tls_ctx *ctx, const char *host, const struct tls_pem *pem,
			char *err, size_t errsz);
void tls_ctx_free(struct tls_ctx *ctx);

/* A fresh random identity for a control connection. */
void tls_id_new(struct tls_id *id);

/*
 * Start TLS as the server over under (a plain bufferevent whose connection carries the
 * handshake next).  Returns a bufferevent that reads and writes clear text; under stays
 * the caller's and must outlive it (tls_release() ends the TLS layer, the caller then
 * frees under).  host (NULL: none) is the virtual host whose certificate is presented
 * unless the client's SNI names another with one (tls_server_add_host).  NULL on failure.
 */
struct bufferevent *tls_filter_accept(struct tls_ctx *ctx, struct bufferevent *under,
				      const struct tls_id *id, const char *host);
/* Queue a close_notify on a TLS bufferevent, keeping it (CCC waits for the client's). */
void tls_shutdown(struct bufferevent *bev);
/* End the TLS layer made by tls_filter_accept: queue a close_notify, free the layer. */
void tls_release(struct bufferevent *filter);

/*
 * TLS as the server directly on a connected socket (data connections): the bufferevent
 * owns fd and closes it when freed (after a close_notify: see tls_close()).  With
 * require_reuse, a handshake that does not resume a session of id fails before it
 * completes (tls_data_stopped()).  host: as for tls_filter_accept.  NULL (fd closed) on
 * failure.
 */
struct bufferevent *tls_socket_accept(struct tls_ctx *ctx, struct event_base *base, int fd,
				      const struct tls_id *id, bool require_reuse,
				      const char *host);
/* Send a close_notify (best effort), then free a bufferevent of tls_socket_accept. */
void tls_close(struct bufferevent *bev);

/* Whether the handshake is over (before it, nothing written gets out). */
bool tls_handshake_done(struct bufferevent *bev);
/* At EOF: whether the peer sent a close_notify (a clean end, not a cut). */
bool tls_peer_closed_cleanly(struct bufferevent *bev);
/* After the handshake (BEV_EVENT_CONNECTED): whether it resumed a session of its id. */
bool tls_resumed(struct bufferevent *bev);

/* What the client of a data connection (tls_socket_accept) offered to resume. */
enum tls_reuse {
	TLS_REUSE_RESUMED, /* a session of this id, resumed */
	TLS_REUSE_NONE,    /* nothing: it made a new session */
	TLS_REUSE_OTHER,   /* a session of another id: another control connection's */
	TLS_REUSE_UNKNOWN, /* a session no longer known here: expired, or another server's */
};
/* After the handshake: what the client offered, as the ClientHello showed it. */
enum tls_reuse tls_data_reuse(struct bufferevent *bev);
/*
 * Bulk reading past the handshake, for uploads: libevent stops reading bev (its TLS layer
 * reads one record per wake-up) and OpenSSL reads ahead, several records a read(2); the
 * caller then reads with tls_read() when the socket is readable, and also whenever
 * tls_read_pending() says OpenSSL holds more than it returned.
 */
void tls_take_over_reading(struct bufferevent *bev);
/*
 * Up to len bytes of clear text: their count; 0 at the end (the peer's close_notify, or
 * a FIN without one); -EAGAIN when nothing more has arrived; else -errno (-ECONNRESET for
 * a reset, -EPROTO for a TLS error).
 */
ssize_t tls_read(struct bufferevent *bev, void *buf, size_t len);
bool tls_read_pending(struct bufferevent *bev);
/*
 * Bulk writing past the handshake, for downloads: libevent stops writing bev, and a
 * buffering BIO between OpenSSL and the socket gathers records into large writes.  The
 * caller writes with tls_write() when the socket is writable and ends with tls_flush()
 * until it returns 0.  Returns 0, or -ENOMEM.
 */
int tls_take_over_writing(struct bufferevent *bev);
/* Clear text taken (encrypted into records): its count, -EAGAIN when full, or -errno. */
ssize_t tls_write(struct bufferevent *bev, const void *buf, size_t len);
/* Out with what the buffering BIO holds: 0 when all is in the socket, -EAGAIN, or -errno. */
ssize_t tls_flush(struct bufferevent *bev);

/*
 * After a control connection's handshake (tls_filter_accept): whether it resumed a session
 * of another control connection, and so joined that session's identity, which *id then
 * becomes (for its data connections, and the tickets it issues).  The control connections
 * of one identity are one client's: only the holder of a session's secret resumes it.
 */
bool tls_joined_identity(struct bufferevent *bev, struct tls_id *id);
/*
 * Whether the handshake failed because it would not resume and require_reuse was given:
 * it is stopped before it completes, so a refused data connection never holds a session
 * (tls_data_reuse() then says what it offered).
 */
bool tls_data_stopped(struct bufferevent *bev);
/* The common name of the client's certificate if one was given and verified. */
/*
 * TLS 1.3: have a new session ticket go out with the next record written on bev (a control
 * connection).  OpenSSL clients use a TLS 1.3 session once: a data connection that resumed
 * the control connection's session spent it, and the next one has nothing to offer unless
 * the control connection hands out a fresh one.  Returns 0, or -1 when OpenSSL refused.
 */
int tls_renew_ticket(struct bufferevent *bev);
bool tls_peer_cn(struct bufferevent *bev, char *out, size_t outsz);
/* The host name the client sent by SNI (RFC 6066), if it sent one and it fits. */
bool tls_server_name(struct bufferevent *bev, char *out, size_t outsz);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" and the like, for logs. */
void tls_describe(struct bufferevent *bev, char *out, size_t outsz);
/* Why the last TLS operation on bev failed, for logs ("" if unknown). */
void tls_last_error(struct bufferevent *bev, char *out, size_t outsz);

/* ---- the client side (ferry): blocking streams over connected sockets ---- */

struct tls_stream;

/*
 * A client context: certificates verified against ca_file, or the system store when
 * ca_file is NULL; verify false accepts any certificate (--insecure).  NULL with a reason
 * in err on failure.
 */
struct tls_ctx *tls_client_new(const char *ca_file, bool verify, char *err, size_t errsz);

/*
 * TLS as the client on a connected socket fd (not owned: the caller closes it after
 * tls_stream_free).  hostname goes into SNI and is checked against the certificate (an
 * IP address is checked as one).  resume_from, if not NULL, is the control connection's
 * stream: its session is offered for resumption, as servers demand on data connections.
 * timeout_ms bounds the handshake.  The socket is left non-blocking.  NULL with a reason
 * in err on failure.
 */
struct tls_stream *tls_client_start(struct tls_ctx *ctx, int fd, const char *hostname,
				    const struct tls_stream *resume_from, int timeout_ms,
				    char *err, size_t errsz);
/*
 * Read up to n bytes, waiting at most timeout_ms.  Returns the count, 0 at the end (the
 * peer's close_notify, or a close without one: see tls_stream_clean_end), or -errno
 * (-ETIMEDOUT, -EPROTO for a TLS error).
 */
long tls_stream_read(struct tls_stream *t, void *buf, size_t n, int timeout_ms);
/* Write all n bytes, waiting at most timeout_ms.  Returns 0 or -errno. */
int tls_stream_write(struct tls_stream *t, const void *buf, size_t n, int timeout_ms);
/* Whether the end that read returned 0 for was a close_notify. */
bool tls_stream_clean_end(const struct tls_stream *t);
/* Send a close_notify (best effort, bounded by timeout_ms). */
void tls_stream_shutdown(struct tls_stream *t, int timeout_ms);
/* Free the stream (the socket stays open). */
void tls_stream_free(struct tls_stream *t);
/* Whether the handshake resumed the session offered. */
bool tls_stream_resumed(const struct tls_stream *t);
/* Bytes already decrypted and waiting (so poll(2) on the socket would not show them). */
size_t tls_stream_pending(const struct tls_stream *t);

/* What the client's doctor reports about a server's certificate and the connection. */
struct tls_peer_info {
	char version[32];          /* "TLSv1.3" */
	char cipher[64];
	char subject[256];         /* the certificate's subject, one line */
	char issuer[256];
	char not_after[64];        /* "2027-03-01 12:00:00 UTC" */
	long days_left;            /* until not_after; negative when expired */
	bool verified;             /* chain and host name verified */
	char verify_error[128];    /* why not, when not */
};
void tls_stream_peer_info(const struct tls_stream *t, struct tls_peer_info *out);
/*
 * For the doctor: limit the protocol versions of a client context (0x0303 TLS 1.2,
 * 0x0304 TLS 1.3; 0 leaves a side open).
 */
int tls_client_versions(struct tls_ctx *ctx, int min_version, int max_version);

/*
 * Whole days from now until the first certificate of pem (n bytes) expires (negative
 * when it has); 0 or -1 when there is no readable certificate.
 */
int tls_cert_days_left(const char *pem, size_t n, long *days);

#endif
