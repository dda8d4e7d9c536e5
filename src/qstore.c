/*
 * qstore.c - the durable queue's store: segments on disk, appends with
 * group commit, cursors with out-of-order acks, recovery at open.
 *
 * One mutex (mu) guards everything in struct pwq and the cursors, except
 * each cursor's reader fd, which only the thread calling pwq_next uses.
 * File reads happen outside mu; writes of records happen under it, so the
 * tail only ever grows by whole records. The flusher thread fsyncs outside
 * mu: an fd it syncs is never closed by anyone else meanwhile (a sealed
 * tail moves to the `old` list, which only the flusher empties).
 */
#define _GNU_SOURCE
#include "qstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "qstore_format.h"
#include "util/clock.h"
#include "util/crc32c.h"

#define SEG_MIN (16 << 10)
#define SEG_MAX ((int64_t)64 << 20)
#define CKPT_PERIOD_NS 1000000000LL

struct seg {
	uint64_t id, size;
	bool start_known; /* first_seq and first_cum loaded */
	uint64_t first_seq, first_cum;
};

struct inflight {
	uint64_t seq;
	int64_t created_ms;
	struct pwq_pos next; /* where the record after it starts */
	bool done;
};

struct pwq_cursor {
	char *name;
	struct pwq_pos committed, read;
	bool asked; /* pwq_cursor_get()ed since open */
	uint64_t epoch; /* bumped when the store moves the read position */
	struct inflight *fl; /* read, not yet settled, in seq order */
	size_t nfl, capfl;
	uint32_t acks; /* since the last checkpoint */
	/* The reader's segment, kept open between reads; changed only under
	 * the store lock (reads go through a duplicate, so deleting the
	 * segment may close it at any time and give its space back). */
	int fd;
	uint64_t fd_seg;
	uint64_t oldest_seq; /* cache of pwq_cursor_stat */
	int64_t oldest_ms;
};

struct pend {
	void (*done)(void *user, int status);
	void *user;
	uint64_t seg;
	bool failed;
};

struct oldfd {
	int fd;
	uint64_t seg;
};

struct pwq {
	struct pwq_opts o;
	char *dir;
	int dirfd, lockfd;
	pthread_mutex_t mu, ckpt_mu;
	pthread_cond_t cond; /* wakes the flusher */
	pthread_t flusher;
	bool flusher_started, stop;

	struct seg *segs; /* ascending ids; the last one is the tail when tail_fd >= 0 */
	size_t nsegs, capsegs;
	int tail_fd; /* -1: the next append starts segment next_seg_id */
	uint64_t next_seg_id, next_seq, tail_cum, target;
	int64_t seg_bytes, cur_bytes;

	struct pend *pend; /* appends waiting for an fsync (fsync_always) */
	size_t npend, cappend;
	struct oldfd *old; /* sealed segments the flusher still has to fsync */
	size_t nold, capold;
	uint64_t unsynced; /* records written since the last fsync started */
	bool dir_dirty, ckpt_wanted, ckpt_dirty, cursors_lost;
	int64_t next_sync_ns, next_ckpt_ns;

	struct pwq_cursor **cur;
	size_t ncur, capcur;
};

const char *pwq_strstatus(int status)
{
	switch (status) {
	case PWQ_OK:
		return "ok";
	case PWQ_FULL:
		return "queue full";
	case PWQ_TOO_BIG:
		return "record larger than the queue";
	case PWQ_IO:
		return "queue I/O error";
	case PWQ_NOMEM:
		return "out of memory";
	}
	return "unknown status";
}

/* Grows *arr (of *cap elements of size sz) to hold n; -1 when out of memory. */
static int grow(void *arr, size_t *cap, size_t n, size_t sz)
{
	void **p = arr;
	size_t c = *cap ? *cap : 8;
	void *np;

	if (n <= *cap)
		return 0;
	while (c < n)
		c *= 2;
	np = realloc(*p, c * sz);
	if (!np)
		return -1;
	*p = np;
	*cap = c;
	return 0;
}

static void qlog(struct pwq *q, enum component_log_level lvl, const char *msg, uint64_t seg,
		 uint64_t off, const char *k3, uint64_t v3)
{
	char name[24], o[24], v[24];

	if (!pw_log_enabled(&q->o.log, lvl))
		return;
	pwq_seg_name(name, seg);
	snprintf(o, sizeof(o), "%" PRIu64, off);
	snprintf(v, sizeof(v), "%" PRIu64, v3);
	pw_log(&q->o.log, lvl, msg, "dir", q->dir, "segment", name, "offset", o, k3, k3 ? v : NULL,
	       PW_LOG_END);
}

static void qlog_errno(struct pwq *q, const char *msg, const char *what, int err)
{
	pw_log(&q->o.log, COMPONENT_LOG_ERROR, msg, "dir", q->dir, "file", what, "error",
	       strerror(err), PW_LOG_END);
}

static void bytes_changed_locked(struct pwq *q)
{
	if (q->o.on_bytes)
		q->o.on_bytes(q->o.arg, q->seg_bytes + q->cur_bytes);
}

static bool tail_open_locked(const struct pwq *q, size_t i)
{
	return q->tail_fd >= 0 && i + 1 == q->nsegs;
}

/* Index of the first segment with id >= id (nsegs when none). */
static size_t seg_lower(const struct pwq *q, uint64_t id)
{
	size_t lo = 0, hi = q->nsegs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (q->segs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int seg_open(struct pwq *q, uint64_t id, int flags)
{
	char name[24];

	pwq_seg_name(name, id);
	return openat(q->dirfd, name, flags | O_CLOEXEC, 0600);
}

static void seg_unlink_locked(struct pwq *q, size_t i)
{
	char name[24];

	pwq_seg_name(name, q->segs[i].id);
	if (unlinkat(q->dirfd, name, 0) != 0 && errno != ENOENT)
		qlog_errno(q, "queue: cannot delete a segment", name, errno);
	/* Its space comes back only once no fd holds it: a sealed segment
	 * waiting for the flusher needs no fsync any more. */
	for (size_t k = 0; k < q->nold; k++) {
		if (q->old[k].seg == q->segs[i].id) {
			close(q->old[k].fd);
			q->old[k] = q->old[--q->nold];
			break;
		}
	}
	/* Readers hold the segment open between reads: close those too, or a
	 * full disk stays full until each reader moves on. */
	for (size_t k = 0; k < q->ncur; k++) {
		struct pwq_cursor *c = q->cur[k];

		if (c->fd >= 0 && c->fd_seg == q->segs[i].id) {
			close(c->fd);
			c->fd = -1;
		}
	}
	q->seg_bytes -= (int64_t)q->segs[i].size;
	memmove(q->segs + i, q->segs + i + 1, (q->nsegs - i - 1) * sizeof(*q->segs));
	q->nsegs--;
}

/* The position after the last record. */
static struct pwq_pos end_pos_locked(const struct pwq *q)
{
	struct pwq_pos p = {q->next_seg_id, PWQ_SEG_HDR, q->next_seq, q->tail_cum};

	if (q->tail_fd >= 0) {
		p.seg = q->segs[q->nsegs - 1].id;
		p.off = q->segs[q->nsegs - 1].size;
	}
	return p;
}

/* Where segment i's first record starts. Segments from before open are read
 * once, lazily: the header's first seq and the first valid record's cum. */
static struct pwq_pos seg_start_locked(struct pwq *q, size_t i)
{
	struct seg *s = &q->segs[i];

	if (!s->start_known) {
		uint8_t hb[PWQ_SEG_HDR];
		struct pwq_seghdr sh = {0};
		struct pwq_rechdr h = {0};
		uint64_t at;
		bool hok = false;
		int fd = seg_open(q, s->id, O_RDONLY), r = -1;

		if (fd >= 0) {
			hok = pread(fd, hb, sizeof(hb), 0) == (ssize_t)sizeof(hb) &&
			      pwq_seghdr_decode(hb, sizeof(hb), &sh);
			r = pwq_read_record(fd, PWQ_SEG_HDR, s->size, &h, NULL, NULL, NULL, &at);
			close(fd);
		}
		if (r == 1) {
			s->first_seq = hok && sh.first_seq <= h.seq ? sh.first_seq : h.seq;
			s->first_cum = h.cum - h.nprofiles;
		} else {
			/* Nothing readable in it: it starts where the next one does. */
			struct pwq_pos n =
				i + 1 < q->nsegs ? seg_start_locked(q, i + 1) : end_pos_locked(q);

			s->first_seq = hok && sh.first_seq <= n.seq ? sh.first_seq : n.seq;
			s->first_cum = n.cum;
		}
		s->start_known = true;
	}
	return (struct pwq_pos){s->id, PWQ_SEG_HDR, s->first_seq, s->first_cum};
}

/* Moves pos to where n is; with keep, its seq and cum stay. */
static void pos_move(struct pwq_pos *pos, const struct pwq_pos *n, bool keep)
{
	pos->seg = n->seg;
	pos->off = n->off;
	if (!keep) {
		pos->seq = n->seq;
		pos->cum = n->cum;
	}
}

/*
 * Makes pos point at a record start in an existing segment, or at the end.
 * keep: pos is a read position moving forward; its seq and cum stay what
 * the reader expects next, so records lost at the end of a segment show up
 * as a seq gap. Otherwise a position in a deleted segment takes the start of
 * the next one.
 */
static void normalize_locked(struct pwq *q, struct pwq_pos *pos, bool keep)
{
	for (;;) {
		size_t i = seg_lower(q, pos->seg);
		struct pwq_pos n;

		if (i == q->nsegs) {
			n = end_pos_locked(q);
			if (pos->seg != n.seg || pos->off != n.off)
				pos_move(pos, &n, keep);
			return;
		}
		if (q->segs[i].id != pos->seg) {
			n = seg_start_locked(q, i);
			pos_move(pos, &n, keep);
			return;
		}
		if (pos->off < PWQ_SEG_HDR)
			pos->off = PWQ_SEG_HDR;
		if (pos->off < q->segs[i].size)
			return;
		if (tail_open_locked(q, i)) {
			pos->off = q->segs[i].size;
			return;
		}
		/* The end of a sealed segment: on to the next one. */
		pos->seg++;
		pos->off = PWQ_SEG_HDR;
		keep = true;
	}
}

static bool pos_before(const struct pwq_pos *a, const struct pwq_pos *b)
{
	return a->seg < b->seg || (a->seg == b->seg && a->off < b->off);
}

/* Whether pos is past all of segment i. */
static bool passed_locked(const struct pwq *q, const struct pwq_pos *pos, size_t i)
{
	const struct seg *s = &q->segs[i];

	return pos->seg > s->id ||
	       (pos->seg == s->id && !tail_open_locked(q, i) && pos->off >= s->size);
}

/* Deletes the oldest segments every cursor has passed. Without cursors
 * nothing is deleted: only max_size makes room then. */
static void gc_locked(struct pwq *q)
{
	bool changed = false;

	if (q->ncur == 0)
		return;
	while (q->nsegs > 0 && !tail_open_locked(q, 0)) {
		for (size_t k = 0; k < q->ncur; k++)
			if (!passed_locked(q, &q->cur[k]->committed, 0))
				goto out;
		seg_unlink_locked(q, 0);
		changed = true;
	}
out:
	if (changed)
		bytes_changed_locked(q);
}

/* Moves the committed position over the done prefix of what was read. */
static void settle_locked(struct pwq *q, struct pwq_cursor *c)
{
	struct pwq_pos before = c->committed;
	size_t k = 0;

	while (k < c->nfl && c->fl[k].done)
		c->committed = c->fl[k++].next;
	if (k) {
		memmove(c->fl, c->fl + k, (c->nfl - k) * sizeof(*c->fl));
		c->nfl -= k;
	}
	if (c->nfl == 0)
		c->committed = c->read;
	if (memcmp(&before, &c->committed, sizeof(before)) != 0) {
		q->ckpt_dirty = true;
		gc_locked(q);
	}
}

/* ---- the flusher ---- */

static void old_push_locked(struct pwq *q, int fd, uint64_t seg)
{
	if (grow(&q->old, &q->capold, q->nold + 1, sizeof(*q->old)) == 0) {
		q->old[q->nold++] = (struct oldfd){fd, seg};
		return;
	}
	/* No memory to defer it: sync now rather than lose track. */
	if (fdatasync(fd) != 0)
		qlog_errno(q, "queue: fsync failed", "segment", errno);
	close(fd);
}

/* The next append starts a new segment; the old tail is synced later. */
static void seal_tail_locked(struct pwq *q)
{
	if (q->tail_fd < 0)
		return;
	old_push_locked(q, q->tail_fd, q->segs[q->nsegs - 1].id);
	q->tail_fd = -1;
}

/* After a failed fsync the page cache of segment seg cannot be trusted:
 * stop writing to it, and fail whatever waits for it. By segment id, not
 * fd: the fd the flusher synced was its own duplicate. */
static void fsync_failed_locked(struct pwq *q, uint64_t seg, struct pend *taken, size_t ntaken)
{
	qlog(q, COMPONENT_LOG_ERROR, "queue: fsync failed, segment sealed", seg, 0, NULL, 0);
	if (q->tail_fd >= 0 && q->nsegs > 0 && q->segs[q->nsegs - 1].id == seg) {
		close(q->tail_fd);
		q->tail_fd = -1;
	}
	/* Sealed meanwhile and waiting for the next round: a second fsync
	 * could report success for pages already lost. */
	for (size_t i = 0; i < q->nold; i++) {
		if (q->old[i].seg == seg) {
			close(q->old[i].fd);
			q->old[i] = q->old[--q->nold];
			break;
		}
	}
	for (size_t i = 0; i < ntaken; i++)
		if (taken[i].seg == seg)
			taken[i].failed = true;
	for (size_t i = 0; i < q->npend; i++)
		if (q->pend[i].seg == seg)
			q->pend[i].failed = true;
}

static double now_diff(int64_t t0)
{
	return (double)(pwx_now_ns() - t0) / 1e9;
}

/* One group commit: everything written so far, synced outside the lock,
 * then the done callbacks (outside the lock too). */
static void sync_round_locked(struct pwq *q)
{
	struct pend *taken = q->pend;
	size_t ntaken = q->npend, records = q->o.fsync_always ? q->npend : q->unsynced;
	struct oldfd *old = q->old;
	size_t nold = q->nold;
	/* The tail is synced through a duplicate: appenders may seal it and
	 * drop_oldest may delete and close it while the lock is not held, and
	 * its number could then name another file. */
	int fd = q->tail_fd >= 0 ? fcntl(q->tail_fd, F_DUPFD_CLOEXEC, 0) : -1, dir_err = 0;
	bool have_tail = q->tail_fd >= 0;
	uint64_t tail_id = have_tail ? q->segs[q->nsegs - 1].id : 0;
	bool dirsync = q->dir_dirty, tail_bad = false;
	uint64_t *bad_old = NULL;
	size_t nbad = 0;
	int64_t t0;

	q->pend = NULL;
	q->npend = q->cappend = 0;
	q->old = NULL;
	q->nold = q->capold = 0;
	q->unsynced = 0;
	q->dir_dirty = false;
	pthread_mutex_unlock(&q->mu);

	t0 = pwx_now_ns();
	bad_old = calloc(nold ? nold : 1, sizeof(*bad_old));
	for (size_t i = 0; i < nold; i++) {
		if (fdatasync(old[i].fd) != 0 && bad_old)
			bad_old[nbad++] = old[i].seg;
		close(old[i].fd);
	}
	if (fd >= 0) {
		if (fdatasync(fd) != 0)
			tail_bad = true;
		close(fd);
	} else if (have_tail) {
		/* No fd left for a duplicate: sync the tail under the lock. */
		pthread_mutex_lock(&q->mu);
		if (q->tail_fd >= 0 && q->segs[q->nsegs - 1].id == tail_id &&
		    fdatasync(q->tail_fd) != 0)
			tail_bad = true;
		pthread_mutex_unlock(&q->mu);
	}
	if (dirsync && fsync(q->dirfd) != 0)
		dir_err = errno;
	double secs = now_diff(t0);

	pthread_mutex_lock(&q->mu);
	if (q->o.on_fsync && (records || nold || have_tail))
		q->o.on_fsync(q->o.arg, secs, records);
	if (tail_bad)
		fsync_failed_locked(q, tail_id, taken, ntaken);
	for (size_t i = 0; i < nbad; i++)
		fsync_failed_locked(q, bad_old[i], taken, ntaken);
	if (dir_err) {
		qlog_errno(q, "queue: fsync of the directory failed", ".", dir_err);
		q->dir_dirty = true;
	}
	pthread_mutex_unlock(&q->mu);
	for (size_t i = 0; i < ntaken; i++)
		if (taken[i].done)
			taken[i].done(taken[i].user, taken[i].failed || dir_err ? PWQ_IO : PWQ_OK);
	free(taken);
	free(old);
	free(bad_old);
	pthread_mutex_lock(&q->mu);
}

static bool want_sync_locked(const struct pwq *q, int64_t now)
{
	if (q->o.fsync_always)
		return q->npend || q->nold || q->dir_dirty;
	if (!q->unsynced && !q->nold && !q->dir_dirty)
		return false;
	return q->stop || now >= q->next_sync_ns;
}

static void *flusher_main(void *arg)
{
	struct pwq *q = arg;

	pthread_setname_np(pthread_self(), "pw-qflush");

	pthread_mutex_lock(&q->mu);
	for (;;) {
		int64_t now = pwx_now_ns(), wake;
		bool sync = want_sync_locked(q, now);
		bool ckpt = q->ckpt_wanted || (q->ckpt_dirty && now >= q->next_ckpt_ns);

		if (sync) {
			sync_round_locked(q);
			if (!q->o.fsync_always)
				q->next_sync_ns = pwx_now_ns() + q->o.fsync_interval_ns;
		}
		if (ckpt && !q->stop) {
			q->ckpt_wanted = false;
			q->next_ckpt_ns = now + CKPT_PERIOD_NS;
			pthread_mutex_unlock(&q->mu);
			pwq_checkpoint(q);
			pthread_mutex_lock(&q->mu);
		}
		if (sync || (ckpt && !q->stop))
			continue;
		if (q->stop)
			break;
		wake = now + CKPT_PERIOD_NS;
		if (q->ckpt_dirty && q->next_ckpt_ns < wake)
			wake = q->next_ckpt_ns;
		if (!q->o.fsync_always && q->unsynced && q->next_sync_ns < wake)
			wake = q->next_sync_ns;
		struct timespec ts = {wake / 1000000000LL, wake % 1000000000LL};
		pthread_cond_timedwait(&q->cond, &q->mu, &ts);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* ---- dropping the oldest records ---- */

/* Deletes the oldest segment to make room; every cursor that had not passed
 * it learns what it lost. -1 when nothing is left to drop. */
static int drop_oldest_locked(struct pwq *q)
{
	struct pwq_pos after;

	if (q->nsegs == 0 || (tail_open_locked(q, 0) && q->segs[0].size <= PWQ_SEG_HDR))
		return -1;
	if (q->nsegs > 1) {
		after = seg_start_locked(q, 1);
	} else {
		seal_tail_locked(q);
		after = end_pos_locked(q);
	}
	qlog(q, COMPONENT_LOG_WARN, "queue: full, dropping the oldest segment", q->segs[0].id, 0,
	     "bytes", q->segs[0].size);
	for (size_t k = 0; k < q->ncur; k++) {
		struct pwq_cursor *c = q->cur[k];
		size_t keep = 0;

		/* Only what the cursor has not read is lost: records it has
		 * read are in flight, and end as delivered or dropped there. */
		if (pos_before(&c->read, &after) && after.cum > c->read.cum && q->o.on_drop)
			q->o.on_drop(q->o.arg, c->name, PWQ_DROP_FULL, after.cum - c->read.cum);
		if (pos_before(&c->committed, &after))
			c->committed = after;
		if (pos_before(&c->read, &after)) {
			c->read = after;
			c->epoch++;
		}
		/* Acks of the dropped records are ignored from now on. */
		while (keep < c->nfl && c->fl[keep].seq < after.seq)
			keep++;
		if (keep) {
			memmove(c->fl, c->fl + keep, (c->nfl - keep) * sizeof(*c->fl));
			c->nfl -= keep;
		}
		if (c->nfl == 0)
			c->committed = c->read;
		q->ckpt_dirty = true;
	}
	seg_unlink_locked(q, 0);
	bytes_changed_locked(q);
	return 0;
}

/* When there is no room and every cursor has read and finished everything
 * in the open tail segment, that segment can go: without this a single
 * segment that outgrew a small disk would keep it full for good. */
static int reclaim_tail_locked(struct pwq *q)
{
	size_t before = q->nsegs;

	if (q->ncur == 0 || q->nsegs == 0 || q->tail_fd < 0)
		return -1;
	for (size_t k = 0; k < q->ncur; k++) {
		const struct pwq_pos *p = &q->cur[k]->committed;

		if (p->seg != q->segs[q->nsegs - 1].id || p->off < q->segs[q->nsegs - 1].size)
			return -1;
	}
	seal_tail_locked(q);
	gc_locked(q);
	return q->nsegs < before ? 0 : -1;
}

/* ---- appends ---- */

static int64_t ckpt_reserve_locked(const struct pwq *q)
{
	size_t names = 0;
	int64_t est;

	for (size_t k = 0; k < q->ncur; k++)
		names += strlen(q->cur[k]->name);
	est = (int64_t)pwq_cursors_size(q->ncur, names);
	/* The old file and cursors.tmp exist side by side while it is replaced. */
	return (q->cur_bytes > est ? q->cur_bytes : est) + est;
}

static bool no_space(int err)
{
	return err == ENOSPC || err == EDQUOT || err == EFBIG;
}

/* Writes one record at the tail, starting a segment if needed. iov[0] is
 * left for the segment header, iov[1] is the record header, then the
 * payload, whose CRC32C is pay_crc, and the padding. Returns PWQ_OK, PWQ_FULL (no
 * room: max_size or the disk), PWQ_NOMEM or PWQ_IO. */
static int write_locked(struct pwq *q, struct iovec *iov, int cnt, uint64_t rsize,
			struct pwq_rechdr *h, uint32_t pay_crc)
{
	uint8_t seghdr[PWQ_SEG_HDR];
	uint64_t off = 0, total = rsize;
	bool fresh;
	int fd, skip = 1;
	ssize_t n;

	if (q->tail_fd >= 0 && q->segs[q->nsegs - 1].size > PWQ_SEG_HDR &&
	    q->segs[q->nsegs - 1].size + rsize > q->target)
		seal_tail_locked(q);
	fresh = q->tail_fd < 0;
	if (fresh)
		total += PWQ_SEG_HDR;
	if (q->seg_bytes + (int64_t)total + ckpt_reserve_locked(q) > q->o.max_size)
		return PWQ_FULL;
	if (fresh && grow(&q->segs, &q->capsegs, q->nsegs + 1, sizeof(*q->segs)) < 0)
		return PWQ_NOMEM;

	h->seq = q->next_seq;
	h->cum = q->tail_cum + h->nprofiles;
	pwq_rechdr_encode(iov[1].iov_base, h);
	/* The payload was summed before the lock was taken. */
	h->crc = pwx_crc32c_combine(pwx_crc32c(0, iov[1].iov_base, 36), pay_crc, h->len);
	pwq_rechdr_encode(iov[1].iov_base, h);

	if (fresh) {
		fd = seg_open(q, q->next_seg_id, O_RDWR | O_CREAT | O_TRUNC);
		if (fd < 0)
			return no_space(errno) ? PWQ_FULL : PWQ_IO;
		pwq_seghdr_encode(seghdr, q->next_seg_id, q->next_seq);
		iov[0] = (struct iovec){seghdr, sizeof(seghdr)};
		skip = 0;
	} else {
		fd = q->tail_fd;
		off = q->segs[q->nsegs - 1].size;
	}
	do
		n = pwritev(fd, iov + skip, cnt - skip, (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)total) {
		int err = n < 0 ? errno : ENOSPC; /* a short write: out of room */

		if (fresh) {
			char name[24];

			close(fd);
			pwq_seg_name(name, q->next_seg_id);
			unlinkat(q->dirfd, name, 0);
		} else if (ftruncate(fd, (off_t)off) != 0 || !no_space(err)) {
			/* Cannot cut it back, or an I/O error: seal it (readers skip
			 * the partial record as damage, with no seq lost). */
			qlog(q, COMPONENT_LOG_ERROR, "queue: write failed, segment sealed",
			     q->segs[q->nsegs - 1].id, off, NULL, 0);
			seal_tail_locked(q);
		}
		return no_space(err) ? PWQ_FULL : PWQ_IO;
	}
	if (fresh) {
		q->segs[q->nsegs++] = (struct seg){.id = q->next_seg_id,
						   .size = total,
						   .start_known = true,
						   .first_seq = q->next_seq,
						   .first_cum = q->tail_cum};
		q->tail_fd = fd;
		q->next_seg_id++;
		q->dir_dirty = true;
	} else {
		q->segs[q->nsegs - 1].size += total;
	}
	q->seg_bytes += (int64_t)total;
	q->next_seq++;
	q->tail_cum = h->cum;
	q->unsynced++;
	bytes_changed_locked(q);
	return PWQ_OK;
}

int pwq_append(struct pwq *q, int64_t created_ms, uint32_t nprofiles, const struct iovec *iov,
	       int iovcnt, void (*done)(void *user, int status), void *user)
{
	static const uint8_t zeros[8];
	uint8_t rhdr[PWQ_REC_HDR];
	struct iovec *v = NULL;
	struct pwq_rechdr h = {.created_ms = created_ms, .nprofiles = nprofiles};
	uint64_t len = 0, rsize;
	uint32_t pay_crc = 0;
	int cnt = 0, st;
	bool always = true; /* read under the lock: a reload may change it */

	if (iovcnt < 0 || iovcnt > PWQ_MAX_IOV)
		return PWQ_TOO_BIG;
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	rsize = PWQ_REC_SIZE(len);
	if (len > UINT32_MAX)
		return PWQ_TOO_BIG;
	h.len = (uint32_t)len;
	v = calloc((size_t)iovcnt + 3, sizeof(*v));
	if (!v)
		return PWQ_NOMEM;
	v[1] = (struct iovec){rhdr, sizeof(rhdr)};
	cnt = 2;
	/* Summed here, without the lock: readers and acknowledgments wait
	 * for it while an append holds it. */
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len) {
			v[cnt++] = iov[i];
			pay_crc = pwx_crc32c(pay_crc, iov[i].iov_base, iov[i].iov_len);
		}
	}
	if (rsize > PWQ_REC_HDR + len)
		v[cnt++] = (struct iovec){(void *)zeros, rsize - PWQ_REC_HDR - len};

	pthread_mutex_lock(&q->mu);
	always = q->o.fsync_always;
	if (q->stop) {
		st = PWQ_IO;
		goto out;
	}
	if ((int64_t)(rsize + PWQ_SEG_HDR + 64) > q->o.max_size) {
		st = PWQ_TOO_BIG;
		goto out;
	}
	if (always && grow(&q->pend, &q->cappend, q->npend + 1, sizeof(*q->pend)) < 0) {
		st = PWQ_NOMEM;
		goto out;
	}
	for (;;) {
		st = write_locked(q, v, cnt, rsize, &h, pay_crc);
		if (st != PWQ_FULL || (reclaim_tail_locked(q) < 0 &&
				       (!q->o.drop_oldest || drop_oldest_locked(q) < 0)))
			break;
	}
	if (st == PWQ_OK && always) {
		q->pend[q->npend++] = (struct pend){done, user, q->segs[q->nsegs - 1].id, false};
		pthread_cond_signal(&q->cond);
	} else if (st == PWQ_OK && q->unsynced == 1) {
		pthread_cond_signal(&q->cond); /* the interval starts now */
	}
out:
	pthread_mutex_unlock(&q->mu);
	free(v);
	if (st == PWQ_OK && !always && done)
		done(user, PWQ_OK);
	return st;
}

/* ---- cursors ---- */

static struct pwq_cursor *cursor_find_locked(struct pwq *q, const char *name)
{
	for (size_t k = 0; k < q->ncur; k++)
		if (strcmp(q->cur[k]->name, name) == 0)
			return q->cur[k];
	return NULL;
}

static void cursor_free(struct pwq_cursor *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->fl);
	free(c->name);
	free(c);
}

/* A new cursor at pos, added to the store. */
static struct pwq_cursor *cursor_new_locked(struct pwq *q, const char *name, struct pwq_pos pos)
{
	struct pwq_cursor *c = calloc(1, sizeof(*c));

	if (!c || !(c->name = pw_strdup(name)) ||
	    grow(&q->cur, &q->capcur, q->ncur + 1, sizeof(*q->cur)) < 0) {
		cursor_free(c);
		return NULL;
	}
	c->fd = -1;
	c->committed = c->read = pos;
	c->oldest_seq = UINT64_MAX;
	q->cur[q->ncur++] = c;
	q->ckpt_dirty = true;
	return c;
}

static uint64_t backlog_locked(const struct pwq *q, const struct pwq_cursor *c)
{
	return q->tail_cum > c->committed.cum ? q->tail_cum - c->committed.cum : 0;
}

struct pwq_cursor *pwq_cursor_get(struct pwq *q, const char *name, uint64_t *backlog)
{
	struct pwq_cursor *c;
	size_t nl = name ? strlen(name) : 0;

	if (nl == 0 || nl > PWQ_CURSOR_NAME_MAX)
		return NULL;
	pthread_mutex_lock(&q->mu);
	c = cursor_find_locked(q, name);
	if (!c) {
		struct pwq_pos p = end_pos_locked(q);

		/* Without the cursors file nobody knows what was delivered:
		 * replay everything rather than lose it. */
		if (q->cursors_lost && q->nsegs > 0)
			p = seg_start_locked(q, 0);
		c = cursor_new_locked(q, name, p);
	}
	if (c) {
		c->asked = true;
		if (backlog)
			*backlog = backlog_locked(q, c);
	}
	pthread_mutex_unlock(&q->mu);
	return c;
}

size_t pwq_cursor_names(struct pwq *q, char ***names)
{
	size_t n = 0, cap = 0;

	*names = NULL;
	pthread_mutex_lock(&q->mu);
	for (size_t k = 0; k < q->ncur; k++) {
		char *s;

		if (q->cur[k]->asked)
			continue;
		if (grow(names, &cap, n + 1, sizeof(char *)) < 0)
			break;
		s = pw_strdup(q->cur[k]->name);
		if (!s)
			break;
		(*names)[n++] = s;
	}
	pthread_mutex_unlock(&q->mu);
	return n;
}

uint64_t pwq_cursor_remove(struct pwq *q, const char *name)
{
	struct pwq_cursor *c = NULL;
	uint64_t backlog = 0;

	pthread_mutex_lock(&q->mu);
	for (size_t k = 0; k < q->ncur; k++) {
		if (strcmp(q->cur[k]->name, name) == 0) {
			c = q->cur[k];
			q->cur[k] = q->cur[--q->ncur];
			break;
		}
	}
	if (c) {
		backlog = backlog_locked(q, c);
		q->ckpt_dirty = true;
		gc_locked(q);
	}
	pthread_mutex_unlock(&q->mu);
	cursor_free(c);
	return backlog;
}

static int fl_push_locked(struct pwq_cursor *c, uint64_t seq, int64_t created_ms, bool done)
{
	if (grow(&c->fl, &c->capfl, c->nfl + 1, sizeof(*c->fl)) < 0)
		return -1;
	c->fl[c->nfl++] = (struct inflight){seq, created_ms, c->read, done};
	return 0;
}

/* Marks seq done in the cursor's in-flight list; whether it was there. */
static bool mark_done_locked(struct pwq_cursor *c, uint64_t seq)
{
	size_t lo = 0, hi = c->nfl;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (c->fl[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == c->nfl || c->fl[lo].seq != seq || c->fl[lo].done)
		return false;
	c->fl[lo].done = true;
	return true;
}

void pwq_ack_many(struct pwq *q, struct pwq_cursor *c, const uint64_t *seqs, size_t n)
{
	uint32_t marked = 0;

	pthread_mutex_lock(&q->mu);
	for (size_t i = 0; i < n; i++)
		marked += mark_done_locked(c, seqs[i]);
	if (marked) {
		settle_locked(q, c);
		c->acks += marked;
		if (c->acks >= PWQ_CHECKPOINT_RECORDS && !q->ckpt_wanted) {
			q->ckpt_wanted = true;
			pthread_cond_signal(&q->cond);
		}
	}
	pthread_mutex_unlock(&q->mu);
}

void pwq_ack(struct pwq *q, struct pwq_cursor *c, uint64_t seq)
{
	pwq_ack_many(q, c, &seq, 1);
}

void pwq_cursor_rewind(struct pwq *q, struct pwq_cursor *c)
{
	pthread_mutex_lock(&q->mu);
	c->nfl = 0;
	c->read = c->committed;
	c->epoch++;
	pthread_mutex_unlock(&q->mu);
}

/* At the end of the data: records the reader expected but never found are
 * lost (damage at the end of a segment). */
static void reached_end_locked(struct pwq *q, struct pwq_cursor *c)
{
	if (c->read.seq < q->next_seq) {
		uint64_t lost = q->next_seq - c->read.seq;

		qlog(q, COMPONENT_LOG_WARN, "queue: damaged records skipped", c->read.seg,
		     c->read.off, "records", lost);
		if (q->o.on_drop)
			q->o.on_drop(q->o.arg, c->name, PWQ_DROP_CORRUPT, lost);
		c->read.seq = q->next_seq;
		c->read.cum = q->tail_cum;
	}
	if (c->nfl == 0)
		settle_locked(q, c);
}

/* Applies one record read at `at` to the cursor; returns 1 when it is the
 * one to hand out, 0 to go on reading. */
static int take_record_locked(struct pwq *q, struct pwq_cursor *c, const struct pwq_rechdr *h,
			      uint64_t at, int64_t min_created_ms, struct pwq_rec *rec)
{
	if (at > c->read.off)
		qlog(q, COMPONENT_LOG_WARN, "queue: damaged bytes skipped", c->read.seg,
		     c->read.off, "bytes", at - c->read.off);
	c->read.off = at + PWQ_REC_SIZE(h->len);
	if (h->seq < c->read.seq)
		return 0; /* a stale copy: never handed out twice */
	if (h->seq > c->read.seq) {
		uint64_t lost = h->seq - c->read.seq;

		qlog(q, COMPONENT_LOG_WARN, "queue: damaged records skipped", c->read.seg, at,
		     "records", lost);
		if (q->o.on_drop)
			q->o.on_drop(q->o.arg, c->name, PWQ_DROP_CORRUPT, lost);
	}
	c->read.seq = h->seq + 1;
	c->read.cum = h->cum;
	if (h->created_ms < min_created_ms) {
		rec->expired += h->nprofiles;
		if (fl_push_locked(c, h->seq, h->created_ms, true) == 0)
			settle_locked(q, c);
		return 0;
	}
	if (fl_push_locked(c, h->seq, h->created_ms, false) < 0)
		return -1;
	return 1;
}

/* Opens the segment the cursor reads, if it is not open yet. */
static int reader_fd_locked(struct pwq *q, struct pwq_cursor *c)
{
	if (c->fd >= 0 && c->fd_seg == c->read.seg)
		return 0;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = seg_open(q, c->read.seg, O_RDONLY);
	c->fd_seg = c->read.seg;
	return c->fd >= 0 ? 0 : -1;
}

int pwq_next(struct pwq *q, struct pwq_cursor *c, int64_t min_created_ms, struct pwq_rec *rec)
{
	int rc = 0;

	memset(rec, 0, sizeof(*rec));
	pthread_mutex_lock(&q->mu);
	for (;;) {
		struct pwq_rechdr h;
		uint8_t *data = NULL;
		size_t cap = 0;
		uint64_t epoch, at = 0, end, start;
		size_t i;
		int r, rfd;

		normalize_locked(q, &c->read, true);
		i = seg_lower(q, c->read.seg);
		if (i == q->nsegs || c->read.off >= q->segs[i].size) {
			/* An idle reader holds no file: a segment deleted meanwhile
			 * gives its space back at once. */
			if (c->fd >= 0)
				close(c->fd);
			c->fd = -1;
			reached_end_locked(q, c);
			rc = 0;
			break;
		}
		if (reader_fd_locked(q, c) < 0) {
			qlog_errno(q, "queue: cannot open a segment", c->name, errno);
			rc = -1;
			break;
		}
		end = q->segs[i].size;
		start = c->read.off;
		epoch = c->epoch;
		rfd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
		if (rfd < 0) {
			qlog_errno(q, "queue: cannot read a segment", c->name, errno);
			rc = -1;
			break;
		}
		pthread_mutex_unlock(&q->mu);
		r = pwq_read_record(rfd, start, end, &h, &data, q->o.bufs, &cap, &at);
		close(rfd);
		pthread_mutex_lock(&q->mu);
		if (c->epoch != epoch || c->read.off != start) {
			pw_bufcache_put(q->o.bufs, data, cap); /* moved by drop_oldest meanwhile */
			continue;
		}
		if (r < 0) {
			qlog_errno(q, "queue: cannot read a segment", c->name, errno);
			rc = -1;
			break;
		}
		if (r == 0) {
			qlog(q, COMPONENT_LOG_WARN, "queue: damaged bytes skipped", c->read.seg,
			     start, "bytes", end - start);
			c->read.off = end;
			continue;
		}
		r = take_record_locked(q, c, &h, at, min_created_ms, rec);
		if (r == 0) {
			pw_bufcache_put(q->o.bufs, data, cap);
			continue;
		}
		if (r < 0) {
			pw_bufcache_put(q->o.bufs, data, cap);
			rc = -1;
			break;
		}
		rec->seq = h.seq;
		rec->created_ms = h.created_ms;
		rec->nprofiles = h.nprofiles;
		rec->data = data;
		rec->cap = cap;
		rec->len = h.len;
		rc = 1;
		break;
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

/* The creation time of the record at pos, read from disk; 0 if unreadable. */
static int64_t created_at_locked(struct pwq *q, struct pwq_pos pos)
{
	struct pwq_rechdr h;
	uint64_t at;
	size_t i;
	int fd, r;

	normalize_locked(q, &pos, true);
	i = seg_lower(q, pos.seg);
	if (i == q->nsegs || q->segs[i].id != pos.seg || pos.off >= q->segs[i].size)
		return 0;
	fd = seg_open(q, pos.seg, O_RDONLY);
	if (fd < 0)
		return 0;
	r = pwq_read_record(fd, pos.off, q->segs[i].size, &h, NULL, NULL, NULL, &at);
	close(fd);
	return r == 1 ? h.created_ms : 0;
}

void pwq_cursor_stat(struct pwq *q, struct pwq_cursor *c, struct pwq_cursor_stat *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&q->mu);
	st->committed = c->committed;
	st->read = c->read;
	st->backlog_profiles = backlog_locked(q, c);
	st->backlog_records = q->next_seq > c->committed.seq ? q->next_seq - c->committed.seq : 0;
	if (st->backlog_records == 0) {
		st->oldest_created_ms = 0;
	} else if (c->nfl > 0) {
		st->oldest_created_ms = c->fl[0].created_ms;
	} else {
		if (c->oldest_seq != c->committed.seq) {
			c->oldest_ms = created_at_locked(q, c->committed);
			c->oldest_seq = c->committed.seq;
		}
		st->oldest_created_ms = c->oldest_ms;
	}
	pthread_mutex_unlock(&q->mu);
}

int64_t pwq_bytes(struct pwq *q)
{
	int64_t b;

	pthread_mutex_lock(&q->mu);
	b = q->seg_bytes + q->cur_bytes;
	pthread_mutex_unlock(&q->mu);
	return b;
}

/* ---- the cursors file ---- */

static int write_file_sync(struct pwq *q, const char *name, const struct strbuf *sb)
{
	int fd = openat(q->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t done = 0;

	if (fd < 0)
		return -1;
	while (done < sb->len) {
		ssize_t n = write(fd, sb->data + done, sb->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			goto fail;
		}
		done += (size_t)n;
	}
	if (fdatasync(fd) != 0)
		goto fail;
	return close(fd);
fail:;
	int err = errno;

	close(fd);
	errno = err;
	return -1;
}

int pwq_checkpoint(struct pwq *q)
{
	struct strbuf sb = STRBUF_INIT;
	struct pwq_curent *e = NULL;
	size_t n = 0;
	int rc = 0;

	pthread_mutex_lock(&q->ckpt_mu);
	pthread_mutex_lock(&q->mu);
	if (!q->ckpt_dirty) {
		pthread_mutex_unlock(&q->mu);
		goto out;
	}
	e = calloc(q->ncur ? q->ncur : 1, sizeof(*e));
	if (e) {
		for (n = 0; n < q->ncur; n++) {
			const struct pwq_pos *p = &q->cur[n]->committed;

			e[n] = (struct pwq_curent){q->cur[n]->name, p->seg, p->off, p->seq, p->cum};
			q->cur[n]->acks = 0;
		}
		rc = pwq_cursors_encode(e, n, &sb);
		q->ckpt_dirty = false;
	}
	pthread_mutex_unlock(&q->mu);
	if (!e || rc < 0) {
		rc = -1;
		errno = ENOMEM;
	} else if (write_file_sync(q, "cursors.tmp", &sb) != 0 ||
		   renameat(q->dirfd, "cursors.tmp", q->dirfd, "cursors") != 0 ||
		   fsync(q->dirfd) != 0) {
		rc = -1;
	}
	if (rc < 0) {
		int err = errno;

		qlog_errno(q, "queue: cannot write the cursors file", "cursors", err);
		unlinkat(q->dirfd, "cursors.tmp", 0);
	}
	pthread_mutex_lock(&q->mu);
	if (rc < 0) {
		q->ckpt_dirty = true;
	} else {
		q->cur_bytes = (int64_t)sb.len;
		if (q->ncur > 0)
			q->cursors_lost = false;
		bytes_changed_locked(q);
	}
	pthread_mutex_unlock(&q->mu);
out:
	pthread_mutex_unlock(&q->ckpt_mu);
	free(e);
	strbuf_free(&sb);
	return rc;
}

/* Reads the cursors file into cursors (not asked yet). A missing file with
 * segments on disk, or a damaged one, means nobody knows what was
 * delivered: new cursors start at the oldest record then. */
static int load_cursors(struct pwq *q)
{
	struct pwq_curent *e = NULL;
	uint8_t *buf = NULL;
	struct stat st;
	size_t n = 0;
	int fd = openat(q->dirfd, "cursors", O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0) {
		q->cursors_lost = q->nsegs > 0;
		if (q->cursors_lost)
			pw_log(&q->o.log, COMPONENT_LOG_WARN,
			       "queue: no cursors file, every cursor starts at the oldest record",
			       "dir", q->dir, PW_LOG_END);
		return 0;
	}
	if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size < (64 << 20) &&
	    (buf = malloc((size_t)st.st_size)) &&
	    pread(fd, buf, (size_t)st.st_size, 0) == st.st_size &&
	    pwq_cursors_decode(buf, (size_t)st.st_size, &e, &n) == 0) {
		q->cur_bytes = st.st_size;
		for (size_t i = 0; i < n && rc == 0; i++) {
			struct pwq_cursor *c;

			if (cursor_find_locked(q, e[i].name))
				continue;
			c = cursor_new_locked(
				q, e[i].name,
				(struct pwq_pos){e[i].seg, e[i].off, e[i].seq, e[i].cum});
			if (!c) {
				rc = -1;
				break;
			}
			normalize_locked(q, &c->committed, false);
			c->read = c->committed;
		}
		q->ckpt_dirty = false;
	} else {
		q->cur_bytes = fstat(fd, &st) == 0 ? st.st_size : 0;
		q->cursors_lost = true;
		pw_log(&q->o.log, COMPONENT_LOG_WARN,
		       "queue: cursors file damaged, every cursor starts at the oldest record",
		       "dir", q->dir, PW_LOG_END);
	}
	pwq_curents_free(e, n);
	free(buf);
	close(fd);
	return rc;
}

/* ---- open and recovery ---- */

static int cmp_seg(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static int list_segments(struct pwq *q)
{
	int fd = dup(q->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(d))) {
		struct stat st;
		uint64_t id;

		if (!pwq_seg_parse(de->d_name, &id) || fstatat(q->dirfd, de->d_name, &st, 0) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (grow(&q->segs, &q->capsegs, q->nsegs + 1, sizeof(*q->segs)) < 0) {
			closedir(d);
			return -1;
		}
		q->segs[q->nsegs++] = (struct seg){.id = id, .size = (uint64_t)st.st_size};
		q->seg_bytes += st.st_size;
		if (id >= q->next_seg_id)
			q->next_seg_id = id + 1;
	}
	closedir(d);
	if (q->nsegs > 1)
		qsort(q->segs, q->nsegs, sizeof(*q->segs), cmp_seg);
	return 0;
}

struct tail_scan {
	bool any;
	struct pwq_rechdr first, last;
};

static void tail_scan_ev(void *arg, const struct pwq_scan_ev *ev)
{
	struct tail_scan *t = arg;

	if (ev->kind != PWQ_SCAN_RECORD)
		return;
	if (!t->any)
		t->first = ev->rec;
	t->last = ev->rec;
	t->any = true;
}

/* Scans the last segment: its valid records decide where appends go on.
 * A torn tail is cut; a last segment without any valid record is removed
 * and the one before it is looked at. */
static int recover_tail(struct pwq *q)
{
	while (q->nsegs > 0) {
		struct seg *s = &q->segs[q->nsegs - 1];
		struct tail_scan t = {0};
		struct pwq_scan_res res = {0};
		int fd = seg_open(q, s->id, O_RDWR);
		void *map = NULL;

		if (fd < 0)
			return -1;
		if (s->size > 0) {
			map = mmap(NULL, s->size, PROT_READ, MAP_PRIVATE, fd, 0);
			if (map == MAP_FAILED) {
				close(fd);
				return -1;
			}
		}
		pwq_scan_segment(map, s->size, tail_scan_ev, &t, &res);
		if (map)
			munmap(map, s->size);
		if (res.header_ok && res.hdr.first_seq > q->next_seq)
			q->next_seq = res.hdr.first_seq;
		if (!t.any) {
			qlog(q, COMPONENT_LOG_WARN, "queue: removed a last segment without records",
			     s->id, 0, "bytes", s->size);
			close(fd);
			seg_unlink_locked(q, q->nsegs - 1);
			continue;
		}
		if (res.end < s->size) {
			qlog(q, COMPONENT_LOG_WARN, "queue: cut a torn tail", s->id, res.end,
			     "bytes", s->size - res.end);
			if (ftruncate(fd, (off_t)res.end) == 0) {
				q->seg_bytes -= (int64_t)(s->size - res.end);
				s->size = res.end;
			} else {
				res.header_ok = false; /* sealed below, the reader skips it */
			}
		}
		if (t.last.seq + 1 > q->next_seq)
			q->next_seq = t.last.seq + 1;
		q->tail_cum = t.last.cum;
		s->start_known = true;
		s->first_seq = res.header_ok && res.hdr.first_seq <= t.first.seq ? res.hdr.first_seq
										 : t.first.seq;
		s->first_cum = t.first.cum - t.first.nprofiles;
		if (res.header_ok && s->size < q->target) {
			q->tail_fd = fd;
		} else {
			close(fd);
		}
		return 0;
	}
	return 0;
}

/* Seq and segment ids are never reused, even when the files that held them
 * are gone: a cursors file may still name them. */
static void floor_from_cursors(struct pwq *q, const uint8_t *buf, size_t len)
{
	struct pwq_curent *e = NULL;
	size_t n = 0;

	if (pwq_cursors_decode(buf, len, &e, &n) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (e[i].seg >= q->next_seg_id)
			q->next_seg_id = e[i].seg + 1;
		if (e[i].seq > q->next_seq)
			q->next_seq = e[i].seq;
		if (e[i].cum > q->tail_cum && q->nsegs == 0)
			q->tail_cum = e[i].cum;
	}
	pwq_curents_free(e, n);
}

static void floors_from_cursors_file(struct pwq *q)
{
	int fd = openat(q->dirfd, "cursors", O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf = NULL;

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size < (64 << 20) &&
	    (buf = malloc((size_t)st.st_size)) &&
	    pread(fd, buf, (size_t)st.st_size, 0) == st.st_size)
		floor_from_cursors(q, buf, (size_t)st.st_size);
	free(buf);
	close(fd);
}

/* mkdir -p with mode 0700 for every directory it creates. */
static int mkdirs(const char *path)
{
	char *p = pw_strdup(path);
	int rc = 0;

	if (!p)
		return -1;
	for (char *s = p + 1; *s && rc == 0; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			rc = -1;
		*s = '/';
	}
	if (rc == 0 && mkdir(p, 0700) != 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

static int open_dir(struct pwq *q, char **err)
{
	if (mkdirs(q->dir) != 0) {
		*err = pw_asprintf("queue directory %s: cannot create: %s", q->dir,
				   strerror(errno));
		return -1;
	}
	q->dirfd = open(q->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->dirfd < 0) {
		*err = pw_asprintf("queue directory %s: %s", q->dir, strerror(errno));
		return -1;
	}
	q->lockfd = openat(q->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (q->lockfd < 0) {
		*err = pw_asprintf("queue directory %s: cannot create the lock file: %s", q->dir,
				   strerror(errno));
		return -1;
	}
	if (flock(q->lockfd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			*err = pw_asprintf("queue directory %s is in use by another process",
					   q->dir);
		else
			*err = pw_asprintf("queue directory %s: cannot lock: %s", q->dir,
					   strerror(errno));
		return -1;
	}
	return 0;
}

static void pwq_free(struct pwq *q)
{
	for (size_t k = 0; k < q->ncur; k++)
		cursor_free(q->cur[k]);
	for (size_t i = 0; i < q->nold; i++)
		close(q->old[i].fd);
	if (q->tail_fd >= 0)
		close(q->tail_fd);
	if (q->lockfd >= 0)
		close(q->lockfd); /* releases the flock */
	if (q->dirfd >= 0)
		close(q->dirfd);
	pthread_mutex_destroy(&q->mu);
	pthread_mutex_destroy(&q->ckpt_mu);
	pthread_cond_destroy(&q->cond);
	free(q->cur);
	free(q->old);
	free(q->pend);
	free(q->segs);
	free(q->dir);
	free(q);
}

static uint64_t seg_target(int64_t max_size)
{
	return (uint64_t)(max_size / 16 < SEG_MIN   ? SEG_MIN
			  : max_size / 16 > SEG_MAX ? SEG_MAX
						    : max_size / 16);
}

struct pwq *pwq_open(const struct pwq_opts *o, char **err)
{
	struct pwq *q = calloc(1, sizeof(*q));
	pthread_condattr_t ca;

	*err = NULL;
	if (!q || !o->dir || !*o->dir || !(q->dir = pw_strdup(o->dir))) {
		*err = pw_strdup(q ? "queue directory: not set" : "out of memory");
		free(q);
		return NULL;
	}
	q->o = *o;
	q->o.dir = q->dir;
	q->dirfd = q->lockfd = q->tail_fd = -1;
	q->next_seg_id = 1;
	q->next_seq = 1; /* seq 0 never exists: a cursor at seq 0 predates everything */
	q->target = seg_target(o->max_size);
	pthread_mutex_init(&q->mu, NULL);
	pthread_mutex_init(&q->ckpt_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (open_dir(q, err) < 0)
		goto fail;
	unlinkat(q->dirfd, "cursors.tmp", 0);
	/* Recovery runs before the flusher exists: no lock needed, but the
	 * helpers expect it held. */
	pthread_mutex_lock(&q->mu);
	if (list_segments(q) < 0 || (floors_from_cursors_file(q), recover_tail(q) < 0) ||
	    load_cursors(q) < 0) {
		pthread_mutex_unlock(&q->mu);
		*err = pw_asprintf("queue directory %s: cannot recover: %s", q->dir,
				   strerror(errno ? errno : EIO));
		goto fail;
	}
	gc_locked(q);
	pthread_mutex_unlock(&q->mu);
	q->next_ckpt_ns = q->next_sync_ns = pwx_now_ns();
	if (pthread_create(&q->flusher, NULL, flusher_main, q) != 0) {
		*err = pw_asprintf("queue directory %s: cannot start a thread", q->dir);
		goto fail;
	}
	q->flusher_started = true;
	return q;
fail:
	pwq_free(q);
	return NULL;
}

void pwq_set_limits(struct pwq *q, int64_t max_size, bool fsync_always, int64_t fsync_interval_ns,
		    bool drop_oldest)
{
	pthread_mutex_lock(&q->mu);
	q->o.max_size = max_size;
	q->o.fsync_always = fsync_always;
	q->o.fsync_interval_ns = fsync_interval_ns;
	q->o.drop_oldest = drop_oldest;
	q->target = seg_target(max_size);
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->mu);
}

void pwq_close(struct pwq *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->mu);
	if (q->flusher_started)
		pthread_join(q->flusher, NULL);
	pwq_checkpoint(q);
	pwq_free(q);
}
