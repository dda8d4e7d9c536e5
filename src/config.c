/*
 * config.c - JSON document -> validated, immutable configuration snapshot.
 *
 * Every option is declared once, in the tables below (name, type, default,
 * where it lives in the snapshot, checks, description). Parsing, defaults,
 * unknown-key suggestions, the canonical and redacted dumps and the option
 * tables of docs/configuration.md are all driven from those tables, so an
 * option added there is handled everywhere.
 *
 * The parser never stops at the first problem: it walks the whole document
 * and reports every error, one per line, each prefixed with the path of the
 * value it is about. Secret values never appear in any message.
 */
#include "config.h"

#include "filewatch.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DOC_SIZE ((size_t)16 << 20)
#define MAX_DEPTH 64
#define MAX_ENDPOINTS 256
#define MAX_ERRORS 100
#define PATH_LEN 512
#define SHOW_LEN 64 /* longest user text quoted in a message */

enum opt_type {
	OT_STRING,
	OT_SECRET,
	OT_BOOL,
	OT_INT,
	OT_DURATION,
	OT_TLS_VERSION,
	OT_MAP_STRING,
	OT_MAP_LIST_SECRET,
	OT_LIST_STRING,
	OT_BLOCK,
	OT_ENDPOINTS,
	OT_ANY_OBJECT,
};

#define OPT_REQUIRED (1u << 0)
#define OPT_FILE (1u << 1) /* must be readable at parse time */
#define OPT_PEM (1u << 2) /* must look like PEM text */
#define OPT_HTTP_URL (1u << 3) /* absolute http(s) URL with a host */
#define OPT_PROXY_URL (1u << 4) /* absolute http(s)/socks5 URL with a host */
#define OPT_NO_PROXY (1u << 5) /* comma list of IPs, CIDRs, domains */
#define OPT_HEADERS (1u << 6) /* keys are header names, values header values */
#define OPT_RESERVED (1u << 7) /* reserved header names are refused */
#define OPT_LABELS (1u << 8) /* keys are label names */
#define OPT_IGNORED (1u << 9) /* accepted, not acted on; logs a notice */
#define OPT_RANGE (1u << 10) /* min/max apply */

struct block;
struct ctx;

struct opt {
	const char *name;
	enum opt_type type;
	const char *def; /* default in document syntax; NULL = none */
	size_t off; /* destination inside the block's struct */
	size_t off2; /* OT_LIST_STRING: count; OT_BLOCK: the "set" flag */
	unsigned flags;
	int64_t min, max; /* with OPT_RANGE */
	const struct block *sub;
	const char *desc;
};

struct block {
	const char *name;
	const struct opt *opts; /* terminated by an entry with name NULL */
	void (*validate)(struct ctx *c, const char *path, void *base);
};

struct ctx {
	struct strbuf errs;
	size_t nerrs;
	struct pw_config *cfg;
};

static void validate_endpoint(struct ctx *c, const char *path, void *base);
static void validate_basic_auth(struct ctx *c, const char *path, void *base);
static void validate_authorization(struct ctx *c, const char *path, void *base);
static void validate_oauth2(struct ctx *c, const char *path, void *base);
static void validate_tls(struct ctx *c, const char *path, void *base);

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
static const struct block tls_block = {"tls_config", tls_opts, validate_tls};

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
static const struct block basic_auth_block = {"basic_auth", basic_auth_opts, validate_basic_auth};

static const struct opt authorization_opts[] = {
	{"type", OT_STRING, "Bearer", offsetof(struct pw_authorization, type), 0, 0, 0, 0, NULL,
	 "Authorization scheme; surrounding whitespace trimmed, empty means Bearer. \"Basic\" "
	 "is refused: use basic_auth."},
	{"credentials", OT_SECRET, NULL, offsetof(struct pw_authorization, credentials), 0, 0, 0, 0,
	 NULL, "Credentials sent after the type. Excludes credentials_file."},
	{"credentials_file", OT_STRING, NULL, offsetof(struct pw_authorization, credentials_file),
	 0, OPT_FILE, 0, 0, NULL,
	 "File holding the credentials (surrounding whitespace trimmed); re-read when it "
	 "changes."},
	{NULL},
};
static const struct block authorization_block = {"authorization", authorization_opts,
						 validate_authorization};

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
static const struct block oauth2_block = {"oauth2", oauth2_opts, validate_oauth2};

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
	{"bearer_token", OT_SECRET, NULL, EP(bearer_token), 0, 0, 0, 0, NULL,
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
	 "Most connections open to this endpoint at once (1 to 1024)."},
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
static const struct block endpoint_block = {"endpoint", endpoint_opts, validate_endpoint};

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
static const struct block top_block = {"", top_opts, NULL};

/* Reasons attached to the notice of an ignored option. */
static const char *ignored_reason(const char *name)
{
	if (strcmp(name, "tracing") == 0)
		return "trace header propagation is not implemented";
	return "debug-info upload is not implemented";
}

/* Header names prometheus/common refuses in http_headers (canonical form). */
static const char *const reserved_headers[] = {
	"Authorization",
	"Host",
	"Content-Encoding",
	"Content-Length",
	"Content-Type",
	"User-Agent",
	"Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Www-Authenticate",
	"Accept-Encoding",
	"X-Prometheus-Remote-Write-Version",
	"X-Prometheus-Remote-Read-Version",
	"X-Prometheus-Scrape-Timeout-Seconds",
	"X-Amz-Date",
	"X-Amz-Security-Token",
	"X-Amz-Content-Sha256",
};

/* ------------------------------------------------------------------------ */
/* Messages and paths                                                        */

/*
 * Copies user text into dst so it is safe inside a one-line message between
 * double quotes: control bytes and quotes are escaped, long text truncated.
 */
static void show(char *dst, size_t n, const char *s, size_t len)
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

static void path_key(char *dst, const char *parent, const char *key)
{
	char k[SHOW_LEN * 4 + 16];

	show(k, sizeof(k), key, strlen(key));
	fit_path(dst, snprintf(dst, PATH_LEN, "%s%s%s", parent, *parent ? "." : "", k));
}

static void path_index(char *dst, const char *parent, size_t i)
{
	fit_path(dst, snprintf(dst, PATH_LEN, "%s[%zu]", parent, i));
}

static void path_map(char *dst, const char *parent, const char *key, size_t klen)
{
	char k[SHOW_LEN * 4 + 16];

	show(k, sizeof(k), key, klen);
	fit_path(dst, snprintf(dst, PATH_LEN, "%s[\"%s\"]", parent, k));
}

static void err_at(struct ctx *c, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void err_at(struct ctx *c, const char *path, const char *fmt, ...)
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

static const char *jtype(const json_t *v)
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

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[SHOW_LEN + 1];

	if (la > SHOW_LEN || lb > SHOW_LEN)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (tolower((unsigned char)a[i - 1]) !=
					      tolower((unsigned char)b[j - 1]));

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static void unknown_key(struct ctx *c, const struct block *b, const char *path, const char *key)
{
	const char *best = NULL;
	size_t bestd = 3;

	for (const struct opt *o = b->opts; o->name; o++) {
		size_t d = edit_distance(key, o->name);

		if (d < bestd) {
			bestd = d;
			best = o->name;
		}
	}
	if (best)
		err_at(c, path, "unknown attribute; did you mean \"%s\"?", best);
	else
		err_at(c, path, "unknown attribute");
}

/* ------------------------------------------------------------------------ */
/* Value checks                                                              */

static bool is_tchar(unsigned char ch)
{
	return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool header_name_ok(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return true;
}

static bool header_value_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
			return false;
	return true;
}

/* Go's textproto canonical form: "x-scope-orgid" -> "X-Scope-Orgid". */
static void canonical_header(char *dst, size_t n, const char *s)
{
	bool upper = true;
	size_t i;

	for (i = 0; s[i] && i + 1 < n; i++) {
		char ch = s[i];

		dst[i] =
			upper ? (char)toupper((unsigned char)ch) : (char)tolower((unsigned char)ch);
		upper = ch == '-';
	}
	dst[i] = '\0';
}

static bool label_name_ok(const char *s)
{
	if (!*s)
		return false;
	if (strcmp(s, "__name__") == 0)
		return true;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.')
			return false;
	return true;
}

static bool port_ok(const char *p, size_t n)
{
	unsigned long v = 0;

	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]))
			return false;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	return v <= 65535;
}

static bool ip_ok(int af, const char *s, size_t n)
{
	char buf[64];
	unsigned char addr[16];

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(af, buf, addr) == 1;
}

static bool host_char_ok(unsigned char ch)
{
	return isalnum(ch) || ch >= 0x80 || (ch && strchr("-._~%!$&'()*+,;=", ch));
}

/*
 * Checks host[:port] or [v6]:port. Returns NULL when fine, else a reason.
 */
static const char *hostport_check(const char *s, size_t n)
{
	const char *colon;
	size_t hlen;

	if (n > 0 && s[0] == '[') {
		const char *end = memchr(s, ']', n);
		size_t zone;

		if (!end)
			return "invalid IPv6 host";
		hlen = (size_t)(end - s - 1);
		zone = hlen;
		for (size_t i = 0; i < hlen; i++)
			if (s[1 + i] == '%') {
				zone = i;
				break;
			}
		if (!ip_ok(AF_INET6, s + 1, zone))
			return "invalid IPv6 host";
		s = end + 1;
		n -= hlen + 2;
		if (n == 0)
			return NULL;
		if (s[0] != ':' || !port_ok(s + 1, n - 1))
			return "invalid port";
		return NULL;
	}
	colon = memchr(s, ':', n);
	hlen = colon ? (size_t)(colon - s) : n;
	if (hlen == 0)
		return "missing host";
	for (size_t i = 0; i < hlen; i++)
		if (!host_char_ok((unsigned char)s[i]))
			return "invalid character in host";
	if (colon && !port_ok(colon + 1, n - hlen - 1))
		return "invalid port";
	return NULL;
}

/*
 * Checks that u is an absolute URL with one of the schemes and a host.
 * The reason never quotes the URL: it may hold a password.
 */
static bool url_check(const char *u, const char *const *schemes, char *why, size_t whylen)
{
	const char *sep = strstr(u, "://");
	const char *auth, *end, *at;
	size_t slen;
	const char *reason;
	bool known = false;

	for (const char *p = u; *p; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
			snprintf(why, whylen, "contains a space or control character");
			return false;
		}
	}
	if (!sep || sep == u) {
		snprintf(why, whylen, "not an absolute URL (expected scheme://host)");
		return false;
	}
	slen = (size_t)(sep - u);
	for (size_t i = 0; i < slen; i++) {
		unsigned char ch = (unsigned char)u[i];

		if (!(isalpha(ch) ||
		      (i > 0 && (isdigit(ch) || ch == '+' || ch == '-' || ch == '.')))) {
			snprintf(why, whylen, "not an absolute URL (expected scheme://host)");
			return false;
		}
	}
	for (size_t i = 0; schemes[i]; i++)
		if (strlen(schemes[i]) == slen && strncasecmp(u, schemes[i], slen) == 0)
			known = true;
	if (!known) {
		char s[SHOW_LEN * 4 + 16];

		show(s, sizeof(s), u, slen);
		if (snprintf(why, whylen, "unsupported scheme \"%s\"", s) >= (int)whylen)
			snprintf(why, whylen, "unsupported scheme");
		return false;
	}
	auth = sep + 3;
	end = auth + strcspn(auth, "/?#");
	at = NULL;
	for (const char *p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	if (at)
		auth = at + 1;
	reason = hostport_check(auth, (size_t)(end - auth));
	if (reason) {
		snprintf(why, whylen, "%s", reason);
		return false;
	}
	return true;
}

static const char *const http_schemes[] = {"http", "https", NULL};
static const char *const proxy_schemes[] = {"http", "https", "socks5", NULL};

static bool domain_ok(const char *s, size_t n)
{
	size_t label = 0;

	if (n >= 2 && s[0] == '*' && s[1] == '.') {
		s += 2;
		n -= 2;
	} else if (n >= 1 && s[0] == '.') {
		s++;
		n--;
	}
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum(ch) || ch == '-' || ch == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

static bool cidr_ok(const char *s, size_t n)
{
	const char *slash = memchr(s, '/', n);
	size_t plen = (size_t)(slash - s);
	int af;
	unsigned long bits = 0, maxbits;
	size_t dn = n - plen - 1;

	af = memchr(s, ':', plen) ? AF_INET6 : AF_INET;
	maxbits = af == AF_INET6 ? 128 : 32;
	if (!ip_ok(af, s, plen) || dn == 0 || dn > 3)
		return false;
	for (size_t i = 0; i < dn; i++) {
		if (!isdigit((unsigned char)slash[1 + i]))
			return false;
		bits = bits * 10 + (unsigned long)(slash[1 + i] - '0');
	}
	return bits <= maxbits;
}

static bool no_proxy_entry_ok(const char *s, size_t n)
{
	const char *colon;

	if (n == 1 && s[0] == '*')
		return true;
	if (memchr(s, '/', n))
		return cidr_ok(s, n);
	if (s[0] == '[') {
		const char *end = memchr(s, ']', n);
		size_t rest;

		if (!end || !ip_ok(AF_INET6, s + 1, (size_t)(end - s - 1)))
			return false;
		rest = n - (size_t)(end - s) - 1;
		return rest == 0 || (end[1] == ':' && port_ok(end + 2, rest - 1));
	}
	if (ip_ok(AF_INET6, s, n))
		return true;
	colon = memchr(s, ':', n);
	if (colon) {
		if (!port_ok(colon + 1, n - (size_t)(colon - s) - 1))
			return false;
		n = (size_t)(colon - s);
	}
	return ip_ok(AF_INET, s, n) || domain_ok(s, n);
}

static void check_no_proxy(struct ctx *c, const char *path, const char *list)
{
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ",");
		const char *e = p;
		size_t en = n;

		while (en > 0 && isspace((unsigned char)*e)) {
			e++;
			en--;
		}
		while (en > 0 && isspace((unsigned char)e[en - 1]))
			en--;
		if (en > 0 && !no_proxy_entry_ok(e, en)) {
			char s[SHOW_LEN * 4 + 16];

			show(s, sizeof(s), e, en);
			err_at(c, path,
			       "entry \"%s\" is not an IP address, CIDR range or domain name "
			       "(with an optional port)",
			       s);
		}
		p += n;
		if (*p == ',')
			p++;
	}
}

/*
 * Readable now? Reads one byte only: the content may be a secret. Only
 * regular files qualify (a FIFO would block the reader, and change detection
 * relies on stat), and O_NONBLOCK keeps open() itself from waiting.
 */
static void check_file(struct ctx *c, const char *path, const char *file)
{
	char b, s[SHOW_LEN * 4 + 16];
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	const char *why = NULL;
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (read(fd, &b, 1) < 0)
		why = strerror(errno);
	pw_memzero(&b, 1);
	if (fd >= 0)
		close(fd);
	if (!why)
		return;
	show(s, sizeof(s), file, strlen(file));
	err_at(c, path, "cannot read \"%s\": %s", s, why);
}

static void format_range_value(const struct opt *o, int64_t v, char *buf, size_t n)
{
	if (o->type == OT_DURATION)
		pw_duration_format(v, buf, n);
	else
		snprintf(buf, n, "%lld", (long long)v);
}

static void check_range(struct ctx *c, const struct opt *o, const char *path, int64_t v)
{
	char got[48], lo[48], hi[48];

	if (!(o->flags & OPT_RANGE) || (v >= o->min && v <= o->max))
		return;
	format_range_value(o, v, got, sizeof(got));
	format_range_value(o, o->min, lo, sizeof(lo));
	format_range_value(o, o->max, hi, sizeof(hi));
	if (o->max == INT64_MAX && o->min == 1)
		err_at(c, path, "must be greater than 0, got %s", got);
	else if (o->max == INT64_MAX && o->min == 0)
		err_at(c, path, "must not be negative, got %s", got);
	else
		err_at(c, path, "must be between %s and %s, got %s", lo, hi, got);
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */

static void free_block(const struct block *b, char *base);

/* Returns the string of v or NULL after reporting why it is not usable. */
static const char *get_string(struct ctx *c, const char *path, json_t *v, const char *expect)
{
	const char *s;

	if (!json_is_string(v)) {
		err_at(c, path, "expected %s, got %s", expect, jtype(v));
		return NULL;
	}
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v)) {
		err_at(c, path, "must not contain a NUL character");
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
		err_at(c, path, "must not be empty");
		return;
	}
	set_string(dst, s, o->type == OT_SECRET);
	if (!*dst)
		return;
	if (o->flags & OPT_FILE)
		check_file(c, path, s);
	if ((o->flags & OPT_PEM) && !strstr(s, "-----BEGIN "))
		err_at(c, path, "does not look like PEM text (no \"-----BEGIN \" line)");
	if (o->flags & (OPT_HTTP_URL | OPT_PROXY_URL)) {
		char why[160];
		bool proxy = o->flags & OPT_PROXY_URL;

		if (!url_check(s, proxy ? proxy_schemes : http_schemes, why, sizeof(why)))
			err_at(c, path, "must be an absolute %s URL with a host: %s",
			       proxy ? "http, https or socks5" : "http or https", why);
	}
	if (o->flags & OPT_NO_PROXY)
		check_no_proxy(c, path, s);
}

static void parse_duration(struct ctx *c, const struct opt *o, json_t *v, char *base,
			   const char *path)
{
	const char *s, *why = NULL;
	int64_t ns;
	char shown[SHOW_LEN * 4 + 16];

	if (!json_is_string(v)) {
		err_at(c, path, "expected a duration string such as \"10s\", got %s", jtype(v));
		return;
	}
	s = get_string(c, path, v, "a duration string");
	if (!s)
		return;
	if (pw_duration_parse(s, &ns, &why) < 0) {
		show(shown, sizeof(shown), s, strlen(s));
		err_at(c, path,
		       "invalid duration \"%s\": %s (examples: \"500ms\", \"10s\", \"1m30s\")",
		       shown, why);
		return;
	}
	*(int64_t *)(void *)(base + o->off) = ns;
	check_range(c, o, path, ns);
}

static void parse_int(struct ctx *c, const struct opt *o, json_t *v, char *base, const char *path)
{
	int64_t n;

	if (json_is_real(v)) {
		err_at(c, path, "expected an integer, got a number with a fraction");
		return;
	}
	if (!json_is_integer(v)) {
		err_at(c, path, "expected an integer, got %s", jtype(v));
		return;
	}
	n = (int64_t)json_integer_value(v);
	*(int64_t *)(void *)(base + o->off) = n;
	check_range(c, o, path, n);
}

static void parse_tls_version(struct ctx *c, const struct opt *o, json_t *v, char *base,
			      const char *path)
{
	static const struct {
		const char *name;
		enum pw_tls_version v;
	} versions[] = {
		{"TLS10", PW_TLS10},
		{"TLS11", PW_TLS11},
		{"TLS12", PW_TLS12},
		{"TLS13", PW_TLS13},
	};
	const char *s = get_string(c, path, v, "a string such as \"TLS12\"");
	char shown[SHOW_LEN * 4 + 16];

	if (!s)
		return;
	if (!*s)
		return; /* empty: unset, as in Alloy */
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		if (strcmp(s, versions[i].name) == 0) {
			*(enum pw_tls_version *)(void *)(base + o->off) = versions[i].v;
			return;
		}
	}
	show(shown, sizeof(shown), s, strlen(s));
	err_at(c, path, "unknown TLS version \"%s\"; expected one of TLS10, TLS11, TLS12, TLS13",
	       shown);
}

/* Name checks shared by the three map kinds. */
static void check_map_key(struct ctx *c, const struct opt *o, const char *path, const char *key)
{
	char shown[SHOW_LEN * 4 + 16];

	show(shown, sizeof(shown), key, strlen(key));
	if ((o->flags & OPT_HEADERS) && !header_name_ok(key, strlen(key))) {
		err_at(c, path, "\"%s\" is not a valid HTTP header name", shown);
		return;
	}
	if (o->flags & OPT_RESERVED) {
		char canon[256];

		canonical_header(canon, sizeof(canon), key);
		for (size_t i = 0; i < sizeof(reserved_headers) / sizeof(reserved_headers[0]); i++)
			if (strcmp(canon, reserved_headers[i]) == 0)
				err_at(c, path, "setting header \"%s\" is not allowed", canon);
	}
	if ((o->flags & OPT_LABELS) && !label_name_ok(key))
		err_at(c, path,
		       "invalid label name \"%s\": use letters, digits, \"_\" and \".\" only "
		       "(or exactly \"__name__\")",
		       shown);
}

/* A value that goes on the wire as a header value or a label value. */
static bool check_map_value(struct ctx *c, const struct opt *o, const char *path, json_t *v)
{
	const char *s;
	size_t len;

	if (!json_is_string(v)) {
		err_at(c, path, "expected a string, got %s", jtype(v));
		return false;
	}
	s = json_string_value(v);
	len = json_string_length(v);
	if (o->flags & OPT_HEADERS) {
		if (!header_value_ok(s, len)) {
			err_at(c, path, "header value must not contain CR, LF or NUL");
			return false;
		}
	} else if (strlen(s) != len) {
		err_at(c, path, "must not contain a NUL character");
		return false;
	} else if (!pw_utf8_valid(s, len)) {
		err_at(c, path, "value is not valid UTF-8");
		return false;
	}
	return true;
}

static void parse_map_string(struct ctx *c, const struct opt *o, json_t *v, char *base,
			     const char *path)
{
	struct pw_kvmap *m = (struct pw_kvmap *)(void *)(base + o->off);
	const char *key;
	json_t *val;
	char cpath[PATH_LEN];

	if (!json_is_object(v)) {
		err_at(c, path, "expected an object of strings, got %s", jtype(v));
		return;
	}
	m->items = calloc(json_object_size(v) + 1, sizeof(*m->items));
	if (!m->items) {
		err_at(c, path, "out of memory");
		return;
	}
	json_object_foreach(v, key, val)
	{
		path_map(cpath, path, key, strlen(key));
		check_map_key(c, o, cpath, key);
		if (!check_map_value(c, o, cpath, val))
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
		err_at(c, path, "expected an object of string lists, got %s", jtype(v));
		return;
	}
	m->items = calloc(json_object_size(v) + 1, sizeof(*m->items));
	if (!m->items) {
		err_at(c, path, "out of memory");
		return;
	}
	json_object_foreach(v, key, val)
	{
		struct pw_kvlist *item;
		size_t i;
		json_t *e;

		path_map(cpath, path, key, strlen(key));
		check_map_key(c, o, cpath, key);
		if (!json_is_array(val)) {
			err_at(c, cpath, "expected a list of strings, got %s", jtype(val));
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
			if (check_map_value(c, o, ipath, e))
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
		err_at(c, path, "expected a list of strings, got %s", jtype(v));
		return;
	}
	*dst = calloc(json_array_size(v) + 1, sizeof(**dst));
	if (!*dst) {
		err_at(c, path, "out of memory");
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
		err_at(c, path, "expected an endpoint object or a list of them, got %s", jtype(v));
		return;
	}
	if (count > MAX_ENDPOINTS) {
		err_at(c, path, "at most %d endpoints are supported, got %zu", MAX_ENDPOINTS,
		       count);
		return;
	}
	*eps = calloc(count + 1, sizeof(**eps));
	if (!*eps) {
		err_at(c, path, "out of memory");
		return;
	}
	*n = count;
	for (size_t i = 0; i < count; i++) {
		json_t *e = json_is_array(v) ? json_array_get(v, i) : v;

		path_index(ipath, path, i);
		if (!json_is_object(e)) {
			err_at(c, ipath, "expected an endpoint object, got %s", jtype(e));
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
			err_at(c, path, "expected a bool (true or false), got %s", jtype(v));
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
			err_at(c, path, "expected an object (a %s block), got %s", o->name,
			       jtype(v));
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
			err_at(c, path, "expected an object (a %s block), got %s", o->name,
			       jtype(v));
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

		path_key(cpath, path, key);
		if (!o) {
			unknown_key(c, b, cpath, key);
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
			path_key(cpath, path, o->name);
			err_at(c, cpath, "required attribute is missing");
		}
	}
	if (b->validate)
		b->validate(c, path, base);
}

/* ------------------------------------------------------------------------ */
/* Cross-field rules                                                         */

static void validate_proxy(struct ctx *c, const char *path, const struct pw_proxy_config *p)
{
	char cpath[PATH_LEN];

	if (p->proxy_from_environment && p->proxy_url) {
		path_key(cpath, path, "proxy_url");
		err_at(c, cpath, "must not be set together with proxy_from_environment");
	}
	if (p->proxy_from_environment && p->no_proxy) {
		path_key(cpath, path, "no_proxy");
		err_at(c, cpath, "must not be set together with proxy_from_environment");
	}
	if (p->no_proxy && !p->proxy_url && !p->proxy_from_environment) {
		path_key(cpath, path, "no_proxy");
		err_at(c, cpath, "requires proxy_url");
	}
	if (p->proxy_connect_header.n > 0 && !p->proxy_url && !p->proxy_from_environment) {
		path_key(cpath, path, "proxy_connect_header");
		err_at(c, cpath, "requires proxy_url or proxy_from_environment");
	}
}

static void validate_tls(struct ctx *c, const char *path, void *base)
{
	const struct pw_tls_config *t = base;

	if (t->ca_pem && t->ca_file)
		err_at(c, path, "ca_pem and ca_file are mutually exclusive");
	if (t->cert_pem && t->cert_file)
		err_at(c, path, "cert_pem and cert_file are mutually exclusive");
	if (t->key_pem && t->key_file)
		err_at(c, path, "key_pem and key_file are mutually exclusive");
	if ((t->cert_pem || t->cert_file) && !t->key_pem && !t->key_file)
		err_at(c, path,
		       "a client certificate (cert_pem or cert_file) needs a client key "
		       "(key_pem or key_file)");
	if ((t->key_pem || t->key_file) && !t->cert_pem && !t->cert_file)
		err_at(c, path,
		       "a client key (key_pem or key_file) needs a client certificate "
		       "(cert_pem or cert_file)");
}

static void validate_basic_auth(struct ctx *c, const char *path, void *base)
{
	const struct pw_basic_auth *b = base;

	if (b->password && b->password_file)
		err_at(c, path, "password and password_file are mutually exclusive");
}

static void validate_authorization(struct ctx *c, const char *path, void *base)
{
	struct pw_authorization *a = base;
	char cpath[PATH_LEN];

	if (a->credentials && a->credentials_file)
		err_at(c, path, "credentials and credentials_file are mutually exclusive");
	if (a->type) {
		size_t len = strlen(a->type);
		const char *t = pw_trim_space(a->type, &len);
		char *trimmed = pw_strndup(t, len);

		free(a->type);
		a->type = trimmed;
	}
	if (!a->type || !*a->type) {
		free(a->type);
		a->type = pw_strdup("Bearer");
	}
	if (a->type && strcasecmp(a->type, "basic") == 0) {
		path_key(cpath, path, "type");
		err_at(c, cpath, "type \"basic\" is not allowed here; use the basic_auth block");
	}
}

static void validate_oauth2(struct ctx *c, const char *path, void *base)
{
	const struct pw_oauth2 *o = base;

	if (o->client_secret && o->client_secret_file)
		err_at(c, path, "client_secret and client_secret_file are mutually exclusive");
	if (!o->client_secret && !o->client_secret_file)
		err_at(c, path, "one of client_secret or client_secret_file is required");
	validate_proxy(c, path, &o->proxy);
}

static void validate_endpoint(struct ctx *c, const char *path, void *base)
{
	const struct pw_endpoint_config *e = base;
	int nauth = e->basic_auth.set + e->authorization.set + e->oauth2.set +
		    (e->bearer_token != NULL) + (e->bearer_token_file != NULL);
	char cpath[PATH_LEN];

	if (nauth > 1)
		err_at(c, path,
		       "at most one of basic_auth, authorization, oauth2, bearer_token & "
		       "bearer_token_file must be configured");
	if (e->min_backoff_ns > 0 && e->max_backoff_ns > 0 &&
	    e->max_backoff_ns < e->min_backoff_ns) {
		char lo[48], hi[48];

		pw_duration_format(e->min_backoff_ns, lo, sizeof(lo));
		pw_duration_format(e->max_backoff_ns, hi, sizeof(hi));
		path_key(cpath, path, "max_backoff_period");
		err_at(c, cpath, "must not be shorter than min_backoff_period (%s < %s)", hi, lo);
	}
	validate_proxy(c, path, &e->proxy);
}

/* ------------------------------------------------------------------------ */
/* Canonical and redacted JSON                                               */

#define REDACTED "<secret>"

static void put_json_string(struct strbuf *sb, const char *s)
{
	strbuf_putc(sb, '"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			strbuf_putc(sb, '\\');
			strbuf_putc(sb, (char)ch);
		} else if (ch == '\n') {
			strbuf_puts(sb, "\\n");
		} else if (ch == '\r') {
			strbuf_puts(sb, "\\r");
		} else if (ch == '\t') {
			strbuf_puts(sb, "\\t");
		} else if (ch < 0x20) {
			strbuf_printf(sb, "\\u%04x", ch);
		} else {
			strbuf_putc(sb, (char)ch);
		}
	}
	strbuf_putc(sb, '"');
}

/* "scheme://user:pass@host" -> "scheme://user:<secret>@host". */
static void put_redacted_url(struct strbuf *sb, const char *u)
{
	const char *sep = strstr(u, "://");
	const char *auth, *end, *at = NULL, *colon;
	struct strbuf tmp = STRBUF_INIT;

	if (!sep) {
		put_json_string(sb, u);
		return;
	}
	auth = sep + 3;
	end = auth + strcspn(auth, "/?#");
	for (const char *p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (!colon) {
		put_json_string(sb, u);
		return;
	}
	strbuf_append(&tmp, u, (size_t)(colon + 1 - u));
	strbuf_puts(&tmp, REDACTED);
	strbuf_puts(&tmp, at);
	put_json_string(sb, tmp.data ? tmp.data : "");
	strbuf_free(&tmp);
}

static void put_key(struct strbuf *sb, bool *first, const char *key)
{
	if (!*first)
		strbuf_putc(sb, ',');
	*first = false;
	put_json_string(sb, key);
	strbuf_putc(sb, ':');
}

static int cmp_opt(const void *a, const void *b)
{
	return strcmp((*(const struct opt *const *)a)->name, (*(const struct opt *const *)b)->name);
}

static int cmp_kv(const void *a, const void *b)
{
	return strcmp((*(const struct pw_kv *const *)a)->key,
		      (*(const struct pw_kv *const *)b)->key);
}

static int cmp_kvlist(const void *a, const void *b)
{
	return strcmp((*(const struct pw_kvlist *const *)a)->key,
		      (*(const struct pw_kvlist *const *)b)->key);
}

static void emit_block(struct strbuf *sb, const struct block *b, const char *base, bool redact);

static void emit_map(struct strbuf *sb, const struct pw_kvmap *m)
{
	const struct pw_kv **sorted = calloc(m->n + 1, sizeof(*sorted));
	bool first = true;

	if (!sorted) {
		sb->failed = true;
		return;
	}
	for (size_t i = 0; i < m->n; i++)
		sorted[i] = &m->items[i];
	qsort(sorted, m->n, sizeof(*sorted), cmp_kv);
	strbuf_putc(sb, '{');
	for (size_t i = 0; i < m->n; i++) {
		put_key(sb, &first, sorted[i]->key);
		put_json_string(sb, sorted[i]->value);
	}
	strbuf_putc(sb, '}');
	free(sorted);
}

static void emit_map_list(struct strbuf *sb, const struct pw_kvlistmap *m, bool redact)
{
	const struct pw_kvlist **sorted = calloc(m->n + 1, sizeof(*sorted));
	bool first = true;

	if (!sorted) {
		sb->failed = true;
		return;
	}
	for (size_t i = 0; i < m->n; i++)
		sorted[i] = &m->items[i];
	qsort(sorted, m->n, sizeof(*sorted), cmp_kvlist);
	strbuf_putc(sb, '{');
	for (size_t i = 0; i < m->n; i++) {
		put_key(sb, &first, sorted[i]->key);
		strbuf_putc(sb, '[');
		for (size_t j = 0; j < sorted[i]->nvalues; j++) {
			if (j)
				strbuf_putc(sb, ',');
			put_json_string(sb, redact ? REDACTED : sorted[i]->values[j]);
		}
		strbuf_putc(sb, ']');
	}
	strbuf_putc(sb, '}');
	free(sorted);
}

static void emit_opt(struct strbuf *sb, bool *first, const struct opt *o, const char *base,
		     bool redact)
{
	const void *p = base + o->off;
	char buf[48];

	switch (o->type) {
	case OT_STRING:
	case OT_SECRET: {
		const char *s = *(char *const *)p;

		if (!s)
			return;
		put_key(sb, first, o->name);
		if (redact && o->type == OT_SECRET)
			put_json_string(sb, REDACTED);
		else if (redact && (o->flags & (OPT_HTTP_URL | OPT_PROXY_URL)))
			put_redacted_url(sb, s);
		else
			put_json_string(sb, s);
		return;
	}
	case OT_BOOL:
		put_key(sb, first, o->name);
		strbuf_puts(sb, *(const bool *)p ? "true" : "false");
		return;
	case OT_INT:
		put_key(sb, first, o->name);
		strbuf_printf(sb, "%lld", (long long)*(const int64_t *)p);
		return;
	case OT_DURATION:
		put_key(sb, first, o->name);
		pw_duration_format(*(const int64_t *)p, buf, sizeof(buf));
		put_json_string(sb, buf);
		return;
	case OT_TLS_VERSION:
		if (*(const enum pw_tls_version *)p == PW_TLS_UNSET)
			return;
		put_key(sb, first, o->name);
		snprintf(buf, sizeof(buf), "TLS%d", (int)*(const enum pw_tls_version *)p);
		put_json_string(sb, buf);
		return;
	case OT_MAP_STRING:
		if (((const struct pw_kvmap *)p)->n == 0)
			return;
		put_key(sb, first, o->name);
		emit_map(sb, p);
		return;
	case OT_MAP_LIST_SECRET:
		if (((const struct pw_kvlistmap *)p)->n == 0)
			return;
		put_key(sb, first, o->name);
		emit_map_list(sb, p, redact);
		return;
	case OT_LIST_STRING: {
		char *const *list = *(char *const *const *)p;
		size_t n = *(const size_t *)(const void *)(base + o->off2);

		if (n == 0)
			return;
		put_key(sb, first, o->name);
		strbuf_putc(sb, '[');
		for (size_t i = 0; i < n; i++) {
			if (i)
				strbuf_putc(sb, ',');
			put_json_string(sb, list[i]);
		}
		strbuf_putc(sb, ']');
		return;
	}
	case OT_BLOCK:
		if (!*(const bool *)(const void *)(base + o->off2))
			return;
		put_key(sb, first, o->name);
		emit_block(sb, o->sub, p, redact);
		return;
	case OT_ENDPOINTS: {
		const struct pw_endpoint_config *eps = *(struct pw_endpoint_config *const *)p;
		size_t n = *(const size_t *)(const void *)(base + o->off2);

		put_key(sb, first, o->name);
		strbuf_putc(sb, '[');
		for (size_t i = 0; i < n; i++) {
			if (i)
				strbuf_putc(sb, ',');
			emit_block(sb, o->sub, (const char *)&eps[i], redact);
		}
		strbuf_putc(sb, ']');
		return;
	}
	case OT_ANY_OBJECT:
		return;
	}
}

static void emit_block(struct strbuf *sb, const struct block *b, const char *base, bool redact)
{
	const struct opt *sorted[64] = {NULL};
	size_t n = 0;
	bool first = true;

	for (const struct opt *o = b->opts; o->name && n < 64; o++)
		sorted[n++] = o;
	qsort(sorted, n, sizeof(sorted[0]), cmp_opt);
	strbuf_putc(sb, '{');
	for (size_t i = 0; i < n; i++)
		emit_opt(sb, &first, sorted[i], base, redact);
	strbuf_putc(sb, '}');
}

static char *emit(const struct block *b, const void *base, bool redact)
{
	struct strbuf sb = STRBUF_INIT;

	emit_block(&sb, b, base, redact);
	if (sb.failed) {
		pw_memzero(sb.data, sb.cap);
		strbuf_free(&sb);
		return NULL;
	}
	return strbuf_detach(&sb, NULL);
}

/* D5: the endpoint's name, else its URL without any user:password@. */
static char *display_name(const struct pw_endpoint_config *e)
{
	const char *sep, *auth, *end, *at = NULL;

	if (e->name)
		return pw_strdup(e->name);
	if (!e->url)
		return pw_strdup("");
	sep = strstr(e->url, "://");
	if (!sep)
		return pw_strdup(e->url);
	auth = sep + 3;
	end = auth + strcspn(auth, "/?#");
	for (const char *p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	if (!at)
		return pw_strdup(e->url);
	return pw_asprintf("%.*s%s", (int)(auth - e->url), e->url, at + 1);
}

/* ------------------------------------------------------------------------ */
/* Document-level checks and the public API                                  */

static void line_col(const char *text, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)text[i] & 0xC0) != 0x80) {
			(*col)++;
		}
	}
}

/* Offset of the first byte that does not start a valid UTF-8 sequence. */
static size_t utf8_bad_offset(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char ch = (unsigned char)s[i];
		size_t n = ch < 0x80 ? 1 : ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : 2;

		if (n > len - i || !pw_utf8_valid(s + i, n))
			return i;
		i += n;
	}
	return len;
}

/* Offset where nesting first exceeds MAX_DEPTH, or len. */
static size_t depth_bad_offset(const char *s, size_t len)
{
	bool instr = false, esc = false;
	int depth = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = s[i];

		if (instr) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				instr = false;
		} else if (ch == '"') {
			instr = true;
		} else if (ch == '{' || ch == '[') {
			if (++depth > MAX_DEPTH)
				return i;
		} else if (ch == '}' || ch == ']') {
			depth--;
		}
	}
	return len;
}

/* Problems found before the document is decoded; true if any. */
static bool precheck(struct ctx *c, const char *text, size_t *lenp)
{
	size_t len = strnlen(text, MAX_DOC_SIZE + 1), off;
	int line, col;

	*lenp = len;
	if (len > MAX_DOC_SIZE) {
		err_at(c, "", "larger than %zu bytes", MAX_DOC_SIZE);
		return true;
	}
	off = utf8_bad_offset(text, len);
	if (off < len) {
		line_col(text, off, &line, &col);
		c->nerrs++;
		strbuf_printf(&c->errs, "line %d, column %d: document is not valid UTF-8\n", line,
			      col);
		return true;
	}
	off = depth_bad_offset(text, len);
	if (off < len) {
		line_col(text, off, &line, &col);
		c->nerrs++;
		strbuf_printf(&c->errs, "line %d, column %d: nested deeper than %d levels\n", line,
			      col, MAX_DEPTH);
		return true;
	}
	return false;
}

static void finish_endpoints(struct ctx *c, struct pw_config *cfg)
{
	for (size_t i = 0; i < cfg->nendpoints; i++) {
		struct pw_endpoint_config *e = &cfg->endpoints[i];

		e->canonical = emit(&endpoint_block, e, false);
		e->display = display_name(e);
		if (!e->canonical || !e->display)
			err_at(c, "", "out of memory");
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
		err_at(&c, "", "no document");
		goto out;
	}
	if (precheck(&c, text, &len))
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
		err_at(&c, "", "expected a JSON object at the top level, got %s", jtype(root));
		goto out;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		err_at(&c, "", "out of memory");
		goto out;
	}
	c.cfg = cfg;
	parse_block(&c, &top_block, root, (char *)cfg, "");
	if (c.nerrs == 0)
		finish_endpoints(&c, cfg);
	if (c.nerrs == 0) {
		cfg->canonical = emit(&top_block, cfg, false);
		if (!cfg->canonical)
			err_at(&c, "", "out of memory");
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
	free_block(&top_block, (char *)cfg);
	pw_secret_free(cfg->canonical);
	for (size_t i = 0; i < cfg->nnotices; i++)
		free(cfg->notices[i]);
	free(cfg->notices);
	free(cfg);
}

char *pw_config_redacted_json(const struct pw_config *cfg)
{
	char *compact, *pretty = NULL;
	json_t *doc;

	if (!cfg)
		return NULL;
	compact = emit(&top_block, cfg, true);
	if (!compact)
		return NULL;
	/* No secret is left in the compact text, so jansson may indent it. */
	doc = json_loads(compact, 0, NULL);
	if (doc)
		pretty = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(doc);
	if (pretty) {
		free(compact);
		return pretty;
	}
	return compact;
}

void pw_secret_free(char *s)
{
	if (!s)
		return;
	pw_memzero(s, strlen(s));
	free(s);
}

/* ------------------------------------------------------------------------ */
/* Reference tables for the documentation                                    */

static const char *type_name(const struct opt *o)
{
	switch (o->type) {
	case OT_STRING:
	case OT_TLS_VERSION:
		return "string";
	case OT_SECRET:
		return "secret";
	case OT_BOOL:
		return "bool";
	case OT_INT:
		return "int";
	case OT_DURATION:
		return "duration";
	case OT_MAP_STRING:
		return "map(string)";
	case OT_MAP_LIST_SECRET:
		return "map(list(secret))";
	case OT_LIST_STRING:
		return "list(string)";
	case OT_BLOCK:
	case OT_ANY_OBJECT:
		return "block";
	case OT_ENDPOINTS:
		return "block, repeatable";
	}
	return "?";
}

char *pw_config_options_markdown(const char *block)
{
	static const struct block *const blocks[] = {
		&top_block,	      &endpoint_block, &basic_auth_block,
		&authorization_block, &oauth2_block,   &tls_block,
	};
	const struct block *b = NULL;
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++)
		if (strcmp(blocks[i]->name, block ? block : "") == 0)
			b = blocks[i];
	if (!b)
		return NULL;
	strbuf_puts(&sb, "| Name | Type | Default | Required | Description |\n");
	strbuf_puts(&sb, "| --- | --- | --- | --- | --- |\n");
	for (const struct opt *o = b->opts; o->name; o++) {
		strbuf_printf(&sb, "| `%s` | `%s` | ", o->name, type_name(o));
		if (!o->def)
			strbuf_puts(&sb, "");
		else if (o->type == OT_STRING || o->type == OT_DURATION)
			strbuf_printf(&sb, "`\"%s\"`", o->def);
		else
			strbuf_printf(&sb, "`%s`", o->def);
		strbuf_printf(&sb, " | %s | %s |\n", (o->flags & OPT_REQUIRED) ? "yes" : "no",
			      o->desc);
	}
	if (sb.failed) {
		strbuf_free(&sb);
		return NULL;
	}
	return strbuf_detach(&sb, NULL);
}
