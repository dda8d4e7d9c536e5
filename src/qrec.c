/*
 * qrec.c - the durable queue's record contents: a request and what each
 * endpoint needs to address it, as bytes and back.
 *
 * Layout, all integers little endian:
 *   u8 version, u8 kind (0 push, 1 ingest), u16 zero
 *   u64 size
 *   u32 incoming labels, u32 external labels, u32 ingest labels,
 *   u32 content types
 *   strings, each u32 length + bytes: the incoming labels (name, value),
 *   the external labels (key, value), the ingest labels (key, value), the
 *   path and query (ingest only), the content types
 *   the body: every byte after the last string
 *
 * Layer: engine, bottom; calls only strbuf.
 */
#include "qrec.h"

#include <stdlib.h>
#include <string.h>

/* A bound on each count, so a damaged record cannot ask for a huge
 * allocation. Label sets are far smaller (labels.c). */
#define QREC_MAX_ITEMS 65536

static int put_u32(struct strbuf *sb, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	return strbuf_append(sb, b, sizeof(b));
}

static int put_u64(struct strbuf *sb, uint64_t v)
{
	return put_u32(sb, (uint32_t)v) | put_u32(sb, (uint32_t)(v >> 32));
}

static int put_str(struct strbuf *sb, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return put_u32(sb, (uint32_t)n) | strbuf_append(sb, s ? s : "", n);
}

int pw_qrec_encode_head(struct strbuf *sb, const struct pw_qrec *r)
{
	int rc = 0;

	rc |= strbuf_putc(sb, PW_QREC_VERSION);
	rc |= strbuf_putc(sb, r->ingest ? 1 : 0);
	rc |= strbuf_append(sb, "\0\0", 2);
	rc |= put_u64(sb, r->size);
	rc |= put_u32(sb, (uint32_t)r->nin);
	rc |= put_u32(sb, (uint32_t)r->external.n);
	rc |= put_u32(sb, (uint32_t)r->ls.n);
	rc |= put_u32(sb, (uint32_t)r->nctypes);
	for (size_t i = 0; i < r->nin; i++)
		rc |= put_str(sb, r->in[i].name) | put_str(sb, r->in[i].value);
	for (size_t i = 0; i < r->external.n; i++)
		rc |= put_str(sb, r->external.items[i].key) |
		      put_str(sb, r->external.items[i].value);
	for (size_t i = 0; i < r->ls.n; i++)
		rc |= put_str(sb, r->ls.items[i].key) | put_str(sb, r->ls.items[i].value);
	if (r->ingest)
		rc |= put_str(sb, r->path_query);
	for (size_t i = 0; i < r->nctypes; i++)
		rc |= put_str(sb, r->ctypes[i]);
	return rc || sb->failed ? -1 : 0;
}

struct reader {
	const uint8_t *p, *end;
	bool bad;
};

static uint32_t get_u32(struct reader *rd)
{
	uint32_t v;

	if (rd->end - rd->p < 4) {
		rd->bad = true;
		return 0;
	}
	v = (uint32_t)rd->p[0] | (uint32_t)rd->p[1] << 8 | (uint32_t)rd->p[2] << 16 |
	    (uint32_t)rd->p[3] << 24;
	rd->p += 4;
	return v;
}

/* A malloc'd copy of the next string; NULL when the record is cut short
 * (rd->bad) or out of memory. A NUL inside would shorten the string
 * silently: refused. */
static char *get_str(struct reader *rd)
{
	uint32_t n = get_u32(rd);
	char *s;

	if (rd->bad || (size_t)(rd->end - rd->p) < n || memchr(rd->p, 0, n)) {
		rd->bad = true;
		return NULL;
	}
	s = malloc((size_t)n + 1);
	if (!s) {
		rd->bad = true;
		return NULL;
	}
	memcpy(s, rd->p, n);
	s[n] = '\0';
	rd->p += n;
	return s;
}

/* Reads n (key, value) pairs into *keys and *values arrays of kv. */
static int get_pairs(struct reader *rd, uint32_t n, struct pw_kv **out)
{
	struct pw_kv *kv;

	if (n == 0)
		return 0;
	kv = calloc(n, sizeof(*kv));
	if (!kv)
		return -1;
	*out = kv;
	for (uint32_t i = 0; i < n && !rd->bad; i++) {
		kv[i].key = get_str(rd);
		if (kv[i].key)
			kv[i].value = get_str(rd);
	}
	return rd->bad ? -1 : 0;
}

int pw_qrec_decode(const uint8_t *buf, size_t len, struct pw_qrec *r, const char **err)
{
	struct reader rd = {buf, buf + len, false};
	struct pw_kv *in = NULL;
	uint32_t nin, next, nls, nct;

	memset(r, 0, sizeof(*r));
	if (len < 4 + 8 + 16 || buf[0] != PW_QREC_VERSION || buf[1] > 1) {
		*err = "not a record of a known version";
		return -1;
	}
	r->ingest = buf[1] == 1;
	rd.p += 4;
	r->size = get_u32(&rd);
	r->size |= (uint64_t)get_u32(&rd) << 32;
	nin = get_u32(&rd);
	next = get_u32(&rd);
	nls = get_u32(&rd);
	nct = get_u32(&rd);
	if (nin > QREC_MAX_ITEMS || next > QREC_MAX_ITEMS || nls > QREC_MAX_ITEMS ||
	    nct > QREC_MAX_ITEMS || (!r->ingest && (nls || nct))) {
		*err = "record counts out of range";
		return -1;
	}
	if (get_pairs(&rd, nin, &in) < 0)
		goto bad;
	/* The incoming labels are kept as pw_label, as the tenant lookup
	 * takes them: the pairs' strings move over. */
	if (nin) {
		r->in = calloc(nin, sizeof(*r->in));
		if (!r->in)
			goto bad;
		for (uint32_t i = 0; i < nin; i++)
			r->in[i] = (struct pw_label){in[i].key, in[i].value};
		r->nin = nin;
		free(in);
		in = NULL;
	}
	r->external.n = next;
	if (get_pairs(&rd, next, &r->external.items) < 0)
		goto bad;
	r->ls.n = nls;
	if (get_pairs(&rd, nls, &r->ls.items) < 0)
		goto bad;
	if (r->ingest && !(r->path_query = get_str(&rd)))
		goto bad;
	if (nct) {
		r->ctypes = calloc(nct, sizeof(char *));
		if (!r->ctypes)
			goto bad;
		r->nctypes = nct;
		for (uint32_t i = 0; i < nct; i++)
			if (!(r->ctypes[i] = get_str(&rd)))
				goto bad;
	}
	r->body = rd.p;
	r->body_len = (size_t)(rd.end - rd.p);
	return 0;
bad:
	if (in) {
		for (uint32_t i = 0; i < nin; i++) {
			free(in[i].key);
			free(in[i].value);
		}
		free(in);
	}
	pw_qrec_free(r);
	*err = "record cut short or malformed";
	return -1;
}

static void free_pairs(struct pw_kv *kv, size_t n)
{
	for (size_t i = 0; kv && i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

void pw_qrec_free(struct pw_qrec *r)
{
	for (size_t i = 0; r->in && i < r->nin; i++) {
		free((char *)r->in[i].name);
		free((char *)r->in[i].value);
	}
	free(r->in);
	free_pairs(r->external.items, r->external.n);
	free_pairs(r->ls.items, r->ls.n);
	free(r->path_query);
	for (size_t i = 0; r->ctypes && i < r->nctypes; i++)
		free(r->ctypes[i]);
	free(r->ctypes);
	memset(r, 0, sizeof(*r));
}
