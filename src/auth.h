/*
 * auth.h - credentials of one endpoint: basic auth, bearer tokens,
 * `authorization` and OAuth2 client credentials.
 *
 * A struct pw_auth belongs to the I/O thread once the endpoint is published:
 * none of these functions is thread-safe. File-based secrets are checked
 * cheaply (stat) on use and re-read only when the file changed.
 */
#ifndef PW_AUTH_H
#define PW_AUTH_H

#include <curl/curl.h>
#include <stdint.h>

#include "config.h"

struct pw_auth;

enum pw_auth_state {
	PW_AUTH_READY = 0, /* *value holds the header value, or NULL for none */
	PW_AUTH_PENDING = 1, /* an OAuth2 token request is needed or under way */
	PW_AUTH_ERROR = 2 /* *err says why (retryable delivery error) */
};

/* Builds the credential state; reads *_file secrets now. NULL + *err on failure. */
struct pw_auth *pw_auth_new(const struct pw_endpoint_config *cfg, char **err);
void pw_auth_free(struct pw_auth *a);

/*
 * The Authorization header value for the next attempt ("Basic ...",
 * "Bearer ..."), malloc'd in *value (the caller wipes and frees it), or NULL
 * when no credentials are configured. now_ns is CLOCK_MONOTONIC.
 */
enum pw_auth_state pw_auth_header(struct pw_auth *a, int64_t now_ns, char **value, char **err);

/*
 * OAuth2: when pw_auth_header() returned PENDING and no token request is
 * under way, returns a configured easy handle the caller adds to its multi
 * handle (and marks the request under way); NULL with *err if it cannot be
 * built. The handle's CURLOPT_PRIVATE is left NULL for the caller to set.
 */
CURL *pw_auth_token_request(struct pw_auth *a, char **err);

/* True while a token request is under way. */
int pw_auth_token_busy(const struct pw_auth *a);

/* Feeds the result of the token request back; the handle is cleaned up by
 * this call. Returns 0 when a token is now cached, -1 with *err otherwise. */
int pw_auth_token_done(struct pw_auth *a, CURL *e, CURLcode rc, int64_t now_ns, char **err);

#endif /* PW_AUTH_H */
