/*
 * run.c - `mockhost run`, the long-running host.
 *
 * One instance of the component lives for the whole process. The main thread
 * owns the lifecycle: it takes SIGHUP/SIGINT/SIGTERM through a signalfd
 * (the signals are blocked before any thread starts, so no thread ever runs
 * a signal handler) and watches the configuration file's directory with
 * inotify. HTTP requests are served by the network listener (src/listen/,
 * one event-driven thread); its handlers call into the instance only through
 * a gate, so that destroy() can wait until no other call on the instance is
 * running, as the ABI demands.
 *
 * The request handlers live in run_http.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <jansson.h>

#include "component_abi.h"
#include "config.h"
#include "duration.h"
#include "hostsvc.h"
#include "loader.h"
#include "mockhost.h"
#include "pyroscope_write.h"
#include "run_http.h"
#include "run_state.h"
#include "util/clock.h"
#include "listen/listen.h"
#include "standin/httpd.h" /* standin_split_listen() */
#include "strbuf.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

#define DEFAULT_LISTEN "127.0.0.1:12345"
/* As pyroscope.receive_http since it stopped starving upstream writers. */
#define DEFAULT_CONN_LIMIT 16384
#define DEFAULT_REQUEST_TIMEOUT_NS (30 * 1000000000LL)
#define DEFAULT_DRAIN_TIMEOUT_NS (10 * 1000000000LL)
/* The listener's limits; see docs/mockhost.md. */
#define DEFAULT_MAX_CONNS 16384
#define DEFAULT_HEADER_TIMEOUT_MS 10000
#define DEFAULT_BODY_TIMEOUT_MS 60000
#define DEFAULT_IDLE_TIMEOUT_MS 60000
#define DEFAULT_MAX_HEADER (16 * 1024)
/* As the component's own default max_inflight_bytes. */
#define DEFAULT_BUDGET (256LL << 20)
/* After the drain, how long answers already decided may take to be sent. */
#define STOP_GRACE_MS 2000
/* Editors write a file in several steps; settle before re-reading it. */
#define WATCH_SETTLE_MS 10
#define WATCH_SETTLE_MAX_MS 200
/* How often a lost watch (the directory was removed or renamed) is tried
 * again until the directory is back. */
#define WATCH_RETRY_MS 250

/* ---- reloads ---- */

/* Request bodies are reserved against the component's max_inflight_bytes
 * before they are read, so a burst cannot take more memory than the
 * component would hold for it. */
static int64_t body_budget(const char *json)
{
	json_t *doc = json ? json_loads(json, 0, NULL) : NULL;
	json_t *v = json_object_get(doc, "max_inflight_bytes");
	int64_t n = json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v)
								    : DEFAULT_BUDGET;

	json_decref(doc);
	return n;
}

static void set_host_reason(struct run *r, char *reason)
{
	pthread_mutex_lock(&r->mu);
	free(r->host_reason);
	r->host_reason = reason;
	pthread_mutex_unlock(&r->mu);
}

static void count_reload(struct run *r, bool ok)
{
	pthread_mutex_lock(&r->mu);
	if (ok)
		r->reloads_ok++;
	else
		r->reloads_failed++;
	r->last_reload_ok = ok;
	pthread_mutex_unlock(&r->mu);
}

/*
 * Re-reads the configuration file and hands it to update(). `force` is
 * false for file-change events: an unchanged document is then not applied
 * again (editors and atomic renames fire several events per save).
 * Returns 1 when nothing changed, 0 when applied, -1 when refused (with a
 * malloc'd *why when why is not NULL).
 */
static int run_reload(struct run *r, const char *source, bool force, char **why)
{
	char *json = NULL, *err = NULL, *reason = NULL;
	int rc = -1, st;

	if (why)
		*why = NULL;
	pthread_mutex_lock(&r->reload_mu);
	if (mockhost_load_config(r->config_path, r->component, &json, &err) < 0) {
		reason = pw_asprintf("reading %s: %s", r->config_path, err ? err : "failed");
		free(err);
		err = NULL;
		run_log1(r, COMPONENT_LOG_WARN,
			 "configuration refused, the last valid one stays in use", "source", source,
			 "reason", reason ? reason : "out of memory");
		count_reload(r, false);
		set_host_reason(r, pw_strdup(reason));
		/* What was last tried is now this unreadable file: the next
		 * valid one is applied even when it equals the one before,
		 * which is what clears the refusal. */
		free(r->last_json);
		r->last_json = NULL;
		goto out;
	}
	if (!force && r->last_json && strcmp(json, r->last_json) == 0) {
		rc = 1;
		goto out;
	}
	if (!run_gate_enter(r)) {
		reason = pw_strdup("shutting down");
		goto out;
	}
	st = r->d->update(r->inst, json, &err);
	run_gate_leave(r);
	free(r->last_json);
	r->last_json = json;
	json = NULL;
	set_host_reason(r, NULL);
	if (st == COMPONENT_OK) {
		listen_set_budget(r->listener, body_budget(r->last_json));
		run_log1(r, COMPONENT_LOG_INFO, "configuration reloaded", "source", source, NULL,
			 NULL);
		count_reload(r, true);
		rc = 0;
	} else {
		reason = pw_asprintf("%s: %s", r->d->strerror(st), err ? err : "");
		run_log1(r, COMPONENT_LOG_WARN,
			 "configuration refused, the last valid one stays in use", "source", source,
			 "reason", reason ? reason : "out of memory");
		count_reload(r, false);
	}
	r->d->free_string(err);
out:
	pthread_mutex_unlock(&r->reload_mu);
	free(json);
	if (why && rc < 0)
		*why = reason ? reason : pw_strdup("out of memory");
	else
		free(reason);
	return rc;
}

/* ---- the main loop ---- */

struct watch {
	int fd;
	int wd; /* the directory's watch; -1 while it is lost */
	char *dir;
	char *base;
};

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)

static int watch_open(struct watch *w, const char *path, char **err)
{
	char *a = pw_strdup(path), *b = pw_strdup(path);

	w->fd = w->wd = -1;
	w->dir = w->base = NULL;
	if (!a || !b) {
		free(a);
		free(b);
		*err = pw_strdup("out of memory");
		return -1;
	}
	w->dir = pw_strdup(dirname(a));
	w->base = pw_strdup(basename(b));
	free(a);
	free(b);
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0 || !w->dir || !w->base) {
		*err = pw_asprintf("inotify: %s", strerror(errno));
		return -1;
	}
	/* The directory, not the file: an editor or a ConfigMap update
	 * replaces the file by a rename, which a watch on the file itself
	 * would not survive. */
	w->wd = inotify_add_watch(w->fd, w->dir, WATCH_MASK);
	if (w->wd < 0) {
		*err = pw_asprintf("watching %s: %s", w->dir, strerror(errno));
		return -1;
	}
	return 0;
}

static void watch_close(struct watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->dir);
	free(w->base);
}

/* The directory itself went away (removed, or renamed so that the path no
 * longer leads to it): no event about the file can come any more. */
static void watch_lose(struct watch *w, const struct inotify_event *ev)
{
	if (ev->wd != w->wd || w->wd < 0)
		return;
	if (ev->mask & IN_MOVE_SELF)
		inotify_rm_watch(w->fd, w->wd);
	w->wd = -1;
}

/* Reads pending events; true when one concerns the configuration file (or
 * a Kubernetes-style "..data" swap beside it). */
static bool watch_read(struct watch *w)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool hit = false;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->len &&
			    (strcmp(ev->name, w->base) == 0 || strncmp(ev->name, "..", 2) == 0))
				hit = true;
			if (ev->mask & IN_Q_OVERFLOW)
				hit = true;
			if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
				watch_lose(w, ev);
			p += sizeof(*ev) + ev->len;
		}
	}
	return hit;
}

/* Tries to watch the directory again; true once it is back. */
static bool watch_rearm(struct watch *w)
{
	w->wd = inotify_add_watch(w->fd, w->dir, WATCH_MASK | IN_ONLYDIR);
	return w->wd >= 0;
}

/* After a change, waits until the directory has been quiet for a moment so
 * a save in several steps is read once, complete. */
static void watch_settle(struct watch *w)
{
	int64_t until = pwx_now_ns() + WATCH_SETTLE_MAX_MS * 1000000LL;
	struct pollfd p = {.fd = w->fd, .events = POLLIN};

	while (pwx_now_ns() < until && poll(&p, 1, WATCH_SETTLE_MS) > 0)
		watch_read(w);
}

static void shutdown_host(struct run *r)
{
	int64_t deadline = pwx_now_ns() + r->drain_timeout_ns;
	char left[32];

	pthread_mutex_lock(&r->mu);
	r->draining = true;
	pthread_mutex_unlock(&r->mu);
	/* Stop accepting at once; requests under way are still served. */
	listen_quiesce(r->listener);

	pthread_mutex_lock(&r->mu);
	while (r->inflight > 0) {
		struct timespec ts;
		int64_t wait = deadline - pwx_now_ns();

		if (wait <= 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(wait / 1000000000LL);
		ts.tv_nsec += (long)(wait % 1000000000LL);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	}
	snprintf(left, sizeof(left), "%ld", r->inflight);
	pthread_mutex_unlock(&r->mu);
	run_log1(r, COMPONENT_LOG_INFO, "drained, stopping the component", "requests_left", left,
		 NULL, NULL);

	/* destroy() fires the completion of anything still under way, which
	 * answers the requests waiting on it: none stays suspended. */
	run_gate_close(r);
	r->d->destroy(r->inst);
	r->inst = NULL;
	listen_stop(r->listener, STOP_GRACE_MS);
	r->listener = NULL;
}

/*
 * Called after every wakeup: notices a watch that was lost and, while it
 * is, retries it. The directory may be deleted and created again (a
 * deployment tool recreating it); hot reload resumes once it is back, and
 * a configuration already in it is read at once.
 */
static void watch_keep(struct run *r, struct watch *w, bool *lost)
{
	if (w->wd < 0 && !*lost) {
		*lost = true;
		run_log1(r, COMPONENT_LOG_WARN,
			 "configuration directory gone, hot reload paused until it is back", "dir",
			 w->dir, NULL, NULL);
	}
	if (!*lost || !watch_rearm(w))
		return;
	*lost = false;
	run_log1(r, COMPONENT_LOG_INFO, "configuration directory back, hot reload resumed", "dir",
		 w->dir, NULL, NULL);
	if (access(r->config_path, F_OK) == 0)
		run_reload(r, "file", false, NULL);
}

static int main_loop(struct run *r, int sfd, struct watch *w)
{
	struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = w->fd, .events = POLLIN}};
	bool lost = false;

	for (;;) {
		int n = poll(p, 2, lost ? WATCH_RETRY_MS : -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (p[1].revents & POLLIN) {
			if (watch_read(w)) {
				watch_settle(w);
				run_reload(r, "file", false, NULL);
			}
		}
		watch_keep(r, w, &lost);
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
				continue;
			if (si.ssi_signo == SIGHUP) {
				run_reload(r, "SIGHUP", true, NULL);
			} else {
				run_log1(r, COMPONENT_LOG_INFO, "shutting down", "signal",
					 strsignal((int)si.ssi_signo), NULL, NULL);
				return 0;
			}
		}
	}
}

/* ---- options ---- */

static const char run_usage[] =
	"usage: mockhost [--plugin PATH] run --config FILE [OPTIONS]\n"
	"\n"
	"Keeps one instance of the component running: reloads FILE when it changes,\n"
	"on SIGHUP and on POST /-/reload; receives profiles as pyroscope.receive_http\n"
	"does; serves metrics and health. SIGINT/SIGTERM drain and exit 0.\n"
	"\n"
	"  --config FILE            JSON document, or Alloy syntax when it ends in .alloy\n"
	"  --component LABEL        which pyroscope.write block of an .alloy file to use\n"
	"  --listen ADDR:PORT       where to serve HTTP (default " DEFAULT_LISTEN "; port 0\n"
	"                           picks a free one; the URL is printed on stdout)\n"
	"  --conn-limit N           receiver requests served at once (default 16384);\n"
	"                           more are answered 429\n"
	"  --max-connections N      TCP connections open at once (default 16384); past\n"
	"                           it an idle one is closed, or the new one; 16 more\n"
	"                           are kept for /metrics and /-/ health checks\n"
	"  --header-timeout DUR     time from accept (or the last answer) to a whole\n"
	"                           request head, in total (10s)\n"
	"  --body-timeout DUR       time from the head to the whole body (60s)\n"
	"  --idle-timeout DUR       keep-alive connection with nothing to do (60s)\n"
	"  --max-header-size BYTES  request line and headers; larger: 431 (16384)\n"
	"  --max-body-size BYTES    request body; larger: 413, unread (67108864)\n"
	"  --tls-cert-file FILE     serve HTTPS with this PEM certificate (chain)...\n"
	"  --tls-key-file FILE      ...and this PEM private key\n"
	"  --tls-client-ca-file F   require client certificates signed by this CA\n"
	"  --request-timeout DUR    deadline of a request without Connect-Timeout-Ms (30s)\n"
	"  --drain-timeout DUR      how long SIGTERM waits for requests under way (10s)\n"
	"  --log-level LEVEL        debug, info, warn or error (default info)\n"
	"  --debug                  same as --log-level debug\n"
	"  --help                   this text\n"
	"\n"
	"HTTP: POST /ingest, POST /push.v1.PusherService/Push, GET /metrics,\n"
	"GET /-/healthy, GET /-/ready, POST /-/reload, GET /debug. See docs/mockhost.md.\n";

enum {
	RO_CONFIG = 256,
	RO_COMPONENT,
	RO_LISTEN,
	RO_CONN_LIMIT,
	RO_REQ_TIMEOUT,
	RO_DRAIN_TIMEOUT,
	RO_MAX_CONNS,
	RO_HEADER_TIMEOUT,
	RO_BODY_TIMEOUT,
	RO_IDLE_TIMEOUT,
	RO_MAX_HEADER,
	RO_MAX_BODY,
	RO_TLS_CERT,
	RO_TLS_KEY,
	RO_TLS_CA,
	RO_LOG_LEVEL,
	RO_DEBUG,
	RO_HELP,
};

static const struct option run_options[] = {
	{"config", required_argument, NULL, RO_CONFIG},
	{"component", required_argument, NULL, RO_COMPONENT},
	{"listen", required_argument, NULL, RO_LISTEN},
	{"conn-limit", required_argument, NULL, RO_CONN_LIMIT},
	{"request-timeout", required_argument, NULL, RO_REQ_TIMEOUT},
	{"drain-timeout", required_argument, NULL, RO_DRAIN_TIMEOUT},
	{"max-connections", required_argument, NULL, RO_MAX_CONNS},
	{"header-timeout", required_argument, NULL, RO_HEADER_TIMEOUT},
	{"body-timeout", required_argument, NULL, RO_BODY_TIMEOUT},
	{"idle-timeout", required_argument, NULL, RO_IDLE_TIMEOUT},
	{"max-header-size", required_argument, NULL, RO_MAX_HEADER},
	{"max-body-size", required_argument, NULL, RO_MAX_BODY},
	{"tls-cert-file", required_argument, NULL, RO_TLS_CERT},
	{"tls-key-file", required_argument, NULL, RO_TLS_KEY},
	{"tls-client-ca-file", required_argument, NULL, RO_TLS_CA},
	{"log-level", required_argument, NULL, RO_LOG_LEVEL},
	{"debug", no_argument, NULL, RO_DEBUG},
	{"help", no_argument, NULL, RO_HELP},
	{NULL, 0, NULL, 0},
};

static int usage_err(const char *what, const char *arg)
{
	fprintf(stderr, "mockhost run: %s%s%s%s\nrun 'mockhost run --help' for usage\n", what,
		arg ? " \"" : "", arg ? arg : "", arg ? "\"" : "");
	return EXIT_USAGE;
}

static int positive_duration(const char *s, int64_t *out)
{
	const char *why = NULL;

	return pw_duration_parse(s, out, &why) == 0 && *out > 0 ? 0 : -1;
}

/* A positive duration in milliseconds. */
static int positive_ms(const char *s, int64_t *ms)
{
	int64_t ns;

	if (positive_duration(s, &ns) < 0 || ns < 1000000)
		return -1;
	*ms = ns / 1000000;
	return 0;
}

/* A positive number up to max. */
static int positive_long(const char *s, long max, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return errno || *end || end == s || *out < 1 || *out > max ? -1 : 0;
}

/* The listener's options; 0 when c is one of them, 1 when it is not, or
 * EXIT_USAGE. */
static int parse_listener_opt(struct run *r, int c, const char *arg)
{
	switch (c) {
	case RO_MAX_CONNS:
		if (positive_long(arg, 1000000, &r->max_conns) < 0)
			return usage_err("--max-connections wants 1 to 1000000, got", arg);
		return 0;
	case RO_HEADER_TIMEOUT:
		if (positive_ms(arg, &r->header_timeout_ms) < 0)
			return usage_err("--header-timeout wants a duration of 1ms or more, got",
					 arg);
		return 0;
	case RO_BODY_TIMEOUT:
		if (positive_ms(arg, &r->body_timeout_ms) < 0)
			return usage_err("--body-timeout wants a duration of 1ms or more, got",
					 arg);
		return 0;
	case RO_IDLE_TIMEOUT:
		if (positive_ms(arg, &r->idle_timeout_ms) < 0)
			return usage_err("--idle-timeout wants a duration of 1ms or more, got",
					 arg);
		return 0;
	case RO_MAX_HEADER:
		if (positive_long(arg, 16L << 20, &r->max_header) < 0 || r->max_header < 1024)
			return usage_err("--max-header-size wants 1024 to 16777216 bytes, got",
					 arg);
		return 0;
	case RO_MAX_BODY:
		if (positive_long(arg, 1L << 40, &r->max_body) < 0)
			return usage_err("--max-body-size wants a positive number of bytes, got",
					 arg);
		return 0;
	case RO_TLS_CERT:
		r->tls_cert_file = arg;
		return 0;
	case RO_TLS_KEY:
		r->tls_key_file = arg;
		return 0;
	case RO_TLS_CA:
		r->tls_client_ca_file = arg;
		return 0;
	default:
		return 1;
	}
}

/* 0 to run, 1 after --help, EXIT_USAGE on errors. */
static int parse_run_opts(struct run *r, int argc, char **argv)
{
	const char *listen = DEFAULT_LISTEN;
	char *end;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", run_options, NULL)) != -1) {
		switch (c) {
		case RO_CONFIG:
			r->config_path = optarg;
			break;
		case RO_COMPONENT:
			r->component = optarg;
			break;
		case RO_LISTEN:
			listen = optarg;
			break;
		case RO_CONN_LIMIT:
			errno = 0;
			r->conn_limit = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || r->conn_limit < 1)
				return usage_err("--conn-limit wants a positive number, got",
						 optarg);
			break;
		case RO_REQ_TIMEOUT:
			if (positive_duration(optarg, &r->request_timeout_ns) < 0)
				return usage_err("--request-timeout wants a positive duration, got",
						 optarg);
			break;
		case RO_DRAIN_TIMEOUT:
			if (positive_duration(optarg, &r->drain_timeout_ns) < 0)
				return usage_err("--drain-timeout wants a positive duration, got",
						 optarg);
			break;
		case RO_LOG_LEVEL:
			if (mockhost_parse_level(optarg, &r->level) < 0)
				return usage_err(
					"--log-level wants debug, info, warn or error, got",
					optarg);
			break;
		case RO_DEBUG:
			r->level = COMPONENT_LOG_DEBUG;
			break;
		case RO_HELP:
			fputs(run_usage, stdout);
			return 1;
		default: {
			int rc = parse_listener_opt(r, c, optarg);

			if (rc == 1)
				return usage_err("unknown or incomplete option", argv[optind - 1]);
			if (rc != 0)
				return rc;
		}
		}
	}
	if (optind < argc)
		return usage_err("unexpected argument", argv[optind]);
	if (!r->config_path)
		return usage_err("--config FILE is required", NULL);
	if (standin_split_listen(listen, &r->listen_addr, &r->listen_port) < 0)
		return usage_err("--listen wants ADDR:PORT, got", listen);
	if (!r->tls_cert_file != !r->tls_key_file)
		return usage_err("--tls-cert-file and --tls-key-file go together", NULL);
	if (r->tls_client_ca_file && !r->tls_cert_file)
		return usage_err("--tls-client-ca-file needs --tls-cert-file and --tls-key-file",
				 NULL);
	return 0;
}

/* Creates the instance from the file. 0, or EXIT_FAIL after printing why. */
static int create_instance(struct run *r)
{
	struct component_host host;
	char *json = NULL, *err = NULL;
	const void *exp = NULL;
	int st;

	if (mockhost_load_config(r->config_path, r->component, &json, &err) < 0) {
		fprintf(stderr, "mockhost run: %s\n", err ? err : "cannot read the configuration");
		free(err);
		return EXIT_FAIL;
	}
	mockhost_host_init(&host, r->level);
	st = r->d->create(&host, json, &r->inst, &err);
	if (st != COMPONENT_OK) {
		fprintf(stderr, "mockhost run: %s: %s\n%s\n", r->config_path, r->d->strerror(st),
			err ? err : "");
		r->d->free_string(err);
		free(json);
		return EXIT_FAIL;
	}
	r->last_json = json;
	if (r->d->get_export(r->inst, PW_RECEIVER_EXPORT, &exp) != COMPONENT_OK || !exp) {
		fprintf(stderr, "mockhost run: the plugin has no \"receiver\" export\n");
		return EXIT_FAIL;
	}
	r->rx = exp;
	if (r->rx->struct_size < sizeof(struct pw_receiver) || !r->rx->push_async ||
	    !r->rx->ingest_async) {
		fprintf(stderr, "mockhost run: the plugin's receiver is too old for this host\n");
		return EXIT_FAIL;
	}
	return 0;
}

/*
 * glibc gives threads arenas of their own, up to eight per CPU, and
 * malloc_trim cannot return the top of a thread arena: after a burst of
 * large bodies the process would keep tens of MiB it no longer uses. As
 * many arenas as CPUs is enough for the threads that can run at once.
 * MALLOC_ARENA_MAX or GLIBC_TUNABLES in the environment take precedence.
 */
static void limit_arenas(void)
{
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
	const char *t = getenv("GLIBC_TUNABLES");
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (getenv("MALLOC_ARENA_MAX") || (t && strstr(t, "arena_max")))
		return;
	mallopt(M_ARENA_MAX, (int)(n < 2 ? 2 : n > 64 ? 64 : n));
#endif
}

int mockhost_run_main(const char *plugin_path, int argc, char **argv)
{
	struct run r;
	static const char *const ops_paths[] = {"/metrics", "/-/healthy", "/-/ready", NULL};
	struct listen_opts lo = {0};
	struct watch w = {.fd = -1, .wd = -1};
	char errbuf[1024], *err = NULL;
	sigset_t set;
	int sfd = -1, rc;

	memset(&r, 0, sizeof(r));
	r.conn_limit = DEFAULT_CONN_LIMIT;
	r.request_timeout_ns = DEFAULT_REQUEST_TIMEOUT_NS;
	r.drain_timeout_ns = DEFAULT_DRAIN_TIMEOUT_NS;
	r.level = COMPONENT_LOG_INFO;
	r.reload = run_reload;
	r.last_reload_ok = true;
	r.max_conns = DEFAULT_MAX_CONNS;
	r.header_timeout_ms = DEFAULT_HEADER_TIMEOUT_MS;
	r.body_timeout_ms = DEFAULT_BODY_TIMEOUT_MS;
	r.idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
	r.max_header = DEFAULT_MAX_HEADER;
	r.max_body = (long)MAX_BODY;
	rc = parse_run_opts(&r, argc, argv);
	if (rc != 0) {
		free(r.listen_addr);
		return rc == 1 ? 0 : rc;
	}
	limit_arenas();
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&r.cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_mutex_init(&r.mu, NULL);
	pthread_mutex_init(&r.reload_mu, NULL);

	/* Before any thread exists, so every thread inherits the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	rc = EXIT_FAIL;
	if (sfd < 0) {
		fprintf(stderr, "mockhost run: signalfd: %s\n", strerror(errno));
		goto out;
	}
	if (plugin_load(plugin_path, &r.plugin, errbuf, sizeof(errbuf)) < 0) {
		fprintf(stderr, "mockhost run: %s\n", errbuf);
		goto out;
	}
	r.d = r.plugin.desc;
	if (watch_open(&w, r.config_path, &err) < 0) {
		fprintf(stderr, "mockhost run: %s\n", err ? err : "cannot watch the configuration");
		goto out;
	}
	if (create_instance(&r) != 0)
		goto out;

	lo.addr = r.listen_addr;
	lo.port = r.listen_port;
	lo.header_timeout_ms = r.header_timeout_ms;
	lo.body_timeout_ms = r.body_timeout_ms;
	lo.idle_timeout_ms = r.idle_timeout_ms;
	lo.max_header = (size_t)r.max_header;
	lo.max_body = (size_t)r.max_body;
	lo.max_conns = (size_t)r.max_conns;
	lo.ops_headroom = OPS_CONN_HEADROOM;
	lo.ops_paths = ops_paths;
	lo.body_budget = body_budget(r.last_json);
	lo.tls_cert_file = r.tls_cert_file;
	lo.tls_key_file = r.tls_key_file;
	lo.tls_client_ca_file = r.tls_client_ca_file;
	lo.head = run_http_head;
	lo.handler = run_http_handler;
	lo.done = run_http_done;
	lo.user = &r;
	r.listener = listen_start(&lo, &err);
	if (!r.listener) {
		fprintf(stderr, "mockhost run: %s\n", err ? err : "cannot listen");
		goto out;
	}
	printf("mockhost run listening on %s://%s%s%s:%d\n", r.tls_cert_file ? "https" : "http",
	       strchr(r.listen_addr, ':') ? "[" : "", r.listen_addr,
	       strchr(r.listen_addr, ':') ? "]" : "", listen_port(r.listener));
	fflush(stdout);
	run_log1(&r, COMPONENT_LOG_INFO, "running", "config", r.config_path, "plugin", plugin_path);

	if (main_loop(&r, sfd, &w) < 0)
		fprintf(stderr, "mockhost run: poll: %s\n", strerror(errno));
	shutdown_host(&r);
	run_log1(&r, COMPONENT_LOG_INFO, "stopped", NULL, NULL, NULL, NULL);
	rc = 0;
out:
	if (r.listener) {
		/* Failure paths only: nothing can be in flight yet. */
		listen_stop(r.listener, 0);
	}
	if (r.inst)
		r.d->destroy(r.inst);
	if (r.d)
		plugin_unload(&r.plugin);
	watch_close(&w);
	if (sfd >= 0)
		close(sfd);
	free(err);
	free(r.last_json);
	free(r.host_reason);
	free(r.listen_addr);
	pthread_mutex_destroy(&r.reload_mu);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	return rc;
}
