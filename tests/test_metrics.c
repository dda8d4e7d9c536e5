/*
 * test_metrics.c - the metrics registry and its text exposition, checked by
 * value and by the real `promtool check metrics`.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"
#include "strbuf.h"

static int collect(void *user, const char *data, size_t len)
{
	return strbuf_append(user, data, len);
}

static char *expose(struct pw_metrics *m)
{
	struct strbuf sb = STRBUF_INIT;

	ck_assert_int_eq(pw_metrics_write(m, collect, &sb), COMPONENT_OK);
	return strbuf_detach(&sb, NULL);
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p += n)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

START_TEST(counters_by_endpoint)
{
	struct pw_metrics *m = pw_metrics_new();
	struct pw_ep_metrics *a = pw_metrics_endpoint(m, "a");
	struct pw_ep_metrics *b = pw_metrics_endpoint(m, "b");
	char *text;

	ck_assert_ptr_eq(pw_metrics_endpoint(m, "a"), a);
	pw_metrics_sent(a, 100, 2);
	pw_metrics_sent(a, 50, 1);
	pw_metrics_dropped(b, 7, 1);
	pw_metrics_retry(b);
	pw_metrics_retry(b);
	ck_assert_uint_eq(pw_metrics_counter(a, "sent_bytes"), 150);
	ck_assert_uint_eq(pw_metrics_counter(a, "sent_profiles"), 3);
	ck_assert_uint_eq(pw_metrics_counter(b, "retries"), 2);
	text = expose(m);
	ck_assert(has_line(text, "pyroscope_write_sent_bytes_total{endpoint=\"a\"} 150"));
	ck_assert(has_line(text, "pyroscope_write_sent_profiles_total{endpoint=\"a\"} 3"));
	ck_assert(has_line(text, "pyroscope_write_dropped_bytes_total{endpoint=\"b\"} 7"));
	ck_assert(has_line(text, "pyroscope_write_dropped_profiles_total{endpoint=\"b\"} 1"));
	ck_assert(has_line(text, "pyroscope_write_retries_total{endpoint=\"b\"} 2"));
	ck_assert(has_line(text, "pyroscope_write_sent_bytes_total{endpoint=\"b\"} 0"));
	ck_assert(has_line(text, "# TYPE pyroscope_write_retries_total counter"));
	free(text);
	pw_metrics_free(m);
}
END_TEST

START_TEST(histogram_buckets_are_cumulative)
{
	struct pw_metrics *m = pw_metrics_new();
	struct pw_ep_metrics *a = pw_metrics_endpoint(m, "a");
	struct pw_ep_metrics *total = pw_metrics_endpoint(m, "-");
	char *text;

	pw_metrics_observe(a, PW_LAT_PUSH_DOWNSTREAM, 0.003);
	pw_metrics_observe(a, PW_LAT_PUSH_DOWNSTREAM, 0.2);
	pw_metrics_observe(a, PW_LAT_PUSH_DOWNSTREAM, 30);
	pw_metrics_observe(total, PW_LAT_PUSH_TOTAL, 1.0);
	ck_assert_uint_eq(pw_metrics_hist_count(a, PW_LAT_PUSH_DOWNSTREAM), 3);
	text = expose(m);
	ck_assert(has_line(text, "pyroscope_write_latency_bucket{endpoint=\"a\",type=\"push_"
				 "downstream\",le=\"0.005\"} 1"));
	ck_assert(has_line(text, "pyroscope_write_latency_bucket{endpoint=\"a\",type=\"push_"
				 "downstream\",le=\"0.1\"} 1"));
	ck_assert(has_line(text, "pyroscope_write_latency_bucket{endpoint=\"a\",type=\"push_"
				 "downstream\",le=\"0.25\"} 2"));
	ck_assert(has_line(text, "pyroscope_write_latency_bucket{endpoint=\"a\",type=\"push_"
				 "downstream\",le=\"10\"} 2"));
	ck_assert(has_line(text, "pyroscope_write_latency_bucket{endpoint=\"a\",type=\"push_"
				 "downstream\",le=\"+Inf\"} 3"));
	ck_assert(has_line(
		text, "pyroscope_write_latency_count{endpoint=\"a\",type=\"push_downstream\"} 3"));
	ck_assert(has_line(
		text,
		"pyroscope_write_latency_sum{endpoint=\"a\",type=\"push_downstream\"} 30.203"));
	ck_assert(has_line(text,
			   "pyroscope_write_latency_count{endpoint=\"-\",type=\"push_total\"} 1"));
	/* Types never observed are not exposed. */
	ck_assert_ptr_null(strstr(text, "type=\"ingest_downstream\""));
	/* The "-" series carries only the whole-call latency. */
	ck_assert_ptr_null(strstr(text, "pyroscope_write_sent_bytes_total{endpoint=\"-\"}"));
	free(text);
	pw_metrics_free(m);
}
END_TEST

START_TEST(label_values_escaped)
{
	struct pw_metrics *m = pw_metrics_new();
	char *text;

	pw_metrics_sent(pw_metrics_endpoint(m, "we\"ird\\name\nx"), 1, 1);
	text = expose(m);
	ck_assert(has_line(
		text, "pyroscope_write_sent_bytes_total{endpoint=\"we\\\"ird\\\\name\\nx\"} 1"));
	free(text);
	pw_metrics_free(m);
}
END_TEST

START_TEST(extras_and_reload_state)
{
	struct pw_metrics *m = pw_metrics_new();
	struct pw_ep_metrics *a = pw_metrics_endpoint(m, "a");
	char *text;

	pw_metrics_inflight_add(a, 3);
	pw_metrics_inflight_add(a, -1);
	pw_metrics_last_success(a, 1700000000.5);
	pw_metrics_rejected(m, "push", "invalid_labels", 4);
	pw_metrics_rejected(m, "ingest", "invalid_labels", 1);
	pw_metrics_reload(m, 1, 1700000001);
	pw_metrics_reload(m, 0, 1700000002);
	text = expose(m);
	ck_assert(has_line(text, "pyroscope_write_inflight_requests{endpoint=\"a\"} 2"));
	ck_assert(has_line(
		text,
		"pyroscope_write_last_success_timestamp_seconds{endpoint=\"a\"} 1700000000.5"));
	ck_assert(has_line(text, "pyroscope_write_rejected_profiles_total{path=\"push\",reason="
				 "\"invalid_labels\"} 4"));
	ck_assert(has_line(text, "pyroscope_write_rejected_profiles_total{path=\"ingest\",reason="
				 "\"invalid_labels\"} 1"));
	ck_assert(has_line(text, "pyroscope_write_config_last_reload_successful 0"));
	ck_assert(has_line(
		text, "pyroscope_write_config_last_reload_success_timestamp_seconds 1700000001"));
	free(text);
	pw_metrics_free(m);
}
END_TEST

/* An instance that never calls a queue function writes no queue series, not
 * even their HELP and TYPE lines. */
START_TEST(queue_series_absent_without_queue)
{
	struct pw_metrics *m = pw_metrics_new();
	struct pw_ep_metrics *a = pw_metrics_endpoint(m, "a");
	char *text;

	pw_metrics_sent(a, 10, 1);
	pw_metrics_dropped(a, 5, 1);
	pw_metrics_observe(a, PW_LAT_PUSH_DOWNSTREAM, 0.01);
	pw_metrics_inflight_add(a, 1);
	pw_metrics_reload(m, 1, 1700000000);
	text = expose(m);
	ck_assert_ptr_null(strstr(text, "queue"));
	free(text);
	pw_metrics_free(m);
}
END_TEST

START_TEST(queue_series)
{
	struct pw_metrics *m = pw_metrics_new();
	struct pw_ep_metrics *a = pw_metrics_endpoint(m, "a");
	struct pw_ep_metrics *b = pw_metrics_endpoint(m, "b");
	struct pw_ep_metrics *idle = pw_metrics_endpoint(m, "idle");
	char *text;

	pw_metrics_sent(idle, 1, 1);
	pw_metrics_queue_bytes(m, 4096);
	pw_metrics_queue_bytes(m, 65536);
	pw_metrics_queue_fsync(m, 0.0003);
	pw_metrics_queue_fsync(m, 0.02);
	pw_metrics_queue_fsync(m, 5);
	pw_metrics_queue_backlog(a, 12);
	pw_metrics_queue_oldest_age(a, 2.5);
	pw_metrics_queue_dropped(a, PW_QDROP_FULL, 3);
	pw_metrics_queue_dropped(a, PW_QDROP_EXPIRED, 4);
	pw_metrics_queue_dropped(a, PW_QDROP_CORRUPT, 1);
	pw_metrics_queue_dropped(a, PW_QDROP_FULL, 2);
	pw_metrics_queue_dropped(a, PW_QDROP_N, 100); /* ignored */
	pw_metrics_queue_replayed(b, 7);
	pw_metrics_queue_replayed(b, 1);
	pw_metrics_queue_dropped(b, PW_QDROP_REMOVED, 9);

	ck_assert_int_eq(pw_metrics_queue_bytes_get(m), 65536);
	ck_assert_uint_eq(pw_metrics_queue_fsync_count(m), 3);
	ck_assert_int_eq(pw_metrics_queue_backlog_get(a), 12);
	ck_assert(pw_metrics_queue_oldest_age_get(a) == 2.5);
	ck_assert_uint_eq(pw_metrics_queue_dropped_get(a, PW_QDROP_FULL), 5);
	ck_assert_uint_eq(pw_metrics_queue_dropped_get(a, PW_QDROP_N), 0);
	ck_assert_uint_eq(pw_metrics_queue_replayed_get(b), 8);

	text = expose(m);
	ck_assert(has_line(text, "# TYPE pyroscope_write_queue_bytes gauge"));
	ck_assert(has_line(text, "pyroscope_write_queue_bytes 65536"));
	ck_assert(has_line(text, "# TYPE pyroscope_write_queue_fsync_duration_seconds histogram"));
	ck_assert(has_line(text,
			   "pyroscope_write_queue_fsync_duration_seconds_bucket{le=\"0.0005\"} 1"));
	ck_assert(has_line(text,
			   "pyroscope_write_queue_fsync_duration_seconds_bucket{le=\"0.01\"} 1"));
	ck_assert(has_line(text,
			   "pyroscope_write_queue_fsync_duration_seconds_bucket{le=\"0.025\"} 2"));
	ck_assert(has_line(text,
			   "pyroscope_write_queue_fsync_duration_seconds_bucket{le=\"2.5\"} 2"));
	ck_assert(has_line(text,
			   "pyroscope_write_queue_fsync_duration_seconds_bucket{le=\"+Inf\"} 3"));
	ck_assert(has_line(text, "pyroscope_write_queue_fsync_duration_seconds_count 3"));
	ck_assert(has_line(text, "pyroscope_write_queue_fsync_duration_seconds_sum 5.0203"));
	ck_assert(has_line(text, "pyroscope_write_queue_backlog_profiles{endpoint=\"a\"} 12"));
	ck_assert(has_line(text, "pyroscope_write_queue_oldest_age_seconds{endpoint=\"a\"} 2.5"));
	ck_assert(has_line(text, "pyroscope_write_queue_dropped_profiles_total{endpoint=\"a\","
				 "reason=\"full\"} 5"));
	ck_assert(has_line(text, "pyroscope_write_queue_dropped_profiles_total{endpoint=\"a\","
				 "reason=\"expired\"} 4"));
	ck_assert(has_line(text, "pyroscope_write_queue_dropped_profiles_total{endpoint=\"a\","
				 "reason=\"corrupt\"} 1"));
	ck_assert(has_line(text, "pyroscope_write_queue_dropped_profiles_total{endpoint=\"a\","
				 "reason=\"removed\"} 0"));
	ck_assert(
		has_line(text, "pyroscope_write_queue_replayed_profiles_total{endpoint=\"a\"} 0"));
	/* b's first queue call was a counter: its gauges start at 0. */
	ck_assert(
		has_line(text, "pyroscope_write_queue_replayed_profiles_total{endpoint=\"b\"} 8"));
	ck_assert(has_line(text, "pyroscope_write_queue_dropped_profiles_total{endpoint=\"b\","
				 "reason=\"removed\"} 9"));
	ck_assert(has_line(text, "pyroscope_write_queue_backlog_profiles{endpoint=\"b\"} 0"));
	ck_assert(has_line(text, "pyroscope_write_queue_oldest_age_seconds{endpoint=\"b\"} 0"));
	/* An endpoint no queue function was called for has no queue series. */
	ck_assert_ptr_null(strstr(text, "queue_backlog_profiles{endpoint=\"idle\"}"));
	ck_assert_ptr_null(strstr(text, "queue_dropped_profiles_total{endpoint=\"idle\""));
	ck_assert_ptr_null(strstr(text, "queue_replayed_profiles_total{endpoint=\"idle\"}"));
	ck_assert(has_line(text, "pyroscope_write_sent_bytes_total{endpoint=\"idle\"} 1"));
	free(text);
	pw_metrics_free(m);
}
END_TEST

/* A per-endpoint call alone turns on the instance-wide series too. */
START_TEST(queue_series_from_endpoint_call)
{
	struct pw_metrics *m = pw_metrics_new();
	char *text;

	pw_metrics_queue_oldest_age(pw_metrics_endpoint(m, "a"), 0.25);
	text = expose(m);
	ck_assert(has_line(text, "pyroscope_write_queue_bytes 0"));
	ck_assert(has_line(text, "pyroscope_write_queue_fsync_duration_seconds_count 0"));
	ck_assert(has_line(text, "pyroscope_write_queue_oldest_age_seconds{endpoint=\"a\"} 0.25"));
	free(text);
	pw_metrics_free(m);
}
END_TEST

static bool have_promtool(void)
{
	return system("command -v promtool >/dev/null 2>&1") == 0;
}

/* The exposition is valid Prometheus text according to the real tool. */
START_TEST(promtool_accepts_exposition)
{
	struct pw_metrics *m = pw_metrics_new();
	struct pw_ep_metrics *a = pw_metrics_endpoint(m, "http://127.0.0.1:4040");
	struct pw_ep_metrics *total = pw_metrics_endpoint(m, "-");
	char path[] = "/tmp/pw-metrics-XXXXXX";
	char cmd[256], out[4096] = "";
	char *text;
	FILE *f;
	size_t n;
	int fd, st;

	ck_assert_msg(have_promtool(), "promtool is not installed (Debian package prometheus); "
				       "scripts/deps.sh installs it");
	pw_metrics_sent(a, 10, 1);
	pw_metrics_dropped(a, 5, 1);
	pw_metrics_retry(a);
	for (int t = 0; t < PW_LAT_NTYPES; t++)
		pw_metrics_observe(t == PW_LAT_PUSH_TOTAL || t == PW_LAT_INGEST_TOTAL ? total : a,
				   (enum pw_latency_type)t, 0.01 * (t + 1));
	pw_metrics_rejected(m, "push", "invalid_labels", 1);
	pw_metrics_reload(m, 1, 1700000000);
	pw_metrics_queue_bytes(m, 1 << 20);
	pw_metrics_queue_fsync(m, 0.004);
	pw_metrics_queue_backlog(a, 3);
	pw_metrics_queue_oldest_age(a, 1.5);
	pw_metrics_queue_dropped(a, PW_QDROP_EXPIRED, 2);
	pw_metrics_queue_replayed(a, 3);
	text = expose(m);
	ck_assert_ptr_nonnull(strstr(text, "pyroscope_write_queue_"));
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	st = pclose(f);
	unlink(path);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "promtool: %s\n%s", out, text);
	free(text);
	pw_metrics_free(m);
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_test(tc, counters_by_endpoint);
	tcase_add_test(tc, histogram_buckets_are_cumulative);
	tcase_add_test(tc, label_values_escaped);
	tcase_add_test(tc, extras_and_reload_state);
	tcase_add_test(tc, queue_series_absent_without_queue);
	tcase_add_test(tc, queue_series);
	tcase_add_test(tc, queue_series_from_endpoint_call);
	tcase_add_test(tc, promtool_accepts_exposition);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
