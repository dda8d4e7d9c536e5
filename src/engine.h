/*
 * engine.h - the runtime objects shared by the delivery engine's files:
 * configuration references, endpoints and snapshots (endpoint.c), the
 * producer side (submit.c) and the I/O loop (sender.c). Internal to the
 * plugin.
 */
#ifndef PW_ENGINE_H
#define PW_ENGINE_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "bufcache.h"
#include "climit.h"
#include "proto.h"
#include "metrics.h"
#include "log.h"
#include "retry.h"
#include "sender.h"
#include "strbuf.h"

#define DEFAULT_MAX_CONNECTIONS 32
#define RESPONSE_BODY_CAP (64 * 1024)
#define EASY_POOL_MAX 256
#define EP_EASY_POOL_MAX 64

/* The parts of the sender endpoints need to build their headers. */
struct pw_sender_identity {
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
	bool user_content_type; /* `headers` sets Content-Type */
	struct pw_auth *auth;
	int max_running; /* max_connections */
	_Atomic int limit_now; /* climit's current value, for the debug view */
	_Atomic int idle_handles; /* neasy, for the debug view */
	/* Set by the I/O thread while the endpoint runs as many requests as
	 * its limit allows; a producer whose delivery only goes to such
	 * endpoints need not wake the loop (see submit()). */
	atomic_bool full;

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
	struct task *waitq_head, *waitq_tail; /* waiting for a connection slot */
	struct task *authq; /* waiting for an OAuth2 token */
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

enum task_state { T_NEW, T_QUEUED, T_AUTH, T_RUNNING, T_WAIT, T_DONE };

struct delivery;

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
	char *url; /* owned for ingest, borrowed from the endpoint for push */
	bool url_owned;
	int64_t ep_start_ns, attempt_start_ns, next_at_ns;
	struct strbuf body;
	size_t rd_seg, rd_off; /* read position in d->segs */
	/* The last response's Retry-After (an HTTP date or a number of seconds
	 * fits; anything longer is not a valid value and is cut). */
	char retry_after[64];
	char *last_err;
	long last_http;
	char errbuf[CURL_ERROR_SIZE];
	struct task *next; /* waitq, authq or timer list */
};

struct delivery {
	bool ingest;
	struct pw_sender *s;
	struct pw_snapshot *snap;
	uint8_t *payload; /* from the sender's buffer cache */
	size_t len, cap; /* len: bytes of the request body */
	/* When set, the body is these pieces (parts of payload and the
	 * caller's samples, which stay valid until done) instead of payload. */
	struct pw_seg *segs;
	size_t nsegs;
	bool borrowed; /* ingest: the body is the caller's, len bytes reserved */
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
	pw_done_fn done;
	void *user;
	struct delivery *next, *prev; /* incoming list, then active list */
	size_t ntasks;
	struct task tasks[];
};

struct pw_sender {
	struct pw_sender_identity id;
	struct pw_logger log;
	struct pw_metrics *metrics;
	struct pw_ep_metrics *total_m; /* endpoint="-" */
	char *user_agent;
	char *instance_id;
	CURLM *multi;
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock; /* guards incoming, stopping, drain deadline */
	struct delivery *incoming_head, *incoming_tail;
	/* A producer has woken the loop for what is on the incoming list. */
	bool incoming_woken;
	bool stopping;
	int64_t drain_deadline_ns;

	_Atomic int64_t inflight_bytes;
	struct pw_bufcache bufs; /* payload buffers (any thread) */

	/* I/O thread only. */
	struct delivery *active;
	struct task *timers;
	CURL *pool[EASY_POOL_MAX];
	size_t npool;
	uint64_t rng;
	int64_t next_sweep_ns;
	int64_t idle_since_ns; /* when the loop last had nothing under way */
	bool idle_released; /* this idle period's memory has been given back */
	struct pw_endpoint *pooled_eps; /* endpoints that may keep idle handles */
	struct pw_endpoint *token_eps; /* endpoints with a token request under way */
	bool defer_done; /* completions wait in done_list for flush_done() */
	struct delivery *done_list;
};

const struct pw_sender_identity *pw_sender_identity(const struct pw_sender *s);

/* Wakes the I/O loop (any thread). */
void pw_sender_wake(struct pw_sender *s);

void pw_endpoint_ref(struct pw_endpoint *ep);

/* submit.c: deliveries, shared by the producer side and the I/O loop. */
void pw_task_reset_response(struct task *t);
void pw_delivery_free(struct delivery *d);
/* Frees an attempt's own headers, leaving the endpoint's shared tail. */
void pw_task_free_headers(struct task *t);
/* Frees the payload and gives its bytes back to max_inflight_bytes. */
void pw_delivery_release_bytes(struct delivery *d);
void pw_delivery_report(struct delivery *d, int status, const char *error, int http_status);
/* Drops a reference; the last one frees the endpoint. Any thread. */
void pw_endpoint_unref(struct pw_endpoint *ep);

#endif /* PW_ENGINE_H */
