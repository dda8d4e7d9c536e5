/*
 * fuzz_ingest.c - libFuzzer harness for what a POST /ingest request line
 * reaches first: the query-string parsers and the SDK `name` parsers of
 * `mockhost run` (src/mockhost/sdkname.c) and `mockhost sink`
 * (src/standin/formats.c).
 *
 * Build and run: scripts/fuzz.sh (corpus in fuzz/corpus/ingest).
 *
 * Input: a request target, "/ingest?name=app%7Bk%3Dv%7D&from=1&format=jfr",
 * up to the first NUL.
 *
 * Besides memory safety it checks the parsers' contracts: a parsed name
 * gives __name__ first with a non-empty application name, keys that are
 * valid label names, and service_name or app_name last; a failure gives a
 * message and no labels.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sdkname.h"
#include "standin/formats.h"

static void check_sdk(const char *name)
{
	struct pw_kv *kv = NULL;
	size_t n = 0;
	char *err = NULL;

	if (sdk_name_labels(name, &kv, &n, &err) < 0) {
		if (!err || kv || n)
			abort();
		free(err);
		return;
	}
	if (err || n < 2 || strcmp(kv[0].key, "__name__") != 0 || !*kv[0].value)
		abort();
	if (strcmp(kv[n - 1].key, "service_name") != 0 && strcmp(kv[n - 1].key, "app_name") != 0)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (!*kv[i].key)
			abort();
		for (const char *c = kv[i].key; *c; c++)
			if (!isalnum((unsigned char)*c) && *c != '_' && *c != '.')
				abort();
	}
	sdk_labels_free(kv, n);
}

static void check_standin(const char *name)
{
	struct standin_header *kv = NULL;
	size_t n = 0;
	char *err = NULL;

	if (standin_parse_name(name, &kv, &n, &err) < 0) {
		if (!err)
			abort();
		free(err);
		standin_kv_free(kv, n);
		return;
	}
	if (err || n < 1 || strcmp(kv[0].name, "__name__") != 0)
		abort();
	standin_kv_free(kv, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {"name",	 "from",    "until", "format",
					   "sampleRate", "spyName", "units", "aggregationType"};
	char *target = malloc(size + 1), *name, *q;

	if (!target)
		return 0;
	memcpy(target, data, size);
	target[size] = '\0';

	name = sdk_query_param(target, "name");
	if (name) {
		check_sdk(name);
		check_standin(name);
		free(name);
	}
	for (size_t i = 1; i < sizeof(keys) / sizeof(keys[0]); i++)
		free(sdk_query_param(target, keys[i]));

	q = strchr(target, '?');
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		free(standin_query_get(q ? q + 1 : target, keys[i]));
	/* The raw bytes as a name too: the parsers must not rely on the
	 * query decoder having filtered anything. */
	check_sdk(target);
	check_standin(target);
	free(target);
	return 0;
}
