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

/*
 * Combining: with CRCs as polynomials over GF(2) modulo the (reflected)
 * Castagnoli polynomial, crc(a || b) is crc(a) times x^(8 len(b)) plus
 * crc(b); the pre- and post-inversions cancel out as in zlib. x2n[k] holds
 * x^(2^k), so x^(8n) is a product of at most 64 table entries.
 */
static uint32_t x2n[32];
static pthread_once_t x2n_once = PTHREAD_ONCE_INIT;

/* a * b modulo the polynomial, bit 31 being x^0 (reflected order). */
static uint32_t multmodp(uint32_t a, uint32_t b)
{
	uint32_t m = 1u << 31, p = 0;

	for (;;) {
		if (a & m) {
			p ^= b;
			if ((a & (m - 1)) == 0)
				break;
		}
		m >>= 1;
		b = (b & 1) ? (b >> 1) ^ POLY : b >> 1;
	}
	return p;
}

static void x2n_build(void)
{
	uint32_t p = 1u << 30; /* x^1 */

	x2n[0] = p;
	for (int k = 1; k < 32; k++)
		x2n[k] = p = multmodp(p, p);
}

uint32_t pwx_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
	uint32_t p = 1u << 31; /* x^0 */
	unsigned k = 3; /* bytes: x^(8 len_b) = x^(len_b * 2^3) */

	pthread_once(&x2n_once, x2n_build);
	for (uint64_t n = len_b; n; n >>= 1, k++)
		if (n & 1)
			p = multmodp(x2n[k & 31], p);
	return multmodp(p, crc_a) ^ crc_b;
}
