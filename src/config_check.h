/*
 * config_check.h - the checks of config_check.c. Each reports its own
 * problems through the diagnostics list d and lets parsing go on.
 */
#ifndef PW_CONFIG_CHECK_H
#define PW_CONFIG_CHECK_H

#include "config_diag.h"
#include "config_table.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The checks o->flags asks for on a non-empty string value s. */
void pw_cfg_check_string(struct pw_cfg_diag *d, const struct opt *o, const char *path,
			 const char *s);

/* Looks up a min_version name; stores it in *v, or reports and returns false. */
bool pw_cfg_check_tls_version(struct pw_cfg_diag *d, const char *path, const char *s,
			      enum pw_tls_version *v);

/* Reports key as unknown in block b, suggesting the nearest option name. */
void pw_cfg_unknown_key(struct pw_cfg_diag *d, const struct block *b, const char *path,
			const char *key);

/* With OPT_RANGE: reports v outside o->min..o->max. */
void pw_cfg_check_range(struct pw_cfg_diag *d, const struct opt *o, const char *path, int64_t v);

/* Name checks shared by the map kinds (header names, label names). */
void pw_cfg_check_map_key(struct pw_cfg_diag *d, const struct opt *o, const char *path,
			  const char *key);

/* A map value that goes on the wire as a header or label value; false when
 * it is not usable. */
bool pw_cfg_check_map_value(struct pw_cfg_diag *d, const struct opt *o, const char *path,
			    json_t *v);

/* Problems found before the document is decoded (size, UTF-8, nesting);
 * true if any. Stores the document's length in *lenp. */
bool pw_cfg_precheck(struct pw_cfg_diag *d, const char *text, size_t *lenp);

/* Cross-field rules, run once a block has been parsed (struct block.validate). */
void pw_cfg_validate_tls(struct pw_cfg_diag *d, const char *path, void *base);
void pw_cfg_validate_basic_auth(struct pw_cfg_diag *d, const char *path, void *base);
void pw_cfg_validate_authorization(struct pw_cfg_diag *d, const char *path, void *base);
void pw_cfg_validate_oauth2(struct pw_cfg_diag *d, const char *path, void *base);
void pw_cfg_validate_endpoint(struct pw_cfg_diag *d, const char *path, void *base);

/* struct opt.applies of queue.fsync_interval: only with fsync = "interval". */
bool pw_cfg_queue_fsync_interval_applies(const void *base);

/* OT_CHOICE: stores in *v whether s is o->choices[0], or reports s as none of
 * the choices and returns false. */
bool pw_cfg_check_choice(struct pw_cfg_diag *d, const struct opt *o, const char *path,
			 const char *s, bool *v);

#endif /* PW_CONFIG_CHECK_H */
