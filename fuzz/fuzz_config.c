/*
 * fuzz_config.c - libFuzzer harness for the configuration loader.
 *
 * Feeds arbitrary bytes to pw_config_parse() and, when a document loads,
 * exercises the redacted dump too. Everything is freed so leaks show up.
 *
 * Build and run (from the repository root; scripts/fuzz.sh runs them all):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && meson compile -C build-fuzz fuzz/fuzz_config
 *   build-fuzz/fuzz/fuzz_config fuzz/corpus/config
 */
#include "config.h"
#include "duration.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pw_config *cfg = NULL;
	char *text, *errors = NULL;
	int64_t ns;

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (pw_config_parse(text, &cfg, &errors) == 0) {
		char *json = pw_config_redacted_json(cfg);

		/* The dump of a valid snapshot is itself JSON text. */
		if (!json || json[0] != '{')
			abort();
		free(json);
		pw_config_free(cfg);
	} else if (!errors || cfg) {
		abort();
	}
	free(errors);

	/* Durations on their own: whatever parses prints back to itself. */
	if (size < 64 && pw_duration_parse(text, &ns, NULL) == 0) {
		char buf[64];
		int64_t back;

		pw_duration_format(ns, buf, sizeof(buf));
		if (pw_duration_parse(buf, &back, NULL) != 0 || back != ns)
			abort();
	}
	free(text);
	return 0;
}
