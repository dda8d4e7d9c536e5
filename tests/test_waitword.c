/*
 * test_waitword.c - the one-shot event blocking calls wait on, built both
 * ways (futex and the portable mutex and condition variable; see
 * tests/meson.build): each set wakes its waiter, and a result written
 * before set is seen after wait.
 */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>

#include "waitword.h"

#define WAITERS 64
#define ROUNDS 200
/* Valgrind runs threads one at a time: a few rounds prove the same. */
#define ROUNDS_VALGRIND 3

struct slot {
	struct pw_waitword w;
	int result; /* written before set, read after wait */
};

static void *setter(void *arg)
{
	struct slot *slots = arg;

	for (int i = 0; i < WAITERS; i++) {
		slots[i].result = i + 1;
		pw_waitword_set(&slots[i].w);
	}
	return NULL;
}

static void *waiter(void *arg)
{
	struct slot *sl = arg;

	pw_waitword_wait(&sl->w);
	return (void *)(intptr_t)sl->result;
}

/* Many waiters, one setter, repeated: nobody sleeps through its set. */
START_TEST(test_every_waiter_wakes)
{
	int rounds = getenv("PW_UNDER_VALGRIND") ? ROUNDS_VALGRIND : ROUNDS;

	for (int round = 0; round < rounds; round++) {
		struct slot slots[WAITERS];
		pthread_t w[WAITERS], st;

		for (int i = 0; i < WAITERS; i++) {
			pw_waitword_init(&slots[i].w);
			slots[i].result = 0;
			ck_assert_int_eq(pthread_create(&w[i], NULL, waiter, &slots[i]), 0);
		}
		ck_assert_int_eq(pthread_create(&st, NULL, setter, slots), 0);
		for (int i = 0; i < WAITERS; i++) {
			void *r;

			ck_assert_int_eq(pthread_join(w[i], &r), 0);
			ck_assert_int_eq((int)(intptr_t)r, i + 1);
		}
		pthread_join(st, NULL);
		for (int i = 0; i < WAITERS; i++)
			pw_waitword_destroy(&slots[i].w);
	}
}
END_TEST

/* Set before anyone waits: wait returns at once. */
START_TEST(test_set_before_wait)
{
	struct pw_waitword w;

	pw_waitword_init(&w);
	pw_waitword_set(&w);
	pw_waitword_wait(&w);
	pw_waitword_wait(&w);
	pw_waitword_destroy(&w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("waitword");
	TCase *tc = tcase_create("waitword");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_every_waiter_wakes);
	tcase_add_test(tc, test_set_before_wait);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
