/*
 * qstore_format.h - the durable queue's file formats: segment and record
 * headers, the recovery reader (a pure function over a segment's bytes),
 * reading one record from a file on demand, and the cursors file.
 *
 * A segment: a 32-byte header
 *   magic "PWQSEG1\n" | u64 segment id | u64 first record seq | u32 version |
 *   u32 crc32c of the previous 28 bytes
 * then records, each starting at an 8-byte boundary:
 *   u32 magic 0x52515750 ("PWQR") | u32 len | u64 seq | u64 cum |
 *   i64 created_ms | u32 nprofiles | u32 crc32c of bytes 0..35 and the payload
 *   payload (len bytes), zero padding to a multiple of 8.
 * All integers are little endian. seq grows by one per record and is never
 * reused; cum counts the profiles of every record up to this one, so the
 * profiles between two positions are a subtraction.
 */
#ifndef PW_QSTORE_FORMAT_H
#define PW_QSTORE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qstore_types.h"
#include "strbuf.h"

struct pw_bufcache;

#define PWQ_SEG_MAGIC "PWQSEG1\n"
#define PWQ_SEG_HDR 32
#define PWQ_SEG_VERSION 1
#define PWQ_REC_MAGIC 0x52515750u
#define PWQ_REC_HDR 40
#define PWQ_ALIGN8(n) (((uint64_t)(n) + 7) & ~(uint64_t)7)
#define PWQ_REC_SIZE(len) PWQ_ALIGN8((uint64_t)PWQ_REC_HDR + (len))

struct pwq_seghdr {
	uint64_t id, first_seq;
	uint32_t version;
};

struct pwq_rechdr {
	uint32_t len;
	uint64_t seq, cum;
	int64_t created_ms;
	uint32_t nprofiles;
	uint32_t crc;
};

void pwq_seghdr_encode(uint8_t out[PWQ_SEG_HDR], uint64_t id, uint64_t first_seq);
/* Whether buf (len bytes) starts with a valid segment header. */
bool pwq_seghdr_decode(const uint8_t *buf, size_t len, struct pwq_seghdr *h);

/* Encodes h into out with magic; h->crc is written as given. */
void pwq_rechdr_encode(uint8_t out[PWQ_REC_HDR], const struct pwq_rechdr *h);
/* Decodes a record header whose magic matches; false otherwise. */
bool pwq_rechdr_decode(const uint8_t *in, struct pwq_rechdr *h);

/* What the recovery reader found. */
enum pwq_scan_kind { PWQ_SCAN_RECORD, PWQ_SCAN_DAMAGE };
struct pwq_scan_ev {
	enum pwq_scan_kind kind;
	uint64_t off, size; /* the record (padding included) or the damaged span */
	struct pwq_rechdr rec; /* PWQ_SCAN_RECORD */
	const uint8_t *payload; /* PWQ_SCAN_RECORD: rec.len bytes inside the buffer */
};
typedef void (*pwq_scan_fn)(void *arg, const struct pwq_scan_ev *ev);
struct pwq_scan_res {
	bool header_ok;
	struct pwq_seghdr hdr;
	uint64_t records, damaged_spans;
	uint64_t end; /* where the valid data ends: the torn-tail cut */
};

/* The recovery reader, a pure function over one segment's bytes: calls fn (may be NULL)
 * for every valid record and every damaged span in order, fills *res (may be NULL) and
 * returns the offset where the valid data ends (0 when there is no valid header and no
 * record, else at least PWQ_SEG_HDR when the header is valid). A damaged header is a
 * damaged span; after damage it resyncs on the next 8-byte-aligned record magic whose
 * length fits and whose crc checks. */
uint64_t pwq_scan_segment(const uint8_t *buf, size_t len, pwq_scan_fn fn, void *arg,
			  struct pwq_scan_res *res);

/* Reads the first valid record at or after off (rounded up to 8) and wholly below end in
 * the file fd. Returns 1 with *h and *at (where it starts) set and, if payload is not NULL,
 * a copy of the payload in *payload (from bufs, with its capacity in *cap, when bufs is not
 * NULL; else malloc'd, *cap 0; cap may be NULL when payload is); 0 when there is none before end; -1 on a read error or out
 * of memory (errno set). Memory stays bounded whatever the file holds. */
int pwq_read_record(int fd, uint64_t off, uint64_t end, struct pwq_rechdr *h, uint8_t **payload,
		    struct pw_bufcache *bufs, size_t *cap, uint64_t *at);

/* The cursors file: "PWQCUR1\n" | u32 count | per cursor: u16 name length, name,
 * u64 seg, off, seq, cum | u32 crc32c of everything before. */
struct pwq_curent {
	char *name;
	uint64_t seg, off, seq, cum; /* a struct pwq_pos */
};
#define PWQ_CURSOR_NAME_MAX 1024
/* Appends the file's bytes to out; -1 when out is full. */
int pwq_cursors_encode(const struct pwq_curent *e, size_t n, struct strbuf *out);
/* Size of the encoded file for n names of total length namebytes. */
size_t pwq_cursors_size(size_t n, size_t namebytes);
/* Parses a cursors file: 0 with a malloc'd array (names malloc'd), -1 when damaged or out
 * of memory. */
int pwq_cursors_decode(const uint8_t *buf, size_t len, struct pwq_curent **e, size_t *n);
void pwq_curents_free(struct pwq_curent *e, size_t n);

/* The segment file name of id: 16 hex digits and ".seg" (21 bytes and NUL). */
void pwq_seg_name(char out[24], uint64_t id);
/* Parses a segment file name; false for anything else. */
bool pwq_seg_parse(const char *name, uint64_t *id);

#endif /* PW_QSTORE_FORMAT_H */
