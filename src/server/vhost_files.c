/*
 * vhost_files.c: see vhost_files.h.
 */
#include "server/vhost_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/num.h"
#include "server/users.h"

void vhost_fds_init(struct vhost_fds *v)
{
	for (unsigned i = 0; i < CONFIG_MAX_VHOSTS; i++)
		v->root[i] = v->users[i] = -1;
	v->n = 0;
}

void vhost_fds_close(struct vhost_fds *v)
{
	for (unsigned i = 0; i < v->n; i++) {
		if (v->root[i] >= 0)
			close(v->root[i]);
		if (v->users[i] >= 0)
			close(v->users[i]);
	}
	vhost_fds_init(v);
}

/* A users file the workers could not parse must stop a start or a reload here. */
static int snapshot_users(const struct vhost *h, int *fd, char *err, size_t errsz)
{
	*fd = users_snapshot(h->users_file);
	if (*fd < 0) {
		snprintf(err, errsz, "host %s: users file %s: %s", h->name, h->users_file,
			 strerror(-*fd));
		return -1;
	}
	struct users *parsed = NULL;
	if (users_load_fd(*fd, h->users_file, &parsed, stderr) < 0) {
		snprintf(err, errsz, "host %s: users file %s is not valid", h->name, h->users_file);
		return -1;
	}
	users_free(parsed);
	return 0;
}

int vhost_fds_open(struct vhost_fds *v, const struct config *cfg, char *err, size_t errsz)
{
	vhost_fds_init(v);
	v->n = cfg->n_vhosts;
	for (unsigned i = 0; i < cfg->n_vhosts; i++) {
		const struct vhost *h = &cfg->vhosts[i];
		if (h->root[0] != '\0' &&
		    (v->root[i] = open(h->root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
			snprintf(err, errsz, "host %s: root %s: %s", h->name, h->root, strerror(errno));
			vhost_fds_close(v);
			return -1;
		}
		if (h->users_file[0] != '\0' && snapshot_users(h, &v->users[i], err, errsz) < 0) {
			vhost_fds_close(v);
			return -1;
		}
	}
	return 0;
}

int vhost_fds_format(const struct vhost_fds *v, char *out, size_t outsz)
{
	if (v->n == 0)
		return str_copy(out, outsz, "-") < 0 ? -1 : 0;
	size_t len = 0;
	for (unsigned i = 0; i < v->n; i++) {
		int n = snprintf(out + len, outsz - len, "%s%d:%d", i == 0 ? "" : ",", v->root[i],
				 v->users[i]);
		if (n < 0 || (size_t)n >= outsz - len)
			return -1;
		len += (size_t)n;
	}
	return 0;
}

/* A descriptor number, or -1 for "-1". */
static int parse_fd(const char *s, size_t len, int *fd)
{
	uint64_t n;
	if (len == 2 && s[0] == '-' && s[1] == '1') {
		*fd = -1;
		return 0;
	}
	if (num_parse_u64((struct slice){ s, len }, 1 << 20, &n) < 0)
		return -1;
	*fd = (int)n;
	return 0;
}

int vhost_fds_parse(const char *arg, struct vhost_fds *v)
{
	vhost_fds_init(v);
	if (strcmp(arg, "-") == 0)
		return 0;
	for (;;) {
		size_t n = strcspn(arg, ",");
		const char *colon = memchr(arg, ':', n);
		if (v->n >= CONFIG_MAX_VHOSTS || colon == NULL ||
		    parse_fd(arg, (size_t)(colon - arg), &v->root[v->n]) < 0 ||
		    parse_fd(colon + 1, n - (size_t)(colon + 1 - arg), &v->users[v->n]) < 0)
			return -1;
		v->n++;
		if (arg[n] == '\0')
			return 0;
		arg += n + 1;
	}
}

static void keep_open(int fd)
{
	int fl = fd >= 0 ? fcntl(fd, F_GETFD) : -1;
	if (fl >= 0)
		fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
}

void vhost_fds_inherit(const struct vhost_fds *v)
{
	for (unsigned i = 0; i < v->n; i++) {
		keep_open(v->root[i]);
		keep_open(v->users[i]);
	}
}
