/*
 * loader.h - loading a component plugin the way any host should: dlopen,
 * look up the one entry symbol, and check the ABI before anything else.
 */
#ifndef MOCKHOST_LOADER_H
#define MOCKHOST_LOADER_H

#include <stddef.h>

#include "component_abi.h"

struct plugin {
	void *dl;
	const struct component_descriptor *desc;
};

/* Loads `path`. Returns 0, or -1 with a message in err (NUL-terminated,
 * truncated to errlen) naming the plugin's and the host's ABI versions when
 * they disagree. */
int plugin_load(const char *path, struct plugin *p, char *err, size_t errlen);

/* dlclose()s the plugin. The plugin may stay mapped (see docs/abi.md). */
void plugin_unload(struct plugin *p);

/* The plugin to use when --plugin is not given: beside the running
 * executable when it exists there (a build tree), else the installed one.
 * Writes into buf and returns it. */
const char *plugin_default_path(char *buf, size_t len);

#endif /* MOCKHOST_LOADER_H */
