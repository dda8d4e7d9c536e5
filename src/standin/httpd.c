/*
 * httpd.c - a small threaded HTTP/1.1 server for loopback peers.
 *
 * Shutdown works through a pipe that is written once and never drained:
 * every thread polls it next to its socket, so one write wakes them all,
 * including those sleeping in a scripted delay.
 */
#define _GNU_SOURCE
#include "standin/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "strbuf.h"
#include "util/gzip.h"

#define MAX_HEAD ((size_t)64 << 10)
#define MAX_HEADERS 200
#define DEFAULT_MAX_BODY ((size_t)64 << 20)
#define DEFAULT_IDLE_MS 120000
#define READ_CHUNK 16384

struct conn {
	struct standin_httpd *h;
	int fd;
	pthread_t thread;
	bool done; /* under h->lock: the thread has finished and may be joined */
	struct conn *next;
};

struct standin_httpd {
	struct standin_httpd_opts o;
	int lfd;
	int port;
	int stop_pipe[2];
	pthread_t acceptor;
	pthread_mutex_t lock;
	struct conn *conns;
	unsigned long refused; /* refused by max_conns; guarded by lock */
};

/* One request being read: the parsed head plus the body. */
struct reqstate {
	char *head; /* copy of the head, pointed into by method/path/headers */
	char *method;
	char *path;
	char *query;
	int minor;
	struct standin_header *headers;
	size_t nheaders;
	struct strbuf body;
	bool too_large;
	bool want_close;
};

enum rd { RD_OK, RD_EOF, RD_ERR };

const char *standin_http_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Entity";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 499:
		return "Client Closed Request";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

const char *standin_http_header(const struct standin_header *h, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(h[i].name, name) == 0)
			return h[i].value;
	return NULL;
}

int standin_http_add_header(struct standin_http_response *r, const char *name, const char *value)
{
	struct standin_header *nh;
	char *n = pw_strdup(name), *v = pw_strdup(value);

	nh = (n && v) ? realloc(r->headers, (r->nheaders + 1) * sizeof(*nh)) : NULL;
	if (!nh) {
		free(n);
		free(v);
		return -1;
	}
	r->headers = nh;
	nh[r->nheaders].name = n;
	nh[r->nheaders].value = v;
	r->nheaders++;
	return 0;
}

int standin_http_set_body(struct standin_http_response *r, const void *data, size_t len)
{
	uint8_t *b = malloc(len ? len : 1);

	if (!b)
		return -1;
	if (len)
		memcpy(b, data, len);
	free(r->body);
	r->body = b;
	r->body_len = len;
	return 0;
}

void standin_http_response_free(struct standin_http_response *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Waits until fd (when >= 0) is readable. 1 = readable, 0 = timeout,
 * -1 = the server is stopping or poll failed. */
static int wait_readable(struct standin_httpd *h, int fd, int timeout_ms)
{
	struct pollfd p[2] = {{.fd = h->stop_pipe[0], .events = POLLIN},
			      {.fd = fd, .events = POLLIN}};
	int n;

	do
		n = poll(p, fd >= 0 ? 2 : 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (p[0].revents & POLLIN))
		return -1;
	return n == 0 ? 0 : 1;
}

/* Reads more bytes into buf. */
static enum rd fill(struct conn *c, struct strbuf *buf)
{
	char tmp[READ_CHUNK];
	ssize_t n;
	int w = wait_readable(c->h, c->fd, c->h->o.idle_timeout_ms);

	if (w <= 0)
		return RD_EOF;
	do
		n = recv(c->fd, tmp, sizeof(tmp), 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? RD_EOF : RD_ERR;
	if (strbuf_append(buf, tmp, (size_t)n) < 0)
		return RD_ERR;
	return RD_OK;
}

static int send_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void consume(struct strbuf *buf, size_t n)
{
	memmove(buf->data, buf->data + n, buf->len - n);
	buf->len -= n;
	buf->data[buf->len] = '\0';
}

static void reqstate_free(struct reqstate *r)
{
	free(r->head);
	free(r->headers);
	strbuf_free(&r->body);
	memset(r, 0, sizeof(*r));
}

static bool is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* A byte that may not appear in a header value or request target: every
 * control byte except TAB, and DEL. A bare CR or LF left in a value after
 * splitting on CRLF is one, and would end the line for another reader. */
static bool is_ctl(unsigned char ch)
{
	return (ch < 0x20 && ch != '\t') || ch == 0x7F;
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if (is_ctl((unsigned char)*s))
			return true;
	return false;
}

/* Methods are case-sensitive (RFC 9110 9.1): anything but an uppercase
 * token is malformed (400); an uppercase token that is not a method this
 * server knows is 501. */
static int check_method(const char *m)
{
	static const char *const known[] = {"GET",   "HEAD",	"POST",	 "PUT",	    "DELETE",
					    "PATCH", "OPTIONS", "TRACE", "CONNECT", NULL};

	for (const char *c = m; *c; c++)
		if (!((*c >= 'A' && *c <= 'Z') || *c == '-' || *c == '_'))
			return 400;
	for (size_t i = 0; known[i]; i++)
		if (strcmp(m, known[i]) == 0)
			return 0;
	return 501;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

/* Splits the head (request line + header lines, CRLF-separated, without
 * the final empty line) in place. Returns 0 or an HTTP status to answer. */
static int parse_head(struct reqstate *r)
{
	char *line = r->head, *next, *sp1, *sp2, *colon, *q;
	int st;

	next = strstr(line, "\r\n");
	if (next) {
		*next = '\0';
		next += 2;
	}
	sp1 = strchr(line, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || sp1 == line)
		return 400;
	*sp1 = *sp2 = '\0';
	r->method = line;
	r->path = sp1 + 1;
	if (strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || !(sp2[8] == '0' || sp2[8] == '1') || sp2[9])
		return strncmp(sp2 + 1, "HTTP/", 5) == 0 ? 505 : 400;
	r->minor = sp2[8] - '0';
	if (*r->path == '\0' || strchr(r->path, ' ') || has_ctl(r->path))
		return 400;
	st = check_method(r->method);
	if (st)
		return st;
	q = strchr(r->path, '?');
	if (q) {
		*q = '\0';
		r->query = q + 1;
	} else {
		r->query = r->path + strlen(r->path);
	}
	for (line = next; line && *line; line = next) {
		struct standin_header *hh;

		next = strstr(line, "\r\n");
		if (next) {
			*next = '\0';
			next += 2;
		}
		/* Obsolete line folding is refused, as RFC 9112 allows. */
		if (*line == ' ' || *line == '\t')
			return 400;
		colon = strchr(line, ':');
		if (!colon || colon == line)
			return 400;
		*colon = '\0';
		for (char *m = line; *m; m++)
			if (!is_tchar((unsigned char)*m))
				return 400;
		if (r->nheaders >= MAX_HEADERS)
			return 431;
		hh = realloc(r->headers, (r->nheaders + 1) * sizeof(*hh));
		if (!hh)
			return 500;
		r->headers = hh;
		hh[r->nheaders].name = line;
		hh[r->nheaders].value = trim(colon + 1);
		r->nheaders++;
		if (has_ctl(hh[r->nheaders - 1].value))
			return 400;
	}
	return 0;
}

/* Content-Length: all copies must agree and be plain digits. */
static int content_length(const struct reqstate *r, long long *cl)
{
	*cl = -1;
	for (size_t i = 0; i < r->nheaders; i++) {
		const char *v = r->headers[i].value;
		long long n = 0;

		if (strcasecmp(r->headers[i].name, "Content-Length") != 0)
			continue;
		if (!*v)
			return -1;
		for (; *v; v++) {
			if (*v < '0' || *v > '9' || n > (LLONG_MAX - 9) / 10)
				return -1;
			n = n * 10 + (*v - '0');
		}
		if (*cl >= 0 && *cl != n)
			return -1;
		*cl = n;
	}
	return 0;
}

/* Transfer-Encoding: 0 none, 1 chunked, -1 something we cannot read, -2
 * more than one field line (a proxy in front may read a different one). */
static int transfer_encoding(const struct reqstate *r)
{
	const char *v = NULL;

	for (size_t i = 0; i < r->nheaders; i++) {
		if (strcasecmp(r->headers[i].name, "Transfer-Encoding") != 0)
			continue;
		if (v)
			return -2;
		v = r->headers[i].value;
	}
	if (!v)
		return 0;
	return strcasecmp(v, "chunked") == 0 ? 1 : -1;
}

/* A chunk-size line up to eol: hex digits only (no sign, space or "0x",
 * which strtoull would take), then nothing or a ';' extension without
 * control bytes. 0 with *size, or -1. */
static int chunk_size(const char *p, const char *eol, unsigned long long *size)
{
	unsigned long long n = 0;
	const char *s = p;

	for (; p < eol; p++) {
		int d = (*p >= '0' && *p <= '9')   ? *p - '0'
			: (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
			: (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10
						   : -1;

		if (d < 0)
			break;
		if (n > (ULLONG_MAX >> 4))
			return -1;
		n = (n << 4) | (unsigned)d;
	}
	if (p == s || (p < eol && *p != ';'))
		return -1;
	for (; p < eol; p++)
		if (is_ctl((unsigned char)*p))
			return -1;
	*size = n;
	return 0;
}

static bool wants_close(const struct reqstate *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		if (strcasecmp(r->headers[i].name, "Connection") != 0)
			continue;
		if (strcasestr(r->headers[i].value, "close"))
			return true;
		if (r->minor == 0 && strcasestr(r->headers[i].value, "keep-alive"))
			return false;
	}
	return r->minor == 0;
}

/* Reads a chunked body starting at buf[0]. On success the whole encoding
 * (with trailers) has been consumed from buf. */
static int read_chunked(struct conn *c, struct strbuf *buf, struct reqstate *r, size_t max)
{
	size_t pos = 0;

	for (;;) {
		char *eol;
		unsigned long long size;

		while (!(eol = memmem(buf->data + pos, buf->len - pos, "\r\n", 2))) {
			if (buf->len - pos > 1024 || fill(c, buf) != RD_OK)
				return 400;
		}
		if (chunk_size(buf->data + pos, eol, &size) < 0)
			return 400;
		pos = (size_t)(eol - buf->data) + 2;
		if (size == 0)
			break;
		if (size > max || r->body.len + size > max) {
			r->too_large = true;
			return 0;
		}
		while (buf->len - pos < size + 2)
			if (fill(c, buf) != RD_OK)
				return 400;
		if (memcmp(buf->data + pos + size, "\r\n", 2) != 0)
			return 400;
		if (strbuf_append(&r->body, buf->data + pos, (size_t)size) < 0)
			return 500;
		consume(buf, pos + (size_t)size + 2);
		pos = 0;
	}
	/* Trailer section: header lines up to an empty line; ignored. */
	for (;;) {
		char *eol;

		while (!(eol = memmem(buf->data + pos, buf->len - pos, "\r\n", 2))) {
			if (buf->len - pos > MAX_HEAD || fill(c, buf) != RD_OK)
				return 400;
		}
		if (eol == buf->data + pos) {
			consume(buf, pos + 2);
			return 0;
		}
		/* Ignored, but a bare CR, LF or NUL in them is still refused. */
		for (const char *t = buf->data + pos; t < eol; t++)
			if (is_ctl((unsigned char)*t))
				return 400;
		pos = (size_t)(eol - buf->data) + 2;
	}
}

/* Reads one request. Returns 0 with r filled, -1 when the connection is
 * done (EOF, error, stop), or an HTTP status to answer before closing. */
static int read_request(struct conn *c, struct strbuf *buf, struct reqstate *r)
{
	size_t max = c->h->o.max_body;
	char *end;
	size_t head_len;
	long long cl;
	int te, st;

	/* Tolerate empty lines between requests (RFC 9112 2.2). */
	for (;;) {
		while (buf->len >= 2 && buf->data[0] == '\r' && buf->data[1] == '\n')
			consume(buf, 2);
		end = buf->len ? memmem(buf->data, buf->len, "\r\n\r\n", 4) : NULL;
		if (end)
			break;
		if (buf->len > MAX_HEAD)
			return 431;
		if (fill(c, buf) != RD_OK)
			return buf->len ? 400 : -1;
	}
	head_len = (size_t)(end - buf->data);
	/* The last read may have brought the end of a head longer than the
	 * limit: the limit is on the head, not on what was read before it. */
	if (head_len + 4 > MAX_HEAD)
		return 431;
	/* The head is parsed as text: a NUL would hide what follows it,
	 * Content-Length included, and the body would be read as a request. */
	if (memchr(buf->data, '\0', head_len))
		return 400;
	r->head = pw_strndup(buf->data, head_len);
	if (!r->head)
		return 500;
	consume(buf, head_len + 4);
	strbuf_init(&r->body, max + 1);
	st = parse_head(r);
	if (st)
		return st;
	r->want_close = wants_close(r);
	te = transfer_encoding(r);
	if (content_length(r, &cl) < 0 || (te && cl >= 0) || te == -2)
		return 400;
	if (te < 0)
		return 501;
	if ((te || cl > 0) && !buf->len) {
		const char *exp = standin_http_header(r->headers, r->nheaders, "Expect");

		if (exp && strcasecmp(exp, "100-continue") == 0 && cl <= (long long)max) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

			if (send_all(c->fd, cont, sizeof(cont) - 1) < 0)
				return -1;
		}
	}
	if (te)
		return read_chunked(c, buf, r, max);
	if (cl <= 0)
		return 0;
	if ((unsigned long long)cl > max) {
		r->too_large = true;
		return 0;
	}
	while (buf->len < (size_t)cl)
		if (fill(c, buf) != RD_OK)
			return -1;
	if (strbuf_append(&r->body, buf->data, (size_t)cl) < 0)
		return 500;
	consume(buf, (size_t)cl);
	return 0;
}

static int send_response(struct conn *c, const struct standin_http_response *resp, bool head_only,
			 bool close_after)
{
	struct strbuf out = STRBUF_INIT;
	uint8_t *gz = NULL;
	const uint8_t *body = resp->body;
	size_t body_len = resp->body_len;
	int status = resp->status ? resp->status : 200, rc = -1;

	if (resp->gzip && body_len) {
		if (pwx_gzip(body, body_len, &gz, &body_len) < 0)
			goto out;
		body = gz;
	}
	strbuf_printf(&out, "HTTP/1.1 %d %s\r\n", status, standin_http_reason(status));
	for (size_t i = 0; i < resp->nheaders; i++)
		strbuf_printf(&out, "%s: %s\r\n", resp->headers[i].name, resp->headers[i].value);
	if (gz)
		strbuf_puts(&out, "Content-Encoding: gzip\r\n");
	if (status >= 200 && status != 204 && status != 304)
		strbuf_printf(&out, "Content-Length: %zu\r\n", body_len);
	if (close_after)
		strbuf_puts(&out, "Connection: close\r\n");
	strbuf_puts(&out, "\r\n");
	if (!head_only && body_len && status != 204 && status != 304)
		strbuf_append(&out, body, body_len);
	if (out.failed)
		goto out;
	rc = send_all(c->fd, out.data, out.len);
out:
	free(gz);
	strbuf_free(&out);
	return rc;
}

static void send_error(struct conn *c, int status)
{
	struct standin_http_response resp = {.status = status};

	standin_http_add_header(&resp, "Content-Type", "text/plain; charset=utf-8");
	standin_http_set_body(&resp, standin_http_reason(status),
			      strlen(standin_http_reason(status)));
	send_response(c, &resp, false, true);
	standin_http_response_free(&resp);
}

static void reset_connection(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* After answering a request whose body was not read, half-close and read
 * what the client is still sending for a moment, so that closing does not
 * reset the connection before the client has seen the answer. */
static void drain(struct conn *c)
{
	char tmp[READ_CHUNK];
	size_t total = 0;

	shutdown(c->fd, SHUT_WR);
	while (total < DEFAULT_MAX_BODY && wait_readable(c->h, c->fd, 500) == 1) {
		ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);

		if (n <= 0)
			break;
		total += (size_t)n;
	}
}

/* Serves one request. Returns true when the connection should stay open. */
static bool serve_one(struct conn *c, struct reqstate *r)
{
	struct standin_http_request req = {
		.method = r->method,
		.path = r->path,
		.query = r->query,
		.minor_version = r->minor,
		.headers = r->headers,
		.nheaders = r->nheaders,
		.body = (const uint8_t *)(r->body.data ? r->body.data : ""),
		.body_len = r->body.len,
		.body_too_large = r->too_large,
	};
	struct standin_http_response resp = {0};
	bool keep = false, close_after;

	c->h->o.handler(c->h->o.user, &req, &resp);
	if (resp.delay_ms > 0 && wait_readable(c->h, -1, resp.delay_ms) < 0)
		goto out; /* stopping */
	if (resp.reset) {
		reset_connection(c->fd);
		goto out;
	}
	close_after = resp.close || r->want_close || r->too_large;
	if (send_response(c, &resp, strcmp(r->method, "HEAD") == 0, close_after) < 0)
		goto out;
	keep = !close_after;
	if (r->too_large)
		drain(c);
out:
	standin_http_response_free(&resp);
	return keep;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct strbuf buf;

	strbuf_init(&buf, c->h->o.max_body + MAX_HEAD + READ_CHUNK * 2);
	for (;;) {
		struct reqstate r = {0};
		int st = read_request(c, &buf, &r);
		bool keep;

		if (st > 0)
			send_error(c, st);
		keep = st == 0 && serve_one(c, &r);
		reqstate_free(&r);
		if (!keep)
			break;
	}
	strbuf_free(&buf);
	close(c->fd);
	pthread_mutex_lock(&c->h->lock);
	c->done = true;
	pthread_mutex_unlock(&c->h->lock);
	return NULL;
}

/* Joins finished connection threads; all of them when `all`. */
static void reap(struct standin_httpd *h, bool all)
{
	struct conn **pp, *dead = NULL;

	pthread_mutex_lock(&h->lock);
	for (pp = &h->conns; *pp;) {
		struct conn *c = *pp;

		if (all || c->done) {
			*pp = c->next;
			c->next = dead;
			dead = c;
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&h->lock);
	while (dead) {
		struct conn *c = dead;

		dead = c->next;
		pthread_join(c->thread, NULL);
		free(c);
	}
}

/* Counts live connections and tells whether one more is over the limit. */
static bool over_limit(struct standin_httpd *h)
{
	size_t live = 0;
	bool over;

	pthread_mutex_lock(&h->lock);
	for (struct conn *c = h->conns; c; c = c->next)
		if (!c->done)
			live++;
	over = h->o.max_conns && live >= h->o.max_conns;
	if (over)
		h->refused++;
	pthread_mutex_unlock(&h->lock);
	return over;
}

size_t standin_httpd_connections(struct standin_httpd *h)
{
	size_t live = 0;

	pthread_mutex_lock(&h->lock);
	for (struct conn *c = h->conns; c; c = c->next)
		if (!c->done)
			live++;
	pthread_mutex_unlock(&h->lock);
	return live;
}

unsigned long standin_httpd_refused(struct standin_httpd *h)
{
	unsigned long n;

	pthread_mutex_lock(&h->lock);
	n = h->refused;
	pthread_mutex_unlock(&h->lock);
	return n;
}

static void *accept_main(void *arg)
{
	struct standin_httpd *h = arg;

	for (;;) {
		struct conn *c;
		int fd, one = 1;

		if (wait_readable(h, h->lfd, -1) != 1)
			break;
		fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		reap(h, false);
		if (over_limit(h)) {
			static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
						   "Connection: close\r\nContent-Length: 0\r\n\r\n";

			/* Best effort: the client learns why before the close. */
			if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				(void)0;
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->h = h;
		c->fd = fd;
		pthread_mutex_lock(&h->lock);
		if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
			pthread_mutex_unlock(&h->lock);
			close(fd);
			free(c);
			continue;
		}
		c->next = h->conns;
		h->conns = c;
		pthread_mutex_unlock(&h->lock);
	}
	return NULL;
}

static int bind_listen(struct standin_httpd *h, const char *addr, int port, char **err)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1;

	memset(&ss, 0, sizeof(ss));
	if (port < 0 || port > 65535) {
		*err = pw_asprintf("invalid port %d", port);
		return -1;
	}
	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		*err = pw_asprintf("invalid listen address \"%s\" (numeric IPv4 or IPv6 expected)",
				   addr);
		return -1;
	}
	h->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (h->lfd < 0) {
		*err = pw_asprintf("socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(h->lfd, (struct sockaddr *)&ss, sl) < 0 || listen(h->lfd, 128) < 0) {
		*err = pw_asprintf("listen on %s:%d: %s", addr, port, strerror(errno));
		return -1;
	}
	sl = sizeof(ss);
	if (getsockname(h->lfd, (struct sockaddr *)&ss, &sl) < 0) {
		*err = pw_asprintf("getsockname: %s", strerror(errno));
		return -1;
	}
	h->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						: ((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

struct standin_httpd *standin_httpd_start(const struct standin_httpd_opts *o, char **err)
{
	struct standin_httpd *h = calloc(1, sizeof(*h));

	*err = NULL;
	if (!h) {
		*err = pw_strdup("out of memory");
		return NULL;
	}
	h->o = *o;
	h->lfd = -1;
	h->stop_pipe[0] = h->stop_pipe[1] = -1;
	if (!h->o.max_body)
		h->o.max_body = DEFAULT_MAX_BODY;
	if (!h->o.idle_timeout_ms)
		h->o.idle_timeout_ms = DEFAULT_IDLE_MS;
	pthread_mutex_init(&h->lock, NULL);
	if (pipe2(h->stop_pipe, O_CLOEXEC) < 0) {
		*err = pw_asprintf("pipe: %s", strerror(errno));
		goto fail;
	}
	if (bind_listen(h, o->addr ? o->addr : "127.0.0.1", o->port, err) < 0)
		goto fail;
	if (pthread_create(&h->acceptor, NULL, accept_main, h) != 0) {
		*err = pw_strdup("cannot start the accept thread");
		goto fail;
	}
	return h;
fail:
	if (h->lfd >= 0)
		close(h->lfd);
	if (h->stop_pipe[0] >= 0) {
		close(h->stop_pipe[0]);
		close(h->stop_pipe[1]);
	}
	pthread_mutex_destroy(&h->lock);
	free(h);
	return NULL;
}

int standin_httpd_port(const struct standin_httpd *h)
{
	return h->port;
}

void standin_httpd_stop(struct standin_httpd *h)
{
	ssize_t n;

	if (!h)
		return;
	do
		n = write(h->stop_pipe[1], "x", 1);
	while (n < 0 && errno == EINTR);
	pthread_join(h->acceptor, NULL);
	reap(h, true);
	close(h->lfd);
	close(h->stop_pipe[0]);
	close(h->stop_pipe[1]);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

int standin_split_listen(const char *arg, char **addr, int *port)
{
	const char *colon, *host = arg;
	size_t hostlen;
	char *end;
	long p;

	if (*arg == '[') {
		const char *rb = strchr(arg, ']');

		if (!rb || rb[1] != ':')
			return -1;
		host = arg + 1;
		hostlen = (size_t)(rb - host);
		colon = rb + 1;
	} else {
		colon = strrchr(arg, ':');
		if (!colon)
			return -1;
		hostlen = (size_t)(colon - arg);
	}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || p < 0 || p > 65535)
		return -1;
	*addr = hostlen ? pw_strndup(host, hostlen) : pw_strdup("127.0.0.1");
	*port = (int)p;
	return *addr ? 0 : -1;
}
