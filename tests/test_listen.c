/*
 * test_listen.c - the network listener of `mockhost run` as an attacker and
 * as real clients meet it: a real `mockhost run` process on loopback,
 * driven with raw sockets (framing, slow clients, bursts), curl and openssl
 * (TLS).
 *
 * The suite "listen" holds the quick cases; "listen-slow" (suite `slow`)
 * the slow-client and burst ones.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/gzip.h"
#include "hostutil.h"
#include "strbuf.h"
#include "labels.h"
#include "proto.h"
#include "standin/standin.h"
#include "strbuf.h"

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the process under test ---- */

static struct {
	char dir[64];
	char cfg[128];
	pid_t pid;
	int out_fd;
	int port;
	struct standin *down;
	int stall_fd; /* a downstream that accepts and never answers */
} E;

static void write_config(const char *url, long long max_inflight)
{
	FILE *f = fopen(E.cfg, "w");

	ck_assert_ptr_nonnull(f);
	fprintf(f, "{\"endpoint\":[{\"url\":\"%s\",\"max_backoff_retries\":0}]", url);
	if (max_inflight)
		fprintf(f, ",\"max_inflight_bytes\":%lld", max_inflight);
	fputs("}\n", f);
	ck_assert_int_eq(fclose(f), 0);
}

/* Starts the live downstream (the stand-in) and writes a config for it. */
static void env_init(long long max_inflight)
{
	struct standin_opts so = {0};
	char *err = NULL;

	memset(&E, 0, sizeof(E));
	E.stall_fd = -1;
	snprintf(E.dir, sizeof(E.dir), "/tmp/pw-listen-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(E.dir));
	snprintf(E.cfg, sizeof(E.cfg), "%s/config.json", E.dir);
	E.down = standin_start(&so, &err);
	ck_assert_msg(E.down != NULL, "%s", err ? err : "");
	write_config(standin_url(E.down), max_inflight);
}

/* A listening socket nobody accepts on: connections complete in the
 * kernel's backlog and requests are never answered. */
static void env_stall(long long max_inflight)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	char url[64];

	E.stall_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(E.stall_fd, 0);
	ck_assert_int_eq(bind(E.stall_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(E.stall_fd, 4096), 0);
	ck_assert_int_eq(getsockname(E.stall_fd, (struct sockaddr *)&a, &len), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	write_config(url, max_inflight);
}

static void env_run(const char *const *extra)
{
	const char *argv[40];
	char line[256], errfile[128];
	size_t n = 0, k = 0;
	int fds[2];
	int64_t until = mono_ms() + 15000;
	const char *colon;

	argv[k++] = getenv("PW_MOCKHOST");
	argv[k++] = "--plugin";
	argv[k++] = getenv("PW_PLUGIN");
	argv[k++] = "run";
	argv[k++] = "--config";
	argv[k++] = E.cfg;
	argv[k++] = "--listen";
	argv[k++] = "127.0.0.1:0";
	for (size_t i = 0; extra && extra[i] && k < 38; i++)
		argv[k++] = extra[i];
	argv[k] = NULL;
	snprintf(errfile, sizeof(errfile), "%s/run.err", E.dir);
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	E.pid = fork();
	ck_assert_int_ge(E.pid, 0);
	if (E.pid == 0) {
		int efd = open(errfile, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(fds[1], 1);
		if (efd >= 0)
			dup2(efd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	E.out_fd = fds[0];
	while (n + 1 < sizeof(line)) {
		struct pollfd pf = {.fd = E.out_fd, .events = POLLIN};

		ck_assert(poll(&pf, 1, 1000) >= 0);
		ck_assert_msg(mono_ms() < until, "mockhost run did not start (see %s)", errfile);
		if (!(pf.revents & (POLLIN | POLLHUP)))
			continue;
		ck_assert_msg(read(E.out_fd, line + n, 1) == 1, "mockhost run exited (see %s)",
			      errfile);
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	colon = strrchr(line, ':');
	ck_assert_msg(colon != NULL, "unexpected first line \"%s\"", line);
	E.port = atoi(colon + 1);
}

/* Stops the process (SIGTERM, exit 0 expected) and everything else. */
static void env_fini(void)
{
	int status = 0;
	char cmd[128];

	if (E.pid > 0) {
		kill(E.pid, SIGTERM);
		ck_assert_int_eq(waitpid(E.pid, &status, 0), E.pid);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d",
			      status);
		close(E.out_fd);
	}
	standin_stop(E.down);
	if (E.stall_fd >= 0)
		close(E.stall_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", E.dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A field of /proc/PID/status, in its unit (kB for memory). */
static long proc_field(const char *name)
{
	char path[64], line[256];
	size_t n = strlen(name);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)E.pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, name, n) == 0 && line[n] == ':')
			v = atol(line + n + 1);
	fclose(f);
	return v;
}

/* ---- raw HTTP ---- */

static int tcp_connect(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)E.port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s",
		      strerror(errno));
	return fd;
}

static void send_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return; /* the server may close early: what it answered tells */
		p += n;
		len -= (size_t)n;
	}
}

/* Reads until the server closes or nothing comes for quiet_ms. */
static char *recv_all(int fd, int quiet_ms, size_t *len)
{
	struct strbuf sb;
	char buf[65536];

	strbuf_init(&sb, 64 << 20);
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pf, 1, quiet_ms) <= 0)
			break;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		strbuf_append(&sb, buf, (size_t)n);
	}
	strbuf_putc(&sb, '\0');
	return strbuf_detach(&sb, len);
}

/* Sends a raw request (len bytes) and returns what came back. */
static char *raw(const void *req, size_t len, int quiet_ms)
{
	int fd = tcp_connect();
	size_t n;
	char *out;

	send_all(fd, req, len);
	out = recv_all(fd, quiet_ms, &n);
	close(fd);
	return out;
}

static int status_of(const char *resp)
{
	int code = 0;

	if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1)
		return 0;
	return code;
}

static int raw_status(const char *req, size_t len)
{
	char *out = raw(req, len, 2000);
	int code = status_of(out);

	free(out);
	return code;
}

#define RAW(s) raw_status(s, sizeof(s) - 1)

/* A value from the host's /metrics. */
static double metric(const char *series)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	char *out = raw(req, sizeof(req) - 1, 5000);
	const char *p = strstr(out, series);
	double v = -1;

	if (p && p[strlen(series)] == ' ')
		v = strtod(p + strlen(series) + 1, NULL);
	free(out);
	return v;
}

static double rejected(const char *reason)
{
	char series[128];

	snprintf(series, sizeof(series), "mockhost_http_rejected_total{reason=\"%s\"}", reason);
	return metric(series);
}

static int64_t timed_healthy_ms(void)
{
	static const char req[] = "GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	int64_t t0 = mono_ms();
	char *out = raw(req, sizeof(req) - 1, 5000);

	ck_assert_msg(status_of(out) == 200, "healthy: %.80s", out);
	free(out);
	return mono_ms() - t0;
}

/* A Connect push of one series to the live downstream; its duration. */
static int64_t timed_push_ms(void)
{
	struct pw_kv items[2] = {{"__name__", "process_cpu"}, {"service_name", "svc"}};
	struct pw_labelset ls = {items, 2};
	struct pw_sample s = {NULL, 0, NULL};
	uint8_t *body = NULL;
	size_t len;
	char head[256], *out;
	int64_t t0;
	int fd;

	s.data = th_pprof_gz(&s.len);
	ck_assert_int_eq(pw_proto_encode_push(&ls, &s, 1, &body, &len), 0);
	snprintf(head, sizeof(head),
		 "POST /push.v1.PusherService/Push HTTP/1.1\r\nHost: x\r\nContent-Type: "
		 "application/proto\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n",
		 len);
	t0 = mono_ms();
	fd = tcp_connect();
	send_all(fd, head, strlen(head));
	send_all(fd, body, len);
	out = recv_all(fd, 5000, &len);
	close(fd);
	ck_assert_msg(status_of(out) == 200, "push: %.200s", out);
	free(out);
	free(body);
	return mono_ms() - t0;
}

/* ---- framing ---- */

START_TEST(test_smuggling_shapes_are_400)
{
	env_init(0);
	env_run(NULL);
	/* A NUL, a bare LF or a bare CR inside a header value. */
	ck_assert_int_eq(RAW("GET /-/ready HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"), 400);
	ck_assert_int_eq(RAW("GET /-/ready HTTP/1.1\r\nHost: x\r\nX-A: a\nX-B: b\r\n\r\n"), 400);
	ck_assert_int_eq(RAW("GET /-/ready HTTP/1.1\r\nHost: x\r\nX-A: a\rX-B: b\r\n\r\n"), 400);
	ck_assert_int_eq(RAW("GET /-/ready HTTP/1.1\nHost: x\r\n\r\n"), 400);
	ck_assert_int_eq(RAW("GET /-/ready HTTP/1.1\r\nHost: x\r\nX-A: a\x01z\r\n\r\n"), 400);
	/* The NUL would otherwise hide the Content-Length after it. */
	ck_assert_int_eq(RAW("POST /ingest?name=a HTTP/1.1\r\nHost: x\r\nX-A: \0\r\n"
			     "Content-Length: 5\r\n\r\nGET /"),
			 400);
	/* Content-Length with Transfer-Encoding, two of either, odd codings. */
	ck_assert_int_eq(RAW("POST /-/ready HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
			     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
			 400);
	ck_assert_int_eq(RAW("POST /-/ready HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
			     "Transfer-Encoding: identity\r\n\r\n0\r\n\r\n"),
			 400);
	ck_assert_int_eq(RAW("POST /-/ready HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, "
			     "chunked\r\n\r\n0\r\n\r\n"),
			 400);
	ck_assert_int_eq(RAW("POST /-/ready HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
			     "Content-Length: 2\r\n\r\nab"),
			 400);
	/* Chunk sizes a proxy may read otherwise. */
	ck_assert_int_eq(RAW("POST /-/ready HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
			     "\r\n0x5\r\nhello\r\n0\r\n\r\n"),
			 400);
	ck_assert_int_eq(RAW("POST /-/ready HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
			     "\r\n+5\r\nhello\r\n0\r\n\r\n"),
			 400);
	ck_assert_int_eq(RAW("POST /-/ready HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
			     "\r\n-5\r\nhello\r\n0\r\n\r\n"),
			 400);
	/* Methods are case-sensitive; a space in a field name. */
	ck_assert_int_eq(RAW("get /-/ready HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
	ck_assert_int_eq(RAW("GET /-/ready HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n"), 400);
	ck_assert_double_eq(rejected("bad_request"), 15);
	env_fini();
}
END_TEST

START_TEST(test_chunked_pipelined_http10_work)
{
	static const char pipelined[] = "GET /-/ready HTTP/1.1\r\nHost: x\r\n\r\n"
					"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
					"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n";
	char *out;
	const char *a, *b, *c;

	env_init(0);
	env_run(NULL);
	ck_assert_int_eq(RAW("POST /-/ready HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
			     "\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"),
			 200);
	ck_assert_int_eq(RAW("GET /-/ready HTTP/1.0\r\n\r\n"), 200);
	/* Three requests in one write: three answers, in order. */
	out = raw(pipelined, sizeof(pipelined) - 1, 1000);
	a = strstr(out, "HTTP/1.1 200 OK");
	b = strstr(out, "HTTP/1.1 404 Not Found");
	c = a ? strstr(a + 1, "HTTP/1.1 200 OK") : NULL;
	ck_assert_msg(a && b && c && a < b && b < c, "%s", out);
	ck_assert(strstr(out, "ready\n") < b && strstr(c, "ok\n"));
	free(out);
	env_fini();
}
END_TEST

/* An ingest through the whole path, chunked and with 100-continue. */
START_TEST(test_ingest_chunked_and_expect_continue)
{
	size_t plen;
	const uint8_t *prof = th_pprof_gz(&plen);
	char head[512], *out;
	size_t n;
	int fd;

	env_init(0);
	env_run(NULL);
	snprintf(head, sizeof(head),
		 "POST /ingest?name=app.cpu&format=pprof HTTP/1.1\r\nHost: x\r\n"
		 "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n"
		 "Expect: 100-continue\r\nConnection: close\r\n\r\n",
		 plen);
	fd = tcp_connect();
	send_all(fd, head, strlen(head));
	out = recv_all(fd, 2000, &n);
	ck_assert_msg(status_of(out) == 100, "%s", out);
	free(out);
	send_all(fd, prof, plen);
	out = recv_all(fd, 5000, &n);
	close(fd);
	ck_assert_msg(status_of(out) == 200, "%s", out);
	free(out);

	snprintf(head, sizeof(head),
		 "POST /ingest?name=app.cpu&format=pprof HTTP/1.1\r\nHost: x\r\n"
		 "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n"
		 "Connection: close\r\n\r\n%zx\r\n",
		 plen);
	fd = tcp_connect();
	send_all(fd, head, strlen(head));
	send_all(fd, prof, plen);
	send_all(fd, "\r\n0\r\n\r\n", 7);
	out = recv_all(fd, 5000, &n);
	close(fd);
	ck_assert_msg(status_of(out) == 200, "%s", out);
	free(out);
	env_fini();
}
END_TEST

/* ---- oversized input ---- */

START_TEST(test_oversized_head_and_body)
{
	static const char big_cl[] = "POST /ingest?name=a HTTP/1.1\r\nHost: x\r\n"
				     "Content-Length: 200000000\r\n\r\n";
	size_t hlen = 1 << 20;
	char *head = malloc(hlen + 64), *out;
	size_t n;
	int fd;

	env_init(0);
	env_run(NULL);
	/* 413 from the head alone: nothing of the body was sent. */
	fd = tcp_connect();
	send_all(fd, big_cl, sizeof(big_cl) - 1);
	out = recv_all(fd, 2000, &n);
	ck_assert_msg(status_of(out) == 413, "%s", out);
	free(out);
	close(fd);
	ck_assert_double_eq(rejected("body_too_large"), 1);

	/* A 1 MB header line. */
	memcpy(head, "GET /-/ready HTTP/1.1\r\nX-A: ", 28);
	memset(head + 28, 'a', hlen);
	memcpy(head + 28 + hlen, "\r\n\r\n", 4);
	out = raw(head, hlen + 32, 2000);
	ck_assert_msg(status_of(out) == 431, "%.100s", out);
	free(out);
	/* Just over --max-header-size, within libmicrohttpd's memory. */
	memset(head + 28, 'a', 20000);
	memcpy(head + 28 + 20000, "\r\n\r\n", 4);
	out = raw(head, 20032, 2000);
	ck_assert_msg(status_of(out) == 431, "%.100s", out);
	free(out);
	ck_assert_double_ge(rejected("header_too_large"), 1);
	ck_assert_double_ge(rejected("header_too_large") + rejected("head_invalid"), 2);
	free(head);
	env_fini();
}
END_TEST

/* A head under --max-header-size is served however many fields it has:
 * libmicrohttpd keeps a record per field beside the head in its
 * per-connection memory, which must leave room for them. */
START_TEST(test_head_of_many_fields_within_limit)
{
	struct strbuf sb = {0};
	char *out;

	env_init(0);
	env_run(NULL);
	strbuf_puts(&sb, "GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
	/* 140 fields of 100 bytes: 14 KB, under the default 16 KiB. */
	for (int i = 0; i < 140; i++)
		strbuf_printf(&sb, "X-Field-%03d: %086d\r\n", i, i);
	strbuf_puts(&sb, "\r\n");
	ck_assert_uint_lt(sb.len, 16384);
	out = raw(sb.data, sb.len, 2000);
	ck_assert_msg(status_of(out) == 200, "%.100s", out);
	free(out);
	ck_assert_double_eq(rejected("head_invalid"), 0);
	strbuf_free(&sb);
	env_fini();
}
END_TEST

/* A body that does not fit what is left of max_inflight_bytes is refused
 * from its head: 429, no 100 Continue, body unread. */
START_TEST(test_budget_refuses_before_reading)
{
	static const char req[] = "POST /ingest?name=a HTTP/1.1\r\nHost: x\r\n"
				  "Content-Length: 2000000\r\nExpect: 100-continue\r\n\r\n";
	char *out;
	size_t n;
	int fd;

	env_init(1 << 20);
	env_run(NULL);
	fd = tcp_connect();
	send_all(fd, req, sizeof(req) - 1);
	out = recv_all(fd, 2000, &n);
	close(fd);
	ck_assert_msg(status_of(out) == 429, "%s", out);
	ck_assert_ptr_null(strstr(out, "100 Continue"));
	free(out);
	ck_assert_double_eq(rejected("budget"), 1);
	env_fini();
}
END_TEST

/* A gzip'd push is inflated only within what is left of the budget. */
START_TEST(test_inflated_push_counts_against_budget)
{
	struct pw_kv items[2] = {{"__name__", "process_cpu"}, {"service_name", "svc"}};
	struct pw_labelset ls = {items, 2};
	size_t zero_len = 2 << 20, len, zlen, n;
	uint8_t *zeros = calloc(1, zero_len), *body = NULL, *z = NULL;
	struct pw_sample smp = {zeros, zero_len, NULL};
	char head[256], *out;
	int fd;

	env_init(1 << 20);
	env_run(NULL);
	ck_assert_int_eq(pw_proto_encode_push(&ls, &smp, 1, &body, &len), 0);
	ck_assert_int_eq(pwx_gzip(body, len, &z, &zlen), 0);
	ck_assert_uint_lt(zlen, 64 * 1024);
	snprintf(head, sizeof(head),
		 "POST /push.v1.PusherService/Push HTTP/1.1\r\nHost: x\r\nContent-Type: "
		 "application/proto\r\nContent-Encoding: gzip\r\nConnection: close\r\n"
		 "Content-Length: %zu\r\n\r\n",
		 zlen);
	fd = tcp_connect();
	send_all(fd, head, strlen(head));
	send_all(fd, z, zlen);
	out = recv_all(fd, 5000, &n);
	close(fd);
	ck_assert_msg(status_of(out) == 429, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "resource_exhausted"));
	free(out);
	free(z);
	free(body);
	free(zeros);
	env_fini();
}
END_TEST

/* ---- connections ---- */

/* With every connection slot held by idle clients, health checks still
 * answer: an idle connection makes room. */
START_TEST(test_conn_limit_keeps_room_for_health)
{
	const char *extra[] = {"--max-connections", "50", NULL};
	int fds[80];

	env_init(0);
	env_run(extra);
	for (int i = 0; i < 80; i++)
		fds[i] = tcp_connect();
	msleep(300);
	for (int i = 0; i < 5; i++)
		ck_assert_int_lt(timed_healthy_ms(), 1000);
	ck_assert_double_le(metric("mockhost_connections"), 66);
	ck_assert_double_ge(rejected("conn_limit"), 14);
	for (int i = 0; i < 80; i++)
		close(fds[i]);
	env_fini();
}
END_TEST

/* With every slot held by a request under way (nothing idle to close),
 * the headroom still lets health checks in, and only them. */
START_TEST(test_conn_headroom_is_for_ops_only)
{
	const char *extra[] = {"--max-connections", "5", NULL};
	static const char partial[] = "POST /ingest?name=a HTTP/1.1\r\nHost: x\r\n"
				      "Content-Length: 10\r\n\r\n12345";
	static const char ingest[] = "POST /ingest?name=a HTTP/1.1\r\nHost: x\r\n"
				     "Content-Length: 0\r\nConnection: close\r\n\r\n";
	int fds[5];
	char *out;

	env_init(0);
	env_run(extra);
	for (int i = 0; i < 5; i++) {
		fds[i] = tcp_connect();
		send_all(fds[i], partial, sizeof(partial) - 1);
	}
	msleep(300);
	ck_assert_int_lt(timed_healthy_ms(), 1000);
	out = raw(ingest, sizeof(ingest) - 1, 2000);
	ck_assert_msg(status_of(out) == 503, "%s", out);
	free(out);
	ck_assert_double_eq(rejected("conn_limit"), 1);
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	env_fini();
}
END_TEST

/* ---- slow clients ---- */

struct drip {
	int *fds;
	int n;
	int64_t *opened_at; /* when each was connected, ms */
	int64_t *closed_at; /* when the server closed each, ms */
};

static void raise_nofile(void)
{
	struct rlimit rl;

	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* Opens n connections and sends one byte of a head on each. */
static void drip_open(struct drip *d, int n)
{
	d->n = n;
	d->fds = calloc((size_t)n, sizeof(int));
	d->opened_at = calloc((size_t)n, sizeof(int64_t));
	d->closed_at = calloc((size_t)n, sizeof(int64_t));
	for (int i = 0; i < n; i++) {
		d->fds[i] = tcp_connect();
		d->opened_at[i] = mono_ms();
		send_all(d->fds[i], "G", 1);
	}
}

/* Waits up to ms for the server to close connections, noting when. */
static void drip_watch(struct drip *d, int ms)
{
	struct pollfd *pf = calloc((size_t)d->n, sizeof(*pf));
	int64_t until = mono_ms() + ms;

	for (int i = 0; i < d->n; i++)
		pf[i] = (struct pollfd){.fd = d->closed_at[i] ? -1 : d->fds[i], .events = POLLIN};
	while (mono_ms() < until && poll(pf, (nfds_t)d->n, (int)(until - mono_ms())) > 0) {
		for (int i = 0; i < d->n; i++) {
			char c;

			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			if (recv(d->fds[i], &c, 1, MSG_DONTWAIT) <= 0) {
				d->closed_at[i] = mono_ms();
				pf[i].fd = -1;
			}
		}
	}
	free(pf);
}

/* Drips a byte on every connection still open, then watches for ms.
 * Returns how many are still open. */
static int drip_step(struct drip *d, int ms)
{
	int open = 0;

	for (int i = 0; i < d->n; i++)
		if (!d->closed_at[i] && send(d->fds[i], "E", 1, MSG_NOSIGNAL) < 0)
			d->closed_at[i] = mono_ms();
	drip_watch(d, ms);
	for (int i = 0; i < d->n; i++)
		open += !d->closed_at[i];
	return open;
}

static void drip_close(struct drip *d)
{
	for (int i = 0; i < d->n; i++)
		close(d->fds[i]);
	free(d->fds);
	free(d->opened_at);
	free(d->closed_at);
}

START_TEST(test_slowloris)
{
	const char *extra[] = {"--header-timeout", "2s", NULL};
	const int n = 2000;
	struct drip d;
	long rss0, threads = 0, rss_after;
	int64_t worst_health = 0, worst_push = 0;

	raise_nofile();
	env_init(0);
	env_run(extra);
	timed_push_ms();
	rss0 = proc_field("VmRSS");
	drip_open(&d, n);
	for (int round = 0; round < 12 && drip_step(&d, 400) > 0; round++) {
		int64_t h = timed_healthy_ms(), p = timed_push_ms();
		long th = proc_field("Threads");

		worst_health = h > worst_health ? h : worst_health;
		worst_push = p > worst_push ? p : worst_push;
		threads = th > threads ? th : threads;
	}
	fprintf(stderr,
		"slowloris: %d connections, threads %ld, RSS %ld -> (peak) %ld kB, "
		"healthy %lld ms, push %lld ms at worst\n",
		n, threads, rss0, proc_field("VmHWM"), (long long)worst_health,
		(long long)worst_push);
	ck_assert_int_lt(worst_health, 1000);
	ck_assert_int_lt(worst_push, 1000);
	ck_assert_int_lt(threads, 64);
	/* Every slow connection was closed within the header timeout + 2 s. */
	for (int i = 0; i < n; i++) {
		ck_assert_msg(d.closed_at[i] != 0, "connection %d still open", i);
		ck_assert_int_lt(d.closed_at[i] - d.opened_at[i], 2000 + 2000);
	}
	ck_assert_double_ge(rejected("header_timeout"), n);
	drip_close(&d);
	msleep(500);
	rss_after = proc_field("VmRSS");
	fprintf(stderr, "slowloris: RSS after %ld kB\n", rss_after);
	ck_assert_int_lt(rss_after - rss0, 10 * 1024);
	env_fini();
}
END_TEST

START_TEST(test_slow_body_cut_by_body_timeout)
{
	const char *extra[] = {"--body-timeout", "2s", NULL};
	static const char head[] = "POST /ingest?name=a HTTP/1.1\r\nHost: x\r\n"
				   "Content-Length: 1000000\r\n\r\n";
	const int n = 2000;
	struct drip d = {0};
	int64_t t0;

	raise_nofile();
	/* Room for every body: the budget would refuse most of them. */
	env_init(4LL << 30);
	env_run(extra);
	d.n = n;
	d.fds = calloc(n, sizeof(int));
	d.opened_at = calloc(n, sizeof(int64_t));
	d.closed_at = calloc(n, sizeof(int64_t));
	t0 = mono_ms();
	for (int i = 0; i < n; i++) {
		d.fds[i] = tcp_connect();
		d.opened_at[i] = mono_ms();
		send_all(d.fds[i], head, sizeof(head) - 1);
	}
	while (drip_step(&d, 500) > 0 && mono_ms() - t0 < 10000)
		;
	{
		int64_t worst = 0;

		for (int i = 0; i < n; i++)
			if (d.closed_at[i] - d.opened_at[i] > worst)
				worst = d.closed_at[i] - d.opened_at[i];
		fprintf(stderr,
			"slow bodies: %d connections, the last closed %lld ms after opening\n", n,
			(long long)worst);
	}
	for (int i = 0; i < n; i++) {
		ck_assert_msg(d.closed_at[i] != 0, "connection %d still open", i);
		/* Cut by the body timeout (2 s), not by any later one (the
		 * idle timeout is 60 s); the margin is for a loaded machine. */
		ck_assert_int_lt(d.closed_at[i] - d.opened_at[i], 2000 + 5000);
	}
	ck_assert_double_ge(rejected("body_timeout"), n);
	drip_close(&d);
	env_fini();
}
END_TEST

/* 200 concurrent 1 MiB ingests to an endpoint that never answers, with
 * max_inflight_bytes at 64 MiB: memory stays near the cap, the excess is
 * refused from its head. */
START_TEST(test_burst_against_stalled_endpoint)
{
	const char *extra[] = {"--request-timeout", "60s", "--drain-timeout", "100ms", NULL};
	const int n = 200;
	size_t blen = 1 << 20;
	uint8_t *body = calloc(1, blen);
	char head[256];
	int fds[200], n429 = 0, nopen = 0;
	long hwm0, hwm1;

	raise_nofile();
	env_init(0);
	env_stall(64LL << 20);
	env_run(extra);
	hwm0 = proc_field("VmHWM");
	snprintf(head, sizeof(head),
		 "POST /ingest?name=a HTTP/1.1\r\nHost: x\r\nContent-Type: "
		 "application/octet-stream\r\nContent-Length: %zu\r\n\r\n",
		 blen);
	for (int i = 0; i < n; i++) {
		fds[i] = tcp_connect();
		fcntl(fds[i], F_SETFL, O_NONBLOCK);
		send_all(fds[i], head, strlen(head));
	}
	msleep(500);
	for (int i = 0; i < n; i++) {
		char buf[64] = {0};
		ssize_t r = recv(fds[i], buf, sizeof(buf) - 1, 0);

		if (r > 0 && status_of(buf) == 429) {
			n429++;
			continue;
		}
		/* Admitted: send its body (it will wait on the endpoint). */
		fcntl(fds[i], F_SETFL, 0);
		send_all(fds[i], body, blen);
		nopen++;
	}
	msleep(1000);
	hwm1 = proc_field("VmHWM");
	fprintf(stderr, "burst: %d refused 429 from the head, %d admitted; VmHWM %ld -> %ld kB\n",
		n429, nopen, hwm0, hwm1);
	ck_assert_int_ge(n429, n - 64);
	ck_assert_int_lt(hwm1 - hwm0, 100 * 1024);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	free(body);
	env_fini();
}
END_TEST

/* ---- TLS ---- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A CA and a certificate it signs: DIR/NAME.crt, DIR/NAME.key. */
static void make_ca(const char *name)
{
	ck_assert_int_eq(sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
			    "-subj /CN=%s -keyout %s.key -out %s.crt >/dev/null 2>&1",
			    E.dir, name, name, name),
			 0);
}

static void make_cert(const char *name, const char *ca, const char *cn)
{
	ck_assert_int_eq(
		sh("cd %s && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > %s.ext && "
		   "openssl req -newkey rsa:2048 -nodes -subj /CN=%s -keyout %s.key -out %s.csr "
		   ">/dev/null 2>&1 && openssl x509 -req -in %s.csr -CA %s.crt -CAkey %s.key "
		   "-CAcreateserial -days 2 -extfile %s.ext -out %s.crt >/dev/null 2>&1",
		   E.dir, name, cn, name, name, name, ca, ca, name, name),
		0);
}

/* curl's HTTP status for /-/ready, or 0 when the request failed. */
static int curl_ready(const char *client)
{
	char cmd[1024], out[16] = {0};
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "curl -s -o /dev/null -w '%%{http_code}' --max-time 5 --cacert %s/ca.crt "
		 "%s%s%s%s%s "
		 "https://127.0.0.1:%d/-/ready",
		 E.dir, client ? "--cert " : "", client ? E.dir : "", client ? "/" : "",
		 client ? client : "", client ? ".crt" : "", E.port);
	if (client) {
		size_t n = strlen(cmd);

		snprintf(cmd + n, sizeof(cmd) - n, " --key %s/%s.key", E.dir, client);
	}
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	if (!fgets(out, sizeof(out), p))
		out[0] = '\0';
	pclose(p);
	return atoi(out);
}

START_TEST(test_tls_server_and_client_certs)
{
	char cert[160], key[160], ca[160];
	const char *extra[] = {"--tls-cert-file", cert, "--tls-key-file", key, NULL};
	const char *extra_ca[] = {
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-client-ca-file", ca, NULL};

	env_init(0);
	make_ca("ca");
	make_cert("server", "ca", "localhost");
	make_ca("clientca");
	make_cert("client", "clientca", "client");
	make_ca("otherca");
	make_cert("stranger", "otherca", "stranger");
	snprintf(cert, sizeof(cert), "%s/server.crt", E.dir);
	snprintf(key, sizeof(key), "%s/server.key", E.dir);
	snprintf(ca, sizeof(ca), "%s/clientca.crt", E.dir);

	/* Server certificate only. */
	env_run(extra);
	ck_assert_int_eq(curl_ready(NULL), 200);
	ck_assert_int_eq(sh("echo | timeout 5 openssl s_client -connect 127.0.0.1:%d -CAfile "
			    "%s/ca.crt -verify_return_error >/dev/null 2>&1",
			    E.port, E.dir),
			 0);
	kill(E.pid, SIGTERM);
	waitpid(E.pid, NULL, 0);
	close(E.out_fd);

	/* Client certificates required. */
	env_run(extra_ca);
	ck_assert_int_eq(curl_ready("client"), 200);
	ck_assert_int_eq(curl_ready(NULL), 0);
	ck_assert_int_eq(curl_ready("stranger"), 0);
	ck_assert_int_eq(sh("printf 'GET /-/ready HTTP/1.1\\r\\nHost: x\\r\\nConnection: "
			    "close\\r\\n\\r\\n' | timeout 5 openssl s_client -quiet -connect "
			    "127.0.0.1:%d -CAfile %s/ca.crt -cert %s/client.crt -key "
			    "%s/client.key 2>/dev/null | grep -q '200 OK'",
			    E.port, E.dir, E.dir, E.dir),
			 0);
	ck_assert_int_ne(sh("printf 'GET /-/ready HTTP/1.1\\r\\nHost: x\\r\\nConnection: "
			    "close\\r\\n\\r\\n' | timeout 5 openssl s_client -quiet -connect "
			    "127.0.0.1:%d -CAfile %s/ca.crt -cert %s/stranger.crt -key "
			    "%s/stranger.key 2>/dev/null | grep -q '200 OK'",
			    E.port, E.dir, E.dir, E.dir),
			 0);
	env_fini();
}
END_TEST

static Suite *listen_suite(bool slow)
{
	Suite *s = suite_create(slow ? "listen-slow" : "listen");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 300);
	if (slow) {
		tcase_add_test(tc, test_slowloris);
		tcase_add_test(tc, test_slow_body_cut_by_body_timeout);
		tcase_add_test(tc, test_burst_against_stalled_endpoint);
	} else {
		tcase_add_test(tc, test_smuggling_shapes_are_400);
		tcase_add_test(tc, test_chunked_pipelined_http10_work);
		tcase_add_test(tc, test_ingest_chunked_and_expect_continue);
		tcase_add_test(tc, test_oversized_head_and_body);
		tcase_add_test(tc, test_head_of_many_fields_within_limit);
		tcase_add_test(tc, test_budget_refuses_before_reading);
		tcase_add_test(tc, test_inflated_push_counts_against_budget);
		tcase_add_test(tc, test_conn_limit_keeps_room_for_health);
		tcase_add_test(tc, test_conn_headroom_is_for_ops_only);
		tcase_add_test(tc, test_tls_server_and_client_certs);
	}
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	bool slow = argc > 1 && strcmp(argv[1], "slow") == 0;
	SRunner *sr = srunner_create(listen_suite(slow));
	int failed;

	signal(SIGPIPE, SIG_IGN);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
