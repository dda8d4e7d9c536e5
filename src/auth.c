/*
 * auth.c - the Authorization header of an endpoint.
 *
 * Static secrets are formatted once. File-based secrets go through a
 * pw_filewatch, which stats the file on use and re-reads it only when it
 * changed, so rotation is picked up without a reload and without reading
 * the file for every request. OAuth2 tokens are fetched with an easy handle
 * that the sender runs in its own multi handle, so a slow token endpoint
 * never blocks the I/O thread.
 */
#include "auth.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filewatch.h"
#include "http.h"
#include "strbuf.h"

#define SECRET_FILE_MAX (1 << 20)
#define TOKEN_BODY_MAX (64 * 1024)
/* Tokens are refreshed this long before they expire. */
#define TOKEN_EXPIRY_DELTA_NS (10 * 1000000000LL)
#define TOKEN_TIMEOUT_MS 10000L

enum auth_kind { AUTH_NONE, AUTH_BASIC, AUTH_TYPED, AUTH_OAUTH2 };

struct pw_auth {
	enum auth_kind kind;
	const struct pw_endpoint_config *cfg; /* outlives this struct */
	char *scheme; /* "Bearer", "Basic", ... for AUTH_TYPED */
	char *static_value; /* a complete header value, formatted once */
	struct pw_filewatch *file; /* password_file, credentials_file, bearer_token_file */
	struct pw_filewatch *client_secret_file;

	/* OAuth2 */
	char *token; /* the cached access token */
	char *token_type;
	int64_t token_expiry; /* CLOCK_MONOTONIC ns; 0 = never expires */
	bool busy;
	struct strbuf body;
	struct curl_slist *token_hdrs;
	char *form;
	bool held_proxy, held_token_proxy; /* pw_http_hold() references */
};

static char *base64(const char *in, size_t len)
{
	size_t outlen = 4 * ((len + 2) / 3) + 1;
	char *out = malloc(outlen);

	if (!out)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)len);
	return out;
}

static void wipe_free(char *s)
{
	if (s) {
		pw_memzero(s, strlen(s));
		free(s);
	}
}

/* Secret files are used with surrounding whitespace removed, as the
 * reference implementation does. */
static char *trimmed(const char *s, size_t len)
{
	while (len > 0 && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	return pw_strndup(s, len);
}

static char *basic_value(const char *user, const char *pass)
{
	char *raw = pw_asprintf("%s:%s", user ? user : "", pass ? pass : "");
	char *b64, *v;

	if (!raw)
		return NULL;
	b64 = base64(raw, strlen(raw));
	wipe_free(raw);
	if (!b64)
		return NULL;
	v = pw_asprintf("Basic %s", b64);
	wipe_free(b64);
	return v;
}

static int open_file(struct pw_filewatch **fw, const char *path, char **err)
{
	*fw = pw_filewatch_open(path, SECRET_FILE_MAX, err);
	return *fw ? 0 : -1;
}

struct pw_auth *pw_auth_new(const struct pw_endpoint_config *cfg, char **err)
{
	struct pw_auth *a = calloc(1, sizeof(*a));

	if (!a)
		goto oom;
	a->cfg = cfg;
	strbuf_init(&a->body, TOKEN_BODY_MAX);
	/* libcurl keeps pointers to the proxy CONNECT headers for as long as
	 * the endpoint's transfers may run, which is this struct's lifetime. */
	if (pw_http_hold(&cfg->proxy) < 0)
		goto oom;
	a->held_proxy = true;
	if (cfg->oauth2.set) {
		if (pw_http_hold(&cfg->oauth2.proxy) < 0)
			goto oom;
		a->held_token_proxy = true;
	}
	if (cfg->oauth2.set) {
		a->kind = AUTH_OAUTH2;
		if (cfg->oauth2.client_secret_file &&
		    open_file(&a->client_secret_file, cfg->oauth2.client_secret_file, err) < 0)
			goto fail;
	} else if (cfg->basic_auth.set) {
		a->kind = AUTH_BASIC;
		if (cfg->basic_auth.password_file) {
			if (open_file(&a->file, cfg->basic_auth.password_file, err) < 0)
				goto fail;
		} else {
			a->static_value =
				basic_value(cfg->basic_auth.username, cfg->basic_auth.password);
			if (!a->static_value)
				goto oom;
		}
	} else if (cfg->authorization.set || cfg->bearer_token || cfg->bearer_token_file) {
		const char *type = "Bearer", *cred = cfg->bearer_token,
			   *file = cfg->bearer_token_file;

		a->kind = AUTH_TYPED;
		if (cfg->authorization.set) {
			if (cfg->authorization.type && *cfg->authorization.type)
				type = cfg->authorization.type;
			cred = cfg->authorization.credentials;
			file = cfg->authorization.credentials_file;
		}
		a->scheme = pw_strdup(type);
		if (!a->scheme)
			goto oom;
		if (file) {
			if (open_file(&a->file, file, err) < 0)
				goto fail;
		} else {
			a->static_value = pw_asprintf("%s %s", type, cred ? cred : "");
			if (!a->static_value)
				goto oom;
		}
	}
	return a;
oom:
	if (err)
		*err = pw_strdup("out of memory");
fail:
	pw_auth_free(a);
	return NULL;
}

void pw_auth_free(struct pw_auth *a)
{
	if (!a)
		return;
	wipe_free(a->scheme);
	wipe_free(a->static_value);
	wipe_free(a->token);
	wipe_free(a->token_type);
	wipe_free(a->form);
	pw_filewatch_free(a->file);
	pw_filewatch_free(a->client_secret_file);
	if (a->body.data)
		pw_memzero(a->body.data, a->body.len);
	strbuf_free(&a->body);
	pw_slist_free_wipe(a->token_hdrs);
	if (a->held_proxy)
		pw_http_release(&a->cfg->proxy);
	if (a->held_token_proxy)
		pw_http_release(&a->cfg->oauth2.proxy);
	free(a);
}

int pw_auth_token_busy(const struct pw_auth *a)
{
	return a && a->busy;
}

static enum pw_auth_state from_file(struct pw_auth *a, char **value, char **err)
{
	const char *content;
	size_t len = 0;
	bool changed = false;
	char *ferr = NULL, *secret;

	content = pw_filewatch_get(a->file, &len, &changed, &ferr);
	if (!content) {
		if (err)
			*err = pw_asprintf("unauthenticated: %s",
					   ferr ? ferr : "cannot read credentials file");
		free(ferr);
		return PW_AUTH_ERROR;
	}
	secret = trimmed(content, len);
	if (!secret)
		goto oom;
	/* Basic credentials are base64-encoded; any other secret goes into
	 * the Authorization header as it is, where a CR or LF would start a
	 * header line of the file's choosing. */
	if (a->kind != AUTH_BASIC && !pw_header_value_ok(secret)) {
		wipe_free(secret);
		if (err)
			*err = pw_strdup("unauthenticated: the credentials file holds a control "
					 "character (CR, LF, ...) inside the secret");
		return PW_AUTH_ERROR;
	}
	if (a->kind == AUTH_BASIC)
		*value = basic_value(a->cfg->basic_auth.username, secret);
	else
		*value = pw_asprintf("%s %s", a->scheme, secret);
	wipe_free(secret);
	if (!*value)
		goto oom;
	return PW_AUTH_READY;
oom:
	if (err)
		*err = pw_strdup("unavailable: out of memory");
	return PW_AUTH_ERROR;
}

enum pw_auth_state pw_auth_header(struct pw_auth *a, int64_t now_ns, char **value, char **err)
{
	*value = NULL;
	switch (a->kind) {
	case AUTH_NONE:
		return PW_AUTH_READY;
	case AUTH_BASIC:
	case AUTH_TYPED:
		/* A user-supplied Authorization in `headers` wins over these. */
		if (pw_kvmap_has(&a->cfg->headers, "Authorization"))
			return PW_AUTH_READY;
		if (a->file)
			return from_file(a, value, err);
		*value = pw_strdup(a->static_value);
		if (!*value) {
			if (err)
				*err = pw_strdup("unavailable: out of memory");
			return PW_AUTH_ERROR;
		}
		return PW_AUTH_READY;
	case AUTH_OAUTH2:
		if (!a->token || (a->token_expiry && now_ns >= a->token_expiry))
			return PW_AUTH_PENDING;
		*value = pw_asprintf("%s %s", a->token_type ? a->token_type : "Bearer", a->token);
		if (!*value) {
			if (err)
				*err = pw_strdup("unavailable: out of memory");
			return PW_AUTH_ERROR;
		}
		return PW_AUTH_READY;
	}
	return PW_AUTH_READY;
}

static size_t on_token_body(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct pw_auth *a = user;
	size_t n = size * nmemb;

	if (strbuf_append(&a->body, ptr, n) < 0)
		return 0; /* an oversized answer aborts the transfer */
	return n;
}

static void form_add(struct strbuf *sb, CURL *e, const char *k, const char *v)
{
	char *ek = curl_easy_escape(e, k, 0), *ev = curl_easy_escape(e, v ? v : "", 0);

	if (sb->len)
		strbuf_putc(sb, '&');
	strbuf_printf(sb, "%s=%s", ek ? ek : "", ev ? ev : "");
	if (ev)
		pw_memzero(ev, strlen(ev));
	curl_free(ek);
	curl_free(ev);
}

CURL *pw_auth_token_request(struct pw_auth *a, char **err)
{
	const struct pw_oauth2 *o = &a->cfg->oauth2;
	struct strbuf form = STRBUF_INIT, scopes = STRBUF_INIT;
	char *secret = NULL, *ferr = NULL, *auth = NULL, *ue = NULL, *se = NULL, *raw = NULL;
	CURL *e = curl_easy_init();
	struct curl_slist *n;

	if (!e)
		goto oom;
	if (a->client_secret_file) {
		size_t len = 0;
		bool changed = false;
		const char *c = pw_filewatch_get(a->client_secret_file, &len, &changed, &ferr);

		if (!c) {
			if (err)
				*err = pw_asprintf("cannot read oauth2.client_secret_file: %s",
						   ferr ? ferr : "unknown error");
			free(ferr);
			curl_easy_cleanup(e);
			return NULL;
		}
		secret = trimmed(c, len);
	} else {
		secret = pw_strdup(o->client_secret ? o->client_secret : "");
	}
	if (!secret)
		goto oom;

	form_add(&form, e, "grant_type", "client_credentials");
	for (size_t i = 0; i < o->nscopes; i++) {
		if (scopes.len)
			strbuf_putc(&scopes, ' ');
		strbuf_puts(&scopes, o->scopes[i]);
	}
	if (scopes.len)
		form_add(&form, e, "scope", scopes.data);
	for (size_t i = 0; i < o->endpoint_params.n; i++)
		form_add(&form, e, o->endpoint_params.items[i].key,
			 o->endpoint_params.items[i].value);
	if (form.failed)
		goto oom;

	/* Client authentication with HTTP Basic, the id and secret form-encoded
	 * first as RFC 6749 section 2.3.1 asks. */
	ue = curl_easy_escape(e, o->client_id ? o->client_id : "", 0);
	se = curl_easy_escape(e, secret, 0);
	if (!ue || !se)
		goto oom;
	raw = pw_asprintf("%s:%s", ue, se);
	if (!raw)
		goto oom;
	{
		char *b64 = base64(raw, strlen(raw));

		if (!b64)
			goto oom;
		auth = pw_asprintf("Basic %s", b64);
		wipe_free(b64);
	}
	if (!auth)
		goto oom;

	pw_slist_free_wipe(a->token_hdrs);
	a->token_hdrs = NULL;
	n = pw_slist_add(NULL, "Authorization", auth);
	if (!n)
		goto oom;
	a->token_hdrs = n;
	n = pw_slist_add(a->token_hdrs, "Content-Type", "application/x-www-form-urlencoded");
	if (!n)
		goto oom;
	a->token_hdrs = n;
	n = pw_slist_add(a->token_hdrs, "Accept", "application/json");
	if (!n)
		goto oom;
	a->token_hdrs = n;

	wipe_free(a->form);
	a->form = strbuf_detach(&form, NULL);
	strbuf_reset(&a->body);

	/* The token endpoint has its own TLS and proxy settings. */
	if (pw_http_apply_parts(e, o->token_url, a->cfg->enable_http2, false, &o->tls, o->tls_set,
				&o->proxy, err) < 0) {
		curl_easy_cleanup(e);
		e = NULL;
		goto out;
	}
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, a->form);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(a->form));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, a->token_hdrs);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, TOKEN_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_token_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
	a->busy = true;
	goto out;
oom:
	if (err)
		*err = pw_strdup("out of memory");
	if (e)
		curl_easy_cleanup(e);
	e = NULL;
out:
	if (ue)
		curl_free(ue);
	if (se) {
		pw_memzero(se, strlen(se));
		curl_free(se);
	}
	wipe_free(raw);
	wipe_free(auth);
	wipe_free(secret);
	if (form.data)
		pw_memzero(form.data, form.len);
	strbuf_free(&form);
	strbuf_free(&scopes);
	return e;
}

int pw_auth_token_done(struct pw_auth *a, CURL *e, CURLcode rc, int64_t now_ns, char **err)
{
	long status = 0;
	json_t *root = NULL, *tok, *typ, *exp;
	int ret = -1;

	a->busy = false;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(e);
	if (rc != CURLE_OK) {
		if (err)
			*err = pw_asprintf("token request to %s: %s", a->cfg->oauth2.token_url,
					   curl_easy_strerror(rc));
		goto out;
	}
	if (status < 200 || status > 299) {
		if (err)
			*err = pw_asprintf("token endpoint %s answered HTTP %ld",
					   a->cfg->oauth2.token_url, status);
		goto out;
	}
	root = json_loadb(a->body.data ? a->body.data : "", a->body.len, 0, NULL);
	tok = root ? json_object_get(root, "access_token") : NULL;
	if (!json_is_string(tok) || json_string_length(tok) == 0) {
		if (err)
			*err = pw_asprintf("token endpoint %s: the answer has no access_token",
					   a->cfg->oauth2.token_url);
		goto out;
	}
	wipe_free(a->token);
	wipe_free(a->token_type);
	a->token = pw_strdup(json_string_value(tok));
	typ = json_object_get(root, "token_type");
	/* "bearer" in any case is sent as "Bearer", as common clients do. */
	if (json_is_string(typ) && strcasecmp(json_string_value(typ), "bearer") != 0)
		a->token_type = pw_strdup(json_string_value(typ));
	else
		a->token_type = pw_strdup("Bearer");
	exp = json_object_get(root, "expires_in");
	a->token_expiry = 0;
	if (json_is_integer(exp) && json_integer_value(exp) > 0) {
		int64_t secs = json_integer_value(exp);

		if (secs > 365LL * 24 * 3600)
			secs = 365LL * 24 * 3600;
		a->token_expiry = now_ns + secs * 1000000000LL - TOKEN_EXPIRY_DELTA_NS;
		if (a->token_expiry <= now_ns)
			a->token_expiry = now_ns + 1;
	}
	ret = a->token && a->token_type ? 0 : -1;
out:
	if (a->body.data)
		pw_memzero(a->body.data, a->body.len);
	strbuf_reset(&a->body);
	json_decref(root);
	return ret;
}
