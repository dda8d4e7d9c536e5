/*
 * loader.c - dlopen a component plugin and check its descriptor.
 */
#define _GNU_SOURCE
#include "loader.h"

#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef PW_DEFAULT_PLUGIN_DIR
#define PW_DEFAULT_PLUGIN_DIR "/usr/local/lib/component-plugins"
#endif

#define PLUGIN_FILE "pyroscope_write.so"

/* The descriptor fields this host uses end with strerror. */
#define DESC_MIN_SIZE (offsetof(struct component_descriptor, strerror) + sizeof(void *))

int plugin_load(const char *path, struct plugin *p, char *err, size_t errlen)
{
	component_entry_fn entry;
	const struct component_descriptor *d;
	void *sym;

	memset(p, 0, sizeof(*p));
	p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!p->dl) {
		snprintf(err, errlen, "cannot load plugin %s: %s", path, dlerror());
		return -1;
	}
	sym = dlsym(p->dl, COMPONENT_ENTRY_SYMBOL);
	if (!sym) {
		snprintf(err, errlen, "%s is not a component plugin: no symbol %s", path,
			 COMPONENT_ENTRY_SYMBOL);
		goto fail;
	}
	/* POSIX guarantees this conversion for dlsym results. */
	memcpy(&entry, &sym, sizeof(entry));
	d = entry();
	if (!d) {
		snprintf(err, errlen, "%s: the entry point returned no descriptor", path);
		goto fail;
	}
	if (d->abi_major != COMPONENT_ABI_MAJOR) {
		snprintf(
			err, errlen,
			"%s implements component ABI %u.%u, this host speaks %d.%d: major versions "
			"differ, refusing to load",
			path, d->abi_major, d->abi_minor, COMPONENT_ABI_MAJOR, COMPONENT_ABI_MINOR);
		goto fail;
	}
	if (d->struct_size < DESC_MIN_SIZE) {
		snprintf(err, errlen,
			 "%s: descriptor of %u bytes is smaller than ABI %d.%d needs (%zu); plugin "
			 "ABI %u.%u",
			 path, d->struct_size, COMPONENT_ABI_MAJOR, COMPONENT_ABI_MINOR,
			 (size_t)DESC_MIN_SIZE, d->abi_major, d->abi_minor);
		goto fail;
	}
	if (!d->create || !d->update || !d->get_export || !d->health || !d->metrics ||
	    !d->destroy || !d->free_string || !d->strerror) {
		snprintf(err, errlen, "%s: descriptor is missing functions", path);
		goto fail;
	}
	p->desc = d;
	return 0;
fail:
	dlclose(p->dl);
	p->dl = NULL;
	return -1;
}

void plugin_unload(struct plugin *p)
{
	if (p->dl)
		dlclose(p->dl);
	memset(p, 0, sizeof(*p));
}

const char *plugin_default_path(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		snprintf(buf, len, "%s/%s", dirname(exe), PLUGIN_FILE);
		if (access(buf, R_OK) == 0)
			return buf;
	}
	snprintf(buf, len, "%s/%s", PW_DEFAULT_PLUGIN_DIR, PLUGIN_FILE);
	return buf;
}
