/*
 * http.h - per-endpoint HTTP client settings applied to libcurl handles:
 * TLS, proxies, HTTP version, redirects and static authentication.
 */
#ifndef PW_HTTP_H
#define PW_HTTP_H

#include <curl/curl.h>

#include "config.h"

/* Applies the endpoint's transport settings (TLS, proxy, HTTP version,
 * redirects) to an easy handle. Returns 0, or -1 with a malloc'd *err. */
int pw_http_apply(CURL *e, const struct pw_endpoint_config *cfg, const char *url, char **err);

/* True when `name` (case-insensitive) is set in the map. */
int pw_kvmap_has(const struct pw_kvmap *m, const char *name);

/* Appends "Name: value" to a list; returns the new list or NULL on failure
 * (in which case the old list is left untouched). */
struct curl_slist *pw_slist_add(struct curl_slist *l, const char *name, const char *value);

/* Frees a header list, wiping each entry (they may hold credentials). */
void pw_slist_free_wipe(struct curl_slist *l);

#endif /* PW_HTTP_H */
