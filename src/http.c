/*
 * http.c - the transport settings of an endpoint, applied to each libcurl
 * easy handle before an attempt: TLS, proxies, HTTP version and redirects.
 */
#include "http.h"

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

int pw_http_apply_tls(CURL *e, const struct pw_tls_config *t, bool set, char **err);

int pw_http_apply_tls(CURL *e, const struct pw_tls_config *t, bool set, char **err)
{
	curl_easy_setopt(e, CURLOPT_SSLVERSION, tls_version(set ? t->min_version : PW_TLS_UNSET));
	if (!set)
		return 0;
	if (t->insecure_skip_verify) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	/* CA, certificate and key files are read by libcurl when it connects,
	 * so a rotated file is picked up by the next new connection. */
	if (t->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
	if (t->ca_pem && set_blob(e, CURLOPT_CAINFO_BLOB, t->ca_pem) < 0)
		goto fail;
	if (t->cert_file)
		curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert_file);
	if (t->cert_pem && set_blob(e, CURLOPT_SSLCERT_BLOB, t->cert_pem) < 0)
		goto fail;
	if (t->key_file)
		curl_easy_setopt(e, CURLOPT_SSLKEY, t->key_file);
	if (t->key_pem && set_blob(e, CURLOPT_SSLKEY_BLOB, t->key_pem) < 0)
		goto fail;
	return 0;
fail:
	if (err)
		*err = pw_strdup("unavailable: cannot load TLS material");
	return -1;
}

int pw_http_apply(CURL *e, const struct pw_endpoint_config *cfg, const char *url, char **err)
{
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
			 cfg->enable_http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
	if (cfg->follow_redirects) {
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
		curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
		/* Never hand credentials to another host after a redirect. */
		curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
	}
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	if (pw_http_apply_tls(e, &cfg->tls, cfg->tls_set, err) < 0)
		return -1;
	/* Proxy settings: none unless configured; libcurl's own reading of the
	 * environment is switched off so proxy_from_environment means what the
	 * documentation says. */
	curl_easy_setopt(e, CURLOPT_PROXY, cfg->proxy.proxy_url ? cfg->proxy.proxy_url : "");
	if (cfg->proxy.no_proxy)
		curl_easy_setopt(e, CURLOPT_NOPROXY, cfg->proxy.no_proxy);
	return 0;
}
