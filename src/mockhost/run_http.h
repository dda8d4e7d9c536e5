/*
 * run_http.h - the HTTP side of `mockhost run`: the listener's callbacks,
 * which route requests to the receiver and the operational endpoints.
 * Internal to the mock host.
 */
#ifndef MOCKHOST_RUN_HTTP_H
#define MOCKHOST_RUN_HTTP_H

#include "listen/listen.h"

/* The listener's callbacks (see listen.h); user is the struct run. */
void run_http_head(void *user, struct listen_request *req);
void run_http_handler(void *user, struct listen_request *req, int refused, const char *why);
void run_http_done(void *user, void *app);

#endif /* MOCKHOST_RUN_HTTP_H */
