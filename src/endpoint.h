/*
 * endpoint.h - endpoints and snapshots: the runtime view of a validated
 * configuration. Internal to the plugin.
 *
 * Layer: engine, above the leaves (clock, auth, http, metrics, climit);
 * below the delivery object, the producer side and the I/O loop. It calls
 * nothing above it: what it needs from the engine (user agent, instance
 * id, metrics registry) comes in a struct pw_identity.
 */
#ifndef PW_ENDPOINT_H
#define PW_ENDPOINT_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "climit.h"
#include "config.h"
#include "metrics.h"

#define DEFAULT_MAX_CONNECTIONS 32
#define EP_EASY_POOL_MAX 64

/* What endpoints need from their engine to build their headers and
 * metric series. Borrowed: outlives every snapshot built with it. */
struct pw_identity {
	const char *user_agent;
	const char *instance_id; /* NULL or "" for none */
	struct pw_metrics *metrics;
};

enum xfer_kind { XFER_TASK = 1, XFER_TOKEN = 2 };

struct pw_cfgref {
	_Atomic int refs;
	struct pw_config *cfg;
};

struct task;
struct pw_endpoint;

/* An OAuth2 token request in the multi handle; CURLOPT_PRIVATE points
 * here. */
struct token_xfer {
	int kind; /* XFER_TOKEN; first member */
	struct pw_endpoint *ep;
	CURL *easy;
};

/* Runtime state of one configured endpoint. Shared by every snapshot whose
 * configuration has an identical endpoint. */
struct pw_endpoint {
	_Atomic int refs;
	struct pw_cfgref *cref;
	const struct pw_endpoint_config *cfg;
	struct pw_ep_metrics *m;
	char *push_url;
	struct curl_slist *push_hdrs; /* static part of a push request's headers */
	struct curl_slist *ingest_hdrs; /* static part of an ingest request's headers */
	/* With tenant_label: the same without a configured X-Scope-OrgID, for
	 * profiles that carry their own tenant. NULL otherwise. */
	struct curl_slist *push_hdrs_tenant;
	struct curl_slist *ingest_hdrs_tenant;
	bool user_content_type; /* `headers` sets Content-Type */
	struct pw_auth *auth;
	int max_running; /* max_connections */
	_Atomic int limit_now; /* climit's current value, for the debug view */
	_Atomic int idle_handles; /* neasy, for the debug view */
	/* Set by the I/O thread while the endpoint runs as many requests as
	 * its limit allows; a producer whose delivery only goes to such
	 * endpoints need not wake the loop (see pw_handoff_put()). */
	atomic_bool full;
	/* Set by the I/O thread when an attempt fails with a retry to come,
	 * cleared when one is delivered: the durable queue reads few records
	 * ahead for an endpoint that is failing. */
	atomic_bool failing;

	/* I/O thread only. */
	int running;
	struct pw_climit climit; /* requests allowed under way, <= max_running */
	/* Idle easy handles already configured for this endpoint: reusing one
	 * skips resetting and re-applying TLS, proxy and protocol options. */
	CURL *easy_pool[EP_EASY_POOL_MAX];
	int neasy;
	/* On the sender's pooled list (holding a reference) while it may
	 * keep handles; see release_pools() in sender.c. */
	bool pooled;
	struct pw_endpoint *pool_next;
	/* Tasks waiting for a connection slot (FIFO) and for an OAuth2 token:
	 * doubly linked, so a task whose deadline passes leaves in O(1). */
	struct task *waitq_head, *waitq_tail;
	struct task *authq_head, *authq_tail;
	/* With `batch`: the pushes waiting in waitq and their bytes. */
	size_t waitq_n;
	uint64_t waitq_bytes;
	/* On the sender's list of endpoints to pump (holding a reference). */
	bool pump_pending;
	struct pw_endpoint *pump_next;
	struct token_xfer token;
	struct pw_endpoint *token_next; /* sender's list of token requests */

	/* Debug view; guarded by dbg_lock. */
	pthread_mutex_t dbg_lock;
	char *last_error;
	int64_t last_error_ms;
	int64_t last_success_ms;
};

struct pw_snapshot {
	_Atomic int refs;
	struct pw_cfgref *cref;
	struct pw_endpoint **eps;
	size_t neps;
};

void pw_endpoint_ref(struct pw_endpoint *ep);
/* Drops a reference; the last one frees the endpoint. Any thread. */
void pw_endpoint_unref(struct pw_endpoint *ep);

/*
 * Builds the runtime view of a configuration: one endpoint object per
 * configured endpoint, with headers and metric series from id. Endpoints
 * whose settings equal one in `prev` are shared with it (they keep their
 * credentials cache and statistics). Takes ownership of cfg in every case.
 * Returns NULL with *err on failure.
 */
struct pw_snapshot *pw_snapshot_build(const struct pw_identity *id, struct pw_config *cfg,
				      const struct pw_snapshot *prev, char **err);
void pw_snapshot_ref(struct pw_snapshot *snap);
void pw_snapshot_unref(struct pw_snapshot *snap);
const struct pw_config *pw_snapshot_config(const struct pw_snapshot *snap);

/* Appends the JSON debug view of the snapshot's endpoints (an array) to sb. */
struct strbuf;
void pw_snapshot_debug(const struct pw_snapshot *snap, struct strbuf *sb);

#endif /* PW_ENDPOINT_H */
