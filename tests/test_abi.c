/*
 * test_abi.c - the component ABI, exercised through dlopen exactly as a
 * host does: descriptor, version refusal, create/update/receive/destroy,
 * health after a bad update, exports, metrics, debug information, and
 * argument checking.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostutil.h"
#include "loader.h"
#include "pw_version.h"
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
	sink = NULL;
}

static char *config_for(const char *tmpl)
{
	return th_subst(tmpl, "{{URL}}", standin_url(sink));
}

static const char *const svc_labels[] = {"service_name", "abi-test", "__name__", "process_cpu",
					 NULL};

START_TEST(descriptor_fields)
{
	const struct component_descriptor *d = plugin.d;

	ck_assert_str_eq(d->name, "pyroscope.write");
	ck_assert_str_eq(d->version, PW_VERSION);
	ck_assert_int_eq(d->abi_major, COMPONENT_ABI_MAJOR);
	ck_assert_int_eq(d->abi_minor, COMPONENT_ABI_MINOR);
	ck_assert_uint_ge(d->struct_size, sizeof(struct component_descriptor));
	ck_assert_str_eq(d->strerror(COMPONENT_ECONFIG), "invalid configuration");
	ck_assert_ptr_nonnull(d->strerror(12345));
}
END_TEST

/* The shared object exports exactly one symbol: the entry point. */
START_TEST(single_exported_symbol)
{
	char cmd[4096], line[512];
	int n = 0, entry = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "nm -D --defined-only '%s'", getenv("PW_PLUGIN"));
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		n++;
		if (strstr(line, " component_plugin_entry"))
			entry++;
	}
	ck_assert_int_eq(pclose(f), 0);
	ck_assert_int_eq(entry, 1);
	ck_assert_msg(n == 1, "expected one exported symbol, nm listed %d", n);
}
END_TEST

/* Code that only the tests, the docs and the stand-in use stays out of the
 * shared object (it lives in libpwsupport). The list of all symbols,
 * hidden ones too, must still name the encoder, or the check would prove
 * nothing (a stripped object, say). */
START_TEST(no_test_only_code)
{
	static const char *const banned[] = {"pw_proto_decode_push", "pw_dec_push_free",
					     "pw_config_options_markdown"};
	char cmd[4096], line[512];
	bool encoder = false;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "nm --defined-only '%s'", getenv("PW_PLUGIN"));
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		const char *name = strrchr(line, ' ');

		name = name ? name + 1 : line;
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(name, "pw_proto_push_write") == 0)
			encoder = true;
		for (size_t i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
			ck_assert_msg(strcmp(name, banned[i]) != 0, "%s is in the plugin",
				      banned[i]);
	}
	ck_assert_int_eq(pclose(f), 0);
	ck_assert_msg(encoder, "nm does not list the plugin's own functions");
}
END_TEST

START_TEST(host_refuses_wrong_major)
{
	struct plugin p;
	char err[1024], want[64];

	ck_assert_int_eq(plugin_load(PW_WRONG_MAJOR_PLUGIN, &p, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "implements component ABI %d.0", COMPONENT_ABI_MAJOR + 1);
	ck_assert_msg(strstr(err, want) != NULL, "message: %s", err);
	snprintf(want, sizeof(want), "this host speaks %d.%d", COMPONENT_ABI_MAJOR,
		 COMPONENT_ABI_MINOR);
	ck_assert_msg(strstr(err, want) != NULL, "message: %s", err);

	/* And the real plugin loads through the same code. */
	ck_assert_int_eq(plugin_load(getenv("PW_PLUGIN"), &p, err, sizeof(err)), 0);
	ck_assert_str_eq(p.desc->name, "pyroscope.write");
	plugin_unload(&p);
}
END_TEST

START_TEST(mockhost_refuses_wrong_major)
{
	char cmd[4096], out[4096] = "";
	size_t n;
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' --plugin '%s' check --config /dev/null 2>&1",
		 getenv("PW_MOCKHOST"), PW_WRONG_MAJOR_PLUGIN);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	st = pclose(f);
	ck_assert_int_eq(WEXITSTATUS(st), 1);
	ck_assert_msg(strstr(out, "major versions differ") != NULL, "output: %s", out);
}
END_TEST

/* The plugin refuses a host that speaks another major version. */
START_TEST(plugin_refuses_wrong_host_major)
{
	struct component_host host = {0};
	struct component_instance *inst = (void *)1;
	char *err = NULL;

	host.struct_size = sizeof(host);
	host.abi_major = COMPONENT_ABI_MAJOR + 1;
	ck_assert_int_eq(plugin.d->create(&host, "{}", &inst, &err), COMPONENT_EVERSION);
	ck_assert_ptr_null(inst);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, "this plugin implements ABI 1.0") != NULL, "%s", err);
	plugin.d->free_string(err);
}
END_TEST

/* The host's strings go into request headers as they are: a CR or LF in
 * them would add a header line. */
START_TEST(plugin_refuses_control_bytes_from_host)
{
	struct component_host host = {0};
	struct component_instance *inst = (void *)1;
	char *err = NULL;

	host.struct_size = sizeof(host);
	host.abi_major = COMPONENT_ABI_MAJOR;
	host.abi_minor = COMPONENT_ABI_MINOR;
	host.user_agent = "myhost/1.0\r\nX-Scope-OrgID: victim";
	ck_assert_int_eq(plugin.d->create(&host, "{}", &inst, &err), COMPONENT_EINVAL);
	ck_assert_ptr_null(inst);
	ck_assert_str_eq(err, "create: host user_agent must not contain CR, LF or other control "
			      "characters (it is sent in a header)");
	free(err);
	host.user_agent = "myhost/1.0";
	host.instance_id = "id\n";
	inst = (void *)1;
	ck_assert_int_eq(plugin.d->create(&host, "{}", &inst, &err), COMPONENT_EINVAL);
	ck_assert_ptr_null(inst);
	ck_assert_ptr_nonnull(strstr(err, "host instance_id"));
	free(err);
}
END_TEST

START_TEST(create_invalid_config_names_field)
{
	struct th_instance in;
	char *err = NULL;

	ck_assert_int_eq(th_create(&plugin,
				   "{\"endpoint\":[{\"url\":\"http://x\",\"remote_timeout\":5}]}",
				   &in, &err),
			 COMPONENT_ECONFIG);
	ck_assert_ptr_null(in.inst);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, "endpoint[0].remote_timeout") != NULL, "%s", err);
	free(err);

	ck_assert_int_eq(th_create(&plugin, "not json", &in, &err), COMPONENT_ECONFIG);
	ck_assert_msg(strstr(err, "line 1") != NULL, "%s", err);
	free(err);
}
END_TEST

START_TEST(lifecycle_and_bad_update)
{
	struct component_health h = {.struct_size = sizeof(h)};
	struct th_instance in;
	const void *before = NULL, *after = NULL;
	char *cfg = config_for("{\"endpoint\":[{\"url\":\"{{URL}}\",\"name\":\"one\"}]}");
	char *cfg2 = config_for("{\"endpoint\":[{\"url\":\"{{URL}}\",\"name\":\"two\"}]}");
	char *err = NULL;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);

	ck_assert_int_eq(th_create(&plugin, cfg, &in, NULL), COMPONENT_OK);
	ck_assert_int_eq(plugin.d->get_export(in.inst, "receiver", &before), COMPONENT_OK);
	ck_assert_int_eq(plugin.d->health(in.inst, &h), COMPONENT_OK);
	ck_assert_int_eq(h.healthy, 1);

	ck_assert_int_eq(th_push(&in, svc_labels, prof, len, 5000, NULL), COMPONENT_OK);
	ck_assert_int_eq(standin_count(sink), 1);

	/* An invalid document: refused, unhealthy with the reason, old config
	 * still delivering. */
	ck_assert_int_eq(plugin.d->update(in.inst, "{\"endpoint\":[{\"url\":\"\"}]}", &err),
			 COMPONENT_ECONFIG);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, "endpoint[0].url") != NULL, "%s", err);
	plugin.d->free_string(err);
	ck_assert_int_eq(plugin.d->health(in.inst, &h), COMPONENT_OK);
	ck_assert_int_eq(h.healthy, 0);
	ck_assert_msg(strstr(h.message, "endpoint[0].url") != NULL, "%s", h.message);
	ck_assert_int_gt(h.changed_unix_ms, 0);
	ck_assert_int_eq(th_push(&in, svc_labels, prof, len, 5000, NULL), COMPONENT_OK);
	ck_assert_int_eq(standin_count(sink), 2);
	ck_assert_double_eq(th_metric(&in, "pyroscope_write_sent_profiles_total{endpoint=\"one\"}"),
			    2);
	ck_assert_double_eq(th_metric(&in, "pyroscope_write_config_last_reload_successful"), 0);

	/* A valid one restores health; the export keeps its address. */
	ck_assert_int_eq(plugin.d->update(in.inst, cfg2, &err), COMPONENT_OK);
	ck_assert_ptr_null(err);
	ck_assert_int_eq(plugin.d->health(in.inst, &h), COMPONENT_OK);
	ck_assert_int_eq(h.healthy, 1);
	ck_assert_str_eq(h.message, "");
	ck_assert_int_eq(plugin.d->get_export(in.inst, "receiver", &after), COMPONENT_OK);
	ck_assert_ptr_eq(before, after);
	ck_assert_int_eq(th_push(&in, svc_labels, prof, len, 5000, NULL), COMPONENT_OK);
	ck_assert_double_eq(th_metric(&in, "pyroscope_write_sent_profiles_total{endpoint=\"two\"}"),
			    1);
	/* Counters of the removed endpoint survive. */
	ck_assert_double_eq(th_metric(&in, "pyroscope_write_sent_profiles_total{endpoint=\"one\"}"),
			    2);
	ck_assert(th_logs_contain("info configuration reloaded"));
	ck_assert(th_logs_contain("warn configuration refused"));

	th_destroy(&in);
	free(cfg);
	free(cfg2);
}
END_TEST

START_TEST(same_document_is_noop)
{
	struct th_instance in;
	char *cfg = config_for("{\"endpoint\":[{\"url\":\"{{URL}}\"}]}");
	char *cfg_ws = config_for("{ \"endpoint\" : [ { \"url\" : \"{{URL}}\" } ] }\n");

	ck_assert_int_eq(th_create(&plugin, cfg, &in, NULL), COMPONENT_OK);
	th_logs_clear();
	ck_assert_int_eq(plugin.d->update(in.inst, cfg_ws, NULL), COMPONENT_OK);
	ck_assert(th_logs_contain("configuration unchanged"));
	ck_assert(!th_logs_contain("configuration reloaded"));
	th_destroy(&in);
	free(cfg);
	free(cfg_ws);
}
END_TEST

START_TEST(exports_and_null_arguments)
{
	struct component_health small = {.struct_size = 4};
	struct component_instance *inst = (void *)1;
	struct th_instance in;
	const void *exp = (void *)1;
	char *err = NULL;

	ck_assert_int_eq(th_create(&plugin, "{}", &in, NULL), COMPONENT_OK);
	ck_assert_int_eq(plugin.d->get_export(in.inst, "nope", &exp), COMPONENT_ENOTFOUND);
	ck_assert_ptr_null(exp);
	ck_assert_int_eq(plugin.d->get_export(NULL, "receiver", &exp), COMPONENT_EINVAL);
	ck_assert_int_eq(plugin.d->get_export(in.inst, NULL, &exp), COMPONENT_EINVAL);
	ck_assert_int_eq(plugin.d->health(in.inst, &small), COMPONENT_EINVAL);
	ck_assert_int_eq(plugin.d->health(NULL, &small), COMPONENT_EINVAL);
	ck_assert_int_eq(plugin.d->update(NULL, "{}", &err), COMPONENT_EINVAL);
	plugin.d->free_string(err);
	ck_assert_int_eq(plugin.d->update(in.inst, NULL, NULL), COMPONENT_EINVAL);
	ck_assert_int_eq(plugin.d->metrics(in.inst, NULL, NULL), COMPONENT_EINVAL);
	ck_assert_int_eq(plugin.d->create(NULL, "{}", &inst, NULL), COMPONENT_EINVAL);
	ck_assert_ptr_null(inst);
	ck_assert_int_eq(in.rx->push(in.rx->ctx, NULL, 0, &(struct pw_result){0}),
			 COMPONENT_EINVAL);
	ck_assert_int_eq(in.rx->push_async(in.rx->ctx, NULL, 0, NULL, NULL), COMPONENT_EINVAL);
	ck_assert_int_eq(in.rx->ingest(in.rx->ctx, NULL, 0, &(struct pw_result){0}),
			 COMPONENT_EINVAL);
	{
		/* A label with a NULL value. */
		struct pw_label l = {"service_name", NULL};
		struct pw_push p = {sizeof(p), &l, 1, NULL, 0};
		struct pw_result r = {0};

		ck_assert_int_eq(in.rx->push(in.rx->ctx, &p, 0, &r), COMPONENT_EINVAL);
		in.rx->free_result(&r);
	}
	plugin.d->free_string(NULL);
	plugin.d->destroy(NULL);
	th_destroy(&in);
}
END_TEST

/* Zero endpoints: every push succeeds and nothing is sent. */
START_TEST(zero_endpoints)
{
	struct th_instance in;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);

	ck_assert_int_eq(th_create(&plugin, "{\"endpoint\":[]}", &in, NULL), COMPONENT_OK);
	ck_assert_int_eq(th_push(&in, svc_labels, prof, len, 1000, NULL), COMPONENT_OK);
	ck_assert_int_eq(standin_count(sink), 0);
	th_destroy(&in);
}
END_TEST

static int to_buf(void *user, const char *data, size_t len)
{
	char **s = user;
	size_t old = *s ? strlen(*s) : 0;
	char *n = realloc(*s, old + len + 1);

	if (!n)
		return -1;
	memcpy(n + old, data, len);
	n[old + len] = '\0';
	*s = n;
	return 0;
}

START_TEST(metrics_and_debug_info)
{
	struct th_instance in;
	char *cfg = config_for("{\"endpoint\":[{\"url\":\"{{URL}}\",\"name\":\"dbg\","
			       "\"basic_auth\":{\"username\":\"u\",\"password\":\"SECRET-abi-1\"}},"
			       "{\"url\":\"{{URL}}\",\"name\":\"few\",\"max_connections\":3}]}");
	char *text = NULL;

	ck_assert_int_eq(th_create(&plugin, cfg, &in, NULL), COMPONENT_OK);
	ck_assert_int_eq(plugin.d->metrics(in.inst, to_buf, &text), COMPONENT_OK);
	ck_assert_ptr_nonnull(strstr(text, "# TYPE pyroscope_write_sent_bytes_total counter"));
	ck_assert_ptr_nonnull(strstr(text, "# TYPE pyroscope_write_latency histogram"));
	free(text);
	text = NULL;
	ck_assert_int_eq(plugin.d->debug_info(in.inst, to_buf, &text), COMPONENT_OK);
	ck_assert_ptr_nonnull(strstr(text, "\"endpoint\":\"dbg\""));
	/* Each endpoint starts at min(8, max_connections) requests at once. */
	ck_assert_ptr_nonnull(strstr(text, "\"endpoint\":\"dbg\",\"in_flight\":0,"
					   "\"concurrency_limit\":8,\"max_connections\":32,"));
	ck_assert_ptr_nonnull(strstr(text, "\"endpoint\":\"few\",\"in_flight\":0,"
					   "\"concurrency_limit\":3,\"max_connections\":3,"));
	ck_assert_ptr_null(strstr(text, "SECRET-abi-1"));
	ck_assert_ptr_nonnull(strstr(text, "\"config\""));
	free(text);
	th_destroy(&in);
	free(cfg);
}
END_TEST

static long long last_success_of(struct th_instance *in, const char *name)
{
	char *text = NULL, key[128], *p;
	long long v = -1;

	ck_assert_int_eq(plugin.d->debug_info(in->inst, to_buf, &text), COMPONENT_OK);
	snprintf(key, sizeof(key), "\"endpoint\":\"%s\"", name);
	p = strstr(text, key);
	if (p && (p = strstr(p, "\"last_success_unix_ms\":")))
		v = strtoll(p + strlen("\"last_success_unix_ms\":"), NULL, 10);
	free(text);
	return v;
}

/* An update that changes one endpoint leaves the others' runtime state
 * alone: the unchanged endpoint is the same object afterwards. */
START_TEST(update_keeps_unchanged_endpoints)
{
	struct th_instance in;
	char *cfg = config_for("{\"endpoint\":[{\"url\":\"{{URL}}\",\"name\":\"a\"},"
			       "{\"url\":\"{{URL}}\",\"name\":\"b\"}]}");
	char *cfg2 = config_for("{\"endpoint\":[{\"url\":\"{{URL}}\",\"name\":\"a\"},"
				"{\"url\":\"{{URL}}\",\"name\":\"b\",\"remote_timeout\":\"3s\"}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	long long a_before;

	ck_assert_int_eq(th_create(&plugin, cfg, &in, NULL), COMPONENT_OK);
	ck_assert_int_eq(th_push(&in, svc_labels, prof, len, 5000, NULL), COMPONENT_OK);
	a_before = last_success_of(&in, "a");
	ck_assert_int_gt(a_before, 0);
	ck_assert_int_gt(last_success_of(&in, "b"), 0);
	ck_assert_int_eq(plugin.d->update(in.inst, cfg2, NULL), COMPONENT_OK);
	/* a kept its state; b was rebuilt with the new settings. */
	ck_assert_int_eq(last_success_of(&in, "a"), a_before);
	ck_assert_int_eq(last_success_of(&in, "b"), 0);
	th_destroy(&in);
	free(cfg);
	free(cfg2);
}
END_TEST

struct cb_state {
	atomic_int calls;
	atomic_int status;
};

static void count_cb(void *user, const struct pw_result *r)
{
	struct cb_state *st = user;

	atomic_store(&st->status, r->status);
	atomic_fetch_add(&st->calls, 1);
}

/* destroy() with deliveries under way: bounded drain, then cancel; every
 * callback fires exactly once before destroy() returns. */
START_TEST(destroy_cancels_and_calls_back_once)
{
	struct standin_reply slow = {.status = 200, .delay_ms = 3000, .times = 8};
	struct th_instance in;
	char *cfg =
		config_for("{\"endpoint\":[{\"url\":\"{{URL}}\"}],\"shutdown_timeout\":\"200ms\"}");
	struct cb_state st[4];
	struct pw_label l[] = {{"service_name", "x"}};
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	struct pw_sample s = {prof, len, NULL};
	struct pw_push p = {sizeof(p), l, 1, &s, 1};

	standin_script(sink, STANDIN_ROUTE_PUSH, &slow);
	ck_assert_int_eq(th_create(&plugin, cfg, &in, NULL), COMPONENT_OK);
	for (int i = 0; i < 4; i++) {
		atomic_init(&st[i].calls, 0);
		atomic_init(&st[i].status, -1);
		ck_assert_int_eq(in.rx->push_async(in.rx->ctx, &p, 0, count_cb, &st[i]),
				 COMPONENT_OK);
	}
	ck_assert_int_eq(standin_wait(sink, 4, 5000), 0);
	th_destroy(&in);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(atomic_load(&st[i].calls), 1);
		ck_assert_int_eq(atomic_load(&st[i].status), COMPONENT_ESHUTDOWN);
	}
	free(cfg);
}
END_TEST

/*
 * The libcurl the plugin runs on, as the process has loaded it: by default
 * the version the build's headers came from; PW_EXPECT_LIBCURL names
 * another (a version prefix) when scripts/test-curl8.sh loads libcurl 8
 * through LD_LIBRARY_PATH, so a run whose test processes did not get it
 * fails here.
 */
START_TEST(loaded_libcurl)
{
	const char *want = getenv("PW_EXPECT_LIBCURL");
	char *(*version)(void);
	const char *v;
	Dl_info info;
	void *sym;

	/* dlsym on the plugin's handle searches its dependencies too. */
	sym = dlsym(plugin.dl, "curl_version");
	ck_assert_msg(sym != NULL, "the plugin has not loaded libcurl");
	ck_assert_int_ne(dladdr(sym, &info), 0);
	memcpy(&version, &sym, sizeof(version));
	v = version();
	printf("abi: loaded %s from %s\n", v, info.dli_fname);
	ck_assert_msg(strncmp(v, "libcurl/", 8) == 0, "curl_version() says %s", v);
	if (!want || !*want) {
		size_t n = strlen(PW_BUILD_LIBCURL);

		ck_assert_msg(strncmp(v + 8, PW_BUILD_LIBCURL, n) == 0 &&
				      (v[8 + n] == ' ' || v[8 + n] == '\0'),
			      "loaded %s from %s, built against %s", v, info.dli_fname,
			      PW_BUILD_LIBCURL);
	} else {
		ck_assert_msg(strncmp(v + 8, want, strlen(want)) == 0,
			      "loaded %s from %s, PW_EXPECT_LIBCURL is %s", v, info.dli_fname,
			      want);
	}
}
END_TEST

static Suite *abi_suite(void)
{
	Suite *s = suite_create("abi");
	TCase *tc = tcase_create("abi");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, descriptor_fields);
	tcase_add_test(tc, single_exported_symbol);
	tcase_add_test(tc, no_test_only_code);
	tcase_add_test(tc, host_refuses_wrong_major);
	tcase_add_test(tc, mockhost_refuses_wrong_major);
	tcase_add_test(tc, plugin_refuses_wrong_host_major);
	tcase_add_test(tc, plugin_refuses_control_bytes_from_host);
	tcase_add_test(tc, create_invalid_config_names_field);
	tcase_add_test(tc, lifecycle_and_bad_update);
	tcase_add_test(tc, same_document_is_noop);
	tcase_add_test(tc, exports_and_null_arguments);
	tcase_add_test(tc, zero_endpoints);
	tcase_add_test(tc, metrics_and_debug_info);
	tcase_add_test(tc, update_keeps_unchanged_endpoints);
	tcase_add_test(tc, destroy_cancels_and_calls_back_once);
	tcase_add_test(tc, loaded_libcurl);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(abi_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
