/*
 * http_util.h - the request and response of the stand-in's HTTP server,
 * and the helpers around them: header lookup, response building, reason
 * phrases, listen addresses. Used by the server (httpd.c) and its
 * handlers.
 */
#ifndef PW_STANDIN_HTTP_UTIL_H
#define PW_STANDIN_HTTP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct standin_header {
	char *name;
	char *value;
};

/* A parsed request. Everything is borrowed for the duration of the handler. */
struct standin_http_request {
	const char *method;
	const char *path; /* the request target up to '?', not decoded */
	const char *query; /* after '?', not decoded; "" when absent */
	int minor_version; /* HTTP/1.<minor> */
	const struct standin_header *headers; /* in arrival order, repeats kept */
	size_t nheaders;
	const uint8_t *body; /* de-chunked; NUL-terminated for convenience */
	size_t body_len;
	/* The body was over the cap: body is empty and the connection will be
	 * closed after the answer, since the rest of it was not read. */
	bool body_too_large;
};

/* What the handler answers. Zeroed before the handler runs. */
struct standin_http_response {
	int status; /* 0 means 200 */
	struct standin_header *headers; /* owned; add with standin_http_add_header() */
	size_t nheaders;
	uint8_t *body; /* owned, malloc'd */
	size_t body_len;
	int delay_ms; /* wait this long before answering (or resetting) */
	bool reset; /* close with RST instead of answering */
	bool close; /* answer with Connection: close and close */
	bool gzip; /* gzip the body and say Content-Encoding: gzip */
};

/* Splits a listen address: "ADDR:PORT", "[V6ADDR]:PORT" or ":PORT" (which
 * means 127.0.0.1). Stores a malloc'd address. Returns 0, or -1 when the
 * text is malformed or the port is out of range. */
int standin_split_listen(const char *arg, char **addr, int *port);

/* First value of a header, case-insensitive name; NULL when absent. */
const char *standin_http_header(const struct standin_header *h, size_t n, const char *name);
/* Appends a response header (copied). Returns 0 or -1 when out of memory. */
int standin_http_add_header(struct standin_http_response *r, const char *name, const char *value);
/* Frees what a response owns and zeroes it. */
void standin_http_response_free(struct standin_http_response *r);
/* Replaces the response body with a copy of data. Returns 0 or -1. */
int standin_http_set_body(struct standin_http_response *r, const void *data, size_t len);
/* The standard reason phrase of a status code ("Unknown" if none). */
const char *standin_http_reason(int status);

#endif /* PW_STANDIN_HTTP_UTIL_H */
