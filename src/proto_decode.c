/*
 * proto_decode.c - a strict decoder for push.v1.PushRequest, for the local
 * stand-in, mockhost's receiver and the tests. It is strict about what it
 * knows and skips what it does not, like the reference implementations do.
 * Kept apart from the encoder so the plugin does not carry it.
 */
#include "proto_decode.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

/* Wire types. */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

/* Field numbers are 29 bits wide. */
#define MAX_FIELD_NUMBER ((UINT64_C(1) << 29) - 1)
/* Nested groups inside unknown fields; a bound keeps recursion finite. */
#define MAX_GROUP_DEPTH 64

struct reader {
	const uint8_t *p, *end;
	char **err;
	/* Series, labels, samples and annotations left to decode in the whole
	 * request; shared by the nested readers. */
	size_t *budget;
};

static int fail(struct reader *r, const char *what)
{
	if (r->err && !*r->err)
		*r->err = pw_asprintf("proto: %s", what);
	return -1;
}

static int read_varint(struct reader *r, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned i = 0; i < 10; i++) {
		uint8_t b;

		if (r->p >= r->end)
			return fail(r, "truncated varint");
		b = *r->p++;
		/* The tenth byte may only carry the single top bit of a uint64. */
		if (i == 9 && b > 1)
			return fail(r, "varint overflows 64 bits");
		x |= (uint64_t)(b & 0x7F) << (7 * i);
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return fail(r, "varint longer than 10 bytes");
}

static int read_tag(struct reader *r, uint32_t *field, unsigned *wt)
{
	uint64_t t;

	if (read_varint(r, &t) < 0)
		return -1;
	if ((t >> 3) == 0 || (t >> 3) > MAX_FIELD_NUMBER)
		return fail(r, "invalid field number");
	*field = (uint32_t)(t >> 3);
	*wt = (unsigned)(t & 7);
	return 0;
}

/* Reads the body of a length-delimited field into [*data, *data + *len). */
static int read_len(struct reader *r, const uint8_t **data, size_t *len)
{
	uint64_t n;

	if (read_varint(r, &n) < 0)
		return -1;
	if (n > (uint64_t)(r->end - r->p))
		return fail(r, "length past the end of the message");
	*data = r->p;
	*len = (size_t)n;
	r->p += n;
	return 0;
}

static int skip_field(struct reader *r, uint32_t field, unsigned wt, int depth)
{
	const uint8_t *d;
	size_t n;
	uint64_t v;

	switch (wt) {
	case WT_VARINT:
		return read_varint(r, &v);
	case WT_I64:
	case WT_I32:
		n = wt == WT_I64 ? 8 : 4;
		if ((size_t)(r->end - r->p) < n)
			return fail(r, "truncated fixed-width field");
		r->p += n;
		return 0;
	case WT_LEN:
		return read_len(r, &d, &n);
	case WT_SGROUP:
		if (depth >= MAX_GROUP_DEPTH)
			return fail(r, "groups nested too deeply");
		for (;;) {
			uint32_t f;
			unsigned w;

			if (r->p >= r->end)
				return fail(r, "unterminated group");
			if (read_tag(r, &f, &w) < 0)
				return -1;
			if (w == WT_EGROUP)
				return f == field ? 0 : fail(r, "mismatched end of group");
			if (skip_field(r, f, w, depth + 1) < 0)
				return -1;
		}
	case WT_EGROUP:
		return fail(r, "unexpected end of group");
	default:
		return fail(r, "invalid wire type");
	}
}

/* A known field must be length-delimited. */
static int expect_len(struct reader *r, unsigned wt, const uint8_t **data, size_t *len)
{
	if (wt != WT_LEN)
		return fail(r, "wrong wire type for a known field");
	return read_len(r, data, len);
}

/* Replaces *dst with a copy of a string field, which must be UTF-8. */
static int take_string(struct reader *r, const uint8_t *d, size_t n, char **dst, const char *what)
{
	char *s;

	if (!pw_utf8_valid((const char *)d, n)) {
		if (r->err && !*r->err)
			*r->err = pw_asprintf("proto: invalid UTF-8 in %s", what);
		return -1;
	}
	/* Valid UTF-8, but the copy is a C string: "ab\0cd" would arrive as
	 * "ab". */
	if (memchr(d, '\0', n)) {
		if (r->err && !*r->err)
			*r->err = pw_asprintf("proto: NUL byte in %s", what);
		return -1;
	}
	s = pw_strndup((const char *)d, n);
	if (!s)
		return fail(r, "out of memory");
	free(*dst);
	*dst = s;
	return 0;
}

/* Takes one element from the request's budget. */
static int spend(struct reader *r)
{
	if (*r->budget == 0) {
		if (r->err && !*r->err)
			*r->err = pw_asprintf("proto: more than %d series, labels, samples and "
					      "annotations in one request",
					      PW_PROTO_MAX_ELEMENTS);
		return -1;
	}
	(*r->budget)--;
	return 0;
}

/*
 * Grows an array by one zeroed element. The capacity is not stored: it is
 * *n rounded up to a power of two, so the array doubles when *n reaches
 * one, and a request of many elements costs linear time, not quadratic.
 */
static void *grow_one(struct reader *r, void *arr, size_t *n, size_t elem)
{
	void *p = arr;

	if (spend(r) < 0)
		return NULL;
	if (*n >= SIZE_MAX / elem / 2) {
		fail(r, "too many elements");
		return NULL;
	}
	if ((*n & (*n - 1)) == 0) {
		p = realloc(arr, (*n ? *n * 2 : 1) * elem);
		if (!p) {
			fail(r, "out of memory");
			return NULL;
		}
	}
	memset((char *)p + *n * elem, 0, elem);
	(*n)++;
	return p;
}

/* Handles one known field's body [d, d + n) for the message ctx points at. */
typedef int (*field_fn)(struct reader *r, uint32_t field, const uint8_t *d, size_t n, void *ctx);

/*
 * The loop every message shares: fields 1 to nknown are known, must be
 * length-delimited and go to fn; any other field is skipped. A nested
 * message is read from its own reader over [d, d + n), which shares the
 * error slot and the element budget of r.
 */
static int each_field(struct reader *r, uint32_t nknown, field_fn fn, void *ctx)
{
	while (r->p < r->end) {
		const uint8_t *fd;
		size_t flen;
		uint32_t f;
		unsigned wt;

		if (read_tag(r, &f, &wt) < 0)
			return -1;
		if (f > nknown) {
			if (skip_field(r, f, wt, 0) < 0)
				return -1;
			continue;
		}
		if (expect_len(r, wt, &fd, &flen) < 0 || fn(r, f, fd, flen, ctx) < 0)
			return -1;
	}
	return 0;
}

/* Reads the message [d, d + n) nested in outer. */
static int decode_nested(struct reader *outer, const uint8_t *d, size_t n, uint32_t nknown,
			 field_fn fn, void *ctx)
{
	struct reader r = {d, d + n, outer->err, outer->budget};

	return each_field(&r, nknown, fn, ctx);
}

/* A two-string message (LabelPair, ProfileAnnotation). */
struct pair_ctx {
	char **a, **b;
	const char *aname, *bname;
};

static int pair_field(struct reader *r, uint32_t f, const uint8_t *d, size_t n, void *ctx)
{
	struct pair_ctx *pc = ctx;

	return take_string(r, d, n, f == 1 ? pc->a : pc->b, f == 1 ? pc->aname : pc->bname);
}

static int decode_pair(struct reader *outer, const uint8_t *d, size_t n, char **a, char **b,
		       const char *aname, const char *bname)
{
	struct pair_ctx pc = {a, b, aname, bname};

	return decode_nested(outer, d, n, 2, pair_field, &pc);
}

/* RawSample: 1 raw_profile (bytes), 2 ID (string). */
static int sample_field(struct reader *r, uint32_t f, const uint8_t *d, size_t n, void *ctx)
{
	struct pw_dec_sample *s = ctx;

	if (f == 2)
		return take_string(r, d, n, &s->id, "RawSample.ID");
	s->data = d;
	s->len = n;
	return 0;
}

static int fill_empty(struct reader *r, char **s)
{
	if (!*s && !(*s = calloc(1, 1)))
		return fail(r, "out of memory");
	return 0;
}

static int series_label(struct reader *r, const uint8_t *d, size_t n, struct pw_dec_series *se)
{
	struct pw_kv *kv;
	void *arr;

	if (!(arr = grow_one(r, se->labels, &se->nlabels, sizeof(*se->labels))))
		return -1;
	se->labels = arr;
	kv = &se->labels[se->nlabels - 1];
	if (decode_pair(r, d, n, &kv->key, &kv->value, "LabelPair.name", "LabelPair.value") < 0 ||
	    fill_empty(r, &kv->key) < 0 || fill_empty(r, &kv->value) < 0)
		return -1;
	return 0;
}

static int series_sample(struct reader *r, const uint8_t *d, size_t n, struct pw_dec_series *se)
{
	struct pw_dec_sample *s;
	void *arr;

	if (!(arr = grow_one(r, se->samples, &se->nsamples, sizeof(*se->samples))))
		return -1;
	se->samples = arr;
	s = &se->samples[se->nsamples - 1];
	if (decode_nested(r, d, n, 2, sample_field, s) < 0 || fill_empty(r, &s->id) < 0)
		return -1;
	return 0;
}

/* Annotations are only counted, but still checked. */
static int series_annotation(struct reader *r, const uint8_t *d, size_t n, struct pw_dec_series *se)
{
	char *k = NULL, *v = NULL;
	int rc;

	if (spend(r) < 0)
		return -1;
	rc = decode_pair(r, d, n, &k, &v, "ProfileAnnotation.key", "ProfileAnnotation.value");
	free(k);
	free(v);
	if (rc < 0)
		return -1;
	se->nannotations++;
	return 0;
}

/* RawProfileSeries: 1 labels, 2 samples, 3 annotations. */
static int series_field(struct reader *r, uint32_t f, const uint8_t *d, size_t n, void *ctx)
{
	if (f == 1)
		return series_label(r, d, n, ctx);
	if (f == 2)
		return series_sample(r, d, n, ctx);
	return series_annotation(r, d, n, ctx);
}

/* PushRequest: 1 series. */
static int push_field(struct reader *r, uint32_t f, const uint8_t *d, size_t n, void *ctx)
{
	struct pw_dec_push *out = ctx;
	void *arr;

	if (out->nseries >= PW_PROTO_MAX_SERIES) {
		if (r->err && !*r->err)
			*r->err = pw_asprintf("proto: more than %d series in one request",
					      PW_PROTO_MAX_SERIES);
		return -1;
	}
	if (!(arr = grow_one(r, out->series, &out->nseries, sizeof(*out->series))))
		return -1;
	out->series = arr;
	return decode_nested(r, d, n, 3, series_field, &out->series[out->nseries - 1]);
}

int pw_proto_decode_push(const uint8_t *buf, size_t len, struct pw_dec_push *out, char **err)
{
	size_t budget = PW_PROTO_MAX_ELEMENTS;
	struct reader r = {buf, buf + len, err, &budget};

	if (err)
		*err = NULL;
	memset(out, 0, sizeof(*out));
	if (!buf && len)
		return fail(&r, "no input");
	if (!buf)
		return 0;
	if (each_field(&r, 1, push_field, out) < 0) {
		pw_dec_push_free(out);
		if (err && !*err)
			*err = pw_strdup("proto: out of memory");
		return -1;
	}
	return 0;
}

void pw_dec_push_free(struct pw_dec_push *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nseries; i++) {
		struct pw_dec_series *se = &p->series[i];

		for (size_t j = 0; j < se->nlabels; j++) {
			free(se->labels[j].key);
			free(se->labels[j].value);
		}
		free(se->labels);
		for (size_t j = 0; j < se->nsamples; j++)
			free(se->samples[j].id);
		free(se->samples);
	}
	free(p->series);
	memset(p, 0, sizeof(*p));
}
