/*
 * endpoint.c - endpoints and snapshots: the runtime view of a validated
 * configuration. Layer: engine, bottom; calls only auth, http, metrics,
 * climit and config. What it needs from the engine comes as arguments. An endpoint holds what one configured endpoint needs for
 * every attempt (its request URL, the static part of its headers, its
 * credentials and metric series); a snapshot is the list of endpoints a
 * delivery runs against. Both are reference-counted and immutable once
 * published, except for the fields the header marks as I/O-thread-only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "endpoint.h"
#include "http.h"
#include "strbuf.h"
#include "util/jsonstr.h"

static void cfgref_unref(struct pw_cfgref *c)
{
	if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
		pw_config_free(c->cfg);
		free(c);
	}
}

/* ---- endpoints ---- */

void pw_endpoint_ref(struct pw_endpoint *ep)
{
	atomic_fetch_add(&ep->refs, 1);
}

void pw_endpoint_unref(struct pw_endpoint *ep)
{
	if (!ep || atomic_fetch_sub(&ep->refs, 1) != 1)
		return;
	for (int i = 0; i < ep->neasy; i++)
		curl_easy_cleanup(ep->easy_pool[i]);
	pw_auth_free(ep->auth);
	pw_slist_free_wipe(ep->push_hdrs);
	pw_slist_free_wipe(ep->ingest_hdrs);
	pw_slist_free_wipe(ep->push_hdrs_tenant);
	pw_slist_free_wipe(ep->ingest_hdrs_tenant);
	free(ep->push_url);
	free(ep->last_error);
	pthread_mutex_destroy(&ep->dbg_lock);
	cfgref_unref(ep->cref);
	free(ep);
}

static bool name_is(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

/* Names the Connect client sets itself on a push; a value in `headers` is
 * replaced, as the reference client does. */
static bool push_reserved(const char *name)
{
	static const char *const names[] = {
		"Content-Type",	      "Connect-Protocol-Version", "Accept-Encoding",
		"Connect-Timeout-Ms", "Content-Length",		  "Expect",
		"Transfer-Encoding",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (name_is(name, names[i]))
			return true;
	return false;
}

/* The header lists of every request of ep. With `tenant`, a configured
 * X-Scope-OrgID is left out: the request carries the profile's own. */
static int build_static_headers(const struct pw_identity *id, struct pw_endpoint *ep, bool ingest,
				bool tenant, struct curl_slist **out)
{
	const struct pw_endpoint_config *c = ep->cfg;
	struct curl_slist *l = NULL, *n;
	bool oauth = c->oauth2.set;
	bool have_ua = false;
	bool own_id = id->instance_id && *id->instance_id;

#define ADD(name, value)                                                                           \
	do {                                                                                       \
		n = pw_slist_add(l, (name), (value));                                              \
		if (!n)                                                                            \
			goto fail;                                                                 \
		l = n;                                                                             \
	} while (0)

	for (size_t i = 0; i < c->headers.n; i++) {
		const char *k = c->headers.items[i].key;

		if (!ingest && push_reserved(k))
			continue;
		if (ingest && (name_is(k, "Content-Type") || name_is(k, "Content-Length") ||
			       name_is(k, "Expect") || name_is(k, "Transfer-Encoding")))
			continue;
		if (oauth && name_is(k, "Authorization"))
			continue;
		if (own_id && name_is(k, "X-Alloy-Id"))
			continue;
		if (tenant && name_is(k, "X-Scope-OrgID"))
			continue;
		if (name_is(k, "User-Agent"))
			have_ua = true;
		ADD(k, c->headers.items[i].value);
	}
	for (size_t i = 0; i < c->http_headers.n; i++) {
		const struct pw_kvlist *h = &c->http_headers.items[i];

		if (tenant && name_is(h->key, "X-Scope-OrgID"))
			continue;
		for (size_t j = 0; j < h->nvalues; j++)
			ADD(h->key, h->values[j]);
	}
	if (!ingest) {
		ADD("Content-Type", "application/proto");
		ADD("Connect-Protocol-Version", "1");
	}
	if (!have_ua)
		ADD("User-Agent", id->user_agent);
	if (own_id)
		ADD("X-Alloy-Id", id->instance_id);
#undef ADD
	/* No 100-continue round trip: Pyroscope reads the body anyway. A
	 * header without a value tells libcurl to leave it out. */
	n = curl_slist_append(l, "Expect:");
	if (!n)
		goto fail;
	l = n;
	*out = l;
	return 0;
fail:
	pw_slist_free_wipe(l);
	return -1;
}

static struct pw_endpoint *endpoint_new(const struct pw_identity *id, struct pw_cfgref *cref,
					size_t idx, char **err)
{
	struct pw_endpoint *ep = calloc(1, sizeof(*ep));
	const struct pw_endpoint_config *c = &cref->cfg->endpoints[idx];
	size_t ulen;

	if (!ep)
		goto oom;
	atomic_init(&ep->refs, 1);
	pthread_mutex_init(&ep->dbg_lock, NULL);
	atomic_fetch_add(&cref->refs, 1);
	ep->cref = cref;
	ep->cfg = c;
	ep->token.kind = XFER_TOKEN;
	ep->token.ep = ep;
	ep->max_running =
		c->max_connections > 0 ? (int)c->max_connections : DEFAULT_MAX_CONNECTIONS;
	pw_climit_init(&ep->climit, ep->max_running);
	atomic_init(&ep->limit_now, pw_climit_get(&ep->climit));
	atomic_init(&ep->idle_handles, 0);
	ep->m = pw_metrics_endpoint(id->metrics, c->display ? c->display : c->url);
	if (!ep->m)
		goto oom;
	/* <url without trailing slashes>/push.v1.PusherService/Push */
	ulen = strlen(c->url);
	while (ulen > 0 && c->url[ulen - 1] == '/')
		ulen--;
	ep->push_url = pw_asprintf("%.*s/push.v1.PusherService/Push", (int)ulen, c->url);
	if (!ep->push_url)
		goto oom;
	ep->user_content_type = pw_kvmap_has(&c->headers, "Content-Type");
	if (build_static_headers(id, ep, false, false, &ep->push_hdrs) < 0 ||
	    build_static_headers(id, ep, true, false, &ep->ingest_hdrs) < 0)
		goto oom;
	if (c->tenant_label &&
	    (build_static_headers(id, ep, false, true, &ep->push_hdrs_tenant) < 0 ||
	     build_static_headers(id, ep, true, true, &ep->ingest_hdrs_tenant) < 0))
		goto oom;
	ep->auth = pw_auth_new(c, err);
	if (!ep->auth) {
		if (err && !*err)
			*err = pw_asprintf("endpoint %s: cannot set up credentials", c->display);
		pw_endpoint_unref(ep);
		return NULL;
	}
	return ep;
oom:
	if (err)
		*err = strdup("out of memory");
	pw_endpoint_unref(ep);
	return NULL;
}

/* ---- snapshots ---- */

struct pw_snapshot *pw_snapshot_build(const struct pw_identity *id, struct pw_config *cfg,
				      const struct pw_snapshot *prev, char **err)
{
	struct pw_snapshot *snap = calloc(1, sizeof(*snap));
	struct pw_cfgref *cref = calloc(1, sizeof(*cref));

	if (!snap || !cref) {
		free(snap);
		free(cref);
		pw_config_free(cfg);
		if (err)
			*err = strdup("out of memory");
		return NULL;
	}
	atomic_init(&cref->refs, 1);
	cref->cfg = cfg;
	atomic_init(&snap->refs, 1);
	snap->cref = cref;
	snap->eps = calloc(cfg->nendpoints ? cfg->nendpoints : 1, sizeof(*snap->eps));
	if (!snap->eps)
		goto oom;
	for (size_t i = 0; i < cfg->nendpoints; i++) {
		struct pw_endpoint *ep = NULL;

		for (size_t j = 0; prev && j < prev->neps; j++) {
			const char *a = prev->eps[j]->cfg->canonical,
				   *b = cfg->endpoints[i].canonical;

			if (a && b && strcmp(a, b) == 0) {
				ep = prev->eps[j];
				atomic_fetch_add(&ep->refs, 1);
				break;
			}
		}
		if (!ep)
			ep = endpoint_new(id, cref, i, err);
		if (!ep) {
			pw_snapshot_unref(snap);
			return NULL;
		}
		snap->eps[snap->neps++] = ep;
	}
	return snap;
oom:
	if (err)
		*err = strdup("out of memory");
	pw_snapshot_unref(snap);
	return NULL;
}

void pw_snapshot_ref(struct pw_snapshot *snap)
{
	atomic_fetch_add(&snap->refs, 1);
}

void pw_snapshot_unref(struct pw_snapshot *snap)
{
	if (!snap || atomic_fetch_sub(&snap->refs, 1) != 1)
		return;
	for (size_t i = 0; i < snap->neps; i++)
		pw_endpoint_unref(snap->eps[i]);
	free(snap->eps);
	cfgref_unref(snap->cref);
	free(snap);
}

const struct pw_config *pw_snapshot_config(const struct pw_snapshot *snap)
{
	return snap->cref->cfg;
}

void pw_snapshot_debug(const struct pw_snapshot *snap, struct strbuf *sb)
{
	strbuf_putc(sb, '[');
	for (size_t i = 0; i < snap->neps; i++) {
		struct pw_endpoint *ep = snap->eps[i];

		if (i)
			strbuf_putc(sb, ',');
		pthread_mutex_lock(&ep->dbg_lock);
		strbuf_puts(sb, "{\"endpoint\":");
		pwx_json_quote(sb, ep->cfg->display, 0);
		strbuf_printf(sb,
			      ",\"in_flight\":%lld,\"concurrency_limit\":%d,\"max_connections\":%d,"
			      "\"idle_handles\":%d,\"last_success_unix_ms\":%lld,\"last_error\":",
			      (long long)pw_metrics_inflight(ep->m), atomic_load(&ep->limit_now),
			      ep->max_running, atomic_load(&ep->idle_handles),
			      (long long)ep->last_success_ms);
		if (ep->last_error)
			pwx_json_quote(sb, ep->last_error, 0);
		else
			strbuf_puts(sb, "null");
		strbuf_printf(sb, ",\"last_error_unix_ms\":%lld}", (long long)ep->last_error_ms);
		pthread_mutex_unlock(&ep->dbg_lock);
	}
	strbuf_putc(sb, ']');
}
