/*
 * sdkname.h - what a receiving host does with an SDK's /ingest request
 * before handing it to the component: find `name` in the query and turn it
 * into a label set, as Alloy's pyroscope.receive_http does.
 */
#ifndef MOCKHOST_SDKNAME_H
#define MOCKHOST_SDKNAME_H

#include <stddef.h>

#include "config.h"

/* The decoded value of query parameter `key` in "path?query", malloc'd, or
 * NULL when absent or badly encoded (an invalid escape, or %00 anywhere). */
char *sdk_query_param(const char *path_query, const char *key);

/*
 * Parses "app{k=v,k2=v2}" into labels: __name__=app, the pairs, and
 * service_name=app when the pairs have none (else app_name=app). Returns 0,
 * or -1 with a malloc'd *err; on failure *labels is empty (the component
 * then rejects the profile, as the reference host does).
 */
int sdk_name_labels(const char *name, struct pw_kv **labels, size_t *n, char **err);

void sdk_labels_free(struct pw_kv *labels, size_t n);

#endif /* MOCKHOST_SDKNAME_H */
