/*
 * run.c - `mockhost run`, the long-running host.
 *
 * One instance of the component lives for the whole process. The main thread
 * owns the lifecycle: it takes SIGHUP/SIGINT/SIGTERM through a signalfd
 * (the signals are blocked before any thread starts, so no thread ever runs
 * a signal handler) and watches the configuration file's directory with
 * inotify. HTTP requests are served by the stand-in's threaded server; its
 * handlers call into the instance only through a gate, so that destroy() can
 * wait until no other call on the instance is running, as the ABI demands.
 *
 * The receivers use the asynchronous forms of the receiver and wait for the
 * completion callback: destroy() fires every outstanding callback, so a
 * handler blocked on a slow delivery is released at shutdown instead of
 * running concurrently with destroy().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "component_abi.h"
#include "config.h"
#include "loader.h"
#include "mockhost.h"
#include "proto.h"
#include "pw_version.h"
#include "pyroscope_write.h"
#include "sdkname.h"
#include "standin/httpd.h"
#include "strbuf.h"

/* Connections allowed beyond --conn-limit for /metrics, /-/healthy and
 * friends. */
#define OPS_CONN_HEADROOM 16

#define EXIT_FAIL 1
#define EXIT_USAGE 2

#define DEFAULT_LISTEN "127.0.0.1:12345"
/* As pyroscope.receive_http since it stopped starving upstream writers. */
#define DEFAULT_CONN_LIMIT 16384
#define DEFAULT_REQUEST_TIMEOUT_NS (30 * 1000000000LL)
#define DEFAULT_DRAIN_TIMEOUT_NS (10 * 1000000000LL)
#define MAX_BODY ((size_t)64 << 20)
#define MAX_METRICS_TEXT ((size_t)64 << 20)
/* Editors write a file in several steps; settle before re-reading it. */
#define WATCH_SETTLE_MS 10
#define WATCH_SETTLE_MAX_MS 200
#define MAX_STAT_ROWS 256

enum route { R_INGEST, R_PUSH, R_METRICS, R_HEALTHY, R_READY, R_RELOAD, R_DEBUG, R_OTHER, R_COUNT };

static const char *const route_paths[R_COUNT] = {
	"/ingest",  "/push.v1.PusherService/Push",
	"/metrics", "/-/healthy",
	"/-/ready", "/-/reload",
	"/debug",   "other",
};

struct stat_row {
	enum route route;
	int code;
	uint64_t count;
};

struct run {
	/* settings */
	const char *config_path;
	const char *component;
	char *listen_addr;
	int listen_port;
	long conn_limit;
	int64_t request_timeout_ns;
	int64_t drain_timeout_ns;
	enum component_log_level level;

	struct plugin plugin;
	const struct component_descriptor *d;
	struct component_instance *inst;
	const struct pw_receiver *rx;
	struct standin_httpd *httpd;

	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cv; /* signalled when a counter below drops */
	int gate_active; /* calls into the instance under way */
	bool gate_closed; /* destroy() is next: no new calls */
	bool draining; /* SIGTERM seen: refuse new requests */
	long inflight; /* receiver requests being served */
	uint64_t limited; /* receiver requests refused by the limit */
	uint64_t reloads_ok;
	uint64_t reloads_failed;
	bool last_reload_ok;
	char *host_reason; /* a reload that never reached update(), or NULL */
	struct stat_row rows[MAX_STAT_ROWS];
	size_t nrows;

	pthread_mutex_t reload_mu; /* one reload at a time */
	char *last_json; /* the document last handed to update() */
};

/* ---- small helpers ---- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void run_log(struct run *r, enum component_log_level level, const char *msg,
		    const struct component_log_field *fields, size_t n)
{
	if (level >= r->level)
		mockhost_log(NULL, level, msg, fields, n);
}

static void log1(struct run *r, enum component_log_level level, const char *msg, const char *k1,
		 const char *v1, const char *k2, const char *v2)
{
	struct component_log_field f[2] = {{k1, v1}, {k2, v2}};

	run_log(r, level, msg, f, k1 ? (k2 ? 2 : 1) : 0);
}

/* Splits "ADDR:PORT", "[V6]:PORT" or ":PORT" (127.0.0.1). 0, or -1. */
static int split_listen(const char *arg, char **addr, int *port)
{
	const char *colon, *host = arg;
	size_t hostlen;
	char *end;
	long p;

	if (*arg == '[') {
		const char *rb = strchr(arg, ']');

		if (!rb || rb[1] != ':')
			return -1;
		host = arg + 1;
		hostlen = (size_t)(rb - host);
		colon = rb + 1;
	} else {
		colon = strrchr(arg, ':');
		if (!colon)
			return -1;
		hostlen = (size_t)(colon - arg);
	}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || p < 0 || p > 65535)
		return -1;
	*addr = hostlen ? pw_strndup(host, hostlen) : pw_strdup("127.0.0.1");
	*port = (int)p;
	return *addr ? 0 : -1;
}

/* ---- the gate around calls into the instance ---- */

static bool gate_enter(struct run *r)
{
	bool ok;

	pthread_mutex_lock(&r->mu);
	ok = !r->gate_closed;
	if (ok)
		r->gate_active++;
	pthread_mutex_unlock(&r->mu);
	return ok;
}

static void gate_leave(struct run *r)
{
	pthread_mutex_lock(&r->mu);
	r->gate_active--;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Closes the gate and waits until no call is under way. */
static void gate_close(struct run *r)
{
	pthread_mutex_lock(&r->mu);
	r->gate_closed = true;
	while (r->gate_active > 0)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
}

/* ---- reloads ---- */

static void set_host_reason(struct run *r, char *reason)
{
	pthread_mutex_lock(&r->mu);
	free(r->host_reason);
	r->host_reason = reason;
	pthread_mutex_unlock(&r->mu);
}

static void count_reload(struct run *r, bool ok)
{
	pthread_mutex_lock(&r->mu);
	if (ok)
		r->reloads_ok++;
	else
		r->reloads_failed++;
	r->last_reload_ok = ok;
	pthread_mutex_unlock(&r->mu);
}

/*
 * Re-reads the configuration file and hands it to update(). `force` is
 * false for file-change events: an unchanged document is then not applied
 * again (editors and atomic renames fire several events per save).
 * Returns 1 when nothing changed, 0 when applied, -1 when refused (with a
 * malloc'd *why when why is not NULL).
 */
static int do_reload(struct run *r, const char *source, bool force, char **why)
{
	char *json = NULL, *err = NULL, *reason = NULL;
	int rc = -1, st;

	if (why)
		*why = NULL;
	pthread_mutex_lock(&r->reload_mu);
	if (mockhost_load_config(r->config_path, r->component, &json, &err) < 0) {
		reason = pw_asprintf("reading %s: %s", r->config_path, err ? err : "failed");
		free(err);
		err = NULL;
		log1(r, COMPONENT_LOG_WARN,
		     "configuration refused, the last valid one stays in use", "source", source,
		     "reason", reason ? reason : "out of memory");
		count_reload(r, false);
		set_host_reason(r, pw_strdup(reason));
		goto out;
	}
	if (!force && r->last_json && strcmp(json, r->last_json) == 0) {
		rc = 1;
		goto out;
	}
	if (!gate_enter(r)) {
		reason = pw_strdup("shutting down");
		goto out;
	}
	st = r->d->update(r->inst, json, &err);
	gate_leave(r);
	free(r->last_json);
	r->last_json = json;
	json = NULL;
	set_host_reason(r, NULL);
	if (st == COMPONENT_OK) {
		log1(r, COMPONENT_LOG_INFO, "configuration reloaded", "source", source, NULL, NULL);
		count_reload(r, true);
		rc = 0;
	} else {
		reason = pw_asprintf("%s: %s", r->d->strerror(st), err ? err : "");
		log1(r, COMPONENT_LOG_WARN,
		     "configuration refused, the last valid one stays in use", "source", source,
		     "reason", reason ? reason : "out of memory");
		count_reload(r, false);
	}
	r->d->free_string(err);
out:
	pthread_mutex_unlock(&r->reload_mu);
	free(json);
	if (why && rc < 0)
		*why = reason ? reason : pw_strdup("out of memory");
	else
		free(reason);
	return rc;
}

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
	struct strbuf errors;
};

static void waiter_init(struct waiter *w, size_t pending)
{
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->pending = pending;
	w->status = COMPONENT_OK;
	w->http_status = 0;
	strbuf_init(&w->errors, 64 << 10);
}

static void waiter_fail(struct waiter *w, int status, int http_status, const char *error)
{
	if (w->status == COMPONENT_OK) {
		w->status = status;
		w->http_status = http_status;
	}
	if (error && *error) {
		if (w->errors.len)
			strbuf_putc(&w->errors, '\n');
		strbuf_puts(&w->errors, error);
	}
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
		log1(r, COMPONENT_LOG_DEBUG, "cannot parse the SDK name", "name", name, "err",
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

	if (!gate_enter(r)) {
		answer_text(resp, 503, "shutting down\n");
		resp->close = true;
		goto out;
	}
	st = r->rx->ingest_async(r->rx->ctx, &in, now_ns() + r->request_timeout_ns, waiter_done,
				 &w);
	gate_leave(r);
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

		log1(r, COMPONENT_LOG_WARN, "ingest failed", "err",
		     w.errors.data ? w.errors.data : r->d->strerror(w.status), NULL, NULL);
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

/* Submits one series; the arrays only need to live for the call. */
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
	deadline = now_ns() + (tmo ? ms * 1000000LL : r->request_timeout_ns);

	pthread_mutex_lock(&w.mu);
	w.pending = dec.nseries;
	pthread_mutex_unlock(&w.mu);
	if (!gate_enter(r)) {
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
	gate_leave(r);
	waiter_wait(&w);

	if (w.status == COMPONENT_OK) {
		resp->status = 200;
		standin_http_add_header(resp, "Content-Type", "application/proto");
	} else {
		const char *msg = w.errors.data ? w.errors.data : r->d->strerror(w.status);

		log1(r, COMPONENT_LOG_WARN, "push failed", "err", msg, NULL, NULL);
		if (w.status == COMPONENT_ESHUTDOWN)
			answer_connect_error(resp, 503, "unavailable", msg);
		else
			answer_connect_error(resp, 500, "internal", msg);
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
	if (gate_enter(r)) {
		r->d->metrics(r->inst, sink_strbuf, &sb);
		gate_leave(r);
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
	if (!gate_enter(r)) {
		strbuf_free(&sb);
		answer_text(resp, 503, "shutting down\n");
		return;
	}
	r->d->debug_info(r->inst, sink_strbuf, &sb);
	gate_leave(r);
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
		if (!gate_enter(r)) {
			reason = pw_strdup("shutting down");
		} else {
			int st = r->d->health(r->inst, h);

			gate_leave(r);
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
	if (do_reload(r, "http", true, &why) >= 0) {
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

static void handler(void *user, const struct standin_http_request *req,
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

/* ---- the main loop ---- */

struct watch {
	int fd;
	char *dir;
	char *base;
};

static int watch_open(struct watch *w, const char *path, char **err)
{
	char *a = pw_strdup(path), *b = pw_strdup(path);

	w->fd = -1;
	w->dir = w->base = NULL;
	if (!a || !b) {
		free(a);
		free(b);
		*err = pw_strdup("out of memory");
		return -1;
	}
	w->dir = pw_strdup(dirname(a));
	w->base = pw_strdup(basename(b));
	free(a);
	free(b);
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0 || !w->dir || !w->base) {
		*err = pw_asprintf("inotify: %s", strerror(errno));
		return -1;
	}
	/* The directory, not the file: an editor or a ConfigMap update
	 * replaces the file by a rename, which a watch on the file itself
	 * would not survive. */
	if (inotify_add_watch(w->fd, w->dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
		*err = pw_asprintf("watching %s: %s", w->dir, strerror(errno));
		return -1;
	}
	return 0;
}

static void watch_close(struct watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->dir);
	free(w->base);
}

/* Reads pending events; true when one concerns the configuration file (or
 * a Kubernetes-style "..data" swap beside it). */
static bool watch_read(struct watch *w)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool hit = false;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->len &&
			    (strcmp(ev->name, w->base) == 0 || strncmp(ev->name, "..", 2) == 0))
				hit = true;
			if (ev->mask & IN_Q_OVERFLOW)
				hit = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	return hit;
}

/* After a change, waits until the directory has been quiet for a moment so
 * a save in several steps is read once, complete. */
static void watch_settle(struct watch *w)
{
	int64_t until = now_ns() + WATCH_SETTLE_MAX_MS * 1000000LL;
	struct pollfd p = {.fd = w->fd, .events = POLLIN};

	while (now_ns() < until && poll(&p, 1, WATCH_SETTLE_MS) > 0)
		watch_read(w);
}

static void *stop_httpd_main(void *arg)
{
	standin_httpd_stop(arg);
	return NULL;
}

static void shutdown_host(struct run *r)
{
	int64_t deadline = now_ns() + r->drain_timeout_ns;
	pthread_t stopper;
	bool have_stopper;
	char left[32];

	pthread_mutex_lock(&r->mu);
	r->draining = true;
	pthread_mutex_unlock(&r->mu);
	/* Stop accepting at once; requests under way keep their connection
	 * thread, which the stop joins once they are answered. */
	have_stopper = pthread_create(&stopper, NULL, stop_httpd_main, r->httpd) == 0;
	/* Without a thread to spare, the server is stopped after destroy()
	 * below: new requests are refused by `draining` until then. */

	pthread_mutex_lock(&r->mu);
	while (r->inflight > 0) {
		struct timespec ts;
		int64_t wait = deadline - now_ns();

		if (wait <= 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(wait / 1000000000LL);
		ts.tv_nsec += (long)(wait % 1000000000LL);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	}
	snprintf(left, sizeof(left), "%ld", r->inflight);
	pthread_mutex_unlock(&r->mu);
	log1(r, COMPONENT_LOG_INFO, "drained, stopping the component", "requests_left", left, NULL,
	     NULL);

	/* destroy() fires the completion of anything still under way, which
	 * releases the handlers waiting on it. */
	gate_close(r);
	r->d->destroy(r->inst);
	r->inst = NULL;
	if (have_stopper)
		pthread_join(stopper, NULL);
	else
		standin_httpd_stop(r->httpd);
	r->httpd = NULL;
}

static int main_loop(struct run *r, int sfd, struct watch *w)
{
	struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = w->fd, .events = POLLIN}};

	for (;;) {
		int n = poll(p, 2, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (p[1].revents & POLLIN) {
			if (watch_read(w)) {
				watch_settle(w);
				do_reload(r, "file", false, NULL);
			}
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
				continue;
			if (si.ssi_signo == SIGHUP) {
				do_reload(r, "SIGHUP", true, NULL);
			} else {
				log1(r, COMPONENT_LOG_INFO, "shutting down", "signal",
				     strsignal((int)si.ssi_signo), NULL, NULL);
				return 0;
			}
		}
	}
}

/* ---- options ---- */

static const char run_usage[] =
	"usage: mockhost [--plugin PATH] run --config FILE [OPTIONS]\n"
	"\n"
	"Keeps one instance of the component running: reloads FILE when it changes,\n"
	"on SIGHUP and on POST /-/reload; receives profiles as pyroscope.receive_http\n"
	"does; serves metrics and health. SIGINT/SIGTERM drain and exit 0.\n"
	"\n"
	"  --config FILE            JSON document, or Alloy syntax when it ends in .alloy\n"
	"  --component LABEL        which pyroscope.write block of an .alloy file to use\n"
	"  --listen ADDR:PORT       where to serve HTTP (default " DEFAULT_LISTEN "; port 0\n"
	"                           picks a free one; the URL is printed on stdout)\n"
	"  --conn-limit N           receiver requests served at once (default 16384);\n"
	"                           more are answered 429\n"
	"  --request-timeout DUR    deadline of a request without Connect-Timeout-Ms (30s)\n"
	"  --drain-timeout DUR      how long SIGTERM waits for requests under way (10s)\n"
	"  --log-level LEVEL        debug, info, warn or error (default info)\n"
	"  --debug                  same as --log-level debug\n"
	"  --help                   this text\n"
	"\n"
	"HTTP: POST /ingest, POST /push.v1.PusherService/Push, GET /metrics,\n"
	"GET /-/healthy, GET /-/ready, POST /-/reload, GET /debug. See docs/mockhost.md.\n";

enum {
	RO_CONFIG = 256,
	RO_COMPONENT,
	RO_LISTEN,
	RO_CONN_LIMIT,
	RO_REQ_TIMEOUT,
	RO_DRAIN_TIMEOUT,
	RO_LOG_LEVEL,
	RO_DEBUG,
	RO_HELP,
};

static const struct option run_options[] = {
	{"config", required_argument, NULL, RO_CONFIG},
	{"component", required_argument, NULL, RO_COMPONENT},
	{"listen", required_argument, NULL, RO_LISTEN},
	{"conn-limit", required_argument, NULL, RO_CONN_LIMIT},
	{"request-timeout", required_argument, NULL, RO_REQ_TIMEOUT},
	{"drain-timeout", required_argument, NULL, RO_DRAIN_TIMEOUT},
	{"log-level", required_argument, NULL, RO_LOG_LEVEL},
	{"debug", no_argument, NULL, RO_DEBUG},
	{"help", no_argument, NULL, RO_HELP},
	{NULL, 0, NULL, 0},
};

static int usage_err(const char *what, const char *arg)
{
	fprintf(stderr, "mockhost run: %s%s%s%s\nrun 'mockhost run --help' for usage\n", what,
		arg ? " \"" : "", arg ? arg : "", arg ? "\"" : "");
	return EXIT_USAGE;
}

static int positive_duration(const char *s, int64_t *out)
{
	const char *why = NULL;

	return pw_duration_parse(s, out, &why) == 0 && *out > 0 ? 0 : -1;
}

/* 0 to run, 1 after --help, EXIT_USAGE on errors. */
static int parse_run_opts(struct run *r, int argc, char **argv)
{
	const char *listen = DEFAULT_LISTEN;
	char *end;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", run_options, NULL)) != -1) {
		switch (c) {
		case RO_CONFIG:
			r->config_path = optarg;
			break;
		case RO_COMPONENT:
			r->component = optarg;
			break;
		case RO_LISTEN:
			listen = optarg;
			break;
		case RO_CONN_LIMIT:
			errno = 0;
			r->conn_limit = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || r->conn_limit < 1)
				return usage_err("--conn-limit wants a positive number, got",
						 optarg);
			break;
		case RO_REQ_TIMEOUT:
			if (positive_duration(optarg, &r->request_timeout_ns) < 0)
				return usage_err("--request-timeout wants a positive duration, got",
						 optarg);
			break;
		case RO_DRAIN_TIMEOUT:
			if (positive_duration(optarg, &r->drain_timeout_ns) < 0)
				return usage_err("--drain-timeout wants a positive duration, got",
						 optarg);
			break;
		case RO_LOG_LEVEL:
			if (mockhost_parse_level(optarg, &r->level) < 0)
				return usage_err(
					"--log-level wants debug, info, warn or error, got",
					optarg);
			break;
		case RO_DEBUG:
			r->level = COMPONENT_LOG_DEBUG;
			break;
		case RO_HELP:
			fputs(run_usage, stdout);
			return 1;
		default:
			return usage_err("unknown or incomplete option", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_err("unexpected argument", argv[optind]);
	if (!r->config_path)
		return usage_err("--config FILE is required", NULL);
	if (split_listen(listen, &r->listen_addr, &r->listen_port) < 0)
		return usage_err("--listen wants ADDR:PORT, got", listen);
	return 0;
}

/* Creates the instance from the file. 0, or EXIT_FAIL after printing why. */
static int create_instance(struct run *r)
{
	struct component_host host;
	char *json = NULL, *err = NULL;
	const void *exp = NULL;
	int st;

	if (mockhost_load_config(r->config_path, r->component, &json, &err) < 0) {
		fprintf(stderr, "mockhost run: %s\n", err ? err : "cannot read the configuration");
		free(err);
		return EXIT_FAIL;
	}
	mockhost_host_init(&host, r->level);
	st = r->d->create(&host, json, &r->inst, &err);
	if (st != COMPONENT_OK) {
		fprintf(stderr, "mockhost run: %s: %s\n%s\n", r->config_path, r->d->strerror(st),
			err ? err : "");
		r->d->free_string(err);
		free(json);
		return EXIT_FAIL;
	}
	r->last_json = json;
	if (r->d->get_export(r->inst, PW_RECEIVER_EXPORT, &exp) != COMPONENT_OK || !exp) {
		fprintf(stderr, "mockhost run: the plugin has no \"receiver\" export\n");
		return EXIT_FAIL;
	}
	r->rx = exp;
	if (r->rx->struct_size < sizeof(struct pw_receiver) || !r->rx->push_async ||
	    !r->rx->ingest_async) {
		fprintf(stderr, "mockhost run: the plugin's receiver is too old for this host\n");
		return EXIT_FAIL;
	}
	return 0;
}

int mockhost_run_main(const char *plugin_path, int argc, char **argv)
{
	struct run r;
	struct standin_httpd_opts ho = {0};
	struct watch w = {.fd = -1};
	char errbuf[1024], *err = NULL;
	sigset_t set;
	int sfd = -1, rc;

	memset(&r, 0, sizeof(r));
	r.conn_limit = DEFAULT_CONN_LIMIT;
	r.request_timeout_ns = DEFAULT_REQUEST_TIMEOUT_NS;
	r.drain_timeout_ns = DEFAULT_DRAIN_TIMEOUT_NS;
	r.level = COMPONENT_LOG_INFO;
	r.last_reload_ok = true;
	rc = parse_run_opts(&r, argc, argv);
	if (rc != 0) {
		free(r.listen_addr);
		return rc == 1 ? 0 : rc;
	}
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&r.cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_mutex_init(&r.mu, NULL);
	pthread_mutex_init(&r.reload_mu, NULL);

	/* Before any thread exists, so every thread inherits the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	rc = EXIT_FAIL;
	if (sfd < 0) {
		fprintf(stderr, "mockhost run: signalfd: %s\n", strerror(errno));
		goto out;
	}
	if (plugin_load(plugin_path, &r.plugin, errbuf, sizeof(errbuf)) < 0) {
		fprintf(stderr, "mockhost run: %s\n", errbuf);
		goto out;
	}
	r.d = r.plugin.desc;
	if (watch_open(&w, r.config_path, &err) < 0) {
		fprintf(stderr, "mockhost run: %s\n", err ? err : "cannot watch the configuration");
		goto out;
	}
	if (create_instance(&r) != 0)
		goto out;

	ho.addr = r.listen_addr;
	ho.port = r.listen_port;
	ho.max_body = MAX_BODY;
	/* Bound the threads as well as the requests (one thread per
	 * connection), with room left for /metrics and health checks when the
	 * receivers are at their limit. */
	ho.max_conns = (size_t)r.conn_limit + OPS_CONN_HEADROOM;
	ho.handler = handler;
	ho.user = &r;
	r.httpd = standin_httpd_start(&ho, &err);
	if (!r.httpd) {
		fprintf(stderr, "mockhost run: %s\n", err ? err : "cannot listen");
		goto out;
	}
	printf("mockhost run listening on http://%s%s%s:%d\n",
	       strchr(r.listen_addr, ':') ? "[" : "", r.listen_addr,
	       strchr(r.listen_addr, ':') ? "]" : "", standin_httpd_port(r.httpd));
	fflush(stdout);
	log1(&r, COMPONENT_LOG_INFO, "running", "config", r.config_path, "plugin", plugin_path);

	if (main_loop(&r, sfd, &w) < 0)
		fprintf(stderr, "mockhost run: poll: %s\n", strerror(errno));
	shutdown_host(&r);
	log1(&r, COMPONENT_LOG_INFO, "stopped", NULL, NULL, NULL, NULL);
	rc = 0;
out:
	if (r.httpd) {
		/* Failure paths only: nothing can be in flight yet. */
		standin_httpd_stop(r.httpd);
	}
	if (r.inst)
		r.d->destroy(r.inst);
	if (r.d)
		plugin_unload(&r.plugin);
	watch_close(&w);
	if (sfd >= 0)
		close(sfd);
	free(err);
	free(r.last_json);
	free(r.host_reason);
	free(r.listen_addr);
	pthread_mutex_destroy(&r.reload_mu);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	return rc;
}
