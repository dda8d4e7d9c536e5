/*
 * climit.h - how many requests an endpoint gets at once.
 *
 * max_connections is the most requests the engine ever has under way to one
 * endpoint. Inside that bound the engine only uses as many as make the
 * endpoint faster. It tracks the lowest latency seen recently (the
 * endpoint's latency with nothing queued) against the recent average: when
 * the average stays close to the floor, requests are not queueing anywhere
 * and one more may raise throughput; when the average climbs well above it,
 * the extra requests only wait (in the server, the network or this
 * process's CPU) and hold buffers and connections for nothing, so the limit
 * comes down. This is the delay-based scheme TCP Vegas uses for its window:
 * estimated queue = limit x (1 - lowest / average), grown by one per round
 * trip while the queue is short, shrunk twice as fast while it is long.
 *
 * The limit never goes below PW_CLIMIT_FLOOR (or max_connections when that
 * is lower): an endpoint always gets that many requests when it has work.
 */
#ifndef PW_CLIMIT_H
#define PW_CLIMIT_H

#include <stdint.h>

/* Requests an endpoint always gets when it has work. */
#define PW_CLIMIT_FLOOR 8
/* Estimated queued requests below which the limit grows, above which it
 * shrinks. */
#define PW_CLIMIT_ALPHA 3.0
#define PW_CLIMIT_BETA 6.0
/* The lowest latency is taken over the last one to two windows, so it can
 * rise again when the path to the endpoint gets slower for good. */
#define PW_CLIMIT_WINDOW_NS (10 * INT64_C(1000000000))

/* No growth before this many answers: the lowest latency is not known
 * yet, and under load the first answers all look slow. */
#define PW_CLIMIT_WARMUP 1000

struct pw_climit {
	double limit;
	int floor, cap;
	uint64_t samples;
	int64_t prev_min_ns, cur_min_ns; /* lowest latency, last and this window */
	int64_t window_start_ns;
	double avg_ns; /* moving average of the latency */
};

/* cap: max_connections (at least 1). */
void pw_climit_init(struct pw_climit *c, int cap);

/* The number of requests the endpoint may have under way now. */
int pw_climit_get(const struct pw_climit *c);

/*
 * One successful request took latency_ns, ending at now_ns, while
 * inflight requests (this one included) were under way to the endpoint.
 * The limit only grows when the endpoint was using all of it.
 */
void pw_climit_sample(struct pw_climit *c, int64_t now_ns, int64_t latency_ns, int inflight);

#endif /* PW_CLIMIT_H */
