/*
 * alloy.h - turns the pyroscope.write block of an Alloy configuration file
 * into the component's JSON configuration document.
 *
 * Only literal values are understood (strings, numbers, bools, null, lists
 * and objects). Other components in the same file are tokenized and skipped
 * without being interpreted, so a whole Alloy file can be handed over as it
 * is. docs/alloy-syntax.md describes the accepted subset.
 *
 * Nothing here keeps global state: every function is safe to call from
 * several threads at once on different inputs.
 */
#ifndef PW_MOCKHOST_ALLOY_H
#define PW_MOCKHOST_ALLOY_H

#include <stddef.h>

/* Receives one informational line (for example "skipping pyroscope.scrape
 * \"default\""). msg is valid only during the call. */
typedef void (*alloy_notice_fn)(void *user, const char *msg);

/*
 * Converts the pyroscope.write block labelled `label` to JSON.
 *
 * text/len: the file contents (need not be NUL-terminated).
 * filename: used as the prefix of error messages; may be NULL.
 * label: the block to convert; NULL selects the only one and fails, listing
 *   the labels, when the file has several.
 * json: on success, a malloc'd NUL-terminated JSON document; free() it.
 * err: on failure, a malloc'd message "FILE:LINE:COL: message" (or
 *   "LINE:COL: message" without a file name; problems that concern the
 *   whole file have no line and column); free() it. Columns count
 *   characters from 1.
 * notice/user: called for each skipped component; notice may be NULL.
 *
 * Returns 0 or -1. On failure *json is NULL; on success *err is NULL.
 */
int alloy_convert(const char *text, size_t len, const char *filename, const char *label,
		  char **json, char **err, alloy_notice_fn notice, void *user);

/*
 * Lists the labels of all pyroscope.write blocks in file order, without
 * looking inside them. On success *labels is a malloc'd array of *count
 * malloc'd strings (release with alloy_labels_free) and returns 0; on
 * failure returns -1 with *err as for alloy_convert.
 */
int alloy_list_labels(const char *text, size_t len, const char *filename, char ***labels,
		      size_t *count, char **err);

/* Frees what alloy_list_labels returned; accepts NULL. */
void alloy_labels_free(char **labels, size_t count);

#endif /* PW_MOCKHOST_ALLOY_H */
