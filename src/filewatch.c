/*
 * filewatch.c - re-read a file only when stat() says it changed.
 */
#include "filewatch.h"

#include "strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The stat fields that identify one version of the file. */
struct stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_ns;
};

struct pw_filewatch {
	char *path;
	size_t max_size;
	char *content; /* NUL-terminated; secret, wiped on replacement */
	size_t len;
	struct stamp stamp; /* of the read that produced content */
};

static void stamp_of(const struct stat *st, struct stamp *sp)
{
	sp->dev = st->st_dev;
	sp->ino = st->st_ino;
	sp->size = st->st_size;
	sp->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static bool stamp_equal(const struct stamp *a, const struct stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns;
}

static void wipe_free(char *p, size_t n)
{
	if (!p)
		return;
	pw_memzero(p, n);
	free(p);
}

/*
 * Reads the whole file into a fresh buffer. The stamp comes from fstat() on
 * the opened descriptor, so it describes the version actually read even if
 * the path is swapped underneath.
 */
static int read_file(const char *path, size_t max_size, char **out, size_t *outlen,
		     struct stamp *sp, char **err)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd = -1, rc = -1;

	/* O_NONBLOCK: a FIFO planted at the path must not stall the caller. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (err)
			*err = pw_asprintf("cannot read \"%s\": %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		if (err)
			*err = pw_asprintf("cannot read \"%s\": not a regular file", path);
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			char *nbuf;

			if (ncap > max_size + 1)
				ncap = max_size + 1;
			if (ncap <= cap) {
				if (err)
					*err = pw_asprintf(
						"cannot read \"%s\": larger than %zu bytes", path,
						max_size);
				goto out;
			}
			/* Grow by copy so no stale copy of a secret is left behind. */
			nbuf = malloc(ncap + 1);
			if (!nbuf) {
				if (err)
					*err = pw_asprintf("cannot read \"%s\": out of memory",
							   path);
				goto out;
			}
			if (buf)
				memcpy(nbuf, buf, len);
			wipe_free(buf, cap);
			buf = nbuf;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (err)
				*err = pw_asprintf("cannot read \"%s\": %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max_size) {
		if (err)
			*err = pw_asprintf("cannot read \"%s\": larger than %zu bytes", path,
					   max_size);
		goto out;
	}
	if (!buf) {
		buf = malloc(1);
		if (!buf) {
			if (err)
				*err = pw_asprintf("cannot read \"%s\": out of memory", path);
			goto out;
		}
	}
	buf[len] = '\0';
	stamp_of(&st, sp);
	*out = buf;
	*outlen = len;
	buf = NULL;
	rc = 0;
out:
	if (buf)
		wipe_free(buf, cap);
	if (fd >= 0)
		close(fd);
	return rc;
}

struct pw_filewatch *pw_filewatch_open(const char *path, size_t max_size, char **err)
{
	struct pw_filewatch *fw;

	if (err)
		*err = NULL;
	if (!path) {
		if (err)
			*err = pw_strdup("cannot read a file without a name");
		return NULL;
	}
	fw = calloc(1, sizeof(*fw));
	if (!fw || !(fw->path = pw_strdup(path))) {
		if (err)
			*err = pw_asprintf("cannot read \"%s\": out of memory", path);
		free(fw);
		return NULL;
	}
	fw->max_size = max_size;
	if (read_file(path, max_size, &fw->content, &fw->len, &fw->stamp, err) < 0) {
		pw_filewatch_free(fw);
		return NULL;
	}
	return fw;
}

const char *pw_filewatch_get(struct pw_filewatch *fw, size_t *len, bool *changed, char **err)
{
	struct stat st;
	struct stamp now;
	char *ncontent = NULL;
	size_t nlen = 0;

	if (changed)
		*changed = false;
	if (err)
		*err = NULL;
	if (stat(fw->path, &st) < 0) {
		if (err)
			*err = pw_asprintf("cannot read \"%s\": %s", fw->path, strerror(errno));
		return NULL;
	}
	stamp_of(&st, &now);
	if (!stamp_equal(&now, &fw->stamp)) {
		if (read_file(fw->path, fw->max_size, &ncontent, &nlen, &now, err) < 0)
			return NULL;
		if (changed)
			*changed = nlen != fw->len || memcmp(ncontent, fw->content, nlen) != 0;
		/* The old pointer was only promised until this call. */
		wipe_free(fw->content, fw->len + 1);
		fw->content = ncontent;
		fw->len = nlen;
		fw->stamp = now;
	}
	if (len)
		*len = fw->len;
	return fw->content;
}

const char *pw_filewatch_path(const struct pw_filewatch *fw)
{
	return fw->path;
}

void pw_filewatch_free(struct pw_filewatch *fw)
{
	if (!fw)
		return;
	wipe_free(fw->content, fw->len + 1);
	free(fw->path);
	free(fw);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

const char *pw_trim_space(const char *s, size_t *len)
{
	size_t n = *len;

	while (n > 0 && is_space(*s)) {
		s++;
		n--;
	}
	while (n > 0 && is_space(s[n - 1]))
		n--;
	*len = n;
	return s;
}
