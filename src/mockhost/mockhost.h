/*
 * mockhost.h - what the mock host's commands share.
 */
#ifndef MOCKHOST_H
#define MOCKHOST_H

#include <stddef.h>

#include "component_abi.h"

/* The host logger: logfmt-style lines on stderr (or the FILE in user). */
void mockhost_log(void *user, enum component_log_level level, const char *msg,
		  const struct component_log_field *fields, size_t n);
int mockhost_parse_level(const char *s, enum component_log_level *out);
void mockhost_host_init(struct component_host *h, enum component_log_level level);

/* Reads a whole regular file (capped), never blocking on a FIFO or a device
 * at the path; 0, or -1 with a malloc'd *err naming the path. */
int mockhost_read_file(const char *path, char **data, size_t *len, char **err);

/* Reads a configuration file: JSON as is, or an .alloy file converted. */
int mockhost_load_config(const char *path, const char *component, char **json, char **err);

/* `mockhost run`: argv[0] is "run". */
int mockhost_run_main(const char *plugin_path, int argc, char **argv);

#endif /* MOCKHOST_H */
