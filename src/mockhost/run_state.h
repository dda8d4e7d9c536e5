/*
 * run_state.h - what the two halves of `mockhost run` share: the host
 * state, and the services below both of them (logging, the gate around
 * calls into the instance) in run_state.c. run.c (the lifecycle, above)
 * and run_http.c (the HTTP handlers, below it) both use it. Reloads reach
 * the handlers as a function pointer that run.c sets, so that run_http.c
 * never calls up into run.c. Internal to the mock host.
 */
#ifndef MOCKHOST_RUN_STATE_H
#define MOCKHOST_RUN_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "component_abi.h"
#include "loader.h"
#include "pyroscope_write.h"
#include "listen/listen.h"

/* Connections allowed beyond --max-connections for /metrics, /-/healthy
 * and friends. */
#define OPS_CONN_HEADROOM 16

#define MAX_BODY ((size_t)64 << 20)
#define MAX_STAT_ROWS 256

enum route { R_INGEST, R_PUSH, R_METRICS, R_HEALTHY, R_READY, R_RELOAD, R_DEBUG, R_OTHER, R_COUNT };

struct stat_row {
	enum route route;
	int code;
	uint64_t count;
};

struct run {
	/* settings */
	const char *config_path;
	const char *component;
	char *listen_addr;
	int listen_port;
	long conn_limit;
	int64_t request_timeout_ns;
	int64_t drain_timeout_ns;
	enum component_log_level level;
	long max_conns;
	int64_t header_timeout_ms;
	int64_t body_timeout_ms;
	int64_t idle_timeout_ms;
	long max_header;
	long max_body;
	const char *tls_cert_file;
	const char *tls_key_file;
	const char *tls_client_ca_file;

	struct plugin plugin;
	const struct component_descriptor *d;
	struct component_instance *inst;
	const struct pw_receiver *rx;
	struct listen *listener;

	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cv; /* signalled when a counter below drops */
	int gate_active; /* calls into the instance under way */
	bool gate_closed; /* destroy() is next: no new calls */
	bool draining; /* SIGTERM seen: refuse new requests */
	long inflight; /* receiver requests being served */
	uint64_t limited; /* receiver requests refused by the limit */
	uint64_t reloads_ok;
	uint64_t reloads_failed;
	bool last_reload_ok;
	char *host_reason; /* a reload that never reached update(), or NULL */
	struct stat_row rows[MAX_STAT_ROWS];
	size_t nrows;

	/* Re-reads the configuration file and applies it (run.c sets it).
	 * Returns 1 (unchanged), 0 (applied) or -1 (refused, with a malloc'd
	 * *why). */
	int (*reload)(struct run *r, const char *source, bool force, char **why);
	pthread_mutex_t reload_mu; /* one reload at a time */
	char *last_json; /* the document last handed to update() */
};

/* Logs msg with up to two key/value fields (k1 or k2 NULL for fewer) when
 * level is at or above the configured one. */
void run_log1(struct run *r, enum component_log_level level, const char *msg, const char *k1,
	      const char *v1, const char *k2, const char *v2);

/* Every call into the instance is made between run_gate_enter() (false
 * once shutdown has closed the gate: make no call) and run_gate_leave(). */
bool run_gate_enter(struct run *r);
void run_gate_leave(struct run *r);
/* Closes the gate and waits until no call is under way. */
void run_gate_close(struct run *r);

#endif /* MOCKHOST_RUN_STATE_H */
