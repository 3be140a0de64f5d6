/* fdio.c: see fdio.h. */
#include "common/fdio.h"

#include <errno.h>
#include <unistd.h>

int fd_write_all_counted(int fd, const void *p, size_t n, size_t *done)
{
	const char *c = p;
	*done = 0;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		n -= (size_t)w;
		*done += (size_t)w;
	}
	return 0;
}

int fd_write_all(int fd, const void *p, size_t n)
{
	size_t done;
	return fd_write_all_counted(fd, p, n, &done);
}
