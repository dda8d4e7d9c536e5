/*
 * test_config.c - configuration loader, durations and file watches.
 *
 * Documents are table-driven: every type and every rule has at least one
 * document that must load and one that must fail with an exact message.
 * "@F@" in a document is replaced by a readable temporary file and "@DIR@"
 * by a directory (which cannot be read as a file).
 */
#include "config.h"
#include "config_doc.h"
#include "duration.h"
#include "filewatch.h"
#include "strbuf.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];
static char tmpfile_path[PATH_MAX + 16];
static char fifo_path[PATH_MAX + 16];

static void write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(content, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

static void setup_files(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/pw-test-config-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(tmpfile_path, sizeof(tmpfile_path), "%s/secret", tmpdir);
	write_file(tmpfile_path, "  s3cret-from-file\n");
	snprintf(fifo_path, sizeof(fifo_path), "%s/fifo", tmpdir);
	ck_assert_int_eq(mkfifo(fifo_path, 0600), 0);
}

static void teardown_files(void)
{
	char p[PATH_MAX + 300];
	DIR *d = opendir(tmpdir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(tmpdir);
}

/* Replaces every @F@ and @DIR@; malloc'd. */
static char *expand(const char *doc)
{
	struct strbuf sb = STRBUF_INIT;

	while (*doc) {
		if (strncmp(doc, "@F@", 3) == 0) {
			strbuf_puts(&sb, tmpfile_path);
			doc += 3;
		} else if (strncmp(doc, "@DIR@", 5) == 0) {
			strbuf_puts(&sb, tmpdir);
			doc += 5;
		} else {
			strbuf_putc(&sb, *doc++);
		}
	}
	return strbuf_detach(&sb, NULL);
}

/* Parses doc (after expansion); returns the snapshot or NULL + *errors. */
static struct pw_config *load(const char *doc, char **errors)
{
	struct pw_config *cfg = NULL;
	char *text = expand(doc);
	int rc = pw_config_parse(text, &cfg, errors);

	free(text);
	if (rc == 0)
		ck_assert_ptr_nonnull(cfg);
	else
		ck_assert_ptr_null(cfg);
	return cfg;
}

static struct pw_config *load_ok(const char *doc)
{
	char *errors = NULL;
	struct pw_config *cfg = load(doc, &errors);

	if (!cfg)
		ck_abort_msg("document should load: %s\nerrors:\n%s", doc, errors);
	ck_assert_ptr_null(errors);
	return cfg;
}

/* Asserts the document fails and one line of the errors contains want. */
static void expect_error(const char *doc, const char *want)
{
	char *errors = NULL;
	struct pw_config *cfg = load(doc, &errors);
	bool found = false;

	if (cfg) {
		pw_config_free(cfg);
		ck_abort_msg("document should fail with \"%s\": %s", want, doc);
	}
	ck_assert_ptr_nonnull(errors);
	for (char *line = errors; line && *line;) {
		char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		char *copy = pw_strndup(line, n);

		if (strstr(copy, want))
			found = true;
		free(copy);
		line = nl ? nl + 1 : NULL;
	}
	if (!found)
		ck_abort_msg("expected \"%s\" in errors of %s\ngot:\n%s", want, doc, errors);
	free(errors);
}

static size_t count_lines(const char *s)
{
	size_t n = *s ? 1 : 0;

	for (; *s; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* ------------------------------------------------------------------------ */
/* Durations                                                                  */

static const struct {
	const char *in;
	int64_t ns;
} good_durations[] = {
	{"0", 0},
	{"-0", 0},
	{"+0", 0},
	{"0s", 0},
	{"10s", INT64_C(10000000000)},
	{"500ms", INT64_C(500000000)},
	{"1m30s", INT64_C(90000000000)},
	{"1.5h", INT64_C(5400000000000)},
	{"-2s", INT64_C(-2000000000)},
	{"+5s", INT64_C(5000000000)},
	{"1h2m3.5s", INT64_C(3723500000000)},
	{".5s", INT64_C(500000000)},
	{"1.s", INT64_C(1000000000)},
	{"3us", 3000},
	{"3\xc2\xb5s", 3000},
	{"3\xce\xbcs", 3000},
	{"7ns", 7},
	{"1.000000001s", INT64_C(1000000001)},
	{"9223372036854775807ns", INT64_MAX},
	{"-9223372036854775808ns", INT64_MIN},
	{"2562047h47m16.854775807s", INT64_MAX},
};

static const struct {
	const char *in;
	const char *why;
} bad_durations[] = {
	{"", "empty duration"},
	{"10", "missing unit in duration"},
	{"1.5", "missing unit in duration"},
	{"9999999999h", "duration out of range"},
	{"9223372036854775808ns", "duration out of range"},
	{"99999999999999999999s", "duration out of range"},
	{"2562047h47m16.854775808s", "duration out of range"},
	{"\xc2\xb5s", "invalid duration"},
	{"1e3s", "unknown unit in duration"},
	{"5d", "unknown unit in duration"},
	{"-", "invalid duration"},
	{".s", "invalid duration"},
	{"s", "invalid duration"},
	{"1s ", "unknown unit in duration"},
	{" 1s", "invalid duration"},
	{"1S", "unknown unit in duration"},
	{"--1s", "invalid duration"},
};

START_TEST(duration_parse_good)
{
	int64_t ns = 42;
	const char *why = NULL;

	ck_assert_msg(pw_duration_parse(good_durations[_i].in, &ns, &why) == 0, "%s: %s",
		      good_durations[_i].in, why);
	ck_assert_msg(ns == good_durations[_i].ns, "%s: got %lld", good_durations[_i].in,
		      (long long)ns);
}
END_TEST

START_TEST(duration_parse_bad)
{
	int64_t ns = 42;
	const char *why = NULL;

	ck_assert_int_eq(pw_duration_parse(bad_durations[_i].in, &ns, &why), -1);
	ck_assert_str_eq(why, bad_durations[_i].why);
	ck_assert_int_eq(ns, 42);
}
END_TEST

static const struct {
	int64_t ns;
	const char *out;
} formats[] = {
	{0, "0s"},
	{1, "1ns"},
	{1100, "1.1\xc2\xb5s"},
	{INT64_C(500000000), "500ms"},
	{INT64_C(1500000), "1.5ms"},
	{INT64_C(10000000000), "10s"},
	{INT64_C(90000000000), "1m30s"},
	{INT64_C(300000000000), "5m0s"},
	{INT64_C(3723500000000), "1h2m3.5s"},
	{INT64_C(-2000000000), "-2s"},
	{INT64_MAX, "2562047h47m16.854775807s"},
	{INT64_MIN, "-2562047h47m16.854775808s"},
};

START_TEST(duration_format)
{
	char buf[64];
	int64_t back = 0;

	pw_duration_format(formats[_i].ns, buf, sizeof(buf));
	ck_assert_str_eq(buf, formats[_i].out);
	/* Whatever is printed parses back to the same value. */
	ck_assert_int_eq(pw_duration_parse(buf, &back, NULL), 0);
	ck_assert_int_eq(back, formats[_i].ns);
}
END_TEST

START_TEST(duration_format_small_buffer)
{
	char buf[4];

	pw_duration_format(INT64_C(90000000000), buf, sizeof(buf));
	ck_assert_str_eq(buf, "1m3");
}
END_TEST

/* A document whose queue block holds the given members and a directory. */
#define Q(members) "{\"queue\": {\"directory\": \"/var/lib/pw\", " members "}}"

/* ------------------------------------------------------------------------ */
/* Documents that must load                                                   */

static const char *const valid_docs[] = {
	/* empty document, zero endpoints */
	"{}",
	"{\"endpoint\": []}",
	/* single object form */
	"{\"endpoint\": {\"url\": \"http://pyroscope:4040\"}}",
	/* the extensions: an empty batch block takes the defaults */
	"{\"endpoint\": [{\"url\": \"http://h\", \"batch\": {}, \"tenant_label\": \"team\"}]}",
	"{\"endpoint\": [{\"url\": \"http://h\", \"tenant_label\": \"__name__\", \"batch\": "
	"{\"max_profiles\": 10000, \"max_bytes\": 67108864, \"max_wait\": \"0s\"}}]}",
	/* null means unset */
	"{\"endpoint\": [{\"url\": \"http://h\", \"name\": null, \"tls_config\": null}], "
	"\"external_labels\": null}",
	/* string, duration, int, bool */
	"{\"endpoint\": [{\"url\": \"https://h:443/base?x=1\", \"name\": \"n\", "
	"\"remote_timeout\": \"1m30s\", \"min_backoff_period\": \"1s\", "
	"\"max_backoff_period\": \"1s\", \"max_backoff_retries\": 0, "
	"\"retry_on_http_429\": false, \"enable_http2\": false, \"follow_redirects\": false, "
	"\"max_connections\": 1}]}",
	"{\"endpoint\": [{\"url\": \"http://[::1]:4040\", \"max_connections\": 1024}]}",
	"{\"endpoint\": [{\"url\": \"HTTP://h\"}]}",
	/* map(string), map(list(secret)) with a non-reserved header */
	"{\"endpoint\": [{\"url\": \"http://h\", \"headers\": {\"X-Scope-OrgID\": \"t1\", "
	"\"Authorization\": \"Bearer x\"}, \"http_headers\": {\"X-Extra\": [\"a\", \"b\"], "
	"\"X-Empty\": []}}]}",
	/* labels */
	"{\"external_labels\": {\"env\": \"prod\", \"__name__\": \"x\", \"a.b_c9\": \"\", "
	"\"9lead\": \"ok\", \"utf\": \"\xc3\xa9t\xc3\xa9\"}}",
	/* each auth kind alone */
	"{\"endpoint\": [{\"url\": \"http://h\", \"bearer_token\": \"t\"}]}",
	"{\"endpoint\": [{\"url\": \"http://h\", \"bearer_token_file\": \"@F@\"}]}",
	"{\"endpoint\": [{\"url\": \"http://h\", \"basic_auth\": {\"username\": \"u\", "
	"\"password\": \"p\"}}]}",
	"{\"endpoint\": [{\"url\": \"http://h\", \"basic_auth\": {\"username\": \"u\", "
	"\"password_file\": \"@F@\"}}]}",
	"{\"endpoint\": [{\"url\": \"http://h\", \"authorization\": {\"type\": \"Token\", "
	"\"credentials\": \"c\"}}]}",
	"{\"endpoint\": [{\"url\": \"http://h\", \"authorization\": {\"credentials_file\": "
	"\"@F@\"}}]}",
	"{\"endpoint\": [{\"url\": \"http://h\", \"oauth2\": {\"client_id\": \"id\", "
	"\"client_secret\": \"s\", \"token_url\": \"https://idp/token\", \"scopes\": [\"a\", "
	"\"b\"], "
	"\"endpoint_params\": {\"audience\": \"x\"}, \"proxy_url\": \"http://proxy:3128\", "
	"\"no_proxy\": \"idp\", \"proxy_connect_header\": {\"X-P\": [\"v\"]}, "
	"\"tls_config\": {\"ca_file\": \"@F@\", \"insecure_skip_verify\": true}}}]}",
	"{\"endpoint\": [{\"url\": \"http://h\", \"oauth2\": {\"client_id\": \"id\", "
	"\"client_secret_file\": \"@F@\", \"token_url\": \"http://idp/token\", "
	"\"proxy_from_environment\": true}}]}",
	/* tls */
	"{\"endpoint\": [{\"url\": \"https://h\", \"tls_config\": {\"ca_pem\": \"-----BEGIN "
	"CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\", \"cert_file\": \"@F@\", "
	"\"key_file\": \"@F@\", \"server_name\": \"h\", \"min_version\": \"TLS13\"}}]}",
	"{\"endpoint\": [{\"url\": \"https://h\", \"tls_config\": {\"cert_pem\": \"-----BEGIN "
	"CERTIFICATE-----\\n\", \"key_pem\": \"-----BEGIN PRIVATE KEY-----\\n\", "
	"\"min_version\": \"TLS10\"}}]}",
	"{\"endpoint\": [{\"url\": \"https://h\", \"tls_config\": {\"min_version\": \"\"}}]}",
	/* proxy */
	"{\"endpoint\": [{\"url\": \"http://h\", \"proxy_url\": \"socks5://u:p@proxy:1080\", "
	"\"no_proxy\": \"10.0.0.0/8, 192.168.1.1,::1,[::1]:80,fd00::/8, example.com, "
	".internal:8080, *.svc,*,localhost:4040,\", "
	"\"proxy_connect_header\": {\"Proxy-Authorization\": [\"Basic x\"]}}]}",
	"{\"endpoint\": [{\"url\": \"http://h\", \"proxy_from_environment\": true, "
	"\"proxy_connect_header\": {\"X-A\": [\"1\"]}}]}",
	/* accepted and ignored */
	"{\"endpoint\": [{\"url\": \"http://h\", \"debug_info_upload_timeout\": \"30s\"}], "
	"\"tracing\": {\"jaeger_propagator\": false, \"anything\": [1, {\"x\": null}]}}",
	/* top level */
	"{\"max_inflight_bytes\": 1024, \"shutdown_timeout\": \"0s\"}",
	"{\"max_inflight_bytes\": 68719476736, \"shutdown_timeout\": \"10m\"}",
	/* several endpoints */
	"{\"endpoint\": [{\"url\": \"http://a\"}, {\"url\": \"http://b\", \"name\": \"b\"}]}",
	/* the queue: each range edge just inside, each choice */
	Q("\"max_size\": 65536, \"max_age\": \"1s\", \"fsync\": \"interval\", "
	  "\"fsync_interval\": \"10ms\", \"when_full\": \"refuse\""),
	Q("\"max_size\": 1099511627776, \"max_age\": \"168h\", \"fsync\": \"interval\", "
	  "\"fsync_interval\": \"1m\", \"when_full\": \"drop_oldest\""),
	Q("\"fsync\": \"always\", \"fsync_interval\": null, \"when_full\": \"\""),
};

START_TEST(valid_documents)
{
	pw_config_free(load_ok(valid_docs[_i]));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Documents that must fail, with the message they must produce              */

#define EP1(body) "{\"endpoint\": [{\"url\": \"http://h\", " body "}]}"

static const struct {
	const char *doc;
	const char *want;
} invalid_docs[] = {
	/* document level */
	{"[]", "document: expected a JSON object at the top level, got array"},
	{"\"x\"", "document: expected a JSON object at the top level, got string"},
	{"{\"endpoint\": [}", "line 1, column 15: "},
	{"{\n  \"a\": 1,\n  \"a\": 2\n}", "line 3, column 5: duplicate object key"},
	{"{\"external_labels\": {\"a\": \"\xff\"}}",
	 "line 1, column 28: document is not valid UTF-8"},
	{"{\"x\": \"\xc0\xaf\"}", "line 1, column 8: document is not valid UTF-8"},
	{"", "line 1, column 0: "},
	{"{} {}", "line 1, column 4: end of file expected"},
	/* unknown keys */
	{EP1("\"remote_timout\": \"1s\""),
	 "endpoint[0].remote_timout: unknown attribute; did you mean \"remote_timeout\"?"},
	{"{\"external_label\": {}}",
	 "external_label: unknown attribute; did you mean \"external_labels\"?"},
	{"{\"endpoints\": []}", "endpoints: unknown attribute; did you mean \"endpoint\"?"},
	{EP1("\"zzzz\": 1"), "endpoint[0].zzzz: unknown attribute"},
	{EP1("\"batch\": {\"max_profiles\": 0}"),
	 "endpoint[0].batch.max_profiles: must be between 1 and 10000, got 0"},
	{EP1("\"batch\": {\"max_profiles\": 10001}"),
	 "endpoint[0].batch.max_profiles: must be between 1 and 10000, got 10001"},
	{EP1("\"batch\": {\"max_bytes\": 1023}"),
	 "endpoint[0].batch.max_bytes: must be between 1024 and 67108864, got 1023"},
	{EP1("\"batch\": {\"max_bytes\": 67108865}"),
	 "endpoint[0].batch.max_bytes: must be between 1024 and 67108864, got 67108865"},
	{EP1("\"batch\": {\"max_wait\": \"11s\"}"),
	 "endpoint[0].batch.max_wait: must be between 0s and 10s, got 11s"},
	{EP1("\"batch\": {\"max_wait\": \"-1s\"}"), "endpoint[0].batch.max_wait: "},
	{EP1("\"batch\": {\"max_wiat\": \"1s\"}"),
	 "endpoint[0].batch.max_wiat: unknown attribute; did you mean \"max_wait\"?"},
	{EP1("\"batch\": 1"), "endpoint[0].batch: expected an object (a batch block), got "},
	/* the queue: each range edge just outside, bad choices, a missing directory */
	{Q("\"max_size\": 65535"),
	 "queue.max_size: must be between 65536 and 1099511627776, got 65535"},
	{Q("\"max_size\": 1099511627777"),
	 "queue.max_size: must be between 65536 and 1099511627776, got 1099511627777"},
	{Q("\"max_size\": \"1GiB\""), "queue.max_size: expected an integer, got string"},
	{Q("\"max_age\": \"999ms\""), "queue.max_age: must be between 1s and 168h0m0s, got 999ms"},
	{Q("\"max_age\": \"168h0m1s\""),
	 "queue.max_age: must be between 1s and 168h0m0s, got 168h0m1s"},
	{Q("\"fsync\": \"interval\", \"fsync_interval\": \"9ms\""),
	 "queue.fsync_interval: must be between 10ms and 1m0s, got 9ms"},
	{Q("\"fsync\": \"interval\", \"fsync_interval\": \"60001ms\""),
	 "queue.fsync_interval: must be between 10ms and 1m0s, got 1m0.001s"},
	{Q("\"fsync_interval\": \"1s\""),
	 "queue.fsync_interval: is used only with fsync = \"interval\"; remove it or set fsync "
	 "= \"interval\""},
	{Q("\"fsync\": \"always\", \"fsync_interval\": \"5s\""),
	 "queue.fsync_interval: is used only with fsync = \"interval\""},
	{Q("\"fsync\": \"never\""),
	 "queue.fsync: must be \"always\" or \"interval\", got \"never\""},
	{Q("\"fsync\": true"), "queue.fsync: expected a string, got bool"},
	{Q("\"when_full\": \"drop_newest\""),
	 "queue.when_full: must be \"drop_oldest\" or \"refuse\", got \"drop_newest\""},
	{Q("\"when_full\": \"Refuse\""),
	 "queue.when_full: must be \"drop_oldest\" or \"refuse\", got \"Refuse\""},
	{"{\"queue\": {}}", "queue.directory: required attribute is missing"},
	{"{\"queue\": {\"directory\": null}}", "queue.directory: required attribute is missing"},
	{"{\"queue\": {\"directory\": \"\"}}", "queue.directory: must not be empty"},
	{"{\"queue\": {\"directory\": 7}}", "queue.directory: expected a string, got number"},
	{Q("\"max_sise\": 65536"), "queue.max_sise: unknown attribute; did you mean \"max_size\"?"},
	{Q("\"whenfull\": \"refuse\""),
	 "queue.whenfull: unknown attribute; did you mean \"when_full\"?"},
	{"{\"queues\": {}}", "queues: unknown attribute; did you mean \"queue\"?"},
	{"{\"queue\": []}", "queue: expected an object (a queue block), got array"},
	{EP1("\"tenant_label\": \"team-id\""),
	 "endpoint[0].tenant_label: invalid label name \"team-id\": use letters, digits, \"_\" "
	 "and \".\" only (or exactly \"__name__\")"},
	{EP1("\"basic_auth\": {\"pasword\": \"x\"}"),
	 "endpoint[0].basic_auth.pasword: unknown attribute; did you mean \"password\"?"},
	{EP1("\"tls_config\": {\"ca\": \"x\"}"), "endpoint[0].tls_config.ca: unknown attribute"},
	{EP1("\"a\\nb\": 1"), "endpoint[0].a\\x0ab: unknown attribute"},
	/* type errors, one per type */
	{"{\"endpoint\": [{\"url\": 5}]}", "endpoint[0].url: expected a string, got number"},
	{EP1("\"bearer_token\": true"), "endpoint[0].bearer_token: expected a string, got bool"},
	{EP1("\"enable_http2\": \"true\""),
	 "endpoint[0].enable_http2: expected a bool (true or false), got string"},
	{EP1("\"max_backoff_retries\": \"10\""),
	 "endpoint[0].max_backoff_retries: expected an integer, got string"},
	{EP1("\"max_backoff_retries\": 1.5"),
	 "endpoint[0].max_backoff_retries: expected an integer, got a number with a fraction"},
	{EP1("\"remote_timeout\": 10"),
	 "endpoint[0].remote_timeout: expected a duration string such as \"10s\", got number"},
	{EP1("\"remote_timeout\": \"10\""),
	 "endpoint[0].remote_timeout: invalid duration \"10\": missing unit in duration"},
	{EP1("\"remote_timeout\": \"\""),
	 "endpoint[0].remote_timeout: invalid duration \"\": empty duration"},
	{EP1("\"min_backoff_period\": \"9999999999h\""),
	 "endpoint[0].min_backoff_period: invalid duration \"9999999999h\": duration out of range"},
	{EP1("\"headers\": [\"a\"]"),
	 "endpoint[0].headers: expected an object of strings, got array"},
	{EP1("\"headers\": {\"X-A\": 1}"),
	 "endpoint[0].headers[\"X-A\"]: expected a string, got number"},
	{EP1("\"http_headers\": {\"X-A\": \"v\"}"),
	 "endpoint[0].http_headers[\"X-A\"]: expected a list of strings, got string"},
	{EP1("\"http_headers\": {\"X-A\": [\"v\", 2]}"),
	 "endpoint[0].http_headers[\"X-A\"][1]: expected a string, got number"},
	{EP1("\"http_headers\": 3"),
	 "endpoint[0].http_headers: expected an object of string lists, got number"},
	{EP1("\"oauth2\": {\"client_id\": \"i\", \"client_secret\": \"s\", \"token_url\": "
	     "\"http://t\", \"scopes\": \"a\"}"),
	 "endpoint[0].oauth2.scopes: expected a list of strings, got string"},
	{EP1("\"oauth2\": {\"client_id\": \"i\", \"client_secret\": \"s\", \"token_url\": "
	     "\"http://t\", \"scopes\": [\"a\", null]}"),
	 "endpoint[0].oauth2.scopes[1]: expected a string, got null"},
	{EP1("\"basic_auth\": \"u:p\""),
	 "endpoint[0].basic_auth: expected an object (a basic_auth block), got string"},
	{"{\"endpoint\": \"http://h\"}",
	 "endpoint: expected an endpoint object or a list of them, got string"},
	{"{\"endpoint\": [{\"url\": \"http://h\"}, 3]}",
	 "endpoint[1]: expected an endpoint object, got number"},
	{"{\"tracing\": true}", "tracing: expected an object (a tracing block), got bool"},
	{"{\"external_labels\": {\"a\": null}}",
	 "external_labels[\"a\"]: expected a string, got null"},
	{EP1("\"name\": \"a\\u0000b\""), "endpoint[0].name: must not contain a NUL character"},
	/* stricter than the reference: url */
	{"{\"endpoint\": [{\"name\": \"x\"}]}", "endpoint[0].url: required attribute is missing"},
	{"{\"endpoint\": [{\"url\": \"\"}]}", "endpoint[0].url: must not be empty"},
	{"{\"endpoint\": [{\"url\": \"pyroscope:4040\"}]}",
	 "endpoint[0].url: must be an absolute http or https URL with a host: not an absolute URL"},
	{"{\"endpoint\": [{\"url\": \"ftp://h\"}]}",
	 "endpoint[0].url: must be an absolute http or https URL with a host: unsupported scheme "
	 "\"ftp\""},
	{"{\"endpoint\": [{\"url\": \"http:///path\"}]}",
	 "endpoint[0].url: must be an absolute http or https URL with a host: missing host"},
	{"{\"endpoint\": [{\"url\": \"http://u:p@:80\"}]}",
	 "endpoint[0].url: must be an absolute http or https URL with a host: missing host"},
	{"{\"endpoint\": [{\"url\": \"http://h:99999\"}]}",
	 "endpoint[0].url: must be an absolute http or https URL with a host: invalid port"},
	{"{\"endpoint\": [{\"url\": \"http://h x\"}]}",
	 "endpoint[0].url: must be an absolute http or https URL with a host: contains a space"},
	{"{\"endpoint\": [{\"url\": \"http://[zz]:80\"}]}",
	 "endpoint[0].url: must be an absolute http or https URL with a host: invalid IPv6 host"},
	/* stricter than the reference: timeouts, backoff, retries, connections */
	{EP1("\"remote_timeout\": \"0s\""),
	 "endpoint[0].remote_timeout: must be greater than 0, got 0s"},
	{EP1("\"remote_timeout\": \"-1s\""),
	 "endpoint[0].remote_timeout: must be greater than 0, got -1s"},
	{EP1("\"min_backoff_period\": \"0\""),
	 "endpoint[0].min_backoff_period: must be greater than 0, got 0s"},
	{EP1("\"max_backoff_period\": \"0s\""),
	 "endpoint[0].max_backoff_period: must be greater than 0, got 0s"},
	{EP1("\"min_backoff_period\": \"10s\", \"max_backoff_period\": \"1s\""),
	 "endpoint[0].max_backoff_period: must not be shorter than min_backoff_period (1s < 10s)"},
	{EP1("\"min_backoff_period\": \"10m\""),
	 "endpoint[0].max_backoff_period: must not be shorter than min_backoff_period (5m0s < "
	 "10m0s)"},
	{EP1("\"max_backoff_retries\": -1"),
	 "endpoint[0].max_backoff_retries: must not be negative, got -1"},
	{EP1("\"max_connections\": 0"),
	 "endpoint[0].max_connections: must be between 1 and 1024, got 0"},
	{EP1("\"max_connections\": 1025"),
	 "endpoint[0].max_connections: must be between 1 and 1024, got 1025"},
	{"{\"max_inflight_bytes\": 1023}",
	 "max_inflight_bytes: must be between 1024 and 68719476736, got 1023"},
	{"{\"max_inflight_bytes\": 68719476737}",
	 "max_inflight_bytes: must be between 1024 and 68719476736, got 68719476737"},
	{"{\"shutdown_timeout\": \"-1s\"}",
	 "shutdown_timeout: must be between 0s and 10m0s, got -1s"},
	{"{\"shutdown_timeout\": \"10m1s\"}",
	 "shutdown_timeout: must be between 0s and 10m0s, got 10m1s"},
	/* stricter than the reference: headers */
	{EP1("\"headers\": {\"Bad Name\": \"v\"}"),
	 "endpoint[0].headers[\"Bad Name\"]: \"Bad Name\" is not a valid HTTP header name"},
	{EP1("\"headers\": {\"\": \"v\"}"),
	 "endpoint[0].headers[\"\"]: \"\" is not a valid HTTP header name"},
	{EP1("\"headers\": {\"X-A\": \"a\\r\\nX-Injected: 1\"}"),
	 "endpoint[0].headers[\"X-A\"]: header value must not contain CR, LF, NUL or other control "
	 "characters"},
	{EP1("\"headers\": {\"X-A\": \"a\\u0000\"}"),
	 "endpoint[0].headers[\"X-A\"]: header value must not contain CR, LF, NUL or other control "
	 "characters"},
	{EP1("\"http_headers\": {\"X-A\": [\"ok\", \"bad\\n\"]}"),
	 "endpoint[0].http_headers[\"X-A\"][1]: header value must not contain CR, LF, NUL or other "
	 "control characters"},
	{EP1("\"headers\": {\"X-A\": \"a\\u001b[2J\"}"),
	 "endpoint[0].headers[\"X-A\"]: header value must not contain CR, LF, NUL or other "
	 "control characters"},
	{EP1("\"bearer_token\": \"t\\r\\nX-Scope-OrgID: victim\""),
	 "endpoint[0].bearer_token: must not contain CR, LF or other control characters (it is "
	 "sent in a header)"},
	{EP1("\"authorization\": {\"type\": \"Bearer\\nX\", \"credentials\": \"c\"}"),
	 "endpoint[0].authorization.type: must not contain CR, LF or other control characters "
	 "(it is sent in a header)"},
	{EP1("\"authorization\": {\"credentials\": \"c\\u007f\"}"),
	 "endpoint[0].authorization.credentials: must not contain CR, LF or other control "
	 "characters (it is sent in a header)"},
	{EP1("\"http_headers\": {\"X:A\": [\"v\"]}"),
	 "endpoint[0].http_headers[\"X:A\"]: \"X:A\" is not a valid HTTP header name"},
	{EP1("\"proxy_url\": \"http://p\", \"proxy_connect_header\": {\"X@\": [\"v\"]}"),
	 "endpoint[0].proxy_connect_header[\"X@\"]: \"X@\" is not a valid HTTP header name"},
	/* reserved http_headers, compared canonicalised */
	{EP1("\"http_headers\": {\"authorization\": [\"x\"]}"),
	 "endpoint[0].http_headers[\"authorization\"]: setting header \"Authorization\" is not "
	 "allowed"},
	{EP1("\"http_headers\": {\"HOST\": [\"x\"]}"), "setting header \"Host\" is not allowed"},
	{EP1("\"http_headers\": {\"content-type\": [\"x\"]}"),
	 "setting header \"Content-Type\" is not allowed"},
	{EP1("\"http_headers\": {\"WWW-Authenticate\": [\"x\"]}"),
	 "setting header \"Www-Authenticate\" is not allowed"},
	{EP1("\"http_headers\": {\"x-amz-content-sha256\": [\"x\"]}"),
	 "setting header \"X-Amz-Content-Sha256\" is not allowed"},
	/* stricter than the reference: external labels */
	{"{\"external_labels\": {\"bad-name\": \"x\"}}",
	 "external_labels[\"bad-name\"]: invalid label name \"bad-name\""},
	{"{\"external_labels\": {\"\": \"x\"}}", "external_labels[\"\"]: invalid label name \"\""},
	{"{\"external_labels\": {\"a\": \"x\\u0000\"}}",
	 "external_labels[\"a\"]: must not contain a NUL character"},
	/* auth mutual exclusion */
	{EP1("\"bearer_token\": \"t\", \"bearer_token_file\": \"@F@\""),
	 "endpoint[0]: at most one of basic_auth, authorization, oauth2, bearer_token & "
	 "bearer_token_file must be configured"},
	{EP1("\"bearer_token\": \"t\", \"basic_auth\": {}"),
	 "endpoint[0]: at most one of basic_auth, authorization, oauth2, bearer_token & "
	 "bearer_token_file must be configured"},
	{EP1("\"authorization\": {\"credentials\": \"c\"}, \"basic_auth\": {\"username\": \"u\"}"),
	 "endpoint[0]: at most one of basic_auth"},
	/* basic_auth / authorization */
	{EP1("\"basic_auth\": {\"password\": \"p\", \"password_file\": \"@F@\"}"),
	 "endpoint[0].basic_auth: password and password_file are mutually exclusive"},
	{EP1("\"authorization\": {\"credentials\": \"c\", \"credentials_file\": \"@F@\"}"),
	 "endpoint[0].authorization: credentials and credentials_file are mutually exclusive"},
	{EP1("\"authorization\": {\"type\": \"basic\"}"),
	 "endpoint[0].authorization.type: type \"basic\" is not allowed here; use the basic_auth "
	 "block"},
	{EP1("\"authorization\": {\"type\": \" BaSiC \"}"),
	 "endpoint[0].authorization.type: type \"basic\" is not allowed"},
	/* oauth2 */
	{EP1("\"oauth2\": {\"client_secret\": \"s\", \"token_url\": \"http://t\"}"),
	 "endpoint[0].oauth2.client_id: required attribute is missing"},
	{EP1("\"oauth2\": {\"client_id\": \"i\", \"client_secret\": \"s\"}"),
	 "endpoint[0].oauth2.token_url: required attribute is missing"},
	{EP1("\"oauth2\": {\"client_id\": \"i\", \"token_url\": \"http://t\"}"),
	 "endpoint[0].oauth2: one of client_secret or client_secret_file is required"},
	{EP1("\"oauth2\": {\"client_id\": \"i\", \"client_secret\": \"s\", \"client_secret_file\": "
	     "\"@F@\", \"token_url\": \"http://t\"}"),
	 "endpoint[0].oauth2: client_secret and client_secret_file are mutually exclusive"},
	{EP1("\"oauth2\": {\"client_id\": \"i\", \"client_secret\": \"s\", \"token_url\": \"/t\"}"),
	 "endpoint[0].oauth2.token_url: must be an absolute http or https URL with a host"},
	{EP1("\"oauth2\": {\"client_id\": \"i\", \"client_secret\": \"s\", \"token_url\": "
	     "\"http://t\", \"no_proxy\": \"x\"}"),
	 "endpoint[0].oauth2.no_proxy: requires proxy_url"},
	{EP1("\"oauth2\": {\"client_id\": \"i\", \"client_secret\": \"s\", \"token_url\": "
	     "\"http://t\", \"tls_config\": {\"ca_pem\": \"x\"}}"),
	 "endpoint[0].oauth2.tls_config.ca_pem: does not look like PEM text"},
	/* tls */
	{EP1("\"tls_config\": {\"ca_pem\": \"-----BEGIN X\", \"ca_file\": \"@F@\"}"),
	 "endpoint[0].tls_config: ca_pem and ca_file are mutually exclusive"},
	{EP1("\"tls_config\": {\"cert_pem\": \"-----BEGIN X\", \"cert_file\": \"@F@\", "
	     "\"key_file\": \"@F@\"}"),
	 "endpoint[0].tls_config: cert_pem and cert_file are mutually exclusive"},
	{EP1("\"tls_config\": {\"cert_file\": \"@F@\", \"key_pem\": \"-----BEGIN X\", "
	     "\"key_file\": \"@F@\"}"),
	 "endpoint[0].tls_config: key_pem and key_file are mutually exclusive"},
	{EP1("\"tls_config\": {\"cert_file\": \"@F@\"}"),
	 "endpoint[0].tls_config: a client certificate (cert_pem or cert_file) needs a client key"},
	{EP1("\"tls_config\": {\"key_pem\": \"-----BEGIN X\"}"),
	 "endpoint[0].tls_config: a client key (key_pem or key_file) needs a client certificate"},
	{EP1("\"tls_config\": {\"min_version\": \"TLS1.2\"}"),
	 "endpoint[0].tls_config.min_version: unknown TLS version \"TLS1.2\"; expected one of "
	 "TLS10, "
	 "TLS11, TLS12, TLS13"},
	{EP1("\"tls_config\": {\"min_version\": 12}"),
	 "endpoint[0].tls_config.min_version: expected a string such as \"TLS12\", got number"},
	{EP1("\"tls_config\": {\"cert_pem\": \"MIIB\", \"key_pem\": \"-----BEGIN X\"}"),
	 "endpoint[0].tls_config.cert_pem: does not look like PEM text"},
	{EP1("\"tls_config\": {\"cert_pem\": \"-----BEGIN X\", \"key_pem\": \"MIIE\"}"),
	 "endpoint[0].tls_config.key_pem: does not look like PEM text"},
	/* proxy */
	{EP1("\"proxy_from_environment\": true, \"proxy_url\": \"http://p\""),
	 "endpoint[0].proxy_url: must not be set together with proxy_from_environment"},
	{EP1("\"proxy_from_environment\": true, \"no_proxy\": \"a\""),
	 "endpoint[0].no_proxy: must not be set together with proxy_from_environment"},
	{EP1("\"no_proxy\": \"a\""), "endpoint[0].no_proxy: requires proxy_url"},
	{EP1("\"proxy_connect_header\": {\"X-A\": [\"v\"]}"),
	 "endpoint[0].proxy_connect_header: requires proxy_url or proxy_from_environment"},
	{EP1("\"proxy_url\": \"ftp://p\""),
	 "endpoint[0].proxy_url: must be an absolute http, https or socks5 URL with a host: "
	 "unsupported scheme \"ftp\""},
	{EP1("\"proxy_url\": \"p:3128\""),
	 "endpoint[0].proxy_url: must be an absolute http, https or socks5 URL with a host"},
	{EP1("\"proxy_url\": \"http://p\", \"no_proxy\": \"good.com, bad host\""),
	 "endpoint[0].no_proxy: entry \"bad host\" is not an IP address, CIDR range or domain "
	 "name"},
	{EP1("\"proxy_url\": \"http://p\", \"no_proxy\": \"10.0.0.0/33\""),
	 "endpoint[0].no_proxy: entry \"10.0.0.0/33\" is not an IP address"},
	{EP1("\"proxy_url\": \"http://p\", \"no_proxy\": \"h:99999\""),
	 "endpoint[0].no_proxy: entry \"h:99999\" is not an IP address"},
	{EP1("\"proxy_url\": \"http://p\", \"no_proxy\": \"a..b\""),
	 "endpoint[0].no_proxy: entry \"a..b\" is not an IP address"},
	/* files */
	{EP1("\"bearer_token_file\": \"/nonexistent/token\""),
	 "endpoint[0].bearer_token_file: cannot read \"/nonexistent/token\": No such file or "
	 "directory"},
	{EP1("\"basic_auth\": {\"password_file\": \"@DIR@\"}"),
	 "endpoint[0].basic_auth.password_file: cannot read \"/tmp/pw-test-config-"},
	{EP1("\"bearer_token_file\": \"@DIR@\""), "\": not a regular file"},
	{EP1("\"bearer_token_file\": \"@DIR@/fifo\""), "/fifo\": not a regular file"},
	{EP1("\"authorization\": {\"credentials_file\": \"/nonexistent/c\"}"),
	 "endpoint[0].authorization.credentials_file: cannot read \"/nonexistent/c\""},
	{EP1("\"oauth2\": {\"client_id\": \"i\", \"client_secret_file\": \"/nonexistent/s\", "
	     "\"token_url\": \"http://t\"}"),
	 "endpoint[0].oauth2.client_secret_file: cannot read \"/nonexistent/s\""},
	{EP1("\"tls_config\": {\"ca_file\": \"/nonexistent/ca\"}"),
	 "endpoint[0].tls_config.ca_file: cannot read \"/nonexistent/ca\": No such file or "
	 "directory"},
	{EP1("\"tls_config\": {\"cert_file\": \"/nonexistent/crt\", \"key_file\": \"@F@\"}"),
	 "endpoint[0].tls_config.cert_file: cannot read \"/nonexistent/crt\""},
	{EP1("\"tls_config\": {\"cert_file\": \"@F@\", \"key_file\": \"/nonexistent/key\"}"),
	 "endpoint[0].tls_config.key_file: cannot read \"/nonexistent/key\""},
	{EP1("\"oauth2\": {\"client_id\": \"i\", \"client_secret\": \"s\", \"token_url\": "
	     "\"http://t\", \"tls_config\": {\"ca_file\": \"/nonexistent/oca\"}}"),
	 "endpoint[0].oauth2.tls_config.ca_file: cannot read \"/nonexistent/oca\""},
};

START_TEST(invalid_documents)
{
	expect_error(invalid_docs[_i].doc, invalid_docs[_i].want);
}
END_TEST

START_TEST(every_problem_reported)
{
	const char *doc = "{\n"
			  "  \"external_labels\": {\"bad-name\": \"x\"},\n"
			  "  \"endpoint\": [\n"
			  "    {\"url\": \"ftp://h\", \"remote_timout\": \"1s\"},\n"
			  "    {\"url\": \"http://h\", \"max_backoff_retries\": -5,\n"
			  "     \"basic_auth\": {\"password\": \"p\", \"password_file\": "
			  "\"/nonexistent\"}},\n"
			  "    {}\n"
			  "  ],\n"
			  "  \"shutdown_timeout\": 5\n"
			  "}\n";
	static const char *const want[] = {
		"external_labels[\"bad-name\"]: invalid label name",
		"endpoint[0].url: must be an absolute http or https URL",
		"endpoint[0].remote_timout: unknown attribute; did you mean \"remote_timeout\"?",
		"endpoint[1].max_backoff_retries: must not be negative, got -5",
		"endpoint[1].basic_auth.password_file: cannot read \"/nonexistent\"",
		"endpoint[1].basic_auth: password and password_file are mutually exclusive",
		"endpoint[2].url: required attribute is missing",
		"shutdown_timeout: expected a duration string such as \"10s\", got number",
	};
	char *errors = NULL;
	struct pw_config *cfg = load(doc, &errors);
	const char *prev = errors;

	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(count_lines(errors), sizeof(want) / sizeof(want[0]));
	/* In document order. */
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *at = strstr(errors, want[i]);

		ck_assert_msg(at != NULL, "missing \"%s\" in:\n%s", want[i], errors);
		ck_assert_msg(at >= prev, "\"%s\" out of order in:\n%s", want[i], errors);
		prev = at;
	}
	ck_assert_int_ne(errors[strlen(errors) - 1], '\n');
	free(errors);
}
END_TEST

START_TEST(error_count_is_capped)
{
	struct strbuf sb = STRBUF_INIT;
	char *errors = NULL;
	struct pw_config *cfg;

	strbuf_puts(&sb, "{\"endpoint\": [");
	for (int i = 0; i < 150; i++)
		strbuf_printf(&sb, "%s{\"url\": \"x\"}", i ? "," : "");
	strbuf_puts(&sb, "]}");
	ck_assert_int_eq(pw_config_parse(sb.data, &cfg, &errors), -1);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(count_lines(errors), 101);
	ck_assert_ptr_nonnull(strstr(errors, "... and 50 more problems"));
	free(errors);
	strbuf_free(&sb);
}
END_TEST

START_TEST(too_many_endpoints)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_puts(&sb, "{\"endpoint\": [");
	for (int i = 0; i < 257; i++)
		strbuf_printf(&sb, "%s{\"url\": \"http://h\"}", i ? "," : "");
	strbuf_puts(&sb, "]}");
	expect_error(sb.data, "endpoint: at most 256 endpoints are supported, got 257");
	strbuf_free(&sb);
}
END_TEST

START_TEST(nesting_and_size_limits)
{
	struct strbuf sb = STRBUF_INIT;
	char *big;

	strbuf_puts(&sb, "{\"tracing\": ");
	for (int i = 0; i < 100; i++)
		strbuf_puts(&sb, "{\"a\": ");
	expect_error(sb.data, "line 1, column 391: nested deeper than 64 levels");
	strbuf_free(&sb);

	/* Brackets inside strings do not count. */
	pw_config_free(load_ok("{\"endpoint\": [{\"url\": \"http://h\", \"name\": "
			       "\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
			       "[[[\\\"{{\"}]}"));

	big = malloc(((size_t)16 << 20) + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, ' ', ((size_t)16 << 20) + 1);
	big[0] = '{';
	big[((size_t)16 << 20)] = '}';
	big[((size_t)16 << 20) + 1] = '\0';
	expect_error(big, "document: larger than 16777216 bytes");
	free(big);
}
END_TEST

START_TEST(null_text)
{
	struct pw_config *cfg = (struct pw_config *)1;
	char *errors = NULL;

	ck_assert_int_eq(pw_config_parse(NULL, &cfg, &errors), -1);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(errors, "document: no document");
	free(errors);
	/* errors may be NULL. */
	ck_assert_int_eq(pw_config_parse("[", &cfg, NULL), -1);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Effective values                                                           */

START_TEST(defaults_applied)
{
	struct pw_config *cfg = load_ok("{\"endpoint\": {\"url\": \"http://pyroscope:4040\"}}");
	const struct pw_endpoint_config *e;

	ck_assert_int_eq(cfg->max_inflight_bytes, INT64_C(256) << 20);
	ck_assert_int_eq(cfg->shutdown_timeout_ns, INT64_C(5000000000));
	ck_assert_uint_eq(cfg->external_labels.n, 0);
	ck_assert_uint_eq(cfg->nendpoints, 1);
	ck_assert_uint_eq(cfg->nnotices, 0);
	e = &cfg->endpoints[0];
	ck_assert_str_eq(e->url, "http://pyroscope:4040");
	ck_assert_ptr_null(e->name);
	ck_assert_int_eq(e->remote_timeout_ns, INT64_C(10000000000));
	ck_assert_int_eq(e->min_backoff_ns, INT64_C(500000000));
	ck_assert_int_eq(e->max_backoff_ns, INT64_C(300000000000));
	ck_assert_int_eq(e->max_backoff_retries, 10);
	ck_assert_int_eq(e->debug_info_upload_timeout_ns, INT64_C(120000000000));
	ck_assert(e->retry_on_http_429);
	ck_assert(e->enable_http2);
	ck_assert(e->follow_redirects);
	ck_assert(!e->proxy.proxy_from_environment);
	ck_assert_int_eq(e->max_connections, 32);
	ck_assert(!e->tls_set && !e->basic_auth.set && !e->authorization.set && !e->oauth2.set);
	ck_assert_int_eq(e->tls.min_version, PW_TLS_UNSET);
	ck_assert_str_eq(e->display, "http://pyroscope:4040");
	pw_config_free(cfg);

	cfg = load_ok("{}");
	ck_assert_uint_eq(cfg->nendpoints, 0);
	ck_assert_ptr_nonnull(cfg->canonical);
	pw_config_free(cfg);
}
END_TEST

START_TEST(values_stored)
{
	struct pw_config *cfg =
		load_ok("{\"external_labels\": {\"env\": \"demo\", \"team\": \"a\"},"
			" \"max_inflight_bytes\": 4096, \"shutdown_timeout\": \"1m\","
			" \"endpoint\": [{\"url\": \"https://p\", \"name\": \"primary\","
			" \"remote_timeout\": \"3s\", \"max_backoff_retries\": 0, "
			"\"retry_on_http_429\": false,"
			" \"headers\": {\"X-Scope-OrgID\": \"t1\"}, \"http_headers\": {\"X-M\": "
			"[\"a\", \"b\"]},"
			" \"authorization\": {\"type\": \"  Token \", \"credentials\": \"c\"},"
			" \"tls_config\": {\"min_version\": \"TLS12\", \"server_name\": \"s\"},"
			" \"proxy_url\": \"http://proxy:3128\", \"no_proxy\": \"10.0.0.0/8\"},"
			" {\"url\": \"http://b\", \"oauth2\": {\"client_id\": \"i\", "
			"\"client_secret\": \"s\","
			" \"token_url\": \"http://t\", \"scopes\": [\"x\", \"y\"], "
			"\"endpoint_params\": {\"k\": \"v\"},"
			" \"tls_config\": {}}}]}");
	const struct pw_endpoint_config *e = &cfg->endpoints[0], *f = &cfg->endpoints[1];

	ck_assert_uint_eq(cfg->external_labels.n, 2);
	ck_assert_str_eq(cfg->external_labels.items[0].key, "env");
	ck_assert_str_eq(cfg->external_labels.items[0].value, "demo");
	ck_assert_str_eq(cfg->external_labels.items[1].key, "team");
	ck_assert_int_eq(cfg->max_inflight_bytes, 4096);
	ck_assert_int_eq(cfg->shutdown_timeout_ns, INT64_C(60000000000));
	ck_assert_str_eq(e->display, "primary");
	ck_assert_int_eq(e->remote_timeout_ns, INT64_C(3000000000));
	ck_assert_int_eq(e->max_backoff_retries, 0);
	ck_assert(!e->retry_on_http_429);
	ck_assert_uint_eq(e->headers.n, 1);
	ck_assert_str_eq(e->headers.items[0].key, "X-Scope-OrgID");
	ck_assert_uint_eq(e->http_headers.n, 1);
	ck_assert_uint_eq(e->http_headers.items[0].nvalues, 2);
	ck_assert_str_eq(e->http_headers.items[0].values[1], "b");
	ck_assert(e->authorization.set);
	ck_assert_str_eq(e->authorization.type, "Token");
	ck_assert_str_eq(e->authorization.credentials, "c");
	ck_assert(e->tls_set);
	ck_assert_int_eq(e->tls.min_version, PW_TLS12);
	ck_assert_str_eq(e->tls.server_name, "s");
	ck_assert_str_eq(e->proxy.proxy_url, "http://proxy:3128");
	ck_assert_str_eq(e->proxy.no_proxy, "10.0.0.0/8");
	ck_assert(f->oauth2.set);
	ck_assert(f->oauth2.tls_set);
	ck_assert_uint_eq(f->oauth2.nscopes, 2);
	ck_assert_str_eq(f->oauth2.scopes[1], "y");
	ck_assert_str_eq(f->oauth2.endpoint_params.items[0].value, "v");
	ck_assert_str_eq(f->display, "http://b");
	pw_config_free(cfg);
}
END_TEST

START_TEST(queue_defaults)
{
	struct pw_config *cfg = load_ok("{\"queue\": {\"directory\": \"/var/lib/pw\"}}");
	const struct pw_queue_config *q = &cfg->queue;

	ck_assert(q->set);
	ck_assert_str_eq(q->directory, "/var/lib/pw");
	ck_assert_int_eq(q->max_size, INT64_C(1) << 30);
	ck_assert_int_eq(q->max_age_ns, INT64_C(3600000000000));
	ck_assert(q->fsync_always);
	ck_assert_int_eq(q->fsync_interval_ns, INT64_C(1000000000));
	ck_assert(q->drop_oldest);
	pw_config_free(cfg);

	/* Without the block: not set, and no queue in the canonical form. */
	cfg = load_ok("{}");
	ck_assert(!cfg->queue.set);
	ck_assert_ptr_null(cfg->queue.directory);
	ck_assert_ptr_null(strstr(cfg->canonical, "queue"));
	pw_config_free(cfg);
}
END_TEST

START_TEST(queue_values_stored)
{
	struct pw_config *cfg = load_ok(Q("\"max_size\": 65536, \"max_age\": \"90m\", "
					  "\"fsync\": \"interval\", \"fsync_interval\": "
					  "\"250ms\", \"when_full\": \"refuse\""));
	const struct pw_queue_config *q = &cfg->queue;

	ck_assert(q->set);
	ck_assert_int_eq(q->max_size, 65536);
	ck_assert_int_eq(q->max_age_ns, INT64_C(5400000000000));
	ck_assert(!q->fsync_always);
	ck_assert_int_eq(q->fsync_interval_ns, INT64_C(250000000));
	ck_assert(!q->drop_oldest);
	pw_config_free(cfg);

	/* interval without fsync_interval takes its default */
	cfg = load_ok(Q("\"fsync\": \"interval\""));
	ck_assert(!cfg->queue.fsync_always);
	ck_assert_int_eq(cfg->queue.fsync_interval_ns, INT64_C(1000000000));
	pw_config_free(cfg);
}
END_TEST

/* The canonical form of a queue block parses back to the same snapshot. */
static void queue_round_trip(const char *doc, const char *want_queue)
{
	struct pw_config *a = load_ok(doc), *b;
	char *errors = NULL;

	ck_assert_msg(strstr(a->canonical, want_queue) != NULL, "canonical %s lacks %s",
		      a->canonical, want_queue);
	ck_assert_int_eq(pw_config_parse(a->canonical, &b, &errors), 0);
	ck_assert_ptr_null(errors);
	ck_assert_str_eq(a->canonical, b->canonical);
	ck_assert_str_eq(a->queue.directory, b->queue.directory);
	ck_assert_int_eq(a->queue.max_size, b->queue.max_size);
	ck_assert_int_eq(a->queue.max_age_ns, b->queue.max_age_ns);
	ck_assert_int_eq(a->queue.fsync_always, b->queue.fsync_always);
	ck_assert_int_eq(a->queue.fsync_interval_ns, b->queue.fsync_interval_ns);
	ck_assert_int_eq(a->queue.drop_oldest, b->queue.drop_oldest);
	pw_config_free(a);
	pw_config_free(b);
}

START_TEST(queue_canonical_round_trip)
{
	/* fsync = "always" leaves fsync_interval out: it would be refused. */
	queue_round_trip(
		"{\"queue\": {\"directory\": \"/q\"}}",
		"\"queue\":{\"directory\":\"/q\",\"fsync\":\"always\",\"max_age\":\"1h0m0s\","
		"\"max_size\":1073741824,\"when_full\":\"drop_oldest\"}");
	queue_round_trip(Q("\"max_size\": 65536, \"max_age\": \"168h\", \"fsync\": \"interval\", "
			   "\"fsync_interval\": \"10ms\", \"when_full\": \"refuse\""),
			 "\"queue\":{\"directory\":\"/var/lib/pw\",\"fsync\":\"interval\","
			 "\"fsync_interval\":\"10ms\",\"max_age\":\"168h0m0s\",\"max_size\":65536,"
			 "\"when_full\":\"refuse\"}");
}
END_TEST

START_TEST(queue_redacted_json)
{
	struct pw_config *cfg = load_ok(Q("\"fsync\": \"interval\""));
	char *json = pw_config_redacted_json(cfg);
	json_t *doc = json_loads(json, 0, NULL), *q = json_object_get(doc, "queue");

	ck_assert_ptr_nonnull(q);
	ck_assert_str_eq(json_string_value(json_object_get(q, "directory")), "/var/lib/pw");
	ck_assert_str_eq(json_string_value(json_object_get(q, "fsync")), "interval");
	ck_assert_str_eq(json_string_value(json_object_get(q, "fsync_interval")), "1s");
	ck_assert_str_eq(json_string_value(json_object_get(q, "when_full")), "drop_oldest");
	ck_assert_int_eq(json_integer_value(json_object_get(q, "max_size")), INT64_C(1) << 30);
	ck_assert_str_eq(json_string_value(json_object_get(q, "max_age")), "1h0m0s");
	json_decref(doc);
	free(json);
	pw_config_free(cfg);
}
END_TEST

START_TEST(authorization_type_default)
{
	struct pw_config *cfg =
		load_ok(EP1("\"authorization\": {\"type\": \"   \", \"credentials\": \"c\"}"));

	ck_assert_str_eq(cfg->endpoints[0].authorization.type, "Bearer");
	pw_config_free(cfg);
	cfg = load_ok(EP1("\"authorization\": {\"credentials\": \"c\"}"));
	ck_assert_str_eq(cfg->endpoints[0].authorization.type, "Bearer");
	pw_config_free(cfg);
}
END_TEST

START_TEST(display_strips_credentials)
{
	struct pw_config *cfg =
		load_ok("{\"endpoint\": [{\"url\": \"https://user:pa@ss@host:4040/p?q=1\"},"
			" {\"url\": \"http://token@host\"}, {\"url\": \"http://host/a@b\"}]}");

	ck_assert_str_eq(cfg->endpoints[0].display, "https://host:4040/p?q=1");
	ck_assert_str_eq(cfg->endpoints[1].display, "http://host");
	ck_assert_str_eq(cfg->endpoints[2].display, "http://host/a@b");
	pw_config_free(cfg);
}
END_TEST

START_TEST(ignored_attributes_give_notices)
{
	struct pw_config *cfg =
		load_ok("{\"tracing\": {}, \"endpoint\": [{\"url\": \"http://a\"},"
			" {\"url\": \"http://b\", \"debug_info_upload_timeout\": \"1m\"}]}");

	ck_assert_uint_eq(cfg->nnotices, 2);
	ck_assert_str_eq(
		cfg->notices[0],
		"tracing is accepted and ignored: trace header propagation is not implemented");
	ck_assert_str_eq(cfg->notices[1], "endpoint[1].debug_info_upload_timeout is accepted and "
					  "ignored: debug-info upload is not implemented");
	ck_assert_int_eq(cfg->endpoints[1].debug_info_upload_timeout_ns, INT64_C(60000000000));
	pw_config_free(cfg);
}
END_TEST

START_TEST(canonical_ignores_layout)
{
	struct pw_config *a = load_ok(
		"{\"external_labels\": {\"a\": \"1\", \"b\": \"2\"}, \"endpoint\": [{\"url\": "
		"\"http://h\","
		" \"bearer_token\": \"t\", \"headers\": {\"X-A\": \"1\", \"X-B\": \"2\"}}]}");
	struct pw_config *b = load_ok(
		"{\n  \"endpoint\": {\n    \"headers\": {\"X-B\": \"2\", \"X-A\": \"1\"},\n"
		"    \"remote_timeout\": \"10000ms\", \"bearer_token\": \"t\", \"url\": "
		"\"http://h\"\n  },\n"
		"  \"external_labels\": {\"b\": \"2\", \"a\": \"1\"}, \"tracing\": {}\n}\n");
	struct pw_config *c = load_ok(
		"{\"external_labels\": {\"a\": \"1\", \"b\": \"2\"}, \"endpoint\": [{\"url\": "
		"\"http://h\","
		" \"bearer_token\": \"u\", \"headers\": {\"X-A\": \"1\", \"X-B\": \"2\"}}]}");
	struct pw_config *d = load_ok("{\"external_labels\": {\"a\": \"1\", \"b\": \"2\"}, "
				      "\"endpoint\": [{\"url\": \"http://h\","
				      " \"bearer_token\": \"t\", \"max_connections\": 31, "
				      "\"headers\": {\"X-A\": \"1\", \"X-B\": \"2\"}}]}");

	ck_assert_str_eq(a->canonical, b->canonical);
	ck_assert_str_eq(a->endpoints[0].canonical, b->endpoints[0].canonical);
	/* A secret change is a change. */
	ck_assert_str_ne(a->canonical, c->canonical);
	ck_assert_str_ne(a->endpoints[0].canonical, c->endpoints[0].canonical);
	ck_assert_str_ne(a->canonical, d->canonical);
	ck_assert_str_ne(a->endpoints[0].canonical, d->endpoints[0].canonical);
	/* Sorted keys, defaults present. */
	ck_assert_ptr_nonnull(
		strstr(a->canonical, "\"external_labels\":{\"a\":\"1\",\"b\":\"2\"}"));
	ck_assert_ptr_nonnull(strstr(a->endpoints[0].canonical, "\"remote_timeout\":\"10s\""));
	pw_config_free(a);
	pw_config_free(b);
	pw_config_free(c);
	pw_config_free(d);
}
END_TEST

START_TEST(redacted_json_hides_secrets)
{
	static const char *const secrets[] = {
		"SECRET-bearer",   "SECRET-pass",      "SECRET-header",
		"SECRET-proxyhdr", "SECRET-urlpass",   "SECRET-client",
		"SECRET-key",	   "SECRET-oproxyhdr", "SECRET-cred",
	};
	struct pw_config *cfg = load_ok(
		"{\"endpoint\": ["
		"{\"url\": \"http://user:SECRET-urlpass@h\", \"bearer_token\": \"SECRET-bearer\","
		" \"http_headers\": {\"X-A\": [\"SECRET-header\"]}, \"proxy_url\": \"http://p\","
		" \"proxy_connect_header\": {\"X-P\": [\"SECRET-proxyhdr\"]},"
		" \"tls_config\": {\"cert_pem\": \"-----BEGIN C\", \"key_pem\": \"-----BEGIN "
		"SECRET-key\"}},"
		"{\"url\": \"http://h\", \"basic_auth\": {\"username\": \"u\", \"password\": "
		"\"SECRET-pass\"}},"
		"{\"url\": \"http://h\", \"authorization\": {\"credentials\": \"SECRET-cred\"}},"
		"{\"url\": \"http://h\", \"oauth2\": {\"client_id\": \"i\", \"client_secret\": "
		"\"SECRET-client\","
		" \"token_url\": \"http://t\", \"proxy_url\": \"http://p\","
		" \"proxy_connect_header\": {\"X-P\": [\"SECRET-oproxyhdr\"]}}}]}");
	char *json = pw_config_redacted_json(cfg);
	json_t *parsed;

	ck_assert_ptr_nonnull(json);
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		ck_assert_msg(strstr(json, secrets[i]) == NULL, "%s leaked:\n%s", secrets[i], json);
		ck_assert_ptr_nonnull(strstr(cfg->canonical, secrets[i]));
	}
	ck_assert_ptr_nonnull(strstr(json, "\"<secret>\""));
	ck_assert_ptr_nonnull(strstr(json, "http://user:<secret>@h"));
	ck_assert_ptr_nonnull(strstr(json, "\"username\": \"u\""));
	/* It is valid JSON. */
	parsed = json_loads(json, 0, NULL);
	ck_assert_ptr_nonnull(parsed);
	ck_assert_uint_eq(json_array_size(json_object_get(parsed, "endpoint")), 4);
	json_decref(parsed);
	ck_assert_ptr_null(pw_config_redacted_json(NULL));
	free(json);
	pw_config_free(cfg);
}
END_TEST

START_TEST(errors_never_show_secrets)
{
	char *errors = NULL;
	struct pw_config *cfg = load(
		"{\"endpoint\": [{\"url\": \"htp://u:SECRET1@h\", \"bearer_token\": \"SECRET2\","
		" \"http_headers\": {\"X-A\": [\"SECRET3\\n\"]}, \"proxy_url\": "
		"\"ftp://u:SECRET4@p\","
		" \"tls_config\": {\"key_pem\": \"SECRET5\", \"cert_pem\": \"-----BEGIN C\"},"
		" \"basic_auth\": {\"password\": \"SECRET6\"}}]}",
		&errors);

	ck_assert_ptr_null(cfg);
	ck_assert_ptr_nonnull(errors);
	ck_assert_ptr_null(strstr(errors, "SECRET"));
	ck_assert_uint_ge(count_lines(errors), 5);
	free(errors);
}
END_TEST

START_TEST(secret_free_accepts_null)
{
	pw_secret_free(NULL);
	pw_secret_free(pw_strdup("wipe me"));
	pw_config_free(NULL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* File watches                                                               */

START_TEST(filewatch_missing_file)
{
	char *err = NULL;
	struct pw_filewatch *fw = pw_filewatch_open("/nonexistent/file", 1024, &err);

	ck_assert_ptr_null(fw);
	ck_assert_str_eq(err, "cannot read \"/nonexistent/file\": No such file or directory");
	free(err);
}
END_TEST

START_TEST(filewatch_not_regular)
{
	char *err = NULL;

	ck_assert_ptr_null(pw_filewatch_open(fifo_path, 1024, &err));
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	free(err);
	ck_assert_ptr_null(pw_filewatch_open(tmpdir, 1024, &err));
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	free(err);
}
END_TEST

START_TEST(filewatch_too_large)
{
	char *err = NULL;
	struct pw_filewatch *fw = pw_filewatch_open(tmpfile_path, 4, &err);

	ck_assert_ptr_null(fw);
	ck_assert_ptr_nonnull(strstr(err, "larger than 4 bytes"));
	free(err);
}
END_TEST

START_TEST(filewatch_rotation)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 16], *err = NULL;
	struct pw_filewatch *fw;
	const char *s;
	size_t len = 0;
	bool changed = true;
	struct stat st;
	struct timespec times[2];

	snprintf(path, sizeof(path), "%s/watched", tmpdir);
	snprintf(tmp, sizeof(tmp), "%s/watched.new", tmpdir);
	write_file(path, "first\n");
	fw = pw_filewatch_open(path, 1 << 20, &err);
	ck_assert_ptr_nonnull(fw);
	ck_assert_str_eq(pw_filewatch_path(fw), path);
	s = pw_filewatch_get(fw, &len, &changed, &err);
	ck_assert_str_eq(s, "first\n");
	ck_assert_uint_eq(len, 6);
	ck_assert(!changed);

	/* Rewritten in place with a different size. */
	write_file(path, "second!\n");
	s = pw_filewatch_get(fw, &len, &changed, &err);
	ck_assert_str_eq(s, "second!\n");
	ck_assert_uint_eq(len, 8);
	ck_assert(changed);

	/* Same size, same mtime, same inode: not re-read (the stat is all it
	 * looks at), so the old content is still returned. */
	ck_assert_int_eq(stat(path, &st), 0);
	write_file(path, "SECOND?\n");
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
	s = pw_filewatch_get(fw, &len, &changed, &err);
	ck_assert_str_eq(s, "second!\n");
	ck_assert(!changed);

	/* Replaced by rename (new inode), as secret managers do. */
	write_file(tmp, "third\n");
	ck_assert_int_eq(rename(tmp, path), 0);
	s = pw_filewatch_get(fw, &len, &changed, &err);
	ck_assert_str_eq(s, "third\n");
	ck_assert(changed);

	/* Re-read but identical content: changed stays false. */
	write_file(tmp, "third\n");
	ck_assert_int_eq(rename(tmp, path), 0);
	s = pw_filewatch_get(fw, &len, &changed, &err);
	ck_assert_str_eq(s, "third\n");
	ck_assert(!changed);

	/* Gone: an error, then the old content once it is back unchanged. */
	ck_assert_int_eq(rename(path, tmp), 0);
	s = pw_filewatch_get(fw, &len, &changed, &err);
	ck_assert_ptr_null(s);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));
	free(err);
	err = NULL;
	ck_assert_int_eq(rename(tmp, path), 0);
	s = pw_filewatch_get(fw, NULL, NULL, &err);
	ck_assert_str_eq(s, "third\n");
	ck_assert_ptr_null(err);

	/* Empty file. */
	write_file(tmp, "");
	ck_assert_int_eq(rename(tmp, path), 0);
	s = pw_filewatch_get(fw, &len, &changed, &err);
	ck_assert_str_eq(s, "");
	ck_assert_uint_eq(len, 0);
	ck_assert(changed);

	pw_filewatch_free(fw);
	pw_filewatch_free(NULL);
}
END_TEST

START_TEST(filewatch_grows_past_limit)
{
	char path[PATH_MAX + 16], *err = NULL;
	struct pw_filewatch *fw;
	const char *s;

	snprintf(path, sizeof(path), "%s/grow", tmpdir);
	write_file(path, "1234");
	fw = pw_filewatch_open(path, 8, &err);
	ck_assert_ptr_nonnull(fw);
	write_file(path, "123456789");
	s = pw_filewatch_get(fw, NULL, NULL, &err);
	ck_assert_ptr_null(s);
	ck_assert_ptr_nonnull(strstr(err, "larger than 8 bytes"));
	free(err);
	pw_filewatch_free(fw);
}
END_TEST

START_TEST(trim_space)
{
	size_t len = 11;
	const char *s = pw_trim_space(" \t token\r\n ", &len);

	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(strncmp(s, "token", 5), 0);
	len = 3;
	s = pw_trim_space(" \n ", &len);
	ck_assert_uint_eq(len, 0);
	len = 0;
	pw_trim_space("", &len);
	ck_assert_uint_eq(len, 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Docs and examples stay in step with the option table                      */

static char *read_source(const char *rel)
{
	const char *root = getenv("PW_SOURCE_ROOT");
	char path[PATH_MAX];
	struct strbuf sb = STRBUF_INIT;
	char buf[4096];
	size_t n;
	FILE *f;

	if (!root)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_append(&sb, buf, n);
	fclose(f);
	return strbuf_detach(&sb, NULL);
}

START_TEST(docs_tables_match_options)
{
	static const char *const blocks[] = {"",       "endpoint",   "basic_auth", "authorization",
					     "oauth2", "tls_config", "batch",	   "queue"};
	char *doc;

	if (!getenv("PW_SOURCE_ROOT"))
		return; /* run outside meson: no source tree to compare with */
	doc = read_source("docs/configuration.md");
	ck_assert_msg(doc != NULL, "cannot read docs/configuration.md");
	for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
		char *table = pw_config_options_markdown(blocks[i]);

		ck_assert_ptr_nonnull(table);
		ck_assert_msg(
			strstr(doc, table) != NULL,
			"docs/configuration.md is missing the current table of block \"%s\":\n%s",
			blocks[i], table);
		free(table);
	}
	ck_assert_ptr_null(pw_config_options_markdown("nope"));
	free(doc);
}
END_TEST

START_TEST(examples_load)
{
	static const char *const examples[] = {
		"examples/one-endpoint.json",  "examples/tenants.json",
		"examples/basic-auth.json",    "examples/oauth2.json",
		"examples/mtls.json",	       "examples/proxy.json",
		"examples/demo.json",	       "examples/tenant-routing.json",
		"examples/durable-queue.json",
	};

	if (!getenv("PW_SOURCE_ROOT"))
		return;
	for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
		char *text = read_source(examples[i]), *errors = NULL;
		struct pw_config *cfg = NULL;

		ck_assert_msg(text != NULL, "cannot read %s", examples[i]);
		if (pw_config_parse(text, &cfg, &errors) < 0)
			ck_abort_msg("%s: %s", examples[i], errors);
		if (strstr(examples[i], "demo")) {
			ck_assert_uint_eq(cfg->nendpoints, 2);
			ck_assert_str_eq(cfg->endpoints[0].display, "primary");
			ck_assert_str_eq(cfg->endpoints[1].display, "secondary");
			ck_assert_str_eq(cfg->endpoints[0].url, "http://127.0.0.1:4100");
			ck_assert_str_eq(cfg->external_labels.items[0].key, "env");
			ck_assert_str_eq(cfg->external_labels.items[0].value, "demo");
		}
		pw_config_free(cfg);
		free(text);
	}
}
END_TEST

#define LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("duration");

	tcase_add_loop_test(tc, duration_parse_good, 0, LEN(good_durations));
	tcase_add_loop_test(tc, duration_parse_bad, 0, LEN(bad_durations));
	tcase_add_loop_test(tc, duration_format, 0, LEN(formats));
	tcase_add_test(tc, duration_format_small_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("documents");
	tcase_add_checked_fixture(tc, setup_files, teardown_files);
	tcase_add_loop_test(tc, valid_documents, 0, LEN(valid_docs));
	tcase_add_loop_test(tc, invalid_documents, 0, LEN(invalid_docs));
	tcase_add_test(tc, every_problem_reported);
	tcase_add_test(tc, error_count_is_capped);
	tcase_add_test(tc, too_many_endpoints);
	tcase_add_test(tc, nesting_and_size_limits);
	tcase_add_test(tc, null_text);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_checked_fixture(tc, setup_files, teardown_files);
	tcase_add_test(tc, defaults_applied);
	tcase_add_test(tc, values_stored);
	tcase_add_test(tc, queue_defaults);
	tcase_add_test(tc, queue_values_stored);
	tcase_add_test(tc, queue_canonical_round_trip);
	tcase_add_test(tc, queue_redacted_json);
	tcase_add_test(tc, authorization_type_default);
	tcase_add_test(tc, display_strips_credentials);
	tcase_add_test(tc, ignored_attributes_give_notices);
	tcase_add_test(tc, canonical_ignores_layout);
	tcase_add_test(tc, redacted_json_hides_secrets);
	tcase_add_test(tc, errors_never_show_secrets);
	tcase_add_test(tc, secret_free_accepts_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("filewatch");
	tcase_add_checked_fixture(tc, setup_files, teardown_files);
	tcase_add_test(tc, filewatch_missing_file);
	tcase_add_test(tc, filewatch_not_regular);
	tcase_add_test(tc, filewatch_too_large);
	tcase_add_test(tc, filewatch_rotation);
	tcase_add_test(tc, filewatch_grows_past_limit);
	tcase_add_test(tc, trim_space);
	suite_add_tcase(s, tc);

	tc = tcase_create("reference");
	tcase_add_test(tc, docs_tables_match_options);
	tcase_add_test(tc, examples_load);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
