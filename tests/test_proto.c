/*
 * test_proto.c - the PushRequest encoder and the strict decoder.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto.h"
#include "proto_decode.h"
#include "strbuf.h"

static struct pw_kv kv_abc[] = {
	{"__name__", "process_cpu"},
	{"env", "prod"},
	{"service_name", "app"},
};

static const struct pw_labelset ls_abc = {kv_abc, 3};

static const uint8_t prof1[] = {0x1f, 0x8b, 0x00, 0x01, 0xff};
static const uint8_t prof2[] = {'x'};

/* Encodes, asserting success. */
static uint8_t *encode(const struct pw_labelset *ls, const struct pw_sample *s, size_t n,
		       size_t *len)
{
	uint8_t *buf = NULL;

	ck_assert_int_eq(pw_proto_encode_push(ls, s, n, &buf, len), 0);
	ck_assert_ptr_nonnull(buf);
	return buf;
}

/* Decodes and expects failure with an error mentioning `what`. */
static void expect_reject(const uint8_t *buf, size_t len, const char *what)
{
	struct pw_dec_push d;
	char *err = NULL;

	ck_assert_int_eq(pw_proto_decode_push(buf, len, &d, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, what) != NULL, "error \"%s\" lacks \"%s\"", err, what);
	ck_assert_uint_eq(d.nseries, 0);
	ck_assert_ptr_null(d.series);
	free(err);
}

static void expect_accept(const uint8_t *buf, size_t len, struct pw_dec_push *d)
{
	char *err = NULL;
	int rc = pw_proto_decode_push(buf, len, d, &err);

	ck_assert_msg(rc == 0, "decode failed: %s", err ? err : "(no error)");
	ck_assert_ptr_null(err);
}

START_TEST(test_exact_bytes)
{
	struct pw_kv kv[] = {{"a", "b"}};
	struct pw_labelset ls = {kv, 1};
	struct pw_sample s[] = {{prof2, 1, "i"}};
	static const uint8_t want[] = {
		0x0A, 0x10, /* series, 16 bytes */
		0x0A, 0x06, /* labels */
		0x0A, 0x01, 'a', 0x12, 0x01, 'b', 0x12, 0x06, /* samples */
		0x0A, 0x01, 'x', 0x12, 0x01, 'i',
	};
	size_t len;
	uint8_t *buf = encode(&ls, s, 1, &len);

	ck_assert_uint_eq(len, sizeof(want));
	ck_assert_mem_eq(buf, want, sizeof(want));
	free(buf);
}
END_TEST

START_TEST(test_empty_fields_omitted)
{
	/* Empty raw_profile and absent/empty IDs drop the fields, not the sample. */
	struct pw_sample s[] = {{NULL, 0, NULL}, {prof2, 1, ""}, {NULL, 0, "id"}};
	static const uint8_t want[] = {
		0x0A, 0x0D, 0x12, 0x00, 0x12, 0x03, 0x0A, 0x01,
		'x',  0x12, 0x04, 0x12, 0x02, 'i',  'd',
	};
	size_t len;
	uint8_t *buf = encode(NULL, s, 3, &len);
	struct pw_dec_push d;

	ck_assert_uint_eq(len, sizeof(want));
	ck_assert_mem_eq(buf, want, sizeof(want));
	expect_accept(buf, len, &d);
	ck_assert_uint_eq(d.nseries, 1);
	ck_assert_uint_eq(d.series[0].nlabels, 0);
	ck_assert_uint_eq(d.series[0].nsamples, 3);
	ck_assert_uint_eq(d.series[0].samples[0].len, 0);
	ck_assert_str_eq(d.series[0].samples[0].id, "");
	ck_assert_str_eq(d.series[0].samples[1].id, "");
	ck_assert_uint_eq(d.series[0].samples[1].len, 1);
	ck_assert_str_eq(d.series[0].samples[2].id, "id");
	pw_dec_push_free(&d);
	free(buf);
}
END_TEST

START_TEST(test_nothing_to_send)
{
	struct pw_labelset ls = {NULL, 0};
	size_t len;
	uint8_t *buf = encode(&ls, NULL, 0, &len);
	struct pw_dec_push d;

	/* One empty series is still a series. */
	ck_assert_uint_eq(len, 2);
	ck_assert_int_eq(buf[0], 0x0A);
	ck_assert_int_eq(buf[1], 0x00);
	expect_accept(buf, len, &d);
	ck_assert_uint_eq(d.nseries, 1);
	pw_dec_push_free(&d);
	free(buf);
}
END_TEST

START_TEST(test_round_trip)
{
	struct pw_sample s[] = {{prof1, sizeof(prof1), "uuid-1"}, {prof2, 1, NULL}};
	size_t len;
	uint8_t *buf = encode(&ls_abc, s, 2, &len);
	struct pw_dec_push d;

	expect_accept(buf, len, &d);
	ck_assert_uint_eq(d.nseries, 1);
	ck_assert_uint_eq(d.series[0].nlabels, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_str_eq(d.series[0].labels[i].key, kv_abc[i].key);
		ck_assert_str_eq(d.series[0].labels[i].value, kv_abc[i].value);
	}
	ck_assert_uint_eq(d.series[0].nsamples, 2);
	ck_assert_uint_eq(d.series[0].samples[0].len, sizeof(prof1));
	ck_assert_mem_eq(d.series[0].samples[0].data, prof1, sizeof(prof1));
	/* Samples point into the input buffer rather than being copied. */
	ck_assert(d.series[0].samples[0].data > buf && d.series[0].samples[0].data < buf + len);
	ck_assert_str_eq(d.series[0].samples[0].id, "uuid-1");
	ck_assert_mem_eq(d.series[0].samples[1].data, prof2, 1);
	ck_assert_str_eq(d.series[0].samples[1].id, "");
	ck_assert_uint_eq(d.series[0].nannotations, 0);
	pw_dec_push_free(&d);
	ck_assert_ptr_null(d.series);
	free(buf);
}
END_TEST

START_TEST(test_large_profile)
{
	/* 3 MiB needs a four-byte length varint at two nesting levels. */
	size_t big = (size_t)3 << 20, len;
	uint8_t *data = malloc(big);
	struct pw_sample s[] = {{NULL, 0, "big"}};
	struct pw_dec_push d;
	uint8_t *buf;

	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 31u);
	s[0].data = data;
	s[0].len = big;
	buf = encode(&ls_abc, s, 1, &len);
	ck_assert_uint_gt(len, big);
	ck_assert_uint_lt(len, big + 128);
	expect_accept(buf, len, &d);
	ck_assert_uint_eq(d.series[0].samples[0].len, big);
	ck_assert_mem_eq(d.series[0].samples[0].data, data, big);
	pw_dec_push_free(&d);
	free(buf);
	free(data);
}
END_TEST

START_TEST(test_encode_overflow)
{
	/* A length that cannot be represented must fail before allocating. */
	struct pw_sample s[] = {{prof2, SIZE_MAX - 4, NULL}};
	uint8_t *buf = (uint8_t *)"x";
	size_t len = 7;

	ck_assert_int_eq(pw_proto_encode_push(NULL, s, 1, &buf, &len), -1);
	ck_assert_ptr_null(buf);
	ck_assert_uint_eq(len, 0);
}
END_TEST

/* Runs protoc --decode on buf and returns its stdout (malloc'd). */
static char *protoc_decode(const uint8_t *buf, size_t len)
{
	const char *root = getenv("PW_SOURCE_ROOT");
	char in_path[] = "/tmp/pw_proto_XXXXXX";
	char *incdir, *out = NULL;
	struct strbuf sb = STRBUF_INIT;
	int fd, pipefd[2], status;
	pid_t pid;
	char chunk[4096];
	ssize_t n;

	ck_assert_msg(root != NULL, "PW_SOURCE_ROOT is not set (run through meson test)");
	ck_assert_msg(system("command -v protoc >/dev/null 2>&1") == 0,
		      "protoc not found: install protobuf-compiler to run the cross-check");
	incdir = pw_asprintf("%s/tests", root);
	fd = mkstemp(in_path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(pipe(pipefd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *iarg = pw_asprintf("-I%s", incdir);

		dup2(fd, 0);
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		execlp("protoc", "protoc", "--decode=push.v1.PushRequest", iarg, "push.proto",
		       (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	while ((n = read(pipefd[0], chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			strbuf_append(&sb, chunk, (size_t)n);
	close(pipefd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	close(fd);
	unlink(in_path);
	free(incdir);
	out = strbuf_detach(&sb, NULL);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "protoc failed (status %d), output: %s", status, out);
	return out;
}

START_TEST(test_protoc_cross_check)
{
	struct pw_kv kv[] = {{"__name__", "cpu"}, {"job", "\xc3\xa9t\xc3\xa9"}};
	struct pw_labelset ls = {kv, 2};
	struct pw_sample s[] = {{prof1, sizeof(prof1), "ab\"c"}, {NULL, 0, NULL}};
	const char *want = "series {\n"
			   "  labels {\n"
			   "    name: \"__name__\"\n"
			   "    value: \"cpu\"\n"
			   "  }\n"
			   "  labels {\n"
			   "    name: \"job\"\n"
			   "    value: \"\\303\\251t\\303\\251\"\n"
			   "  }\n"
			   "  samples {\n"
			   "    raw_profile: \"\\037\\213\\000\\001\\377\"\n"
			   "    ID: \"ab\\\"c\"\n"
			   "  }\n"
			   "  samples {\n"
			   "  }\n"
			   "}\n";
	size_t len;
	uint8_t *buf = encode(&ls, s, 2, &len);
	char *got = protoc_decode(buf, len);

	ck_assert_str_eq(got, want);
	free(got);
	free(buf);
}
END_TEST

START_TEST(test_skips_unknown_fields)
{
	static const uint8_t msg[] = {
		0x08, 0x96, 0x01, /* PushRequest.series as a varint */
	};
	static const uint8_t ok[] = {
		0x10, 0x96, 0x01, /* field 2 varint */
		0x1D, 1,    2,	  3,	4, /* field 3 fixed32 */
		0x21, 1,    2,	  3,	4,   5,	   6,	 7,   8, /* field 4 fixed64 */
		0x2A, 0x02, 'h',  'i', /* field 5 bytes */
		0x33, 0x08, 0x01, 0x34, /* field 6 group { field 1 varint } */
		0x0A, 0x20, /* series */
		0x20, 0x05, /* unknown varint in series */
		0x0A, 0x08, 0x0A, 0x01, 'k', 0x12, 0x01, 'v', 0x18, 0x0A, /* label + unknown */
		0x12, 0x08, 0x0A, 0x01, 'p', 0x25, 0,	 0,   0,    0, /* sample + fixed32 */
		0x1A, 0x06, 0x0A, 0x01, 'a', 0x12, 0x01, 'b', /* annotation */
		0x3A, 0x00, /* unknown empty bytes */
	};
	struct pw_dec_push d;

	/* A known field with the wrong wire type is an error... */
	expect_reject(msg, sizeof(msg), "wrong wire type");
	/* ...while unknown fields of any wire type are skipped at every level. */
	expect_accept(ok, sizeof(ok), &d);
	ck_assert_uint_eq(d.nseries, 1);
	ck_assert_uint_eq(d.series[0].nlabels, 1);
	ck_assert_str_eq(d.series[0].labels[0].key, "k");
	ck_assert_str_eq(d.series[0].labels[0].value, "v");
	ck_assert_uint_eq(d.series[0].nsamples, 1);
	ck_assert_uint_eq(d.series[0].samples[0].len, 1);
	ck_assert_int_eq(d.series[0].samples[0].data[0], 'p');
	ck_assert_uint_eq(d.series[0].nannotations, 1);
	pw_dec_push_free(&d);
}
END_TEST

START_TEST(test_missing_and_repeated_scalars)
{
	/* A label without a value decodes to ""; a repeated ID keeps the last. */
	static const uint8_t msg[] = {
		0x0A, 0x0F, 0x0A, 0x03, 0x0A, 0x01, 'k',  0x12, 0x08,
		0x12, 0x01, '1',  0x12, 0x01, '2',  0x0A, 0x00,
	};
	struct pw_dec_push d;

	expect_accept(msg, sizeof(msg), &d);
	ck_assert_str_eq(d.series[0].labels[0].key, "k");
	ck_assert_str_eq(d.series[0].labels[0].value, "");
	ck_assert_str_eq(d.series[0].samples[0].id, "2");
	ck_assert_uint_eq(d.series[0].samples[0].len, 0);
	pw_dec_push_free(&d);

	expect_accept(NULL, 0, &d);
	ck_assert_uint_eq(d.nseries, 0);
	pw_dec_push_free(&d);
}
END_TEST

struct bad_case {
	const char *name;
	const uint8_t *buf;
	size_t len;
	const char *err;
};

#define BAD(n, e, ...)                                                                             \
	{                                                                                          \
		n, (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}), e       \
	}

static const struct bad_case bad_cases[] = {
	BAD("truncated tag", "truncated varint", 0x80),
	BAD("truncated length", "truncated varint", 0x0A, 0x80),
	BAD("eleven-byte varint", "varint", 0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
	    0x80, 0x80, 0x01),
	BAD("varint over 64 bits", "overflows", 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	    0xFF, 0xFF, 0x02),
	BAD("length past end", "past the end", 0x0A, 0x05, 0x00),
	BAD("huge length", "past the end", 0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	    0xFF, 0x01),
	BAD("nested length past end", "past the end", 0x0A, 0x02, 0x0A, 0x05),
	BAD("field number zero", "field number", 0x02, 0x00),
	BAD("wire type 6", "invalid wire type", 0x16),
	BAD("wire type 7", "invalid wire type", 0x17),
	BAD("series as fixed32", "wrong wire type", 0x0D, 0, 0, 0, 0),
	BAD("labels as varint", "wrong wire type", 0x0A, 0x02, 0x08, 0x01),
	BAD("samples as fixed64", "wrong wire type", 0x0A, 0x09, 0x11, 1, 2, 3, 4, 5, 6, 7, 8),
	BAD("annotations as varint", "wrong wire type", 0x0A, 0x02, 0x18, 0x00),
	BAD("label name as varint", "wrong wire type", 0x0A, 0x04, 0x0A, 0x02, 0x08, 0x00),
	BAD("label value as varint", "wrong wire type", 0x0A, 0x04, 0x0A, 0x02, 0x10, 0x00),
	BAD("raw_profile as varint", "wrong wire type", 0x0A, 0x04, 0x12, 0x02, 0x08, 0x00),
	BAD("ID as fixed32", "wrong wire type", 0x0A, 0x07, 0x12, 0x05, 0x15, 0, 0, 0, 0),
	BAD("name not UTF-8", "LabelPair.name", 0x0A, 0x05, 0x0A, 0x03, 0x0A, 0x01, 0xFF),
	BAD("value not UTF-8", "LabelPair.value", 0x0A, 0x06, 0x0A, 0x04, 0x12, 0x02, 0xC3, 0x28),
	BAD("ID not UTF-8", "RawSample.ID", 0x0A, 0x05, 0x12, 0x03, 0x12, 0x01, 0x80),
	BAD("annotation not UTF-8", "ProfileAnnotation.key", 0x0A, 0x05, 0x1A, 0x03, 0x0A, 0x01,
	    0xC0),
	BAD("NUL in a label name", "NUL byte in LabelPair.name", 0x0A, 0x07, 0x0A, 0x05, 0x0A, 0x03,
	    'a', 0x00, 'b'),
	BAD("NUL in a label value", "NUL byte in LabelPair.value", 0x0A, 0x07, 0x0A, 0x05, 0x12,
	    0x03, 'a', 0x00, 'b'),
	BAD("NUL in an ID", "NUL byte in RawSample.ID", 0x0A, 0x07, 0x12, 0x05, 0x12, 0x03, 'a',
	    0x00, 'b'),
	BAD("NUL in an annotation", "NUL byte in ProfileAnnotation.value", 0x0A, 0x06, 0x1A, 0x04,
	    0x12, 0x02, 0x00, 'b'),
	BAD("truncated fixed32", "truncated fixed", 0x15, 0x00, 0x00),
	BAD("truncated fixed64", "truncated fixed", 0x19, 0, 0, 0, 0, 0, 0, 0),
	BAD("unterminated group", "unterminated group", 0x13, 0x08, 0x01),
	BAD("mismatched group end", "mismatched", 0x13, 0x1C),
	BAD("stray group end", "unexpected end of group", 0x14),
	BAD("truncated inside series", "truncated varint", 0x0A, 0x01, 0x80),
	BAD("error after a good series", "past the end", 0x0A, 0x00, 0x0A, 0x03, 0x0A, 0x01),
};

START_TEST(test_rejects)
{
	const struct bad_case *c = &bad_cases[_i];
	struct pw_dec_push d;
	char *err = NULL;

	ck_assert_msg(pw_proto_decode_push(c->buf, c->len, &d, &err) == -1, "%s accepted", c->name);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, c->err) != NULL, "%s: error \"%s\" lacks \"%s\"", c->name, err,
		      c->err);
	ck_assert_uint_eq(d.nseries, 0);
	free(err);
}
END_TEST

START_TEST(test_deep_groups)
{
	/* 100 nested unknown groups: bounded, rejected, no stack blow-up. */
	uint8_t buf[200];
	size_t n = 0;

	for (int i = 0; i < 100; i++)
		buf[n++] = 0x13; /* start group, field 2 */
	for (int i = 0; i < 100; i++)
		buf[n++] = 0x14;
	expect_reject(buf, n, "nested too deeply");
}
END_TEST

START_TEST(test_truncation_everywhere)
{
	/* Every proper prefix of a valid message either decodes or fails cleanly. */
	struct pw_sample s[] = {{prof1, sizeof(prof1), "uuid"}};
	size_t len, rejected = 0;
	uint8_t *buf = encode(&ls_abc, s, 1, &len);

	for (size_t cut = 1; cut < len; cut++) {
		uint8_t *copy = malloc(cut);
		struct pw_dec_push d;
		char *err = NULL;

		memcpy(copy, buf, cut);
		if (pw_proto_decode_push(copy, cut, &d, &err) < 0) {
			ck_assert_ptr_nonnull(err);
			rejected++;
			free(err);
		} else {
			pw_dec_push_free(&d);
		}
		free(copy);
	}
	/* The outer length covers everything, so every prefix is truncated. */
	ck_assert_uint_eq(rejected, len - 1);
	free(buf);
}
END_TEST

/* The pieces of pw_proto_push_segments(), put together, are the bytes
 * pw_proto_push_write() makes, and point into the samples themselves. */
static void check_segments(const struct pw_labelset *ls, const struct pw_sample *s, size_t n)
{
	size_t len, data = 0, nsegs, off = 0;
	uint8_t *want = encode(ls, s, n, &len), *own, *got;
	struct pw_seg *segs;

	for (size_t i = 0; i < n; i++)
		data += s[i].len;
	own = malloc(len - data + 1);
	ck_assert_int_eq(pw_proto_push_segments(ls, s, n, own, len - data, &segs, &nsegs), 0);
	ck_assert_uint_le(nsegs, 2 * n + 1);
	got = malloc(len + 1);
	for (size_t i = 0; i < nsegs; i++) {
		bool in_sample = false;

		ck_assert_uint_le(off + segs[i].n, len);
		memcpy(got + off, segs[i].p, segs[i].n);
		off += segs[i].n;
		for (size_t j = 0; j < n; j++)
			if (segs[i].p == s[j].data && segs[i].n == s[j].len)
				in_sample = true;
		/* Every piece is either a sample, borrowed, or part of own. */
		ck_assert(in_sample ||
			  (segs[i].p >= own && segs[i].p + segs[i].n <= own + len - data));
	}
	ck_assert_uint_eq(off, len);
	ck_assert_int_eq(memcmp(got, want, len), 0);
	/* A wrong size for own is refused, not overrun. */
	{
		struct pw_seg *none = NULL;
		size_t nnone = 99;

		ck_assert_int_eq(
			pw_proto_push_segments(ls, s, n, own, len - data - 1, &none, &nnone), -1);
		ck_assert_ptr_null(none);
		ck_assert_uint_eq(nnone, 0);
	}
	free(segs);
	free(got);
	free(own);
	free(want);
}

START_TEST(test_segments)
{
	static uint8_t big[70000];
	struct pw_sample one[] = {{big, sizeof(big), NULL}};
	struct pw_sample mixed[] = {{prof1, sizeof(prof1), "a"},
				    {NULL, 0, "only-id"},
				    {big, sizeof(big), NULL},
				    {prof2, sizeof(prof2), NULL},
				    {big, 300, "x"}};

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 31 + 7);
	check_segments(&ls_abc, one, 1);
	check_segments(&ls_abc, mixed, 5);
	check_segments(NULL, mixed, 5);
	check_segments(&ls_abc, NULL, 0);
}
END_TEST

/* n empty series ("0a 00" each), or one series of n empty labels. */
static uint8_t *many(size_t n, bool labels, size_t *len)
{
	uint8_t *buf = malloc(2 * n + 16), *p = buf;

	ck_assert_ptr_nonnull(buf);
	if (labels) {
		size_t inner = 2 * n;

		*p++ = 0x0A;
		for (; inner >= 0x80; inner >>= 7)
			*p++ = (uint8_t)(inner | 0x80);
		*p++ = (uint8_t)inner;
	}
	for (size_t i = 0; i < n; i++) {
		*p++ = 0x0A;
		*p++ = 0x00;
	}
	*len = (size_t)(p - buf);
	return buf;
}

/* Two bytes on the wire are some 40 decoded: without a bound, a body of
 * empty series decoded into GiB. */
START_TEST(test_bounds)
{
	struct pw_dec_push d;
	size_t len;
	uint8_t *buf = many(PW_PROTO_MAX_SERIES, false, &len);

	expect_accept(buf, len, &d);
	ck_assert_uint_eq(d.nseries, PW_PROTO_MAX_SERIES);
	pw_dec_push_free(&d);
	free(buf);
	buf = many(PW_PROTO_MAX_SERIES + 1, false, &len);
	expect_reject(buf, len, "more than 10000 series");
	free(buf);
	buf = many(8 << 20, false, &len);
	expect_reject(buf, len, "more than 10000 series");
	free(buf);

	buf = many(PW_PROTO_MAX_ELEMENTS - 1, true, &len);
	expect_accept(buf, len, &d);
	ck_assert_uint_eq(d.nseries, 1);
	ck_assert_uint_eq(d.series[0].nlabels, PW_PROTO_MAX_ELEMENTS - 1);
	pw_dec_push_free(&d);
	free(buf);
	buf = many(PW_PROTO_MAX_ELEMENTS, true, &len);
	expect_reject(buf, len, "more than 100000 series, labels, samples and annotations");
	free(buf);
}
END_TEST

static Suite *proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("encode");

	tcase_add_test(tc, test_exact_bytes);
	tcase_add_test(tc, test_empty_fields_omitted);
	tcase_add_test(tc, test_nothing_to_send);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_large_profile);
	tcase_add_test(tc, test_segments);
	tcase_add_test(tc, test_encode_overflow);
	tcase_add_test(tc, test_protoc_cross_check);
	suite_add_tcase(s, tc);

	tc = tcase_create("decode");
	tcase_add_test(tc, test_skips_unknown_fields);
	tcase_add_test(tc, test_missing_and_repeated_scalars);
	tcase_add_loop_test(tc, test_rejects, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(tc, test_deep_groups);
	tcase_add_test(tc, test_bounds);
	tcase_add_test(tc, test_truncation_everywhere);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(proto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
