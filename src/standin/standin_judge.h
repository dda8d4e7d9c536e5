/*
 * standin_judge.h - the checks every stand-in route starts with, and how a
 * request is turned into a rejection.
 */
#ifndef PW_STANDIN_JUDGE_H
#define PW_STANDIN_JUDGE_H

#include <stdbool.h>

#include "standin/httpd.h"
#include "standin/standin_state.h"

/* Turns oc into a rejection; takes ownership of message (NULL = out of memory). */
void standin_reject(struct outcome *oc, int status, const char *code, enum reject cls,
		    char *message);
/* First value of a request header, case-insensitive. */
const char *standin_hdr(const struct standin_http_request *req, const char *name);
/* Returns false and fills oc when the tenant is missing (when required) or
 * malformed. */
bool standin_check_tenant(struct standin *s, const struct standin_http_request *req,
			  struct outcome *oc);

#endif /* PW_STANDIN_JUDGE_H */
