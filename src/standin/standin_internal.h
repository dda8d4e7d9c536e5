/*
 * standin_internal.h - what the stand-in's own files share: the server
 * state, the strict judgement of one request and the helpers that fill it.
 * Not part of the public API (see standin.h).
 */
#ifndef PW_STANDIN_INTERNAL_H
#define PW_STANDIN_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "proto_decode.h"
#include "standin/httpd.h"
#include "standin/standin.h"

struct script;

struct standin {
	struct standin_opts o;
	char *listen_addr;
	char *store_dir;
	char url[96];
	struct standin_httpd *httpd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct script *script;
	struct standin_request **reqs;
	size_t nreqs, capreqs;
	struct standin_stats stats;
	uint64_t seq; /* numbering of stored files */
};

enum reject {
	REJ_NONE,
	REJ_UNAUTH,
	REJ_INVALID,
	REJ_UNPROCESSABLE,
	REJ_TOO_LARGE,
	REJ_MEDIA,
	REJ_NOT_FOUND,
	REJ_METHOD,
	REJ_OTHER,
	REJ_STORAGE,
};

/* The strict judgement of one request. */
struct outcome {
	int status;
	const char *code; /* JSON error code; NULL = no JSON body */
	char *message; /* malloc'd; NULL on success */
	enum reject cls;
	const char *allow; /* Allow header for 405 */
	bool accept_post; /* add Accept-Post on 415 */
	/* push */
	uint8_t *push_buf; /* the gunzipped body; push points into it */
	uint8_t *json_blobs; /* the raw profiles of a JSON push; push points into it */
	struct pw_dec_push push;
	bool have_push;
	/* ingest */
	struct standin_header *labels;
	size_t nlabels;
	/* stats and ready */
	char *plain; /* a non-JSON 200 body */
	const char *plain_type;
};

/* standin_judge.c: turns oc into a rejection; takes ownership of message (NULL = out of memory). */
void standin_reject(struct outcome *oc, int status, const char *code, enum reject cls,
		    char *message);
/* First value of a request header, case-insensitive. */
const char *standin_hdr(const struct standin_http_request *req, const char *name);
/* Returns false and fills oc when the tenant is missing (when required) or
 * malformed. */
bool standin_check_tenant(struct standin *s, const struct standin_http_request *req,
			  struct outcome *oc);

/* standin_push.c: judges a Connect push (protobuf or JSON body). */
void standin_judge_push(struct standin *s, const struct standin_http_request *req,
			struct outcome *oc);

/* standin_store.c: the /stats document of the counters (malloc'd), and the
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

#endif
