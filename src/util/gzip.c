/*
 * util/gzip.c - whole-buffer gzip for the stand-in's responses, and the
 * size-capped gunzip that error bodies and uploaded profiles go through.
 */
#include "util/gzip.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "strbuf.h"

/* 15 bits of window, +16: a gzip wrapper rather than zlib's. */
#define GZIP_WBITS (15 + 16)
#define INFLATE_CHUNK 16384

int pwx_gzip(const void *in, size_t len, uint8_t **out, size_t *outlen)
{
	z_stream zs;
	uLong bound;
	uint8_t *buf;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, GZIP_WBITS, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	bound = deflateBound(&zs, (uLong)len) + 32;
	buf = malloc(bound);
	if (!buf || len > UINT_MAX) {
		free(buf);
		deflateEnd(&zs);
		return -1;
	}
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	zs.next_out = buf;
	zs.avail_out = (uInt)bound;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
		free(buf);
		deflateEnd(&zs);
		return -1;
	}
	*outlen = zs.total_out;
	*out = buf;
	deflateEnd(&zs);
	return 0;
}

int pwx_gunzip(const void *in, size_t len, size_t limit, unsigned flags, uint8_t **out,
	       size_t *outlen)
{
	struct strbuf sb;
	z_stream zs;
	uint8_t chunk[INFLATE_CHUNK];
	int rc = -1, zrc;

	/* The strbuf's cap is the size limit: an append past it fails. */
	strbuf_init(&sb, limit);
	memset(&zs, 0, sizeof(zs));
	if (len > UINT_MAX || inflateInit2(&zs, GZIP_WBITS) != Z_OK)
		return -1;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	do {
		zs.next_out = chunk;
		zs.avail_out = sizeof(chunk);
		zrc = inflate(&zs, Z_NO_FLUSH);
		if (zrc != Z_OK && zrc != Z_STREAM_END)
			goto out;
		if (strbuf_append(&sb, chunk, sizeof(chunk) - zs.avail_out) < 0)
			goto out;
		/* No progress and no end: the input is truncated. */
		if (zrc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0)
			goto out;
	} while (zrc != Z_STREAM_END);
	if (zs.avail_in != 0 && !(flags & PWX_GUNZIP_ALLOW_TRAILING))
		goto out;
	*out = (uint8_t *)strbuf_detach(&sb, outlen);
	rc = *out ? 0 : -1;
out:
	inflateEnd(&zs);
	strbuf_free(&sb);
	return rc;
}
