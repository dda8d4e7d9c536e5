/*
 * config_json.c - a parsed block back to text: the canonical JSON (keys
 * sorted, used to tell whether a reload changed anything), the redacted JSON
 * shown to users, and endpoint display names. Driven by whichever option
 * table it is handed; it calls nothing of the other config files.
 */
#include "config_json.h"

#include "duration.h"
#include "strbuf.h"
#include "util/jsonstr.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Canonical and redacted JSON                                               */

#define REDACTED "<secret>"

/* The canonical form writes \n, \r and \t short. */
static void put_json_string(struct strbuf *sb, const char *s)
{
	pwx_json_quote(sb, s, PWX_JSON_SHORT_ESCAPES);
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

/* Pointers to the n items of size `size` at items, sorted with cmp (which
 * compares two pointers); NULL when out of memory (sb marked failed). */
static const void **sorted_ptrs(struct strbuf *sb, const void *items, size_t n, size_t size,
				int (*cmp)(const void *, const void *))
{
	const void **sorted = calloc(n + 1, sizeof(*sorted));

	if (!sorted) {
		sb->failed = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		sorted[i] = (const char *)items + i * size;
	qsort(sorted, n, sizeof(*sorted), cmp);
	return sorted;
}

static void emit_map(struct strbuf *sb, const struct pw_kvmap *m)
{
	const struct pw_kv **sorted =
		(const struct pw_kv **)sorted_ptrs(sb, m->items, m->n, sizeof(*m->items), cmp_kv);
	bool first = true;

	if (!sorted)
		return;
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
	const struct pw_kvlist **sorted = (const struct pw_kvlist **)sorted_ptrs(
		sb, m->items, m->n, sizeof(*m->items), cmp_kvlist);
	bool first = true;

	if (!sorted)
		return;
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

	if (o->applies && !o->applies(base))
		return; /* meaningless here, and refused if given */
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
	case OT_CHOICE:
		put_key(sb, first, o->name);
		put_json_string(sb, o->choices[*(const bool *)p ? 0 : 1]);
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

char *pw_cfg_emit(const struct block *b, const void *base, bool redact)
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

/* The endpoint's name, else its URL without any user:password@. */
char *pw_cfg_display_name(const struct pw_endpoint_config *e)
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

char *pw_cfg_emit_redacted(const struct block *b, const void *base)
{
	char *compact, *pretty = NULL;
	json_t *doc;

	compact = pw_cfg_emit(b, base, true);
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
