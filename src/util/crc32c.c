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
static uint32_t multmodp(uint32_t a, uint32_t b);
static uint32_t xpow8n(uint64_t n);

/* Long buffers are summed in three lanes of LANE bytes at a time: the
 * instruction takes three cycles to give its result but can start one
 * every cycle, so three independent sums run at once. The lanes are then
 * joined by shifting the first two by the length after them (multiplying
 * by x^(8 LANE) and x^(16 LANE)): the CRC register is linear. */
#define LANE 4096
static uint32_t lane_shift[2]; /* x^(8 LANE), x^(16 LANE) */
static pthread_once_t lane_once = PTHREAD_ONCE_INIT;

static void lane_build(void)
{
	lane_shift[0] = xpow8n(LANE);
	lane_shift[1] = xpow8n(2 * LANE);
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t c = ~crc;

	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	if (len >= 3 * LANE)
		pthread_once(&lane_once, lane_build);
	while (len >= 3 * LANE) {
		uint64_t b = 0, d = 0;

		for (size_t i = 0; i < LANE; i += 8) {
			uint64_t w0, w1, w2;

			memcpy(&w0, p + i, 8);
			memcpy(&w1, p + LANE + i, 8);
			memcpy(&w2, p + 2 * LANE + i, 8);
			c = _mm_crc32_u64(c, w0);
			b = _mm_crc32_u64(b, w1);
			d = _mm_crc32_u64(d, w2);
		}
		c = multmodp(lane_shift[1], (uint32_t)c) ^ multmodp(lane_shift[0], (uint32_t)b) ^
		    (uint32_t)d;
		p += 3 * LANE;
		len -= 3 * LANE;
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

/* x^(8 n): shifting a CRC register over n bytes is multiplying by it. */
static uint32_t xpow8n(uint64_t n)
{
	uint32_t p = 1u << 31; /* x^0 */
	unsigned k = 3; /* bytes: x^(8 n) = x^(n * 2^3) */

	pthread_once(&x2n_once, x2n_build);
	for (; n; n >>= 1, k++)
		if (n & 1)
			p = multmodp(x2n[k & 31], p);
	return p;
}

uint32_t pwx_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
	return multmodp(xpow8n(len_b), crc_a) ^ crc_b;
}
