/* A plugin built against a future ABI major version: hosts must refuse it. */
#include "component_abi.h"

static const struct component_descriptor desc = {
	.struct_size = sizeof(struct component_descriptor),
	.abi_major = COMPONENT_ABI_MAJOR + 1,
	.abi_minor = 0,
	.name = "wrong.major",
	.version = "9.9.9",
};

__attribute__((visibility("default"))) const struct component_descriptor *component_plugin_entry(
	void);

const struct component_descriptor *component_plugin_entry(void)
{
	return &desc;
}
