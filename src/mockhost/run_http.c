/*
 * run_http.c - the HTTP side of `mockhost run`: routing, the receivers
 * (/ingest and Connect Push), the operational endpoints (/metrics with the
 * host's own metrics, /-/healthy, /-/ready, /-/reload, /debug) and the
 * per-route request counters.
 *
 * Handlers run on the stand-in server's connection threads and call into
 * the instance only through the gate in run.c. The receivers use the
 * asynchronous forms of the receiver and wait for the completion callback:
 * destroy() fires every outstanding callback, so a handler blocked on a
 * slow delivery is released at shutdown instead of running concurrently
 * with destroy().
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "component_abi.h"
#include "proto.h"
#include "proto_decode.h"
#include "pw_version.h"
#include "pyroscope_write.h"
#include "reqparse.h"
#include "run_http.h"
#include "run_state.h"
#include "util/clock.h"
#include "util/connect_error.h"
#include "sdkname.h"
#include "listen/listen.h"
#include "util/gzip.h"
#include "strbuf.h"

#define MAX_METRICS_TEXT ((size_t)64 << 20)

static const char *const route_paths[R_COUNT] = {
	"/ingest",  "/push.v1.PusherService/Push",
	"/metrics", "/-/healthy",
	"/-/ready", "/-/reload",
	"/debug",   "other",
};

/*
 * One request's state, from its head until it is over (the listener's
 * done callback). A receiver request keeps here what its deliveries
 * borrow until their callbacks have run.
 */
struct rq {
	struct run *r;
	struct listen_request *req;
	enum route rt;
	bool counted_inflight; /* holds one of --conn-limit's slots */
	/* The answer being built. */
	int status;
	char *body;
	size_t body_len;
	bool close;
	/* Receivers: completions still to come (plus one for the submitter). */
	pthread_mutex_t mu;
	size_t pending;
	int result; /* first failure, or COMPONENT_OK */
	int http_status; /* ingest: the downstream status */
	/* The first few error texts, then only a count: one push of many bad
	 * series must not make an answer (and a log line) of every one. */
	struct strbuf errors;
	size_t nerrors;
	/* What the deliveries borrow. */
	struct pw_dec_push dec;
	bool decoded;
	uint8_t *inflated;
};

/* ---- HTTP plumbing ---- */

static void count_request(struct run *r, enum route rt, int code)
{
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->nrows; i++) {
		if (r->rows[i].route == rt && r->rows[i].code == code) {
			r->rows[i].count++;
			goto out;
		}
	}
	if (r->nrows < MAX_STAT_ROWS)
		r->rows[r->nrows++] = (struct stat_row){rt, code, 1};
out:
	pthread_mutex_unlock(&r->mu);
}

/* Counts and sends the answer built in q. q->req must not be used after. */
static void answer_send(struct rq *q)
{
	struct listen_request *req = q->req;
	char *body = q->body;

	q->body = NULL;
	q->req = NULL;
	count_request(q->r, q->rt, q->status ? q->status : 200);
	listen_reply(req, q->status ? q->status : 200, body, q->body_len, q->close);
}

static void set_body(struct rq *q, const char *text, size_t len)
{
	free(q->body);
	q->body = malloc(len + 1);
	q->body_len = q->body ? len : 0;
	if (q->body) {
		memcpy(q->body, text, len);
		q->body[len] = '\0';
	}
}

static void answer_text(struct rq *q, int status, const char *text)
{
	q->status = status;
	listen_add_header(q->req, "Content-Type", "text/plain; charset=utf-8");
	set_body(q, text, strlen(text));
}

/* A Connect error: JSON {"code","message"} with its HTTP status. */
static void answer_connect_error(struct rq *q, int status, const char *code, const char *message)
{
	char *text = pwx_connect_error_body(code, message);

	q->status = status;
	listen_add_header(q->req, "Content-Type", "application/json");
	if (text)
		set_body(q, text, strlen(text));
	free(text);
}

static bool method_is(const struct rq *q, const char *m)
{
	return strcmp(listen_method(q->req), m) == 0;
}

static void answer_method_not_allowed(struct rq *q, const char *allow)
{
	answer_text(q, 405, "method not allowed\n");
	listen_add_header(q->req, "Allow", allow);
}

/* ---- completions ---- */

#define MAX_ERRORS_SHOWN 3

static void fail_locked(struct rq *q, int status, int http_status, const char *error)
{
	if (q->result == COMPONENT_OK) {
		q->result = status;
		q->http_status = http_status;
	}
	if (error && *error && q->nerrors++ < MAX_ERRORS_SHOWN) {
		if (q->errors.len)
			strbuf_putc(&q->errors, '\n');
		strbuf_puts(&q->errors, error);
	}
}

/* The errors as one text, with how many were left out. Call after the
 * last completion. */
static const char *rq_errors(struct rq *q, const char *fallback)
{
	if (q->nerrors > MAX_ERRORS_SHOWN) {
		strbuf_printf(&q->errors, "\n(and %zu more errors)", q->nerrors - MAX_ERRORS_SHOWN);
		q->nerrors = MAX_ERRORS_SHOWN;
	}
	return q->errors.data ? q->errors.data : fallback;
}

static void ingest_answer(struct rq *q);
static void push_answer(struct rq *q);

/* One completion less; the last one answers. Any thread. */
static void rq_settle(struct rq *q, const struct pw_result *res)
{
	bool last;

	pthread_mutex_lock(&q->mu);
	if (res && res->status != COMPONENT_OK)
		fail_locked(q, res->status, res->http_status, res->error);
	else if (res && q->result == COMPONENT_OK)
		q->http_status = res->http_status;
	last = --q->pending == 0;
	pthread_mutex_unlock(&q->mu);
	if (!last)
		return;
	if (q->rt == R_INGEST)
		ingest_answer(q);
	else
		push_answer(q);
}

static void rq_done(void *user, const struct pw_result *res)
{
	rq_settle(user, res);
}

/* ---- receivers ---- */

static void ingest_answer(struct rq *q)
{
	struct run *r = q->r;

	if (q->result == COMPONENT_OK) {
		q->status = 200;
	} else {
		int code = q->http_status > 0		      ? q->http_status
			   : q->result == COMPONENT_ESHUTDOWN ? 503
							      : 500;
		const char *text = q->http_status > 0		      ? listen_status_text(code)
				   : q->result == COMPONENT_ESHUTDOWN ? "shutting down"
								      : "Failed to process request";
		char *body = pw_asprintf("%s\n", text);

		run_log1(r, COMPONENT_LOG_WARN, "ingest failed", "err",
			 rq_errors(q, r->d->strerror(q->result)), NULL, NULL);
		answer_text(q, code, body ? body : "error\n");
		free(body);
	}
	answer_send(q);
}

/* Starts an ingest; the answer is sent when it completes. False when it
 * was answered at once (q filled). */
static bool handle_ingest(struct run *r, struct rq *q)
{
	const char *ctypes[64];
	struct pw_label *labels = NULL;
	struct pw_kv *kv = NULL;
	size_t nkv = 0, nct;
	char *name = NULL, *err = NULL;
	struct pw_ingest in = {0};
	bool started = false;
	int st;

	if (!method_is(q, "POST")) {
		answer_method_not_allowed(q, "POST");
		goto out;
	}
	nct = listen_header_all(q->req, "Content-Type", ctypes, 64);
	if (nct > 64) {
		answer_text(q, 400, "too many Content-Type headers\n");
		goto out;
	}
	/* As pyroscope.receive_http: a name that does not parse leaves the
	 * label set empty and the component refuses the profile. */
	name = sdk_query_param(listen_target(q->req), "name");
	if (name && sdk_name_labels(name, &kv, &nkv, &err) < 0) {
		run_log1(r, COMPONENT_LOG_DEBUG, "cannot parse the SDK name", "name", name, "err",
			 err ? err : "");
		free(err);
	}
	labels = calloc(nkv + 1, sizeof(*labels));
	if (!labels) {
		answer_text(q, 500, "out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < nkv; i++) {
		labels[i].name = kv[i].key;
		labels[i].value = kv[i].value;
	}
	in.struct_size = sizeof(in);
	in.path_query = listen_target(q->req);
	in.content_types = ctypes;
	in.ncontent_types = nct;
	in.body = listen_body(q->req, &in.body_len);
	in.labels = labels;
	in.nlabels = nkv;
	/* The body stays until the answer, sent after the callback. */
	in.flags = PW_INGEST_KEEP_UNTIL_DONE;

	if (!run_gate_enter(r)) {
		answer_text(q, 503, "shutting down\n");
		q->close = true;
		goto out;
	}
	q->pending = 1;
	q->result = COMPONENT_OK;
	started = true;
	st = r->rx->ingest_async(r->rx->ctx, &in, pwx_now_ns() + r->request_timeout_ns, rq_done, q);
	run_gate_leave(r);
	if (st != COMPONENT_OK) {
		pthread_mutex_lock(&q->mu);
		fail_locked(q, st, 0, r->d->strerror(st));
		pthread_mutex_unlock(&q->mu);
		rq_settle(q, NULL);
	}
out:
	sdk_labels_free(kv, nkv);
	free(labels);
	free(name);
	return started;
}

/*
 * A failed push as a Connect error. What the component refused before
 * sending (invalid labels) is the client's mistake: 400, which a
 * pyroscope.write upstream does not retry. A full max_inflight_bytes is
 * 429, which it retries after backing off.
 */
static void answer_push_failure(struct rq *q, int status, const char *msg)
{
	switch (status) {
	case COMPONENT_EINVAL:
		answer_connect_error(q, 400, "invalid_argument", msg);
		break;
	case COMPONENT_EOVERLOAD:
		answer_connect_error(q, 429, "resource_exhausted", msg);
		break;
	case COMPONENT_ESHUTDOWN:
		answer_connect_error(q, 503, "unavailable", msg);
		break;
	default:
		answer_connect_error(q, 500, "internal", msg);
		break;
	}
}

/* Submits one series; the arrays only need to live for the call, the
 * sample bytes until its callback has run. */
static int submit_series(struct run *r, const struct pw_dec_series *s, int64_t deadline,
			 struct rq *q)
{
	struct pw_label *labels = calloc(s->nlabels + 1, sizeof(*labels));
	struct pw_sample *samples = calloc(s->nsamples + 1, sizeof(*samples));
	struct pw_push p = {0};
	int st = COMPONENT_ENOMEM;

	if (!labels || !samples)
		goto out;
	for (size_t i = 0; i < s->nlabels; i++) {
		labels[i].name = s->labels[i].key;
		labels[i].value = s->labels[i].value;
	}
	for (size_t i = 0; i < s->nsamples; i++) {
		samples[i].data = s->samples[i].data;
		samples[i].len = s->samples[i].len;
		samples[i].id = s->samples[i].id;
	}
	p.struct_size = sizeof(p);
	p.labels = labels;
	p.nlabels = s->nlabels;
	p.samples = samples;
	p.nsamples = s->nsamples;
	/* The samples point into the request body (or q->inflated), which
	 * stay until the answer, sent after every callback: large ones need
	 * not be copied. */
	p.flags = PW_PUSH_KEEP_UNTIL_DONE;
	st = r->rx->push_async(r->rx->ctx, &p, deadline, rq_done, q);
out:
	free(labels);
	free(samples);
	return st;
}

static void push_answer(struct rq *q)
{
	struct run *r = q->r;

	if (q->result == COMPONENT_OK) {
		q->status = 200;
		listen_add_header(q->req, "Content-Type", "application/proto");
	} else {
		const char *msg = rq_errors(q, r->d->strerror(q->result));

		run_log1(r, COMPONENT_LOG_WARN, "push failed", "err", msg, NULL, NULL);
		answer_push_failure(q, q->result, msg);
	}
	answer_send(q);
}

/* Checks and decodes a push into q->dec. False when answered (q filled). */
static bool push_decode(struct rq *q, int64_t *ms, bool *has_tmo)
{
	const char *ct = listen_header(q->req, "Content-Type");
	const char *ver = listen_header(q->req, "Connect-Protocol-Version");
	const char *tmo = listen_header(q->req, "Connect-Timeout-Ms");
	const char *enc = listen_header(q->req, "Content-Encoding");
	size_t body_len;
	const uint8_t *body = listen_body(q->req, &body_len);
	char mt[128], *err = NULL;

	if (!method_is(q, "POST")) {
		answer_method_not_allowed(q, "POST");
		return false;
	}
	if (strcmp(reqparse_media_type(ct, mt, sizeof(mt)), "application/proto") != 0) {
		/* connect-go answers an unsupported codec with a bare 415. */
		q->status = 415;
		listen_add_header(q->req, "Accept-Post", "application/proto");
		return false;
	}
	if (ver && strcmp(ver, "1") != 0) {
		answer_connect_error(q, 400, "invalid_argument",
				     "Connect-Protocol-Version must be \"1\"");
		return false;
	}
	*has_tmo = tmo != NULL;
	if (tmo && reqparse_timeout_ms(tmo, ms) < 0) {
		answer_connect_error(q, 400, "invalid_argument",
				     "Connect-Timeout-Ms must be 1 to 10 digits");
		return false;
	}
	if (reqparse_encoding(enc) == REQPARSE_ENC_GZIP) {
		size_t n = 0;

		if (pwx_gunzip(body, body_len, (size_t)q->r->max_body, 0, &q->inflated, &n) < 0) {
			answer_connect_error(q, 400, "invalid_argument",
					     "the gzip request body cannot be inflated");
			return false;
		}
		/* The inflated copy is held until the answer: it counts
		 * against the same budget as the body. */
		if (listen_reserve(q->req, n) < 0) {
			answer_connect_error(q, 429, "resource_exhausted",
					     "the inflated body does not fit the memory budget");
			return false;
		}
		body = q->inflated;
		body_len = n;
	} else if (reqparse_encoding(enc) == REQPARSE_ENC_OTHER) {
		answer_connect_error(q, 501, "unimplemented", "unsupported Content-Encoding");
		return false;
	}
	if (pw_proto_decode_push(body, body_len, &q->dec, &err) < 0) {
		char *msg = pw_asprintf("cannot decode the push request: %s", err ? err : "");

		answer_connect_error(q, 400, "invalid_argument", msg ? msg : "bad request");
		free(msg);
		free(err);
		return false;
	}
	q->decoded = true;
	return true;
}

/* Starts a push; the answer is sent when every series completes. False
 * when it was answered at once (q filled). */
static bool handle_push(struct run *r, struct rq *q)
{
	int64_t deadline, ms = 0;
	bool has_tmo = false;

	if (!push_decode(q, &ms, &has_tmo))
		return false;
	deadline = pwx_now_ns() + (has_tmo ? ms * 1000000LL : r->request_timeout_ns);
	if (!run_gate_enter(r)) {
		answer_connect_error(q, 503, "unavailable", "shutting down");
		q->close = true;
		return false;
	}
	/* One push per series, all under way at once, as Alloy's handler
	 * appends each series to every target. The submitter holds one count
	 * so that no completion answers before every series is submitted. */
	q->pending = q->dec.nseries + 1;
	q->result = COMPONENT_OK;
	for (size_t i = 0; i < q->dec.nseries; i++) {
		int st = submit_series(r, &q->dec.series[i], deadline, q);

		if (st != COMPONENT_OK) {
			pthread_mutex_lock(&q->mu);
			fail_locked(q, st, 0, r->d->strerror(st));
			pthread_mutex_unlock(&q->mu);
			rq_settle(q, NULL);
		}
	}
	run_gate_leave(r);
	rq_settle(q, NULL);
	return true;
}

/* ---- operational endpoints ---- */

static int sink_strbuf(void *user, const char *data, size_t len)
{
	return strbuf_append(user, data, len);
}

static void host_metrics(struct run *r, struct strbuf *sb)
{
	pthread_mutex_lock(&r->mu);
	strbuf_puts(sb, "# HELP mockhost_http_requests_total HTTP requests served, by route and "
			"status code.\n"
			"# TYPE mockhost_http_requests_total counter\n");
	for (size_t i = 0; i < r->nrows; i++)
		strbuf_printf(sb, "mockhost_http_requests_total{path=\"%s\",code=\"%d\"} %llu\n",
			      route_paths[r->rows[i].route], r->rows[i].code,
			      (unsigned long long)r->rows[i].count);
	strbuf_printf(sb,
		      "# HELP mockhost_reloads_total Configuration reloads, by result.\n"
		      "# TYPE mockhost_reloads_total counter\n"
		      "mockhost_reloads_total{result=\"success\"} %llu\n"
		      "mockhost_reloads_total{result=\"failure\"} %llu\n"
		      "# HELP mockhost_config_last_reload_successful Whether the last reload was "
		      "applied (1) or refused (0).\n"
		      "# TYPE mockhost_config_last_reload_successful gauge\n"
		      "mockhost_config_last_reload_successful %d\n"
		      "# HELP mockhost_inflight_requests Receiver requests (/ingest and Push) "
		      "being served.\n"
		      "# TYPE mockhost_inflight_requests gauge\n"
		      "mockhost_inflight_requests %ld\n"
		      "# HELP mockhost_inflight_requests_limit The most receiver requests served "
		      "at once.\n"
		      "# TYPE mockhost_inflight_requests_limit gauge\n"
		      "mockhost_inflight_requests_limit %ld\n"
		      "# HELP mockhost_limited_requests_total Receiver requests refused because "
		      "the limit was reached.\n"
		      "# TYPE mockhost_limited_requests_total counter\n"
		      "mockhost_limited_requests_total %llu\n"
		      "# HELP mockhost_build_info The mock host's version.\n"
		      "# TYPE mockhost_build_info gauge\n"
		      "mockhost_build_info{version=\"%s\"} 1\n",
		      (unsigned long long)r->reloads_ok, (unsigned long long)r->reloads_failed,
		      r->last_reload_ok ? 1 : 0, r->inflight, r->conn_limit,
		      (unsigned long long)r->limited, PW_VERSION);
	pthread_mutex_unlock(&r->mu);
	if (!r->listener)
		return;
	strbuf_printf(sb,
		      "# HELP mockhost_connections TCP connections open now.\n"
		      "# TYPE mockhost_connections gauge\n"
		      "mockhost_connections %zu\n"
		      "# HELP mockhost_connections_limit The most TCP connections open at once "
		      "(--max-connections plus room for operational requests).\n"
		      "# TYPE mockhost_connections_limit gauge\n"
		      "mockhost_connections_limit %ld\n"
		      "# HELP mockhost_refused_connections_total Connections closed because the "
		      "limit was reached.\n"
		      "# TYPE mockhost_refused_connections_total counter\n"
		      "mockhost_refused_connections_total %llu\n"
		      "# HELP mockhost_http_rejected_total Requests and connections the listener "
		      "refused, by reason.\n"
		      "# TYPE mockhost_http_rejected_total counter\n",
		      listen_connections(r->listener), r->max_conns + OPS_CONN_HEADROOM,
		      (unsigned long long)listen_rejected(r->listener, LISTEN_REJ_CONN_LIMIT));
	for (int i = 0; i < LISTEN_REJ_COUNT; i++)
		strbuf_printf(
			sb, "mockhost_http_rejected_total{reason=\"%s\"} %llu\n",
			listen_reason_name((enum listen_reason)i),
			(unsigned long long)listen_rejected(r->listener, (enum listen_reason)i));
}

/* Answers 200 with the text built in sb, which the answer takes over. */
static void answer_200(struct rq *q, const char *content_type, struct strbuf *sb)
{
	size_t len;
	char *text = strbuf_detach(sb, &len);

	q->status = 200;
	listen_add_header(q->req, "Content-Type", content_type);
	free(q->body);
	q->body = text;
	q->body_len = len;
}

static void handle_metrics(struct run *r, struct rq *q)
{
	struct strbuf sb;

	strbuf_init(&sb, MAX_METRICS_TEXT);
	if (run_gate_enter(r)) {
		r->d->metrics(r->inst, sink_strbuf, &sb);
		run_gate_leave(r);
		/* The plugin's text ends with a newline; make sure anyway. */
		if (sb.len && sb.data[sb.len - 1] != '\n')
			strbuf_putc(&sb, '\n');
	}
	host_metrics(r, &sb);
	if (sb.failed) {
		strbuf_free(&sb);
		answer_text(q, 500, "metrics too large\n");
		return;
	}
	answer_200(q, "text/plain; version=0.0.4; charset=utf-8", &sb);
}

static void handle_debug(struct run *r, struct rq *q)
{
	struct strbuf sb;

	if (!r->d->debug_info) {
		answer_text(q, 404, "the plugin has no debug information\n");
		return;
	}
	strbuf_init(&sb, MAX_METRICS_TEXT);
	if (!run_gate_enter(r)) {
		strbuf_free(&sb);
		answer_text(q, 503, "shutting down\n");
		return;
	}
	r->d->debug_info(r->inst, sink_strbuf, &sb);
	run_gate_leave(r);
	strbuf_putc(&sb, '\n');
	answer_200(q, "application/json", &sb);
}

static void handle_healthy(struct run *r, struct rq *q)
{
	struct component_health *h = calloc(1, sizeof(*h));
	char *reason = NULL, *body;

	if (!h) {
		answer_text(q, 500, "out of memory\n");
		return;
	}
	h->struct_size = sizeof(*h);
	pthread_mutex_lock(&r->mu);
	reason = pw_strdup(r->host_reason);
	pthread_mutex_unlock(&r->mu);
	if (!reason) {
		if (!run_gate_enter(r)) {
			reason = pw_strdup("shutting down");
		} else {
			int st = r->d->health(r->inst, h);

			run_gate_leave(r);
			if (st != COMPONENT_OK)
				reason = pw_asprintf("health: %s", r->d->strerror(st));
			else if (!h->healthy)
				reason = pw_strdup(h->message[0] ? h->message : "unhealthy");
		}
	}
	if (!reason) {
		answer_text(q, 200, "ok\n");
	} else {
		body = pw_asprintf("%s\n", reason);
		answer_text(q, 503, body ? body : "unhealthy\n");
		free(body);
	}
	free(reason);
	free(h);
}

static void handle_reload(struct run *r, struct rq *q)
{
	char *why = NULL, *body;

	if (!method_is(q, "POST") && !method_is(q, "PUT")) {
		answer_method_not_allowed(q, "POST, PUT");
		return;
	}
	if (r->reload(r, "http", true, &why) >= 0) {
		answer_text(q, 200, "reloaded\n");
		return;
	}
	body = pw_asprintf("%s\n", why ? why : "reload failed");
	answer_text(q, 400, body ? body : "reload failed\n");
	free(body);
	free(why);
}

static enum route route_of(const char *path)
{
	for (int i = 0; i < R_OTHER; i++)
		if (strcmp(path, route_paths[i]) == 0)
			return (enum route)i;
	return R_OTHER;
}

static struct rq *rq_new(struct run *r, struct listen_request *req)
{
	struct rq *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->r = r;
	q->req = req;
	q->rt = route_of(listen_path(req));
	pthread_mutex_init(&q->mu, NULL);
	strbuf_init(&q->errors, 64 << 10);
	listen_set_app(req, q);
	return q;
}

void run_http_done(void *user, void *app)
{
	struct run *r = user;
	struct rq *q = app;

	if (q->counted_inflight) {
		pthread_mutex_lock(&r->mu);
		r->inflight--;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
	if (q->decoded)
		pw_dec_push_free(&q->dec);
	free(q->inflated);
	free(q->body);
	strbuf_free(&q->errors);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

/* Refusals that need no body: answered before it is read. */
void run_http_head(void *user, struct listen_request *req)
{
	struct run *r = user;
	struct rq *q = rq_new(r, req);
	bool receiver, draining, limited = false;

	if (!q) {
		listen_reply_text(req, 503, "out of memory", true);
		return;
	}
	receiver = q->rt == R_INGEST || q->rt == R_PUSH;
	pthread_mutex_lock(&r->mu);
	draining = r->draining;
	if (receiver && !draining) {
		if (r->inflight >= r->conn_limit) {
			limited = true;
			r->limited++;
		} else {
			r->inflight++;
			q->counted_inflight = true;
		}
	}
	pthread_mutex_unlock(&r->mu);

	if (draining && q->rt != R_METRICS && q->rt != R_HEALTHY) {
		if (q->rt == R_PUSH)
			answer_connect_error(q, 503, "unavailable", "shutting down");
		else
			answer_text(q, 503, "shutting down\n");
		q->close = true;
		answer_send(q);
	} else if (limited) {
		/* 429 so that a pyroscope.write upstream backs off and retries
		 * (retry_on_http_429 is on by default). */
		if (q->rt == R_PUSH)
			answer_connect_error(q, 429, "resource_exhausted",
					     "too many concurrent requests");
		else
			answer_text(q, 429, "too many concurrent requests\n");
		answer_send(q);
	}
}

/* A request the listener refused (400, 413, 429, 431, 503): the answer in
 * the route's own shape. */
static void answer_refused(struct rq *q, int status, const char *why)
{
	char *text = pw_asprintf("%s\n", why ? why : listen_status_text(status));

	if (q->rt == R_PUSH)
		answer_connect_error(q, status,
				     status == 400   ? "invalid_argument"
				     : status == 503 ? "unavailable"
						     : "resource_exhausted",
				     why);
	else
		answer_text(q, status, text ? text : "refused\n");
	q->close = true;
	free(text);
}

void run_http_handler(void *user, struct listen_request *req, int refused, const char *why)
{
	struct run *r = user;
	struct rq *q = listen_get_app(req);

	if (!q)
		q = rq_new(r, req);
	if (!q) {
		listen_reply_text(req, 503, "out of memory", true);
		return;
	}
	if (refused) {
		answer_refused(q, refused, why);
		answer_send(q);
		return;
	}
	switch (q->rt) {
	case R_INGEST:
		if (handle_ingest(r, q))
			return;
		break;
	case R_PUSH:
		if (handle_push(r, q))
			return;
		break;
	case R_METRICS:
		handle_metrics(r, q);
		break;
	case R_HEALTHY:
		handle_healthy(r, q);
		break;
	case R_READY:
		answer_text(q, 200, "ready\n");
		break;
	case R_RELOAD:
		handle_reload(r, q);
		break;
	case R_DEBUG:
		handle_debug(r, q);
		break;
	default:
		answer_text(q, 404, "not found\n");
		break;
	}
	answer_send(q);
}
