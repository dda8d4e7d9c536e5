/*
 * util/tenant.h - the tenant ID check Pyroscope applies to X-Scope-OrgID.
 */
#ifndef PW_UTIL_TENANT_H
#define PW_UTIL_TENANT_H

/* At most this many bytes. */
#define PWX_TENANT_MAX_LEN 150

/*
 * NULL when t is a tenant ID Pyroscope accepts: 1 to 150 bytes of letters,
 * digits and !-_.*'() and neither "." nor "..". Otherwise a static text
 * saying what is wrong.
 */
const char *pwx_tenant_error(const char *t);

#endif /* PW_UTIL_TENANT_H */
