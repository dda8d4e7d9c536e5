/*
 * test_reqparse.c - the header values `mockhost run` parses itself:
 * Content-Type's media type, Connect-Timeout-Ms and Content-Encoding, at
 * their edges.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reqparse.h"

static const char *mt(const char *ct)
{
	static char buf[32];

	return reqparse_media_type(ct, buf, sizeof(buf));
}

START_TEST(media_type_plain_and_parameters)
{
	ck_assert_str_eq(mt("application/proto"), "application/proto");
	ck_assert_str_eq(mt("Application/PROTO; charset=utf-8"), "application/proto");
	ck_assert_str_eq(mt("application/proto ;x=1"), "application/proto");
	ck_assert_str_eq(mt(" \t application/json"), "application/json");
	ck_assert_str_eq(mt(NULL), "");
	ck_assert_str_eq(mt(""), "");
	ck_assert_str_eq(mt(";charset=utf-8"), "");
}
END_TEST

/* Optional whitespace before the parameters may be a tab (RFC 9110). */
START_TEST(media_type_tab_before_parameters)
{
	ck_assert_str_eq(mt("application/proto\t; charset=utf-8"), "application/proto");
}
END_TEST

START_TEST(media_type_cut_to_the_buffer)
{
	char small[5];

	ck_assert_str_eq(reqparse_media_type("application/proto", small, sizeof(small)), "appl");
	ck_assert_str_eq(reqparse_media_type("x", small, 1), "");
	/* Exactly as long as the buffer holds: kept whole. */
	ck_assert_str_eq(mt("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	ck_assert_str_eq(mt("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
			 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
}
END_TEST

START_TEST(timeout_digits)
{
	int64_t ms = -7;

	ck_assert_int_eq(reqparse_timeout_ms("0", &ms), 0);
	ck_assert_int_eq(ms, 0);
	ck_assert_int_eq(reqparse_timeout_ms("1500", &ms), 0);
	ck_assert_int_eq(ms, 1500);
	ck_assert_int_eq(reqparse_timeout_ms("0000000001", &ms), 0);
	ck_assert_int_eq(ms, 1);
	ck_assert_int_eq(reqparse_timeout_ms("9999999999", &ms), 0);
	ck_assert(ms == INT64_C(9999999999));
}
END_TEST

START_TEST(timeout_refused)
{
	static const char *const bad[] = {
		"",  "12345678901",	     "-1", "+1", " 1", "1 ", "1.5", "0x10", "1e3",
		"١", "99999999999999999999",
	};
	int64_t ms = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(reqparse_timeout_ms(bad[i], &ms) < 0, "accepted \"%s\"", bad[i]);
		ck_assert_int_eq(ms, 42);
	}
}
END_TEST

/* A value as long as a header may be is refused without reading past the
 * eleventh byte's verdict. */
START_TEST(timeout_long_value)
{
	size_t n = 64 * 1024;
	char *s = malloc(n + 1);
	int64_t ms = 42;

	ck_assert_ptr_nonnull(s);
	memset(s, '7', n);
	s[n] = '\0';
	ck_assert_int_lt(reqparse_timeout_ms(s, &ms), 0);
	ck_assert_int_eq(ms, 42);
	free(s);
}
END_TEST

START_TEST(encodings)
{
	ck_assert_int_eq(reqparse_encoding(NULL), REQPARSE_ENC_IDENTITY);
	ck_assert_int_eq(reqparse_encoding("identity"), REQPARSE_ENC_IDENTITY);
	ck_assert_int_eq(reqparse_encoding("IDENTITY"), REQPARSE_ENC_IDENTITY);
	ck_assert_int_eq(reqparse_encoding("gzip"), REQPARSE_ENC_GZIP);
	ck_assert_int_eq(reqparse_encoding("GZip"), REQPARSE_ENC_GZIP);
	ck_assert_int_eq(reqparse_encoding(""), REQPARSE_ENC_OTHER);
	ck_assert_int_eq(reqparse_encoding("br"), REQPARSE_ENC_OTHER);
	ck_assert_int_eq(reqparse_encoding("gzip, identity"), REQPARSE_ENC_OTHER);
	ck_assert_int_eq(reqparse_encoding("x-gzip"), REQPARSE_ENC_OTHER);
	ck_assert_int_eq(reqparse_encoding("gzip "), REQPARSE_ENC_OTHER);
}
END_TEST

static Suite *reqparse_suite(void)
{
	Suite *s = suite_create("reqparse");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, media_type_plain_and_parameters);
	tcase_add_test(tc, media_type_tab_before_parameters);
	tcase_add_test(tc, media_type_cut_to_the_buffer);
	tcase_add_test(tc, timeout_digits);
	tcase_add_test(tc, timeout_refused);
	tcase_add_test(tc, timeout_long_value);
	tcase_add_test(tc, encodings);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(reqparse_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
