/*
 * test_secrets.c - no secret ever leaves the component except towards the
 * server it is meant for. Every secret option is set to a unique marker;
 * deliveries, failures, reloads (good and bad), health, metrics and debug
 * output are collected, and no marker may appear in any of them.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostutil.h"
#include "standin/standin.h"
#include "strbuf.h"

static struct standin *sink;
static struct th_plugin plugin;

/* Everything the component said, to be searched for markers. */
static struct strbuf seen = STRBUF_INIT;

static const char *markers[] = {
	"MARK-bearer-31a7",
	"MARK-basicpw-58c2",
	"MARK-authz-9d14",
	"MARK-oauth-secret-4e6b",
	"MARK-httphdr-77f0",
	"MARK-proxyhdr-0b95",
	"MARK-urlpw-c3d8",
	/* Pieces of the private key in tests/data/secrets/client.key. */
	"QQgoyCsAdly9ADWjrnh",
	"esNTVhH1/Mch48K3px5WQZY",
};

static void setup(void)
{
	struct standin_opts o = {0};
	char *err = NULL;

	sink = standin_start(&o, &err);
	ck_assert_msg(sink != NULL, "standin: %s", err ? err : "?");
	th_load(&plugin, NULL);
	th_logs_clear();
	strbuf_init(&seen, 0);
}

static void teardown(void)
{
	th_unload(&plugin);
	standin_stop(sink);
	strbuf_free(&seen);
}

static void note(const char *what, const char *text)
{
	strbuf_printf(&seen, "--- %s\n%s\n", what, text ? text : "(null)");
}

/* The PEM file with its newlines escaped for a JSON string. */
static char *pem_json(const char *name)
{
	const char *root = getenv("PW_SOURCE_ROOT");
	char path[1024];
	struct strbuf sb = STRBUF_INIT;
	FILE *f;
	int c;

	ck_assert_ptr_nonnull(root);
	snprintf(path, sizeof(path), "%s/tests/data/secrets/%s", root, name);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s", path);
	while ((c = fgetc(f)) != EOF) {
		if (c == '\n')
			strbuf_puts(&sb, "\\n");
		else
			strbuf_putc(&sb, (char)c);
	}
	fclose(f);
	return strbuf_detach(&sb, NULL);
}

static int to_strbuf(void *user, const char *data, size_t len)
{
	return strbuf_append(user, data, len);
}

static void note_instance(struct th_instance *in, const char *when)
{
	struct strbuf dbg = STRBUF_INIT;
	struct component_health h = {.struct_size = sizeof(h)};
	char what[128], *m;

	ck_assert_int_eq(plugin.d->debug_info(in->inst, to_strbuf, &dbg), COMPONENT_OK);
	ck_assert_ptr_nonnull(strstr(dbg.data, "\"endpoints\""));
	snprintf(what, sizeof(what), "debug_info %s", when);
	note(what, dbg.data);
	strbuf_free(&dbg);
	m = th_metrics(in);
	snprintf(what, sizeof(what), "metrics %s", when);
	note(what, m);
	free(m);
	ck_assert_int_eq(plugin.d->health(in->inst, &h), COMPONENT_OK);
	snprintf(what, sizeof(what), "health %s", when);
	note(what, h.message);
}

/* The document: {{A}} the stand-in, {{APORT}} its port, {{KEY}}/{{CERT}} the
 * PEM texts, {{NAME}} lets a reload change something harmless. */
static const char *doc_tmpl =
	"{\"endpoint\":["
	"{\"name\":\"{{NAME}}\",\"url\":\"{{A}}\",\"bearer_token\":\"MARK-bearer-31a7\","
	" \"http_headers\":{\"X-Api-Key\":[\"MARK-httphdr-77f0\"]},"
	" \"min_backoff_period\":\"10ms\",\"max_backoff_retries\":2},"
	"{\"name\":\"basic\",\"url\":\"{{A}}\",\"basic_auth\":{\"username\":\"u\","
	" \"password\":\"MARK-basicpw-58c2\"},\"min_backoff_period\":\"10ms\",\"max_backoff_"
	"retries\":2},"
	"{\"name\":\"authz\",\"url\":\"{{A}}\",\"authorization\":{\"type\":\"Token\","
	" \"credentials\":\"MARK-authz-9d14\"},\"min_backoff_period\":\"10ms\",\"max_backoff_"
	"retries\":2},"
	"{\"url\":\"http://user:MARK-urlpw-c3d8@127.0.0.1:{{APORT}}\","
	" \"min_backoff_period\":\"10ms\",\"max_backoff_retries\":2},"
	"{\"name\":\"oauth\",\"url\":\"{{A}}\",\"oauth2\":{\"client_id\":\"id\","
	" \"client_secret\":\"MARK-oauth-secret-4e6b\",\"token_url\":\"http://127.0.0.1:1/token\"},"
	" \"min_backoff_period\":\"10ms\",\"max_backoff_retries\":2},"
	"{\"name\":\"mtls\",\"url\":\"https://"
	"127.0.0.1:1\",\"tls_config\":{\"cert_pem\":\"{{CERT}}\","
	" \"key_pem\":\"{{KEY}}\"},\"min_backoff_period\":\"10ms\",\"max_backoff_retries\":2},"
	"{\"name\":\"proxied\",\"url\":\"https://pyroscope.example.invalid\","
	" \"proxy_url\":\"http://127.0.0.1:1\","
	" \"proxy_connect_header\":{\"Proxy-Authorization\":[\"MARK-proxyhdr-0b95\"]},"
	" \"min_backoff_period\":\"10ms\",\"max_backoff_retries\":2}"
	"]{{EXTRA}}}";

static char *make_doc(const char *name, const char *extra)
{
	char port[16], *key = pem_json("client.key"), *cert = pem_json("client.pem");
	char *a, *b, *c, *d, *e, *f;

	snprintf(port, sizeof(port), "%d", standin_port(sink));
	a = th_subst(doc_tmpl, "{{A}}", standin_url(sink));
	b = th_subst(a, "{{APORT}}", port);
	c = th_subst(b, "{{KEY}}", key);
	d = th_subst(c, "{{CERT}}", cert);
	e = th_subst(d, "{{NAME}}", name);
	f = th_subst(e, "{{EXTRA}}", extra ? extra : "");
	free(a);
	free(b);
	free(c);
	free(d);
	free(e);
	free(key);
	free(cert);
	return f;
}

START_TEST(no_secret_leaks_anywhere)
{
	struct standin_reply unauth = {
		.status = 401,
		.content_type = "application/json",
		.body = "{\"code\":\"unauthenticated\",\"message\":\"bad credentials\"}",
		.times = 3};
	struct standin_reply down = {.status = 503, .body = "down", .times = 4};
	char *doc = make_doc("bearer", NULL), *doc2 = make_doc("bearer2", NULL);
	/* Invalid in ways that sit right next to a secret. */
	char *bad_hdr = th_subst(doc, "MARK-httphdr-77f0", "MARK-httphdr-77f0\\r\\nX-Evil: 1");
	char *bad_conflict =
		th_subst(doc, "\"bearer_token\":\"MARK-bearer-31a7\",",
			 "\"bearer_token\":\"MARK-bearer-31a7\",\"basic_auth\":{\"username\":"
			 "\"x\",\"password\":\"MARK-basicpw-58c2\"},");
	char *bad_pem = th_subst(doc, "QQgoyCsAdly9ADWjrnh", "QQgoyCsAdly9ADWjrnh\\\"}}");
	char *bad_types = make_doc("bearer", ",\"max_inflight_bytes\":\"MARK-bearer-31a7\"");
	const char *bad_docs[] = {bad_hdr, bad_conflict, bad_types};
	const char *const labels[] = {"service_name", "svc", NULL};
	struct th_instance in, tmp;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;
	int authorised = 0;

	/* Refused creates. */
	for (size_t i = 0; i < sizeof(bad_docs) / sizeof(bad_docs[0]); i++) {
		ck_assert_msg(th_create(&plugin, bad_docs[i], &tmp, &err) == COMPONENT_ECONFIG,
			      "doc %zu", i);
		note("create error", err);
		free(err);
	}

	/* A damaged key: refused when the configuration is read, or when the
	 * first attempt loads it; either way without quoting it. */
	if (th_create(&plugin, bad_pem, &tmp, &err) == COMPONENT_OK) {
		ck_assert_int_eq(th_push(&tmp, labels, prof, len, 8000, &err), COMPONENT_EDELIVERY);
		ck_assert_ptr_nonnull(strstr(err, "endpoint mtls"));
		note_instance(&tmp, "damaged key");
		th_destroy(&tmp);
	}
	note("damaged key error", err);
	free(err);

	ck_assert_int_eq(th_create(&plugin, doc, &in, &err), COMPONENT_OK);
	ck_assert_ptr_null(err);
	note_instance(&in, "after create");

	/* A delivery: some endpoints succeed, the rest fail in their own way. */
	ck_assert_int_eq(th_push(&in, labels, prof, len, 8000, &err), COMPONENT_EDELIVERY);
	ck_assert_ptr_nonnull(strstr(err, "endpoint oauth"));
	ck_assert_ptr_nonnull(strstr(err, "endpoint mtls"));
	ck_assert_ptr_nonnull(strstr(err, "endpoint proxied"));
	note("push error 1", err);
	free(err);
	/* Server-side refusals and retries. */
	standin_script(sink, STANDIN_ROUTE_PUSH, &unauth);
	standin_script(sink, STANDIN_ROUTE_PUSH, &down);
	ck_assert_int_eq(th_push(&in, labels, prof, len, 8000, &err), COMPONENT_EDELIVERY);
	note("push error 2", err);
	free(err);
	note_instance(&in, "after failures");

	/* Reloads: a good one, refused ones, and the good one again. */
	ck_assert_int_eq(plugin.d->update(in.inst, doc2, &err), COMPONENT_OK);
	plugin.d->free_string(err);
	for (size_t i = 0; i < sizeof(bad_docs) / sizeof(bad_docs[0]); i++) {
		ck_assert_int_eq(plugin.d->update(in.inst, bad_docs[i], &err), COMPONENT_ECONFIG);
		ck_assert_ptr_nonnull(err);
		note("update error", err);
		plugin.d->free_string(err);
		note_instance(&in, "after refused update");
	}
	ck_assert_int_eq(plugin.d->update(in.inst, doc, &err), COMPONENT_OK);
	plugin.d->free_string(err);
	ck_assert_int_eq(th_push(&in, labels, prof, len, 8000, &err), COMPONENT_EDELIVERY);
	note("push error 3", err);
	free(err);
	note_instance(&in, "after reloads");
	th_destroy(&in);
	{
		char *logs = th_logs();

		ck_assert_ptr_nonnull(strstr(logs, "configuration refused"));
		note("logs", logs);
		free(logs);
	}

	/* The secrets did reach the server they are meant for. */
	for (size_t i = 0;; i++) {
		struct standin_request *r = standin_request_get(sink, i);
		const char *a;

		if (!r)
			break;
		a = standin_request_header(r, "Authorization");
		if (a && (strcmp(a, "Bearer MARK-bearer-31a7") == 0 ||
			  strcmp(a, "Token MARK-authz-9d14") == 0))
			authorised++;
		standin_request_free(r);
	}
	ck_assert_int_ge(authorised, 2);

	for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
		const char *hit = strstr(seen.data, markers[i]);

		ck_assert_msg(hit == NULL, "secret %s leaked: ...%.200s", markers[i],
			      hit ? (hit - seen.data > 200 ? hit - 200 : seen.data) : "");
	}
	ck_assert_ptr_nonnull(strstr(seen.data, "endpoint=\"authz\""));
	free(doc);
	free(doc2);
	free(bad_hdr);
	free(bad_conflict);
	free(bad_pem);
	free(bad_types);
}
END_TEST

static Suite *secrets_suite(void)
{
	Suite *s = suite_create("secrets");
	TCase *tc = tcase_create("secrets");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, no_secret_leaks_anywhere);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(secrets_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
