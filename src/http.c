/*
 * http.c - the transport settings of an endpoint, applied to each libcurl
 * easy handle before an attempt: TLS, proxies, HTTP version and redirects.
 *
 * Proxy selection is done here rather than by libcurl so that no_proxy and
 * NO_PROXY mean the same as in the reference implementation (ports, CIDRs,
 * "*", either-case environment variables), and so that libcurl's own reading
 * of the environment never applies: CURLOPT_PROXY is always set, to "" for a
 * direct connection.
 */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strbuf.h"

int pw_kvmap_has(const struct pw_kvmap *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcasecmp(m->items[i].key, name) == 0)
			return 1;
	return 0;
}

bool pw_header_value_ok(const char *value)
{
	for (const unsigned char *p = (const unsigned char *)value; p && *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7F)
			return false;
	return true;
}

struct curl_slist *pw_slist_add(struct curl_slist *l, const char *name, const char *value)
{
	struct curl_slist *n;
	char *line;

	/* "Name;" is libcurl's way to send a header with an empty value. */
	if (value && *value)
		line = pw_asprintf("%s: %s", name, value);
	else
		line = pw_asprintf("%s;", name);
	if (!line)
		return NULL;
	n = curl_slist_append(l, line);
	pw_memzero(line, strlen(line));
	free(line);
	return n;
}

void pw_slist_free_wipe(struct curl_slist *l)
{
	for (struct curl_slist *h = l; h; h = h->next)
		if (h->data)
			pw_memzero(h->data, strlen(h->data));
	curl_slist_free_all(l);
}

/* ---- proxy_connect_header lists, kept alive for libcurl ---- */

struct held {
	const struct pw_proxy_config *p;
	struct curl_slist *hdrs;
	unsigned refs;
	struct held *next;
};

static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static struct held *held_head;

int pw_http_hold(const struct pw_proxy_config *p)
{
	struct held *h;
	struct curl_slist *l = NULL, *n;
	int rc = 0;

	if (!p || p->proxy_connect_header.n == 0)
		return 0;
	pthread_mutex_lock(&held_lock);
	for (h = held_head; h; h = h->next) {
		if (h->p == p) {
			h->refs++;
			goto out;
		}
	}
	for (size_t i = 0; i < p->proxy_connect_header.n; i++) {
		const struct pw_kvlist *kv = &p->proxy_connect_header.items[i];

		for (size_t j = 0; j < kv->nvalues; j++) {
			if (!(n = pw_slist_add(l, kv->key, kv->values[j])))
				goto fail;
			l = n;
		}
	}
	if (!(h = calloc(1, sizeof(*h))))
		goto fail;
	h->p = p;
	h->hdrs = l;
	h->refs = 1;
	h->next = held_head;
	held_head = h;
	goto out;
fail:
	pw_slist_free_wipe(l);
	rc = -1;
out:
	pthread_mutex_unlock(&held_lock);
	return rc;
}

void pw_http_release(const struct pw_proxy_config *p)
{
	struct held *dead = NULL;

	if (!p)
		return;
	pthread_mutex_lock(&held_lock);
	for (struct held **pp = &held_head; *pp; pp = &(*pp)->next) {
		if ((*pp)->p == p) {
			if (--(*pp)->refs == 0) {
				dead = *pp;
				*pp = dead->next;
			}
			break;
		}
	}
	pthread_mutex_unlock(&held_lock);
	if (dead) {
		pw_slist_free_wipe(dead->hdrs);
		free(dead);
	}
}

/* The list stays valid while the caller's reference is held. */
static struct curl_slist *held_headers(const struct pw_proxy_config *p)
{
	struct curl_slist *l = NULL;

	pthread_mutex_lock(&held_lock);
	for (struct held *h = held_head; h; h = h->next)
		if (h->p == p) {
			l = h->hdrs;
			break;
		}
	pthread_mutex_unlock(&held_lock);
	return l;
}

/* ---- no_proxy matching ---- */

struct ipaddr {
	int family;
	unsigned char b[16];
};

static bool parse_ip(const char *s, size_t n, struct ipaddr *ip)
{
	char buf[64];

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, ip->b) == 1) {
		ip->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, buf, ip->b) == 1) {
		ip->family = AF_INET6;
		return true;
	}
	return false;
}

static size_t ip_len(const struct ipaddr *ip)
{
	return ip->family == AF_INET ? 4 : 16;
}

/* An IPv4-mapped IPv6 address compares as IPv4, as Go's net.IP does. */
static void ip_unmap(struct ipaddr *ip)
{
	static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (ip->family == AF_INET6 && memcmp(ip->b, prefix, 12) == 0) {
		memmove(ip->b, ip->b + 12, 4);
		ip->family = AF_INET;
	}
}

static bool cidr_contains(const char *e, size_t n, const struct ipaddr *host)
{
	const char *slash = memchr(e, '/', n);
	struct ipaddr net;
	char *end;
	long bits;
	char num[8];
	size_t nl;

	if (!slash || !parse_ip(e, (size_t)(slash - e), &net))
		return false;
	nl = n - (size_t)(slash - e) - 1;
	if (nl == 0 || nl >= sizeof(num))
		return false;
	memcpy(num, slash + 1, nl);
	num[nl] = '\0';
	bits = strtol(num, &end, 10);
	ip_unmap(&net);
	if (*end || bits < 0 || (size_t)bits > ip_len(&net) * 8 || net.family != host->family)
		return false;
	for (long i = 0; i < bits; i++) {
		unsigned char m = (unsigned char)(0x80u >> (i % 8));

		if ((net.b[i / 8] & m) != (host->b[i / 8] & m))
			return false;
	}
	return true;
}

/* Splits "host", "host:port", "[v6]:port" or a bare IPv6 address. */
static void split_host_port(const char *e, size_t n, const char **h, size_t *hl, const char **p,
			    size_t *pl)
{
	const char *colon = NULL;
	size_t ncolons = 0;

	*h = e;
	*hl = n;
	*p = NULL;
	*pl = 0;
	if (n > 0 && e[0] == '[') {
		const char *rb = memchr(e, ']', n);

		if (!rb)
			return;
		*h = e + 1;
		*hl = (size_t)(rb - e) - 1;
		if ((size_t)(rb - e) + 1 < n && rb[1] == ':') {
			*p = rb + 2;
			*pl = n - (size_t)(rb - e) - 2;
		}
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (e[i] == ':') {
			colon = e + i;
			ncolons++;
		}
	if (ncolons == 1) {
		*hl = (size_t)(colon - e);
		*p = colon + 1;
		*pl = n - *hl - 1;
	}
}

static bool port_ok(const char *p, size_t pl, const char *port)
{
	return pl == 0 || (strlen(port) == pl && memcmp(p, port, pl) == 0);
}

static bool entry_match(const char *e, size_t n, const char *host, const char *port,
			const struct ipaddr *hip)
{
	const char *h, *p;
	size_t hl, pl, sl;
	struct ipaddr eip;
	bool match_host = false;

	if (memchr(e, '/', n))
		return hip && cidr_contains(e, n, hip);
	split_host_port(e, n, &h, &hl, &p, &pl);
	if (hl == 0)
		return false;
	if (parse_ip(h, hl, &eip)) {
		ip_unmap(&eip);
		return hip && eip.family == hip->family &&
		       memcmp(eip.b, hip->b, ip_len(&eip)) == 0 && port_ok(p, pl, port);
	}
	/* "*.example.com" is the same as ".example.com": subdomains only;
	 * "example.com" matches the domain itself and its subdomains. */
	if (hl >= 2 && h[0] == '*' && h[1] == '.') {
		h++;
		hl--;
	}
	if (h[0] != '.')
		match_host = true;
	sl = strlen(host);
	if (match_host && sl == hl && strncasecmp(host, h, hl) == 0)
		return port_ok(p, pl, port);
	if (match_host) {
		if (sl > hl && host[sl - hl - 1] == '.' && strncasecmp(host + sl - hl, h, hl) == 0)
			return port_ok(p, pl, port);
		return false;
	}
	if (sl > hl && strncasecmp(host + sl - hl, h, hl) == 0)
		return port_ok(p, pl, port);
	return false;
}

/* True when host:port (port as a decimal string, host without brackets)
 * is exempted by a no_proxy list (IPs, CIDRs, domains, optional ports,
 * "*"). */
static bool no_proxy_match(const char *list, const char *host, const char *port)
{
	struct ipaddr hip;
	bool is_ip = parse_ip(host, strlen(host), &hip);

	if (!list)
		return false;
	if (is_ip)
		ip_unmap(&hip);
	while (*list) {
		const char *comma = strchr(list, ',');
		const char *e = list;
		size_t n = comma ? (size_t)(comma - list) : strlen(list);

		list += n + (comma ? 1 : 0);
		while (n > 0 && isspace((unsigned char)*e)) {
			e++;
			n--;
		}
		while (n > 0 && isspace((unsigned char)e[n - 1]))
			n--;
		if (n == 0)
			continue;
		if (n == 1 && e[0] == '*')
			return true;
		if (entry_match(e, n, host, port, is_ip ? &hip : NULL))
			return true;
	}
	return false;
}

/* ---- proxy selection ---- */

/* First non-empty of two environment variables, as the reference does. */
static const char *env2(const char *upper, const char *lower)
{
	const char *v = getenv(upper);

	if (v && *v)
		return v;
	v = getenv(lower);
	return v && *v ? v : NULL;
}

/* A proxy without a scheme is an HTTP proxy; socks5 resolves names on the
 * proxy, as the reference's SOCKS dialer does. */
static char *normalize_proxy(const char *proxy)
{
	if (!strstr(proxy, "://"))
		return pw_asprintf("http://%s", proxy);
	if (strncasecmp(proxy, "socks5://", 9) == 0)
		return pw_asprintf("socks5h://%s", proxy + 9);
	return pw_strdup(proxy);
}

struct url_parts {
	char *scheme;
	char *host; /* without IPv6 brackets */
	char *port;
};

static void url_parts_free(struct url_parts *u)
{
	curl_free(u->scheme);
	free(u->host);
	curl_free(u->port);
}

static int url_split(const char *url, struct url_parts *out)
{
	CURLU *u = curl_url();
	char *host = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &out->scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &out->port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	if (host[0] == '[') {
		size_t n = strlen(host);

		out->host = pw_strndup(host + 1, n > 2 ? n - 2 : 0);
	} else {
		out->host = pw_strdup(host);
	}
	if (out->host)
		rc = 0;
out:
	curl_free(host);
	curl_url_cleanup(u);
	if (rc < 0)
		url_parts_free(out);
	return rc;
}

static char *proxy_for(const struct pw_proxy_config *p, const struct url_parts *u)
{
	const char *proxy, *noproxy;

	if (p->proxy_from_environment) {
		if (strcasecmp(u->scheme, "https") == 0)
			proxy = env2("HTTPS_PROXY", "https_proxy");
		else if (getenv("REQUEST_METHOD"))
			/* Under CGI, HTTP_PROXY may come from a request header. */
			proxy = NULL;
		else
			proxy = env2("HTTP_PROXY", "http_proxy");
		noproxy = env2("NO_PROXY", "no_proxy");
	} else {
		proxy = p->proxy_url;
		noproxy = p->no_proxy;
	}
	if (!proxy || !*proxy || no_proxy_match(noproxy, u->host, u->port))
		return pw_strdup("");
	return normalize_proxy(proxy);
}

/* ---- TLS ---- */

static long tls_version(enum pw_tls_version v)
{
	switch (v) {
	case PW_TLS10:
		return CURL_SSLVERSION_TLSv1_0;
	case PW_TLS11:
		return CURL_SSLVERSION_TLSv1_1;
	case PW_TLS13:
		return CURL_SSLVERSION_TLSv1_3;
	case PW_TLS12:
	case PW_TLS_UNSET:
	default:
		return CURL_SSLVERSION_TLSv1_2;
	}
}

static int set_blob(CURL *e, CURLoption opt, const char *pem)
{
	struct curl_blob blob = {(void *)pem, strlen(pem), CURL_BLOB_COPY};

	return curl_easy_setopt(e, opt, &blob) == CURLE_OK ? 0 : -1;
}

/*
 * server_name: libcurl has no option to send a different SNI or verify a
 * different name than the URL's host, and rewriting the URL would change
 * the Host header. With OpenSSL the SSL_CTX callback asks OpenSSL itself to
 * check the certificate against server_name during the handshake (libcurl's
 * own host check is switched off), and an info callback replaces the SNI
 * libcurl set just before the ClientHello is written. The name is copied
 * into the SSL_CTX, which may outlive the configuration in the connection
 * cache.
 */
static int sni_index = -1;
static pthread_once_t sni_once = PTHREAD_ONCE_INIT;

static void sni_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	free(ptr);
}

static void sni_init(void)
{
	sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, sni_free);
}

static bool is_ip_literal(const char *s)
{
	struct ipaddr ip;

	return parse_ip(s, strlen(s), &ip);
}

static void sni_info_cb(const SSL *ssl, int where, int ret)
{
	const char *name;

	if (!(where & SSL_CB_HANDSHAKE_START) || !SSL_in_before(ssl))
		return;
	name = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), sni_index);
	if (name && !is_ip_literal(name))
		SSL_set_tlsext_host_name((SSL *)ssl, name);
}

static CURLcode sni_ctx_cb(CURL *curl, void *sslctx, void *user)
{
	SSL_CTX *ctx = sslctx;
	const struct pw_tls_config *t = user;
	X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
	char *copy;

	if (sni_index < 0 || !(copy = pw_strdup(t->server_name)))
		return CURLE_OUT_OF_MEMORY;
	/* A context is normally new for each connection; never leak a name
	 * set on an earlier call. */
	free(SSL_CTX_get_ex_data(ctx, sni_index));
	SSL_CTX_set_ex_data(ctx, sni_index, NULL);
	if (!SSL_CTX_set_ex_data(ctx, sni_index, copy)) {
		free(copy);
		return CURLE_OUT_OF_MEMORY;
	}
	if (!t->insecure_skip_verify) {
		int ok = is_ip_literal(copy) ? X509_VERIFY_PARAM_set1_ip_asc(param, copy)
					     : X509_VERIFY_PARAM_set1_host(param, copy, 0);

		if (!ok)
			return CURLE_SSL_CERTPROBLEM;
		X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	}
	SSL_CTX_set_info_callback(ctx, sni_info_cb);
	return CURLE_OK;
}

static bool curl_uses_openssl(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

	return v && v->ssl_version && strncasecmp(v->ssl_version, "OpenSSL", 7) == 0;
}

/*
 * The TLS settings go to the origin and, as the reference does for an
 * https:// proxy, to the proxy connection too (except server_name).
 */
static int apply_tls(CURL *e, const struct pw_tls_config *t, bool set, bool https_proxy, char **err)
{
	const char *what = NULL;
	long ver = tls_version(set ? t->min_version : PW_TLS_UNSET);
	long verify = set && t->insecure_skip_verify ? 0L : 1L;

	curl_easy_setopt(e, CURLOPT_SSLVERSION, ver);
	curl_easy_setopt(e, CURLOPT_PROXY_SSLVERSION, ver);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
	curl_easy_setopt(e, CURLOPT_PROXY_SSL_VERIFYPEER, verify);
	curl_easy_setopt(e, CURLOPT_PROXY_SSL_VERIFYHOST, verify ? 2L : 0L);
	if (!set)
		return 0;
	/* A configured CA replaces the system's, as in the reference: clear
	 * libcurl's built-in bundle and directory. */
	if (t->ca_file || t->ca_pem) {
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(e, CURLOPT_PROXY_CAPATH, NULL);
		curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
		curl_easy_setopt(e, CURLOPT_PROXY_CAINFO, t->ca_file);
	}
	/* Files are read by libcurl for each new connection, so rotated files
	 * are picked up; keep libcurl from caching the parsed CA file. */
#if LIBCURL_VERSION_NUM >= 0x075700
	if (t->ca_file)
		curl_easy_setopt(e, CURLOPT_CA_CACHE_TIMEOUT, 0L);
#endif
	if (t->ca_pem && (set_blob(e, CURLOPT_CAINFO_BLOB, t->ca_pem) < 0 ||
			  set_blob(e, CURLOPT_PROXY_CAINFO_BLOB, t->ca_pem) < 0)) {
		what = "ca_pem";
		goto fail;
	}
	if (t->cert_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert_file);
		curl_easy_setopt(e, CURLOPT_PROXY_SSLCERT, t->cert_file);
	}
	if (t->cert_pem && (set_blob(e, CURLOPT_SSLCERT_BLOB, t->cert_pem) < 0 ||
			    set_blob(e, CURLOPT_PROXY_SSLCERT_BLOB, t->cert_pem) < 0)) {
		what = "cert_pem";
		goto fail;
	}
	if (t->key_file) {
		curl_easy_setopt(e, CURLOPT_SSLKEY, t->key_file);
		curl_easy_setopt(e, CURLOPT_PROXY_SSLKEY, t->key_file);
	}
	if (t->key_pem && (set_blob(e, CURLOPT_SSLKEY_BLOB, t->key_pem) < 0 ||
			   set_blob(e, CURLOPT_PROXY_SSLKEY_BLOB, t->key_pem) < 0)) {
		what = "key_pem";
		goto fail;
	}
	if (t->server_name && *t->server_name) {
		if (https_proxy) {
			if (err)
				*err = pw_strdup(
					"unavailable: tls_config.server_name cannot be used "
					"through an https:// proxy");
			return -1;
		}
		pthread_once(&sni_once, sni_init);
		if (!curl_uses_openssl() ||
		    curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, sni_ctx_cb) != CURLE_OK) {
			if (err)
				*err = pw_strdup(
					"unavailable: tls_config.server_name needs libcurl "
					"built with OpenSSL");
			return -1;
		}
		curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, (void *)t);
		/* OpenSSL checks server_name instead (see sni_ctx_cb). */
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return 0;
fail:
	if (err)
		*err = pw_asprintf("unavailable: cannot load tls_config.%s", what);
	return -1;
}

/* ---- everything together ---- */

static int apply_proxy(CURL *e, const struct pw_proxy_config *p, const struct url_parts *u,
		       bool *https_proxy, char **err)
{
	char *proxy = p ? proxy_for(p, u) : pw_strdup("");

	*https_proxy = false;
	if (!proxy) {
		if (err)
			*err = pw_strdup("unavailable: out of memory");
		return -1;
	}
	curl_easy_setopt(e, CURLOPT_PROXY, proxy);
	if (*proxy) {
		const char *noproxy =
			p->proxy_from_environment ? env2("NO_PROXY", "no_proxy") : p->no_proxy;

		*https_proxy = strncasecmp(proxy, "https://", 8) == 0;
		/* The choice above was for this URL; libcurl's own matcher
		 * handles the targets of redirects. */
		curl_easy_setopt(e, CURLOPT_NOPROXY, noproxy);
		/* Connect headers go on CONNECT only: https goes through a
		 * tunnel, plain http is forwarded without them (as in the
		 * reference). */
		if (p->proxy_connect_header.n > 0 && strcasecmp(u->scheme, "https") == 0 &&
		    strncasecmp(proxy, "socks", 5) != 0) {
			struct curl_slist *l = held_headers(p);

			if (!l) {
				if (err)
					*err = pw_strdup("unavailable: proxy_connect_header is not "
							 "prepared");
				free(proxy);
				return -1;
			}
			curl_easy_setopt(e, CURLOPT_HEADEROPT, (long)CURLHEADER_SEPARATE);
			curl_easy_setopt(e, CURLOPT_PROXYHEADER, l);
		}
	}
	/* The proxy URL may carry user:password@. */
	pw_memzero(proxy, strlen(proxy));
	free(proxy);
	return 0;
}

int pw_http_apply_parts(CURL *e, const char *url, bool enable_http2, bool follow_redirects,
			const struct pw_tls_config *tls, bool tls_set,
			const struct pw_proxy_config *proxy, char **err)
{
	static const struct pw_tls_config no_tls;
	struct url_parts u = {0};
	bool https_proxy = false;
	/* Without any proxy setting the URL's parts are not needed: skip
	 * parsing it on every attempt. */
	bool need_parts =
		proxy && (proxy->proxy_from_environment || (proxy->proxy_url && *proxy->proxy_url));
	int rc = -1;

	if (need_parts && url_split(url, &u) < 0) {
		if (err)
			*err = pw_strdup("unavailable: cannot parse the request URL");
		return -1;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* HTTP/2 only through ALPN on TLS; plain http stays on HTTP/1.1 (no
	 * cleartext upgrade), as in the reference. */
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
			 enable_http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, follow_redirects ? 1L : 0L);
	if (follow_redirects) {
		curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
		curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
		/* libcurl drops Authorization (ours included) when a redirect
		 * leads to another host or port; keep it that way. */
		curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
	}
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	if (!need_parts)
		curl_easy_setopt(e, CURLOPT_PROXY, "");
	else if (apply_proxy(e, proxy, &u, &https_proxy, err) < 0)
		goto out;
	if (!tls) {
		tls = &no_tls;
		tls_set = false;
	}
	if (apply_tls(e, tls, tls_set, https_proxy, err) < 0)
		goto out;
	rc = 0;
out:
	url_parts_free(&u);
	return rc;
}

int pw_http_apply(CURL *e, const struct pw_endpoint_config *cfg, const char *url, char **err)
{
	return pw_http_apply_parts(e, url, cfg->enable_http2, cfg->follow_redirects, &cfg->tls,
				   cfg->tls_set, &cfg->proxy, err);
}
