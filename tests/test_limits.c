/*
 * test_limits.c - the per-endpoint concurrency limit and the payload
 * buffer cache.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bufcache.h"
#include "climit.h"

#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)

/* Feeds n requests of the given latency, each ending 1 ms after the last,
 * with the endpoint using its whole limit when saturated is set. */
static int64_t feed(struct pw_climit *c, int64_t now, int n, int64_t latency, int saturated)
{
	for (int i = 0; i < n; i++) {
		now += MS;
		pw_climit_sample(c, now, latency,
				 saturated ? pw_climit_get(c) : pw_climit_get(c) / 2);
	}
	return now;
}

START_TEST(test_climit_start)
{
	struct pw_climit c;

	pw_climit_init(&c, 32);
	ck_assert_int_eq(pw_climit_get(&c), PW_CLIMIT_FLOOR);
	pw_climit_init(&c, 4);
	ck_assert_int_eq(pw_climit_get(&c), 4);
	/* A bound at or under the floor is used as it is, whatever happens. */
	feed(&c, SEC, 1000, 50 * MS, 1);
	ck_assert_int_eq(pw_climit_get(&c), 4);
	pw_climit_init(&c, 0);
	ck_assert_int_eq(pw_climit_get(&c), 1);
}
END_TEST

/* Latency that does not grow with concurrency (a distant server with room
 * to spare): the limit climbs to max_connections. */
START_TEST(test_climit_grows_to_cap)
{
	struct pw_climit c;
	int64_t now = SEC;

	pw_climit_init(&c, 32);
	/* Not before the lowest latency is known. */
	now = feed(&c, now, PW_CLIMIT_WARMUP, 40 * MS, 1);
	ck_assert_int_eq(pw_climit_get(&c), PW_CLIMIT_FLOOR);
	now = feed(&c, now, 200, 40 * MS, 1);
	ck_assert_int_gt(pw_climit_get(&c), PW_CLIMIT_FLOOR);
	feed(&c, now, 2000, 40 * MS, 1);
	ck_assert_int_eq(pw_climit_get(&c), 32);
}
END_TEST

/* An endpoint that does not use its limit gets no more. */
START_TEST(test_climit_no_growth_without_demand)
{
	struct pw_climit c;

	pw_climit_init(&c, 32);
	feed(&c, SEC, 2000, 40 * MS, 0);
	ck_assert_int_eq(pw_climit_get(&c), PW_CLIMIT_FLOOR);
}
END_TEST

/* Requests that queue: latency proportional to the number under way. The
 * limit comes back down to where about ALPHA..BETA requests wait: with a
 * lowest latency of 10 ms and L ms at L under way, L - 10 in [3, 6]. */
START_TEST(test_climit_shrinks_when_queueing)
{
	struct pw_climit c;
	int64_t now = SEC;

	pw_climit_init(&c, 64);
	/* First let it climb with flat latency. */
	now = feed(&c, now, 3000, 10 * MS, 1);
	ck_assert_int_ge(pw_climit_get(&c), 40);
	/* Now each request costs 1 ms per request under way. */
	for (int i = 0; i < 5000; i++) {
		int l = pw_climit_get(&c);

		now += MS;
		pw_climit_sample(&c, now, (int64_t)l * MS, l);
	}
	ck_assert_int_ge(pw_climit_get(&c), 13);
	ck_assert_int_le(pw_climit_get(&c), 16);
	/* Much worse queueing (10 ms per request): down to the floor. */
	for (int i = 0; i < 5000; i++) {
		int l = pw_climit_get(&c);

		now += MS;
		pw_climit_sample(&c, now, (int64_t)l * 10 * MS, l);
	}
	ck_assert_int_eq(pw_climit_get(&c), PW_CLIMIT_FLOOR);
}
END_TEST

/* The lowest latency is forgotten after two windows: a path that became
 * slower for good is its new normal, and the limit can grow again. */
START_TEST(test_climit_window)
{
	struct pw_climit c;
	int64_t now = SEC;

	pw_climit_init(&c, 32);
	pw_climit_sample(&c, now, 1 * MS, 8); /* one very fast answer */
	/* 10x slower from then on: looks like queueing, no growth. */
	now = feed(&c, now, 500, 10 * MS, 1);
	ck_assert_int_eq(pw_climit_get(&c), PW_CLIMIT_FLOOR);
	/* Two windows later the fast answer no longer counts. */
	now += 2 * PW_CLIMIT_WINDOW_NS;
	now = feed(&c, now, 10, 10 * MS, 1);
	now += PW_CLIMIT_WINDOW_NS;
	feed(&c, now, 3000, 10 * MS, 1);
	ck_assert_int_eq(pw_climit_get(&c), 32);
}
END_TEST

/* Whatever the samples, the limit stays within [floor, cap]. */
START_TEST(test_climit_bounds)
{
	struct pw_climit c;
	int64_t now = SEC;
	uint64_t x = 88172645463325252ULL;

	pw_climit_init(&c, 20);
	for (int i = 0; i < 100000; i++) {
		int64_t lat;
		int l;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		lat = (int64_t)(x % (200 * MS)) - MS; /* includes zero and negative */
		now += (int64_t)(x % (3 * SEC));
		pw_climit_sample(&c, now, lat, (int)(x % 40));
		l = pw_climit_get(&c);
		ck_assert_int_ge(l, PW_CLIMIT_FLOOR);
		ck_assert_int_le(l, 20);
	}
}
END_TEST

START_TEST(test_bufcache_reuse)
{
	struct pw_bufcache c;
	size_t cap, cap2;
	void *a, *b;

	pw_bufcache_init(&c);
	a = pw_bufcache_get(&c, 100000, &cap);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_ge(cap, 100000);
	memset(a, 0xab, cap);
	pw_bufcache_put(&c, a, cap);
	/* Same size again: the same buffer. */
	b = pw_bufcache_get(&c, 100000, &cap2);
	ck_assert_ptr_eq(a, b);
	ck_assert_uint_eq(cap, cap2);
	pw_bufcache_put(&c, b, cap2);
	/* Much smaller: not worth the buffer, a new one. */
	b = pw_bufcache_get(&c, 50000, &cap2);
	ck_assert_ptr_ne(a, b);
	ck_assert_uint_ge(cap2, 50000);
	pw_bufcache_put(&c, b, cap2);
	ck_assert_uint_eq(c.count, 2);
	pw_bufcache_trim(&c);
	ck_assert_uint_eq(c.count, 0);
	ck_assert_uint_eq(c.bytes, 0);
	pw_bufcache_destroy(&c);
}
END_TEST

START_TEST(test_bufcache_bounds)
{
	struct pw_bufcache c;
	void *bufs[PW_BUFCACHE_MAX_BUFS + 4];
	size_t caps[PW_BUFCACHE_MAX_BUFS + 4];
	size_t cap;
	void *small;

	pw_bufcache_init(&c);
	/* Small buffers are never kept. */
	small = pw_bufcache_get(&c, 100, &cap);
	ck_assert_ptr_nonnull(small);
	ck_assert_uint_eq(cap, 100);
	pw_bufcache_put(&c, small, cap);
	ck_assert_uint_eq(c.count, 0);
	/* No more than the buffer and byte bounds. */
	for (int i = 0; i < PW_BUFCACHE_MAX_BUFS + 4; i++)
		bufs[i] = pw_bufcache_get(&c, 64 * 1024, &caps[i]);
	for (int i = 0; i < PW_BUFCACHE_MAX_BUFS + 4; i++)
		pw_bufcache_put(&c, bufs[i], caps[i]);
	ck_assert_uint_eq(c.count, PW_BUFCACHE_MAX_BUFS);
	ck_assert_uint_le(c.bytes, PW_BUFCACHE_MAX_BYTES);
	pw_bufcache_trim(&c);
	for (int i = 0; i < 3; i++)
		bufs[i] = pw_bufcache_get(&c, 7 * 1024 * 1024, &caps[i]);
	for (int i = 0; i < 3; i++)
		pw_bufcache_put(&c, bufs[i], caps[i]);
	ck_assert_uint_le(c.bytes, PW_BUFCACHE_MAX_BYTES);
	ck_assert_uint_eq(c.count, 2);
	pw_bufcache_put(&c, NULL, 0);
	pw_bufcache_destroy(&c);
}
END_TEST

static Suite *limits_suite(void)
{
	Suite *s = suite_create("limits");
	TCase *tc = tcase_create("climit");

	tcase_add_test(tc, test_climit_start);
	tcase_add_test(tc, test_climit_grows_to_cap);
	tcase_add_test(tc, test_climit_no_growth_without_demand);
	tcase_add_test(tc, test_climit_shrinks_when_queueing);
	tcase_add_test(tc, test_climit_window);
	tcase_add_test(tc, test_climit_bounds);
	suite_add_tcase(s, tc);

	tc = tcase_create("bufcache");
	tcase_add_test(tc, test_bufcache_reuse);
	tcase_add_test(tc, test_bufcache_bounds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(limits_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
