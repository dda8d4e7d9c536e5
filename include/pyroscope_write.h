/*
 * pyroscope_write.h - the data types of the pyroscope.write component's
 * `receiver` export: what producers hand to the component.
 *
 * Obtain the receiver with the descriptor's get_export(inst, "receiver", &p)
 * and cast p to `const struct pw_receiver *`. It stays valid, with the same
 * address, from create() until destroy() returns, across any number of
 * update() calls; each delivery uses the configuration current when it was
 * submitted.
 *
 * Structs only grow at the end; callers set struct_size so an older caller
 * keeps working with a newer plugin. The plugin accepts any struct_size from
 * the end of a struct's first version on, and treats the fields beyond it as
 * absent (docs/abi.md, "Minimum sizes").
 */
#ifndef PYROSCOPE_WRITE_H
#define PYROSCOPE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PW_RECEIVER_EXPORT "receiver"
#define PW_RECEIVER_VERSION 3

/* No deadline: the delivery runs until every endpoint succeeds or gives up. */
#define PW_NO_DEADLINE INT64_C(0)

/* One label. Both strings are borrowed, NUL-terminated. */
struct pw_label {
	const char *name;
	const char *value;
};

/* One raw profile (normally gzip-compressed pprof) and its optional ID. */
struct pw_sample {
	const uint8_t *data; /* borrowed; len bytes */
	size_t len;
	const char *id; /* borrowed; NULL or "" for none */
};

/* pw_push.flags: push_async only. Every samples[i].data buffer stays valid
 * and unchanged until done has been called, so the component may send large
 * profiles straight from it instead of copying them first. (The blocking
 * push does this on its own: its caller waits anyway.) */
#define PW_PUSH_KEEP_UNTIL_DONE UINT32_C(0x1)

/* A push: one label set and its samples, sent as one series. */
struct pw_push {
	uint32_t struct_size; /* sizeof(struct pw_push) */
	const struct pw_label *labels;
	size_t nlabels;
	const struct pw_sample *samples;
	size_t nsamples;
	/* Added in receiver version 2; a caller whose struct_size ends before
	 * it gets 0. */
	uint32_t flags; /* PW_PUSH_* */
};

/* pw_ingest.flags: ingest_async only. The body stays valid and unchanged
 * until done has been called, so the component may send it from there
 * instead of copying it first. (The blocking ingest does this on its own.) */
#define PW_INGEST_KEEP_UNTIL_DONE UINT32_C(0x1)

/* An SDK request received on /ingest, to be forwarded. */
struct pw_ingest {
	uint32_t struct_size; /* sizeof(struct pw_ingest) */
	const char *path_query; /* e.g. "/ingest?name=app%7Benv%3Dx%7D&format=pprof" */
	const char *const *content_types; /* the incoming Content-Type values, in order */
	size_t ncontent_types;
	const uint8_t *body; /* borrowed; body_len bytes */
	size_t body_len;
	const struct pw_label *labels; /* parsed from `name`, see docs/abi.md */
	size_t nlabels;
	/* Added in receiver version 3; a caller whose struct_size ends before
	 * it gets 0. */
	uint32_t flags; /* PW_INGEST_* */
};

/*
 * Outcome of one delivery.
 * status:      COMPONENT_OK, or the component_status that explains the failure.
 * http_status: ingest only: the downstream HTTP status to hand back to the
 *              SDK (200 on success; on failure the status of the first failed
 *              endpoint that answered, or 0 when none answered). 0 for push.
 * error:       NULL on success, else the joined per-endpoint errors. In a
 *              callback it is borrowed for the duration of the callback; from
 *              a blocking call it is owned by the caller and freed with
 *              pw_receiver.free_result().
 */
struct pw_result {
	int status;
	int http_status;
	char *error;
};

/* Completion callback. Called exactly once per accepted asynchronous call,
 * from the component's I/O thread (or from the submitting thread when the
 * call fails before it is queued). It must not block for long and must not
 * call destroy(). `result` is borrowed for the call. */
typedef void (*pw_done_fn)(void *user, const struct pw_result *result);

/*
 * The receiver. All functions are thread-safe and may be called from any
 * number of threads, concurrently with update(). Input pointers are
 * borrowed for the duration of the call only: the component copies what it
 * needs before returning, in the asynchronous forms too.
 *
 * deadline_ns is an absolute CLOCK_MONOTONIC time in nanoseconds, or
 * PW_NO_DEADLINE. When it passes, retries stop and attempts in flight are
 * cancelled.
 */
struct pw_receiver {
	uint32_t struct_size; /* sizeof(struct pw_receiver) in the plugin */
	uint32_t version; /* PW_RECEIVER_VERSION */
	void *ctx; /* pass as the first argument of every call */

	/* Blocking push: returns when every endpoint has accepted the profile or
	 * given up. Returns result->status; result is filled either way. */
	int (*push)(void *ctx, const struct pw_push *push, int64_t deadline_ns,
		    struct pw_result *result);

	/* Callback push: returns COMPONENT_OK at once and calls done exactly
	 * once, normally later from the I/O thread, or before returning when
	 * the profile is refused before it is queued (invalid labels, the
	 * in-flight limit). Any other return value (NULL arguments, the
	 * instance shutting down) means done will not be called. */
	int (*push_async)(void *ctx, const struct pw_push *push, int64_t deadline_ns,
			  pw_done_fn done, void *user);

	/* Blocking ingest: same contract as push; result->http_status is the
	 * status to hand back to the SDK. */
	int (*ingest)(void *ctx, const struct pw_ingest *ingest, int64_t deadline_ns,
		      struct pw_result *result);

	/* Callback ingest: same contract as push_async. */
	int (*ingest_async)(void *ctx, const struct pw_ingest *ingest, int64_t deadline_ns,
			    pw_done_fn done, void *user);

	/* Frees result->error from a blocking call and resets it. Accepts NULL. */
	void (*free_result)(struct pw_result *result);
};

#ifdef __cplusplus
}
#endif

#endif /* PYROSCOPE_WRITE_H */
