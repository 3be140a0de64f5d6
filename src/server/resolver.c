/*
 * resolver.c: the thread behind resolver.h.  It touches only its own request (the name,
 * the interval) and the pipe; the loop owns the current address.
 */
#include "server/resolver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "server/log.h"

struct resolver {
	char name[256];
	unsigned refresh;
	struct in_addr current;   /* loop side */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	int pipe_rd, pipe_wr;
	struct event *ev;
};

/* What the thread sends: an address, or why the name did not resolve. */
struct result {
	int gai_err;              /* 0 on success */
	struct in_addr addr;
};

static int resolve(const char *name, struct in_addr *out)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(name, NULL, &hints, &res);
	if (rc != 0)
		return rc;
	if (res == NULL || res->ai_family != AF_INET) {
		freeaddrinfo(res);
		return EAI_NONAME;
	}
	*out = ((const struct sockaddr_in *)res->ai_addr)->sin_addr;
	freeaddrinfo(res);
	return 0;
}

static void *resolver_thread(void *arg)
{
	struct resolver *r = arg;
	for (;;) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)r->refresh;
		pthread_mutex_lock(&r->lock);
		int rc = 0;
		while (!r->stop && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&r->cond, &r->lock, &until);
		bool stop = r->stop;
		pthread_mutex_unlock(&r->lock);
		if (stop)
			return NULL;
		struct result res;
		memset(&res, 0, sizeof(res));
		res.gai_err = resolve(r->name, &res.addr);
		ssize_t w;
		do {
			w = write(r->pipe_wr, &res, sizeof(res));
		} while (w < 0 && errno == EINTR);
	}
}

static void on_result(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;
	struct result res;
	while (read(r->pipe_rd, &res, sizeof(res)) == (ssize_t)sizeof(res)) {
		char was[INET_ADDRSTRLEN], now[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &r->current, was, sizeof(was));
		if (res.gai_err != 0) {
			log_warn("pasv_address %s does not resolve (%s); PASV replies keep %s",
				 r->name, gai_strerror(res.gai_err), was);
			continue;
		}
		if (res.addr.s_addr == r->current.s_addr)
			continue;
		inet_ntop(AF_INET, &res.addr, now, sizeof(now));
		log_info("pasv_address %s now resolves to %s (was %s)", r->name, now, was);
		r->current = res.addr;
	}
}

struct resolver *resolver_new(struct event_base *base, const char *name, unsigned refresh)
{
	struct resolver *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->pipe_rd = r->pipe_wr = -1;
	r->refresh = refresh;
	if (str_copy(r->name, sizeof(r->name), name) < 0) {
		free(r);
		return NULL;
	}
	int rc = resolve(name, &r->current);
	if (rc != 0) {
		log_error("pasv_address %s does not resolve to an IPv4 address: %s", name,
			  gai_strerror(rc));
		free(r);
		return NULL;
	}
	char now[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &r->current, now, sizeof(now));
	log_info("pasv_address %s resolves to %s%s", name, now,
		 refresh > 0 ? "; resolved again periodically" : "");
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	if (refresh == 0)
		return r;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("resolver: %s", strerror(errno));
		resolver_free(r);
		return NULL;
	}
	r->pipe_rd = fds[0];
	r->pipe_wr = fds[1];
	r->ev = event_new(base, r->pipe_rd, EV_READ | EV_PERSIST, on_result, r);
	if (r->ev == NULL || event_add(r->ev, NULL) < 0 ||
	    pthread_create(&r->thread, NULL, resolver_thread, r) != 0) {
		log_error("resolver: cannot start its thread");
		resolver_free(r);
		return NULL;
	}
	r->thread_started = true;
	return r;
}

struct in_addr resolver_address(const struct resolver *r)
{
	return r->current;
}

const char *resolver_name(const struct resolver *r)
{
	return r->name;
}

void resolver_free(struct resolver *r)
{
	if (r == NULL)
		return;
	if (r->thread_started) {
		pthread_mutex_lock(&r->lock);
		r->stop = true;
		pthread_cond_signal(&r->cond);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->thread, NULL);
	}
	if (r->ev != NULL)
		event_free(r->ev);
	if (r->pipe_rd >= 0)
		close(r->pipe_rd);
	if (r->pipe_wr >= 0)
		close(r->pipe_wr);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}
