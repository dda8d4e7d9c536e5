/*
 * standin_judge.c - the helpers every route's judgement uses: turning an
 * outcome into a rejection, reading a request header and checking the
 * tenant. Below the route files: it calls only http_util.c's header lookup.
 */
#define _GNU_SOURCE
#include "standin/standin_judge.h"

#include <stdlib.h>
#include <string.h>

#include "standin/standin_state.h"
#include "strbuf.h"

#define MAX_TENANT_LEN 150

void standin_reject(struct outcome *oc, int status, const char *code, enum reject cls,
		    char *message)
{
	oc->status = status;
	oc->code = code;
	oc->cls = cls;
	free(oc->message);
	oc->message = message ? message : pw_strdup("out of memory");
}

const char *standin_hdr(const struct standin_http_request *req, const char *name)
{
	return standin_http_header(req->headers, req->nheaders, name);
}

static bool tenant_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("!-_.*'()", c);
}

/* Returns false and fills oc when the tenant is missing (when required) or
 * malformed. */
bool standin_check_tenant(struct standin *s, const struct standin_http_request *req,
			  struct outcome *oc)
{
	const char *t = standin_hdr(req, "X-Scope-OrgID");

	if (!t || !*t) {
		if (!s->o.require_tenant)
			return true;
		standin_reject(oc, 401, "unauthenticated", REJ_UNAUTH, pw_strdup("no org id"));
		return false;
	}
	if (strlen(t) > MAX_TENANT_LEN) {
		standin_reject(oc, 401, "unauthenticated", REJ_UNAUTH,
			       pw_strdup("tenant ID is too long"));
		return false;
	}
	for (const char *c = t; *c; c++) {
		if (!tenant_char(*c) || strcmp(t, ".") == 0 || strcmp(t, "..") == 0) {
			standin_reject(
				oc, 401, "unauthenticated", REJ_UNAUTH,
				pw_asprintf("tenant ID '%s' contains unsupported character '%c'", t,
					    *c));
			return false;
		}
	}
	return true;
}
