/*
 * fuzz_formats.c - libFuzzer harness for the payload checks of the local
 * sink (`mockhost sink`, src/standin/formats.c): ingest format detection
 * (pprof, gzip'd pprof, JFR, folded lines), multipart/form-data splitting
 * and the Content-Type parser. These run on request bodies as received.
 *
 * Build and run: scripts/fuzz.sh (corpus in fuzz/corpus/formats).
 *
 * Input: byte 0 picks the check; for multipart the bytes up to the first
 * newline are the Content-Type value and the rest is the body.
 *
 * Besides memory safety: a refusal comes with a message, and the parts of
 * a multipart body lie inside the body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "standin/formats.h"

static void check(char *err)
{
	free(err);
}

static void multipart(const uint8_t *d, size_t n)
{
	const uint8_t *nl = memchr(d, '\n', n);
	size_t ctlen = nl ? (size_t)(nl - d) : n;
	char *ct = malloc(ctlen + 1), *err = NULL, *mt;
	const uint8_t *body = nl ? nl + 1 : d + n;
	size_t blen = n - (size_t)(body - d);
	struct standin_part *parts = NULL;
	size_t nparts = 0;

	if (!ct)
		return;
	memcpy(ct, d, ctlen);
	ct[ctlen] = '\0';
	mt = standin_media_type(ct);
	if (!mt)
		abort();
	free(mt);
	if (standin_multipart_parse(ct, body, blen, &parts, &nparts, &err) < 0) {
		if (!err)
			abort();
		free(err);
	} else {
		for (size_t i = 0; i < nparts; i++) {
			if (!parts[i].name)
				abort();
			if (parts[i].len &&
			    (parts[i].data < body || parts[i].data + parts[i].len > body + blen))
				abort();
			check(standin_check_pprof(parts[i].data, parts[i].len));
		}
		(void)standin_part_find(parts, nparts, "profile");
		standin_parts_free(parts, nparts);
	}
	free(ct);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *d = data + 1;
	size_t n;

	if (size < 1)
		return 0;
	n = size - 1;
	switch (data[0] % 5) {
	case 0:
		check(standin_check_pprof(d, n));
		break;
	case 1:
		check(standin_check_jfr(d, n));
		break;
	case 2:
		check(standin_check_folded(d, n, false));
		break;
	case 3:
		check(standin_check_folded(d, n, true));
		break;
	default:
		multipart(d, n);
		break;
	}
	return 0;
}
