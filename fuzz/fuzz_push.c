/*
 * fuzz_push.c - libFuzzer harness for the Connect PushRequest decoder, the
 * first code that the body of a POST /push.v1.PusherService/Push reaches in
 * `mockhost run` and `mockhost sink`.
 *
 * Build and run: scripts/fuzz.sh (corpus in fuzz/corpus/push).
 *
 * Input: the request body, protobuf as sent by pyroscope.write. When it
 * starts with the gzip magic it is inflated first, as both hosts do for
 * Content-Encoding: gzip.
 *
 * Besides memory safety it checks the decoder's contract: an error comes
 * with a message and leaves nothing to free; a success holds only
 * NUL-terminated, valid UTF-8 label strings and sample bytes inside the
 * input; and what decoded re-encodes to something that decodes the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"
#include "proto.h"
#include "proto_decode.h"
#include "strbuf.h"
#include "util/gzip.h"

/* The largest inflated body worth following: keeps each run fast. */
#define MAX_INFLATED ((size_t)4 << 20)

static void check_inside(const uint8_t *buf, size_t len, const struct pw_dec_sample *s)
{
	if (s->len && (s->data < buf || s->data + s->len > buf + len))
		abort();
	if (!s->id || !pw_utf8_valid(s->id, strlen(s->id)))
		abort();
}

/* One series encoded again decodes to the same labels and samples. */
static void check_round_trip(const struct pw_dec_series *ds)
{
	struct pw_sample *samples = calloc(ds->nsamples + 1, sizeof(*samples));
	struct pw_labelset ls = {0};
	struct pw_dec_push again;
	uint8_t *buf = NULL;
	size_t len = 0;
	char *err = NULL;

	if (!samples)
		abort();
	for (size_t i = 0; i < ds->nsamples; i++) {
		samples[i].data = ds->samples[i].data;
		samples[i].len = ds->samples[i].len;
		samples[i].id = ds->samples[i].id;
	}
	ls.items = (struct pw_kv *)ds->labels;
	ls.n = ds->nlabels;
	if (pw_proto_encode_push(&ls, samples, ds->nsamples, &buf, &len) < 0)
		abort();
	if (pw_proto_decode_push(buf, len, &again, &err) < 0)
		abort();
	if (again.nseries != 1 || again.series[0].nlabels != ds->nlabels ||
	    again.series[0].nsamples != ds->nsamples)
		abort();
	for (size_t i = 0; i < ds->nlabels; i++)
		if (strcmp(again.series[0].labels[i].key, ds->labels[i].key) != 0 ||
		    strcmp(again.series[0].labels[i].value, ds->labels[i].value) != 0)
			abort();
	for (size_t i = 0; i < ds->nsamples; i++)
		if (again.series[0].samples[i].len != ds->samples[i].len ||
		    (ds->samples[i].len && memcmp(again.series[0].samples[i].data,
						  ds->samples[i].data, ds->samples[i].len) != 0))
			abort();
	pw_dec_push_free(&again);
	free(buf);
	free(samples);
}

static void decode(const uint8_t *buf, size_t len)
{
	struct pw_dec_push d;
	char *err = NULL;

	if (pw_proto_decode_push(buf, len, &d, &err) < 0) {
		if (!err || !pw_utf8_valid(err, strlen(err)))
			abort();
		free(err);
		return;
	}
	if (err)
		abort();
	for (size_t i = 0; i < d.nseries; i++) {
		const struct pw_dec_series *ds = &d.series[i];

		for (size_t j = 0; j < ds->nlabels; j++)
			if (!pw_utf8_valid(ds->labels[j].key, strlen(ds->labels[j].key)) ||
			    !pw_utf8_valid(ds->labels[j].value, strlen(ds->labels[j].value)))
				abort();
		for (size_t j = 0; j < ds->nsamples; j++)
			check_inside(buf, len, &ds->samples[j]);
		/* Only small series: the encoder's own cost is not under test. */
		if (i < 4 && ds->nlabels < 64 && ds->nsamples < 64)
			check_round_trip(ds);
	}
	pw_dec_push_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *raw = NULL;
	size_t rawlen = 0;

	if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
		if (pwx_gunzip(data, size, MAX_INFLATED, 0, &raw, &rawlen) == 0)
			decode(raw, rawlen);
		free(raw);
		return 0;
	}
	decode(data, size);
	return 0;
}
