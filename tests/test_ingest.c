/*
 * test_ingest.c - SDK-shaped /ingest requests forwarded through the built
 * plugin to the strict stand-in, which parses them the way Pyroscope's
 * ingest handler does and refuses what it would refuse.
 */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "hostutil.h"
#include "standin/standin.h"
#include "strbuf.h"

static struct standin *sink;
static struct th_plugin plugin;
static struct th_instance in;

static void setup(void)
{
	struct standin_opts o = {0};
	char *err = NULL, *cfg;

	sink = standin_start(&o, &err);
	ck_assert_msg(sink != NULL, "standin: %s", err ? err : "?");
	th_load(&plugin, NULL);
	cfg = th_subst("{\"external_labels\":{\"cluster\":\"eu-1\"},"
		       "\"endpoint\":[{\"url\":\"{{URL}}\",\"name\":\"a\",\"min_backoff_period\":"
		       "\"10ms\"}]}",
		       "{{URL}}", standin_url(sink));
	ck_assert_int_eq(th_create(&plugin, cfg, &in, NULL), COMPONENT_OK);
	free(cfg);
}

static void teardown(void)
{
	th_destroy(&in);
	th_unload(&plugin);
	standin_stop(sink);
}

/* Sends one ingest; returns the status and, via *r, the request the
 * stand-in recorded (NULL when none arrived). */
static int ingest(const char *path_query, const char *ctype, const void *body, size_t len,
		  const struct pw_label *labels, size_t nlabels, struct pw_result *res,
		  struct standin_request **r)
{
	const char *ct[] = {ctype};
	struct pw_ingest ing = {sizeof(ing), path_query, ct,	 ctype ? 1 : 0,
				body,	     len,	 labels, nlabels};
	size_t before = standin_count(sink);
	int rc = in.rx->ingest(in.rx->ctx, &ing, th_deadline(5000), res);

	*r = standin_count(sink) > before ? standin_request_get(sink, before) : NULL;
	return rc;
}

static const struct pw_label app_labels[] = {{"__name__", "shop"}, {"service_name", "shop"}};

static uint8_t *gzip_bytes(const void *data, size_t len, size_t *outlen)
{
	z_stream z = {0};
	uint8_t *out = malloc(len + 128);

	ck_assert_int_eq(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
			 Z_OK);
	z.next_in = (Bytef *)data;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)(len + 128);
	ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	*outlen = z.total_out;
	deflateEnd(&z);
	return out;
}

START_TEST(pprof_gzip_and_raw)
{
	struct pw_result res = {0};
	struct standin_request *r;
	size_t rawlen, gzlen;
	const uint8_t *raw = standin_pprof_sample(&rawlen);
	uint8_t *gz = gzip_bytes(raw, rawlen, &gzlen);

	ck_assert_int_eq(ingest("/ingest?name=shop&format=pprof&spyName=gospy",
				"application/octet-stream", gz, gzlen, app_labels, 2, &res, &r),
			 COMPONENT_OK);
	ck_assert_int_eq(res.http_status, 200);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->name, "shop{cluster=eu-1,service_name=shop}");
	ck_assert_mem_eq(r->body, gz, gzlen);
	standin_request_free(r);
	in.rx->free_result(&res);

	ck_assert_int_eq(ingest("/ingest?name=shop&format=pprof", NULL, raw, rawlen, app_labels, 2,
				&res, &r),
			 COMPONENT_OK);
	ck_assert_ptr_null(standin_request_header(r, "Content-Type"));
	standin_request_free(r);
	in.rx->free_result(&res);
	free(gz);
}
END_TEST

struct done_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int status, http_status;
};

static void on_done(void *user, const struct pw_result *res)
{
	struct done_wait *w = user;

	pthread_mutex_lock(&w->mu);
	w->status = res->status;
	w->http_status = res->http_status;
	w->done = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* A body the host keeps until the callback (PW_INGEST_KEEP_UNTIL_DONE) is
 * sent from the host's memory: it arrives intact, and a caller built
 * before the flag existed (a shorter struct) still gets its body copied. */
START_TEST(kept_large_body_arrives_intact)
{
	struct done_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0};
	const char *ct[] = {"application/octet-stream"};
	struct pw_ingest ing = {0};
	struct pw_result res = {0};
	struct standin_request *r;
	size_t len;
	uint8_t *body = th_big_pprof(1 << 20, 7, &len);

	ck_assert_uint_ge(len, 64 * 1024);
	ing.struct_size = sizeof(ing);
	ing.path_query = "/ingest?name=shop&format=pprof";
	ing.content_types = ct;
	ing.ncontent_types = 1;
	ing.body = body;
	ing.body_len = len;
	ing.labels = app_labels;
	ing.nlabels = 2;
	ing.flags = PW_INGEST_KEEP_UNTIL_DONE;
	ck_assert_int_eq(in.rx->ingest_async(in.rx->ctx, &ing, th_deadline(5000), on_done, &w),
			 COMPONENT_OK);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	ck_assert_int_eq(w.status, COMPONENT_OK);
	ck_assert_int_eq(w.http_status, 200);
	r = standin_request_get(sink, standin_count(sink) - 1);
	ck_assert_uint_eq(r->body_len, len);
	ck_assert_mem_eq(r->body, body, len);
	standin_request_free(r);

	/* Receiver version 2's struct ends at nlabels. */
	ing.struct_size = (uint32_t)(offsetof(struct pw_ingest, nlabels) + sizeof(size_t));
	ck_assert_int_eq(in.rx->ingest(in.rx->ctx, &ing, th_deadline(5000), &res), COMPONENT_OK);
	ck_assert_int_eq(res.http_status, 200);
	in.rx->free_result(&res);
	r = standin_request_get(sink, standin_count(sink) - 1);
	ck_assert_mem_eq(r->body, body, len);
	standin_request_free(r);
	free(body);
}
END_TEST

START_TEST(multipart_with_sample_type_config)
{
	struct pw_result res = {0};
	struct standin_request *r;
	struct strbuf body = STRBUF_INIT;
	size_t rawlen;
	const uint8_t *raw = standin_pprof_sample(&rawlen);
	const char *b = "----pwboundary42";
	char ctype[128];

	snprintf(ctype, sizeof(ctype), "multipart/form-data; boundary=%s", b);
	strbuf_printf(
		&body,
		"--%s\r\nContent-Disposition: form-data; name=\"profile\"; "
		"filename=\"profile.pprof\"\r\nContent-Type: application/octet-stream\r\n\r\n",
		b);
	strbuf_append(&body, raw, rawlen);
	strbuf_printf(
		&body,
		"\r\n--%s\r\nContent-Disposition: form-data; name=\"sample_type_config\"; "
		"filename=\"sample_type_config.json\"\r\n\r\n"
		"{\"samples\":{\"units\":\"samples\",\"display-name\":\"cpu\"}}\r\n--%s--\r\n",
		b, b);
	ck_assert_int_eq(ingest("/ingest?name=shop%7Benv%3Dprod%7D&spyName=pyspy", ctype, body.data,
				body.len,
				(struct pw_label[]){{"__name__", "shop"},
						    {"env", "prod"},
						    {"service_name", "shop"}},
				3, &res, &r),
			 COMPONENT_OK);
	ck_assert_int_eq(r->status, 200);
	/* The boundary survives: only Content-Type crossed over. */
	ck_assert_str_eq(standin_request_header(r, "Content-Type"), ctype);
	ck_assert_str_eq(r->name, "shop{cluster=eu-1,env=prod,service_name=shop}");
	standin_request_free(r);
	in.rx->free_result(&res);
	strbuf_free(&body);
}
END_TEST

START_TEST(jfr_and_collapsed)
{
	struct pw_result res = {0};
	struct standin_request *r;
	/* The JFR chunk magic and a little more. */
	static const uint8_t jfr[] = {'F', 'L', 'R', 0, 0, 2, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
	const char *folded = "main;work;compute 10\nmain;idle 3\n";

	ck_assert_int_eq(ingest("/ingest?name=jvm&format=jfr", "application/octet-stream", jfr,
				sizeof(jfr), (struct pw_label[]){{"__name__", "jvm"}}, 1, &res, &r),
			 COMPONENT_OK);
	ck_assert_str_eq(r->format, "jfr");
	ck_assert_str_eq(r->name, "jvm{cluster=eu-1}");
	standin_request_free(r);
	in.rx->free_result(&res);

	ck_assert_int_eq(
		ingest("/ingest?name=shop.cpu&units=samples&aggregationType=sum&sampleRate=100",
		       "text/plain", folded, strlen(folded),
		       (struct pw_label[]){{"__name__", "shop.cpu"}}, 1, &res, &r),
		COMPONENT_OK);
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(strstr(r->query, "sampleRate=100"));
	ck_assert_ptr_nonnull(strstr(r->query, "aggregationType=sum"));
	standin_request_free(r);
	in.rx->free_result(&res);
}
END_TEST

/* name edge cases: no labels at all, no __name__, characters that need
 * percent-encoding. */
START_TEST(name_edge_cases)
{
	struct pw_result res = {0};
	struct standin_request *r;
	const char *folded = "a;b 1\n";

	/* No labels: refused before sending, with the status for the SDK. */
	ck_assert_int_eq(ingest("/ingest?name=", NULL, folded, 6, NULL, 0, &res, &r),
			 COMPONENT_EINVAL);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(res.http_status, 400);
	ck_assert_str_eq(res.error, "invalid labels in profile: service name is required");
	in.rx->free_result(&res);

	/* No __name__: the rewritten name starts with '{', which Pyroscope
	 * refuses (the stand-in too) - the error and status come back. */
	ck_assert_int_eq(ingest("/ingest?name=x", NULL, folded, 6,
				(struct pw_label[]){{"env", "dev"}}, 1, &res, &r),
			 COMPONENT_EDELIVERY);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->status, 400);
	ck_assert_int_eq(res.http_status, 400);
	ck_assert_ptr_nonnull(strstr(res.error, "status=400"));
	standin_request_free(r);
	in.rx->free_result(&res);

	/* Values with spaces, '&', '+' and '/' survive the query encoding. */
	ck_assert_int_eq(
		ingest("/ingest?name=svc", NULL, folded, 6,
		       (struct pw_label[]){{"__name__", "my-app/api"}, {"path", "/a b&c+d"}}, 2,
		       &res, &r),
		COMPONENT_OK);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->name, "my-app/api{cluster=eu-1,path=/a b&c+d}");
	ck_assert_ptr_nonnull(strstr(r->query, "%2Fa+b%26c%2Bd"));
	standin_request_free(r);
	in.rx->free_result(&res);
}
END_TEST

/* The incoming content types become header values of the downstream
 * request: a CR or LF in one would add a header of the client's choosing,
 * a second X-Scope-OrgID ahead of the configured tenant. */
START_TEST(control_bytes_refused)
{
	static const char *const bad[] = {"application/octet-stream\nX-Scope-OrgID: victim",
					  "application/octet-stream\r\nX-Scope-OrgID: victim",
					  "application/octet-stream\r", "text/plain\x01", NULL};
	struct pw_result res = {0};
	struct standin_request *r;
	const char *folded = "a;b 1\n";
	const char *two[] = {"text/plain", "text/plain\nX-A: b"};
	struct pw_ingest ing = {sizeof(ing), "/ingest?name=shop", two, 2, (const uint8_t *)folded,
				6,	     app_labels,	  2};

	for (size_t i = 0; bad[i]; i++) {
		ck_assert_int_eq(
			ingest("/ingest?name=shop", bad[i], folded, 6, app_labels, 2, &res, &r),
			COMPONENT_EINVAL);
		ck_assert_ptr_null(r);
		ck_assert_int_eq(res.http_status, 400);
		ck_assert_str_eq(res.error, "ingest content_types[0]: a header value must not "
					    "contain CR, LF or other control characters");
		in.rx->free_result(&res);
	}
	ck_assert_int_eq(in.rx->ingest(in.rx->ctx, &ing, th_deadline(5000), &res),
			 COMPONENT_EINVAL);
	ck_assert_ptr_nonnull(strstr(res.error, "content_types[1]"));
	in.rx->free_result(&res);
	ck_assert_int_eq(
		ingest("/ingest?name=shop\r\nX-A: b", NULL, folded, 6, app_labels, 2, &res, &r),
		COMPONENT_EINVAL);
	ck_assert_ptr_null(r);
	ck_assert_str_eq(res.error, "ingest path_query: must not contain control characters");
	in.rx->free_result(&res);
	ck_assert_uint_eq(standin_count(sink), 0);
	ck_assert_double_eq(th_metric(&in,
				      "pyroscope_write_rejected_profiles_total{path=\"ingest\","
				      "reason=\"invalid_request\"}"),
			    6);

	/* A TAB is no control byte for HTTP: such a value is sent. */
	ck_assert_int_eq(ingest("/ingest?name=shop", "text/plain;\tcharset=utf-8", folded, 6,
				app_labels, 2, &res, &r),
			 COMPONENT_OK);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(standin_request_header(r, "Content-Type"), "text/plain;\tcharset=utf-8");
	standin_request_free(r);
	in.rx->free_result(&res);
}
END_TEST

static Suite *ingest_suite(void)
{
	Suite *s = suite_create("ingest");
	TCase *tc = tcase_create("ingest");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, pprof_gzip_and_raw);
	tcase_add_test(tc, kept_large_body_arrives_intact);
	tcase_add_test(tc, multipart_with_sample_type_config);
	tcase_add_test(tc, jfr_and_collapsed);
	tcase_add_test(tc, name_edge_cases);
	tcase_add_test(tc, control_bytes_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ingest_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
