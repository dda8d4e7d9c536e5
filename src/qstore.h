/*
 * qstore.h - the durable queue's on-disk store: append-only segment files
 * of checksummed records, one cursor per consumer, group commit.
 *
 * Files in the directory (created 0700 if missing):
 *   lock                  flock()ed for the store's life: one owner.
 *   NNNNNNNNNNNNNNNN.seg  segments (16 hex digits, increasing); layout in
 *                         qstore_format.h.
 *   cursors               each cursor's committed position, replaced
 *                         atomically (cursors.tmp, fsync, rename, fsync of
 *                         the directory).
 *
 * Thread-safety: every function may be called from any thread, except that
 * calls on one cursor that read (pwq_next, pwq_cursor_rewind) must not run
 * concurrently with each other or with pwq_cursor_remove of that cursor.
 * pwq_ack and pwq_cursor_stat may run beside them.
 */
#ifndef PW_QSTORE_H
#define PW_QSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "bufcache.h"
#include "log.h"
#include "qstore_types.h"
#include "strbuf.h"

struct pwq;

enum pwq_status { PWQ_OK = 0, PWQ_FULL, PWQ_TOO_BIG, PWQ_IO, PWQ_NOMEM };

/* A short English name of a status ("ok", "full", ...). */
const char *pwq_strstatus(int status);

struct pwq_opts {
	const char *dir;
	int64_t max_size; /* bytes on disk: segments and the cursors file */
	bool fsync_always;
	int64_t fsync_interval_ns;
	bool drop_oldest;
	struct pw_logger log;
	/* Called with the store lock held: must not call back into the store. Any may be NULL. */
	void (*on_fsync)(void *arg, double seconds, size_t records);
	void (*on_bytes)(void *arg, int64_t bytes); /* bytes on disk changed */
	/* Records a cursor lost before reading them: reason is PWQ_DROP_FULL (drop_oldest,
	 * including after ENOSPC; profiles counted from the cursor's committed position) or
	 * PWQ_DROP_CORRUPT (damaged; profiles = records lost, since their profile counts
	 * cannot be read). Called for cursors known only from the cursors file too. */
	void (*on_drop)(void *arg, const char *cursor, int reason, uint64_t profiles);
	void *arg;
	/* Where pwq_next takes the buffers of the records it reads (NULL: malloc). Used
	 * only inside pwq_next: it must outlive the calls to it. */
	struct pw_bufcache *bufs;
};
#define PWQ_DROP_FULL 0
#define PWQ_DROP_CORRUPT 2

/* How many acks of one cursor make the flusher write the cursors file. */
#define PWQ_CHECKPOINT_RECORDS 256

/* Opens (creating) and recovers the store: takes the lock (fails with an error naming the
 * directory and "in use by another process" when held, also by this process), scans only
 * the LAST segment fully and cuts a torn tail (never counted: never acknowledged), reads the
 * cursors file, starts the flusher thread. Other segments are checked lazily as they are
 * read. Returns NULL and a malloc'd *err on failure. */
struct pwq *pwq_open(const struct pwq_opts *o, char **err);
/* Final fsync and checkpoint, stops the flusher, releases the lock, frees. Callbacks of
 * appends not yet durable are called (status PWQ_OK if the final fsync worked, else PWQ_IO)
 * before it returns. Cursors become invalid. Accepts NULL. */
void pwq_close(struct pwq *q);

/* New limits for an open store (a reload that keeps the directory): they
 * apply from the next append on. Room is made, or refused, only then. */
void pwq_set_limits(struct pwq *q, int64_t max_size, bool fsync_always, int64_t fsync_interval_ns,
		    bool drop_oldest);

/* The most iovecs one pwq_append takes. */
#define PWQ_MAX_IOV 1000

/* Appends one record (payload = the iovecs, concatenated). Returns PWQ_OK when done will be
 * called exactly once: with fsync_always after the fsync that covers the record (group
 * commit: one fsync for every record written while the previous one ran), otherwise right
 * after the write (before pwq_append returns). Any other return: nothing written, done never
 * called. PWQ_FULL: max_size reached or ENOSPC with when_full=refuse, or nothing left to
 * drop. PWQ_TOO_BIG: the record cannot fit in max_size at all. With drop_oldest the oldest
 * segments are deleted first to make room (on_drop per cursor). A failed write is cut back
 * (ftruncate) so the file holds only whole records. done(user, status): PWQ_OK (durable) or
 * PWQ_IO (fsync failed); from any thread, never with the store lock held. */
int pwq_append(struct pwq *q, int64_t created_ms, uint32_t nprofiles, const struct iovec *iov,
	       int iovcnt, void (*done)(void *user, int status), void *user);

/* Cursors: one per endpoint, by name. Owned by the store: valid until pwq_cursor_remove()
 * of its name or pwq_close(). */
struct pwq_cursor;
/* Finds or creates a cursor. A name present in the cursors file resumes from its committed
 * position; a new name starts at the tail (only records appended from now on), or at the
 * oldest record when the cursors file was missing or damaged at open. *backlog (may be
 * NULL) gets the profiles between the cursor and the tail (what a restart replays). NULL
 * when out of memory. */
struct pwq_cursor *pwq_cursor_get(struct pwq *q, const char *name, uint64_t *backlog);
/* Names in the cursors file that no pwq_cursor_get() asked for since open: a malloc'd array
 * of malloc'd strings in *names (NULL when none); returns the count. */
size_t pwq_cursor_names(struct pwq *q, char ***names);
/* Removes a cursor (also one only on file); returns the profiles of its backlog (0 for an
 * unknown name). */
uint64_t pwq_cursor_remove(struct pwq *q, const char *name);

struct pwq_rec {
	uint64_t seq;
	int64_t created_ms;
	uint32_t nprofiles;
	uint8_t *data; /* the payload; the caller frees it (pw_bufcache_put with cap) */
	size_t len;
	size_t cap; /* data's capacity when it came from the store's bufs, else 0 */
	uint64_t expired; /* profiles skipped before this one as older than min_created_ms */
};
/* The next record at the cursor's READ position (which runs ahead of the committed one by
 * the records in flight), skipping (acking) records with created_ms < min_created_ms and
 * counting their profiles in rec->expired; damaged spans are skipped (resync on the next
 * valid record magic at an 8-byte boundary whose crc checks), reported through on_drop
 * CORRUPT and logged. Reads from disk (pread) on demand. Returns 1 with *rec filled, 0 at
 * the tail (rec->expired may still be > 0, rec->data is NULL), -1 on error (out of memory,
 * an unreadable file). */
int pwq_next(struct pwq *q, struct pwq_cursor *c, int64_t min_created_ms, struct pwq_rec *rec);
/* The cursor is done with record seq (delivered, refused for good or expired). The committed
 * position advances over the contiguous done prefix; segments every cursor has passed are
 * deleted. Records that drop_oldest removed meanwhile, or unknown seqs, are ignored. */
void pwq_ack(struct pwq *q, struct pwq_cursor *c, uint64_t seq);
/* pwq_ack of each of seqs[0..n), in any order, under one lock. */
void pwq_ack_many(struct pwq *q, struct pwq_cursor *c, const uint64_t *seqs, size_t n);
/* Forgets what the cursor has read but not acked: its read position goes back to the
 * committed one, so pwq_next returns those records again. */
void pwq_cursor_rewind(struct pwq *q, struct pwq_cursor *c);

struct pwq_cursor_stat {
	uint64_t backlog_profiles, backlog_records;
	int64_t oldest_created_ms; /* 0: empty */
	struct pwq_pos committed, read;
};
void pwq_cursor_stat(struct pwq *q, struct pwq_cursor *c, struct pwq_cursor_stat *st);
/* Bytes on disk: segments and the cursors file. */
int64_t pwq_bytes(struct pwq *q);
/* Writes the cursors file if a committed position or the set of cursors changed. Called by
 * the flusher about every second and after PWQ_CHECKPOINT_RECORDS acks of a cursor, and by
 * pwq_close. Returns 0 or -1 (logged). */
int pwq_checkpoint(struct pwq *q);

/* Read-only look at a directory without taking the lock or changing anything: JSON with
 * segments, records, bytes, damaged records (count and where), each cursor's backlog
 * (records, profiles) and oldest age. For `mockhost queue inspect --dir DIR`. Returns 0, or
 * -1 with a malloc'd *err. */
int pwq_inspect(const char *dir, struct strbuf *json, char **err);

#endif /* PW_QSTORE_H */
