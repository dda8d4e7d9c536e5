/*
 * handoff.h - where the producer side leaves deliveries for the I/O loop:
 * an incoming list under a lock, and a wake callback the loop registers.
 * Producers put; the loop takes the whole list at once. A durable queue
 * would sit between the producers and this. Internal to the plugin.
 *
 * Layer: engine, above the delivery object; below the producer side
 * (submit.c) and the I/O loop (sender.c), which talk only through it.
 */
#ifndef PW_HANDOFF_H
#define PW_HANDOFF_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "delivery.h"

struct pw_handoff {
	pthread_mutex_t lock; /* guards everything below */
	struct delivery *head, *tail;
	/* A producer has woken the loop for what is on the list. */
	bool woken;
	bool stopping;
	int64_t drain_deadline_ns;
	void (*wake)(void *arg); /* wakes the loop; any thread */
	void *wake_arg;
};

void pw_handoff_init(struct pw_handoff *h, void (*wake)(void *arg), void *wake_arg);
void pw_handoff_destroy(struct pw_handoff *h);

/* Queues d for the loop, waking it when needed. COMPONENT_OK, or
 * COMPONENT_ESHUTDOWN once stopping (d is then still the caller's). Any
 * thread. */
int pw_handoff_put(struct pw_handoff *h, struct delivery *d);
/* Takes the whole list (linked through next), oldest first. Loop only. */
struct delivery *pw_handoff_take(struct pw_handoff *h);
/* Refuses further puts and asks the loop to finish by drain_deadline_ns. */
void pw_handoff_stop(struct pw_handoff *h, int64_t drain_deadline_ns);

struct pw_handoff_state {
	bool stopping;
	int64_t drain_deadline_ns;
	bool pending; /* the list is not empty */
};
/* One consistent look at the handoff, for the loop. */
struct pw_handoff_state pw_handoff_state(struct pw_handoff *h);

#endif /* PW_HANDOFF_H */
