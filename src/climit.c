/*
 * climit.c - delay-based concurrency limit of an endpoint (see climit.h).
 */
#include "climit.h"

void pw_climit_init(struct pw_climit *c, int cap)
{
	if (cap < 1)
		cap = 1;
	c->cap = cap;
	c->floor = cap < PW_CLIMIT_FLOOR ? cap : PW_CLIMIT_FLOOR;
	c->limit = c->floor;
	c->samples = 0;
	c->prev_min_ns = c->cur_min_ns = 0;
	c->window_start_ns = 0;
	c->avg_ns = 0;
}

int pw_climit_get(const struct pw_climit *c)
{
	return (int)c->limit;
}

void pw_climit_sample(struct pw_climit *c, int64_t now_ns, int64_t latency_ns, int inflight)
{
	int64_t lowest;
	double queue;

	if (c->floor >= c->cap)
		return; /* nothing to adapt */
	if (latency_ns < 1)
		latency_ns = 1;
	if (!c->window_start_ns) {
		c->window_start_ns = now_ns;
	} else if (now_ns - c->window_start_ns >= PW_CLIMIT_WINDOW_NS) {
		c->prev_min_ns = c->cur_min_ns;
		c->cur_min_ns = 0;
		c->window_start_ns = now_ns;
	}
	if (!c->cur_min_ns || latency_ns < c->cur_min_ns)
		c->cur_min_ns = latency_ns;
	lowest = c->cur_min_ns;
	if (c->prev_min_ns && c->prev_min_ns < lowest)
		lowest = c->prev_min_ns;
	/* An average over roughly the last eight requests. */
	if (c->avg_ns <= 0)
		c->avg_ns = (double)latency_ns;
	else
		c->avg_ns += ((double)latency_ns - c->avg_ns) / 8.0;

	queue = c->avg_ns > (double)lowest ? c->limit * (1.0 - (double)lowest / c->avg_ns) : 0.0;
	/* One step of 1/limit per request is one request per round trip. */
	c->samples++;
	if (queue > PW_CLIMIT_BETA)
		c->limit -= 2.0 / c->limit;
	else if (queue < PW_CLIMIT_ALPHA && inflight >= (int)c->limit &&
		 c->samples > PW_CLIMIT_WARMUP)
		c->limit += 1.0 / c->limit;
	if (c->limit < c->floor)
		c->limit = c->floor;
	if (c->limit > c->cap)
		c->limit = c->cap;
}
