/*
 * tls.c: every OpenSSL call of ferry.  See tls.h.
 */
#include "common/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/buf.h"
#include "common/err.h"

/*
 * TLS 1.2 suites with forward secrecy and AEAD (TLS 1.3 has only such suites), in the
 * server's order of preference: AES-128-GCM first where the CPU has AES instructions (as
 * safe as AES-256 for this use, and faster per byte), ChaCha20-Poly1305 first where it
 * has not (several times faster than AES in software).  Either way, a client that puts
 * ChaCha20 first (a phone without AES instructions) gets it: SSL_OP_PRIORITIZE_CHACHA.
 */
#define TLS12_AES_FIRST                                                                    \
	"ECDHE+AESGCM+AES128:ECDHE+AESGCM+AES256:ECDHE+CHACHA20:DHE+AESGCM+AES128:"         \
	"DHE+AESGCM+AES256:DHE+CHACHA20:!aNULL:!SHA1"
#define TLS12_CHACHA_FIRST                                                                 \
	"ECDHE+CHACHA20:ECDHE+AESGCM+AES128:ECDHE+AESGCM+AES256:DHE+CHACHA20:"              \
	"DHE+AESGCM+AES128:DHE+AESGCM+AES256:!aNULL:!SHA1"
#define TLS13_AES_FIRST "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS13_CHACHA_FIRST                                                                 \
	"TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"
/*
 * Sessions live as long as a long control connection: a data connection opened hours
 * after the login must still resume, or require_reuse would refuse it.
 */
#define SESSION_LIFETIME (24 * 3600)
/* OpenSSL's read buffer on a data connection: eight full records. */
#define DATA_READ_BUFFER (8 * (16384 + 256))
/* A download's buffering BIO (tls_take_over_writing): sixteen records a write(2). */
#define DATA_WRITE_BUFFER (256 * 1024)


/*
 * A virtual host's certificate (tls_server_add_host): a context used only to hold and
 * check the certificate, its chain and key, which a connection takes over (use_host())
 * when its client names the host by SNI.  Connections keep the main context, whose
 * session cache, ticket keys and callbacks stay the same whatever the certificate.
 */
struct tls_host {
	char name[256];
	SSL_CTX *certs;
};

struct tls_ctx {
	SSL_CTX *ssl;
	struct tls_host *hosts;
	unsigned n_hosts;
};

/*
 * What a data connection's ClientHello offered, noted by the callbacks below while
 * OpenSSL decides, because OpenSSL itself only says "not resumed": a session of another
 * id context is silently passed over, and the refusal could not say why.
 */
struct offer {
	struct tls_id id;
	bool control;       /* a control connection: it may join the session it resumes */
	unsigned seen;      /* OFFER_* */
	bool require_reuse; /* a full handshake is stopped (on_full_handshake) */
	bool stopped;       /* ... and this one was */
};
#define OFFER_OWN 1u       /* a ticket or cached session of this id */
#define OFFER_OTHER 2u     /* one of another id */
#define OFFER_UNKNOWN 4u   /* a ticket that did not decrypt: another key, or damaged */
#define OFFER_SID_MISS 8u  /* a session id not in the cache (TLS 1.2: expired, or foreign) */

static int offer_index = -1;
static pthread_once_t offer_once = PTHREAD_ONCE_INIT;

static void offer_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
		       void *argp)
{
	free(ptr);
}

static void offer_index_new(void)
{
	offer_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, offer_free);
}

static struct offer *offer_of(SSL *ssl)
{
	return offer_index < 0 ? NULL : SSL_get_ex_data(ssl, offer_index);
}

/*
 * A control connection that resumes a session joins it: it takes that session's identity
 * (tls_joined_identity), before OpenSSL compares them.  Only the holder of a session's
 * secret can resume it, so the control connections of one identity are one client's, and
 * a data connection that resumes the identity's session resumes its own control
 * connection's.  That is how clients that keep one session cache for several control
 * connections (Go's, rclone's) pass the rule: each of their data connections offers
 * whichever session was cached last.
 */
static void offer_note(SSL *ssl, const SSL_SESSION *sess)
{
	struct offer *o = offer_of(ssl);
	if (o == NULL)
		return;
	unsigned int len;
	const unsigned char *ctx = SSL_SESSION_get0_id_context(sess, &len);
	if (o->control && len == sizeof(o->id.bytes) &&
	    SSL_set_session_id_context(ssl, ctx, len) == 1) {
		memcpy(o->id.bytes, ctx, len);
		o->seen |= OFFER_OWN;
		return;
	}
	bool own = len == sizeof(o->id.bytes) && memcmp(ctx, o->id.bytes, len) == 0;
	o->seen |= own ? OFFER_OWN : OFFER_OTHER;
}

static struct offer *offer_attach(SSL *ssl, const struct tls_id *id, bool control)
{
	struct offer *o = calloc(1, sizeof(*o));
	if (o == NULL || SSL_set_ex_data(ssl, offer_index, o) != 1) {
		free(o);
		return NULL;
	}
	o->id = *id;
	o->control = control;
	return o;
}

/* Every ticket a client offers passes here once decrypted: note whose session it holds. */
static SSL_TICKET_RETURN on_ticket(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
				   size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
	switch (status) {
	case SSL_TICKET_SUCCESS:
	case SSL_TICKET_SUCCESS_RENEW:
		offer_note(ssl, sess);
		return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE
						    : SSL_TICKET_RETURN_USE_RENEW;
	case SSL_TICKET_NO_DECRYPT: {
		struct offer *o = offer_of(ssl);
		if (o != NULL)
			o->seen |= OFFER_UNKNOWN;
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	}
	case SSL_TICKET_EMPTY:
	case SSL_TICKET_NONE:
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	default:
		return SSL_TICKET_RETURN_ABORT;
	}
}

/*
 * OpenSSL asks for the certificate only when it does not resume: where reuse is required,
 * the handshake stops here.  A data connection that completed a full handshake before it
 * was refused would leave with a session of its control connection's identity (a TLS 1.2
 * ticket, or a cache entry) that the next data connection could resume: whoever raced the
 * client to a passive port would be refused once, then let in.
 */
static int on_full_handshake(SSL *ssl, void *arg)
{
	struct offer *o = offer_of(ssl);
	if (o == NULL || !o->require_reuse)
		return 1;
	o->stopped = true;
	return 0;
}

/* A TLS 1.2 session id is looked up in the cache, whose own check of the id context is silent. */
static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
	struct offer *o = offer_of(ssl);
	const unsigned char *sid;
	size_t len = SSL_client_hello_get0_session_id(ssl, &sid);
	if (o == NULL || len == 0 || len > SSL_MAX_SSL_SESSION_ID_LENGTH)
		return SSL_CLIENT_HELLO_SUCCESS;
	SSL_SESSION *key = SSL_SESSION_new();
	if (key == NULL || SSL_SESSION_set1_id(key, sid, (unsigned int)len) != 1 ||
	    SSL_SESSION_set_protocol_version(key, TLS1_2_VERSION) != 1) {
		SSL_SESSION_free(key);
		ERR_clear_error();
		return SSL_CLIENT_HELLO_SUCCESS;
	}
	/* OpenSSL declares no typed lookup for this table; its hash and compare are stored in it. */
	OPENSSL_LHASH *cache = (OPENSSL_LHASH *)SSL_CTX_sessions(SSL_get_SSL_CTX(ssl));
	const SSL_SESSION *found = cache != NULL ? OPENSSL_LH_retrieve(cache, key) : NULL;
	if (found != NULL)
		offer_note(ssl, found);
	else
		o->seen |= OFFER_SID_MISS;
	SSL_SESSION_free(key);
	return SSL_CLIENT_HELLO_SUCCESS;
}

static void set_error(char *err, size_t errsz, const char *what)
{
	unsigned long e = ERR_get_error();
	char detail[256] = "";
	if (e != 0)
		ERR_error_string_n(e, detail, sizeof(detail));
	snprintf(err, errsz, "%s%s%s", what, detail[0] ? ": " : "", detail);
	ERR_clear_error();
}

static BIO *pem_bio(const char *p, size_t n)
{
	return BIO_new_mem_buf(p, n > (size_t)INT32_MAX ? INT32_MAX : (int)n);
}

/* An ASN.1 time as "2026-12-08 06:00:00 UTC" (a static buffer: one use at a time). */
static const char *asn1_time_text(const ASN1_TIME *t)
{
	static char out[32];
	struct tm tm;
	if (ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(out, sizeof(out), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, sizeof(out), "(unreadable date)");
	return out;
}

int tls_cert_days_left(const char *pem, size_t n, long *days)
{
	BIO *b = pem_bio(pem, n);
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	ERR_clear_error();
	if (x == NULL)
		return -1;
	int d = 0, sec = 0;
	int ok = ASN1_TIME_diff(&d, &sec, NULL, X509_get0_notAfter(x));
	X509_free(x);
	if (ok != 1)
		return -1;
	*days = d;
	return 0;
}

/* The leaf certificate, then every further certificate as the chain. */
static int load_certs(SSL_CTX *c, const char *p, size_t n, bool leaf_first, char *err,
		      size_t errsz)
{
	BIO *b = pem_bio(p, n);
	if (b == NULL) {
		set_error(err, errsz, "out of memory");
		return -1;
	}
	int rc = 0;
	if (leaf_first) {
		X509 *leaf = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
		if (leaf == NULL || SSL_CTX_use_certificate(c, leaf) != 1) {
			set_error(err, errsz, "tls_cert: no usable certificate");
			rc = -1;
		} else if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
			/* Every client would refuse it: better said at start than by each of them. */
			snprintf(err, errsz, "tls_cert: the certificate expired on %s",
				 asn1_time_text(X509_get0_notAfter(leaf)));
			rc = -1;
		} else if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
			snprintf(err, errsz, "tls_cert: the certificate is not valid before %s",
				 asn1_time_text(X509_get0_notBefore(leaf)));
			rc = -1;
		}
		X509_free(leaf);
	}
	X509 *x;
	while (rc == 0 && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (SSL_CTX_add0_chain_cert(c, x) != 1) {
			X509_free(x);
			set_error(err, errsz, "certificate chain");
			rc = -1;
		}
	}
	ERR_clear_error(); /* the end of the PEM text reads as an error */
	BIO_free(b);
	return rc;
}

static int load_key(SSL_CTX *c, const char *p, size_t n, char *err, size_t errsz)
{
	BIO *b = pem_bio(p, n);
	EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	int rc = 0;
	X509 *leaf = SSL_CTX_get0_certificate(c);
	/* Said in words: OpenSSL's "key values mismatch" names neither file. */
	if (k == NULL) {
		snprintf(err, errsz, "tls_key: no private key in it (PEM, unencrypted)");
		rc = -1;
	} else if (leaf != NULL && X509_check_private_key(leaf, k) != 1) {
		snprintf(err, errsz, "tls_key does not match tls_cert: it is another "
				     "certificate's key");
		rc = -1;
	} else if (SSL_CTX_use_PrivateKey(c, k) != 1) {
		set_error(err, errsz, "tls_key: no usable private key");
		rc = -1;
	} else if (SSL_CTX_check_private_key(c) != 1) {
		set_error(err, errsz, "tls_key does not match tls_cert");
		rc = -1;
	}
	ERR_clear_error();
	EVP_PKEY_free(k);
	return rc;
}

static int load_client_ca(SSL_CTX *c, const char *p, size_t n, char *err, size_t errsz)
{
	BIO *b = pem_bio(p, n);
	if (b == NULL) {
		set_error(err, errsz, "out of memory");
		return -1;
	}
	X509_STORE *store = SSL_CTX_get_cert_store(c);
	unsigned count = 0;
	X509 *x;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(store, x) == 1)
			count++;
		SSL_CTX_add_client_CA(c, x);
		X509_free(x);
	}
	ERR_clear_error();
	BIO_free(b);
	if (count == 0) {
		snprintf(err, errsz, "tls_client_ca: no certificate in it");
		return -1;
	}
	/* Asked for, not demanded: a client without a certificate may use a password. */
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, NULL);
	return 0;
}

/* ALPN (RFC 7301): "ftp" if the client offers it; otherwise carry on without ALPN. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = { 3, 'f', 't', 'p' };
	unsigned char *sel;
	if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours), in, inlen) ==
	    OPENSSL_NPN_NEGOTIATED) {
		*out = sel;
		return SSL_TLSEXT_ERR_OK;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

static const struct tls_host *find_host(const struct tls_ctx *t, const char *name)
{
	for (unsigned i = 0; name != NULL && i < t->n_hosts; i++) {
		if (strcasecmp(t->hosts[i].name, name) == 0)
			return &t->hosts[i];
	}
	return NULL;
}

/* The connection presents h's certificate, chain and key instead of the context's. */
static int use_host(SSL *ssl, const struct tls_host *h)
{
	STACK_OF(X509) *chain = NULL;
	SSL_CTX_get0_chain_certs(h->certs, &chain);
	/* Cleared first: an RSA default would otherwise stay beside an ECDSA host's. */
	SSL_certs_clear(ssl);
	if (SSL_use_cert_and_key(ssl, SSL_CTX_get0_certificate(h->certs),
				 SSL_CTX_get0_privatekey(h->certs), chain, 1) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* SNI (RFC 6066 s.3): a name with a certificate of its own gets it; others keep theirs. */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
	const struct tls_host *h = find_host(arg, SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
	if (h != NULL && use_host(ssl, h) < 0) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

bool tls_cpu_has_aes(void)
{
	const char *force = getenv("FERRY_TLS_ASSUME_NO_AES"); /* tests and benchmarks */
	if (force != NULL && force[0] == '1')
		return false;
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul");
#elif defined(__aarch64__)
	return (getauxval(AT_HWCAP) & HWCAP_AES) && (getauxval(AT_HWCAP) & HWCAP_PMULL);
#else
	return false;
#endif
}

struct tls_ctx *tls_server_new(const struct tls_pem *pem, char *err, size_t errsz)
{
	if (pem->cert == NULL || pem->cert_len == 0) {
		snprintf(err, errsz, "no certificate");
		return NULL;
	}
	struct tls_ctx *t = calloc(1, sizeof(*t));
	SSL_CTX *c = t != NULL ? SSL_CTX_new(TLS_server_method()) : NULL;
	if (c == NULL) {
		set_error(err, errsz, "cannot create a TLS context");
		free(t);
		return NULL;
	}
	t->ssl = c;
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
				       SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_timeout(c, SESSION_LIFETIME);
	SSL_CTX_set_dh_auto(c, 1);
	SSL_CTX_set_alpn_select_cb(c, select_alpn, NULL);
	SSL_CTX_set_client_hello_cb(c, on_client_hello, NULL);
	SSL_CTX_set_tlsext_servername_callback(c, on_servername);
	SSL_CTX_set_tlsext_servername_arg(c, t);
	if (pthread_once(&offer_once, offer_index_new) != 0 || offer_index < 0 ||
	    SSL_CTX_set_session_ticket_cb(c, NULL, on_ticket, NULL) != 1) {
		set_error(err, errsz, "session ticket callback");
		goto fail;
	}
	static const unsigned char default_ctx[] = "ferryd";
	SSL_CTX_set_session_id_context(c, default_ctx, sizeof(default_ctx) - 1);
	bool aes = tls_cpu_has_aes();
	if (SSL_CTX_set_cipher_list(c, aes ? TLS12_AES_FIRST : TLS12_CHACHA_FIRST) != 1 ||
	    SSL_CTX_set_ciphersuites(c, aes ? TLS13_AES_FIRST : TLS13_CHACHA_FIRST) != 1) {
		set_error(err, errsz, "cipher list");
		goto fail;
	}
	if (load_certs(c, pem->cert, pem->cert_len, true, err, errsz) < 0)
		goto fail;
	if (pem->chain != NULL && pem->chain_len > 0 &&
	    load_certs(c, pem->chain, pem->chain_len, false, err, errsz) < 0)
		goto fail;
	if (pem->key != NULL && pem->key_len > 0) {
		if (load_key(c, pem->key, pem->key_len, err, errsz) < 0)
			goto fail;
	} else if (load_key(c, pem->cert, pem->cert_len, err, errsz) < 0) {
		goto fail;
	}
	if (pem->ticket_keys_len == TLS_TICKET_KEYS_LEN &&
	    SSL_CTX_set_tlsext_ticket_keys(c, (void *)pem->ticket_keys, TLS_TICKET_KEYS_LEN) != 1) {
		set_error(err, errsz, "session ticket keys");
		goto fail;
	}
	if (pem->client_ca != NULL && pem->client_ca_len > 0 &&
	    load_client_ca(c, pem->client_ca, pem->client_ca_len, err, errsz) < 0)
		goto fail;
	return t;
fail:
	tls_ctx_free(t);
	return NULL;
}

int tls_server_add_host(struct tls_ctx *ctx, const char *name, const struct tls_pem *pem,
			char *err, size_t errsz)
{
	struct tls_host h = { .certs = SSL_CTX_new(TLS_server_method()) };
	if (h.certs == NULL || str_copy(h.name, sizeof(h.name), name) < 0) {
		set_error(err, errsz, "cannot create a TLS context");
		SSL_CTX_free(h.certs);
		return -1;
	}
	int rc = load_certs(h.certs, pem->cert, pem->cert_len, true, err, errsz);
	if (rc == 0 && pem->chain_len > 0)
		rc = load_certs(h.certs, pem->chain, pem->chain_len, false, err, errsz);
	if (rc == 0)
		rc = pem->key_len > 0 ? load_key(h.certs, pem->key, pem->key_len, err, errsz)
				      : load_key(h.certs, pem->cert, pem->cert_len, err, errsz);
	struct tls_host *more = rc == 0 ? realloc(ctx->hosts, (ctx->n_hosts + 1) * sizeof(h))
					: NULL;
	if (rc == 0 && more == NULL)
		snprintf(err, errsz, "out of memory");
	if (more == NULL) {
		SSL_CTX_free(h.certs);
		return -1;
	}
	ctx->hosts = more;
	ctx->hosts[ctx->n_hosts++] = h;
	return 0;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->ssl);
	for (unsigned i = 0; i < ctx->n_hosts; i++)
		SSL_CTX_free(ctx->hosts[i].certs);
	free(ctx->hosts);
	free(ctx);
}

void tls_id_new(struct tls_id *id)
{
	if (RAND_bytes(id->bytes, sizeof(id->bytes)) != 1) {
		/* Never share an identity between control connections: abort rather. */
		abort();
	}
}

static SSL *new_ssl(struct tls_ctx *ctx, const struct tls_id *id, const char *host)
{
	SSL *ssl = SSL_new(ctx->ssl);
	if (ssl == NULL)
		return NULL;
	const struct tls_host *h = find_host(ctx, host);
	if (SSL_set_session_id_context(ssl, id->bytes, sizeof(id->bytes)) != 1 ||
	    (h != NULL && use_host(ssl, h) < 0)) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

struct bufferevent *tls_filter_accept(struct tls_ctx *ctx, struct bufferevent *under,
				      const struct tls_id *id, const char *host)
{
	SSL *ssl = new_ssl(ctx, id, host);
	if (ssl == NULL)
		return NULL;
	if (offer_attach(ssl, id, true) == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	/* Not BEV_OPT_CLOSE_ON_FREE: under stays the caller's (CCC, and the final flush). */
	struct bufferevent *b = bufferevent_openssl_filter_new(
		bufferevent_get_base(under), under, ssl, BUFFEREVENT_SSL_ACCEPTING, 0);
	if (b == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(b, 1);
	return b;
}

void tls_shutdown(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl != NULL && SSL_is_init_finished(ssl))
		SSL_shutdown(ssl);
	ERR_clear_error();
}

static void free_ssl_later(evutil_socket_t fd, short what, void *arg)
{
	SSL_free(arg);
}

void tls_release(struct bufferevent *filter)
{
	SSL *ssl = bufferevent_openssl_get_ssl(filter);
	struct event_base *base = bufferevent_get_base(filter);
	if (ssl != NULL && SSL_is_init_finished(ssl) && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
		SSL_shutdown(ssl); /* the close_notify goes into the underlying output */
	bufferevent_free(filter);
	ERR_clear_error();
	if (ssl == NULL)
		return;
	/*
	 * Called from the filter's own callbacks, the bufferevent is freed only once they
	 * return, and libevent still asks the SSL object about pending bytes then: free it
	 * on the next turn of the loop (the owner of the loop runs it once more at exit).
	 */
	const struct timeval now = { 0, 0 };
	if (event_base_once(base, -1, EV_TIMEOUT, free_ssl_later, ssl, &now) < 0)
		SSL_free(ssl);
}

bool tls_handshake_done(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	return ssl != NULL && SSL_is_init_finished(ssl);
}

bool tls_peer_closed_cleanly(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	return ssl != NULL && (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN);
}

struct bufferevent *tls_socket_accept(struct tls_ctx *ctx, struct event_base *base, int fd,
				      const struct tls_id *id, bool require_reuse, const char *host)
{
	SSL *ssl = new_ssl(ctx, id, host);
	if (ssl == NULL) {
		close(fd);
		return NULL;
	}
	/*
	 * A data connection only ever resumes its control connection's session, so it needs
	 * no tickets of its own; and a TLS 1.3 ticket that an uploading client never reads
	 * makes its kernel answer the close with a reset, losing the end of the upload.
	 */
	SSL_set_num_tickets(ssl, 0);
	/* A bulk transfer: keep OpenSSL's record buffers instead of freeing them after each. */
	SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	/*
	 * OpenSSL 3 calls a FIN without a close_notify an error; libevent's dirty shutdown
	 * does not cover it.  Many clients end an upload that way (the FTP rules say such an
	 * upload is complete; a cut connection shows as a reset).
	 */
	SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* With read-ahead (tls_take_over_reading), one read takes several records. */
	SSL_set_default_read_buffer_len(ssl, DATA_READ_BUFFER);
	SSL_set_cert_cb(ssl, on_full_handshake, NULL);
	struct offer *o = offer_attach(ssl, id, false);
	if (o == NULL) {
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	o->require_reuse = require_reuse;
	struct bufferevent *b = bufferevent_openssl_socket_new(base, fd, ssl,
							       BUFFEREVENT_SSL_ACCEPTING,
							       BEV_OPT_CLOSE_ON_FREE);
	if (b == NULL) {
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	/* Many clients end data connections without a close_notify; the FTP reply tells. */
	bufferevent_openssl_set_allow_dirty_shutdown(b, 1);
	return b;
}

void tls_close(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	/* Clients such as Python's ftplib wait for it before they read the final reply. */
	if (ssl != NULL && SSL_is_init_finished(ssl))
		SSL_shutdown(ssl);
	ERR_clear_error();
	bufferevent_free(bev);
}

bool tls_resumed(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	return ssl != NULL && SSL_session_reused(ssl) == 1;
}

enum tls_reuse tls_data_reuse(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl != NULL && SSL_session_reused(ssl) == 1)
		return TLS_REUSE_RESUMED;
	struct offer *o = ssl != NULL ? offer_of(ssl) : NULL;
	if (o == NULL)
		return TLS_REUSE_NONE;
	/* A TLS 1.3 ClientHello carries a random legacy session id: only tickets count there. */
	unsigned seen = o->seen;
	if (SSL_version(ssl) >= TLS1_3_VERSION)
		seen &= ~OFFER_SID_MISS;
	if (seen & OFFER_OTHER)
		return TLS_REUSE_OTHER;
	/* Its own session, not resumed: expired, or of a cipher or version no longer agreed. */
	if (seen & (OFFER_OWN | OFFER_UNKNOWN | OFFER_SID_MISS))
		return TLS_REUSE_UNKNOWN;
	return TLS_REUSE_NONE;
}

bool tls_joined_identity(struct bufferevent *bev, struct tls_id *id)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	struct offer *o = ssl != NULL ? offer_of(ssl) : NULL;
	if (o == NULL || SSL_session_reused(ssl) != 1 ||
	    memcmp(o->id.bytes, id->bytes, sizeof(id->bytes)) == 0)
		return false;
	*id = o->id;
	return true;
}

void tls_take_over_reading(struct bufferevent *bev)
{
	bufferevent_disable(bev, EV_READ);
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl != NULL)
		SSL_set_read_ahead(ssl, 1);
}

ssize_t tls_read(struct bufferevent *bev, void *buf, size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl == NULL)
		return -EBADF;
	size_t got = 0;
	errno = 0;
	int r = SSL_read_ex(ssl, buf, len, &got);
	if (r == 1)
		return (ssize_t)got;
	int e = SSL_get_error(ssl, r);
	int saved = errno;
	ERR_clear_error();
	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0; /* a close_notify, or a FIN (SSL_OP_IGNORE_UNEXPECTED_EOF) */
	case SSL_ERROR_SYSCALL:
		return saved != 0 ? -saved : -EPIPE;
	default:
		return -EPROTO;
	}
}

int tls_take_over_writing(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	BIO *sock = ssl != NULL ? SSL_get_wbio(ssl) : NULL;
	BIO *buf = BIO_new(BIO_f_buffer());
	if (sock == NULL || buf == NULL || BIO_set_write_buffer_size(buf, DATA_WRITE_BUFFER) != 1 ||
	    BIO_up_ref(sock) != 1) {
		BIO_free(buf);
		ERR_clear_error();
		return -ENOMEM;
	}
	bufferevent_disable(bev, EV_WRITE);
	/* The chain holds its own reference to the socket BIO, still also OpenSSL's rbio. */
	SSL_set0_wbio(ssl, BIO_push(buf, sock));
	return 0;
}

static ssize_t io_result(SSL *ssl, int r, int saved_errno)
{
	int e = SSL_get_error(ssl, r);
	ERR_clear_error();
	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return -EPIPE;
	case SSL_ERROR_SYSCALL:
		return saved_errno != 0 ? -saved_errno : -EPIPE;
	default:
		return -EPROTO;
	}
}

ssize_t tls_write(struct bufferevent *bev, const void *buf, size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl == NULL)
		return -EBADF;
	size_t done = 0;
	errno = 0;
	int r = SSL_write_ex(ssl, buf, len, &done);
	if (r == 1)
		return (ssize_t)done;
	return io_result(ssl, r, errno);
}

ssize_t tls_flush(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	BIO *w = ssl != NULL ? SSL_get_wbio(ssl) : NULL;
	if (w == NULL)
		return -EBADF;
	errno = 0;
	if (BIO_flush(w) == 1)
		return 0;
	int saved = errno;
	if (BIO_should_retry(w))
		return -EAGAIN;
	ERR_clear_error();
	return saved != 0 ? -saved : -EIO;
}

bool tls_read_pending(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	return ssl != NULL && SSL_has_pending(ssl) == 1;
}

bool tls_data_stopped(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	struct offer *o = ssl != NULL ? offer_of(ssl) : NULL;
	return o != NULL && o->stopped;
}

int tls_renew_ticket(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl == NULL || SSL_version(ssl) != TLS1_3_VERSION)
		return 0; /* TLS 1.2 sessions are reusable as they are */
	return SSL_new_session_ticket(ssl) == 1 ? 0 : -1;
}

bool tls_server_name(struct bufferevent *bev, char *out, size_t outsz)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	const char *name = ssl != NULL ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
	return name != NULL && str_copy(out, outsz, name) == 0;
}

bool tls_peer_cn(struct bufferevent *bev, char *out, size_t outsz)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl == NULL || outsz == 0)
		return false;
	X509 *peer = SSL_get1_peer_certificate(ssl);
	if (peer == NULL)
		return false;
	bool ok = false;
	if (SSL_get_verify_result(ssl) == X509_V_OK) {
		X509_NAME *name = X509_get_subject_name(peer);
		int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
		X509_NAME_ENTRY *e = i >= 0 ? X509_NAME_get_entry(name, i) : NULL;
		ASN1_STRING *d = e != NULL ? X509_NAME_ENTRY_get_data(e) : NULL;
		unsigned char *utf8 = NULL;
		int n = d != NULL ? ASN1_STRING_to_UTF8(&utf8, d) : -1;
		/* A name with a NUL in it is a forgery attempt, not a user. */
		if (n > 0 && (size_t)n < outsz && memchr(utf8, '\0', (size_t)n) == NULL) {
			memcpy(out, utf8, (size_t)n);
			out[n] = '\0';
			ok = true;
		}
		OPENSSL_free(utf8);
	}
	X509_free(peer);
	return ok;
}

void tls_describe(struct bufferevent *bev, char *out, size_t outsz)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl == NULL) {
		snprintf(out, outsz, "no TLS");
		return;
	}
	snprintf(out, outsz, "%s %s%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl),
		 SSL_session_reused(ssl) ? " resumed" : "");
}

void tls_last_error(struct bufferevent *bev, char *out, size_t outsz)
{
	unsigned long e = bufferevent_get_openssl_error(bev);
	if (e == 0) {
		snprintf(out, outsz, "connection closed");
		return;
	}
	ERR_error_string_n(e, out, outsz);
	while (bufferevent_get_openssl_error(bev) != 0)
		;
}

/* ---- the client side ---- */

struct tls_stream {
	SSL *ssl;
	int fd;
	bool clean_end;
	SSL_SESSION *session; /* the newest session the server gave us (TLS 1.3 tickets) */
};

/* Where a client SSL object keeps its stream, for the new-session callback. */
static int stream_index = -1;
static pthread_once_t stream_index_once = PTHREAD_ONCE_INIT;

static void make_stream_index(void)
{
	stream_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* TLS 1.3 hands out sessions (tickets) after the handshake: keep the newest. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_stream *t = SSL_get_ex_data(ssl, stream_index);
	if (t == NULL)
		return 0;
	if (t->session != NULL)
		SSL_SESSION_free(t->session);
	t->session = sess;
	return 1; /* we hold the reference now */
}

struct tls_ctx *tls_client_new(const char *ca_file, bool verify, char *err, size_t errsz)
{
	pthread_once(&stream_index_once, make_stream_index);
	struct tls_ctx *t = calloc(1, sizeof(*t));
	SSL_CTX *c = t != NULL ? SSL_CTX_new(TLS_client_method()) : NULL;
	if (c == NULL || stream_index < 0) {
		set_error(err, errsz, "cannot create a TLS context");
		if (c != NULL)
			SSL_CTX_free(c);
		free(t);
		return NULL;
	}
	t->ssl = c;
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(c, SSL_MODE_AUTO_RETRY);
	int ok = ca_file != NULL ? SSL_CTX_load_verify_locations(c, ca_file, NULL)
				 : SSL_CTX_set_default_verify_paths(c);
	if (ok != 1) {
		set_error(err, errsz, ca_file != NULL ? "cannot read the CA file"
						      : "cannot read the system's CA certificates");
		tls_ctx_free(t);
		return NULL;
	}
	SSL_CTX_set_verify(c, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(c, on_new_session);
	static const unsigned char alpn[] = { 3, 'f', 't', 'p' };
	SSL_CTX_set_alpn_protos(c, alpn, sizeof(alpn));
	return t;
}

int tls_client_versions(struct tls_ctx *ctx, int min_version, int max_version)
{
	if (SSL_CTX_set_min_proto_version(ctx->ssl, min_version) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx->ssl, max_version) != 1)
		return FERR_INVALID;
	return 0;
}

static int remaining_ms(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (ms > INT32_MAX ? INT32_MAX : (int)ms);
}

static void deadline_in(struct timespec *d, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, d);
	d->tv_sec += timeout_ms / 1000;
	d->tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (d->tv_nsec >= 1000000000) {
		d->tv_sec++;
		d->tv_nsec -= 1000000000;
	}
}

/* Wait for what SSL asked for.  0, or -ETIMEDOUT / -errno. */
static int wait_for(int fd, int ssl_err, const struct timespec *deadline)
{
	struct pollfd p = { .fd = fd, .events = ssl_err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN };
	for (;;) {
		int ms = remaining_ms(deadline);
		if (ms == 0)
			return -ETIMEDOUT;
		int n = poll(&p, 1, ms);
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static bool is_ip_literal(const char *h)
{
	unsigned char b[16];
	return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

struct tls_stream *tls_client_start(struct tls_ctx *ctx, int fd, const char *hostname,
				    const struct tls_stream *resume_from, int timeout_ms,
				    char *err, size_t errsz)
{
	struct tls_stream *t = calloc(1, sizeof(*t));
	SSL *ssl = t != NULL ? SSL_new(ctx->ssl) : NULL;
	if (ssl == NULL) {
		set_error(err, errsz, "out of memory");
		free(t);
		return NULL;
	}
	t->ssl = ssl;
	t->fd = fd;
	SSL_set_ex_data(ssl, stream_index, t);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || SSL_set_fd(ssl, fd) != 1) {
		set_error(err, errsz, "cannot set up the socket");
		tls_stream_free(t);
		return NULL;
	}
	if (hostname != NULL && hostname[0] != '\0') {
		if (is_ip_literal(hostname)) {
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), hostname);
		} else {
			SSL_set_tlsext_host_name(ssl, hostname);
			SSL_set1_host(ssl, hostname);
		}
	}
	if (resume_from != NULL) {
		SSL_SESSION *s = resume_from->session != NULL ? resume_from->session
							      : SSL_get_session(resume_from->ssl);
		/*
		 * A copy per data connection: once one connection has used a session object,
		 * OpenSSL will not offer that same object again.
		 */
		SSL_SESSION *copy = s != NULL ? SSL_SESSION_dup(s) : NULL;
		if (copy != NULL) {
			SSL_set_session(ssl, copy);
			SSL_SESSION_free(copy);
		}
	}
	struct timespec deadline;
	deadline_in(&deadline, timeout_ms);
	for (;;) {
		int rc = SSL_connect(ssl);
		if (rc == 1)
			break;
		int e = SSL_get_error(ssl, rc);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			int w = wait_for(fd, e, &deadline);
			if (w < 0) {
				snprintf(err, errsz, "TLS handshake: %s", strerror(-w));
				tls_stream_free(t);
				return NULL;
			}
			continue;
		}
		long vr = SSL_get_verify_result(ssl);
		if (vr != X509_V_OK) {
			snprintf(err, errsz, "certificate not trusted: %s",
				 X509_verify_cert_error_string(vr));
			ERR_clear_error();
		} else {
			set_error(err, errsz, "TLS handshake failed");
		}
		tls_stream_free(t);
		return NULL;
	}
	return t;
}

long tls_stream_read(struct tls_stream *t, void *buf, size_t n, int timeout_ms)
{
	struct timespec deadline;
	deadline_in(&deadline, timeout_ms);
	int want = n > INT32_MAX ? INT32_MAX : (int)n;
	for (;;) {
		int rc = SSL_read(t->ssl, buf, want);
		if (rc > 0)
			return rc;
		int e = SSL_get_error(t->ssl, rc);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			int w = wait_for(t->fd, e, &deadline);
			if (w < 0)
				return w;
			continue;
		}
		if (e == SSL_ERROR_ZERO_RETURN) {
			t->clean_end = true;
			return 0;
		}
		unsigned long why = ERR_peek_error();
		ERR_clear_error();
		if ((e == SSL_ERROR_SSL && ERR_GET_REASON(why) == SSL_R_UNEXPECTED_EOF_WHILE_READING) ||
		    (e == SSL_ERROR_SYSCALL && why == 0))
			return 0; /* closed without a close_notify */
		return -EPROTO;
	}
}

int tls_stream_write(struct tls_stream *t, const void *buf, size_t n, int timeout_ms)
{
	struct timespec deadline;
	deadline_in(&deadline, timeout_ms);
	const unsigned char *p = buf;
	while (n > 0) {
		int chunk = n > (1 << 30) ? (1 << 30) : (int)n;
		int rc = SSL_write(t->ssl, p, chunk);
		if (rc > 0) {
			p += rc;
			n -= (size_t)rc;
			continue;
		}
		int e = SSL_get_error(t->ssl, rc);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			int w = wait_for(t->fd, e, &deadline);
			if (w < 0)
				return w;
			continue;
		}
		ERR_clear_error();
		return e == SSL_ERROR_SYSCALL && errno != 0 ? -errno : -EPROTO;
	}
	return 0;
}

bool tls_stream_clean_end(const struct tls_stream *t)
{
	return t->clean_end;
}

void tls_stream_shutdown(struct tls_stream *t, int timeout_ms)
{
	struct timespec deadline;
	deadline_in(&deadline, timeout_ms);
	for (int tries = 0; tries < 4; tries++) {
		int rc = SSL_shutdown(t->ssl);
		if (rc >= 0)
			break; /* our close_notify is out; the peer's is not awaited */
		int e = SSL_get_error(t->ssl, rc);
		if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
		    wait_for(t->fd, e, &deadline) < 0)
			break;
	}
	ERR_clear_error();
}

void tls_stream_free(struct tls_stream *t)
{
	if (t == NULL)
		return;
	if (t->session != NULL)
		SSL_SESSION_free(t->session);
	SSL_free(t->ssl);
	free(t);
}

bool tls_stream_resumed(const struct tls_stream *t)
{
	return SSL_session_reused(t->ssl) == 1;
}

size_t tls_stream_pending(const struct tls_stream *t)
{
	int n = SSL_pending(t->ssl);
	return n > 0 ? (size_t)n : 0;
}

static void name_line(X509_NAME *name, char *out, size_t outsz)
{
	out[0] = '\0';
	BIO *b = BIO_new(BIO_s_mem());
	if (b == NULL)
		return;
	X509_NAME_print_ex(b, name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
	int n = BIO_read(b, out, (int)outsz - 1);
	out[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

void tls_stream_peer_info(const struct tls_stream *t, struct tls_peer_info *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->version, sizeof(out->version), "%s", SSL_get_version(t->ssl));
	snprintf(out->cipher, sizeof(out->cipher), "%s", SSL_get_cipher_name(t->ssl));
	long vr = SSL_get_verify_result(t->ssl);
	out->verified = vr == X509_V_OK;
	if (!out->verified)
		snprintf(out->verify_error, sizeof(out->verify_error), "%s",
			 X509_verify_cert_error_string(vr));
	X509 *peer = SSL_get1_peer_certificate(t->ssl);
	if (peer == NULL) {
		out->verified = false;
		snprintf(out->verify_error, sizeof(out->verify_error), "no certificate");
		return;
	}
	name_line(X509_get_subject_name(peer), out->subject, sizeof(out->subject));
	name_line(X509_get_issuer_name(peer), out->issuer, sizeof(out->issuer));
	const ASN1_TIME *na = X509_get0_notAfter(peer);
	struct tm tm;
	if (na != NULL && ASN1_TIME_to_tm(na, &tm) == 1)
		strftime(out->not_after, sizeof(out->not_after), "%Y-%m-%d %H:%M:%S UTC", &tm);
	int days = 0, secs = 0;
	if (na != NULL && ASN1_TIME_diff(&days, &secs, NULL, na) == 1)
		out->days_left = days;
	X509_free(peer);
}
