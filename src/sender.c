/*
 * sender.c - the delivery engine.
 *
 * One I/O thread per instance owns a CURLM handle and every easy handle.
 * Producers build a delivery (the encoded request, once, shared read-only
 * by every endpoint), put it on the handoff's incoming list and wake the
 * loop with curl_multi_wakeup(). The loop runs one task per endpoint for each
 * delivery: attempts are transfers in the multi handle, backoff waits are
 * timers in the loop (a heap, which also holds the deadlines of tasks
 * waiting for a connection slot or a token), and the completion callback
 * fires when the last task of a delivery ends. No thread ever sleeps per request.
 *
 * Pushes to an endpoint with `batch` always queue first; the endpoint's
 * pump sends the oldest with the same tenant's pushes behind it as one
 * request (pump_endpoint(): gather(), then one transfer whose body is the
 * members' encoded bodies back to back), and the outcome is applied to
 * every member (after_batch()).
 *
 * Layer: engine, top, beside the producer side (submit.c), which it never
 * calls: it takes deliveries from the handoff (handoff.c) and ends them
 * through the delivery object (delivery.c). Below it: endpoints, the
 * clock, the timer heap, http, auth, retry and metrics. See engine.h.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "sender.h"

#include <curl/curl.h>
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "util/clock.h"
#include "engine.h"
#include "http.h"
#include "proto.h"
#include "retry.h"
#include "strbuf.h"

/* How often endpoints replaced by a reload give back their idle handles. */
#define POOL_SWEEP_NS (100 * 1000 * 1000LL)
/* Idle time after which cached buffers and handles are freed. */
#define IDLE_RELEASE_NS (2000 * 1000000LL)
#define EASY_POOL_MAX 256

/*
 * The I/O loop's own state: this thread's alone (but for `multi`, which
 * producers wake through the handoff). The engine it serves holds the
 * parts shared with the producer side.
 */
struct pw_loop {
	struct pw_sender *eng;
	struct pw_logger log;
	struct pw_ep_metrics *total_m; /* endpoint="-" */
	CURLM *multi;
	pthread_t thread;
	bool thread_started;
	struct delivery *active;
	/* Tasks waiting for a retry, and queued tasks' deadlines. */
	struct pw_timerheap timers;
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
	struct pw_endpoint *pump_eps; /* endpoints to pump at the end of this pass */
	bool flushing; /* stopping: batches go without waiting for max_wait */
};

static uint64_t rng_next(struct pw_loop *s)
{
	/* xorshift64*: jitter only needs to be uniform, not unpredictable. */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 2685821657736338717ULL;
}

/* ---- the I/O thread ---- */

static void report_and_free(struct delivery *d)
{
	bool failed = d->final_status != COMPONENT_OK;

	pw_delivery_report(d, d->final_status,
			   failed ? (d->errors.len ? d->errors.data : "delivery failed") : NULL,
			   d->final_http);
	pw_delivery_free(d);
}

/*
 * Ends a delivery whose tasks are all done. Its callback runs at once, or,
 * while the loop is handling a batch of finished transfers (defer_done),
 * right after the batch: the host then hears of several completions in a
 * row and, if it waits for free slots, wakes up once for all of them
 * instead of once per profile.
 */
static void complete_delivery(struct pw_loop *s, struct delivery *d)
{
	double secs = (double)(pwx_now_ns() - d->start_ns) / 1e9;
	bool failed = d->nfailed > 0;
	int status =
		failed ? (d->canceled ? COMPONENT_ESHUTDOWN : COMPONENT_EDELIVERY) : COMPONENT_OK;
	/* A queued profile cancelled at shutdown stays on disk: nothing failed. */
	bool shelved = d->durable && d->canceled;
	enum component_log_level level =
		failed && !shelved ? COMPONENT_LOG_WARN : COMPONENT_LOG_DEBUG;
	/* The joined errors, or a fallback if even they could not be built. */
	const char *errors = d->errors.len ? d->errors.data : "delivery failed";

	pw_metrics_observe(s->total_m, d->ingest ? PW_LAT_INGEST_TOTAL : PW_LAT_PUSH_TOTAL, secs);
	if (pw_log_enabled(&s->log, level)) {
		char sz[32], n[32], dur[32];

		snprintf(sz, sizeof(sz), "%llu", (unsigned long long)d->size);
		snprintf(n, sizeof(n), "%llu", (unsigned long long)d->nprofiles);
		snprintf(dur, sizeof(dur), "%.3fs", secs);
		pw_log(&s->log, level, d->ingest ? "AppendIngest" : "Push", "size", sz, "profiles",
		       n, "duration", dur, "err", failed ? errors : NULL, PW_LOG_END);
	}

	/* unlink from the active list */
	if (d->prev)
		d->prev->next = d->next;
	else
		s->active = d->next;
	if (d->next)
		d->next->prev = d->prev;

	/* Give the bytes back before the callback: a producer pushing again
	 * from it must find them free. */
	pw_delivery_release(d);
	d->final_status = status;
	d->final_http = d->ingest ? (failed ? d->first_http : 200) : 0;
	if (s->defer_done) {
		d->next = s->done_list;
		s->done_list = d;
		return;
	}
	report_and_free(d);
}

/* Calls the callbacks of the deliveries that completed while
 * defer_done was set, in the order they completed. */
static void flush_done(struct pw_loop *s)
{
	struct delivery *list = NULL;

	s->defer_done = false;
	while (s->done_list) {
		struct delivery *d = s->done_list;

		s->done_list = d->next;
		d->next = list;
		list = d;
	}
	while (list) {
		struct delivery *d = list;

		list = d->next;
		report_and_free(d);
	}
}

static void finish_task(struct pw_loop *s, struct task *t, bool ok)
{
	struct delivery *d = t->d;
	struct pw_endpoint *ep = t->ep;
	double secs = (double)(pwx_now_ns() - t->ep_start_ns) / 1e9;

	t->state = T_DONE;
	pw_metrics_inflight_add(ep->m, -1);
	pw_metrics_observe(ep->m, d->ingest ? PW_LAT_INGEST_ENDPOINT : PW_LAT_PUSH_ENDPOINT, secs);
	if (ok) {
		int64_t now = pwx_wall_ms();

		pw_metrics_sent(ep->m, d->size, d->nprofiles);
		pw_metrics_last_success(ep->m, (double)now / 1000.0);
		pthread_mutex_lock(&ep->dbg_lock);
		ep->last_success_ms = now;
		pthread_mutex_unlock(&ep->dbg_lock);
	} else {
		const char *why = t->last_err ? t->last_err : "unknown: no attempt was made";
		char *line;

		/* A queued profile cancelled at shutdown is still on disk. */
		if (!(d->durable && d->canceled))
			pw_metrics_dropped(ep->m, d->size, d->nprofiles);
		d->nfailed++;
		if (d->errors.len)
			strbuf_putc(&d->errors, '\n');
		strbuf_printf(&d->errors, "failed to %s to endpoint %s (%lld retries): %s",
			      d->ingest ? "ingest" : "push", ep->cfg->display,
			      (long long)t->bo.count, why);
		if (!d->first_http && t->last_http)
			d->first_http = (int)t->last_http;
		line = pw_strdup(why);
		pthread_mutex_lock(&ep->dbg_lock);
		free(ep->last_error);
		ep->last_error = line;
		ep->last_error_ms = pwx_wall_ms();
		pthread_mutex_unlock(&ep->dbg_lock);
	}
	if (--d->remaining == 0)
		complete_delivery(s, d);
}

static void set_last_err(struct task *t, char *err)
{
	free(t->last_err);
	t->last_err = err ? err : pw_strdup("unknown: out of memory");
}

/*
 * A queued record its queue no longer wants sent: its endpoint left the
 * configuration (it ends as dropped) or the queue was closed by a reload
 * (it ends shelved, still on disk there). True when t has been finished.
 */
static bool abandon_durable(struct pw_loop *s, struct task *t)
{
	struct delivery *d = t->d;
	int why = d->durable && d->abandon ? atomic_load(d->abandon) : 0;

	if (!why)
		return false;
	if (why == 2)
		d->canceled = true;
	set_last_err(t, pw_asprintf("%s%s%s",
				    why == 2 ? "canceled: the queue was closed by a reload"
					     : "dropped: the endpoint left the configuration",
				    t->last_err ? "; last error: " : "",
				    t->last_err ? t->last_err : ""));
	finish_task(s, t, false);
	return true;
}

/* ---- waiting tasks: retry timers, connection slots, OAuth2 tokens ---- */

#define TASK_OF_TIMER(tm) ((struct task *)(void *)((char *)(tm)-offsetof(struct task, timer)))

static void timer_add(struct pw_loop *s, struct task *t, int64_t due_ns)
{
	t->state = T_WAIT;
	pw_timerheap_add(&s->timers, &t->timer, due_ns);
}

static void tq_push(struct task **head, struct task **tail, struct task *t)
{
	t->next = NULL;
	t->prev = *tail;
	if (*tail)
		(*tail)->next = t;
	else
		*head = t;
	*tail = t;
}

static void tq_unlink(struct task **head, struct task **tail, struct task *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		*head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		*tail = t->prev;
	t->next = t->prev = NULL;
}

/* Whether t is combined with others into one request: a push to an
 * endpoint with `batch`. */
static bool batching(const struct task *t)
{
	return t->ep->cfg->batch.set && !t->d->ingest;
}

/*
 * Parks t on its endpoint's queue for a connection slot (T_QUEUED) or a
 * token (T_AUTH). Its deadline goes on the timer heap, so a task that
 * waits too long leaves without a walk of the queue. A push waiting for a
 * batch also wakes up when it has waited max_wait: its batch is due then.
 * A retried one is due at once: it has waited already.
 */
static void park(struct pw_loop *s, struct task *t, enum task_state st, int64_t now)
{
	struct pw_endpoint *ep = t->ep;
	int64_t due = t->d->deadline_ns;

	t->state = st;
	if (st == T_QUEUED)
		tq_push(&ep->waitq_head, &ep->waitq_tail, t);
	else
		tq_push(&ep->authq_head, &ep->authq_tail, t);
	if (st == T_QUEUED && batching(t)) {
		int64_t wait = ep->cfg->batch.max_wait_ns;

		ep->waitq_n++;
		ep->waitq_bytes += t->d->len;
		t->queued_ns = t->attempts > 0 ? now - wait : now;
		if (wait > 0 && t->attempts == 0 && (!due || now + wait < due))
			due = now + wait;
	}
	if (due)
		pw_timerheap_add(&s->timers, &t->timer, due);
}

/* Takes a parked task off its queue and its timer off the heap. */
static void unpark(struct pw_loop *s, struct task *t)
{
	struct pw_endpoint *ep = t->ep;

	if (t->state == T_QUEUED) {
		tq_unlink(&ep->waitq_head, &ep->waitq_tail, t);
		if (batching(t)) {
			ep->waitq_n--;
			ep->waitq_bytes -= t->d->len;
		}
	} else {
		tq_unlink(&ep->authq_head, &ep->authq_tail, t);
	}
	pw_timerheap_remove(&s->timers, &t->timer);
	t->state = T_NEW;
}

/* Asks for ep's queue to be looked at once this pass has queued what it
 * brings (run_pumps()): then a batch takes all of it at once. */
static void want_pump(struct pw_loop *s, struct pw_endpoint *ep)
{
	if (ep->pump_pending)
		return;
	ep->pump_pending = true;
	pw_endpoint_ref(ep);
	ep->pump_next = s->pump_eps;
	s->pump_eps = ep;
}

/* An easy handle for an attempt on ep; *configured tells whether it still
 * carries ep's transport settings from an earlier attempt. */
static CURL *easy_get(struct pw_loop *s, struct pw_endpoint *ep, bool *configured)
{
	*configured = ep->neasy > 0;
	if (ep->neasy > 0) {
		atomic_store_explicit(&ep->idle_handles, ep->neasy - 1, memory_order_relaxed);
		return ep->easy_pool[--ep->neasy];
	}
	if (s->npool > 0)
		return s->pool[--s->npool];
	return curl_easy_init();
}

/* Gives a handle back: to ep's own pool when there is one and room, else
 * reset to the shared pool. */
static void easy_put(struct pw_loop *s, struct pw_endpoint *ep, CURL *e)
{
	if (ep && ep->neasy < EP_EASY_POOL_MAX) {
		/* Drop the pointers into the finished attempt (its error buffer,
		 * headers and body) so an idle handle holds nothing dangling. */
		curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
		curl_easy_setopt(e, CURLOPT_READDATA, NULL);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, NULL);
		curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, NULL);
		curl_easy_setopt(e, CURLOPT_HEADERDATA, NULL);
		ep->easy_pool[ep->neasy++] = e;
		atomic_store_explicit(&ep->idle_handles, ep->neasy, memory_order_relaxed);
		if (!ep->pooled) {
			/* The reference keeps the handles' owner alive until
			 * release_pools() frees them, on this thread. */
			pw_endpoint_ref(ep);
			ep->pooled = true;
			ep->pool_next = s->pooled_eps;
			s->pooled_eps = ep;
		}
	} else if (s->npool < EASY_POOL_MAX) {
		curl_easy_reset(e);
		s->pool[s->npool++] = e;
	} else {
		curl_easy_cleanup(e);
	}
}

/*
 * Frees the idle handles of the endpoints on the pooled list: every one
 * when `all` is set, else those of endpoints nobody else refers to any more
 * (replaced by an update, with nothing of theirs under way). Nothing can
 * take a new reference to such an endpoint, so the check does not race.
 */
static void release_pools(struct pw_loop *s, bool all)
{
	struct pw_endpoint **pp = &s->pooled_eps;

	while (*pp) {
		struct pw_endpoint *ep = *pp;

		if (!all && atomic_load(&ep->refs) > 1) {
			pp = &ep->pool_next;
			continue;
		}
		*pp = ep->pool_next;
		while (ep->neasy > 0)
			curl_easy_cleanup(ep->easy_pool[--ep->neasy]);
		atomic_store_explicit(&ep->idle_handles, 0, memory_order_relaxed);
		ep->pooled = false;
		ep->pool_next = NULL;
		pw_endpoint_unref(ep);
	}
}

/*
 * Once per idle period: gives back what only a flow of deliveries needs.
 * The cached payload buffers, every idle easy handle (with its transfer
 * buffers; connections stay open in the multi handle's cache), and then
 * the free memory the allocator still holds, which after a burst of large
 * profiles can be many times what the process needs while idle.
 */
static void release_idle_memory(struct pw_loop *s)
{
	pw_bufcache_trim(&s->eng->budget.bufs);
	release_pools(s, true);
	while (s->npool > 0)
		curl_easy_cleanup(s->pool[--s->npool]);
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

/* Piece i of m's body: one of its segments, or its whole payload. False
 * past the last one. */
static bool body_piece(const struct task *m, size_t i, struct pw_seg *g)
{
	const struct delivery *d = m->d;

	if (d->segs) {
		if (i >= d->nsegs)
			return false;
		*g = d->segs[i];
		return true;
	}
	if (i > 0)
		return false;
	g->p = d->payload;
	g->n = d->len;
	return true;
}

/* The request body when it is sent from pieces: the segments of one
 * delivery (struct delivery.segs), or the bodies of a batch's members one
 * after the other. Encoded PushRequests hold only repeated series, so
 * their concatenation is one PushRequest with every member's series. */
static size_t on_read(char *buf, size_t size, size_t nitems, void *user)
{
	struct task *t = user;
	size_t room = size * nitems, done = 0;
	struct pw_seg g;

	while (room > 0 && t->rd_task) {
		size_t n;

		if (!body_piece(t->rd_task, t->rd_seg, &g)) {
			t->rd_task = t->rd_task->bnext;
			t->rd_seg = 0;
			t->rd_off = 0;
			continue;
		}
		n = g.n - t->rd_off;
		if (n > room)
			n = room;
		if (n)
			memcpy(buf + done, g.p + t->rd_off, n);
		done += n;
		room -= n;
		t->rd_off += n;
		if (t->rd_off == g.n) {
			t->rd_seg++;
			t->rd_off = 0;
		}
	}
	return done;
}

/* libcurl rewinds the body to send it again (a redirect, an
 * authentication round): find the piece that holds the offset. */
static int on_seek(void *user, curl_off_t offset, int origin)
{
	struct task *t = user;
	size_t off;
	struct pw_seg g;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > t->blen)
		return CURL_SEEKFUNC_FAIL;
	off = (size_t)offset;
	t->rd_task = t;
	t->rd_seg = 0;
	t->rd_off = 0;
	while (t->rd_task) {
		if (!body_piece(t->rd_task, t->rd_seg, &g)) {
			t->rd_task = t->rd_task->bnext;
			t->rd_seg = 0;
			continue;
		}
		if (off < g.n)
			break;
		off -= g.n;
		t->rd_seg++;
	}
	t->rd_off = off;
	return CURL_SEEKFUNC_OK;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct task *t = user;
	size_t n = size * nmemb;
	size_t room = RESPONSE_BODY_CAP - t->body.len;

	/* Keep the start of the body for error messages; drain the rest. */
	if (room > 0)
		strbuf_append(&t->body, ptr, n < room ? n : room);
	return n;
}

/* Whether line is a header called name; *value is set to its trimmed
 * value, *vlen to its length. */
static bool header_is(const char *line, size_t len, const char *name, const char **value,
		      size_t *vlen)
{
	size_t nl = strlen(name);
	const char *v, *end = line + len;

	if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
		return false;
	v = line + nl + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*value = v;
	*vlen = (size_t)(end - v);
	return true;
}

/* Only Retry-After is needed from the response headers (the content type
 * comes from CURLINFO_CONTENT_TYPE); it is kept in the task, so answers
 * cost no allocation. */
static size_t on_header(char *line, size_t size, size_t nmemb, void *user)
{
	struct task *t = user;
	size_t n = size * nmemb, vlen;
	const char *v;

	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (redirect, 100 Continue): forget the last one. */
		pw_task_reset_response(t);
	} else if (header_is(line, n, "Retry-After", &v, &vlen)) {
		if (vlen >= sizeof(t->retry_after))
			vlen = sizeof(t->retry_after) - 1;
		memcpy(t->retry_after, v, vlen);
		t->retry_after[vlen] = '\0';
	}
	return n;
}

static void dispatch(struct pw_loop *s, struct task *t, int64_t now);

static void after_attempt(struct pw_loop *s, struct task *t, enum pw_verdict v, char *err,
			  int64_t now);

static bool start_token_request(struct pw_loop *s, struct pw_endpoint *ep, char **err)
{
	CURL *e;

	if (pw_auth_token_busy(ep->auth))
		return true;
	e = pw_auth_token_request(ep->auth, err);
	if (!e)
		return false;
	curl_easy_setopt(e, CURLOPT_PRIVATE, &ep->token);
	atomic_fetch_add(&ep->refs, 1);
	ep->token.easy = e;
	ep->token_next = s->token_eps;
	s->token_eps = ep;
	if (curl_multi_add_handle(s->multi, e) != CURLM_OK) {
		s->token_eps = ep->token_next;
		ep->token.easy = NULL;
		pw_auth_token_done(ep->auth, e, CURLE_FAILED_INIT, pwx_now_ns(), NULL);
		pw_endpoint_unref(ep);
		*err = pw_strdup("unavailable: cannot start the OAuth2 token request");
		return false;
	}
	return true;
}

/*
 * This attempt's headers: Connect-Timeout-Ms and the profile's tenant (list
 * nodes inside the task), then the few allocated per attempt (credentials, an ingest's content
 * types), then the endpoint's static list, which is shared rather than
 * copied (libcurl only reads it). pw_task_free_headers() frees the
 * allocated part only.
 */
static struct curl_slist *attempt_headers(struct task *t, const char *auth, long timeout_ms)
{
	struct pw_endpoint *ep = t->ep;
	struct delivery *d = t->d;
	struct curl_slist *l = NULL, *n, *tail, *head;
	bool tenant = t->tenant_line[0] != '\0';

	if (tenant)
		t->hdrs_shared = d->ingest ? ep->ingest_hdrs_tenant : ep->push_hdrs_tenant;
	else
		t->hdrs_shared = d->ingest ? ep->ingest_hdrs : ep->push_hdrs;
	if (d->ingest) {
		for (size_t i = 0; i < d->nctypes; i++) {
			if (!(n = pw_slist_add(l, "Content-Type", d->ctypes[i])))
				goto fail;
			l = n;
		}
		if (d->nctypes == 0 && !ep->user_content_type) {
			/* Stop libcurl from inventing a form content type. */
			if (!(n = curl_slist_append(l, "Content-Type:")))
				goto fail;
			l = n;
		} else if (d->nctypes == 0) {
			for (size_t i = 0; i < ep->cfg->headers.n; i++) {
				if (strcasecmp(ep->cfg->headers.items[i].key, "Content-Type") != 0)
					continue;
				if (!(n = pw_slist_add(l, "Content-Type",
						       ep->cfg->headers.items[i].value)))
					goto fail;
				l = n;
			}
		}
	}
	if (auth) {
		if (!(n = pw_slist_add(l, "Authorization", auth)))
			goto fail;
		l = n;
	}
	t->hdrs_own = l;
	head = t->hdrs_shared;
	if (l) {
		for (tail = l; tail->next; tail = tail->next)
			;
		tail->next = t->hdrs_shared;
		head = l;
	}
	if (tenant) {
		t->tenant_node.data = t->tenant_line;
		t->tenant_node.next = head;
		head = &t->tenant_node;
	}
	/* The protocol allows at most 10 digits; a longer budget is simply
	 * not announced. */
	if (!d->ingest && timeout_ms <= 9999999999L) {
		snprintf(t->tmo_line, sizeof(t->tmo_line), "Connect-Timeout-Ms: %ld", timeout_ms);
		t->tmo_node.data = t->tmo_line;
		t->tmo_node.next = head;
		head = &t->tmo_node;
	}
	return head;
fail:
	pw_slist_free_wipe(l);
	return NULL;
}

/*
 * Publishes whether the endpoint is at its limit. Called after every change
 * of `running` or of the limit, so `full` is only ever true while requests
 * are under way, and one of them ending runs the loop again.
 */
static void ep_publish(struct pw_endpoint *ep)
{
	bool full = ep->running >= pw_climit_get(&ep->climit);

	if (atomic_load_explicit(&ep->full, memory_order_relaxed) != full)
		atomic_store(&ep->full, full);
}

static void after_batch(struct pw_loop *s, struct task *t, enum pw_verdict v, char *err,
			int64_t now);

/* How long this attempt may take: remote_timeout, cut to the earliest
 * deadline of the profiles it carries (a batch cannot outlive any of its
 * members: their callers may free the samples it reads once told). */
static int64_t attempt_budget(const struct task *t, int64_t now)
{
	int64_t budget = t->ep->cfg->remote_timeout_ns;

	for (const struct task *m = t; m; m = m->bnext)
		if (m->d->deadline_ns && m->d->deadline_ns - now < budget)
			budget = m->d->deadline_ns - now;
	return budget;
}

static void start_attempt(struct pw_loop *s, struct task *t, const char *auth, int64_t now)
{
	struct pw_endpoint *ep = t->ep;
	struct delivery *d = t->d;
	long timeout_ms = (long)(attempt_budget(t, now) / 1000000);
	char *err = NULL;
	bool configured;
	CURL *e;

	if (timeout_ms < 1)
		timeout_ms = 1;
	if (!t->bnext)
		t->blen = d->len;
	e = easy_get(s, ep, &configured);
	if (!e) {
		after_batch(s, t, PW_VERDICT_RETRY, pw_strdup("unavailable: out of memory"), now);
		return;
	}
	pw_task_free_headers(t);
	t->hdrs = attempt_headers(t, auth, timeout_ms);
	if (!t->hdrs || (!configured && pw_http_apply(e, ep->cfg, t->url, &err) < 0)) {
		easy_put(s, NULL, e);
		after_batch(s, t, PW_VERDICT_RETRY,
			    err ? err : pw_strdup("unavailable: cannot build the request"), now);
		return;
	}
	/* A reused handle keeps the endpoint's settings; only the URL varies
	 * (ingest paths and queries differ per delivery). */
	if (configured)
		curl_easy_setopt(e, CURLOPT_URL, t->url);
	pw_task_reset_response(t);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	if (d->segs || t->bnext) {
		/* Large samples the caller keeps alive: read from where they are.
		 * A batch: every member's body in turn, never copied together. */
		t->rd_task = t;
		t->rd_seg = 0;
		t->rd_off = 0;
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, t);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, t);
	} else {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->payload ? (char *)d->payload : "");
	}
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->blen);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->hdrs);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	/* Waiting for a connection that might multiplex only makes sense where
	 * HTTP/2 can be negotiated; on HTTP/1.1 it would queue every request
	 * behind the first one. */
	curl_easy_setopt(e, CURLOPT_PIPEWAIT,
			 ep->cfg->enable_http2 && strncasecmp(t->url, "https:", 6) == 0 ? 1L : 0L);
	/* Set either way: the handle may have served the other path before. */
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, d->ingest ? NULL : "gzip");
	t->easy = e;
	t->attempts++;
	t->attempt_start_ns = now;
	if (curl_multi_add_handle(s->multi, e) != CURLM_OK) {
		t->easy = NULL;
		easy_put(s, ep, e);
		after_batch(s, t, PW_VERDICT_RETRY,
			    pw_strdup("unavailable: cannot start the request"), now);
		return;
	}
	t->state = T_RUNNING;
	ep->running++;
	ep_publish(ep);
}

static void dispatch(struct pw_loop *s, struct task *t, int64_t now)
{
	struct pw_endpoint *ep = t->ep;
	struct delivery *d = t->d;
	char *auth = NULL, *err = NULL;

	if (d->deadline_ns && now >= d->deadline_ns) {
		if (!t->last_err)
			set_last_err(t, pw_strdup("deadline_exceeded: context deadline exceeded"));
		finish_task(s, t, false);
		return;
	}
	/* A push that may be batched always queues first: the pump takes
	 * everything this pass queued together (pump_endpoint()). */
	if (batching(t)) {
		park(s, t, T_QUEUED, now);
		want_pump(s, ep);
		return;
	}
	if (ep->running >= pw_climit_get(&ep->climit)) {
		park(s, t, T_QUEUED, now);
		return;
	}
	switch (pw_auth_header(ep->auth, now, &auth, &err)) {
	case PW_AUTH_READY:
		start_attempt(s, t, auth, now);
		if (auth) {
			pw_memzero(auth, strlen(auth));
			free(auth);
		}
		return;
	case PW_AUTH_PENDING:
		if (!start_token_request(s, ep, &err)) {
			after_attempt(s, t, PW_VERDICT_RETRY, err, now);
			return;
		}
		park(s, t, T_AUTH, now);
		return;
	case PW_AUTH_ERROR:
	default:
		t->attempts++;
		after_attempt(s, t, PW_VERDICT_RETRY,
			      err ? err : pw_strdup("unauthenticated: credentials unavailable"),
			      now);
		return;
	}
}

/* Whether the batch that would start with head is due: head has waited
 * max_wait, or what waits reaches a limit, or the engine is stopping. */
static bool batch_due(const struct pw_loop *s, const struct pw_endpoint *ep,
		      const struct task *head, int64_t now)
{
	const struct pw_batch_config *b = &ep->cfg->batch;

	return s->flushing || now - head->queued_ns >= b->max_wait_ns ||
	       ep->waitq_n >= (size_t)b->max_profiles || ep->waitq_bytes >= (uint64_t)b->max_bytes;
}

/*
 * Makes head the leader of a request and adds the pushes queued behind it
 * for the same tenant, in order, while the batch stays within max_profiles
 * and max_bytes. Members whose deadline has passed are left for their
 * timer to end.
 */
static void gather(struct pw_loop *s, struct pw_endpoint *ep, struct task *head, int64_t now)
{
	const struct pw_batch_config *b = &ep->cfg->batch;
	const char *tenant = pw_task_tenant(head);
	struct task **tail = &head->bnext, *next;

	unpark(s, head);
	head->bnext = NULL;
	head->bcount = 1;
	head->blen = head->d->len;
	for (struct task *m = ep->waitq_head; m && head->bcount < (size_t)b->max_profiles;
	     m = next) {
		next = m->next;
		if (!batching(m) || strcmp(pw_task_tenant(m), tenant) != 0 ||
		    (m->d->deadline_ns && now >= m->d->deadline_ns))
			continue;
		if (head->blen + m->d->len > (uint64_t)b->max_bytes)
			break;
		unpark(s, m);
		m->state = T_RUNNING;
		m->bnext = NULL;
		*tail = m;
		tail = &m->bnext;
		head->bcount++;
		head->blen += m->d->len;
	}
	pw_metrics_batch(ep->m, head->bcount);
}

/* Sends the batch led by the queue's head. False when it has to wait for
 * an OAuth2 token (the token's arrival pumps the queue again). */
static bool send_batch(struct pw_loop *s, struct pw_endpoint *ep, int64_t now)
{
	struct task *head = ep->waitq_head;
	char *auth = NULL, *err = NULL;

	switch (pw_auth_header(ep->auth, now, &auth, &err)) {
	case PW_AUTH_READY:
		gather(s, ep, head, now);
		start_attempt(s, head, auth, now);
		if (auth) {
			pw_memzero(auth, strlen(auth));
			free(auth);
		}
		return true;
	case PW_AUTH_PENDING:
		if (start_token_request(s, ep, &err))
			return false;
		break;
	case PW_AUTH_ERROR:
	default:
		if (!err)
			err = pw_strdup("unauthenticated: credentials unavailable");
		break;
	}
	unpark(s, head);
	head->attempts++;
	after_attempt(s, head, PW_VERDICT_RETRY, err, now);
	return true;
}

/* Starts queued tasks of an endpoint while it has free slots: with
 * `batch`, pushes go as batches once due; anything else one by one. */
static void pump_endpoint(struct pw_loop *s, struct pw_endpoint *ep, int64_t now)
{
	while (ep->waitq_head && ep->running < pw_climit_get(&ep->climit)) {
		struct task *t = ep->waitq_head;

		if (batching(t)) {
			if (!batch_due(s, ep, t, now) || !send_batch(s, ep, now))
				return;
			continue;
		}
		unpark(s, t);
		dispatch(s, t, now);
	}
}

/* Pumps the endpoints want_pump() listed. */
static void run_pumps(struct pw_loop *s, int64_t now)
{
	while (s->pump_eps) {
		struct pw_endpoint *ep = s->pump_eps;

		s->pump_eps = ep->pump_next;
		ep->pump_next = NULL;
		ep->pump_pending = false;
		pump_endpoint(s, ep, now);
		pw_endpoint_unref(ep);
	}
}

/*
 * What follows an attempt of t. *shared, when given, makes the members of
 * a batch wait alike: the first to be retried sets it (from its backoff
 * and the answer's Retry-After), the others take it, so they come back
 * together and go out as one request again.
 */
static void settle(struct pw_loop *s, struct task *t, enum pw_verdict v, char *err, int64_t now,
		   int64_t *shared)
{
	struct delivery *d = t->d;
	const struct pw_endpoint_config *c = t->ep->cfg;
	int64_t delay, ra;

	if (v == PW_VERDICT_DELIVERED) {
		free(err);
		atomic_store_explicit(&t->ep->failing, false, memory_order_relaxed);
		finish_task(s, t, true);
		return;
	}
	if (v != PW_VERDICT_DROP)
		atomic_store_explicit(&t->ep->failing, true, memory_order_relaxed);
	set_last_err(t, err);
	if (pw_log_enabled(&s->log, COMPONENT_LOG_DEBUG)) {
		char n[24];

		snprintf(n, sizeof(n), "%lld", (long long)t->bo.count);
		pw_log(&s->log, COMPONENT_LOG_DEBUG,
		       d->ingest ? "failed to ingest to endpoint" : "failed to push to endpoint",
		       "endpoint", c->display, "retries", n, "err", t->last_err, PW_LOG_END);
	}
	if (v == PW_VERDICT_DROP || d->canceled) {
		finish_task(s, t, false);
		return;
	}
	delay = pw_backoff_next(&t->bo, rng_next(s));
	if (delay < 0) {
		finish_task(s, t, false);
		return;
	}
	if (shared && *shared >= 0) {
		delay = *shared;
	} else {
		if ((t->last_http == 429 || t->last_http == 503) && t->retry_after[0]) {
			ra = pw_retry_after_parse(t->retry_after, (int64_t)time(NULL));
			if (ra > 0)
				delay = ra < c->max_backoff_ns ? ra : c->max_backoff_ns;
		}
		if (shared)
			*shared = delay;
	}
	/* A wait that would outlive the caller's deadline ends the loop now:
	 * the outcome is the same, the caller just learns it sooner. */
	if (d->deadline_ns && now + delay >= d->deadline_ns) {
		finish_task(s, t, false);
		return;
	}
	/* A queued profile is retried until it is older than queue.max_age. */
	if (d->durable && pwx_wall_ms() + delay / 1000000 >= d->expire_ms) {
		set_last_err(t, pw_asprintf("expired: older than queue.max_age; last error: %s",
					    t->last_err));
		d->expired = true;
		finish_task(s, t, false);
		return;
	}
	/* Once stopping, a queued profile whose attempt was under way when
	 * shelve_durable ran is shelved now rather than retried through the
	 * drain: it is still on disk and goes out after a restart. */
	if (d->durable && s->flushing) {
		d->canceled = true;
		set_last_err(t, pw_asprintf("canceled: the component is shutting down; last "
					    "error: %s",
					    t->last_err ? t->last_err : "unknown"));
		finish_task(s, t, false); /* frees d: its only task */
		return;
	}
	timer_add(s, t, now + delay);
}

static void after_attempt(struct pw_loop *s, struct task *t, enum pw_verdict v, char *err,
			  int64_t now)
{
	settle(s, t, v, err, now, NULL);
}

/*
 * What follows an attempt of t and of every member of its batch: the
 * request's outcome is each one's. Delivered: all are sent. Refused: all
 * fail with the server's message. Retryable: all wait the same time, so
 * the batch goes out again whole (each member still ends on its own when
 * its retries or its deadline run out).
 */
static void after_batch(struct pw_loop *s, struct task *t, enum pw_verdict v, char *err,
			int64_t now)
{
	struct task *m = t->bnext;
	int64_t shared = -1;

	t->bnext = NULL;
	t->rd_task = NULL;
	while (m) {
		struct task *next = m->bnext;

		m->bnext = NULL;
		m->state = T_NEW;
		m->attempts++;
		m->last_http = t->last_http;
		memcpy(m->retry_after, t->retry_after, sizeof(m->retry_after));
		settle(s, m, v, err ? pw_strdup(err) : NULL, now, &shared);
		m = next;
	}
	settle(s, t, v, err, now, &shared);
}

static void on_transfer_done(struct pw_loop *s, struct task *t, CURLcode rc)
{
	struct pw_endpoint *ep = t->ep;
	struct delivery *d = t->d;
	int64_t now = pwx_now_ns();
	struct pw_attempt a = {0};
	enum pw_verdict v;
	char *err = NULL;
	long status = 0;
	int inflight = ep->running; /* this request included */

	curl_multi_remove_handle(s->multi, t->easy);
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	ep->running--;
	ep_publish(ep);
	pw_metrics_observe(ep->m, d->ingest ? PW_LAT_INGEST_DOWNSTREAM : PW_LAT_PUSH_DOWNSTREAM,
			   (double)(now - t->attempt_start_ns) / 1e9);

	if (rc == CURLE_OK) {
		a.transport = PW_TRANSPORT_OK;
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		a.transport = PW_TRANSPORT_TIMEOUT;
	} else {
		a.transport = PW_TRANSPORT_ERROR;
		a.transport_error = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
	}
	a.http_status = status;
	if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &a.content_type) != CURLE_OK)
		a.content_type = NULL;
	/* libcurl has already decoded a gzip body it was asked to accept. */
	a.content_encoding = NULL;
	a.body = (const uint8_t *)t->body.data;
	a.body_len = t->body.len;
	t->last_http = rc == CURLE_OK ? status : 0;
	if (d->ingest)
		v = pw_classify_ingest(&a, ep->cfg->retry_on_http_429, &err);
	else
		v = pw_classify_push(&a, ep->cfg->retry_on_http_429, NULL, &err);
	easy_put(s, ep, t->easy);
	t->easy = NULL;
	/* Only answers the server accepted say how long a request takes when
	 * all goes well. */
	if (v == PW_VERDICT_DELIVERED) {
		pw_climit_sample(&ep->climit, now, now - t->attempt_start_ns, inflight);
		atomic_store_explicit(&ep->limit_now, pw_climit_get(&ep->climit),
				      memory_order_relaxed);
		ep_publish(ep);
	}
	/* The task's delivery may end here and take the last reference to an
	 * endpoint that a reload removed: keep it alive for the pump. */
	atomic_fetch_add(&ep->refs, 1);
	after_batch(s, t, v, err, now);
	pump_endpoint(s, ep, now);
	pw_endpoint_unref(ep);
}

static void on_token_done(struct pw_loop *s, struct pw_endpoint *ep, CURLcode rc)
{
	int64_t now = pwx_now_ns();
	struct task *waiting = ep->authq_head;
	char *err = NULL;
	CURL *e = ep->token.easy;
	int ok;

	curl_multi_remove_handle(s->multi, e);
	ep->token.easy = NULL;
	for (struct pw_endpoint **pp = &s->token_eps; *pp; pp = &(*pp)->token_next) {
		if (*pp == ep) {
			*pp = ep->token_next;
			break;
		}
	}
	ok = pw_auth_token_done(ep->auth, e, rc, now, &err) == 0;
	/* Take the whole queue first: a task dispatched now may wait for a
	 * new token, and that one is for later. */
	ep->authq_head = ep->authq_tail = NULL;
	while (waiting) {
		struct task *t = waiting;

		waiting = t->next;
		t->next = t->prev = NULL;
		pw_timerheap_remove(&s->timers, &t->timer);
		t->state = T_NEW;
		if (ok) {
			dispatch(s, t, now);
		} else {
			t->attempts++;
			after_attempt(s, t, PW_VERDICT_RETRY,
				      pw_asprintf("unavailable: oauth2 token request failed: %s",
						  err ? err : "unknown error"),
				      now);
		}
	}
	free(err);
	/* Batches wait for the token in the connection queue. */
	if (ep->cfg->batch.set)
		want_pump(s, ep);
	pw_endpoint_unref(ep);
}

static void take_incoming(struct pw_loop *s, int64_t now)
{
	struct delivery *list;

	list = pw_handoff_take(&s->eng->in);

	while (list) {
		struct delivery *d = list;

		list = d->next;
		d->prev = NULL;
		d->next = s->active;
		if (s->active)
			s->active->prev = d;
		s->active = d;
		if (d->ntasks == 0) {
			complete_delivery(s, d);
			continue;
		}
		for (size_t i = 0; i < d->ntasks; i++) {
			d->tasks[i].ep_start_ns = now;
			pw_metrics_inflight_add(d->tasks[i].ep->m, 1);
		}
		/* Only the last task to end can free d, and a task can only end
		 * once dispatched: stop right after the last dispatch. */
		for (size_t i = 0, n = d->ntasks; i < n; i++)
			dispatch(s, &d->tasks[i], now);
	}
	run_pumps(s, now);
}

/* A task that waited for a connection slot or a token until its
 * delivery's deadline. */
static void expire_parked(struct pw_loop *s, struct task *t)
{
	unpark(s, t);
	if (!t->last_err)
		set_last_err(t, pw_strdup("deadline_exceeded: context deadline exceeded"));
	finish_task(s, t, false);
}

/* Runs what is due; returns when the next timer is due (INT64_MAX: none). */
static int64_t fire_timers(struct pw_loop *s, int64_t now)
{
	struct task *due = NULL, **tail = &due;
	struct pw_timer *tm;

	/* Retries due now are collected first and started after: one that
	 * fails at once waits for its next timer, not this pass. Expiring a
	 * parked task cannot free a collected one, whose delivery still has
	 * that task to finish. */
	while ((tm = pw_timerheap_pop_due(&s->timers, now))) {
		struct task *t = TASK_OF_TIMER(tm);

		if (t->state == T_QUEUED && batching(t) &&
		    !(t->d->deadline_ns && now >= t->d->deadline_ns)) {
			/* Waited max_wait: its batch is due. */
			if (t->d->deadline_ns)
				pw_timerheap_add(&s->timers, &t->timer, t->d->deadline_ns);
			want_pump(s, t->ep);
			continue;
		}
		if (t->state != T_WAIT) {
			expire_parked(s, t);
			continue;
		}
		t->next = NULL;
		*tail = t;
		tail = &t->next;
	}
	while (due) {
		struct task *t = due;

		due = t->next;
		t->next = NULL;
		t->state = T_NEW;
		if (abandon_durable(s, t))
			continue;
		pw_metrics_retry(t->ep->m);
		dispatch(s, t, now);
	}
	run_pumps(s, now);
	tm = pw_timerheap_min(&s->timers);
	return tm ? tm->due_ns : INT64_MAX;
}

/* Once stopping: batches still gathering go now, without waiting for
 * max_wait. */
static void flush_batches(struct pw_loop *s, int64_t now)
{
	s->flushing = true;
	for (struct delivery *d = s->active; d; d = d->next)
		for (size_t i = 0; i < d->ntasks; i++)
			if (d->tasks[i].state == T_QUEUED && batching(&d->tasks[i]))
				want_pump(s, d->tasks[i].ep);
	run_pumps(s, now);
}

/*
 * Once stopping: queued profiles waiting for a retry end at once instead of
 * holding the drain. They are still on disk and go out after a restart.
 */
static void shelve_durable(struct pw_loop *s)
{
	struct delivery *d = s->active;

	while (d) {
		struct delivery *next = d->next;
		struct task *t = &d->tasks[0];

		if (d->durable && t->state == T_WAIT) {
			pw_timerheap_remove(&s->timers, &t->timer);
			d->canceled = true;
			set_last_err(t, pw_asprintf("canceled: the component is shutting down%s%s",
						    t->last_err ? "; last error: " : "",
						    t->last_err ? t->last_err : ""));
			finish_task(s, t, false); /* frees d: its only task */
		}
		d = next;
	}
}

/* Ends every delivery still under way: used when the drain time is up. */
static void cancel_all(struct pw_loop *s)
{
	pw_timerheap_init(&s->timers);
	while (s->active) {
		struct delivery *d = s->active;

		d->canceled = true;
		for (size_t i = 0; i < d->ntasks; i++) {
			struct task *t = &d->tasks[i];
			bool last;

			if (t->state == T_DONE)
				continue;
			t->ep->waitq_head = t->ep->waitq_tail = NULL;
			t->ep->authq_head = t->ep->authq_tail = NULL;
			t->ep->waitq_n = 0;
			t->ep->waitq_bytes = 0;
			t->next = t->prev = NULL;
			t->bnext = NULL;
			t->timer.armed = false;
			if (t->state == T_RUNNING && t->easy) {
				curl_multi_remove_handle(s->multi, t->easy);
				easy_put(s, t->ep, t->easy);
				t->easy = NULL;
				t->ep->running--;
				ep_publish(t->ep);
			}
			set_last_err(t, pw_asprintf("canceled: the component is shutting down%s%s",
						    t->last_err ? "; last error: " : "",
						    t->last_err ? t->last_err : ""));
			last = d->remaining == 1;
			finish_task(s, t, false);
			if (last)
				break;
		}
	}
}

static void drain_messages(struct pw_loop *s)
{
	CURLMsg *msg;
	int left;

	s->defer_done = true;
	while ((msg = curl_multi_info_read(s->multi, &left))) {
		int *kind = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&kind);
		if (!kind)
			continue;
		if (*kind == XFER_TASK) {
			on_transfer_done(s, (struct task *)kind, msg->data.result);
		} else {
			on_token_done(s, ((struct token_xfer *)kind)->ep, msg->data.result);
		}
	}
	run_pumps(s, pwx_now_ns());
	flush_done(s);
}

/* The handoff's wake callback: producers wake the loop through it. */
static void wake_loop(void *arg)
{
	struct pw_loop *s = arg;

	curl_multi_wakeup(s->multi);
}

static void *io_main(void *arg)
{
	struct pw_loop *s = arg;

	pthread_setname_np(pthread_self(), "pw-io");

	for (;;) {
		int64_t now = pwx_now_ns(), next, wait_ns;
		struct pw_handoff_state st;
		bool stopping, incoming;
		int64_t drain_deadline;
		int running = 0;
		long timeout_ms;

		take_incoming(s, now);
		now = pwx_now_ns();
		next = fire_timers(s, now);
		if (now >= s->next_sweep_ns) {
			release_pools(s, false);
			s->next_sweep_ns = now + POOL_SWEEP_NS;
		}
		curl_multi_perform(s->multi, &running);
		drain_messages(s);

		st = pw_handoff_state(&s->eng->in);
		stopping = st.stopping;
		drain_deadline = st.drain_deadline_ns;
		incoming = st.pending;
		if (stopping) {
			if (!s->active && !incoming)
				break;
			if (!s->flushing) {
				s->defer_done = true;
				shelve_durable(s);
				flush_done(s);
				flush_batches(s, pwx_now_ns());
			}
			if (pwx_now_ns() >= drain_deadline) {
				take_incoming(s, pwx_now_ns());
				cancel_all(s);
				continue;
			}
		}

		now = pwx_now_ns();
		/* Cached buffers and handles are for a steady flow; after a
		 * while with nothing under way they go back to the system. */
		if (s->active || incoming) {
			s->idle_since_ns = 0;
			s->idle_released = false;
		} else if (!s->idle_since_ns) {
			s->idle_since_ns = now;
		} else if (now - s->idle_since_ns >= IDLE_RELEASE_NS) {
			if (!s->idle_released) {
				release_idle_memory(s);
				s->idle_released = true;
			} else {
				/* A failed submit may have returned a buffer. */
				pw_bufcache_trim(&s->eng->budget.bufs);
			}
			s->idle_since_ns = now;
		}
		wait_ns = 1000 * 1000000LL;
		if (next != INT64_MAX && next - now < wait_ns)
			wait_ns = next - now;
		if (stopping && drain_deadline - now < wait_ns)
			wait_ns = drain_deadline - now;
		if (s->active && POOL_SWEEP_NS < wait_ns)
			wait_ns = POOL_SWEEP_NS;
		/* A producer skips the wakeup while its endpoints are full
		 * (pw_handoff_put()); what it queued is taken on the next pass. */
		if (incoming)
			wait_ns = 0;
		timeout_ms = wait_ns <= 0 ? 0 : (long)((wait_ns + 999999) / 1000000);
		curl_multi_poll(s->multi, NULL, 0, (int)timeout_ms, NULL);
	}
	/* Token requests nobody waits for any more. */
	while (s->token_eps) {
		struct pw_endpoint *ep = s->token_eps;
		CURL *e = ep->token.easy;

		s->token_eps = ep->token_next;
		curl_multi_remove_handle(s->multi, e);
		ep->token.easy = NULL;
		pw_auth_token_done(ep->auth, e, CURLE_ABORTED_BY_CALLBACK, pwx_now_ns(), NULL);
		pw_endpoint_unref(ep);
	}
	while (s->pump_eps) {
		struct pw_endpoint *ep = s->pump_eps;

		s->pump_eps = ep->pump_next;
		ep->pump_pending = false;
		pw_endpoint_unref(ep);
	}
	release_pools(s, true);
	return NULL;
}

/* Frees the loop once its thread has ended (or never started). */
static void loop_free(struct pw_loop *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->npool; i++)
		curl_easy_cleanup(s->pool[i]);
	if (s->multi)
		curl_multi_cleanup(s->multi);
	free(s);
}

static struct pw_loop *loop_new(struct pw_sender *eng)
{
	struct pw_loop *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->eng = eng;
	s->log = eng->log;
	pw_timerheap_init(&s->timers);
	s->total_m = pw_metrics_endpoint(eng->metrics, "-");
	if (getrandom(&s->rng, sizeof(s->rng), 0) != sizeof(s->rng) || s->rng == 0)
		s->rng = (uint64_t)pwx_now_ns() | 1;
	s->multi = curl_multi_init();
	if (!s->total_m || !s->multi) {
		loop_free(s);
		return NULL;
	}
	/* Keep enough idle connections for every endpoint's bound. */
	curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, 1024L);
	curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	return s;
}

struct pw_sender *pw_sender_new(const struct pw_sender_opts *opts, char **err)
{
	struct pw_sender *s = calloc(1, sizeof(*s));

	if (!s)
		goto oom;
	pw_budget_init(&s->budget);
	s->log = opts->log;
	s->metrics = opts->metrics;
	s->user_agent = pw_strdup(opts->user_agent ? opts->user_agent : "pyroscope-write");
	s->instance_id =
		pw_strdup(opts->instance_id && *opts->instance_id ? opts->instance_id : NULL);
	s->id.user_agent = s->user_agent;
	s->id.instance_id = s->instance_id;
	s->id.metrics = s->metrics;
	s->loop = s->user_agent ? loop_new(s) : NULL;
	pw_handoff_init(&s->in, wake_loop, s->loop);
	if (!s->loop)
		goto oom;
	if (pthread_create(&s->loop->thread, NULL, io_main, s->loop) != 0) {
		if (err)
			*err = pw_asprintf("cannot start the I/O thread: %s", strerror(errno));
		pw_sender_free(s, 0);
		return NULL;
	}
	s->loop->thread_started = true;
	return s;
oom:
	if (err)
		*err = strdup("out of memory");
	pw_sender_free(s, 0);
	return NULL;
}

void pw_sender_free(struct pw_sender *s, int64_t drain_ns)
{
	if (!s)
		return;
	if (s->loop && s->loop->thread_started) {
		pw_handoff_stop(&s->in, pwx_now_ns() + (drain_ns > 0 ? drain_ns : 0));
		pthread_join(s->loop->thread, NULL);
	}
	loop_free(s->loop);
	free(s->user_agent);
	free(s->instance_id);
	pw_budget_destroy(&s->budget);
	pw_handoff_destroy(&s->in);
	free(s);
}

struct pw_snapshot *pw_snapshot_new(struct pw_sender *s, struct pw_config *cfg,
				    const struct pw_snapshot *prev, char **err)
{
	return pw_snapshot_build(&s->id, cfg, prev, err);
}
