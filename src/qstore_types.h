/*
 * qstore_types.h - the durable queue store's position type, shared by the
 * store (qstore.h) and its file formats (qstore_format.h) without either
 * including the other. Types only.
 */
#ifndef PW_QSTORE_TYPES_H
#define PW_QSTORE_TYPES_H

#include <stdint.h>

/* Where a record starts: segment id, byte offset, its seq, and the profiles
 * in all records before it. */
struct pwq_pos {
	uint64_t seg, off, seq, cum;
};

#endif /* PW_QSTORE_TYPES_H */
