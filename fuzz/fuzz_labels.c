/*
 * fuzz_labels.c - libFuzzer harness for the label pipelines and the ingest URL.
 *
 * Build and run (from the repository root; scripts/fuzz.sh runs them all):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && meson compile -C build-fuzz fuzz/fuzz_labels
 *   build-fuzz/fuzz/fuzz_labels -max_total_time=60 fuzz/corpus/labels
 *
 * Input layout: byte 0 picks the endpoint URL and how many of the trailing
 * strings are external labels; the rest is NUL-separated strings: the
 * incoming path and query, then name/value pairs.
 *
 * Besides memory safety it checks the contracts: the output is sorted with
 * unique names and no empty values, the push path forwarded no reserved
 * label of its own, errors are UTF-8 and carry the common prefix, the
 * encoder's output decodes to the same labels, and a built URL contains
 * only bytes that may appear in a URL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"
#include "proto.h"
#include "proto_decode.h"
#include "strbuf.h"

#define MAX_STRINGS 64

static const char *const endpoints[] = {
	"http://h:4040",
	"https://h/prefix/",
	"http://h/p?key=abc&format=jfr&name=x",
	"http://h//a/../b?x=%41",
};

static void check_err(const char *err)
{
	if (!err || !pw_utf8_valid(err, strlen(err)) ||
	    strncmp(err, "invalid labels in profile: ", 27) != 0)
		abort();
}

static bool is_external(const struct pw_kvmap *ext, const char *key)
{
	for (size_t i = 0; i < ext->n; i++)
		if (strcmp(ext->items[i].key, key) == 0)
			return true;
	return false;
}

static void check_set(const struct pw_labelset *ls, const struct pw_kvmap *ext, bool push)
{
	for (size_t i = 0; i < ls->n; i++) {
		const char *k = ls->items[i].key;

		if (!*ls->items[i].value)
			abort();
		if (i > 0 && strcmp(ls->items[i - 1].key, k) >= 0)
			abort();
		if (push && strncmp(k, "__", 2) == 0 && strcmp(k, "__name__") != 0 &&
		    strcmp(k, "__delta__") != 0 && !is_external(ext, k))
			abort();
	}
}

/* The push encoding decodes back to the same labels. */
static void check_round_trip(const struct pw_labelset *ls)
{
	static const uint8_t data[] = {1, 2, 3};
	struct pw_sample s = {data, sizeof(data), "id"};
	struct pw_dec_push d;
	uint8_t *buf = NULL;
	size_t len = 0;
	char *err = NULL;

	if (pw_proto_encode_push(ls, &s, 1, &buf, &len) < 0)
		abort();
	/* External labels are not validated, so decoding may refuse them. */
	if (pw_proto_decode_push(buf, len, &d, &err) == 0) {
		if (d.nseries != 1 || d.series[0].nlabels != ls->n || d.series[0].nsamples != 1)
			abort();
		for (size_t i = 0; i < ls->n; i++)
			if (strcmp(d.series[0].labels[i].key, ls->items[i].key) != 0 ||
			    strcmp(d.series[0].labels[i].value, ls->items[i].value) != 0)
				abort();
		pw_dec_push_free(&d);
	} else {
		free(err);
	}
	free(buf);
}

static void check_url(const char *url, const char *err)
{
	if (!url) {
		if (!err)
			abort();
		return;
	}
	if (err || !strstr(url, "name="))
		abort();
	for (const unsigned char *p = (const unsigned char *)url; *p; p++)
		if (*p <= 0x20 || *p >= 0x7F || *p == '#')
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *strs[MAX_STRINGS];
	struct pw_label labels[MAX_STRINGS / 2];
	struct pw_kv ext_items[MAX_STRINGS / 2];
	struct pw_kvmap ext = {ext_items, 0};
	struct pw_labelset ls;
	size_t nstrs = 0, npairs, next, nlabels;
	const char *endpoint;
	char *err, *verr, *url;
	uint8_t ctl;
	int rc;

	if (size < 1)
		return 0;
	ctl = data[0];
	endpoint = endpoints[ctl & 3];
	copy = malloc(size);
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	for (char *p = copy; nstrs < MAX_STRINGS && p < copy + size;) {
		strs[nstrs++] = p;
		p += strlen(p) + 1;
	}
	npairs = (nstrs - 1) / 2;
	next = (ctl >> 2) % 4;
	if (next > npairs)
		next = npairs;
	nlabels = npairs - next;
	for (size_t i = 0; i < nlabels; i++) {
		labels[i].name = strs[1 + 2 * i];
		labels[i].value = strs[2 + 2 * i];
	}
	/* External names are unique, as the configuration guarantees. */
	for (size_t i = nlabels; i < npairs; i++) {
		const char *k = strs[1 + 2 * i];

		if (!is_external(&ext, k)) {
			ext_items[ext.n].key = (char *)k;
			ext_items[ext.n].value = strs[2 + 2 * i];
			ext.n++;
		}
	}

	verr = pw_labels_validate(labels, nlabels);
	if (verr)
		check_err(verr);

	rc = pw_labels_push(labels, nlabels, &ext, &ls, &err);
	if ((rc == 0) != (verr == NULL))
		abort();
	if (rc == 0) {
		check_set(&ls, &ext, true);
		check_round_trip(&ls);
		pw_labelset_free(&ls);
	} else {
		check_err(err);
		free(err);
	}

	rc = pw_labels_ingest(labels, nlabels, &ext, &ls, &err);
	if (rc == 0) {
		char *name = pw_labels_ingest_name(&ls);

		if (!name)
			abort();
		free(name);
		check_set(&ls, &ext, false);
		url = pw_ingest_url(endpoint, strs[0], &ls, &err);
		check_url(url, err);
		free(url);
		free(err);
		pw_labelset_free(&ls);
	} else {
		check_err(err);
		free(err);
	}
	free(verr);
	free(copy);
	return 0;
}
