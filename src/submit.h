/*
 * submit.h - the producer side of the engine: checks and encodes a profile
 * once, reserves its bytes and hands the delivery to the I/O loop.
 * Layer: engine, beside the I/O loop (sender.c), which it never calls.
 */
#ifndef PW_SUBMIT_H
#define PW_SUBMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "pyroscope_write.h"

struct pw_sender;
struct pw_snapshot;
struct pw_qfeed;

/*
 * Submits a delivery on `snap`. With qf (a queue block), the profile is
 * written to the queue instead and done is called once it is durable. Returns COMPONENT_OK when done will be
 * called exactly once (possibly before this returns, e.g. for invalid
 * labels); any other status means it will not be called.
 * keep: the samples' data (the ingest body) stays valid until done is
 * called (large ones are then sent from it rather than copied).
 * Thread-safe.
 */
int pw_sender_push(struct pw_sender *s, struct pw_snapshot *snap, struct pw_qfeed *qf,
		   const struct pw_push *p, bool keep, int64_t deadline_ns, pw_done_fn done,
		   void *user);
int pw_sender_ingest(struct pw_sender *s, struct pw_snapshot *snap, struct pw_qfeed *qf,
		     const struct pw_ingest *in, bool keep, int64_t deadline_ns, pw_done_fn done,
		     void *user);

#endif /* PW_SUBMIT_H */
