/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of the durable queue's
 * records: the SSE4.2 instruction when the CPU has it, a table otherwise.
 */
#ifndef PW_UTIL_CRC32C_H
#define PW_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc (0 to start) over len bytes of buf and returns the result.
 * Chaining works like zlib's crc32(): crc(crc(0, a), b) == crc(0, a || b).
 * crc32c("123456789") is 0xE3069283. Thread-safe. */
uint32_t pwx_crc32c(uint32_t crc, const void *buf, size_t len);

/* crc(0, a || b) from crc(0, a), crc(0, b) and the length of b, without
 * reading either: a record's checksum over a header only known later and
 * a payload summed earlier. */
uint32_t pwx_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/* The table version alone, so tests can compare both paths on one CPU. */
uint32_t pwx_crc32c_table(uint32_t crc, const void *buf, size_t len);

/* Whether pwx_crc32c() uses the CPU instruction. */
int pwx_crc32c_hw(void);

#endif /* PW_UTIL_CRC32C_H */
