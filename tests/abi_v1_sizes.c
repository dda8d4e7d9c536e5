/*
 * abi_v1_sizes.c - the struct sizes of the shipped ABI headers, for the
 * abi_grow suite, whose own sources see grown copies of those headers.
 */
#include <stdint.h>

#include "abi_v1_sizes.h"
#include "component_abi.h"
#include "pyroscope_write.h"

const uint32_t abi_shipped_push_size = sizeof(struct pw_push);
const uint32_t abi_shipped_ingest_size = sizeof(struct pw_ingest);
const uint32_t abi_shipped_health_size = sizeof(struct component_health);
const uint32_t abi_shipped_host_size = sizeof(struct component_host);
const uint32_t abi_shipped_descriptor_size = sizeof(struct component_descriptor);
const uint32_t abi_shipped_receiver_size = sizeof(struct pw_receiver);
