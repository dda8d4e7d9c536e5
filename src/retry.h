/*
 * retry.h - what happens to a delivery after one attempt: classification of
 * outcomes, Connect error decoding, Retry-After, and the backoff arithmetic.
 * Everything here is pure and thread-safe.
 */
#ifndef PW_RETRY_H
#define PW_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Connect error codes, numbered as the protocol does. */
enum pw_code {
	PW_CODE_OK = 0,
	PW_CODE_CANCELED = 1,
	PW_CODE_UNKNOWN = 2,
	PW_CODE_INVALID_ARGUMENT = 3,
	PW_CODE_DEADLINE_EXCEEDED = 4,
	PW_CODE_NOT_FOUND = 5,
	PW_CODE_ALREADY_EXISTS = 6,
	PW_CODE_PERMISSION_DENIED = 7,
	PW_CODE_RESOURCE_EXHAUSTED = 8,
	PW_CODE_FAILED_PRECONDITION = 9,
	PW_CODE_ABORTED = 10,
	PW_CODE_OUT_OF_RANGE = 11,
	PW_CODE_UNIMPLEMENTED = 12,
	PW_CODE_INTERNAL = 13,
	PW_CODE_UNAVAILABLE = 14,
	PW_CODE_DATA_LOSS = 15,
	PW_CODE_UNAUTHENTICATED = 16
};

/* snake_case name ("resource_exhausted"); "unknown" for out-of-range. */
const char *pw_code_name(int code);
/* Parses a snake_case name; -1 when unknown. */
int pw_code_parse(const char *name);
/* Connect's fallback mapping from an HTTP status when no JSON code is usable. */
int pw_code_from_http(long http_status);

/* What happens to the delivery to one endpoint after an attempt. */
enum pw_verdict { PW_VERDICT_DELIVERED = 0, PW_VERDICT_RETRY = 1, PW_VERDICT_DROP = 2 };

/* Transport-level outcome of an attempt, independent of libcurl. */
enum pw_transport {
	PW_TRANSPORT_OK = 0, /* an HTTP response was received */
	PW_TRANSPORT_TIMEOUT = 1, /* the attempt's deadline passed */
	PW_TRANSPORT_CANCELED = 2, /* shut down */
	PW_TRANSPORT_ERROR = 3 /* DNS, connect, TLS, reset, malformed response... */
};

struct pw_attempt {
	enum pw_transport transport;
	const char *transport_error; /* text for PW_TRANSPORT_ERROR (may be NULL) */
	long http_status;
	const char *content_type; /* response Content-Type, NULL if absent */
	const char *content_encoding; /* response Content-Encoding, NULL if absent */
	const uint8_t *body;
	size_t body_len;
};

/*
 * Classifies a push attempt (Connect unary). On a failure stores a malloc'd
 * "<code>: <message>" in *err and the Connect code in *code (either may be
 * NULL). Gzip-encoded JSON error bodies are decoded.
 */
enum pw_verdict pw_classify_push(const struct pw_attempt *a, bool retry_on_429, int *code,
				 char **err);

/*
 * Classifies an ingest attempt: any 2xx delivers; 429 retries iff
 * retry_on_429; 408 and >= 500 retry; other statuses drop; transport errors
 * and timeouts retry. On failure stores a malloc'd
 * "remote error: pyroscope write error: status=<n> msg=<at most 2 KiB of body>"
 * (or the transport error text) in *err.
 */
enum pw_verdict pw_classify_ingest(const struct pw_attempt *a, bool retry_on_429, char **err);

/*
 * Parses a Retry-After value (delay-seconds or an IMF-fixdate HTTP-date)
 * relative to now_unix_s. Returns the delay in nanoseconds (> 0), or -1 when
 * the value is absent, unparsable, or not in the future.
 */
int64_t pw_retry_after_parse(const char *value, int64_t now_unix_s);

/* dskit-style backoff. */
struct pw_backoff {
	int64_t min_ns, max_ns;
	int64_t lo_ns, hi_ns;
	int64_t max_retries; /* 0 = unlimited */
	int64_t count; /* retryable failures so far */
};

void pw_backoff_init(struct pw_backoff *b, int64_t min_ns, int64_t max_ns, int64_t max_retries);

/*
 * Records one retryable failure and returns the delay before the next attempt
 * (rnd is a uniform random 64-bit number for the jitter), or -1 when no
 * attempt is left (count reached max_retries).
 */
int64_t pw_backoff_next(struct pw_backoff *b, uint64_t rnd);

#endif /* PW_RETRY_H */
