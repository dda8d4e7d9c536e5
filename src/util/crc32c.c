/*
 * crc32c.c - CRC-32C with the SSE4.2 crc32 instruction on x86-64 when the
 * CPU has it (checked once at run time), and a byte table elsewhere.
 */
#include "util/crc32c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define HAVE_X86_CRC 1
#endif

#define POLY 0x82F63B78u /* reflected Castagnoli polynomial */

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_build(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
		table[i] = c;
	}
}

uint32_t pwx_crc32c_table(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	pthread_once(&table_once, table_build);
	crc = ~crc;
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#ifdef HAVE_X86_CRC
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t c = ~crc;

	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#endif

/* -1 unknown, 0 table, 1 instruction. */
static atomic_int hw_state = -1;

int pwx_crc32c_hw(void)
{
	int s = atomic_load_explicit(&hw_state, memory_order_relaxed);

	if (s < 0) {
#ifdef HAVE_X86_CRC
		__builtin_cpu_init();
		s = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
		s = 0;
#endif
		atomic_store_explicit(&hw_state, s, memory_order_relaxed);
	}
	return s;
}

uint32_t pwx_crc32c(uint32_t crc, const void *buf, size_t len)
{
#ifdef HAVE_X86_CRC
	if (pwx_crc32c_hw())
		return crc_hw(crc, buf, len);
#endif
	return pwx_crc32c_table(crc, buf, len);
}
