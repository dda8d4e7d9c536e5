/*
 * test_tenant.c - tenant_label through the built plugin, against the
 * strict Pyroscope stand-in (which records each request's tenant): the
 * profile's label routes push and ingest requests, a configured
 * X-Scope-OrgID is the fallback, the label follows the usual forwarding
 * rule, and invalid tenant IDs are refused before anything is sent.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hostutil.h"
#include "standin/standin.h"

static struct standin *sink, *sink2;
static struct th_plugin plugin;

static void setup(void)
{
	sink = th_sink_start();
	sink2 = th_sink_start();
	th_load(&plugin, NULL);
}

static void teardown(void)
{
	th_unload(&plugin);
	standin_stop(sink);
	standin_stop(sink2);
}

/* {{A}} and {{B}} stand for the two stand-ins' URLs. */
static struct th_instance make(const char *tmpl)
{
	struct th_instance in;
	char *a = th_subst(tmpl, "{{A}}", standin_url(sink));
	char *c = th_subst(a, "{{B}}", standin_url(sink2)), *err = NULL;

	ck_assert_msg(th_create(&plugin, c, &in, &err) == COMPONENT_OK, "create: %s", err);
	free(a);
	free(c);
	return in;
}

/* Endpoint a routes by __tenant__ and falls back to its header; b has no
 * tenant_label and always sends its own header. */
static const char two_endpoints[] =
	"{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\",\"tenant_label\":\"__tenant__\","
	"\"headers\":{\"X-Scope-OrgID\":\"fallback\"}},"
	"{\"url\":\"{{B}}\",\"name\":\"b\",\"headers\":{\"X-Scope-OrgID\":\"b-org\"}}]}";

/* How many X-Scope-OrgID headers request r carried. */
static int orgid_headers(const struct standin_request *r)
{
	int n = 0;

	for (size_t i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, "X-Scope-OrgID") == 0)
			n++;
	return n;
}

/* Request i of st went to tenant `tenant` with these series labels. */
static void expect_push(struct standin *st, size_t i, const char *tenant, const char *labels)
{
	struct standin_request *r = standin_request_get(st, i);

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->tenant, tenant);
	ck_assert_int_eq(orgid_headers(r), 1);
	ck_assert_int_eq(r->nseries, 1);
	ck_assert_str_eq(r->series_labels[0], labels);
	standin_request_free(r);
}

START_TEST(push_routes_by_label_per_endpoint)
{
	struct th_instance in = make(two_endpoints);
	const char *const with[] = {"service_name", "svc", "__tenant__", "team-a", NULL};
	const char *const without[] = {"service_name", "svc", NULL};
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);

	ck_assert_int_eq(th_push(&in, with, prof, len, 5000, NULL), COMPONENT_OK);
	ck_assert_int_eq(th_push(&in, without, prof, len, 5000, NULL), COMPONENT_OK);
	/* The reserved label is dropped as usual, on both endpoints. */
	expect_push(sink, 0, "team-a", "service_name=svc");
	expect_push(sink, 1, "fallback", "service_name=svc");
	expect_push(sink2, 0, "b-org", "service_name=svc");
	expect_push(sink2, 1, "b-org", "service_name=svc");
	th_destroy(&in);
}
END_TEST

/* A label without the reserved prefix is kept; external_labels set it
 * before it is read, and without any configured header the request has a
 * tenant only when the profile names one. */
START_TEST(push_plain_label_kept_external_wins)
{
	struct th_instance in =
		make("{\"external_labels\":{\"team\":\"ext\"},\"endpoint\":["
		     "{\"url\":\"{{A}}\",\"name\":\"a\",\"tenant_label\":\"team\"},"
		     "{\"url\":\"{{B}}\",\"name\":\"b\",\"tenant_label\":\"org\"}]}");
	const char *const labels[] = {"service_name", "svc", "team", "mine", "org", "o-1", NULL};
	const char *const bare[] = {"service_name", "svc", NULL};
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);

	ck_assert_int_eq(th_push(&in, labels, prof, len, 5000, NULL), COMPONENT_OK);
	ck_assert_int_eq(th_push(&in, bare, prof, len, 5000, NULL), COMPONENT_OK);
	expect_push(sink, 0, "ext", "org=o-1,service_name=svc,team=ext");
	expect_push(sink2, 0, "o-1", "org=o-1,service_name=svc,team=ext");
	expect_push(sink, 1, "ext", "service_name=svc,team=ext");
	{
		struct standin_request *r = standin_request_get(sink2, 1);

		ck_assert_ptr_nonnull(r);
		ck_assert_str_eq(r->tenant, "anonymous");
		ck_assert_int_eq(orgid_headers(r), 0);
		standin_request_free(r);
	}
	th_destroy(&in);
}
END_TEST

static void expect_refused(struct th_instance *in, const char *tenant, const char *why)
{
	const char *const labels[] = {"service_name", "svc", "__tenant__", tenant, NULL};
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL, want[512];

	ck_assert_int_eq(th_push(in, labels, prof, len, 5000, &err), COMPONENT_EINVAL);
	snprintf(want, sizeof(want), "invalid tenant in profile: label __tenant__=\"%.160s\": %s",
		 tenant, why);
	ck_assert_str_eq(err, want);
	free(err);
}

START_TEST(invalid_tenants_refused)
{
	struct th_instance in = make(two_endpoints);
	const char *const ok[] = {"service_name", "svc", "__tenant__", "a!-_.*'()Z9", NULL};
	char long_id[152];
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);

	memset(long_id, 'x', 151);
	long_id[151] = '\0';
	expect_refused(&in, "a/b", "tenant ID may hold only letters, digits and !-_.*'()");
	expect_refused(&in, "team a", "tenant ID may hold only letters, digits and !-_.*'()");
	expect_refused(&in, ".", "tenant ID must not be \".\" or \"..\"");
	expect_refused(&in, "..", "tenant ID must not be \".\" or \"..\"");
	expect_refused(&in, long_id, "tenant ID is longer than 150 characters");
	/* Nothing was sent anywhere, not even to the endpoint without a
	 * tenant_label. */
	ck_assert_int_eq(standin_count(sink), 0);
	ck_assert_int_eq(standin_count(sink2), 0);
	ck_assert_double_eq(th_metric(&in, "pyroscope_write_rejected_profiles_total{path=\"push\","
					   "reason=\"invalid_tenant\"}"),
			    5);
	/* 150 characters and every allowed punctuation mark pass. */
	long_id[150] = '\0';
	ck_assert_int_eq(th_push(&in, ok, prof, len, 5000, NULL), COMPONENT_OK);
	expect_push(sink, 0, "a!-_.*'()Z9", "service_name=svc");
	{
		const char *const l[] = {"service_name", "svc", "__tenant__", long_id, NULL};

		ck_assert_int_eq(th_push(&in, l, prof, len, 5000, NULL), COMPONENT_OK);
	}
	th_destroy(&in);
}
END_TEST

static int ingest(struct th_instance *in, const char *tenant, struct pw_result *res)
{
	struct pw_label labels[] = {{"__name__", "app.cpu"}, {"__tenant__", tenant}, {"env", "d"}};
	struct pw_ingest ing = {sizeof(ing),
				"/ingest?name=app.cpu%7B__tenant__%3Dx%2Cenv%3Dd%7D&format=folded",
				NULL,
				0,
				(const uint8_t *)"a;b 1\n",
				6,
				labels,
				tenant ? 3 : 1};

	if (!tenant) {
		labels[1] = labels[2];
		ing.nlabels = 2;
	}
	return in->rx->ingest(in->rx->ctx, &ing, th_deadline(5000), res);
}

/* Ingest: the same routing; the rewritten name leaves a reserved tenant
 * label out only where it routes. */
START_TEST(ingest_routes_by_label)
{
	struct th_instance in = make(two_endpoints);
	struct pw_result res = {0};
	struct standin_request *r;

	ck_assert_int_eq(ingest(&in, "team-i", &res), COMPONENT_OK);
	in.rx->free_result(&res);
	ck_assert_int_eq(ingest(&in, NULL, &res), COMPONENT_OK);
	in.rx->free_result(&res);
	r = standin_request_get(sink, 0);
	ck_assert_str_eq(r->tenant, "team-i");
	ck_assert_int_eq(orgid_headers(r), 1);
	ck_assert_str_eq(r->name, "app.cpu{env=d}");
	standin_request_free(r);
	r = standin_request_get(sink, 1);
	ck_assert_str_eq(r->tenant, "fallback");
	ck_assert_str_eq(r->name, "app.cpu{env=d}");
	standin_request_free(r);
	r = standin_request_get(sink2, 0);
	ck_assert_str_eq(r->tenant, "b-org");
	ck_assert_str_eq(r->name, "app.cpu{__tenant__=team-i,env=d}");
	standin_request_free(r);

	ck_assert_int_eq(ingest(&in, "bad/tenant", &res), COMPONENT_EINVAL);
	ck_assert_int_eq(res.http_status, 400);
	ck_assert_str_eq(res.error, "invalid tenant in profile: label __tenant__=\"bad/tenant\": "
				    "tenant ID may hold only letters, digits and !-_.*'()");
	in.rx->free_result(&res);
	ck_assert_int_eq(standin_count(sink), 2);
	ck_assert_int_eq(standin_count(sink2), 2);
	th_destroy(&in);
}
END_TEST

/* tenant_label must name a valid label. */
START_TEST(tenant_label_must_be_label_name)
{
	struct th_instance in;
	char *err = NULL;

	ck_assert_int_eq(th_create(&plugin,
				   "{\"endpoint\":[{\"url\":\"http://127.0.0.1:1\","
				   "\"tenant_label\":\"bad-name\"}]}",
				   &in, &err),
			 COMPONENT_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, "endpoint[0].tenant_label: invalid label name "
					  "\"bad-name\""));
	free(err);
}
END_TEST

static Suite *tenant_suite(void)
{
	Suite *s = suite_create("tenant");
	TCase *tc = tcase_create("tenant");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, push_routes_by_label_per_endpoint);
	tcase_add_test(tc, push_plain_label_kept_external_wins);
	tcase_add_test(tc, invalid_tenants_refused);
	tcase_add_test(tc, ingest_routes_by_label);
	tcase_add_test(tc, tenant_label_must_be_label_name);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(tenant_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
