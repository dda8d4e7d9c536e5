/*
 * test_util.c - the bottom layer: hex digits, JSON string quoting, gzip and
 * size-capped gunzip, the clocks, the Connect error body.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strbuf.h"
#include "util/clock.h"
#include "util/connect_error.h"
#include "util/gzip.h"
#include "util/hex.h"
#include "util/jsonstr.h"
#include "util/tenant.h"

/* Pyroscope's tenant ID rules: length, character set, "." and "..". */
START_TEST(test_tenant_id)
{
	static const struct {
		const char *id;
		bool ok;
	} cases[] = {
		{"a", true},	{"team-1", true}, {"A.b_c!-*'()", true}, {"...", true},
		{"", false},	{".", false},	  {"..", false},	 {"a/b", false},
		{"a b", false}, {"a:b", false},	  {"t\xc3\xa9", false},	 {"a\nb", false},
	};
	char id[152];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg((pwx_tenant_error(cases[i].id) == NULL) == cases[i].ok, "%s",
			      cases[i].id);
	memset(id, 'x', sizeof(id) - 1);
	id[150] = '\0';
	ck_assert_ptr_null(pwx_tenant_error(id));
	id[150] = 'x';
	id[151] = '\0';
	ck_assert_str_eq(pwx_tenant_error(id), "tenant ID is longer than 150 characters");
}
END_TEST

START_TEST(test_hex_val)
{
	/* Every byte, signed or not, against strtol's idea of a hex digit. */
	for (int c = -128; c < 256; c++) {
		char buf[2] = {(char)c, '\0'}, *end;
		long v = strtol(buf, &end, 16);
		int want = end == buf + 1 ? (int)v : -1;

		ck_assert_msg(pwx_hex_val(c) == want, "byte %d: got %d, want %d", c, pwx_hex_val(c),
			      want);
	}
}
END_TEST

static char *quoted(const char *s, unsigned flags)
{
	struct strbuf sb = STRBUF_INIT;

	pwx_json_quote(&sb, s, flags);
	ck_assert(!sb.failed);
	return strbuf_detach(&sb, NULL);
}

START_TEST(test_json_quote)
{
	static const char in[] = "a\"b\\c\n\r\t\x01\x1f/\xc3\xa9";
	char *plain = quoted(in, 0);
	char *shortened = quoted(in, PWX_JSON_SHORT_ESCAPES);
	char *null = quoted(NULL, 0);

	ck_assert_str_eq(plain, "\"a\\\"b\\\\c\\u000a\\u000d\\u0009\\u0001\\u001f/\xc3\xa9\"");
	ck_assert_str_eq(shortened, "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u001f/\xc3\xa9\"");
	ck_assert_str_eq(null, "\"\"");
	free(plain);
	free(shortened);
	free(null);
}
END_TEST

/* A gzip member of len bytes of 'x' followed by `extra` bytes of garbage. */
static uint8_t *gz_of(size_t len, size_t extra, size_t *gzlen)
{
	char *raw = malloc(len + 1);
	uint8_t *gz = NULL, *grown;

	ck_assert_ptr_nonnull(raw);
	memset(raw, 'x', len);
	ck_assert_int_eq(pwx_gzip(raw, len, &gz, gzlen), 0);
	free(raw);
	grown = realloc(gz, *gzlen + extra + 1);
	ck_assert_ptr_nonnull(grown);
	memset(grown + *gzlen, 'z', extra);
	*gzlen += extra;
	return grown;
}

START_TEST(test_gunzip_round_trip)
{
	size_t gzlen, n;
	uint8_t *gz = gz_of(100000, 0, &gzlen), *out = NULL;

	ck_assert_int_eq(pwx_gunzip(gz, gzlen, 100000, 0, &out, &n), 0);
	ck_assert_uint_eq(n, 100000);
	ck_assert_uint_eq(out[0], 'x');
	ck_assert_uint_eq(out[n - 1], 'x');
	ck_assert_uint_eq(out[n], '\0');
	free(out);
	free(gz);
}
END_TEST

START_TEST(test_gunzip_limit)
{
	size_t gzlen, n;
	uint8_t *gz = gz_of(5000, 0, &gzlen), *out = NULL;

	ck_assert_int_eq(pwx_gunzip(gz, gzlen, 4999, 0, &out, &n), -1);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(pwx_gunzip(gz, gzlen, 5000, 0, &out, &n), 0);
	ck_assert_uint_eq(n, 5000);
	free(out);
	free(gz);
}
END_TEST

START_TEST(test_gunzip_empty)
{
	size_t gzlen, n = 99;
	uint8_t *gz = gz_of(0, 0, &gzlen), *out = NULL;

	ck_assert_int_eq(pwx_gunzip(gz, gzlen, 10, 0, &out, &n), 0);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(n, 0);
	free(out);
	free(gz);
}
END_TEST

START_TEST(test_gunzip_trailing)
{
	size_t gzlen, n;
	uint8_t *gz = gz_of(300, 7, &gzlen), *out = NULL;

	ck_assert_int_eq(pwx_gunzip(gz, gzlen, 1000, 0, &out, &n), -1);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(pwx_gunzip(gz, gzlen, 1000, PWX_GUNZIP_ALLOW_TRAILING, &out, &n), 0);
	ck_assert_uint_eq(n, 300);
	free(out);
	free(gz);
}
END_TEST

START_TEST(test_gunzip_broken)
{
	size_t gzlen, n;
	uint8_t *gz = gz_of(300, 0, &gzlen), *out = NULL;
	static const uint8_t not_gzip[] = "plain text";

	/* Truncated, with or without tolerance for what follows. */
	ck_assert_int_eq(pwx_gunzip(gz, gzlen - 4, 1000, 0, &out, &n), -1);
	ck_assert_int_eq(pwx_gunzip(gz, gzlen - 4, 1000, PWX_GUNZIP_ALLOW_TRAILING, &out, &n), -1);
	ck_assert_int_eq(pwx_gunzip(gz, 0, 1000, 0, &out, &n), -1);
	/* A corrupt CRC. */
	gz[gzlen - 6] ^= 0xFF;
	ck_assert_int_eq(pwx_gunzip(gz, gzlen, 1000, 0, &out, &n), -1);
	ck_assert_int_eq(pwx_gunzip(not_gzip, sizeof(not_gzip), 1000, 0, &out, &n), -1);
	ck_assert_ptr_null(out);
	free(gz);
}
END_TEST

START_TEST(test_clocks)
{
	int64_t a = pwx_now_ns(), b = pwx_now_ns();
	int64_t wall = pwx_wall_ms(), t = (int64_t)time(NULL) * 1000;

	ck_assert_int_gt(a, 0);
	ck_assert_int_ge(b, a);
	/* The wall clock in milliseconds, not seconds or microseconds. */
	ck_assert_int_ge(wall, t - 2000);
	ck_assert_int_le(wall, t + 2000);
}
END_TEST

START_TEST(test_connect_error_body)
{
	char *b = pwx_connect_error_body("invalid_argument", "bad \"label\"\n");
	char *empty = pwx_connect_error_body("internal", NULL);

	ck_assert_str_eq(b, "{\"code\":\"invalid_argument\",\"message\":\"bad \\\"label\\\"\\n\"}");
	ck_assert_str_eq(empty, "{\"code\":\"internal\",\"message\":\"\"}");
	/* Not valid UTF-8: no body rather than an invalid one. */
	ck_assert_ptr_null(pwx_connect_error_body("internal", "\xff"));
	free(b);
	free(empty);
}
END_TEST

static Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("util");

	tcase_add_test(tc, test_hex_val);
	tcase_add_test(tc, test_tenant_id);
	tcase_add_test(tc, test_json_quote);
	tcase_add_test(tc, test_gunzip_round_trip);
	tcase_add_test(tc, test_gunzip_limit);
	tcase_add_test(tc, test_gunzip_empty);
	tcase_add_test(tc, test_gunzip_trailing);
	tcase_add_test(tc, test_gunzip_broken);
	tcase_add_test(tc, test_clocks);
	tcase_add_test(tc, test_connect_error_body);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(util_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
