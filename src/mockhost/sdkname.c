/*
 * sdkname.c - the SDK `name` parameter, parsed the way Pyroscope's label-set
 * parser reads it: an application name of [A-Za-z0-9_.\-/], then optional
 * braces with comma-separated key=value pairs, whitespace trimmed.
 */
#include "sdkname.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"
#include "strbuf.h"

char *sdk_query_param(const char *path_query, const char *key)
{
	const char *q = strchr(path_query, '?');
	size_t klen = strlen(key);

	if (!q)
		return NULL;
	q++;
	while (*q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', len);
		size_t kl = eq ? (size_t)(eq - q) : len;

		if (kl == klen && strncmp(q, key, klen) == 0) {
			size_t outn;
			bool bad = false;
			char *v;

			if (!eq)
				return pw_strdup("");
			v = pw_query_unescape(eq + 1, len - kl - 1, &outn, &bad);
			/* A %00 would cut the C string short: "a{k=ab%00cd}"
			 * would become the label k=ab. */
			if (v && (bad || strlen(v) != outn)) {
				free(v);
				v = NULL;
			}
			return v;
		}
		if (!amp)
			break;
		q = amp + 1;
	}
	return NULL;
}

static bool app_char(int c)
{
	return isalnum(c) || c == '_' || c == '.' || c == '-' || c == '/';
}

static bool key_char(int c)
{
	return isalnum(c) || c == '_' || c == '.';
}

static char *trim(const char *s, size_t len)
{
	while (len && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	return pw_strndup(s, len);
}

static int add(struct pw_kv **v, size_t *n, const char *k, size_t kl, const char *val, size_t vl)
{
	struct pw_kv *nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -1;
	*v = nv;
	nv[*n].key = trim(k, kl);
	nv[*n].value = trim(val, vl);
	if (!nv[*n].key || !nv[*n].value) {
		free(nv[*n].key);
		free(nv[*n].value);
		return -1;
	}
	(*n)++;
	return 0;
}

void sdk_labels_free(struct pw_kv *labels, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(labels[i].key);
		free(labels[i].value);
	}
	free(labels);
}

static int find(struct pw_kv *v, size_t n, const char *k)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].key, k) == 0)
			return (int)i;
	return -1;
}

int sdk_name_labels(const char *name, struct pw_kv **labels, size_t *n, char **err)
{
	struct pw_kv *v = NULL;
	size_t nv = 0;
	const char *p = name, *brace = strchr(name, '{'), *app_end;
	char *app = NULL;

	*labels = NULL;
	*n = 0;
	app_end = brace ? brace : name + strlen(name);
	app = trim(p, (size_t)(app_end - p));
	if (!app)
		goto oom;
	for (const char *c = app; *c; c++) {
		if (!app_char((unsigned char)*c)) {
			*err = pw_asprintf("invalid application name in %s", name);
			goto fail;
		}
	}
	if (!*app) {
		*err = pw_strdup("application name is required");
		goto fail;
	}
	if (add(&v, &nv, "__name__", 8, app, strlen(app)) < 0)
		goto oom;
	if (brace) {
		const char *close = strrchr(brace, '}');
		const char *s = brace + 1;

		if (!close) {
			*err = pw_asprintf("unbalanced braces in %s", name);
			goto fail;
		}
		for (const char *c = close + 1; *c; c++) {
			if (!isspace((unsigned char)*c)) {
				*err = pw_asprintf("unexpected text after '}' in %s", name);
				goto fail;
			}
		}
		while (s < close) {
			const char *comma = memchr(s, ',', (size_t)(close - s));
			const char *end = comma ? comma : close;
			const char *eq = memchr(s, '=', (size_t)(end - s));
			const char *k = s, *ke;

			if (!eq) {
				/* An empty trailing segment is allowed; anything else is not. */
				for (const char *c = s; c < end; c++) {
					if (!isspace((unsigned char)*c)) {
						*err = pw_asprintf("label without a value in %s",
								   name);
						goto fail;
					}
				}
			} else {
				while (k < eq && isspace((unsigned char)*k))
					k++;
				ke = eq;
				while (ke > k && isspace((unsigned char)ke[-1]))
					ke--;
				if (ke == k) {
					*err = pw_asprintf("empty label name in %s", name);
					goto fail;
				}
				for (const char *c = k; c < ke; c++) {
					if (!key_char((unsigned char)*c)) {
						*err = pw_asprintf("invalid label name in %s",
								   name);
						goto fail;
					}
				}
				if ((size_t)(ke - k) == 8 && strncmp(k, "__name__", 8) == 0) {
					*err = pw_asprintf("__name__ is reserved in %s", name);
					goto fail;
				}
				if (add(&v, &nv, k, (size_t)(ke - k), eq + 1,
					(size_t)(end - eq - 1)) < 0)
					goto oom;
			}
			s = end + 1;
		}
	}
	/* What pyroscope.receive_http adds before forwarding. */
	if (find(v, nv, "service_name") < 0) {
		if (add(&v, &nv, "service_name", 12, app, strlen(app)) < 0)
			goto oom;
	} else if (add(&v, &nv, "app_name", 8, app, strlen(app)) < 0) {
		goto oom;
	}
	free(app);
	*labels = v;
	*n = nv;
	return 0;
oom:
	*err = pw_strdup("out of memory");
fail:
	free(app);
	sdk_labels_free(v, nv);
	return -1;
}
