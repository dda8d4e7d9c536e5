/*
 * log.h - structured logging through the host's logger.
 */
#ifndef PW_LOG_H
#define PW_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "component_abi.h"

struct pw_logger {
	void (*fn)(void *user, enum component_log_level level, const char *msg,
		   const struct component_log_field *fields, size_t nfields);
	void *user;
	enum component_log_level level;
};

/* Ends the key/value list of pw_log(); a typed null pointer, as variadic
 * functions need. */
#define PW_LOG_END ((const char *)NULL)

/* Logs msg with key/value string pairs terminated by PW_LOG_END. Values may
 * be NULL (the field is left out). Never pass a secret. Thread-safe if the host's
 * logger is. */
void pw_log(const struct pw_logger *l, enum component_log_level level, const char *msg, ...)
	__attribute__((sentinel));

static inline int pw_log_enabled(const struct pw_logger *l, enum component_log_level level)
{
	return l && l->fn && level >= l->level;
}

/*
 * A budget for a log line that a client can cause once per item it sends
 * (a refused profile): at most PW_LOG_RATE_BURST lines per second, the rest
 * counted. Zero-initialised is ready. Lock-free; under a race a line more
 * or less may pass, never an unbounded number.
 */
#define PW_LOG_RATE_BURST 5

struct pw_lograte {
	_Atomic int64_t window_ns; /* start of the current one-second window */
	_Atomic uint32_t used; /* lines logged in it */
	_Atomic uint64_t suppressed; /* lines left out since the last one logged */
};

/* Whether to log one more line at time now_ns. When true, *suppressed gets
 * how many were left out before it (to say so in the line). */
bool pw_lograte_allow(struct pw_lograte *r, int64_t now_ns, uint64_t *suppressed);

#endif /* PW_LOG_H */
