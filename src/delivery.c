/*
 * delivery.c - the delivery object and the byte budget it is reserved
 * against. Layer: engine, bottom (with endpoint.c); calls endpoints
 * (snapshot references), the clock, the buffer cache and http.c's header
 * helpers, never the producer side or the I/O loop.
 */
#include "delivery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "http.h"
#include "labels.h"
#include "util/tenant.h"

void pw_budget_init(struct pw_budget *b)
{
	atomic_init(&b->inflight_bytes, 0);
	pw_bufcache_init(&b->bufs);
}

void pw_budget_destroy(struct pw_budget *b)
{
	pw_bufcache_destroy(&b->bufs);
}

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

enum pw_reserve pw_delivery_reserve(struct delivery *d, size_t bytes, size_t buf_len)
{
	const struct pw_config *cfg = pw_snapshot_config(d->snap);
	int64_t cap =
		cfg->max_inflight_bytes > 0 ? cfg->max_inflight_bytes : DEFAULT_MAX_INFLIGHT_BYTES;
	int64_t n = (int64_t)bytes;

	if (atomic_fetch_add(&d->budget->inflight_bytes, n) + n > cap) {
		atomic_fetch_sub(&d->budget->inflight_bytes, n);
		return PW_RESERVE_OVER;
	}
	d->payload = pw_bufcache_get(&d->budget->bufs, buf_len, &d->cap);
	if (!d->payload) {
		atomic_fetch_sub(&d->budget->inflight_bytes, n);
		return PW_RESERVE_NOMEM;
	}
	d->reserved = bytes;
	return PW_RESERVE_OK;
}

void pw_delivery_release(struct delivery *d)
{
	if (!d->payload)
		return;
	atomic_fetch_sub(&d->budget->inflight_bytes, (int64_t)d->reserved);
	pw_bufcache_put(&d->budget->bufs, d->payload, d->cap);
	d->payload = NULL;
	d->reserved = 0;
}

static void task_init(struct delivery *d, struct task *t, struct pw_endpoint *ep)
{
	const struct pw_endpoint_config *c = ep->cfg;

	t->kind = XFER_TASK;
	t->d = d;
	t->ep = ep;
	t->url = ep->push_url;
	strbuf_init(&t->body, RESPONSE_BODY_CAP);
	/* A queued profile is retried until it expires, not a number of times. */
	pw_backoff_init(&t->bo, c->min_backoff_ns, c->max_backoff_ns,
			d->durable ? 0 : c->max_backoff_retries);
}

static struct delivery *delivery_alloc(struct pw_budget *b, struct pw_snapshot *snap, size_t ntasks,
				       bool ingest, pw_done_fn done, void *user)
{
	struct delivery *d = calloc(1, sizeof(*d) + ntasks * sizeof(struct task));

	if (!d)
		return NULL;
	d->budget = b;
	d->ingest = ingest;
	pw_snapshot_ref(snap);
	d->snap = snap;
	d->start_ns = pwx_now_ns();
	d->done = done;
	d->user = user;
	d->ntasks = ntasks;
	d->remaining = ntasks;
	strbuf_init(&d->errors, 1 << 20);
	return d;
}

struct delivery *pw_delivery_new(struct pw_budget *b, struct pw_snapshot *snap, bool ingest,
				 int64_t deadline_ns, pw_done_fn done, void *user)
{
	struct delivery *d = delivery_alloc(b, snap, snap->neps, ingest, done, user);

	if (!d)
		return NULL;
	d->deadline_ns = deadline_ns;
	for (size_t i = 0; i < snap->neps; i++)
		task_init(d, &d->tasks[i], snap->eps[i]);
	return d;
}

struct delivery *pw_delivery_new_durable(struct pw_budget *b, struct pw_snapshot *snap,
					 size_t ep_index, bool ingest, int64_t expire_ms,
					 pw_done_fn done, void *user)
{
	struct delivery *d = delivery_alloc(b, snap, 1, ingest, done, user);

	if (!d)
		return NULL;
	d->durable = true;
	d->expire_ms = expire_ms;
	task_init(d, &d->tasks[0], snap->eps[ep_index]);
	return d;
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
	if (d->owned)
		pw_bufcache_put(&d->budget->bufs, d->owned, d->owned_cap);
	pw_delivery_release(d);
	strbuf_free(&d->errors);
	pw_snapshot_unref(d->snap);
	free(d);
}

/*
 * Gives each task whose endpoint has a tenant_label the tenant its profile
 * names. A profile without the label keeps the endpoint's configured
 * X-Scope-OrgID. Returns NULL, or a malloc'd error when a tenant is not
 * one Pyroscope would accept: nothing is sent then.
 */
char *pw_profile_tenant(const struct pw_endpoint_config *c, const struct pw_label *in, size_t n,
			const struct pw_kvmap *external, const char **tenant)
{
	const char *why;

	*tenant = NULL;
	if (!c->tenant_label)
		return NULL;
	*tenant = pw_labels_lookup(in, n, external, c->tenant_label);
	why = *tenant ? pwx_tenant_error(*tenant) : NULL;
	if (why)
		return pw_asprintf("invalid tenant in profile: label %s=\"%.160s\": %s",
				   c->tenant_label, *tenant, why);
	return NULL;
}

char *pw_delivery_set_tenants(struct delivery *d, const struct pw_label *in, size_t n,
			      const struct pw_kvmap *external)
{
	for (size_t i = 0; i < d->ntasks; i++) {
		const char *tenant;
		char *err = pw_profile_tenant(d->tasks[i].ep->cfg, in, n, external, &tenant);

		if (err)
			return err;
		if (tenant)
			pw_task_set_tenant(&d->tasks[i], tenant);
	}
	return NULL;
}

/* The URL an ingest request goes to on endpoint c. The rewritten name
 * leaves out a tenant label with the reserved prefix, as push does. */
char *pw_ingest_url_for(const struct pw_endpoint_config *c, const char *path_query,
			const struct pw_labelset *ls, char **err)
{
	struct pw_labelset view = {0};
	char *url;

	if (!c->tenant_label || pw_label_forwarded(c->tenant_label))
		return pw_ingest_url(c->url, path_query, ls, err);
	/* A view of ls without the label: borrowed strings, own array. */
	view.items = calloc(ls->n ? ls->n : 1, sizeof(*view.items));
	if (!view.items) {
		*err = pw_strdup("out of memory");
		return NULL;
	}
	for (size_t i = 0; i < ls->n; i++)
		if (strcmp(ls->items[i].key, c->tenant_label) != 0)
			view.items[view.n++] = ls->items[i];
	url = pw_ingest_url(c->url, path_query, &view, err);
	free(view.items);
	return url;
}

#define TENANT_PREFIX "X-Scope-OrgID: "

void pw_task_set_tenant(struct task *t, const char *tenant)
{
	snprintf(t->tenant_line, sizeof(t->tenant_line), TENANT_PREFIX "%s", tenant);
}

const char *pw_task_tenant(const struct task *t)
{
	return t->tenant_line[0] ? t->tenant_line + sizeof(TENANT_PREFIX) - 1 : "";
}

void pw_delivery_report(struct delivery *d, int status, const char *error, int http_status)
{
	struct pw_result r = {status, http_status, (char *)error};

	d->done(d->user, &r);
}
