/*
 * component_abi.h - a host-neutral ABI for loading pipeline components from
 * shared objects.
 *
 * A component plugin exports exactly one symbol, COMPONENT_ENTRY_SYMBOL, a
 * function returning a pointer to a constant struct component_descriptor.
 * The host checks abi_major and struct_size before touching anything else.
 *
 * Compatibility rules:
 *  - every struct starts with a size (and, where useful, a version) field;
 *  - new fields are only ever appended at the end of a struct, and bump
 *    COMPONENT_ABI_MINOR; removing or changing a field bumps
 *    COMPONENT_ABI_MAJOR;
 *  - a host refuses a descriptor whose abi_major differs from its own or
 *    whose struct_size is smaller than the fields it needs.
 *
 * Nothing in this header is specific to one component. Component-specific
 * export types (such as a profile receiver) live in the component's own
 * public headers.
 *
 * The header compiles as C99 and as C++.
 */
#ifndef COMPONENT_ABI_H
#define COMPONENT_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COMPONENT_ABI_MAJOR 1
#define COMPONENT_ABI_MINOR 0

/* Name of the single exported symbol. Its type is component_entry_fn. */
#define COMPONENT_ENTRY_SYMBOL "component_plugin_entry"

/* Status codes returned by every fallible ABI function. component_strerror
 * in the descriptor turns them into text. */
enum component_status {
	COMPONENT_OK = 0,
	COMPONENT_EINVAL = 1, /* a NULL or malformed argument */
	COMPONENT_ECONFIG = 2, /* the configuration document is invalid */
	COMPONENT_ENOMEM = 3, /* out of memory */
	COMPONENT_ENOTFOUND = 4, /* no such export */
	COMPONENT_EVERSION = 5, /* host and plugin ABI versions disagree */
	COMPONENT_EDELIVERY = 6, /* at least one destination failed */
	COMPONENT_ETIMEDOUT = 7, /* the caller's deadline passed */
	COMPONENT_ESHUTDOWN = 8, /* the instance is being destroyed */
	COMPONENT_EOVERLOAD = 9, /* a resource limit refused the work */
	COMPONENT_EINTERNAL = 10 /* a bug or an unexpected library failure */
};

enum component_log_level {
	COMPONENT_LOG_DEBUG = 0,
	COMPONENT_LOG_INFO = 1,
	COMPONENT_LOG_WARN = 2,
	COMPONENT_LOG_ERROR = 3
};

/* One structured log field. Both strings are borrowed for the duration of
 * the log call only. */
struct component_log_field {
	const char *key;
	const char *value;
};

/*
 * Services the host hands to create(). The plugin copies what it keeps: the
 * struct and its strings may be freed by the host once create() returns,
 * except `log_user`, which must stay valid until destroy() returns.
 */
struct component_host {
	uint32_t struct_size; /* sizeof(struct component_host) as the host built it */
	uint16_t abi_major; /* COMPONENT_ABI_MAJOR the host was built with */
	uint16_t abi_minor; /* COMPONENT_ABI_MINOR the host was built with */
	/*
	 * Logger, optional (NULL: the plugin logs nothing). Called from any
	 * plugin thread, possibly concurrently: it must be thread-safe. It must
	 * not call back into the plugin. `msg` and `fields` are borrowed for the
	 * duration of the call.
	 */
	void (*log)(void *log_user, enum component_log_level level, const char *msg,
		    const struct component_log_field *fields, size_t nfields);
	void *log_user;
	/* Lowest level passed to log(); lower levels are not formatted at all. */
	enum component_log_level log_level;
	/* Optional stable id of the host instance (NULL or ""). */
	const char *instance_id;
	/* Optional product token such as "myhost/1.2" (NULL or ""), put in front
	 * of the plugin's own token in User-Agent headers. */
	const char *user_agent;
};

/* Health as last reported by the instance. */
struct component_health {
	uint32_t struct_size; /* set by the caller to sizeof(struct component_health) */
	int healthy; /* 1 healthy, 0 unhealthy */
	/* Why the instance is unhealthy ("" when healthy). Written into the
	 * caller's buffer, NUL-terminated and truncated to fit. */
	char message[4096];
	int64_t changed_unix_ms; /* wall-clock time of the last change of `healthy` */
};

/* Receives chunks of text (metrics, debug information). `data` is borrowed
 * for the call only and is not NUL-terminated. Return 0 to continue, non-zero
 * to stop the writer early. */
typedef int (*component_sink_fn)(void *sink_user, const char *data, size_t len);

struct component_instance; /* opaque */

struct component_descriptor {
	uint32_t struct_size; /* sizeof(struct component_descriptor) in the plugin */
	uint16_t abi_major;
	uint16_t abi_minor;
	const char *name; /* component name, e.g. "pyroscope.write"; static */
	const char *version; /* plugin version (semantic versioning); static */

	/*
	 * Builds an instance from a configuration document.
	 * host:   services; see struct component_host. Required.
	 * config: NUL-terminated document text (JSON). Borrowed.
	 * out:    receives the instance on success, NULL on failure.
	 * error:  if not NULL, receives a message on failure (NULL on success),
	 *         owned by the caller, freed with free_string().
	 * Thread-safe: may be called concurrently for different instances.
	 */
	int (*create)(const struct component_host *host, const char *config,
		      struct component_instance **out, char **error);

	/*
	 * Hot reload. A valid document replaces the configuration atomically;
	 * work already under way finishes with the configuration it started
	 * with. An invalid document changes nothing, returns COMPONENT_ECONFIG
	 * and marks the instance unhealthy with the reason until a valid
	 * document is applied. Exports stay valid across updates.
	 * Thread-safe with every other call on the instance except destroy().
	 */
	int (*update)(struct component_instance *inst, const char *config, char **error);

	/*
	 * Looks up an export by name and stores a borrowed pointer to it in
	 * *out. The pointer stays valid, with the same value, until destroy()
	 * returns. The type behind it is defined by the component's public
	 * headers (for pyroscope.write: "receiver" is a struct pw_receiver).
	 * Thread-safe.
	 */
	int (*get_export)(struct component_instance *inst, const char *name, const void **out);

	/* Fills *out (whose struct_size the caller sets). Thread-safe. */
	int (*health)(struct component_instance *inst, struct component_health *out);

	/* Writes the Prometheus text exposition (format 0.0.4) to sink.
	 * Thread-safe. */
	int (*metrics)(struct component_instance *inst, component_sink_fn sink, void *sink_user);

	/* Writes debug information as a JSON document to sink. Secrets are
	 * redacted. Thread-safe. */
	int (*debug_info)(struct component_instance *inst, component_sink_fn sink, void *sink_user);

	/*
	 * Stops the instance. Work under way is drained for a bounded time and
	 * then cancelled; every completion callback still fires exactly once,
	 * before destroy() returns. Accepts NULL. No other call on the instance
	 * may run concurrently with or after destroy().
	 */
	void (*destroy)(struct component_instance *inst);

	/* Frees a string returned through an `error` out-parameter. Accepts NULL. */
	void (*free_string)(char *s);

	/* Static text for a status code; never NULL. */
	const char *(*strerror)(int status);
};

/* Type of the exported entry point. It takes no arguments, never fails and
 * returns a pointer to static storage. */
typedef const struct component_descriptor *(*component_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* COMPONENT_ABI_H */
