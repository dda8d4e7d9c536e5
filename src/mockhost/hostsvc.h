/*
 * hostsvc.h - the host services the mock host's commands share (hostsvc.c).
 */
#ifndef MOCKHOST_HOSTSVC_H
#define MOCKHOST_HOSTSVC_H

#include <stddef.h>

#include "component_abi.h"

/* The host logger: one logfmt line per call on stderr (or the FILE in
 * user). Thread-safe. */
void mockhost_log(void *user, enum component_log_level level, const char *msg,
		  const struct component_log_field *fields, size_t n);
int mockhost_parse_level(const char *s, enum component_log_level *out);
void mockhost_host_init(struct component_host *h, enum component_log_level level);

/* Prints a converter notice ("mockhost: ...") on stderr. */
void mockhost_notice(void *user, const char *msg);

/* Reads a whole regular file (capped), never blocking on a FIFO or a device
 * at the path; 0, or -1 with a malloc'd *err naming the path. */
int mockhost_read_file(const char *path, char **data, size_t *len, char **err);

/* Reads a configuration file: JSON as is, or an .alloy file converted. */
int mockhost_load_config(const char *path, const char *component, char **json, char **err);

#endif
