/*
 * test_timerheap.c - the I/O loop's timer heap: order of expiry, removal
 * from anywhere, ties, and the tree's shape, with thousands of timers.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "timerheap.h"

#define N 5000

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* (Each ck_assert costs a system call: the loops below count faults and
 * assert once.) */

static bool in_order(const struct pw_timer *a, const struct pw_timer *b)
{
	return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

/* Counts the nodes under t; *bad counts broken links and order. */
static size_t check_node(const struct pw_timer *t, const struct pw_timer *parent, size_t *bad)
{
	if (!t)
		return 0;
	if (t->parent != parent || !t->armed || (parent && !in_order(parent, t)))
		(*bad)++;
	return 1 + check_node(t->left, t, bad) + check_node(t->right, t, bad);
}

/* Checks every link, the heap order and the node count of h. */
static void check_heap(const struct pw_timerheap *h)
{
	size_t bad = 0;

	ck_assert_uint_eq(check_node(h->min, NULL, &bad), h->n);
	ck_assert_uint_eq(bad, 0);
}

/* Pops everything and checks it comes out in (due, insertion) order;
 * returns how many came out. */
static size_t drain_sorted(struct pw_timerheap *h)
{
	struct pw_timer *t, *prev = NULL;
	size_t n = 0, bad = 0;

	while ((t = pw_timerheap_pop_due(h, INT64_MAX))) {
		if (t->armed || (prev && !in_order(prev, t)))
			bad++;
		prev = t;
		n++;
	}
	ck_assert_uint_eq(bad, 0);
	ck_assert_ptr_null(pw_timerheap_min(h));
	ck_assert_uint_eq(h->n, 0);
	return n;
}

START_TEST(test_pop_order)
{
	static struct pw_timer tm[N];
	struct pw_timerheap h;

	rng_state = 0x9e3779b97f4a7c15ULL;
	pw_timerheap_init(&h);
	for (size_t i = 0; i < N; i++) {
		/* Few distinct times, so there are many ties. */
		pw_timerheap_add(&h, &tm[i], (int64_t)(rnd() % 1000));
		if (i % 500 == 0)
			check_heap(&h);
	}
	check_heap(&h);
	ck_assert_uint_eq(drain_sorted(&h), N);
}
END_TEST

/* Equal due times come out in the order they went in. */
START_TEST(test_ties_fifo)
{
	static struct pw_timer tm[N];
	struct pw_timerheap h;
	size_t bad = 0;

	pw_timerheap_init(&h);
	for (size_t i = 0; i < N; i++)
		pw_timerheap_add(&h, &tm[i], 42);
	for (size_t i = 0; i < N; i++)
		bad += pw_timerheap_pop_due(&h, 42) != &tm[i];
	ck_assert_uint_eq(bad, 0);
	ck_assert_ptr_null(pw_timerheap_pop_due(&h, 42));
}
END_TEST

/* Removing from anywhere (root, last node, inside) keeps a valid heap
 * holding exactly what was not removed. */
START_TEST(test_remove_anywhere)
{
	static struct pw_timer tm[N];
	struct pw_timerheap h;
	size_t left = N;

	rng_state = 12345;
	pw_timerheap_init(&h);
	for (size_t i = 0; i < N; i++)
		pw_timerheap_add(&h, &tm[i], (int64_t)(rnd() % 100000));
	for (size_t i = 0; i < N; i += 2) {
		pw_timerheap_remove(&h, &tm[(i * 7919) % N]);
		left--;
	}
	/* The root and whatever is first now. */
	for (int k = 0; k < 10; k++) {
		struct pw_timer *min = pw_timerheap_min(&h);

		pw_timerheap_remove(&h, min);
		ck_assert(!min->armed);
		left--;
	}
	/* Removing what is not on the heap changes nothing. */
	pw_timerheap_remove(&h, &tm[0]);
	check_heap(&h);
	ck_assert_uint_eq(h.n, left);
	ck_assert_uint_eq(drain_sorted(&h), left);
}
END_TEST

/* pop_due stops at `now`; min says what is next. */
START_TEST(test_pop_due)
{
	static struct pw_timer tm[N];
	struct pw_timerheap h;
	size_t fired = 0, bad = 0;
	int64_t now;

	pw_timerheap_init(&h);
	/* Due at 0, 10, ..., in a shuffled order. */
	for (size_t i = 0; i < N; i++)
		pw_timerheap_add(&h, &tm[i], (int64_t)((i * 7919) % N) * 10);
	for (now = 0; fired < N; now += 1000) {
		struct pw_timer *t;

		while ((t = pw_timerheap_pop_due(&h, now))) {
			bad += t->due_ns > now || t->due_ns <= now - 1000;
			fired++;
		}
		bad += fired < N && pw_timerheap_min(&h)->due_ns <= now;
	}
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_eq(fired, N);
	ck_assert_int_eq(now, (int64_t)N * 10 + 1000);
}
END_TEST

/* As the loop uses it: timers added and removed while others fire, the
 * same node re-armed many times; checked against a plain array. */
START_TEST(test_mixed_against_model)
{
	static struct pw_timer tm[2000];
	static int64_t due[2000];
	struct pw_timerheap h;
	size_t n = sizeof(tm) / sizeof(tm[0]), bad = 0, fired = 0;
	int64_t now = 0;

	rng_state = 777;
	pw_timerheap_init(&h);
	memset(due, -1, sizeof(due));
	for (int step = 0; step < 50000; step++) {
		size_t i = rnd() % n;
		unsigned op = (unsigned)(rnd() % 4);

		if (op < 2 && !tm[i].armed) {
			due[i] = now + (int64_t)(rnd() % 5000);
			pw_timerheap_add(&h, &tm[i], due[i]);
		} else if (op == 2 && tm[i].armed) {
			pw_timerheap_remove(&h, &tm[i]);
			due[i] = -1;
		} else if (op == 3) {
			struct pw_timer *t;
			int64_t least = INT64_MAX;

			now += 50;
			while ((t = pw_timerheap_pop_due(&h, now))) {
				size_t k = (size_t)(t - tm);

				bad += due[k] != t->due_ns;
				due[k] = -1;
				fired++;
			}
			for (size_t k = 0; k < n; k++) {
				bad += due[k] >= 0 && due[k] <= now;
				if (due[k] >= 0 && due[k] < least)
					least = due[k];
			}
			bad += (pw_timerheap_min(&h) ? pw_timerheap_min(&h)->due_ns : INT64_MAX) !=
			       least;
		}
	}
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_gt(fired, 1000);
	check_heap(&h);
}
END_TEST

static Suite *timerheap_suite(void)
{
	Suite *s = suite_create("timerheap");
	TCase *tc = tcase_create("heap");

	tcase_add_test(tc, test_pop_order);
	tcase_add_test(tc, test_ties_fifo);
	tcase_add_test(tc, test_remove_anywhere);
	tcase_add_test(tc, test_pop_due);
	tcase_add_test(tc, test_mixed_against_model);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(timerheap_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
