/*
 * duration.h - Go-syntax durations ("1m30s", "500ms", "-1.5h").
 *
 * Pure functions with no state: safe from any thread. A leaf of the config
 * layer: the configuration parser and the mock host's command line use it,
 * and it uses nothing of the project.
 */
#ifndef PW_DURATION_H
#define PW_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Parses a Go duration ("1m30s", "500ms", "1.5h", "-2s", "0"). Returns 0 and
 * stores nanoseconds in *out, or -1 with a static reason in *why (why may be
 * NULL). */
int pw_duration_parse(const char *s, int64_t *out, const char **why);

/* Formats nanoseconds as a Go duration string ("1m30s") into buf, truncated
 * to len bytes; 40 bytes always suffice. */
void pw_duration_format(int64_t ns, char *buf, size_t len);

#endif /* PW_DURATION_H */
