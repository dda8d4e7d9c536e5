/*
 * listen.h - the network listener: an event-driven HTTP/1.1 server on
 * libmicrohttpd for the mock host's receiving side.
 *
 * A few threads (one per CPU, at most 4) each run a libmicrohttpd epoll loop
 * on the same listening socket and serve the connections they accepted.
 * A handler that cannot answer at once (a delivery under way) returns
 * without a reply: the connection is suspended and holds no thread until
 * listen_reply() is called, from any thread.
 *
 * The listener owns the limits a network daemon needs: a total deadline for
 * the request head counted from accept, a body deadline, an idle keep-alive
 * timeout, head and body size caps, a connection cap with room reserved for
 * operational requests, and a shared byte budget that request bodies are
 * reserved against before they are read. Everything it refuses is counted
 * by reason (listen_rejected()).
 */
#ifndef PW_LISTEN_H
#define PW_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why the listener refused a request or a connection. */
enum listen_reason {
	LISTEN_REJ_HEADER_TIMEOUT, /* the head did not arrive in time: closed */
	LISTEN_REJ_BODY_TIMEOUT, /* the body did not arrive in time: closed */
	LISTEN_REJ_HEADER_TOO_LARGE, /* 431 */
	LISTEN_REJ_BODY_TOO_LARGE, /* 413, before the body is read */
	LISTEN_REJ_BUDGET, /* 429: the body does not fit the byte budget */
	LISTEN_REJ_BAD_REQUEST, /* 400: framing a proxy could read otherwise */
	LISTEN_REJ_CONN_LIMIT, /* closed at accept, or evicted while idle */
	LISTEN_REJ_TLS, /* client certificate refused: closed */
	/* A head libmicrohttpd answered itself: 431 past its memory limit,
	 * 400 for a Content-Length it cannot read. */
	LISTEN_REJ_HEAD_INVALID,
	LISTEN_REJ_COUNT
};

/* The metric label of a reason ("header_timeout", ...). */
const char *listen_reason_name(enum listen_reason r);

struct listen_request; /* opaque; valid until its reply has been sent */

/*
 * Called once the head of a request has arrived, before its body is read
 * (optional). Reply with listen_reply() to answer without reading the body
 * (the connection is then closed if a body was announced); return without a
 * reply to go on. Runs on the listener thread: must not block.
 */
typedef void (*listen_head_fn)(void *user, struct listen_request *req);
/*
 * Called with the whole request. Reply now, or later from any thread
 * (listen_reply() then resumes the suspended connection). When `refused`
 * is not 0, the listener refused the request with that status (400, 413,
 * 429...) and the handler only formats the answer: reply with that status.
 * Runs on the listener thread: must not block.
 */
typedef void (*listen_handler_fn)(void *user, struct listen_request *req, int refused,
				  const char *why);

/* Called on the listener thread when a request is over (answered and sent,
 * or its connection lost), with the pointer set by listen_set_app(), when
 * one was set. The request itself is gone. */
typedef void (*listen_done_fn)(void *user, void *app);

struct listen_opts {
	const char *addr; /* numeric IPv4/IPv6 address; NULL = 127.0.0.1 */
	int port; /* 0 = ephemeral */
	int threads; /* event loops; 0 = one per CPU, at most 4 */
	int64_t header_timeout_ms; /* from accept (or the last answer) to a whole head */
	int64_t body_timeout_ms; /* from the head to the whole body */
	int64_t idle_timeout_ms; /* keep-alive connection with nothing to do */
	size_t max_header; /* request line and headers, bytes: larger ones get 431 */
	size_t max_body; /* larger announced bodies get 413 unread */
	size_t max_conns; /* connections past it are closed, or evict an idle one */
	size_t ops_headroom; /* extra connections only ops requests may use */
	/* Paths that may use the headroom (NULL-terminated), e.g. /-/healthy. */
	const char *const *ops_paths;
	/* Bodies being read or held are reserved against this many bytes; 0
	 * means no budget. Change it with listen_set_budget(). */
	int64_t body_budget;
	/* TLS: PEM files. With a client CA, every client must present a
	 * certificate that it signed. */
	const char *tls_cert_file;
	const char *tls_key_file;
	const char *tls_client_ca_file;
	listen_head_fn head;
	listen_handler_fn handler;
	listen_done_fn done; /* optional */
	void *user;
};

struct listen;

/* Binds, listens and starts the listener thread. Returns NULL with a
 * malloc'd *err on failure. */
struct listen *listen_start(const struct listen_opts *o, char **err);
/* The bound port (useful with port 0). */
int listen_port(const struct listen *l);
/* Stops accepting new connections (within a fraction of a second);
 * connections already open are still served. Thread-safe. */
void listen_quiesce(struct listen *l);
/*
 * Stops accepting, waits up to grace_ms for requests under way (suspended
 * ones included) to be answered, then closes every connection, joins the
 * thread and frees l. Every suspended request must have been or be about to
 * be replied to. Accepts NULL.
 */
void listen_stop(struct listen *l, int64_t grace_ms);

/* Connections open now; refusals so far by reason. Thread-safe. */
size_t listen_connections(struct listen *l);
uint64_t listen_rejected(struct listen *l, enum listen_reason r);
/* Sets the byte budget of request bodies (0 = none). Thread-safe. */
void listen_set_budget(struct listen *l, int64_t bytes);
/* Bytes reserved for request bodies now. Thread-safe. */
int64_t listen_budget_used(struct listen *l);

/* ---- the request, for handlers ---- */

const char *listen_method(const struct listen_request *req);
/* The request target up to '?', not decoded. */
const char *listen_path(const struct listen_request *req);
/* The whole request target as sent ("/ingest?name=..."). */
const char *listen_target(const struct listen_request *req);
/* First value of a header, case-insensitive name; NULL when absent. */
const char *listen_header(const struct listen_request *req, const char *name);
/* Every value of a header, in arrival order, into out[max]; returns how many
 * there are (may be more than max). */
size_t listen_header_all(const struct listen_request *req, const char *name, const char **out,
			 size_t max);
/* The minor version of HTTP/1.x. */
int listen_http_minor(const struct listen_request *req);
/* Calls fn for every header, in arrival order; the strings stay valid
 * until the reply has been sent. */
void listen_header_each(const struct listen_request *req,
			void (*fn)(void *ctx, const char *name, const char *value), void *ctx);
/* The body (de-chunked). It stays valid and unchanged until the reply has
 * been sent, so the handler may lend it to work that ends before it
 * replies. */
const uint8_t *listen_body(const struct listen_request *req, size_t *len);
/* Reserves n more bytes of the body budget for this request (memory the
 * handler derives from the body, such as an inflated copy), given back
 * when the request is over. 0, or -1 when they do not fit. Thread-safe. */
int listen_reserve(struct listen_request *req, size_t n);
/* Per-request pointer for the application (NULL at first). */
void *listen_get_app(const struct listen_request *req);
void listen_set_app(struct listen_request *req, void *app);

/* ---- replies ---- */

/* Adds a response header (copied) before listen_reply(). 0 or -1. */
int listen_add_header(struct listen_request *req, const char *name, const char *value);
/*
 * Answers the request: status, and a malloc'd body that the listener takes
 * (NULL for none). `close` asks for Connection: close. Call exactly once
 * per request, from the handler or later from any thread; after it, req must
 * not be touched.
 */
void listen_reply(struct listen_request *req, int status, char *body, size_t len, bool close);
/* Instead of a reply: the connection is closed with a TCP reset (for test
 * peers that play a failing server). Same rules as listen_reply(). */
void listen_reset(struct listen_request *req);
/* listen_reply() with a copy of a text. */
void listen_reply_text(struct listen_request *req, int status, const char *text, bool close);

/* The standard reason phrase of a status code. */
const char *listen_status_text(int status);

#endif /* PW_LISTEN_H */
