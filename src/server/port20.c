/*
 * port20.c: the port-20 helper process and its two clients (master and workers).
 *
 * The helper runs as the unprivileged user with only CAP_NET_BIND_SERVICE.  It serves
 * exactly one request type, PORT20_REQUEST (messages.def), and checks it: an IPv4 or IPv6 address,
 * port forced to 20.  It never reads from the network and never touches a file.
 */
#include "server/port20.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/hostport.h"
#include "server/channel.h"
#include "server/log.h"
#include "server/sandbox.h"

#define PORT20_MAX_CHANNELS 1024

static int drop_to_user(const char *user)
{
	struct passwd *pw = getpwnam(user);
	if (pw == NULL)
		return -ENOENT;
	if (prctl(PR_SET_KEEPCAPS, 1) < 0 || setgroups(0, NULL) < 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		return -errno;
	cap_t caps = cap_init();
	cap_value_t keep = CAP_NET_BIND_SERVICE;
	int rc = 0;
	if (caps == NULL || cap_set_flag(caps, CAP_PERMITTED, 1, &keep, CAP_SET) < 0 ||
	    cap_set_flag(caps, CAP_EFFECTIVE, 1, &keep, CAP_SET) < 0 || cap_set_proc(caps) < 0)
		rc = -errno;
	cap_free(caps);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return rc;
}

static void serve_request(int chan, const struct msg_port20_req *req)
{
	struct msg_port20_reply rep = { .err = 0 };
	struct sockaddr_storage a = req->local;
	int fd = -1;
	if (a.ss_family != AF_INET && a.ss_family != AF_INET6) {
		rep.err = EINVAL;
	} else {
		hostport_set_port(&a, 20);
		fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int one = 1;
		/* Many data connections may come from port 20 at once, to different peers. */
		if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    bind(fd, (struct sockaddr *)&a, hostport_len(&a)) < 0) {
			rep.err = errno;
			if (fd >= 0)
				close(fd);
			fd = -1;
		}
	}
	msg_write(chan, MSG_PORT20_REPLY, &rep, fd);
	if (fd >= 0)
		close(fd);
}

static _Noreturn void helper_main(int ctl)
{
	struct pollfd *fds = calloc(PORT20_MAX_CHANNELS + 1, sizeof(*fds));
	if (fds == NULL)
		_exit(1);
	nfds_t n = 1;
	fds[0].fd = ctl;
	fds[0].events = POLLIN;
	for (;;) {
		if (poll(fds, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		for (nfds_t i = 0; i < n; i++) {
			if (fds[i].revents == 0)
				continue;
			enum msg_type type;
			union msg_payload m;
			int fd;
			int rc = msg_read(fds[i].fd, TO_PORT20, false, &type, &m, &fd);
			if (i == 0) {
				if (rc == -EPIPE)
					_exit(0); /* the master is gone */
				if (rc == 0 && type == MSG_PORT20_CHANNEL && fd >= 0 &&
				    n <= PORT20_MAX_CHANNELS) {
					fds[n].fd = fd;
					fds[n].events = POLLIN;
					fds[n].revents = 0;
					n++;
				} else if (fd >= 0) {
					close(fd);
				}
				continue;
			}
			if (fd >= 0)
				close(fd); /* workers never send descriptors */
			if (rc == 0 && type == MSG_PORT20_REQUEST) {
				serve_request(fds[i].fd, &m.PORT20_REQUEST);
			} else if (rc != -EAGAIN) {
				/* The worker is gone: forget its channel. */
				close(fds[i].fd);
				fds[i] = fds[n - 1];
				n--;
				i--;
			}
		}
	}
}

pid_t port20_start(const char *user, int *ctl)
{
	int end = -1;
	pid_t pid = msg_fork_helper("ferryd-port20", &end);
	if (pid != 0) {
		*ctl = end;
		return pid;
	}
	int rc = drop_to_user(user);
	if (rc < 0) {
		log_error("port-20 helper: cannot drop to user %s: %s", user, strerror(-rc));
		_exit(1);
	}
	if (sandbox_port20() < 0)
		_exit(1);
	helper_main(end);
}

int port20_request(int chan, const struct sockaddr_storage *addr)
{
	struct msg_port20_req req = { .local = *addr };
	int rc = msg_write(chan, MSG_PORT20_REQUEST, &req, -1);
	if (rc < 0)
		return rc;
	enum msg_type type;
	union msg_payload m;
	int fd;
	rc = msg_read(chan, TO_WORKER, true, &type, &m, &fd);
	if (rc < 0)
		return rc;
	if (type != MSG_PORT20_REPLY || fd < 0) {
		if (fd >= 0)
			close(fd);
		return type == MSG_PORT20_REPLY && m.PORT20_REPLY.err != 0 ? -m.PORT20_REPLY.err
									  : -EPROTO;
	}
	return fd;
}
