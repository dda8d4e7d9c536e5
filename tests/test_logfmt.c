/*
 * test_logfmt.c - mockhost's log lines read back by a logfmt parser that
 * follows the rules of Go's go-logfmt decoder (which Loki's logfmt parser
 * is adapted from): every value, however awkward, comes back unchanged.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logfmt.h"
#include "util/hex.h"
#include "strbuf.h"

#define MAX_PAIRS 8

struct pair {
	char *key;
	char *value;
};

struct record {
	struct pair p[MAX_PAIRS];
	size_t n;
};

static void record_free(struct record *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->p[i].key);
		free(r->p[i].value);
	}
	r->n = 0;
}

/* Appends code point cp as UTF-8. */
static void put_utf8(struct strbuf *sb, unsigned cp)
{
	if (cp < 0x80) {
		strbuf_putc(sb, (char)cp);
	} else if (cp < 0x800) {
		strbuf_putc(sb, (char)(0xc0 | (cp >> 6)));
		strbuf_putc(sb, (char)(0x80 | (cp & 0x3f)));
	} else {
		strbuf_putc(sb, (char)(0xe0 | (cp >> 12)));
		strbuf_putc(sb, (char)(0x80 | ((cp >> 6) & 0x3f)));
		strbuf_putc(sb, (char)(0x80 | (cp & 0x3f)));
	}
}

/* A quoted value's escapes are JSON's. Returns false on a bad escape. */
static bool unescape(const char *p, const char *end, struct strbuf *sb)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";

	while (p < end) {
		const char *e;

		if (*p != '\\') {
			strbuf_putc(sb, *p++);
			continue;
		}
		if (++p >= end)
			return false;
		if (*p == 'u') {
			unsigned cp = 0;

			if (end - p < 5)
				return false;
			for (int i = 1; i <= 4; i++) {
				if (pwx_hex_val(p[i]) < 0)
					return false;
				cp = cp * 16 + (unsigned)pwx_hex_val(p[i]);
			}
			put_utf8(sb, cp);
			p += 5;
			continue;
		}
		e = strchr(from, *p);
		if (!e || !*p)
			return false;
		strbuf_putc(sb, to[e - from]);
		p++;
	}
	return true;
}

/*
 * Parses one line the way go-logfmt's ScanKeyval does: a key runs to '=' or
 * a byte <= ' ' (a '"' in it is an error); an unquoted value runs to a byte
 * <= ' ' (a '=' or '"' in it is an error); a quoted value runs to the first
 * '"' not escaped by a backslash. Returns false on a syntax error.
 */
static bool parse(const char *line, struct record *r)
{
	const char *p = line;

	r->n = 0;
	for (;;) {
		const char *k, *v;
		struct strbuf val = STRBUF_INIT;

		while (*p && (unsigned char)*p <= ' ')
			p++;
		if (!*p)
			return true;
		for (k = p; *p && *p != '=' && (unsigned char)*p > ' '; p++)
			if (*p == '"')
				return false;
		if (p == k || r->n == MAX_PAIRS)
			return false;
		r->p[r->n].key = strndup(k, (size_t)(p - k));
		if (*p == '=' && p[1] == '"') {
			bool esc = false;

			for (v = p += 2; *p && (esc || *p != '"'); p++)
				esc = !esc && *p == '\\';
			if (*p != '"' || !unescape(v, p, &val)) {
				strbuf_free(&val);
				r->p[r->n++].value = NULL;
				return false;
			}
			p++;
		} else if (*p == '=') {
			for (v = ++p; *p && (unsigned char)*p > ' '; p++)
				if (*p == '=' || *p == '"') {
					r->p[r->n++].value = NULL;
					return false;
				}
			strbuf_append(&val, v, (size_t)(p - v));
		}
		strbuf_putc(&val, '\0');
		r->p[r->n++].value = strbuf_detach(&val, NULL);
	}
}

/* Formats one line with a single field `key=value` and parses it back. */
static char *format_one(const char *msg, const char *key, const char *value)
{
	struct component_log_field f = {key, value};
	struct strbuf sb = STRBUF_INIT;
	char *line;

	mockhost_logfmt(&sb, COMPONENT_LOG_WARN, msg, &f, 1);
	ck_assert(!sb.failed);
	line = strbuf_detach(&sb, NULL);
	ck_assert_ptr_nonnull(line);
	ck_assert_msg(strchr(line, '\n') == line + strlen(line) - 1, "one line: %s", line);
	return line;
}

static void check_round_trip(const char *msg, const char *value)
{
	char *line = format_one(msg, "err", value);
	struct record r;

	ck_assert_msg(parse(line, &r), "parse error in: %s", line);
	ck_assert_int_eq(r.n, 3);
	ck_assert_str_eq(r.p[0].key, "level");
	ck_assert_str_eq(r.p[0].value, "warn");
	ck_assert_str_eq(r.p[1].key, "msg");
	ck_assert_str_eq(r.p[1].value, msg);
	ck_assert_str_eq(r.p[2].key, "err");
	ck_assert_msg(strcmp(r.p[2].value, value) == 0, "%s read back as [%s]", line, r.p[2].value);
	record_free(&r);
	free(line);
}

START_TEST(quote_inside_value)
{
	/* A configuration error, as the plugin and `mockhost run` log it. */
	const char *v = "endpoint[0].url: must be an absolute http or https URL with a host: "
			"unsupported scheme \"ftp\"";
	char *line = format_one("configuration rejected", "err", v);

	ck_assert_str_eq(line, "level=warn msg=\"configuration rejected\" err=\"endpoint[0].url: "
			       "must be an absolute http or https URL with a host: unsupported "
			       "scheme \\\"ftp\\\"\"\n");
	free(line);
	check_round_trip("configuration rejected", v);
	check_round_trip("m", "\"ftp://x\" at the start, \"quoted\" at the end\"");
}
END_TEST

START_TEST(backslash_and_controls)
{
	check_round_trip("m", "C:\\dir\\file with space");
	check_round_trip("m", "trailing backslash \\");
	check_round_trip("m", "two\nlines\r\tand a tab");
	check_round_trip("m", "bell\a and \x01 and \x7f");
	check_round_trip("m", "key=value inside");
	check_round_trip("a \"quoted\" message\\", "x");
}
END_TEST

START_TEST(plain_values_stay_bare)
{
	char *line = format_one("m", "endpoints", "2");

	ck_assert_str_eq(line, "level=warn msg=\"m\" endpoints=2\n");
	free(line);
	/* A lone backslash needs no quotes: an unquoted value is read as is. */
	line = format_one("m", "path", "a\\b");
	ck_assert_str_eq(line, "level=warn msg=\"m\" path=a\\b\n");
	free(line);
	check_round_trip("m", "a\\b");
	check_round_trip("m", "");
}
END_TEST

START_TEST(every_byte)
{
	char v[8];

	for (int c = 1; c < 256; c++) {
		snprintf(v, sizeof(v), "a%cb", c);
		check_round_trip("m", v);
		snprintf(v, sizeof(v), "%c", c);
		check_round_trip("m", v);
	}
}
END_TEST

START_TEST(parser_rejects_unescaped_quote)
{
	/* What the formatter used to write: the reference parser must refuse
	 * it, or the round trips above prove nothing. */
	struct record r;

	ck_assert(!parse("level=warn msg=\"m\" err=\"scheme \"ftp\"\"", &r));
	record_free(&r);
}
END_TEST

static Suite *logfmt_suite(void)
{
	Suite *s = suite_create("logfmt");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, quote_inside_value);
	tcase_add_test(tc, backslash_and_controls);
	tcase_add_test(tc, plain_values_stay_bare);
	tcase_add_test(tc, every_byte);
	tcase_add_test(tc, parser_rejects_unescaped_quote);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(logfmt_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
