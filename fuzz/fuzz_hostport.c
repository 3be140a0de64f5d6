/*
 * fuzz_hostport.c: every parser of hostport.h on the same input, and for each address
 * accepted, format it again and parse that: the round trip must give the same address.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/hostport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_or_die(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (!hostport_same_host(a, b) || hostport_get_port(a) != hostport_get_port(b))
		abort();
}

static void check_ntop(const struct sockaddr_storage *ss)
{
	char s[64], tiny[3];
	hostport_ntop(ss, s, sizeof(s));
	if (strlen(s) == 0 || strlen(s) >= sizeof(s))
		abort();
	hostport_ntop(ss, tiny, sizeof(tiny));
	if (strlen(tiny) >= sizeof(tiny))
		abort();
	if (hostport_len(ss) == 0)
		abort();
}

static void port_round_trip(const struct sockaddr_storage *ss)
{
	struct buf b;
	struct sockaddr_storage back;
	buf_init(&b, 256);
	if (hostport_format_port(&b, ss) != FERR_OK || hostport_parse_port(b.data, &back) != FERR_OK)
		abort();
	same_or_die(ss, &back);
	buf_free(&b);
}

static void eprt_round_trip(const struct sockaddr_storage *ss)
{
	struct buf b;
	struct sockaddr_storage back;
	if (hostport_get_port(ss) == 0)
		return; /* EPRT cannot carry port 0 */
	buf_init(&b, 256);
	if (hostport_format_eprt(&b, ss) != FERR_OK || hostport_parse_eprt(b.data, &back) != FERR_OK)
		abort();
	same_or_die(ss, &back);
	buf_free(&b);
}

static void pasv_round_trip(const struct sockaddr_storage *ss)
{
	struct buf b;
	struct sockaddr_storage back;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	buf_init(&b, 256);
	if (hostport_format_pasv(&b, &sin->sin_addr, hostport_get_port(ss)) != FERR_OK ||
	    hostport_parse_pasv_reply(b.data, &back) != FERR_OK)
		abort();
	same_or_die(ss, &back);
	buf_free(&b);
}

static void listen_round_trip(const struct sockaddr_storage *ss)
{
	char host[64], text[80];
	struct sockaddr_storage back;
	hostport_ntop(ss, host, sizeof(host));
	if (ss->ss_family == AF_INET6)
		snprintf(text, sizeof(text), "[%s]:%u", host, (unsigned)hostport_get_port(ss));
	else
		snprintf(text, sizeof(text), "%s:%u", host, (unsigned)hostport_get_port(ss));
	if (hostport_parse_listen(text, &back) != FERR_OK)
		abort();
	same_or_die(ss, &back);
	if (back.ss_family != ss->ss_family)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';

	struct sockaddr_storage ss, other;
	memset(&other, 0, sizeof(other));

	if (hostport_parse_port(s, &ss) == FERR_OK) {
		if (ss.ss_family != AF_INET)
			abort();
		check_ntop(&ss);
		port_round_trip(&ss);
		eprt_round_trip(&ss);
		pasv_round_trip(&ss);
	}

	int rc = hostport_parse_eprt(s, &ss);
	if (rc == FERR_OK) {
		if (hostport_get_port(&ss) == 0)
			abort();
		check_ntop(&ss);
		eprt_round_trip(&ss);
		other = ss;
		hostport_unmap(&other);
		same_or_die(&ss, &other);
		if (other.ss_family == AF_INET)
			port_round_trip(&ss);
	} else if (rc != FERR_INVALID && rc != FERR_RANGE) {
		abort();
	}

	if (hostport_parse_pasv_reply(s, &ss) == FERR_OK) {
		check_ntop(&ss);
		pasv_round_trip(&ss);
	}

	uint16_t port;
	if (hostport_parse_epsv_reply(s, &port) == FERR_OK) {
		struct buf b;
		uint16_t back = 0;
		if (port == 0)
			abort();
		buf_init(&b, 128);
		if (hostport_format_epsv(&b, port) != FERR_OK ||
		    hostport_parse_epsv_reply(b.data, &back) != FERR_OK || back != port)
			abort();
		buf_free(&b);
	}

	rc = hostport_parse_listen(s, &ss);
	if (rc == FERR_OK) {
		if (hostport_get_port(&ss) == 0)
			abort();
		check_ntop(&ss);
		listen_round_trip(&ss);
		(void)hostport_same_host(&ss, &other);
	} else if (rc != FERR_INVALID && rc != FERR_RANGE) {
		abort();
	}

	uint16_t lo, hi;
	if (hostport_parse_range(s, &lo, &hi) == FERR_OK && (lo < 1024 || lo > hi))
		abort();

	free(s);
	return 0;
}
