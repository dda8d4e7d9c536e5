/*
 * clock.h - the engine's clocks. Layer: leaf (calls only the C library).
 */
#ifndef PW_CLOCK_H
#define PW_CLOCK_H

#include <stdint.h>

/* Monotonic time in nanoseconds: for deadlines, timers and durations. */
int64_t pw_now_ns(void);
/* Wall-clock time in milliseconds since the Unix epoch: for what is shown
 * (metrics, the debug view). */
int64_t pw_wall_ms(void);

#endif /* PW_CLOCK_H */
