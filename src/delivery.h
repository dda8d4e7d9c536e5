/*
 * delivery.h - the delivery object: one profile (encoded once, shared
 * read-only by every endpoint) and one task per endpoint of its snapshot,
 * plus the byte budget (max_inflight_bytes) its payload is reserved
 * against. Internal to the plugin.
 *
 * Layer: engine, above endpoints and the leaves (clock, timerheap,
 * bufcache); below the handoff, the producer side and the I/O loop.
 */
#ifndef PW_DELIVERY_H
#define PW_DELIVERY_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bufcache.h"
#include "endpoint.h"
#include "proto.h"
#include "pyroscope_write.h"
#include "retry.h"
#include "strbuf.h"
#include "timerheap.h"
#include "util/tenant.h"

#define RESPONSE_BODY_CAP (64 * 1024)
/* max_inflight_bytes when the configuration leaves it at 0. */
#define DEFAULT_MAX_INFLIGHT_BYTES (256LL << 20)

/* Bytes held in flight by one engine's deliveries, and the cache their
 * payload buffers come from. Any thread. */
struct pw_budget {
	_Atomic int64_t inflight_bytes;
	struct pw_bufcache bufs;
};

enum task_state { T_NEW, T_QUEUED, T_AUTH, T_RUNNING, T_WAIT, T_DONE };

struct delivery;

/* One endpoint's part of a delivery. Owned by the I/O thread once the
 * delivery has been handed over. */
struct task {
	int kind; /* XFER_TASK; first member, CURLOPT_PRIVATE points here */
	struct delivery *d;
	struct pw_endpoint *ep;
	enum task_state state;
	struct pw_backoff bo;
	int attempts;
	CURL *easy;
	struct curl_slist *hdrs; /* this attempt's headers, ending in hdrs_shared */
	struct curl_slist *hdrs_own; /* the allocated part of hdrs, or NULL */
	struct curl_slist *hdrs_shared; /* the endpoint's static headers (not owned) */
	/* Connect-Timeout-Ms lives in the task itself: no allocation per attempt. */
	struct curl_slist tmo_node;
	char tmo_line[48];
	/* The profile's tenant (its endpoint's tenant_label), sent instead of
	 * a configured X-Scope-OrgID; tenant_line[0] is 0 when there is none. */
	struct curl_slist tenant_node;
	char tenant_line[sizeof("X-Scope-OrgID: ") + PWX_TENANT_MAX_LEN];
	char *url; /* owned for ingest, borrowed from the endpoint for push */
	bool url_owned;
	int64_t ep_start_ns, attempt_start_ns;
	/* T_WAIT: when the next attempt is due; T_QUEUED, T_AUTH: the
	 * delivery's deadline, when it has one. */
	struct pw_timer timer;
	struct strbuf body;
	/* Read position of a body sent from pieces: a piece (rd_seg) of the
	 * task rd_task, this task or a member of its batch. */
	struct task *rd_task;
	size_t rd_seg, rd_off;
	/* Batching (a push to an endpoint with `batch`). Queued: when the task
	 * joined its endpoint's queue. Leading a request: the other members
	 * (linked through bnext, each T_RUNNING without a handle of its own),
	 * how many profiles and bytes the request holds. */
	int64_t queued_ns;
	struct task *bnext;
	size_t bcount;
	size_t blen;
	/* The last response's Retry-After (an HTTP date or a number of seconds
	 * fits; anything longer is not a valid value and is cut). */
	char retry_after[64];
	char *last_err;
	long last_http;
	char errbuf[CURL_ERROR_SIZE];
	struct task *next, *prev; /* the endpoint's waitq or authq */
};

struct delivery {
	bool ingest;
	struct pw_budget *budget;
	struct pw_snapshot *snap;
	uint8_t *payload; /* from the budget's buffer cache */
	size_t len, cap; /* len: bytes of the request body */
	size_t reserved; /* bytes held against max_inflight_bytes */
	/* When set, the body is these pieces (parts of payload and the
	 * caller's samples, which stay valid until done) instead of payload. */
	struct pw_seg *segs;
	size_t nsegs;
	/* Memory the segments point into that the delivery gives back (a
	 * record read from the queue), or NULL; owned_cap is its capacity in
	 * the budget's buffer cache, 0 for memory from malloc. */
	uint8_t *owned;
	size_t owned_cap;
	uint64_t size; /* bytes counted by the metrics */
	uint64_t nprofiles; /* profiles counted by the metrics */
	char **ctypes; /* ingest: incoming Content-Type values */
	size_t nctypes;
	int64_t deadline_ns, start_ns;
	size_t remaining;
	size_t nfailed; /* endpoints that gave up */
	struct strbuf errors;
	int first_http;
	int final_status, final_http; /* the outcome, once complete */
	bool canceled;
	/* From the durable queue: one task, retried until expire_ms (wall
	 * clock) however many times max_backoff_retries allows; cancelled at
	 * shutdown it is not lost but stays on disk. */
	bool durable;
	int64_t expire_ms;
	bool expired; /* durable, and given up because of expire_ms */
	/* Durable: set by the queue when the record is no longer wanted: 1,
	 * its endpoint left the configuration (dropped); 2, the queue closed
	 * (shelved: still on disk there). Looked at before each attempt. */
	const atomic_int *abandon;
	pw_done_fn done;
	void *user;
	struct delivery *next, *prev; /* incoming list, then active list */
	size_t ntasks;
	struct task tasks[];
};

void pw_budget_init(struct pw_budget *b);
void pw_budget_destroy(struct pw_budget *b);

/* A delivery on snap with one task per endpoint, no payload yet. Takes a
 * reference to snap. NULL when out of memory. */
struct delivery *pw_delivery_new(struct pw_budget *b, struct pw_snapshot *snap, bool ingest,
				 int64_t deadline_ns, pw_done_fn done, void *user);
/* A delivery of a queued record to the endpoint snap->eps[ep_index] only
 * (see durable above). NULL when out of memory. */
struct delivery *pw_delivery_new_durable(struct pw_budget *b, struct pw_snapshot *snap,
					 size_t ep_index, bool ingest, int64_t expire_ms,
					 pw_done_fn done, void *user);
/* Frees d with everything it holds, releasing its bytes. Accepts NULL. */
void pw_delivery_free(struct delivery *d);
/* Calls d's completion callback. */
void pw_delivery_report(struct delivery *d, int status, const char *error, int http_status);

enum pw_reserve { PW_RESERVE_OK, PW_RESERVE_OVER, PW_RESERVE_NOMEM };
/*
 * Holds `bytes` against the snapshot's max_inflight_bytes and takes a
 * payload buffer of buf_len bytes (buf_len <= bytes: a body sent partly
 * from the caller's memory needs less) into d->payload. On failure nothing
 * is held. Once per delivery; any thread.
 */
enum pw_reserve pw_delivery_reserve(struct delivery *d, size_t bytes, size_t buf_len);
/* Gives the payload buffer and its bytes back. Idempotent; any thread. */
void pw_delivery_release(struct delivery *d);

/* Bodies at least this large are sent from where they already are (the
 * caller's kept samples, a record read from the queue) rather than copied
 * into a payload buffer; smaller ones are cheaper to copy (libcurl then
 * sends them with the headers in one write). */
#define PW_STREAM_MIN_BYTES (64 * 1024)

/*
 * The tenant endpoint c takes from a profile's labels (in: the incoming
 * ones, external: the configuration's): *tenant is NULL when c has no
 * tenant_label or the profile lacks it. NULL, or a malloc'd error when the
 * tenant is not one Pyroscope would accept.
 */
char *pw_profile_tenant(const struct pw_endpoint_config *c, const struct pw_label *in, size_t n,
			const struct pw_kvmap *external, const char **tenant);
/*
 * Gives each task whose endpoint has a tenant_label the tenant the
 * profile's labels name (in: the incoming labels, external: the
 * configuration's). NULL, or a malloc'd error when a tenant is not one
 * Pyroscope would accept: nothing may be sent then.
 */
char *pw_delivery_set_tenants(struct delivery *d, const struct pw_label *in, size_t n,
			      const struct pw_kvmap *external);
struct pw_labelset;
/* The URL of an ingest request to endpoint c: path_query with the name
 * rewritten from ls, leaving out a tenant label with the reserved prefix.
 * NULL with a malloc'd *err when it cannot be built. */
char *pw_ingest_url_for(const struct pw_endpoint_config *c, const char *path_query,
			const struct pw_labelset *ls, char **err);

/* Sets the tenant a task sends; tenant is a valid tenant ID. */
void pw_task_set_tenant(struct task *t, const char *tenant);
/* The task's tenant, or "" for none. */
const char *pw_task_tenant(const struct task *t);

/* Forgets the last response (body, Retry-After, error text). */
void pw_task_reset_response(struct task *t);
/* Frees an attempt's own headers, leaving the endpoint's shared tail. */
void pw_task_free_headers(struct task *t);

#endif /* PW_DELIVERY_H */
