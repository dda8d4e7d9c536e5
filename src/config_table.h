/*
 * config_table.h - the shape of an option table, shared by the config
 * files. Types only: each file declares its own functions in its own header.
 *
 * The config files form layers; each calls only the ones below it:
 *
 *   config_doc.c    the Markdown option reference (docs only)
 *   config.c        the document walk, the public API of config.h
 *   config_opts.c   the option tables (data)
 *   config_json.c   snapshot -> canonical / redacted JSON, display names
 *   config_check.c  checks of single values and cross-field rules
 *   config_diag.c   the error list, error paths, user text in messages
 *   duration.c      Go durations
 *
 * The snapshot's types are in config_types.h, which every layer may use;
 * config.h adds the functions of config.c.
 *
 * Nothing outside the config files includes this header.
 */
#ifndef PW_CONFIG_TABLE_H
#define PW_CONFIG_TABLE_H

#include "config_types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
	OT_CHOICE, /* a string naming one of choices[0], choices[1]; a bool, true for [0] */
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
#define OPT_LABEL_NAME (1u << 12) /* the value is a label name */

struct block;
struct pw_cfg_diag;

struct opt {
	const char *name;
	enum opt_type type;
	const char *def; /* default in document syntax; NULL = none */
	size_t off; /* destination inside the block's struct */
	size_t off2; /* OT_LIST_STRING, OT_ENDPOINTS: count; OT_BLOCK: the "set" flag */
	unsigned flags;
	int64_t min, max; /* with OPT_RANGE */
	const struct block *sub; /* OT_BLOCK, OT_ENDPOINTS: the block inside */
	const char *desc;
	const char *const *choices; /* OT_CHOICE: the two names, NULL-terminated */
	/* When set, the option means something only while applies(block) is
	 * true once the block is parsed: giving it otherwise is an error naming
	 * applies_when (the setting it needs), and the dumps leave it out. */
	bool (*applies)(const void *base);
	const char *applies_when;
};

struct block {
	const char *name;
	const struct opt *opts; /* terminated by an entry with name NULL */
	/* Cross-field rules, run once the block has been parsed; may normalise
	 * values in place. NULL when there are none. */
	void (*validate)(struct pw_cfg_diag *d, const char *path, void *base);
};

#endif /* PW_CONFIG_TABLE_H */
