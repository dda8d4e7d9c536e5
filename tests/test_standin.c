/*
 * test_standin.c - the strict Pyroscope stand-in, driven over raw sockets.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "util/gzip.h"
#include "standin/formats.h"
#include "standin/sink.h"
#include "standin/standin.h"
#include "strbuf.h"

/* ---- fixtures ---- */

/* A minimal CPU profile: one sample type (cpu/nanoseconds), one sample
 * with one location in function "main", and its string table. */
static const uint8_t PPROF[] = {
	0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, /* sample_type {1, 2} */
	0x12, 0x06, 0x0a, 0x01, 0x01, 0x12, 0x01, 0x0a, /* sample {loc [1], value [10]} */
	0x22, 0x06, 0x08, 0x01, 0x22, 0x02, 0x08, 0x01, /* location {id 1, line {fn 1}} */
	0x2a, 0x04, 0x08, 0x01, 0x10, 0x03, /* function {id 1, name 3} */
	0x32, 0x00, /* "" */
	0x32, 0x03, 'c',  'p',	'u',  0x32, 0x0b, 'n',	'a',  'n',
	'o',  's',  'e',  'c',	'o',  'n',  'd',  's',	0x32, 0x04,
	'm',  'a',  'i',  'n',	0x5a, 0x04, 0x08, 0x01, 0x10, 0x02, /* period_type */
	0x60, 0x0a, /* period 10 */
};

static const uint8_t JFR[] = {'F', 'L', 'R', 0, 0, 2, 0, 1, 0, 0, 0, 0};

/* gzip with zlib directly, independent of the code under test. */
static uint8_t *gz(const void *in, size_t len, size_t *outlen)
{
	z_stream zs = {0};
	uint8_t *out = malloc(len + 128);

	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)(len + 128);
	ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*outlen = zs.total_out;
	deflateEnd(&zs);
	return out;
}

/* ---- a tiny PushRequest writer ---- */

static void put_varint(struct strbuf *sb, uint64_t v)
{
	while (v >= 0x80) {
		strbuf_putc(sb, (char)(v | 0x80));
		v >>= 7;
	}
	strbuf_putc(sb, (char)v);
}

static void put_bytes(struct strbuf *sb, unsigned field, const void *d, size_t n)
{
	put_varint(sb, (field << 3) | 2);
	put_varint(sb, n);
	strbuf_append(sb, d, n);
}

static void put_msg(struct strbuf *sb, unsigned field, struct strbuf *m)
{
	put_bytes(sb, field, m->data ? m->data : "", m->len);
	strbuf_free(m);
}

/* One series: labels as "k", "v", ... NULL; nsamples copies of profile. */
static void add_series(struct strbuf *req, const char *const *kv, const void *profile, size_t plen,
		       int nsamples)
{
	struct strbuf series = STRBUF_INIT;

	for (size_t i = 0; kv && kv[i]; i += 2) {
		struct strbuf lp = STRBUF_INIT;

		put_bytes(&lp, 1, kv[i], strlen(kv[i]));
		put_bytes(&lp, 2, kv[i + 1], strlen(kv[i + 1]));
		put_msg(&series, 1, &lp);
	}
	for (int i = 0; i < nsamples; i++) {
		struct strbuf rs = STRBUF_INIT;

		put_bytes(&rs, 1, profile, plen);
		put_bytes(&rs, 2, "id-1", 4);
		put_msg(&series, 2, &rs);
	}
	put_msg(req, 1, &series);
}

static const char *const APP[] = {"__name__", "process_cpu", "service_name", "app", NULL};

/* ---- a raw HTTP client ---- */

struct resp {
	int status;
	char *head;
	char *body;
	size_t body_len;
};

static void resp_free(struct resp *r)
{
	free(r->head);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Value of a response header (first), copied into a static buffer. */
static const char *resp_header(const struct resp *r, const char *name)
{
	static char val[512];
	size_t nl = strlen(name);

	for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2, *end = strstr(line, "\r\n");

		if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;

			while (*v == ' ')
				v++;
			snprintf(val, sizeof(val), "%.*s", (int)(end - v), v);
			return val;
		}
	}
	return NULL;
}

static int conn_open(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int recv_some(int fd, struct strbuf *in)
{
	char tmp[8192];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;

	if (poll(&p, 1, 10000) != 1)
		return -1;
	n = recv(fd, tmp, sizeof(tmp), 0);
	if (n <= 0)
		return -1;
	strbuf_append(in, tmp, (size_t)n);
	return 0;
}

/* Reads one response (Content-Length framed). 0, or -1 on EOF/reset. */
static int read_response(int fd, struct resp *out)
{
	struct strbuf in = STRBUF_INIT;
	char *end;
	const char *cl;
	size_t head_len, blen = 0;

	memset(out, 0, sizeof(*out));
	while (!in.data || !(end = strstr(in.data, "\r\n\r\n")))
		if (recv_some(fd, &in) < 0)
			goto fail;
	head_len = (size_t)(end - in.data) + 2;
	out->head = pw_strndup(in.data, head_len);
	out->status = atoi(in.data + 9);
	cl = resp_header(out, "Content-Length");
	if (cl)
		blen = strtoul(cl, NULL, 10);
	while (in.len < head_len + 2 + blen)
		if (recv_some(fd, &in) < 0)
			goto fail;
	out->body = pw_strndup(in.data + head_len + 2, blen);
	out->body_len = blen;
	strbuf_free(&in);
	return 0;
fail:
	strbuf_free(&in);
	resp_free(out);
	return -1;
}

static int send_request(int fd, const char *method, const char *target, const char *headers,
			const void *body, size_t len)
{
	struct strbuf req = STRBUF_INIT;
	ssize_t n;

	strbuf_printf(&req, "%s %s HTTP/1.1\r\nHost: test\r\n%sContent-Length: %zu\r\n\r\n", method,
		      target, headers ? headers : "", len);
	strbuf_append(&req, body, len);
	n = send(fd, req.data, req.len, MSG_NOSIGNAL);
	strbuf_free(&req);
	return n < 0 ? -1 : 0;
}

static int roundtrip(int fd, const char *method, const char *target, const char *headers,
		     const void *body, size_t len, struct resp *out)
{
	if (send_request(fd, method, target, headers, body, len) < 0)
		return -1;
	return read_response(fd, out);
}

/* One request on a fresh connection. Returns the status, or -1. */
static int one_shot(struct standin *s, const char *method, const char *target, const char *headers,
		    const void *body, size_t len, struct resp *out)
{
	int fd = conn_open(standin_port(s)), rc;

	rc = roundtrip(fd, method, target, headers, body, len, out);
	close(fd);
	return rc < 0 ? -1 : out->status;
}

#define PUSH_PATH "/push.v1.PusherService/Push"
#define PROTO_HDRS "Content-Type: application/proto\r\nConnect-Protocol-Version: 1\r\n"

static int push(struct standin *s, const char *headers, struct strbuf *body, struct resp *out)
{
	int st = one_shot(s, "POST", PUSH_PATH, headers ? headers : PROTO_HDRS,
			  body->data ? body->data : "", body->len, out);

	strbuf_free(body);
	return st;
}

/* Asserts a JSON error body with the given code and a message containing `part`. */
static void assert_json_error(const struct resp *r, const char *code, const char *part)
{
	json_error_t je;
	json_t *j = json_loadb(r->body, r->body_len, 0, &je);
	const char *c, *m;

	ck_assert_msg(j != NULL, "not JSON: %s", r->body);
	ck_assert_str_eq(resp_header(r, "Content-Type"), "application/json");
	c = json_string_value(json_object_get(j, "code"));
	m = json_string_value(json_object_get(j, "message"));
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(c, code);
	if (part)
		ck_assert_msg(strstr(m, part) != NULL, "message \"%s\" lacks \"%s\"", m, part);
	json_decref(j);
}

static struct standin *start(bool require_tenant, size_t max_body)
{
	struct standin_opts o = {.require_tenant = require_tenant, .max_body = max_body};
	char *err = NULL;
	struct standin *s = standin_start(&o, &err);

	ck_assert_msg(s != NULL, "start: %s", err ? err : "?");
	return s;
}

static struct standin_request *last(struct standin *s)
{
	size_t n = standin_count(s);

	ck_assert_uint_gt(n, 0);
	return standin_request_get(s, n - 1);
}

/* ---- push ---- */

START_TEST(push_accepted_and_recorded)
{
	struct standin *s = start(false, 0);
	struct strbuf b = STRBUF_INIT;
	struct resp r;
	struct standin_request *rec;
	struct standin_stats st;
	size_t zlen;
	uint8_t *z = gz(PPROF, sizeof(PPROF), &zlen);

	add_series(&b, APP, z, zlen, 2);
	ck_assert_int_eq(push(s, NULL, &b, &r), 200);
	ck_assert_str_eq(resp_header(&r, "Content-Type"), "application/proto");
	ck_assert_uint_eq(r.body_len, 0);
	resp_free(&r);

	ck_assert_int_eq(standin_wait(s, 1, 1000), 0);
	rec = standin_request_get(s, 0);
	ck_assert_int_eq(rec->route, STANDIN_ROUTE_PUSH);
	ck_assert_int_eq(rec->status, 200);
	ck_assert_ptr_null(rec->error);
	ck_assert_str_eq(rec->method, "POST");
	ck_assert_str_eq(rec->path, PUSH_PATH);
	ck_assert_str_eq(rec->tenant, "anonymous");
	ck_assert_uint_eq(rec->nseries, 1);
	ck_assert_str_eq(rec->series_labels[0], "__name__=process_cpu,service_name=app");
	ck_assert_uint_eq(rec->series_samples[0], 2);
	ck_assert_uint_eq(rec->nsamples, 2);
	ck_assert_str_eq(standin_request_header(rec, "connect-protocol-version"), "1");
	standin_request_free(rec);
	ck_assert_ptr_null(standin_request_get(s, 1));

	standin_stats_get(s, &st);
	ck_assert_uint_eq(st.push_accepted, 1);
	ck_assert_uint_eq(st.push_series, 1);
	ck_assert_uint_eq(st.push_samples, 2);
	ck_assert_uint_eq(st.push_bytes, 2 * zlen);
	free(z);
	standin_stop(s);
}
END_TEST

START_TEST(push_gzip_request_and_json)
{
	struct standin *s = start(false, 0);
	struct strbuf b = STRBUF_INIT;
	struct resp r;
	uint8_t *z;
	size_t zlen;
	char *b64json;
	static const char hdr_gz[] = PROTO_HDRS "Content-Encoding: gzip\r\n";

	/* gzip'd request body with a raw (uncompressed) pprof inside */
	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	z = gz(b.data, b.len, &zlen);
	strbuf_free(&b);
	ck_assert_int_eq(one_shot(s, "POST", PUSH_PATH, hdr_gz, z, zlen, &r), 200);
	resp_free(&r);
	free(z);

	/* a corrupt gzip body */
	ck_assert_int_eq(one_shot(s, "POST", PUSH_PATH, hdr_gz, "\x1f\x8bxx", 4, &r), 400);
	assert_json_error(&r, "invalid_argument", "decompress");
	resp_free(&r);

	/* protojson, as in Pyroscope's server docs (base64 of the fixture) */
	{
		static const char tbl[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		struct strbuf e = STRBUF_INIT;

		for (size_t i = 0; i < sizeof(PPROF); i += 3) {
			uint32_t v = (uint32_t)PPROF[i] << 16;
			size_t left = sizeof(PPROF) - i;

			v |= left > 1 ? (uint32_t)PPROF[i + 1] << 8 : 0;
			v |= left > 2 ? PPROF[i + 2] : 0;
			strbuf_putc(&e, tbl[(v >> 18) & 63]);
			strbuf_putc(&e, tbl[(v >> 12) & 63]);
			strbuf_putc(&e, left > 1 ? tbl[(v >> 6) & 63] : '=');
			strbuf_putc(&e, left > 2 ? tbl[v & 63] : '=');
		}
		b64json = pw_asprintf(
			"{\"series\":[{\"labels\":[{\"name\":\"service_name\","
			"\"value\":\"j\"}],\"samples\":[{\"ID\":\"x\",\"rawProfile\":\"%s\"}]}]}",
			e.data);
		strbuf_free(&e);
	}
	ck_assert_int_eq(one_shot(s, "POST", PUSH_PATH, "Content-Type: application/json\r\n",
				  b64json, strlen(b64json), &r),
			 200);
	resp_free(&r);
	free(b64json);
	{
		struct standin_request *rec = last(s);

		ck_assert_str_eq(rec->series_labels[0], "service_name=j");
		ck_assert_uint_eq(rec->nsamples, 1);
		standin_request_free(rec);
	}
	/* JSON whose raw profile is not pprof */
	ck_assert_int_eq(
		one_shot(s, "POST", PUSH_PATH, "Content-Type: application/json\r\n",
			 "{\"series\":[{\"labels\":[{\"name\":\"a\",\"value\":\"b\"}],"
			 "\"samples\":[{\"rawProfile\":\"aGVsbG8=\"}]}]}",
			 strlen("{\"series\":[{\"labels\":[{\"name\":\"a\",\"value\":\"b\"}],"
				"\"samples\":[{\"rawProfile\":\"aGVsbG8=\"}]}]}"),
			 &r),
		400);
	resp_free(&r);
	standin_stop(s);
}
END_TEST

START_TEST(push_rejections)
{
	struct standin *s = start(false, 0);
	struct strbuf b = STRBUF_INIT;
	struct resp r;
	struct standin_stats st;
	static const char *const BADNAME[] = {"service_name", "a", "bad-name", "x", NULL};
	static const char *const DUP[] = {"a", "1", "a", "2", NULL};
	static const char *const EMPTYNAME[] = {"", "v", NULL};
	static const char *const DUNDER[] = {"__name__", "x", "__bad-ok?", "y", NULL};

	/* wrong path: Connect unimplemented */
	ck_assert_int_eq(one_shot(s, "POST", "/push.v1.PusherService/Nope", PROTO_HDRS, "", 0, &r),
			 404);
	assert_json_error(&r, "unimplemented", NULL);
	resp_free(&r);
	ck_assert_int_eq(one_shot(s, "POST", "/elsewhere", PROTO_HDRS, "", 0, &r), 404);
	assert_json_error(&r, "unimplemented", NULL);
	resp_free(&r);

	/* wrong method */
	ck_assert_int_eq(one_shot(s, "GET", PUSH_PATH, NULL, "", 0, &r), 405);
	ck_assert_str_eq(resp_header(&r, "Allow"), "POST");
	resp_free(&r);

	/* wrong content type: 415 without a JSON body, as connect-go does */
	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, "Content-Type: application/grpc\r\n", &b, &r), 415);
	ck_assert_ptr_nonnull(resp_header(&r, "Accept-Post"));
	resp_free(&r);
	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, "X-Nothing: 1\r\n", &b, &r), 415);
	resp_free(&r);

	/* protocol headers */
	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s,
			      "Content-Type: application/proto\r\nConnect-Protocol-Version: 2\r\n",
			      &b, &r),
			 400);
	assert_json_error(&r, "invalid_argument", "Connect-Protocol-Version");
	resp_free(&r);
	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, PROTO_HDRS "Connect-Timeout-Ms: 12345678901\r\n", &b, &r), 400);
	resp_free(&r);
	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, PROTO_HDRS "Connect-Timeout-Ms: 9999\r\n", &b, &r), 200);
	resp_free(&r);
	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, PROTO_HDRS "Content-Encoding: br\r\n", &b, &r), 501);
	resp_free(&r);

	/* bad protobuf */
	strbuf_puts(&b, "\x0a\x7fshort");
	ck_assert_int_eq(push(s, NULL, &b, &r), 400);
	assert_json_error(&r, "invalid_argument", "unmarshal");
	resp_free(&r);

	/* no series */
	ck_assert_int_eq(push(s, NULL, &b, &r), 400);
	assert_json_error(&r, "invalid_argument", "no profiles received");
	resp_free(&r);

	/* series without labels, bad names, duplicates */
	add_series(&b, NULL, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, NULL, &b, &r), 400);
	assert_json_error(&r, "invalid_argument", "without labels");
	resp_free(&r);
	add_series(&b, BADNAME, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, NULL, &b, &r), 400);
	assert_json_error(&r, "invalid_argument", "invalid label name: bad-name");
	resp_free(&r);
	add_series(&b, DUP, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, NULL, &b, &r), 400);
	assert_json_error(&r, "invalid_argument", "duplicate label name: a");
	resp_free(&r);
	add_series(&b, EMPTYNAME, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, NULL, &b, &r), 400);
	resp_free(&r);
	add_series(&b, DUNDER, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, NULL, &b, &r), 400);
	resp_free(&r);

	/* a valid series followed by one without samples */
	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	add_series(&b, APP, PPROF, sizeof(PPROF), 0);
	ck_assert_int_eq(push(s, NULL, &b, &r), 400);
	assert_json_error(&r, "invalid_argument", "series 1: no samples");
	resp_free(&r);

	/* raw_profile that is not pprof, raw or gzip'd */
	add_series(&b, APP, "fake profile", 12, 1);
	ck_assert_int_eq(push(s, NULL, &b, &r), 400);
	assert_json_error(&r, "invalid_argument", "failed to parse profile");
	resp_free(&r);
	{
		size_t zlen;
		uint8_t *z = gz("fake profile", 12, &zlen);

		add_series(&b, APP, z, zlen, 1);
		free(z);
	}
	ck_assert_int_eq(push(s, NULL, &b, &r), 400);
	resp_free(&r);

	/* rejected requests are recorded with the decoded labels */
	{
		struct standin_request *rec = last(s);

		ck_assert_int_eq(rec->status, 400);
		ck_assert_ptr_nonnull(rec->error);
		ck_assert_uint_eq(rec->nseries, 1);
		ck_assert_str_eq(rec->series_labels[0], "__name__=process_cpu,service_name=app");
		standin_request_free(rec);
	}
	standin_stats_get(s, &st);
	ck_assert_uint_eq(st.push_accepted, 1);
	ck_assert_uint_eq(st.rejected_not_found, 2);
	ck_assert_uint_eq(st.rejected_method, 1);
	ck_assert_uint_eq(st.rejected_media_type, 2);
	ck_assert_uint_eq(st.rejected_invalid, 12);
	ck_assert_uint_eq(st.rejected_other, 1);
	standin_stop(s);
}
END_TEST

START_TEST(tenant_required)
{
	struct standin *s = start(true, 0);
	struct strbuf b = STRBUF_INIT;
	struct resp r;
	struct standin_request *rec;

	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, NULL, &b, &r), 401);
	assert_json_error(&r, "unauthenticated", NULL);
	resp_free(&r);
	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, PROTO_HDRS "X-Scope-OrgID: team-a\r\n", &b, &r), 200);
	resp_free(&r);
	rec = last(s);
	ck_assert_str_eq(rec->tenant, "team-a");
	standin_request_free(rec);
	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, PROTO_HDRS "X-Scope-OrgID: a b\r\n", &b, &r), 401);
	resp_free(&r);

	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=app", NULL, "a;b 1\n", 6, &r), 401);
	assert_json_error(&r, "unauthenticated", NULL);
	resp_free(&r);
	ck_assert_int_eq(
		one_shot(s, "POST", "/ingest?name=app", "X-Scope-OrgID: t\r\n", "a;b 1\n", 6, &r),
		200);
	resp_free(&r);
	standin_stop(s);
}
END_TEST

START_TEST(body_limit)
{
	struct standin *s = start(false, 64);
	char big[200];
	struct resp r;

	memset(big, 'a', sizeof(big));
	ck_assert_int_eq(one_shot(s, "POST", PUSH_PATH, PROTO_HDRS, big, sizeof(big), &r), 429);
	assert_json_error(&r, "resource_exhausted", NULL);
	ck_assert_ptr_nonnull(strcasestr(r.head, "Connection: close"));
	resp_free(&r);
	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=x", NULL, big, sizeof(big), &r), 413);
	resp_free(&r);
	standin_stop(s);
}
END_TEST

/* ---- ingest ---- */

static char *multipart(const char *boundary, const char *const *names, const void *const *data,
		       const size_t *lens, size_t n, size_t *len)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < n; i++) {
		strbuf_printf(&sb,
			      "--%s\r\nContent-Disposition: form-data; name=\"%s\"; "
			      "filename=\"%s\"\r\nContent-Type: application/octet-stream\r\n\r\n",
			      boundary, names[i], names[i]);
		strbuf_append(&sb, data[i], lens[i]);
		strbuf_puts(&sb, "\r\n");
	}
	strbuf_printf(&sb, "--%s--\r\n", boundary);
	return strbuf_detach(&sb, len);
}

#define MP_HDR "Content-Type: multipart/form-data; boundary=XyZ123\r\n"

START_TEST(ingest_pprof)
{
	struct standin *s = start(false, 0);
	struct resp r;
	struct standin_request *rec;
	size_t zlen, mlen;
	uint8_t *z = gz(PPROF, sizeof(PPROF), &zlen);
	static const char stc[] = "{\"samples\":{\"units\":\"samples\",\"display-name\":\"cpu\"}}";
	char *m;

	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=my.app%7Benv%3Dprod%7D&format=pprof",
				  NULL, PPROF, sizeof(PPROF), &r),
			 200);
	ck_assert_uint_eq(r.body_len, 0);
	resp_free(&r);
	rec = last(s);
	ck_assert_int_eq(rec->route, STANDIN_ROUTE_INGEST);
	ck_assert_str_eq(rec->name, "my.app{env=prod}");
	ck_assert_str_eq(rec->format, "pprof");
	ck_assert_uint_eq(rec->body_len, sizeof(PPROF));
	standin_request_free(rec);

	ck_assert_int_eq(
		one_shot(s, "POST", "/pyroscope/ingest?name=app&format=pprof", NULL, z, zlen, &r),
		200);
	resp_free(&r);
	ck_assert_int_eq(
		one_shot(s, "POST", "/ingest?name=app&format=pprof", NULL, "garbage!", 8, &r), 422);
	assert_json_error(&r, "invalid_argument", "pprof");
	resp_free(&r);
	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=app&format=pprof", NULL, "", 0, &r),
			 422);
	resp_free(&r);

	/* multipart: profile + sample_type_config (format implied by the form) */
	{
		const char *names[] = {"profile", "sample_type_config"};
		const void *data[] = {z, stc};
		size_t lens[] = {zlen, strlen(stc)};

		m = multipart("XyZ123", names, data, lens, 2, &mlen);
		ck_assert_int_eq(
			one_shot(s, "POST", "/ingest?name=app&spyName=gospy", MP_HDR, m, mlen, &r),
			200);
		resp_free(&r);
		free(m);
	}
	{
		const char *names[] = {"profile", "sample_type_config"};
		const void *data[] = {z, "[1,2]"};
		size_t lens[] = {zlen, 5};

		m = multipart("XyZ123", names, data, lens, 2, &mlen);
		ck_assert_int_eq(
			one_shot(s, "POST", "/ingest?name=app&format=pprof", MP_HDR, m, mlen, &r),
			422);
		assert_json_error(&r, "invalid_argument", "sample_type_config");
		resp_free(&r);
		free(m);
	}
	{
		const char *names[] = {"profile", "prev_profile"};
		const void *data[] = {z, z};
		size_t lens[] = {zlen, zlen};

		m = multipart("XyZ123", names, data, lens, 2, &mlen);
		ck_assert_int_eq(
			one_shot(s, "POST", "/ingest?name=app&format=pprof", MP_HDR, m, mlen, &r),
			422);
		assert_json_error(&r, "invalid_argument", "unsupported client version");
		resp_free(&r);
		free(m);
	}
	{
		const char *names[] = {"other"};
		const void *data[] = {z};
		size_t lens[] = {zlen};

		m = multipart("XyZ123", names, data, lens, 1, &mlen);
		ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=app", MP_HDR, m, mlen, &r), 422);
		resp_free(&r);
		/* truncated form: no closing delimiter */
		ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=app", MP_HDR, m, mlen - 12, &r),
				 422);
		assert_json_error(&r, "invalid_argument", "multipart");
		resp_free(&r);
		free(m);
	}
	free(z);
	standin_stop(s);
}
END_TEST

START_TEST(ingest_jfr_folded_lines)
{
	struct standin *s = start(false, 0);
	struct resp r;
	size_t zlen, mlen;
	uint8_t *z = gz(JFR, sizeof(JFR), &zlen);
	char *m;
	static const char folded[] = "main;work;compute 12\nmain;idle 3\n\nmain 1\r\n";

	ck_assert_int_eq(
		one_shot(s, "POST", "/ingest?name=j&format=jfr", NULL, JFR, sizeof(JFR), &r), 200);
	resp_free(&r);
	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=j&format=jfr", NULL, z, zlen, &r), 200);
	resp_free(&r);
	ck_assert_int_eq(
		one_shot(s, "POST", "/ingest?name=j&format=jfr", NULL, PPROF, sizeof(PPROF), &r),
		422);
	resp_free(&r);
	{
		const char *names[] = {"jfr", "labels"};
		const void *data[] = {z, ""};
		size_t lens[] = {zlen, 0};

		m = multipart("XyZ123", names, data, lens, 2, &mlen);
		ck_assert_int_eq(
			one_shot(s, "POST", "/ingest?name=j&format=jfr", MP_HDR, m, mlen, &r), 200);
		resp_free(&r);
		free(m);
		m = multipart("XyZ123", names + 1, data + 1, lens + 1, 1, &mlen);
		ck_assert_int_eq(
			one_shot(s, "POST", "/ingest?name=j&format=jfr", MP_HDR, m, mlen, &r), 422);
		resp_free(&r);
		free(m);
	}

	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=f", "Content-Type: text/plain\r\n",
				  folded, strlen(folded), &r),
			 200);
	resp_free(&r);
	ck_assert_int_eq(
		one_shot(s, "POST", "/prefix/ingest?name=f&format=folded", NULL, "a;b 1\n", 6, &r),
		200);
	resp_free(&r);
	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=f", NULL, "a;b\n", 4, &r), 422);
	resp_free(&r);
	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=f", NULL, "a;b x1\n", 7, &r), 422);
	resp_free(&r);
	ck_assert_int_eq(
		one_shot(s, "POST", "/ingest?name=f&format=lines", NULL, "a;b\na;c\n", 8, &r), 200);
	resp_free(&r);
	ck_assert_int_eq(
		one_shot(s, "POST", "/ingest?name=f&format=speedscope", NULL, "nope", 4, &r), 422);
	resp_free(&r);
	free(z);
	standin_stop(s);
}
END_TEST

START_TEST(ingest_name_errors)
{
	struct standin *s = start(false, 0);
	struct resp r;
	struct standin_stats st;

	ck_assert_int_eq(one_shot(s, "POST", "/ingest", NULL, "a 1", 3, &r), 400);
	assert_json_error(&r, "invalid_argument", "name");
	resp_free(&r);
	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=bad%20app%21", NULL, "a 1", 3, &r), 400);
	resp_free(&r);
	ck_assert_int_eq(
		one_shot(s, "POST", "/ingest?name=app%7Bbad-key%3Dv%7D", NULL, "a 1", 3, &r), 400);
	assert_json_error(&r, "invalid_argument", "bad-key");
	resp_free(&r);
	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=%7Bk%3Dv%7D", NULL, "a 1", 3, &r), 400);
	resp_free(&r);
	ck_assert_int_eq(one_shot(s, "GET", "/ingest?name=app", NULL, "", 0, &r), 405);
	resp_free(&r);
	standin_stats_get(s, &st);
	ck_assert_uint_eq(st.rejected_invalid, 4);
	ck_assert_uint_eq(st.ingest_accepted, 0);
	standin_stop(s);
}
END_TEST

/* ---- scripted replies ---- */

START_TEST(scripted_sequence)
{
	struct standin *s = start(false, 0);
	struct strbuf b = STRBUF_INIT;
	struct resp r;
	struct standin_request *rec;
	struct standin_reply busy = {.status = 503, .times = 2};
	struct standin_reply limited = {
		.status = 429,
		.content_type = "application/json",
		.body = "{\"code\":\"resource_exhausted\",\"message\":\"slow down\"}",
		.retry_after = "7",
	};
	struct standin_reply ing = {.status = 500, .body = "oops", .content_type = "text/plain"};

	standin_script(s, STANDIN_ROUTE_PUSH, &busy);
	standin_script(s, STANDIN_ROUTE_INGEST, &ing);
	standin_script(s, STANDIN_ROUTE_ANY, &limited);

	for (int i = 0; i < 2; i++) {
		add_series(&b, APP, PPROF, sizeof(PPROF), 1);
		ck_assert_int_eq(push(s, NULL, &b, &r), 503);
		resp_free(&r);
	}
	/* the ingest takes its own reply, not the ANY one queued after */
	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=a", NULL, "a 1", 3, &r), 500);
	ck_assert_str_eq(r.body, "oops");
	resp_free(&r);
	/* not matched: the strict verdict still applies to unscripted routes */
	ck_assert_int_eq(one_shot(s, "GET", "/-/ready", NULL, "", 0, &r), 200);
	resp_free(&r);
	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, NULL, &b, &r), 429);
	ck_assert_str_eq(resp_header(&r, "Retry-After"), "7");
	assert_json_error(&r, "resource_exhausted", "slow down");
	resp_free(&r);
	/* queue empty: strict again */
	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, NULL, &b, &r), 200);
	resp_free(&r);

	ck_assert_uint_eq(standin_count(s), 6);
	rec = standin_request_get(s, 0);
	ck_assert(rec->scripted);
	ck_assert_int_eq(rec->status, 503);
	ck_assert_uint_eq(rec->nseries, 1); /* scripted requests are still decoded */
	standin_request_free(rec);
	rec = standin_request_get(s, 5);
	ck_assert(!rec->scripted);
	ck_assert_int_eq(rec->status, 200);
	standin_request_free(rec);

	/* clear drops what is queued */
	standin_script(s, STANDIN_ROUTE_ANY, &busy);
	standin_script_clear(s);
	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(push(s, NULL, &b, &r), 200);
	resp_free(&r);
	standin_stop(s);
}
END_TEST

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

START_TEST(scripted_delay_reset_gzip_close)
{
	struct standin *s = start(false, 0);
	struct resp r;
	struct standin_request *rec;
	struct standin_reply delay = {.status = 200, .delay_ms = 300};
	struct standin_reply reset = {.reset = true};
	struct standin_reply zipped = {
		.status = 400,
		.content_type = "application/json",
		.body = "{\"code\":\"invalid_argument\",\"message\":\"zip\"}",
		.gzip = true};
	struct standin_reply closing = {.status = 200, .close = true};
	double t0;
	int fd;
	uint8_t *plain = NULL;
	size_t plen;
	char buf[16];

	standin_script(s, STANDIN_ROUTE_INGEST, &delay);
	t0 = now_ms();
	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=a", NULL, "a 1", 3, &r), 200);
	ck_assert(now_ms() - t0 >= 290); /* a lower bound only */
	resp_free(&r);

	standin_script(s, STANDIN_ROUTE_ANY, &reset);
	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=a", NULL, "a 1", 3, &r), -1);
	rec = last(s);
	ck_assert_int_eq(rec->status, 0);
	ck_assert(rec->scripted);
	standin_request_free(rec);

	standin_script(s, STANDIN_ROUTE_ANY, &zipped);
	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=a", NULL, "a 1", 3, &r), 400);
	ck_assert_str_eq(resp_header(&r, "Content-Encoding"), "gzip");
	ck_assert_int_eq(pwx_gunzip(r.body, r.body_len, 1 << 20, 0, &plain, &plen), 0);
	ck_assert_str_eq((char *)plain, "{\"code\":\"invalid_argument\",\"message\":\"zip\"}");
	free(plain);
	resp_free(&r);

	/* Connection: close, then EOF */
	standin_script(s, STANDIN_ROUTE_ANY, &closing);
	fd = conn_open(standin_port(s));
	ck_assert_int_eq(roundtrip(fd, "POST", "/ingest?name=a", NULL, "a 1", 3, &r), 0);
	ck_assert_ptr_nonnull(strcasestr(r.head, "Connection: close"));
	resp_free(&r);
	ck_assert_int_le(recv(fd, buf, sizeof(buf), 0), 0);
	close(fd);
	standin_stop(s);
}
END_TEST

/* A delayed answer must not hold up stop(). */
START_TEST(stop_cuts_delay)
{
	struct standin *s = start(false, 0);
	struct standin_reply slow = {.delay_ms = 60000};
	int fd;
	double t0;

	standin_script(s, STANDIN_ROUTE_ANY, &slow);
	fd = conn_open(standin_port(s));
	ck_assert_int_eq(send_request(fd, "POST", "/ingest?name=a", NULL, "a 1", 3), 0);
	ck_assert_int_eq(standin_wait(s, 1, 5000), 0);
	t0 = now_ms();
	standin_stop(s);
	ck_assert(now_ms() - t0 < 30000);
	close(fd);
}
END_TEST

/* ---- HTTP mechanics ---- */

START_TEST(keep_alive_chunked_and_repeated_headers)
{
	struct standin *s = start(false, 0);
	struct resp r;
	struct standin_request *rec;
	int fd = conn_open(standin_port(s));
	static const char chunked[] =
		"POST /ingest?name=c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
		"X-Multi: one\r\nX-Multi: two\r\n\r\n"
		"4;ext=1\r\na;b \r\n2\r\n12\r\n1\r\n\n\r\n0\r\nTrailer: x\r\n\r\n";

	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(roundtrip(fd, "POST", "/ingest?name=k", NULL, "a;b 1\n", 6, &r),
				 0);
		ck_assert_int_eq(r.status, 200);
		ck_assert_ptr_null(strcasestr(r.head, "Connection: close"));
		resp_free(&r);
	}
	ck_assert_int_eq(send(fd, chunked, sizeof(chunked) - 1, MSG_NOSIGNAL),
			 (ssize_t)sizeof(chunked) - 1);
	ck_assert_int_eq(read_response(fd, &r), 0);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	rec = last(s);
	ck_assert_uint_eq(rec->body_len, 7);
	ck_assert_mem_eq(rec->body, "a;b 12\n", 7);
	ck_assert_uint_eq(rec->nheaders, 4);
	ck_assert_str_eq(standin_request_header(rec, "x-multi"), "one");
	ck_assert_str_eq(rec->headers[3].name, "X-Multi");
	ck_assert_str_eq(rec->headers[3].value, "two");
	standin_request_free(rec);

	/* A request line without a target: libmicrohttpd closes the
	 * connection without an answer. */
	ck_assert_int_eq(send(fd, "BROKEN\r\n\r\n", 10, MSG_NOSIGNAL), 10);
	ck_assert_int_eq(read_response(fd, &r), -1);
	close(fd);
	/* One without a version gets 400 and a close. */
	fd = conn_open(standin_port(s));
	ck_assert_int_eq(send(fd, "GET /x\r\n\r\n", 10, MSG_NOSIGNAL), 10);
	ck_assert_int_eq(read_response(fd, &r), 0);
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
	close(fd);
	ck_assert_uint_eq(standin_count(s), 4);
	ck_assert_int_eq(standin_wait(s, 5, 50), -1);
	standin_stop(s);
}
END_TEST

/* Sends raw bytes on a fresh connection and reads one answer. Returns its
 * status; *more tells whether anything followed it before the close. */
static int raw_status(struct standin *s, const void *req, size_t len, bool *more)
{
	int fd = conn_open(standin_port(s)), st = -1;
	struct strbuf rest = STRBUF_INIT;
	struct resp r;

	ck_assert_int_eq(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	if (read_response(fd, &r) == 0) {
		st = r.status;
		resp_free(&r);
	}
	if (more) {
		/* Read to the close; the first answer was consumed whole. */
		while (recv_some(fd, &rest) == 0 && rest.len < 4096)
			;
		*more = rest.len > 0;
	}
	strbuf_free(&rest);
	close(fd);
	return st;
}

/* A folded-lines ingest with extra header lines and a chunked body. */
static int chunked_status(struct standin *s, const char *headers, const char *chunks)
{
	char *req = pw_asprintf("POST /ingest?name=c HTTP/1.1\r\nHost: t\r\n%s"
				"Transfer-Encoding: chunked\r\n\r\n%s",
				headers, chunks);
	int st = raw_status(s, req, strlen(req), NULL);

	free(req);
	return st;
}

static int head_status(struct standin *s, const char *request_line, const char *headers)
{
	char *req = pw_asprintf("%s\r\nHost: t\r\n%sContent-Length: 6\r\n\r\na;b 1\n", request_line,
				headers);
	int st = raw_status(s, req, strlen(req), NULL);

	free(req);
	return st;
}

START_TEST(strict_framing)
{
	struct standin *s = start(false, 0);
	static const char *const bad_sizes[] = {"0x6", " 6", "+6", "-6", "6 ", "6\n", NULL};
	char *chunks;

	/* The well-formed shapes pass, so a 400 below is about the flaw. */
	ck_assert_int_eq(chunked_status(s, "", "6\r\na;b 1\n\r\n0\r\n\r\n"), 200);
	ck_assert_int_eq(chunked_status(s, "", "0006;x=1\r\na;b 1\n\r\n0\r\n\r\n"), 200);
	for (size_t i = 0; bad_sizes[i]; i++) {
		chunks = pw_asprintf("%s\r\na;b 1\n\r\n0\r\n\r\n", bad_sizes[i]);

		ck_assert_msg(chunked_status(s, "", chunks) == 400, "chunk size \"%s\" accepted",
			      bad_sizes[i]);
		free(chunks);
	}
	/* A size that overflows 64 bits must not wrap around to a small one:
	 * it is refused as larger than any body allowed. */
	chunks = "10000000000000006\r\na;b 1\n\r\n0\r\n\r\n";
	ck_assert_int_eq(chunked_status(s, "", chunks), 413);
	/* a second Transfer-Encoding line, or one beside Content-Length */
	ck_assert_int_eq(
		chunked_status(s, "Transfer-Encoding: chunked\r\n", "6\r\na;b 1\n\r\n0\r\n\r\n"),
		400);
	ck_assert_int_eq(
		chunked_status(s, "Transfer-Encoding: identity\r\n", "6\r\na;b 1\n\r\n0\r\n\r\n"),
		400);
	ck_assert_int_eq(chunked_status(s, "Content-Length: 17\r\n", "6\r\na;b 1\n\r\n0\r\n\r\n"),
			 400);
	/* a bare LF in a trailer */
	ck_assert_int_eq(chunked_status(s, "", "6\r\na;b 1\n\r\n0\r\nA: b\nC: d\r\n\r\n"), 400);

	/* methods are case-sensitive tokens */
	ck_assert_int_eq(head_status(s, "POST /ingest?name=c HTTP/1.1", ""), 200);
	ck_assert_int_eq(head_status(s, "post /ingest?name=c HTTP/1.1", ""), 400);
	ck_assert_int_eq(head_status(s, "Post /ingest?name=c HTTP/1.1", ""), 400);
	ck_assert_int_eq(head_status(s, "PO\x01ST /ingest?name=c HTTP/1.1", ""), 400);
	ck_assert_int_eq(head_status(s, "BREW /ingest?name=c HTTP/1.1", ""), 501);
	/* control bytes in the target or in header values; TAB is fine */
	ck_assert_int_eq(head_status(s, "POST /ingest?name=c\x7f HTTP/1.1", ""), 400);
	ck_assert_int_eq(head_status(s, "POST /ingest?name=c HTTP/1.1", "X-A: a\tb\r\n"), 200);
	ck_assert_int_eq(head_status(s, "POST /ingest?name=c HTTP/1.1",
				     "X-A: text/plain\nX-Scope-OrgID: victim\r\n"),
			 400);
	ck_assert_int_eq(head_status(s, "POST /ingest?name=c HTTP/1.1", "X-A: a\rb\r\n"), 400);
	ck_assert_int_eq(head_status(s, "POST /ingest?name=c HTTP/1.1", "X-A: a\x1b[2J\r\n"), 400);
	ck_assert_int_eq(head_status(s, "POST /ingest?name=c HTTP/1.1", "X-A: a\r\r\n"), 400);
	standin_stop(s);
}
END_TEST

/* The limit is on the head itself, whatever the reads brought with it. */
START_TEST(head_limit_is_exact)
{
	struct standin *s = start(false, 0);
	char *pad;

	for (size_t size = 60000; size <= 79000; size += 19000) {
		char *headers;

		pad = malloc(size + 1);
		memset(pad, 'a', size);
		pad[size] = '\0';
		headers = pw_asprintf("X-Pad: %s\r\n", pad);
		ck_assert_int_eq(head_status(s, "POST /ingest?name=c HTTP/1.1", headers),
				 size < 65536 ? 200 : 431);
		free(headers);
		free(pad);
	}
	standin_stop(s);
}
END_TEST

/* A NUL used to end the head early: the lines after it, Content-Length
 * included, were lost and the body was served as a second request. */
START_TEST(nul_in_head_is_refused)
{
	struct standin *s = start(false, 0);
	static const char inner[] = "GET /-/ready HTTP/1.1\r\nHost: t\r\n\r\n";
	struct strbuf req = STRBUF_INIT;
	bool more = true;

	strbuf_puts(&req, "POST /ingest?name=app HTTP/1.1\r\nHost: t\r\nX-Pad: a");
	strbuf_putc(&req, '\0');
	strbuf_printf(&req, "b\r\nContent-Length: %zu\r\n\r\n%s", sizeof(inner) - 1, inner);
	ck_assert_int_eq(raw_status(s, req.data, req.len, &more), 400);
	ck_assert_msg(!more, "an answer followed the 400: the body was read as a request");
	ck_assert_uint_eq(standin_count(s), 0);
	strbuf_free(&req);
	standin_stop(s);
}
END_TEST

START_TEST(stats_and_ready)
{
	struct standin *s = start(false, 0);
	struct strbuf b = STRBUF_INIT;
	struct resp r;
	json_t *j;
	json_error_t je;

	add_series(&b, APP, PPROF, sizeof(PPROF), 3);
	ck_assert_int_eq(push(s, NULL, &b, &r), 200);
	resp_free(&r);
	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=a", NULL, "a;b 1\n", 6, &r), 200);
	resp_free(&r);
	ck_assert_int_eq(one_shot(s, "POST", "/ingest", NULL, "", 0, &r), 400);
	resp_free(&r);
	ck_assert_int_eq(one_shot(s, "GET", "/-/ready", NULL, "", 0, &r), 200);
	ck_assert_str_eq(r.body, "ready\n");
	resp_free(&r);
	ck_assert_int_eq(one_shot(s, "GET", "/stats", NULL, "", 0, &r), 200);
	j = json_loadb(r.body, r.body_len, 0, &je);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "push"), "samples")),
			 3);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "push"), "bytes")),
			 3 * (json_int_t)sizeof(PPROF));
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "ingest"), "bytes")),
			 6);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "rejected"),
							    "invalid_argument")),
			 1);
	json_decref(j);
	resp_free(&r);
	standin_stop(s);
}
END_TEST

START_TEST(store_dir_and_log)
{
	char dir[] = "/tmp/standin-store-XXXXXX", *path, *logbuf = NULL;
	size_t loglen = 0;
	FILE *log = open_memstream(&logbuf, &loglen);
	struct standin_opts o = {.store_dir = NULL, .log = log};
	struct standin *s;
	struct strbuf b = STRBUF_INIT;
	struct resp r;
	char *err = NULL;
	json_t *j;
	json_error_t je;
	struct stat stt;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	path = pw_asprintf("%s/sub", dir);
	o.store_dir = path;
	s = standin_start(&o, &err);
	ck_assert_ptr_nonnull(s);
	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(
		push(s, "Content-Type: application/proto\r\nX-Scope-OrgID: t1\r\n", &b, &r), 200);
	resp_free(&r);
	ck_assert_int_eq(one_shot(s, "POST", "/ingest?name=app%7Bk%3Dv%7D&format=pprof", NULL,
				  PPROF, sizeof(PPROF), &r),
			 200);
	resp_free(&r);
	standin_stop(s);
	fclose(log);

	ck_assert_ptr_nonnull(strstr(
		logbuf, "push tenant=t1 labels={__name__=process_cpu,service_name=app} samples=1"));
	ck_assert_ptr_nonnull(strstr(logbuf, "ingest tenant=anonymous name=app{k=v} format=pprof"));
	free(logbuf);

	{
		char *p = pw_asprintf("%s/push-000001-0-0.pprof", path);

		ck_assert_int_eq(stat(p, &stt), 0);
		ck_assert_int_eq(stt.st_size, (off_t)sizeof(PPROF));
		unlink(p);
		free(p);
		p = pw_asprintf("%s/push-000001-0.json", path);
		j = json_load_file(p, 0, &je);
		ck_assert_ptr_nonnull(j);
		ck_assert_str_eq(json_string_value(json_object_get(j, "tenant")), "t1");
		ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "labels"),
								   "service_name")),
				 "app");
		json_decref(j);
		unlink(p);
		free(p);
		p = pw_asprintf("%s/ingest-000002.body", path);
		ck_assert_int_eq(stat(p, &stt), 0);
		unlink(p);
		free(p);
		p = pw_asprintf("%s/ingest-000002.json", path);
		j = json_load_file(p, 0, &je);
		ck_assert_ptr_nonnull(j);
		ck_assert_str_eq(
			json_string_value(json_object_get(json_object_get(j, "labels"), "k")), "v");
		json_decref(j);
		unlink(p);
		free(p);
	}
	ck_assert_int_eq(rmdir(path), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	free(path);
}
END_TEST

/* Values from the request are escaped in the sink's log: a CR or LF in a
 * label value, the tenant or the ingest name cannot start a forged line. */
START_TEST(log_escapes_request_values)
{
	static const char *const evil[] = {"service_name", "a\r\nforged line \"q\"\x01", NULL};
	char *logbuf = NULL;
	size_t loglen = 0;
	FILE *log = open_memstream(&logbuf, &loglen);
	struct standin_opts o = {.log = log};
	struct standin *s;
	struct strbuf b = STRBUF_INIT;
	struct resp r;
	char *err = NULL;

	s = standin_start(&o, &err);
	ck_assert_ptr_nonnull(s);
	add_series(&b, evil, PPROF, sizeof(PPROF), 1);
	ck_assert_int_eq(
		push(s, "Content-Type: application/proto\r\nX-Scope-OrgID: t1\r\n", &b, &r), 200);
	resp_free(&r);
	ck_assert_int_eq(one_shot(s, "POST",
				  "/ingest?name=app%7Bk%3Dv%0D%0Aforged%3Dx%7D&format=pprof", NULL,
				  PPROF, sizeof(PPROF), &r),
			 200);
	resp_free(&r);
	standin_stop(s);
	fclose(log);

	ck_assert_ptr_nonnull(strstr(logbuf, "push tenant=t1 labels={service_name=a\\r\\nforged "
					     "line \\\"q\\\"\\x01} samples=1"));
	ck_assert_ptr_nonnull(
		strstr(logbuf, "ingest tenant=anonymous name=app{k=v\\r\\nforged=x}"));
	/* Exactly one line per request. */
	{
		size_t lines = 0;

		for (const char *c = logbuf; *c; c++)
			lines += *c == '\n';
		ck_assert_uint_eq(lines, 2);
		ck_assert_ptr_null(strchr(logbuf, '\r'));
	}
	free(logbuf);
}
END_TEST

/* A part with its Content-Disposition repeated: the last one counts, and
 * nothing leaks (found by fuzz_formats; caught under ASan and valgrind). */
START_TEST(multipart_repeated_disposition)
{
	static const char body[] = "--b\r\nContent-Disposition: form-data; name=\"x\"; "
				   "filename=\"f\"\r\nContent-Disposition: form-data; "
				   "name=\"y\"; filename=\"g\"\r\n\r\n1\r\n--b--\r\n";
	struct standin_part *parts;
	size_t n;
	char *err = NULL;

	ck_assert_int_eq(standin_multipart_parse("multipart/form-data; boundary=b",
						 (const uint8_t *)body, strlen(body), &parts, &n,
						 &err),
			 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(parts[0].name, "y");
	ck_assert_str_eq(parts[0].filename, "g");
	standin_parts_free(parts, n);
}
END_TEST

/* ---- pure checks ---- */

START_TEST(parse_name_rules)
{
	struct standin_header *kv;
	size_t n;
	char *err;

	ck_assert_int_eq(
		standin_parse_name(" my-app/x.cpu { env = prod , region=eu}", &kv, &n, &err), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(kv[0].name, "__name__");
	ck_assert_str_eq(kv[0].value, "my-app/x.cpu");
	ck_assert_str_eq(kv[1].name, "env");
	ck_assert_str_eq(kv[1].value, "prod");
	ck_assert_str_eq(kv[2].value, "eu");
	standin_kv_free(kv, n);

	/* later duplicates win; text after '}' is ignored; an unterminated pair is dropped */
	ck_assert_int_eq(standin_parse_name("a{k=1,k=2}junk", &kv, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(kv[1].value, "2");
	standin_kv_free(kv, n);
	ck_assert_int_eq(standin_parse_name("a{k=1", &kv, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	standin_kv_free(kv, n);

	ck_assert_int_eq(standin_parse_name("", &kv, &n, &err), -1);
	free(err);
	ck_assert_int_eq(standin_parse_name("a b", &kv, &n, &err), -1);
	free(err);
	ck_assert_int_eq(standin_parse_name("a{=v}", &kv, &n, &err), -1);
	free(err);
	ck_assert_int_eq(standin_parse_name("a{k-x=v}", &kv, &n, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "k-x"));
	free(err);
}
END_TEST

START_TEST(pprof_check)
{
	uint8_t buf[sizeof(PPROF)];
	char *err;
	size_t zlen;
	uint8_t *z = gz(PPROF, sizeof(PPROF), &zlen);

	ck_assert_ptr_null(standin_check_pprof(PPROF, sizeof(PPROF)));
	{
		size_t slen;
		const uint8_t *sample = standin_pprof_sample(&slen);

		ck_assert_ptr_null(standin_check_pprof(sample, slen));
	}
	ck_assert_ptr_null(standin_check_pprof(z, zlen));
	/* truncated gzip, truncated protobuf */
	err = standin_check_pprof(z, zlen - 5);
	ck_assert_ptr_nonnull(err);
	free(err);
	free(z);
	err = standin_check_pprof(PPROF, sizeof(PPROF) - 3);
	ck_assert_ptr_nonnull(err);
	free(err);
	/* sample_type sent as a varint */
	memcpy(buf, PPROF, sizeof(buf));
	buf[0] = 0x08;
	err = standin_check_pprof(buf, sizeof(buf));
	ck_assert_ptr_nonnull(err);
	free(err);
	/* without the string table */
	err = standin_check_pprof(PPROF, 28);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err, "string_table"));
	free(err);
	err = standin_check_pprof((const uint8_t *)"", 0);
	ck_assert_ptr_nonnull(err);
	free(err);
}
END_TEST

START_TEST(multipart_and_query)
{
	struct standin_part *parts;
	size_t n;
	char *err, *v;
	static const char body[] =
		"preamble\r\n--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n"
		"1\r\n--b\r\n\r\nno-headers\r\n--b--";
	static const char body2[] = "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n"
				    "1\r\n--b--\r\n";

	ck_assert_int_eq(standin_multipart_parse("multipart/form-data; boundary=\"b\"",
						 (const uint8_t *)body, strlen(body), &parts, &n,
						 &err),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "name"));
	free(err);
	ck_assert_int_eq(standin_multipart_parse("multipart/form-data; boundary=b",
						 (const uint8_t *)body2, strlen(body2), &parts, &n,
						 &err),
			 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(parts[0].name, "x");
	ck_assert_uint_eq(parts[0].len, 1);
	ck_assert_ptr_nonnull(standin_part_find(parts, n, "x"));
	ck_assert_ptr_null(standin_part_find(parts, n, "y"));
	standin_parts_free(parts, n);
	ck_assert_int_eq(
		standin_multipart_parse("text/plain", (const uint8_t *)body, 5, &parts, &n, &err),
		-1);
	free(err);

	v = standin_query_get("a=1&name=x%7By%3D1%7D+z&b", "name");
	ck_assert_str_eq(v, "x{y=1} z");
	free(v);
	v = standin_query_get("a=1&b", "b");
	ck_assert_str_eq(v, "");
	free(v);
	ck_assert_ptr_null(standin_query_get("a=1", "name"));
	/* A %00 would have cut the value short: "app". */
	ck_assert_ptr_null(standin_query_get("name=app%00%7Bk%3Dv%7D", "name"));
	{
		static const char nul_head[] = "--b\r\nContent-Disposition: form-data; name=\"x\"\0"
					       "\r\n\r\n1\r\n--b--\r\n";

		ck_assert_int_eq(standin_multipart_parse("multipart/form-data; boundary=b",
							 (const uint8_t *)nul_head,
							 sizeof(nul_head) - 1, &parts, &n, &err),
				 -1);
		ck_assert_str_eq(err, "multipart: NUL byte in part headers");
		free(err);
	}
	v = standin_media_type(" Application/JSON ; charset=utf-8");
	ck_assert_str_eq(v, "application/json");
	free(v);
}
END_TEST

/* ---- mockhost sink ---- */

START_TEST(sink_usage)
{
	char *help[] = {"sink", "--help", NULL};
	char *bad[] = {"sink", "--bogus", NULL};
	char *noarg[] = {"sink", NULL};
	char *badlisten[] = {"sink", "--listen", "nowhere", NULL};
	FILE *saved = stdout;
	char *out = NULL;
	size_t outlen = 0;
	FILE *mem = open_memstream(&out, &outlen);

	stdout = mem;
	ck_assert_int_eq(pw_sink_main(2, help), 0);
	stdout = saved;
	fclose(mem);
	ck_assert_ptr_nonnull(strstr(out, "--require-tenant"));
	free(out);
	ck_assert_int_eq(pw_sink_main(2, bad), 2);
	ck_assert_int_eq(pw_sink_main(1, noarg), 2);
	ck_assert_int_eq(pw_sink_main(3, badlisten), 2);
}
END_TEST

/* Runs the sink in a child process, sends it a push, then SIGTERM. */
START_TEST(sink_runs_until_sigterm)
{
	int out[2], status, port = 0;
	pid_t pid;
	char line[256] = "", *p;
	FILE *f;
	struct strbuf b = STRBUF_INIT;
	struct resp r;
	int fd;

	ck_assert_int_eq(pipe(out), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *argv[] = {"sink", "--listen", "127.0.0.1:0", NULL};

		dup2(out[1], STDOUT_FILENO);
		close(out[0]);
		close(out[1]);
		_exit(pw_sink_main(3, argv));
	}
	close(out[1]);
	f = fdopen(out[0], "r");
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	p = strstr(line, "http://127.0.0.1:");
	ck_assert_ptr_nonnull(p);
	port = atoi(p + strlen("http://127.0.0.1:"));
	ck_assert_int_gt(port, 0);

	add_series(&b, APP, PPROF, sizeof(PPROF), 1);
	fd = conn_open(port);
	ck_assert_int_eq(roundtrip(fd, "POST", PUSH_PATH, PROTO_HDRS, b.data, b.len, &r), 0);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	close(fd);
	strbuf_free(&b);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	ck_assert_ptr_nonnull(strstr(line, "push tenant=anonymous labels={__name__=process_cpu"));

	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	fclose(f);
}
END_TEST

static Suite *standin_suite(void)
{
	Suite *s = suite_create("standin");
	TCase *tc = tcase_create("standin");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, push_accepted_and_recorded);
	tcase_add_test(tc, push_gzip_request_and_json);
	tcase_add_test(tc, push_rejections);
	tcase_add_test(tc, tenant_required);
	tcase_add_test(tc, body_limit);
	tcase_add_test(tc, ingest_pprof);
	tcase_add_test(tc, ingest_jfr_folded_lines);
	tcase_add_test(tc, ingest_name_errors);
	tcase_add_test(tc, scripted_sequence);
	tcase_add_test(tc, scripted_delay_reset_gzip_close);
	tcase_add_test(tc, stop_cuts_delay);
	tcase_add_test(tc, keep_alive_chunked_and_repeated_headers);
	tcase_add_test(tc, strict_framing);
	tcase_add_test(tc, head_limit_is_exact);
	tcase_add_test(tc, nul_in_head_is_refused);
	tcase_add_test(tc, stats_and_ready);
	tcase_add_test(tc, store_dir_and_log);
	tcase_add_test(tc, log_escapes_request_values);
	tcase_add_test(tc, multipart_repeated_disposition);
	tcase_add_test(tc, parse_name_rules);
	tcase_add_test(tc, pprof_check);
	tcase_add_test(tc, multipart_and_query);
	tcase_add_test(tc, sink_usage);
	tcase_add_test(tc, sink_runs_until_sigterm);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(standin_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
