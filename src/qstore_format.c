/*
 * qstore_format.c - encoding and checking the durable queue's files. No
 * state: everything here works on the bytes or the file it is given.
 */
#define _GNU_SOURCE
#include "qstore_format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bufcache.h"
#include "strbuf.h"
#include "util/crc32c.h"

#define CURSORS_MAGIC "PWQCUR1\n"
/* Payloads up to this size are read straight into the caller's buffer;
 * larger claimed lengths are checked in chunks first, so a garbage length
 * field never makes a big allocation. */
/* Records up to this size are read once, into the caller's buffer, and
 * checked there; a larger one is checked in chunks first, so that a
 * damaged length cannot make a huge allocation. Segments are at most
 * 64 MiB unless one record fills a segment on its own. */
#define DIRECT_READ_MAX (64u << 20)
#define CHUNK (64u << 10)

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void pwq_seghdr_encode(uint8_t out[PWQ_SEG_HDR], uint64_t id, uint64_t first_seq)
{
	memcpy(out, PWQ_SEG_MAGIC, 8);
	put64(out + 8, id);
	put64(out + 16, first_seq);
	put32(out + 24, PWQ_SEG_VERSION);
	put32(out + 28, pwx_crc32c(0, out, 28));
}

bool pwq_seghdr_decode(const uint8_t *buf, size_t len, struct pwq_seghdr *h)
{
	if (len < PWQ_SEG_HDR || memcmp(buf, PWQ_SEG_MAGIC, 8) != 0 ||
	    get32(buf + 28) != pwx_crc32c(0, buf, 28))
		return false;
	h->id = get64(buf + 8);
	h->first_seq = get64(buf + 16);
	h->version = get32(buf + 24);
	return h->version == PWQ_SEG_VERSION;
}

void pwq_rechdr_encode(uint8_t out[PWQ_REC_HDR], const struct pwq_rechdr *h)
{
	put32(out, PWQ_REC_MAGIC);
	put32(out + 4, h->len);
	put64(out + 8, h->seq);
	put64(out + 16, h->cum);
	put64(out + 24, (uint64_t)h->created_ms);
	put32(out + 32, h->nprofiles);
	put32(out + 36, h->crc);
}

bool pwq_rechdr_decode(const uint8_t *in, struct pwq_rechdr *h)
{
	if (get32(in) != PWQ_REC_MAGIC)
		return false;
	h->len = get32(in + 4);
	h->seq = get64(in + 8);
	h->cum = get64(in + 16);
	h->created_ms = (int64_t)get64(in + 24);
	h->nprofiles = get32(in + 32);
	h->crc = get32(in + 36);
	return true;
}

/* Whether a whole valid record starts at buf[off]. */
static bool record_at(const uint8_t *buf, size_t len, uint64_t off, struct pwq_rechdr *h)
{
	if (len - off < PWQ_REC_HDR || !pwq_rechdr_decode(buf + off, h))
		return false;
	if (PWQ_REC_SIZE(h->len) > len - off)
		return false;
	return pwx_crc32c(pwx_crc32c(0, buf + off, 36), buf + off + PWQ_REC_HDR, h->len) == h->crc;
}

static void emit(pwq_scan_fn fn, void *arg, enum pwq_scan_kind kind, uint64_t off, uint64_t size,
		 const struct pwq_rechdr *h, const uint8_t *payload)
{
	struct pwq_scan_ev ev = {.kind = kind, .off = off, .size = size, .payload = payload};

	if (!fn)
		return;
	if (h)
		ev.rec = *h;
	fn(arg, &ev);
}

uint64_t pwq_scan_segment(const uint8_t *buf, size_t len, pwq_scan_fn fn, void *arg,
			  struct pwq_scan_res *res)
{
	struct pwq_scan_res r = {0};
	uint64_t off = PWQ_SEG_HDR, damage = UINT64_MAX;

	r.header_ok = pwq_seghdr_decode(buf, len, &r.hdr);
	r.end = r.header_ok ? PWQ_SEG_HDR : 0;
	if (!r.header_ok)
		damage = 0;
	while (off < len) {
		struct pwq_rechdr h;

		if (!record_at(buf, len, off, &h)) {
			if (damage == UINT64_MAX)
				damage = off;
			off += 8;
			continue;
		}
		if (damage != UINT64_MAX) {
			emit(fn, arg, PWQ_SCAN_DAMAGE, damage, off - damage, NULL, NULL);
			r.damaged_spans++;
			damage = UINT64_MAX;
		}
		emit(fn, arg, PWQ_SCAN_RECORD, off, PWQ_REC_SIZE(h.len), &h,
		     buf + off + PWQ_REC_HDR);
		r.records++;
		off += PWQ_REC_SIZE(h.len);
		r.end = off;
	}
	if (damage != UINT64_MAX && damage < len) {
		emit(fn, arg, PWQ_SCAN_DAMAGE, damage, len - damage, NULL, NULL);
		r.damaged_spans++;
	}
	if (res)
		*res = r;
	return r.end;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO; /* shorter than its size said: truncated meanwhile */
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* The crc of a payload read in chunks: 1 if it matches h->crc, 0 if not, -1 on error. */
static int crc_check_chunked(int fd, uint64_t off, const uint8_t *hdr, const struct pwq_rechdr *h)
{
	uint8_t *buf = malloc(CHUNK);
	uint32_t crc = pwx_crc32c(0, hdr, 36);
	uint64_t left = h->len, pos = off + PWQ_REC_HDR;
	int rc = -1;

	if (!buf)
		return -1;
	while (left) {
		size_t n = left < CHUNK ? (size_t)left : CHUNK;

		if (pread_all(fd, buf, n, pos) < 0)
			goto out;
		crc = pwx_crc32c(crc, buf, n);
		left -= n;
		pos += n;
	}
	rc = crc == h->crc;
out:
	free(buf);
	return rc;
}

/* Whether a whole valid record starts at off: 1 (payload read if asked), 0, -1 on error. */
static int try_record(int fd, uint64_t off, uint64_t end, struct pwq_rechdr *h, uint8_t **payload,
		      struct pw_bufcache *bufs, size_t *cap)
{
	uint8_t hdr[PWQ_REC_HDR];
	uint8_t *data = NULL;
	int ok;

	if (pread_all(fd, hdr, sizeof(hdr), off) < 0)
		return -1;
	if (!pwq_rechdr_decode(hdr, h) || PWQ_REC_SIZE(h->len) > end - off)
		return 0;
	if (h->len > DIRECT_READ_MAX || !payload) {
		ok = crc_check_chunked(fd, off, hdr, h);
		if (ok <= 0 || !payload)
			return ok;
	}
	*cap = 0;
	data = bufs ? pw_bufcache_get(bufs, h->len, cap) : malloc(h->len ? h->len : 1);
	if (!data)
		return -1;
	if (pread_all(fd, data, h->len, off + PWQ_REC_HDR) < 0) {
		pw_bufcache_put(bufs, data, *cap);
		return -1;
	}
	if (pwx_crc32c(pwx_crc32c(0, hdr, 36), data, h->len) != h->crc) {
		pw_bufcache_put(bufs, data, *cap);
		return 0;
	}
	*payload = data;
	return 1;
}

/* The next 8-byte-aligned offset at or after off below end whose first four bytes are the
 * record magic; end when there is none; UINT64_MAX on a read error. */
static uint64_t next_magic(int fd, uint64_t off, uint64_t end)
{
	uint8_t *buf = malloc(CHUNK);
	uint64_t found = end;

	if (!buf)
		return UINT64_MAX;
	while (off + PWQ_REC_HDR <= end) {
		size_t n = end - off < CHUNK ? (size_t)(end - off) : CHUNK;

		if (pread_all(fd, buf, n, off) < 0) {
			found = UINT64_MAX;
			break;
		}
		for (size_t i = 0; i + 4 <= n; i += 8) {
			if (get32(buf + i) == PWQ_REC_MAGIC) {
				found = off + i;
				goto out;
			}
		}
		off += n;
	}
out:
	free(buf);
	return found;
}

int pwq_read_record(int fd, uint64_t off, uint64_t end, struct pwq_rechdr *h, uint8_t **payload,
		    struct pw_bufcache *bufs, size_t *cap, uint64_t *at)
{
	off = PWQ_ALIGN8(off);
	while (off < end && end - off >= PWQ_REC_HDR) {
		int r = try_record(fd, off, end, h, payload, bufs, cap);

		if (r != 0) {
			*at = off;
			return r;
		}
		off = next_magic(fd, off + 8, end);
		if (off == UINT64_MAX)
			return -1;
	}
	return 0;
}

size_t pwq_cursors_size(size_t n, size_t namebytes)
{
	return 8 + 4 + n * (2 + 32) + namebytes + 4;
}

int pwq_cursors_encode(const struct pwq_curent *e, size_t n, struct strbuf *out)
{
	size_t start = out->len;
	uint8_t b[32];

	put32(b, (uint32_t)n);
	strbuf_append(out, CURSORS_MAGIC, 8);
	strbuf_append(out, b, 4);
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(e[i].name);

		b[0] = (uint8_t)nl;
		b[1] = (uint8_t)(nl >> 8);
		strbuf_append(out, b, 2);
		strbuf_append(out, e[i].name, nl);
		put64(b, e[i].seg);
		put64(b + 8, e[i].off);
		put64(b + 16, e[i].seq);
		put64(b + 24, e[i].cum);
		strbuf_append(out, b, 32);
	}
	if (out->failed)
		return -1;
	put32(b, pwx_crc32c(0, out->data + start, out->len - start));
	return strbuf_append(out, b, 4);
}

void pwq_curents_free(struct pwq_curent *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

int pwq_cursors_decode(const uint8_t *buf, size_t len, struct pwq_curent **out, size_t *nout)
{
	struct pwq_curent *e = NULL;
	size_t n, off = 12, i = 0;

	*out = NULL;
	*nout = 0;
	if (len < 16 || memcmp(buf, CURSORS_MAGIC, 8) != 0 ||
	    get32(buf + len - 4) != pwx_crc32c(0, buf, len - 4))
		return -1;
	n = get32(buf + 8);
	len -= 4;
	if (n > (len - 12) / 34)
		return -1;
	e = calloc(n ? n : 1, sizeof(*e));
	if (!e)
		return -1;
	for (i = 0; i < n; i++) {
		size_t nl;

		if (len - off < 2)
			goto bad;
		nl = (size_t)buf[off] | (size_t)buf[off + 1] << 8;
		off += 2;
		if (nl == 0 || nl > PWQ_CURSOR_NAME_MAX || len - off < nl + 32 ||
		    memchr(buf + off, 0, nl))
			goto bad;
		e[i].name = pw_strndup((const char *)buf + off, nl);
		if (!e[i].name)
			goto bad;
		off += nl;
		e[i].seg = get64(buf + off);
		e[i].off = get64(buf + off + 8);
		e[i].seq = get64(buf + off + 16);
		e[i].cum = get64(buf + off + 24);
		off += 32;
	}
	if (off != len)
		goto bad;
	*out = e;
	*nout = n;
	return 0;
bad:
	pwq_curents_free(e, n);
	return -1;
}

void pwq_seg_name(char out[24], uint64_t id)
{
	snprintf(out, 24, "%016" PRIx64 ".seg", id);
}

bool pwq_seg_parse(const char *name, uint64_t *id)
{
	uint64_t v = 0;

	if (strlen(name) != 20 || strcmp(name + 16, ".seg") != 0)
		return false;
	for (int i = 0; i < 16; i++) {
		char c = name[i];
		int d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*id = v;
	return true;
}
