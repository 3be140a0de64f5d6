/*
 * fdio.h: writing to a descriptor, whole.  Kept out of the pure modules (it does I/O);
 * the server's transfers and log and the client's downloads share it.
 */
#ifndef FERRY_COMMON_FDIO_H
#define FERRY_COMMON_FDIO_H

#include <stddef.h>

/* Write all n bytes, again after EINTR and short writes.  Returns 0 or -errno. */
int fd_write_all(int fd, const void *p, size_t n);
/*
 * The same, and *done gets the bytes written, also when it fails: on a file, what a short
 * write put there before ENOSPC or EIO stays there and must be counted.
 */
int fd_write_all_counted(int fd, const void *p, size_t n, size_t *done);

#endif
