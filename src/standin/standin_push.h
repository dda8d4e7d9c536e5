/*
 * standin_push.h - the stand-in's judgement of a Connect push.
 */
#ifndef PW_STANDIN_PUSH_H
#define PW_STANDIN_PUSH_H

#include "standin/httpd.h"
#include "standin/standin_state.h"

/* Judges a Connect push (protobuf or JSON body) into oc. */
void standin_judge_push(struct standin *s, const struct standin_http_request *req,
			struct outcome *oc);

#endif /* PW_STANDIN_PUSH_H */
