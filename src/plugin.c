/*
 * plugin.c - the component ABI: descriptor, instance lifecycle, hot reload,
 * health, exports, metrics and debug information.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "component_abi.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "pw_version.h"
#include "pyroscope_write.h"
#include "qfeed.h"
#include "sender.h"
#include "strbuf.h"
#include "waitword.h"
#include "util/clock.h"

#define PW_EXPORT __attribute__((visibility("default")))

/* Size of the host services struct in ABI 1.0; anything smaller is refused. */
#define HOST_MIN_SIZE (offsetof(struct component_host, user_agent) + sizeof(const char *))

struct component_instance {
	struct pw_logger log;
	struct pw_metrics *metrics;
	struct pw_sender *sender;
	struct pw_receiver receiver;

	pthread_mutex_t update_lock; /* serialises update() */
	pthread_mutex_t lock; /* guards snap and the health fields; held briefly */
	struct pw_snapshot *snap;
	struct pw_qfeed *qf; /* the durable queue, with a queue block; else NULL */
	bool healthy;
	char *health_msg;
	int64_t health_changed_ms;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
	/* Once per process; never cleaned up, since the plugin stays mapped
	 * (-z nodelete) and other users of libcurl may share this state. */
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void set_error(char **error, const char *msg, const char *detail)
{
	if (error)
		*error = pw_asprintf("%s%s", msg, detail ? detail : "");
}

static struct pw_snapshot *current(struct component_instance *inst)
{
	struct pw_snapshot *snap;

	pthread_mutex_lock(&inst->lock);
	snap = inst->snap;
	pw_snapshot_ref(snap);
	pthread_mutex_unlock(&inst->lock);
	return snap;
}

/* The current snapshot and queue (NULL without a queue block), each with
 * a reference of the caller's: the pair that belongs together. */
static struct pw_snapshot *current_q(struct component_instance *inst, struct pw_qfeed **qf)
{
	struct pw_snapshot *snap;

	pthread_mutex_lock(&inst->lock);
	snap = inst->snap;
	pw_snapshot_ref(snap);
	*qf = inst->qf;
	if (*qf)
		pw_qfeed_ref(*qf);
	pthread_mutex_unlock(&inst->lock);
	return snap;
}

/* ---- the receiver ---- */

/*
 * A blocked push or ingest caller waits on an event of its own (a futex
 * word on Linux, see waitword.c). The I/O thread writes the result, then
 * sets the event, which publishes the result to the caller.
 */
struct waiter {
	struct pw_waitword done;
	struct pw_result *out;
};

static void waiter_done(void *user, const struct pw_result *r)
{
	struct waiter *w = user;

	w->out->status = r->status;
	w->out->http_status = r->http_status;
	w->out->error = r->error ? pw_strdup(r->error) : NULL;
	pw_waitword_set(&w->done);
}

static int wait_for(struct waiter *w, int rc)
{
	if (rc != COMPONENT_OK)
		w->out->status = rc;
	else
		pw_waitword_wait(&w->done);
	pw_waitword_destroy(&w->done);
	return w->out->status;
}

static void waiter_init(struct waiter *w, struct pw_result *out)
{
	pw_waitword_init(&w->done);
	w->out = out;
	memset(out, 0, sizeof(*out));
}

/*
 * The sizes of the structs a caller fills, as their first version ended:
 * frozen, so a caller built against an older header keeps working when a
 * struct grows (docs/abi.md). Smaller is refused; the fields beyond the
 * caller's struct_size read as absent (zero).
 */
#define PUSH_MIN_SIZE (offsetof(struct pw_push, nsamples) + sizeof(size_t))
#define INGEST_MIN_SIZE (offsetof(struct pw_ingest, nlabels) + sizeof(size_t))
#define HEALTH_MIN_SIZE (offsetof(struct component_health, changed_unix_ms) + sizeof(int64_t))

/* Copies the caller's version of a struct into this plugin's: what lies
 * beyond src_size is zero. The caller checked src_size against the minimum. */
static void struct_take(void *dst, size_t dst_size, const void *src, size_t src_size)
{
	memset(dst, 0, dst_size);
	memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
}

static bool push_take(const struct pw_push *in, struct pw_push *p)
{
	if (!in || in->struct_size < PUSH_MIN_SIZE)
		return false;
	struct_take(p, sizeof(*p), in, in->struct_size);
	if (p->nlabels && !p->labels)
		return false;
	if (p->nsamples && !p->samples)
		return false;
	for (size_t i = 0; i < p->nlabels; i++)
		if (!p->labels[i].name || !p->labels[i].value)
			return false;
	for (size_t i = 0; i < p->nsamples; i++)
		if (p->samples[i].len && !p->samples[i].data)
			return false;
	return true;
}

static bool ingest_take(const struct pw_ingest *caller, struct pw_ingest *in)
{
	if (!caller || caller->struct_size < INGEST_MIN_SIZE)
		return false;
	struct_take(in, sizeof(*in), caller, caller->struct_size);
	if (!in->path_query)
		return false;
	if ((in->nlabels && !in->labels) || (in->body_len && !in->body))
		return false;
	if (in->ncontent_types && !in->content_types)
		return false;
	for (size_t i = 0; i < in->nlabels; i++)
		if (!in->labels[i].name || !in->labels[i].value)
			return false;
	return true;
}

/* A blocking caller waits for the outcome: its samples outlive the
 * delivery, whatever its flags say. */
static int push_with(void *ctx, const struct pw_push *caller, bool blocking, int64_t deadline_ns,
		     pw_done_fn done, void *user)
{
	struct component_instance *inst = ctx;
	struct pw_snapshot *snap;
	struct pw_qfeed *qf;
	struct pw_push p;
	bool keep;
	int rc;

	if (!inst || !done || !push_take(caller, &p))
		return COMPONENT_EINVAL;
	keep = blocking || (p.flags & PW_PUSH_KEEP_UNTIL_DONE);
	snap = current_q(inst, &qf);
	rc = pw_sender_push(inst->sender, snap, qf, &p, keep, deadline_ns, done, user);
	pw_qfeed_unref(qf);
	pw_snapshot_unref(snap);
	return rc;
}

static int r_push_async(void *ctx, const struct pw_push *p, int64_t deadline_ns, pw_done_fn done,
			void *user)
{
	return push_with(ctx, p, false, deadline_ns, done, user);
}

/* As for pushes: a blocking caller's body outlives the delivery. */
static int ingest_with(void *ctx, const struct pw_ingest *caller, bool blocking,
		       int64_t deadline_ns, pw_done_fn done, void *user)
{
	struct component_instance *inst = ctx;
	struct pw_snapshot *snap;
	struct pw_qfeed *qf;
	struct pw_ingest in;
	bool keep;
	int rc;

	if (!inst || !done || !ingest_take(caller, &in))
		return COMPONENT_EINVAL;
	keep = blocking || (in.flags & PW_INGEST_KEEP_UNTIL_DONE);
	snap = current_q(inst, &qf);
	rc = pw_sender_ingest(inst->sender, snap, qf, &in, keep, deadline_ns, done, user);
	pw_qfeed_unref(qf);
	pw_snapshot_unref(snap);
	return rc;
}

static int r_ingest_async(void *ctx, const struct pw_ingest *in, int64_t deadline_ns,
			  pw_done_fn done, void *user)
{
	return ingest_with(ctx, in, false, deadline_ns, done, user);
}

static int r_push(void *ctx, const struct pw_push *p, int64_t deadline_ns, struct pw_result *out)
{
	struct waiter w;

	if (!out)
		return COMPONENT_EINVAL;
	waiter_init(&w, out);
	return wait_for(&w, push_with(ctx, p, true, deadline_ns, waiter_done, &w));
}

static int r_ingest(void *ctx, const struct pw_ingest *in, int64_t deadline_ns,
		    struct pw_result *out)
{
	struct waiter w;

	if (!out)
		return COMPONENT_EINVAL;
	waiter_init(&w, out);
	return wait_for(&w, ingest_with(ctx, in, true, deadline_ns, waiter_done, &w));
}

static void r_free_result(struct pw_result *r)
{
	if (!r)
		return;
	free(r->error);
	r->error = NULL;
}

/* ---- lifecycle ---- */

static void set_health_locked(struct component_instance *inst, bool healthy, const char *msg)
{
	char *m = pw_strdup(msg ? msg : "");

	if (healthy != inst->healthy)
		inst->health_changed_ms = pwx_wall_ms();
	inst->healthy = healthy;
	if (m) {
		free(inst->health_msg);
		inst->health_msg = m;
	}
}

static void log_notices(struct component_instance *inst, const struct pw_config *cfg)
{
	for (size_t i = 0; i < cfg->nnotices; i++)
		pw_log(&inst->log, COMPONENT_LOG_INFO, cfg->notices[i], PW_LOG_END);
}

static void destroy(struct component_instance *inst)
{
	int64_t drain = 5000000000LL;

	if (!inst)
		return;
	if (inst->snap)
		drain = pw_snapshot_config(inst->snap)->shutdown_timeout_ns;
	/* No new records go out; those under way may still finish during the
	 * drain and be acknowledged before the queue closes. */
	pw_qfeed_stop(inst->qf);
	pw_sender_free(inst->sender, drain);
	pw_qfeed_close(inst->qf);
	pw_snapshot_unref(inst->snap);
	pw_metrics_free(inst->metrics);
	free(inst->health_msg);
	pthread_mutex_destroy(&inst->lock);
	pthread_mutex_destroy(&inst->update_lock);
	free(inst);
}

static int create(const struct component_host *host, const char *config,
		  struct component_instance **out, char **error)
{
	struct component_instance *inst = NULL;
	struct pw_sender_opts so = {0};
	struct pw_config *cfg = NULL;
	char *err = NULL, *ua = NULL;
	int rc;

	if (error)
		*error = NULL;
	if (out)
		*out = NULL;
	if (!host || !config || !out) {
		set_error(error, "create: host, config and out must not be NULL", NULL);
		return COMPONENT_EINVAL;
	}
	if (host->abi_major != COMPONENT_ABI_MAJOR || host->struct_size < HOST_MIN_SIZE) {
		if (error)
			*error = pw_asprintf(
				"host speaks component ABI %u.%u (host struct %u bytes); "
				"this plugin implements ABI %d.%d",
				host->abi_major, host->abi_minor, host->struct_size,
				COMPONENT_ABI_MAJOR, COMPONENT_ABI_MINOR);
		return COMPONENT_EVERSION;
	}
	/* Both are sent in headers (User-Agent, X-Alloy-Id) as they are. */
	if (!pw_header_value_ok(host->user_agent) || !pw_header_value_ok(host->instance_id)) {
		set_error(error,
			  !pw_header_value_ok(host->user_agent) ? "create: host user_agent"
								: "create: host instance_id",
			  " must not contain CR, LF or other control characters (it is sent in "
			  "a header)");
		return COMPONENT_EINVAL;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		set_error(error, "cannot initialise libcurl: ", curl_easy_strerror(curl_init_rc));
		return COMPONENT_EINTERNAL;
	}
	if (pw_config_parse(config, &cfg, &err) < 0) {
		set_error(error, "", err ? err : "invalid configuration");
		free(err);
		return COMPONENT_ECONFIG;
	}

	inst = calloc(1, sizeof(*inst));
	if (!inst)
		goto oom;
	pthread_mutex_init(&inst->lock, NULL);
	pthread_mutex_init(&inst->update_lock, NULL);
	inst->log.fn = host->log;
	inst->log.user = host->log_user;
	inst->log.level = host->log_level;
	inst->healthy = true;
	inst->health_changed_ms = pwx_wall_ms();
	inst->health_msg = pw_strdup("");
	inst->metrics = pw_metrics_new();
	if (!inst->metrics || !inst->health_msg)
		goto oom;

	if (host->user_agent && *host->user_agent)
		ua = pw_asprintf("%s pyroscope-write/%s", host->user_agent, PW_VERSION);
	else
		ua = pw_asprintf("pyroscope-write/%s", PW_VERSION);
	if (!ua)
		goto oom;
	so.log = inst->log;
	so.metrics = inst->metrics;
	so.user_agent = ua;
	so.instance_id = host->instance_id;
	inst->sender = pw_sender_new(&so, &err);
	free(ua);
	if (!inst->sender) {
		set_error(error, "", err);
		free(err);
		rc = COMPONENT_EINTERNAL;
		goto fail;
	}
	log_notices(inst, cfg);
	inst->snap = pw_snapshot_new(inst->sender, cfg, NULL, &err);
	cfg = NULL; /* owned by the snapshot now, even on failure */
	if (!inst->snap) {
		set_error(error, "", err);
		free(err);
		rc = COMPONENT_ECONFIG;
		goto fail;
	}
	if (pw_snapshot_config(inst->snap)->queue.set) {
		inst->qf = pw_qfeed_open(inst->sender, inst->snap, &err);
		if (!inst->qf) {
			set_error(error, "", err);
			free(err);
			rc = COMPONENT_ECONFIG;
			goto fail;
		}
	}
	pw_metrics_reload(inst->metrics, 1, (double)pwx_wall_ms() / 1000.0);

	inst->receiver.struct_size = sizeof(inst->receiver);
	inst->receiver.version = PW_RECEIVER_VERSION;
	inst->receiver.ctx = inst;
	inst->receiver.push = r_push;
	inst->receiver.push_async = r_push_async;
	inst->receiver.ingest = r_ingest;
	inst->receiver.ingest_async = r_ingest_async;
	inst->receiver.free_result = r_free_result;
	*out = inst;
	pw_log(&inst->log, COMPONENT_LOG_INFO, "component started", "version", PW_VERSION,
	       PW_LOG_END);
	return COMPONENT_OK;
oom:
	set_error(error, "out of memory", NULL);
	rc = COMPONENT_ENOMEM;
fail:
	pw_config_free(cfg);
	destroy(inst);
	return rc;
}

static void refuse_locked(struct component_instance *inst, const char *err)
{
	char *msg = pw_asprintf("invalid configuration, still running the last valid one: %s",
				err ? err : "unknown error");

	set_health_locked(inst, false, msg ? msg : err);
	free(msg);
}

/*
 * The queue that goes with a new snapshot: the same one when the directory
 * stays (its limits and endpoints follow the snapshot), a new one when the
 * directory changes or the block appears, none when it goes. The old one
 * is closed by the caller once the new pair is in place. -1 with *err
 * when the new directory cannot be opened: the update is refused then.
 */
static int queue_switch(struct component_instance *inst, struct pw_snapshot *snap,
			struct pw_qfeed **qf, char **err)
{
	const struct pw_queue_config *qc = &pw_snapshot_config(snap)->queue;
	struct pw_qfeed *cur = inst->qf; /* only update() changes it */

	*qf = NULL;
	if (!qc->set)
		return 0;
	if (cur && strcmp(pw_qfeed_directory(cur), qc->directory) == 0) {
		pw_qfeed_update(cur, snap);
		*qf = cur;
		return 0;
	}
	*qf = pw_qfeed_open(inst->sender, snap, err);
	return *qf ? 0 : -1;
}

static int update_serialised(struct component_instance *inst, const char *config, char **error)
{
	struct pw_config *cfg = NULL;
	struct pw_snapshot *snap = NULL, *old;
	struct pw_qfeed *qf = NULL, *old_qf;
	char *err = NULL, n[24];

	/* Parse, validate and build outside the instance lock: this may read
	 * files, and producers must never wait for it. */
	if (pw_config_parse(config, &cfg, &err) < 0)
		goto refused;
	old = current(inst);
	if (strcmp(pw_snapshot_config(old)->canonical, cfg->canonical) == 0) {
		/* Same document: nothing to rebuild, nothing to reconnect. */
		pw_snapshot_unref(old);
		pw_config_free(cfg);
		pthread_mutex_lock(&inst->lock);
		set_health_locked(inst, true, "");
		pthread_mutex_unlock(&inst->lock);
		pw_metrics_reload(inst->metrics, 1, (double)pwx_wall_ms() / 1000.0);
		pw_log(&inst->log, COMPONENT_LOG_INFO, "configuration unchanged", PW_LOG_END);
		return COMPONENT_OK;
	}
	log_notices(inst, cfg);
	snprintf(n, sizeof(n), "%zu", cfg->nendpoints);
	snap = pw_snapshot_new(inst->sender, cfg, old, &err);
	pw_snapshot_unref(old);
	if (!snap)
		goto refused;

	if (queue_switch(inst, snap, &qf, &err) < 0) {
		pw_snapshot_unref(snap);
		goto refused;
	}

	pthread_mutex_lock(&inst->lock);
	old = inst->snap;
	inst->snap = snap;
	old_qf = inst->qf;
	inst->qf = qf;
	set_health_locked(inst, true, "");
	pthread_mutex_unlock(&inst->lock);
	/* Deliveries under way hold their own references to the old snapshot. */
	pw_snapshot_unref(old);
	if (old_qf && old_qf != qf) {
		pw_log(&inst->log, COMPONENT_LOG_INFO,
		       qf ? "queue directory changed; the old one is left as it is on disk"
			  : "queue removed; its directory is left as it is on disk",
		       "directory", pw_qfeed_directory(old_qf), PW_LOG_END);
		pw_qfeed_close(old_qf);
	}
	pw_metrics_reload(inst->metrics, 1, (double)pwx_wall_ms() / 1000.0);
	pw_log(&inst->log, COMPONENT_LOG_INFO, "configuration reloaded", "endpoints", n,
	       PW_LOG_END);
	return COMPONENT_OK;

refused:
	pthread_mutex_lock(&inst->lock);
	refuse_locked(inst, err);
	pthread_mutex_unlock(&inst->lock);
	pw_metrics_reload(inst->metrics, 0, (double)pwx_wall_ms() / 1000.0);
	pw_log(&inst->log, COMPONENT_LOG_WARN, "configuration refused", "err", err, PW_LOG_END);
	if (error)
		*error = err;
	else
		free(err);
	return COMPONENT_ECONFIG;
}

static int update(struct component_instance *inst, const char *config, char **error)
{
	int rc;

	if (error)
		*error = NULL;
	if (!inst || !config) {
		set_error(error, "update: instance and config must not be NULL", NULL);
		return COMPONENT_EINVAL;
	}
	pthread_mutex_lock(&inst->update_lock);
	rc = update_serialised(inst, config, error);
	pthread_mutex_unlock(&inst->update_lock);
	return rc;
}

static int get_export(struct component_instance *inst, const char *name, const void **out)
{
	if (!inst || !name || !out)
		return COMPONENT_EINVAL;
	if (strcmp(name, PW_RECEIVER_EXPORT) != 0) {
		*out = NULL;
		return COMPONENT_ENOTFOUND;
	}
	*out = &inst->receiver;
	return COMPONENT_OK;
}

/* Writes only the fields that fit in the caller's struct_size. */
static int health(struct component_instance *inst, struct component_health *out)
{
	struct component_health h;
	uint32_t size;

	if (!inst || !out || out->struct_size < HEALTH_MIN_SIZE)
		return COMPONENT_EINVAL;
	size = out->struct_size;
	memset(&h, 0, sizeof(h));
	pthread_mutex_lock(&inst->lock);
	h.healthy = inst->healthy;
	snprintf(h.message, sizeof(h.message), "%s", inst->health_msg ? inst->health_msg : "");
	h.changed_unix_ms = inst->health_changed_ms;
	pthread_mutex_unlock(&inst->lock);
	h.struct_size = size;
	memcpy(out, &h, size < sizeof(h) ? size : sizeof(h));
	return COMPONENT_OK;
}

static int metrics(struct component_instance *inst, component_sink_fn sink, void *user)
{
	if (!inst || !sink)
		return COMPONENT_EINVAL;
	return pw_metrics_write(inst->metrics, sink, user);
}

static int debug_info(struct component_instance *inst, component_sink_fn sink, void *user)
{
	struct pw_snapshot *snap;
	struct pw_qfeed *qf;
	struct strbuf sb;
	char *cfg;
	int rc = COMPONENT_OK;

	if (!inst || !sink)
		return COMPONENT_EINVAL;
	strbuf_init(&sb, 0);
	snap = current_q(inst, &qf);
	cfg = pw_config_redacted_json(pw_snapshot_config(snap));
	pthread_mutex_lock(&inst->lock);
	strbuf_printf(&sb, "{\"healthy\":%s,\"endpoints\":", inst->healthy ? "true" : "false");
	pthread_mutex_unlock(&inst->lock);
	pw_snapshot_debug(snap, &sb);
	if (qf) {
		strbuf_puts(&sb, ",\"queue\":");
		pw_qfeed_debug(qf, &sb);
	}
	strbuf_printf(&sb, ",\"config\":%s}\n", cfg ? cfg : "null");
	pw_qfeed_unref(qf);
	pw_snapshot_unref(snap);
	free(cfg);
	if (sb.failed)
		rc = COMPONENT_ENOMEM;
	else if (sink(user, sb.data, sb.len) != 0)
		rc = COMPONENT_EINTERNAL;
	strbuf_free(&sb);
	return rc;
}

static void free_string(char *s)
{
	free(s);
}

static const char *status_text(int status)
{
	switch (status) {
	case COMPONENT_OK:
		return "success";
	case COMPONENT_EINVAL:
		return "invalid argument";
	case COMPONENT_ECONFIG:
		return "invalid configuration";
	case COMPONENT_ENOMEM:
		return "out of memory";
	case COMPONENT_ENOTFOUND:
		return "no such export";
	case COMPONENT_EVERSION:
		return "ABI version mismatch";
	case COMPONENT_EDELIVERY:
		return "delivery failed";
	case COMPONENT_ETIMEDOUT:
		return "deadline exceeded";
	case COMPONENT_ESHUTDOWN:
		return "component is shutting down";
	case COMPONENT_EOVERLOAD:
		return "resource limit reached";
	case COMPONENT_EINTERNAL:
		return "internal error";
	default:
		return "unknown status";
	}
}

static const struct component_descriptor descriptor = {
	.struct_size = sizeof(struct component_descriptor),
	.abi_major = COMPONENT_ABI_MAJOR,
	.abi_minor = COMPONENT_ABI_MINOR,
	.name = "pyroscope.write",
	.version = PW_VERSION,
	.create = create,
	.update = update,
	.get_export = get_export,
	.health = health,
	.metrics = metrics,
	.debug_info = debug_info,
	.destroy = destroy,
	.free_string = free_string,
	.strerror = status_text,
};

PW_EXPORT const struct component_descriptor *component_plugin_entry(void);

const struct component_descriptor *component_plugin_entry(void)
{
	return &descriptor;
}
