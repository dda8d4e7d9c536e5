/*
 * standin.h - a strict local stand-in for the Pyroscope server.
 *
 * It serves the two write APIs the component talks to, on loopback:
 *   POST /push.v1.PusherService/Push   Connect unary, application/proto or
 *                                      application/json, optional gzip body
 *   POST [/prefix]/ingest              the legacy SDK API (query parameters
 *                                      name, format, ...; pprof, jfr,
 *                                      multipart, folded, lines, ...)
 * plus GET /stats (JSON counters) and GET /-/ready.
 *
 * It rejects what Pyroscope rejects (see docs/sink.md for the list), records
 * every request it receives, and can be scripted to answer the next requests
 * with given statuses, bodies, delays or connection resets.
 *
 * All functions are thread-safe unless noted.
 */
#ifndef PW_STANDIN_H
#define PW_STANDIN_H

#include <stddef.h>

#include "standin/formats.h"
#include "standin/standin_types.h"

struct standin;

/* Starts serving. Returns NULL with a malloc'd *err on failure. */
struct standin *standin_start(const struct standin_opts *o, char **err);
/* Stops, joins every thread and frees everything. Accepts NULL. Not to be
 * called concurrently with other calls on s. */
void standin_stop(struct standin *s);

int standin_port(const struct standin *s);
/* "http://127.0.0.1:PORT" (IPv6 addresses bracketed); valid until stop. */
const char *standin_url(const struct standin *s);

/* Queues a scripted reply for the next request(s) of `route`. Replies are
 * used in order; a request takes the first queued reply whose route is its
 * own or ANY. When none matches, the strict behaviour applies. */
void standin_script(struct standin *s, enum standin_route route, const struct standin_reply *r);
/* Drops every queued reply. */
void standin_script_clear(struct standin *s);

/* Number of requests received so far (all routes). */
size_t standin_count(struct standin *s);
/* Waits until at least n requests have been received. 0 when reached,
 * -1 on timeout. */
int standin_wait(struct standin *s, size_t n, int timeout_ms);
/* Deep copy of request i (0-based, arrival order), or NULL when there is
 * none; free with standin_request_free(). */
struct standin_request *standin_request_get(struct standin *s, size_t i);
void standin_request_free(struct standin_request *r);
/* First value of a header in a recorded request, case-insensitive. */
const char *standin_request_header(const struct standin_request *r, const char *name);
/* Copies the counters. */
void standin_stats_get(struct standin *s, struct standin_stats *out);

#endif /* PW_STANDIN_H */
