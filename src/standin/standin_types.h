/*
 * standin_types.h - the values the stand-in's API takes and gives: options,
 * scripted replies, recorded requests and counters. Types only, so that
 * every stand-in file can use them without depending on standin.c.
 */
#ifndef PW_STANDIN_TYPES_H
#define PW_STANDIN_TYPES_H

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

#endif /* PW_STANDIN_TYPES_H */
