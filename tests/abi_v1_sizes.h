/*
 * abi_v1_sizes.h - sizeof each ABI struct as the shipped headers declare
 * it (abi_v1_sizes.c is compiled against them, not the grown copies).
 */
#ifndef TEST_ABI_V1_SIZES_H
#define TEST_ABI_V1_SIZES_H

#include <stdint.h>

extern const uint32_t abi_shipped_push_size;
extern const uint32_t abi_shipped_ingest_size;
extern const uint32_t abi_shipped_health_size;
extern const uint32_t abi_shipped_host_size;
extern const uint32_t abi_shipped_descriptor_size;
extern const uint32_t abi_shipped_receiver_size;

#endif
