/*
 * handoff.c - the incoming list between the producer side and the I/O
 * loop. Layer: engine, above the delivery object (reads only its tasks'
 * endpoints); calls nothing of the producer side or the loop except the
 * wake callback the loop registered.
 */
#include "handoff.h"

#include <stdatomic.h>

#include "pyroscope_write.h"

void pw_handoff_init(struct pw_handoff *h, void (*wake)(void *arg), void *wake_arg)
{
	pthread_mutex_init(&h->lock, NULL);
	h->head = h->tail = NULL;
	h->woken = false;
	h->stopping = false;
	h->drain_deadline_ns = 0;
	h->wake = wake;
	h->wake_arg = wake_arg;
}

void pw_handoff_destroy(struct pw_handoff *h)
{
	pthread_mutex_destroy(&h->lock);
}

/*
 * One wakeup covers the whole incoming list, since the loop takes it at
 * once: later deliveries ride on it instead of costing a syscall each. Nor
 * is a wakeup needed while every endpoint of the delivery already runs as
 * many requests as it may: the delivery could only queue, and the end of
 * one of those requests runs the loop, which takes the list then. The loop
 * checks the list under the lock after publishing `full` and before it
 * sleeps, so a delivery it misses here sees `full` as it is.
 */
static bool needs_wake_locked(const struct pw_handoff *h, const struct delivery *d)
{
	bool wake;

	if (h->woken)
		return false;
	wake = d->ntasks == 0;
	for (size_t i = 0; i < d->ntasks && !wake; i++)
		wake = !atomic_load(&d->tasks[i].ep->full);
	return wake;
}

int pw_handoff_put(struct pw_handoff *h, struct delivery *d)
{
	bool wake;

	pthread_mutex_lock(&h->lock);
	if (h->stopping) {
		pthread_mutex_unlock(&h->lock);
		return COMPONENT_ESHUTDOWN;
	}
	d->next = NULL;
	wake = needs_wake_locked(h, d);
	if (wake)
		h->woken = true;
	if (h->tail)
		h->tail->next = d;
	else
		h->head = d;
	h->tail = d;
	pthread_mutex_unlock(&h->lock);
	if (wake)
		h->wake(h->wake_arg);
	return COMPONENT_OK;
}

struct delivery *pw_handoff_take(struct pw_handoff *h)
{
	struct delivery *list;

	pthread_mutex_lock(&h->lock);
	list = h->head;
	h->head = h->tail = NULL;
	h->woken = false;
	pthread_mutex_unlock(&h->lock);
	return list;
}

void pw_handoff_stop(struct pw_handoff *h, int64_t drain_deadline_ns)
{
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	h->drain_deadline_ns = drain_deadline_ns;
	pthread_mutex_unlock(&h->lock);
	h->wake(h->wake_arg);
}

struct pw_handoff_state pw_handoff_state(struct pw_handoff *h)
{
	struct pw_handoff_state st;

	pthread_mutex_lock(&h->lock);
	st.stopping = h->stopping;
	st.drain_deadline_ns = h->drain_deadline_ns;
	st.pending = h->head != NULL;
	pthread_mutex_unlock(&h->lock);
	return st;
}
