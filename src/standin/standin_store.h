/*
 * standin_store.h - the stand-in's counters document, its store directory
 * and its log of accepted requests.
 */
#ifndef PW_STANDIN_STORE_H
#define PW_STANDIN_STORE_H

#include "proto_decode.h"
#include "standin/standin_state.h"

/* The /stats document of the counters (malloc'd), and the
 * store and the log of accepted requests (called under s->lock). A store
 * call writes all of a request's files or, on failure, none: it returns -1
 * with a malloc'd *err and removes what it had written. Log lines escape
 * control bytes, quotes and backslashes in values from the request. */
char *standin_stats_json(const struct standin_stats *st);
int standin_store_push_locked(struct standin *s, const struct standin_request *rec,
			      const struct pw_dec_push *p, char **err);
int standin_store_ingest_locked(struct standin *s, const struct standin_request *rec,
				const struct outcome *oc, char **err);
void standin_log_push_locked(struct standin *s, const struct standin_request *rec,
			     const struct pw_dec_push *p);
void standin_log_ingest_locked(struct standin *s, const struct standin_request *rec);
void standin_log_refused_locked(struct standin *s, const char *why);

#endif /* PW_STANDIN_STORE_H */
