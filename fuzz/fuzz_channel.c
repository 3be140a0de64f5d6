/*
 * fuzz_channel.c: the receiving side of ferryd's process channel (src/server/channel.c),
 * the parser that stands between a worker and the master.
 *
 * Input: byte 0 picks the receiving role (master, worker, port-20 helper) and whether a
 * descriptor is attached; the rest is sent as one SOCK_SEQPACKET packet.  msg_read must
 * accept exactly the packets whose header names a known type meant for that role, whose
 * length is that type's payload size and whose descriptor matches the type's rule; a
 * descriptor that came with a refused packet is closed, one with an accepted packet is
 * the caller's.  Also each accepted packet written back with msg_write must read the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/channel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sv[2] = { -1, -1 };

struct hdr {
	uint16_t type, len;
	uint32_t zero;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	if (sv[0] < 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	enum msg_role role = (enum msg_role)(TO_MASTER + (data[0] & 0x7f) % 3);
	bool attach = (data[0] & 0x80) != 0;
	data++;
	size--;
	int dev = attach ? open("/dev/null", O_RDONLY | O_CLOEXEC) : -1;
	if (msg_write_raw(sv[0], data, size, dev) != 0)
		abort();
	if (dev >= 0)
		close(dev);

	enum msg_type type;
	union msg_payload p;
	int fd;
	int rc = msg_read(sv[1], role, false, &type, &p, &fd);
	struct hdr h;
	const struct msg_def *d = NULL;
	if (size >= sizeof(h)) {
		memcpy(&h, data, sizeof(h));
		d = msg_def_of(h.type);
	}
	bool want = size > 0 && d != NULL && h.zero == 0 && h.len == d->size &&
		    size == sizeof(h) + d->size && d->to == role &&
		    !(d->fd == FD_NONE && attach) && !(d->fd == FD_REQUIRED && !attach);
	if (size == 0)
		want = false;
	if ((rc == 0) != want)
		abort();
	if (rc != 0) {
		if (fd != -1)
			abort();
		return 0;
	}
	if ((fd >= 0) != attach || type != h.type || memcmp(&p, data + sizeof(h), d->size) != 0)
		abort();
	/* Written back, it reads the same. */
	if (msg_write(sv[0], type, &p, fd) != 0)
		abort();
	if (fd >= 0)
		close(fd);
	enum msg_type type2;
	union msg_payload p2;
	int fd2;
	if (msg_read(sv[1], role, false, &type2, &p2, &fd2) != 0 || type2 != type ||
	    memcmp(&p2, &p, d->size) != 0 || (fd2 >= 0) != attach)
		abort();
	if (fd2 >= 0)
		close(fd2);
	return 0;
}
