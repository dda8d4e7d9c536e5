/*
 * test_lifecycle.c - instances and the plugin itself coming and going:
 * create/destroy cycles, dlopen/dlclose cycles, hot reloads under load and
 * destroy with work under way. Threads and file descriptors are counted
 * from /proc/self; memory is left to the valgrind and ASan setups.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hostutil.h"
#include "standin/standin.h"

static struct standin *sink;

/* Scales a loop count down when valgrind makes every step slow. */
static int scaled(int n, int slow_n)
{
	return th_under_valgrind() ? slow_n : n;
}

static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory stream's own descriptor, for fd */
}

static int count_threads(void)
{
	return count_dir("/proc/self/task") + 1;
}

static int count_fds(void)
{
	return count_dir("/proc/self/fd");
}

/* Threads and descriptors go away asynchronously in places (the stand-in's
 * connection threads and sockets live in this process too): wait up to 5 s
 * for the count to come back down to `base`. Returns the last count, which
 * the callers require to be no more than `base`. */
static int settle(int (*count)(void), int base)
{
	int n = count();

	for (int i = 0; i < 500 && n > base; i++) {
		usleep(10000);
		n = count();
	}
	return n;
}

static void setup(void)
{
	struct standin_opts o = {0};
	char *err = NULL;

	sink = standin_start(&o, &err);
	ck_assert_msg(sink != NULL, "standin: %s", err ? err : "?");
}

static void teardown(void)
{
	standin_stop(sink);
	th_logs_clear();
}

static char *config_for(const char *tmpl)
{
	return th_subst(tmpl, "{{A}}", standin_url(sink));
}

static const char *const labels_basic[] = {"service_name", "svc", NULL};

/* Creates and destroys an instance many times, pushing now and then:
 * afterwards the process has as many threads and descriptors as before. */
START_TEST(create_destroy_cycles)
{
	struct th_plugin p;
	char *cfg = config_for("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\"}]}");
	const int n = scaled(1000, 50);
	int threads0, fds0;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	int pushed = 0;

	th_load(&p, NULL);
	/* One warm-up round for process-wide state (libcurl, OpenSSL). */
	{
		struct th_instance in;

		ck_assert_int_eq(th_create(&p, cfg, &in, NULL), COMPONENT_OK);
		ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, NULL), COMPONENT_OK);
		th_destroy(&in);
	}
	usleep(200000);
	threads0 = count_threads();
	fds0 = count_fds();
	for (int i = 0; i < n; i++) {
		struct th_instance in;

		ck_assert_int_eq(th_create(&p, cfg, &in, NULL), COMPONENT_OK);
		if (i % 25 == 0) {
			ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, NULL),
					 COMPONENT_OK);
			pushed++;
		}
		th_destroy(&in);
		if (i % 200 == 0)
			th_logs_clear();
	}
	ck_assert_int_le(settle(count_threads, threads0), threads0);
	ck_assert_int_le(settle(count_fds, fds0), fds0);
	ck_assert_int_eq(standin_count(sink), (size_t)pushed + 1);
	th_unload(&p);
	free(cfg);
}
END_TEST

/* dlopen, use, destroy, dlclose, over and over. The plugin stays mapped
 * after dlclose (see docs/abi.md, "Unloading"), so each dlopen gets the
 * same copy; nothing may pile up meanwhile. */
START_TEST(dlopen_dlclose_cycles)
{
	char *cfg = config_for("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\"}]}");
	const int n = scaled(200, 10);
	const struct component_descriptor *first = NULL;
	int threads0 = 0, fds0 = 0;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);

	for (int i = 0; i < n + 1; i++) {
		struct th_plugin p;
		struct th_instance in;

		th_load(&p, NULL);
		if (!first)
			first = p.d;
		ck_assert_ptr_eq(p.d, first);
		ck_assert_int_eq(th_create(&p, cfg, &in, NULL), COMPONENT_OK);
		ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, NULL), COMPONENT_OK);
		th_destroy(&in);
		th_unload(&p);
		if (i == 0) {
			/* Counted after the first cycle, which sets up the
			 * process-wide state. */
			threads0 = settle(count_threads, 0);
			fds0 = settle(count_fds, 0);
		}
	}
	ck_assert_int_le(settle(count_threads, threads0), threads0);
	ck_assert_int_le(settle(count_fds, fds0), fds0);
	ck_assert_int_eq(standin_count(sink), (size_t)n + 1);
	free(cfg);
}
END_TEST

/* Several instances alive at once, destroyed in another order. */
START_TEST(many_instances_interleaved)
{
	struct th_plugin p;
	char *cfg = config_for("{\"endpoint\":[{\"url\":\"{{A}}\"}]}");
	struct th_instance in[16];
	int threads0, fds0;

	th_load(&p, NULL);
	threads0 = count_threads();
	fds0 = count_fds();
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(th_create(&p, cfg, &in[i], NULL), COMPONENT_OK);
	ck_assert_int_eq(count_threads(), threads0 + 16);
	for (int i = 0; i < 16; i += 2)
		th_destroy(&in[i]);
	for (int i = 15; i > 0; i -= 2)
		th_destroy(&in[i]);
	ck_assert_int_le(settle(count_threads, threads0), threads0);
	ck_assert_int_le(settle(count_fds, fds0), fds0);
	th_unload(&p);
	free(cfg);
}
END_TEST

/* ---- hot reload under load ---- */

#define PRODUCERS 32

struct load {
	struct th_instance *in;
	int per_thread;
	atomic_int *calls; /* one counter per push */
	atomic_int accepted, refused, done_total, ok;
	atomic_bool stop;
	int updates_ok, updates_refused;
	char *cfg_a, *cfg_b;
};

struct ticket {
	struct load *l;
	int idx;
};

static struct ticket *tickets;

static void load_done(void *user, const struct pw_result *r)
{
	struct ticket *t = user;

	atomic_fetch_add(&t->l->calls[t->idx], 1);
	if (r->status == COMPONENT_OK)
		atomic_fetch_add(&t->l->ok, 1);
	atomic_fetch_add(&t->l->done_total, 1);
}

struct producer_arg {
	struct load *l;
	int id;
};

static void *producer(void *arg)
{
	struct producer_arg *pa = arg;
	struct load *l = pa->l;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);

	for (int i = 0; i < l->per_thread; i++) {
		int idx = pa->id * l->per_thread + i;
		struct pw_label lb[] = {{"service_name", "load"}};
		struct pw_sample s = {prof, len, NULL};
		struct pw_push p = {sizeof(p), lb, 1, &s, 1};
		int rc;

		tickets[idx].l = l;
		tickets[idx].idx = idx;
		rc = l->in->rx->push_async(l->in->rx->ctx, &p, th_deadline(30000), load_done,
					   &tickets[idx]);
		if (rc == COMPONENT_OK)
			atomic_fetch_add(&l->accepted, 1);
		else
			atomic_fetch_add(&l->refused, 1);
		if (i % 8 == 0)
			usleep(500);
	}
	return NULL;
}

static void *updater(void *arg)
{
	struct load *l = arg;
	const int n = scaled(1000, 60);
	struct component_health h;

	for (int i = 0; i < n; i++) {
		char *err = NULL;
		int rc;

		if (i % 2) {
			rc = l->in->p->d->update(l->in->inst,
						 "{\"endpoint\":[{\"url\":\"ftp://x\"}]}", &err);
			if (rc == COMPONENT_ECONFIG && err && *err)
				l->updates_refused++;
		} else {
			rc = l->in->p->d->update(l->in->inst, (i / 2) % 2 ? l->cfg_a : l->cfg_b,
						 &err);
			if (rc == COMPONENT_OK && !err)
				l->updates_ok++;
		}
		l->in->p->d->free_string(err);
		h.struct_size = sizeof(h);
		l->in->p->d->health(l->in->inst, &h);
		if (i % 64 == 0)
			th_logs_clear();
	}
	atomic_store(&l->stop, true);
	return NULL;
}

START_TEST(hot_reload_under_load)
{
	struct th_plugin p;
	struct th_instance in;
	struct load l = {0};
	struct producer_arg pa[PRODUCERS];
	pthread_t th[PRODUCERS], up;
	const int per_thread = scaled(60, 4);
	const int total = PRODUCERS * per_thread;
	const int updates = scaled(1000, 60);
	char *init = config_for("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\"}]}");
	double sent, t0;
	struct component_health h = {.struct_size = sizeof(h)};

	th_load(&p, NULL);
	l.cfg_a = config_for("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\"}]}");
	l.cfg_b = config_for("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"b\"}],"
			     "\"external_labels\":{\"reload\":\"b\"}}");
	ck_assert_int_eq(th_create(&p, init, &in, NULL), COMPONENT_OK);
	l.in = &in;
	l.per_thread = per_thread;
	l.calls = calloc((size_t)total, sizeof(*l.calls));
	tickets = calloc((size_t)total, sizeof(*tickets));
	ck_assert_ptr_nonnull(l.calls);
	ck_assert_ptr_nonnull(tickets);
	for (int i = 0; i < total; i++)
		atomic_init(&l.calls[i], 0);

	ck_assert_int_eq(pthread_create(&up, NULL, updater, &l), 0);
	for (int i = 0; i < PRODUCERS; i++) {
		pa[i].l = &l;
		pa[i].id = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, producer, &pa[i]), 0);
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	pthread_join(up, NULL);

	/* No deadlock: every accepted push completes within its deadline. */
	t0 = th_now_s();
	while (atomic_load(&l.done_total) < atomic_load(&l.accepted) && th_now_s() - t0 < 60)
		usleep(5000);
	ck_assert_int_eq(atomic_load(&l.refused), 0);
	ck_assert_int_eq(atomic_load(&l.accepted), total);
	ck_assert_int_eq(atomic_load(&l.done_total), total);
	for (int i = 0; i < total; i++)
		ck_assert_msg(atomic_load(&l.calls[i]) == 1, "push %d: %d callbacks", i,
			      atomic_load(&l.calls[i]));
	ck_assert_int_eq(atomic_load(&l.ok), total);
	ck_assert_int_eq(l.updates_ok, updates / 2);
	ck_assert_int_eq(l.updates_refused, updates / 2);
	/* Each profile was counted once, by whichever endpoint its delivery
	 * started with. */
	sent = th_metric(&in, "pyroscope_write_sent_profiles_total{endpoint=\"a\"}") +
	       th_metric(&in, "pyroscope_write_sent_profiles_total{endpoint=\"b\"}");
	ck_assert_double_eq(sent, total);
	ck_assert_int_eq(standin_count(sink), (size_t)total);
	/* The last update was refused: unhealthy, still running. */
	ck_assert_int_eq(p.d->health(in.inst, &h), COMPONENT_OK);
	ck_assert_int_eq(h.healthy, 0);
	ck_assert_ptr_nonnull(strstr(h.message, "still running the last valid one"));
	th_destroy(&in);
	/* Nothing fired after destroy. */
	for (int i = 0; i < total; i++)
		ck_assert_int_eq(atomic_load(&l.calls[i]), 1);
	free(l.calls);
	free(tickets);
	tickets = NULL;
	free(l.cfg_a);
	free(l.cfg_b);
	free(init);
	th_unload(&p);
}
END_TEST

/* ---- destroy with work under way ---- */

struct once {
	atomic_int calls;
	atomic_int status;
};

static void once_done(void *user, const struct pw_result *r)
{
	struct once *o = user;

	atomic_store(&o->status, r->status);
	atomic_fetch_add(&o->calls, 1);
}

/* Deliveries waiting in backoff, queued behind the connection bound and
 * stalled on the wire: destroy cancels them all within shutdown_timeout,
 * each callback exactly once, and leaves no thread or descriptor. */
START_TEST(destroy_with_work_under_way)
{
	struct standin_reply stall = {.status = 503, .delay_ms = 2000, .times = 4};
	struct th_plugin p;
	struct th_instance in;
	char *cfg = config_for("{\"shutdown_timeout\":\"300ms\",\"endpoint\":["
			       "{\"url\":\"{{A}}\",\"name\":\"stalled\",\"max_connections\":2},"
			       "{\"url\":\"http://127.0.0.1:1\",\"name\":\"backoff\","
			       "\"min_backoff_period\":\"30s\",\"max_backoff_period\":\"30s\"}]}");
	struct once o[6];
	struct pw_label lb[] = {{"service_name", "x"}};
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	struct pw_sample s = {prof, len, NULL};
	struct pw_push pp = {sizeof(pp), lb, 1, &s, 1};
	int threads0, fds0;
	double t0, dt;

	th_load(&p, NULL);
	threads0 = count_threads();
	fds0 = count_fds();
	standin_script(sink, STANDIN_ROUTE_PUSH, &stall);
	ck_assert_int_eq(th_create(&p, cfg, &in, NULL), COMPONENT_OK);
	for (int i = 0; i < 6; i++) {
		atomic_init(&o[i].calls, 0);
		atomic_init(&o[i].status, -1);
		ck_assert_int_eq(in.rx->push_async(in.rx->ctx, &pp, 0, once_done, &o[i]),
				 COMPONENT_OK);
	}
	ck_assert_int_eq(standin_wait(sink, 1, 5000), 0);
	usleep(100000);
	t0 = th_now_s();
	th_destroy(&in);
	dt = th_now_s() - t0;
	ck_assert_msg(dt < (th_under_valgrind() ? 5.0 : 1.5), "destroy took %.3fs", dt);
	for (int i = 0; i < 6; i++) {
		ck_assert_int_eq(atomic_load(&o[i].calls), 1);
		ck_assert_int_eq(atomic_load(&o[i].status), COMPONENT_ESHUTDOWN);
	}
	ck_assert(th_logs_contain("canceled: the component is shutting down"));
	ck_assert_int_le(settle(count_threads, threads0), threads0);
	ck_assert_int_le(settle(count_fds, fds0), fds0);
	th_unload(&p);
	free(cfg);
}
END_TEST

/* Destroying one instance leaves another of the same plugin working. */
START_TEST(instances_are_independent)
{
	struct th_plugin p;
	struct th_instance a, b;
	char *cfg = config_for("{\"endpoint\":[{\"url\":\"{{A}}\"}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);

	th_load(&p, NULL);
	ck_assert_int_eq(th_create(&p, cfg, &a, NULL), COMPONENT_OK);
	ck_assert_int_eq(th_create(&p, cfg, &b, NULL), COMPONENT_OK);
	ck_assert_ptr_ne(a.rx, b.rx);
	ck_assert_int_eq(th_push(&a, labels_basic, prof, len, 5000, NULL), COMPONENT_OK);
	th_destroy(&a);
	ck_assert_int_eq(th_push(&b, labels_basic, prof, len, 5000, NULL), COMPONENT_OK);
	th_destroy(&b);
	ck_assert_int_eq(standin_count(sink), 2);
	th_unload(&p);
	free(cfg);
}
END_TEST

static Suite *lifecycle_suite(void)
{
	Suite *s = suite_create("lifecycle");
	TCase *tc = tcase_create("lifecycle");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, create_destroy_cycles);
	tcase_add_test(tc, dlopen_dlclose_cycles);
	tcase_add_test(tc, many_instances_interleaved);
	tcase_add_test(tc, hot_reload_under_load);
	tcase_add_test(tc, destroy_with_work_under_way);
	tcase_add_test(tc, instances_are_independent);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(lifecycle_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
