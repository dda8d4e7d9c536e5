/*
 * engine.h - the engine instance that the producer side (submit.c) and
 * the I/O loop (sender.c) share. Internal to the plugin.
 *
 * The engine's layers, bottom to top; a file calls only files below it:
 *   leaves     util/clock.c, timerheap.c, waitword.c (and auth, http, metrics,
 *              climit, bufcache, retry, proto, labels outside the engine)
 *   endpoint.c endpoints and snapshots
 *   delivery.c the delivery object and the max_inflight_bytes budget
 *   handoff.c  the incoming list and the loop's wake callback
 *   submit.c   the producer side: check, encode, reserve, hand off
 *   sender.c   the I/O loop: takes the incoming list, runs the transfers
 * submit.c and sender.c sit side by side and never call each other.
 * plugin.c, above them all, uses sender.h and submit.h.
 *
 * Declares no functions: each lives in its own file's header.
 */
#ifndef PW_ENGINE_H
#define PW_ENGINE_H

#include "delivery.h"
#include "endpoint.h"
#include "handoff.h"
#include "log.h"
#include "metrics.h"

struct pw_sender {
	/* Set up by pw_sender_new(), then read-only: both sides. */
	struct pw_identity id;
	struct pw_logger log;
	struct pw_metrics *metrics;
	char *user_agent;
	char *instance_id;

	/* Both sides, each with its own locking. */
	struct pw_handoff in; /* producer -> loop */
	struct pw_budget budget; /* max_inflight_bytes, payload buffers */
	struct pw_lograte refused_log; /* producers: debug lines about refused profiles */

	/* The I/O loop's own state: private to sender.c. */
	struct pw_loop *loop;
};

#endif /* PW_ENGINE_H */
