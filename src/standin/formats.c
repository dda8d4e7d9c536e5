/*
 * formats.c - payload checks of the Pyroscope stand-in: label rules, the
 * ingest `name` parser, a light pprof walk, JFR magic, folded text,
 * multipart/form-data and query strings.
 *
 * "Light" means structural: enough to tell a profile from random bytes,
 * a truncated buffer or the wrong format, without building the profile.
 */
#define _GNU_SOURCE
#include "standin/formats.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strbuf.h"
#include "util/gzip.h"
#include "util/hex.h"

/* Pyroscope's default per-tenant limits on series labels. */
#define MAX_LABEL_NAMES 30
#define MAX_LABEL_NAME_LEN 1024
#define MAX_LABEL_VALUE_LEN 2048

static bool label_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.';
}

static bool app_name_char(char c)
{
	return label_name_char(c) || c == '-' || c == '/';
}

char *standin_check_labels(const struct pw_kv *labels, size_t n)
{
	if (n == 0)
		return pw_strdup("series without labels");
	if (n > MAX_LABEL_NAMES)
		return pw_asprintf("series has %zu label names; limit %d", n, MAX_LABEL_NAMES);
	for (size_t i = 0; i < n; i++) {
		const char *k = labels[i].key, *v = labels[i].value;

		if (!*k)
			return pw_strdup("invalid label name: empty");
		if (strlen(k) > MAX_LABEL_NAME_LEN)
			return pw_asprintf("label name too long: %.64s...", k);
		if (strlen(v) > MAX_LABEL_VALUE_LEN)
			return pw_asprintf("label value too long for %s", k);
		if (!pw_utf8_valid(v, strlen(v)))
			return pw_asprintf("invalid label value for %s", k);
		if (strcmp(k, "__name__") != 0)
			for (const char *p = k; *p; p++)
				if (!label_name_char(*p))
					return pw_asprintf("invalid label name: %s", k);
		for (size_t j = 0; j < i; j++)
			if (strcmp(labels[j].key, k) == 0)
				return pw_asprintf("duplicate label name: %s", k);
	}
	return NULL;
}

/* ---- protobuf walking ---- */

struct pb {
	const uint8_t *p, *end;
};

static int pb_varint(struct pb *r, uint64_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		uint8_t b;

		if (r->p >= r->end)
			return -1;
		b = *r->p++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* Reads one field header and its payload. For length-delimited fields
 * (*data, *len) is the payload; for varints *val is the value. */
static int pb_field(struct pb *r, uint32_t *field, unsigned *wt, const uint8_t **data, size_t *len,
		    uint64_t *val)
{
	uint64_t key, n;

	if (pb_varint(r, &key) < 0)
		return -1;
	*field = (uint32_t)(key >> 3);
	*wt = (unsigned)(key & 7);
	if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff)
		return -1;
	switch (*wt) {
	case 0:
		return pb_varint(r, val);
	case 1:
		if (r->end - r->p < 8)
			return -1;
		r->p += 8;
		return 0;
	case 5:
		if (r->end - r->p < 4)
			return -1;
		r->p += 4;
		return 0;
	case 2:
		if (pb_varint(r, &n) < 0 || n > (uint64_t)(r->end - r->p))
			return -1;
		*data = r->p;
		*len = (size_t)n;
		r->p += n;
		return 0;
	default: /* groups are not used by pprof */
		return -1;
	}
}

/* A message whose fields are all well-formed. */
static bool pb_wellformed(const uint8_t *d, size_t n)
{
	struct pb r = {d, d + n};

	while (r.p < r.end) {
		uint32_t f;
		unsigned wt;
		const uint8_t *x;
		size_t l;
		uint64_t v;

		if (pb_field(&r, &f, &wt, &x, &l, &v) < 0)
			return false;
	}
	return true;
}

/* A packed run of varints. */
static bool pb_packed(const uint8_t *d, size_t n)
{
	struct pb r = {d, d + n};
	uint64_t v;

	while (r.p < r.end)
		if (pb_varint(&r, &v) < 0)
			return false;
	return true;
}

struct pprof_scan {
	size_t nstrings;
	bool first_string_empty;
	size_t nsample_types;
	uint64_t max_string_ref;
};

static char *check_value_type(const uint8_t *d, size_t n, struct pprof_scan *sc)
{
	struct pb r = {d, d + n};

	while (r.p < r.end) {
		uint32_t f;
		unsigned wt;
		const uint8_t *x;
		size_t l;
		uint64_t v = 0;

		if (pb_field(&r, &f, &wt, &x, &l, &v) < 0)
			return pw_strdup("malformed sample_type");
		if ((f == 1 || f == 2) && wt != 0)
			return pw_strdup("sample_type: wrong wire type");
		if ((f == 1 || f == 2) && v > sc->max_string_ref)
			sc->max_string_ref = v;
	}
	return NULL;
}

static char *check_sample(const uint8_t *d, size_t n)
{
	struct pb r = {d, d + n};

	while (r.p < r.end) {
		uint32_t f;
		unsigned wt;
		const uint8_t *x = NULL;
		size_t l = 0;
		uint64_t v;

		if (pb_field(&r, &f, &wt, &x, &l, &v) < 0)
			return pw_strdup("malformed sample");
		if ((f == 1 || f == 2) && wt != 0 && !(wt == 2 && pb_packed(x, l)))
			return pw_strdup("sample: malformed location_id/value");
		if (f == 3 && (wt != 2 || !pb_wellformed(x, l)))
			return pw_strdup("sample: malformed label");
	}
	return NULL;
}

/* Checks one top-level field of Profile against its declared type. */
static char *check_profile_field(uint32_t f, unsigned wt, const uint8_t *x, size_t l,
				 struct pprof_scan *sc)
{
	switch (f) {
	case 1:
		if (wt != 2)
			break;
		sc->nsample_types++;
		return check_value_type(x, l, sc);
	case 2:
		return wt == 2 ? check_sample(x, l)
			       : pw_strdup("profile: wrong wire type for sample");
	case 3:
	case 4:
	case 5:
	case 11:
		if (wt == 2 && pb_wellformed(x, l))
			return NULL;
		break;
	case 6:
		if (wt != 2)
			break;
		if (sc->nstrings++ == 0)
			sc->first_string_empty = l == 0;
		return NULL;
	case 7:
	case 8:
	case 9:
	case 10:
	case 12:
	case 14:
	case 15:
		if (wt == 0)
			return NULL;
		break;
	case 13:
		if (wt == 0 || (wt == 2 && pb_packed(x, l)))
			return NULL;
		break;
	default:
		return NULL; /* unknown fields are skipped, as protobuf decoders do */
	}
	return pw_asprintf("profile: field %u has the wrong type", f);
}

static char *walk_pprof(const uint8_t *d, size_t n)
{
	struct pprof_scan sc = {0};
	struct pb r = {d, d + n};

	if (n == 0)
		return pw_strdup("empty profile");
	while (r.p < r.end) {
		uint32_t f;
		unsigned wt;
		const uint8_t *x = NULL;
		size_t l = 0;
		uint64_t v;
		char *err;

		if (pb_field(&r, &f, &wt, &x, &l, &v) < 0)
			return pw_strdup("not a pprof profile: malformed protobuf");
		err = check_profile_field(f, wt, x, l, &sc);
		if (err) {
			char *m = pw_asprintf("not a pprof profile: %s", err);

			free(err);
			return m;
		}
	}
	if (sc.nstrings == 0 || !sc.first_string_empty)
		return pw_strdup("not a pprof profile: string_table must start with \"\"");
	if (sc.nsample_types == 0)
		return pw_strdup("not a pprof profile: no sample types");
	if (sc.max_string_ref >= sc.nstrings)
		return pw_strdup("not a pprof profile: string index out of range");
	return NULL;
}

char *standin_check_pprof(const uint8_t *data, size_t len)
{
	uint8_t *raw = NULL;
	size_t rawlen;
	char *err;

	if (len >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
		if (pwx_gunzip(data, len, STANDIN_MAX_INFLATED, 0, &raw, &rawlen) < 0)
			return pw_strdup("not a pprof profile: corrupt gzip data");
		err = walk_pprof(raw, rawlen);
		free(raw);
		return err;
	}
	return walk_pprof(data, len);
}

const uint8_t *standin_pprof_sample(size_t *len)
{
	static const uint8_t prof[] = {
		0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, /* sample_type {cpu, nanoseconds} */
		0x12, 0x06, 0x0a, 0x01, 0x01, 0x12, 0x01, 0x0a, /* sample {location 1, value 10} */
		0x22, 0x06, 0x08, 0x01, 0x22, 0x02, 0x08, 0x01, /* location {id 1, line {function 1}} */
		0x2a, 0x04, 0x08, 0x01, 0x10, 0x03, /* function {id 1, name "main"} */
		0x32, 0x00, 0x32, 0x03, 'c',  'p',  'u', /* string_table */
		0x32, 0x0b, 'n',  'a',	'n',  'o',  's',  'e',	'c',  'o',  'n',  'd',	's',
		0x32, 0x04, 'm',  'a',	'i',  'n',  0x5a, 0x04, 0x08, 0x01, 0x10, 0x02, /* period_type */
		0x60, 0x0a, /* period 10 */
	};

	*len = sizeof(prof);
	return prof;
}

char *standin_check_jfr(const uint8_t *body, size_t len)
{
	static const uint8_t magic[4] = {'F', 'L', 'R', 0};
	uint8_t *raw = NULL;
	size_t rawlen;
	bool ok;

	if (len >= 2 && body[0] == 0x1f && body[1] == 0x8b) {
		if (pwx_gunzip(body, len, STANDIN_MAX_INFLATED, 0, &raw, &rawlen) < 0)
			return pw_strdup("jfr: corrupt gzip data");
		ok = rawlen >= 4 && memcmp(raw, magic, 4) == 0;
		free(raw);
	} else {
		ok = len >= 4 && memcmp(body, magic, 4) == 0;
	}
	return ok ? NULL : pw_strdup("jfr: invalid chunk magic");
}

char *standin_check_folded(const uint8_t *body, size_t len, bool lines)
{
	const char *p = (const char *)body, *end = p + len;
	size_t lineno = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end, *sp;

		lineno++;
		if (le > p && le[-1] == '\r')
			le--;
		if (le == p || lines)
			goto next;
		for (sp = le; sp > p && sp[-1] != ' '; sp--)
			;
		if (sp == p || sp == le)
			return pw_asprintf("line %zu: no sample count", lineno);
		for (const char *q = sp; q < le; q++)
			if (*q < '0' || *q > '9' || q - sp > 18)
				return pw_asprintf("line %zu: invalid sample count \"%.*s\"",
						   lineno, (int)(le - sp), sp);
	next:
		p = nl ? nl + 1 : end;
	}
	return NULL;
}

/* ---- the ingest `name` ---- */

static char *trimmed(const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return pw_strndup(s, n);
}

static int kv_set(struct standin_header **kv, size_t *n, char *k, char *v)
{
	struct standin_header *nk;

	for (size_t i = 0; i < *n; i++) {
		if (strcmp((*kv)[i].name, k) == 0) {
			free(k);
			free((*kv)[i].value);
			(*kv)[i].value = v;
			return 0;
		}
	}
	nk = realloc(*kv, (*n + 1) * sizeof(*nk));
	if (!nk) {
		free(k);
		free(v);
		return -1;
	}
	*kv = nk;
	nk[*n].name = k;
	nk[*n].value = v;
	(*n)++;
	return 0;
}

void standin_kv_free(struct standin_header *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].name);
		free(kv[i].value);
	}
	free(kv);
}

/*
 * Mirrors Pyroscope's key parser: the app name runs to the first '{'; inside
 * the braces `k=v` pairs end at ',' or '}'; the first '}' ends parsing.
 * A pair that never ends (missing '}') is dropped, as there.
 */
int standin_parse_name(const char *name, struct standin_header **out, size_t *n, char **err)
{
	const char *brace = strchr(name, '{'), *p, *kstart, *vstart = NULL;
	size_t applen = brace ? (size_t)(brace - name) : strlen(name);
	char *app = trimmed(name, applen);

	*out = NULL;
	*n = 0;
	*err = NULL;
	if (!app)
		goto oom;
	if (!*app) {
		*err = pw_strdup("invalid name: application name is required");
		goto fail;
	}
	for (const char *c = app; *c; c++) {
		if (!app_name_char(*c)) {
			*err = pw_asprintf("invalid name: invalid application name \"%s\"", app);
			goto fail;
		}
	}
	if (kv_set(out, n, pw_strdup("__name__"), app) < 0) {
		app = NULL;
		goto oom;
	}
	app = NULL;
	if (!brace)
		return 0;
	for (p = kstart = brace + 1; *p; p++) {
		char *k, *v;

		if (!vstart) {
			if (*p == '}')
				return 0;
			if (*p == '=')
				vstart = p + 1;
			continue;
		}
		if (*p != ',' && *p != '}')
			continue;
		k = trimmed(kstart, (size_t)(vstart - 1 - kstart));
		v = trimmed(vstart, (size_t)(p - vstart));
		if (!k || !v) {
			free(k);
			free(v);
			goto oom;
		}
		if (strcmp(k, "__name__") != 0) {
			const char *c = k;

			for (; *c && label_name_char(*c); c++)
				;
			if (!*k || *c) {
				*err = *k ? pw_asprintf("invalid name: invalid tag key \"%s\"", k)
					  : pw_strdup("invalid name: tag key is required");
				free(k);
				free(v);
				goto fail;
			}
		}
		if (kv_set(out, n, k, v) < 0)
			goto oom;
		if (*p == '}')
			return 0;
		kstart = p + 1;
		vstart = NULL;
	}
	return 0;
oom:
	*err = pw_strdup("out of memory");
fail:
	free(app);
	standin_kv_free(*out, *n);
	*out = NULL;
	*n = 0;
	return -1;
}

/* ---- query strings and content types ---- */

/* Decodes %HH and '+'. NULL for a %00, which would cut the C string short
 * ("app%00{k=v}" read as "app"). */
static char *url_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			*o++ = ' ';
		} else if (s[i] == '%' && i + 2 < n && pwx_hex_val(s[i + 1]) >= 0 &&
			   pwx_hex_val(s[i + 2]) >= 0) {
			*o = (char)(pwx_hex_val(s[i + 1]) * 16 + pwx_hex_val(s[i + 2]));
			if (!*o++) {
				free(out);
				return NULL;
			}
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

char *standin_query_get(const char *query, const char *key)
{
	const char *p = query;
	size_t klen = strlen(key);

	while (p && *p) {
		const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		const char *kend = eq ? eq : end;
		char *k = url_decode(p, (size_t)(kend - p));
		bool match = k && strlen(k) == klen && memcmp(k, key, klen) == 0;

		free(k);
		if (match)
			return eq ? url_decode(eq + 1, (size_t)(end - eq - 1)) : pw_strdup("");
		p = amp ? amp + 1 : NULL;
	}
	return NULL;
}

char *standin_media_type(const char *content_type)
{
	size_t n;
	char *m;

	if (!content_type)
		return NULL;
	n = strcspn(content_type, ";");
	m = trimmed(content_type, n);
	for (char *c = m; c && *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return m;
}

/* ---- multipart/form-data ---- */

/* The value of parameter `param` in a header value like
 * `form-data; name="x"; filename=y`. Malloc'd or NULL. */
static char *header_param(const char *v, const char *param)
{
	size_t plen = strlen(param);

	for (const char *p = strchr(v, ';'); p; p = strchr(p, ';')) {
		const char *end;

		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, param, plen) != 0 || p[plen] != '=')
			continue;
		p += plen + 1;
		if (*p == '"') {
			struct strbuf sb = STRBUF_INIT;

			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				strbuf_putc(&sb, *p);
			}
			if (*p != '"' || sb.failed) {
				strbuf_free(&sb);
				return NULL;
			}
			return strbuf_detach(&sb, NULL);
		}
		end = p + strcspn(p, "; \t");
		return pw_strndup(p, (size_t)(end - p));
	}
	return NULL;
}

void standin_parts_free(struct standin_part *parts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(parts[i].name);
		free(parts[i].filename);
	}
	free(parts);
}

const struct standin_part *standin_part_find(const struct standin_part *parts, size_t n,
					     const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(parts[i].name, name) == 0)
			return &parts[i];
	return NULL;
}

/* Parses the headers of one part (between its delimiter line and the
 * blank line) and returns its field name/filename. */
static int part_head(const char *h, size_t n, struct standin_part *part, char **err)
{
	char *head = NULL, *line, *save = NULL;
	int rc = -1;

	/* Parsed as text: a NUL would hide the rest of the part's headers. */
	if (memchr(h, '\0', n)) {
		*err = pw_strdup("multipart: NUL byte in part headers");
		goto out;
	}
	head = pw_strndup(h, n);
	if (!head)
		goto out;
	for (line = strtok_r(head, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		char *colon = strchr(line, ':');

		if (!colon)
			continue;
		*colon = '\0';
		if (strcasecmp(line, "Content-Disposition") != 0)
			continue;
		/* A repeated header: the last one counts, the earlier values
		 * are not leaked. */
		free(part->name);
		free(part->filename);
		part->name = header_param(colon + 1, "name");
		part->filename = header_param(colon + 1, "filename");
	}
	if (!part->name) {
		*err = pw_strdup("multipart: part without a form field name");
		goto out;
	}
	rc = 0;
out:
	free(head);
	return rc;
}

int standin_multipart_parse(const char *content_type, const uint8_t *body, size_t len,
			    struct standin_part **parts, size_t *nparts, char **err)
{
	char *mt = standin_media_type(content_type), *boundary = NULL, *delim = NULL;
	const char *b = (const char *)body, *end = b + len, *p;
	size_t dlen;
	int rc = -1;

	*parts = NULL;
	*nparts = 0;
	*err = NULL;
	if (!mt || strcmp(mt, "multipart/form-data") != 0) {
		*err = pw_strdup("multipart: not multipart/form-data");
		goto out;
	}
	boundary = header_param(content_type, "boundary");
	if (!boundary || !*boundary || strlen(boundary) > 70) {
		*err = pw_strdup("multipart: missing or invalid boundary");
		goto out;
	}
	delim = pw_asprintf("\r\n--%s", boundary);
	if (!delim)
		goto oom;
	dlen = strlen(delim);
	/* The first delimiter may open the body (no preceding CRLF). */
	if ((size_t)(end - b) >= dlen - 2 && memcmp(b, delim + 2, dlen - 2) == 0)
		p = b + dlen - 2;
	else if ((p = memmem(b, len, delim, dlen)))
		p += dlen;
	else {
		*err = pw_strdup("multipart: no boundary found");
		goto out;
	}
	for (;;) {
		const char *hend, *next;
		struct standin_part part = {0}, *np;

		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			break; /* closing delimiter */
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			goto malformed;
		p += 2;
		if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
			hend = p; /* no part headers */
		else if ((hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4)))
			hend += 2;
		else
			goto malformed;
		if (part_head(p, (size_t)(hend - p), &part, err) < 0) {
			free(part.name);
			free(part.filename);
			if (!*err)
				goto oom;
			goto out;
		}
		p = hend + 2;
		next = memmem(p, (size_t)(end - p), delim, dlen);
		if (!next) {
			free(part.name);
			free(part.filename);
			goto malformed;
		}
		part.data = (const uint8_t *)p;
		part.len = (size_t)(next - p);
		np = realloc(*parts, (*nparts + 1) * sizeof(*np));
		if (!np) {
			free(part.name);
			free(part.filename);
			goto oom;
		}
		*parts = np;
		np[(*nparts)++] = part;
		p = next + dlen;
	}
	rc = 0;
	goto out;
malformed:
	*err = pw_strdup("multipart: malformed body");
	goto out;
oom:
	*err = pw_strdup("out of memory");
out:
	if (rc < 0) {
		standin_parts_free(*parts, *nparts);
		*parts = NULL;
		*nparts = 0;
	}
	free(delim);
	free(boundary);
	free(mt);
	return rc;
}
