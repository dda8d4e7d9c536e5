/*
 * test_queue.c - the durable queue through the built plugin, against the
 * strict stand-in: acknowledged once on disk, delivered to every endpoint,
 * resumed after a restart, retried past max_backoff_retries, expired at
 * max_age, full with either when_full, endpoints and directories changed
 * by a reload, and the directory lock.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostutil.h"
#include "standin/standin.h"

static struct standin *sink, *sink2;
static struct th_plugin plugin;
static char dir[64], dir2[64];

static void rm_rf(const char *path)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	ck_assert_int_eq(system(cmd), 0);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/pwq-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(dir2, sizeof(dir2), "/tmp/pwq-test2-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir2));
	sink = th_sink_start();
	sink2 = th_sink_start();
	th_load(&plugin, NULL);
}

static void teardown(void)
{
	th_unload(&plugin);
	standin_stop(sink);
	standin_stop(sink2);
	rm_rf(dir);
	rm_rf(dir2);
}

/* {{A}}, {{B}}: the stand-ins' URLs; {{D}}, {{E}}: the two directories. */
static char *cfg(const char *tmpl)
{
	char *a = th_subst(tmpl, "{{A}}", standin_url(sink));
	char *b = th_subst(a, "{{B}}", standin_url(sink2));
	char *d = th_subst(b, "{{D}}", dir);
	char *e = th_subst(d, "{{E}}", dir2);

	free(a);
	free(b);
	free(d);
	return e;
}

static struct th_instance make(const char *tmpl)
{
	struct th_instance in;
	char *c = cfg(tmpl), *err = NULL;

	ck_assert_msg(th_create(&plugin, c, &in, &err) == COMPONENT_OK, "create: %s", err);
	free(c);
	return in;
}

static void reload(struct th_instance *in, const char *tmpl)
{
	char *c = cfg(tmpl), *err = NULL;

	ck_assert_msg(in->p->d->update(in->inst, c, &err) == COMPONENT_OK, "update: %s", err);
	free(c);
}

static const char *const labels[] = {"service_name", "svc", "__name__", "process_cpu", NULL};

static int push_one(struct th_instance *in, char **err)
{
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);

	return th_push(in, labels, prof, len, 5000, err);
}

/* Waits up to timeout_ms for the series to reach at least want. */
static double wait_metric(struct th_instance *in, const char *series, double want, int timeout_ms)
{
	double v = -1;

	for (int i = 0; i < timeout_ms / 20; i++) {
		v = th_metric(in, series);
		if (v >= want)
			break;
		usleep(20000);
	}
	return v;
}

/* Waits up to timeout_ms for the series to come down to 0. */
static double wait_zero(struct th_instance *in, const char *series, int timeout_ms)
{
	double v = -1;

	for (int i = 0; i < timeout_ms / 20; i++) {
		v = th_metric(in, series);
		if (v == 0)
			break;
		usleep(20000);
	}
	return v;
}

/* Waits for the debug view to show n records in flight to the endpoint. */
static bool wait_in_flight(struct th_instance *in, int n, int timeout_ms)
{
	char want[32];

	snprintf(want, sizeof(want), "\"in_flight\":%d,", n);
	for (int i = 0; i < timeout_ms / 20; i++) {
		char *dbg = th_debug_info(in);
		bool found = strstr(dbg, want) != NULL;

		free(dbg);
		if (found)
			return true;
		usleep(20000);
	}
	return false;
}

static const struct standin_reply down = {.status = 503, .times = 100000};

#define ONE_EP                                                                                     \
	"\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\",\"min_backoff_period\":\"10ms\","         \
	"\"max_backoff_period\":\"50ms\",\"max_backoff_retries\":1}]"
#define TWO_EPS                                                                                    \
	"\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\",\"min_backoff_period\":\"10ms\","         \
	"\"max_backoff_period\":\"50ms\",\"max_backoff_retries\":1},"                              \
	"{\"url\":\"{{B}}\",\"name\":\"b\",\"min_backoff_period\":\"10ms\","                       \
	"\"max_backoff_period\":\"50ms\",\"max_backoff_retries\":1}]"

START_TEST(acknowledged_then_delivered)
{
	struct th_instance in = make("{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\"}}");
	char *err = NULL, *dbg;

	ck_assert_int_eq(push_one(&in, &err), COMPONENT_OK);
	ck_assert_ptr_null(err);
	ck_assert_int_eq(standin_wait(sink, 1, 5000), 0);
	ck_assert_double_eq(
		wait_metric(&in, "pyroscope_write_sent_profiles_total{endpoint=\"a\"}", 1, 5000),
		1);
	ck_assert_double_gt(th_metric(&in, "pyroscope_write_queue_bytes"), 0);
	ck_assert_double_ge(th_metric(&in, "pyroscope_write_queue_fsync_duration_seconds_count"),
			    1);
	dbg = th_debug_info(&in);
	ck_assert_ptr_nonnull(strstr(dbg, "\"queue\":{\"directory\":"));
	ck_assert_ptr_nonnull(strstr(dbg, "\"backlog_profiles\":"));
	free(dbg);
	th_destroy(&in);
}
END_TEST

START_TEST(invalid_labels_are_refused_and_not_queued)
{
	struct th_instance in = make("{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\"}}");
	const char *const bad[] = {"service_name", "svc", "bad-name", "x", NULL};
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;

	ck_assert_int_eq(th_push(&in, bad, prof, len, 5000, &err), COMPONENT_EINVAL);
	free(err);
	usleep(200000);
	ck_assert_int_eq((int)standin_count(sink), 0);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_queue_backlog_profiles", "a"), 0);
	th_destroy(&in);
}
END_TEST

/* A dead endpoint holds its own backlog and nobody else's; once it is
 * back, everything arrives, long after max_backoff_retries ran out. */
START_TEST(dead_endpoint_beside_live_one)
{
	struct th_instance in = make("{" TWO_EPS ",\"queue\":{\"directory\":\"{{D}}\"}}");
	char *err = NULL;

	standin_script(sink2, STANDIN_ROUTE_PUSH, &down);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(push_one(&in, &err), COMPONENT_OK);
	ck_assert_int_eq(standin_wait(sink, 5, 5000), 0);
	ck_assert_double_eq(
		wait_metric(&in, "pyroscope_write_queue_backlog_profiles{endpoint=\"b\"}", 5, 5000),
		5);
	/* Far more attempts than max_backoff_retries = 1 allows. */
	ck_assert_double_ge(
		wait_metric(&in, "pyroscope_write_retries_total{endpoint=\"b\"}", 20, 10000), 20);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_dropped_profiles_total", "b"), 0);
	standin_script_clear(sink2);
	ck_assert_double_eq(
		wait_metric(&in, "pyroscope_write_sent_profiles_total{endpoint=\"b\"}", 5, 10000),
		5);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "a"), 5);
	th_destroy(&in);
}
END_TEST

/* A failing endpoint holds a few records in memory, not its window: the
 * backlog stays on disk until it answers again. */
START_TEST(failing_endpoint_reads_little_ahead)
{
	struct th_instance in = make("{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\"}}");
	char *err = NULL, *dbg, *p;

	standin_script(sink, STANDIN_ROUTE_PUSH, &down);
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(push_one(&in, &err), COMPONENT_OK);
	ck_assert_double_ge(
		wait_metric(&in, "pyroscope_write_retries_total{endpoint=\"a\"}", 10, 10000), 10);
	ck_assert_double_eq(wait_metric(&in,
					"pyroscope_write_queue_backlog_profiles{endpoint=\"a\"}",
					20, 5000),
			    20);
	dbg = th_debug_info(&in);
	p = strstr(dbg, "\"in_flight\":");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_le(atoi(p + strlen("\"in_flight\":")), 4);
	free(dbg);
	standin_script_clear(sink);
	ck_assert_double_eq(
		wait_metric(&in, "pyroscope_write_sent_profiles_total{endpoint=\"a\"}", 20, 10000),
		20);
	th_destroy(&in);
}
END_TEST

/* What an endpoint had not taken when the instance went away goes out
 * from the next instance on the same directory. */
START_TEST(restart_resumes_backlog)
{
	const char *c = "{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\"}}";
	struct th_instance in = make(c);
	char *err = NULL;
	double t0;

	standin_script(sink, STANDIN_ROUTE_PUSH, &down);
	for (int i = 0; i < 7; i++)
		ck_assert_int_eq(push_one(&in, &err), COMPONENT_OK);
	ck_assert_double_eq(
		wait_metric(&in, "pyroscope_write_queue_backlog_profiles{endpoint=\"a\"}", 7, 5000),
		7);
	t0 = th_now_s();
	th_destroy(&in);
	/* Queued profiles waiting for a retry do not hold the drain. */
	ck_assert_double_lt(th_now_s() - t0, 3.0);
	standin_script_clear(sink);
	in = make(c);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_queue_replayed_profiles_total", "a"),
			    7);
	ck_assert_double_eq(
		wait_metric(&in, "pyroscope_write_sent_profiles_total{endpoint=\"a\"}", 7, 10000),
		7);
	ck_assert_double_eq(
		wait_zero(&in, "pyroscope_write_queue_backlog_profiles{endpoint=\"a\"}", 5000), 0);
	th_destroy(&in);
}
END_TEST

/* A queued profile whose attempt is under way when the instance stops is
 * shelved when the answer comes, not retried until the drain runs out. */
START_TEST(stop_shelves_attempt_under_way)
{
	const char *c = "{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\"}}";
	const struct standin_reply slow_down = {.status = 503, .delay_ms = 300, .times = 100000};
	struct th_instance in = make(c);
	char *err = NULL;
	double t0;

	standin_script(sink, STANDIN_ROUTE_PUSH, &slow_down);
	ck_assert_int_eq(push_one(&in, &err), COMPONENT_OK);
	usleep(100000); /* the first attempt is waiting for its answer */
	t0 = th_now_s();
	th_destroy(&in);
	/* The drain (shutdown_timeout, 5 s) is not spent retrying. */
	ck_assert_double_lt(th_now_s() - t0, 3.0);
	standin_script_clear(sink);
	in = make(c);
	ck_assert_double_eq(
		wait_metric(&in, "pyroscope_write_sent_profiles_total{endpoint=\"a\"}", 1, 10000),
		1);
	th_destroy(&in);
}
END_TEST

START_TEST(expired_profiles_are_dropped)
{
	struct th_instance in =
		make("{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\",\"max_age\":\"1s\"}}");
	char *err = NULL;

	standin_script(sink, STANDIN_ROUTE_PUSH, &down);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(push_one(&in, &err), COMPONENT_OK);
	ck_assert_double_eq(
		wait_metric(&in,
			    "pyroscope_write_queue_dropped_profiles_total{endpoint=\"a\","
			    "reason=\"expired\"}",
			    3, 10000),
		3);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_dropped_profiles_total", "a"), 3);
	standin_script_clear(sink);
	usleep(300000);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "a"), 0);
	th_destroy(&in);
}
END_TEST

/* 40 KiB profiles into a 64 KiB queue. */
static int push_big(struct th_instance *in, unsigned seed, char **err)
{
	size_t len;
	uint8_t *big = th_big_pprof(40 * 1024, seed, &len);
	int rc = th_push(in, labels, big, len, 5000, err);

	free(big);
	return rc;
}

START_TEST(full_refuse_fails_fast)
{
	struct th_instance in = make("{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\","
				     "\"max_size\":65536,\"when_full\":\"refuse\"}}");
	char *err = NULL;
	int ok = 0, refused = 0;

	standin_script(sink, STANDIN_ROUTE_PUSH, &down);
	for (int i = 0; i < 4; i++) {
		int rc = push_big(&in, (unsigned)i, &err);

		if (rc == COMPONENT_OK) {
			ok++;
		} else {
			ck_assert_int_eq(rc, COMPONENT_EOVERLOAD);
			ck_assert_ptr_nonnull(strstr(err, "full"));
			refused++;
		}
		free(err);
		err = NULL;
	}
	ck_assert_int_ge(ok, 1);
	ck_assert_int_ge(refused, 1);
	ck_assert_double_le(th_metric(&in, "pyroscope_write_queue_bytes"), 65536);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_dropped_profiles_total", "a"),
			    refused);
	/* Room again once the endpoint has taken what is queued: nothing in
	 * flight any more, so every delivery is listed for the store, and the
	 * append hands the list over before it looks for room. */
	standin_script_clear(sink);
	ck_assert_double_eq(
		wait_metric(&in, "pyroscope_write_sent_profiles_total{endpoint=\"a\"}", ok, 10000),
		ok);
	ck_assert(wait_in_flight(&in, 0, 10000));
	ck_assert_int_eq(push_big(&in, 99, &err), COMPONENT_OK);
	th_destroy(&in);
}
END_TEST

/*
 * One connection: four records in flight (its window), the rest wait on
 * disk. Each 40 KiB record fills the 64 KiB queue, so every push drops the
 * one before: those in flight still end as delivered, an unread one is
 * lost and counted.
 */
START_TEST(full_drop_oldest_keeps_accepting)
{
	struct th_instance in =
		make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
		     "\"min_backoff_period\":\"10ms\",\"max_backoff_period\":\"50ms\","
		     "\"max_connections\":1}"
		     "],\"queue\":{\"directory\":\"{{D}}\",\"max_size\":65536}}");
	char *err = NULL;
	double sent, dropped;

	standin_script(sink, STANDIN_ROUTE_PUSH, &down);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(push_big(&in, (unsigned)i, &err), COMPONENT_OK);
		/* Read before the next push drops it from the disk. */
		ck_assert(wait_in_flight(&in, i + 1, 10000));
	}
	for (int i = 4; i < 7; i++)
		ck_assert_int_eq(push_big(&in, (unsigned)i, &err), COMPONENT_OK);
	ck_assert_double_le(th_metric(&in, "pyroscope_write_queue_bytes"), 65536);
	dropped = th_metric(&in, "pyroscope_write_queue_dropped_profiles_total{endpoint=\"a\","
				 "reason=\"full\"}");
	ck_assert_double_eq(dropped, 2);
	standin_script_clear(sink);
	sent = wait_metric(&in, "pyroscope_write_sent_profiles_total{endpoint=\"a\"}", 5, 10000);
	/* Every profile is either delivered or counted as dropped. */
	usleep(200000);
	sent = th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "a");
	ck_assert_double_eq(sent, 5);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_dropped_profiles_total", "a"), 2);
	th_destroy(&in);
}
END_TEST

START_TEST(reload_removes_endpoint_backlog)
{
	struct th_instance in = make("{" TWO_EPS ",\"queue\":{\"directory\":\"{{D}}\"}}");
	char *err = NULL;

	standin_script(sink2, STANDIN_ROUTE_PUSH, &down);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(push_one(&in, &err), COMPONENT_OK);
	ck_assert_double_eq(
		wait_metric(&in, "pyroscope_write_queue_backlog_profiles{endpoint=\"b\"}", 4, 5000),
		4);
	reload(&in, "{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\"}}");
	/* They were in flight: each ends at its next attempt. */
	ck_assert_double_eq(wait_metric(&in,
					"pyroscope_write_queue_dropped_profiles_total{endpoint="
					"\"b\",reason=\"removed\"}",
					4, 5000),
			    4);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_dropped_profiles_total", "b"), 4);
	/* A new endpoint starts with new profiles only. */
	reload(&in, "{" TWO_EPS ",\"queue\":{\"directory\":\"{{D}}\"}}");
	standin_script_clear(sink2);
	ck_assert_int_eq(push_one(&in, &err), COMPONENT_OK);
	ck_assert_double_eq(
		wait_metric(&in, "pyroscope_write_sent_profiles_total{endpoint=\"b\"}", 1, 5000),
		1);
	usleep(300000);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "b"), 1);
	th_destroy(&in);
}
END_TEST

static size_t count_files(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	size_t n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

START_TEST(reload_changes_directory)
{
	struct th_instance in = make("{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\"}}");
	struct th_instance other;
	char *err = NULL, *c;

	standin_script(sink, STANDIN_ROUTE_PUSH, &down);
	ck_assert_int_eq(push_one(&in, &err), COMPONENT_OK);
	reload(&in, "{" ONE_EP ",\"queue\":{\"directory\":\"{{E}}\"}}");
	ck_assert_int_gt((int)count_files(dir), 0);
	ck_assert_int_gt((int)count_files(dir2), 0);
	ck_assert(th_logs_contain("queue directory changed"));
	/* The old directory is free again: another instance can take it and
	 * finds the profile the first one left there. */
	c = cfg("{\"endpoint\":[{\"url\":\"{{B}}\",\"name\":\"a\"}],"
		"\"queue\":{\"directory\":\"{{D}}\"}}");
	ck_assert_int_eq(th_create(&plugin, c, &other, &err), COMPONENT_OK);
	free(c);
	ck_assert_int_eq(standin_wait(sink2, 1, 5000), 0);
	th_destroy(&other);
	/* Removing the block goes back to memory mode. */
	reload(&in, "{" ONE_EP "}");
	standin_script_clear(sink);
	ck_assert_int_eq(push_one(&in, &err), COMPONENT_OK);
	th_destroy(&in);
}
END_TEST

START_TEST(second_owner_is_refused)
{
	struct th_instance in = make("{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\"}}");
	struct th_instance second;
	char *c = cfg("{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\"}}"), *err = NULL;

	ck_assert_int_eq(th_create(&plugin, c, &second, &err), COMPONENT_ECONFIG);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err, "queue.directory"));
	free(err);
	free(c);
	th_destroy(&in);
}
END_TEST

/* Pushes two samples of big (len bytes each) with the test's labels. */
static void push_two(struct th_instance *in, uint8_t *const big[2], size_t len)
{
	struct pw_label l[] = {{"service_name", "svc"}, {"__name__", "process_cpu"}};
	struct pw_sample smp[2] = {{big[0], len, NULL}, {big[1], len, NULL}};
	struct pw_push p = {sizeof(p), l, 2, smp, 2};
	struct pw_result r = {0};

	ck_assert_int_eq(in->rx->push(in->rx->ctx, &p, th_deadline(5000), &r), COMPONENT_OK);
	in->rx->free_result(&r);
}

/* Samples of 64 KiB and more are written to the queue from the host's own
 * buffers, the encoding built around them: the endpoint must receive
 * exactly the request memory mode sends for the same push. */
START_TEST(large_samples_written_from_the_hosts_buffers)
{
	struct th_instance mem = make("{" ONE_EP "}"), in;
	struct standin_request *a, *b;
	uint8_t *big[2];
	size_t len, len2;

	big[0] = th_big_pprof(96 * 1024, 1, &len);
	big[1] = th_big_pprof(96 * 1024, 2, &len2);
	ck_assert_uint_eq(len, len2);
	ck_assert_uint_ge(len, 64 * 1024);
	push_two(&mem, big, len);
	ck_assert_int_eq(standin_wait(sink, 1, 5000), 0);
	th_destroy(&mem);
	in = make("{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\"}}");
	push_two(&in, big, len);
	ck_assert_int_eq(standin_wait(sink, 2, 5000), 0);
	a = standin_request_get(sink, 0);
	b = standin_request_get(sink, 1);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(b->status, 200);
	ck_assert_uint_eq(b->nsamples, 2);
	ck_assert_uint_gt(b->body_len, 2 * len);
	ck_assert_uint_eq(b->body_len, a->body_len);
	ck_assert_msg(memcmp(a->body, b->body, a->body_len) == 0,
		      "the queue sent other bytes than memory mode");
	standin_request_free(a);
	standin_request_free(b);
	free(big[0]);
	free(big[1]);
	th_destroy(&in);
}
END_TEST

START_TEST(ingest_through_the_queue)
{
	struct th_instance in = make("{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\"}}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	const char *ct[] = {"application/octet-stream"};
	struct pw_label lb[] = {{"service_name", "app"}};
	struct pw_ingest ing = {.struct_size = sizeof(ing),
				.path_query = "/ingest?name=app&format=pprof",
				.content_types = ct,
				.ncontent_types = 1,
				.body = prof,
				.body_len = len,
				.labels = lb,
				.nlabels = 1};
	struct pw_result res = {0};
	struct standin_request *r;

	ck_assert_int_eq(in.rx->ingest(in.rx->ctx, &ing, th_deadline(5000), &res), COMPONENT_OK);
	ck_assert_int_eq(res.http_status, 200);
	in.rx->free_result(&res);
	ck_assert_int_eq(standin_wait(sink, 1, 5000), 0);
	r = standin_request_get(sink, 0);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->path, "/ingest");
	ck_assert_int_eq(r->status, 200);
	ck_assert_uint_eq(r->body_len, len);
	ck_assert_str_eq(standin_request_header(r, "Content-Type"), "application/octet-stream");
	standin_request_free(r);
	th_destroy(&in);
}
END_TEST

struct load {
	struct th_instance *in;
	char *cfg[2];
	atomic_int ok, failed;
	atomic_bool stop;
	int per_thread;
};

static void *producer(void *arg)
{
	struct load *l = arg;

	for (int i = 0; i < l->per_thread; i++) {
		char *err = NULL;

		if (push_one(l->in, &err) == COMPONENT_OK)
			atomic_fetch_add(&l->ok, 1);
		else
			atomic_fetch_add(&l->failed, 1);
		free(err);
	}
	return NULL;
}

static void *updater(void *arg)
{
	struct load *l = arg;

	for (int i = 0; !atomic_load(&l->stop); i++) {
		char *err = NULL;

		ck_assert_msg(l->in->p->d->update(l->in->inst, l->cfg[i % 2], &err) == COMPONENT_OK,
			      "update: %s", err);
		usleep(2000);
	}
	return NULL;
}

/* Producers push while reloads change the queue's limits and fsync mode in
 * place: every push is acknowledged and every acknowledged one arrives. */
START_TEST(concurrent_producers_and_reloads)
{
	struct th_instance in = make("{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\"}}");
	struct load l = {.in = &in};
	int nthreads = th_under_valgrind() ? 4 : 16;
	pthread_t th[16], up;

	l.per_thread = th_under_valgrind() ? 5 : 25;
	l.cfg[0] = cfg("{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\",\"max_size\":"
		       "8388608,\"fsync\":\"interval\",\"fsync_interval\":\"10ms\"}}");
	l.cfg[1] = cfg("{" ONE_EP ",\"queue\":{\"directory\":\"{{D}}\","
		       "\"when_full\":\"refuse\"}}");
	atomic_init(&l.ok, 0);
	atomic_init(&l.failed, 0);
	atomic_init(&l.stop, false);
	pthread_create(&up, NULL, updater, &l);
	for (int i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, producer, &l);
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	atomic_store(&l.stop, true);
	pthread_join(up, NULL);
	ck_assert_int_eq(atomic_load(&l.failed), 0);
	ck_assert_int_eq(atomic_load(&l.ok), nthreads * l.per_thread);
	ck_assert_double_eq(wait_metric(&in, "pyroscope_write_sent_profiles_total{endpoint=\"a\"}",
					nthreads * l.per_thread, 20000),
			    nthreads * l.per_thread);
	th_destroy(&in);
	free(l.cfg[0]);
	free(l.cfg[1]);
}
END_TEST

static Suite *queue_suite(void)
{
	Suite *s = suite_create("queue");
	TCase *tc = tcase_create("engine");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, acknowledged_then_delivered);
	tcase_add_test(tc, invalid_labels_are_refused_and_not_queued);
	tcase_add_test(tc, dead_endpoint_beside_live_one);
	tcase_add_test(tc, failing_endpoint_reads_little_ahead);
	tcase_add_test(tc, restart_resumes_backlog);
	tcase_add_test(tc, stop_shelves_attempt_under_way);
	tcase_add_test(tc, expired_profiles_are_dropped);
	tcase_add_test(tc, full_refuse_fails_fast);
	tcase_add_test(tc, full_drop_oldest_keeps_accepting);
	tcase_add_test(tc, reload_removes_endpoint_backlog);
	tcase_add_test(tc, reload_changes_directory);
	tcase_add_test(tc, second_owner_is_refused);
	tcase_add_test(tc, ingest_through_the_queue);
	tcase_add_test(tc, large_samples_written_from_the_hosts_buffers);
	tcase_add_test(tc, concurrent_producers_and_reloads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(queue_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
