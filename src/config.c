/*
 * config.c - JSON document -> validated, immutable configuration snapshot.
 *
 * Every option is declared once, in the tables below (name, type, default,
 * where it lives in the snapshot, checks, description). Parsing, defaults,
 * unknown-key suggestions, the canonical and redacted dumps and the option
 * tables of docs/configuration.md are all driven from those tables, so an
 * option added there is handled everywhere. The checks of single values and
 * the cross-field rules are in config_check.c, the JSON and Markdown writers
 * in config_json.c.
 *
 * The parser never stops at the first problem: it walks the whole document
 * and reports every error, one per line, each prefixed with the path of the
 * value it is about. Secret values never appear in any message.
 */
#include "config_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENDPOINTS 256
#define MAX_ERRORS 100

/* ------------------------------------------------------------------------ */
/* The option tables                                                         */

#define NS_SEC INT64_C(1000000000)

#define PROXY_OPTS(type, member)                                                                   \
	{"proxy_url", OT_STRING,                                                                   \
	 NULL,	      offsetof(type, member.proxy_url),                                            \
	 0,	      OPT_PROXY_URL,                                                               \
	 0,	      0,                                                                           \
	 NULL,	      "Proxy for requests: an http, https or socks5 URL."},                        \
		{"no_proxy",                                                                       \
		 OT_STRING,                                                                        \
		 NULL,                                                                             \
		 offsetof(type, member.no_proxy),                                                  \
		 0,                                                                                \
		 OPT_NO_PROXY,                                                                     \
		 0,                                                                                \
		 0,                                                                                \
		 NULL,                                                                             \
		 "Comma-separated IP addresses, CIDR ranges and domain names (ports allowed) "     \
		 "that "                                                                           \
		 "bypass proxy_url. Requires proxy_url."},                                         \
		{"proxy_from_environment",                                                         \
		 OT_BOOL,                                                                          \
		 "false",                                                                          \
		 offsetof(type, member.proxy_from_environment),                                    \
		 0,                                                                                \
		 0,                                                                                \
		 0,                                                                                \
		 0,                                                                                \
		 NULL,                                                                             \
		 "Take the proxy from HTTP_PROXY, HTTPS_PROXY and NO_PROXY (either case). "        \
		 "Excludes "                                                                       \
		 "proxy_url and no_proxy."},                                                       \
	{                                                                                          \
		"proxy_connect_header", OT_MAP_LIST_SECRET, NULL,                                  \
			offsetof(type, member.proxy_connect_header), 0, OPT_HEADERS, 0, 0, NULL,   \
			"Headers sent to the proxy with CONNECT. Requires proxy_url or "           \
			"proxy_from_environment."                                                  \
	}

static const struct opt tls_opts[] = {
	{"ca_pem", OT_STRING, NULL, offsetof(struct pw_tls_config, ca_pem), 0, OPT_PEM, 0, 0, NULL,
	 "PEM text of the CA certificates that verify the server. Excludes ca_file."},
	{"ca_file", OT_STRING, NULL, offsetof(struct pw_tls_config, ca_file), 0, OPT_FILE, 0, 0,
	 NULL, "File holding the CA certificates (PEM); re-read when it changes."},
	{"cert_pem", OT_STRING, NULL, offsetof(struct pw_tls_config, cert_pem), 0, OPT_PEM, 0, 0,
	 NULL, "PEM text of the client certificate. Excludes cert_file; needs a key."},
	{"cert_file", OT_STRING, NULL, offsetof(struct pw_tls_config, cert_file), 0, OPT_FILE, 0, 0,
	 NULL, "File holding the client certificate (PEM); re-read when it changes."},
	{"key_pem", OT_SECRET, NULL, offsetof(struct pw_tls_config, key_pem), 0, OPT_PEM, 0, 0,
	 NULL, "PEM text of the client private key. Excludes key_file; needs a certificate."},
	{"key_file", OT_STRING, NULL, offsetof(struct pw_tls_config, key_file), 0, OPT_FILE, 0, 0,
	 NULL, "File holding the client private key (PEM); re-read when it changes."},
	{"server_name", OT_STRING, NULL, offsetof(struct pw_tls_config, server_name), 0, 0, 0, 0,
	 NULL, "Name sent in SNI and checked against the server certificate."},
	{"insecure_skip_verify", OT_BOOL, "false",
	 offsetof(struct pw_tls_config, insecure_skip_verify), 0, 0, 0, 0, NULL,
	 "Accept any server certificate. For testing only."},
	{"min_version", OT_TLS_VERSION, NULL, offsetof(struct pw_tls_config, min_version), 0, 0, 0,
	 0, NULL, "Lowest TLS version accepted: TLS10, TLS11, TLS12 or TLS13 (unset: TLS12)."},
	{NULL},
};
static const struct block tls_block = {"tls_config", tls_opts, pw_cfg_validate_tls};

static const struct opt basic_auth_opts[] = {
	{"username", OT_STRING, NULL, offsetof(struct pw_basic_auth, username), 0, 0, 0, 0, NULL,
	 "User name."},
	{"password", OT_SECRET, NULL, offsetof(struct pw_basic_auth, password), 0, 0, 0, 0, NULL,
	 "Password. Excludes password_file."},
	{"password_file", OT_STRING, NULL, offsetof(struct pw_basic_auth, password_file), 0,
	 OPT_FILE, 0, 0, NULL,
	 "File holding the password (surrounding whitespace trimmed); re-read when it changes."},
	{NULL},
};
static const struct block basic_auth_block = {"basic_auth", basic_auth_opts,
					      pw_cfg_validate_basic_auth};

static const struct opt authorization_opts[] = {
	{"type", OT_STRING, "Bearer", offsetof(struct pw_authorization, type), 0, OPT_HEADER_VALUE,
	 0, 0, NULL,
	 "Authorization scheme; surrounding whitespace trimmed, empty means Bearer. \"Basic\" "
	 "is refused: use basic_auth."},
	{"credentials", OT_SECRET, NULL, offsetof(struct pw_authorization, credentials), 0,
	 OPT_HEADER_VALUE, 0, 0, NULL,
	 "Credentials sent after the type. Excludes credentials_file."},
	{"credentials_file", OT_STRING, NULL, offsetof(struct pw_authorization, credentials_file),
	 0, OPT_FILE, 0, 0, NULL,
	 "File holding the credentials (surrounding whitespace trimmed); re-read when it "
	 "changes."},
	{NULL},
};
static const struct block authorization_block = {"authorization", authorization_opts,
						 pw_cfg_validate_authorization};

static const struct opt oauth2_opts[] = {
	{"client_id", OT_STRING, NULL, offsetof(struct pw_oauth2, client_id), 0, OPT_REQUIRED, 0, 0,
	 NULL, "OAuth2 client ID."},
	{"client_secret", OT_SECRET, NULL, offsetof(struct pw_oauth2, client_secret), 0, 0, 0, 0,
	 NULL, "OAuth2 client secret. Exactly one of client_secret and client_secret_file."},
	{"client_secret_file", OT_STRING, NULL, offsetof(struct pw_oauth2, client_secret_file), 0,
	 OPT_FILE, 0, 0, NULL, "File holding the client secret (surrounding whitespace trimmed)."},
	{"token_url", OT_STRING, NULL, offsetof(struct pw_oauth2, token_url), 0,
	 OPT_REQUIRED | OPT_HTTP_URL, 0, 0, NULL,
	 "Token endpoint for the client-credentials flow (absolute http or https URL)."},
	{"scopes", OT_LIST_STRING, NULL, offsetof(struct pw_oauth2, scopes),
	 offsetof(struct pw_oauth2, nscopes), 0, 0, 0, NULL, "Scopes to request."},
	{"endpoint_params", OT_MAP_STRING, NULL, offsetof(struct pw_oauth2, endpoint_params), 0, 0,
	 0, 0, NULL, "Extra form parameters sent to the token endpoint."},
	PROXY_OPTS(struct pw_oauth2, proxy),
	{"tls_config", OT_BLOCK, NULL, offsetof(struct pw_oauth2, tls),
	 offsetof(struct pw_oauth2, tls_set), 0, 0, 0, &tls_block,
	 "TLS settings for the token endpoint."},
	{NULL},
};
static const struct block oauth2_block = {"oauth2", oauth2_opts, pw_cfg_validate_oauth2};

#define EP(field) offsetof(struct pw_endpoint_config, field)

static const struct opt endpoint_opts[] = {
	{"url", OT_STRING, NULL, EP(url), 0, OPT_REQUIRED | OPT_HTTP_URL, 0, 0, NULL,
	 "Base URL of the Pyroscope server (absolute http or https URL)."},
	{"name", OT_STRING, NULL, EP(name), 0, 0, 0, 0, NULL,
	 "Label of the endpoint in metrics and messages; default: the URL without credentials."},
	{"remote_timeout", OT_DURATION, "10s", EP(remote_timeout_ns), 0, OPT_RANGE, 1, INT64_MAX,
	 NULL, "Timeout of one HTTP attempt; greater than 0."},
	{"headers", OT_MAP_STRING, NULL, EP(headers), 0, OPT_HEADERS, 0, 0, NULL,
	 "Headers set on every request (replacing a header of the same name)."},
	{"http_headers", OT_MAP_LIST_SECRET, NULL, EP(http_headers), 0, OPT_HEADERS | OPT_RESERVED,
	 0, 0, NULL,
	 "Headers added to every request, each with a list of secret values. Reserved names "
	 "such as Authorization or Host are refused."},
	{"min_backoff_period", OT_DURATION, "500ms", EP(min_backoff_ns), 0, OPT_RANGE, 1, INT64_MAX,
	 NULL, "First wait between retries; greater than 0."},
	{"max_backoff_period", OT_DURATION, "5m", EP(max_backoff_ns), 0, OPT_RANGE, 1, INT64_MAX,
	 NULL, "Longest wait between retries; at least min_backoff_period."},
	{"max_backoff_retries", OT_INT, "10", EP(max_backoff_retries), 0, OPT_RANGE, 0, INT64_MAX,
	 NULL, "Attempts per delivery; 0 retries until the deadline. Not negative."},
	{"retry_on_http_429", OT_BOOL, "true", EP(retry_on_http_429), 0, 0, 0, 0, NULL,
	 "Retry when the server rate-limits (HTTP 429 / resource_exhausted)."},
	{"debug_info_upload_timeout", OT_DURATION, "2m", EP(debug_info_upload_timeout_ns), 0,
	 OPT_IGNORED, 0, 0, NULL,
	 "Accepted for compatibility and ignored: debug-info upload is not implemented."},
	{"bearer_token", OT_SECRET, NULL, EP(bearer_token), 0, OPT_HEADER_VALUE, 0, 0, NULL,
	 "Token sent in an \"Authorization: Bearer\" header."},
	{"bearer_token_file", OT_STRING, NULL, EP(bearer_token_file), 0, OPT_FILE, 0, 0, NULL,
	 "File holding the bearer token (surrounding whitespace trimmed); re-read when it "
	 "changes."},
	{"enable_http2", OT_BOOL, "true", EP(enable_http2), 0, 0, 0, 0, NULL,
	 "Offer HTTP/2 through TLS ALPN (plain http:// always uses HTTP/1.1)."},
	{"follow_redirects", OT_BOOL, "true", EP(follow_redirects), 0, 0, 0, 0, NULL,
	 "Follow redirects; when false a 3xx is the final answer."},
	PROXY_OPTS(struct pw_endpoint_config, proxy),
	{"max_connections", OT_INT, "32", EP(max_connections), 0, OPT_RANGE, 1, 1024, NULL,
	 "Most requests under way to this endpoint at once (1 to 1024); the engine uses "
	 "fewer while more would only queue."},
	{"authorization", OT_BLOCK, NULL, EP(authorization), EP(authorization.set), 0, 0, 0,
	 &authorization_block, "Generic Authorization header."},
	{"basic_auth", OT_BLOCK, NULL, EP(basic_auth), EP(basic_auth.set), 0, 0, 0,
	 &basic_auth_block, "HTTP basic authentication."},
	{"oauth2", OT_BLOCK, NULL, EP(oauth2), EP(oauth2.set), 0, 0, 0, &oauth2_block,
	 "OAuth2 client-credentials authentication."},
	{"tls_config", OT_BLOCK, NULL, EP(tls), EP(tls_set), 0, 0, 0, &tls_block,
	 "TLS settings for https:// URLs."},
	{NULL},
};
static const struct block endpoint_block = {"endpoint", endpoint_opts, pw_cfg_validate_endpoint};

static const struct opt top_opts[] = {
	{"external_labels", OT_MAP_STRING, NULL, offsetof(struct pw_config, external_labels), 0,
	 OPT_LABELS, 0, 0, NULL,
	 "Labels set on every profile sent, replacing incoming labels of the same name."},
	{"endpoint", OT_ENDPOINTS, NULL, offsetof(struct pw_config, endpoints),
	 offsetof(struct pw_config, nendpoints), 0, 0, 0, &endpoint_block,
	 "Where profiles are sent: one object or a list of them (at most 256; none is valid)."},
	{"max_inflight_bytes", OT_INT, "268435456", offsetof(struct pw_config, max_inflight_bytes),
	 0, OPT_RANGE, 1024, INT64_C(64) << 30, NULL,
	 "Most profile bytes held for delivery at once (1 KiB to 64 GiB)."},
	{"shutdown_timeout", OT_DURATION, "5s", offsetof(struct pw_config, shutdown_timeout_ns), 0,
	 OPT_RANGE, 0, 600 * NS_SEC, NULL,
	 "How long destroy waits for deliveries in flight (0s to 10m)."},
	{"tracing", OT_ANY_OBJECT, NULL, 0, 0, OPT_IGNORED, 0, 0, NULL,
	 "Accepted for compatibility and ignored: trace header propagation is not "
	 "implemented."},
	{NULL},
};
const struct block pw_cfg_top_block = {"", top_opts, NULL};

const struct block *pw_cfg_find_block(const char *name)
{
	static const struct block *const blocks[] = {
		&pw_cfg_top_block,    &endpoint_block, &basic_auth_block,
		&authorization_block, &oauth2_block,   &tls_block,
	};

	for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++)
		if (strcmp(blocks[i]->name, name) == 0)
			return blocks[i];
	return NULL;
}

/* Reasons attached to the notice of an ignored option. */
static const char *ignored_reason(const char *name)
{
	if (strcmp(name, "tracing") == 0)
		return "trace header propagation is not implemented";
	return "debug-info upload is not implemented";
}

/* ------------------------------------------------------------------------ */
/* Messages and paths                                                        */

/*
 * Copies user text into dst so it is safe inside a one-line message between
 * double quotes: control bytes and quotes are escaped, long text truncated.
 */
void pw_cfg_show(char *dst, size_t n, const char *s, size_t len)
{
	size_t w = 0;

	for (size_t i = 0; i < len && w + 8 < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (i >= SHOW_LEN) {
			memcpy(dst + w, "...", 3);
			w += 3;
			break;
		}
		if (ch < 0x20 || ch == 0x7f) {
			w += (size_t)snprintf(dst + w, n - w, "\\x%02x", ch);
		} else if (ch == '"' || ch == '\\') {
			dst[w++] = '\\';
			dst[w++] = (char)ch;
		} else {
			dst[w++] = (char)ch;
		}
	}
	dst[w] = '\0';
}

/* Marks a path cut short by PATH_LEN so nobody mistakes it for a real one. */
static void fit_path(char *dst, int n)
{
	if (n >= PATH_LEN)
		memcpy(dst + PATH_LEN - 4, "...", 4);
}

void pw_cfg_path_key(char *dst, const char *parent, const char *key)
{
	char k[SHOW_LEN * 4 + 16];

	pw_cfg_show(k, sizeof(k), key, strlen(key));
	fit_path(dst, snprintf(dst, PATH_LEN, "%s%s%s", parent, *parent ? "." : "", k));
}

static void path_index(char *dst, const char *parent, size_t i)
{
	fit_path(dst, snprintf(dst, PATH_LEN, "%s[%zu]", parent, i));
}

static void path_map(char *dst, const char *parent, const char *key, size_t klen)
{
	char k[SHOW_LEN * 4 + 16];

	pw_cfg_show(k, sizeof(k), key, klen);
	fit_path(dst, snprintf(dst, PATH_LEN, "%s[\"%s\"]", parent, k));
}

void pw_cfg_err_at(struct ctx *c, const char *path, const char *fmt, ...)
{
	va_list ap;

	c->nerrs++;
	if (c->nerrs > MAX_ERRORS)
		return;
	strbuf_printf(&c->errs, "%s: ", *path ? path : "document");
	va_start(ap, fmt);
	strbuf_vprintf(&c->errs, fmt, ap);
	va_end(ap);
	strbuf_putc(&c->errs, '\n');
}

static void add_notice(struct pw_config *cfg, char *msg)
{
	char **n;

	if (!msg)
		return;
	n = realloc(cfg->notices, (cfg->nnotices + 1) * sizeof(*n));
	if (!n) {
		free(msg);
		return;
	}
	cfg->notices = n;
	cfg->notices[cfg->nnotices++] = msg;
}

const char *pw_cfg_jtype(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "bool";
	case JSON_NULL:
		return "null";
	}
	return "unknown";
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */

static void free_block(const struct block *b, char *base);

/* Returns the string of v or NULL after reporting why it is not usable. */
static const char *get_string(struct ctx *c, const char *path, json_t *v, const char *expect)
{
	const char *s;

	if (!json_is_string(v)) {
		pw_cfg_err_at(c, path, "expected %s, got %s", expect, pw_cfg_jtype(v));
		return NULL;
	}
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v)) {
		pw_cfg_err_at(c, path, "must not contain a NUL character");
		return NULL;
	}
	return s;
}

static void set_string(char **dst, const char *s, bool secret)
{
	if (secret)
		pw_secret_free(*dst);
	else
		free(*dst);
	/* An empty string means "not set", as in Alloy's Go structs. */
	*dst = s && *s ? pw_strdup(s) : NULL;
}

static void parse_scalar_string(struct ctx *c, const struct opt *o, json_t *v, char *base,
				const char *path)
{
	char **dst = (char **)(void *)(base + o->off);
	const char *s = get_string(c, path, v, "a string");

	if (!s)
		return;
	if (!*s && (o->flags & OPT_REQUIRED)) {
		pw_cfg_err_at(c, path, "must not be empty");
		return;
	}
	set_string(dst, s, o->type == OT_SECRET);
	if (!*dst)
		return;
	pw_cfg_check_string(c, o, path, s);
}

static void parse_duration(struct ctx *c, const struct opt *o, json_t *v, char *base,
			   const char *path)
{
	const char *s, *why = NULL;
	int64_t ns;
	char shown[SHOW_LEN * 4 + 16];

	if (!json_is_string(v)) {
		pw_cfg_err_at(c, path, "expected a duration string such as \"10s\", got %s",
			      pw_cfg_jtype(v));
		return;
	}
	s = get_string(c, path, v, "a duration string");
	if (!s)
		return;
	if (pw_duration_parse(s, &ns, &why) < 0) {
		pw_cfg_show(shown, sizeof(shown), s, strlen(s));
		pw_cfg_err_at(
			c, path,
			"invalid duration \"%s\": %s (examples: \"500ms\", \"10s\", \"1m30s\")",
			shown, why);
		return;
	}
	*(int64_t *)(void *)(base + o->off) = ns;
	pw_cfg_check_range(c, o, path, ns);
}

static void parse_int(struct ctx *c, const struct opt *o, json_t *v, char *base, const char *path)
{
	int64_t n;

	if (json_is_real(v)) {
		pw_cfg_err_at(c, path, "expected an integer, got a number with a fraction");
		return;
	}
	if (!json_is_integer(v)) {
		pw_cfg_err_at(c, path, "expected an integer, got %s", pw_cfg_jtype(v));
		return;
	}
	n = (int64_t)json_integer_value(v);
	*(int64_t *)(void *)(base + o->off) = n;
	pw_cfg_check_range(c, o, path, n);
}

static void parse_tls_version(struct ctx *c, const struct opt *o, json_t *v, char *base,
			      const char *path)
{
	const char *s = get_string(c, path, v, "a string such as \"TLS12\"");

	if (!s)
		return;
	if (!*s)
		return; /* empty: unset, as in Alloy */
	pw_cfg_check_tls_version(c, path, s, (enum pw_tls_version *)(void *)(base + o->off));
}

static void parse_map_string(struct ctx *c, const struct opt *o, json_t *v, char *base,
			     const char *path)
{
	struct pw_kvmap *m = (struct pw_kvmap *)(void *)(base + o->off);
	const char *key;
	json_t *val;
	char cpath[PATH_LEN];

	if (!json_is_object(v)) {
		pw_cfg_err_at(c, path, "expected an object of strings, got %s", pw_cfg_jtype(v));
		return;
	}
	m->items = calloc(json_object_size(v) + 1, sizeof(*m->items));
	if (!m->items) {
		pw_cfg_err_at(c, path, "out of memory");
		return;
	}
	json_object_foreach(v, key, val)
	{
		path_map(cpath, path, key, strlen(key));
		pw_cfg_check_map_key(c, o, cpath, key);
		if (!pw_cfg_check_map_value(c, o, cpath, val))
			continue;
		m->items[m->n].key = pw_strdup(key);
		m->items[m->n].value = pw_strdup(json_string_value(val));
		m->n++;
	}
}

static void parse_map_list(struct ctx *c, const struct opt *o, json_t *v, char *base,
			   const char *path)
{
	struct pw_kvlistmap *m = (struct pw_kvlistmap *)(void *)(base + o->off);
	const char *key;
	json_t *val;
	char cpath[PATH_LEN], ipath[PATH_LEN];

	if (!json_is_object(v)) {
		pw_cfg_err_at(c, path, "expected an object of string lists, got %s",
			      pw_cfg_jtype(v));
		return;
	}
	m->items = calloc(json_object_size(v) + 1, sizeof(*m->items));
	if (!m->items) {
		pw_cfg_err_at(c, path, "out of memory");
		return;
	}
	json_object_foreach(v, key, val)
	{
		struct pw_kvlist *item;
		size_t i;
		json_t *e;

		path_map(cpath, path, key, strlen(key));
		pw_cfg_check_map_key(c, o, cpath, key);
		if (!json_is_array(val)) {
			pw_cfg_err_at(c, cpath, "expected a list of strings, got %s",
				      pw_cfg_jtype(val));
			continue;
		}
		item = &m->items[m->n++];
		item->key = pw_strdup(key);
		item->values = calloc(json_array_size(val) + 1, sizeof(*item->values));
		if (!item->values)
			continue;
		json_array_foreach(val, i, e)
		{
			path_index(ipath, cpath, i);
			if (pw_cfg_check_map_value(c, o, ipath, e))
				item->values[item->nvalues++] = pw_strdup(json_string_value(e));
		}
	}
}

static void parse_list_string(struct ctx *c, const struct opt *o, json_t *v, char *base,
			      const char *path)
{
	char ***dst = (char ***)(void *)(base + o->off);
	size_t *n = (size_t *)(void *)(base + o->off2);
	char ipath[PATH_LEN];
	size_t i;
	json_t *e;

	if (!json_is_array(v)) {
		pw_cfg_err_at(c, path, "expected a list of strings, got %s", pw_cfg_jtype(v));
		return;
	}
	*dst = calloc(json_array_size(v) + 1, sizeof(**dst));
	if (!*dst) {
		pw_cfg_err_at(c, path, "out of memory");
		return;
	}
	json_array_foreach(v, i, e)
	{
		const char *s;

		path_index(ipath, path, i);
		s = get_string(c, ipath, e, "a string");
		if (s)
			(*dst)[(*n)++] = pw_strdup(s);
	}
}

static void parse_block(struct ctx *c, const struct block *b, json_t *obj, char *base,
			const char *path);

static void parse_endpoints(struct ctx *c, const struct opt *o, json_t *v, char *base,
			    const char *path)
{
	struct pw_endpoint_config **eps = (struct pw_endpoint_config **)(void *)(base + o->off);
	size_t *n = (size_t *)(void *)(base + o->off2);
	size_t count = json_is_array(v) ? json_array_size(v) : 1;
	char ipath[PATH_LEN];

	if (!json_is_array(v) && !json_is_object(v)) {
		pw_cfg_err_at(c, path, "expected an endpoint object or a list of them, got %s",
			      pw_cfg_jtype(v));
		return;
	}
	if (count > MAX_ENDPOINTS) {
		pw_cfg_err_at(c, path, "at most %d endpoints are supported, got %zu", MAX_ENDPOINTS,
			      count);
		return;
	}
	*eps = calloc(count + 1, sizeof(**eps));
	if (!*eps) {
		pw_cfg_err_at(c, path, "out of memory");
		return;
	}
	*n = count;
	for (size_t i = 0; i < count; i++) {
		json_t *e = json_is_array(v) ? json_array_get(v, i) : v;

		path_index(ipath, path, i);
		if (!json_is_object(e)) {
			pw_cfg_err_at(c, ipath, "expected an endpoint object, got %s",
				      pw_cfg_jtype(e));
			continue;
		}
		parse_block(c, o->sub, e, (char *)&(*eps)[i], ipath);
	}
}

static void parse_opt(struct ctx *c, const struct opt *o, json_t *v, char *base, const char *path)
{
	switch (o->type) {
	case OT_STRING:
	case OT_SECRET:
		parse_scalar_string(c, o, v, base, path);
		break;
	case OT_BOOL:
		if (!json_is_boolean(v))
			pw_cfg_err_at(c, path, "expected a bool (true or false), got %s",
				      pw_cfg_jtype(v));
		else
			*(bool *)(void *)(base + o->off) = json_is_true(v);
		break;
	case OT_INT:
		parse_int(c, o, v, base, path);
		break;
	case OT_DURATION:
		parse_duration(c, o, v, base, path);
		break;
	case OT_TLS_VERSION:
		parse_tls_version(c, o, v, base, path);
		break;
	case OT_MAP_STRING:
		parse_map_string(c, o, v, base, path);
		break;
	case OT_MAP_LIST_SECRET:
		parse_map_list(c, o, v, base, path);
		break;
	case OT_LIST_STRING:
		parse_list_string(c, o, v, base, path);
		break;
	case OT_BLOCK:
		if (!json_is_object(v)) {
			pw_cfg_err_at(c, path, "expected an object (a %s block), got %s", o->name,
				      pw_cfg_jtype(v));
			break;
		}
		*(bool *)(void *)(base + o->off2) = true;
		parse_block(c, o->sub, v, base + o->off, path);
		break;
	case OT_ENDPOINTS:
		parse_endpoints(c, o, v, base, path);
		break;
	case OT_ANY_OBJECT:
		if (!json_is_object(v))
			pw_cfg_err_at(c, path, "expected an object (a %s block), got %s", o->name,
				      pw_cfg_jtype(v));
		break;
	}
	if ((o->flags & OPT_IGNORED) && c->cfg)
		add_notice(c->cfg, pw_asprintf("%s is accepted and ignored: %s", path,
					       ignored_reason(o->name)));
}

static void apply_defaults(const struct block *b, char *base)
{
	for (const struct opt *o = b->opts; o->name; o++) {
		if (!o->def)
			continue;
		switch (o->type) {
		case OT_STRING:
			set_string((char **)(void *)(base + o->off), o->def, false);
			break;
		case OT_BOOL:
			*(bool *)(void *)(base + o->off) = strcmp(o->def, "true") == 0;
			break;
		case OT_INT:
			*(int64_t *)(void *)(base + o->off) = strtoll(o->def, NULL, 10);
			break;
		case OT_DURATION:
			pw_duration_parse(o->def, (int64_t *)(void *)(base + o->off), NULL);
			break;
		default:
			break;
		}
	}
}

static const struct opt *find_opt(const struct block *b, const char *name)
{
	for (const struct opt *o = b->opts; o->name; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

static void parse_block(struct ctx *c, const struct block *b, json_t *obj, char *base,
			const char *path)
{
	const char *key;
	json_t *v;
	char cpath[PATH_LEN];

	apply_defaults(b, base);
	json_object_foreach(obj, key, v)
	{
		const struct opt *o = find_opt(b, key);

		pw_cfg_path_key(cpath, path, key);
		if (!o) {
			pw_cfg_unknown_key(c, b, cpath, key);
			continue;
		}
		/* null is the same as leaving the attribute out. */
		if (json_is_null(v))
			continue;
		parse_opt(c, o, v, base, cpath);
	}
	for (const struct opt *o = b->opts; o->name; o++) {
		json_t *given = json_object_get(obj, o->name);

		if ((o->flags & OPT_REQUIRED) && (!given || json_is_null(given))) {
			pw_cfg_path_key(cpath, path, o->name);
			pw_cfg_err_at(c, cpath, "required attribute is missing");
		}
	}
	if (b->validate)
		b->validate(c, path, base);
}

/* ------------------------------------------------------------------------ */
/* The public API                                                            */

static void finish_endpoints(struct ctx *c, struct pw_config *cfg)
{
	for (size_t i = 0; i < cfg->nendpoints; i++) {
		struct pw_endpoint_config *e = &cfg->endpoints[i];

		e->canonical = pw_cfg_emit(&endpoint_block, e, false);
		e->display = pw_cfg_display_name(e);
		if (!e->canonical || !e->display)
			pw_cfg_err_at(c, "", "out of memory");
	}
}

int pw_config_parse(const char *text, struct pw_config **out, char **errors)
{
	struct ctx c = {STRBUF_INIT, 0, NULL};
	struct pw_config *cfg = NULL;
	json_t *root = NULL;
	json_error_t jerr;
	size_t len;
	int rc = -1;

	*out = NULL;
	if (errors)
		*errors = NULL;
	strbuf_init(&c.errs, 1 << 20);
	if (!text) {
		pw_cfg_err_at(&c, "", "no document");
		goto out;
	}
	if (pw_cfg_precheck(&c, text, &len))
		goto out;
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY,
			  &jerr);
	if (!root) {
		c.nerrs++;
		strbuf_printf(&c.errs, "line %d, column %d: %s\n", jerr.line, jerr.column,
			      jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		pw_cfg_err_at(&c, "", "expected a JSON object at the top level, got %s",
			      pw_cfg_jtype(root));
		goto out;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		pw_cfg_err_at(&c, "", "out of memory");
		goto out;
	}
	c.cfg = cfg;
	parse_block(&c, &pw_cfg_top_block, root, (char *)cfg, "");
	if (c.nerrs == 0)
		finish_endpoints(&c, cfg);
	if (c.nerrs == 0) {
		cfg->canonical = pw_cfg_emit(&pw_cfg_top_block, cfg, false);
		if (!cfg->canonical)
			pw_cfg_err_at(&c, "", "out of memory");
	}
	if (c.nerrs == 0) {
		*out = cfg;
		cfg = NULL;
		rc = 0;
	}
out:
	if (c.nerrs > MAX_ERRORS)
		strbuf_printf(&c.errs, "... and %zu more problems\n", c.nerrs - MAX_ERRORS);
	if (rc < 0 && errors) {
		size_t n = 0;

		*errors = strbuf_detach(&c.errs, &n);
		/* One line per problem, without a trailing newline. */
		if (*errors && n > 0 && (*errors)[n - 1] == '\n')
			(*errors)[n - 1] = '\0';
	}
	strbuf_free(&c.errs);
	json_decref(root);
	pw_config_free(cfg);
	return rc;
}

static void free_kvlistmap(struct pw_kvlistmap *m)
{
	for (size_t i = 0; i < m->n; i++) {
		for (size_t j = 0; j < m->items[i].nvalues; j++)
			pw_secret_free(m->items[i].values[j]);
		free(m->items[i].values);
		free(m->items[i].key);
	}
	free(m->items);
}

static void free_kvmap(struct pw_kvmap *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->items[i].key);
		free(m->items[i].value);
	}
	free(m->items);
}

static void free_block(const struct block *b, char *base)
{
	for (const struct opt *o = b->opts; o->name; o++) {
		void *p = base + o->off;

		switch (o->type) {
		case OT_STRING:
			free(*(char **)p);
			break;
		case OT_SECRET:
			pw_secret_free(*(char **)p);
			break;
		case OT_MAP_STRING:
			free_kvmap(p);
			break;
		case OT_MAP_LIST_SECRET:
			free_kvlistmap(p);
			break;
		case OT_LIST_STRING: {
			char **list = *(char ***)p;
			size_t n = *(size_t *)(void *)(base + o->off2);

			for (size_t i = 0; i < n; i++)
				free(list[i]);
			free(list);
			break;
		}
		case OT_BLOCK:
			free_block(o->sub, p);
			break;
		case OT_ENDPOINTS: {
			struct pw_endpoint_config *eps = *(struct pw_endpoint_config **)p;
			size_t n = *(size_t *)(void *)(base + o->off2);

			for (size_t i = 0; i < n; i++) {
				free_block(o->sub, (char *)&eps[i]);
				pw_secret_free(eps[i].canonical);
				free(eps[i].display);
			}
			free(eps);
			break;
		}
		default:
			break;
		}
	}
}

void pw_config_free(struct pw_config *cfg)
{
	if (!cfg)
		return;
	free_block(&pw_cfg_top_block, (char *)cfg);
	pw_secret_free(cfg->canonical);
	for (size_t i = 0; i < cfg->nnotices; i++)
		free(cfg->notices[i]);
	free(cfg->notices);
	free(cfg);
}

void pw_secret_free(char *s)
{
	if (!s)
		return;
	pw_memzero(s, strlen(s));
	free(s);
}
