/*
 * test_badinput.c - hostile or careless input through the ABI: NULL
 * pointers, wrong struct sizes, empty and oversized values, invalid UTF-8,
 * documents that are not JSON or nest without end. Each gets a clear status
 * and error text; none may crash the process.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostutil.h"
#include "standin/standin.h"

static struct standin *sink;
static struct th_plugin plugin;

static void setup(void)
{
	struct standin_opts o = {0};
	char *err = NULL;

	sink = standin_start(&o, &err);
	ck_assert_msg(sink != NULL, "standin: %s", err ? err : "?");
	th_load(&plugin, NULL);
}

static void teardown(void)
{
	th_unload(&plugin);
	standin_stop(sink);
}

static struct th_instance make(const char *extra)
{
	struct th_instance in;
	char *c, *tmpl = NULL, *err = NULL;

	ck_assert_int_ge(asprintf(&tmpl, "{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\"}]%s}",
				  extra ? extra : ""),
			 0);
	c = th_subst(tmpl, "{{A}}", standin_url(sink));
	ck_assert_msg(th_create(&plugin, c, &in, &err) == COMPONENT_OK, "create: %s", err);
	free(c);
	free(tmpl);
	return in;
}

static struct component_host host_for_tests(void)
{
	struct component_host h = {0};

	h.struct_size = sizeof(h);
	h.abi_major = COMPONENT_ABI_MAJOR;
	h.abi_minor = COMPONENT_ABI_MINOR;
	return h;
}

/* create() refuses the document with ECONFIG and an error that contains
 * `needle`. */
static void refuse_doc(const char *doc, const char *needle)
{
	struct th_instance in;
	char *err = NULL;

	ck_assert_int_eq(th_create(&plugin, doc, &in, &err), COMPONENT_ECONFIG);
	ck_assert_ptr_null(in.inst);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, needle) != NULL, "error \"%.300s\" lacks \"%s\"", err, needle);
	ck_assert_msg(strlen(err) < 64 * 1024, "error of %zu bytes", strlen(err));
	free(err);
}

START_TEST(null_arguments_everywhere)
{
	const struct component_descriptor *d = plugin.d;
	struct component_host h = host_for_tests();
	struct component_instance *inst = (struct component_instance *)0x1;
	struct component_health hl = {.struct_size = sizeof(hl)};
	struct th_instance in = make(NULL);
	const void *exp = NULL;
	char *err = NULL;

	ck_assert_int_eq(d->create(NULL, "{}", &inst, &err), COMPONENT_EINVAL);
	ck_assert_ptr_null(inst);
	ck_assert_ptr_nonnull(err);
	d->free_string(err);
	ck_assert_int_eq(d->create(&h, NULL, &inst, &err), COMPONENT_EINVAL);
	d->free_string(err);
	ck_assert_int_eq(d->create(&h, "{}", NULL, &err), COMPONENT_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "must not be NULL"));
	d->free_string(err);
	ck_assert_int_eq(d->create(&h, "{}", NULL, NULL), COMPONENT_EINVAL);

	ck_assert_int_eq(d->update(NULL, "{}", &err), COMPONENT_EINVAL);
	d->free_string(err);
	ck_assert_int_eq(d->update(in.inst, NULL, &err), COMPONENT_EINVAL);
	d->free_string(err);
	ck_assert_int_eq(d->update(in.inst, NULL, NULL), COMPONENT_EINVAL);
	ck_assert_int_eq(d->get_export(NULL, "receiver", &exp), COMPONENT_EINVAL);
	ck_assert_int_eq(d->get_export(in.inst, NULL, &exp), COMPONENT_EINVAL);
	ck_assert_int_eq(d->get_export(in.inst, "receiver", NULL), COMPONENT_EINVAL);
	ck_assert_int_eq(d->get_export(in.inst, "", &exp), COMPONENT_ENOTFOUND);
	ck_assert_int_eq(d->health(NULL, &hl), COMPONENT_EINVAL);
	ck_assert_int_eq(d->health(in.inst, NULL), COMPONENT_EINVAL);
	hl.struct_size = 4;
	ck_assert_int_eq(d->health(in.inst, &hl), COMPONENT_EINVAL);
	ck_assert_int_eq(d->metrics(NULL, NULL, NULL), COMPONENT_EINVAL);
	ck_assert_int_eq(d->metrics(in.inst, NULL, NULL), COMPONENT_EINVAL);
	ck_assert_int_eq(d->debug_info(NULL, NULL, NULL), COMPONENT_EINVAL);
	ck_assert_int_eq(d->debug_info(in.inst, NULL, NULL), COMPONENT_EINVAL);
	d->destroy(NULL);
	d->free_string(NULL);
	ck_assert_str_eq(d->strerror(-1), "unknown status");
	ck_assert_str_eq(d->strerror(100000), "unknown status");
	ck_assert_ptr_nonnull(d->strerror(COMPONENT_EOVERLOAD));
	/* The instance is untouched by all of the above. */
	hl.struct_size = sizeof(hl);
	ck_assert_int_eq(d->health(in.inst, &hl), COMPONENT_OK);
	ck_assert_int_eq(hl.healthy, 1);
	th_destroy(&in);
}
END_TEST

static atomic_int cb_calls;

static void cb(void *user, const struct pw_result *r)
{
	(void)user;
	(void)r;
	atomic_fetch_add(&cb_calls, 1);
}

START_TEST(receiver_null_and_malformed)
{
	struct th_instance in = make(NULL);
	const struct pw_receiver *rx = in.rx;
	struct pw_label good[] = {{"service_name", "svc"}};
	struct pw_label null_name[] = {{NULL, "v"}};
	struct pw_label null_value[] = {{"service_name", NULL}};
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	struct pw_sample s = {prof, len, NULL};
	struct pw_sample s_null = {NULL, 10, NULL};
	struct pw_push ok = {sizeof(ok), good, 1, &s, 1};
	struct pw_push bad[] = {
		{0, good, 1, &s, 1}, /* struct_size 0 */
		{sizeof(ok), NULL, 1, &s, 1}, /* labels NULL with a count */
		{sizeof(ok), good, 1, NULL, 1}, /* samples NULL with a count */
		{sizeof(ok), null_name, 1, &s, 1}, /* a NULL label name */
		{sizeof(ok), null_value, 1, &s, 1}, /* a NULL label value */
		{sizeof(ok), good, 1, &s_null, 1}, /* sample data NULL with a length */
	};
	struct pw_ingest ing = {sizeof(ing), NULL, NULL, 0, prof, len, NULL, 0};
	struct pw_result r = {0};

	atomic_init(&cb_calls, 0);
	ck_assert_int_eq(rx->push(rx->ctx, NULL, 0, &r), COMPONENT_EINVAL);
	ck_assert_int_eq(r.status, COMPONENT_EINVAL);
	rx->free_result(&r);
	ck_assert_int_eq(rx->push(rx->ctx, &ok, 0, NULL), COMPONENT_EINVAL);
	ck_assert_int_eq(rx->push(NULL, &ok, 0, &r), COMPONENT_EINVAL);
	rx->free_result(&r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(rx->push(rx->ctx, &bad[i], 0, &r), COMPONENT_EINVAL);
		rx->free_result(&r);
		/* Refused up front: no callback. */
		ck_assert_int_eq(rx->push_async(rx->ctx, &bad[i], 0, cb, NULL), COMPONENT_EINVAL);
	}
	ck_assert_int_eq(rx->push_async(rx->ctx, &ok, 0, NULL, NULL), COMPONENT_EINVAL);
	ck_assert_int_eq(rx->ingest(rx->ctx, NULL, 0, &r), COMPONENT_EINVAL);
	rx->free_result(&r);
	ck_assert_int_eq(rx->ingest(rx->ctx, &ing, 0, &r), COMPONENT_EINVAL); /* path_query NULL */
	rx->free_result(&r);
	ck_assert_int_eq(rx->ingest_async(rx->ctx, &ing, 0, cb, NULL), COMPONENT_EINVAL);
	rx->free_result(NULL);
	ck_assert_int_eq(atomic_load(&cb_calls), 0);
	ck_assert_int_eq(standin_count(sink), 0);

	/* Zero labels and zero samples: a clear label error, nothing sent. */
	ok.nlabels = 0;
	ok.labels = NULL;
	ck_assert_int_eq(rx->push(rx->ctx, &ok, th_deadline(2000), &r), COMPONENT_EINVAL);
	ck_assert_str_eq(r.error, "invalid labels in profile: service name is required");
	rx->free_result(&r);
	ck_assert_int_eq(standin_count(sink), 0);
	th_destroy(&in);
}
END_TEST

static int push_one(struct th_instance *in, const struct pw_label *l, size_t n, const void *data,
		    size_t len, char **err)
{
	struct pw_sample s = {data, len, NULL};
	struct pw_push p = {sizeof(p), l, n, &s, 1};
	struct pw_result r = {0};
	int rc = in->rx->push(in->rx->ctx, &p, th_deadline(20000), &r);

	*err = r.error ? strdup(r.error) : NULL;
	in->rx->free_result(&r);
	return rc;
}

START_TEST(oversized_and_odd_labels)
{
	struct th_instance in = make(NULL);
	const size_t big = 1 << 20;
	char *huge = malloc(big + 1);
	size_t nmany = 10000;
	struct pw_label *many = calloc(nmany + 1, sizeof(*many));
	char(*names)[16] = calloc(nmany, sizeof(*names));
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;

	ck_assert_ptr_nonnull(huge);
	ck_assert_ptr_nonnull(many);
	ck_assert_ptr_nonnull(names);
	memset(huge, 'v', big);
	huge[big] = '\0';

	/* A 1 MiB label value is forwarded whole; the server refuses it, as
	 * Pyroscope does, and that answer is final: one attempt. */
	{
		struct pw_label l[] = {{"service_name", "svc"}, {"blob", huge}};
		struct standin_request *r;

		ck_assert_int_eq(push_one(&in, l, 2, prof, len, &err), COMPONENT_EDELIVERY);
		ck_assert_str_eq(err, "failed to push to endpoint a (0 retries): invalid_argument: "
				      "series 0: invalid labels: label value too long for blob");
		free(err);
		ck_assert_int_eq(standin_count(sink), 1);
		r = standin_request_get(sink, 0);
		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(r->status, 400);
		ck_assert_uint_gt(strlen(r->series_labels[0]), big);
		standin_request_free(r);
	}
	/* A 1 MiB label name is not a label name anyone can store. */
	{
		struct pw_label l[] = {{"service_name", "svc"}, {huge, "x"}};

		huge[0] = 'n';
		ck_assert_int_ne(push_one(&in, l, 2, prof, len, &err), COMPONENT_OK);
		ck_assert_ptr_nonnull(err);
		ck_assert_msg(strlen(err) < 4096 || strstr(err, "invalid") != NULL, "%.200s", err);
		free(err);
	}
	/* 10 000 labels. */
	many[0].name = "service_name";
	many[0].value = "svc";
	for (size_t i = 0; i < nmany; i++) {
		snprintf(names[i], sizeof(names[i]), "l%05zu", i);
		many[i + 1].name = names[i];
		many[i + 1].value = "v";
	}
	{
		int rc = push_one(&in, many, nmany + 1, prof, len, &err);

		/* Either delivered whole or refused with a reason, not cut. */
		if (rc == COMPONENT_OK) {
			struct standin_request *r =
				standin_request_get(sink, standin_count(sink) - 1);

			ck_assert_ptr_nonnull(strstr(r->series_labels[0], "l09999=v"));
			standin_request_free(r);
		} else {
			ck_assert_ptr_nonnull(err);
		}
		free(err);
	}
	/* Empty name, empty value, invalid UTF-8, duplicates. */
	{
		struct pw_label empty_name[] = {{"service_name", "svc"}, {"", "x"}};
		struct pw_label bad_utf8[] = {{"service_name", "svc"}, {"k", "\xc3\x28\xff"}};
		struct pw_label bad_utf8_svc[] = {{"service_name", "\xed\xa0\x80"}};
		struct pw_label dup[] = {{"service_name", "svc"}, {"k", "1"}, {"k", "2"}};
		struct pw_label empty_value[] = {{"service_name", "svc"}, {"k", ""}};

		ck_assert_int_eq(push_one(&in, empty_name, 2, prof, len, &err), COMPONENT_EINVAL);
		ck_assert_ptr_nonnull(strstr(err, "invalid labels in profile"));
		free(err);
		ck_assert_int_eq(push_one(&in, bad_utf8, 2, prof, len, &err), COMPONENT_EINVAL);
		ck_assert_ptr_nonnull(strstr(err, "invalid labels in profile"));
		free(err);
		ck_assert_int_eq(push_one(&in, bad_utf8_svc, 1, prof, len, &err), COMPONENT_EINVAL);
		ck_assert_ptr_nonnull(strstr(err, "invalid labels in profile"));
		free(err);
		ck_assert_int_eq(push_one(&in, dup, 3, prof, len, &err), COMPONENT_EINVAL);
		ck_assert_ptr_nonnull(strstr(err, "invalid labels in profile"));
		free(err);
		/* An empty value simply drops the label. */
		ck_assert_int_eq(push_one(&in, empty_value, 2, prof, len, &err), COMPONENT_OK);
		free(err);
	}
	/* The process is still fine, and so is the instance. */
	{
		struct pw_label l[] = {{"service_name", "svc"}};

		ck_assert_int_eq(push_one(&in, l, 1, prof, len, &err), COMPONENT_OK);
		ck_assert_ptr_null(err);
	}
	th_destroy(&in);
	free(huge);
	free(many);
	free(names);
}
END_TEST

START_TEST(large_bodies)
{
	struct th_instance in = make(",\"max_inflight_bytes\":8388608");
	const size_t big = th_under_valgrind() ? (2u << 20) : (6u << 20);
	uint8_t *body = malloc(16u << 20);
	struct pw_label l[] = {{"service_name", "svc"}};
	struct standin_reply ok = {.status = 200, .content_type = "application/proto"};
	char *err = NULL;

	ck_assert_ptr_nonnull(body);
	for (size_t i = 0; i < (16u << 20); i++)
		body[i] = (uint8_t)(i * 2654435761u >> 13);
	/* Under the cap: sent in full (the stand-in would judge random bytes
	 * as a bad profile, so it is told to accept). */
	standin_script(sink, STANDIN_ROUTE_PUSH, &ok);
	ck_assert_int_eq(push_one(&in, l, 1, body, big, &err), COMPONENT_OK);
	ck_assert_ptr_null(err);
	{
		struct standin_request *r = standin_request_get(sink, 0);

		ck_assert_uint_gt(r->body_len, big);
		standin_request_free(r);
	}
	ck_assert_double_eq(th_metric(&in, "pyroscope_write_sent_bytes_total{endpoint=\"a\"}"),
			    (double)big);
	/* Over the cap on its own: refused at once, counted, nothing sent. */
	ck_assert_int_eq(push_one(&in, l, 1, body, 16u << 20, &err), COMPONENT_EOVERLOAD);
	ck_assert_ptr_nonnull(strstr(err, "max_inflight_bytes"));
	free(err);
	ck_assert_int_eq(standin_count(sink), 1);
	ck_assert_double_eq(th_metric(&in, "pyroscope_write_dropped_bytes_total{endpoint=\"a\"}"),
			    (double)(16u << 20));
	/* The same through ingest. */
	{
		struct pw_label il[] = {{"__name__", "app"}, {"service_name", "app"}};
		struct pw_ingest ing = {sizeof(ing), "/ingest?name=app&format=pprof",
					NULL,	     0,
					body,	     16u << 20,
					il,	     2};
		struct pw_result r = {0};

		ck_assert_int_eq(in.rx->ingest(in.rx->ctx, &ing, th_deadline(5000), &r),
				 COMPONENT_EOVERLOAD);
		ck_assert_int_eq(r.http_status, 429);
		ck_assert_ptr_nonnull(strstr(r.error, "max_inflight_bytes"));
		in.rx->free_result(&r);
		/* A query that is not an ingest request at all. */
		ing.path_query = "\xff\xfe?name=%zz";
		ing.body_len = 10;
		ck_assert_int_ne(in.rx->ingest(in.rx->ctx, &ing, th_deadline(5000), &r),
				 COMPONENT_OK);
		ck_assert_ptr_nonnull(r.error);
		in.rx->free_result(&r);
	}
	th_destroy(&in);
	free(body);
}
END_TEST

static char *nested(size_t depth)
{
	char *s = malloc(2 * depth + 64);
	size_t n = 0;

	n += (size_t)sprintf(s, "{\"external_labels\":");
	for (size_t i = 0; i < depth; i++)
		s[n++] = '[';
	for (size_t i = 0; i < depth; i++)
		s[n++] = ']';
	s[n++] = '}';
	s[n] = '\0';
	return s;
}

START_TEST(bad_documents)
{
	char *deep = nested(100000);
	char *huge = malloc((17u << 20) + 64);
	struct th_instance in = make(NULL);
	char *err = NULL;

	refuse_doc("", "");
	refuse_doc("not json", "");
	refuse_doc("{", "");
	refuse_doc("[]", "");
	refuse_doc("null", "");
	refuse_doc("42", "");
	refuse_doc("{\"endpoint\":[{\"url\":\"http://a\"}]} trailing", "");
	refuse_doc("{\"endpoint\":[{\"url\":\"http://a\",\"url\":\"http://b\"}]}", "url");
	refuse_doc("{\"endpoint\":[{\"url\":\"\"}]}", "endpoint[0].url");
	refuse_doc("{\"endpoint\":[{\"url\":\"http://\xff\xfe/\"}]}", "");
	refuse_doc("{\"external_labels\":{\"k\":\"\xc3\x28\"},\"endpoint\":[]}", "");
	refuse_doc(deep, "");
	refuse_doc("{\"endpoint\":[{\"url\":\"http://a\",\"remote_timeout\":\"\xe2\x82\"}]}",
		   "not valid UTF-8");
	refuse_doc("{\"endpoint\":[{\"url\":\"http://a\",\"headers\":{\"X\":\"a\\r\\nInjected: "
		   "1\"}}]}",
		   "headers");
	refuse_doc("{\"endpoint\":[{\"url\":\"http://a\",\"name\":\"a\\u0000b\"}]}", "NUL");
	memset(huge, ' ', 17u << 20);
	strcpy(huge + (17u << 20), "{}");
	refuse_doc(huge, "");

	/* The same documents through update(): refused, the instance keeps
	 * its configuration and reports why. */
	ck_assert_int_eq(plugin.d->update(in.inst, deep, &err), COMPONENT_ECONFIG);
	ck_assert_ptr_nonnull(err);
	plugin.d->free_string(err);
	ck_assert_int_eq(plugin.d->update(in.inst, "\xff", &err), COMPONENT_ECONFIG);
	ck_assert_ptr_nonnull(err);
	plugin.d->free_string(err);
	{
		struct component_health h = {.struct_size = sizeof(h)};
		size_t len;
		const uint8_t *prof = th_pprof_gz(&len);
		const char *const l[] = {"service_name", "svc", NULL};

		ck_assert_int_eq(plugin.d->health(in.inst, &h), COMPONENT_OK);
		ck_assert_int_eq(h.healthy, 0);
		ck_assert_ptr_nonnull(strstr(h.message, "invalid configuration"));
		ck_assert_int_eq(th_push(&in, l, prof, len, 5000, NULL), COMPONENT_OK);
	}
	th_destroy(&in);
	free(deep);
	free(huge);
}
END_TEST

static Suite *badinput_suite(void)
{
	Suite *s = suite_create("badinput");
	TCase *tc = tcase_create("badinput");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, null_arguments_everywhere);
	tcase_add_test(tc, receiver_null_and_malformed);
	tcase_add_test(tc, oversized_and_odd_labels);
	tcase_add_test(tc, large_bodies);
	tcase_add_test(tc, bad_documents);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(badinput_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
