/*
 * util/connect_error.c - the body of a Connect protocol error, shared by
 * the stand-in and `mockhost run`.
 */
#include "util/connect_error.h"

#include <jansson.h>

char *pwx_connect_error_body(const char *code, const char *message)
{
	json_t *o = json_pack("{s:s, s:s}", "code", code, "message", message ? message : "");
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return text;
}
