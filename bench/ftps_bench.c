/*
 * ftps_bench.c: the FTPS client of bench/ftps.py.  One control session (explicit FTPS,
 * AUTH TLS, PBSZ 0, PROT P, TYPE I) that does the transfers bench/ftps.py asks for on its
 * standard input, one at a time, so that the benchmark can read the server's CPU time
 * right before and right after each of them:
 *
 *   FTPS_BENCH_PASS=... ftps_bench PORT USER 1.2|1.3
 *   stdin:  get REMOTE SIZE | put LOCAL REMOTE | quit        (one a line)
 *   stdout: one "ok ..." or "fail ..." line per login and per transfer
 *
 * It is written to cost the client as little as possible, so that the servers are what is
 * measured: 256 KiB SSL_read and SSL_write calls, a download discarded as it arrives, an
 * upload written straight from an mmap of the file (no copy of its own before OpenSSL).
 * Every data connection offers the control connection's current TLS session, as C clients
 * commonly do for servers that require session reuse; "resumed=1" says the server took it.
 * A download is checked for its size and a clean TLS close (every record of it is
 * authenticated by the AEAD cipher); bench/ftps.py checks an upload's size and hash on disk.
 * The certificate is not verified: the benchmark made it a moment ago, for loopback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum { CHUNK = 256 * 1024, LINE = 1024 };

struct conn {
	int fd;
	SSL *ssl;		/* NULL before AUTH TLS */
};

static void fail(const char *what)
{
	char err[256] = "";
	unsigned long e = ERR_get_error();
	if (e != 0)
		ERR_error_string_n(e, err, sizeof(err));
	printf("fail %s%s%s (errno %d)\n", what, err[0] ? ": " : "", err, errno);
	fflush(stdout);
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		fail("getrusage");
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int tcp_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = { .tv_sec = 60 };
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		fail("connect");
	return fd;
}

/* One reply: its code, the last line in text. */
static int reply(struct conn *c, char *text, size_t n)
{
	char line[LINE];
	for (;;) {
		size_t len = 0;
		for (;;) {
			char ch;
			int r = c->ssl != NULL ? SSL_read(c->ssl, &ch, 1) : (int)read(c->fd, &ch, 1);
			if (r <= 0)
				fail("control connection closed");
			if (ch == '\n')
				break;
			if (ch != '\r' && len < sizeof(line) - 1)
				line[len++] = ch;
		}
		line[len] = '\0';
		if (len >= 4 && line[3] == ' ' && line[0] >= '1' && line[0] <= '5') {
			snprintf(text, n, "%s", line);
			return atoi(line);
		}
	}
}

static void send_line(struct conn *c, const char *line)
{
	char buf[LINE + 3];
	int len = snprintf(buf, sizeof(buf), "%s\r\n", line);
	int w = c->ssl != NULL ? SSL_write(c->ssl, buf, len) : (int)write(c->fd, buf, (size_t)len);
	if (w != len)
		fail("control write");
}

static void expect(struct conn *c, const char *line, int want, int also)
{
	char text[LINE];
	send_line(c, line);
	int code = reply(c, text, sizeof(text));
	if (code != want && code != also) {
		printf("fail %s -> %s\n", strncmp(line, "PASS", 4) == 0 ? "PASS" : line, text);
		fflush(stdout);
		exit(1);
	}
}

static int epsv_port(struct conn *c)
{
	char text[LINE];
	send_line(c, "EPSV");
	if (reply(c, text, sizeof(text)) != 229)
		fail(text);
	const char *p = strstr(text, "(|||");
	if (p == NULL)
		fail(text);
	return atoi(p + 4);
}

/* The data connection's TLS: the control connection's current session offered for resumption. */
static SSL *data_tls(SSL_CTX *ctx, struct conn *c, int dfd)
{
	SSL *d = SSL_new(ctx);
	SSL_SESSION *sess = SSL_get1_session(c->ssl);
	if (d == NULL || (sess != NULL && SSL_set_session(d, sess) != 1) || SSL_set_fd(d, dfd) != 1)
		fail("data SSL");
	SSL_SESSION_free(sess);
	if (SSL_connect(d) != 1)
		fail("data TLS handshake");
	return d;
}

static long long pump_in(SSL *d, bool *clean)
{
	static char buf[CHUNK];
	long long total = 0;
	int r;
	while ((r = SSL_read(d, buf, sizeof(buf))) > 0)
		total += r;
	*clean = SSL_get_error(d, r) == SSL_ERROR_ZERO_RETURN;
	return total;
}

static long long pump_out(SSL *d, const char *map, size_t size)
{
	size_t off = 0;
	while (off < size) {
		size_t n = size - off < CHUNK ? size - off : CHUNK;
		int w = SSL_write(d, map + off, (int)n);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	return (long long)off;
}

/* After our close_notify, wait for the server's close_notify or its FIN, so that the server
 * has read everything before the 226 is awaited. */
static bool close_data(SSL *d)
{
	int r = SSL_shutdown(d);
	if (r == 0) {
		char sink[4096];
		while (SSL_read(d, sink, sizeof(sink)) > 0)
			;
		r = SSL_shutdown(d);
	}
	return r == 1;
}

static void transfer(SSL_CTX *ctx, struct conn *c, bool get, const char *local, const char *remote,
		     long long want)
{
	const char *map = NULL;
	size_t size = 0;
	if (!get) {
		int f = open(local, O_RDONLY);
		struct stat st;
		if (f < 0 || fstat(f, &st) != 0)
			fail(local);
		size = (size_t)st.st_size;
		map = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, f, 0);
		if (map == MAP_FAILED || close(f) != 0)
			fail("mmap");
		want = (long long)size;
	}
	double cpu0 = cpu_seconds(), t0 = now();
	int port = epsv_port(c);
	int dfd = tcp_connect(port);
	char line[LINE], text[LINE];
	snprintf(line, sizeof(line), "%s %s", get ? "RETR" : "STOR", remote);
	send_line(c, line);
	int code = reply(c, text, sizeof(text));
	if (code != 150 && code != 125) {
		printf("fail %s -> %s\n", line, text);
		fflush(stdout);
		exit(1);
	}
	SSL *d = data_tls(ctx, c, dfd);
	double t1 = now();
	bool clean = true;
	long long moved = get ? pump_in(d, &clean) : pump_out(d, map, size);
	double t2 = now();
	bool closed = get ? (SSL_shutdown(d), clean) : close_data(d);
	printf("ok %s bytes=%lld data_secs=%.6f version=%s cipher=%s resumed=%d clean_close=%d ",
	       get ? "get" : "put", moved, t2 - t1, SSL_get_version(d), SSL_get_cipher_name(d),
	       SSL_session_reused(d), closed);
	SSL_free(d);
	if (close(dfd) != 0)
		fail("close");
	code = reply(c, text, sizeof(text));
	double t3 = now();
	printf("total_secs=%.6f client_cpu=%.6f code=%d want=%lld\n", t3 - t0, cpu_seconds() - cpu0, code,
	       want);
	fflush(stdout);
	if (map != NULL && munmap((void *)map, size) != 0)
		fail("munmap");
}

static SSL_CTX *client_ctx(const char *version)
{
	int v = strcmp(version, "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, v) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, v) != 1)
		fail("SSL_CTX");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* Keep the control connection's session current with each ticket the server sends. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	return ctx;
}

static void login(SSL_CTX *ctx, struct conn *c, const char *user, const char *pass)
{
	char text[LINE], line[LINE];
	if (reply(c, text, sizeof(text)) != 220)
		fail(text);
	expect(c, "AUTH TLS", 234, 234);
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_connect(c->ssl) != 1)
		fail("TLS handshake on the control connection");
	snprintf(line, sizeof(line), "USER %s", user);
	expect(c, line, 331, 331);
	snprintf(line, sizeof(line), "PASS %s", pass);
	expect(c, line, 230, 230);
	expect(c, "PBSZ 0", 200, 200);
	expect(c, "PROT P", 200, 200);
	expect(c, "TYPE I", 200, 200);
	printf("ok login version=%s cipher=%s\n", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *pass = getenv("FTPS_BENCH_PASS");
	if (argc != 4 || pass == NULL) {
		fprintf(stderr, "usage: FTPS_BENCH_PASS=... ftps_bench PORT USER 1.2|1.3\n");
		return 2;
	}
	SSL_CTX *ctx = client_ctx(argv[3]);
	struct conn c = { .fd = tcp_connect(atoi(argv[1])), .ssl = NULL };
	login(ctx, &c, argv[2], pass);
	char cmdline[LINE];
	while (fgets(cmdline, sizeof(cmdline), stdin) != NULL) {
		char op[16], a[LINE], b[LINE];
		int n = sscanf(cmdline, "%15s %1000s %1000s", op, a, b);
		if (n >= 1 && strcmp(op, "quit") == 0)
			break;
		if (n == 3 && strcmp(op, "get") == 0)
			transfer(ctx, &c, true, NULL, a, atoll(b));
		else if (n == 3 && strcmp(op, "put") == 0)
			transfer(ctx, &c, false, a, b, 0);
		else
			fail("bad command on stdin");
	}
	expect(&c, "QUIT", 221, 221);
	SSL_free(c.ssl);
	SSL_CTX_free(ctx);
	return close(c.fd) == 0 ? 0 : 1;
}
