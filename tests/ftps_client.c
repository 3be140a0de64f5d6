/*
 * ftps_client.c: a small FTPS client on OpenSSL, for the interoperability tests, that does
 * what C clients commonly do to satisfy a server that requires TLS session reuse: every
 * data connection offers the control connection's current session object
 * (SSL_get1_session on the control SSL, SSL_set_session on the data SSL).
 *
 *   ftps_client PORT CAFILE TLSVERSION OP...      (TLSVERSION: 1.2 or 1.3)
 *   OP: get:REMOTE:LOCAL | put:LOCAL:REMOTE
 *
 * Explicit FTPS (AUTH TLS) to 127.0.0.1, anonymous, PBSZ 0, PROT P, TYPE I, EPSV for each
 * data connection.  Prints one line per transfer: "get REMOTE resumed|new 226".  Exits 1 at
 * the first reply that is not what a transfer needs, 2 on a usage or local error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static SSL *ctl;

static void die(int code, const char *what)
{
	fprintf(stderr, "ftps_client: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(code);
}

static int tcp_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = { .tv_sec = 20 };
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die(2, "connect");
	return fd;
}

/* One reply (the last line's code), read through TLS once ctl is set, else from fd. */
static int reply(int fd, char *text, size_t n)
{
	char line[1024];
	for (;;) {
		size_t len = 0;
		for (;;) {
			char c;
			int r = ctl != NULL ? SSL_read(ctl, &c, 1) : (int)read(fd, &c, 1);
			if (r <= 0)
				die(1, "control connection closed");
			if (c == '\n')
				break;
			if (c != '\r' && len < sizeof(line) - 1)
				line[len++] = c;
		}
		line[len] = '\0';
		if (len >= 4 && line[3] == ' ') {
			snprintf(text, n, "%s", line);
			return atoi(line);
		}
	}
}

static int cmd(int fd, const char *line, char *text, size_t n)
{
	char buf[1100];
	int len = snprintf(buf, sizeof(buf), "%s\r\n", line);
	int w = ctl != NULL ? SSL_write(ctl, buf, len) : (int)write(fd, buf, (size_t)len);
	if (w != len)
		die(1, "control write");
	return reply(fd, text, n);
}

static void expect(int fd, const char *line, int want)
{
	char text[1024];
	int code = cmd(fd, line, text, sizeof(text));
	if (code != want) {
		fprintf(stderr, "ftps_client: %s -> %s\n", line, text);
		exit(1);
	}
}

static int epsv_port(int fd)
{
	char text[1024];
	if (cmd(fd, "EPSV", text, sizeof(text)) != 229)
		die(1, text);
	const char *p = strstr(text, "(|||");
	if (p == NULL)
		die(1, text);
	return atoi(p + 4);
}

static void transfer(SSL_CTX *c, int fd, const char *op, const char *a, const char *b)
{
	bool get = strcmp(op, "get") == 0;
	int port = epsv_port(fd);
	int dfd = tcp_connect(port);
	char line[1100], text[1024];
	snprintf(line, sizeof(line), "%s %s", get ? "RETR" : "STOR", get ? a : b);
	int len = snprintf(text, sizeof(text), "%s\r\n", line);
	if (SSL_write(ctl, text, len) != len)
		die(1, "control write");
	int code = reply(fd, text, sizeof(text));
	if (code != 150) {
		fprintf(stderr, "ftps_client: %s -> %s\n", line, text);
		exit(1);
	}
	SSL *d = SSL_new(c);
	SSL_SESSION *sess = SSL_get1_session(ctl); /* the control connection's, every time */
	SSL_set_session(d, sess);
	SSL_SESSION_free(sess);
	SSL_set_fd(d, dfd);
	int hs = SSL_connect(d);
	bool resumed = hs == 1 && SSL_session_reused(d);
	FILE *f = fopen(get ? b : a, get ? "wb" : "rb");
	if (f == NULL)
		die(2, get ? b : a);
	char buf[65536];
	if (hs == 1 && get) {
		int r;
		while ((r = SSL_read(d, buf, sizeof(buf))) > 0)
			fwrite(buf, 1, (size_t)r, f);
	} else if (hs == 1) {
		size_t r;
		while ((r = fread(buf, 1, sizeof(buf), f)) > 0) {
			if (SSL_write(d, buf, (int)r) != (int)r)
				break;
		}
	}
	fclose(f);
	if (hs == 1)
		SSL_shutdown(d);
	SSL_free(d);
	close(dfd);
	code = reply(fd, text, sizeof(text));
	printf("%s %s %s %d\n", op, get ? a : b, resumed ? "resumed" : "new", code);
	fflush(stdout);
	if (code != 226) {
		fprintf(stderr, "ftps_client: %s -> %s\n", line, text);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc < 4)
		die(2, "usage: ftps_client PORT CAFILE 1.2|1.3 get:REMOTE:LOCAL|put:LOCAL:REMOTE...");
	int version = strcmp(argv[3], "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	if (c == NULL || SSL_CTX_load_verify_locations(c, argv[2], NULL) != 1)
		die(2, "CA file");
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_min_proto_version(c, version);
	SSL_CTX_set_max_proto_version(c, version);
	int fd = tcp_connect(atoi(argv[1]));
	char text[1024];
	if (reply(fd, text, sizeof(text)) != 220)
		die(1, text);
	expect(fd, "AUTH TLS", 234);
	ctl = SSL_new(c);
	SSL_set_fd(ctl, fd);
	SSL_set1_host(ctl, "localhost");
	if (SSL_connect(ctl) != 1)
		die(1, "TLS handshake on the control connection");
	expect(fd, "USER anonymous", 331);
	expect(fd, "PASS c@example.org", 230);
	expect(fd, "PBSZ 0", 200);
	expect(fd, "PROT P", 200);
	expect(fd, "TYPE I", 200);
	for (int i = 4; i < argc; i++) {
		char op[1024];
		snprintf(op, sizeof(op), "%s", argv[i]);
		char *a = strchr(op, ':');
		char *b = a != NULL ? strchr(a + 1, ':') : NULL;
		if (b == NULL)
			die(2, "bad OP");
		*a++ = '\0';
		*b++ = '\0';
		transfer(c, fd, op, a, b);
	}
	expect(fd, "QUIT", 221);
	SSL_free(ctl);
	SSL_CTX_free(c);
	close(fd);
	return 0;
}
