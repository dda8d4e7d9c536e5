/*
 * log.h - structured logging through the host's logger.
 */
#ifndef PW_LOG_H
#define PW_LOG_H

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

#endif /* PW_LOG_H */
