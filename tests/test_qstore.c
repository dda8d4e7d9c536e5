/*
 * test_qstore.c - the durable queue's store on real files: round trips,
 * restarts, out-of-order acks, group commit, max_size with both when_full
 * modes, a real ENOSPC on a small tmpfs (root: CI runs as root), damaged
 * files, the lock, inspect, and CRC32C itself.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qstore.h"
#include "qstore_format.h"
#include "strbuf.h"
#include "util/crc32c.h"

/* ---- fixtures ---- */

#define MAXNAMES 4

struct counts {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	uint64_t fsyncs, fsynced_records;
	uint64_t done_ok, done_io;
	char names[MAXNAMES][16];
	uint64_t dropped[MAXNAMES][3]; /* by cursor, by reason */
	int64_t bytes;
};

static struct counts C;
static char D[64]; /* the queue directory of the current test */
static char Top[48];

static void on_fsync(void *arg, double secs, size_t records)
{
	struct counts *c = arg;

	ck_assert(secs >= 0);
	c->fsyncs++;
	c->fsynced_records += records;
}

static void on_bytes(void *arg, int64_t bytes)
{
	((struct counts *)arg)->bytes = bytes;
}

static void on_drop(void *arg, const char *cursor, int reason, uint64_t profiles)
{
	struct counts *c = arg;

	ck_assert(reason == PWQ_DROP_FULL || reason == PWQ_DROP_CORRUPT);
	for (int i = 0; i < MAXNAMES; i++) {
		if (!c->names[i][0])
			snprintf(c->names[i], sizeof(c->names[i]), "%s", cursor);
		if (strcmp(c->names[i], cursor) == 0) {
			c->dropped[i][reason] += profiles;
			return;
		}
	}
	ck_abort_msg("too many cursor names");
}

static uint64_t dropped(const char *name, int reason)
{
	for (int i = 0; i < MAXNAMES; i++)
		if (strcmp(C.names[i], name) == 0)
			return C.dropped[i][reason];
	return 0;
}

static void on_done(void *user, int status)
{
	pthread_mutex_lock(&C.mu);
	if (status == PWQ_OK)
		C.done_ok++;
	else
		C.done_io++;
	pthread_cond_broadcast(&C.cond);
	pthread_mutex_unlock(&C.mu);
	(void)user;
}

static void wait_done(uint64_t n)
{
	pthread_mutex_lock(&C.mu);
	while (C.done_ok + C.done_io < n)
		pthread_cond_wait(&C.cond, &C.mu);
	pthread_mutex_unlock(&C.mu);
}

static struct pwq_opts opts(int64_t max_size, bool always, bool drop)
{
	struct pwq_opts o = {.dir = D,
			     .max_size = max_size,
			     .fsync_always = always,
			     .fsync_interval_ns = 10000000,
			     .drop_oldest = drop,
			     .on_fsync = on_fsync,
			     .on_bytes = on_bytes,
			     .on_drop = on_drop,
			     .arg = &C};
	return o;
}

static struct pwq *open_ok(const struct pwq_opts *o)
{
	char *err = NULL;
	struct pwq *q = pwq_open(o, &err);

	ck_assert_msg(q != NULL, "pwq_open: %s", err ? err : "?");
	return q;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void setup(void)
{
	memset(&C, 0, sizeof(C));
	pthread_mutex_init(&C.mu, NULL);
	pthread_cond_init(&C.cond, NULL);
	snprintf(Top, sizeof(Top), "/tmp/pwq-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(Top));
	snprintf(D, sizeof(D), "%s/q", Top);
}

static void teardown(void)
{
	nftw(Top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	pthread_mutex_destroy(&C.mu);
	pthread_cond_destroy(&C.cond);
}

/* Record i's payload: its number, then filler up to len bytes. */
static void payload(uint8_t *buf, size_t len, uint32_t i)
{
	memset(buf, (int)(i & 0xff), len);
	if (len >= 4)
		memcpy(buf, &i, 4);
}

static int append_n(struct pwq *q, uint32_t i, size_t len, uint32_t nprofiles)
{
	uint8_t *buf = malloc(len ? len : 1);
	struct iovec iov[2];
	int st;

	payload(buf, len, i);
	/* Two pieces, as a producer hands a header and a body. */
	iov[0] = (struct iovec){buf, len / 2};
	iov[1] = (struct iovec){buf + len / 2, len - len / 2};
	st = pwq_append(q, 1000 + i, nprofiles, iov, 2, on_done, NULL);
	free(buf);
	return st;
}

/* Reads the next record and checks it is record i of len bytes. */
static void expect_rec(struct pwq *q, struct pwq_cursor *c, uint32_t i, size_t len,
		       struct pwq_rec *r)
{
	uint8_t *want = malloc(len ? len : 1);

	ck_assert_int_eq(pwq_next(q, c, 0, r), 1);
	payload(want, len, i);
	ck_assert_uint_eq(r->len, len);
	ck_assert_int_eq(r->created_ms, 1000 + i);
	ck_assert_msg(memcmp(r->data, want, len) == 0, "payload of record %u", i);
	free(want);
	free(r->data);
	r->data = NULL;
}

static size_t count_segs(void)
{
	DIR *d = opendir(D);
	struct dirent *e;
	size_t n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		n += strstr(e->d_name, ".seg") != NULL;
	closedir(d);
	return n;
}

/* Segment paths, sorted. */
static size_t seg_paths(char paths[][600], size_t max)
{
	struct dirent **list;
	int n = scandir(D, &list, NULL, alphasort);
	size_t k = 0;

	ck_assert_int_ge(n, 0);
	for (int i = 0; i < n; i++) {
		if (strstr(list[i]->d_name, ".seg") && k < max)
			snprintf(paths[k++], 600, "%s/%s", D, list[i]->d_name);
		free(list[i]);
	}
	free(list);
	return k;
}

static int64_t du(void)
{
	DIR *d = opendir(D);
	struct dirent *e;
	int64_t b = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		char p[600];
		struct stat st;

		snprintf(p, sizeof(p), "%s/%s", D, e->d_name);
		if (e->d_name[0] != '.' && stat(p, &st) == 0)
			b += st.st_size;
	}
	closedir(d);
	return b;
}

/* ---- CRC32C ---- */

START_TEST(test_crc32c_vectors)
{
	uint8_t zeros[32] = {0}, ones[32], inc[32];

	memset(ones, 0xff, sizeof(ones));
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	/* RFC 3720 B.4 and the classic check value. */
	ck_assert_uint_eq(pwx_crc32c(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(pwx_crc32c_table(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(pwx_crc32c(0, zeros, 32), 0x8A9136AAu);
	ck_assert_uint_eq(pwx_crc32c(0, ones, 32), 0x62A8AB43u);
	ck_assert_uint_eq(pwx_crc32c(0, inc, 32), 0x46DD794Eu);
	ck_assert_uint_eq(pwx_crc32c_table(0, inc, 32), 0x46DD794Eu);
	ck_assert_uint_eq(pwx_crc32c(0, "", 0), 0);
	/* Chaining, at every split and misalignment. */
	for (size_t k = 0; k <= 9; k++)
		ck_assert_uint_eq(pwx_crc32c(pwx_crc32c(0, "123456789", k), &"123456789"[k], 9 - k),
				  0xE3069283u);
	for (size_t off = 0; off < 8; off++)
		ck_assert_uint_eq(pwx_crc32c(0, inc + off, 32 - off),
				  pwx_crc32c_table(0, inc + off, 32 - off));
}
END_TEST

/* Long buffers go through three lanes at once: the result must be the
 * table's at every length around the lanes' round (12 KiB), at every
 * misalignment, and chained from any split. */
START_TEST(test_crc32c_long_buffers)
{
	size_t n = 200 * 1024;
	uint8_t *buf = malloc(n + 8);
	uint32_t x = 777;
	static const size_t lens[] = {12287, 12288, 12289, 24575,  24576,     24583,
				      36900, 65536, 65572, 131072, 200 * 1024};

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < n + 8; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (size_t off = 0; off < 8; off++) {
			uint32_t want = pwx_crc32c_table(0, buf + off, lens[i]);

			ck_assert_uint_eq(pwx_crc32c(0, buf + off, lens[i]), want);
			ck_assert_uint_eq(pwx_crc32c(pwx_crc32c(0, buf + off, 5000),
						     buf + off + 5000, lens[i] - 5000),
					  want);
		}
	}
	/* One byte changed anywhere changes the sum. */
	{
		uint32_t before = pwx_crc32c(0, buf, 65536);

		buf[4096 + 17] ^= 0x40;
		ck_assert_uint_ne(pwx_crc32c(0, buf, 65536), before);
	}
	free(buf);
}
END_TEST

/* Combining two checksums gives the checksum of the two buffers one after
 * the other: every split of "123456789", and of 1 MiB of pseudo-random
 * bytes at splits that exercise long lengths (the record's case: a 36-byte
 * header, then a payload summed earlier). */
START_TEST(test_crc32c_combine)
{
	size_t n = 1 << 20;
	uint8_t *buf = malloc(n);
	uint32_t x = 12345;
	static const size_t splits[] = {0, 1, 36, 4095, 65536, 65537, (1 << 20) - 1, 1 << 20};

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	for (size_t k = 0; k <= 9; k++)
		ck_assert_uint_eq(pwx_crc32c_combine(pwx_crc32c(0, "123456789", k),
						     pwx_crc32c(0, &"123456789"[k], 9 - k), 9 - k),
				  0xE3069283u);
	for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
		size_t k = splits[i];

		ck_assert_uint_eq(pwx_crc32c_combine(pwx_crc32c(0, buf, k),
						     pwx_crc32c(0, buf + k, n - k), n - k),
				  pwx_crc32c(0, buf, n));
	}
	/* A different second part must give a different result. */
	ck_assert_uint_ne(
		pwx_crc32c_combine(pwx_crc32c(0, buf, 36), pwx_crc32c(0, buf + 37, 100), 100),
		pwx_crc32c(0, buf, 136));
	free(buf);
}
END_TEST

/* ---- round trips ---- */

START_TEST(test_round_trip_many_segments)
{
	struct pwq_opts o = opts(256 << 10, false, true);
	struct pwq *q = open_ok(&o);
	struct pwq_cursor *c = pwq_cursor_get(q, "a", NULL);
	struct pwq_rec r;
	struct pwq_cursor_stat st;

	ck_assert_ptr_nonnull(c);
	for (uint32_t i = 0; i < 150; i++)
		ck_assert_int_eq(append_n(q, i, 900 + i, 2), PWQ_OK);
	ck_assert_uint_eq(C.done_ok, 150); /* fsync=interval: done at once */
	ck_assert_uint_ge(count_segs(), 6);
	pwq_cursor_stat(q, c, &st);
	ck_assert_uint_eq(st.backlog_records, 150);
	ck_assert_uint_eq(st.backlog_profiles, 300);
	ck_assert_int_eq(st.oldest_created_ms, 1000);
	for (uint32_t i = 0; i < 150; i++) {
		expect_rec(q, c, i, 900 + i, &r);
		ck_assert_uint_eq(r.nprofiles, 2);
		pwq_ack(q, c, r.seq);
	}
	ck_assert_int_eq(pwq_next(q, c, 0, &r), 0);
	pwq_cursor_stat(q, c, &st);
	ck_assert_uint_eq(st.backlog_records, 0);
	/* Every segment the only cursor passed is gone but the tail. */
	ck_assert_uint_eq(count_segs(), 1);
	ck_assert_int_eq(pwq_bytes(q), C.bytes);
	pwq_close(q);
	ck_assert_uint_eq(dropped("a", PWQ_DROP_CORRUPT), 0);
}
END_TEST

START_TEST(test_restart_resumes_from_committed)
{
	struct pwq_opts o = opts(1 << 20, true, true);
	struct pwq *q = open_ok(&o);
	struct pwq_cursor *c = pwq_cursor_get(q, "a", NULL);
	struct pwq_rec r;
	uint64_t backlog = 0;
	char **names = NULL;

	ck_assert_ptr_nonnull(pwq_cursor_get(q, "gone", NULL));
	for (uint32_t i = 0; i < 10; i++)
		ck_assert_int_eq(append_n(q, i, 100, 3), PWQ_OK);
	wait_done(10);
	ck_assert_uint_eq(C.done_ok, 10);
	for (uint32_t i = 0; i < 6; i++) {
		expect_rec(q, c, i, 100, &r);
		if (i < 4)
			pwq_ack(q, c, r.seq);
	}
	pwq_close(q);

	q = open_ok(&o);
	ck_assert_uint_eq(pwq_cursor_names(q, &names), 2);
	for (int i = 0; i < 2; i++)
		free(names[i]);
	free(names);
	c = pwq_cursor_get(q, "a", &backlog);
	ck_assert_uint_eq(backlog, 6 * 3);
	/* Read but unacknowledged records come back. */
	for (uint32_t i = 4; i < 10; i++)
		expect_rec(q, c, i, 100, &r);
	ck_assert_int_eq(pwq_next(q, c, 0, &r), 0);
	ck_assert_uint_eq(pwq_cursor_names(q, &names), 1);
	ck_assert_str_eq(names[0], "gone");
	free(names[0]);
	free(names);
	ck_assert_uint_eq(pwq_cursor_remove(q, "gone"), 30);
	/* A new cursor starts at the tail. */
	c = pwq_cursor_get(q, "new", &backlog);
	ck_assert_uint_eq(backlog, 0);
	ck_assert_int_eq(pwq_next(q, c, 0, &r), 0);
	ck_assert_int_eq(append_n(q, 10, 100, 1), PWQ_OK);
	expect_rec(q, c, 10, 100, &r);
	pwq_close(q);
}
END_TEST

START_TEST(test_out_of_order_acks)
{
	struct pwq_opts o = opts(1 << 20, false, true);
	struct pwq *q = open_ok(&o);
	struct pwq_cursor *c = pwq_cursor_get(q, "a", NULL);
	struct pwq_cursor_stat st;
	struct pwq_rec r;
	uint64_t seq[6];

	for (uint32_t i = 0; i < 6; i++)
		ck_assert_int_eq(append_n(q, i, 64, 1), PWQ_OK);
	for (int i = 0; i < 5; i++) {
		expect_rec(q, c, (uint32_t)i, 64, &r);
		seq[i] = r.seq;
	}
	pwq_ack(q, c, seq[2]);
	pwq_ack(q, c, seq[4]);
	pwq_ack(q, c, seq[1]);
	pwq_ack(q, c, 999); /* unknown: ignored */
	pwq_cursor_stat(q, c, &st);
	ck_assert_uint_eq(st.committed.seq, seq[0]);
	ck_assert_uint_eq(st.read.seq, seq[4] + 1);
	ck_assert_uint_eq(st.backlog_records, 6);
	pwq_ack(q, c, seq[0]);
	pwq_cursor_stat(q, c, &st);
	ck_assert_uint_eq(st.committed.seq, seq[3]);
	ck_assert_int_eq(st.oldest_created_ms, 1003);
	/* Rewind: everything after the committed position comes back, the
	 * record acked out of order too. */
	pwq_cursor_rewind(q, c);
	expect_rec(q, c, 3, 64, &r);
	pwq_ack(q, c, r.seq);
	pwq_ack(q, c, r.seq); /* twice: no effect */
	pwq_cursor_stat(q, c, &st);
	ck_assert_uint_eq(st.committed.seq, seq[4]);
	ck_assert_uint_eq(st.backlog_records, 2);
	expect_rec(q, c, 4, 64, &r);
	expect_rec(q, c, 5, 64, &r);
	pwq_close(q);
}
END_TEST

/* Acks handed over together, out of order, with an unknown and a repeated
 * one; records read into a buffer cache carry its capacity, and buffers
 * given back are handed out again. */
START_TEST(test_ack_many_and_buffer_cache)
{
	struct pwq_opts o = opts(4 << 20, false, true);
	struct pw_bufcache bufs;
	struct pwq *q;
	struct pwq_cursor *c;
	struct pwq_cursor_stat st;
	struct pwq_rec r[5];
	uint8_t *want = malloc(40000);
	uint64_t seqs[6];

	pw_bufcache_init(&bufs);
	o.bufs = &bufs;
	q = open_ok(&o);
	c = pwq_cursor_get(q, "a", NULL);
	for (uint32_t i = 0; i < 5; i++)
		ck_assert_int_eq(append_n(q, i, 40000, 1), PWQ_OK);
	for (uint32_t i = 0; i < 4; i++) {
		ck_assert_int_eq(pwq_next(q, c, 0, &r[i]), 1);
		payload(want, 40000, i);
		ck_assert_uint_eq(r[i].len, 40000);
		ck_assert_uint_ge(r[i].cap, 40000);
		ck_assert_msg(memcmp(r[i].data, want, 40000) == 0, "payload of record %u", i);
	}
	seqs[0] = r[3].seq;
	seqs[1] = r[1].seq;
	seqs[2] = 999; /* unknown: ignored */
	seqs[3] = r[1].seq; /* twice: no effect */
	pwq_ack_many(q, c, seqs, 4);
	pwq_cursor_stat(q, c, &st);
	ck_assert_uint_eq(st.committed.seq, r[0].seq); /* record 0 is still out */
	seqs[0] = r[2].seq;
	seqs[1] = r[0].seq;
	pwq_ack_many(q, c, seqs, 2);
	pwq_cursor_stat(q, c, &st);
	ck_assert_uint_eq(st.committed.seq, r[3].seq + 1);
	ck_assert_uint_eq(st.backlog_records, 1);
	/* Given back, the buffers serve the next reads. */
	for (int i = 0; i < 4; i++)
		pw_bufcache_put(&bufs, r[i].data, r[i].cap);
	ck_assert_uint_eq(bufs.count, 4);
	ck_assert_int_eq(pwq_next(q, c, 0, &r[4]), 1);
	ck_assert_uint_eq(bufs.count, 3);
	ck_assert_uint_eq(bufs.hits, 1);
	payload(want, 40000, 4);
	ck_assert_msg(memcmp(r[4].data, want, 40000) == 0, "payload of record 4");
	pw_bufcache_put(&bufs, r[4].data, r[4].cap);
	pwq_close(q);
	pw_bufcache_destroy(&bufs);
	free(want);
}
END_TEST

START_TEST(test_expired_records_skipped)
{
	struct pwq_opts o = opts(1 << 20, false, true);
	struct pwq *q = open_ok(&o);
	struct pwq_cursor *c = pwq_cursor_get(q, "a", NULL);
	struct pwq_cursor_stat st;
	struct pwq_rec r;

	for (uint32_t i = 0; i < 5; i++)
		ck_assert_int_eq(append_n(q, i, 10, 2), PWQ_OK);
	ck_assert_int_eq(pwq_next(q, c, 1003, &r), 1);
	ck_assert_int_eq(r.created_ms, 1003);
	ck_assert_uint_eq(r.expired, 6);
	free(r.data);
	pwq_cursor_stat(q, c, &st);
	ck_assert_uint_eq(st.backlog_records, 2); /* the expired ones are acked */
	ck_assert_int_eq(pwq_next(q, c, 5000, &r), 0);
	ck_assert_uint_eq(r.expired, 2);
	pwq_close(q);
}
END_TEST

/* ---- group commit ---- */

static sem_t release_first;
static atomic_int first_done;

static void on_done_first_waits(void *user, int status)
{
	/* The flusher calls this; holding it here lets every other append
	 * pile up behind the first fsync. */
	if (atomic_exchange(&first_done, 1) == 0)
		sem_wait(&release_first);
	on_done(user, status);
}

struct appender {
	struct pwq *q;
	uint32_t base;
	atomic_int *ok;
};

#define GC_THREADS 8
#define GC_EACH 100

static void *append_main(void *arg)
{
	struct appender *a = arg;
	uint8_t buf[256];

	for (uint32_t i = 0; i < GC_EACH; i++) {
		struct iovec iov = {buf, sizeof(buf)};

		payload(buf, sizeof(buf), a->base + i);
		if (pwq_append(a->q, 1, 1, &iov, 1, on_done_first_waits, NULL) == PWQ_OK)
			atomic_fetch_add(a->ok, 1);
	}
	return NULL;
}

START_TEST(test_group_commit)
{
	struct pwq_opts o = opts(16 << 20, true, true);
	struct pwq *q = open_ok(&o);
	struct pwq_cursor *c = pwq_cursor_get(q, "a", NULL);
	struct appender a[GC_THREADS];
	pthread_t t[GC_THREADS];
	atomic_int ok = 0;
	struct iovec iov = {"x", 1};
	struct pwq_rec r;
	uint64_t n = 0;

	sem_init(&release_first, 0, 0);
	atomic_store(&first_done, 0);
	ck_assert_int_eq(pwq_append(q, 1, 1, &iov, 1, on_done_first_waits, NULL), PWQ_OK);
	/* The first fsync is done and its callback holds the flusher. */
	while (!atomic_load(&first_done))
		usleep(1000);
	for (int i = 0; i < GC_THREADS; i++) {
		a[i] = (struct appender){q, (uint32_t)(i * GC_EACH), &ok};
		ck_assert_int_eq(pthread_create(&t[i], NULL, append_main, &a[i]), 0);
	}
	for (int i = 0; i < GC_THREADS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&ok), GC_THREADS * GC_EACH);
	ck_assert_uint_eq(C.done_ok, 0);
	sem_post(&release_first);
	wait_done(1 + GC_THREADS * GC_EACH);
	ck_assert_uint_eq(C.done_ok, 1 + GC_THREADS * GC_EACH);
	/* One fsync for the first record, one for the 800 written meanwhile. */
	pthread_mutex_lock(&C.mu);
	ck_assert_uint_eq(C.fsyncs, 2);
	ck_assert_uint_eq(C.fsynced_records, 1 + GC_THREADS * GC_EACH);
	pthread_mutex_unlock(&C.mu);
	while (pwq_next(q, c, 0, &r) == 1) {
		free(r.data);
		n++;
	}
	ck_assert_uint_eq(n, 1 + GC_THREADS * GC_EACH);
	pwq_close(q);
	sem_destroy(&release_first);
}
END_TEST

/* ---- max_size ---- */

START_TEST(test_max_size_drop_oldest)
{
	struct pwq_opts o = opts(256 << 10, false, true);
	struct pwq *q = open_ok(&o);
	struct pwq_cursor *a = pwq_cursor_get(q, "a", NULL);
	struct pwq_cursor *b = pwq_cursor_get(q, "b", NULL);
	struct pwq_rec r;
	uint64_t read_a = 0, read_b = 0;

	/* b finishes the first 10 records before anything is dropped. */
	for (uint32_t i = 0; i < 10; i++)
		ck_assert_int_eq(append_n(q, i, 4000, 3), PWQ_OK);
	for (uint32_t i = 0; i < 10; i++) {
		expect_rec(q, b, i, 4000, &r);
		pwq_ack(q, b, r.seq);
	}
	for (uint32_t i = 10; i < 200; i++) {
		ck_assert_int_eq(append_n(q, i, 4000, 3), PWQ_OK);
		ck_assert_int_le(pwq_bytes(q), 256 << 10);
		ck_assert_int_le(du(), 256 << 10);
	}
	while (pwq_next(q, a, 0, &r) == 1) {
		read_a += r.nprofiles;
		free(r.data);
		pwq_ack(q, a, r.seq);
	}
	while (pwq_next(q, b, 0, &r) == 1) {
		read_b += r.nprofiles;
		free(r.data);
	}
	ck_assert_uint_gt(dropped("a", PWQ_DROP_FULL), 0);
	ck_assert_uint_eq(dropped("a", PWQ_DROP_FULL) + read_a, 600);
	ck_assert_uint_eq(dropped("b", PWQ_DROP_FULL) + read_b, 600 - 30);
	ck_assert_uint_eq(read_a, read_b);
	pwq_close(q);
	ck_assert_int_le(du(), 256 << 10);
}
END_TEST

START_TEST(test_max_size_refuse)
{
	struct pwq_opts o = opts(256 << 10, false, false);
	struct pwq *q = open_ok(&o);
	struct pwq_cursor *a = pwq_cursor_get(q, "a", NULL);
	struct pwq_rec r;
	uint32_t ok = 0, i = 0, n = 0;
	int st;

	while ((st = append_n(q, i++, 4000, 1)) == PWQ_OK)
		ok++;
	ck_assert_int_eq(st, PWQ_FULL);
	ck_assert_uint_gt(ok, 40);
	ck_assert_uint_eq(C.done_ok, ok); /* a refused append never calls done */
	ck_assert_int_le(du(), 256 << 10);
	ck_assert_int_eq(append_n(q, i, 4000, 1), PWQ_FULL);
	{
		uint8_t big[300 << 10];
		struct iovec iov = {big, sizeof(big)};

		memset(big, 0, sizeof(big));
		ck_assert_int_eq(pwq_append(q, 1, 1, &iov, 1, on_done, NULL), PWQ_TOO_BIG);
	}
	while (pwq_next(q, a, 0, &r) == 1) {
		free(r.data);
		pwq_ack(q, a, r.seq);
		n++;
	}
	ck_assert_uint_eq(n, ok);
	ck_assert_uint_eq(dropped("a", PWQ_DROP_FULL), 0);
	/* Acked segments are deleted: room again. */
	ck_assert_int_eq(append_n(q, i, 4000, 1), PWQ_OK);
	pwq_close(q);
}
END_TEST

/* ---- a real ENOSPC ---- */

static void mount_small(void)
{
	ck_assert_msg(geteuid() == 0, "the ENOSPC test mounts a tmpfs and needs root (CI runs as "
				      "root)");
	ck_assert_int_eq(mkdir(D, 0700), 0);
	ck_assert_msg(mount("tmpfs", D, "tmpfs", 0, "size=1m") == 0, "mount tmpfs: %s",
		      strerror(errno));
}

static void check_clean_on_disk(void)
{
	struct strbuf sb = STRBUF_INIT;
	char *err = NULL;
	json_t *j;

	ck_assert_int_eq(pwq_inspect(D, &sb, &err), 0);
	j = json_loads(sb.data, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "torn_tail_bytes")), 0);
	ck_assert_int_eq(
		json_integer_value(json_object_get(json_object_get(j, "damaged"), "spans")), 0);
	json_decref(j);
	strbuf_free(&sb);
}

static void enospc_run(bool drop)
{
	/* max_size far above the disk: the disk fills first. With drop_oldest
	 * four segments fit on it; with refuse one segment outgrows the disk,
	 * so writes fail half-way through a record. */
	struct pwq_opts o = opts(drop ? 4 << 20 : 32 << 20, true, drop);
	struct pwq *q;
	struct pwq_cursor *a;
	struct pwq_rec r;
	uint64_t ok = 0, got = 0, full = 0;

	mount_small();
	q = open_ok(&o);
	a = pwq_cursor_get(q, "a", NULL);
	for (uint32_t i = 0; i < 150; i++) {
		int st = append_n(q, i, 16000, 1);

		if (st == PWQ_OK) {
			ok++;
			wait_done(ok);
		} else {
			ck_assert_int_eq(st, PWQ_FULL);
			full++;
		}
	}
	ck_assert_uint_eq(C.done_io, 0);
	/* Failed writes were cut back: the files hold exactly what the store
	 * counts, whole records only. */
	ck_assert_int_eq(du(), pwq_bytes(q));
	if (drop) {
		ck_assert_uint_eq(full, 0);
		ck_assert_uint_gt(dropped("a", PWQ_DROP_FULL), 0);
	} else {
		ck_assert_uint_gt(full, 50);
		ck_assert_uint_eq(dropped("a", PWQ_DROP_FULL), 0);
	}
	/* Every acknowledged record is read back whole, or counted dropped. */
	while (pwq_next(q, a, 0, &r) == 1) {
		uint8_t want[16000];
		uint32_t idx;

		memcpy(&idx, r.data, 4);
		payload(want, sizeof(want), idx);
		ck_assert_uint_eq(r.len, 16000);
		ck_assert(memcmp(r.data, want, sizeof(want)) == 0);
		free(r.data);
		pwq_ack(q, a, r.seq);
		got++;
	}
	ck_assert_uint_eq(got + dropped("a", PWQ_DROP_FULL), ok);
	ck_assert_uint_eq(dropped("a", PWQ_DROP_CORRUPT), 0);
	/* Space freed by the acks: appends resume. */
	for (uint32_t i = 0; i < 20; i++) {
		ck_assert_int_eq(append_n(q, 1000 + i, 16000, 1), PWQ_OK);
		wait_done(++ok);
	}
	ck_assert_uint_eq(C.done_io, 0);
	pwq_close(q);
	check_clean_on_disk();
	ck_assert_int_eq(umount2(D, MNT_DETACH), 0);
}

START_TEST(test_enospc_drop_oldest)
{
	enospc_run(true);
}
END_TEST

START_TEST(test_enospc_refuse)
{
	enospc_run(false);
}
END_TEST

/* ---- damaged files ---- */

#define DMG_LEN 1000
#define DMG_N 60
#define DMG_REC PWQ_REC_SIZE(DMG_LEN)

enum damage {
	FLIP_MIDDLE,
	FLIP_LAST_SEG,
	TRUNCATED_TAIL,
	ZERO_PAGE,
	GARBAGE_APPENDED,
	GARBAGE_MIDDLE_SEG,
	BAD_SEG_HEADER,
	GARBAGE_SEG,
};

static void build_store(uint32_t n)
{
	struct pwq_opts o = opts(256 << 10, false, true);
	struct pwq *q = open_ok(&o);

	ck_assert_ptr_nonnull(pwq_cursor_get(q, "a", NULL));
	for (uint32_t i = 0; i < n; i++)
		ck_assert_int_eq(append_n(q, i, DMG_LEN, 1), PWQ_OK);
	pwq_close(q);
}

static void write_at(const char *path, off_t off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static void garbage(uint8_t *buf, size_t len)
{
	uint32_t x = 2463534242u;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (uint8_t)x;
	}
}

static off_t rec_off(uint32_t k)
{
	return (off_t)(PWQ_SEG_HDR + k * DMG_REC);
}

/* Damages the store; returns the record numbers that are lost. */
static uint32_t damage(enum damage d, uint32_t per_seg, bool *lost)
{
	char segs[8][600];
	size_t nseg = seg_paths(segs, 8);
	uint8_t buf[16384];
	struct stat st;
	uint32_t n = 0;

	ck_assert_uint_ge(nseg, 4);
	ck_assert_int_eq(stat(segs[nseg - 1], &st), 0);
	switch (d) {
	case FLIP_MIDDLE:
	case FLIP_LAST_SEG: {
		size_t s = d == FLIP_MIDDLE ? 1 : nseg - 1;
		uint8_t b = 0x5a;

		write_at(segs[s], rec_off(7) + 100, &b, 1);
		lost[s * per_seg + 7] = true;
		n = 1;
		break;
	}
	case TRUNCATED_TAIL:
		/* A torn last record was never acknowledged: not counted. */
		ck_assert_int_eq(truncate(segs[nseg - 1], st.st_size - 500), 0);
		lost[DMG_N - 1] = true;
		break;
	case ZERO_PAGE:
		memset(buf, 0, 4096);
		write_at(segs[2], 4096, buf, 4096);
		for (uint32_t k = 0; k < per_seg; k++) {
			if (rec_off(k) < 8192 && rec_off(k) + (off_t)DMG_REC > 4096) {
				lost[2 * per_seg + k] = true;
				n++;
			}
		}
		break;
	case GARBAGE_APPENDED:
	case GARBAGE_MIDDLE_SEG: {
		const char *p = d == GARBAGE_APPENDED ? segs[nseg - 1] : segs[1];
		struct stat ps;

		ck_assert_int_eq(stat(p, &ps), 0);
		garbage(buf, 3000);
		write_at(p, ps.st_size, buf, 3000);
		break;
	}
	case BAD_SEG_HEADER: {
		uint8_t b = 0xee;

		write_at(segs[2], 10, &b, 1);
		break;
	}
	case GARBAGE_SEG: {
		struct stat ps;

		ck_assert_int_eq(stat(segs[1], &ps), 0);
		ck_assert_uint_le(ps.st_size, sizeof(buf));
		garbage(buf, (size_t)ps.st_size);
		write_at(segs[1], 0, buf, (size_t)ps.st_size);
		for (uint32_t k = 0; k < per_seg; k++)
			lost[per_seg + k] = true;
		n = per_seg;
		break;
	}
	}
	return n;
}

static const struct {
	enum damage d;
	const char *name;
} damages[] = {
	{FLIP_MIDDLE, "flipped byte in a middle record"},
	{FLIP_LAST_SEG, "flipped byte in the last segment"},
	{TRUNCATED_TAIL, "truncated tail"},
	{ZERO_PAGE, "zero-filled 4 KiB page"},
	{GARBAGE_APPENDED, "garbage appended"},
	{GARBAGE_MIDDLE_SEG, "garbage appended to a middle segment"},
	{BAD_SEG_HEADER, "damaged segment header"},
	{GARBAGE_SEG, "a whole segment of garbage"},
};

START_TEST(test_damaged_files)
{
	const uint32_t per_seg = (uint32_t)((16384 - PWQ_SEG_HDR) / DMG_REC);
	bool lost[DMG_N] = {false};
	uint32_t nlost, want = 0, got = 0;
	struct pwq_opts o = opts(256 << 10, false, true);
	struct pwq *q;
	struct pwq_cursor *c;
	struct pwq_rec r;

	build_store(DMG_N);
	nlost = damage(damages[_i].d, per_seg, lost);
	q = open_ok(&o);
	c = pwq_cursor_get(q, "a", NULL);
	for (uint32_t i = 0; i < DMG_N; i++) {
		if (lost[i])
			continue;
		want++;
		expect_rec(q, c, i, DMG_LEN, &r);
		pwq_ack(q, c, r.seq);
		got++;
	}
	ck_assert_int_eq(pwq_next(q, c, 0, &r), 0);
	ck_assert_uint_eq(got, want);
	ck_assert_msg(dropped("a", PWQ_DROP_CORRUPT) == nlost, "%s: %llu corrupt, want %u",
		      damages[_i].name, (unsigned long long)dropped("a", PWQ_DROP_CORRUPT), nlost);
	/* Appends go on after the damage, and are read. */
	ck_assert_int_eq(append_n(q, 500, DMG_LEN, 1), PWQ_OK);
	expect_rec(q, c, 500, DMG_LEN, &r);
	ck_assert_uint_eq(dropped("a", PWQ_DROP_CORRUPT), nlost);
	pwq_close(q);
}
END_TEST

START_TEST(test_damaged_cursors_file)
{
	struct pwq_opts o = opts(256 << 10, false, true);
	struct pwq *q = open_ok(&o);
	struct pwq_cursor *c = pwq_cursor_get(q, "a", NULL);
	struct pwq_rec r;
	char path[128];
	uint8_t b = 0x42;
	uint64_t backlog;

	for (uint32_t i = 0; i < 20; i++)
		ck_assert_int_eq(append_n(q, i, 100, 1), PWQ_OK);
	for (uint32_t i = 0; i < 10; i++) {
		expect_rec(q, c, i, 100, &r);
		pwq_ack(q, c, r.seq);
	}
	pwq_close(q);
	snprintf(path, sizeof(path), "%s/cursors", D);
	write_at(path, 14, &b, 1);
	q = open_ok(&o);
	/* Duplicates rather than loss: every cursor starts at the oldest. */
	c = pwq_cursor_get(q, "a", &backlog);
	ck_assert_uint_eq(backlog, 20);
	for (uint32_t i = 0; i < 20; i++)
		expect_rec(q, c, i, 100, &r);
	ck_assert_int_eq(pwq_next(q, c, 0, &r), 0);
	ck_assert_uint_eq(dropped("a", PWQ_DROP_CORRUPT), 0);
	pwq_close(q);
}
END_TEST

/* ---- the lock and inspect ---- */

START_TEST(test_lock)
{
	struct pwq_opts o = opts(1 << 20, true, true);
	struct pwq *q = open_ok(&o), *q2;
	char *err = NULL;

	q2 = pwq_open(&o, &err);
	ck_assert_ptr_null(q2);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err, D));
	ck_assert_ptr_nonnull(strstr(err, "in use by another process"));
	free(err);
	pwq_close(q);
	q = open_ok(&o);
	pwq_close(q);
}
END_TEST

/* Names, sizes and modification times of the directory's files. */
static char *listing(void)
{
	struct strbuf sb = STRBUF_INIT;
	struct dirent **list;
	int n = scandir(D, &list, NULL, alphasort);

	ck_assert_int_ge(n, 0);
	for (int i = 0; i < n; i++) {
		char p[600];
		struct stat st;

		snprintf(p, sizeof(p), "%s/%s", D, list[i]->d_name);
		ck_assert_int_eq(stat(p, &st), 0);
		strbuf_printf(&sb, "%s %lld %lld.%09ld\n", list[i]->d_name, (long long)st.st_size,
			      (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
		free(list[i]);
	}
	free(list);
	return strbuf_detach(&sb, NULL);
}

static json_t *cursor_obj(json_t *j, const char *name)
{
	json_t *cs = json_object_get(j, "cursors"), *c;
	size_t i;

	json_array_foreach(cs, i, c) if (strcmp(json_string_value(json_object_get(c, "name")),
						name) == 0) return c;
	ck_abort_msg("no cursor %s", name);
	return NULL;
}

START_TEST(test_inspect)
{
	struct pwq_opts o = opts(256 << 10, false, true);
	struct pwq *q = open_ok(&o);
	struct pwq_cursor *a = pwq_cursor_get(q, "a", NULL);
	struct strbuf sb = STRBUF_INIT;
	struct pwq_rec r;
	char *err = NULL, *before, *after;
	json_t *j, *c;
	uint32_t per_seg = (uint32_t)((16384 - PWQ_SEG_HDR) / DMG_REC);
	bool lost[DMG_N] = {false};

	ck_assert_ptr_nonnull(pwq_cursor_get(q, "b", NULL));
	for (uint32_t i = 0; i < DMG_N; i++)
		ck_assert_int_eq(append_n(q, i, DMG_LEN, 2), PWQ_OK);
	for (uint32_t i = 0; i < 10; i++) {
		expect_rec(q, a, i, DMG_LEN, &r);
		pwq_ack(q, a, r.seq);
	}
	ck_assert_int_eq(pwq_checkpoint(q), 0);
	/* With the store open (and locked): inspect takes no lock. */
	before = listing();
	ck_assert_int_eq(pwq_inspect(D, &sb, &err), 0);
	after = listing();
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
	j = json_loads(sb.data, 0, NULL);
	ck_assert_msg(j != NULL, "%s", sb.data);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "records")), DMG_N);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "profiles")), 2 * DMG_N);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "bytes")), pwq_bytes(q));
	ck_assert_str_eq(json_string_value(json_object_get(j, "cursors_file")), "ok");
	c = cursor_obj(j, "a");
	ck_assert_int_eq(json_integer_value(json_object_get(c, "backlog_records")), DMG_N - 10);
	ck_assert_int_eq(json_integer_value(json_object_get(c, "backlog_profiles")),
			 2 * (DMG_N - 10));
	ck_assert(json_real_value(json_object_get(c, "oldest_age_seconds")) > 1e9);
	c = cursor_obj(j, "b");
	ck_assert_int_eq(json_integer_value(json_object_get(c, "backlog_records")), DMG_N);
	json_decref(j);
	pwq_close(q);

	/* Damage is reported with where it is. */
	damage(FLIP_MIDDLE, per_seg, lost);
	strbuf_reset(&sb);
	ck_assert_int_eq(pwq_inspect(D, &sb, &err), 0);
	j = json_loads(sb.data, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "records")), DMG_N - 1);
	c = json_object_get(j, "damaged");
	ck_assert_int_eq(json_integer_value(json_object_get(c, "records")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(c, "spans")), 1);
	c = json_array_get(json_object_get(c, "where"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(c, "offset")), rec_off(7));
	ck_assert_str_eq(json_string_value(json_object_get(c, "segment")), "0000000000000002.seg");
	json_decref(j);
	strbuf_free(&sb);
	ck_assert_int_eq(pwq_inspect("/nonexistent/queue", &sb, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/queue"));
	free(err);
	strbuf_free(&sb);
}
END_TEST

/* ---- the recovery reader as a pure function ---- */

struct scan_count {
	uint64_t records, damage;
};

static void count_ev(void *arg, const struct pwq_scan_ev *ev)
{
	struct scan_count *s = arg;

	if (ev->kind == PWQ_SCAN_RECORD)
		s->records++;
	else
		s->damage += ev->size;
}

START_TEST(test_scan_buffer)
{
	uint8_t buf[PWQ_SEG_HDR + 3 * 48 + 16];
	struct pwq_rechdr h = {.len = 5, .nprofiles = 1};
	struct scan_count sc = {0};
	struct pwq_scan_res res;

	memset(buf, 0, sizeof(buf));
	pwq_seghdr_encode(buf, 7, 1);
	for (int i = 0; i < 3; i++) {
		uint8_t *p = buf + PWQ_SEG_HDR + i * 48;

		h.seq = (uint64_t)i + 1;
		h.cum = h.seq;
		memcpy(p + PWQ_REC_HDR, "hello", 5);
		pwq_rechdr_encode(p, &h);
		h.crc = pwx_crc32c(pwx_crc32c(0, p, 36), p + PWQ_REC_HDR, 5);
		pwq_rechdr_encode(p, &h);
	}
	memset(buf + PWQ_SEG_HDR + 3 * 48, 0xab, 16); /* a torn tail */
	ck_assert_uint_eq(pwq_scan_segment(buf, sizeof(buf), count_ev, &sc, &res),
			  PWQ_SEG_HDR + 3 * 48);
	ck_assert(res.header_ok);
	ck_assert_uint_eq(res.hdr.id, 7);
	ck_assert_uint_eq(sc.records, 3);
	ck_assert_uint_eq(sc.damage, 16);
	buf[PWQ_SEG_HDR + 48 + 41] ^= 1; /* the second record's payload */
	memset(&sc, 0, sizeof(sc));
	pwq_scan_segment(buf, sizeof(buf), count_ev, &sc, &res);
	ck_assert_uint_eq(sc.records, 2);
	ck_assert_uint_eq(res.damaged_spans, 2);
	ck_assert_uint_eq(pwq_scan_segment(buf, 10, NULL, NULL, NULL), 0);
}
END_TEST

static Suite *qstore_suite(void)
{
	Suite *s = suite_create("qstore");
	TCase *tc = tcase_create("store");
	TCase *disk = tcase_create("enospc");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_crc32c_vectors);
	tcase_add_test(tc, test_crc32c_combine);
	tcase_add_test(tc, test_crc32c_long_buffers);
	tcase_add_test(tc, test_scan_buffer);
	tcase_add_test(tc, test_round_trip_many_segments);
	tcase_add_test(tc, test_restart_resumes_from_committed);
	tcase_add_test(tc, test_out_of_order_acks);
	tcase_add_test(tc, test_ack_many_and_buffer_cache);
	tcase_add_test(tc, test_expired_records_skipped);
	tcase_add_test(tc, test_group_commit);
	tcase_add_test(tc, test_max_size_drop_oldest);
	tcase_add_test(tc, test_max_size_refuse);
	tcase_add_loop_test(tc, test_damaged_files, 0, (int)(sizeof(damages) / sizeof(damages[0])));
	tcase_add_test(tc, test_damaged_cursors_file);
	tcase_add_test(tc, test_lock);
	tcase_add_test(tc, test_inspect);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(disk, setup, teardown);
	tcase_set_timeout(disk, 120);
	tcase_add_test(disk, test_enospc_drop_oldest);
	tcase_add_test(disk, test_enospc_refuse);
	suite_add_tcase(s, disk);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(qstore_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
