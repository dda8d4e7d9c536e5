/*
 * util/clock.h - the two clocks the project reads.
 */
#ifndef PW_UTIL_CLOCK_H
#define PW_UTIL_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds: deadlines, timers, rates. */
int64_t pwx_now_ns(void);
/* CLOCK_REALTIME in milliseconds since the epoch: what is shown to people. */
int64_t pwx_wall_ms(void);

#endif /* PW_UTIL_CLOCK_H */
