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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "standin/httpd.h"

struct standin_opts {
	const char *listen_addr; /* numeric address; NULL = "127.0.0.1" */
	int port; /* 0 = ephemeral */
	bool require_tenant; /* missing X-Scope-OrgID -> 401 */
	const char *store_dir; /* when set, every accepted series/ingest is written there */
	FILE *log; /* one line per accepted series/ingest; NULL = silent */
	size_t max_body; /* request body cap; 0 = 64 MiB */
};

/* Which API a request was for; also selects which requests a scripted
 * reply applies to (STANDIN_ROUTE_ANY = the next request of any kind). */
enum standin_route {
	STANDIN_ROUTE_ANY = 0,
	STANDIN_ROUTE_PUSH,
	STANDIN_ROUTE_INGEST,
	STANDIN_ROUTE_OTHER, /* anything else (only as a recorded kind) */
};

/* A scripted answer. Strings are copied by standin_script(). */
struct standin_reply {
	int status; /* 0 = 200 */
	const char *content_type; /* NULL = none, or application/proto for a push 200 */
	const char *body; /* NULL = empty */
	size_t body_len; /* 0 = strlen(body) */
	const char *retry_after; /* Retry-After header value; NULL = none */
	int delay_ms; /* wait before answering (or resetting) */
	bool reset; /* close the connection with RST instead of answering */
	bool gzip; /* gzip the body (Content-Encoding: gzip) */
	bool close; /* answer with Connection: close */
	unsigned times; /* use this reply for this many requests; 0 = 1 */
};

/* One received request, deep-copied. */
struct standin_request {
	enum standin_route route;
	char *method;
	char *path;
	char *query; /* raw, without '?' */
	struct standin_header *headers; /* in arrival order */
	size_t nheaders;
	uint8_t *body; /* as received (before any Content-Encoding is undone) */
	size_t body_len;
	int status; /* the status answered; 0 when the connection was reset */
	bool scripted; /* the answer came from the script */
	char *error; /* the rejection message; NULL when accepted or scripted */
	char *tenant; /* X-Scope-OrgID, or "anonymous" */
	/* Push: each series' labels as "k=v,k=v" in wire order, and its sample
	 * count. Filled whenever the body decoded, even when rejected. */
	char **series_labels;
	size_t *series_samples;
	size_t nseries;
	size_t nsamples; /* total */
	/* Ingest: the raw (decoded) `name` and the `format` parameter ("" when absent). */
	char *name;
	char *format;
};

/* Counters, as served on /stats. */
struct standin_stats {
	uint64_t requests;
	uint64_t push_accepted;
	uint64_t push_series;
	uint64_t push_samples;
	uint64_t push_bytes; /* sum of raw_profile lengths */
	uint64_t ingest_accepted;
	uint64_t ingest_bytes;
	uint64_t scripted;
	/* Rejections by class. */
	uint64_t rejected_unauthenticated; /* 401 */
	uint64_t rejected_invalid; /* 400 */
	uint64_t rejected_unprocessable; /* 422 */
	uint64_t rejected_too_large; /* 413 / resource_exhausted */
	uint64_t rejected_media_type; /* 415 */
	uint64_t rejected_not_found; /* 404 */
	uint64_t rejected_method; /* 405 */
	uint64_t rejected_other;
	uint64_t rejected_storage; /* 507: the store directory could not take it */
};

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

/*
 * Checks a profile the way the stand-in does: gunzip when it starts with the
 * gzip magic, then walk it as a pprof Profile message. Returns NULL when it
 * looks like pprof, else a malloc'd reason. Pure; exposed for the tests.
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

/* The `mockhost sink` command (src/standin/sink.c). Returns the exit code. */
int pw_sink_main(int argc, char **argv);

#endif /* PW_STANDIN_H */
