/*
 * reqparse.h - the request header values `mockhost run` reads itself
 * (Content-Type, Content-Encoding, Connect-Timeout-Ms), parsed from the
 * bytes a network peer sent. Pure functions on NUL-terminated strings, no
 * allocation; fuzzed by fuzz/fuzz_reqparse.c. Internal to the mock host.
 */
#ifndef MOCKHOST_REQPARSE_H
#define MOCKHOST_REQPARSE_H

#include <stddef.h>
#include <stdint.h>

/*
 * The media type of a Content-Type value (NULL reads as ""): leading blanks
 * skipped, cut at ';' or a blank, lowercased into buf[len] (len >= 1; a
 * longer type is cut to len - 1 bytes). Returns buf.
 */
const char *reqparse_media_type(const char *ct, char *buf, size_t len);

/* Connect-Timeout-Ms: 1 to 10 ASCII digits, nothing else. 0 with *ms set,
 * or -1 (*ms untouched). */
int reqparse_timeout_ms(const char *s, int64_t *ms);

enum reqparse_encoding {
	REQPARSE_ENC_IDENTITY, /* absent, or "identity" */
	REQPARSE_ENC_GZIP,
	REQPARSE_ENC_OTHER, /* anything else: not supported */
};

/* A Content-Encoding value (NULL when absent), case-insensitive. */
enum reqparse_encoding reqparse_encoding(const char *enc);

#endif /* MOCKHOST_REQPARSE_H */
