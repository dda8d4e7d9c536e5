/*
 * submit.c - the producer side of the engine: checking and encoding a
 * profile once, reserving its bytes against max_inflight_bytes, and handing
 * the delivery to the I/O thread.
 */
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "http.h"
#include "proto.h"

/* Samples at least this large are sent from the caller's memory when it
 * keeps them alive; smaller ones are cheaper to copy (libcurl then sends
 * them with the headers in one write). */
#define STREAM_MIN_BYTES (64 * 1024)

void pw_task_reset_response(struct task *t)
{
	strbuf_reset(&t->body);
	t->retry_after[0] = '\0';
	t->errbuf[0] = '\0';
}

void pw_task_free_headers(struct task *t)
{
	struct curl_slist *own = t->hdrs_own;

	t->hdrs = NULL;
	t->hdrs_own = NULL;
	if (!own)
		return;
	/* Cut the list where the shared tail starts, then free our part. */
	for (struct curl_slist *h = own; h; h = h->next) {
		if (h->next == t->hdrs_shared) {
			h->next = NULL;
			break;
		}
	}
	pw_slist_free_wipe(own);
}

void pw_delivery_release_bytes(struct delivery *d)
{
	if (d->payload) {
		atomic_fetch_sub(&d->s->inflight_bytes, (int64_t)d->len);
		pw_bufcache_put(&d->s->bufs, d->payload, d->cap);
		d->payload = NULL;
	} else if (d->borrowed) {
		atomic_fetch_sub(&d->s->inflight_bytes, (int64_t)d->len);
		d->borrowed = false;
	}
}

void pw_delivery_free(struct delivery *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->ntasks; i++) {
		struct task *t = &d->tasks[i];

		pw_task_reset_response(t);
		strbuf_free(&t->body);
		free(t->last_err);
		if (t->url_owned)
			free(t->url);
		pw_task_free_headers(t);
	}
	for (size_t i = 0; i < d->nctypes; i++)
		free(d->ctypes[i]);
	free(d->ctypes);
	free(d->segs);
	pw_delivery_release_bytes(d);
	strbuf_free(&d->errors);
	pw_snapshot_unref(d->snap);
	free(d);
}

static struct delivery *delivery_new(struct pw_sender *s, struct pw_snapshot *snap, bool ingest,
				     int64_t deadline_ns, pw_done_fn done, void *user)
{
	struct delivery *d = calloc(1, sizeof(*d) + snap->neps * sizeof(struct task));

	if (!d)
		return NULL;
	d->s = s;
	d->ingest = ingest;
	pw_snapshot_ref(snap);
	d->snap = snap;
	d->deadline_ns = deadline_ns;
	d->start_ns = pw_now_ns();
	d->done = done;
	d->user = user;
	d->ntasks = snap->neps;
	d->remaining = snap->neps;
	strbuf_init(&d->errors, 1 << 20);
	for (size_t i = 0; i < snap->neps; i++) {
		struct task *t = &d->tasks[i];
		const struct pw_endpoint_config *c = snap->eps[i]->cfg;

		t->kind = XFER_TASK;
		t->d = d;
		t->ep = snap->eps[i];
		t->url = t->ep->push_url;
		strbuf_init(&t->body, RESPONSE_BODY_CAP);
		pw_backoff_init(&t->bo, c->min_backoff_ns, c->max_backoff_ns,
				c->max_backoff_retries);
	}
	return d;
}

void pw_delivery_report(struct delivery *d, int status, const char *error, int http_status)
{
	struct pw_result r = {status, http_status, (char *)error};

	d->done(d->user, &r);
}

/* Queues a delivery for the I/O thread, or fails it with ESHUTDOWN. */
static int submit(struct pw_sender *s, struct delivery *d)
{
	bool wake;

	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->lock);
		return COMPONENT_ESHUTDOWN;
	}
	d->next = NULL;
	/* One wakeup covers the whole incoming list, since the loop takes it
	 * at once: later deliveries ride on it instead of costing a syscall
	 * each. Nor is a wakeup needed while every endpoint of the delivery
	 * already runs as many requests as it may: the delivery could only
	 * queue, and the end of one of those requests runs the loop, which
	 * takes the list then. The loop checks the list under this lock after
	 * publishing `full` and before it sleeps, so a delivery it misses here
	 * sees `full` as it is. */
	wake = false;
	if (!s->incoming_woken) {
		wake = d->ntasks == 0;
		for (size_t i = 0; i < d->ntasks && !wake; i++)
			wake = !atomic_load(&d->tasks[i].ep->full);
		s->incoming_woken = wake;
	}
	if (s->incoming_tail)
		s->incoming_tail->next = d;
	else
		s->incoming_head = d;
	s->incoming_tail = d;
	pthread_mutex_unlock(&s->lock);
	if (wake)
		pw_sender_wake(s);
	return COMPONENT_OK;
}

/* Counts a delivery that never reached the endpoints as dropped by each of
 * them, so no profile goes unaccounted. */
static void drop_everywhere(struct pw_snapshot *snap, uint64_t bytes, uint64_t profiles)
{
	for (size_t i = 0; i < snap->neps; i++)
		pw_metrics_dropped(snap->eps[i]->m, bytes, profiles);
}

static bool reserve_bytes(struct pw_sender *s, const struct pw_config *cfg, size_t len)
{
	int64_t cap = cfg->max_inflight_bytes > 0 ? cfg->max_inflight_bytes : (256LL << 20);
	int64_t now = atomic_fetch_add(&s->inflight_bytes, (int64_t)len) + (int64_t)len;

	if (now > cap) {
		atomic_fetch_sub(&s->inflight_bytes, (int64_t)len);
		return false;
	}
	return true;
}

/* A profile whose labels the server would refuse: counted, never sent. */
static int refuse_labels(struct pw_sender *s, const char *path, uint64_t profiles, char *err,
			 int http_status, pw_done_fn done, void *user)
{
	pw_metrics_rejected(s->metrics, path, profiles);
	pw_log(&s->log, COMPONENT_LOG_DEBUG, "rejected profile", "err", err, PW_LOG_END);
	pw_delivery_report(&(struct delivery){.done = done, .user = user}, COMPONENT_EINVAL,
			   err ? err : "invalid labels in profile", http_status);
	free(err);
	return COMPONENT_OK;
}

/* Over max_inflight_bytes: fail fast, and count the profile as dropped by
 * every endpoint so it is not lost silently. Frees d. */
static int refuse_overload(struct pw_sender *s, struct delivery *d, size_t len, int http_status)
{
	const struct pw_config *cfg = d->snap->cref->cfg;
	char *err = pw_asprintf("profile dropped: %zu bytes would exceed max_inflight_bytes "
				"(%lld) held in flight",
				len, (long long)cfg->max_inflight_bytes);

	drop_everywhere(d->snap, d->size, d->nprofiles);
	pw_log(&s->log, COMPONENT_LOG_WARN, "profile dropped", "err", err, PW_LOG_END);
	pw_delivery_report(d, COMPONENT_EOVERLOAD, err ? err : "overloaded", http_status);
	free(err);
	pw_delivery_free(d);
	return COMPONENT_OK;
}

/* Builds d's body: one encoded buffer, or, when the caller keeps its
 * samples alive and they are large, the encoding around them. */
static int build_push_body(struct pw_sender *s, struct delivery *d, const struct pw_labelset *ls,
			   const struct pw_push *p, bool keep, uint64_t data_bytes)
{
	size_t own;

	if (!keep || data_bytes < STREAM_MIN_BYTES) {
		d->payload = pw_bufcache_get(&s->bufs, d->len, &d->cap);
		return d->payload && pw_proto_push_write(ls, p->samples, p->nsamples, d->payload,
							 d->len) == 0
			       ? 0
			       : -1;
	}
	own = d->len - (size_t)data_bytes;
	d->payload = pw_bufcache_get(&s->bufs, own, &d->cap);
	if (!d->payload)
		return -1;
	return pw_proto_push_segments(ls, p->samples, p->nsamples, d->payload, own, &d->segs,
				      &d->nsegs);
}

int pw_sender_push(struct pw_sender *s, struct pw_snapshot *snap, const struct pw_push *p,
		   bool keep, int64_t deadline_ns, pw_done_fn done, void *user)
{
	const struct pw_config *cfg = snap->cref->cfg;
	struct pw_labelset ls = {0};
	struct delivery *d = NULL;
	char *err = NULL;
	uint64_t size = 0;
	int rc;

	for (size_t i = 0; i < p->nsamples; i++)
		size += p->samples[i].len;
	if (pw_labels_push(p->labels, p->nlabels, &cfg->external_labels, &ls, &err) < 0)
		return refuse_labels(s, "push", p->nsamples, err, 0, done, user);
	d = delivery_new(s, snap, false, deadline_ns, done, user);
	if (!d)
		goto oom;
	d->size = size;
	d->nprofiles = p->nsamples;
	if (snap->neps > 0) {
		if (pw_proto_push_size(&ls, p->samples, p->nsamples, &d->len) < 0)
			goto oom;
		if (!reserve_bytes(s, cfg, d->len)) {
			pw_labelset_free(&ls);
			return refuse_overload(s, d, d->len, 0);
		}
		if (build_push_body(s, d, &ls, p, keep, size) < 0)
			goto oom_reserved;
	}
	pw_labelset_free(&ls);
	rc = submit(s, d);
	if (rc != COMPONENT_OK)
		pw_delivery_free(d);
	return rc;
oom_reserved:
	/* pw_delivery_free() gives the reserved bytes back with the buffer. */
	if (!d->payload)
		atomic_fetch_sub(&s->inflight_bytes, (int64_t)d->len);
oom:
	pw_labelset_free(&ls);
	pw_delivery_free(d);
	drop_everywhere(snap, size, p->nsamples);
	return COMPONENT_ENOMEM;
}

/* The ingest body, sent from the caller's memory when it keeps it alive and
 * it is large, else copied once. The bytes are reserved already. */
static int ingest_body(struct pw_sender *s, struct delivery *d, const struct pw_ingest *in,
		       bool keep)
{
	d->len = in->body_len;
	if (keep && in->body_len >= STREAM_MIN_BYTES) {
		d->segs = malloc(sizeof(*d->segs));
		if (!d->segs)
			return -1;
		d->segs[0] = (struct pw_seg){in->body, in->body_len};
		d->nsegs = 1;
		d->borrowed = true;
		return 0;
	}
	/* One copy, shared read-only by every endpoint. */
	d->payload = pw_bufcache_get(&s->bufs, in->body_len, &d->cap);
	if (!d->payload)
		return -1;
	memcpy(d->payload, in->body, in->body_len);
	return 0;
}

int pw_sender_ingest(struct pw_sender *s, struct pw_snapshot *snap, const struct pw_ingest *in,
		     bool keep, int64_t deadline_ns, pw_done_fn done, void *user)
{
	const struct pw_config *cfg = snap->cref->cfg;
	struct pw_labelset ls = {0};
	struct delivery *d = NULL;
	char *err = NULL;
	int rc;

	if (pw_labels_ingest(in->labels, in->nlabels, &cfg->external_labels, &ls, &err) < 0)
		return refuse_labels(s, "ingest", 1, err, 400, done, user);
	d = delivery_new(s, snap, true, deadline_ns, done, user);
	if (!d)
		goto oom;
	d->size = in->body_len;
	d->nprofiles = 1;
	for (size_t i = 0; i < snap->neps; i++) {
		struct task *t = &d->tasks[i];

		t->url = pw_ingest_url(snap->eps[i]->cfg->url, in->path_query, &ls, &err);
		if (!t->url) {
			/* A request that cannot be built is a bad request from the
			 * SDK, not an endpoint failure. */
			pw_metrics_rejected(s->metrics, "ingest", 1);
			pw_delivery_report(d, COMPONENT_EINVAL,
					   err ? err : "invalid ingest request", 400);
			free(err);
			pw_delivery_free(d);
			pw_labelset_free(&ls);
			return COMPONENT_OK;
		}
		t->url_owned = true;
	}
	pw_labelset_free(&ls);
	if (in->ncontent_types) {
		d->ctypes = calloc(in->ncontent_types, sizeof(char *));
		if (!d->ctypes)
			goto oom;
		for (size_t i = 0; i < in->ncontent_types; i++) {
			d->ctypes[i] = pw_strdup(in->content_types[i] ? in->content_types[i] : "");
			if (!d->ctypes[i])
				goto oom;
			d->nctypes++;
		}
	}
	if (snap->neps > 0 && in->body_len > 0) {
		if (!reserve_bytes(s, cfg, in->body_len))
			return refuse_overload(s, d, in->body_len, 429);
		if (ingest_body(s, d, in, keep) < 0) {
			atomic_fetch_sub(&s->inflight_bytes, (int64_t)in->body_len);
			goto oom;
		}
	}
	rc = submit(s, d);
	if (rc != COMPONENT_OK)
		pw_delivery_free(d);
	return rc;
oom:
	pw_labelset_free(&ls);
	pw_delivery_free(d);
	drop_everywhere(snap, in->body_len, 1);
	return COMPONENT_ENOMEM;
}
