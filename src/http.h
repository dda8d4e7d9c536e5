/*
 * http.h - per-endpoint HTTP client settings applied to libcurl handles:
 * TLS, proxies, HTTP version, redirects and static authentication.
 */
#ifndef PW_HTTP_H
#define PW_HTTP_H

#include <stdbool.h>

#include <curl/curl.h>

#include "config.h"

/*
 * Applies the endpoint's transport settings (TLS, proxy, HTTP version,
 * redirects) to an easy handle before an attempt to `url`. Returns 0, or -1
 * with a malloc'd *err (never containing a secret).
 *
 * libcurl keeps pointers to some of what is set here (the CONNECT header
 * list of proxy_connect_header), so the configuration's proxy block must be
 * held with pw_http_hold() while transfers using it may run; pw_auth_new()
 * does that for the endpoint and its oauth2 block.
 */
int pw_http_apply(CURL *e, const struct pw_endpoint_config *cfg, const char *url, char **err);

/* The same with the pieces given one by one (the OAuth2 token request has
 * its own TLS and proxy settings). tls may be NULL when tls_set is false. */
int pw_http_apply_parts(CURL *e, const char *url, bool enable_http2, bool follow_redirects,
			const struct pw_tls_config *tls, bool tls_set,
			const struct pw_proxy_config *proxy, char **err);

/*
 * Builds (or takes one more reference to) what libcurl needs to keep for a
 * proxy block: the proxy_connect_header list. Reference-counted per block
 * address. Returns 0, or -1 when out of memory. Thread-safe.
 */
int pw_http_hold(const struct pw_proxy_config *p);
/* Drops a reference taken by pw_http_hold(); the list is wiped and freed
 * with the last one. Accepts a block that was never held. Thread-safe. */
void pw_http_release(const struct pw_proxy_config *p);

/* True when `name` (case-insensitive) is set in the map. */
int pw_kvmap_has(const struct pw_kvmap *m, const char *name);

/* True when a header value holds no control byte but TAB (no CR, LF, DEL
 * or other C0 byte): such a byte would end the header line for some reader
 * and let the rest pass as a header of its own. */
bool pw_header_value_ok(const char *value);

/* Appends "Name: value" to a list; returns the new list or NULL on failure
 * (in which case the old list is left untouched). */
struct curl_slist *pw_slist_add(struct curl_slist *l, const char *name, const char *value);

/* Frees a header list, wiping each entry (they may hold credentials). */
void pw_slist_free_wipe(struct curl_slist *l);

#endif /* PW_HTTP_H */
