/*
 * fuzz_reqparse.c - libFuzzer harness for the header values `mockhost run`
 * parses itself (src/mockhost/reqparse.c).
 *
 * Build and run (from the repository root; scripts/fuzz.sh runs them all):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && meson compile -C build-fuzz fuzz/fuzz_reqparse
 *   build-fuzz/fuzz/fuzz_reqparse -max_total_time=60 fuzz/corpus/reqparse
 *
 * Input layout: byte 0 = size of the media-type buffer (1..256), then the
 * header value (cut at the first NUL, as the listener hands it over).
 *
 * Besides memory safety it checks the contracts: the media type fits its
 * buffer, has no uppercase letter, ';' or blank, and is a lowercased
 * prefix of the value after its leading blanks; a timeout is accepted
 * exactly when the value is 1 to 10 digits, and then equals them; the
 * encoding is one of the three.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reqparse.h"

static void check_media_type(const char *v, size_t cap)
{
	char buf[256];
	const char *p = v;
	size_t n;

	if (reqparse_media_type(v, buf, cap) != buf)
		abort();
	n = strlen(buf);
	if (n >= cap)
		abort();
	while (*p == ' ' || *p == '\t')
		p++;
	for (size_t i = 0; i < n; i++) {
		char c = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] + 32) : p[i];

		if (buf[i] != c || c == ';' || c == ' ' || c == '\t')
			abort();
	}
}

static void check_timeout(const char *v)
{
	size_t n = strlen(v), digits = strspn(v, "0123456789");
	bool want = n >= 1 && n <= 10 && digits == n;
	int64_t ms = -1, expect = 0;

	if ((reqparse_timeout_ms(v, &ms) == 0) != want)
		abort();
	if (!want) {
		if (ms != -1)
			abort();
		return;
	}
	for (size_t i = 0; i < n; i++)
		expect = expect * 10 + (v[i] - '0');
	if (ms != expect)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v;
	size_t cap;
	enum reqparse_encoding e;

	if (size < 1)
		return 0;
	cap = (size_t)data[0] + 1;
	v = malloc(size);
	if (!v)
		return 0;
	memcpy(v, data + 1, size - 1);
	v[size - 1] = '\0';
	check_media_type(v, cap);
	check_timeout(v);
	e = reqparse_encoding(v);
	if (e != REQPARSE_ENC_IDENTITY && e != REQPARSE_ENC_GZIP && e != REQPARSE_ENC_OTHER)
		abort();
	free(v);
	return 0;
}
