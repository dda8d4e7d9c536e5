/*
 * sender.h - the delivery engine: one I/O thread per instance drives
 * libcurl's multi interface for every endpoint, with retries on timers.
 */
#ifndef PW_SENDER_H
#define PW_SENDER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "labels.h"
#include "log.h"
#include "metrics.h"
#include "pyroscope_write.h"

struct pw_sender;
struct pw_snapshot;

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
 * Builds the runtime view of a configuration: one endpoint object per
 * configured endpoint. Endpoints whose settings equal one in `prev` are
 * shared with it (they keep their credentials cache and statistics; the
 * connection pool belongs to the sender and is kept regardless). Takes
 * ownership of cfg in every case. Returns NULL with *err on failure.
 */
struct pw_snapshot *pw_snapshot_new(struct pw_sender *s, struct pw_config *cfg,
				    const struct pw_snapshot *prev, char **err);
void pw_snapshot_ref(struct pw_snapshot *snap);
void pw_snapshot_unref(struct pw_snapshot *snap);
const struct pw_config *pw_snapshot_config(const struct pw_snapshot *snap);

/*
 * Submits a delivery on `snap`. Returns COMPONENT_OK when done will be
 * called exactly once (possibly before this returns, e.g. for invalid
 * labels); any other status means it will not be called.
 * Thread-safe.
 */
/* keep: the samples' data (the ingest body) stays valid until done is
 * called (large ones are then sent from it rather than copied). */
int pw_sender_push(struct pw_sender *s, struct pw_snapshot *snap, const struct pw_push *p,
		   bool keep, int64_t deadline_ns, pw_done_fn done, void *user);
int pw_sender_ingest(struct pw_sender *s, struct pw_snapshot *snap, const struct pw_ingest *in,
		     bool keep, int64_t deadline_ns, pw_done_fn done, void *user);

/* Appends the JSON debug view of the snapshot's endpoints (an array) to sb. */
struct strbuf;
void pw_snapshot_debug(const struct pw_snapshot *snap, struct strbuf *sb);

/* Monotonic and wall clocks in nanoseconds. */
int64_t pw_now_ns(void);
int64_t pw_wall_ms(void);

#endif /* PW_SENDER_H */
