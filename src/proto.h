/*
 * proto.h - the protobuf encoding of push.v1.PushRequest (the decoder is in
 * proto_decode.h).
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

#endif /* PW_PROTO_H */
