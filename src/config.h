/*
 * config.h - the component's configuration snapshot.
 *
 * A snapshot is built from a JSON document by pw_config_parse(), validated as
 * a whole, and then never modified: the sender keeps a reference to the
 * snapshot each delivery started with. Strings are owned by the snapshot and
 * freed (secrets wiped) by pw_config_free().
 */
#ifndef PW_CONFIG_H
#define PW_CONFIG_H

#include "config_types.h"

/*
 * Parses and validates a document. On success returns 0 and stores a new
 * snapshot in *out. On failure returns -1, stores NULL in *out and, if errors
 * is not NULL, a malloc'd message listing every problem, one per line, each
 * starting with the path it is about (e.g. "endpoint[1].remote_timeout: ...").
 * Files named by *_file options must be readable. Thread-safe.
 */
int pw_config_parse(const char *text, struct pw_config **out, char **errors);

/* Frees a snapshot, wiping secrets. Accepts NULL. */
void pw_config_free(struct pw_config *cfg);

/* The effective configuration as JSON with every secret replaced by
 * "<secret>"; malloc'd. */
char *pw_config_redacted_json(const struct pw_config *cfg);

/* Overwrites and frees a secret string. Accepts NULL. */
void pw_secret_free(char *s);

#endif /* PW_CONFIG_H */
