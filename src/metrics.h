/*
 * metrics.h - the component's Prometheus metrics.
 *
 * Series are created on first use and never removed: counters keep counting
 * across reloads, and the series of an endpoint that left the configuration
 * stay at their last values (as Prometheus client libraries do for a
 * registered collector). Updates are lock-free atomics; only series creation
 * and exposition take the registry lock.
 */
#ifndef PW_METRICS_H
#define PW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "component_abi.h"

enum pw_latency_type {
	PW_LAT_PUSH_TOTAL = 0,
	PW_LAT_PUSH_ENDPOINT,
	PW_LAT_PUSH_DOWNSTREAM,
	PW_LAT_INGEST_TOTAL,
	PW_LAT_INGEST_ENDPOINT,
	PW_LAT_INGEST_DOWNSTREAM,
	PW_LAT_NTYPES
};

#define PW_LATENCY_NBUCKETS 11

struct pw_metrics;
struct pw_ep_metrics;

struct pw_metrics *pw_metrics_new(void);
void pw_metrics_free(struct pw_metrics *m);

/* Series for one `endpoint` label value; created on first call. The pointer
 * stays valid until pw_metrics_free(). Thread-safe. Returns NULL only when
 * out of memory. */
struct pw_ep_metrics *pw_metrics_endpoint(struct pw_metrics *m, const char *label);

void pw_metrics_sent(struct pw_ep_metrics *e, uint64_t bytes, uint64_t profiles);
void pw_metrics_dropped(struct pw_ep_metrics *e, uint64_t bytes, uint64_t profiles);
void pw_metrics_retry(struct pw_ep_metrics *e);
void pw_metrics_observe(struct pw_ep_metrics *e, enum pw_latency_type type, double seconds);
/* One push request of an endpoint with batch, holding `profiles`. */
void pw_metrics_batch(struct pw_ep_metrics *e, uint64_t profiles);
void pw_metrics_inflight_add(struct pw_ep_metrics *e, int64_t delta);
void pw_metrics_last_success(struct pw_ep_metrics *e, double unix_seconds);

/* Instance-wide series. */
/* A profile refused before sending; reason is a static string:
 * "invalid_labels", "invalid_tenant" or "invalid_request". */
void pw_metrics_rejected(struct pw_metrics *m, const char *path, const char *reason,
			 uint64_t profiles);
void pw_metrics_reload(struct pw_metrics *m, int success, double unix_seconds);

/*
 * The durable queue's series. None of them is written until a queue function
 * has been called on the instance, so an instance without a queue exposes
 * exactly what it did before; an endpoint's series appear once a queue
 * function has been called for that endpoint. Thread-safe, lock-free.
 */
enum pw_queue_drop {
	PW_QDROP_FULL, /* when_full = "drop_oldest" made room (max_size or a full disk) */
	PW_QDROP_EXPIRED, /* older than max_age */
	PW_QDROP_CORRUPT, /* in a damaged part of a queue file */
	PW_QDROP_REMOVED, /* the endpoint left the configuration with a backlog */
	PW_QDROP_N
};

/* Instance-wide. */
/* Gauge pyroscope_write_queue_bytes: the queue's files on disk. */
void pw_metrics_queue_bytes(struct pw_metrics *m, int64_t bytes);
/* Histogram pyroscope_write_queue_fsync_duration_seconds: one fsync. */
void pw_metrics_queue_fsync(struct pw_metrics *m, double seconds);
/* Per endpoint. */
/* Gauge pyroscope_write_queue_backlog_profiles{endpoint}. */
void pw_metrics_queue_backlog(struct pw_ep_metrics *e, int64_t profiles);
/* Gauge pyroscope_write_queue_oldest_age_seconds{endpoint} (0: empty). */
void pw_metrics_queue_oldest_age(struct pw_ep_metrics *e, double seconds);
/* Counter pyroscope_write_queue_dropped_profiles_total{endpoint,reason}; an
 * out-of-range reason is ignored. */
void pw_metrics_queue_dropped(struct pw_ep_metrics *e, enum pw_queue_drop reason,
			      uint64_t profiles);
/* Counter pyroscope_write_queue_replayed_profiles_total{endpoint}: profiles
 * found pending for the endpoint when the queue was opened. */
void pw_metrics_queue_replayed(struct pw_ep_metrics *e, uint64_t profiles);

/* Reads back one counter (the tests use it). name is the metric
 * name without the _total suffix handling: e.g. "sent_bytes". Returns 0 for
 * unknown names. */
uint64_t pw_metrics_counter(struct pw_ep_metrics *e, const char *name);
uint64_t pw_metrics_hist_count(struct pw_ep_metrics *e, enum pw_latency_type type);
int64_t pw_metrics_inflight(struct pw_ep_metrics *e);
/* Read-back of the queue series, for the tests. */
int64_t pw_metrics_queue_bytes_get(struct pw_metrics *m);
uint64_t pw_metrics_queue_fsync_count(struct pw_metrics *m);
int64_t pw_metrics_queue_backlog_get(struct pw_ep_metrics *e);
double pw_metrics_queue_oldest_age_get(struct pw_ep_metrics *e);
uint64_t pw_metrics_queue_dropped_get(struct pw_ep_metrics *e, enum pw_queue_drop reason);
uint64_t pw_metrics_queue_replayed_get(struct pw_ep_metrics *e);

/* Writes the text exposition format 0.0.4. Returns COMPONENT_OK, or
 * COMPONENT_EINTERNAL when the sink asked to stop. */
int pw_metrics_write(struct pw_metrics *m, component_sink_fn sink, void *user);

#endif /* PW_METRICS_H */
