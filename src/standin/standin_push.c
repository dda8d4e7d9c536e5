/*
 * standin_push.c - the stand-in's Connect push route: the protocol headers,
 * Content-Encoding, decoding a PushRequest body (protobuf or its JSON form)
 * and the checks Pyroscope's distributor applies to it.
 */
#define _GNU_SOURCE
#include "util/gzip.h"
#include "standin/standin_push.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "standin/formats.h"
#include "standin/standin_judge.h"
#include "standin/standin_state.h"
#include "strbuf.h"

static int base64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Standard or URL-safe base64, padding optional (as protojson accepts).
 * Appends to sb; returns 0 or -1. */
static int base64_decode(const char *in, struct strbuf *sb)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = strlen(in);

	while (n && in[n - 1] == '=')
		n--;
	for (size_t i = 0; i < n; i++) {
		int v = base64_val(in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (strbuf_putc(sb, (char)((acc >> bits) & 0xff)) < 0)
				return -1;
		}
	}
	return bits >= 6 ? -1 : 0;
}

static const char *json_str(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);

	if (!v && b)
		v = json_object_get(o, b);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * protojson form of PushRequest. The raw profiles are decoded into one
 * buffer first (so the samples can point into it), then the series built.
 */
static int decode_push_json(const uint8_t *body, size_t len, struct outcome *oc, char **err)
{
	json_error_t je;
	json_t *root = json_loadb((const char *)body, len, 0, &je), *series;
	struct strbuf blobs = STRBUF_INIT;
	struct pw_dec_push *p = &oc->push;
	size_t i, j, off = 0;
	int rc = -1;

	memset(p, 0, sizeof(*p));
	if (!json_is_object(root)) {
		*err = pw_asprintf("unmarshal message: %s", root ? "not an object" : je.text);
		goto out;
	}
	series = json_object_get(root, "series");
	if (series && !json_is_array(series)) {
		*err = pw_strdup("unmarshal message: series is not a list");
		goto out;
	}
	/* Pass 1: decode every raw profile into one buffer. */
	for (i = 0; i < json_array_size(series); i++) {
		json_t *samples = json_object_get(json_array_get(series, i), "samples");

		for (j = 0; j < json_array_size(samples); j++) {
			const char *b64 =
				json_str(json_array_get(samples, j), "rawProfile", "raw_profile");

			if (b64 && base64_decode(b64, &blobs) < 0) {
				*err = pw_strdup("unmarshal message: invalid base64 in rawProfile");
				goto out;
			}
		}
	}
	oc->json_blobs = (uint8_t *)strbuf_detach(&blobs, NULL);
	p->series = calloc(json_array_size(series) + 1, sizeof(*p->series));
	oc->have_push = true; /* from here on pw_dec_push_free() cleans up */
	if (!oc->json_blobs || !p->series)
		goto oom;
	/* Pass 2: build the series; decode again only to learn each length. */
	for (i = 0; i < json_array_size(series); i++) {
		json_t *js = json_array_get(series, i), *labels = json_object_get(js, "labels");
		json_t *samples = json_object_get(js, "samples");
		struct pw_dec_series *ds = &p->series[p->nseries++];

		if (!json_is_object(js)) {
			*err = pw_strdup("unmarshal message: series entry is not an object");
			goto out;
		}
		ds->labels = calloc(json_array_size(labels) + 1, sizeof(*ds->labels));
		ds->samples = calloc(json_array_size(samples) + 1, sizeof(*ds->samples));
		if (!ds->labels || !ds->samples)
			goto oom;
		for (j = 0; j < json_array_size(labels); j++) {
			json_t *l = json_array_get(labels, j);
			const char *n = json_str(l, "name", NULL), *v = json_str(l, "value", NULL);

			ds->labels[j].key = pw_strdup(n ? n : "");
			ds->labels[j].value = pw_strdup(v ? v : "");
			ds->nlabels++;
			if (!ds->labels[j].key || !ds->labels[j].value)
				goto oom;
		}
		for (j = 0; j < json_array_size(samples); j++) {
			json_t *sm = json_array_get(samples, j);
			const char *b64 = json_str(sm, "rawProfile", "raw_profile");
			const char *id = json_str(sm, "ID", "id");
			struct strbuf one = STRBUF_INIT;

			if (b64)
				base64_decode(b64, &one);
			ds->samples[j].data = oc->json_blobs + off;
			ds->samples[j].len = one.len;
			off += one.len;
			strbuf_free(&one);
			ds->samples[j].id = pw_strdup(id ? id : "");
			ds->nsamples++;
			if (!ds->samples[j].id)
				goto oom;
		}
	}
	rc = 0;
	goto out;
oom:
	*err = pw_strdup("out of memory");
out:
	strbuf_free(&blobs);
	json_decref(root);
	return rc;
}

/* Undoes Content-Encoding. Returns 0 with (*data, *len) pointing at the
 * body or at oc->push_buf, or -1 after rejecting. */
static int push_body(const struct standin_http_request *req, struct outcome *oc,
		     const uint8_t **data, size_t *len)
{
	const char *ce = standin_hdr(req, "Content-Encoding");

	*data = req->body;
	*len = req->body_len;
	if (!ce || !*ce || strcasecmp(ce, "identity") == 0)
		return 0;
	if (strcasecmp(ce, "gzip") != 0) {
		standin_reject(
			oc, 501, "unimplemented", REJ_OTHER,
			pw_asprintf("unknown compression \"%s\": supported encodings are gzip",
				    ce));
		return -1;
	}
	if (pwx_gunzip(req->body, req->body_len, STANDIN_MAX_INFLATED, 0, &oc->push_buf, len) < 0) {
		standin_reject(oc, 400, "invalid_argument", REJ_INVALID,
			       pw_strdup("decompress: corrupt gzip body"));
		return -1;
	}
	*data = oc->push_buf;
	return 0;
}

/* The Connect protocol headers. Returns 0, or -1 after rejecting. */
static int push_headers(const struct standin_http_request *req, struct outcome *oc, bool *json)
{
	const char *ct = standin_hdr(req, "Content-Type"), *ver, *tmo;
	char *mt = standin_media_type(ct);
	int rc = -1;

	*json = mt && strcmp(mt, "application/json") == 0;
	if (!mt || (strcmp(mt, "application/proto") != 0 && !*json)) {
		standin_reject(oc, 415, NULL, REJ_MEDIA,
			       pw_asprintf("unsupported content type \"%s\"", ct ? ct : ""));
		oc->accept_post = true;
		goto out;
	}
	ver = standin_hdr(req, "Connect-Protocol-Version");
	if (ver && strcmp(ver, "1") != 0) {
		standin_reject(
			oc, 400, "invalid_argument", REJ_INVALID,
			pw_asprintf("Connect-Protocol-Version must be \"1\": got \"%s\"", ver));
		goto out;
	}
	tmo = standin_hdr(req, "Connect-Timeout-Ms");
	if (tmo) {
		size_t n = strspn(tmo, "0123456789");

		if (n == 0 || n > 10 || tmo[n]) {
			standin_reject(
				oc, 400, "invalid_argument", REJ_INVALID,
				pw_asprintf("protocol error: invalid Connect-Timeout-Ms \"%s\"",
					    tmo));
			goto out;
		}
	}
	rc = 0;
out:
	free(mt);
	return rc;
}

/* What Pyroscope's distributor refuses in a decoded PushRequest. */
static char *push_validate(const struct pw_dec_push *p)
{
	if (p->nseries == 0)
		return pw_strdup("no profiles received");
	for (size_t i = 0; i < p->nseries; i++) {
		const struct pw_dec_series *ds = &p->series[i];
		char *err = standin_check_labels(ds->labels, ds->nlabels);

		if (err) {
			char *m = pw_asprintf("series %zu: invalid labels: %s", i, err);

			free(err);
			return m;
		}
		if (ds->nsamples == 0)
			return pw_asprintf("series %zu: no samples", i);
		for (size_t j = 0; j < ds->nsamples; j++) {
			err = standin_check_pprof(ds->samples[j].data, ds->samples[j].len);
			if (err) {
				char *m = pw_asprintf(
					"series %zu sample %zu: failed to parse profile: %s", i, j,
					err);

				free(err);
				return m;
			}
		}
	}
	return NULL;
}

void standin_judge_push(struct standin *s, const struct standin_http_request *req,
			struct outcome *oc)
{
	const uint8_t *data;
	size_t len;
	bool json;
	char *err = NULL;

	if (!standin_check_tenant(s, req, oc))
		return;
	if (strcmp(req->method, "POST") != 0) {
		standin_reject(oc, 405, "unimplemented", REJ_METHOD,
			       pw_asprintf("method %s not allowed: use POST", req->method));
		oc->allow = "POST";
		return;
	}
	if (req->body_too_large) {
		standin_reject(oc, 429, "resource_exhausted", REJ_TOO_LARGE,
			       pw_strdup("request body exceeds the read limit"));
		return;
	}
	if (push_headers(req, oc, &json) < 0 || push_body(req, oc, &data, &len) < 0)
		return;
	if (json) {
		if (decode_push_json(data, len, oc, &err) < 0)
			goto bad;
	} else {
		if (pw_proto_decode_push(data, len, &oc->push, &err) < 0) {
			char *m = pw_asprintf("unmarshal message: %s",
					      err ? err : "invalid protobuf");

			free(err);
			err = m;
			goto bad;
		}
		oc->have_push = true;
	}
	err = push_validate(&oc->push);
	if (err)
		goto bad;
	oc->status = 200;
	return;
bad:
	standin_reject(oc, 400, "invalid_argument", REJ_INVALID, err);
}
