/*
 * config_check.c - checks of single configuration values (URLs, proxy
 * settings, header and label names, files, PEM text, TLS versions, ranges),
 * of the raw document before it is decoded, and the cross-field rules of each
 * block. Every problem is reported through pw_cfg_err_at() and parsing goes
 * on, so one pass lists them all. Messages never quote a secret or a URL.
 *
 * Above the diagnostics (config_diag.c) and below the option tables: the
 * checks read an option's flags and limits but never the tables themselves.
 */
#include "config_check.h"

#include "duration.h"
#include "filewatch.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DOC_SIZE ((size_t)16 << 20)
#define MAX_DEPTH 64

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

/* No control byte but TAB: a CR or LF would start a header line of its
 * own, and other control bytes are read differently by different peers. */
static bool header_value_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7F)
			return false;
	}
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
		char s[SHOW_BUF];

		pw_cfg_show(s, sizeof(s), u, slen);
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

static void check_no_proxy(struct pw_cfg_diag *d, const char *path, const char *list)
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
			char s[SHOW_BUF];

			pw_cfg_show(s, sizeof(s), e, en);
			pw_cfg_err_at(
				d, path,
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
static void check_file(struct pw_cfg_diag *d, const char *path, const char *file)
{
	char b, s[SHOW_BUF];
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
	pw_cfg_show(s, sizeof(s), file, strlen(file));
	pw_cfg_err_at(d, path, "cannot read \"%s\": %s", s, why);
}

static void format_range_value(const struct opt *o, int64_t v, char *buf, size_t n)
{
	if (o->type == OT_DURATION)
		pw_duration_format(v, buf, n);
	else
		snprintf(buf, n, "%lld", (long long)v);
}

void pw_cfg_check_range(struct pw_cfg_diag *d, const struct opt *o, const char *path, int64_t v)
{
	char got[48], lo[48], hi[48];

	if (!(o->flags & OPT_RANGE) || (v >= o->min && v <= o->max))
		return;
	format_range_value(o, v, got, sizeof(got));
	format_range_value(o, o->min, lo, sizeof(lo));
	format_range_value(o, o->max, hi, sizeof(hi));
	if (o->max == INT64_MAX && o->min == 1)
		pw_cfg_err_at(d, path, "must be greater than 0, got %s", got);
	else if (o->max == INT64_MAX && o->min == 0)
		pw_cfg_err_at(d, path, "must not be negative, got %s", got);
	else
		pw_cfg_err_at(d, path, "must be between %s and %s, got %s", lo, hi, got);
}

void pw_cfg_check_string(struct pw_cfg_diag *d, const struct opt *o, const char *path,
			 const char *s)
{
	if (o->flags & OPT_FILE)
		check_file(d, path, s);
	if ((o->flags & OPT_PEM) && !strstr(s, "-----BEGIN "))
		pw_cfg_err_at(d, path, "does not look like PEM text (no \"-----BEGIN \" line)");
	if (o->flags & (OPT_HTTP_URL | OPT_PROXY_URL)) {
		char why[160];
		bool proxy = o->flags & OPT_PROXY_URL;

		if (!url_check(s, proxy ? proxy_schemes : http_schemes, why, sizeof(why)))
			pw_cfg_err_at(d, path, "must be an absolute %s URL with a host: %s",
				      proxy ? "http, https or socks5" : "http or https", why);
	}
	if (o->flags & OPT_NO_PROXY)
		check_no_proxy(d, path, s);
	if ((o->flags & OPT_HEADER_VALUE) && !header_value_ok(s, strlen(s)))
		pw_cfg_err_at(d, path,
			      "must not contain CR, LF or other control characters (it is sent in "
			      "a header)");
	if ((o->flags & OPT_LABEL_NAME) && !label_name_ok(s)) {
		char shown[SHOW_BUF];

		pw_cfg_show(shown, sizeof(shown), s, strlen(s));
		pw_cfg_err_at(
			d, path,
			"invalid label name \"%s\": use letters, digits, \"_\" and \".\" only "
			"(or exactly \"__name__\")",
			shown);
	}
}

bool pw_cfg_check_tls_version(struct pw_cfg_diag *d, const char *path, const char *s,
			      enum pw_tls_version *v)
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
	char shown[SHOW_BUF];

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		if (strcmp(s, versions[i].name) == 0) {
			*v = versions[i].v;
			return true;
		}
	}
	pw_cfg_show(shown, sizeof(shown), s, strlen(s));
	pw_cfg_err_at(d, path,
		      "unknown TLS version \"%s\"; expected one of TLS10, TLS11, TLS12, TLS13",
		      shown);
	return false;
}

bool pw_cfg_check_choice(struct pw_cfg_diag *d, const struct opt *o, const char *path,
			 const char *s, bool *v)
{
	char shown[SHOW_BUF];

	for (size_t i = 0; i < 2; i++) {
		if (strcmp(s, o->choices[i]) == 0) {
			*v = i == 0;
			return true;
		}
	}
	pw_cfg_show(shown, sizeof(shown), s, strlen(s));
	pw_cfg_err_at(d, path, "must be \"%s\" or \"%s\", got \"%s\"", o->choices[0], o->choices[1],
		      shown);
	return false;
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

void pw_cfg_unknown_key(struct pw_cfg_diag *d, const struct block *b, const char *path,
			const char *key)
{
	const char *best = NULL;
	size_t bestd = 3;

	for (const struct opt *o = b->opts; o->name; o++) {
		size_t dist = edit_distance(key, o->name);

		if (dist < bestd) {
			bestd = dist;
			best = o->name;
		}
	}
	if (best)
		pw_cfg_err_at(d, path, "unknown attribute; did you mean \"%s\"?", best);
	else
		pw_cfg_err_at(d, path, "unknown attribute");
}

/* Name checks shared by the three map kinds. */
void pw_cfg_check_map_key(struct pw_cfg_diag *d, const struct opt *o, const char *path,
			  const char *key)
{
	char shown[SHOW_BUF];

	pw_cfg_show(shown, sizeof(shown), key, strlen(key));
	if ((o->flags & OPT_HEADERS) && !header_name_ok(key, strlen(key))) {
		pw_cfg_err_at(d, path, "\"%s\" is not a valid HTTP header name", shown);
		return;
	}
	if (o->flags & OPT_RESERVED) {
		char canon[256];

		canonical_header(canon, sizeof(canon), key);
		for (size_t i = 0; i < sizeof(reserved_headers) / sizeof(reserved_headers[0]); i++)
			if (strcmp(canon, reserved_headers[i]) == 0)
				pw_cfg_err_at(d, path, "setting header \"%s\" is not allowed",
					      canon);
	}
	if ((o->flags & OPT_LABELS) && !label_name_ok(key))
		pw_cfg_err_at(
			d, path,
			"invalid label name \"%s\": use letters, digits, \"_\" and \".\" only "
			"(or exactly \"__name__\")",
			shown);
}

/* A value that goes on the wire as a header value or a label value. */
bool pw_cfg_check_map_value(struct pw_cfg_diag *d, const struct opt *o, const char *path, json_t *v)
{
	const char *s;
	size_t len;

	if (!json_is_string(v)) {
		pw_cfg_err_at(d, path, "expected a string, got %s", pw_cfg_jtype(v));
		return false;
	}
	s = json_string_value(v);
	len = json_string_length(v);
	if (o->flags & OPT_HEADERS) {
		if (!header_value_ok(s, len)) {
			pw_cfg_err_at(d, path,
				      "header value must not contain CR, LF, NUL or other control "
				      "characters");
			return false;
		}
	} else if (strlen(s) != len) {
		pw_cfg_err_at(d, path, "must not contain a NUL character");
		return false;
	} else if (!pw_utf8_valid(s, len)) {
		pw_cfg_err_at(d, path, "value is not valid UTF-8");
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------------ */
/* Cross-field rules                                                         */

static void validate_proxy(struct pw_cfg_diag *d, const char *path, const struct pw_proxy_config *p)
{
	char cpath[PATH_LEN];

	if (p->proxy_from_environment && p->proxy_url) {
		pw_cfg_path_key(cpath, path, "proxy_url");
		pw_cfg_err_at(d, cpath, "must not be set together with proxy_from_environment");
	}
	if (p->proxy_from_environment && p->no_proxy) {
		pw_cfg_path_key(cpath, path, "no_proxy");
		pw_cfg_err_at(d, cpath, "must not be set together with proxy_from_environment");
	}
	if (p->no_proxy && !p->proxy_url && !p->proxy_from_environment) {
		pw_cfg_path_key(cpath, path, "no_proxy");
		pw_cfg_err_at(d, cpath, "requires proxy_url");
	}
	if (p->proxy_connect_header.n > 0 && !p->proxy_url && !p->proxy_from_environment) {
		pw_cfg_path_key(cpath, path, "proxy_connect_header");
		pw_cfg_err_at(d, cpath, "requires proxy_url or proxy_from_environment");
	}
}

void pw_cfg_validate_tls(struct pw_cfg_diag *d, const char *path, void *base)
{
	const struct pw_tls_config *t = base;

	if (t->ca_pem && t->ca_file)
		pw_cfg_err_at(d, path, "ca_pem and ca_file are mutually exclusive");
	if (t->cert_pem && t->cert_file)
		pw_cfg_err_at(d, path, "cert_pem and cert_file are mutually exclusive");
	if (t->key_pem && t->key_file)
		pw_cfg_err_at(d, path, "key_pem and key_file are mutually exclusive");
	if ((t->cert_pem || t->cert_file) && !t->key_pem && !t->key_file)
		pw_cfg_err_at(d, path,
			      "a client certificate (cert_pem or cert_file) needs a client key "
			      "(key_pem or key_file)");
	if ((t->key_pem || t->key_file) && !t->cert_pem && !t->cert_file)
		pw_cfg_err_at(d, path,
			      "a client key (key_pem or key_file) needs a client certificate "
			      "(cert_pem or cert_file)");
}

void pw_cfg_validate_basic_auth(struct pw_cfg_diag *d, const char *path, void *base)
{
	const struct pw_basic_auth *b = base;

	if (b->password && b->password_file)
		pw_cfg_err_at(d, path, "password and password_file are mutually exclusive");
}

void pw_cfg_validate_authorization(struct pw_cfg_diag *d, const char *path, void *base)
{
	struct pw_authorization *a = base;
	char cpath[PATH_LEN];

	if (a->credentials && a->credentials_file)
		pw_cfg_err_at(d, path, "credentials and credentials_file are mutually exclusive");
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
		pw_cfg_path_key(cpath, path, "type");
		pw_cfg_err_at(d, cpath,
			      "type \"basic\" is not allowed here; use the basic_auth block");
	}
}

void pw_cfg_validate_oauth2(struct pw_cfg_diag *d, const char *path, void *base)
{
	const struct pw_oauth2 *o = base;

	if (o->client_secret && o->client_secret_file)
		pw_cfg_err_at(d, path,
			      "client_secret and client_secret_file are mutually exclusive");
	if (!o->client_secret && !o->client_secret_file)
		pw_cfg_err_at(d, path, "one of client_secret or client_secret_file is required");
	validate_proxy(d, path, &o->proxy);
}

void pw_cfg_validate_endpoint(struct pw_cfg_diag *d, const char *path, void *base)
{
	const struct pw_endpoint_config *e = base;
	int nauth = e->basic_auth.set + e->authorization.set + e->oauth2.set +
		    (e->bearer_token != NULL) + (e->bearer_token_file != NULL);
	char cpath[PATH_LEN];

	if (nauth > 1)
		pw_cfg_err_at(d, path,
			      "at most one of basic_auth, authorization, oauth2, bearer_token & "
			      "bearer_token_file must be configured");
	if (e->min_backoff_ns > 0 && e->max_backoff_ns > 0 &&
	    e->max_backoff_ns < e->min_backoff_ns) {
		char lo[48], hi[48];

		pw_duration_format(e->min_backoff_ns, lo, sizeof(lo));
		pw_duration_format(e->max_backoff_ns, hi, sizeof(hi));
		pw_cfg_path_key(cpath, path, "max_backoff_period");
		pw_cfg_err_at(d, cpath, "must not be shorter than min_backoff_period (%s < %s)", hi,
			      lo);
	}
	validate_proxy(d, path, &e->proxy);
}

/* fsync_interval has no meaning when every write is fsynced. */
bool pw_cfg_queue_fsync_interval_applies(const void *base)
{
	const struct pw_queue_config *q = base;

	return !q->fsync_always;
}

/* ------------------------------------------------------------------------ */
/* Document-level checks                                                     */

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
bool pw_cfg_precheck(struct pw_cfg_diag *d, const char *text, size_t *lenp)
{
	size_t len = strnlen(text, MAX_DOC_SIZE + 1), off;
	int line, col;

	*lenp = len;
	if (len > MAX_DOC_SIZE) {
		pw_cfg_err_at(d, "", "larger than %zu bytes", MAX_DOC_SIZE);
		return true;
	}
	off = utf8_bad_offset(text, len);
	if (off < len) {
		line_col(text, off, &line, &col);
		pw_cfg_err_line(d, line, col, "document is not valid UTF-8");
		return true;
	}
	off = depth_bad_offset(text, len);
	if (off < len) {
		line_col(text, off, &line, &col);
		pw_cfg_err_line(d, line, col, "nested deeper than %d levels", MAX_DEPTH);
		return true;
	}
	return false;
}
