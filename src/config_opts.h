/*
 * config_opts.h - the option tables of config_opts.c. Read-only data, safe
 * from any thread.
 */
#ifndef PW_CONFIG_OPTS_H
#define PW_CONFIG_OPTS_H

#include "config_table.h"

/* The top level of the document (struct pw_config). */
extern const struct block pw_cfg_top_block;

/* One endpoint (struct pw_endpoint_config). */
extern const struct block pw_cfg_endpoint_block;

/* The block documented under name ("" for the top level), or NULL. */
const struct block *pw_cfg_find_block(const char *name);

#endif /* PW_CONFIG_OPTS_H */
