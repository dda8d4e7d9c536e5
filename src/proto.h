/*
 * proto.h - the protobuf encoding of push.v1.PushRequest, and a decoder used
 * by the local receiver and the tests.
 */
#ifndef PW_PROTO_H
#define PW_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "labels.h"
#include "pyroscope_write.h"

/*
 * Encodes a PushRequest with exactly one RawProfileSeries: the labels in
 * order, then one RawSample per sample (raw_profile, then ID when non-empty).
 * Returns 0 and a malloc'd buffer, or -1 on overflow/out of memory.
 */
int pw_proto_encode_push(const struct pw_labelset *ls, const struct pw_sample *samples,
			 size_t nsamples, uint8_t **out, size_t *outlen);

/* The same encoding in two steps, for a caller that owns the buffer: the
 * exact size (0, or -1 on overflow), then the bytes into a buffer of at
 * least that size (0, or -1 if the sizes disagree). */
int pw_proto_push_size(const struct pw_labelset *ls, const struct pw_sample *samples,
		       size_t nsamples, size_t *size);
int pw_proto_push_write(const struct pw_labelset *ls, const struct pw_sample *samples,
			size_t nsamples, uint8_t *buf, size_t size);

/* A piece of an encoded request. */
struct pw_seg {
	const uint8_t *p;
	size_t n;
};

/*
 * The same encoding as a list of pieces that leaves the samples' bytes where
 * they are: everything else (tags, lengths, labels, IDs) is written to own,
 * which must hold the total size less the samples' lengths, and *segs (at
 * most 2 * nsamples + 1 entries, malloc'd) alternates between parts of own
 * and the samples' data. Concatenated, the pieces are exactly what
 * pw_proto_push_write() produces. Returns 0, or -1 on a size mismatch or
 * out of memory.
 */
int pw_proto_push_segments(const struct pw_labelset *ls, const struct pw_sample *samples,
			   size_t nsamples, uint8_t *own, size_t ownlen, struct pw_seg **segs,
			   size_t *nsegs);

struct pw_dec_sample {
	const uint8_t *data; /* points into the decoded buffer */
	size_t len;
	char *id; /* malloc'd, "" when absent */
};

struct pw_dec_series {
	struct pw_kv *labels; /* malloc'd strings, in wire order */
	size_t nlabels;
	struct pw_dec_sample *samples;
	size_t nsamples;
	size_t nannotations;
};

struct pw_dec_push {
	struct pw_dec_series *series;
	size_t nseries;
};

/*
 * What one decoded request may hold. A series costs about 40 bytes decoded
 * but only 2 on the wire (an empty one), a label about 100 for 4: without a
 * bound, a few MiB of input decode into GiB, and each series becomes a
 * delivery of its own. Real writers send one series, or a few, per request.
 */
#define PW_PROTO_MAX_SERIES 10000
/* Series, labels, samples and annotations together. */
#define PW_PROTO_MAX_ELEMENTS 100000

/*
 * Decodes a PushRequest strictly: wrong wire types, truncated fields,
 * invalid UTF-8 or a NUL byte in strings, and more than the bounds above
 * are errors. Unknown fields are skipped. The decoded samples point into
 * `buf`, which must outlive `out`.
 * Returns 0, or -1 with a malloc'd *err.
 */
int pw_proto_decode_push(const uint8_t *buf, size_t len, struct pw_dec_push *out, char **err);
void pw_dec_push_free(struct pw_dec_push *p);

#endif /* PW_PROTO_H */
