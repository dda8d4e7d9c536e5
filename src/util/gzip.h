/*
 * util/gzip.h - whole-buffer gzip and size-capped gunzip.
 */
#ifndef PW_UTIL_GZIP_H
#define PW_UTIL_GZIP_H

#include <stddef.h>
#include <stdint.h>

/* pwx_gunzip: bytes after the end of the gzip member are ignored instead
 * of being refused as corruption. */
#define PWX_GUNZIP_ALLOW_TRAILING 1u

/*
 * Compresses len bytes into a malloc'd gzip member in *out (the caller
 * frees it), its size in *outlen. Returns 0, or -1 (out of memory, input
 * over 4 GiB).
 */
int pwx_gzip(const void *in, size_t len, uint8_t **out, size_t *outlen);

/*
 * Inflates one gzip member into a malloc'd buffer in *out (the caller frees
 * it; NUL-terminated, *outlen not counting the NUL). Returns 0, or -1 when
 * the input is corrupt or truncated, inflates to more than `limit` bytes
 * (which must be above 0), is over 4 GiB, when memory runs out, or, without
 * PWX_GUNZIP_ALLOW_TRAILING in flags, when bytes follow the member.
 */
int pwx_gunzip(const void *in, size_t len, size_t limit, unsigned flags, uint8_t **out,
	       size_t *outlen);

#endif /* PW_UTIL_GZIP_H */
