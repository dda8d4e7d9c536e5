/*
 * test_abi_grow.c - "structs only grow at the end; an older caller keeps
 * working" (docs/abi.md), tried for real: this file and the plugin it loads
 * are built from copies of the ABI headers in which every sized struct has
 * one more field (tests/grow_headers.sh). A caller that sets the sizes of
 * today's headers, or of version 1, must still be served; so must one that
 * sets the grown sizes. The plugin never writes beyond the size the caller
 * set.
 */
#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "abi_v1_sizes.h"
#include "component_abi.h"
#include "hostutil.h"
#include "pyroscope_write.h"
#include "standin/standin.h"

/* Compiled against the grown copies, or this suite tests nothing. */
_Static_assert(offsetof(struct pw_ingest, grown_field) >= offsetof(struct pw_ingest, nlabels),
	       "tests/grown headers not first on the include path");

/* The first version of struct pw_push ended at nsamples. */
#define PUSH_V1_SIZE (offsetof(struct pw_push, nsamples) + sizeof(size_t))
#define JUNK 0xa5

static struct standin *sink;
static struct th_plugin plugin;
static struct component_instance *inst;
static const struct pw_receiver *rx;

/* Creates the instance with a component_host of host_size bytes; the
 * bytes beyond it are junk the plugin must not read. */
static int create_with_host_size(uint32_t host_size)
{
	struct component_host host;
	char *cfg, *err = NULL;
	const void *exp = NULL;
	int rc;

	memset(&host, JUNK, sizeof(host));
	host.struct_size = host_size;
	host.abi_major = COMPONENT_ABI_MAJOR;
	host.abi_minor = COMPONENT_ABI_MINOR;
	host.log = NULL;
	host.log_user = NULL;
	host.log_level = COMPONENT_LOG_ERROR;
	host.instance_id = "grow";
	host.user_agent = "growhost/1.0";
	cfg = th_subst("{\"endpoint\":[{\"url\":\"{{URL}}\"}]}", "{{URL}}", standin_url(sink));
	rc = plugin.d->create(&host, cfg, &inst, &err);
	free(cfg);
	ck_assert_msg(rc == COMPONENT_OK, "create: %s", err ? err : "?");
	plugin.d->free_string(err);
	ck_assert_int_eq(plugin.d->get_export(inst, PW_RECEIVER_EXPORT, &exp), COMPONENT_OK);
	rx = exp;
	return rc;
}

static void setup(void)
{
	sink = th_sink_start();
	th_load(&plugin, PW_GROWN_PLUGIN);
	create_with_host_size(abi_shipped_host_size);
}

static void teardown(void)
{
	plugin.d->destroy(inst);
	inst = NULL;
	th_unload(&plugin);
	standin_stop(sink);
}

START_TEST(plugin_is_built_grown)
{
	ck_assert_uint_eq(plugin.d->struct_size, sizeof(struct component_descriptor));
	ck_assert_uint_gt(plugin.d->struct_size, abi_shipped_descriptor_size);
	ck_assert_uint_eq(rx->struct_size, sizeof(struct pw_receiver));
	ck_assert_uint_gt(rx->struct_size, abi_shipped_receiver_size);
}
END_TEST

START_TEST(host_struct_of_any_version)
{
	plugin.d->destroy(inst);
	create_with_host_size(sizeof(struct component_host));
	plugin.d->destroy(inst);
	inst = NULL;
	create_with_host_size(abi_shipped_host_size);
}
END_TEST

/* One blocking push with a struct_size of size; junk lies beyond it. */
static int push_sized(size_t size)
{
	static const struct pw_label labels[] = {{"__name__", "cpu"}, {"service_name", "grow"}};
	struct pw_sample sample = {0};
	struct pw_result res = {0};
	struct pw_push p;
	int rc;

	sample.data = th_pprof_gz(&sample.len);
	memset(&p, JUNK, sizeof(p));
	p.struct_size = (uint32_t)size;
	p.labels = labels;
	p.nlabels = 2;
	p.samples = &sample;
	p.nsamples = 1;
	if (size >= offsetof(struct pw_push, flags) + sizeof(p.flags))
		p.flags = 0;
	rc = rx->push(rx->ctx, &p, th_deadline(10000), &res);
	ck_assert_msg(rc == res.status, "push returned %d, result %d", rc, res.status);
	rx->free_result(&res);
	return rc;
}

START_TEST(push_of_every_size)
{
	const size_t sizes[] = {PUSH_V1_SIZE, abi_shipped_push_size, sizeof(struct pw_push)};

	for (size_t i = 0; i < 3; i++) {
		size_t before = standin_count(sink);

		ck_assert_msg(push_sized(sizes[i]) == COMPONENT_OK, "size %zu refused", sizes[i]);
		ck_assert_uint_eq(standin_count(sink), before + 1);
	}
	ck_assert_int_eq(push_sized(PUSH_V1_SIZE - 1), COMPONENT_EINVAL);
}
END_TEST

static int ingest_sized(size_t size)
{
	static const struct pw_label labels[] = {{"service_name", "grow"}};
	const char *ct[] = {"application/octet-stream"};
	struct pw_result res = {0};
	struct pw_ingest in;
	int rc;

	memset(&in, JUNK, sizeof(in));
	in.struct_size = (uint32_t)size;
	in.path_query = "/ingest?name=grow&format=pprof";
	in.content_types = ct;
	in.ncontent_types = 1;
	in.body = th_pprof_gz(&in.body_len);
	in.labels = labels;
	in.nlabels = 1;
	rc = rx->ingest(rx->ctx, &in, th_deadline(10000), &res);
	ck_assert_msg(rc == res.status, "ingest returned %d, result %d", rc, res.status);
	rx->free_result(&res);
	return rc;
}

START_TEST(ingest_of_every_size)
{
	const size_t sizes[] = {abi_shipped_ingest_size, sizeof(struct pw_ingest)};

	for (size_t i = 0; i < 2; i++) {
		size_t before = standin_count(sink);

		ck_assert_msg(ingest_sized(sizes[i]) == COMPONENT_OK, "size %zu refused", sizes[i]);
		ck_assert_uint_eq(standin_count(sink), before + 1);
	}
	/* Version 1 of the struct ended at nlabels: one byte less is refused. */
	ck_assert_int_eq(ingest_sized(offsetof(struct pw_ingest, nlabels) + sizeof(size_t) - 1),
			 COMPONENT_EINVAL);
}
END_TEST

START_TEST(health_writes_only_what_fits)
{
	struct component_health h;
	const unsigned char *tail;

	/* Today's size: the grown field stays junk. */
	memset(&h, JUNK, sizeof(h));
	h.struct_size = abi_shipped_health_size;
	ck_assert_int_eq(plugin.d->health(inst, &h), COMPONENT_OK);
	ck_assert_int_eq(h.healthy, 1);
	ck_assert_str_eq(h.message, "");
	ck_assert_uint_eq(h.struct_size, abi_shipped_health_size);
	tail = (const unsigned char *)&h + abi_shipped_health_size;
	for (size_t i = abi_shipped_health_size; i < sizeof(h); i++, tail++)
		ck_assert_msg(*tail == JUNK, "byte %zu written past struct_size", i);

	/* The grown size: the new field is written (zero from this plugin). */
	memset(&h, JUNK, sizeof(h));
	h.struct_size = sizeof(h);
	ck_assert_int_eq(plugin.d->health(inst, &h), COMPONENT_OK);
	ck_assert_int_eq(h.healthy, 1);
	ck_assert_uint_eq(h.grown_field, 0);

	memset(&h, 0, sizeof(h));
	h.struct_size = abi_shipped_health_size - 1;
	ck_assert_int_eq(plugin.d->health(inst, &h), COMPONENT_EINVAL);
}
END_TEST

static Suite *grow_suite(void)
{
	Suite *s = suite_create("abi_grow");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, plugin_is_built_grown);
	tcase_add_test(tc, host_struct_of_any_version);
	tcase_add_test(tc, push_of_every_size);
	tcase_add_test(tc, ingest_of_every_size);
	tcase_add_test(tc, health_writes_only_what_fits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(grow_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
