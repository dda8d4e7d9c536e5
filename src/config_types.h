/*
 * config_types.h - the configuration snapshot's types. Types only: the
 * functions that build and free a snapshot are in config.h, so the lower
 * config files (checks, JSON writer, option tables) can know the snapshot's
 * layout without depending on the parser above them.
 */
#ifndef PW_CONFIG_TYPES_H
#define PW_CONFIG_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* map(string): insertion order kept; keys unique. */
struct pw_kv {
	char *key;
	char *value;
};

struct pw_kvmap {
	struct pw_kv *items;
	size_t n;
};

/* map(list(secret)): header name -> values, each value is a secret. */
struct pw_kvlist {
	char *key;
	char **values;
	size_t nvalues;
};

struct pw_kvlistmap {
	struct pw_kvlist *items;
	size_t n;
};

/* TLS versions as accepted by min_version; 0 means "unset" (TLS 1.2). */
enum pw_tls_version {
	PW_TLS_UNSET = 0,
	PW_TLS10 = 10,
	PW_TLS11 = 11,
	PW_TLS12 = 12,
	PW_TLS13 = 13
};

struct pw_tls_config {
	char *ca_pem;
	char *ca_file;
	char *cert_pem;
	char *cert_file;
	char *key_pem; /* secret */
	char *key_file;
	char *server_name;
	bool insecure_skip_verify;
	enum pw_tls_version min_version;
};

struct pw_proxy_config {
	char *proxy_url;
	char *no_proxy;
	bool proxy_from_environment;
	struct pw_kvlistmap proxy_connect_header; /* values are secrets */
};

struct pw_basic_auth {
	bool set;
	char *username;
	char *password; /* secret */
	char *password_file;
};

struct pw_authorization {
	bool set;
	char *type; /* trimmed; defaults to "Bearer" */
	char *credentials; /* secret */
	char *credentials_file;
};

struct pw_oauth2 {
	bool set;
	char *client_id;
	char *client_secret; /* secret */
	char *client_secret_file;
	char *token_url;
	char **scopes;
	size_t nscopes;
	struct pw_kvmap endpoint_params;
	struct pw_proxy_config proxy;
	bool tls_set;
	struct pw_tls_config tls;
};

/* Pushes combined into one request; an extension beyond Alloy. */
struct pw_batch_config {
	bool set;
	int64_t max_profiles; /* 1 to 10000, default 100 */
	int64_t max_bytes; /* 1 KiB to 64 MiB, default 4 MiB */
	int64_t max_wait_ns; /* 0s to 10s, default 0s */
};

/* The durable queue; an extension beyond Alloy. */
struct pw_queue_config {
	bool set; /* a "queue" block is present */
	char *directory; /* required, non-empty */
	int64_t max_size; /* bytes, 64 KiB .. 1 TiB, default 1 GiB */
	int64_t max_age_ns; /* 1s .. 7 days, default 1h */
	bool fsync_always; /* fsync: "always" (default) or "interval" */
	int64_t fsync_interval_ns; /* 10ms .. 1m, default 1s; only meaningful with "interval" */
	bool drop_oldest; /* when_full: "drop_oldest" (default) or "refuse" */
};

struct pw_endpoint_config {
	char *url;
	char *name;
	int64_t remote_timeout_ns; /* default 10s, > 0 */
	int64_t min_backoff_ns; /* default 500ms, > 0 */
	int64_t max_backoff_ns; /* default 5m, >= min */
	int64_t max_backoff_retries; /* default 10, >= 0; 0 = until the deadline */
	int64_t debug_info_upload_timeout_ns; /* accepted and ignored */
	bool retry_on_http_429; /* default true */
	bool enable_http2; /* default true */
	bool follow_redirects; /* default true */
	int64_t max_connections; /* per-endpoint request bound, default 32 */
	/* The label whose value becomes a profile's X-Scope-OrgID; NULL when
	 * unset. */
	char *tenant_label;
	struct pw_batch_config batch;
	struct pw_kvmap headers;
	struct pw_kvlistmap http_headers; /* values are secrets */
	char *bearer_token; /* secret */
	char *bearer_token_file;
	struct pw_authorization authorization;
	struct pw_basic_auth basic_auth;
	struct pw_oauth2 oauth2;
	bool tls_set;
	struct pw_tls_config tls;
	struct pw_proxy_config proxy;

	/* Canonical JSON of this endpoint with secrets in clear text; used only
	 * to compare endpoints across reloads, never shown. */
	char *canonical;
	/* The label used in metrics and errors: name, or the URL with any
	 * user:password@ removed. */
	char *display;
};

struct pw_config {
	struct pw_kvmap external_labels;
	struct pw_endpoint_config *endpoints;
	size_t nendpoints;
	/* Cap on profile bytes held in flight by the instance; default 256 MiB. */
	int64_t max_inflight_bytes;
	/* Bounded drain at destroy; default 5s. */
	int64_t shutdown_timeout_ns;
	/* The durable queue; queue.set is false without a "queue" block. */
	struct pw_queue_config queue;
	/* Canonical JSON of the whole document (secrets in clear text), for the
	 * "same document" check of update(). Never shown. */
	char *canonical;
	/* Notices to log once the snapshot is applied (e.g. ignored attributes). */
	char **notices;
	size_t nnotices;
};

#endif /* PW_CONFIG_TYPES_H */
