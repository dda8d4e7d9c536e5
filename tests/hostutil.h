/*
 * hostutil.h - a minimal in-test host: loads the built plugin with dlopen
 * exactly as a host does, creates instances from JSON text, captures the
 * plugin's log lines and wraps the receiver.
 */
#ifndef TEST_HOSTUTIL_H
#define TEST_HOSTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "component_abi.h"
#include "pyroscope_write.h"

struct th_plugin {
	void *dl;
	const struct component_descriptor *d;
};

/* Loads $PW_PLUGIN (or `path` when not NULL). Aborts the test on failure. */
void th_load(struct th_plugin *p, const char *path);
void th_unload(struct th_plugin *p);

struct th_instance {
	struct th_plugin *p;
	struct component_instance *inst;
	const struct pw_receiver *rx;
};

/* Creates an instance; returns the status, and the error text (malloc'd,
 * caller frees with free()) in *error when not NULL. */
int th_create(struct th_plugin *p, const char *config, struct th_instance *out, char **error);
void th_destroy(struct th_instance *in);

/* Every log line the plugin wrote since the last th_logs_clear(), as
 * "level msg k=v k=v\n" text. The returned string is a copy: free() it. */
char *th_logs(void);
void th_logs_clear(void);
bool th_logs_contain(const char *needle);

/* The metrics exposition as a malloc'd string. */
char *th_metrics(struct th_instance *in);
/* The debug information (JSON) as a malloc'd string. */
char *th_debug_info(struct th_instance *in);
/* The value of one sample line, e.g.
 * th_metric(in, "pyroscope_write_sent_profiles_total{endpoint=\"a\"}"); -1 if absent. */
double th_metric(struct th_instance *in, const char *series);
/* th_metric of name{endpoint="ep"}. */
double th_ep_metric(struct th_instance *in, const char *name, const char *ep);

/* A blocking push of one label set (NULL-terminated name, value pairs) and
 * one sample. Returns the status; *error (if not NULL) gets the malloc'd text. */
int th_push(struct th_instance *in, const char *const *labels, const void *data, size_t len,
	    int64_t timeout_ms, char **error);

/* Monotonic deadline `ms` from now (0: none). */
int64_t th_deadline(int64_t ms);

/* A small valid gzip-compressed pprof profile (static storage). */
const uint8_t *th_pprof_gz(size_t *len);

/* A valid raw pprof of at least `size` bytes (malloc'd): a small profile
 * followed by string-table entries of text that varies with seed. Large
 * enough, it is sent from the caller's memory rather than copied. */
uint8_t *th_big_pprof(size_t size, unsigned seed, size_t *len);

struct standin;

/* Starts a strict stand-in on an ephemeral loopback port; aborts the test
 * on failure. Stop it with standin_stop(). */
struct standin *th_sink_start(void);

/* Monotonic time in seconds. */
double th_now_s(void);

/* True when the suite runs under valgrind (PW_UNDER_VALGRIND set by the
 * valgrind test setup): loops scale down, timeouts scale up. */
bool th_under_valgrind(void);

/* Replaces every occurrence of key in tmpl by value; malloc'd. */
char *th_subst(const char *tmpl, const char *key, const char *value);

#endif /* TEST_HOSTUTIL_H */
