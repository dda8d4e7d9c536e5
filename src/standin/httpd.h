/*
 * httpd.h - a small HTTP/1.1 server for loopback peers (the Pyroscope
 * stand-in used by the tests and by `mockhost sink`).
 *
 * It runs on the network listener (src/listen/, libmicrohttpd), with its
 * limits and framing checks; httpd.c adapts it. The request and response
 * types and their helpers are in http_util.h. Requests on a
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

#include "standin/http_util.h"

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

#endif /* PW_STANDIN_HTTPD_H */
