/*
 * standin_store.c - what the stand-in keeps of accepted requests: the
 * /stats document, the files written to the store directory and the log
 * lines.
 */
#define _GNU_SOURCE
#include "standin/standin_store.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "standin/standin_state.h"
#include "strbuf.h"

char *standin_stats_json(const struct standin_stats *st)
{
	json_t *o, *rej;
	char *out;

	rej = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "unauthenticated",
			(json_int_t)st->rejected_unauthenticated, "invalid_argument",
			(json_int_t)st->rejected_invalid, "unprocessable",
			(json_int_t)st->rejected_unprocessable, "too_large",
			(json_int_t)st->rejected_too_large, "unsupported_media_type",
			(json_int_t)st->rejected_media_type, "not_found",
			(json_int_t)st->rejected_not_found, "method_not_allowed",
			(json_int_t)st->rejected_method, "other", (json_int_t)st->rejected_other,
			"storage", (json_int_t)st->rejected_storage);
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

/* The files one request has written so far: a request is stored whole or
 * not at all, so a failure removes them again. */
struct written {
	char **paths;
	size_t n;
};

static void written_undo(struct written *w)
{
	for (size_t i = 0; i < w->n; i++) {
		unlink(w->paths[i]);
		free(w->paths[i]);
	}
	free(w->paths);
	w->paths = NULL;
	w->n = 0;
}

static void written_forget(struct written *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->paths[i]);
	free(w->paths);
}

/*
 * Writes one file and checks every step: on a full disk the write or the
 * close fails, and the partial file is removed. Takes path; records it in
 * w before writing so an undo also removes a half-written file. Returns 0,
 * or -1 with a malloc'd *err naming the file.
 */
static int write_file(struct written *w, char *path, const void *data, size_t len, char **err)
{
	char **np;
	int fd = -1, rc = -1, e = 0;

	if (!path) {
		*err = pw_strdup("out of memory");
		return -1;
	}
	np = realloc(w->paths, (w->n + 1) * sizeof(*np));
	if (!np) {
		free(path);
		*err = pw_strdup("out of memory");
		return -1;
	}
	w->paths = np;
	w->paths[w->n++] = path;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0) {
		e = errno;
		goto out;
	}
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? errno : ENOSPC;
			goto out;
		}
		data = (const uint8_t *)data + n;
		len -= (size_t)n;
	}
	rc = 0;
out:
	/* close() reports the errors of a delayed write (NFS, quotas). */
	if (fd >= 0 && close(fd) < 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	if (rc < 0)
		*err = pw_asprintf("cannot store %s: %s", path, strerror(e));
	return rc;
}

static int write_json(struct written *w, char *path, const json_t *side, char **err)
{
	char *text = side ? json_dumps(side, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	int rc;

	if (!text) {
		free(path);
		*err = pw_strdup("out of memory");
		return -1;
	}
	rc = write_file(w, path, text, strlen(text), err);
	free(text);
	return rc;
}

static json_t *labels_json_kv(const struct pw_kv *l, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, l[i].key, json_string(l[i].value));
	return o;
}

/* One series: its samples, then the side file that describes them. */
static int store_series(struct standin *s, const struct standin_request *rec,
			const struct pw_dec_series *ds, uint64_t seq, size_t i, struct written *w,
			char **err)
{
	json_t *side = json_pack("{s:s,s:s,s:o,s:[]}", "kind", "push", "tenant", rec->tenant,
				 "labels", labels_json_kv(ds->labels, ds->nlabels), "samples");
	json_t *arr = json_object_get(side, "samples");
	int rc = -1;

	if (!arr) {
		*err = pw_strdup("out of memory");
		goto out;
	}
	for (size_t j = 0; j < ds->nsamples; j++) {
		char *file =
			pw_asprintf("push-%06llu-%zu-%zu.pprof", (unsigned long long)seq, i, j);

		if (!file) {
			*err = pw_strdup("out of memory");
			goto out;
		}
		if (write_file(w, pw_asprintf("%s/%s", s->store_dir, file), ds->samples[j].data,
			       ds->samples[j].len, err) < 0) {
			free(file);
			goto out;
		}
		json_array_append_new(arr, json_pack("{s:s,s:s,s:I}", "file", file, "id",
						     ds->samples[j].id, "bytes",
						     (json_int_t)ds->samples[j].len));
		free(file);
	}
	rc = write_json(
		w, pw_asprintf("%s/push-%06llu-%zu.json", s->store_dir, (unsigned long long)seq, i),
		side, err);
out:
	json_decref(side);
	return rc;
}

int standin_store_push_locked(struct standin *s, const struct standin_request *rec,
			      const struct pw_dec_push *p, char **err)
{
	uint64_t seq = ++s->seq;
	struct written w = {0};

	*err = NULL;
	for (size_t i = 0; i < p->nseries; i++) {
		if (store_series(s, rec, &p->series[i], seq, i, &w, err) < 0) {
			written_undo(&w);
			return -1;
		}
	}
	written_forget(&w);
	return 0;
}

int standin_store_ingest_locked(struct standin *s, const struct standin_request *rec,
				const struct outcome *oc, char **err)
{
	uint64_t seq = ++s->seq;
	const char *ct = standin_http_header(rec->headers, rec->nheaders, "Content-Type");
	char *file = pw_asprintf("ingest-%06llu.body", (unsigned long long)seq);
	json_t *labels = json_object(), *side;
	struct written w = {0};
	int rc = -1;

	*err = NULL;
	for (size_t i = 0; i < oc->nlabels; i++)
		json_object_set_new(labels, oc->labels[i].name, json_string(oc->labels[i].value));
	side = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s?,s:o,s:s?,s:I}", "kind", "ingest", "tenant",
			 rec->tenant, "name", rec->name, "format", rec->format, "query", rec->query,
			 "content_type", ct, "labels", labels, "file", file, "bytes",
			 (json_int_t)rec->body_len);
	if (!file) {
		*err = pw_strdup("out of memory");
		goto out;
	}
	if (write_file(&w, pw_asprintf("%s/%s", s->store_dir, file), rec->body, rec->body_len,
		       err) < 0 ||
	    write_json(&w,
		       pw_asprintf("%s/ingest-%06llu.json", s->store_dir, (unsigned long long)seq),
		       side, err) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		written_undo(&w);
	else
		written_forget(&w);
	free(file);
	json_decref(side);
	return rc;
}

/*
 * Prints a value from the request into the log with the bytes that could
 * forge or break a line escaped: a CR or LF would start a line of the
 * client's choosing.
 */
static void log_escaped(FILE *f, const char *v)
{
	for (const unsigned char *p = (const unsigned char *)(v ? v : ""); *p; p++) {
		if (*p == '\\' || *p == '"')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\r')
			fputs("\\r", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

void standin_log_push_locked(struct standin *s, const struct standin_request *rec,
			     const struct pw_dec_push *p)
{
	for (size_t i = 0; i < p->nseries; i++) {
		const struct pw_dec_series *ds = &p->series[i];
		size_t bytes = 0;

		for (size_t j = 0; j < ds->nsamples; j++)
			bytes += ds->samples[j].len;
		fputs("push tenant=", s->o.log);
		log_escaped(s->o.log, rec->tenant);
		fputs(" labels={", s->o.log);
		for (size_t j = 0; j < ds->nlabels; j++) {
			if (j)
				fputc(',', s->o.log);
			log_escaped(s->o.log, ds->labels[j].key);
			fputc('=', s->o.log);
			log_escaped(s->o.log, ds->labels[j].value);
		}
		fprintf(s->o.log, "} samples=%zu bytes=%zu request_bytes=%zu\n", ds->nsamples,
			bytes, rec->body_len);
	}
	fflush(s->o.log);
}

void standin_log_ingest_locked(struct standin *s, const struct standin_request *rec)
{
	fputs("ingest tenant=", s->o.log);
	log_escaped(s->o.log, rec->tenant);
	fputs(" name=", s->o.log);
	log_escaped(s->o.log, rec->name);
	fputs(" format=", s->o.log);
	log_escaped(s->o.log, *rec->format ? rec->format : "folded");
	fprintf(s->o.log, " bytes=%zu\n", rec->body_len);
	fflush(s->o.log);
}

void standin_log_refused_locked(struct standin *s, const char *why)
{
	fputs("refused: ", s->o.log);
	log_escaped(s->o.log, why);
	fputc('\n', s->o.log);
	fflush(s->o.log);
}
