/*
 * privdrop.c: see privdrop.h.  Nothing here runs after start-up but the two capability
 * changes around a reload.
 */
#include "server/privdrop.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/log.h"

static int set_caps(bool permitted, bool effective)
{
	cap_t caps = cap_init();
	if (caps == NULL)
		return -errno;
	cap_value_t v = CAP_DAC_READ_SEARCH;
	int rc = 0;
	if ((permitted && cap_set_flag(caps, CAP_PERMITTED, 1, &v, CAP_SET) < 0) ||
	    (effective && cap_set_flag(caps, CAP_EFFECTIVE, 1, &v, CAP_SET) < 0) ||
	    cap_set_proc(caps) < 0)
		rc = -errno;
	cap_free(caps);
	return rc;
}

/* The drop itself; on failure *why names the step, errno the cause. */
static int become(const struct passwd *pw, bool keep_read, const char **why)
{
	*why = "keep a capability across the privilege drop";
	if (keep_read && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return -1;
	*why = "drop privileges";
	if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		return -1;
	if (keep_read) {
		*why = "keep CAP_DAC_READ_SEARCH for reloads";
		int rc = set_caps(true, false);
		prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
		if (rc < 0) {
			errno = -rc;
			return -1;
		}
	}
	*why = "drop privileges for good";
	if (setuid(0) == 0) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

int privdrop_to_user(const char *user, bool keep_read)
{
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		log_error("user '%s' does not exist (set 'user' to an unprivileged account)", user);
		return -1;
	}
	const char *why;
	if (become(pw, keep_read, &why) < 0) {
		log_error("cannot %s (user %s): %s", why, user, strerror(errno));
		return -1;
	}
	log_info("running as user %s (uid %d)%s", user, (int)pw->pw_uid,
		 keep_read ? ", keeping CAP_DAC_READ_SEARCH for reloads" : "");
	return 0;
}

int privdrop_read_privilege(bool on)
{
	cap_t cur = cap_get_proc();
	if (cur == NULL)
		return -errno;
	cap_flag_value_t have = CAP_CLEAR;
	cap_get_flag(cur, CAP_DAC_READ_SEARCH, CAP_PERMITTED, &have);
	cap_free(cur);
	if (have != CAP_SET)
		return 0; /* not started as root: nothing kept, files are read as we are */
	return set_caps(true, on);
}

/* The files a reload reads, and whether each can be opened. */
static int check_files(const struct config *cfg, FILE *out)
{
	const struct {
		const char *key, *path;
		int flags;
	} files[] = {
		{ "configuration file", cfg->config_file, O_RDONLY },
		{ "users_file", cfg->users_file, O_RDONLY },
		{ "tls_cert", cfg->tls_cert, O_RDONLY },
		{ "tls_key", cfg->tls_key, O_RDONLY },
		{ "tls_chain", cfg->tls_chain, O_RDONLY },
		{ "tls_client_ca", cfg->tls_client_ca, O_RDONLY },
		{ "root", cfg->root, O_PATH | O_DIRECTORY },
	};
	int failures = 0;
	for (unsigned h = 0; h < cfg->n_vhosts; h++) {
		const struct vhost *v = &cfg->vhosts[h];
		const char *paths[] = { v->users_file, v->tls_cert, v->tls_key, v->tls_chain, v->root };
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			int fd = paths[i][0] == '\0' ? -2
						      : open(paths[i], (i == 4 ? O_PATH | O_DIRECTORY
									     : O_RDONLY) | O_CLOEXEC);
			if (fd == -1) {
				fprintf(out, "error: host %s: %s: a reload (SIGHUP) as user %s cannot "
					     "read it: %s\n", v->name, paths[i], cfg->user, strerror(errno));
				failures++;
			} else if (fd >= 0) {
				close(fd);
			}
		}
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (files[i].path[0] == '\0')
			continue;
		int fd = open(files[i].path, files[i].flags | O_CLOEXEC);
		if (fd < 0) {
			fprintf(out, "error: %s %s: a reload (SIGHUP) as user %s cannot read it: %s\n",
				files[i].key, files[i].path, cfg->user, strerror(errno));
			failures++;
		} else {
			close(fd);
		}
	}
	return failures;
}

int privdrop_check_reload(const struct config *cfg, FILE *out)
{
	if (geteuid() != 0)
		return 0; /* the server would read them as it does now */
	fflush(out);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(out, "error: cannot check the reload: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		struct passwd *pw = getpwnam(cfg->user);
		const char *why;
		if (pw == NULL || become(pw, true, &why) < 0 || privdrop_read_privilege(true) < 0)
			_exit(100);
		int n = check_files(cfg, out);
		fflush(out);
		_exit(n > 99 ? 99 : n);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return 1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) == 100) {
		fprintf(out, "error: cannot become user %s to check what a reload reads\n", cfg->user);
		return 1;
	}
	return WEXITSTATUS(status);
}
