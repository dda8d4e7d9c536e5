/*
 * labels.c - the label pipeline of the push and ingest paths, and the URL an
 * ingest request is forwarded to.
 *
 * Producers are expected to hand over sorted label sets, but nothing
 * enforces that across a plugin boundary, so the pipeline sorts a copy
 * first: duplicates are then always adjacent and always caught.
 */
#include "labels.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "util/hex.h"

#define ERR_PREFIX "invalid labels in profile: "
#define NAME_LABEL "__name__"
#define DELTA_LABEL "__delta__"
#define SERVICE_NAME_LABEL "service_name"

/* A borrowed label while the pipeline works on it. */
struct pair {
	const char *k;
	const char *v;
};

/* By name; equal names by value, so error texts do not depend on qsort. */
static int cmp_pair(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	int c = strcmp(x->k, y->k);

	return c ? c : strcmp(x->v, y->v);
}

/*
 * Writes s for an error message: valid UTF-8 as is, every byte that is not
 * part of a valid sequence as \xHH, so the text stays printable and valid.
 */
static void put_escaped(struct strbuf *sb, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), i = 0;

	while (i < n) {
		size_t run = 1;

		if (s[i] >= 0x80) {
			run = s[i] >= 0xF0 ? 4 : s[i] >= 0xE0 ? 3 : 2;
			if (run > n - i || !pw_utf8_valid((const char *)s + i, run))
				run = 0;
		}
		if (run == 0) {
			strbuf_printf(sb, "\\x%02X", s[i]);
			i++;
		} else {
			strbuf_append(sb, s + i, run);
			i += run;
		}
	}
}

/* "invalid labels in profile: <what><escaped subject>[: <escaped detail>]" */
static char *label_error(const char *what, const char *subject, const char *detail)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_puts(&sb, ERR_PREFIX);
	strbuf_puts(&sb, what);
	if (subject)
		put_escaped(&sb, subject);
	if (detail) {
		strbuf_puts(&sb, ": ");
		put_escaped(&sb, detail);
	}
	if (sb.failed) {
		strbuf_free(&sb);
		return pw_strdup(ERR_PREFIX "out of memory");
	}
	return strbuf_detach(&sb, NULL);
}

/* [A-Za-z0-9_.]+, or exactly __name__. */
static bool name_valid(const char *name)
{
	if (strcmp(name, NAME_LABEL) == 0)
		return true;
	if (!*name)
		return false;
	for (const char *p = name; *p; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.'))
			return false;
	}
	return true;
}

/* Checks a label set that is already sorted; NULL or a malloc'd error. */
static char *validate_sorted(const struct pair *p, size_t n)
{
	if (n == 0)
		return label_error("service name is required", NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(p[i].k, p[i - 1].k) == 0)
			return label_error("duplicate label name: ", p[i].k, NULL);
		if (!pw_utf8_valid(p[i].v, strlen(p[i].v)))
			return label_error("invalid label value for ", p[i].k, p[i].v);
		if (!name_valid(p[i].k))
			return label_error("invalid label name: ", p[i].k, NULL);
	}
	return NULL;
}

/* A copy with room for `extra` more pairs; NULL strings read as "". */
static struct pair *to_pairs(const struct pw_label *in, size_t n, size_t extra)
{
	struct pair *p;

	if (n > SIZE_MAX / sizeof(*p) - extra - 1)
		return NULL;
	p = calloc(n + extra + 1, sizeof(*p));
	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		p[i].k = in[i].name ? in[i].name : "";
		p[i].v = in[i].value ? in[i].value : "";
	}
	return p;
}

static size_t remove_key(struct pair *p, size_t n, const char *key)
{
	size_t w = 0;

	for (size_t r = 0; r < n; r++)
		if (strcmp(p[r].k, key) != 0)
			p[w++] = p[r];
	return w;
}

/*
 * The common tail of both paths: external labels override (an empty value
 * deletes), empty values go, the result is sorted and copied into `out`.
 * `p` has room for n + external->n pairs.
 */
static int finish(struct pair *p, size_t n, const struct pw_kvmap *external,
		  struct pw_labelset *out)
{
	size_t w = 0;

	for (size_t i = 0; external && i < external->n; i++) {
		const struct pw_kv *e = &external->items[i];

		if (!e->key)
			continue;
		n = remove_key(p, n, e->key);
		if (e->value && *e->value) {
			p[n].k = e->key;
			p[n].v = e->value;
			n++;
		}
	}
	for (size_t r = 0; r < n; r++)
		if (*p[r].v)
			p[w++] = p[r];
	n = w;
	qsort(p, n, sizeof(*p), cmp_pair);

	out->items = calloc(n ? n : 1, sizeof(*out->items));
	out->n = 0;
	if (!out->items)
		return -1;
	for (size_t i = 0; i < n; i++) {
		out->items[i].key = pw_strdup(p[i].k);
		out->items[i].value = pw_strdup(p[i].v);
		out->n++;
		if (!out->items[i].key || !out->items[i].value) {
			pw_labelset_free(out);
			return -1;
		}
	}
	return 0;
}

char *pw_labels_validate(const struct pw_label *in, size_t n)
{
	struct pair *p = to_pairs(in, n, 0);
	char *err;

	if (!p)
		return pw_strdup(ERR_PREFIX "out of memory");
	qsort(p, n, sizeof(*p), cmp_pair);
	err = validate_sorted(p, n);
	free(p);
	return err;
}

/* Labels the push path forwards although they carry the reserved prefix. */
static bool keep_on_push(const char *name)
{
	return strncmp(name, "__", 2) != 0 || strcmp(name, NAME_LABEL) == 0 ||
	       strcmp(name, DELTA_LABEL) == 0;
}

bool pw_label_forwarded(const char *name)
{
	return keep_on_push(name);
}

const char *pw_labels_lookup(const struct pw_label *in, size_t n, const struct pw_kvmap *external,
			     const char *name)
{
	const char *v = NULL;

	for (size_t i = 0; external && i < external->n; i++)
		if (external->items[i].key && strcmp(external->items[i].key, name) == 0)
			return external->items[i].value && *external->items[i].value
				       ? external->items[i].value
				       : NULL;
	for (size_t i = 0; i < n && !v; i++)
		if (in[i].name && strcmp(in[i].name, name) == 0)
			v = in[i].value;
	return v && *v ? v : NULL;
}

void pw_labelset_remove(struct pw_labelset *ls, const char *name)
{
	size_t w = 0;

	for (size_t r = 0; r < ls->n; r++) {
		if (strcmp(ls->items[r].key, name) == 0) {
			free(ls->items[r].key);
			free(ls->items[r].value);
			continue;
		}
		ls->items[w++] = ls->items[r];
	}
	ls->n = w;
}

/* Where the two pipelines differ: ingest takes __name__ from service_name
 * before validating; push drops reserved labels after. */
enum pipeline { PIPELINE_PUSH, PIPELINE_INGEST };

/* Ingest: a non-empty service_name becomes __name__. p has a spare slot. */
static size_t name_from_service(struct pair *p, size_t n)
{
	const char *service = NULL;

	for (size_t i = 0; i < n && !service; i++)
		if (strcmp(p[i].k, SERVICE_NAME_LABEL) == 0 && *p[i].v)
			service = p[i].v;
	if (!service)
		return n;
	n = remove_key(p, n, NAME_LABEL);
	p[n].k = NAME_LABEL;
	p[n].v = service;
	return n + 1;
}

/* Push: what is forwarded of the sorted, validated labels. */
static size_t keep_pushed(struct pair *p, size_t n)
{
	size_t w = 0;

	for (size_t r = 0; r < n; r++)
		if (keep_on_push(p[r].k))
			p[w++] = p[r];
	return w;
}

static int run_pipeline(enum pipeline kind, const struct pw_label *in, size_t n,
			const struct pw_kvmap *external, struct pw_labelset *out, char **err)
{
	struct pair *p = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	*err = NULL;
	/* Ingest needs one extra slot for a __name__ that service_name brings in. */
	p = to_pairs(in, n, (external ? external->n : 0) + (kind == PIPELINE_INGEST));
	if (!p)
		goto oom;
	if (kind == PIPELINE_INGEST)
		n = name_from_service(p, n);
	qsort(p, n, sizeof(*p), cmp_pair);
	/* Reserved labels are validated too, before push drops them. */
	if ((*err = validate_sorted(p, n)))
		goto out;
	if (kind == PIPELINE_PUSH)
		n = keep_pushed(p, n);
	if (finish(p, n, external, out) < 0)
		goto oom;
	rc = 0;
	goto out;
oom:
	*err = pw_strdup(ERR_PREFIX "out of memory");
out:
	free(p);
	return rc;
}

int pw_labels_push(const struct pw_label *in, size_t n, const struct pw_kvmap *external,
		   struct pw_labelset *out, char **err)
{
	return run_pipeline(PIPELINE_PUSH, in, n, external, out, err);
}

int pw_labels_ingest(const struct pw_label *in, size_t n, const struct pw_kvmap *external,
		     struct pw_labelset *out, char **err)
{
	return run_pipeline(PIPELINE_INGEST, in, n, external, out, err);
}

char *pw_labels_ingest_name(const struct pw_labelset *ls)
{
	struct strbuf sb = STRBUF_INIT;
	bool first = true;

	for (size_t i = 0; i < ls->n; i++)
		if (strcmp(ls->items[i].key, NAME_LABEL) == 0)
			strbuf_puts(&sb, ls->items[i].value);
	strbuf_putc(&sb, '{');
	for (size_t i = 0; i < ls->n; i++) {
		if (strcmp(ls->items[i].key, NAME_LABEL) == 0)
			continue;
		if (!first)
			strbuf_putc(&sb, ',');
		first = false;
		strbuf_printf(&sb, "%s=%s", ls->items[i].key, ls->items[i].value);
	}
	strbuf_putc(&sb, '}');
	if (sb.failed) {
		strbuf_free(&sb);
		return NULL;
	}
	return strbuf_detach(&sb, NULL);
}

void pw_labelset_free(struct pw_labelset *ls)
{
	if (!ls)
		return;
	for (size_t i = 0; i < ls->n; i++) {
		free(ls->items[i].key);
		free(ls->items[i].value);
	}
	free(ls->items);
	ls->items = NULL;
	ls->n = 0;
}

/* ---- the ingest URL ---------------------------------------------------- */

/* A decoded query parameter; %00 decodes to a NUL, hence the lengths. */
struct param {
	char *k;
	char *v;
	size_t kn, vn;
	size_t seq; /* input order, to keep values of one key in order */
};

struct params {
	struct param *items;
	size_t n, cap;
};

static void params_free(struct params *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		free(ps->items[i].k);
		free(ps->items[i].v);
	}
	free(ps->items);
	memset(ps, 0, sizeof(*ps));
}

/* Takes ownership of k and v (also on failure). */
static int params_add(struct params *ps, char *k, size_t kn, char *v, size_t vn)
{
	if (!k || !v)
		goto fail;
	if (ps->n == ps->cap) {
		size_t ncap = ps->cap ? ps->cap * 2 : 8;
		struct param *np;

		if (ncap > SIZE_MAX / sizeof(*np))
			goto fail;
		np = realloc(ps->items, ncap * sizeof(*np));
		if (!np)
			goto fail;
		ps->items = np;
		ps->cap = ncap;
	}
	ps->items[ps->n].k = k;
	ps->items[ps->n].v = v;
	ps->items[ps->n].kn = kn;
	ps->items[ps->n].vn = vn;
	ps->items[ps->n].seq = ps->n;
	ps->n++;
	return 0;
fail:
	free(k);
	free(v);
	return -1;
}

static bool key_is(const struct param *p, const char *k, size_t kn)
{
	return p->kn == kn && memcmp(p->k, k, kn) == 0;
}

static bool params_has(const struct params *ps, const struct param *p)
{
	for (size_t i = 0; i < ps->n; i++)
		if (key_is(&ps->items[i], p->k, p->kn))
			return true;
	return false;
}

/* Adds a copy of p. */
static int params_copy(struct params *ps, const struct param *p)
{
	char *k = malloc(p->kn + 1), *v = malloc(p->vn + 1);

	if (k)
		memcpy(k, p->k, p->kn + 1);
	if (v)
		memcpy(v, p->v, p->vn + 1);
	return params_add(ps, k, p->kn, v, p->vn);
}

/*
 * Percent-decodes s[0..n) into a malloc'd string of *outn bytes ('+' is a
 * space in a query). *malformed is set when an escape is not %HH.
 */
char *pw_query_unescape(const char *s, size_t n, size_t *outn, bool *malformed)
{
	char *out = malloc(n + 1), *o = out;

	*malformed = false;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi = i + 2 < n ? pwx_hex_val(s[i + 1]) : -1;
			int lo = hi >= 0 ? pwx_hex_val(s[i + 2]) : -1;

			if (hi < 0 || lo < 0) {
				*malformed = true;
				free(out);
				return NULL;
			}
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else {
			*o++ = s[i] == '+' ? ' ' : s[i];
		}
	}
	*o = '\0';
	*outn = (size_t)(o - out);
	return out;
}

/*
 * Splits a raw query into decoded parameters, appending to ps. Returns 0,
 * or -1 with *err set.
 */
static int parse_query(const char *q, size_t n, struct params *ps, const char *where, char **err)
{
	size_t i = 0;

	while (i < n) {
		size_t end = i, eq;
		bool bad_k = false, bad_v = false;
		size_t kn = 0, vn = 0;
		char *k, *v;

		while (end < n && q[end] != '&')
			end++;
		if (end > i) {
			for (eq = i; eq < end && q[eq] != '='; eq++)
				;
			k = pw_query_unescape(q + i, eq - i, &kn, &bad_k);
			v = eq < end ? pw_query_unescape(q + eq + 1, end - eq - 1, &vn, &bad_v)
				     : pw_query_unescape("", 0, &vn, &bad_v);
			if (bad_k || bad_v) {
				free(k);
				free(v);
				*err = pw_asprintf("invalid URL escape in the %s query", where);
				return -1;
			}
			if (params_add(ps, k, kn, v, vn) < 0) {
				*err = pw_strdup("out of memory");
				return -1;
			}
		}
		i = end + 1;
	}
	return 0;
}

static int cmp_param(const void *a, const void *b)
{
	const struct param *x = a, *y = b;
	int c = memcmp(x->k, y->k, x->kn < y->kn ? x->kn : y->kn);

	if (c)
		return c;
	if (x->kn != y->kn)
		return x->kn < y->kn ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Query escaping as HTML forms do it: unreserved kept, space as '+'. */
static void query_escape(struct strbuf *sb, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			strbuf_putc(sb, (char)c);
		} else if (c == ' ') {
			strbuf_putc(sb, '+');
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};

			strbuf_append(sb, e, 3);
		}
	}
}

/* Checks that every '%' in a raw path starts a %HH escape. */
static bool path_escapes_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '%' &&
		    (i + 2 >= n || pwx_hex_val(s[i + 1]) < 0 || pwx_hex_val(s[i + 2]) < 0))
			return false;
	return true;
}

/*
 * Lexically cleans a '/'-separated path the way path.Clean does: no empty
 * or "." elements, ".." removes the previous element and never climbs above
 * the root. Writes into out (at least n + 2 bytes).
 */
static void clean_path(const char *in, size_t n, char *out)
{
	size_t w = 0, r = 0;
	bool rooted = n > 0 && in[0] == '/';

	if (rooted)
		out[w++] = '/';
	while (r < n) {
		size_t start, len;

		while (r < n && in[r] == '/')
			r++;
		start = r;
		while (r < n && in[r] != '/')
			r++;
		len = r - start;
		if (len == 0 || (len == 1 && in[start] == '.'))
			continue;
		if (len == 2 && in[start] == '.' && in[start + 1] == '.') {
			size_t floor = rooted ? 1 : 0;

			/* Back up to the previous separator (or the root). */
			if (w > floor) {
				while (w > floor && out[w - 1] != '/')
					w--;
				if (w > floor)
					w--;
			}
			continue;
		}
		if (w > (rooted ? 1u : 0u))
			out[w++] = '/';
		memcpy(out + w, in + start, len);
		w += len;
	}
	out[w] = '\0';
}

/*
 * Appends the joined and cleaned path, escaping bytes that may not appear
 * raw in a URL path (existing %HH escapes are kept as they are).
 */
static int put_joined_path(struct strbuf *sb, const char *a, size_t an, const char *b, size_t bn)
{
	static const char hex[] = "0123456789ABCDEF";
	char *joined = NULL, *clean = NULL;
	size_t jn = 0;
	int rc = -1;

	if (an > SIZE_MAX / 2 - bn - 4)
		goto out;
	joined = malloc(an + bn + 2);
	clean = malloc(an + bn + 4);
	if (!joined || !clean)
		goto out;
	memcpy(joined, a, an);
	jn = an;
	if (an && bn)
		joined[jn++] = '/';
	memcpy(joined + jn, b, bn);
	jn += bn;
	if (jn == 0) {
		rc = 0; /* no path at all */
		goto out;
	}
	clean_path(joined, jn, clean);
	if (clean[0] != '/')
		strbuf_putc(sb, '/');
	for (const unsigned char *p = (const unsigned char *)clean; *p; p++) {
		unsigned char c = *p;

		if (c <= 0x20 || c >= 0x7F || strchr("\"<>\\^`{|}", c)) {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};

			strbuf_append(sb, e, 3);
		} else {
			strbuf_putc(sb, (char)c);
		}
	}
	rc = 0;
out:
	free(joined);
	free(clean);
	return rc;
}

char *pw_ingest_url(const char *endpoint_url, const char *path_query, const struct pw_labelset *ls,
		    char **err)
{
	struct params ep = {0}, inc = {0}, all = {0};
	struct strbuf sb = STRBUF_INIT;
	const char *auth, *path, *q, *frag;
	size_t path_n, ip_n, iq_n;
	char *name = NULL, *url = NULL;

	*err = NULL;
	if (!endpoint_url || !(auth = strstr(endpoint_url, "://"))) {
		*err = pw_strdup("invalid endpoint url: no scheme");
		goto out;
	}
	auth += 3;
	path = auth + strcspn(auth, "/?#");
	path_n = strcspn(path, "?#");
	q = path + path_n;
	frag = q + strcspn(q, "#");
	if (!path_escapes_valid(path, path_n)) {
		*err = pw_strdup("invalid URL escape in the endpoint url path");
		goto out;
	}
	if (*q == '?' && parse_query(q + 1, (size_t)(frag - q - 1), &ep, "endpoint url", err) < 0)
		goto out;

	if (!path_query)
		path_query = "";
	ip_n = strcspn(path_query, "?#");
	iq_n = path_query[ip_n] == '?' ? strcspn(path_query + ip_n + 1, "#") : 0;
	if (!path_escapes_valid(path_query, ip_n)) {
		*err = pw_strdup("invalid URL escape in the request path");
		goto out;
	}
	if (iq_n && parse_query(path_query + ip_n + 1, iq_n, &inc, "request", err) < 0)
		goto out;

	/* The incoming parameters win; `name` is rewritten from the labels. */
	name = pw_labels_ingest_name(ls);
	if (!name)
		goto oom;
	for (size_t i = 0; i < ep.n; i++) {
		struct param *p = &ep.items[i];

		if (key_is(p, "name", 4) || params_has(&inc, p))
			continue;
		if (params_copy(&all, p) < 0)
			goto oom;
	}
	for (size_t i = 0; i < inc.n; i++) {
		struct param *p = &inc.items[i];

		if (!key_is(p, "name", 4) && params_copy(&all, p) < 0)
			goto oom;
	}
	if (params_add(&all, pw_strdup("name"), 4, name, strlen(name)) < 0) {
		name = NULL;
		goto oom;
	}
	name = NULL;
	qsort(all.items, all.n, sizeof(*all.items), cmp_param);

	strbuf_append(&sb, endpoint_url, (size_t)(path - endpoint_url));
	if (put_joined_path(&sb, path, path_n, path_query, ip_n) < 0)
		goto oom;
	for (size_t i = 0; i < all.n; i++) {
		strbuf_putc(&sb, i ? '&' : '?');
		query_escape(&sb, all.items[i].k, all.items[i].kn);
		strbuf_putc(&sb, '=');
		query_escape(&sb, all.items[i].v, all.items[i].vn);
	}
	if (sb.failed)
		goto oom;
	url = strbuf_detach(&sb, NULL);
	goto out;
oom:
	*err = pw_strdup("out of memory");
out:
	strbuf_free(&sb);
	params_free(&ep);
	params_free(&inc);
	params_free(&all);
	free(name);
	return url;
}
