/*
 * test_retry.c - outcome classification, Retry-After and backoff arithmetic.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "retry.h"

#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)

/* One push attempt and what it must turn into, for both retry_on_429 values. */
struct push_row {
	const char *name;
	enum pw_transport transport;
	const char *transport_error;
	long status;
	const char *ctype;
	const char *body;
	enum pw_verdict v429; /* retry_on_429 = true */
	enum pw_verdict vno429; /* retry_on_429 = false */
	int code;
	const char *err; /* NULL when delivered */
};

#define R PW_VERDICT_RETRY
#define D PW_VERDICT_DROP
#define OK PW_VERDICT_DELIVERED
#define JSON "application/json"
#define T_OK PW_TRANSPORT_OK

static const struct push_row push_rows[] = {
	/* Transport outcomes. */
	{"timeout", PW_TRANSPORT_TIMEOUT, NULL, 0, NULL, NULL, R, R, PW_CODE_DEADLINE_EXCEEDED,
	 "deadline_exceeded: context deadline exceeded"},
	{"dial error", PW_TRANSPORT_ERROR, "Failed to connect to x port 1", 0, NULL, NULL, R, R,
	 PW_CODE_UNAVAILABLE, "unavailable: Failed to connect to x port 1"},
	{"error without text", PW_TRANSPORT_ERROR, NULL, 0, NULL, NULL, R, R, PW_CODE_UNAVAILABLE,
	 "unavailable: transport error"},
	{"canceled", PW_TRANSPORT_CANCELED, NULL, 0, NULL, NULL, D, D, PW_CODE_CANCELED,
	 "canceled: context canceled"},

	/* 200 answers. */
	{"200 proto", T_OK, NULL, 200, "application/proto", "", OK, OK, PW_CODE_OK, NULL},
	{"200 proto with params", T_OK, NULL, 200, "application/proto; x=y", "", OK, OK, PW_CODE_OK,
	 NULL},
	{"200 html", T_OK, NULL, 200, "text/html", "<html>", R, R, PW_CODE_UNKNOWN,
	 "unknown: invalid content-type: \"text/html\"; expecting \"application/proto\""},
	{"200 no content type", T_OK, NULL, 200, NULL, "", R, R, PW_CODE_UNKNOWN,
	 "unknown: invalid content-type: \"\"; expecting \"application/proto\""},
	{"200 type not UTF-8", T_OK, NULL, 200, "text/\xff", "", R, R, PW_CODE_UNKNOWN,
	 "unknown: invalid content-type: \"text/\\xFF\"; expecting \"application/proto\""},
	{"200 other codec", T_OK, NULL, 200, "application/json", "{}", R, R, PW_CODE_INTERNAL,
	 "internal: invalid content-type: \"application/json\"; expecting \"application/proto\""},

	/* Connect JSON errors: the code wins over the status. */
	{"json canceled", T_OK, NULL, 499, JSON, "{\"code\":\"canceled\",\"message\":\"m\"}", D, D,
	 PW_CODE_CANCELED, "canceled: m"},
	{"json unknown", T_OK, NULL, 500, JSON, "{\"code\":\"unknown\",\"message\":\"test\"}", R, R,
	 PW_CODE_UNKNOWN, "unknown: test"},
	{"json invalid_argument", T_OK, NULL, 400, JSON,
	 "{\"code\":\"invalid_argument\",\"message\":\"no profiles received\"}", D, D,
	 PW_CODE_INVALID_ARGUMENT, "invalid_argument: no profiles received"},
	{"json deadline_exceeded", T_OK, NULL, 504, JSON,
	 "{\"code\":\"deadline_exceeded\",\"message\":\"m\"}", R, R, PW_CODE_DEADLINE_EXCEEDED,
	 "deadline_exceeded: m"},
	{"json not_found", T_OK, NULL, 404, JSON, "{\"code\":\"not_found\",\"message\":\"m\"}", D,
	 D, PW_CODE_NOT_FOUND, "not_found: m"},
	{"json already_exists", T_OK, NULL, 409, JSON,
	 "{\"code\":\"already_exists\",\"message\":\"m\"}", D, D, PW_CODE_ALREADY_EXISTS,
	 "already_exists: m"},
	{"json permission_denied", T_OK, NULL, 403, JSON,
	 "{\"code\":\"permission_denied\",\"message\":\"m\"}", D, D, PW_CODE_PERMISSION_DENIED,
	 "permission_denied: m"},
	{"json resource_exhausted", T_OK, NULL, 429, JSON,
	 "{\"code\":\"resource_exhausted\",\"message\":\"rate limited\"}", R, D,
	 PW_CODE_RESOURCE_EXHAUSTED, "resource_exhausted: rate limited"},
	{"json failed_precondition", T_OK, NULL, 400, JSON,
	 "{\"code\":\"failed_precondition\",\"message\":\"m\"}", D, D, PW_CODE_FAILED_PRECONDITION,
	 "failed_precondition: m"},
	{"json aborted", T_OK, NULL, 409, JSON, "{\"code\":\"aborted\",\"message\":\"m\"}", R, R,
	 PW_CODE_ABORTED, "aborted: m"},
	{"json out_of_range", T_OK, NULL, 400, JSON,
	 "{\"code\":\"out_of_range\",\"message\":\"m\"}", D, D, PW_CODE_OUT_OF_RANGE,
	 "out_of_range: m"},
	{"json unimplemented", T_OK, NULL, 501, JSON,
	 "{\"code\":\"unimplemented\",\"message\":\"m\"}", D, D, PW_CODE_UNIMPLEMENTED,
	 "unimplemented: m"},
	{"json internal", T_OK, NULL, 500, JSON, "{\"code\":\"internal\",\"message\":\"m\"}", R, R,
	 PW_CODE_INTERNAL, "internal: m"},
	{"json unavailable", T_OK, NULL, 503, JSON, "{\"code\":\"unavailable\",\"message\":\"m\"}",
	 R, R, PW_CODE_UNAVAILABLE, "unavailable: m"},
	{"json data_loss", T_OK, NULL, 500, JSON, "{\"code\":\"data_loss\",\"message\":\"m\"}", R,
	 R, PW_CODE_DATA_LOSS, "data_loss: m"},
	{"json unauthenticated", T_OK, NULL, 401, JSON,
	 "{\"code\":\"unauthenticated\",\"message\":\"no org id\"}", D, D, PW_CODE_UNAUTHENTICATED,
	 "unauthenticated: no org id"},
	{"json code on an unrelated status", T_OK, NULL, 400, JSON,
	 "{\"code\":\"unavailable\",\"message\":\"m\"}", R, R, PW_CODE_UNAVAILABLE,
	 "unavailable: m"},
	{"json charset", T_OK, NULL, 500, "application/json; charset=utf-8",
	 "{\"code\":\"invalid_argument\",\"message\":\"m\",\"details\":[]}", D, D,
	 PW_CODE_INVALID_ARGUMENT, "invalid_argument: m"},

	/* JSON without a usable code: the status decides, the message stays. */
	{"json unrecognised code", T_OK, NULL, 503, JSON, "{\"code\":\"bogus\",\"message\":\"m\"}",
	 R, R, PW_CODE_UNAVAILABLE, "unavailable: m"},
	{"json code ok", T_OK, NULL, 500, JSON, "{\"code\":\"ok\",\"message\":\"m\"}", R, R,
	 PW_CODE_UNKNOWN, "unknown: m"},
	{"json without code", T_OK, NULL, 401, JSON, "{\"message\":\"who\"}", D, D,
	 PW_CODE_UNAUTHENTICATED, "unauthenticated: who"},
	{"json without message", T_OK, NULL, 500, JSON, "{\"code\":\"internal\"}", R, R,
	 PW_CODE_INTERNAL, "internal: Internal Server Error"},
	{"json 429 without code", T_OK, NULL, 429, JSON, "{\"message\":\"slow down\"}", R, D,
	 PW_CODE_UNAVAILABLE, "unavailable: slow down"},
	{"json 400 without code", T_OK, NULL, 400, JSON, "{}", D, D, PW_CODE_INTERNAL,
	 "internal: Bad Request"},
	{"malformed json", T_OK, NULL, 500, JSON, "{\"code\":", R, R, PW_CODE_UNKNOWN,
	 "unknown: Internal Server Error"},
	{"json code not a string", T_OK, NULL, 503, JSON, "{\"code\":3,\"message\":\"m\"}", R, R,
	 PW_CODE_UNAVAILABLE, "unavailable: Service Unavailable"},
	{"json array", T_OK, NULL, 403, JSON, "[]", D, D, PW_CODE_PERMISSION_DENIED,
	 "permission_denied: Forbidden"},
	{"json with trailing garbage", T_OK, NULL, 404, JSON, "{} x", D, D, PW_CODE_UNIMPLEMENTED,
	 "unimplemented: Not Found"},
	{"json body but other type", T_OK, NULL, 500, "text/plain",
	 "{\"code\":\"invalid_argument\",\"message\":\"m\"}", R, R, PW_CODE_UNKNOWN,
	 "unknown: Internal Server Error"},

	/* Non-JSON answers (proxies, load balancers): SPEC 6.2 fallback + D2. */
	{"html 400", T_OK, NULL, 400, "text/html", "<html>", D, D, PW_CODE_INTERNAL,
	 "internal: Bad Request"},
	{"html 401", T_OK, NULL, 401, "text/html", "", D, D, PW_CODE_UNAUTHENTICATED,
	 "unauthenticated: Unauthorized"},
	{"html 403", T_OK, NULL, 403, NULL, "", D, D, PW_CODE_PERMISSION_DENIED,
	 "permission_denied: Forbidden"},
	{"html 404", T_OK, NULL, 404, "text/plain", "404 page not found", D, D,
	 PW_CODE_UNIMPLEMENTED, "unimplemented: Not Found"},
	{"html 429", T_OK, NULL, 429, "text/html", "", R, D, PW_CODE_UNAVAILABLE,
	 "unavailable: Too Many Requests"},
	{"html 502", T_OK, NULL, 502, "text/html", "", R, R, PW_CODE_UNAVAILABLE,
	 "unavailable: Bad Gateway"},
	{"html 503", T_OK, NULL, 503, "text/html", "", R, R, PW_CODE_UNAVAILABLE,
	 "unavailable: Service Unavailable"},
	{"html 504", T_OK, NULL, 504, "text/html", "", R, R, PW_CODE_UNAVAILABLE,
	 "unavailable: Gateway Timeout"},
	{"html 408", T_OK, NULL, 408, "text/html", "", R, R, PW_CODE_UNKNOWN,
	 "unknown: Request Timeout"},
	{"html 413", T_OK, NULL, 413, "text/html", "", R, R, PW_CODE_UNKNOWN,
	 "unknown: Request Entity Too Large"},
	{"html 500", T_OK, NULL, 500, "text/html", "", R, R, PW_CODE_UNKNOWN,
	 "unknown: Internal Server Error"},
	{"redirect not followed", T_OK, NULL, 302, "text/html", "", R, R, PW_CODE_UNKNOWN,
	 "unknown: Found"},
	{"status without phrase", T_OK, NULL, 599, NULL, "", R, R, PW_CODE_UNKNOWN,
	 "unknown: HTTP status 599"},
};

static void check_push_row(const struct push_row *r, bool retry_on_429)
{
	struct pw_attempt a = {
		.transport = r->transport,
		.transport_error = r->transport_error,
		.http_status = r->status,
		.content_type = r->ctype,
		.body = (const uint8_t *)r->body,
		.body_len = r->body ? strlen(r->body) : 0,
	};
	enum pw_verdict want = retry_on_429 ? r->v429 : r->vno429;
	int code = -42;
	char *err = (char *)"unset";
	enum pw_verdict v = pw_classify_push(&a, retry_on_429, &code, &err);

	ck_assert_msg(v == want, "%s (retry_on_429=%d): verdict %d, want %d", r->name, retry_on_429,
		      v, want);
	ck_assert_msg(code == r->code, "%s: code %d, want %d", r->name, code, r->code);
	if (r->err) {
		ck_assert_ptr_nonnull(err);
		ck_assert_msg(strcmp(err, r->err) == 0, "%s: err \"%s\", want \"%s\"", r->name, err,
			      r->err);
	} else {
		ck_assert_ptr_null(err);
	}
	free(err);

	/* The outputs are optional. */
	ck_assert_int_eq(pw_classify_push(&a, retry_on_429, NULL, NULL), want);
}

START_TEST(test_push_table)
{
	check_push_row(&push_rows[_i], true);
	check_push_row(&push_rows[_i], false);
}
END_TEST

/* gzip-compresses s (malloc'd). */
static uint8_t *gzip_bytes(const void *s, size_t n, size_t *outlen)
{
	z_stream zs;
	size_t cap = compressBound((uLong)n) + 64;
	uint8_t *out = malloc(cap);

	memset(&zs, 0, sizeof(zs));
	ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
			 Z_OK);
	zs.next_in = (Bytef *)(uintptr_t)s;
	zs.avail_in = (uInt)n;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*outlen = zs.total_out;
	deflateEnd(&zs);
	return out;
}

START_TEST(test_push_gzip_json)
{
	const char *body = "{\"code\":\"resource_exhausted\",\"message\":\"too big\"}";
	size_t zlen;
	uint8_t *z = gzip_bytes(body, strlen(body), &zlen);
	struct pw_attempt a = {.http_status = 429,
			       .content_type = JSON,
			       .content_encoding = "gzip",
			       .body = z,
			       .body_len = zlen};
	int code;
	char *err;

	ck_assert_int_eq(pw_classify_push(&a, false, &code, &err), PW_VERDICT_DROP);
	ck_assert_int_eq(code, PW_CODE_RESOURCE_EXHAUSTED);
	ck_assert_str_eq(err, "resource_exhausted: too big");
	free(err);

	/* Recognised by its magic bytes even without Content-Encoding. */
	a.content_encoding = NULL;
	ck_assert_int_eq(pw_classify_push(&a, true, &code, &err), PW_VERDICT_RETRY);
	ck_assert_str_eq(err, "resource_exhausted: too big");
	free(err);

	/* A truncated stream falls back to the HTTP status. */
	a.content_encoding = "GZIP";
	a.body_len = zlen - 6;
	ck_assert_int_eq(pw_classify_push(&a, true, &code, &err), PW_VERDICT_RETRY);
	ck_assert_int_eq(code, PW_CODE_UNAVAILABLE);
	ck_assert_str_eq(err, "unavailable: Too Many Requests");
	free(err);
	free(z);
}
END_TEST

START_TEST(test_push_gzip_bomb)
{
	/* 2 MiB of JSON whitespace: over the cap, so the body is not trusted. */
	size_t n = (size_t)2 << 20, zlen;
	char *big = malloc(n);
	uint8_t *z;
	struct pw_attempt a = {
		.http_status = 403, .content_type = JSON, .content_encoding = "gzip"};
	const char *head = "{\"code\":\"internal\",\"message\":\"x\"}";
	int code;
	char *err;

	memset(big, ' ', n);
	memcpy(big, head, strlen(head));
	z = gzip_bytes(big, n, &zlen);
	a.body = z;
	a.body_len = zlen;
	ck_assert_int_eq(pw_classify_push(&a, true, &code, &err), PW_VERDICT_DROP);
	ck_assert_int_eq(code, PW_CODE_PERMISSION_DENIED);
	ck_assert_str_eq(err, "permission_denied: Forbidden");
	free(err);

	/* Just under the cap is fine. */
	zlen = 0;
	free(z);
	z = gzip_bytes(big, (size_t)1 << 20, &zlen);
	a.body = z;
	a.body_len = zlen;
	ck_assert_int_eq(pw_classify_push(&a, true, &code, &err), PW_VERDICT_RETRY);
	ck_assert_str_eq(err, "internal: x");
	free(err);
	free(z);
	free(big);
}
END_TEST

START_TEST(test_push_message_escaping)
{
	/* JSON \u0000 is refused by the parser: the status text is used. */
	const char *nul = "{\"code\":\"internal\",\"message\":\"a\\u0000b\"}";
	const char *utf = "{\"code\":\"internal\",\"message\":\"caf\\u00e9\"}";
	struct pw_attempt a = {.http_status = 500,
			       .content_type = JSON,
			       .body = (const uint8_t *)nul,
			       .body_len = strlen(nul)};
	char *err;

	pw_classify_push(&a, true, NULL, &err);
	ck_assert_str_eq(err, "unknown: Internal Server Error");
	free(err);
	a.body = (const uint8_t *)utf;
	a.body_len = strlen(utf);
	pw_classify_push(&a, true, NULL, &err);
	ck_assert_str_eq(err, "internal: caf\xc3\xa9");
	free(err);
}
END_TEST

START_TEST(test_code_names)
{
	for (int c = 0; c <= 16; c++)
		ck_assert_int_eq(pw_code_parse(pw_code_name(c)), c);
	ck_assert_str_eq(pw_code_name(PW_CODE_RESOURCE_EXHAUSTED), "resource_exhausted");
	ck_assert_str_eq(pw_code_name(17), "unknown");
	ck_assert_str_eq(pw_code_name(-1), "unknown");
	ck_assert_int_eq(pw_code_parse("Resource_Exhausted"), -1);
	ck_assert_int_eq(pw_code_parse(""), -1);
	ck_assert_int_eq(pw_code_parse(NULL), -1);

	ck_assert_int_eq(pw_code_from_http(400), PW_CODE_INTERNAL);
	ck_assert_int_eq(pw_code_from_http(401), PW_CODE_UNAUTHENTICATED);
	ck_assert_int_eq(pw_code_from_http(403), PW_CODE_PERMISSION_DENIED);
	ck_assert_int_eq(pw_code_from_http(404), PW_CODE_UNIMPLEMENTED);
	ck_assert_int_eq(pw_code_from_http(429), PW_CODE_UNAVAILABLE);
	ck_assert_int_eq(pw_code_from_http(502), PW_CODE_UNAVAILABLE);
	ck_assert_int_eq(pw_code_from_http(503), PW_CODE_UNAVAILABLE);
	ck_assert_int_eq(pw_code_from_http(504), PW_CODE_UNAVAILABLE);
	ck_assert_int_eq(pw_code_from_http(500), PW_CODE_UNKNOWN);
	ck_assert_int_eq(pw_code_from_http(409), PW_CODE_UNKNOWN);
}
END_TEST

/* Ingest: one row per SPEC 6.3 row and D3. */
struct ingest_row {
	long status;
	enum pw_verdict v429, vno429;
};

static const struct ingest_row ingest_rows[] = {
	{200, OK, OK}, {201, OK, OK}, {202, OK, OK}, {204, OK, OK}, {299, OK, OK},
	{429, R, D},   {408, R, R},   {500, R, R},   {502, R, R},   {503, R, R},
	{599, R, R},   {100, D, D},   {301, D, D},   {304, D, D},   {400, D, D},
	{401, D, D},   {403, D, D},   {404, D, D},   {413, D, D},   {422, D, D},
};

START_TEST(test_ingest_table)
{
	const struct ingest_row *r = &ingest_rows[_i];
	const char *body = "{\"code\":\"x\",\"message\":\"y\"}";
	struct pw_attempt a = {.http_status = r->status,
			       .content_type = "application/json",
			       .body = (const uint8_t *)body,
			       .body_len = strlen(body)};

	for (int flag = 0; flag <= 1; flag++) {
		enum pw_verdict want = flag ? r->v429 : r->vno429;
		char *err = (char *)"unset";
		enum pw_verdict v = pw_classify_ingest(&a, flag, &err);

		ck_assert_msg(v == want, "status %ld flag %d: %d want %d", r->status, flag, v,
			      want);
		if (want == OK) {
			ck_assert_ptr_null(err);
		} else {
			char *exp = malloc(128);

			snprintf(exp, 128, "remote error: pyroscope write error: status=%ld msg=%s",
				 r->status, body);
			ck_assert_str_eq(err, exp);
			free(exp);
			free(err);
		}
		ck_assert_int_eq(pw_classify_ingest(&a, flag, NULL), want);
	}
}
END_TEST

START_TEST(test_ingest_transport)
{
	struct pw_attempt a = {.transport = PW_TRANSPORT_TIMEOUT};
	char *err;

	ck_assert_int_eq(pw_classify_ingest(&a, false, &err), PW_VERDICT_RETRY);
	ck_assert_str_eq(err, "deadline_exceeded: context deadline exceeded");
	free(err);
	a.transport = PW_TRANSPORT_ERROR;
	a.transport_error = "SSL certificate problem";
	ck_assert_int_eq(pw_classify_ingest(&a, false, &err), PW_VERDICT_RETRY);
	ck_assert_str_eq(err, "unknown: SSL certificate problem");
	free(err);
	a.transport_error = NULL;
	ck_assert_int_eq(pw_classify_ingest(&a, false, &err), PW_VERDICT_RETRY);
	ck_assert_str_eq(err, "unknown: transport error");
	free(err);
	a.transport = PW_TRANSPORT_CANCELED;
	ck_assert_int_eq(pw_classify_ingest(&a, true, &err), PW_VERDICT_DROP);
	ck_assert_str_eq(err, "canceled: context canceled");
	free(err);
}
END_TEST

START_TEST(test_ingest_body)
{
	size_t n = 5000, zlen;
	uint8_t *big = malloc(n);
	const uint8_t odd[] = {'a', 0x00, 'b', 0xFF, 0xC3, 0xA9, 0xE2, 0x82};
	struct pw_attempt a = {.http_status = 422};
	char *err;
	uint8_t *z;

	/* No body at all. */
	pw_classify_ingest(&a, true, &err);
	ck_assert_str_eq(err, "remote error: pyroscope write error: status=422 msg=");
	free(err);

	/* At most 2048 bytes of the body are quoted. */
	memset(big, 'q', n);
	a.body = big;
	a.body_len = n;
	pw_classify_ingest(&a, true, &err);
	ck_assert_uint_eq(strlen(err),
			  strlen("remote error: pyroscope write error: status=422 msg=") + 2048);
	free(err);

	/* NUL and bytes that are not UTF-8 are escaped, valid UTF-8 is kept. */
	a.body = odd;
	a.body_len = sizeof(odd);
	pw_classify_ingest(&a, true, &err);
	ck_assert_str_eq(err, "remote error: pyroscope write error: status=422 "
			      "msg=a\\x00b\\xFF\xc3\xa9\\xE2\\x82");
	free(err);

	/* A gzip body is quoted decoded. */
	z = gzip_bytes("quota exceeded", 14, &zlen);
	a.body = z;
	a.body_len = zlen;
	a.content_encoding = "gzip";
	pw_classify_ingest(&a, true, &err);
	ck_assert_str_eq(err, "remote error: pyroscope write error: status=422 msg=quota exceeded");
	free(err);
	free(z);
	free(big);
}
END_TEST

/* Sun, 06 Nov 1994 08:49:37 GMT */
#define T1994 INT64_C(784111777)

START_TEST(test_retry_after)
{
	ck_assert_int_eq(pw_retry_after_parse("120", 0), 120 * SEC);
	ck_assert_int_eq(pw_retry_after_parse(" 7 ", 0), 7 * SEC);
	ck_assert_int_eq(pw_retry_after_parse("1", T1994), 1 * SEC);
	ck_assert_int_eq(pw_retry_after_parse("0", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("000", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse(NULL, 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("-5", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("+5", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("1.5", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("12abc", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("1 2", 0), -1);
	/* Absurd values saturate instead of overflowing. */
	ck_assert_int_eq(pw_retry_after_parse("99999999999999999999999999", 0), 1000000000 * SEC);
	ck_assert_int_eq(pw_retry_after_parse("9223372036854775808", 0), 1000000000 * SEC);
	ck_assert_int_gt(pw_retry_after_parse("999999999", 0), 0);

	/* The three HTTP-date forms. */
	ck_assert_int_eq(pw_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", T1994 - 30),
			 30 * SEC);
	ck_assert_int_eq(pw_retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT", T1994 - 30),
			 30 * SEC);
	ck_assert_int_eq(pw_retry_after_parse("Sun Nov  6 08:49:37 1994", T1994 - 30), 30 * SEC);
	ck_assert_int_eq(pw_retry_after_parse("Thu Nov 16 08:49:37 1994", T1994), 10 * 86400 * SEC);
	/* 2030-01-01 00:00:00 is 1893456000. */
	ck_assert_int_eq(pw_retry_after_parse("Tue, 01 Jan 2030 00:00:00 GMT", 1893455999), SEC);
	ck_assert_int_eq(pw_retry_after_parse("Tuesday, 01-Jan-30 00:00:00 GMT", 1893455940),
			 60 * SEC);
	/* Leap day. */
	ck_assert_int_eq(pw_retry_after_parse("Thu, 29 Feb 2024 00:00:01 GMT", 1709164800), SEC);

	/* Now or past: ignored. */
	ck_assert_int_eq(pw_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", T1994), -1);
	ck_assert_int_eq(pw_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", T1994 + 1), -1);
	/* Far future saturates. */
	ck_assert_int_eq(pw_retry_after_parse("Fri, 31 Dec 9999 23:59:59 GMT", 0),
			 1000000000 * SEC);

	/* Malformed. */
	ck_assert_int_eq(pw_retry_after_parse("Sun, 06 Nov 1994 08:49:37 UTC", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("Sun, 6 Nov 1994 08:49:37 GMT", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("Sun, 32 Nov 1994 08:49:37 GMT", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("Sun, 00 Nov 1994 08:49:37 GMT", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("Sun, 06 Nob 1994 08:49:37 GMT", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("Sun, 06 Nov 1994 24:00:00 GMT", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("Sun, 06 Nov 1994 08:60:00 GMT", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT x", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("Sun, 06 Nov 1994 08:49", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("Xyz, 06 Nov 1994 08:49:37 GMT", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("Sun Nov", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("Sun", 0), -1);
	ck_assert_int_eq(pw_retry_after_parse("soon", 0), -1);
}
END_TEST

START_TEST(test_backoff_defaults)
{
	/* 500ms, 5m, 10 attempts: nine sleeps, each from a doubling range. */
	static const int64_t lo[] = {500 * MS, 1 * SEC,	 2 * SEC,  4 * SEC,  8 * SEC,
				     16 * SEC, 32 * SEC, 64 * SEC, 128 * SEC};
	struct pw_backoff b, b2;

	pw_backoff_init(&b, 500 * MS, 300 * SEC, 10);
	pw_backoff_init(&b2, 500 * MS, 300 * SEC, 10);
	for (int i = 0; i < 9; i++) {
		int64_t hi_d = pw_backoff_next(&b2, UINT64_MAX);

		ck_assert_int_eq(pw_backoff_next(&b, 0), lo[i]);
		ck_assert_int_ge(hi_d, lo[i]);
		ck_assert_int_lt(hi_d, 2 * lo[i]);
		ck_assert_int_eq(b.count, i + 1);
	}
	ck_assert_int_eq(pw_backoff_next(&b, 0), -1);
	ck_assert_int_eq(b.count, 10);
}
END_TEST

START_TEST(test_backoff_exact_jitter)
{
	struct pw_backoff b;

	pw_backoff_init(&b, 100, 1000, 0);
	ck_assert_int_eq(b.lo_ns, 100);
	ck_assert_int_eq(b.hi_ns, 200);
	ck_assert_int_eq(pw_backoff_next(&b, 7), 107); /* [100,200) */
	ck_assert_int_eq(pw_backoff_next(&b, 7), 207); /* [200,400) */
	ck_assert_int_eq(pw_backoff_next(&b, 7), 407); /* [400,800) */
	ck_assert_int_eq(pw_backoff_next(&b, 7), 807); /* [800,1000): capped */
	ck_assert_int_eq(pw_backoff_next(&b, 7), 807); /* stays */
	ck_assert_int_eq(pw_backoff_next(&b, 250), 850); /* 250 % 200 = 50 */
	ck_assert_int_eq(b.lo_ns, 800);
	ck_assert_int_eq(b.hi_ns, 1000);
}
END_TEST

START_TEST(test_backoff_unlimited)
{
	struct pw_backoff b;

	pw_backoff_init(&b, 500 * MS, 300 * SEC, 0);
	for (int i = 0; i < 9; i++)
		pw_backoff_next(&b, 0);
	/* Past 256s the range is [256s, 300s) for ever. */
	for (int i = 0; i < 1000; i++) {
		int64_t d = pw_backoff_next(&b, (uint64_t)i * 0x9E3779B97F4A7C15u);

		ck_assert_int_ge(d, 256 * SEC);
		ck_assert_int_lt(d, 300 * SEC);
	}
	ck_assert_int_eq(b.count, 1009);
}
END_TEST

/* Number of attempts a limit allows: 1 + number of delays before -1. */
static int attempts_for(int64_t max_retries)
{
	struct pw_backoff b;
	int attempts = 1;

	pw_backoff_init(&b, 1, 10, max_retries);
	while (attempts < 100000 && pw_backoff_next(&b, 0) >= 0)
		attempts++;
	return attempts;
}

START_TEST(test_backoff_attempts)
{
	ck_assert_int_eq(attempts_for(1), 1);
	ck_assert_int_eq(attempts_for(3), 3);
	ck_assert_int_eq(attempts_for(10), 10);
	ck_assert_int_eq(attempts_for(0), 100000); /* unlimited */
	ck_assert_int_eq(attempts_for(-1), 1);
}
END_TEST

START_TEST(test_backoff_overflow)
{
	struct pw_backoff b;
	int64_t prev = 0;

	/* Doubling near INT64_MAX saturates at max instead of wrapping. */
	pw_backoff_init(&b, INT64_MAX / 2 + 1, INT64_MAX, 0);
	ck_assert_int_eq(b.hi_ns, INT64_MAX);
	for (int i = 0; i < 5; i++) {
		int64_t d = pw_backoff_next(&b, UINT64_MAX);

		ck_assert_int_ge(d, INT64_MAX / 2 + 1);
		ck_assert_int_lt(d, INT64_MAX);
	}

	pw_backoff_init(&b, INT64_MAX, INT64_MAX, 0);
	ck_assert_int_eq(pw_backoff_next(&b, 12345), INT64_MAX);

	pw_backoff_init(&b, 1, INT64_MAX, 0);
	for (int i = 0; i < 200; i++) {
		int64_t d = pw_backoff_next(&b, 0);

		ck_assert_int_gt(d, 0);
		ck_assert_int_ge(d, prev);
		prev = d;
	}
	ck_assert_int_eq(b.hi_ns, INT64_MAX);

	/* min == max: no jitter. */
	pw_backoff_init(&b, 5 * SEC, 5 * SEC, 0);
	ck_assert_int_eq(pw_backoff_next(&b, 999), 5 * SEC);
	ck_assert_int_eq(pw_backoff_next(&b, 3), 5 * SEC);
}
END_TEST

static Suite *retry_suite(void)
{
	Suite *s = suite_create("retry");
	TCase *tc = tcase_create("classify");

	tcase_add_loop_test(tc, test_push_table, 0,
			    (int)(sizeof(push_rows) / sizeof(push_rows[0])));
	tcase_add_test(tc, test_push_gzip_json);
	tcase_add_test(tc, test_push_gzip_bomb);
	tcase_add_test(tc, test_push_message_escaping);
	tcase_add_test(tc, test_code_names);
	tcase_add_loop_test(tc, test_ingest_table, 0,
			    (int)(sizeof(ingest_rows) / sizeof(ingest_rows[0])));
	tcase_add_test(tc, test_ingest_transport);
	tcase_add_test(tc, test_ingest_body);
	suite_add_tcase(s, tc);

	tc = tcase_create("timing");
	tcase_add_test(tc, test_retry_after);
	tcase_add_test(tc, test_backoff_defaults);
	tcase_add_test(tc, test_backoff_exact_jitter);
	tcase_add_test(tc, test_backoff_unlimited);
	tcase_add_test(tc, test_backoff_attempts);
	tcase_add_test(tc, test_backoff_overflow);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(retry_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
