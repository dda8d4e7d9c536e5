/*
 * qrec.h - what a record of the durable queue holds: one push or ingest
 * request as the producer side prepared it, with what each endpoint still
 * needs to address it (the labels a tenant_label reads, an ingest
 * request's path and content types). Internal to the plugin.
 *
 * Layer: engine, bottom (beside the delivery object); no I/O: it turns a
 * request into bytes and back. The store (qstore.c) frames and checks
 * these bytes; this file only has to refuse what it cannot parse.
 */
#ifndef PW_QREC_H
#define PW_QREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_types.h"
#include "labels.h"
#include "pyroscope_write.h"
#include "strbuf.h"

#define PW_QREC_VERSION 1

/* A decoded record. Its strings and arrays are malloc'd (freed by
 * pw_qrec_free()); body points into the buffer it was decoded from. */
struct pw_qrec {
	bool ingest;
	uint64_t size; /* profile bytes, as the metrics count them */
	/* The incoming labels and the configuration's external labels when
	 * the profile was queued: a tenant_label is looked up in them. */
	struct pw_label *in;
	size_t nin;
	struct pw_kvmap external;
	/* Ingest: the label set after the rules (the rewritten name), the
	 * request's path and query, and its Content-Type values. */
	struct pw_labelset ls;
	char *path_query;
	char **ctypes;
	size_t nctypes;
	const uint8_t *body;
	size_t body_len;
};

/*
 * Appends the header of a record to sb: everything but the body, which
 * the caller writes after it (so a large body is not copied). Returns 0,
 * or -1 when out of memory.
 */
int pw_qrec_encode_head(struct strbuf *sb, const struct pw_qrec *r);
/* Decodes buf (header and body). 0, or -1 with *err (static) when it is
 * not a record this version understands. */
int pw_qrec_decode(const uint8_t *buf, size_t len, struct pw_qrec *r, const char **err);
void pw_qrec_free(struct pw_qrec *r);

#endif /* PW_QREC_H */
