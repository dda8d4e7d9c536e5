/*
 * httpd.c - the stand-in's HTTP server (httpd.h) on the network
 * listener (src/listen/), the same server `mockhost run` uses.
 *
 * The stand-in's handlers answer at once; what a scripted reply adds on top
 * is done here: a delay is a timer (one thread for all of them), after
 * which the reply, or a TCP reset, is sent; a gzip'd body is compressed
 * before it is handed over. Stopping fires every pending timer at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/gzip.h"
#include "listen/listen.h"
#include "standin/httpd.h"
#include "strbuf.h"

#define DEFAULT_MAX_BODY ((size_t)64 << 20)
#define DEFAULT_IDLE_MS 120000
#define MAX_HEAD ((size_t)64 << 10)
#define MAX_HEADERS 200

/* A reply waiting for its delay. */
struct delayed {
	struct listen_request *req;
	struct standin_http_response resp;
	int64_t due_ms;
	struct delayed *next;
};

struct standin_httpd {
	struct standin_httpd_opts o;
	struct listen *l;
	pthread_t timer;
	bool have_timer;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping;
	struct delayed *delayed; /* sorted by due_ms */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends a handler's response (or a reset) and frees it. */
static void send_now(struct listen_request *req, struct standin_http_response *resp)
{
	uint8_t *body = resp->body;
	size_t len = resp->body_len;

	if (resp->reset) {
		listen_reset(req);
		standin_http_response_free(resp);
		return;
	}
	for (size_t i = 0; i < resp->nheaders; i++)
		listen_add_header(req, resp->headers[i].name, resp->headers[i].value);
	if (resp->gzip) {
		uint8_t *z = NULL;
		size_t zlen = 0;

		if (pwx_gzip(body, len, &z, &zlen) == 0) {
			free(body);
			body = z;
			len = zlen;
			listen_add_header(req, "Content-Encoding", "gzip");
		}
	}
	resp->body = NULL;
	listen_reply(req, resp->status ? resp->status : 200, (char *)body, len, resp->close);
	standin_http_response_free(resp);
}

static void *timer_main(void *arg)
{
	struct standin_httpd *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		struct delayed *d = h->delayed;

		if (!d) {
			if (h->stopping)
				break;
			pthread_cond_wait(&h->cv, &h->mu);
			continue;
		}
		if (!h->stopping && d->due_ms > now_ms()) {
			struct timespec ts;
			int64_t ms = d->due_ms;

			ts.tv_sec = (time_t)(ms / 1000);
			ts.tv_nsec = (long)(ms % 1000) * 1000000L;
			pthread_cond_timedwait(&h->cv, &h->mu, &ts);
			continue;
		}
		h->delayed = d->next;
		pthread_mutex_unlock(&h->mu);
		send_now(d->req, &d->resp);
		free(d);
		pthread_mutex_lock(&h->mu);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* Queues a delayed reply; sends it at once when that is not possible. */
static void send_later(struct standin_httpd *h, struct listen_request *req,
		       struct standin_http_response *resp)
{
	struct delayed *d = calloc(1, sizeof(*d)), **pp;

	if (!d || !h->have_timer) {
		free(d);
		send_now(req, resp);
		return;
	}
	d->req = req;
	d->resp = *resp;
	memset(resp, 0, sizeof(*resp));
	d->due_ms = now_ms() + d->resp.delay_ms;
	pthread_mutex_lock(&h->mu);
	if (h->stopping) {
		/* The timer is gone or going: no delay any more. */
		pthread_mutex_unlock(&h->mu);
		send_now(req, &d->resp);
		free(d);
		return;
	}
	for (pp = &h->delayed; *pp && (*pp)->due_ms <= d->due_ms; pp = &(*pp)->next)
		;
	d->next = *pp;
	*pp = d;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

struct header_list {
	struct standin_header *v;
	size_t n;
};

static void collect(void *ctx, const char *name, const char *value)
{
	struct header_list *hl = ctx;

	if (hl->n < MAX_HEADERS)
		hl->v[hl->n++] = (struct standin_header){(char *)name, (char *)value};
}

static void on_request(void *user, struct listen_request *lr, int refused, const char *why)
{
	struct standin_httpd *h = user;
	struct standin_http_request req = {0};
	struct standin_http_response resp = {0};
	struct header_list hl = {calloc(MAX_HEADERS, sizeof(struct standin_header)), 0};
	const char *q = strchr(listen_target(lr), '?');

	/* Other refusals are the listener's own: a plain answer. A body over
	 * the cap is the handler's to answer, as it always was. */
	if ((refused && refused != 413) || !hl.v) {
		free(hl.v);
		listen_reply_text(lr, refused ? refused : 503, why ? why : "out of memory", true);
		return;
	}
	listen_header_each(lr, collect, &hl);
	req.method = listen_method(lr);
	req.path = listen_path(lr);
	req.query = q ? q + 1 : "";
	req.minor_version = listen_http_minor(lr);
	req.headers = hl.v;
	req.nheaders = hl.n;
	req.body = listen_body(lr, &req.body_len);
	req.body_too_large = refused == 413;
	if (req.body_too_large) {
		req.body = (const uint8_t *)"";
		req.body_len = 0;
	}
	h->o.handler(h->o.user, &req, &resp);
	free(hl.v);
	if (req.body_too_large)
		resp.close = true;
	if (resp.delay_ms > 0)
		send_later(h, lr, &resp);
	else
		send_now(lr, &resp);
}

struct standin_httpd *standin_httpd_start(const struct standin_httpd_opts *o, char **err)
{
	struct standin_httpd *h = calloc(1, sizeof(*h));
	struct listen_opts lo = {0};
	pthread_condattr_t ca;

	*err = NULL;
	if (!h) {
		*err = pw_strdup("out of memory");
		return NULL;
	}
	h->o = *o;
	pthread_mutex_init(&h->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cv, &ca);
	pthread_condattr_destroy(&ca);
	lo.addr = o->addr;
	lo.port = o->port;
	lo.max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
	lo.max_header = MAX_HEAD;
	lo.header_timeout_ms = 10000;
	lo.body_timeout_ms = 60000;
	lo.idle_timeout_ms = o->idle_timeout_ms > 0 ? o->idle_timeout_ms : DEFAULT_IDLE_MS;
	lo.max_conns = o->max_conns ? o->max_conns : 100000;
	lo.handler = on_request;
	lo.user = h;
	h->have_timer = pthread_create(&h->timer, NULL, timer_main, h) == 0;
	h->l = listen_start(&lo, err);
	if (!h->l) {
		standin_httpd_stop(h);
		return NULL;
	}
	return h;
}

int standin_httpd_port(const struct standin_httpd *h)
{
	return listen_port(h->l);
}

void standin_httpd_stop(struct standin_httpd *h)
{
	if (!h)
		return;
	/* Delays are cut short: every pending reply goes out now. */
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	if (h->have_timer)
		pthread_join(h->timer, NULL);
	listen_stop(h->l, 1000);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

size_t standin_httpd_connections(struct standin_httpd *h)
{
	return listen_connections(h->l);
}

unsigned long standin_httpd_refused(struct standin_httpd *h)
{
	return (unsigned long)listen_rejected(h->l, LISTEN_REJ_CONN_LIMIT);
}
