/*
 * labels.h - the label pipeline of both delivery paths.
 */
#ifndef PW_LABELS_H
#define PW_LABELS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "pyroscope_write.h"

/* An owned, sorted label set. */
struct pw_labelset {
	struct pw_kv *items; /* sorted by key, byte order; no empty values */
	size_t n;
};

/*
 * Validates an incoming label set (the rules shared by push and ingest):
 * non-empty, no duplicate names, UTF-8 values, names of [A-Za-z0-9_.]+
 * (except exactly "__name__"). Returns NULL when valid, else a malloc'd
 * "invalid labels in profile: <reason>".
 */
char *pw_labels_validate(const struct pw_label *in, size_t n);

/*
 * Push path: validate, drop names starting with "__" except __name__ and
 * __delta__, apply external labels (override; empty value deletes), sort.
 * Returns 0, or -1 with a malloc'd *err.
 */
int pw_labels_push(const struct pw_label *in, size_t n, const struct pw_kvmap *external,
		   struct pw_labelset *out, char **err);

/*
 * Ingest path: a non-empty service_name replaces __name__, validate, keep
 * every label, apply external labels, sort. Returns 0, or -1 with *err.
 */
int pw_labels_ingest(const struct pw_label *in, size_t n, const struct pw_kvmap *external,
		     struct pw_labelset *out, char **err);

/* "<__name__ value>{k1=v1,k2=v2}" with the other keys sorted; malloc'd. */
char *pw_labels_ingest_name(const struct pw_labelset *ls);

/*
 * Builds the URL an ingest request is forwarded to: the endpoint URL's path
 * joined with the path of `path_query`, the endpoint URL's own query kept,
 * the incoming parameters winning on a clash, `name` replaced by
 * pw_labels_ingest_name(ls), everything percent-encoded, keys sorted.
 * Returns a malloc'd URL, or NULL with a malloc'd *err.
 */
char *pw_ingest_url(const char *endpoint_url, const char *path_query, const struct pw_labelset *ls,
		    char **err);

/*
 * Percent-decodes s[0..n) as a query component ('+' is a space) into a
 * malloc'd, NUL-terminated string of *outn bytes. Returns NULL when out of
 * memory or, with *malformed set, when an escape is not %HH.
 */
char *pw_query_unescape(const char *s, size_t n, size_t *outn, bool *malformed);

void pw_labelset_free(struct pw_labelset *ls);

/*
 * The value label `name` has once the external labels are applied (an
 * external label wins; an empty value means none), read from the incoming
 * labels before reserved ones are dropped. Borrowed from `in` or
 * `external`; NULL when the label is absent or empty.
 */
const char *pw_labels_lookup(const struct pw_label *in, size_t n, const struct pw_kvmap *external,
			     const char *name);

/* Whether the push path forwards a label of this name: not starting with
 * "__", or __name__ or __delta__. */
bool pw_label_forwarded(const char *name);

/* Removes label `name` from ls, if there. */
void pw_labelset_remove(struct pw_labelset *ls, const char *name);

#endif /* PW_LABELS_H */
