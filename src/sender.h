/*
 * sender.h - the delivery engine's I/O loop: one thread per instance
 * drives libcurl's multi interface for every endpoint, with retries on
 * timers. Layer: engine, top (beside submit.c); see engine.h.
 *
 * Also includes the headers of the engine parts the plugin uses with it
 * (snapshots, submitting, clocks).
 */
#ifndef PW_SENDER_H
#define PW_SENDER_H

#include <stdbool.h>
#include <stdint.h>

#include "util/clock.h"
#include "config.h"
#include "endpoint.h"
#include "log.h"
#include "metrics.h"
#include "submit.h"

struct pw_sender;

struct pw_sender_opts {
	struct pw_logger log;
	struct pw_metrics *metrics;
	const char *user_agent; /* full User-Agent value; copied */
	const char *instance_id; /* NULL or "": no X-Alloy-Id; copied */
};

/* Starts the I/O thread. Returns NULL with a malloc'd *err on failure. */
struct pw_sender *pw_sender_new(const struct pw_sender_opts *opts, char **err);

/*
 * Stops accepting work, lets deliveries under way finish for up to drain_ns,
 * cancels the rest (their callbacks fire with COMPONENT_ESHUTDOWN), joins
 * the thread and frees everything. Accepts NULL.
 */
void pw_sender_free(struct pw_sender *s, int64_t drain_ns);

/*
 * pw_snapshot_build() with this sender's identity (user agent, instance
 * id, metrics). The connection pool belongs to the sender and is kept
 * across snapshots regardless. Takes ownership of cfg in every case.
 */
struct pw_snapshot *pw_snapshot_new(struct pw_sender *s, struct pw_config *cfg,
				    const struct pw_snapshot *prev, char **err);

#endif /* PW_SENDER_H */
