/*
 * standin_store.c - what the stand-in keeps of accepted requests: the
 * /stats document, the files written to the store directory and the log
 * lines.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "standin/standin_internal.h"
#include "strbuf.h"

char *standin_stats_json(const struct standin_stats *st)
{
	json_t *o, *rej;
	char *out;

	rej = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "unauthenticated",
			(json_int_t)st->rejected_unauthenticated, "invalid_argument",
			(json_int_t)st->rejected_invalid, "unprocessable",
			(json_int_t)st->rejected_unprocessable, "too_large",
			(json_int_t)st->rejected_too_large, "unsupported_media_type",
			(json_int_t)st->rejected_media_type, "not_found",
			(json_int_t)st->rejected_not_found, "method_not_allowed",
			(json_int_t)st->rejected_method, "other", (json_int_t)st->rejected_other);
	o = json_pack("{s:I,s:{s:I,s:I,s:I,s:I},s:{s:I,s:I},s:I,s:o}", "requests",
		      (json_int_t)st->requests, "push", "accepted", (json_int_t)st->push_accepted,
		      "series", (json_int_t)st->push_series, "samples",
		      (json_int_t)st->push_samples, "bytes", (json_int_t)st->push_bytes, "ingest",
		      "accepted", (json_int_t)st->ingest_accepted, "bytes",
		      (json_int_t)st->ingest_bytes, "scripted", (json_int_t)st->scripted,
		      "rejected", rej);
	out = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return out;
}

/* ---- the store and the log (under s->lock) ---- */

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		return;
	if (len)
		fwrite(data, 1, len, f);
	fclose(f);
}

static json_t *labels_json_kv(const struct pw_kv *l, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, l[i].key, json_string(l[i].value));
	return o;
}

void standin_store_push_locked(struct standin *s, const struct standin_request *rec,
			       const struct pw_dec_push *p)
{
	uint64_t seq = ++s->seq;

	for (size_t i = 0; i < p->nseries; i++) {
		const struct pw_dec_series *ds = &p->series[i];
		json_t *side =
			json_pack("{s:s,s:s,s:o,s:[]}", "kind", "push", "tenant", rec->tenant,
				  "labels", labels_json_kv(ds->labels, ds->nlabels), "samples");
		json_t *arr = json_object_get(side, "samples");
		char *path;

		for (size_t j = 0; j < ds->nsamples; j++) {
			char *file = pw_asprintf("push-%06llu-%zu-%zu.pprof",
						 (unsigned long long)seq, i, j);

			path = pw_asprintf("%s/%s", s->store_dir, file ? file : "");
			if (file && path)
				write_file(path, ds->samples[j].data, ds->samples[j].len);
			json_array_append_new(arr, json_pack("{s:s?,s:s,s:I}", "file", file, "id",
							     ds->samples[j].id, "bytes",
							     (json_int_t)ds->samples[j].len));
			free(path);
			free(file);
		}
		path = pw_asprintf("%s/push-%06llu-%zu.json", s->store_dir, (unsigned long long)seq,
				   i);
		if (path && side)
			json_dump_file(side, path, JSON_INDENT(2) | JSON_SORT_KEYS);
		free(path);
		json_decref(side);
	}
}

void standin_store_ingest_locked(struct standin *s, const struct standin_request *rec,
				 const struct outcome *oc)
{
	uint64_t seq = ++s->seq;
	const char *ct = standin_http_header(rec->headers, rec->nheaders, "Content-Type");
	char *file = pw_asprintf("ingest-%06llu.body", (unsigned long long)seq);
	char *path = pw_asprintf("%s/%s", s->store_dir, file ? file : "");
	json_t *labels = json_object(), *side;

	for (size_t i = 0; i < oc->nlabels; i++)
		json_object_set_new(labels, oc->labels[i].name, json_string(oc->labels[i].value));
	side = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s?,s:o,s:s?,s:I}", "kind", "ingest", "tenant",
			 rec->tenant, "name", rec->name, "format", rec->format, "query", rec->query,
			 "content_type", ct, "labels", labels, "file", file, "bytes",
			 (json_int_t)rec->body_len);
	if (file && path)
		write_file(path, rec->body, rec->body_len);
	free(path);
	path = pw_asprintf("%s/ingest-%06llu.json", s->store_dir, (unsigned long long)seq);
	if (path && side)
		json_dump_file(side, path, JSON_INDENT(2) | JSON_SORT_KEYS);
	free(path);
	free(file);
	json_decref(side);
}

void standin_log_push_locked(struct standin *s, const struct standin_request *rec,
			     const struct pw_dec_push *p)
{
	for (size_t i = 0; i < p->nseries; i++) {
		size_t bytes = 0;

		for (size_t j = 0; j < p->series[i].nsamples; j++)
			bytes += p->series[i].samples[j].len;
		fprintf(s->o.log,
			"push tenant=%s labels={%s} samples=%zu bytes=%zu request_bytes=%zu\n",
			rec->tenant,
			rec->series_labels && rec->series_labels[i] ? rec->series_labels[i] : "",
			p->series[i].nsamples, bytes, rec->body_len);
	}
	fflush(s->o.log);
}
