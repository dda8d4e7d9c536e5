/*
 * test_delivery.c - the push and ingest paths through the built plugin,
 * against the strict Pyroscope stand-in: labels and headers on the wire,
 * fan-out, retries and their counting, Retry-After, timeouts and deadlines,
 * metrics, and concurrency with hot reloads.
 */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hostutil.h"
#include "proto.h"
#include "proto_decode.h"
#include "pw_version.h"
#include "standin/standin.h"

static struct standin *sink, *sink2, *sink3;
static struct th_plugin plugin;

static void setup(void)
{
	sink = th_sink_start();
	sink2 = th_sink_start();
	sink3 = th_sink_start();
	th_load(&plugin, NULL);
}

static void teardown(void)
{
	th_unload(&plugin);
	standin_stop(sink);
	standin_stop(sink2);
	standin_stop(sink3);
}

/* {{A}}, {{B}}, {{C}} stand for the three stand-ins' URLs. */
static char *cfg(const char *tmpl)
{
	char *a = th_subst(tmpl, "{{A}}", standin_url(sink));
	char *b = th_subst(a, "{{B}}", standin_url(sink2));
	char *c = th_subst(b, "{{C}}", standin_url(sink3));

	free(a);
	free(b);
	return c;
}

static struct th_instance make(const char *tmpl)
{
	struct th_instance in;
	char *c = cfg(tmpl), *err = NULL;

	ck_assert_msg(th_create(&plugin, c, &in, &err) == COMPONENT_OK, "create: %s", err);
	free(c);
	return in;
}

static const char *const labels_basic[] = {"service_name", "svc", "__name__", "process_cpu", NULL};

START_TEST(push_wire_format_labels_and_headers)
{
	struct th_instance in =
		make("{\"external_labels\":{\"env\":\"prod\",\"job\":\"\",\"cluster\":\"c1\"},"
		     "\"endpoint\":[{\"url\":\"{{A}}/\",\"name\":\"a\","
		     "\"headers\":{\"X-Scope-OrgID\":\"tenant-1\",\"Content-Type\":\"text/plain\"},"
		     "\"http_headers\":{\"X-Extra\":[\"one\",\"two\"]}}]}");
	const char *const labels[] = {"service_name", "svc",   "__name__", "process_cpu",
				      "__delta__",    "false", "__hidden", "x",
				      "job",	      "j",     "env",	   "staging",
				      "zone",	      "z1",    NULL};
	struct standin_request *r;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;

	ck_assert_int_eq(th_push(&in, labels, prof, len, 5000, &err), COMPONENT_OK);
	ck_assert_ptr_null(err);
	r = standin_request_get(sink, 0);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->path, "/push.v1.PusherService/Push");
	ck_assert_int_eq(r->status, 200);
	ck_assert_int_eq(r->nseries, 1);
	ck_assert_int_eq(r->nsamples, 1);
	/* Reserved labels dropped except __name__/__delta__, external labels
	 * override (empty deletes), sorted by name. */
	ck_assert_str_eq(r->series_labels[0], "__delta__=false,__name__=process_cpu,cluster=c1,"
					      "env=prod,service_name=svc,zone=z1");
	ck_assert_str_eq(standin_request_header(r, "Content-Type"), "application/proto");
	ck_assert_str_eq(standin_request_header(r, "Connect-Protocol-Version"), "1");
	ck_assert_str_eq(standin_request_header(r, "Accept-Encoding"), "gzip");
	ck_assert_str_eq(standin_request_header(r, "X-Scope-OrgID"), "tenant-1");
	ck_assert_str_eq(standin_request_header(r, "X-Alloy-Id"), "test-instance");
	ck_assert_str_eq(standin_request_header(r, "User-Agent"),
			 "testhost/1.0 pyroscope-write/" PW_VERSION);
	ck_assert_ptr_null(standin_request_header(r, "Expect"));
	{
		long ms = strtol(standin_request_header(r, "Connect-Timeout-Ms"), NULL, 10);

		ck_assert_int_gt(ms, 4000);
		ck_assert_int_le(ms, 5000);
	}
	{
		int extra = 0;

		for (size_t i = 0; i < r->nheaders; i++)
			if (strcasecmp(r->headers[i].name, "X-Extra") == 0)
				extra++;
		ck_assert_int_eq(extra, 2);
	}
	ck_assert_str_eq(r->tenant, "tenant-1");
	standin_request_free(r);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_bytes_total", "a"),
			    (double)len);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "a"), 1);
	th_destroy(&in);
}
END_TEST

/* Three endpoints, one failing with a retryable error: the other two get
 * the profile, the call reports the failing one with its attempt count. */
START_TEST(fanout_one_failing)
{
	struct standin_reply fail = {
		.status = 500, .body = "boom", .content_type = "text/plain", .times = 100};
	struct th_instance in =
		make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\"},"
		     "{\"url\":\"{{B}}\",\"name\":\"b\",\"min_backoff_period\":\"10ms\","
		     "\"max_backoff_period\":\"20ms\",\"max_backoff_retries\":3},"
		     "{\"url\":\"{{C}}\",\"name\":\"c\"}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;

	standin_script(sink2, STANDIN_ROUTE_PUSH, &fail);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 10000, &err), COMPONENT_EDELIVERY);
	ck_assert_ptr_nonnull(err);
	ck_assert_str_eq(
		err, "failed to push to endpoint b (3 retries): unknown: Internal Server Error");
	free(err);
	ck_assert_int_eq(standin_count(sink), 1);
	ck_assert_int_eq(standin_count(sink2), 3);
	ck_assert_int_eq(standin_count(sink3), 1);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "a"), 1);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "c"), 1);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_dropped_profiles_total", "b"), 1);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_dropped_bytes_total", "b"),
			    (double)len);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_retries_total", "b"), 2);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_retries_total", "a"), 0);
	ck_assert(th_logs_contain("debug failed to push to endpoint endpoint=b"));
	ck_assert(th_logs_contain("warn Push"));
	th_destroy(&in);
}
END_TEST

/* A Connect JSON invalid_argument is final: one attempt. */
START_TEST(connect_error_not_retried)
{
	struct standin_reply r = {
		.status = 400,
		.content_type = "application/json",
		.body = "{\"code\":\"invalid_argument\",\"message\":\"no profiles received\"}",
		.times = 10};
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
				     "\"min_backoff_period\":\"10ms\"}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;

	standin_script(sink, STANDIN_ROUTE_PUSH, &r);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, &err), COMPONENT_EDELIVERY);
	ck_assert_str_eq(
		err,
		"failed to push to endpoint a (0 retries): invalid_argument: no profiles received");
	free(err);
	ck_assert_int_eq(standin_count(sink), 1);
	th_destroy(&in);
}
END_TEST

/* A gzip-encoded JSON error body is decoded. */
START_TEST(connect_error_gzip_body)
{
	struct standin_reply r = {
		.status = 401,
		.content_type = "application/json",
		.gzip = true,
		.body = "{\"code\":\"unauthenticated\",\"message\":\"no org id\"}"};
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\"}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;

	standin_script(sink, STANDIN_ROUTE_PUSH, &r);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, &err), COMPONENT_EDELIVERY);
	ck_assert_str_eq(err,
			 "failed to push to endpoint a (0 retries): unauthenticated: no org id");
	free(err);
	th_destroy(&in);
}
END_TEST

/* resource_exhausted obeys retry_on_http_429 (and so does a plain 429, D2). */
START_TEST(rate_limit_respects_retry_on_429)
{
	struct standin_reply rl = {
		.status = 429,
		.content_type = "application/json",
		.body = "{\"code\":\"resource_exhausted\",\"message\":\"rate limited\"}",
		.times = 10};
	struct standin_reply plain = {.status = 429, .body = "slow down", .times = 10};
	struct th_instance in =
		make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
		     "\"retry_on_http_429\":false,\"min_backoff_period\":\"10ms\"}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;

	standin_script(sink, STANDIN_ROUTE_PUSH, &rl);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, &err), COMPONENT_EDELIVERY);
	ck_assert_str_eq(
		err, "failed to push to endpoint a (0 retries): resource_exhausted: rate limited");
	free(err);
	ck_assert_int_eq(standin_count(sink), 1);
	standin_script_clear(sink);
	standin_script(sink, STANDIN_ROUTE_PUSH, &plain);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, NULL), COMPONENT_EDELIVERY);
	ck_assert_int_eq(standin_count(sink), 2);
	th_destroy(&in);

	/* With retries on, the same answer is retried until it clears. */
	in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\",\"min_backoff_period\":"
		  "\"10ms\"}]}");
	standin_script_clear(sink);
	rl.times = 2;
	standin_script(sink, STANDIN_ROUTE_PUSH, &rl);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, NULL), COMPONENT_OK);
	ck_assert_int_eq(standin_count(sink), 5);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_retries_total", "a"), 2);
	th_destroy(&in);
}
END_TEST

/* Retry-After on 503 replaces the computed backoff (D1). */
START_TEST(retry_after_is_honoured)
{
	struct standin_reply r = {.status = 503, .retry_after = "1", .body = "busy"};
	struct th_instance in =
		make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
		     "\"min_backoff_period\":\"10ms\",\"max_backoff_period\":\"5s\"}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	double t0 = th_now_s(), dt;

	standin_script(sink, STANDIN_ROUTE_PUSH, &r);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 10000, NULL), COMPONENT_OK);
	dt = th_now_s() - t0;
	ck_assert_int_eq(standin_count(sink), 2);
	/* The computed backoff would have been 10-20 ms. */
	ck_assert_msg(dt >= 0.95, "second attempt after %.3fs, expected about 1s", dt);
	th_destroy(&in);
}
END_TEST

/* An attempt that outlives remote_timeout is cut and retried. */
START_TEST(remote_timeout_cuts_attempt)
{
	struct standin_reply slow = {
		.status = 200, .content_type = "application/proto", .delay_ms = 3000};
	struct th_instance in =
		make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
		     "\"remote_timeout\":\"300ms\",\"min_backoff_period\":\"10ms\"}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	double t0 = th_now_s(), dt;
	struct standin_request *r;

	standin_script(sink, STANDIN_ROUTE_PUSH, &slow);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 10000, NULL), COMPONENT_OK);
	dt = th_now_s() - t0;
	ck_assert_int_eq(standin_count(sink), 2);
	ck_assert_msg(dt < 2.5, "took %.3fs", dt);
	r = standin_request_get(sink, 0);
	ck_assert_int_le(strtol(standin_request_header(r, "Connect-Timeout-Ms"), NULL, 10), 300);
	standin_request_free(r);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_retries_total", "a"), 1);
	th_destroy(&in);
}
END_TEST

/* The caller's deadline ends the retry loop: no wait past it. */
START_TEST(caller_deadline_ends_retries)
{
	struct standin_reply fail = {.status = 503, .body = "down", .times = 1000};
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
				     "\"min_backoff_period\":\"2s\",\"max_backoff_retries\":0}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	double t0 = th_now_s(), dt;
	char *err = NULL;

	standin_script(sink, STANDIN_ROUTE_PUSH, &fail);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 500, &err), COMPONENT_EDELIVERY);
	dt = th_now_s() - t0;
	ck_assert_msg(dt < 1.5, "took %.3fs", dt);
	ck_assert_str_eq(
		err, "failed to push to endpoint a (1 retries): unavailable: Service Unavailable");
	free(err);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_dropped_profiles_total", "a"), 1);
	th_destroy(&in);
}
END_TEST

START_TEST(connection_refused_is_retried)
{
	struct th_instance in =
		make("{\"endpoint\":[{\"url\":\"http://127.0.0.1:1\",\"name\":\"dead\","
		     "\"min_backoff_period\":\"10ms\",\"max_backoff_retries\":2},"
		     "{\"url\":\"{{A}}\",\"name\":\"a\"}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;

	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, &err), COMPONENT_EDELIVERY);
	ck_assert_msg(
		strncmp(err, "failed to push to endpoint dead (2 retries): unavailable: ", 58) == 0,
		"%s", err);
	free(err);
	ck_assert_int_eq(standin_count(sink), 1);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "a"), 1);
	th_destroy(&in);
}
END_TEST

START_TEST(invalid_labels_rejected_before_sending)
{
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\"}]}");
	const char *const bad[] = {"service_name", "x", "bad-name", "v", NULL};
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;

	ck_assert_int_eq(th_push(&in, bad, prof, len, 1000, &err), COMPONENT_EINVAL);
	ck_assert_str_eq(err, "invalid labels in profile: invalid label name: bad-name");
	free(err);
	ck_assert_int_eq(th_push(&in, NULL, prof, len, 1000, &err), COMPONENT_EINVAL);
	ck_assert_str_eq(err, "invalid labels in profile: service name is required");
	free(err);
	ck_assert_int_eq(standin_count(sink), 0);
	ck_assert_double_eq(th_metric(&in, "pyroscope_write_rejected_profiles_total{path=\"push\","
					   "reason=\"invalid_labels\"}"),
			    2);
	th_destroy(&in);
}
END_TEST

/* The secret in a URL never reaches metric labels or errors (D5). */
START_TEST(url_credentials_not_in_labels)
{
	char url[256];
	struct th_instance in;
	char *conf, *text;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;

	snprintf(url, sizeof(url), "http://user:SECRET-url-7@127.0.0.1:%d", standin_port(sink));
	conf = th_subst("{\"endpoint\":[{\"url\":\"URL\"}]}", "URL", url);
	ck_assert_int_eq(th_create(&plugin, conf, &in, &err), COMPONENT_OK);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, NULL), COMPONENT_OK);
	text = th_metrics(&in);
	ck_assert_ptr_null(strstr(text, "SECRET-url-7"));
	ck_assert_ptr_nonnull(strstr(text, "endpoint=\"http://127.0.0.1:"));
	free(text);
	ck_assert(!th_logs_contain("SECRET-url-7"));
	th_destroy(&in);
	free(conf);
}
END_TEST

START_TEST(ingest_forwarding)
{
	struct th_instance in =
		make("{\"external_labels\":{\"env\":\"prod\"},"
		     "\"endpoint\":[{\"url\":\"{{A}}/prefix?orgkey=1\",\"name\":\"a\"}]}");
	struct pw_label labels[] = {
		{"__name__", "myapp.cpu"}, {"env", "dev"}, {"service_name", "myapp.cpu"}};
	const char *ct[] = {"application/octet-stream"};
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	struct pw_ingest ing = {
		sizeof(ing),
		"/ingest?name=myapp.cpu%7Benv%3Ddev%7D&format=pprof&from=1700000000&spyName=gospy",
		ct,
		1,
		prof,
		len,
		labels,
		3};
	struct pw_result res = {0};
	struct standin_request *r;

	ck_assert_int_eq(in.rx->ingest(in.rx->ctx, &ing, th_deadline(5000), &res), COMPONENT_OK);
	ck_assert_int_eq(res.http_status, 200);
	in.rx->free_result(&res);
	r = standin_request_get(sink, 0);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->path, "/prefix/ingest");
	ck_assert_str_eq(r->name, "myapp.cpu{env=prod,service_name=myapp.cpu}");
	ck_assert_str_eq(r->format, "pprof");
	ck_assert_ptr_nonnull(strstr(r->query, "orgkey=1"));
	ck_assert_ptr_nonnull(strstr(r->query, "spyName=gospy"));
	ck_assert_str_eq(standin_request_header(r, "Content-Type"), "application/octet-stream");
	ck_assert_int_eq(r->body_len, len);
	ck_assert_mem_eq(r->body, prof, len);
	standin_request_free(r);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "a"), 1);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_bytes_total", "a"),
			    (double)len);
	th_destroy(&in);
}
END_TEST

/* The downstream status reaches the caller; a 4xx is final. */
START_TEST(ingest_error_status)
{
	struct standin_reply r = {.status = 422,
				  .content_type = "application/json",
				  .body = "{\"code\":\"unknown\",\"message\":\"bad profile\"}",
				  .times = 10};
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
				     "\"min_backoff_period\":\"10ms\"}]}");
	struct pw_label labels[] = {{"__name__", "app"}, {"service_name", "app"}};
	struct pw_ingest ing = {
		sizeof(ing), "/ingest?name=app", NULL, 0, (const uint8_t *)"a;b 1\n", 6, labels, 2};
	struct pw_result res = {0};

	standin_script(sink, STANDIN_ROUTE_INGEST, &r);
	ck_assert_int_eq(in.rx->ingest(in.rx->ctx, &ing, th_deadline(5000), &res),
			 COMPONENT_EDELIVERY);
	ck_assert_int_eq(res.http_status, 422);
	ck_assert_str_eq(
		res.error,
		"failed to ingest to endpoint a (0 retries): remote error: pyroscope "
		"write error: status=422 msg={\"code\":\"unknown\",\"message\":\"bad profile\"}");
	in.rx->free_result(&res);
	ck_assert_int_eq(standin_count(sink), 1);
	th_destroy(&in);
}
END_TEST

struct load_ctx {
	struct th_instance *in;
	int per_thread;
	pthread_mutex_t lock;
	char *first_error;
	atomic_int ok, failed;
	atomic_bool stop;
	const char *cfg_a, *cfg_b;
};

/* The i-th request's samples are exactly these byte strings. */
static void expect_samples(struct standin *st, size_t i, const uint8_t *const *data,
			   const size_t *lens, size_t n)
{
	struct standin_request *r = standin_request_get(st, i);
	struct pw_dec_push d;
	char *err = NULL;

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->status, 200);
	ck_assert_msg(pw_proto_decode_push(r->body, r->body_len, &d, &err) == 0, "%s", err);
	ck_assert_uint_eq(d.nseries, 1);
	ck_assert_uint_eq(d.series[0].nsamples, n);
	for (size_t j = 0; j < n; j++) {
		ck_assert_uint_eq(d.series[0].samples[j].len, lens[j]);
		ck_assert_int_eq(memcmp(d.series[0].samples[j].data, data[j], lens[j]), 0);
	}
	pw_dec_push_free(&d);
	standin_request_free(r);
}

struct async_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int status;
};

static void async_done(void *user, const struct pw_result *r)
{
	struct async_wait *w = user;

	pthread_mutex_lock(&w->lock);
	w->done = true;
	w->status = r->status;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* A host that keeps its samples until done (PW_PUSH_KEEP_UNTIL_DONE): large
 * ones are sent from its memory, also again on a retry, and byte for byte;
 * once done has run the host frees them and nothing reads them any more
 * (AddressSanitizer and valgrind would see it). */
START_TEST(push_async_keeps_caller_samples)
{
	struct standin_reply busy = {.status = 503, .body = "busy", .content_type = "text/plain"};
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\"},"
				     "{\"url\":\"{{B}}\",\"name\":\"b\","
				     "\"min_backoff_period\":\"10ms\"}]}");
	size_t big_len, small_len;
	uint8_t *big = th_big_pprof(300 * 1000, 7, &big_len);
	uint8_t *copy = malloc(big_len);
	const uint8_t *small = th_pprof_gz(&small_len);
	struct pw_label l[] = {{"service_name", "svc"}, {"__name__", "process_cpu"}};
	struct pw_sample smp[] = {{big, big_len, "big"}, {small, small_len, NULL}};
	struct pw_push p = {sizeof(p), l, 2, smp, 2, PW_PUSH_KEEP_UNTIL_DONE};
	struct async_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, -1};
	const uint8_t *want[2];
	size_t lens[2] = {big_len, small_len};

	memcpy(copy, big, big_len);
	want[0] = copy;
	want[1] = small;
	standin_script(sink2, STANDIN_ROUTE_PUSH, &busy);
	ck_assert_int_eq(in.rx->version, PW_RECEIVER_VERSION);
	ck_assert_int_eq(in.rx->push_async(in.rx->ctx, &p, th_deadline(10000), async_done, &w),
			 COMPONENT_OK);
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	ck_assert_int_eq(w.status, COMPONENT_OK);
	memset(big, 0, big_len);
	free(big);
	expect_samples(sink, 0, want, lens, 2);
	ck_assert_int_eq(standin_count(sink2), 2);
	expect_samples(sink2, 1, want, lens, 2);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_bytes_total", "a"),
			    (double)(big_len + small_len));

	/* The blocking push does the same on its own. */
	big = th_big_pprof(200 * 1000, 11, &big_len);
	memcpy(copy, big, big_len);
	lens[0] = big_len;
	ck_assert_int_eq(th_push(&in, labels_basic, big, big_len, 10000, NULL), COMPONENT_OK);
	free(big);
	expect_samples(sink, 1, want, lens, 1);
	expect_samples(sink2, 2, want, lens, 1);

	/* A caller built against the first receiver version has no flags: its
	 * struct ends at nsamples, and it is still accepted. */
	{
		struct pw_push old = p;

		old.struct_size = (uint32_t)(offsetof(struct pw_push, nsamples) + sizeof(size_t));
		old.flags = 0;
		big = th_big_pprof(100 * 1000, 3, &big_len);
		smp[0].data = big;
		smp[0].len = big_len;
		memcpy(copy, big, big_len);
		lens[0] = big_len;
		w.done = false;
		ck_assert_int_eq(
			in.rx->push_async(in.rx->ctx, &old, th_deadline(10000), async_done, &w),
			COMPONENT_OK);
		/* Not kept: the component copied it, so it may go right away. */
		memset(big, 0, big_len);
		free(big);
		pthread_mutex_lock(&w.lock);
		while (!w.done)
			pthread_cond_wait(&w.cond, &w.lock);
		pthread_mutex_unlock(&w.lock);
		ck_assert_int_eq(w.status, COMPONENT_OK);
		expect_samples(sink, 2, want, lens, 2);
	}
	free(copy);
	th_destroy(&in);
}
END_TEST

/* Counts completions of many async pushes. */
struct many {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, ok;
};

static void many_done(void *user, const struct pw_result *r)
{
	struct many *m = user;

	pthread_mutex_lock(&m->lock);
	m->done++;
	m->ok += r->status == COMPONENT_OK;
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

/* 20 deliveries at once to an endpoint that takes its time: the engine
 * starts only as many requests as the endpoint's concurrency limit allows
 * (8 before it has learned anything, or max_connections when lower), the
 * rest wait their turn and all arrive. */
static void expect_concurrency(const char *tmpl, int want)
{
	int delay = th_under_valgrind() ? 2000 : 600;
	struct standin_reply slow = {
		.status = 200, .content_type = "application/proto", .delay_ms = delay, .times = 20};
	struct th_instance in = make(tmpl);
	struct many m = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
	size_t len;
	struct pw_label l[] = {{"service_name", "svc"}};
	struct pw_sample smp = {th_pprof_gz(&len), 0, NULL};
	struct pw_push p = {sizeof(p), l, 1, &smp, 1, 0};

	smp.len = len;
	standin_script_clear(sink);
	standin_script(sink, STANDIN_ROUTE_PUSH, &slow);
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(
			in.rx->push_async(in.rx->ctx, &p, th_deadline(60000), many_done, &m),
			COMPONENT_OK);
	ck_assert_int_eq(standin_wait(sink, (size_t)want, delay), 0);
	/* The first answers are still a while away: nothing more starts. */
	usleep((useconds_t)delay * 1000 / 3);
	ck_assert_int_eq(standin_count(sink), want);
	pthread_mutex_lock(&m.lock);
	while (m.done < 20)
		pthread_cond_wait(&m.cond, &m.lock);
	pthread_mutex_unlock(&m.lock);
	ck_assert_int_eq(m.ok, 20);
	ck_assert_int_eq(standin_count(sink), 20);
	/* Deliveries queued while the endpoint was full did not wake the I/O
	 * thread; now that it is free again, a new one must, rather than wait
	 * out the second the idle loop sleeps (given time to fall asleep). */
	usleep(100 * 1000);
	ck_assert_int_eq(in.rx->push_async(in.rx->ctx, &p, th_deadline(60000), many_done, &m),
			 COMPONENT_OK);
	ck_assert_int_eq(standin_wait(sink, 21, 700), 0);
	pthread_mutex_lock(&m.lock);
	while (m.done < 21)
		pthread_cond_wait(&m.cond, &m.lock);
	pthread_mutex_unlock(&m.lock);
	ck_assert_int_eq(m.ok, 21);
	th_destroy(&in);
}

START_TEST(concurrency_limit_bounds_requests)
{
	expect_concurrency("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\"}]}", 8);
	teardown();
	setup();
	expect_concurrency("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
			   "\"max_connections\":3}]}",
			   3);
}
END_TEST

/* The debug view's idle_handles of the first endpoint. */
static int idle_handles(struct th_instance *in)
{
	char *text = th_debug_info(in), *at;
	int n;

	at = strstr(text, "\"idle_handles\":");
	ck_assert_ptr_nonnull(at);
	n = atoi(at + strlen("\"idle_handles\":"));
	free(text);
	return n;
}

/* Easy handles kept for reuse stay while deliveries flow and are freed
 * once the engine has been idle for about two seconds; the next delivery
 * then works as before. */
START_TEST(idle_handles_released)
{
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\"}]}");
	struct many m = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
	size_t len;
	struct pw_label l[] = {{"service_name", "svc"}};
	struct pw_sample smp = {th_pprof_gz(&len), 0, NULL};
	struct pw_push p = {sizeof(p), l, 1, &smp, 1, 0};
	double idle_from, waited = 0;
	struct pw_result r = {0};

	smp.len = len;
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(
			in.rx->push_async(in.rx->ctx, &p, th_deadline(60000), many_done, &m),
			COMPONENT_OK);
	pthread_mutex_lock(&m.lock);
	while (m.done < 20)
		pthread_cond_wait(&m.cond, &m.lock);
	pthread_mutex_unlock(&m.lock);
	ck_assert_int_eq(m.ok, 20);
	idle_from = th_now_s();
	ck_assert_int_gt(idle_handles(&in), 0);
	while (idle_handles(&in) > 0 && (waited = th_now_s() - idle_from) < 15)
		usleep(50 * 1000);
	ck_assert_int_eq(idle_handles(&in), 0);
	ck_assert_msg(waited >= 1.5, "handles freed after %.2f s of idleness", waited);
	ck_assert_int_eq(in.rx->push(in.rx->ctx, &p, th_deadline(60000), &r), COMPONENT_OK);
	in.rx->free_result(&r);
	ck_assert_int_eq(standin_count(sink), 21);
	ck_assert_int_eq(idle_handles(&in), 1);
	th_destroy(&in);
}
END_TEST

static void *producer(void *arg)
{
	struct load_ctx *c = arg;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);

	for (int i = 0; i < c->per_thread; i++) {
		struct pw_label l[] = {{"service_name", "load"}};
		struct pw_sample s = {prof, len, NULL};
		struct pw_push p = {sizeof(p), l, 1, &s, 1};
		struct pw_result r = {0};

		if (c->in->rx->push(c->in->rx->ctx, &p, th_deadline(60000), &r) == COMPONENT_OK) {
			atomic_fetch_add(&c->ok, 1);
		} else {
			atomic_fetch_add(&c->failed, 1);
			pthread_mutex_lock(&c->lock);
			if (!c->first_error)
				c->first_error = strdup(r.error ? r.error : "?");
			pthread_mutex_unlock(&c->lock);
		}
		c->in->rx->free_result(&r);
	}
	return NULL;
}

static void *updater(void *arg)
{
	struct load_ctx *c = arg;
	int i = 0;

	while (!atomic_load(&c->stop)) {
		const char *doc = (i % 3 == 2) ? "{\"endpoint\":[{\"url\":5}]}"
					       : (i % 2 ? c->cfg_a : c->cfg_b);

		c->in->p->d->update(c->in->inst, doc, NULL);
		i++;
		/* Leave the CPU to the producers now and then (2 cores). */
		if (i % 16 == 0)
			usleep(1000);
	}
	return NULL;
}

/* 32 producers and a stream of updates: every push completes, and every
 * profile is counted exactly once, as sent, by one of the two endpoints. */
START_TEST(concurrent_producers_and_updates)
{
	char *a = cfg("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\"}]}");
	char *b = cfg("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"b\"}]}");
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\"}]}");
	struct load_ctx c = {.in = &in, .cfg_a = a, .cfg_b = b};
	pthread_t th[32], up;
	/* Under valgrind everything is ~30x slower: fewer pushes, same shape. */
	int nthreads = getenv("PW_UNDER_VALGRIND") ? 8 : 32;
	double sent;

	c.per_thread = getenv("PW_UNDER_VALGRIND") ? 5 : 20;
	pthread_mutex_init(&c.lock, NULL);

	atomic_init(&c.ok, 0);
	atomic_init(&c.failed, 0);
	atomic_init(&c.stop, false);
	pthread_create(&up, NULL, updater, &c);
	for (int i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, producer, &c);
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	atomic_store(&c.stop, true);
	pthread_join(up, NULL);
	ck_assert_msg(atomic_load(&c.failed) == 0, "%d pushes failed, first: %s",
		      atomic_load(&c.failed), c.first_error);
	ck_assert_int_eq(atomic_load(&c.ok), nthreads * c.per_thread);
	sent = th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "a") +
	       (th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "b") > 0
			? th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "b")
			: 0);
	ck_assert_double_eq(sent, nthreads * c.per_thread);
	ck_assert_int_eq(standin_count(sink), (size_t)(nthreads * c.per_thread));
	th_destroy(&in);
	pthread_mutex_destroy(&c.lock);
	free(c.first_error);
	free(a);
	free(b);
}
END_TEST

static Suite *delivery_suite(void)
{
	Suite *s = suite_create("delivery");
	TCase *tc = tcase_create("delivery");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, push_wire_format_labels_and_headers);
	tcase_add_test(tc, push_async_keeps_caller_samples);
	tcase_add_test(tc, concurrency_limit_bounds_requests);
	tcase_add_test(tc, idle_handles_released);
	tcase_add_test(tc, fanout_one_failing);
	tcase_add_test(tc, connect_error_not_retried);
	tcase_add_test(tc, connect_error_gzip_body);
	tcase_add_test(tc, rate_limit_respects_retry_on_429);
	tcase_add_test(tc, retry_after_is_honoured);
	tcase_add_test(tc, remote_timeout_cuts_attempt);
	tcase_add_test(tc, caller_deadline_ends_retries);
	tcase_add_test(tc, connection_refused_is_retried);
	tcase_add_test(tc, invalid_labels_rejected_before_sending);
	tcase_add_test(tc, url_credentials_not_in_labels);
	tcase_add_test(tc, ingest_forwarding);
	tcase_add_test(tc, ingest_error_status);
	tcase_add_test(tc, concurrent_producers_and_updates);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(delivery_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
