/*
 * config_internal.h - what config.c, config_check.c and config_json.c share.
 *
 * config.c owns the option tables, the document walk and the error list;
 * config_check.c the checks of single values and the cross-field rules;
 * config_json.c everything that turns a snapshot or a table back into text.
 * Nothing outside those three files includes this header.
 */
#ifndef PW_CONFIG_INTERNAL_H
#define PW_CONFIG_INTERNAL_H

#include "config.h"
#include "strbuf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PATH_LEN 512
#define SHOW_LEN 64 /* longest user text quoted in a message */

enum opt_type {
	OT_STRING,
	OT_SECRET,
	OT_BOOL,
	OT_INT,
	OT_DURATION,
	OT_TLS_VERSION,
	OT_MAP_STRING,
	OT_MAP_LIST_SECRET,
	OT_LIST_STRING,
	OT_BLOCK,
	OT_ENDPOINTS,
	OT_ANY_OBJECT,
};

#define OPT_REQUIRED (1u << 0)
#define OPT_FILE (1u << 1) /* must be readable at parse time */
#define OPT_PEM (1u << 2) /* must look like PEM text */
#define OPT_HTTP_URL (1u << 3) /* absolute http(s) URL with a host */
#define OPT_PROXY_URL (1u << 4) /* absolute http(s)/socks5 URL with a host */
#define OPT_NO_PROXY (1u << 5) /* comma list of IPs, CIDRs, domains */
#define OPT_HEADERS (1u << 6) /* keys are header names, values header values */
#define OPT_RESERVED (1u << 7) /* reserved header names are refused */
#define OPT_LABELS (1u << 8) /* keys are label names */
#define OPT_IGNORED (1u << 9) /* accepted, not acted on; logs a notice */
#define OPT_RANGE (1u << 10) /* min/max apply */
#define OPT_HEADER_VALUE (1u << 11) /* sent in a header as it is: no control bytes */

struct block;
struct ctx;

struct opt {
	const char *name;
	enum opt_type type;
	const char *def; /* default in document syntax; NULL = none */
	size_t off; /* destination inside the block's struct */
	size_t off2; /* OT_LIST_STRING: count; OT_BLOCK: the "set" flag */
	unsigned flags;
	int64_t min, max; /* with OPT_RANGE */
	const struct block *sub;
	const char *desc;
};

struct block {
	const char *name;
	const struct opt *opts; /* terminated by an entry with name NULL */
	void (*validate)(struct ctx *c, const char *path, void *base);
};

struct ctx {
	struct strbuf errs;
	size_t nerrs;
	struct pw_config *cfg;
};

/* config.c: the tables, paths and the error list. */

extern const struct block pw_cfg_top_block;

/* The block documented under name ("" for the top level), or NULL. */
const struct block *pw_cfg_find_block(const char *name);

/* Escapes and truncates user text for a message between double quotes. */
void pw_cfg_show(char *dst, size_t n, const char *s, size_t len);

/* dst (PATH_LEN bytes) = parent.key */
void pw_cfg_path_key(char *dst, const char *parent, const char *key);

/* Records one problem about the value at path. */
void pw_cfg_err_at(struct ctx *c, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The document-syntax name of a JSON value's type, for messages. */
const char *pw_cfg_jtype(const json_t *v);

/* config_check.c: the checks; each reports its own problems through
 * pw_cfg_err_at() and lets parsing go on. */

/* The checks o->flags asks for on a non-empty string value s. */
void pw_cfg_check_string(struct ctx *c, const struct opt *o, const char *path, const char *s);

/* Looks up a min_version name; stores it in *v, or reports and returns false. */
bool pw_cfg_check_tls_version(struct ctx *c, const char *path, const char *s,
			      enum pw_tls_version *v);

/* Reports key as unknown in block b, suggesting the nearest option name. */
void pw_cfg_unknown_key(struct ctx *c, const struct block *b, const char *path, const char *key);

void pw_cfg_check_range(struct ctx *c, const struct opt *o, const char *path, int64_t v);
void pw_cfg_check_map_key(struct ctx *c, const struct opt *o, const char *path, const char *key);
bool pw_cfg_check_map_value(struct ctx *c, const struct opt *o, const char *path, json_t *v);

/* Problems found before the document is decoded (size, UTF-8, nesting);
 * true if any. Stores the document's length in *lenp. */
bool pw_cfg_precheck(struct ctx *c, const char *text, size_t *lenp);

/* Cross-field rules, run once a block has been parsed (struct block.validate). */
void pw_cfg_validate_tls(struct ctx *c, const char *path, void *base);
void pw_cfg_validate_basic_auth(struct ctx *c, const char *path, void *base);
void pw_cfg_validate_authorization(struct ctx *c, const char *path, void *base);
void pw_cfg_validate_oauth2(struct ctx *c, const char *path, void *base);
void pw_cfg_validate_endpoint(struct ctx *c, const char *path, void *base);

/* config_json.c */

/* Compact JSON of the block at base, keys sorted; secrets replaced by
 * "<secret>" when redact. malloc'd; NULL when out of memory. */
char *pw_cfg_emit(const struct block *b, const void *base, bool redact);

/* The endpoint's display name (name, or the URL without credentials); malloc'd. */
char *pw_cfg_display_name(const struct pw_endpoint_config *e);

#endif /* PW_CONFIG_INTERNAL_H */
