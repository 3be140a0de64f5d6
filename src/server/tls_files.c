/*
 * tls_files.c: see tls_files.h.
 */
#include "server/tls_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* A certificate file is small; anything larger is a mistake in the configuration. */
#define TLS_FILE_MAX (1024 * 1024)
/* The four files, then the session ticket keys, made here: one set for all workers. */
#define N_FILES 4
/* Then each [host] section's certificate, key and chain (empty when it has none). */
#define HOST_FILES 3
#define N_PARTS (N_FILES + 1 + HOST_FILES * CONFIG_MAX_VHOSTS)

static int copy_file(int out, const char *path, uint64_t *len)
{
	*len = 0;
	if (path[0] == '\0')
		return 0;
	int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	char buf[16384];
	int rc = 0;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		if (*len + (uint64_t)n > TLS_FILE_MAX) {
			rc = -EFBIG;
			break;
		}
		if (write(out, buf, (size_t)n) != n) {
			rc = -EIO;
			break;
		}
		*len += (uint64_t)n;
	}
	explicit_bzero(buf, sizeof(buf));
	close(in);
	return rc;
}

int tls_files_snapshot(const struct config *cfg, const char **what)
{
	const char *paths[N_FILES] = { cfg->tls_cert, cfg->tls_key, cfg->tls_chain,
				       cfg->tls_client_ca };
	static const char *const keys[N_FILES] = { "tls_cert", "tls_key", "tls_chain",
						   "tls_client_ca" };
	*what = "tls_cert";
	int fd = memfd_create("ferryd-tls", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	uint64_t lens[N_PARTS] = { 0 };
	int rc = 0;
	if (ftruncate(fd, sizeof(lens)) < 0 || lseek(fd, sizeof(lens), SEEK_SET) < 0)
		rc = -errno;
	for (int i = 0; rc == 0 && i < N_FILES; i++) {
		*what = keys[i];
		rc = copy_file(fd, paths[i], &lens[i]);
	}
	if (rc == 0) {
		*what = "session ticket keys";
		unsigned char tk[TLS_TICKET_KEYS_LEN];
		if (getrandom(tk, sizeof(tk), 0) != (ssize_t)sizeof(tk))
			rc = -EIO;
		else if (write(fd, tk, sizeof(tk)) != (ssize_t)sizeof(tk))
			rc = -EIO;
		lens[N_FILES] = sizeof(tk);
		explicit_bzero(tk, sizeof(tk));
	}
	for (unsigned h = 0; rc == 0 && h < cfg->n_vhosts; h++) {
		const struct vhost *v = &cfg->vhosts[h];
		const char *hpaths[HOST_FILES] = { v->tls_cert, v->tls_key, v->tls_chain };
		for (int i = 0; rc == 0 && i < HOST_FILES; i++) {
			*what = keys[i];
			rc = copy_file(fd, hpaths[i], &lens[N_FILES + 1 + h * HOST_FILES + i]);
		}
	}
	if (rc == 0 && pwrite(fd, lens, sizeof(lens), 0) != (ssize_t)sizeof(lens))
		rc = -EIO;
	if (rc == 0 &&
	    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
		rc = -errno;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

int tls_files_map(int fd, struct tls_files_map *m)
{
	memset(m, 0, sizeof(*m));
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	uint64_t lens[N_PARTS];
	if ((uint64_t)st.st_size < sizeof(lens))
		return -EINVAL;
	size_t len = (size_t)st.st_size;
	void *base = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (base == MAP_FAILED)
		return -errno;
	memcpy(lens, base, sizeof(lens));
	uint64_t total = sizeof(lens);
	for (int i = 0; i < N_PARTS; i++) {
		if (lens[i] > TLS_FILE_MAX)
			total = UINT64_MAX;
		else
			total += lens[i];
	}
	if (total != len) {
		munmap(base, len);
		return -EINVAL;
	}
	const char *p = (const char *)base + sizeof(lens);
	m->pem.cert = p;
	m->pem.cert_len = (size_t)lens[0];
	p += lens[0];
	m->pem.key = p;
	m->pem.key_len = (size_t)lens[1];
	p += lens[1];
	m->pem.chain = p;
	m->pem.chain_len = (size_t)lens[2];
	p += lens[2];
	m->pem.client_ca = p;
	m->pem.client_ca_len = (size_t)lens[3];
	p += lens[3];
	m->pem.ticket_keys = (const unsigned char *)p;
	m->pem.ticket_keys_len = (size_t)lens[4];
	p += lens[4];
	for (int h = 0; h < CONFIG_MAX_VHOSTS; h++) {
		const uint64_t *hl = &lens[N_FILES + 1 + h * HOST_FILES];
		m->hosts[h].cert = p;
		m->hosts[h].cert_len = (size_t)hl[0];
		m->hosts[h].key = p + hl[0];
		m->hosts[h].key_len = (size_t)hl[1];
		m->hosts[h].chain = p + hl[0] + hl[1];
		m->hosts[h].chain_len = (size_t)hl[2];
		p += hl[0] + hl[1] + hl[2];
	}
	m->base = base;
	m->len = len;
	return 0;
}

void tls_files_unmap(struct tls_files_map *m)
{
	if (m->base != NULL)
		munmap(m->base, m->len);
	memset(m, 0, sizeof(*m));
}

struct tls_ctx *tls_files_context(const struct tls_files_map *m, const struct config *cfg,
				  char *err, size_t errsz)
{
	struct tls_ctx *ctx = tls_server_new(&m->pem, err, errsz);
	for (unsigned h = 0; ctx != NULL && h < cfg->n_vhosts; h++) {
		char why[512];
		if (m->hosts[h].cert_len > 0 &&
		    tls_server_add_host(ctx, cfg->vhosts[h].name, &m->hosts[h], why,
					sizeof(why)) < 0) {
			snprintf(err, errsz, "host %s: %s", cfg->vhosts[h].name, why);
			tls_ctx_free(ctx);
			ctx = NULL;
		}
	}
	return ctx;
}

int tls_files_load(const struct config *cfg, char *err, size_t errsz)
{
	const char *what;
	int fd = tls_files_snapshot(cfg, &what);
	if (fd < 0) {
		snprintf(err, errsz, "%s: %s", what, strerror(-fd));
		return -1;
	}
	struct tls_files_map map;
	int rc = tls_files_map(fd, &map);
	if (rc < 0) {
		snprintf(err, errsz, "TLS files: %s", strerror(-rc));
		close(fd);
		return -1;
	}
	struct tls_ctx *ctx = tls_files_context(&map, cfg, err, errsz);
	tls_files_unmap(&map);
	if (ctx == NULL) {
		close(fd);
		return -1;
	}
	tls_ctx_free(ctx);
	return fd;
}
