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

/* Parses a two-string message (LabelPair, ProfileAnnotation). */
static int decode_pair(struct reader *outer, const uint8_t *d, size_t n, char **a, char **b,
		       const char *aname, const char *bname)
{
	struct reader r = {d, d + n, outer->err, outer->budget};

	while (r.p < r.end) {
		const uint8_t *fd;
		size_t fn;
		uint32_t f;
		unsigned wt;

		if (read_tag(&r, &f, &wt) < 0)
			return -1;
		if (f == 1 || f == 2) {
			if (expect_len(&r, wt, &fd, &fn) < 0 ||
			    take_string(&r, fd, fn, f == 1 ? a : b, f == 1 ? aname : bname) < 0)
				return -1;
		} else if (skip_field(&r, f, wt, 0) < 0) {
			return -1;
		}
	}
	return 0;
}

static int decode_sample(struct reader *outer, const uint8_t *d, size_t n, struct pw_dec_sample *s)
{
	struct reader r = {d, d + n, outer->err, outer->budget};

	while (r.p < r.end) {
		const uint8_t *fd;
		size_t fn;
		uint32_t f;
		unsigned wt;

		if (read_tag(&r, &f, &wt) < 0)
			return -1;
		if (f == 1) {
			if (expect_len(&r, wt, &fd, &fn) < 0)
				return -1;
			s->data = fd;
			s->len = fn;
		} else if (f == 2) {
			if (expect_len(&r, wt, &fd, &fn) < 0 ||
			    take_string(&r, fd, fn, &s->id, "RawSample.ID") < 0)
				return -1;
		} else if (skip_field(&r, f, wt, 0) < 0) {
			return -1;
		}
	}
	return 0;
}

static int fill_empty(struct reader *r, char **s)
{
	if (!*s && !(*s = calloc(1, 1)))
		return fail(r, "out of memory");
	return 0;
}

static int decode_series(struct reader *outer, const uint8_t *d, size_t n, struct pw_dec_series *se)
{
	struct reader r = {d, d + n, outer->err, outer->budget};

	while (r.p < r.end) {
		const uint8_t *fd;
		size_t fn;
		uint32_t f;
		unsigned wt;
		void *arr;

		if (read_tag(&r, &f, &wt) < 0)
			return -1;
		if (f < 1 || f > 3) {
			if (skip_field(&r, f, wt, 0) < 0)
				return -1;
			continue;
		}
		if (expect_len(&r, wt, &fd, &fn) < 0)
			return -1;
		if (f == 1) {
			struct pw_kv *kv;

			if (!(arr = grow_one(&r, se->labels, &se->nlabels, sizeof(*se->labels))))
				return -1;
			se->labels = arr;
			kv = &se->labels[se->nlabels - 1];
			if (decode_pair(&r, fd, fn, &kv->key, &kv->value, "LabelPair.name",
					"LabelPair.value") < 0 ||
			    fill_empty(&r, &kv->key) < 0 || fill_empty(&r, &kv->value) < 0)
				return -1;
		} else if (f == 2) {
			struct pw_dec_sample *s;

			if (!(arr = grow_one(&r, se->samples, &se->nsamples, sizeof(*se->samples))))
				return -1;
			se->samples = arr;
			s = &se->samples[se->nsamples - 1];
			if (decode_sample(&r, fd, fn, s) < 0 || fill_empty(&r, &s->id) < 0)
				return -1;
		} else {
			/* Annotations are only counted, but still checked. */
			char *k = NULL, *v = NULL;
			int rc;

			if (spend(&r) < 0)
				return -1;
			rc = decode_pair(&r, fd, fn, &k, &v, "ProfileAnnotation.key",
					 "ProfileAnnotation.value");

			free(k);
			free(v);
			if (rc < 0)
				return -1;
			se->nannotations++;
		}
	}
	return 0;
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
	while (r.p < r.end) {
		const uint8_t *fd;
		size_t fn;
		uint32_t f;
		unsigned wt;
		void *arr;

		if (read_tag(&r, &f, &wt) < 0)
			goto bad;
		if (f != 1) {
			if (skip_field(&r, f, wt, 0) < 0)
				goto bad;
			continue;
		}
		if (expect_len(&r, wt, &fd, &fn) < 0)
			goto bad;
		if (out->nseries >= PW_PROTO_MAX_SERIES) {
			if (err && !*err)
				*err = pw_asprintf("proto: more than %d series in one request",
						   PW_PROTO_MAX_SERIES);
			goto bad;
		}
		if (!(arr = grow_one(&r, out->series, &out->nseries, sizeof(*out->series))))
			goto bad;
		out->series = arr;
		if (decode_series(&r, fd, fn, &out->series[out->nseries - 1]) < 0)
			goto bad;
	}
	return 0;
bad:
	pw_dec_push_free(out);
	if (err && !*err)
		*err = pw_strdup("proto: out of memory");
	return -1;
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
