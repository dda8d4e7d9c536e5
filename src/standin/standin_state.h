/*
 * standin_state.h - what the stand-in's own files share: the server state
 * and the strict judgement of one request. Types only; not part of the
 * stand-in's API (see standin.h).
 */
#ifndef PW_STANDIN_STATE_H
#define PW_STANDIN_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto_decode.h"
#include "standin/httpd.h"
#include "standin/standin_types.h"

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

#endif /* PW_STANDIN_STATE_H */
