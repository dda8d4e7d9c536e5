/*
 * formats.h - the payload checks and parsers of the Pyroscope stand-in.
 *
 * Pure functions. A standin_check_* returns NULL when the input is
 * acceptable, else a malloc'd message in Pyroscope's words where it has
 * any. They depend on no other stand-in file but the HTTP types, so the
 * fuzzers and the tests can take them alone.
 */
#ifndef PW_STANDIN_FORMATS_H
#define PW_STANDIN_FORMATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "standin/httpd.h"

/* The largest profile the stand-in inflates. */
#define STANDIN_MAX_INFLATED ((size_t)64 << 20)

/* Push label rules (non-empty set, names, duplicates, lengths). */
char *standin_check_labels(const struct pw_kv *labels, size_t n);

/* Folded ("a;b;c 12" per line) or, when `lines`, one stack per line. */
char *standin_check_folded(const uint8_t *body, size_t len, bool lines);

/* A JFR recording, raw or gzip'd. */
char *standin_check_jfr(const uint8_t *body, size_t len);

/* One part of a multipart/form-data body; data points into the body. */
struct standin_part {
	char *name;
	char *filename; /* NULL when absent */
	const uint8_t *data;
	size_t len;
};

/* Splits a multipart/form-data body. Returns 0, or -1 with a malloc'd *err. */
int standin_multipart_parse(const char *content_type, const uint8_t *body, size_t len,
			    struct standin_part **parts, size_t *nparts, char **err);
void standin_parts_free(struct standin_part *parts, size_t n);
const struct standin_part *standin_part_find(const struct standin_part *parts, size_t n,
					     const char *name);

/* The percent-decoded value of the first `key` in a raw query string, or
 * NULL when absent or when it holds a %00. Malloc'd. '+' decodes to a
 * space. */
char *standin_query_get(const char *query, const char *key);

/* The media type of a Content-Type value, lowercased, without parameters.
 * Malloc'd; NULL for NULL. */
char *standin_media_type(const char *content_type);

/*
 * Checks a profile the way the stand-in does: gunzip when it starts with the
 * gzip magic, then walk it as a pprof Profile message. Returns NULL when it
 * looks like pprof, else a malloc'd reason. Pure.
 */
char *standin_check_pprof(const uint8_t *data, size_t len);

/*
 * A tiny valid pprof profile (uncompressed: one cpu/nanoseconds sample in
 * function "main"), for tests that need a profile the stand-in accepts.
 * Returns static storage.
 */
const uint8_t *standin_pprof_sample(size_t *len);

/*
 * Parses an ingest `name` ("app{k=v,...}") like Pyroscope does. Returns 0
 * with the labels (__name__ first, then in order, later duplicates
 * replacing earlier ones; malloc'd strings, free with standin_kv_free), or
 * -1 with a malloc'd *err.
 */
int standin_parse_name(const char *name, struct standin_header **out, size_t *n, char **err);
void standin_kv_free(struct standin_header *kv, size_t n);

#endif /* PW_STANDIN_FORMATS_H */
