/*
 * listen.c - the network listener on libmicrohttpd; see listen.h.
 *
 * libmicrohttpd runs in its epoll mode, driven by one thread of ours
 * (MHD_run_wait), so that the deadlines libmicrohttpd lacks are enforced on
 * the same thread that owns the connections: its own connection timeout is
 * an idle timeout that every byte restarts, which a client dripping its head
 * one byte at a time never reaches. Each connection is tracked from accept
 * (MHD_OPTION_NOTIFY_CONNECTION) with a phase and an absolute deadline; an
 * overdue one is shut down, and libmicrohttpd closes it when it sees the
 * end of the stream.
 *
 * A request that waits for its handler's reply is suspended
 * (MHD_suspend_connection): it costs its memory and a socket, no thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "listen.h"
#include "strbuf.h"

/* How often overdue connections are looked for, at most. */
#define SCAN_MS 200
/* libmicrohttpd's per-connection memory: the head must fit in it, beside
 * the read buffer it keeps for the body. */
#define POOL_SLACK (16 * 1024)
#define MAX_TLS_FILE (1 << 20)

enum phase {
	PH_HEAD, /* waiting for a request head (from accept, or after an answer) */
	PH_BODY, /* head in, reading the body */
	PH_BUSY, /* with the handler, or answering: no deadline of ours */
};

struct conn {
	struct conn *prev, *next; /* accept order */
	struct MHD_Connection *mc;
	int fd;
	enum phase phase;
	int64_t deadline_ms; /* for PH_HEAD and PH_BODY */
	bool cut; /* already shut down */
	bool headroom; /* accepted past max_conns: ops requests only */
	int tls_ok; /* client certificate: 0 unknown, 1 good, -1 refused */
};

struct hdr {
	char *name;
	char *value;
};

struct listen_request {
	struct listen *l;
	struct conn *conn;
	struct MHD_Connection *mc;
	char *target; /* as sent */
	char *path; /* target up to '?' */
	const char *method;
	const char *version;
	int stage; /* 0 head pending, 1 reading body, 2 with the handler, 3 queued */
	bool refused_mid_body;
	uint8_t *body;
	size_t len, cap;
	int64_t reserved; /* bytes of the budget held for the body */
	void *app;
	/* The reply, guarded by l->mu once the handler has run. */
	bool replied, suspended;
	int status;
	char *rbody;
	size_t rlen;
	bool close;
	struct hdr *hdrs;
	size_t nhdrs;
};

struct listen {
	struct listen_opts o;
	char *addr;
	struct MHD_Daemon *d;
	pthread_t thread;
	int port;
	char *tls_cert, *tls_key, *tls_ca;
	atomic_bool stopping;
	atomic_bool quiesce; /* stop accepting: asked by any thread, done by the loop */
	atomic_int_least64_t budget;
	atomic_int_least64_t used;
	atomic_size_t nconns;
	atomic_uint_least64_t rejected[LISTEN_REJ_COUNT];
	atomic_long busy; /* requests past their head, not yet answered */
	pthread_mutex_t mu; /* replies */
	/* Listener thread only. */
	struct conn *head, *tail;
	int64_t last_scan_ms;
};

static const char *const reason_names[LISTEN_REJ_COUNT] = {
	"header_timeout", "body_timeout", "header_too_large",
	"body_too_large", "budget",	  "bad_request",
	"conn_limit",	  "tls",	  "head_invalid",
};

const char *listen_reason_name(enum listen_reason r)
{
	return r < LISTEN_REJ_COUNT ? reason_names[r] : "unknown";
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void count(struct listen *l, enum listen_reason r)
{
	atomic_fetch_add(&l->rejected[r], 1);
}

/* ---- the byte budget ---- */

static bool budget_take(struct listen *l, int64_t n)
{
	int64_t cap = atomic_load(&l->budget);
	int64_t now = atomic_fetch_add(&l->used, n) + n;

	if (cap > 0 && now > cap) {
		atomic_fetch_sub(&l->used, n);
		return false;
	}
	return true;
}

static void budget_give(struct listen *l, int64_t n)
{
	if (n)
		atomic_fetch_sub(&l->used, n);
}

/* ---- connections ---- */

/* Shuts an overdue or evicted connection down: libmicrohttpd sees the end
 * of the stream on its next turn and closes it. */
static void conn_cut(struct listen *l, struct conn *c, enum listen_reason why)
{
	if (c->cut)
		return;
	c->cut = true;
	count(l, why);
	shutdown(c->fd, SHUT_RDWR);
}

static void scan_deadlines(struct listen *l)
{
	int64_t now = now_ms();

	if (now - l->last_scan_ms < SCAN_MS)
		return;
	l->last_scan_ms = now;
	for (struct conn *c = l->head; c; c = c->next) {
		if (c->cut || c->phase == PH_BUSY || now < c->deadline_ms)
			continue;
		conn_cut(l, c,
			 c->phase == PH_HEAD ? LISTEN_REJ_HEADER_TIMEOUT : LISTEN_REJ_BODY_TIMEOUT);
	}
}

/* Past max_conns, the oldest connection that has no request under way
 * makes room. True when one was found. */
static bool evict_idle(struct listen *l, const struct conn *except)
{
	for (struct conn *c = l->head; c; c = c->next) {
		if (c != except && !c->cut && c->phase == PH_HEAD) {
			conn_cut(l, c, LISTEN_REJ_CONN_LIMIT);
			return true;
		}
	}
	return false;
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct listen *l = cls;

	if (atomic_load(&l->nconns) >= l->o.max_conns + l->o.ops_headroom) {
		count(l, LISTEN_REJ_CONN_LIMIT);
		return MHD_NO;
	}
	return MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	struct listen *l = cls;
	struct conn *c = *socket_ctx;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);

		c = calloc(1, sizeof(*c));
		if (!c || !ci) {
			/* Without its record the connection has no deadline:
			 * refuse it at once. */
			free(c);
			if (ci)
				shutdown(ci->connect_fd, SHUT_RDWR);
			return;
		}
		c->mc = mc;
		c->fd = ci->connect_fd;
		c->phase = PH_HEAD;
		c->deadline_ms = now_ms() + l->o.header_timeout_ms;
		c->prev = l->tail;
		if (l->tail)
			l->tail->next = c;
		else
			l->head = c;
		l->tail = c;
		*socket_ctx = c;
		if (atomic_fetch_add(&l->nconns, 1) + 1 > l->o.max_conns && !evict_idle(l, c))
			c->headroom = true;
		return;
	}
	if (!c)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	atomic_fetch_sub(&l->nconns, 1);
	free(c);
	*socket_ctx = NULL;
}

static struct conn *conn_of(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* ---- requests ---- */

/* Called when the request line has been read: the request's record, with
 * the target as sent (libmicrohttpd hands the handler a decoded path). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
	struct listen_request *req = calloc(1, sizeof(*req));
	const char *q;

	if (!req)
		return NULL;
	req->l = cls;
	req->mc = mc;
	req->conn = conn_of(mc);
	req->target = strdup(uri ? uri : "");
	q = req->target ? strchr(req->target, '?') : NULL;
	req->path = req->target ? strndup(req->target,
					  q ? (size_t)(q - req->target) : strlen(req->target))
				: NULL;
	return req;
}

static void reply_free(struct listen_request *req)
{
	for (size_t i = 0; i < req->nhdrs; i++) {
		free(req->hdrs[i].name);
		free(req->hdrs[i].value);
	}
	free(req->hdrs);
	req->hdrs = NULL;
	req->nhdrs = 0;
	free(req->rbody);
	req->rbody = NULL;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **req_ctx,
			 enum MHD_RequestTerminationCode toe)
{
	struct listen *l = cls;
	struct listen_request *req = *req_ctx;
	struct conn *c = conn_of(mc);

	if (c && !c->cut) {
		/* A kept-alive connection has the idle timeout, in total, to
		 * bring its next head. */
		c->phase = PH_HEAD;
		c->deadline_ms = now_ms() + l->o.idle_timeout_ms;
	}
	if (!req)
		return;
	/* A head libmicrohttpd refused itself (431 past its memory limit, 400
	 * for a Content-Length it cannot read) never reached on_request. */
	if (req->stage == 0 && toe == MHD_REQUEST_TERMINATED_WITH_ERROR && !(c && c->cut))
		count(l, LISTEN_REJ_HEAD_INVALID);
	if (req->stage >= 1)
		atomic_fetch_sub(&l->busy, 1);
	if (req->app && l->o.done)
		l->o.done(l->o.user, req->app);
	budget_give(l, req->reserved);
	reply_free(req);
	free(req->body);
	free(req->target);
	free(req->path);
	free(req);
	*req_ctx = NULL;
}

/* Queues the reply libmicrohttpd will send. */
static enum MHD_Result queue_reply(struct listen_request *req)
{
	struct MHD_Response *resp;
	enum MHD_Result rc;

	resp = MHD_create_response_from_buffer_with_free_callback(req->rlen, req->rbody, free);
	if (!resp)
		return MHD_NO;
	req->rbody = NULL;
	for (size_t i = 0; i < req->nhdrs; i++)
		MHD_add_response_header(resp, req->hdrs[i].name, req->hdrs[i].value);
	if (req->close)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	req->stage = 3;
	rc = MHD_queue_response(req->mc, (unsigned int)req->status, resp);
	MHD_destroy_response(resp);
	return rc;
}

/* What the head checks collect from the headers. */
struct head_scan {
	const char *next; /* where the next field name must start */
	size_t bytes;
	int n_cl, n_te;
	bool bad;
	const char *cl, *te;
};

static bool token_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", ch);
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
				   size_t key_size, const char *value, size_t value_size)
{
	struct head_scan *s = cls;

	s->bytes += key_size + value_size + 4;
	for (size_t i = 0; i < key_size; i++)
		if (!token_char((unsigned char)key[i]))
			s->bad = true;
	/* A NUL, CR or LF (or another control byte) in a value is a request
	 * a proxy in front may split differently: refuse. */
	for (size_t i = 0; value && i < value_size; i++) {
		unsigned char ch = (unsigned char)value[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			s->bad = true;
	}
	if (key_size == 0 || (value && strlen(value) != value_size))
		s->bad = true;
	/* libmicrohttpd 0.9.75 parses the head in place: each line is cut
	 * where it ends, its CR and LF both overwritten with NULs, so the next
	 * field name starts two bytes after this value. It also ends a line at
	 * a bare LF, and a NUL inside a value cuts the value short: either
	 * breaks that adjacency, where a proxy in front could have read the
	 * line differently. tests/test_listen.c holds this to the installed
	 * version. */
	if (key != s->next)
		s->bad = true;
	s->next = value ? value + value_size + 2 : NULL;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		s->n_cl++;
		s->cl = value;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		s->n_te++;
		s->te = value;
	}
	return MHD_YES;
}

static bool all_digits(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static bool is_ops_path(const struct listen *l, const char *path)
{
	for (const char *const *p = l->o.ops_paths; p && *p; p++)
		if (strcmp(*p, path) == 0)
			return true;
	return false;
}

/* The client certificate, checked once per connection. */
static bool tls_client_ok(struct listen *l, struct listen_request *req)
{
	const union MHD_ConnectionInfo *ci;
	unsigned int status = 0, n = 0;

	if (!l->tls_ca || !req->conn)
		return true;
	if (req->conn->tls_ok)
		return req->conn->tls_ok > 0;
	ci = MHD_get_connection_info(req->mc, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	req->conn->tls_ok = -1;
	if (ci && ci->tls_session &&
	    gnutls_certificate_get_peers((gnutls_session_t)ci->tls_session, &n) && n > 0 &&
	    gnutls_certificate_verify_peers2((gnutls_session_t)ci->tls_session, &status) == 0 &&
	    status == 0)
		req->conn->tls_ok = 1;
	return req->conn->tls_ok > 0;
}

/*
 * Checks the head before any of the body is read. Returns 0 to go on, or
 * the status to refuse with (*why, *reason set); -1 to close without an
 * answer.
 */
static int check_head(struct listen *l, struct listen_request *req, int64_t *clen, const char **why,
		      enum listen_reason *reason)
{
	struct head_scan s = {0};
	unsigned long long n;

	*clen = -1;
	*reason = LISTEN_REJ_BAD_REQUEST;
	if (!tls_client_ok(l, req)) {
		*reason = LISTEN_REJ_TLS;
		return -1;
	}
	if (!req->target || !req->path) {
		*why = "out of memory";
		return 503;
	}
	for (const char *m = req->method; *m; m++)
		if (*m < 'A' || *m > 'Z')
			s.bad = true; /* methods are case-sensitive tokens */
	/* A request line that ends in a bare LF, or has a NUL after its
	 * version, is caught by the first field's position. */
	s.next = req->version + strlen(req->version) + 2;
	MHD_get_connection_values_n(req->mc, MHD_HEADER_KIND, scan_header, &s);
	/* The last line, and the empty line after it, both ended in CRLF. */
	if (!s.next || s.next[-2] || s.next[-1] || s.next[0] || s.next[1])
		s.bad = true;
	s.bytes += strlen(req->target) + strlen(req->method) + 12;
	if (s.bytes > l->o.max_header) {
		*reason = LISTEN_REJ_HEADER_TOO_LARGE;
		*why = "request header fields too large";
		return 431;
	}
	if (s.bad) {
		*why = "malformed header field";
		return 400;
	}
	if (s.n_te && s.n_cl) {
		*why = "Content-Length together with Transfer-Encoding";
		return 400;
	}
	if (s.n_te > 1 || (s.n_te && strcasecmp(s.te, "chunked") != 0)) {
		*why = "unsupported Transfer-Encoding";
		return 400;
	}
	if (s.n_cl > 1 || (s.n_cl && !all_digits(s.cl))) {
		*why = "invalid Content-Length";
		return 400;
	}
	if (req->conn && req->conn->headroom && !is_ops_path(l, req->path)) {
		*reason = LISTEN_REJ_CONN_LIMIT;
		*why = "too many connections";
		return 503;
	}
	if (s.n_cl) {
		errno = 0;
		n = strtoull(s.cl, NULL, 10);
		if (errno || n > l->o.max_body) {
			*reason = LISTEN_REJ_BODY_TOO_LARGE;
			*why = "request body too large";
			return 413;
		}
		*clen = (int64_t)n;
	}
	return 0;
}

/* Refuses with status through the handler, which formats the answer. */
static enum MHD_Result refuse(struct listen *l, struct listen_request *req, int status,
			      const char *why)
{
	l->o.handler(l->o.user, req, status, why);
	if (!req->replied)
		listen_reply_text(req, status, why, true);
	/* The body, if any, is not read: the connection cannot be reused. */
	req->close = true;
	return queue_reply(req);
}

static enum MHD_Result on_head(struct listen *l, struct listen_request *req)
{
	enum listen_reason reason;
	const char *why = NULL;
	int64_t clen;
	int st;

	req->stage = 1;
	atomic_fetch_add(&l->busy, 1);
	if (req->conn) {
		req->conn->phase = PH_BODY;
		req->conn->deadline_ms = now_ms() + l->o.body_timeout_ms;
	}
	st = check_head(l, req, &clen, &why, &reason);
	if (st < 0) {
		count(l, reason);
		return MHD_NO;
	}
	if (st > 0) {
		count(l, reason);
		return refuse(l, req, st, why);
	}
	if (l->o.head) {
		l->o.head(l->o.user, req);
		if (req->replied) {
			if (clen != 0)
				req->close = true;
			return queue_reply(req);
		}
	}
	if (clen > 0) {
		if (!budget_take(l, clen)) {
			count(l, LISTEN_REJ_BUDGET);
			return refuse(l, req, 429, "request body does not fit the memory budget");
		}
		req->reserved = clen;
		req->body = malloc((size_t)clen + 1);
		if (!req->body)
			return refuse(l, req, 503, "out of memory");
		req->cap = (size_t)clen;
	}
	return MHD_YES;
}

/* Appends a piece of the body. A chunked body grows, reserving as it goes;
 * false when it outgrows the cap or the budget. */
static bool on_body(struct listen *l, struct listen_request *req, const char *data, size_t n)
{
	if (n > req->cap - req->len) {
		size_t want = req->len + n, cap = req->cap ? req->cap : 16384;
		uint8_t *nb;

		if (want > l->o.max_body) {
			count(l, LISTEN_REJ_BODY_TOO_LARGE);
			return false;
		}
		while (cap < want)
			cap *= 2;
		if (cap > l->o.max_body)
			cap = l->o.max_body;
		if (!budget_take(l, (int64_t)(cap - req->cap))) {
			count(l, LISTEN_REJ_BUDGET);
			return false;
		}
		nb = realloc(req->body, cap + 1);
		if (!nb) {
			budget_give(l, (int64_t)(cap - req->cap));
			return false;
		}
		req->reserved += (int64_t)(cap - req->cap);
		req->body = nb;
		req->cap = cap;
	}
	memcpy(req->body + req->len, data, n);
	req->len += n;
	return true;
}

/* The whole request is in: hand it over, and suspend until the reply. */
static enum MHD_Result on_complete(struct listen *l, struct listen_request *req)
{
	req->stage = 2;
	if (req->conn)
		req->conn->phase = PH_BUSY;
	if (req->body)
		req->body[req->len] = '\0';
	l->o.handler(l->o.user, req, 0, NULL);
	pthread_mutex_lock(&l->mu);
	if (!req->replied) {
		req->suspended = true;
		MHD_suspend_connection(req->mc);
		pthread_mutex_unlock(&l->mu);
		return MHD_YES;
	}
	pthread_mutex_unlock(&l->mu);
	return queue_reply(req);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_ctx)
{
	struct listen *l = cls;
	struct listen_request *req = *req_ctx;

	if (!req)
		return MHD_NO;
	switch (req->stage) {
	case 0:
		req->method = method;
		req->version = version;
		return on_head(l, req);
	case 1:
		if (*upload_data_size) {
			if (!on_body(l, req, upload_data, *upload_data_size))
				return MHD_NO;
			*upload_data_size = 0;
			return MHD_YES;
		}
		return on_complete(l, req);
	case 2:
		/* Resumed: the reply is there. */
		pthread_mutex_lock(&l->mu);
		req->suspended = false;
		pthread_mutex_unlock(&l->mu);
		return queue_reply(req);
	default:
		/* Answered already, before the body: do not read it. */
		return *upload_data_size ? MHD_NO : MHD_YES;
	}
}

/* ---- the request, for handlers ---- */

const char *listen_method(const struct listen_request *req)
{
	return req->method ? req->method : "";
}

const char *listen_path(const struct listen_request *req)
{
	return req->path ? req->path : "";
}

const char *listen_target(const struct listen_request *req)
{
	return req->target ? req->target : "";
}

const char *listen_header(const struct listen_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->mc, MHD_HEADER_KIND, name);
}

struct header_all {
	const char *name;
	const char **out;
	size_t max, n;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	struct header_all *a = cls;

	if (strcasecmp(key, a->name) == 0) {
		if (a->n < a->max)
			a->out[a->n] = value ? value : "";
		a->n++;
	}
	return MHD_YES;
}

size_t listen_header_all(const struct listen_request *req, const char *name, const char **out,
			 size_t max)
{
	struct header_all a = {name, out, max, 0};

	MHD_get_connection_values(req->mc, MHD_HEADER_KIND, collect_header, &a);
	return a.n;
}

const uint8_t *listen_body(const struct listen_request *req, size_t *len)
{
	*len = req->len;
	return req->body ? req->body : (const uint8_t *)"";
}

void *listen_get_app(const struct listen_request *req)
{
	return req->app;
}

void listen_set_app(struct listen_request *req, void *app)
{
	req->app = app;
}

/* ---- replies ---- */

int listen_add_header(struct listen_request *req, const char *name, const char *value)
{
	struct hdr *v = realloc(req->hdrs, (req->nhdrs + 1) * sizeof(*v));
	char *n, *val;

	if (!v)
		return -1;
	req->hdrs = v;
	n = strdup(name);
	val = strdup(value);
	if (!n || !val) {
		free(n);
		free(val);
		return -1;
	}
	v[req->nhdrs++] = (struct hdr){n, val};
	return 0;
}

void listen_reply(struct listen_request *req, int status, char *body, size_t len, bool close)
{
	struct listen *l = req->l;

	pthread_mutex_lock(&l->mu);
	req->status = status;
	req->rbody = body;
	req->rlen = body ? len : 0;
	req->close = req->close || close;
	req->replied = true;
	if (req->suspended)
		MHD_resume_connection(req->mc);
	pthread_mutex_unlock(&l->mu);
}

void listen_reply_text(struct listen_request *req, int status, const char *text, bool close)
{
	char *body = pw_asprintf("%s\n", text ? text : "");

	listen_reply(req, status, body, body ? strlen(body) : 0, close);
}

const char *listen_status_text(int status)
{
	const char *s = MHD_get_reason_phrase_for((unsigned int)status);

	return s && *s ? s : "Unknown";
}

/* ---- lifecycle ---- */

static void *loop_main(void *arg)
{
	struct listen *l = arg;

	bool quiesced = false;

	while (!atomic_load(&l->stopping)) {
		MHD_run_wait(l->d, SCAN_MS);
		scan_deadlines(l);
		/* On this thread: libmicrohttpd must not be accepting on the
		 * socket while it is closed. */
		if (!quiesced && atomic_load(&l->quiesce)) {
			MHD_socket fd = MHD_quiesce_daemon(l->d);

			if (fd != MHD_INVALID_SOCKET)
				close(fd);
			quiesced = true;
		}
	}
	return NULL;
}

static char *read_file(const char *path, char **err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;

	if (!f) {
		*err = pw_asprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(MAX_TLS_FILE + 1);
	if (buf) {
		n = fread(buf, 1, MAX_TLS_FILE + 1, f);
		if (n > MAX_TLS_FILE || ferror(f)) {
			*err = pw_asprintf("%s: unreadable or larger than 1 MiB", path);
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
		}
	} else {
		*err = pw_strdup("out of memory");
	}
	fclose(f);
	return buf;
}

static int load_tls(struct listen *l, char **err)
{
	if (!l->o.tls_cert_file && !l->o.tls_key_file && !l->o.tls_client_ca_file)
		return 0;
	if (!l->o.tls_cert_file || !l->o.tls_key_file) {
		*err = pw_strdup("TLS needs both a certificate and a key file");
		return -1;
	}
	l->tls_cert = read_file(l->o.tls_cert_file, err);
	if (!l->tls_cert)
		return -1;
	l->tls_key = read_file(l->o.tls_key_file, err);
	if (!l->tls_key)
		return -1;
	if (l->o.tls_client_ca_file) {
		l->tls_ca = read_file(l->o.tls_client_ca_file, err);
		if (!l->tls_ca)
			return -1;
	}
	return 0;
}

static int bind_addr(struct listen *l, struct sockaddr_storage *ss, char **err)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	const char *addr = l->o.addr ? l->o.addr : "127.0.0.1";

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)l->o.port);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)l->o.port);
		return 1;
	}
	*err = pw_asprintf("not a numeric address: %s", addr);
	return -1;
}

static struct MHD_Daemon *start_daemon(struct listen *l, const struct sockaddr_storage *ss, bool v6)
{
	unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
	struct MHD_OptionItem tls[4] = {{MHD_OPTION_END, 0, NULL}};
	size_t nt = 0;
	unsigned int idle_s = (unsigned int)((l->o.idle_timeout_ms + 999) / 1000);

	if (v6)
		flags |= MHD_USE_IPv6;
	if (l->tls_cert) {
		flags |= MHD_USE_TLS;
		tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, l->tls_cert};
		tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, l->tls_key};
		if (l->tls_ca)
			tls[nt++] =
				(struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, l->tls_ca};
	}
	tls[nt] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	return MHD_start_daemon(
		flags, 0, on_accept, l, on_request, l, MHD_OPTION_SOCK_ADDR, ss,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)(l->o.max_conns + l->o.ops_headroom + 1),
		MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)(l->o.max_header + POOL_SLACK), MHD_OPTION_URI_LOG_CALLBACK, on_uri, l,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, l, MHD_OPTION_NOTIFY_CONNECTION,
		on_connection, l, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024U, MHD_OPTION_ARRAY, tls,
		MHD_OPTION_END);
}

struct listen *listen_start(const struct listen_opts *o, char **err)
{
	struct listen *l = calloc(1, sizeof(*l));
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *di;
	int v6;

	*err = NULL;
	if (!l) {
		*err = pw_strdup("out of memory");
		return NULL;
	}
	l->o = *o;
	pthread_mutex_init(&l->mu, NULL);
	atomic_store(&l->budget, o->body_budget);
	if (load_tls(l, err) < 0)
		goto fail;
	v6 = bind_addr(l, &ss, err);
	if (v6 < 0)
		goto fail;
	l->d = start_daemon(l, &ss, v6 == 1);
	if (!l->d) {
		*err = pw_asprintf("cannot listen on %s:%d (address in use, or bad TLS files)",
				   o->addr ? o->addr : "127.0.0.1", o->port);
		goto fail;
	}
	di = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_BIND_PORT);
	l->port = di ? di->port : o->port;
	if (pthread_create(&l->thread, NULL, loop_main, l) != 0) {
		*err = pw_strdup("cannot start the listener thread");
		goto fail;
	}
	return l;
fail:
	if (l->d)
		MHD_stop_daemon(l->d);
	free(l->tls_cert);
	free(l->tls_key);
	free(l->tls_ca);
	pthread_mutex_destroy(&l->mu);
	free(l);
	return NULL;
}

int listen_port(const struct listen *l)
{
	return l->port;
}

void listen_quiesce(struct listen *l)
{
	if (l)
		atomic_store(&l->quiesce, true);
}

void listen_stop(struct listen *l, int64_t grace_ms)
{
	int64_t until = now_ms() + grace_ms;

	if (!l)
		return;
	listen_quiesce(l);
	while (atomic_load(&l->busy) > 0 && now_ms() < until)
		usleep(10000);
	atomic_store(&l->stopping, true);
	pthread_join(l->thread, NULL);
	MHD_stop_daemon(l->d);
	free(l->tls_cert);
	free(l->tls_key);
	free(l->tls_ca);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

size_t listen_connections(struct listen *l)
{
	return atomic_load(&l->nconns);
}

uint64_t listen_rejected(struct listen *l, enum listen_reason r)
{
	return r < LISTEN_REJ_COUNT ? atomic_load(&l->rejected[r]) : 0;
}

void listen_set_budget(struct listen *l, int64_t bytes)
{
	if (l)
		atomic_store(&l->budget, bytes);
}

int64_t listen_budget_used(struct listen *l)
{
	return atomic_load(&l->used);
}
