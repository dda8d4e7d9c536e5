/*
 * waitword.c - a one-shot event: a futex word on Linux, a mutex and
 * condition variable elsewhere. Layer: leaf; calls only the C library
 * and the kernel.
 *
 * Why a futex where there is one: a condition variable signalled under
 * its mutex wakes the waiter only for it to block again on that mutex,
 * two context switches per profile with many blocked callers.
 */
#include "waitword.h"

#ifdef PW_WAITWORD_FUTEX
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

void pw_waitword_init(struct pw_waitword *w)
{
	atomic_init(&w->set, 0);
}

void pw_waitword_destroy(struct pw_waitword *w)
{
	(void)w;
}

void pw_waitword_set(struct pw_waitword *w)
{
	atomic_store_explicit(&w->set, 1, memory_order_release);
	/* FUTEX_WAKE reads nothing at the address: if the waiter has seen
	 * the word and gone, this wakes nobody. */
	syscall(SYS_futex, &w->set, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void pw_waitword_wait(struct pw_waitword *w)
{
	/* Spurious returns (EINTR, EAGAIN when the word changed first) just
	 * check the word again. */
	while (atomic_load_explicit(&w->set, memory_order_acquire) == 0)
		syscall(SYS_futex, &w->set, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

#else

void pw_waitword_init(struct pw_waitword *w)
{
	atomic_init(&w->set, 0);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
}

void pw_waitword_destroy(struct pw_waitword *w)
{
	/* The setter may still hold the lock after the waiter has seen the
	 * word: wait for it to let go before the memory goes. */
	pthread_mutex_lock(&w->lock);
	pthread_mutex_unlock(&w->lock);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}

void pw_waitword_set(struct pw_waitword *w)
{
	pthread_mutex_lock(&w->lock);
	atomic_store_explicit(&w->set, 1, memory_order_release);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void pw_waitword_wait(struct pw_waitword *w)
{
	pthread_mutex_lock(&w->lock);
	while (atomic_load_explicit(&w->set, memory_order_acquire) == 0)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

#endif
