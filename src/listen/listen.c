/*
 * listen.c - the network listener on libmicrohttpd; see listen.h.
 *
 * libmicrohttpd runs in its epoll mode. Each event loop is a daemon driven
 * by a thread of ours (MHD_run_wait), all of them accepting from one
 * listening socket, so that the deadlines libmicrohttpd lacks are enforced
 * on the thread that owns the connections: its own connection timeout is
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
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "listen.h"
#include "strbuf.h"

/* Event loops: one per CPU, at most this many. */
#define MAX_LOOPS 4
/* How often overdue connections are looked for, at most. */
#define SCAN_MS 200
/*
 * libmicrohttpd's per-connection memory (its pool): the head must fit in
 * it, with a record per header field, the answer's head and the read
 * buffer for the body. Once a connection has served a request every page
 * of it is touched (libmicrohttpd clears the pool between requests), so
 * an idle keep-alive connection costs the whole pool: keep the slack small,
 * yet large enough for the records of a head at the limit made of short
 * fields (about 150 in 8 KiB; test_head_of_many_fields_within_limit).
 * A pool of 32 KiB or less comes from malloc, which keeps what is freed:
 * see GIVE_BACK_BYTES.
 */
#define POOL_SLACK (8 * 1024)
/* Once the pools of closed connections add up to this much, the heap's
 * free pages are handed back to the system (malloc_trim), so that RSS
 * falls back after a crowd of connections is gone. */
#define GIVE_BACK_BYTES ((size_t)8 << 20)
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
	struct loop *lp;
	struct conn *conn;
	struct MHD_Connection *mc;
	char *target; /* as sent */
	char *path; /* target up to '?' */
	const char *method;
	const char *version;
	int stage; /* 0 head pending, 1 reading body, 2 with the handler, 3 queued */
	bool refused_mid_body; /* counted already */
	uint8_t *body;
	size_t len, cap;
	int64_t reserved; /* bytes of the budget held for the body */
	void *app;
	/* The reply, guarded by l->mu once the handler has run. */
	bool replied, suspended;
	bool reset; /* the reply is a TCP reset */
	int status;
	char *rbody;
	size_t rlen;
	bool close;
	struct hdr *hdrs;
	size_t nhdrs;
};

/* One event loop: a libmicrohttpd daemon on the shared listening socket,
 * the thread that drives it, and the connections it owns. */
struct loop {
	struct listen *l;
	struct MHD_Daemon *d;
	pthread_t thread;
	bool started;
	int ep; /* epoll: libmicrohttpd's epoll descriptor and wake */
	int wake; /* eventfd: a reply to resume, a stop */
	/* This loop's thread only. */
	struct conn *head, *tail; /* accept order */
	int64_t last_scan_ms;
};

struct listen {
	struct listen_opts o;
	int fd; /* the listening socket, shared by every loop */
	struct loop loops[MAX_LOOPS];
	int nloops;
	int port;
	char *tls_cert, *tls_key, *tls_ca;
	atomic_bool stopping;
	atomic_bool quiesce; /* stop accepting: asked by any thread, done by the loop */
	atomic_int_least64_t budget;
	atomic_int_least64_t used;
	atomic_size_t nconns;
	atomic_uint_least64_t rejected[LISTEN_REJ_COUNT];
	atomic_long busy; /* requests past their head, not yet answered */
	atomic_size_t freed; /* pool bytes of connections closed since the last give-back */
	pthread_mutex_t mu; /* replies */
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

/* Wakes a loop out of its wait (a reply to resume, a stop). */
static void loop_wake(struct loop *lp)
{
	uint64_t one = 1;

	if (lp->wake >= 0 && write(lp->wake, &one, sizeof(one)) < 0) {
		/* The counter is full: the loop is awake anyway. */
	}
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

static void scan_deadlines(struct loop *lp)
{
	struct listen *l = lp->l;
	int64_t now = now_ms();

	if (now - lp->last_scan_ms < SCAN_MS)
		return;
	lp->last_scan_ms = now;
	for (struct conn *c = lp->head; c; c = c->next) {
		if (c->cut || c->phase == PH_BUSY || now < c->deadline_ms)
			continue;
		conn_cut(l, c,
			 c->phase == PH_HEAD ? LISTEN_REJ_HEADER_TIMEOUT : LISTEN_REJ_BODY_TIMEOUT);
	}
}

/* Past max_conns, the oldest connection that has no request under way
 * makes room. True when one was found. */
static bool evict_idle(struct loop *lp, const struct conn *except)
{
	struct listen *l = lp->l;

	for (struct conn *c = lp->head; c; c = c->next) {
		if (c != except && !c->cut && c->phase == PH_HEAD) {
			conn_cut(l, c, LISTEN_REJ_CONN_LIMIT);
			return true;
		}
	}
	return false;
}

static size_t pool_bytes(const struct listen *l)
{
	return l->o.max_header + POOL_SLACK;
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct listen *l = ((struct loop *)cls)->l;

	if (atomic_load(&l->nconns) >= l->o.max_conns + l->o.ops_headroom) {
		count(l, LISTEN_REJ_CONN_LIMIT);
		return MHD_NO;
	}
	return MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	struct loop *lp = cls;
	struct listen *l = lp->l;
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
		c->prev = lp->tail;
		if (lp->tail)
			lp->tail->next = c;
		else
			lp->head = c;
		lp->tail = c;
		*socket_ctx = c;
		if (atomic_fetch_add(&l->nconns, 1) + 1 > l->o.max_conns && !evict_idle(lp, c))
			c->headroom = true;
		return;
	}
	if (!c)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		lp->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		lp->tail = c->prev;
	atomic_fetch_sub(&l->nconns, 1);
	atomic_fetch_add(&l->freed, pool_bytes(l));
	free(c);
	*socket_ctx = NULL;
}

/* After many connections closed: their memory back to the system. One
 * loop does it; the others go on. */
static void give_back(struct listen *l)
{
	if (atomic_load(&l->freed) < GIVE_BACK_BYTES)
		return;
	if (atomic_exchange(&l->freed, 0) >= GIVE_BACK_BYTES)
		malloc_trim(0);
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
	req->lp = cls;
	req->l = req->lp->l;
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
	struct listen *l = ((struct loop *)cls)->l;
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
	/* A chunked body libmicrohttpd could not read (a chunk size such as
	 * 0x5 or -5). */
	if (req->stage == 1 && toe == MHD_REQUEST_TERMINATED_WITH_ERROR && !(c && c->cut) &&
	    !req->refused_mid_body)
		count(l, LISTEN_REJ_BAD_REQUEST);
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

	if (req->reset && req->conn) {
		struct linger lg = {1, 0};

		/* Closed by libmicrohttpd when told to give up: a zero linger
		 * turns the close into a reset. */
		setsockopt(req->conn->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		req->stage = 3;
		return MHD_NO;
	}
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

/* An uppercase token that is not a method of HTTP/1.1 is answered 501. */
static bool known_method(const char *m)
{
	static const char *const known[] = {"GET",   "HEAD",	"POST",	 "PUT",	    "DELETE",
					    "PATCH", "OPTIONS", "TRACE", "CONNECT", NULL};

	for (const char *const *k = known; *k; k++)
		if (strcmp(m, *k) == 0)
			return true;
	return false;
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
	if (!known_method(req->method)) {
		*why = "method not implemented";
		return 501;
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
/* Trailers after a chunked body get the head's checks: no control bytes
 * in a value, and lines that end in CRLF (each field two bytes after the
 * previous value, as for the head). */
static enum MHD_Result scan_footer(void *cls, enum MHD_ValueKind kind, const char *key,
				   size_t key_size, const char *value, size_t value_size)
{
	struct head_scan *s = cls;

	if (!s->next)
		s->next = key; /* the first trailer: nothing before it to compare */
	return scan_header(cls, kind, key, key_size, value, value_size);
}

static enum MHD_Result on_complete(struct listen *l, struct listen_request *req)
{
	struct head_scan trailers = {0};

	MHD_get_connection_values_n(req->mc, MHD_FOOTER_KIND, scan_footer, &trailers);
	if (trailers.bad) {
		count(l, LISTEN_REJ_BAD_REQUEST);
		return refuse(l, req, 400, "malformed trailer field");
	}
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
	struct listen *l = ((struct loop *)cls)->l;
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
			if (!on_body(l, req, upload_data, *upload_data_size)) {
				req->refused_mid_body = true;
				return MHD_NO;
			}
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

int listen_http_minor(const struct listen_request *req)
{
	const char *v = req->version ? req->version : "";

	return strncmp(v, "HTTP/1.", 7) == 0 && v[7] >= '0' && v[7] <= '9' ? v[7] - '0' : 0;
}

struct header_each {
	void (*fn)(void *ctx, const char *name, const char *value);
	void *ctx;
};

static enum MHD_Result each_header(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	struct header_each *e = cls;

	e->fn(e->ctx, key, value ? value : "");
	return MHD_YES;
}

void listen_header_each(const struct listen_request *req,
			void (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
	struct header_each e = {fn, ctx};

	MHD_get_connection_values(req->mc, MHD_HEADER_KIND, each_header, &e);
}

const uint8_t *listen_body(const struct listen_request *req, size_t *len)
{
	*len = req->len;
	return req->body ? req->body : (const uint8_t *)"";
}

int listen_reserve(struct listen_request *req, size_t n)
{
	if (!budget_take(req->l, (int64_t)n))
		return -1;
	pthread_mutex_lock(&req->l->mu);
	req->reserved += (int64_t)n;
	pthread_mutex_unlock(&req->l->mu);
	return 0;
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
	struct hdr *h;

	if (!v)
		return -1;
	req->hdrs = v;
	h = &v[req->nhdrs];
	h->name = strdup(name);
	h->value = strdup(value);
	if (!h->name || !h->value) {
		free(h->name);
		free(h->value);
		return -1;
	}
	req->nhdrs++;
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
	if (req->suspended) {
		struct loop *lp = req->lp;

		/* From here on the loop may serve the connection, or find it
		 * gone and free req: req is not touched again. */
		MHD_resume_connection(req->mc);
		loop_wake(lp);
	}
	pthread_mutex_unlock(&l->mu);
}

void listen_reset(struct listen_request *req)
{
	req->reset = true;
	listen_reply(req, 0, NULL, 0, true);
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

/*
 * Waits on libmicrohttpd's epoll descriptor and our wake-up descriptor,
 * then lets libmicrohttpd work without waiting. A resumed connection is
 * taken back on one turn and served on the next, so a wake-up is followed
 * by two turns.
 */
static void loop_turn(struct loop *lp)
{
	struct epoll_event ev[2];
	MHD_UNSIGNED_LONG_LONG to = SCAN_MS;
	int n;

	if (MHD_get_timeout(lp->d, &to) != MHD_YES || to > SCAN_MS)
		to = SCAN_MS;
	n = epoll_wait(lp->ep, ev, 2, (int)to);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.fd == lp->wake) {
			uint64_t v;

			if (read(lp->wake, &v, sizeof(v)) < 0) {
				/* Nothing to read: another turn did. */
			}
			MHD_run(lp->d);
		}
	}
	MHD_run(lp->d);
}

static void *loop_main(void *arg)
{
	struct loop *lp = arg;
	struct listen *l = lp->l;
	bool quiesced = false;

	while (!atomic_load(&l->stopping)) {
		loop_turn(lp);
		scan_deadlines(lp);
		give_back(l);
		/* On this thread: the daemon must not be accepting on the socket
		 * while it lets go of it. The socket is closed once every loop
		 * has. */
		if (!quiesced && atomic_load(&l->quiesce)) {
			MHD_quiesce_daemon(lp->d);
			quiesced = true;
		}
	}
	return NULL;
}

/* The loop's own epoll set: libmicrohttpd's, and the wake-up eventfd. */
static int loop_open(struct loop *lp)
{
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(lp->d, MHD_DAEMON_INFO_EPOLL_FD);
	struct epoll_event ev = {.events = EPOLLIN};

	lp->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	lp->ep = epoll_create1(EPOLL_CLOEXEC);
	if (!di || lp->wake < 0 || lp->ep < 0)
		return -1;
	ev.data.fd = di->epoll_fd;
	if (epoll_ctl(lp->ep, EPOLL_CTL_ADD, di->epoll_fd, &ev) < 0)
		return -1;
	ev.data.fd = lp->wake;
	return epoll_ctl(lp->ep, EPOLL_CTL_ADD, lp->wake, &ev);
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

/* The listening socket, non-blocking: every loop accepts from it, and
 * the losers of a race must not block. */
static int open_socket(struct listen *l, char **err)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	const char *addr = l->o.addr ? l->o.addr : "127.0.0.1";
	socklen_t len;
	int one = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)l->o.port);
		len = sizeof(*a4);
	} else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)l->o.port);
		len = sizeof(*a6);
	} else {
		*err = pw_asprintf("not a numeric address: %s", addr);
		return -1;
	}
	l->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		goto fail;
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(l->fd, (struct sockaddr *)&ss, len) < 0 || listen(l->fd, 1024) < 0)
		goto fail;
	len = sizeof(ss);
	if (getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0)
		goto fail;
	l->port = ntohs(ss.ss_family == AF_INET6 ? a6->sin6_port : a4->sin_port);
	return 0;
fail:
	*err = pw_asprintf("cannot listen on %s:%d: %s", addr, l->o.port, strerror(errno));
	return -1;
}

static struct MHD_Daemon *start_daemon(struct loop *lp)
{
	struct listen *l = lp->l;
	unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
	struct MHD_OptionItem tls[4] = {{MHD_OPTION_END, 0, NULL}};
	size_t nt = 0;
	unsigned int idle_s = (unsigned int)((l->o.idle_timeout_ms + 999) / 1000);

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
		flags, 0, on_accept, lp, on_request, lp, MHD_OPTION_LISTEN_SOCKET, l->fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)(l->o.max_conns + l->o.ops_headroom + 1),
		MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		pool_bytes(l), MHD_OPTION_URI_LOG_CALLBACK, on_uri, lp, MHD_OPTION_NOTIFY_COMPLETED,
		on_completed, lp, MHD_OPTION_NOTIFY_CONNECTION, on_connection, lp, MHD_OPTION_ARRAY,
		tls, MHD_OPTION_END);
}

static int loops_count(const struct listen_opts *o)
{
	long n = o->threads > 0 ? o->threads : sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > MAX_LOOPS ? MAX_LOOPS : (int)n;
}

/* Stops every loop's thread and daemon; the socket is the caller's. */
static void loops_stop(struct listen *l)
{
	atomic_store(&l->stopping, true);
	for (int i = 0; i < l->nloops; i++) {
		struct loop *lp = &l->loops[i];

		loop_wake(lp);
		if (lp->started)
			pthread_join(lp->thread, NULL);
		/* Quiesced first, a daemon does not close the shared socket. */
		MHD_quiesce_daemon(lp->d);
		MHD_stop_daemon(lp->d);
		if (lp->ep >= 0)
			close(lp->ep);
		if (lp->wake >= 0)
			close(lp->wake);
	}
	l->nloops = 0;
}

static void listen_free(struct listen *l)
{
	loops_stop(l);
	if (l->fd >= 0)
		close(l->fd);
	free(l->tls_cert);
	free(l->tls_key);
	free(l->tls_ca);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

struct listen *listen_start(const struct listen_opts *o, char **err)
{
	struct listen *l = calloc(1, sizeof(*l));
	int n;

	*err = NULL;
	if (!l) {
		*err = pw_strdup("out of memory");
		return NULL;
	}
	l->o = *o;
	l->fd = -1;
	pthread_mutex_init(&l->mu, NULL);
	atomic_store(&l->budget, o->body_budget);
	if (load_tls(l, err) < 0 || open_socket(l, err) < 0)
		goto fail;
	n = loops_count(o);
	for (int i = 0; i < n; i++) {
		struct loop *lp = &l->loops[i];

		lp->l = l;
		lp->ep = lp->wake = -1;
		lp->d = start_daemon(lp);
		if (!lp->d) {
			*err = pw_strdup("cannot start the HTTP server (bad TLS files?)");
			goto fail;
		}
		l->nloops++;
		if (loop_open(lp) < 0) {
			*err = pw_asprintf("cannot set up the event loop: %s", strerror(errno));
			goto fail;
		}
		if (pthread_create(&lp->thread, NULL, loop_main, lp) != 0) {
			*err = pw_strdup("cannot start the listener thread");
			goto fail;
		}
		lp->started = true;
	}
	return l;
fail:
	listen_free(l);
	return NULL;
}

int listen_port(const struct listen *l)
{
	return l->port;
}

void listen_quiesce(struct listen *l)
{
	if (!l)
		return;
	atomic_store(&l->quiesce, true);
	for (int i = 0; i < l->nloops; i++)
		loop_wake(&l->loops[i]);
}

void listen_stop(struct listen *l, int64_t grace_ms)
{
	int64_t until = now_ms() + grace_ms;

	if (!l)
		return;
	listen_quiesce(l);
	while (atomic_load(&l->busy) > 0 && now_ms() < until)
		usleep(10000);
	listen_free(l);
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
