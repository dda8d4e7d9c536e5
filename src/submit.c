/*
 * submit.c - the producer side of the engine: checking and encoding a
 * profile once, reserving its bytes against max_inflight_bytes, and handing
 * the delivery to the I/O thread.
 *
 * Layer: engine, top, beside the I/O loop (sender.c), which it never calls.
 * Calls the handoff, the delivery object, endpoints, labels and proto. Runs
 * on the caller's thread; of struct pw_sender it uses only the parts set
 * up at creation, the handoff and the budget.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "submit.h"

#include "util/clock.h"
#include "engine.h"
#include "http.h"
#include "labels.h"
#include "proto.h"
#include "qfeed.h"
#include "qrec.h"

/* Counts a delivery that never reached the endpoints as dropped by each of
 * them, so no profile goes unaccounted. */
static void drop_everywhere(struct pw_snapshot *snap, uint64_t bytes, uint64_t profiles)
{
	for (size_t i = 0; i < snap->neps; i++)
		pw_metrics_dropped(snap->eps[i]->m, bytes, profiles);
}

/* One debug line per refused profile would let a client that sends many
 * bad ones write the log full: a few lines a second, then a count. */
static void log_refused(struct pw_sender *s, const char *err)
{
	uint64_t skipped = 0;
	char n[24];

	if (!pw_log_enabled(&s->log, COMPONENT_LOG_DEBUG) ||
	    !pw_lograte_allow(&s->refused_log, pwx_now_ns(), &skipped))
		return;
	snprintf(n, sizeof(n), "%" PRIu64, skipped);
	pw_log(&s->log, COMPONENT_LOG_DEBUG, "rejected profile", "err", err, "not_logged_before",
	       skipped ? n : NULL, PW_LOG_END);
}

/* A profile the server would refuse (its labels) or that cannot be sent
 * safely (an ingest request's header values): counted, never sent. */
static int refuse_profile(struct pw_sender *s, const char *path, const char *reason,
			  uint64_t profiles, char *err, int http_status, pw_done_fn done,
			  void *user)
{
	pw_metrics_rejected(s->metrics, path, reason, profiles);
	log_refused(s, err);
	pw_delivery_report(&(struct delivery){.done = done, .user = user}, COMPONENT_EINVAL,
			   err ? err : "invalid labels in profile", http_status);
	free(err);
	return COMPONENT_OK;
}

/* Over max_inflight_bytes: fail fast, and count the profile as dropped by
 * every endpoint so it is not lost silently. Frees d. */
static int refuse_overload(struct pw_sender *s, struct delivery *d, size_t len, int http_status)
{
	const struct pw_config *cfg = pw_snapshot_config(d->snap);
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

/* Holds d's bytes and writes its body: one encoded buffer, or, when the
 * caller keeps its samples alive and they are large, the encoding around
 * them. */
static enum pw_reserve build_push_body(struct delivery *d, const struct pw_labelset *ls,
				       const struct pw_push *p, bool keep, uint64_t data_bytes)
{
	bool stream = keep && data_bytes >= PW_STREAM_MIN_BYTES;
	size_t own = stream ? d->len - (size_t)data_bytes : d->len;
	enum pw_reserve r = pw_delivery_reserve(d, d->len, own);
	int rc;

	if (r != PW_RESERVE_OK)
		return r;
	if (stream)
		rc = pw_proto_push_segments(ls, p->samples, p->nsamples, d->payload, own, &d->segs,
					    &d->nsegs);
	else
		rc = pw_proto_push_write(ls, p->samples, p->nsamples, d->payload, d->len);
	return rc == 0 ? PW_RESERVE_OK : PW_RESERVE_NOMEM;
}

/* A tenant label with the reserved prefix is not forwarded on push, also
 * when external_labels set it: the encoded request is the same for every
 * endpoint, so this holds for all of them. */
static void drop_tenant_labels(const struct pw_snapshot *snap, struct pw_labelset *ls)
{
	for (size_t i = 0; i < snap->neps; i++) {
		const char *label = snap->eps[i]->cfg->tenant_label;

		if (label && !pw_label_forwarded(label))
			pw_labelset_remove(ls, label);
	}
}

/* Hands d to the I/O loop, or frees it when the engine is stopping. */
static int submit(struct pw_sender *s, struct delivery *d)
{
	int rc = pw_handoff_put(&s->in, d);

	if (rc != COMPONENT_OK)
		pw_delivery_free(d);
	return rc;
}

/* ---- queue mode: acknowledged once the profile is on disk ---- */

struct queued {
	pw_done_fn done;
	void *user;
	bool ingest;
};

static void queued_done(void *user, int status, const char *error)
{
	struct queued *w = user;
	struct pw_result r = {status, w->ingest ? (status == COMPONENT_OK ? 200 : 503) : 0,
			      (char *)error};

	w->done(w->user, &r);
	free(w);
}

/* The tenants the profile names must be valid for every endpoint with a
 * tenant_label, now: later, nobody could be told. NULL or malloc'd. */
static char *tenant_error(const struct pw_snapshot *snap, const struct pw_label *in, size_t n,
			  const struct pw_kvmap *external)
{
	for (size_t i = 0; i < snap->neps; i++) {
		const char *tenant;
		char *err = pw_profile_tenant(snap->eps[i]->cfg, in, n, external, &tenant);

		if (err)
			return err;
	}
	return NULL;
}

/*
 * Writes the record (its head, then the body's pieces, at most
 * PW_QFEED_MAX_IOV - 1 of them) to the queue. The callback fires once it is
 * durable. A profile the queue cannot take is refused at once and counted
 * as dropped by every endpoint, as an over-budget one is in memory mode.
 */
static int enqueue(struct pw_sender *s, struct pw_snapshot *snap, struct pw_qfeed *qf,
		   const struct pw_qrec *qr, const struct pw_seg *body, size_t nbody,
		   uint64_t nprofiles, pw_done_fn done, void *user)
{
	struct strbuf head = STRBUF_INIT;
	struct queued *w = malloc(sizeof(*w));
	/* A push of a few large samples fits on the stack: no allocation per
	 * profile. */
	struct iovec one[8], *iov = nbody < 8 ? one : calloc(nbody + 1, sizeof(*iov));
	char *err = NULL;
	int rc, n = 1;

	if (!w || !iov || pw_qrec_encode_head(&head, qr) < 0) {
		free(w);
		if (iov != one)
			free(iov);
		strbuf_free(&head);
		drop_everywhere(snap, qr->size, nprofiles);
		return COMPONENT_ENOMEM;
	}
	*w = (struct queued){done, user, qr->ingest};
	iov[0] = (struct iovec){head.data, head.len};
	for (size_t i = 0; i < nbody; i++)
		if (body[i].n)
			iov[n++] = (struct iovec){(void *)body[i].p, body[i].n};
	rc = pw_qfeed_append(qf, iov, n, (uint32_t)nprofiles, queued_done, w, &err);
	if (iov != one)
		free(iov);
	strbuf_free(&head);
	if (rc == COMPONENT_OK)
		return COMPONENT_OK;
	free(w);
	drop_everywhere(snap, qr->size, nprofiles);
	if (rc == COMPONENT_EOVERLOAD)
		for (size_t i = 0; i < snap->neps; i++)
			pw_metrics_queue_dropped(snap->eps[i]->m, PW_QDROP_FULL, nprofiles);
	pw_log(&s->log, COMPONENT_LOG_WARN, "profile dropped", "err", err, PW_LOG_END);
	pw_delivery_report(&(struct delivery){.done = done, .user = user}, rc,
			   err ? err : "queue: cannot take the profile",
			   qr->ingest ? (rc == COMPONENT_EOVERLOAD ? 429 : 503) : 0);
	free(err);
	return COMPONENT_OK;
}

static int queue_push(struct pw_sender *s, struct pw_snapshot *snap, struct pw_qfeed *qf,
		      const struct pw_push *p, struct pw_labelset *ls, uint64_t size,
		      pw_done_fn done, void *user)
{
	const struct pw_config *cfg = pw_snapshot_config(snap);
	struct pw_qrec qr = {.size = size,
			     .in = (struct pw_label *)p->labels,
			     .nin = p->nlabels,
			     .external = cfg->external_labels};
	char *err = tenant_error(snap, p->labels, p->nlabels, &cfg->external_labels);
	/* Large samples are written from the host's buffers, which stay valid
	 * for the call: only the encoding around them is built here. The
	 * pieces alternate, so 2 * nsamples + 1 of them, plus the head. */
	bool pieces = size >= PW_STREAM_MIN_BYTES && 2 * p->nsamples + 2 <= PW_QFEED_MAX_IOV;
	struct pw_seg one, *segs = &one;
	size_t len, own = 0, nsegs = 1;
	uint8_t *body = NULL;
	int rc = -1;

	if (err) {
		pw_labelset_free(ls);
		return refuse_profile(s, "push", "invalid_tenant", p->nsamples, err, 0, done, user);
	}
	drop_tenant_labels(snap, ls);
	if (pw_proto_push_size(ls, p->samples, p->nsamples, &len) == 0) {
		own = pieces ? len - (size_t)size : len;
		body = malloc(own ? own : 1);
	}
	if (body && pieces) {
		segs = NULL;
		rc = pw_proto_push_segments(ls, p->samples, p->nsamples, body, own, &segs, &nsegs);
	} else if (body) {
		one = (struct pw_seg){body, len};
		rc = pw_proto_push_write(ls, p->samples, p->nsamples, body, len);
	}
	pw_labelset_free(ls);
	if (rc < 0) {
		if (segs != &one)
			free(segs);
		free(body);
		drop_everywhere(snap, size, p->nsamples);
		return COMPONENT_ENOMEM;
	}
	rc = enqueue(s, snap, qf, &qr, segs, nsegs, p->nsamples, done, user);
	if (segs != &one)
		free(segs);
	free(body);
	return rc;
}

int pw_sender_push(struct pw_sender *s, struct pw_snapshot *snap, struct pw_qfeed *qf,
		   const struct pw_push *p, bool keep, int64_t deadline_ns, pw_done_fn done,
		   void *user)
{
	const struct pw_config *cfg = pw_snapshot_config(snap);
	struct pw_labelset ls = {0};
	struct delivery *d = NULL;
	char *err = NULL;
	uint64_t size = 0;

	for (size_t i = 0; i < p->nsamples; i++)
		size += p->samples[i].len;
	if (pw_labels_push(p->labels, p->nlabels, &cfg->external_labels, &ls, &err) < 0)
		return refuse_profile(s, "push", "invalid_labels", p->nsamples, err, 0, done, user);
	/* Queue mode; with no endpoint, nothing would ever read the record. */
	if (qf && snap->neps > 0)
		return queue_push(s, snap, qf, p, &ls, size, done, user);
	d = pw_delivery_new(&s->budget, snap, false, deadline_ns, done, user);
	if (!d)
		goto oom;
	err = pw_delivery_set_tenants(d, p->labels, p->nlabels, &cfg->external_labels);
	if (err) {
		pw_delivery_free(d);
		pw_labelset_free(&ls);
		return refuse_profile(s, "push", "invalid_tenant", p->nsamples, err, 0, done, user);
	}
	drop_tenant_labels(snap, &ls);
	d->size = size;
	d->nprofiles = p->nsamples;
	if (snap->neps > 0) {
		if (pw_proto_push_size(&ls, p->samples, p->nsamples, &d->len) < 0)
			goto oom;
		switch (build_push_body(d, &ls, p, keep, size)) {
		case PW_RESERVE_OK:
			break;
		case PW_RESERVE_OVER:
			pw_labelset_free(&ls);
			return refuse_overload(s, d, d->len, 0);
		default:
			goto oom; /* pw_delivery_free() gives back what was held */
		}
	}
	pw_labelset_free(&ls);
	return submit(s, d);
oom:
	pw_labelset_free(&ls);
	pw_delivery_free(d);
	drop_everywhere(snap, size, p->nsamples);
	return COMPONENT_ENOMEM;
}

/*
 * The strings of an ingest request that end up in the downstream request
 * as they are. The content types become header values: a CR or LF in one
 * would add a header of the client's choosing (a second X-Scope-OrgID, a
 * tenant of its choosing). The path is escaped into the URL, but no valid
 * request target holds a control byte. NULL, or a malloc'd error.
 */
static char *ingest_request_error(const struct pw_ingest *in)
{
	for (const unsigned char *p = (const unsigned char *)in->path_query; *p; p++)
		if (*p < 0x20 || *p == 0x7F)
			return pw_strdup("ingest path_query: must not contain control characters");
	for (size_t i = 0; i < in->ncontent_types; i++)
		if (!pw_header_value_ok(in->content_types[i]))
			return pw_asprintf("ingest content_types[%zu]: a header value must not "
					   "contain CR, LF or other control characters",
					   i);
	return NULL;
}

/* Queue mode: everything an endpoint needs later is checked now (the
 * tenants, each endpoint's URL), then the request goes to disk. */
static int queue_ingest(struct pw_sender *s, struct pw_snapshot *snap, struct pw_qfeed *qf,
			const struct pw_ingest *in, struct pw_labelset *ls, pw_done_fn done,
			void *user)
{
	const struct pw_config *cfg = pw_snapshot_config(snap);
	struct pw_qrec qr = {.ingest = true,
			     .size = in->body_len,
			     .in = (struct pw_label *)in->labels,
			     .nin = in->nlabels,
			     .external = cfg->external_labels,
			     .ls = *ls,
			     .path_query = (char *)in->path_query,
			     .ctypes = (char **)in->content_types,
			     .nctypes = in->ncontent_types};
	char *err = tenant_error(snap, in->labels, in->nlabels, &cfg->external_labels);
	int rc;

	if (err) {
		pw_labelset_free(ls);
		return refuse_profile(s, "ingest", "invalid_tenant", 1, err, 400, done, user);
	}
	for (size_t i = 0; i < snap->neps; i++) {
		char *url = pw_ingest_url_for(snap->eps[i]->cfg, in->path_query, ls, &err);

		if (!url) {
			pw_labelset_free(ls);
			pw_metrics_rejected(s->metrics, "ingest", "invalid_request", 1);
			pw_delivery_report(&(struct delivery){.done = done, .user = user},
					   COMPONENT_EINVAL, err ? err : "invalid ingest request",
					   400);
			free(err);
			return COMPONENT_OK;
		}
		free(url);
	}
	rc = enqueue(s, snap, qf, &qr, &(struct pw_seg){in->body, in->body_len}, 1, 1, done, user);
	pw_labelset_free(ls);
	return rc;
}

int pw_sender_ingest(struct pw_sender *s, struct pw_snapshot *snap, struct pw_qfeed *qf,
		     const struct pw_ingest *in, bool keep, int64_t deadline_ns, pw_done_fn done,
		     void *user)
{
	const struct pw_config *cfg = pw_snapshot_config(snap);
	struct pw_labelset ls = {0};
	struct delivery *d = NULL;
	char *err = NULL;

	err = ingest_request_error(in);
	if (err)
		return refuse_profile(s, "ingest", "invalid_request", 1, err, 400, done, user);
	if (pw_labels_ingest(in->labels, in->nlabels, &cfg->external_labels, &ls, &err) < 0)
		return refuse_profile(s, "ingest", "invalid_labels", 1, err, 400, done, user);
	if (qf && snap->neps > 0)
		return queue_ingest(s, snap, qf, in, &ls, done, user);
	d = pw_delivery_new(&s->budget, snap, true, deadline_ns, done, user);
	if (!d)
		goto oom;
	d->size = in->body_len;
	d->nprofiles = 1;
	err = pw_delivery_set_tenants(d, in->labels, in->nlabels, &cfg->external_labels);
	if (err) {
		pw_delivery_free(d);
		pw_labelset_free(&ls);
		return refuse_profile(s, "ingest", "invalid_tenant", 1, err, 400, done, user);
	}
	for (size_t i = 0; i < snap->neps; i++) {
		struct task *t = &d->tasks[i];

		t->url = pw_ingest_url_for(snap->eps[i]->cfg, in->path_query, &ls, &err);
		if (!t->url) {
			/* A request that cannot be built is a bad request from the
			 * SDK, not an endpoint failure. */
			pw_metrics_rejected(s->metrics, "ingest", "invalid_request", 1);
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
		/* A large body the caller keeps alive is sent from its memory;
		 * anything else is copied once, shared read-only by every
		 * endpoint. The bytes count against the budget either way. */
		bool stream = keep && in->body_len >= PW_STREAM_MIN_BYTES;

		switch (pw_delivery_reserve(d, in->body_len, stream ? 0 : in->body_len)) {
		case PW_RESERVE_OK:
			break;
		case PW_RESERVE_OVER:
			return refuse_overload(s, d, in->body_len, 429);
		default:
			goto oom;
		}
		if (stream) {
			d->segs = malloc(sizeof(*d->segs));
			if (!d->segs)
				goto oom;
			d->segs[0] = (struct pw_seg){in->body, in->body_len};
			d->nsegs = 1;
		} else {
			memcpy(d->payload, in->body, in->body_len);
		}
		d->len = in->body_len;
	}
	return submit(s, d);
oom:
	pw_labelset_free(&ls);
	pw_delivery_free(d);
	drop_everywhere(snap, in->body_len, 1);
	return COMPONENT_ENOMEM;
}
