/*
 * metrics.c - counters, gauges and the latency histogram, and their text
 * exposition. The durable queue's series are written only by instances that
 * use a queue.
 */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

/* Prometheus' default buckets, as the latency histogram of the reference
 * component uses. */
static const double latency_buckets[PW_LATENCY_NBUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* Profiles per request of a batching endpoint: powers of two. */
static const double batch_buckets[PW_LATENCY_NBUCKETS] = {
	1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024,
};

/* fsync takes well under a millisecond on an idle SSD with a write cache
 * and seconds on a congested disk or network file system. */
#define FSYNC_NBUCKETS 12
static const double fsync_buckets[FSYNC_NBUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
};

#define HIST_MAX_BUCKETS 12

static const char *const queue_drop_names[PW_QDROP_N] = {
	"full",
	"expired",
	"corrupt",
	"removed",
};

static const char *const latency_type_names[PW_LAT_NTYPES] = {
	"push_total",	"push_endpoint",   "push_downstream",
	"ingest_total", "ingest_endpoint", "ingest_downstream",
};

struct histogram {
	_Atomic uint64_t buckets[HIST_MAX_BUCKETS]; /* non-cumulative */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_bits; /* a double, updated by compare-and-swap */
};

struct pw_ep_metrics {
	char *label;
	_Atomic uint64_t sent_bytes, dropped_bytes, sent_profiles, dropped_profiles, retries;
	_Atomic int64_t inflight;
	_Atomic uint64_t last_success_bits;
	_Atomic bool used[PW_LAT_NTYPES];
	struct histogram lat[PW_LAT_NTYPES];
	_Atomic bool batch_used;
	struct histogram batch; /* profiles per request */
	struct pw_metrics *owner;
	_Atomic bool queue_used;
	_Atomic int64_t queue_backlog;
	_Atomic uint64_t queue_oldest_age_bits;
	_Atomic uint64_t queue_dropped[PW_QDROP_N];
	_Atomic uint64_t queue_replayed;
	struct pw_ep_metrics *next;
};

struct rejected {
	char *path;
	const char *reason; /* static */
	_Atomic uint64_t profiles;
	struct rejected *next;
};

struct pw_metrics {
	pthread_mutex_t lock; /* guards the lists, not the values */
	struct pw_ep_metrics *eps;
	struct rejected *rejected;
	_Atomic int reload_ok;
	_Atomic uint64_t reload_ts_bits;
	_Atomic uint64_t reload_ok_ts_bits;
	_Atomic bool reloaded;
	_Atomic bool queue_used; /* a queue function was called: write the queue series */
	_Atomic int64_t queue_bytes;
	struct histogram queue_fsync;
};

static uint64_t dbl_bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static double bits_dbl(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
	uint64_t old = atomic_load(p);

	while (!atomic_compare_exchange_weak(p, &old, dbl_bits(bits_dbl(old) + v)))
		;
}

struct pw_metrics *pw_metrics_new(void)
{
	struct pw_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	atomic_store(&m->reload_ok, 1);
	return m;
}

void pw_metrics_free(struct pw_metrics *m)
{
	if (!m)
		return;
	while (m->eps) {
		struct pw_ep_metrics *e = m->eps;

		m->eps = e->next;
		free(e->label);
		free(e);
	}
	while (m->rejected) {
		struct rejected *r = m->rejected;

		m->rejected = r->next;
		free(r->path);
		free(r);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

struct pw_ep_metrics *pw_metrics_endpoint(struct pw_metrics *m, const char *label)
{
	struct pw_ep_metrics *e, **tail;

	pthread_mutex_lock(&m->lock);
	for (tail = &m->eps; *tail; tail = &(*tail)->next) {
		if (strcmp((*tail)->label, label) == 0) {
			e = *tail;
			goto out;
		}
	}
	/* Appended at the end so the exposition order is creation order. */
	e = calloc(1, sizeof(*e));
	if (e) {
		e->owner = m;
		e->label = strdup(label);
		if (!e->label) {
			free(e);
			e = NULL;
		} else {
			*tail = e;
		}
	}
out:
	pthread_mutex_unlock(&m->lock);
	return e;
}

void pw_metrics_sent(struct pw_ep_metrics *e, uint64_t bytes, uint64_t profiles)
{
	atomic_fetch_add(&e->sent_bytes, bytes);
	atomic_fetch_add(&e->sent_profiles, profiles);
}

void pw_metrics_dropped(struct pw_ep_metrics *e, uint64_t bytes, uint64_t profiles)
{
	atomic_fetch_add(&e->dropped_bytes, bytes);
	atomic_fetch_add(&e->dropped_profiles, profiles);
}

void pw_metrics_retry(struct pw_ep_metrics *e)
{
	atomic_fetch_add(&e->retries, 1);
}

static void hist_add(struct histogram *h, const double *bounds, size_t nbounds, double v)
{
	for (size_t i = 0; i < nbounds; i++) {
		if (v <= bounds[i]) {
			atomic_fetch_add(&h->buckets[i], 1);
			break;
		}
	}
	atomic_add_double(&h->sum_bits, v);
	/* count last: a scrape never sees more bucket hits than count says. */
	atomic_fetch_add(&h->count, 1);
}

void pw_metrics_observe(struct pw_ep_metrics *e, enum pw_latency_type type, double seconds)
{
	if ((unsigned)type >= PW_LAT_NTYPES)
		return;
	if (!(seconds >= 0))
		seconds = 0;
	hist_add(&e->lat[type], latency_buckets, PW_LATENCY_NBUCKETS, seconds);
	atomic_store(&e->used[type], true);
}

void pw_metrics_batch(struct pw_ep_metrics *e, uint64_t profiles)
{
	hist_add(&e->batch, batch_buckets, PW_LATENCY_NBUCKETS, (double)profiles);
	atomic_store(&e->batch_used, true);
}

void pw_metrics_inflight_add(struct pw_ep_metrics *e, int64_t delta)
{
	atomic_fetch_add(&e->inflight, delta);
}

void pw_metrics_last_success(struct pw_ep_metrics *e, double unix_seconds)
{
	atomic_store(&e->last_success_bits, dbl_bits(unix_seconds));
}

void pw_metrics_rejected(struct pw_metrics *m, const char *path, const char *reason,
			 uint64_t profiles)
{
	struct rejected *r, **tail;

	pthread_mutex_lock(&m->lock);
	tail = &m->rejected;
	r = m->rejected;
	while (r && (strcmp(r->path, path) != 0 || strcmp(r->reason, reason) != 0)) {
		tail = &r->next;
		r = r->next;
	}
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (r && !(r->path = strdup(path))) {
			free(r);
			r = NULL;
		}
		if (r)
			r->reason = reason;
		if (r)
			*tail = r;
	}
	if (r)
		atomic_fetch_add(&r->profiles, profiles);
	pthread_mutex_unlock(&m->lock);
}

void pw_metrics_reload(struct pw_metrics *m, int success, double unix_seconds)
{
	atomic_store(&m->reload_ok, success ? 1 : 0);
	atomic_store(&m->reload_ts_bits, dbl_bits(unix_seconds));
	if (success)
		atomic_store(&m->reload_ok_ts_bits, dbl_bits(unix_seconds));
	atomic_store(&m->reloaded, true);
}

void pw_metrics_queue_bytes(struct pw_metrics *m, int64_t bytes)
{
	atomic_store(&m->queue_bytes, bytes);
	atomic_store(&m->queue_used, true);
}

void pw_metrics_queue_fsync(struct pw_metrics *m, double seconds)
{
	if (!(seconds >= 0))
		seconds = 0;
	hist_add(&m->queue_fsync, fsync_buckets, FSYNC_NBUCKETS, seconds);
	atomic_store(&m->queue_used, true);
}

/* An endpoint's queue series are written from its first queue call on. */
static void ep_queue_used(struct pw_ep_metrics *e)
{
	atomic_store(&e->queue_used, true);
	atomic_store(&e->owner->queue_used, true);
}

void pw_metrics_queue_backlog(struct pw_ep_metrics *e, int64_t profiles)
{
	atomic_store(&e->queue_backlog, profiles);
	ep_queue_used(e);
}

void pw_metrics_queue_oldest_age(struct pw_ep_metrics *e, double seconds)
{
	atomic_store(&e->queue_oldest_age_bits, dbl_bits(seconds));
	ep_queue_used(e);
}

void pw_metrics_queue_dropped(struct pw_ep_metrics *e, enum pw_queue_drop reason, uint64_t profiles)
{
	if ((unsigned)reason >= PW_QDROP_N)
		return;
	atomic_fetch_add(&e->queue_dropped[reason], profiles);
	ep_queue_used(e);
}

void pw_metrics_queue_replayed(struct pw_ep_metrics *e, uint64_t profiles)
{
	atomic_fetch_add(&e->queue_replayed, profiles);
	ep_queue_used(e);
}

int64_t pw_metrics_queue_bytes_get(struct pw_metrics *m)
{
	return atomic_load(&m->queue_bytes);
}

uint64_t pw_metrics_queue_fsync_count(struct pw_metrics *m)
{
	return atomic_load(&m->queue_fsync.count);
}

int64_t pw_metrics_queue_backlog_get(struct pw_ep_metrics *e)
{
	return atomic_load(&e->queue_backlog);
}

double pw_metrics_queue_oldest_age_get(struct pw_ep_metrics *e)
{
	return bits_dbl(atomic_load(&e->queue_oldest_age_bits));
}

uint64_t pw_metrics_queue_dropped_get(struct pw_ep_metrics *e, enum pw_queue_drop reason)
{
	return (unsigned)reason < PW_QDROP_N ? atomic_load(&e->queue_dropped[reason]) : 0;
}

uint64_t pw_metrics_queue_replayed_get(struct pw_ep_metrics *e)
{
	return atomic_load(&e->queue_replayed);
}

uint64_t pw_metrics_counter(struct pw_ep_metrics *e, const char *name)
{
	if (strcmp(name, "sent_bytes") == 0)
		return atomic_load(&e->sent_bytes);
	if (strcmp(name, "dropped_bytes") == 0)
		return atomic_load(&e->dropped_bytes);
	if (strcmp(name, "sent_profiles") == 0)
		return atomic_load(&e->sent_profiles);
	if (strcmp(name, "dropped_profiles") == 0)
		return atomic_load(&e->dropped_profiles);
	if (strcmp(name, "retries") == 0)
		return atomic_load(&e->retries);
	return 0;
}

uint64_t pw_metrics_hist_count(struct pw_ep_metrics *e, enum pw_latency_type type)
{
	return (unsigned)type < PW_LAT_NTYPES ? atomic_load(&e->lat[type].count) : 0;
}

int64_t pw_metrics_inflight(struct pw_ep_metrics *e)
{
	return atomic_load(&e->inflight);
}

/* Label values are escaped as the text format requires. */
static void put_label(struct strbuf *sb, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			strbuf_puts(sb, "\\\\");
		else if (*v == '"')
			strbuf_puts(sb, "\\\"");
		else if (*v == '\n')
			strbuf_puts(sb, "\\n");
		else
			strbuf_putc(sb, *v);
	}
}

static void put_double(struct strbuf *sb, double d)
{
	char buf[40];

	if (isinf(d)) {
		strbuf_puts(sb, d > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (isnan(d)) {
		strbuf_puts(sb, "NaN");
		return;
	}
	/* The shortest text that reads back as the same double, so bucket
	 * bounds print as 0.005 rather than 0.0050000000000000001. */
	if (d == (double)(long long)d && d > -1e15 && d < 1e15) {
		strbuf_printf(sb, "%lld", (long long)d);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	strbuf_puts(sb, buf);
}

/* The "-" series only carries the whole-call latency. */
static bool is_total(const struct pw_ep_metrics *e)
{
	return strcmp(e->label, "-") == 0;
}

static void put_header(struct strbuf *sb, const char *name, const char *type, const char *help)
{
	strbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct counter_desc {
	const char *name;
	const char *help;
	size_t offset;
};

static const struct counter_desc counters[] = {
	{"pyroscope_write_sent_bytes_total",
	 "Total number of compressed bytes sent to Pyroscope endpoints.",
	 offsetof(struct pw_ep_metrics, sent_bytes)},
	{"pyroscope_write_dropped_bytes_total",
	 "Total number of compressed bytes dropped by Pyroscope endpoints.",
	 offsetof(struct pw_ep_metrics, dropped_bytes)},
	{"pyroscope_write_sent_profiles_total",
	 "Total number of profiles sent to Pyroscope endpoints.",
	 offsetof(struct pw_ep_metrics, sent_profiles)},
	{"pyroscope_write_dropped_profiles_total",
	 "Total number of profiles dropped by Pyroscope endpoints.",
	 offsetof(struct pw_ep_metrics, dropped_profiles)},
	{"pyroscope_write_retries_total", "Total number of retries to Pyroscope endpoints.",
	 offsetof(struct pw_ep_metrics, retries)},
};

/* The endpoint label and, when given, the type label of a histogram's
 * series, without braces; "" for an instance-wide histogram (e NULL). */
static void put_hist_labels(struct strbuf *sb, const struct pw_ep_metrics *e, const char *type)
{
	if (!e)
		return;
	strbuf_puts(sb, "endpoint=\"");
	put_label(sb, e->label);
	strbuf_putc(sb, '"');
	if (type)
		strbuf_printf(sb, ",type=\"%s\"", type);
}

static void write_histogram(struct strbuf *sb, const char *name, const struct pw_ep_metrics *e,
			    const char *type, const struct histogram *h, const double *bounds,
			    size_t nbounds)
{
	uint64_t count = atomic_load(&h->count), cum = 0;
	struct strbuf lb = STRBUF_INIT;
	const char *labels, *sep;

	put_hist_labels(&lb, e, type);
	if (lb.failed)
		sb->failed = true;
	labels = lb.data ? lb.data : "";
	sep = *labels ? "," : "";
	for (size_t b = 0; b < nbounds; b++) {
		cum += atomic_load(&h->buckets[b]);
		if (cum > count)
			cum = count;
		strbuf_printf(sb, "%s_bucket{%s%sle=\"", name, labels, sep);
		put_double(sb, bounds[b]);
		strbuf_printf(sb, "\"} %llu\n", (unsigned long long)cum);
	}
	strbuf_printf(sb, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
		      (unsigned long long)count);
	/* Written without braces when there are no labels. */
	strbuf_printf(sb, *labels ? "%s_sum{%s} " : "%s_sum%s ", name, labels);
	put_double(sb, bits_dbl(atomic_load(&h->sum_bits)));
	strbuf_putc(sb, '\n');
	strbuf_printf(sb, *labels ? "%s_count{%s} %llu\n" : "%s_count%s %llu\n", name, labels,
		      (unsigned long long)count);
	strbuf_free(&lb);
}

static void write_histograms_locked(struct pw_metrics *m, struct strbuf *sb)
{
	put_header(sb, "pyroscope_write_latency", "histogram",
		   "Write latency for sending profiles to Pyroscope endpoints.");
	for (struct pw_ep_metrics *e = m->eps; e; e = e->next)
		for (int t = 0; t < PW_LAT_NTYPES; t++)
			if (atomic_load(&e->used[t]))
				write_histogram(sb, "pyroscope_write_latency", e,
						latency_type_names[t], &e->lat[t], latency_buckets,
						PW_LATENCY_NBUCKETS);
	put_header(sb, "pyroscope_write_batch_profiles", "histogram",
		   "Profiles per push request of endpoints with batch.");
	for (struct pw_ep_metrics *e = m->eps; e; e = e->next)
		if (atomic_load(&e->batch_used))
			write_histogram(sb, "pyroscope_write_batch_profiles", e, NULL, &e->batch,
					batch_buckets, PW_LATENCY_NBUCKETS);
}

static void write_extras_locked(struct pw_metrics *m, struct strbuf *sb)
{
	put_header(sb, "pyroscope_write_rejected_profiles_total", "counter",
		   "Profiles refused before sending: invalid labels, or a request that "
		   "cannot be forwarded safely.");
	for (struct rejected *r = m->rejected; r; r = r->next)
		strbuf_printf(sb,
			      "pyroscope_write_rejected_profiles_total{path=\"%s\",reason="
			      "\"%s\"} %llu\n",
			      r->path, r->reason, (unsigned long long)atomic_load(&r->profiles));

	put_header(sb, "pyroscope_write_inflight_requests", "gauge",
		   "Deliveries currently under way to each endpoint, including backoff waits.");
	for (struct pw_ep_metrics *e = m->eps; e; e = e->next) {
		if (is_total(e))
			continue;
		strbuf_puts(sb, "pyroscope_write_inflight_requests{endpoint=\"");
		put_label(sb, e->label);
		strbuf_printf(sb, "\"} %lld\n", (long long)atomic_load(&e->inflight));
	}

	put_header(sb, "pyroscope_write_last_success_timestamp_seconds", "gauge",
		   "Unix time of the last successful delivery to each endpoint (0: none yet).");
	for (struct pw_ep_metrics *e = m->eps; e; e = e->next) {
		if (is_total(e))
			continue;
		strbuf_puts(sb, "pyroscope_write_last_success_timestamp_seconds{endpoint=\"");
		put_label(sb, e->label);
		strbuf_puts(sb, "\"} ");
		put_double(sb, bits_dbl(atomic_load(&e->last_success_bits)));
		strbuf_putc(sb, '\n');
	}

	put_header(sb, "pyroscope_write_config_last_reload_successful", "gauge",
		   "Whether the last configuration update was applied (1) or refused (0).");
	strbuf_printf(sb, "pyroscope_write_config_last_reload_successful %d\n",
		      atomic_load(&m->reload_ok));
	put_header(sb, "pyroscope_write_config_last_reload_success_timestamp_seconds", "gauge",
		   "Unix time of the last configuration that was applied.");
	strbuf_puts(sb, "pyroscope_write_config_last_reload_success_timestamp_seconds ");
	put_double(sb, bits_dbl(atomic_load(&m->reload_ok_ts_bits)));
	strbuf_putc(sb, '\n');
}

/* The endpoints whose queue series are written: those a queue function was
 * called for (never the "-" series). */
static bool ep_has_queue(const struct pw_ep_metrics *e)
{
	return !is_total(e) && atomic_load(&e->queue_used);
}

static void put_ep_series(struct strbuf *sb, const char *name, const struct pw_ep_metrics *e)
{
	strbuf_printf(sb, "%s{endpoint=\"", name);
	put_label(sb, e->label);
	strbuf_puts(sb, "\"} ");
}

static void write_queue_ep_locked(struct pw_metrics *m, struct strbuf *sb)
{
	put_header(sb, "pyroscope_write_queue_backlog_profiles", "gauge",
		   "Profiles in the durable queue that the endpoint has not finished with yet.");
	for (struct pw_ep_metrics *e = m->eps; e; e = e->next)
		if (ep_has_queue(e)) {
			put_ep_series(sb, "pyroscope_write_queue_backlog_profiles", e);
			strbuf_printf(sb, "%lld\n", (long long)atomic_load(&e->queue_backlog));
		}
	put_header(sb, "pyroscope_write_queue_oldest_age_seconds", "gauge",
		   "Age of the oldest profile in the endpoint's backlog (0: empty).");
	for (struct pw_ep_metrics *e = m->eps; e; e = e->next)
		if (ep_has_queue(e)) {
			put_ep_series(sb, "pyroscope_write_queue_oldest_age_seconds", e);
			put_double(sb, bits_dbl(atomic_load(&e->queue_oldest_age_bits)));
			strbuf_putc(sb, '\n');
		}
	put_header(sb, "pyroscope_write_queue_dropped_profiles_total", "counter",
		   "Profiles the durable queue dropped for an endpoint before delivering "
		   "them, by reason.");
	for (struct pw_ep_metrics *e = m->eps; e; e = e->next) {
		if (!ep_has_queue(e))
			continue;
		for (int r = 0; r < PW_QDROP_N; r++) {
			strbuf_puts(sb, "pyroscope_write_queue_dropped_profiles_total{endpoint=\"");
			put_label(sb, e->label);
			strbuf_printf(sb, "\",reason=\"%s\"} %llu\n", queue_drop_names[r],
				      (unsigned long long)atomic_load(&e->queue_dropped[r]));
		}
	}
	put_header(sb, "pyroscope_write_queue_replayed_profiles_total", "counter",
		   "Profiles found pending for the endpoint in the durable queue when it was "
		   "opened.");
	for (struct pw_ep_metrics *e = m->eps; e; e = e->next)
		if (ep_has_queue(e)) {
			put_ep_series(sb, "pyroscope_write_queue_replayed_profiles_total", e);
			strbuf_printf(sb, "%llu\n",
				      (unsigned long long)atomic_load(&e->queue_replayed));
		}
}

/* Nothing at all until the instance has used a queue. */
static void write_queue_locked(struct pw_metrics *m, struct strbuf *sb)
{
	if (!atomic_load(&m->queue_used))
		return;
	put_header(sb, "pyroscope_write_queue_bytes", "gauge",
		   "Bytes the durable queue's files take on disk.");
	strbuf_printf(sb, "pyroscope_write_queue_bytes %lld\n",
		      (long long)atomic_load(&m->queue_bytes));
	put_header(sb, "pyroscope_write_queue_fsync_duration_seconds", "histogram",
		   "Time taken by each fsync of the durable queue.");
	write_histogram(sb, "pyroscope_write_queue_fsync_duration_seconds", NULL, NULL,
			&m->queue_fsync, fsync_buckets, FSYNC_NBUCKETS);
	write_queue_ep_locked(m, sb);
}

int pw_metrics_write(struct pw_metrics *m, component_sink_fn sink, void *user)
{
	struct strbuf sb;
	int rc = COMPONENT_OK;

	strbuf_init(&sb, 0);
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		put_header(&sb, counters[i].name, "counter", counters[i].help);
		for (struct pw_ep_metrics *e = m->eps; e; e = e->next) {
			_Atomic uint64_t *v;

			if (is_total(e))
				continue;
			v = (_Atomic uint64_t *)((char *)e + counters[i].offset);
			strbuf_printf(&sb, "%s{endpoint=\"", counters[i].name);
			put_label(&sb, e->label);
			strbuf_printf(&sb, "\"} %llu\n", (unsigned long long)atomic_load(v));
		}
	}
	write_histograms_locked(m, &sb);
	write_extras_locked(m, &sb);
	write_queue_locked(m, &sb);
	pthread_mutex_unlock(&m->lock);

	if (sb.failed)
		rc = COMPONENT_ENOMEM;
	else if (sink(user, sb.data ? sb.data : "", sb.len) != 0)
		rc = COMPONENT_EINTERNAL;
	strbuf_free(&sb);
	return rc;
}
