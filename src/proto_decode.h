/*
 * proto_decode.h - a strict decoder of push.v1.PushRequest, used by the
 * local stand-in, mockhost's receiver and the tests (not by the plugin).
 */
#ifndef PW_PROTO_DECODE_H
#define PW_PROTO_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "labels.h"

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

#endif /* PW_PROTO_DECODE_H */
