/*
 * file_helper.c: the file helper of one local system user (local_auth.c): a process of
 * the user's uid and groups, with no capability, Landlocked to the user's root and
 * filtered by seccomp, that makes the file operations of every session of the user
 * (fs_proxy.h), each connection one session.  It ends when its last session has gone
 * and the local-auth helper agrees (FILES_IDLE, FILES_EXIT), or when that helper is gone.
 */
#include "server/file_helper.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "server/channel.h"
#include "server/fs_proxy.h"
#include "server/log.h"
#include "server/sandbox.h"

#define FILES_MAX_CONNS 4096
/*
 * How long a helper without sessions waits before it asks to end: a client that logs in
 * again at once (a script, a mirror tool opening one session per file) finds it still
 * there instead of paying a fork, an exec and a sandbox per login.
 */
#define FILES_LINGER_MS 2000

static int serve(int ctl, int root, struct pollfd *fds, union msg_payload *m)
{
	nfds_t n = 1;
	fds[0] = (struct pollfd){ .fd = ctl, .events = POLLIN };
	/* Idle is said only once a session has come and gone: its first is on its way. */
	bool told_idle = true, ending = false, lingered = false;
	for (;;) {
		if (n == 1 && ending)
			return 0;
		int wait = -1;
		if (n == 1 && !told_idle && !lingered) {
			wait = FILES_LINGER_MS; /* none left: linger a while first */
		} else if (n == 1 && !told_idle) {
			/* No session left: ask to end (a new one may already be on its way). */
			struct msg_empty e = { 0 };
			if (msg_write(ctl, MSG_FILES_IDLE, &e, -1) < 0)
				return 0;
			told_idle = true;
		}
		int ready = poll(fds, n, wait);
		if (ready < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		lingered = ready == 0 && wait >= 0;
		if (fds[0].revents != 0) {
			enum msg_type type;
			int fd;
			int rc = msg_read(ctl, TO_FILES, false, &type, m, &fd);
			if (rc == 0 && type == MSG_FILES_CONN && fd >= 0 && n <= FILES_MAX_CONNS) {
				fds[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
				told_idle = false;
				lingered = false;
				fd = -1;
			} else if (rc == 0 && type == MSG_FILES_EXIT) {
				ending = true;
			} else if (rc != -EAGAIN) {
				ending = true; /* the local-auth helper is gone */
				fds[0].fd = -1; /* poll ignores it from now on */
			}
			if (fd >= 0)
				close(fd);
		}
		for (nfds_t i = 1; i < n; i++) {
			if (fds[i].revents == 0)
				continue;
			int rc = fs_proxy_serve(fds[i].fd, root);
			if (rc < 0 && rc != -EAGAIN) {
				/* The session has ended (or its worker broke the protocol). */
				close(fds[i].fd);
				fds[i] = fds[--n];
				i--;
			}
		}
	}
}

int file_helper_main(int ctl, int root)
{
	prctl(PR_SET_NAME, "ferryd-files");
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	log_set_role("file helper");
	if (sandbox_file_helper(root) < 0)
		return 1;
	struct pollfd *fds = calloc(FILES_MAX_CONNS + 1, sizeof(*fds));
	union msg_payload *m = malloc(sizeof(*m));
	int rc = fds != NULL && m != NULL ? serve(ctl, root, fds, m) : 1;
	free(fds);
	free(m);
	return rc;
}
