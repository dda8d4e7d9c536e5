/*
 * proto.c - hand-written protobuf for push.v1.PushRequest.
 *
 * The message is small and fixed, so a generated codec would bring a whole
 * runtime for four nested messages. The encoder computes every length first
 * and writes the request into one allocation: raw profiles can be several
 * MiB and are copied exactly once. The decoder, which only the stand-in
 * and the tests need, is in proto_decode.c.
 */
#include "proto.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

/* ---- encoding ---------------------------------------------------------- */

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* *acc += v, failing on overflow. */
static bool add_size(size_t *acc, size_t v)
{
	if (v > SIZE_MAX - *acc)
		return false;
	*acc += v;
	return true;
}

/* Size of a length-delimited field with a one-byte tag and a body of n bytes. */
static bool field_size(size_t *acc, size_t n)
{
	return add_size(acc, 1) && add_size(acc, varint_len(n)) && add_size(acc, n);
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *put_header(uint8_t *p, uint8_t tag, size_t n)
{
	*p++ = tag;
	return put_varint(p, n);
}

static uint8_t *put_bytes(uint8_t *p, uint8_t tag, const void *data, size_t n)
{
	p = put_header(p, tag, n);
	if (n)
		memcpy(p, data, n);
	return p + n;
}

static bool label_size(const struct pw_kv *kv, size_t *out)
{
	size_t n = 0, kl = strlen(kv->key), vl = strlen(kv->value);

	if (kl && !field_size(&n, kl))
		return false;
	if (vl && !field_size(&n, vl))
		return false;
	*out = n;
	return true;
}

static bool sample_size(const struct pw_sample *s, size_t *out)
{
	size_t n = 0, il = s->id ? strlen(s->id) : 0;

	/* proto3: an empty raw_profile is simply absent, the RawSample stays. */
	if (s->len && !field_size(&n, s->len))
		return false;
	if (il && !field_size(&n, il))
		return false;
	*out = n;
	return true;
}

/* The length of the RawProfileSeries; false on overflow. */
static bool series_len(const struct pw_labelset *ls, const struct pw_sample *samples,
		       size_t nsamples, size_t *out)
{
	size_t nlabels = ls ? ls->n : 0;
	size_t series = 0, sz;

	for (size_t i = 0; i < nlabels; i++)
		if (!label_size(&ls->items[i], &sz) || !field_size(&series, sz))
			return false;
	for (size_t i = 0; i < nsamples; i++)
		if (!sample_size(&samples[i], &sz) || !field_size(&series, sz))
			return false;
	*out = series;
	return true;
}

int pw_proto_push_size(const struct pw_labelset *ls, const struct pw_sample *samples,
		       size_t nsamples, size_t *size)
{
	size_t series, total = 0;

	*size = 0;
	if (!series_len(ls, samples, nsamples, &series) || !field_size(&total, series))
		return -1;
	*size = total;
	return 0;
}

/*
 * Writes the request for a series of length `series` at p and returns the
 * end of what it wrote. The samples' bytes are copied in when segs is
 * NULL; otherwise they are left out and *nsegs pieces are recorded in segs,
 * alternating between what was written at p and the samples themselves.
 */
static uint8_t *encode(const struct pw_labelset *ls, const struct pw_sample *samples,
		       size_t nsamples, size_t series, uint8_t *p, struct pw_seg *segs,
		       size_t *nsegs)
{
	size_t nlabels = ls ? ls->n : 0, n = 0, sz;
	uint8_t *start = p;

	p = put_header(p, 0x0A, series); /* PushRequest.series */
	for (size_t i = 0; i < nlabels; i++) {
		const struct pw_kv *kv = &ls->items[i];
		size_t kl = strlen(kv->key), vl = strlen(kv->value);

		label_size(kv, &sz);
		p = put_header(p, 0x0A, sz); /* RawProfileSeries.labels */
		if (kl)
			p = put_bytes(p, 0x0A, kv->key, kl); /* LabelPair.name */
		if (vl)
			p = put_bytes(p, 0x12, kv->value, vl); /* LabelPair.value */
	}
	for (size_t i = 0; i < nsamples; i++) {
		const struct pw_sample *s = &samples[i];
		size_t il = s->id ? strlen(s->id) : 0;

		sample_size(s, &sz);
		p = put_header(p, 0x12, sz); /* RawProfileSeries.samples */
		if (s->len && !segs) {
			p = put_bytes(p, 0x0A, s->data, s->len); /* RawSample.raw_profile */
		} else if (s->len) {
			p = put_header(p, 0x0A, s->len);
			segs[n++] = (struct pw_seg){start, (size_t)(p - start)};
			segs[n++] = (struct pw_seg){s->data, s->len};
			start = p;
		}
		if (il)
			p = put_bytes(p, 0x12, s->id, il); /* RawSample.ID */
	}
	if (segs) {
		if (p > start)
			segs[n++] = (struct pw_seg){start, (size_t)(p - start)};
		*nsegs = n;
	}
	return p;
}

int pw_proto_push_write(const struct pw_labelset *ls, const struct pw_sample *samples,
			size_t nsamples, uint8_t *buf, size_t size)
{
	size_t series, total = 0;

	if (!series_len(ls, samples, nsamples, &series) || !field_size(&total, series) ||
	    total > size)
		return -1;
	/* Cannot differ unless the sizing is wrong. */
	return (size_t)(encode(ls, samples, nsamples, series, buf, NULL, NULL) - buf) == total ? 0
											       : -1;
}

int pw_proto_push_segments(const struct pw_labelset *ls, const struct pw_sample *samples,
			   size_t nsamples, uint8_t *own, size_t ownlen, struct pw_seg **segs,
			   size_t *nsegs)
{
	size_t series, total = 0, data = 0, n = 0;
	struct pw_seg *v;

	*segs = NULL;
	*nsegs = 0;
	if (!series_len(ls, samples, nsamples, &series) || !field_size(&total, series))
		return -1;
	for (size_t i = 0; i < nsamples; i++)
		data += samples[i].len;
	if (total - data != ownlen || nsamples > (SIZE_MAX - 1) / 2)
		return -1;
	v = malloc((2 * nsamples + 1) * sizeof(*v));
	if (!v)
		return -1;
	/* Cannot differ unless the sizing is wrong. */
	if ((size_t)(encode(ls, samples, nsamples, series, own, v, &n) - own) != ownlen) {
		free(v);
		return -1;
	}
	*segs = v;
	*nsegs = n;
	return 0;
}

int pw_proto_encode_push(const struct pw_labelset *ls, const struct pw_sample *samples,
			 size_t nsamples, uint8_t **out, size_t *outlen)
{
	size_t total;
	uint8_t *buf;

	*out = NULL;
	*outlen = 0;
	if (pw_proto_push_size(ls, samples, nsamples, &total) < 0)
		return -1;
	buf = malloc(total ? total : 1);
	if (!buf)
		return -1;
	if (pw_proto_push_write(ls, samples, nsamples, buf, total) < 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = total;
	return 0;
}
