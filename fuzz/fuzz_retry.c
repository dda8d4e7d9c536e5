/*
 * fuzz_retry.c - libFuzzer harness for outcome classification, Retry-After
 * parsing and the PushRequest decoder.
 *
 * Build and run (from the repository root; scripts/fuzz.sh runs them all):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && meson compile -C build-fuzz fuzz/fuzz_retry
 *   build-fuzz/fuzz/fuzz_retry -max_total_time=60 fuzz/corpus/retry
 *
 * Input layout: byte 0 = transport outcome and flags, bytes 1-2 = HTTP
 * status (100..599), byte 3 = content type choice, then the response body.
 * The body is also fed to the Retry-After parser and the decoder.
 *
 * Besides memory safety it checks the contracts: an error text exists
 * exactly when the attempt was not delivered and is valid UTF-8, the code
 * is a Connect code, a Retry-After delay is -1 or positive, and a decoded
 * request only points inside the input and holds UTF-8 strings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "proto_decode.h"
#include "retry.h"
#include "strbuf.h"

static const char *const content_types[] = {
	NULL,	     "application/json", "application/json; charset=utf-8",  "application/proto",
	"text/html", "application/grpc", "APPLICATION/JSON ; Charset=UTF-8",
};

#define NTYPES (sizeof(content_types) / sizeof(content_types[0]))

static void check_text(const char *s, bool want)
{
	if ((s != NULL) != want)
		abort();
	if (s && !pw_utf8_valid(s, strlen(s)))
		abort();
}

static void check_decoded(const struct pw_dec_push *d, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < d->nseries; i++) {
		const struct pw_dec_series *se = &d->series[i];

		for (size_t j = 0; j < se->nlabels; j++) {
			check_text(se->labels[j].key, true);
			check_text(se->labels[j].value, true);
		}
		for (size_t j = 0; j < se->nsamples; j++) {
			const struct pw_dec_sample *s = &se->samples[j];

			check_text(s->id, true);
			if (s->len && (s->data < buf || s->len > len ||
				       (size_t)(s->data - buf) > len - s->len))
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pw_attempt a = {0};
	const uint8_t *body;
	size_t body_len;
	struct pw_dec_push d;
	char *err = NULL, *text;
	enum pw_verdict v;
	int64_t delay;
	int code = -1;
	bool flag;

	if (size < 4)
		return 0;
	body = data + 4;
	body_len = size - 4;

	a.transport = (enum pw_transport)(data[0] & 3);
	a.transport_error = (data[0] & 4) ? "connection reset" : NULL;
	a.content_encoding = (data[0] & 8) ? "gzip" : NULL;
	flag = data[0] & 16;
	a.http_status = 100 + ((data[1] << 8 | data[2]) % 500);
	a.content_type = content_types[data[3] % NTYPES];
	a.body = body_len ? body : NULL;
	a.body_len = body_len;

	v = pw_classify_push(&a, flag, &code, &err);
	if (v != PW_VERDICT_DELIVERED && v != PW_VERDICT_RETRY && v != PW_VERDICT_DROP)
		abort();
	check_text(err, v != PW_VERDICT_DELIVERED);
	if (code < 0 || code > PW_CODE_UNAUTHENTICATED ||
	    (code == PW_CODE_OK) != (v == PW_VERDICT_DELIVERED))
		abort();
	free(err);

	v = pw_classify_ingest(&a, flag, &err);
	check_text(err, v != PW_VERDICT_DELIVERED);
	free(err);

	/* The body as a header value. */
	text = pw_strndup((const char *)body, body_len);
	delay = pw_retry_after_parse(text, (int64_t)(data[1] << 8 | data[2]) * 100000);
	if (delay != -1 && (delay <= 0 || delay > INT64_C(1000000000) * 1000000000))
		abort();
	/* ...and as a content type, where it must not leak raw into the error. */
	a.transport = PW_TRANSPORT_OK;
	a.http_status = 200;
	a.content_type = text;
	v = pw_classify_push(&a, flag, &code, &err);
	check_text(err, v != PW_VERDICT_DELIVERED);
	free(err);
	free(text);

	err = NULL;
	if (pw_proto_decode_push(body, body_len, &d, &err) == 0) {
		if (err)
			abort();
		check_decoded(&d, body, body_len);
		pw_dec_push_free(&d);
	} else {
		check_text(err, true);
		if (d.nseries || d.series)
			abort();
		free(err);
	}
	return 0;
}
