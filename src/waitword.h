/*
 * waitword.h - a one-shot event one thread waits for and another sets:
 * the blocking push and ingest calls wait on one each for their result.
 * On Linux it is a futex word; elsewhere (or built with
 * -DPW_WAITWORD_PORTABLE) a mutex and condition variable.
 *
 * Layer: leaf; calls only the C library and the kernel.
 */
#ifndef PW_WAITWORD_H
#define PW_WAITWORD_H

#include <stdatomic.h>
#include <stdint.h>

#if defined(__linux__) && !defined(PW_WAITWORD_PORTABLE)
#define PW_WAITWORD_FUTEX 1
#else
#include <pthread.h>
#endif

struct pw_waitword {
	_Atomic uint32_t set;
#ifndef PW_WAITWORD_FUTEX
	pthread_mutex_t lock;
	pthread_cond_t cond;
#endif
};

void pw_waitword_init(struct pw_waitword *w);
/* Releases what init set up; call once nobody waits or sets any more. */
void pw_waitword_destroy(struct pw_waitword *w);
/*
 * Sets the event (release order: writes before it are seen by the waiter
 * once it returns) and wakes the waiter. With the futex the waiter may
 * return, and free w, before this call ends: the wake only uses w's
 * address as a key. The portable version holds w's lock until the end, so
 * there the waiter's destroy() waits for it.
 */
void pw_waitword_set(struct pw_waitword *w);
/* Blocks until the event is set. */
void pw_waitword_wait(struct pw_waitword *w);

#endif /* PW_WAITWORD_H */
