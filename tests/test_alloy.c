/*
 * test_alloy.c - the Alloy syntax converter used by mockhost.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloy/alloy.h"
#include "config.h"
#include "strbuf.h"

/* Notices joined with '\n', so a test can compare them in one go. */
struct notices {
	struct strbuf sb;
	int count;
};

static void collect(void *user, const char *msg)
{
	struct notices *n = user;

	if (n->count++)
		strbuf_putc(&n->sb, '\n');
	strbuf_puts(&n->sb, msg);
}

static char *read_fixture(const char *dir, const char *name, size_t *len)
{
	const char *root = getenv("PW_SOURCE_ROOT");
	char *path = pw_asprintf("%s/%s/%s", root ? root : "..", dir, name);
	struct strbuf sb = STRBUF_INIT;
	char buf[4096];
	size_t n;
	FILE *f;

	ck_assert_ptr_nonnull(path);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s (is PW_SOURCE_ROOT set?)", path);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		ck_assert_int_eq(strbuf_append(&sb, buf, n), 0);
	fclose(f);
	free(path);
	return strbuf_detach(&sb, len);
}

/* Converts text and checks the result equals the JSON in `expected`. */
static void check_convert(const char *text, size_t len, const char *label, const char *expected,
			  struct notices *nt)
{
	char *json = NULL, *err = NULL;
	json_t *got, *want;
	json_error_t jerr;
	int rc;

	rc = alloy_convert(text, len, "t.alloy", label, &json, &err, nt ? collect : NULL, nt);
	ck_assert_msg(rc == 0, "conversion failed: %s", err ? err : "(no message)");
	ck_assert_ptr_null(err);
	ck_assert_ptr_nonnull(json);
	got = json_loads(json, 0, &jerr);
	ck_assert_msg(got != NULL, "output is not JSON: %s", jerr.text);
	want = json_loads(expected, 0, &jerr);
	ck_assert_msg(want != NULL, "expected text is not JSON: %s", jerr.text);
	ck_assert_msg(json_equal(got, want), "got %s\nwant %s", json, expected);
	json_decref(got);
	json_decref(want);
	free(json);
}

static void ok(const char *text, const char *expected)
{
	check_convert(text, strlen(text), NULL, expected, NULL);
}

/* Converts text and checks that it fails with exactly `expected`. */
static void fails_as(const char *text, const char *filename, const char *label,
		     const char *expected)
{
	char *json = (char *)"untouched", *err = NULL;
	int rc;

	rc = alloy_convert(text, strlen(text), filename, label, &json, &err, NULL, NULL);
	ck_assert_int_eq(rc, -1);
	ck_assert_ptr_null(json);
	ck_assert_ptr_nonnull(err);
	ck_assert_str_eq(err, expected);
	free(err);
}

static void fails(const char *text, const char *expected)
{
	fails_as(text, "t.alloy", NULL, expected);
}

/* ---- the documentation's examples ------------------------------------ */

static void check_fixture(const char *name, const char *label, const char *want_notices)
{
	char *alloy_name = pw_asprintf("%s.alloy", name), *json_name = pw_asprintf("%s.json", name);
	struct notices nt = {STRBUF_INIT, 0};
	size_t len;
	char *text = read_fixture("tests/data/alloy", alloy_name, &len);
	char *expected = read_fixture("tests/data/alloy", json_name, NULL);

	check_convert(text, len, label, expected, &nt);
	ck_assert_str_eq(nt.sb.data ? nt.sb.data : "", want_notices);
	strbuf_free(&nt.sb);
	free(text);
	free(expected);
	free(alloy_name);
	free(json_name);
}

START_TEST(docs_example)
{
	check_fixture("docs-example", NULL, "skipping pyroscope.scrape \"default\"");
	check_fixture("docs-example", "staging", "skipping pyroscope.scrape \"default\"");
}
END_TEST

START_TEST(docs_troubleshooting)
{
	check_fixture("docs-w1", NULL, "");
	check_fixture("docs-w2", "w2", "");
}
END_TEST

/* The troubleshooting chain: receive_http between two pyroscope.write. */
START_TEST(docs_chain)
{
	char *recv = read_fixture("tests/data/alloy", "docs-receive-http.alloy", NULL);
	char *w1 = read_fixture("tests/data/alloy", "docs-w1.alloy", NULL);
	char *w2 = read_fixture("tests/data/alloy", "docs-w2.alloy", NULL);
	char *want = read_fixture("tests/data/alloy", "docs-w2.json", NULL);
	char *all = pw_asprintf("%s\n%s\n%s", recv, w1, w2);
	struct notices nt = {STRBUF_INIT, 0};

	check_convert(all, strlen(all), "w2", want, &nt);
	ck_assert_int_eq(nt.count, 2);
	ck_assert_str_eq(nt.sb.data, "skipping pyroscope.receive_http \"example\"\n"
				     "skipping pyroscope.write \"w1\"");
	fails_as(all, "chain.alloy", NULL,
		 "chain.alloy: found 2 pyroscope.write blocks (\"w1\", \"w2\"); choose one by its "
		 "label");
	fails_as(all, "chain.alloy", "w3",
		 "chain.alloy: no pyroscope.write block labelled \"w3\" (found \"w1\", \"w2\")");
	fails_as(recv, "recv.alloy", NULL, "recv.alloy: no pyroscope.write block found");
	fails_as(recv, NULL, "x", "no pyroscope.write block labelled \"x\"");
	strbuf_free(&nt.sb);
	free(all);
	free(want);
	free(w2);
	free(w1);
	free(recv);
}
END_TEST

/* A single endpoint may be written as an object in JSON; the converter
 * always makes an array. */
static void normalise_endpoints(json_t *doc)
{
	json_t *ep = json_object_get(doc, "endpoint");
	json_t *arr;

	if (!json_is_object(ep))
		return;
	arr = json_array();
	ck_assert_int_eq(json_array_append(arr, ep), 0);
	ck_assert_int_eq(json_object_set_new(doc, "endpoint", arr), 0);
}

/* Each examples/NAME.alloy says the same as examples/NAME.json. */
START_TEST(examples_match_json)
{
	static const char *const names[] = {
		"one-endpoint", "tenants", "basic-auth",     "demo",	      "mtls",
		"oauth2",	"proxy",   "tenant-routing", "durable-queue",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *alloy_name = pw_asprintf("%s.alloy", names[i]);
		char *json_name = pw_asprintf("%s.json", names[i]);
		char *text, *expected, *json = NULL, *err = NULL;
		json_t *got, *want;
		size_t len;

		text = read_fixture("examples", alloy_name, &len);
		expected = read_fixture("examples", json_name, NULL);
		ck_assert_msg(alloy_convert(text, len, alloy_name, NULL, &json, &err, NULL, NULL) ==
				      0,
			      "%s", err);
		got = json_loads(json, 0, NULL);
		want = json_loads(expected, 0, NULL);
		ck_assert_ptr_nonnull(got);
		ck_assert_msg(want != NULL, "%s is not JSON", json_name);
		normalise_endpoints(want);
		ck_assert_msg(json_equal(got, want), "%s differs from %s:\n%s", alloy_name,
			      json_name, json);
		json_decref(got);
		json_decref(want);
		free(json);
		free(expected);
		free(text);
		free(json_name);
		free(alloy_name);
	}
}
END_TEST

/* ---- values ------------------------------------------------------------ */

START_TEST(literal_types)
{
	ok("pyroscope.write \"a\" {\n"
	   "  s = \"text\"\n"
	   "  empty = \"\"\n"
	   "  i = 42\n"
	   "  zero = 0\n"
	   "  neg = -7\n"
	   "  big = 9223372036854775807\n"
	   "  small = -9223372036854775808\n"
	   "  f = 1.5\n"
	   "  frac = .25\n"
	   "  e = 1e3\n"
	   "  e2 = 2.5E-1\n"
	   "  nf = -0.5\n"
	   "  t = true\n"
	   "  f2 = false\n"
	   "  n = null\n"
	   "  l = [1, \"two\", [3], {}, []]\n"
	   "  o = { name = \"x\", \"quoted key\" = [true, null], nested = { deep = 1.0 } }\n"
	   "  eo = {}\n"
	   "  el = []\n"
	   "}\n",
	   "{\"s\":\"text\",\"empty\":\"\",\"i\":42,\"zero\":0,\"neg\":-7,"
	   "\"big\":9223372036854775807,\"small\":-9223372036854775808,"
	   "\"f\":1.5,\"frac\":0.25,\"e\":1000.0,\"e2\":0.25,\"nf\":-0.5,"
	   "\"t\":true,\"f2\":false,\"n\":null,"
	   "\"l\":[1,\"two\",[3],{},[]],"
	   "\"o\":{\"name\":\"x\",\"quoted key\":[true,null],\"nested\":{\"deep\":1.0}},"
	   "\"eo\":{},\"el\":[]}");
}
END_TEST

START_TEST(integers_stay_integers)
{
	char *json = NULL, *err = NULL;
	const char *text = "pyroscope.write \"a\" {\n i = 10\n f = 10.0\n}";
	json_t *doc;

	ck_assert_int_eq(alloy_convert(text, strlen(text), NULL, NULL, &json, &err, NULL, NULL), 0);
	doc = json_loads(json, 0, NULL);
	ck_assert(json_is_integer(json_object_get(doc, "i")));
	ck_assert(json_is_real(json_object_get(doc, "f")));
	json_decref(doc);
	free(json);
}
END_TEST

START_TEST(string_escapes)
{
	ok("pyroscope.write \"a\" {\n"
	   "  s = \"q\\\"b\\\\n\\nt\\tr\\r\"\n"
	   "  u = \"\\u00e9\\U0001F600\\u20AC\"\n"
	   "  x = \"\\x41\\101\\'\"\n"
	   "  c = \"\\a\\b\\f\\v\"\n"
	   "  utf8 = \"grüße ✓\"\n"
	   "  raw = `C:\\path\\n \"as is\"\n"
	   "second line`\n"
	   "}\n",
	   "{\"s\":\"q\\\"b\\\\n\\nt\\tr\\r\","
	   "\"u\":\"\\u00e9\\ud83d\\ude00\\u20ac\","
	   "\"x\":\"AA'\","
	   "\"c\":\"\\u0007\\b\\f\\u000b\","
	   "\"utf8\":\"gr\\u00fc\\u00dfe \\u2713\","
	   "\"raw\":\"C:\\\\path\\\\n \\\"as is\\\"\\nsecond line\"}");
	/* Escapes that encode the bytes of a UTF-8 sequence are fine. */
	ok("pyroscope.write \"a\" {\n s = \"\\xc3\\xa9\"\n}", "{\"s\":\"\\u00e9\"}");
}
END_TEST

START_TEST(bad_strings)
{
	fails("pyroscope.write \"a\" {\n  s = \"ab\\qc\"\n}",
	      "t.alloy:2:10: unknown escape sequence \\q");
	fails("pyroscope.write \"a\" {\n  s = \"\\u12\"\n}",
	      "t.alloy:2:8: escape sequence needs 4 hexadecimal digits");
	fails("pyroscope.write \"a\" {\n  s = \"\\uD800\"\n}",
	      "t.alloy:2:8: escape sequence is not a valid Unicode code point");
	fails("pyroscope.write \"a\" {\n  s = \"\\xff\"\n}",
	      "t.alloy:2:7: string is not valid UTF-8");
	fails("pyroscope.write \"a\" {\n  s = \"\\x00\"\n}",
	      "t.alloy:2:7: strings may not contain NUL characters");
	fails("pyroscope.write \"a\" {\n  s = 'x'\n}",
	      "t.alloy:2:7: single-quoted strings are not supported; use double quotes");
	fails("pyroscope.write \"a\" {\n  s = `never closed\n}\n",
	      "t.alloy:2:7: string literal not terminated");
	fails("pyroscope.write \"a\" {\n  s = \"ends with backslash\\",
	      "t.alloy:2:27: escape sequence not terminated");
}
END_TEST

START_TEST(comments)
{
	ok("# hash comment at the top\n"
	   "// slash comment\n"
	   "/* block\n   comment */ pyroscope.write /* inline */ \"a\" { # after brace\n"
	   "  endpoint { // trailing\n"
	   "    url = /* before value */ \"http://x:1\" # after value\n"
	   "    /* whole line */\n"
	   "    name = \"a // not a comment # nor this /* */\"\n"
	   "  }\n"
	   "}\n"
	   "// last line without newline",
	   "{\"endpoint\":[{\"url\":\"http://x:1\",\"name\":\"a // not a comment # nor this /* "
	   "*/\"}]}");
}
END_TEST

START_TEST(trailing_commas)
{
	ok("pyroscope.write \"a\" {\n"
	   "  l1 = [1, 2,]\n"
	   "  l2 = [\n    1,\n    2\n  ]\n"
	   "  o1 = { a = 1, }\n"
	   "  o2 = {\n    a = 1,\n    b = 2\n  }\n"
	   "}",
	   "{\"l1\":[1,2],\"l2\":[1,2],\"o1\":{\"a\":1},\"o2\":{\"a\":1,\"b\":2}}");
	fails("pyroscope.write \"a\" {\n  l = [1,,2]\n}", "t.alloy:2:10: missing value before ','");
	fails("pyroscope.write \"a\" {\n  l = [1 2]\n}",
	      "t.alloy:2:10: expected ',' or ']' in list");
	fails("pyroscope.write \"a\" {\n  o = {a = 1 b = 2}\n}",
	      "t.alloy:2:14: expected ',' or '}' in object");
}
END_TEST

/* ---- blocks ------------------------------------------------------------ */

START_TEST(nested_blocks)
{
	ok("pyroscope.write \"a\" {\n"
	   "  endpoint {\n"
	   "    url = \"https://one\"\n"
	   "    oauth2 {\n"
	   "      client_id = \"id\"\n"
	   "      scopes = [\"a\", \"b\"]\n"
	   "      tls_config {\n"
	   "        insecure_skip_verify = true\n"
	   "      }\n"
	   "    }\n"
	   "    tls_config { server_name = \"one\" }\n"
	   "  }\n"
	   "  endpoint {\n"
	   "    url = \"https://two\"\n"
	   "    basic_auth {\n"
	   "      username = \"u\"\n"
	   "    }\n"
	   "    authorization {}\n"
	   "  }\n"
	   "  tracing {}\n"
	   "}",
	   "{\"endpoint\":["
	   "{\"url\":\"https://one\",\"oauth2\":{\"client_id\":\"id\",\"scopes\":[\"a\",\"b\"],"
	   "\"tls_config\":{\"insecure_skip_verify\":true}},\"tls_config\":{\"server_name\":"
	   "\"one\"}},"
	   "{\"url\":\"https://two\",\"basic_auth\":{\"username\":\"u\"},\"authorization\":{}}],"
	   "\"tracing\":{}}");
	/* The extensions beyond Alloy are ordinary attributes and blocks. */
	ok("pyroscope.write \"a\" { endpoint {\n"
	   "  url = \"u\"\n"
	   "  tenant_label = \"__tenant__\"\n"
	   "} }",
	   "{\"endpoint\":[{\"url\":\"u\",\"tenant_label\":\"__tenant__\"}]}");
	ok("pyroscope.write \"a\" { endpoint {\n"
	   "  url = \"u\"\n"
	   "  batch {\n"
	   "    max_profiles = 100\n"
	   "    max_wait = \"50ms\"\n"
	   "  }\n"
	   "} }",
	   "{\"endpoint\":[{\"url\":\"u\",\"batch\":{\"max_profiles\":100,\"max_wait\":\"50ms\"}}]"
	   "}");
	/* One endpoint is still an array. */
	ok("pyroscope.write \"a\" { endpoint { url = \"u\" } }",
	   "{\"endpoint\":[{\"url\":\"u\"}]}");
	ok("pyroscope.write \"a\" {}", "{}");
}
END_TEST

/* The queue is a top-level block: converted to an object the configuration
 * loader accepts, with the loader's own messages for wrong values. */
START_TEST(queue_block)
{
	static const char text[] = "pyroscope.write \"a\" {\n"
				   "  endpoint { url = \"http://p:4040\" }\n"
				   "  queue {\n"
				   "    directory      = \"/var/lib/pyroscope-write\"\n"
				   "    max_size       = 268435456\n"
				   "    max_age        = \"30m\"\n"
				   "    fsync          = \"interval\"\n"
				   "    fsync_interval = \"200ms\"\n"
				   "    when_full      = \"refuse\"\n"
				   "  }\n"
				   "}\n";
	static const char bad[] = "pyroscope.write \"a\" {\n  queue { when_full = \"x\" }\n}";
	struct pw_config *cfg = NULL;
	char *json = NULL, *err = NULL;

	ok(text, "{\"endpoint\":[{\"url\":\"http://p:4040\"}],\"queue\":{"
		 "\"directory\":\"/var/lib/pyroscope-write\",\"max_size\":268435456,"
		 "\"max_age\":\"30m\",\"fsync\":\"interval\",\"fsync_interval\":\"200ms\","
		 "\"when_full\":\"refuse\"}}");
	ck_assert_int_eq(
		alloy_convert(text, strlen(text), "t.alloy", NULL, &json, &err, NULL, NULL), 0);
	ck_assert_int_eq(pw_config_parse(json, &cfg, &err), 0);
	ck_assert(cfg->queue.set);
	ck_assert_str_eq(cfg->queue.directory, "/var/lib/pyroscope-write");
	ck_assert_int_eq(cfg->queue.max_size, 268435456);
	ck_assert_int_eq(cfg->queue.max_age_ns, INT64_C(1800000000000));
	ck_assert(!cfg->queue.fsync_always);
	ck_assert_int_eq(cfg->queue.fsync_interval_ns, INT64_C(200000000));
	ck_assert(!cfg->queue.drop_oldest);
	pw_config_free(cfg);
	free(json);

	json = NULL;
	ck_assert_int_eq(alloy_convert(bad, strlen(bad), "t.alloy", NULL, &json, &err, NULL, NULL),
			 0);
	cfg = NULL;
	ck_assert_int_eq(pw_config_parse(json, &cfg, &err), -1);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(err, "queue.when_full: must be \"drop_oldest\" or \"refuse\", got \"x\"\n"
			      "queue.directory: required attribute is missing");
	free(err);
	free(json);

	fails("pyroscope.write \"a\" {\n  queue { directory = \"/a\" }\n  queue { directory = "
	      "\"/b\" }\n}",
	      "t.alloy:3:3: block queue may appear only once");
}
END_TEST

START_TEST(block_errors)
{
	fails("pyroscope.write \"a\" {\n  endpoint {\n    basic_auth {}\n    basic_auth {}\n  }\n}",
	      "t.alloy:4:5: block basic_auth may appear only once");
	fails("pyroscope.write \"a\" {\n  url = \"a\"\n  url = \"b\"\n}",
	      "t.alloy:3:3: attribute url is set more than once");
	fails("pyroscope.write \"a\" {\n  tracing {}\n  tracing = 1\n}",
	      "t.alloy:3:3: tracing is already given as a block");
	fails("pyroscope.write \"a\" {\n  endpoint = []\n  endpoint {}\n}",
	      "t.alloy:3:3: endpoint is already set as an attribute");
	fails("pyroscope.write \"a\" {\n  endpoint \"x\" {}\n}",
	      "t.alloy:2:12: block endpoint inside a component cannot have a label");
	fails("pyroscope.write \"a\" {\n  endpoint {\n    url \"http://x\"\n  }\n}",
	      "t.alloy:3:9: missing '=' after attribute name url");
	fails("pyroscope.write \"a\" {\n  endpoint {\n    url\n  }\n}",
	      "t.alloy:4:3: missing '=' after attribute name url");
	fails("pyroscope.write \"a\" {\n  a = 1 b = 2\n}",
	      "t.alloy:2:9: expected a line break before 'b'");
	fails("pyroscope.write \"a\" {\n  endpoint {\n",
	      "t.alloy:2:12: block endpoint is never closed");
	fails("pyroscope.write \"a\" {\n  = 1\n}",
	      "t.alloy:2:3: expected an attribute or block name in pyroscope.write, found '='");
	fails("pyroscope.write \"a\" {\n  \"secret\" = 1\n}",
	      "t.alloy:2:3: expected an attribute or block name in pyroscope.write, found a "
	      "string");
	fails("pyroscope.write {\n}", "t.alloy:1:1: pyroscope.write needs a label, e.g. "
				      "pyroscope.write \"default\" { ... }");
	fails("pyroscope.write \"a\" {}\npyroscope.write \"a\" {}",
	      "t.alloy:2:1: pyroscope.write \"a\" is declared more than once");
	fails("pyroscope.write \"a\" {} pyroscope.write \"b\" {}",
	      "t.alloy:1:24: expected a line break before 'pyroscope'");
	fails("pyroscope.write \"a\" {\n  url =\n}", "t.alloy:3:1: missing value before '}'");
}
END_TEST

START_TEST(select_by_label)
{
	const char *text = "pyroscope.write \"one\" {\n  endpoint { url = \"http://1\" }\n}\n"
			   "pyroscope.write \"two\" {\n  endpoint { url = env(\"X\") }\n}\n"
			   "pyroscope.write \"three\" {\n  endpoint { url = \"http://3\" }\n}\n";
	struct notices nt = {STRBUF_INIT, 0};
	char **labels = NULL, *err = NULL;
	size_t n = 0;

	check_convert(text, strlen(text), "three", "{\"endpoint\":[{\"url\":\"http://3\"}]}", &nt);
	/* "two" holds a call, but it is skipped unread when not selected. */
	ck_assert_str_eq(nt.sb.data,
			 "skipping pyroscope.write \"one\"\nskipping pyroscope.write \"two\"");
	check_convert(text, strlen(text), "one", "{\"endpoint\":[{\"url\":\"http://1\"}]}", NULL);
	fails_as(text, "t.alloy", "two",
		 "t.alloy:5:20: function calls are not supported: env(...)");
	fails_as(text, NULL, NULL,
		 "found 3 pyroscope.write blocks (\"one\", \"two\", \"three\"); choose one by its "
		 "label");

	ck_assert_int_eq(alloy_list_labels(text, strlen(text), NULL, &labels, &n, &err), 0);
	ck_assert_ptr_null(err);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(labels[0], "one");
	ck_assert_str_eq(labels[1], "two");
	ck_assert_str_eq(labels[2], "three");
	alloy_labels_free(labels, n);
	ck_assert_int_eq(alloy_list_labels("x = \"", 5, "f", &labels, &n, &err), -1);
	ck_assert_str_eq(err, "f:1:5: string literal not terminated");
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_null(labels);
	free(err);
	strbuf_free(&nt.sb);
}
END_TEST

/* ---- what is rejected --------------------------------------------------- */

START_TEST(unsupported_values)
{
	fails("pyroscope.write \"a\" {\n  max_backoff_retries = 1 + 2\n}",
	      "t.alloy:2:27: expressions are not supported: operator '+' (only literal values are "
	      "accepted)");
	fails("pyroscope.write \"a\" {\n  x = \"a\" == \"b\"\n}",
	      "t.alloy:2:11: expressions are not supported: operator '==' (only literal values are "
	      "accepted)");
	fails("pyroscope.write \"a\" {\n  x = !true\n}",
	      "t.alloy:2:7: expressions are not supported: operator '!' (only literal values are "
	      "accepted)");
	fails("pyroscope.write \"a\" {\n  x = -y\n}",
	      "t.alloy:2:7: expressions are not supported: operator '-' (only literal values are "
	      "accepted)");
	fails("pyroscope.write \"a\" {\n  x = (1)\n}",
	      "t.alloy:2:7: expressions are not supported: operator '(' (only literal values are "
	      "accepted)");
	fails("pyroscope.write \"a\" {\n  x = [1, 2][0]\n}",
	      "t.alloy:2:13: expressions are not supported: operator '[' (only literal values are "
	      "accepted)");
	fails("pyroscope.write \"a\" {\n  endpoint {\n    bearer_token = "
	      "local.file.token.content\n  }\n}",
	      "t.alloy:3:20: references are not supported: local.file.token.content");
	fails("pyroscope.write \"a\" {\n  x = [pyroscope.write.staging.receiver]\n}",
	      "t.alloy:2:8: references are not supported: pyroscope.write.staging.receiver");
	fails("pyroscope.write \"a\" {\n  x = env(\"HOME\")\n}",
	      "t.alloy:2:7: function calls are not supported: env(...)");
	fails("pyroscope.write \"a\" {\n  x = { k = sys.env(\"HOME\") }\n}",
	      "t.alloy:2:13: function calls are not supported: sys.env(...)");
	fails_as("pyroscope.write \"a\" {\n  x = y\n}", NULL, NULL,
		 "2:7: references are not supported: y");
}
END_TEST

START_TEST(lexical_errors)
{
	fails("pyroscope.write \"a\" {\n  url = \"http://x\n}",
	      "t.alloy:2:9: string literal not terminated");
	fails("pyroscope.write \"a\" {\n  /* open\n\n}",
	      "t.alloy:2:3: block comment not terminated");
	fails("pyroscope.write \"a\" {\n  x = 10s\n}",
	      "t.alloy:2:7: invalid number literal (durations and sizes are strings, e.g. "
	      "\"10s\")");
	fails("pyroscope.write \"a\" {\n  x = 1e\n}", "t.alloy:2:7: exponent has no digits");
	fails("pyroscope.write \"a\" {\n  x = 99999999999999999999\n}",
	      "t.alloy:2:7: integer 99999999999999999999 is out of range");
	fails("pyroscope.write \"a\" {\n  x = -9223372036854775809\n}",
	      "t.alloy:2:8: integer -9223372036854775809 is out of range");
	fails("pyroscope.write \"a\" {\n  x = 1e999\n}",
	      "t.alloy:2:7: number 1e999 is out of range");
	fails("pyroscope.write \"a\" {\n  x = @\n}", "t.alloy:2:7: illegal character '@'");
	/* Columns count characters, not bytes. */
	fails("pyroscope.write \"a\" {\n  x = [\"é\", @]\n}",
	      "t.alloy:2:13: illegal character '@'");
}
END_TEST

START_TEST(binary_input)
{
	static const char nul[] = "pyroscope.write \"a\" {\n \0 }";
	static const char bad_utf8[] = "pyroscope.write \"a\" {\n  x = \"\xC3\x28\"\n}";
	static const char bom[] = "\xEF\xBB\xBFpyroscope.write \"a\" { x = @ }";
	char *json = NULL, *err = NULL;

	ck_assert_int_eq(alloy_convert(nul, sizeof(nul) - 1, "b", NULL, &json, &err, NULL, NULL),
			 -1);
	ck_assert_str_eq(err, "b:2:2: illegal character NUL");
	free(err);
	fails(bad_utf8, "t.alloy:2:8: the file is not valid UTF-8");
	fails(bom, "t.alloy:1:27: illegal character '@'");
	fails("", "t.alloy: no pyroscope.write block found");
	ck_assert_int_eq(alloy_convert(NULL, 0, NULL, NULL, &json, &err, NULL, NULL), -1);
	ck_assert_str_eq(err, "no pyroscope.write block found");
	free(err);
	/* The length is honoured: nothing after it is read. */
	ck_assert_int_eq(alloy_convert("pyroscope.write \"a\" {}garbage", 22, NULL, NULL, &json,
				       &err, NULL, NULL),
			 0);
	ck_assert_str_eq(json, "{}");
	free(json);
}
END_TEST

START_TEST(nesting_limit)
{
	struct strbuf sb = STRBUF_INIT;
	char *err = NULL, *json = NULL;

	strbuf_puts(&sb, "pyroscope.write \"a\" {\n x = ");
	for (int i = 0; i < 100; i++)
		strbuf_putc(&sb, '[');
	for (int i = 0; i < 100; i++)
		strbuf_putc(&sb, ']');
	strbuf_puts(&sb, "\n}");
	ck_assert_int_eq(alloy_convert(sb.data, sb.len, NULL, NULL, &json, &err, NULL, NULL), -1);
	ck_assert_str_eq(err, "2:69: nesting is too deep");
	free(err);
	strbuf_reset(&sb);

	/* The same depth inside a skipped component. */
	strbuf_puts(&sb, "other \"x\" {\n x = ");
	for (int i = 0; i < 100; i++)
		strbuf_putc(&sb, '(');
	strbuf_puts(&sb, "\n}");
	ck_assert_int_eq(alloy_convert(sb.data, sb.len, NULL, NULL, &json, &err, NULL, NULL), -1);
	ck_assert_str_eq(err, "2:69: nesting is too deep");
	free(err);
	strbuf_free(&sb);
}
END_TEST

/* ---- other components --------------------------------------------------- */

START_TEST(skipped_components)
{
	const char *text =
		"logging {\n  level = \"debug\"\n  format = \"logfmt\"\n}\n"
		"top_level = 1 + 2\n"
		"spread = [\n  1,\n]\n"
		"local.file \"token\" {\n  filename = env(\"HOME\") + \"/token\"\n  is_secret = "
		"true\n}\n"
		"pyroscope.write \"w\" {\n  endpoint {\n    url = \"http://x\"\n  }\n}\n"
		"pyroscope.scrape \"s\" {\n"
		"  targets = [{\"__address__\" = \"a:1\"}, discovery.kubernetes.pods.targets[0]]\n"
		"  forward_to = [pyroscope.write.w.receiver]\n"
		"  profiling_config { profile.process_cpu { enabled = !false && (1 >= 2 || 3 != 4) "
		"} }\n"
		"  tricky = \"}\" // }\n"
		"  /* } */ raw = `}\n}`\n"
		"}\n";
	struct notices nt = {STRBUF_INIT, 0};

	check_convert(text, strlen(text), NULL, "{\"endpoint\":[{\"url\":\"http://x\"}]}", &nt);
	ck_assert_int_eq(nt.count, 5);
	ck_assert_str_eq(nt.sb.data, "skipping logging\n"
				     "skipping attribute top_level\n"
				     "skipping attribute spread\n"
				     "skipping local.file \"token\"\n"
				     "skipping pyroscope.scrape \"s\"");
	strbuf_free(&nt.sb);

	fails("other \"x\" {\n  a = [1, 2)\n}", "t.alloy:2:12: unexpected ')'; expected ']'");
	fails("other \"x\" {\n  a = [1, 2\n", "t.alloy:2:7: '[' is never closed");
	fails("other \"x\" {\n  a = \"\\z\"\n}", "t.alloy:2:8: unknown escape sequence \\z");
	fails("other \"x\" junk {}", "t.alloy:1:11: expected '{' after other");
	fails("other junk", "t.alloy:1:7: missing '=' or '{' after other");
	fails("\"x\" {}", "t.alloy:1:1: expected a block or attribute name, found a string");
}
END_TEST

static Suite *alloy_suite(void)
{
	Suite *s = suite_create("alloy");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, docs_example);
	tcase_add_test(tc, docs_troubleshooting);
	tcase_add_test(tc, docs_chain);
	tcase_add_test(tc, examples_match_json);
	tcase_add_test(tc, literal_types);
	tcase_add_test(tc, integers_stay_integers);
	tcase_add_test(tc, string_escapes);
	tcase_add_test(tc, bad_strings);
	tcase_add_test(tc, comments);
	tcase_add_test(tc, trailing_commas);
	tcase_add_test(tc, nested_blocks);
	tcase_add_test(tc, queue_block);
	tcase_add_test(tc, block_errors);
	tcase_add_test(tc, select_by_label);
	tcase_add_test(tc, unsupported_values);
	tcase_add_test(tc, lexical_errors);
	tcase_add_test(tc, binary_input);
	tcase_add_test(tc, nesting_limit);
	tcase_add_test(tc, skipped_components);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(alloy_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
