/*
 * httpd.h - a small HTTP/1.1 server for loopback peers (the Pyroscope
 * stand-in used by the tests and by `mockhost sink`).
 *
 * It runs on the network listener (src/listen/, libmicrohttpd), with its
 * limits and framing checks; httpd_listen.c adapts it. Requests on a
 * connection are answered in order (keep-alive, pipelining). Request bodies
 * may come with Content-Length or chunked; they are capped. A handler fills
 * a response that can also ask for a delay, a reset instead of an answer, a
 * gzip'd body or a close.
 */
#ifndef PW_STANDIN_HTTPD_H
#define PW_STANDIN_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/gzip.h"

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

typedef void (*standin_http_handler_fn)(void *user, const struct standin_http_request *req,
					struct standin_http_response *resp);

struct standin_httpd_opts {
	const char *addr; /* numeric IPv4/IPv6 address; NULL = 127.0.0.1 */
	int port; /* 0 = ephemeral */
	size_t max_body; /* 0 = 64 MiB */
	int idle_timeout_ms; /* idle keep-alive connections are closed after it; 0 = 120 s */
	standin_http_handler_fn handler; /* called from the listener's threads, concurrently;
					  must not block */
	void *user;
	/* Most connections open at once; a connection past it is answered 503
	 * with Connection: close right away. 0 = unlimited. */
	size_t max_conns;
};

struct standin_httpd;

/* Binds, listens and starts the listener. Returns NULL with a malloc'd
 * *err on failure. */
struct standin_httpd *standin_httpd_start(const struct standin_httpd_opts *o, char **err);
/* The bound port (useful with port 0). */
int standin_httpd_port(const struct standin_httpd *h);
/* Stops accepting, sends every delayed reply at once (delays are cut
 * short), closes everything and frees h. Accepts NULL. */
void standin_httpd_stop(struct standin_httpd *h);

/* Connections open now, and connections refused by max_conns so far. */
size_t standin_httpd_connections(struct standin_httpd *h);
unsigned long standin_httpd_refused(struct standin_httpd *h);

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

#endif /* PW_STANDIN_HTTPD_H */
