/*
 * config_opts.c - the option tables: every option of the document declared
 * once (name, type, default, where it lives in the snapshot, checks,
 * description). The document walk (config.c), the canonical and redacted
 * dumps (config_json.c) and the reference tables of docs/configuration.md
 * (config_doc.c) are all driven from these tables, so an option added here is
 * handled everywhere.
 *
 * Data only: the tables point at the cross-field rules of config_check.c and
 * call nothing themselves.
 */
#include "config_opts.h"

#include "config_check.h"

#include <stddef.h>
#include <string.h>

#define NS_SEC INT64_C(1000000000)

#define TLS(field) offsetof(struct pw_tls_config, field)
#define BASIC(field) offsetof(struct pw_basic_auth, field)
#define AUTHZ(field) offsetof(struct pw_authorization, field)
#define OAUTH2(field) offsetof(struct pw_oauth2, field)
#define EP(field) offsetof(struct pw_endpoint_config, field)
#define TOP(field) offsetof(struct pw_config, field)
#define BATCH(field) offsetof(struct pw_batch_config, field)
#define QUEUE(field) offsetof(struct pw_queue_config, field)

/*
 * The proxy options of the endpoint and oauth2 blocks, which both embed a
 * struct pw_proxy_config at member. One macro per entry, because clang-format
 * can lay out an initializer inside a macro only one entry at a time.
 */
#define PROXY_OPTS(type, member)                                                                   \
	PROXY_URL_OPT(offsetof(type, member.proxy_url)),                                           \
		NO_PROXY_OPT(offsetof(type, member.no_proxy)),                                     \
		PROXY_FROM_ENV_OPT(offsetof(type, member.proxy_from_environment)),                 \
		PROXY_CONNECT_HEADER_OPT(offsetof(type, member.proxy_connect_header))

#define PROXY_URL_OPT(offset)                                                                      \
	{                                                                                          \
		.name = "proxy_url", .type = OT_STRING, .off = (offset), .flags = OPT_PROXY_URL,   \
		.desc = "Proxy for requests: an http, https or socks5 URL.",                       \
	}
#define NO_PROXY_OPT(offset)                                                                       \
	{                                                                                          \
		.name = "no_proxy", .type = OT_STRING, .off = (offset), .flags = OPT_NO_PROXY,     \
		.desc = "Comma-separated IP addresses, CIDR ranges and domain names "              \
			"(ports allowed) that bypass proxy_url. Requires proxy_url.",              \
	}
#define PROXY_FROM_ENV_OPT(offset)                                                                 \
	{                                                                                          \
		.name = "proxy_from_environment", .type = OT_BOOL, .def = "false",                 \
		.off = (offset),                                                                   \
		.desc = "Take the proxy from HTTP_PROXY, HTTPS_PROXY and NO_PROXY "                \
			"(either case). Excludes proxy_url and no_proxy.",                         \
	}
#define PROXY_CONNECT_HEADER_OPT(offset)                                                           \
	{                                                                                          \
		.name = "proxy_connect_header", .type = OT_MAP_LIST_SECRET, .off = (offset),       \
		.flags = OPT_HEADERS,                                                              \
		.desc = "Headers sent to the proxy with CONNECT. Requires proxy_url or "           \
			"proxy_from_environment.",                                                 \
	}

static const struct opt tls_opts[] = {
	{
		.name = "ca_pem",
		.type = OT_STRING,
		.off = TLS(ca_pem),
		.flags = OPT_PEM,
		.desc = "PEM text of the CA certificates that verify the server. Excludes ca_file.",
	},
	{
		.name = "ca_file",
		.type = OT_STRING,
		.off = TLS(ca_file),
		.flags = OPT_FILE,
		.desc = "File holding the CA certificates (PEM); re-read when it changes.",
	},
	{
		.name = "cert_pem",
		.type = OT_STRING,
		.off = TLS(cert_pem),
		.flags = OPT_PEM,
		.desc = "PEM text of the client certificate. Excludes cert_file; needs a key.",
	},
	{
		.name = "cert_file",
		.type = OT_STRING,
		.off = TLS(cert_file),
		.flags = OPT_FILE,
		.desc = "File holding the client certificate (PEM); re-read when it changes.",
	},
	{
		.name = "key_pem",
		.type = OT_SECRET,
		.off = TLS(key_pem),
		.flags = OPT_PEM,
		.desc = "PEM text of the client private key. Excludes key_file; needs a "
			"certificate.",
	},
	{
		.name = "key_file",
		.type = OT_STRING,
		.off = TLS(key_file),
		.flags = OPT_FILE,
		.desc = "File holding the client private key (PEM); re-read when it changes.",
	},
	{
		.name = "server_name",
		.type = OT_STRING,
		.off = TLS(server_name),
		.desc = "Name sent in SNI and checked against the server certificate.",
	},
	{
		.name = "insecure_skip_verify",
		.type = OT_BOOL,
		.def = "false",
		.off = TLS(insecure_skip_verify),
		.desc = "Accept any server certificate. For testing only.",
	},
	{
		.name = "min_version",
		.type = OT_TLS_VERSION,
		.off = TLS(min_version),
		.desc = "Lowest TLS version accepted: TLS10, TLS11, TLS12 or TLS13 (unset: TLS12).",
	},
	{.name = NULL},
};
static const struct block tls_block = {
	.name = "tls_config",
	.opts = tls_opts,
	.validate = pw_cfg_validate_tls,
};

static const struct opt basic_auth_opts[] = {
	{
		.name = "username",
		.type = OT_STRING,
		.off = BASIC(username),
		.desc = "User name.",
	},
	{
		.name = "password",
		.type = OT_SECRET,
		.off = BASIC(password),
		.desc = "Password. Excludes password_file.",
	},
	{
		.name = "password_file",
		.type = OT_STRING,
		.off = BASIC(password_file),
		.flags = OPT_FILE,
		.desc = "File holding the password (surrounding whitespace trimmed); re-read when "
			"it changes.",
	},
	{.name = NULL},
};
static const struct block basic_auth_block = {
	.name = "basic_auth",
	.opts = basic_auth_opts,
	.validate = pw_cfg_validate_basic_auth,
};

static const struct opt authorization_opts[] = {
	{
		.name = "type",
		.type = OT_STRING,
		.def = "Bearer",
		.off = AUTHZ(type),
		.flags = OPT_HEADER_VALUE,
		.desc = "Authorization scheme; surrounding whitespace trimmed, empty means Bearer. "
			"\"Basic\" is refused: use basic_auth.",
	},
	{
		.name = "credentials",
		.type = OT_SECRET,
		.off = AUTHZ(credentials),
		.flags = OPT_HEADER_VALUE,
		.desc = "Credentials sent after the type. Excludes credentials_file.",
	},
	{
		.name = "credentials_file",
		.type = OT_STRING,
		.off = AUTHZ(credentials_file),
		.flags = OPT_FILE,
		.desc = "File holding the credentials (surrounding whitespace trimmed); re-read "
			"when it changes.",
	},
	{.name = NULL},
};
static const struct block authorization_block = {
	.name = "authorization",
	.opts = authorization_opts,
	.validate = pw_cfg_validate_authorization,
};

static const struct opt oauth2_opts[] = {
	{
		.name = "client_id",
		.type = OT_STRING,
		.off = OAUTH2(client_id),
		.flags = OPT_REQUIRED,
		.desc = "OAuth2 client ID.",
	},
	{
		.name = "client_secret",
		.type = OT_SECRET,
		.off = OAUTH2(client_secret),
		.desc = "OAuth2 client secret. Exactly one of client_secret and "
			"client_secret_file.",
	},
	{
		.name = "client_secret_file",
		.type = OT_STRING,
		.off = OAUTH2(client_secret_file),
		.flags = OPT_FILE,
		.desc = "File holding the client secret (surrounding whitespace trimmed).",
	},
	{
		.name = "token_url",
		.type = OT_STRING,
		.off = OAUTH2(token_url),
		.flags = OPT_REQUIRED | OPT_HTTP_URL,
		.desc = "Token endpoint for the client-credentials flow (absolute http or https "
			"URL).",
	},
	{
		.name = "scopes",
		.type = OT_LIST_STRING,
		.off = OAUTH2(scopes),
		.off2 = OAUTH2(nscopes),
		.desc = "Scopes to request.",
	},
	{
		.name = "endpoint_params",
		.type = OT_MAP_STRING,
		.off = OAUTH2(endpoint_params),
		.desc = "Extra form parameters sent to the token endpoint.",
	},
	PROXY_OPTS(struct pw_oauth2, proxy),
	{
		.name = "tls_config",
		.type = OT_BLOCK,
		.off = OAUTH2(tls),
		.off2 = OAUTH2(tls_set),
		.sub = &tls_block,
		.desc = "TLS settings for the token endpoint.",
	},
	{.name = NULL},
};
static const struct block oauth2_block = {
	.name = "oauth2",
	.opts = oauth2_opts,
	.validate = pw_cfg_validate_oauth2,
};

static const struct opt batch_opts[] = {
	{
		.name = "max_profiles",
		.type = OT_INT,
		.def = "100",
		.off = BATCH(max_profiles),
		.flags = OPT_RANGE,
		.min = 1,
		.max = 10000,
		.desc = "Most profiles in one request (1 to 10000).",
	},
	{
		.name = "max_bytes",
		.type = OT_INT,
		.def = "4194304",
		.off = BATCH(max_bytes),
		.flags = OPT_RANGE,
		.min = 1024,
		.max = INT64_C(64) << 20,
		.desc = "Most encoded bytes in one request (1 KiB to 64 MiB); a larger profile "
			"goes alone.",
	},
	{
		.name = "max_wait",
		.type = OT_DURATION,
		.def = "0s",
		.off = BATCH(max_wait_ns),
		.flags = OPT_RANGE,
		.min = 0,
		.max = 10 * NS_SEC,
		.desc = "How long the first profile of a batch may wait for more (0s to 10s; 0s: "
			"combine only what waits for a connection anyway).",
	},
	{.name = NULL},
};
static const struct block batch_block = {
	.name = "batch",
	.opts = batch_opts,
};

static const char *const fsync_choices[] = {"always", "interval", NULL};
static const char *const when_full_choices[] = {"drop_oldest", "refuse", NULL};

static const struct opt queue_opts[] = {
	{
		.name = "directory",
		.type = OT_STRING,
		.off = QUEUE(directory),
		.flags = OPT_REQUIRED,
		.desc = "Directory holding the queue's files; created (mode 0700, with any missing "
			"parents) if missing. One instance at a time may use it.",
	},
	{
		.name = "max_size",
		.type = OT_INT,
		.def = "1073741824",
		.off = QUEUE(max_size),
		.flags = OPT_RANGE,
		.min = INT64_C(64) << 10,
		.max = INT64_C(1) << 40,
		.desc = "Most bytes the queue's files take on disk (64 KiB to 1 TiB); when_full "
			"decides what happens at the limit.",
	},
	{
		.name = "max_age",
		.type = OT_DURATION,
		.def = "1h",
		.off = QUEUE(max_age_ns),
		.flags = OPT_RANGE,
		.min = NS_SEC,
		.max = 7 * 24 * 3600 * NS_SEC,
		.desc = "Profiles older than this are dropped instead of sent (1s to 168h).",
	},
	{
		.name = "fsync",
		.type = OT_CHOICE,
		.def = "always",
		.off = QUEUE(fsync_always),
		.choices = fsync_choices,
		.desc = "\"always\": a profile is acknowledged once it is fsynced (writers share "
			"each fsync); \"interval\": fsync every fsync_interval, so a crash loses "
			"up "
			"to that much.",
	},
	{
		.name = "fsync_interval",
		.type = OT_DURATION,
		.def = "1s",
		.off = QUEUE(fsync_interval_ns),
		.flags = OPT_RANGE,
		.min = 10 * NS_SEC / 1000,
		.max = 60 * NS_SEC,
		.applies = pw_cfg_queue_fsync_interval_applies,
		.applies_when = "fsync = \"interval\"",
		.desc = "Time between fsyncs with fsync = \"interval\" (10ms to 1m). An error "
			"with fsync = \"always\".",
	},
	{
		.name = "when_full",
		.type = OT_CHOICE,
		.def = "drop_oldest",
		.off = QUEUE(drop_oldest),
		.choices = when_full_choices,
		.desc = "At max_size or a full disk: \"drop_oldest\" drops the oldest profiles, "
			"\"refuse\" fails new ones at once.",
	},
	{.name = NULL},
};
static const struct block queue_block = {
	.name = "queue",
	.opts = queue_opts,
};

static const struct opt endpoint_opts[] = {
	{
		.name = "url",
		.type = OT_STRING,
		.off = EP(url),
		.flags = OPT_REQUIRED | OPT_HTTP_URL,
		.desc = "Base URL of the Pyroscope server (absolute http or https URL).",
	},
	{
		.name = "name",
		.type = OT_STRING,
		.off = EP(name),
		.desc = "Label of the endpoint in metrics and messages; default: the URL without "
			"credentials.",
	},
	{
		.name = "remote_timeout",
		.type = OT_DURATION,
		.def = "10s",
		.off = EP(remote_timeout_ns),
		.flags = OPT_RANGE,
		.min = 1,
		.max = INT64_MAX,
		.desc = "Timeout of one HTTP attempt; greater than 0.",
	},
	{
		.name = "headers",
		.type = OT_MAP_STRING,
		.off = EP(headers),
		.flags = OPT_HEADERS,
		.desc = "Headers set on every request (replacing a header of the same name).",
	},
	{
		.name = "http_headers",
		.type = OT_MAP_LIST_SECRET,
		.off = EP(http_headers),
		.flags = OPT_HEADERS | OPT_RESERVED,
		.desc = "Headers added to every request, each with a list of secret values. "
			"Reserved names such as Authorization or Host are refused.",
	},
	{
		.name = "min_backoff_period",
		.type = OT_DURATION,
		.def = "500ms",
		.off = EP(min_backoff_ns),
		.flags = OPT_RANGE,
		.min = 1,
		.max = INT64_MAX,
		.desc = "First wait between retries; greater than 0.",
	},
	{
		.name = "max_backoff_period",
		.type = OT_DURATION,
		.def = "5m",
		.off = EP(max_backoff_ns),
		.flags = OPT_RANGE,
		.min = 1,
		.max = INT64_MAX,
		.desc = "Longest wait between retries; at least min_backoff_period.",
	},
	{
		.name = "max_backoff_retries",
		.type = OT_INT,
		.def = "10",
		.off = EP(max_backoff_retries),
		.flags = OPT_RANGE,
		.min = 0,
		.max = INT64_MAX,
		.desc = "Attempts per delivery; 0 retries until the deadline. Not negative. Not "
			"used with a queue block: queued profiles are retried until queue.max_age.",
	},
	{
		.name = "retry_on_http_429",
		.type = OT_BOOL,
		.def = "true",
		.off = EP(retry_on_http_429),
		.desc = "Retry when the server rate-limits (HTTP 429 / resource_exhausted).",
	},
	{
		.name = "debug_info_upload_timeout",
		.type = OT_DURATION,
		.def = "2m",
		.off = EP(debug_info_upload_timeout_ns),
		.flags = OPT_IGNORED,
		.desc = "Accepted for compatibility and ignored: debug-info upload is not "
			"implemented.",
	},
	{
		.name = "bearer_token",
		.type = OT_SECRET,
		.off = EP(bearer_token),
		.flags = OPT_HEADER_VALUE,
		.desc = "Token sent in an \"Authorization: Bearer\" header.",
	},
	{
		.name = "bearer_token_file",
		.type = OT_STRING,
		.off = EP(bearer_token_file),
		.flags = OPT_FILE,
		.desc = "File holding the bearer token (surrounding whitespace trimmed); re-read "
			"when it changes.",
	},
	{
		.name = "enable_http2",
		.type = OT_BOOL,
		.def = "true",
		.off = EP(enable_http2),
		.desc = "Offer HTTP/2 through TLS ALPN (plain http:// always uses HTTP/1.1).",
	},
	{
		.name = "follow_redirects",
		.type = OT_BOOL,
		.def = "true",
		.off = EP(follow_redirects),
		.desc = "Follow redirects; when false a 3xx is the final answer.",
	},
	PROXY_OPTS(struct pw_endpoint_config, proxy),
	{
		.name = "max_connections",
		.type = OT_INT,
		.def = "32",
		.off = EP(max_connections),
		.flags = OPT_RANGE,
		.min = 1,
		.max = 1024,
		.desc = "Most requests under way to this endpoint at once (1 to 1024); the engine "
			"uses fewer while more would only queue.",
	},
	{
		.name = "tenant_label",
		.type = OT_STRING,
		.off = EP(tenant_label),
		.flags = OPT_LABEL_NAME,
		.desc = "Extension: the label whose value (after external_labels) becomes the "
			"request's X-Scope-OrgID for this endpoint, replacing a configured one.",
	},
	{
		.name = "batch",
		.type = OT_BLOCK,
		.off = EP(batch),
		.off2 = EP(batch.set),
		.sub = &batch_block,
		.desc = "Extension: combine pushes to this endpoint into one request of several "
			"series.",
	},
	{
		.name = "authorization",
		.type = OT_BLOCK,
		.off = EP(authorization),
		.off2 = EP(authorization.set),
		.sub = &authorization_block,
		.desc = "Generic Authorization header.",
	},
	{
		.name = "basic_auth",
		.type = OT_BLOCK,
		.off = EP(basic_auth),
		.off2 = EP(basic_auth.set),
		.sub = &basic_auth_block,
		.desc = "HTTP basic authentication.",
	},
	{
		.name = "oauth2",
		.type = OT_BLOCK,
		.off = EP(oauth2),
		.off2 = EP(oauth2.set),
		.sub = &oauth2_block,
		.desc = "OAuth2 client-credentials authentication.",
	},
	{
		.name = "tls_config",
		.type = OT_BLOCK,
		.off = EP(tls),
		.off2 = EP(tls_set),
		.sub = &tls_block,
		.desc = "TLS settings for https:// URLs.",
	},
	{.name = NULL},
};
const struct block pw_cfg_endpoint_block = {
	.name = "endpoint",
	.opts = endpoint_opts,
	.validate = pw_cfg_validate_endpoint,
};

static const struct opt top_opts[] = {
	{
		.name = "external_labels",
		.type = OT_MAP_STRING,
		.off = TOP(external_labels),
		.flags = OPT_LABELS,
		.desc = "Labels set on every profile sent, replacing incoming labels of the same "
			"name.",
	},
	{
		.name = "endpoint",
		.type = OT_ENDPOINTS,
		.off = TOP(endpoints),
		.off2 = TOP(nendpoints),
		.sub = &pw_cfg_endpoint_block,
		.desc = "Where profiles are sent: one object or a list of them (at most 256; none "
			"is valid).",
	},
	{
		.name = "max_inflight_bytes",
		.type = OT_INT,
		.def = "268435456",
		.off = TOP(max_inflight_bytes),
		.flags = OPT_RANGE,
		.min = 1024,
		.max = INT64_C(64) << 30,
		.desc = "Most profile bytes held for delivery at once (1 KiB to 64 GiB).",
	},
	{
		.name = "shutdown_timeout",
		.type = OT_DURATION,
		.def = "5s",
		.off = TOP(shutdown_timeout_ns),
		.flags = OPT_RANGE,
		.min = 0,
		.max = 600 * NS_SEC,
		.desc = "How long destroy waits for deliveries in flight (0s to 10m).",
	},
	{
		.name = "queue",
		.type = OT_BLOCK,
		.off = TOP(queue),
		.off2 = TOP(queue.set),
		.sub = &queue_block,
		.desc = "Extension: keep accepted profiles in a durable queue on disk until every "
			"endpoint is done with them.",
	},
	{
		.name = "tracing",
		.type = OT_ANY_OBJECT,
		.flags = OPT_IGNORED,
		.desc = "Accepted for compatibility and ignored: trace header propagation is not "
			"implemented.",
	},
	{.name = NULL},
};
const struct block pw_cfg_top_block = {
	.name = "",
	.opts = top_opts,
};

const struct block *pw_cfg_find_block(const char *name)
{
	static const struct block *const blocks[] = {
		&pw_cfg_top_block,    &pw_cfg_endpoint_block, &basic_auth_block,
		&authorization_block, &oauth2_block,	      &tls_block,
		&batch_block,	      &queue_block,
	};

	for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++)
		if (strcmp(blocks[i]->name, name) == 0)
			return blocks[i];
	return NULL;
}
