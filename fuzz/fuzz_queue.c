/*
 * fuzz_queue.c - libFuzzer harness for the durable queue's recovery reader
 * (pwq_scan_segment), the cursors file parser and the decoder of a record's
 * contents (pw_qrec_decode), fed damaged segment files.
 *
 * Build and run (from the repository root; scripts/fuzz.sh runs them all):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && meson compile -C build-fuzz fuzz/fuzz_queue
 *   build-fuzz/fuzz/fuzz_queue -max_total_time=60 fuzz/corpus/queue
 *
 * Besides memory safety it checks the reader's contracts: events come in
 * order without overlapping, stay inside the buffer, every record's crc
 * checks, and the returned cut is the end of the last valid record.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qrec.h"
#include "qstore_format.h"
#include "util/crc32c.h"

struct state {
	const uint8_t *buf;
	size_t len;
	uint64_t next, last_end;
};

static void on_event(void *arg, const struct pwq_scan_ev *ev)
{
	struct state *s = arg;

	if (ev->off < s->next || ev->size == 0 || ev->off + ev->size > s->len)
		abort();
	s->next = ev->off + ev->size;
	if (ev->kind != PWQ_SCAN_RECORD)
		return;
	if (ev->off % 8 || ev->size != PWQ_REC_SIZE(ev->rec.len) ||
	    ev->payload != s->buf + ev->off + PWQ_REC_HDR)
		abort();
	if (pwx_crc32c(pwx_crc32c(0, s->buf + ev->off, 36), ev->payload, ev->rec.len) !=
	    ev->rec.crc)
		abort();
	s->last_end = ev->off + ev->size;
}

/* A record's contents: decoded or refused, never read past; the body is
 * the rest of the buffer, and every string is whole. */
static void check_record(const uint8_t *data, size_t size)
{
	struct pw_qrec r;
	const char *why = NULL;

	if (pw_qrec_decode(data, size, &r, &why) < 0) {
		if (!why)
			abort();
		return;
	}
	if (r.body < data || r.body + r.body_len != data + size)
		abort();
	for (size_t i = 0; i < r.nin; i++)
		if (!r.in[i].name || !r.in[i].value)
			abort();
	for (size_t i = 0; i < r.nctypes; i++)
		if (!r.ctypes[i])
			abort();
	if (r.ingest && !r.path_query)
		abort();
	pw_qrec_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state s = {data, size, 0, 0};
	struct pwq_scan_res res;
	struct pwq_curent *e = NULL;
	size_t n = 0;
	uint64_t end = pwq_scan_segment(data, size, on_event, &s, &res);

	if (end != res.end || end > size)
		abort();
	if (res.records ? end != s.last_end : end != (res.header_ok ? PWQ_SEG_HDR : 0))
		abort();
	if (pwq_cursors_decode(data, size, &e, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			if (!e[i].name || !e[i].name[0])
				abort();
		pwq_curents_free(e, n);
	}
	check_record(data, size);
	return 0;
}
