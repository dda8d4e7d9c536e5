/*
 * minimal_host.c - the smallest useful host of the pyroscope.write plugin:
 * load it, check its ABI, create an instance, push one profile, report.
 *
 * usage: minimal_host [-p PLUGIN] CONFIG SERVICE_NAME PROFILE
 *
 * CONFIG is the JSON configuration document itself when it starts with '{',
 * otherwise the name of a file holding it. PROFILE is a (gzip-compressed)
 * pprof file. Without -p the plugin is taken from PW_DEFAULT_PLUGIN_DIR.
 *
 * Build against an installed copy:
 *   cc $(pkg-config --cflags pyroscope-write) \
 *      -DPW_DEFAULT_PLUGIN_DIR="\"$(pkg-config --variable=plugindir pyroscope-write)\"" \
 *      minimal_host.c -o minimal_host -ldl
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "component_abi.h"
#include "pyroscope_write.h"

#ifndef PW_DEFAULT_PLUGIN_DIR
#define PW_DEFAULT_PLUGIN_DIR "/usr/local/lib/component-plugins"
#endif

/* The last descriptor field this host calls; older, shorter descriptors are refused. */
#define DESC_NEEDED (offsetof(struct component_descriptor, strerror) + sizeof(void *))
#define MAX_INPUT (64L << 20)

/* Reads a whole file into a NUL-terminated heap buffer. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > MAX_INPUT ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
		goto out;
	}
	if (buf) {
		buf[n] = '\0';
		*len = (size_t)n;
	}
out:
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	char default_path[4096];
	const char *plugin = default_path;
	void *dl = NULL, *sym;
	component_entry_fn entry;
	const struct component_descriptor *d = NULL;
	const char *cfg_arg, *service, *profile_path;
	struct component_host host = {0};
	struct component_instance *inst = NULL;
	struct component_health health = {0};
	struct pw_result result = {0};
	const struct pw_receiver *rx;
	const void *exp = NULL;
	char *config = NULL, *profile = NULL, *error = NULL;
	size_t config_len = 0, profile_len = 0;
	struct pw_label label;
	struct pw_sample sample;
	struct pw_push push;
	struct timespec now;
	int64_t deadline;
	int rc = 1, arg = 1, status;

	snprintf(default_path, sizeof(default_path), "%s/pyroscope_write.so",
		 PW_DEFAULT_PLUGIN_DIR);
	if (argc > 2 && strcmp(argv[1], "-p") == 0) {
		plugin = argv[2];
		arg = 3;
	}
	if (argc - arg != 3) {
		fprintf(stderr, "usage: %s [-p PLUGIN] CONFIG SERVICE_NAME PROFILE\n", argv[0]);
		return 2;
	}

	dl = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		fprintf(stderr, "cannot load %s: %s\n", plugin, dlerror());
		goto out;
	}
	sym = dlsym(dl, COMPONENT_ENTRY_SYMBOL);
	if (!sym) {
		fprintf(stderr, "%s: no symbol %s\n", plugin, COMPONENT_ENTRY_SYMBOL);
		goto out;
	}
	/* POSIX allows converting dlsym's result to a function pointer. */
	memcpy(&entry, &sym, sizeof(entry));
	d = entry();
	if (!d) {
		fprintf(stderr, "%s: the entry point returned no descriptor\n", plugin);
		goto out;
	}
	if (d->abi_major != COMPONENT_ABI_MAJOR || d->struct_size < DESC_NEEDED) {
		fprintf(stderr,
			"%s implements component ABI %u.%u (descriptor %u bytes); this host "
			"speaks %d.%d and needs %zu bytes\n",
			plugin, d->abi_major, d->abi_minor, d->struct_size, COMPONENT_ABI_MAJOR,
			COMPONENT_ABI_MINOR, DESC_NEEDED);
		goto out;
	}
	printf("loaded %s %s (component ABI %u.%u)\n", d->name, d->version, d->abi_major,
	       d->abi_minor);

	cfg_arg = argv[arg];
	service = argv[arg + 1];
	profile_path = argv[arg + 2];

	config = cfg_arg[0] == '{' ? strdup(cfg_arg) : read_file(cfg_arg, &config_len);
	profile = read_file(profile_path, &profile_len);
	if (!config || !profile) {
		fprintf(stderr, "cannot read %s\n", !config ? cfg_arg : profile_path);
		goto out;
	}

	host.struct_size = sizeof(host);
	host.abi_major = COMPONENT_ABI_MAJOR;
	host.abi_minor = COMPONENT_ABI_MINOR;
	host.user_agent = "minimal_host/1.0";
	status = d->create(&host, config, &inst, &error);
	if (status != COMPONENT_OK) {
		fprintf(stderr, "cannot create an instance: %s\n%s\n", d->strerror(status),
			error ? error : "");
		goto out;
	}
	if (d->get_export(inst, PW_RECEIVER_EXPORT, &exp) != COMPONENT_OK) {
		fprintf(stderr, "the plugin has no %s export\n", PW_RECEIVER_EXPORT);
		goto out;
	}
	rx = exp;

	label = (struct pw_label){.name = "service_name", .value = service};
	sample = (struct pw_sample){.data = (const uint8_t *)profile, .len = profile_len};
	push = (struct pw_push){.struct_size = sizeof(push),
				.labels = &label,
				.nlabels = 1,
				.samples = &sample,
				.nsamples = 1};

	/* Give up after 30 seconds rather than retrying forever. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	deadline = ((int64_t)now.tv_sec + 30) * 1000000000 + now.tv_nsec;
	status = rx->push(rx->ctx, &push, deadline, &result);

	printf("push: %s%s%s\n", d->strerror(status), result.error ? ": " : "",
	       result.error ? result.error : "");
	rx->free_result(&result);

	health.struct_size = sizeof(health);
	if (d->health(inst, &health) == COMPONENT_OK)
		printf("health: %s%s%s\n", health.healthy ? "healthy" : "unhealthy",
		       health.message[0] ? ": " : "", health.message);
	rc = status == COMPONENT_OK ? 0 : 1;
out:
	if (inst)
		d->destroy(inst);
	if (error)
		d->free_string(error);
	free(profile);
	free(config);
	if (dl)
		dlclose(dl);
	return rc;
}
