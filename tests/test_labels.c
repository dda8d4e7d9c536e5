/*
 * test_labels.c - the push and ingest label pipelines and the ingest URL.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"

#define L(n, v)                                                                                    \
	{                                                                                          \
		(n), (v)                                                                           \
	}
#define NL(a) (sizeof(a) / sizeof((a)[0]))

static const struct pw_kvmap no_external = {NULL, 0};

/* Asserts that ls is exactly the "k=v" strings in want (NULL-terminated). */
static void assert_set(const struct pw_labelset *ls, const char *const *want)
{
	size_t n = 0;

	while (want[n])
		n++;
	ck_assert_uint_eq(ls->n, n);
	for (size_t i = 0; i < n; i++) {
		char buf[256];

		snprintf(buf, sizeof(buf), "%s=%s", ls->items[i].key, ls->items[i].value);
		ck_assert_str_eq(buf, want[i]);
	}
}

/* Runs the push pipeline expecting the error text `want`. */
static void push_fails(const struct pw_label *in, size_t n, const char *want)
{
	struct pw_labelset ls = {(struct pw_kv *)1, 99};
	char *err = NULL, *verr;

	ck_assert_int_eq(pw_labels_push(in, n, &no_external, &ls, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_str_eq(err, want);
	ck_assert_ptr_null(ls.items);
	ck_assert_uint_eq(ls.n, 0);
	free(err);

	/* The ingest path shares the rules... */
	ck_assert_int_eq(pw_labels_ingest(in, n, &no_external, &ls, &err), -1);
	ck_assert_str_eq(err, want);
	free(err);
	/* ...and so does the standalone check. */
	verr = pw_labels_validate(in, n);
	ck_assert_ptr_nonnull(verr);
	ck_assert_str_eq(verr, want);
	free(verr);
}

START_TEST(test_service_name_required)
{
	push_fails(NULL, 0, "invalid labels in profile: service name is required");
}
END_TEST

START_TEST(test_duplicates)
{
	/* Not adjacent in the input: caught because the pipeline sorts first. */
	const struct pw_label in[] = {L("a", "1"), L("service_name", "x"), L("a", "2")};
	/* Same name, one with a bad value: the error does not depend on order. */
	const struct pw_label in2[] = {L("b", "\xff"), L("b", "x")};
	const struct pw_label in3[] = {L("b", "x"), L("b", "\xff")};

	push_fails(in, NL(in), "invalid labels in profile: duplicate label name: a");
	push_fails(in2, NL(in2), "invalid labels in profile: duplicate label name: b");
	push_fails(in3, NL(in3), "invalid labels in profile: duplicate label name: b");
}
END_TEST

START_TEST(test_invalid_values)
{
	const struct pw_label bad1[] = {L("service_name", "app"), L("v", "\xff")};
	const struct pw_label bad2[] = {L("v", "ok\xc3\xa9\xc3")};
	const struct pw_label bad3[] = {L("v", "\xed\xa0\x80z")}; /* a surrogate */
	const struct pw_label bad4[] = {L("v", "\xc0\xaf")}; /* overlong '/' */
	const struct pw_label good[] = {L("v", "caf\xc3\xa9 \xf0\x9f\x94\xa5")};
	struct pw_labelset ls;
	char *err;

	push_fails(bad1, NL(bad1), "invalid labels in profile: invalid label value for v: \\xFF");
	push_fails(bad2, NL(bad2),
		   "invalid labels in profile: invalid label value for v: ok\xc3\xa9\\xC3");
	push_fails(bad3, NL(bad3),
		   "invalid labels in profile: invalid label value for v: \\xED\\xA0\\x80z");
	push_fails(bad4, NL(bad4),
		   "invalid labels in profile: invalid label value for v: \\xC0\\xAF");
	ck_assert_int_eq(pw_labels_push(good, 1, &no_external, &ls, &err), 0);
	ck_assert_str_eq(ls.items[0].value, good[0].value);
	pw_labelset_free(&ls);
}
END_TEST

START_TEST(test_invalid_names)
{
	const struct pw_label dash[] = {L("my-label", "x")};
	const struct pw_label empty[] = {L("", "x")};
	const struct pw_label space[] = {L("a b", "x")};
	const struct pw_label utf[] = {L("\xc3\xa9t\xfe", "x")};
	const struct pw_label reserved_bad[] = {L("service_name", "a"), L("__bad-name", "x")};
	const struct pw_label reserved_val[] = {L("service_name", "a"), L("__dropped", "\x80")};
	const struct pw_label ok[] = {L("__name__", "n"), L("1abc", "x"), L("a.b_C", "y"),
				      L("__name", "z")};
	struct pw_labelset ls;
	char *err, *verr;

	push_fails(dash, 1, "invalid labels in profile: invalid label name: my-label");
	push_fails(empty, 1, "invalid labels in profile: invalid label name: ");
	push_fails(space, 1, "invalid labels in profile: invalid label name: a b");
	push_fails(utf, 1, "invalid labels in profile: invalid label name: \xc3\xa9t\\xFE");
	/* D12: labels that are dropped later are still validated. */
	push_fails(reserved_bad, 2, "invalid labels in profile: invalid label name: __bad-name");
	push_fails(reserved_val, 2,
		   "invalid labels in profile: invalid label value for __dropped: \\x80");

	verr = pw_labels_validate(ok, NL(ok));
	ck_assert_ptr_null(verr);
	ck_assert_int_eq(pw_labels_push(ok, NL(ok), &no_external, &ls, &err), 0);
	ck_assert_ptr_null(err);
	assert_set(&ls, (const char *const[]){"1abc=x", "__name__=n", "a.b_C=y", NULL});
	pw_labelset_free(&ls);
}
END_TEST

START_TEST(test_push_drops_reserved)
{
	const struct pw_label in[] = {
		L("service_name", "app"),     L("__session_id__", "s"), L("__delta__", "false"),
		L("__name__", "process_cpu"), L("_single", "z"),	L("__foo", "x"),
	};
	struct pw_labelset ls;
	char *err;

	ck_assert_int_eq(pw_labels_push(in, NL(in), &no_external, &ls, &err), 0);
	assert_set(&ls, (const char *const[]){"__delta__=false", "__name__=process_cpu",
					      "_single=z", "service_name=app", NULL});
	pw_labelset_free(&ls);
	ck_assert_ptr_null(ls.items);
}
END_TEST

START_TEST(test_push_external)
{
	const struct pw_label in[] = {L("service_name", "app"), L("env", "staging"), L("team", "a"),
				      L("job", "j")};
	struct pw_kv ext_items[] = {{"env", "prod"},
				    {"cluster", "c1"},
				    {"team", ""},
				    {"__ext", "kept"},
				    {"absent", ""}};
	struct pw_kvmap ext = {ext_items, NL(ext_items)};
	struct pw_labelset ls;
	char *err;

	ck_assert_int_eq(pw_labels_push(in, NL(in), &ext, &ls, &err), 0);
	/* Override, add, delete by empty value; external labels are not filtered. */
	assert_set(&ls, (const char *const[]){"__ext=kept", "cluster=c1", "env=prod", "job=j",
					      "service_name=app", NULL});
	pw_labelset_free(&ls);

	/* A NULL external map is the same as an empty one. */
	ck_assert_int_eq(pw_labels_push(in, NL(in), NULL, &ls, &err), 0);
	ck_assert_uint_eq(ls.n, 4);
	pw_labelset_free(&ls);
}
END_TEST

/* The value a tenant label has after external labels: an external label
 * wins, an empty value is no value. */
START_TEST(test_lookup_after_external)
{
	struct pw_label in[] = {{"service_name", "s"}, {"__tenant__", "t1"}, {"org", ""}};
	struct pw_kv ext_items[] = {{"team", "ext"}, {"__tenant__", ""}, {"zone", "z"}};
	struct pw_kvmap ext = {ext_items, 3};
	struct pw_labelset ls = {0};
	char *err = NULL;

	ck_assert_str_eq(pw_labels_lookup(in, 3, NULL, "__tenant__"), "t1");
	ck_assert_ptr_null(pw_labels_lookup(in, 3, NULL, "org"));
	ck_assert_ptr_null(pw_labels_lookup(in, 3, NULL, "missing"));
	ck_assert_ptr_null(pw_labels_lookup(in, 3, &ext, "__tenant__"));
	ck_assert_str_eq(pw_labels_lookup(in, 3, &ext, "team"), "ext");
	ck_assert_str_eq(pw_labels_lookup(in, 3, &ext, "zone"), "z");
	ck_assert(pw_label_forwarded("team"));
	ck_assert(pw_label_forwarded("__name__"));
	ck_assert(!pw_label_forwarded("__tenant__"));
	ck_assert_int_eq(pw_labels_push(in, 3, &ext, &ls, &err), 0);
	pw_labelset_remove(&ls, "team");
	pw_labelset_remove(&ls, "absent");
	ck_assert_uint_eq(ls.n, 2);
	ck_assert_str_eq(ls.items[0].key, "service_name");
	ck_assert_str_eq(ls.items[1].key, "zone");
	pw_labelset_free(&ls);
}
END_TEST

START_TEST(test_push_sort_and_empty_values)
{
	const struct pw_label in[] = {L("b", "1"), L("B", "2"),	   L("a", "3"), L("_x", "4"),
				      L("Z", "5"), L("empty", ""), L("a0", "6")};
	struct pw_labelset ls;
	char *err;

	ck_assert_int_eq(pw_labels_push(in, NL(in), &no_external, &ls, &err), 0);
	/* Byte order: upper case < '_' < lower case. */
	assert_set(&ls, (const char *const[]){"B=2", "Z=5", "_x=4", "a=3", "a0=6", "b=1", NULL});
	pw_labelset_free(&ls);
}
END_TEST

START_TEST(test_ingest_service_name)
{
	const struct pw_label in[] = {L("__name__", "myapp.cpu"), L("service_name", "svc"),
				      L("env", "x")};
	const struct pw_label no_svc[] = {L("__name__", "myapp.cpu"), L("service_name", ""),
					  L("__private", "kept")};
	const struct pw_label only_svc[] = {L("service_name", "svc")};
	struct pw_labelset ls;
	char *err, *name;

	ck_assert_int_eq(pw_labels_ingest(in, NL(in), &no_external, &ls, &err), 0);
	assert_set(&ls, (const char *const[]){"__name__=svc", "env=x", "service_name=svc", NULL});
	name = pw_labels_ingest_name(&ls);
	ck_assert_str_eq(name, "svc{env=x,service_name=svc}");
	free(name);
	pw_labelset_free(&ls);

	/* An empty service_name changes nothing; nothing reserved is dropped. */
	ck_assert_int_eq(pw_labels_ingest(no_svc, NL(no_svc), &no_external, &ls, &err), 0);
	assert_set(&ls, (const char *const[]){"__name__=myapp.cpu", "__private=kept", NULL});
	name = pw_labels_ingest_name(&ls);
	ck_assert_str_eq(name, "myapp.cpu{__private=kept}");
	free(name);
	pw_labelset_free(&ls);

	/* service_name brings a __name__ in when there was none. */
	ck_assert_int_eq(pw_labels_ingest(only_svc, 1, &no_external, &ls, &err), 0);
	assert_set(&ls, (const char *const[]){"__name__=svc", "service_name=svc", NULL});
	pw_labelset_free(&ls);
}
END_TEST

START_TEST(test_ingest_external_and_name)
{
	/* The example from the reference implementation's tests. */
	const struct pw_label in[] = {L("__name__", "my.awesome.app.cpu"), L("env", "staging"),
				      L("region", "us-west-1")};
	struct pw_kv ext_items[] = {{"env", "prod"}, {"cluster", "cluster-1"}};
	struct pw_kvmap ext = {ext_items, 2};
	struct pw_labelset ls;
	char *err, *name;

	ck_assert_int_eq(pw_labels_ingest(in, NL(in), &ext, &ls, &err), 0);
	name = pw_labels_ingest_name(&ls);
	ck_assert_str_eq(name, "my.awesome.app.cpu{cluster=cluster-1,env=prod,region=us-west-1}");
	free(name);
	pw_labelset_free(&ls);

	/* An external __name__ with an empty value removes it. */
	ext_items[0].key = "__name__";
	ext_items[0].value = "";
	ck_assert_int_eq(pw_labels_ingest(in, NL(in), &ext, &ls, &err), 0);
	name = pw_labels_ingest_name(&ls);
	ck_assert_str_eq(name, "{cluster=cluster-1,env=staging,region=us-west-1}");
	free(name);
	pw_labelset_free(&ls);
}
END_TEST

START_TEST(test_ingest_name_forms)
{
	struct pw_kv only[] = {{"__name__", "app"}};
	struct pw_kv none[] = {{"a", "b"}, {"c", "d e"}};
	struct pw_labelset ls_only = {only, 1}, ls_none = {none, 2}, ls_empty = {NULL, 0};
	char *s;

	s = pw_labels_ingest_name(&ls_only);
	ck_assert_str_eq(s, "app{}");
	free(s);
	/* No escaping or quoting of any kind. */
	s = pw_labels_ingest_name(&ls_none);
	ck_assert_str_eq(s, "{a=b,c=d e}");
	free(s);
	s = pw_labels_ingest_name(&ls_empty);
	ck_assert_str_eq(s, "{}");
	free(s);
}
END_TEST

/* pw_ingest_url with __name__=app, env=x. */
static char *url_for(const char *endpoint, const char *path_query, char **err)
{
	struct pw_kv kv[] = {{"__name__", "app"}, {"env", "x"}};
	struct pw_labelset ls = {kv, 2};

	return pw_ingest_url(endpoint, path_query, &ls, err);
}

struct url_case {
	const char *endpoint, *path_query, *want;
};

static const struct url_case url_cases[] = {
	/* The basic rewrite: name replaced, everything else kept, keys sorted. */
	{"http://h:4040", "/ingest?name=myapp.cpu%7Benv%3Dy%7D&from=1&format=pprof",
	 "http://h:4040/ingest?format=pprof&from=1&name=app%7Benv%3Dx%7D"},
	{"http://h:4040/", "/ingest?name=x", "http://h:4040/ingest?name=app%7Benv%3Dx%7D"},
	/* No query at all, no name parameter. */
	{"http://h", "/ingest", "http://h/ingest?name=app%7Benv%3Dx%7D"},
	/* A path prefix, with and without trailing slashes. */
	{"https://h/prefix", "/ingest?a=1", "https://h/prefix/ingest?a=1&name=app%7Benv%3Dx%7D"},
	{"https://h/prefix/", "/ingest?a=1", "https://h/prefix/ingest?a=1&name=app%7Benv%3Dx%7D"},
	{"https://h//a//b/", "//./ingest/", "https://h/a/b/ingest?name=app%7Benv%3Dx%7D"},
	{"https://h/a/b", "/../ingest", "https://h/a/ingest?name=app%7Benv%3Dx%7D"},
	{"https://h/a", "/../../../ingest", "https://h/ingest?name=app%7Benv%3Dx%7D"},
	/* The endpoint's own query is kept; the incoming one wins on a clash (D6). */
	{"http://h/p?key=abc&format=jfr&name=ignored", "/ingest?format=pprof&spyName=gospy",
	 "http://h/p/ingest?format=pprof&key=abc&name=app%7Benv%3Dx%7D&spyName=gospy"},
	{"http://h?a=0&a=00&b=1", "/ingest?a=2&a=1",
	 "http://h/ingest?a=2&a=1&b=1&name=app%7Benv%3Dx%7D"},
	/* Decoding and re-encoding (space as '+', unreserved kept, %XX upper case). */
	{"http://h", "/ingest?until=now%2b1h&spyName=a+b&x=%C3%A9&y=*'()!&z=-_.~",
	 "http://h/ingest?name=app%7Benv%3Dx%7D&spyName=a+b&until=now%2B1h&x=%C3%A9"
	 "&y=%2A%27%28%29%21&z=-_.~"},
	{"http://h", "/ingest?k%20ey=v%00w&sp%61ce=%20",
	 "http://h/ingest?k+ey=v%00w&name=app%7Benv%3Dx%7D&space=+"},
	/* Empty pieces and bare keys. */
	{"http://h", "/ingest?&&flag&a=&", "http://h/ingest?a=&flag=&name=app%7Benv%3Dx%7D"},
	/* Fragments stay out; credentials and port stay in. */
	{"https://u:p@h:8443/x#frag", "/ingest?a=1#f",
	 "https://u:p@h:8443/x/ingest?a=1&name=app%7Benv%3Dx%7D"},
	/* Bytes that may not appear raw in a path are escaped; escapes kept. */
	{"http://h/my%20dir", "/in gest", "http://h/my%20dir/in%20gest?name=app%7Benv%3Dx%7D"},
	{"http://h?q=1", "/ingest", "http://h/ingest?name=app%7Benv%3Dx%7D&q=1"},
};

START_TEST(test_ingest_url)
{
	const struct url_case *c = &url_cases[_i];
	char *err = (char *)"unset";
	char *url = url_for(c->endpoint, c->path_query, &err);

	ck_assert_msg(url != NULL, "%s + %s: %s", c->endpoint, c->path_query, err);
	ck_assert_ptr_null(err);
	ck_assert_str_eq(url, c->want);
	free(url);
}
END_TEST

START_TEST(test_ingest_url_name_encoding)
{
	struct pw_kv kv[] = {{"__name__", "my app/x"}, {"k", "v w&z"}};
	struct pw_labelset ls = {kv, 2};
	char *err, *url = pw_ingest_url("http://h", "/ingest", &ls, &err);

	ck_assert_str_eq(url, "http://h/ingest?name=my+app%2Fx%7Bk%3Dv+w%26z%7D");
	free(url);
}
END_TEST

START_TEST(test_ingest_url_errors)
{
	static const char *const bad[][2] = {
		{"http://h", "/ingest?name=%zz"}, {"http://h", "/ingest?a=1&b=%4"},
		{"http://h", "/ingest?a%=1"},	  {"http://h", "/ingest?a=%"},
		{"http://h?x=%g0", "/ingest"},	  {"http://h/%", "/ingest"},
		{"http://h", "/in%2gest"},
	};

	for (size_t i = 0; i < NL(bad); i++) {
		char *err = NULL, *url = url_for(bad[i][0], bad[i][1], &err);

		ck_assert_msg(url == NULL, "%s + %s accepted: %s", bad[i][0], bad[i][1], url);
		ck_assert_ptr_nonnull(err);
		ck_assert_msg(strstr(err, "invalid URL escape") != NULL, "%s", err);
		free(err);
	}
	{
		char *err = NULL, *url = url_for("no-scheme", "/ingest", &err);

		ck_assert_ptr_null(url);
		ck_assert_ptr_nonnull(err);
		free(err);
	}
}
END_TEST

static Suite *labels_suite(void)
{
	Suite *s = suite_create("labels");
	TCase *tc = tcase_create("validate");

	tcase_add_test(tc, test_service_name_required);
	tcase_add_test(tc, test_duplicates);
	tcase_add_test(tc, test_invalid_values);
	tcase_add_test(tc, test_invalid_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("push");
	tcase_add_test(tc, test_push_drops_reserved);
	tcase_add_test(tc, test_push_external);
	tcase_add_test(tc, test_lookup_after_external);
	tcase_add_test(tc, test_push_sort_and_empty_values);
	suite_add_tcase(s, tc);

	tc = tcase_create("ingest");
	tcase_add_test(tc, test_ingest_service_name);
	tcase_add_test(tc, test_ingest_external_and_name);
	tcase_add_test(tc, test_ingest_name_forms);
	tcase_add_loop_test(tc, test_ingest_url, 0, (int)NL(url_cases));
	tcase_add_test(tc, test_ingest_url_name_encoding);
	tcase_add_test(tc, test_ingest_url_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(labels_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
