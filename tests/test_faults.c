/*
 * test_faults.c - how delivery behaves when the network or the server
 * misbehaves: each fault with the attempts made, the result, the log line and
 * the metrics it leaves behind; a healthy endpoint beside a failing one;
 * nothing lost uncounted through random faults; the in-flight memory cap.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hostutil.h"
#include "standin/standin.h"

static struct standin *sink, *sink2;
static struct th_plugin plugin;

static const char *const labels_basic[] = {"service_name", "svc", "__name__", "process_cpu", NULL};

static void setup(void)
{
	sink = th_sink_start();
	sink2 = th_sink_start();
	th_load(&plugin, NULL);
	th_logs_clear();
}

static void teardown(void)
{
	th_unload(&plugin);
	standin_stop(sink);
	standin_stop(sink2);
}

/* {{A}} and {{B}} stand for the two stand-ins' URLs, {{URL}} for any other. */
static struct th_instance make_url(const char *tmpl, const char *url)
{
	struct th_instance in;
	char *a = th_subst(tmpl, "{{A}}", standin_url(sink));
	char *b = th_subst(a, "{{B}}", standin_url(sink2));
	char *c = th_subst(b, "{{URL}}", url ? url : "");
	char *err = NULL;

	ck_assert_msg(th_create(&plugin, c, &in, &err) == COMPONENT_OK, "create: %s", err);
	free(a);
	free(b);
	free(c);
	return in;
}

static struct th_instance make(const char *tmpl)
{
	return make_url(tmpl, NULL);
}

/* The counters an endpoint must show after one profile it gave up on. */
static void assert_dropped_once(struct th_instance *in, const char *ep, double retries, size_t len)
{
	ck_assert_double_eq(th_ep_metric(in, "pyroscope_write_sent_profiles_total", ep), 0);
	ck_assert_double_eq(th_ep_metric(in, "pyroscope_write_dropped_profiles_total", ep), 1);
	ck_assert_double_eq(th_ep_metric(in, "pyroscope_write_dropped_bytes_total", ep),
			    (double)len);
	ck_assert_double_eq(th_ep_metric(in, "pyroscope_write_retries_total", ep), retries);
	ck_assert_double_eq(th_ep_metric(in, "pyroscope_write_inflight_requests", ep), 0);
}

static void assert_sent_once(struct th_instance *in, const char *ep, double retries, size_t len)
{
	ck_assert_double_eq(th_ep_metric(in, "pyroscope_write_sent_profiles_total", ep), 1);
	ck_assert_double_eq(th_ep_metric(in, "pyroscope_write_sent_bytes_total", ep), (double)len);
	ck_assert_double_eq(th_ep_metric(in, "pyroscope_write_dropped_profiles_total", ep), 0);
	ck_assert_double_eq(th_ep_metric(in, "pyroscope_write_retries_total", ep), retries);
}

/* Number of "failed to push" debug lines logged for an endpoint. */
static int attempt_lines(const char *ep)
{
	char needle[128], *logs = th_logs();
	int n = 0;

	snprintf(needle, sizeof(needle), "debug failed to push to endpoint endpoint=%s ", ep);
	for (char *p = strstr(logs, needle); p; p = strstr(p + 1, needle))
		n++;
	free(logs);
	return n;
}

static void assert_prefix(const char *s, const char *prefix)
{
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(strncmp(s, prefix, strlen(prefix)) == 0, "\"%s\" does not start with \"%s\"",
		      s, prefix);
}

/* ---- a raw HTTP/1.1 server for answers the stand-in will not give ---- */

enum raw_mode {
	RAW_GARBAGE, /* a line that is not HTTP at all, then close */
	RAW_TRUNCATED, /* a 200 whose body stops short of Content-Length, then close */
	RAW_HANGUP, /* a valid keep-alive 200, then a silent close */
	RAW_PLAIN_400, /* a plain-HTTP server answering whatever arrives with 400 */
};

struct raw_server {
	int fd;
	int port;
	enum raw_mode mode;
	pthread_t thread;
	atomic_bool stop;
	atomic_int connections;
	atomic_int requests;
	char url[64];
};

/* Reads one request (headers and a Content-Length body). 0 on success. */
static int raw_read_request(int c)
{
	char buf[65536];
	size_t have = 0;
	char *end = NULL;
	long clen = 0;

	while (!end) {
		ssize_t n;

		if (have == sizeof(buf) - 1)
			return -1;
		n = recv(c, buf + have, sizeof(buf) - 1 - have, 0);
		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	for (char *line = strstr(buf, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n"))
		if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
			clen = strtol(line + 17, NULL, 10);
	have -= (size_t)(end + 4 - buf);
	while ((long)have < clen) {
		ssize_t n = recv(c, buf, sizeof(buf), 0);

		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	return 0;
}

static void raw_send(int c, const char *s)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		ssize_t n = send(c, s + off, len - off, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

static void *raw_main(void *arg)
{
	struct raw_server *r = arg;

	while (!atomic_load(&r->stop)) {
		struct pollfd p = {.fd = r->fd, .events = POLLIN};
		int c;

		if (poll(&p, 1, 50) <= 0)
			continue;
		c = accept(r->fd, NULL, NULL);
		if (c < 0)
			continue;
		atomic_fetch_add(&r->connections, 1);
		if (r->mode == RAW_PLAIN_400) {
			char junk[4096];

			/* What an HTTP server does with a TLS ClientHello. */
			(void)recv(c, junk, sizeof(junk), 0);
			raw_send(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
				    "Connection: close\r\n\r\n");
		} else if (raw_read_request(c) == 0) {
			atomic_fetch_add(&r->requests, 1);
			switch (r->mode) {
			case RAW_GARBAGE:
				raw_send(c, "\x01\x02 this is not HTTP \xff\xfe\r\n\r\n");
				break;
			case RAW_TRUNCATED:
				raw_send(c, "HTTP/1.1 200 OK\r\nContent-Type: application/proto\r\n"
					    "Content-Length: 100\r\n\r\nshort");
				break;
			case RAW_HANGUP:
				raw_send(c, "HTTP/1.1 200 OK\r\nContent-Type: application/proto\r\n"
					    "Content-Length: 0\r\n\r\n");
				/* Let the client read the answer and park the
				 * connection before it goes away. */
				usleep(20000);
				break;
			case RAW_PLAIN_400:
				break;
			}
		}
		close(c);
	}
	return NULL;
}

static void raw_start(struct raw_server *r, enum raw_mode mode)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	int one = 1;

	memset(r, 0, sizeof(*r));
	r->mode = mode;
	atomic_init(&r->stop, false);
	atomic_init(&r->connections, 0);
	atomic_init(&r->requests, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(r->fd, 0);
	setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ck_assert_int_eq(bind(r->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(r->fd, 16), 0);
	ck_assert_int_eq(getsockname(r->fd, (struct sockaddr *)&a, &alen), 0);
	r->port = ntohs(a.sin_port);
	snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%d", r->port);
	ck_assert_int_eq(pthread_create(&r->thread, NULL, raw_main, r), 0);
}

static void raw_stop(struct raw_server *r)
{
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	close(r->fd);
}

/* ---- single faults ---- */

START_TEST(fault_connection_refused)
{
	struct th_instance in =
		make("{\"endpoint\":[{\"url\":\"http://127.0.0.1:1\",\"name\":\"dead\","
		     "\"min_backoff_period\":\"10ms\",\"max_backoff_retries\":3}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;

	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, &err), COMPONENT_EDELIVERY);
	assert_prefix(err, "failed to push to endpoint dead (3 retries): unavailable: ");
	ck_assert_msg(strstr(err, "onnect") != NULL, "%s", err);
	free(err);
	ck_assert_int_eq(attempt_lines("dead"), 3);
	ck_assert(th_logs_contain("retries=2 err=unavailable: "));
	ck_assert(th_logs_contain("warn Push size="));
	assert_dropped_once(&in, "dead", 2, len);
	th_destroy(&in);
}
END_TEST

/* The server reads the whole request and answers with a TCP reset: retried,
 * then delivered once the server behaves. */
START_TEST(fault_reset_mid_request)
{
	struct standin_reply rst = {.reset = true, .times = 2};
	struct th_instance in =
		make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
		     "\"min_backoff_period\":\"10ms\",\"max_backoff_retries\":5}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;
	struct standin_stats st;

	standin_script(sink, STANDIN_ROUTE_PUSH, &rst);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, &err), COMPONENT_OK);
	ck_assert_ptr_null(err);
	/* Two resets, each answered by a fresh attempt (libcurl may resend an
	 * unanswered request on its own once, which the server then also sees). */
	standin_stats_get(sink, &st);
	ck_assert_uint_eq(st.push_accepted, 1);
	ck_assert_uint_eq(st.scripted, 2);
	ck_assert_int_eq(attempt_lines("a"), 2);
	ck_assert(th_logs_contain("endpoint=a retries=0 err=unavailable: "));
	ck_assert(th_logs_contain("debug Push size="));
	assert_sent_once(&in, "a", 2, len);
	th_destroy(&in);

	/* Resets every time: the retries run out. */
	th_logs_clear();
	rst.times = 100;
	standin_script_clear(sink);
	standin_script(sink, STANDIN_ROUTE_PUSH, &rst);
	in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
		  "\"min_backoff_period\":\"10ms\",\"max_backoff_retries\":3}]}");
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, &err), COMPONENT_EDELIVERY);
	assert_prefix(err, "failed to push to endpoint a (3 retries): unavailable: ");
	free(err);
	ck_assert_int_eq(attempt_lines("a"), 3);
	ck_assert(th_logs_contain("warn Push size="));
	assert_dropped_once(&in, "a", 2, len);
	th_destroy(&in);
}
END_TEST

/* A server that stalls past remote_timeout: every attempt is cut at the
 * timeout, not at the server's pace. */
START_TEST(fault_stall_past_remote_timeout)
{
	struct standin_reply stall = {
		.status = 200, .content_type = "application/proto", .delay_ms = 2000, .times = 3};
	struct th_instance in =
		make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
		     "\"remote_timeout\":\"200ms\",\"min_backoff_period\":\"10ms\","
		     "\"max_backoff_period\":\"20ms\",\"max_backoff_retries\":3}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;
	double t0 = th_now_s(), dt;

	standin_script(sink, STANDIN_ROUTE_PUSH, &stall);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 10000, &err), COMPONENT_EDELIVERY);
	dt = th_now_s() - t0;
	ck_assert_str_eq(err,
			 "failed to push to endpoint a (3 retries): deadline_exceeded: context "
			 "deadline exceeded");
	free(err);
	ck_assert_msg(dt >= 0.55 && dt < 1.8, "three 200 ms attempts took %.3fs", dt);
	ck_assert_int_eq(standin_wait(sink, 3, 1000), 0);
	ck_assert_int_eq(attempt_lines("a"), 3);
	ck_assert(th_logs_contain("err=deadline_exceeded: context deadline exceeded"));
	assert_dropped_once(&in, "a", 2, len);
	th_destroy(&in);
}
END_TEST

START_TEST(fault_5xx_without_retry_after)
{
	struct standin_reply r500 = {.status = 500, .body = "oops", .content_type = "text/plain"};
	struct standin_reply r502 = {
		.status = 502, .body = "bad gateway", .content_type = "text/html"};
	struct th_instance in =
		make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
		     "\"min_backoff_period\":\"10ms\",\"max_backoff_retries\":5}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;
	double t0 = th_now_s();

	standin_script(sink, STANDIN_ROUTE_PUSH, &r500);
	standin_script(sink, STANDIN_ROUTE_PUSH, &r502);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, &err), COMPONENT_OK);
	ck_assert_ptr_null(err);
	/* Computed backoff: 10-20 ms, then 20-40 ms. */
	ck_assert_msg(th_now_s() - t0 < 1.0, "took %.3fs", th_now_s() - t0);
	ck_assert_int_eq(standin_count(sink), 3);
	ck_assert(th_logs_contain("retries=0 err=unknown: Internal Server Error"));
	ck_assert(th_logs_contain("retries=1 err=unavailable: Bad Gateway"));
	assert_sent_once(&in, "a", 2, len);
	th_destroy(&in);
}
END_TEST

/* Retry-After on 503 and 429 replaces the computed wait; on 500 it is not
 * looked at. */
START_TEST(fault_retry_after)
{
	struct standin_reply r503 = {.status = 503, .retry_after = "1", .body = "busy"};
	struct standin_reply r429 = {.status = 429, .retry_after = "1", .body = "slow down"};
	struct standin_reply r500 = {.status = 500, .retry_after = "30", .body = "oops"};
	struct th_instance in =
		make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
		     "\"min_backoff_period\":\"10ms\",\"max_backoff_period\":\"5s\"}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	double t0, dt;

	standin_script(sink, STANDIN_ROUTE_PUSH, &r429);
	t0 = th_now_s();
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 10000, NULL), COMPONENT_OK);
	dt = th_now_s() - t0;
	ck_assert_msg(dt >= 0.95 && dt < 3.0, "429 Retry-After: 1 waited %.3fs", dt);
	ck_assert(th_logs_contain("retries=0 err=unavailable: Too Many Requests"));

	standin_script(sink, STANDIN_ROUTE_PUSH, &r500);
	t0 = th_now_s();
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 10000, NULL), COMPONENT_OK);
	dt = th_now_s() - t0;
	ck_assert_msg(dt < 0.9, "500 with Retry-After waited %.3fs", dt);
	th_destroy(&in);

	/* Retry-After is capped at max_backoff_period. */
	in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
		  "\"min_backoff_period\":\"10ms\",\"max_backoff_period\":\"200ms\"}]}");
	r503.retry_after = "30";
	standin_script(sink, STANDIN_ROUTE_PUSH, &r503);
	t0 = th_now_s();
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 10000, NULL), COMPONENT_OK);
	dt = th_now_s() - t0;
	ck_assert_msg(dt >= 0.19 && dt < 1.5, "503 Retry-After: 30 capped at 200ms waited %.3fs",
		      dt);
	ck_assert_int_eq(standin_count(sink), 6);
	assert_sent_once(&in, "a", 1, len);
	th_destroy(&in);
}
END_TEST

/* 429 without Retry-After: computed backoff when retry_on_http_429, final
 * otherwise. */
START_TEST(fault_429_without_retry_after)
{
	struct standin_reply r429 = {.status = 429, .body = "slow down", .times = 2};
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
				     "\"min_backoff_period\":\"10ms\"}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;
	double t0 = th_now_s();

	standin_script(sink, STANDIN_ROUTE_PUSH, &r429);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 10000, NULL), COMPONENT_OK);
	ck_assert_msg(th_now_s() - t0 < 1.0, "took %.3fs", th_now_s() - t0);
	ck_assert_int_eq(standin_count(sink), 3);
	assert_sent_once(&in, "a", 2, len);
	th_destroy(&in);

	th_logs_clear();
	in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\",\"retry_on_http_429\":false,"
		  "\"min_backoff_period\":\"10ms\"}]}");
	r429.times = 1;
	standin_script(sink, STANDIN_ROUTE_PUSH, &r429);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 10000, &err), COMPONENT_EDELIVERY);
	ck_assert_str_eq(
		err, "failed to push to endpoint a (0 retries): unavailable: Too Many Requests");
	free(err);
	ck_assert_int_eq(standin_count(sink), 4);
	ck_assert_int_eq(attempt_lines("a"), 1);
	assert_dropped_once(&in, "a", 0, len);
	th_destroy(&in);
}
END_TEST

/* A 200 that is not a Connect answer (a proxy's HTML page) and a 500 whose
 * "JSON" body is garbage are both retried with a readable error. */
START_TEST(fault_garbage_response_bodies)
{
	struct standin_reply html = {
		.status = 200, .content_type = "text/html", .body = "<html>captive portal</html>"};
	struct standin_reply junk = {.status = 500,
				     .content_type = "application/json",
				     .body = "{\"code\":",
				     .times = 1};
	struct standin_reply bin = {.status = 503,
				    .content_type = "application/json",
				    .body = "\xff\xfe\x00\x01",
				    .body_len = 4,
				    .times = 1};
	struct th_instance in =
		make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
		     "\"min_backoff_period\":\"10ms\",\"max_backoff_retries\":3}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;

	standin_script(sink, STANDIN_ROUTE_PUSH, &html);
	standin_script(sink, STANDIN_ROUTE_PUSH, &junk);
	standin_script(sink, STANDIN_ROUTE_PUSH, &bin);
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, &err), COMPONENT_EDELIVERY);
	ck_assert_str_eq(err, "failed to push to endpoint a (3 retries): unavailable: Service "
			      "Unavailable");
	free(err);
	ck_assert(th_logs_contain("retries=0 err=unknown: invalid content-type: \"text/html\"; "
				  "expecting \"application/proto\""));
	ck_assert(th_logs_contain("retries=1 err=unknown: Internal Server Error"));
	ck_assert_int_eq(standin_count(sink), 3);
	assert_dropped_once(&in, "a", 2, len);
	th_destroy(&in);
}
END_TEST

/* Bytes that are not HTTP, and a 200 cut short before its Content-Length:
 * transport errors, retried, never counted as delivered. */
START_TEST(fault_garbage_and_truncated_http)
{
	static const enum raw_mode modes[] = {RAW_GARBAGE, RAW_TRUNCATED};

	for (size_t m = 0; m < 2; m++) {
		struct raw_server raw;
		struct th_instance in;
		size_t len;
		const uint8_t *prof = th_pprof_gz(&len);
		char *err = NULL;

		raw_start(&raw, modes[m]);
		th_logs_clear();
		in = make_url("{\"endpoint\":[{\"url\":\"{{URL}}\",\"name\":\"raw\","
			      "\"min_backoff_period\":\"10ms\",\"max_backoff_retries\":2}]}",
			      raw.url);
		ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, &err),
				 COMPONENT_EDELIVERY);
		assert_prefix(err, "failed to push to endpoint raw (2 retries): ");
		ck_assert_msg(strstr(err, "deadline") == NULL, "%s", err);
		free(err);
		/* libcurl may resend a request that got no answer at all. */
		ck_assert_int_ge(atomic_load(&raw.requests), 2);
		ck_assert_int_le(atomic_load(&raw.requests), 4);
		ck_assert_int_eq(attempt_lines("raw"), 2);
		ck_assert(th_logs_contain("warn Push size="));
		assert_dropped_once(&in, "raw", 1, len);
		th_destroy(&in);
		raw_stop(&raw);
	}
}
END_TEST

/* The server closes each keep-alive connection after answering, announced
 * (Connection: close) or silently: every push still succeeds at its first
 * attempt, on a fresh connection. */
START_TEST(fault_keepalive_closed_by_server)
{
	struct standin_reply closing = {
		.status = 200, .content_type = "application/proto", .close = true, .times = 5};
	struct th_instance in =
		make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
		     "\"min_backoff_period\":\"10ms\",\"max_backoff_retries\":1}]}");
	struct raw_server raw;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);

	standin_script(sink, STANDIN_ROUTE_PUSH, &closing);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, NULL), COMPONENT_OK);
		usleep(30000);
	}
	ck_assert_int_eq(standin_count(sink), 8);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "a"), 8);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_retries_total", "a"), 0);
	th_destroy(&in);

	raw_start(&raw, RAW_HANGUP);
	in = make_url("{\"endpoint\":[{\"url\":\"{{URL}}\",\"name\":\"raw\","
		      "\"min_backoff_period\":\"10ms\",\"max_backoff_retries\":1}]}",
		      raw.url);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 5000, NULL), COMPONENT_OK);
		usleep(i % 2 ? 50000 : 0);
	}
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "raw"), 8);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_retries_total", "raw"), 0);
	ck_assert_int_eq(atomic_load(&raw.requests), 8);
	ck_assert_int_eq(atomic_load(&raw.connections), 8);
	th_destroy(&in);
	raw_stop(&raw);
}
END_TEST

/* https:// against a plain-HTTP port: the TLS handshake fails, retried.
 * (The stand-in waits for a complete HTTP request and never answers a
 * ClientHello, so a plain server that answers at once stands in for it.) */
START_TEST(fault_tls_handshake)
{
	char url[64];
	struct th_instance in;
	struct raw_server raw;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;

	raw_start(&raw, RAW_PLAIN_400);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", raw.port);
	in = make_url("{\"endpoint\":[{\"url\":\"{{URL}}\",\"name\":\"tls\","
		      "\"min_backoff_period\":\"10ms\",\"max_backoff_retries\":2}]}",
		      url);
	/* A deadline far beyond the three attempts: under valgrind on a busy
	 * machine each TLS attempt can take seconds, and the count of retries
	 * is what is checked here. */
	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 60000, &err), COMPONENT_EDELIVERY);
	assert_prefix(err, "failed to push to endpoint tls (2 retries): unavailable: ");
	ck_assert_msg(strcasestr(err, "SSL") || strcasestr(err, "TLS"), "%s", err);
	free(err);
	ck_assert_int_eq(attempt_lines("tls"), 2);
	ck_assert_int_ge(atomic_load(&raw.connections), 2);
	assert_dropped_once(&in, "tls", 1, len);
	th_destroy(&in);
	raw_stop(&raw);
}
END_TEST

/* A name that can never resolve (RFC 2606 .invalid). */
START_TEST(fault_dns_failure)
{
	struct th_instance in =
		make("{\"endpoint\":[{\"url\":\"http://pyroscope.does-not-exist.invalid:4040\","
		     "\"name\":\"dns\",\"remote_timeout\":\"3s\","
		     "\"min_backoff_period\":\"10ms\",\"max_backoff_retries\":2}]}");
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	char *err = NULL;

	ck_assert_int_eq(th_push(&in, labels_basic, prof, len, 15000, &err), COMPONENT_EDELIVERY);
	assert_prefix(err, "failed to push to endpoint dns (2 retries): ");
	ck_assert_msg(strstr(err, "resolve") != NULL, "%s", err);
	free(err);
	ck_assert_int_eq(attempt_lines("dns"), 2);
	ck_assert(th_logs_contain("err=unavailable: "));
	assert_dropped_once(&in, "dns", 1, len);
	th_destroy(&in);
}
END_TEST

struct cb_count {
	atomic_int calls;
	atomic_int ok;
	atomic_int overload;
	pthread_mutex_t lock;
	char *last_error;
};

static void cb_count_init(struct cb_count *c)
{
	atomic_init(&c->calls, 0);
	atomic_init(&c->ok, 0);
	atomic_init(&c->overload, 0);
	pthread_mutex_init(&c->lock, NULL);
	c->last_error = NULL;
}

static void cb_count_free(struct cb_count *c)
{
	pthread_mutex_destroy(&c->lock);
	free(c->last_error);
}

static void count_done(void *user, const struct pw_result *r)
{
	struct cb_count *c = user;

	if (r->status == COMPONENT_OK)
		atomic_fetch_add(&c->ok, 1);
	if (r->status == COMPONENT_EOVERLOAD)
		atomic_fetch_add(&c->overload, 1);
	if (r->error) {
		pthread_mutex_lock(&c->lock);
		free(c->last_error);
		c->last_error = strdup(r->error);
		pthread_mutex_unlock(&c->lock);
	}
	atomic_fetch_add(&c->calls, 1);
}

static int wait_calls(atomic_int *calls, int n, int timeout_ms)
{
	for (int waited = 0; atomic_load(calls) < n; waited += 5) {
		if (waited >= timeout_ms)
			return -1;
		usleep(5000);
	}
	return 0;
}

static int push_async(struct th_instance *in, const uint8_t *data, size_t len, int64_t timeout_ms,
		      pw_done_fn done, void *user)
{
	struct pw_label l[] = {{"service_name", "svc"}, {"__name__", "process_cpu"}};
	struct pw_sample s = {data, len, NULL};
	struct pw_push p = {sizeof(p), l, 2, &s, 1};

	return in->rx->push_async(in->rx->ctx, &p, th_deadline(timeout_ms), done, user);
}

/* One endpoint stalls on every request; the healthy one beside it gets
 * every profile as fast as if it were alone. */
START_TEST(healthy_endpoint_beside_failing_one)
{
	struct standin_reply stall = {.status = 503, .delay_ms = 1500, .times = 1000};
	struct th_instance in =
		make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"good\"},"
		     "{\"url\":\"{{B}}\",\"name\":\"bad\",\"remote_timeout\":\"400ms\","
		     "\"min_backoff_period\":\"10ms\",\"max_backoff_retries\":3}]}");
	const int n = 20;
	struct cb_count cc;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	double t0;

	cb_count_init(&cc);
	standin_script(sink2, STANDIN_ROUTE_PUSH, &stall);
	t0 = th_now_s();
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(push_async(&in, prof, len, 20000, count_done, &cc), COMPONENT_OK);
	/* All of them are delivered to the healthy endpoint well inside one
	 * attempt of the stalled one. */
	while (th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "good") < n &&
	       th_now_s() - t0 < 10)
		usleep(2000);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "good"), n);
	ck_assert_msg(th_now_s() - t0 < (th_under_valgrind() ? 5.0 : 0.35),
		      "healthy endpoint took %.3fs", th_now_s() - t0);
	ck_assert_int_eq(atomic_load(&cc.calls), 0);
	ck_assert_int_eq(wait_calls(&cc.calls, n, 20000), 0);
	ck_assert_int_eq(atomic_load(&cc.ok), 0);
	ck_assert_str_eq(cc.last_error,
			 "failed to push to endpoint bad (3 retries): deadline_exceeded: "
			 "context deadline exceeded");
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "good"), n);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_dropped_profiles_total", "good"), 0);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_dropped_profiles_total", "bad"), n);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "bad"), 0);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_retries_total", "bad"), 2 * n);
	th_destroy(&in);
	cb_count_free(&cc);
}
END_TEST

/*
 * A push waiting for a connection slot leaves at its deadline, from the
 * middle of the queue, while the request ahead of it still stalls; the
 * ones before and after it in the queue are delivered.
 */
START_TEST(queued_push_leaves_at_its_deadline)
{
	struct standin_reply stall = {
		.status = 200, .content_type = "application/proto", .delay_ms = 3000};
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
				     "\"max_connections\":1,\"remote_timeout\":\"10s\"}]}");
	struct cb_count first, mid, last;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);

	cb_count_init(&first);
	cb_count_init(&mid);
	cb_count_init(&last);
	standin_script(sink, STANDIN_ROUTE_PUSH, &stall);
	ck_assert_int_eq(push_async(&in, prof, len, 20000, count_done, &first), COMPONENT_OK);
	ck_assert_int_eq(standin_wait(sink, 1, 5000), 0);
	ck_assert_int_eq(push_async(&in, prof, len, 200, count_done, &mid), COMPONENT_OK);
	ck_assert_int_eq(push_async(&in, prof, len, 20000, count_done, &last), COMPONENT_OK);
	ck_assert_int_eq(wait_calls(&mid.calls, 1, 20000), 0);
	/* Out before the stalled request ahead of it has ended. */
	ck_assert_int_eq(atomic_load(&first.calls), 0);
	ck_assert_int_eq(atomic_load(&mid.ok), 0);
	ck_assert_str_eq(mid.last_error,
			 "failed to push to endpoint a (0 retries): deadline_exceeded: "
			 "context deadline exceeded");
	ck_assert_int_eq(wait_calls(&first.calls, 1, 20000), 0);
	ck_assert_int_eq(wait_calls(&last.calls, 1, 20000), 0);
	ck_assert_int_eq(atomic_load(&first.ok), 1);
	ck_assert_int_eq(atomic_load(&last.ok), 1);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "a"), 2);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_dropped_profiles_total", "a"), 1);
	th_destroy(&in);
	cb_count_free(&first);
	cb_count_free(&mid);
	cb_count_free(&last);
}
END_TEST

/*
 * One stalled request must not hold back the others to the same endpoint
 * while connection slots are free (max_connections).
 *
 * (PIPEWAIT on HTTP/1.1 once parked every new transfer behind the first
 * connection's answer; the engine now asks for it only where HTTP/2 can be
 * negotiated.)
 */
START_TEST(stall_does_not_block_other_requests)
{
	struct standin_reply stall = {.status = 503, .delay_ms = 1500};
	struct th_instance in = make("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
				     "\"max_connections\":4,\"remote_timeout\":\"5s\"}]}");
	struct cb_count cc;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);

	cb_count_init(&cc);
	standin_script(sink, STANDIN_ROUTE_PUSH, &stall);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(push_async(&in, prof, len, 10000, count_done, &cc), COMPONENT_OK);
		usleep(20000);
	}
	ck_assert_msg(standin_wait(sink, 3, 700) == 0,
		      "only %zu of 3 requests reached the server "
		      "while the first one stalled",
		      standin_count(sink));
	ck_assert_int_eq(wait_calls(&cc.calls, 3, 10000), 0);
	th_destroy(&in);
	cb_count_free(&cc);
}
END_TEST

/* ---- nothing lost without being counted ---- */

struct tally {
	atomic_int calls;
	atomic_int dropped_a, dropped_b;
	atomic_int twice; /* a callback that fired more than once */
	atomic_int *per_call;
};

struct tally_ref {
	struct tally *t;
	int idx;
};

static void tally_done(void *user, const struct pw_result *r)
{
	struct tally_ref *ref = user;
	struct tally *t = ref->t;

	if (atomic_fetch_add(&t->per_call[ref->idx], 1) != 0)
		atomic_fetch_add(&t->twice, 1);
	if (r->error && strstr(r->error, "failed to push to endpoint a ("))
		atomic_fetch_add(&t->dropped_a, 1);
	if (r->error && strstr(r->error, "failed to push to endpoint b ("))
		atomic_fetch_add(&t->dropped_b, 1);
	atomic_fetch_add(&t->calls, 1);
}

/* Queues a random mix of faults and scripted successes; returns how many
 * resets it queued (each may be resent once by libcurl itself). */
/* A stall must outlast remote_timeout; both grow under valgrind, where a
 * 150 ms budget would also cut answers the server did send. */
static const char *fault_timeout(void)
{
	return th_under_valgrind() ? "3s" : "150ms";
}

static int fault_stall_ms(void)
{
	return th_under_valgrind() ? 6000 : 400;
}

static int script_random(struct standin *s, unsigned *seed, int n)
{
	int resets = 0;

	for (int i = 0; i < n; i++) {
		struct standin_reply r = {0};

		switch (rand_r(seed) % 8) {
		case 0:
			r.status = 500;
			break;
		case 1:
			r.status = 503;
			r.retry_after = "0";
			break;
		case 2:
			r.status = 429;
			break;
		case 3:
			r.reset = true;
			resets++;
			break;
		case 4:
			r.status = 503; /* past remote_timeout: cut by the client */
			r.delay_ms = fault_stall_ms();
			break;
		case 5:
			r.status = 400; /* final: the endpoint gives up at once */
			r.body = "bad request";
			break;
		default:
			r.status = 200;
			r.content_type = "application/proto";
			break;
		}
		standin_script(s, STANDIN_ROUTE_PUSH, &r);
	}
	return resets;
}

static size_t recorded_ok(struct standin *s)
{
	size_t n = 0;

	for (size_t i = 0;; i++) {
		struct standin_request *r = standin_request_get(s, i);

		if (!r)
			break;
		if (r->status == 200)
			n++;
		standin_request_free(r);
	}
	return n;
}

START_TEST(nothing_lost_through_random_faults)
{
	const int n = th_under_valgrind() ? 40 : 300;
	char *tmpl = th_subst("{\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\","
			      "\"remote_timeout\":\"{{T}}\",\"min_backoff_period\":\"5ms\","
			      "\"max_backoff_period\":\"40ms\",\"max_backoff_retries\":3},"
			      "{\"url\":\"{{B}}\",\"name\":\"b\",\"remote_timeout\":\"{{T}}\","
			      "\"min_backoff_period\":\"5ms\",\"max_backoff_period\":\"40ms\","
			      "\"max_backoff_retries\":4,\"max_connections\":4}]}",
			      "{{T}}", fault_timeout());
	struct th_instance in = make(tmpl);
	struct tally t = {0};
	struct tally_ref *refs = calloc((size_t)n, sizeof(*refs));
	unsigned seed = 20240611;
	int resets_a, resets_b;
	size_t len;
	const uint8_t *prof = th_pprof_gz(&len);
	const char *ep[2] = {"a", "b"};
	struct standin *sk[2] = {sink, sink2};

	t.per_call = calloc((size_t)n, sizeof(*t.per_call));
	ck_assert_ptr_nonnull(refs);
	ck_assert_ptr_nonnull(t.per_call);
	resets_a = script_random(sink, &seed, 2 * n);
	resets_b = script_random(sink2, &seed, 2 * n);
	for (int i = 0; i < n; i++) {
		refs[i].t = &t;
		refs[i].idx = i;
		ck_assert_int_eq(push_async(&in, prof, len, 60000, tally_done, &refs[i]),
				 COMPONENT_OK);
		if (i % 16 == 0)
			usleep(2000);
	}
	ck_assert_int_eq(wait_calls(&t.calls, n, 60000), 0);
	usleep(50000);
	ck_assert_int_eq(atomic_load(&t.calls), n);
	ck_assert_int_eq(atomic_load(&t.twice), 0);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(atomic_load(&t.per_call[i]), 1);

	for (int e = 0; e < 2; e++) {
		double sent = th_ep_metric(&in, "pyroscope_write_sent_profiles_total", ep[e]);
		double dropped = th_ep_metric(&in, "pyroscope_write_dropped_profiles_total", ep[e]);
		double retries = th_ep_metric(&in, "pyroscope_write_retries_total", ep[e]);
		double sent_b = th_ep_metric(&in, "pyroscope_write_sent_bytes_total", ep[e]);
		double dropped_b = th_ep_metric(&in, "pyroscope_write_dropped_bytes_total", ep[e]);
		int cb_dropped = atomic_load(e == 0 ? &t.dropped_a : &t.dropped_b);
		size_t requests = standin_count(sk[e]);
		int resets = e == 0 ? resets_a : resets_b;

		ck_assert_double_eq(sent + dropped, n);
		ck_assert_double_eq(sent_b + dropped_b, (double)n * (double)len);
		ck_assert_double_eq(dropped, cb_dropped);
		/* Every 200 the server gave was counted once as sent: no
		 * duplicate of an acknowledged request. */
		ck_assert_double_eq(sent, (double)recorded_ok(sk[e]));
		/* One request per attempt, plus at most one resend by libcurl
		 * per reset connection. */
		ck_assert_double_ge((double)requests, n + retries);
		ck_assert_double_le((double)requests, n + retries + resets);
		ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_inflight_requests", ep[e]),
				    0);
		ck_assert_msg(sent > 0 && dropped > 0,
			      "endpoint %s: sent %g dropped %g: the faults "
			      "should produce both",
			      ep[e], sent, dropped);
	}
	th_destroy(&in);
	free(tmpl);
	free(refs);
	free(t.per_call);
}
END_TEST

/* ---- bounded memory ---- */

START_TEST(inflight_bytes_are_bounded)
{
	struct standin_reply slow = {
		.status = 200, .content_type = "application/proto", .delay_ms = 600, .times = 2};
	struct th_instance in = make("{\"max_inflight_bytes\":4096,"
				     "\"endpoint\":[{\"url\":\"{{A}}\",\"name\":\"a\"}]}");
	static uint8_t big[1500];
	struct cb_count cc;
	double t0, dt;

	memset(big, 'x', sizeof(big));
	cb_count_init(&cc);
	standin_script(sink, STANDIN_ROUTE_PUSH, &slow);
	/* Two ~1.5 KiB requests fit under 4 KiB; the third does not. */
	ck_assert_int_eq(push_async(&in, big, sizeof(big), 10000, count_done, &cc), COMPONENT_OK);
	ck_assert_int_eq(push_async(&in, big, sizeof(big), 10000, count_done, &cc), COMPONENT_OK);
	t0 = th_now_s();
	ck_assert_int_eq(push_async(&in, big, sizeof(big), 10000, count_done, &cc), COMPONENT_OK);
	dt = th_now_s() - t0;
	/* Refused before push_async returned: fail fast, no waiting. */
	ck_assert_int_eq(atomic_load(&cc.calls), 1);
	ck_assert_int_eq(atomic_load(&cc.overload), 1);
	ck_assert_msg(dt < 0.1, "refusal took %.3fs", dt);
	ck_assert_ptr_nonnull(strstr(cc.last_error, "max_inflight_bytes"));
	ck_assert_ptr_nonnull(strstr(cc.last_error, "(4096)"));
	ck_assert(th_logs_contain("warn profile dropped err=profile dropped: "));
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_dropped_profiles_total", "a"), 1);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_dropped_bytes_total", "a"),
			    sizeof(big));

	/* Once the two under way finish, the room is back. The reservation
	 * is released just after the completion callback returns, so give
	 * the I/O thread a moment. */
	ck_assert_int_eq(wait_calls(&cc.calls, 3, 10000), 0);
	ck_assert_int_eq(atomic_load(&cc.ok), 2);
	usleep(100000);
	slow.delay_ms = 0;
	slow.times = 1;
	standin_script(sink, STANDIN_ROUTE_PUSH, &slow);
	ck_assert_int_eq(push_async(&in, big, sizeof(big), 10000, count_done, &cc), COMPONENT_OK);
	ck_assert_int_eq(wait_calls(&cc.calls, 4, 10000), 0);
	ck_assert_msg(atomic_load(&cc.ok) == 3, "%s", cc.last_error);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_sent_profiles_total", "a"), 3);
	th_destroy(&in);
	cb_count_free(&cc);
}
END_TEST

/* An endpoint down for good and a producer that keeps pushing: the number
 * of profiles held stays under the cap, the rest are refused and counted,
 * and every one is accounted for. */
START_TEST(outage_does_not_grow_memory)
{
	const int n = th_under_valgrind() ? 100 : 2000;
	struct th_instance in =
		make("{\"max_inflight_bytes\":16384,\"shutdown_timeout\":\"0s\","
		     "\"endpoint\":[{\"url\":\"http://127.0.0.1:1\",\"name\":\"down\","
		     "\"min_backoff_period\":\"10s\",\"max_backoff_period\":\"10s\"}]}");
	static uint8_t blob[1000];
	struct cb_count cc;
	int accepted;

	memset(blob, 'y', sizeof(blob));
	cb_count_init(&cc);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(push_async(&in, blob, sizeof(blob), 0, count_done, &cc),
				 COMPONENT_OK);
	accepted = n - atomic_load(&cc.overload);
	/* Each request holds a little over 1000 bytes: at most 16 fit. */
	ck_assert_int_le(accepted, 16);
	ck_assert_int_ge(accepted, 10);
	ck_assert_int_eq(atomic_load(&cc.calls), n - accepted);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_dropped_profiles_total", "down"),
			    n - accepted);
	/* The I/O thread counts a delivery in flight once it has picked it up;
	 * give it time to (valgrind slows it down a lot). */
	for (int i = 0;
	     i < 1000 && th_ep_metric(&in, "pyroscope_write_inflight_requests", "down") != accepted;
	     i++)
		usleep(10000);
	ck_assert_double_eq(th_ep_metric(&in, "pyroscope_write_inflight_requests", "down"),
			    accepted);
	th_destroy(&in);
	/* The ones held were cancelled at destroy and counted too. */
	ck_assert_int_eq(atomic_load(&cc.calls), n);
	cb_count_free(&cc);
}
END_TEST

static Suite *faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("faults");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, fault_connection_refused);
	tcase_add_test(tc, fault_reset_mid_request);
	tcase_add_test(tc, fault_stall_past_remote_timeout);
	tcase_add_test(tc, fault_5xx_without_retry_after);
	tcase_add_test(tc, fault_retry_after);
	tcase_add_test(tc, fault_429_without_retry_after);
	tcase_add_test(tc, fault_garbage_response_bodies);
	tcase_add_test(tc, fault_garbage_and_truncated_http);
	tcase_add_test(tc, fault_keepalive_closed_by_server);
	tcase_add_test(tc, fault_tls_handshake);
	tcase_add_test(tc, fault_dns_failure);
	tcase_add_test(tc, healthy_endpoint_beside_failing_one);
	tcase_add_test(tc, stall_does_not_block_other_requests);
	tcase_add_test(tc, queued_push_leaves_at_its_deadline);
	tcase_add_test(tc, nothing_lost_through_random_faults);
	tcase_add_test(tc, inflight_bytes_are_bounded);
	tcase_add_test(tc, outage_does_not_grow_memory);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(faults_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
