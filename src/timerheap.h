/*
 * timerheap.h - a binary min-heap of timers keyed by due time, with the
 * nodes inside the objects that wait (no allocation, so adding a timer
 * cannot fail). Insert, remove and pop are O(log n). Timers due at the
 * same time come out in the order they were added.
 *
 * Layer: leaf; calls nothing. Not thread-safe: one owner (the I/O thread).
 */
#ifndef PW_TIMERHEAP_H
#define PW_TIMERHEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pw_timer {
	struct pw_timer *left, *right, *parent;
	int64_t due_ns;
	uint64_t seq; /* insertion order, for ties */
	bool armed; /* on a heap */
};

struct pw_timerheap {
	struct pw_timer *min;
	size_t n;
	uint64_t next_seq;
};

/* Empties h (forgetting any timers on it). */
void pw_timerheap_init(struct pw_timerheap *h);
/* Adds t, due at due_ns. t must not be armed. */
void pw_timerheap_add(struct pw_timerheap *h, struct pw_timer *t, int64_t due_ns);
/* Takes t off h; does nothing when t is not armed. */
void pw_timerheap_remove(struct pw_timerheap *h, struct pw_timer *t);
/* The timer due first, or NULL when h is empty. */
struct pw_timer *pw_timerheap_min(const struct pw_timerheap *h);
/* Takes off and returns the first timer due at or before now, or NULL. */
struct pw_timer *pw_timerheap_pop_due(struct pw_timerheap *h, int64_t now);

#endif /* PW_TIMERHEAP_H */
