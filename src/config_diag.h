/*
 * config_diag.h - the diagnostics of the config parser: the list of problems
 * found in a document, the paths that name the value each is about, and user
 * text made safe to quote in a message. The bottom of the config layers: it
 * knows nothing of the option tables.
 *
 * A struct pw_cfg_diag belongs to one parse; not thread-safe, and not meant
 * to be.
 */
#ifndef PW_CONFIG_DIAG_H
#define PW_CONFIG_DIAG_H

#include "strbuf.h"

#include <jansson.h>
#include <stddef.h>

#define PATH_LEN 512
#define SHOW_LEN 64 /* longest user text quoted in a message */
#define SHOW_BUF (SHOW_LEN * 4 + 16) /* room for pw_cfg_show() of any text */

/* The problems found so far, one line each. */
struct pw_cfg_diag {
	struct strbuf errs;
	size_t nerrs;
};

void pw_cfg_diag_init(struct pw_cfg_diag *d);

/* Frees the list. */
void pw_cfg_diag_free(struct pw_cfg_diag *d);

/* The list as one malloc'd message, one problem per line and no trailing
 * newline, with a count of those past the cap; NULL when out of memory.
 * Leaves d empty. */
char *pw_cfg_diag_take(struct pw_cfg_diag *d);

/* Records one problem about the value at path ("" is the document). */
void pw_cfg_err_at(struct pw_cfg_diag *d, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records one problem about the document's text at line and column. */
void pw_cfg_err_line(struct pw_cfg_diag *d, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Escapes and truncates user text for a message between double quotes. */
void pw_cfg_show(char *dst, size_t n, const char *s, size_t len);

/* dst (PATH_LEN bytes) = parent.key */
void pw_cfg_path_key(char *dst, const char *parent, const char *key);

/* dst (PATH_LEN bytes) = parent[i] */
void pw_cfg_path_index(char *dst, const char *parent, size_t i);

/* dst (PATH_LEN bytes) = parent["key"] */
void pw_cfg_path_map(char *dst, const char *parent, const char *key, size_t klen);

/* The document-syntax name of a JSON value's type, for messages. */
const char *pw_cfg_jtype(const json_t *v);

#endif /* PW_CONFIG_DIAG_H */
