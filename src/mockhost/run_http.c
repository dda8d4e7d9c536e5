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

#include <jansson.h>

#include "component_abi.h"
#include "proto.h"
#include "proto_decode.h"
#include "pw_version.h"
#include "pyroscope_write.h"
#include "run_internal.h"
#include "sdkname.h"
#include "standin/httpd.h"
#include "strbuf.h"

#define MAX_METRICS_TEXT ((size_t)64 << 20)

static const char *const route_paths[R_COUNT] = {
	"/ingest",  "/push.v1.PusherService/Push",
	"/metrics", "/-/healthy",
	"/-/ready", "/-/reload",
	"/debug",   "other",
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

static void answer_text(struct standin_http_response *resp, int status, const char *text)
{
	resp->status = status;
	standin_http_add_header(resp, "Content-Type", "text/plain; charset=utf-8");
	standin_http_set_body(resp, text, strlen(text));
}

/* A Connect error: JSON {"code","message"} with its HTTP status. */
static void answer_connect_error(struct standin_http_response *resp, int status, const char *code,
				 const char *message)
{
	json_t *o = json_pack("{s:s, s:s}", "code", code, "message", message ? message : "");
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	resp->status = status;
	standin_http_add_header(resp, "Content-Type", "application/json");
	if (text)
		standin_http_set_body(resp, text, strlen(text));
	free(text);
	json_decref(o);
}

static bool method_is(const struct standin_http_request *req, const char *m)
{
	return strcmp(req->method, m) == 0;
}

static void answer_method_not_allowed(struct standin_http_response *resp, const char *allow)
{
	answer_text(resp, 405, "method not allowed\n");
	standin_http_add_header(resp, "Allow", allow);
}

/* The media type of a Content-Type value, without parameters, lowercased
 * into buf. */
static const char *media_type(const char *ct, char *buf, size_t len)
{
	size_t n = 0;

	if (!ct)
		ct = "";
	while (*ct == ' ' || *ct == '\t')
		ct++;
	while (ct[n] && ct[n] != ';' && ct[n] != ' ' && n + 1 < len) {
		char c = ct[n];

		buf[n] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		n++;
	}
	buf[n] = '\0';
	return buf;
}

/* ---- completions ---- */

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t pending;
	int status; /* first failure, or COMPONENT_OK */
	int http_status; /* ingest: the downstream status */
	/* The first few error texts, then only a count: one push of many bad
	 * series must not make an answer (and a log line) of every one. */
	struct strbuf errors;
	size_t nerrors;
};

#define MAX_ERRORS_SHOWN 3

static void waiter_init(struct waiter *w, size_t pending)
{
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->pending = pending;
	w->status = COMPONENT_OK;
	w->http_status = 0;
	w->nerrors = 0;
	strbuf_init(&w->errors, 64 << 10);
}

static void waiter_fail(struct waiter *w, int status, int http_status, const char *error)
{
	if (w->status == COMPONENT_OK) {
		w->status = status;
		w->http_status = http_status;
	}
	if (error && *error && w->nerrors++ < MAX_ERRORS_SHOWN) {
		if (w->errors.len)
			strbuf_putc(&w->errors, '\n');
		strbuf_puts(&w->errors, error);
	}
}

/* The errors as one text, with how many were left out. Call after the
 * last completion. */
static const char *waiter_errors(struct waiter *w, const char *fallback)
{
	if (w->nerrors > MAX_ERRORS_SHOWN)
		strbuf_printf(&w->errors, "\n(and %zu more errors)", w->nerrors - MAX_ERRORS_SHOWN);
	return w->errors.data ? w->errors.data : fallback;
}

static void waiter_done(void *user, const struct pw_result *res)
{
	struct waiter *w = user;

	pthread_mutex_lock(&w->mu);
	if (res->status != COMPONENT_OK)
		waiter_fail(w, res->status, res->http_status, res->error);
	else if (w->status == COMPONENT_OK)
		w->http_status = res->http_status;
	w->pending--;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void waiter_wait(struct waiter *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->pending > 0)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

static void waiter_free(struct waiter *w)
{
	strbuf_free(&w->errors);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

/* ---- receivers ---- */

static void handle_ingest(struct run *r, const struct standin_http_request *req,
			  struct standin_http_response *resp)
{
	const char **ctypes = calloc(req->nheaders + 1, sizeof(char *));
	struct pw_label *labels = NULL;
	struct pw_kv *kv = NULL;
	size_t nkv = 0, nct = 0;
	char *path_query = NULL, *name = NULL, *err = NULL;
	struct pw_ingest in = {0};
	struct waiter w;
	int st;

	waiter_init(&w, 1);
	if (!method_is(req, "POST")) {
		answer_method_not_allowed(resp, "POST");
		goto out;
	}
	if (req->body_too_large) {
		answer_text(resp, 413, "request body too large\n");
		goto out;
	}
	path_query =
		*req->query ? pw_asprintf("%s?%s", req->path, req->query) : pw_strdup(req->path);
	if (!ctypes || !path_query) {
		answer_text(resp, 500, "out of memory\n");
		goto out;
	}
	/* As pyroscope.receive_http: a name that does not parse leaves the
	 * label set empty and the component refuses the profile. */
	name = sdk_query_param(path_query, "name");
	if (name && sdk_name_labels(name, &kv, &nkv, &err) < 0) {
		run_log1(r, COMPONENT_LOG_DEBUG, "cannot parse the SDK name", "name", name, "err",
			 err ? err : "");
		free(err);
	}
	labels = calloc(nkv + 1, sizeof(*labels));
	if (!labels) {
		answer_text(resp, 500, "out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < nkv; i++) {
		labels[i].name = kv[i].key;
		labels[i].value = kv[i].value;
	}
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, "Content-Type") == 0)
			ctypes[nct++] = req->headers[i].value;
	in.struct_size = sizeof(in);
	in.path_query = path_query;
	in.content_types = ctypes;
	in.ncontent_types = nct;
	in.body = req->body;
	in.body_len = req->body_len;
	in.labels = labels;
	in.nlabels = nkv;

	if (!run_gate_enter(r)) {
		answer_text(resp, 503, "shutting down\n");
		resp->close = true;
		goto out;
	}
	st = r->rx->ingest_async(r->rx->ctx, &in, run_now_ns() + r->request_timeout_ns, waiter_done,
				 &w);
	run_gate_leave(r);
	if (st != COMPONENT_OK)
		waiter_fail(&w, st, 0, r->d->strerror(st));
	else
		waiter_wait(&w);

	if (w.status == COMPONENT_OK) {
		resp->status = 200;
	} else {
		int code = w.http_status > 0		     ? w.http_status
			   : w.status == COMPONENT_ESHUTDOWN ? 503
							     : 500;
		const char *text = w.http_status > 0		     ? standin_http_reason(code)
				   : w.status == COMPONENT_ESHUTDOWN ? "shutting down"
								     : "Failed to process request";
		char *body = pw_asprintf("%s\n", text);

		run_log1(r, COMPONENT_LOG_WARN, "ingest failed", "err",
			 waiter_errors(&w, r->d->strerror(w.status)), NULL, NULL);
		answer_text(resp, code, body ? body : "error\n");
		free(body);
	}
out:
	waiter_free(&w);
	sdk_labels_free(kv, nkv);
	free(labels);
	free(name);
	free(path_query);
	free(ctypes);
}

/* Parses Connect-Timeout-Ms: 1 to 10 digits. 0, or -1. */
static int parse_timeout_ms(const char *s, int64_t *ms)
{
	size_t n = strlen(s);
	int64_t v = 0;

	if (n == 0 || n > 10)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*ms = v;
	return 0;
}

/*
 * A failed push as a Connect error. What the component refused before
 * sending (invalid labels) is the client's mistake: 400, which a
 * pyroscope.write upstream does not retry. A full max_inflight_bytes is
 * 429, which it retries after backing off.
 */
static void answer_push_failure(struct standin_http_response *resp, int status, const char *msg)
{
	switch (status) {
	case COMPONENT_EINVAL:
		answer_connect_error(resp, 400, "invalid_argument", msg);
		break;
	case COMPONENT_EOVERLOAD:
		answer_connect_error(resp, 429, "resource_exhausted", msg);
		break;
	case COMPONENT_ESHUTDOWN:
		answer_connect_error(resp, 503, "unavailable", msg);
		break;
	default:
		answer_connect_error(resp, 500, "internal", msg);
		break;
	}
}

/* Submits one series; the arrays only need to live for the call, the
 * sample bytes until its callback has run. */
static int submit_series(struct run *r, const struct pw_dec_series *s, int64_t deadline,
			 struct waiter *w)
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
	/* The samples point into the request body, which handle_push keeps
	 * until every callback has run: large ones need not be copied. */
	p.flags = PW_PUSH_KEEP_UNTIL_DONE;
	st = r->rx->push_async(r->rx->ctx, &p, deadline, waiter_done, w);
out:
	free(labels);
	free(samples);
	return st;
}

static void handle_push(struct run *r, const struct standin_http_request *req,
			struct standin_http_response *resp)
{
	const struct standin_header *h = req->headers;
	size_t nh = req->nheaders;
	const char *ct = standin_http_header(h, nh, "Content-Type");
	const char *ver = standin_http_header(h, nh, "Connect-Protocol-Version");
	const char *tmo = standin_http_header(h, nh, "Connect-Timeout-Ms");
	const char *enc = standin_http_header(h, nh, "Content-Encoding");
	const uint8_t *body = req->body;
	size_t body_len = req->body_len;
	uint8_t *inflated = NULL;
	struct pw_dec_push dec = {0};
	bool decoded = false;
	char mt[128], *err = NULL;
	int64_t deadline, ms = 0;
	struct waiter w;

	waiter_init(&w, 0);
	if (!method_is(req, "POST")) {
		answer_method_not_allowed(resp, "POST");
		goto out;
	}
	if (strcmp(media_type(ct, mt, sizeof(mt)), "application/proto") != 0) {
		/* connect-go answers an unsupported codec with a bare 415. */
		resp->status = 415;
		standin_http_add_header(resp, "Accept-Post", "application/proto");
		goto out;
	}
	if (req->body_too_large) {
		answer_connect_error(resp, 429, "resource_exhausted", "request body too large");
		goto out;
	}
	if (ver && strcmp(ver, "1") != 0) {
		answer_connect_error(resp, 400, "invalid_argument",
				     "Connect-Protocol-Version must be \"1\"");
		goto out;
	}
	if (tmo && parse_timeout_ms(tmo, &ms) < 0) {
		answer_connect_error(resp, 400, "invalid_argument",
				     "Connect-Timeout-Ms must be 1 to 10 digits");
		goto out;
	}
	if (enc && strcasecmp(enc, "gzip") == 0) {
		size_t n = 0;

		if (standin_gunzip(body, body_len, MAX_BODY, &inflated, &n) < 0) {
			answer_connect_error(resp, 400, "invalid_argument",
					     "the gzip request body cannot be inflated");
			goto out;
		}
		body = inflated;
		body_len = n;
	} else if (enc && strcasecmp(enc, "identity") != 0) {
		answer_connect_error(resp, 501, "unimplemented", "unsupported Content-Encoding");
		goto out;
	}
	if (pw_proto_decode_push(body, body_len, &dec, &err) < 0) {
		char *msg = pw_asprintf("cannot decode the push request: %s", err ? err : "");

		answer_connect_error(resp, 400, "invalid_argument", msg ? msg : "bad request");
		free(msg);
		goto out;
	}
	decoded = true;
	deadline = run_now_ns() + (tmo ? ms * 1000000LL : r->request_timeout_ns);

	pthread_mutex_lock(&w.mu);
	w.pending = dec.nseries;
	pthread_mutex_unlock(&w.mu);
	if (!run_gate_enter(r)) {
		answer_connect_error(resp, 503, "unavailable", "shutting down");
		resp->close = true;
		goto out;
	}
	/* One push per series, all under way at once, as Alloy's handler
	 * appends each series to every target. */
	for (size_t i = 0; i < dec.nseries; i++) {
		int st = submit_series(r, &dec.series[i], deadline, &w);

		if (st != COMPONENT_OK) {
			pthread_mutex_lock(&w.mu);
			waiter_fail(&w, st, 0, r->d->strerror(st));
			w.pending--;
			pthread_mutex_unlock(&w.mu);
		}
	}
	run_gate_leave(r);
	waiter_wait(&w);

	if (w.status == COMPONENT_OK) {
		resp->status = 200;
		standin_http_add_header(resp, "Content-Type", "application/proto");
	} else {
		const char *msg = waiter_errors(&w, r->d->strerror(w.status));

		run_log1(r, COMPONENT_LOG_WARN, "push failed", "err", msg, NULL, NULL);
		answer_push_failure(resp, w.status, msg);
	}
out:
	if (decoded)
		pw_dec_push_free(&dec);
	waiter_free(&w);
	free(inflated);
	free(err);
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
	if (r->httpd)
		strbuf_printf(sb,
			      "# HELP mockhost_connections TCP connections open now.\n"
			      "# TYPE mockhost_connections gauge\n"
			      "mockhost_connections %zu\n"
			      "# HELP mockhost_connections_limit The most TCP connections accepted "
			      "at once (--conn-limit plus room for operational requests).\n"
			      "# TYPE mockhost_connections_limit gauge\n"
			      "mockhost_connections_limit %ld\n"
			      "# HELP mockhost_refused_connections_total Connections answered 503 "
			      "because the limit was reached.\n"
			      "# TYPE mockhost_refused_connections_total counter\n"
			      "mockhost_refused_connections_total %lu\n",
			      standin_httpd_connections(r->httpd),
			      r->conn_limit + OPS_CONN_HEADROOM, standin_httpd_refused(r->httpd));
}

static void handle_metrics(struct run *r, struct standin_http_response *resp)
{
	struct strbuf sb;
	char *text;
	size_t len;

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
		answer_text(resp, 500, "metrics too large\n");
		return;
	}
	text = strbuf_detach(&sb, &len);
	resp->status = 200;
	standin_http_add_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	resp->body = (uint8_t *)text;
	resp->body_len = len;
}

static void handle_debug(struct run *r, struct standin_http_response *resp)
{
	struct strbuf sb;
	char *text;
	size_t len;

	if (!r->d->debug_info) {
		answer_text(resp, 404, "the plugin has no debug information\n");
		return;
	}
	strbuf_init(&sb, MAX_METRICS_TEXT);
	if (!run_gate_enter(r)) {
		strbuf_free(&sb);
		answer_text(resp, 503, "shutting down\n");
		return;
	}
	r->d->debug_info(r->inst, sink_strbuf, &sb);
	run_gate_leave(r);
	strbuf_putc(&sb, '\n');
	text = strbuf_detach(&sb, &len);
	resp->status = 200;
	standin_http_add_header(resp, "Content-Type", "application/json");
	resp->body = (uint8_t *)text;
	resp->body_len = len;
}

static void handle_healthy(struct run *r, struct standin_http_response *resp)
{
	struct component_health *h = calloc(1, sizeof(*h));
	char *reason = NULL, *body;

	if (!h) {
		answer_text(resp, 500, "out of memory\n");
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
		answer_text(resp, 200, "ok\n");
	} else {
		body = pw_asprintf("%s\n", reason);
		answer_text(resp, 503, body ? body : "unhealthy\n");
		free(body);
	}
	free(reason);
	free(h);
}

static void handle_reload(struct run *r, const struct standin_http_request *req,
			  struct standin_http_response *resp)
{
	char *why = NULL, *body;

	if (!method_is(req, "POST") && !method_is(req, "PUT")) {
		answer_method_not_allowed(resp, "POST, PUT");
		return;
	}
	if (run_reload(r, "http", true, &why) >= 0) {
		answer_text(resp, 200, "reloaded\n");
		return;
	}
	body = pw_asprintf("%s\n", why ? why : "reload failed");
	answer_text(resp, 400, body ? body : "reload failed\n");
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

void run_http_handler(void *user, const struct standin_http_request *req,
		      struct standin_http_response *resp)
{
	struct run *r = user;
	enum route rt = route_of(req->path);
	bool receiver = rt == R_INGEST || rt == R_PUSH;
	bool draining, limited = false;

	pthread_mutex_lock(&r->mu);
	draining = r->draining;
	if (receiver && !draining) {
		if (r->inflight >= r->conn_limit) {
			limited = true;
			r->limited++;
		} else {
			r->inflight++;
		}
	}
	pthread_mutex_unlock(&r->mu);

	if (draining && rt != R_METRICS && rt != R_HEALTHY) {
		if (rt == R_PUSH)
			answer_connect_error(resp, 503, "unavailable", "shutting down");
		else
			answer_text(resp, 503, "shutting down\n");
		resp->close = true;
		goto count;
	}
	if (limited) {
		/* 429 so that a pyroscope.write upstream backs off and retries
		 * (retry_on_http_429 is on by default). */
		if (rt == R_PUSH)
			answer_connect_error(resp, 429, "resource_exhausted",
					     "too many concurrent requests");
		else
			answer_text(resp, 429, "too many concurrent requests\n");
		goto count;
	}
	switch (rt) {
	case R_INGEST:
		handle_ingest(r, req, resp);
		break;
	case R_PUSH:
		handle_push(r, req, resp);
		break;
	case R_METRICS:
		handle_metrics(r, resp);
		break;
	case R_HEALTHY:
		handle_healthy(r, resp);
		break;
	case R_READY:
		answer_text(resp, 200, "ready\n");
		break;
	case R_RELOAD:
		handle_reload(r, req, resp);
		break;
	case R_DEBUG:
		handle_debug(r, resp);
		break;
	default:
		answer_text(resp, 404, "not found\n");
		break;
	}
	if (receiver) {
		pthread_mutex_lock(&r->mu);
		r->inflight--;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
count:
	count_request(r, rt, resp->status ? resp->status : 200);
}
