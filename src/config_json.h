/*
 * config_json.h - a parsed block back to text (config_json.c), driven by the
 * option table it is given. Thread-safe: reads its arguments only.
 */
#ifndef PW_CONFIG_JSON_H
#define PW_CONFIG_JSON_H

#include "config_table.h"

#include <stdbool.h>

/* Compact JSON of the block at base, keys sorted; secrets replaced by
 * "<secret>" when redact. malloc'd; NULL when out of memory. */
char *pw_cfg_emit(const struct block *b, const void *base, bool redact);

/* The block at base as indented JSON with every secret replaced by
 * "<secret>"; malloc'd; NULL when out of memory. */
char *pw_cfg_emit_redacted(const struct block *b, const void *base);

/* The endpoint's display name (name, or the URL without credentials); malloc'd. */
char *pw_cfg_display_name(const struct pw_endpoint_config *e);

#endif /* PW_CONFIG_JSON_H */
