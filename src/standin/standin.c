/*
 * standin.c - the strict Pyroscope stand-in: routing, the ingest checks,
 * scripted replies, the request log and counters. It calls down into
 * standin_push.c (the push route), standin_store.c (the store and /stats)
 * and standin_judge.c (rejections and the tenant check), never back up.
 *
 * Every request is first judged strictly (an "outcome"); a scripted reply,
 * when one is queued for the route, then replaces the answer. Only
 * unscripted accepted requests count as accepted, are stored and logged.
 */
#define _GNU_SOURCE
#include "standin/standin.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "proto.h"
#include "standin/formats.h"
#include "standin/standin_judge.h"
#include "standin/standin_push.h"
#include "standin/standin_state.h"
#include "standin/standin_store.h"
#include "strbuf.h"
#include "util/connect_error.h"

#define PUSH_SUFFIX "/push.v1.PusherService/Push"
#define PUSH_SERVICE "/push.v1.PusherService/"

struct script {
	enum standin_route route;
	struct standin_reply r; /* strings owned */
	unsigned left;
	struct script *next;
};

static void outcome_free(struct outcome *oc)
{
	free(oc->message);
	if (oc->have_push)
		pw_dec_push_free(&oc->push);
	free(oc->push_buf);
	free(oc->json_blobs);
	standin_kv_free(oc->labels, oc->nlabels);
	free(oc->plain);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static enum standin_route classify(const char *path)
{
	if (ends_with(path, PUSH_SUFFIX))
		return STANDIN_ROUTE_PUSH;
	if (ends_with(path, "/ingest"))
		return STANDIN_ROUTE_INGEST;
	return STANDIN_ROUTE_OTHER;
}

/* ---- ingest ---- */

/* multipart pprof: profile required, prev_profile refused,
 * sample_type_config a JSON object. */
static char *check_pprof_form(const struct standin_part *parts, size_t n)
{
	const struct standin_part *prof = standin_part_find(parts, n, "profile");
	const struct standin_part *prev = standin_part_find(parts, n, "prev_profile");
	const struct standin_part *stc = standin_part_find(parts, n, "sample_type_config");

	if (prev && prev->len)
		return pw_strdup("unsupported client version");
	if (!prof)
		return pw_strdup("multipart: the profile part is required");
	if (stc) {
		json_error_t je;
		json_t *j = json_loadb((const char *)stc->data, stc->len, 0, &je);
		bool ok = json_is_object(j);

		json_decref(j);
		if (!ok)
			return pw_strdup("sample_type_config: a JSON object is required");
	}
	return standin_check_pprof(prof->data, prof->len);
}

static char *check_jfr_form(const struct standin_part *parts, size_t n)
{
	const struct standin_part *jfr = standin_part_find(parts, n, "jfr");

	if (!jfr)
		return pw_strdup("multipart: the jfr part is required");
	return standin_check_jfr(jfr->data, jfr->len);
}

/* Converts the body the way the format says; NULL when acceptable. */
static char *check_ingest_body(const char *format, const char *ct,
			       const struct standin_http_request *req)
{
	char *mt = standin_media_type(ct), *err = NULL;
	bool multipart = mt && strcmp(mt, "multipart/form-data") == 0;
	struct standin_part *parts = NULL;
	size_t nparts = 0;

	if (multipart &&
	    standin_multipart_parse(ct, req->body, req->body_len, &parts, &nparts, &err) < 0)
		goto out;
	if (!*format && mt && strcmp(mt, "binary/octet-stream+trie") == 0)
		format = "trie";
	else if (!*format && mt && strcmp(mt, "binary/octet-stream+tree") == 0)
		format = "tree";
	if (strcmp(format, "jfr") == 0) {
		err = multipart ? check_jfr_form(parts, nparts)
				: standin_check_jfr(req->body, req->body_len);
	} else if (strcmp(format, "pprof") == 0 ||
		   (multipart && strcmp(format, "trie") != 0 && strcmp(format, "tree") != 0)) {
		err = multipart ? check_pprof_form(parts, nparts)
				: standin_check_pprof(req->body, req->body_len);
	} else if (strcmp(format, "trie") == 0 || strcmp(format, "tree") == 0) {
		if (req->body_len == 0)
			err = pw_asprintf("%s: empty body", format);
	} else if (strcmp(format, "speedscope") == 0) {
		json_error_t je;
		json_t *j = json_loadb((const char *)req->body, req->body_len, 0, &je);

		if (!json_is_object(j))
			err = pw_asprintf("speedscope: invalid JSON: %s",
					  j ? "not an object" : je.text);
		json_decref(j);
	} else {
		err = standin_check_folded(req->body, req->body_len, strcmp(format, "lines") == 0);
	}
out:
	standin_parts_free(parts, nparts);
	free(mt);
	return err;
}

static void judge_ingest(struct standin *s, const struct standin_http_request *req,
			 struct outcome *oc, struct standin_request *rec)
{
	char *err = NULL;

	if (!standin_check_tenant(s, req, oc))
		return;
	if (strcmp(req->method, "POST") != 0) {
		standin_reject(oc, 405, "invalid_argument", REJ_METHOD,
			       pw_asprintf("method %s not allowed: use POST", req->method));
		oc->allow = "POST";
		return;
	}
	if (req->body_too_large) {
		standin_reject(oc, 413, "resource_exhausted", REJ_TOO_LARGE,
			       pw_strdup("request body too large"));
		return;
	}
	if (!rec->name || !*rec->name) {
		standin_reject(oc, 400, "invalid_argument", REJ_INVALID,
			       pw_strdup("name is required"));
		return;
	}
	if (standin_parse_name(rec->name, &oc->labels, &oc->nlabels, &err) < 0) {
		standin_reject(oc, 400, "invalid_argument", REJ_INVALID, err);
		return;
	}
	err = check_ingest_body(rec->format, standin_hdr(req, "Content-Type"), req);
	if (err) {
		standin_reject(oc, 422, "invalid_argument", REJ_UNPROCESSABLE, err);
		return;
	}
	oc->status = 200;
}

static char *stats_text(struct standin *s)
{
	struct standin_stats st;

	standin_stats_get(s, &st);
	return standin_stats_json(&st);
}

static void judge_other(struct standin *s, const struct standin_http_request *req,
			struct outcome *oc)
{
	bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;

	if (strcmp(req->path, "/-/ready") == 0 && get) {
		oc->status = 200;
		oc->plain = pw_strdup("ready\n");
		oc->plain_type = "text/plain; charset=utf-8";
		return;
	}
	if (strcmp(req->path, "/stats") == 0 && get) {
		oc->status = 200;
		oc->plain = stats_text(s);
		oc->plain_type = "application/json";
		return;
	}
	if (strncmp(req->path, PUSH_SERVICE, strlen(PUSH_SERVICE)) == 0)
		standin_reject(oc, 404, "unimplemented", REJ_NOT_FOUND,
			       pw_asprintf("%s is not implemented", req->path));
	else
		standin_reject(oc, 404, "unimplemented", REJ_NOT_FOUND,
			       pw_asprintf("no route for %s %s", req->method, req->path));
}

/* ---- recording ---- */

static char *labels_str(const struct pw_kv *l, size_t n)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_puts(&sb, "");
	for (size_t i = 0; i < n; i++)
		strbuf_printf(&sb, "%s%s=%s", i ? "," : "", l[i].key, l[i].value);
	return sb.failed ? (strbuf_free(&sb), NULL) : strbuf_detach(&sb, NULL);
}

static void copy_headers(const struct standin_header *src, size_t n, struct standin_header **dst,
			 size_t *dn)
{
	*dst = calloc(n + 1, sizeof(**dst));
	*dn = 0;
	if (!*dst)
		return;
	for (size_t i = 0; i < n; i++) {
		(*dst)[i].name = pw_strdup(src[i].name);
		(*dst)[i].value = pw_strdup(src[i].value);
		(*dn)++;
	}
}

static struct standin_request *record_new(const struct standin_http_request *req)
{
	struct standin_request *r = calloc(1, sizeof(*r));
	const char *t = standin_http_header(req->headers, req->nheaders, "X-Scope-OrgID");

	if (!r)
		return NULL;
	r->route = classify(req->path);
	r->method = pw_strdup(req->method);
	r->path = pw_strdup(req->path);
	r->query = pw_strdup(req->query);
	r->tenant = pw_strdup(t && *t ? t : "anonymous");
	copy_headers(req->headers, req->nheaders, &r->headers, &r->nheaders);
	r->body = malloc(req->body_len + 1);
	if (r->body) {
		memcpy(r->body, req->body, req->body_len);
		r->body[req->body_len] = 0;
		r->body_len = req->body_len;
	}
	if (r->route == STANDIN_ROUTE_INGEST) {
		char *fmt = standin_query_get(req->query, "format");

		r->name = standin_query_get(req->query, "name");
		r->format = fmt ? fmt : pw_strdup("");
	}
	return r;
}

static void record_push(struct standin_request *r, const struct pw_dec_push *p)
{
	r->series_labels = calloc(p->nseries + 1, sizeof(char *));
	r->series_samples = calloc(p->nseries + 1, sizeof(size_t));
	if (!r->series_labels || !r->series_samples)
		return;
	for (size_t i = 0; i < p->nseries; i++) {
		r->series_labels[i] = labels_str(p->series[i].labels, p->series[i].nlabels);
		r->series_samples[i] = p->series[i].nsamples;
		r->nsamples += p->series[i].nsamples;
		r->nseries++;
	}
}

void standin_request_free(struct standin_request *r)
{
	if (!r)
		return;
	free(r->method);
	free(r->path);
	free(r->query);
	standin_kv_free(r->headers, r->nheaders);
	free(r->body);
	free(r->error);
	free(r->tenant);
	for (size_t i = 0; i < r->nseries; i++)
		free(r->series_labels[i]);
	free(r->series_labels);
	free(r->series_samples);
	free(r->name);
	free(r->format);
	free(r);
}

static struct standin_request *record_copy(const struct standin_request *r)
{
	struct standin_request *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	*c = *r;
	c->method = pw_strdup(r->method);
	c->path = pw_strdup(r->path);
	c->query = pw_strdup(r->query);
	copy_headers(r->headers, r->nheaders, &c->headers, &c->nheaders);
	c->body = malloc(r->body_len + 1);
	if (c->body && r->body)
		memcpy(c->body, r->body, r->body_len + 1);
	c->error = pw_strdup(r->error);
	c->tenant = pw_strdup(r->tenant);
	c->series_labels = calloc(r->nseries + 1, sizeof(char *));
	c->series_samples = calloc(r->nseries + 1, sizeof(size_t));
	c->nseries = 0;
	for (size_t i = 0; c->series_labels && c->series_samples && i < r->nseries; i++) {
		c->series_labels[i] = pw_strdup(r->series_labels[i]);
		c->series_samples[i] = r->series_samples[i];
		c->nseries++;
	}
	c->name = pw_strdup(r->name);
	c->format = pw_strdup(r->format);
	return c;
}

/* Writes an accepted request to the store directory; on failure turns the
 * outcome into a 507, so nothing is counted as accepted that is not kept. */
static void store_locked(struct standin *s, const struct standin_request *rec, struct outcome *oc)
{
	char *err = NULL;
	int rc = 0;

	if (oc->have_push)
		rc = standin_store_push_locked(s, rec, &oc->push, &err);
	else if (rec->route == STANDIN_ROUTE_INGEST)
		rc = standin_store_ingest_locked(s, rec, oc, &err);
	if (rc == 0)
		return;
	if (s->o.log)
		standin_log_refused_locked(s, err ? err : "out of memory");
	standin_reject(oc, 507, "internal", REJ_STORAGE, err);
}

/* Counts and logs an accepted request. */
static void commit_locked(struct standin *s, const struct standin_request *rec,
			  const struct outcome *oc)
{
	if (oc->have_push) {
		s->stats.push_accepted++;
		for (size_t i = 0; i < oc->push.nseries; i++) {
			s->stats.push_series++;
			s->stats.push_samples += oc->push.series[i].nsamples;
			for (size_t j = 0; j < oc->push.series[i].nsamples; j++)
				s->stats.push_bytes += oc->push.series[i].samples[j].len;
		}
		if (s->o.log)
			standin_log_push_locked(s, rec, &oc->push);
	} else if (rec->route == STANDIN_ROUTE_INGEST) {
		s->stats.ingest_accepted++;
		s->stats.ingest_bytes += rec->body_len;
		if (s->o.log)
			standin_log_ingest_locked(s, rec);
	}
}

static void count_reject_locked(struct standin *s, enum reject cls)
{
	uint64_t *c[] = {
		[REJ_NONE] = NULL,
		[REJ_UNAUTH] = &s->stats.rejected_unauthenticated,
		[REJ_INVALID] = &s->stats.rejected_invalid,
		[REJ_UNPROCESSABLE] = &s->stats.rejected_unprocessable,
		[REJ_TOO_LARGE] = &s->stats.rejected_too_large,
		[REJ_MEDIA] = &s->stats.rejected_media_type,
		[REJ_NOT_FOUND] = &s->stats.rejected_not_found,
		[REJ_METHOD] = &s->stats.rejected_method,
		[REJ_OTHER] = &s->stats.rejected_other,
		[REJ_STORAGE] = &s->stats.rejected_storage,
	};

	if (c[cls])
		(*c[cls])++;
}

/* ---- answering ---- */

static void answer_strict(const struct outcome *oc, enum standin_route route,
			  struct standin_http_response *resp)
{
	resp->status = oc->status;
	if (oc->status == 200) {
		if (oc->plain) {
			standin_http_add_header(resp, "Content-Type", oc->plain_type);
			standin_http_set_body(resp, oc->plain, strlen(oc->plain));
		} else if (route == STANDIN_ROUTE_PUSH) {
			standin_http_add_header(resp, "Content-Type", "application/proto");
		}
		return;
	}
	if (oc->allow)
		standin_http_add_header(resp, "Allow", oc->allow);
	if (oc->accept_post)
		standin_http_add_header(resp, "Accept-Post", "application/json, application/proto");
	if (oc->code) {
		char *b = pwx_connect_error_body(oc->code, oc->message);

		standin_http_add_header(resp, "Content-Type", "application/json");
		if (b)
			standin_http_set_body(resp, b, strlen(b));
		free(b);
	}
}

static void answer_scripted(const struct standin_reply *r, struct standin_http_response *resp)
{
	resp->status = r->status ? r->status : 200;
	if (r->content_type)
		standin_http_add_header(resp, "Content-Type", r->content_type);
	if (r->retry_after)
		standin_http_add_header(resp, "Retry-After", r->retry_after);
	if (r->body)
		standin_http_set_body(resp, r->body, r->body_len);
	resp->delay_ms = r->delay_ms;
	resp->reset = r->reset;
	resp->gzip = r->gzip;
	resp->close = r->close;
}

/* Takes one use of the first reply queued for this route. */
static struct script *script_take_locked(struct standin *s, enum standin_route route)
{
	for (struct script **pp = &s->script; *pp; pp = &(*pp)->next) {
		struct script *sc = *pp;

		if (sc->route != STANDIN_ROUTE_ANY && sc->route != route)
			continue;
		if (--sc->left == 0)
			*pp = sc->next;
		return sc;
	}
	return NULL;
}

static void script_free(struct script *sc)
{
	free((char *)sc->r.content_type);
	free((char *)sc->r.body);
	free((char *)sc->r.retry_after);
	free(sc);
}

static void handle(void *user, const struct standin_http_request *req,
		   struct standin_http_response *resp)
{
	struct standin *s = user;
	struct standin_request *rec = record_new(req);
	struct outcome oc = {0};
	struct script *sc;

	if (!rec) {
		resp->status = 500;
		return;
	}
	if (rec->route == STANDIN_ROUTE_PUSH)
		standin_judge_push(s, req, &oc);
	else if (rec->route == STANDIN_ROUTE_INGEST)
		judge_ingest(s, req, &oc, rec);
	else
		judge_other(s, req, &oc);
	if (oc.have_push)
		record_push(rec, &oc.push);

	pthread_mutex_lock(&s->lock);
	s->stats.requests++;
	sc = rec->route == STANDIN_ROUTE_OTHER ? NULL : script_take_locked(s, rec->route);
	if (sc) {
		answer_scripted(&sc->r, resp);
		rec->scripted = true;
		rec->status = sc->r.reset ? 0 : resp->status;
		s->stats.scripted++;
		if (sc->left == 0)
			script_free(sc);
	} else {
		if (oc.status == 200 && s->store_dir)
			store_locked(s, rec, &oc);
		answer_strict(&oc, rec->route, resp);
		rec->status = oc.status;
		rec->error = pw_strdup(oc.message);
		if (oc.status == 200)
			commit_locked(s, rec, &oc);
		else
			count_reject_locked(s, oc.cls);
	}
	if (s->nreqs == s->capreqs) {
		size_t ncap = s->capreqs ? s->capreqs * 2 : 64;
		struct standin_request **n = realloc(s->reqs, ncap * sizeof(*n));

		if (n) {
			s->reqs = n;
			s->capreqs = ncap;
		}
	}
	if (s->nreqs < s->capreqs) {
		s->reqs[s->nreqs++] = rec;
		rec = NULL;
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	standin_request_free(rec);
	outcome_free(&oc);
}

/* ---- public API ---- */

/* Creates the store directory, or checks that what is there is one: a
 * regular file in its place would fail every request later. */
static int check_store_dir(const char *dir, char **err)
{
	struct stat st;

	if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
		*err = pw_asprintf("store directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) < 0) {
		*err = pw_asprintf("store directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		*err = pw_asprintf("store directory %s: not a directory", dir);
		return -1;
	}
	return 0;
}

struct standin *standin_start(const struct standin_opts *o, char **err)
{
	struct standin *s = calloc(1, sizeof(*s));
	struct standin_httpd_opts ho = {0};
	pthread_condattr_t ca;

	*err = NULL;
	if (!s) {
		*err = pw_strdup("out of memory");
		return NULL;
	}
	s->o = *o;
	s->listen_addr = pw_strdup(o->listen_addr ? o->listen_addr : "127.0.0.1");
	s->store_dir = pw_strdup(o->store_dir);
	s->o.listen_addr = s->listen_addr;
	s->o.store_dir = s->store_dir;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!s->listen_addr || (o->store_dir && !s->store_dir)) {
		*err = pw_strdup("out of memory");
		goto fail;
	}
	if (s->store_dir && check_store_dir(s->store_dir, err) < 0)
		goto fail;
	ho.addr = s->listen_addr;
	ho.port = o->port;
	ho.max_body = o->max_body;
	ho.handler = handle;
	ho.user = s;
	s->httpd = standin_httpd_start(&ho, err);
	if (!s->httpd)
		goto fail;
	snprintf(s->url, sizeof(s->url),
		 strchr(s->listen_addr, ':') ? "http://[%s]:%d" : "http://%s:%d", s->listen_addr,
		 standin_httpd_port(s->httpd));
	return s;
fail:
	standin_stop(s);
	return NULL;
}

void standin_stop(struct standin *s)
{
	if (!s)
		return;
	standin_httpd_stop(s->httpd);
	while (s->script) {
		struct script *sc = s->script;

		s->script = sc->next;
		script_free(sc);
	}
	for (size_t i = 0; i < s->nreqs; i++)
		standin_request_free(s->reqs[i]);
	free(s->reqs);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s->listen_addr);
	free(s->store_dir);
	free(s);
}

int standin_port(const struct standin *s)
{
	return standin_httpd_port(s->httpd);
}

const char *standin_url(const struct standin *s)
{
	return s->url;
}

void standin_script(struct standin *s, enum standin_route route, const struct standin_reply *r)
{
	struct script *sc = calloc(1, sizeof(*sc)), **pp;

	if (!sc)
		return;
	sc->route = route;
	sc->r = *r;
	sc->left = r->times ? r->times : 1;
	sc->r.content_type = pw_strdup(r->content_type);
	sc->r.retry_after = pw_strdup(r->retry_after);
	sc->r.body_len = r->body ? (r->body_len ? r->body_len : strlen(r->body)) : 0;
	sc->r.body = NULL;
	if (r->body) {
		char *b = malloc(sc->r.body_len + 1);

		if (b) {
			memcpy(b, r->body, sc->r.body_len);
			b[sc->r.body_len] = '\0';
		}
		sc->r.body = b;
	}
	pthread_mutex_lock(&s->lock);
	for (pp = &s->script; *pp; pp = &(*pp)->next)
		;
	*pp = sc;
	pthread_mutex_unlock(&s->lock);
}

void standin_script_clear(struct standin *s)
{
	struct script *sc;

	pthread_mutex_lock(&s->lock);
	sc = s->script;
	s->script = NULL;
	pthread_mutex_unlock(&s->lock);
	while (sc) {
		struct script *next = sc->next;

		script_free(sc);
		sc = next;
	}
}

size_t standin_count(struct standin *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->nreqs;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int standin_wait(struct standin *s, size_t n, int timeout_ms)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->lock);
	while (s->nreqs < n && rc == 0)
		rc = pthread_cond_timedwait(&s->cond, &s->lock, &until);
	rc = s->nreqs >= n ? 0 : -1;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

struct standin_request *standin_request_get(struct standin *s, size_t i)
{
	struct standin_request *c = NULL;

	pthread_mutex_lock(&s->lock);
	if (i < s->nreqs)
		c = record_copy(s->reqs[i]);
	pthread_mutex_unlock(&s->lock);
	return c;
}

const char *standin_request_header(const struct standin_request *r, const char *name)
{
	return standin_http_header(r->headers, r->nheaders, name);
}

void standin_stats_get(struct standin *s, struct standin_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->stats;
	pthread_mutex_unlock(&s->lock);
}
