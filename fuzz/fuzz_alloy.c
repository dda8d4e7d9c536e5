/*
 * fuzz_alloy.c - libFuzzer harness for the Alloy syntax converter.
 *
 * Build and run (from the repository root; scripts/fuzz.sh runs them all):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && meson compile -C build-fuzz fuzz/fuzz_alloy
 *   build-fuzz/fuzz/fuzz_alloy -max_total_time=60 fuzz/corpus/alloy
 *
 * Besides memory safety it checks the converter's contract: exactly one of
 * the JSON document and the error message is returned, a document is
 * always valid JSON with an object at the top, and an error names a place.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloy/alloy.h"

static void count_notice(void *user, const char *msg)
{
	size_t *n = user;

	if (!msg || !*msg)
		abort();
	(*n)++;
}

static void check_result(int rc, char *json, char *err)
{
	json_t *doc;

	if (rc == 0) {
		if (!json || err)
			abort();
		doc = json_loads(json, 0, NULL);
		if (!json_is_object(doc))
			abort();
		json_decref(doc);
	} else {
		if (json || !err || strncmp(err, "f.alloy:", 8) != 0)
			abort();
	}
	free(json);
	free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char *json = NULL, *err = NULL;
	char **labels = NULL;
	size_t nlabels = 0, notices = 0;
	int rc;

	rc = alloy_convert(text, size, "f.alloy", NULL, &json, &err, count_notice, &notices);
	check_result(rc, json, err);

	/* Every listed label must then be selectable on its own. */
	err = NULL;
	if (alloy_list_labels(text, size, "f.alloy", &labels, &nlabels, &err) == 0) {
		for (size_t i = 0; i < nlabels && i < 4; i++) {
			json = NULL;
			err = NULL;
			rc = alloy_convert(text, size, "f.alloy", labels[i], &json, &err, NULL,
					   NULL);
			check_result(rc, json, err);
		}
		alloy_labels_free(labels, nlabels);
	} else {
		if (!err)
			abort();
		free(err);
	}
	return 0;
}
