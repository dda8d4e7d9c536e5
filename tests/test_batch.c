/*
 * test_batch.c - `batch` through the built plugin, against the strict
 * Pyroscope stand-in: concurrent pushes become fewer requests that carry
 * every series intact, the limits hold, a retryable failure retries the
 * batch whole and each profile arrives once, a refusal fails every member,
 * batches never mix tenants, a member's deadline still applies, an
 * endpoint without `batch` is unaffected, and producers racing reloads
 * that add and remove `batch` lose nothing.
 */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostutil.h"
#include "proto.h"
#include "proto_decode.h"
#include "standin/standin.h"

#define MAXN 400

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

static char *cfg(const char *tmpl)
{
	char *a = th_subst(tmpl, "{{A}}", standin_url(sink));
	char *c = th_subst(a, "{{B}}", standin_url(sink2));

	free(a);
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

/* A burst of async pushes and their outcomes. */
struct burst {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n, done, ok;
	int status[MAXN];
	char *error[MAXN];
	double done_s[MAXN];
};

struct ticket {
	struct burst *b;
	int i;
};

static struct ticket tickets[MAXN];

static void burst_done(void *user, const struct pw_result *r)
{
	struct ticket *t = user;
	struct burst *b = t->b;

	pthread_mutex_lock(&b->lock);
	b->status[t->i] = r->status;
	b->error[t->i] = r->error ? strdup(r->error) : NULL;
	b->done_s[t->i] = th_now_s();
	b->done++;
	b->ok += r->status == COMPONENT_OK;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* Push i: labels service_name, i=<i> and, when tenants > 0, __tenant__
 * and t, both t<i % tenants>. The sample is `data` when given. */
static void push_one(struct th_instance *in, struct burst *b, int i, int tenants,
		     const uint8_t *data, size_t len, int64_t deadline_ms)
{
	char idx[16], ten[16];
	struct pw_label l[] = {
		{"service_name", "svc"}, {"i", idx}, {"__tenant__", ten}, {"t", ten}};
	size_t flen;
	struct pw_sample smp = {data ? data : th_pprof_gz(&flen), data ? len : 0, NULL};
	struct pw_push p = {sizeof(p), l, tenants > 0 ? 4 : 2, &smp, 1, 0};

	if (!data)
		smp.len = flen;
	snprintf(idx, sizeof(idx), "%d", i);
	snprintf(ten, sizeof(ten), "t%d", tenants > 0 ? i % tenants : 0);
	tickets[i].b = b;
	tickets[i].i = i;
	ck_assert_int_eq(in->rx->push_async(in->rx->ctx, &p, th_deadline(deadline_ms), burst_done,
					    &tickets[i]),
			 COMPONENT_OK);
}

static void burst_wait(struct burst *b)
{
	pthread_mutex_lock(&b->lock);
	while (b->done < b->n)
		pthread_cond_wait(&b->cond, &b->lock);
	pthread_mutex_unlock(&b->lock);
}

static void burst_free(struct burst *b)
{
	for (int i = 0; i < b->n; i++)
		free(b->error[i]);
	free(b);
}

/* n pushes at once, then waits for all. */
static struct burst *burst(struct th_instance *in, int n, int tenants)
{
	struct burst *b = calloc(1, sizeof(*b));

	ck_assert_ptr_nonnull(b);
	ck_assert_int_le(n, MAXN);
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	b->n = n;
	for (int i = 0; i < n; i++)
		push_one(in, b, i, tenants, NULL, 0, 30000);
	burst_wait(b);
	return b;
}

/* The value of label `key` in a "k=v,k=v" series string, as an int; -1
 * when absent. */
static int label_int(const char *series, const char *key)
{
	char pat[32];
	const char *at;

	snprintf(pat, sizeof(pat), "%s=", key);
	for (at = series; (at = strstr(at, pat)); at++)
		if (at == series || at[-1] == ',')
			return atoi(at + strlen(pat));
	return -1;
}

/*
 * Every accepted request of st: its series decode, each carries the
 * pushed sample byte for byte, and push i's series arrived exactly once
 * over all of them. Returns the number of accepted requests; *max_series
 * gets the largest number of series in one.
 */
static size_t check_arrivals(struct standin *st, int n, size_t *max_series)
{
	int seen[MAXN] = {0};
	size_t accepted = 0, flen;
	const uint8_t *prof = th_pprof_gz(&flen);

	*max_series = 0;
	for (size_t r = 0; r < standin_count(st); r++) {
		struct standin_request *q = standin_request_get(st, r);
		struct pw_dec_push d;
		char *err = NULL;

		ck_assert_ptr_nonnull(q);
		if (q->status != 200) {
			standin_request_free(q);
			continue;
		}
		accepted++;
		ck_assert_msg(pw_proto_decode_push(q->body, q->body_len, &d, &err) == 0, "%s", err);
		ck_assert_uint_eq(d.nseries, q->nseries);
		for (size_t s = 0; s < d.nseries; s++) {
			int i = label_int(q->series_labels[s], "i");

			ck_assert_int_ge(i, 0);
			ck_assert_int_lt(i, n);
			seen[i]++;
			ck_assert_uint_eq(d.series[s].nsamples, 1);
			ck_assert_uint_eq(d.series[s].samples[0].len, flen);
			ck_assert_int_eq(memcmp(d.series[s].samples[0].data, prof, flen), 0);
		}
		if (d.nseries > *max_series)
			*max_series = d.nseries;
		pw_dec_push_free(&d);
		standin_request_free(q);
	}
	for (int i = 0; i < n; i++)
		ck_assert_msg(seen[i] == 1, "push %d arrived %d times", i, seen[i]);
	return accepted;
}

START_TEST(concurrent_pushes_share_requests)
{
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
				     "\"batch\":{\"max_profiles\":1000,\"max_wait\":\"300ms\"}}]}");
	struct burst *b = burst(&in, 200, 0);
	size_t max_series, reqs;

	ck_assert_int_eq(b->ok, 200);
	reqs = check_arrivals(sink, 200, &max_series);
	/* Pushed within far less than max_wait: very few requests. */
	ck_assert_uint_le(reqs, 4);
	ck_assert_uint_eq(reqs, standin_count(sink));
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "a"), 200);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_batch_profiles_count", "a"),
			    (double)reqs);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_batch_profiles_sum", "a"), 200);
	burst_free(b);
	th_destroy(&in);
}
END_TEST

/* max_profiles and max_bytes bound every request; a profile larger than
 * max_bytes goes alone. */
START_TEST(limits_hold)
{
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
				     "\"batch\":{\"max_profiles\":7,\"max_wait\":\"200ms\"}},"
				     "{\"url\":\"{{B}}\",\"name\":\"b\","
				     "\"batch\":{\"max_bytes\":1024,\"max_wait\":\"200ms\"}}]}");
	struct burst *b = burst(&in, 60, 0);
	size_t max_series, reqs, flen;

	th_pprof_gz(&flen);
	ck_assert_int_eq(b->ok, 60);
	reqs = check_arrivals(sink, 60, &max_series);
	ck_assert_uint_eq(max_series, 7);
	ck_assert_uint_ge(reqs, 9); /* ceil(60 / 7) */
	reqs = check_arrivals(sink2, 60, &max_series);
	ck_assert_uint_ge(max_series, 2);
	for (size_t r = 0; r < standin_count(sink2); r++) {
		struct standin_request *q = standin_request_get(sink2, r);

		ck_assert_uint_le(q->body_len, 1024);
		standin_request_free(q);
	}
	burst_free(b);

	/* Larger than max_bytes: sent on its own, unchanged. */
	{
		size_t big_len;
		uint8_t *big = th_big_pprof(4096, 5, &big_len);
		struct pw_label l[] = {{"service_name", "svc"}};
		struct pw_sample smp = {big, big_len, NULL};
		struct pw_push p = {sizeof(p), l, 1, &smp, 1, 0};
		struct pw_result res = {0};
		size_t before = standin_count(sink2);
		struct standin_request *q;

		ck_assert_int_eq(in.rx->push(in.rx->ctx, &p, th_deadline(10000), &res),
				 COMPONENT_OK);
		in.rx->free_result(&res);
		q = standin_request_get(sink2, before);
		ck_assert_ptr_nonnull(q);
		ck_assert_int_eq(q->status, 200);
		ck_assert_uint_eq(q->nseries, 1);
		ck_assert_uint_gt(q->body_len, big_len);
		standin_request_free(q);
		free(big);
	}
	th_destroy(&in);
}
END_TEST

/* A 503 retries the whole batch: one more request with every series,
 * each profile accepted once, retries counted per profile. */
START_TEST(retryable_failure_retries_whole_batch)
{
	struct standin_reply busy = {.status = 503, .body = "busy", .content_type = "text/plain"};
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
				     "\"min_backoff_period\":\"300ms\","
				     "\"batch\":{\"max_wait\":\"300ms\"}}]}");
	struct burst *b;
	size_t max_series;

	standin_script(sink, STANDIN_ROUTE_PUSH, &busy);
	b = burst(&in, 40, 0);
	ck_assert_int_eq(b->ok, 40);
	ck_assert_uint_eq(standin_count(sink), 2);
	ck_assert_uint_eq(check_arrivals(sink, 40, &max_series), 1);
	ck_assert_uint_eq(max_series, 40);
	{
		struct standin_request *q = standin_request_get(sink, 0);

		ck_assert_int_eq(q->status, 503);
		ck_assert_uint_eq(q->nseries, 40);
		standin_request_free(q);
	}
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_retries_total", "a"), 40);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "a"), 40);
	burst_free(b);
	th_destroy(&in);
}
END_TEST

/* A 400 fails every member with the server's message, and is not
 * retried. */
START_TEST(refusal_fails_every_member)
{
	struct standin_reply bad = {
		.status = 400,
		.content_type = "application/json",
		.body = "{\"code\":\"invalid_argument\",\"message\":\"bad batch\"}",
	};
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
				     "\"batch\":{\"max_wait\":\"300ms\"}}]}");
	struct burst *b;

	standin_script(sink, STANDIN_ROUTE_PUSH, &bad);
	b = burst(&in, 25, 0);
	ck_assert_int_eq(b->ok, 0);
	for (int i = 0; i < 25; i++) {
		ck_assert_int_eq(b->status[i], COMPONENT_EDELIVERY);
		ck_assert_str_eq(b->error[i], "failed to push to endpoint a (0 retries): "
					      "invalid_argument: bad batch");
	}
	ck_assert_uint_eq(standin_count(sink), 1);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_dropped_profiles_total", "a"), 25);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_retries_total", "a"), 0);
	burst_free(b);
	th_destroy(&in);
}
END_TEST

/* Beside a batching endpoint, one without `batch` still gets one request
 * per profile, and has no batch histogram. */
START_TEST(unbatched_endpoint_unaffected)
{
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
				     "\"batch\":{\"max_wait\":\"200ms\"}},"
				     "{\"url\":\"{{B}}\",\"name\":\"b\"}]}");
	struct burst *b = burst(&in, 30, 0);
	size_t max_series;

	ck_assert_int_eq(b->ok, 30);
	ck_assert_uint_le(check_arrivals(sink, 30, &max_series), 3);
	ck_assert_uint_eq(check_arrivals(sink2, 30, &max_series), 30);
	ck_assert_uint_eq(max_series, 1);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_batch_profiles_count", "b"), -1);
	burst_free(b);
	th_destroy(&in);
}
END_TEST

/* With tenant_label, each request holds one tenant's profiles only. */
START_TEST(batches_never_mix_tenants)
{
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
				     "\"tenant_label\":\"__tenant__\","
				     "\"batch\":{\"max_wait\":\"200ms\"}}]}");
	struct burst *b = burst(&in, 90, 3);
	size_t max_series, per_tenant[3] = {0};

	ck_assert_int_eq(b->ok, 90);
	ck_assert_uint_ge(check_arrivals(sink, 90, &max_series), 3);
	for (size_t r = 0; r < standin_count(sink); r++) {
		struct standin_request *q = standin_request_get(sink, r);
		int t = atoi(q->tenant + 1);

		ck_assert_int_eq(q->tenant[0], 't');
		for (size_t s = 0; s < q->nseries; s++)
			ck_assert_ptr_null(strstr(q->series_labels[s], "__tenant__"));
		for (size_t s = 0; s < q->nseries; s++) {
			char want[16];

			snprintf(want, sizeof(want), "t=t%d", t);
			ck_assert_msg(strstr(q->series_labels[s], want), "%s in a request for %s",
				      q->series_labels[s], q->tenant);
			ck_assert_int_eq(label_int(q->series_labels[s], "i") % 3, t);
		}
		per_tenant[t] += q->nseries;
		standin_request_free(q);
	}
	ck_assert_uint_eq(per_tenant[0], 30);
	ck_assert_uint_eq(per_tenant[1], 30);
	ck_assert_uint_eq(per_tenant[2], 30);
	burst_free(b);
	th_destroy(&in);
}
END_TEST

/* A member whose deadline passes while its batch gathers completes as
 * timed out at its deadline; the others go on. */
START_TEST(member_deadline_applies)
{
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
				     "\"batch\":{\"max_wait\":\"1500ms\"}}]}");
	struct burst *b = calloc(1, sizeof(*b));
	double t0 = th_now_s();
	size_t max_series;

	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	b->n = 2;
	push_one(&in, b, 0, 0, NULL, 0, 10000);
	push_one(&in, b, 1, 0, NULL, 0, 300);
	burst_wait(b);
	ck_assert_int_eq(b->status[0], COMPONENT_OK);
	ck_assert_int_eq(b->status[1], COMPONENT_EDELIVERY);
	ck_assert_ptr_nonnull(strstr(b->error[1], "deadline_exceeded"));
	/* Ended at its own deadline, long before the batch went. */
	ck_assert_double_lt(b->done_s[1] - t0, 1.2);
	ck_assert_double_ge(b->done_s[0] - t0, 1.4);
	ck_assert_uint_eq(standin_count(sink), 1);
	{
		struct standin_request *q = standin_request_get(sink, 0);

		ck_assert_uint_eq(q->nseries, 1);
		ck_assert_int_eq(label_int(q->series_labels[0], "i"), 0);
		standin_request_free(q);
	}
	(void)max_series;
	burst_free(b);
	th_destroy(&in);
}
END_TEST

/* An attempt cannot outlive the earliest deadline of its members: when
 * the server is slow, the member whose deadline passes fails, and the
 * other is retried without it. */
START_TEST(attempt_bounded_by_earliest_member)
{
	struct standin_reply slow = {
		.status = 200, .content_type = "application/proto", .delay_ms = 3000};
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
				     "\"min_backoff_period\":\"10ms\","
				     "\"batch\":{\"max_wait\":\"100ms\"}}]}");
	struct burst *b = calloc(1, sizeof(*b));
	double t0 = th_now_s();

	standin_script(sink, STANDIN_ROUTE_PUSH, &slow);
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	b->n = 2;
	push_one(&in, b, 0, 0, NULL, 0, 20000);
	push_one(&in, b, 1, 0, NULL, 0, 900);
	burst_wait(b);
	ck_assert_int_eq(b->status[1], COMPONENT_EDELIVERY);
	ck_assert_double_lt(b->done_s[1] - t0, 2.0);
	ck_assert_int_eq(b->status[0], COMPONENT_OK);
	ck_assert_double_lt(b->done_s[0] - t0, 2.5);
	ck_assert_uint_eq(standin_wait(sink, 2, 5000), 0);
	/* In either order (the stand-in records the slow one when it answers
	 * or gives up): the batch of both, then push 0 alone. */
	{
		struct standin_request *q0 = standin_request_get(sink, 0);
		struct standin_request *q1 = standin_request_get(sink, 1);
		struct standin_request *both = q0->nseries == 2 ? q0 : q1;
		struct standin_request *alone = both == q0 ? q1 : q0;

		ck_assert_uint_eq(both->nseries, 2);
		ck_assert_uint_eq(alone->nseries, 1);
		ck_assert_int_eq(label_int(alone->series_labels[0], "i"), 0);
		standin_request_free(q0);
		standin_request_free(q1);
	}
	burst_free(b);
	th_destroy(&in);
}
END_TEST

/* ---- producers racing reloads that add and remove `batch` ---- */

#define PRODUCERS 32

struct race {
	struct th_instance *in;
	int per_thread;
	atomic_int ok, failed;
	atomic_bool stop;
	char *cfg[3];
};

struct race_arg {
	struct race *r;
	int id;
};

static void *race_producer(void *arg)
{
	struct race_arg *a = arg;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);

	for (int i = 0; i < a->r->per_thread; i++) {
		char idx[16];
		const char *const labels[] = {"service_name", "svc", "i", idx, NULL};

		snprintf(idx, sizeof(idx), "%d", a->id * a->r->per_thread + i);
		if (th_push(a->r->in, labels, prof, len, 30000, NULL) == COMPONENT_OK)
			atomic_fetch_add(&a->r->ok, 1);
		else
			atomic_fetch_add(&a->r->failed, 1);
	}
	return NULL;
}

static void *race_updater(void *arg)
{
	struct race *r = arg;

	for (int i = 0; !atomic_load(&r->stop); i++) {
		char *err = NULL;

		r->in->p->d->update(r->in->inst, r->cfg[i % 3], &err);
		r->in->p->d->free_string(err);
		usleep(2000);
	}
	return NULL;
}

START_TEST(producers_race_batch_reloads)
{
	struct race r = {0};
	struct race_arg args[PRODUCERS];
	pthread_t th[PRODUCERS], up;
	struct th_instance in;
	int total;
	size_t max_series;

	r.per_thread = th_under_valgrind() ? 2 : 10;
	total = PRODUCERS * r.per_thread;
	r.cfg[0] = cfg("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
		       "\"batch\":{\"max_wait\":\"5ms\",\"max_profiles\":8}}]}");
	r.cfg[1] = cfg("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\"}]}");
	r.cfg[2] = cfg("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
		       "\"batch\":{\"max_wait\":\"0s\"}}]}");
	in = make(r.cfg[0]);
	r.in = &in;
	atomic_init(&r.ok, 0);
	atomic_init(&r.failed, 0);
	atomic_init(&r.stop, false);
	pthread_create(&up, NULL, race_updater, &r);
	for (int i = 0; i < PRODUCERS; i++) {
		args[i].r = &r;
		args[i].id = i;
		pthread_create(&th[i], NULL, race_producer, &args[i]);
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	atomic_store(&r.stop, true);
	pthread_join(up, NULL);
	ck_assert_int_eq(atomic_load(&r.failed), 0);
	ck_assert_int_eq(atomic_load(&r.ok), total);
	check_arrivals(sink, total, &max_series);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "a"), total);
	th_destroy(&in);
	for (int i = 0; i < 3; i++)
		free(r.cfg[i]);
}
END_TEST

static Suite *batch_suite(void)
{
	Suite *s = suite_create("batch");
	TCase *tc = tcase_create("batch");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, concurrent_pushes_share_requests);
	tcase_add_test(tc, limits_hold);
	tcase_add_test(tc, retryable_failure_retries_whole_batch);
	tcase_add_test(tc, refusal_fails_every_member);
	tcase_add_test(tc, unbatched_endpoint_unaffected);
	tcase_add_test(tc, batches_never_mix_tenants);
	tcase_add_test(tc, member_deadline_applies);
	tcase_add_test(tc, attempt_bounded_by_earliest_member);
	tcase_add_test(tc, producers_race_batch_reloads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(batch_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
