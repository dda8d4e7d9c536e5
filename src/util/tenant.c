/*
 * util/tenant.c - the tenant ID check Pyroscope applies to X-Scope-OrgID
 * (its multi-tenancy rules: a bounded length and a small character set, so
 * a tenant ID is safe in paths and object-store keys).
 */
#include "util/tenant.h"

#include <string.h>

static int tenant_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!-_.*'()", c));
}

const char *pwx_tenant_error(const char *t)
{
	size_t n = strlen(t);

	if (n == 0)
		return "tenant ID is empty";
	if (n > PWX_TENANT_MAX_LEN)
		return "tenant ID is longer than 150 characters";
	if (strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
		return "tenant ID must not be \".\" or \"..\"";
	for (; *t; t++)
		if (!tenant_char(*t))
			return "tenant ID may hold only letters, digits and !-_.*'()";
	return NULL;
}
