/*
 * bench.c - throughput, CPU, memory and latency of the pyroscope.write
 * plugin, measured side by side with a plain libcurl multi client and wrk
 * sending the same bytes to the same receiver.
 *
 * The plugin is loaded with dlopen and driven through the component ABI
 * exactly as a host drives it. The receiver (pw-bench-recv) must already
 * listen on --port .. --port+9; scripts/bench.sh starts it.
 *
 * Every figure comes from this one process run, so ratios compare runs made
 * minutes apart on the same machine under the same load.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "component_abi.h"
#include "labels.h"
#include "proto.h"
#include "pw_version.h"
#include "pyroscope_write.h"
#include "waitword.h"

#define NSIZES 3
#define MAX_EPS 10
#define MAX_SWEEP 8
#define INFLIGHT 64
#define BENCH_HOST_UA "pw-bench/1"

static const size_t nominal_sizes[NSIZES] = {2 * 1024, 64 * 1024, 1024 * 1024};
static const char *const size_names[NSIZES] = {"2 KiB", "64 KiB", "1 MiB"};
static const int ep_counts[] = {1, 3, 10};
#define NROWS ((int)(sizeof(ep_counts) / sizeof(ep_counts[0])))

static const struct pw_label bench_labels[] = {
	{"__name__", "process_cpu"},
	{"service_name", "pw-bench"},
};

struct opts {
	const char *plugin;
	const char *profiles; /* directory of real profiles, optional */
	const char *wrk; /* wrk binary, NULL: skip */
	int wrk_threads;
	int port;
	double secs; /* length of one measured run */
	int wrk_secs; /* wrk takes whole seconds */
	bool quick;
	const char *tmpdir;
	const char *max_conns; /* endpoint max_connections, NULL: the default */
	int refill; /* callback form: deliveries the host pushes per wake-up */
	bool copy; /* callback form without PW_PUSH_KEEP_UNTIL_DONE */
	const char *single; /* "KIND,ENDPOINTS,SIZE,CONCURRENCY": one kind of run, repeated */
	int rows; /* throughput rows: the first `rows` of ep_counts */
	const char *batch; /* JSON of each endpoint's batch block, NULL: none */
	const char *queue; /* --queue: directory for the queue's runs, NULL: none */
	int backlog_mib; /* --queue: size of the recovery backlog */
};

struct payload {
	uint8_t *profile; /* what the host pushes */
	size_t plen;
	char source[264];
	uint8_t *wire; /* the encoded PushRequest the plugin sends for it */
	size_t wlen;
};

/* Outcome of one measured run. */
struct run {
	double secs;
	uint64_t ok, failed;
	double cpu; /* user+sys seconds of this process during the run */
	double *lat; /* per-request latencies in seconds, when recorded */
	size_t nlat, caplat;
	pthread_mutex_t lat_lock;
	char first_err[256];
};

static struct opts o = {
	.port = 18080,
	.secs = 3.0,
	.wrk_secs = 3,
	.wrk_threads = 1,
	.tmpdir = "/tmp",
	.refill = 1,
	.rows = NROWS,
	.backlog_mib = 1024,
};

/* ---- small helpers ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static size_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, res = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "pw-bench: out of memory\n");
		exit(1);
	}
	return p;
}

static void run_init(struct run *r, bool record)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lat_lock, NULL);
	if (record) {
		r->caplat = 1 << 16;
		r->lat = xmalloc(r->caplat * sizeof(double));
	}
}

static void run_free(struct run *r)
{
	free(r->lat);
	pthread_mutex_destroy(&r->lat_lock);
	r->lat = NULL;
}

/* Caller holds lat_lock or is the only thread touching r. */
static void run_lat(struct run *r, double secs)
{
	if (!r->lat)
		return;
	if (r->nlat == r->caplat) {
		double *n = realloc(r->lat, 2 * r->caplat * sizeof(double));

		if (!n)
			return;
		r->lat = n;
		r->caplat *= 2;
	}
	r->lat[r->nlat++] = secs;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Percentile q (0..1) in milliseconds; sorts the samples. */
static double pct_ms(struct run *r, double q)
{
	size_t i;

	if (!r->nlat)
		return NAN;
	qsort(r->lat, r->nlat, sizeof(double), cmp_double);
	i = (size_t)(q * (double)(r->nlat - 1) + 0.5);
	return r->lat[i] * 1000.0;
}

static double rate(const struct run *r)
{
	return r->secs > 0 ? (double)r->ok / r->secs : 0;
}

/* ---- payloads ---- */

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *buf = NULL;

	if (!f)
		return NULL;
	if (fstat(fileno(f), &st) == 0 && st.st_size > 0) {
		buf = xmalloc((size_t)st.st_size);
		if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
			free(buf);
			buf = NULL;
		} else {
			*len = (size_t)st.st_size;
		}
	}
	fclose(f);
	return buf;
}

/* A real profile from o.profiles whose size is within 35% of the nominal
 * size (the closest one), or NULL. */
static uint8_t *real_profile(size_t nominal, size_t *len, char *name, size_t namecap)
{
	DIR *dir = o.profiles ? opendir(o.profiles) : NULL;
	struct dirent *de;
	char best[512] = "";
	double best_d = 0.35;

	if (!dir)
		return NULL;
	while ((de = readdir(dir))) {
		char path[512];
		struct stat st;
		double d;

		if (de->d_name[0] == '.' || strstr(de->d_name, "invalid"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", o.profiles, de->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		d = fabs((double)st.st_size - (double)nominal) / (double)nominal;
		if (d <= best_d) {
			best_d = d;
			snprintf(best, sizeof(best), "%s", path);
			snprintf(name, namecap, "%s", de->d_name);
		}
	}
	closedir(dir);
	return best[0] ? read_file(best, len) : NULL;
}

static void payload_build(struct payload *p, size_t nominal)
{
	struct pw_kvmap none = {0};
	struct pw_labelset ls = {0};
	struct pw_sample s;
	char *err = NULL;

	memset(p, 0, sizeof(*p));
	p->profile = real_profile(nominal, &p->plen, p->source, sizeof(p->source));
	if (!p->profile) {
		/* Profiles travel opaque: only their length matters to the
		 * transport. Pseudo-random bytes behave like compressed data. */
		uint64_t x = 0x9e3779b97f4a7c15ULL ^ nominal;

		p->plen = nominal;
		p->profile = xmalloc(nominal);
		for (size_t i = 0; i < nominal; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			p->profile[i] = (uint8_t)x;
		}
		snprintf(p->source, sizeof(p->source), "synthetic");
	}
	s.data = p->profile;
	s.len = p->plen;
	s.id = NULL;
	if (pw_labels_push(bench_labels, 2, &none, &ls, &err) < 0 ||
	    pw_proto_encode_push(&ls, &s, 1, &p->wire, &p->wlen) < 0) {
		fprintf(stderr, "pw-bench: cannot encode the request: %s\n", err ? err : "?");
		exit(1);
	}
	pw_labelset_free(&ls);
}

static void payload_free(struct payload *p)
{
	free(p->profile);
	free(p->wire);
}

/* ---- the plugin, as a host sees it ---- */

struct plugin {
	void *dl;
	const struct component_descriptor *d;
	struct component_instance *inst;
	const struct pw_receiver *rx;
};

static char *config_json(int neps, const char *gen)
{
	size_t cap = 256 + (size_t)neps * (160 + (o.batch ? strlen(o.batch) + 16 : 0));
	char *buf = xmalloc(cap);
	size_t n = 0;

	n += (size_t)snprintf(buf + n, cap - n, "{\"endpoint\":[");
	for (int i = 0; i < neps; i++)
		n += (size_t)snprintf(
			buf + n, cap - n,
			"%s{\"url\":\"http://127.0.0.1:%d\",\"name\":\"e%d\"%s%s%s%s%s%s%s}",
			i ? "," : "", o.port + i, i, gen ? ",\"headers\":{\"X-Bench-Gen\":\"" : "",
			gen ? gen : "", gen ? "\"}" : "",
			o.max_conns ? ",\"max_connections\":" : "", o.max_conns ? o.max_conns : "",
			o.batch ? ",\"batch\":" : "", o.batch ? o.batch : "");
	snprintf(buf + n, cap - n, "]}");
	return buf;
}

static void plugin_load(struct plugin *pl)
{
	component_entry_fn entry;
	void *sym;

	pl->dl = dlopen(o.plugin, RTLD_NOW | RTLD_LOCAL);
	if (!pl->dl) {
		fprintf(stderr, "pw-bench: %s\n", dlerror());
		exit(1);
	}
	sym = dlsym(pl->dl, COMPONENT_ENTRY_SYMBOL);
	if (!sym) {
		fprintf(stderr, "pw-bench: no %s in %s\n", COMPONENT_ENTRY_SYMBOL, o.plugin);
		exit(1);
	}
	memcpy(&entry, &sym, sizeof(entry));
	pl->d = entry();
	if (pl->d->abi_major != COMPONENT_ABI_MAJOR) {
		fprintf(stderr, "pw-bench: plugin ABI %u, expected %u\n", pl->d->abi_major,
			COMPONENT_ABI_MAJOR);
		exit(1);
	}
}

static void plugin_create(struct plugin *pl, const char *config)
{
	struct component_host host = {0};
	const void *exp = NULL;
	char *err = NULL;

	host.struct_size = sizeof(host);
	host.abi_major = COMPONENT_ABI_MAJOR;
	host.abi_minor = COMPONENT_ABI_MINOR;
	host.log_level = COMPONENT_LOG_ERROR;
	host.user_agent = BENCH_HOST_UA;
	if (pl->d->create(&host, config, &pl->inst, &err) != COMPONENT_OK ||
	    pl->d->get_export(pl->inst, PW_RECEIVER_EXPORT, &exp) != COMPONENT_OK) {
		fprintf(stderr, "pw-bench: create: %s\n", err ? err : "failed");
		exit(1);
	}
	pl->rx = exp;
}

static void plugin_destroy(struct plugin *pl)
{
	pl->d->destroy(pl->inst);
	pl->inst = NULL;
	pl->rx = NULL;
}

static void fill_push(struct pw_push *push, struct pw_sample *s, const struct payload *p)
{
	s->data = p->profile;
	s->len = p->plen;
	s->id = NULL;
	memset(push, 0, sizeof(*push));
	push->struct_size = sizeof(*push);
	push->labels = bench_labels;
	push->nlabels = 2;
	push->samples = s;
	push->nsamples = 1;
	/* The payload lives as long as the run: the callback form lets the
	 * component send large profiles from it (the blocking form does so
	 * anyway). --copy measures the component copying it instead. */
	push->flags = o.copy ? 0 : PW_PUSH_KEEP_UNTIL_DONE;
}

static void note_error(struct run *r, const char *e)
{
	if (!r->first_err[0])
		snprintf(r->first_err, sizeof(r->first_err), "%s", e ? e : "(no message)");
}

/* Callback form: keep `inflight` deliveries under way for o.secs. */
struct cb_state {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int inflight;
	int low; /* the host is woken when inflight falls to this */
	struct run *r;
};

static void cb_done(void *user, const struct pw_result *res)
{
	struct cb_state *st = user;
	bool wake;

	pthread_mutex_lock(&st->lock);
	st->inflight--;
	if (res->status == COMPONENT_OK) {
		st->r->ok++;
	} else {
		st->r->failed++;
		note_error(st->r, res->error);
	}
	wake = st->inflight <= st->low;
	pthread_mutex_unlock(&st->lock);
	/* Signalled after the unlock, so the host does not wake only to wait
	 * for the mutex (st outlives every callback). */
	if (wake)
		pthread_cond_signal(&st->cond);
}

/* Waits until fewer than `inflight` pushes are out, then pushes one more
 * (callback form). */
static void cb_push(struct plugin *pl, const struct pw_push *push, struct cb_state *st,
		    int inflight)
{
	pthread_mutex_lock(&st->lock);
	while (st->inflight >= inflight)
		pthread_cond_wait(&st->cond, &st->lock);
	st->inflight++;
	pthread_mutex_unlock(&st->lock);
	if (pl->rx->push_async(pl->rx->ctx, push, PW_NO_DEADLINE, cb_done, st) != COMPONENT_OK) {
		pthread_mutex_lock(&st->lock);
		st->inflight--;
		st->r->failed++;
		pthread_mutex_unlock(&st->lock);
	}
}

/* Waits for every push's callback. */
static void cb_wait_all(struct cb_state *st)
{
	pthread_mutex_lock(&st->lock);
	while (st->inflight > 0)
		pthread_cond_wait(&st->cond, &st->lock);
	pthread_mutex_unlock(&st->lock);
}

/* Optional sampler of peak RSS while a run is under way. */
struct rss_sampler {
	pthread_t thread;
	atomic_bool stop;
	size_t peak;
};

static void *rss_main(void *arg)
{
	struct rss_sampler *rs = arg;

	while (!atomic_load(&rs->stop)) {
		size_t r = rss_bytes();

		if (r > rs->peak)
			rs->peak = r;
		usleep(2000);
	}
	return NULL;
}

/*
 * Write-through beside memory mode: each profile's bytes are also appended
 * to a file before it is pushed, and a thread of its own fdatasyncs that
 * file whenever something was written since its last flush, as a group
 * commit does (the file is cut back every 256 MiB, as the queue deletes
 * segments). Nothing waits for it: this is the least any durable queue
 * must add to memory mode's work (write and flush every byte), without a
 * record format, checksums, reading back or acknowledgments.
 */
struct wthru {
	int fd;
	off_t off;
	atomic_bool stop, idle;
	atomic_long written; /* writes so far */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* the flusher waits here when nothing is new */
	pthread_t thread;
};

static void *wthru_main(void *arg)
{
	struct wthru *w = arg;
	long synced = 0;

	while (!atomic_load(&w->stop)) {
		long n = atomic_load(&w->written);

		if (n == synced) {
			/* Idle first, then look again: a write that missed the
			 * look sees the flag and signals. */
			pthread_mutex_lock(&w->lock);
			atomic_store(&w->idle, true);
			while (atomic_load(&w->written) == synced && !atomic_load(&w->stop))
				pthread_cond_wait(&w->cond, &w->lock);
			atomic_store(&w->idle, false);
			pthread_mutex_unlock(&w->lock);
			continue;
		}
		if (fdatasync(w->fd) != 0)
			break;
		synced = n;
	}
	return NULL;
}

static void wthru_wake(struct wthru *w)
{
	pthread_mutex_lock(&w->lock);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static void wthru_start(struct wthru *w, const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/write-through", dir);
	memset(w, 0, sizeof(*w));
	w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		fprintf(stderr, "pw-bench: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	unlink(path);
	atomic_init(&w->stop, false);
	atomic_init(&w->idle, false);
	atomic_init(&w->written, 0);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (pthread_create(&w->thread, NULL, wthru_main, w) != 0)
		exit(1);
}

static void wthru_stop(struct wthru *w)
{
	atomic_store(&w->stop, true);
	wthru_wake(w);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	close(w->fd);
}

static void wthru_write(struct wthru *w, const struct payload *p)
{
	if (pwrite(w->fd, p->profile, p->plen, w->off) != (ssize_t)p->plen) {
		fprintf(stderr, "pw-bench: write-through: %s\n", strerror(errno));
		exit(1);
	}
	w->off += (off_t)p->plen;
	if (w->off >= (off_t)256 << 20) {
		if (ftruncate(w->fd, 0) != 0)
			exit(1);
		w->off = 0;
	}
	atomic_fetch_add(&w->written, 1);
	if (atomic_load(&w->idle))
		wthru_wake(w);
}

static void plugin_cb_run_wt(struct plugin *pl, const struct payload *p, int inflight, double secs,
			     struct run *r, struct wthru *wt);

static void plugin_cb_run(struct plugin *pl, const struct payload *p, int inflight, double secs,
			  struct run *r)
{
	plugin_cb_run_wt(pl, p, inflight, secs, r, NULL);
}

/* The callback form, with write-through when wt is not NULL. */
static void plugin_cb_run_wt(struct plugin *pl, const struct payload *p, int inflight, double secs,
			     struct run *r, struct wthru *wt)
{
	struct cb_state st = {.inflight = 0, .r = r, .low = inflight - o.refill};
	struct pw_push push;
	struct pw_sample s;
	double t0, c0, end;

	pthread_mutex_init(&st.lock, NULL);
	pthread_cond_init(&st.cond, NULL);
	fill_push(&push, &s, p);
	c0 = cpu_s();
	t0 = now_s();
	end = t0 + secs;
	while (now_s() < end) {
		/* Written through before the push (as a queue writes before it
		 * hands the profile on), outside the wait for room. */
		if (wt)
			wthru_write(wt, p);
		cb_push(pl, &push, &st, inflight);
	}
	cb_wait_all(&st);
	r->secs = now_s() - t0;
	r->cpu = cpu_s() - c0;
	pthread_cond_destroy(&st.cond);
	pthread_mutex_destroy(&st.lock);
}

/* Blocking form: `threads` producers, each pushing in a loop. */
struct blk_arg {
	struct plugin *pl;
	const struct payload *p;
	struct run *r;
	double end;
	pthread_t thread;
};

static void *blk_main(void *arg)
{
	struct blk_arg *a = arg;
	struct pw_push push;
	struct pw_sample s;

	fill_push(&push, &s, a->p);
	while (now_s() < a->end) {
		struct pw_result res = {0};
		int64_t t0 = now_ns();
		int rc = a->pl->rx->push(a->pl->rx->ctx, &push, PW_NO_DEADLINE, &res);
		double lat = (double)(now_ns() - t0) / 1e9;

		pthread_mutex_lock(&a->r->lat_lock);
		if (rc == COMPONENT_OK) {
			a->r->ok++;
			run_lat(a->r, lat);
		} else {
			a->r->failed++;
			note_error(a->r, res.error);
		}
		pthread_mutex_unlock(&a->r->lat_lock);
		a->pl->rx->free_result(&res);
	}
	return NULL;
}

static void plugin_blk_run(struct plugin *pl, const struct payload *p, int threads, double secs,
			   struct run *r)
{
	struct blk_arg *a = xmalloc((size_t)threads * sizeof(*a));
	double t0 = now_s(), c0 = cpu_s();

	for (int i = 0; i < threads; i++) {
		a[i] = (struct blk_arg){pl, p, r, t0 + secs, 0};
		pthread_create(&a[i].thread, NULL, blk_main, &a[i]);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(a[i].thread, NULL);
	r->secs = now_s() - t0;
	r->cpu = cpu_s() - c0;
	free(a);
}

/* ---- the plain libcurl multi client ---- */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *user)
{
	(void)ptr;
	(void)user;
	return size * nmemb;
}

/*
 * The plain client: `conc` transfers per endpoint, each POSTing the encoded
 * request again as soon as the last one ends. A profile counts once every
 * endpoint got it, so the rate is requests / neps. Two drivers share it:
 * curl_multi_perform + curl_multi_poll, and curl_multi_socket_action on an
 * epoll set.
 */
struct plain {
	CURLM *m;
	CURL **h;
	int64_t *started;
	struct curl_slist *hdrs;
	int n, neps, active;
	uint64_t reqs;
	double t0, c0, end;
	struct run *r;
};

static void plain_start(struct plain *pc, const struct payload *p, int neps, int conc, double secs,
			struct run *r)
{
	pc->n = neps * conc;
	pc->neps = neps;
	pc->active = 0;
	pc->reqs = 0;
	pc->r = r;
	pc->m = curl_multi_init();
	pc->h = xmalloc((size_t)pc->n * sizeof(CURL *));
	pc->started = xmalloc((size_t)pc->n * sizeof(int64_t));
	pc->hdrs = NULL;
	/* The same request the component sends, header for header (its
	 * User-Agent with this host's token, the default remote_timeout, gzip
	 * accepted for error bodies), so the two differ only in what happens
	 * around the transfer. */
	pc->hdrs = curl_slist_append(pc->hdrs, "Content-Type: application/proto");
	pc->hdrs = curl_slist_append(pc->hdrs, "Connect-Protocol-Version: 1");
	pc->hdrs = curl_slist_append(pc->hdrs,
				     "User-Agent: " BENCH_HOST_UA " pyroscope-write/" PW_VERSION);
	pc->hdrs = curl_slist_append(pc->hdrs, "Expect:");
	pc->hdrs = curl_slist_append(pc->hdrs, "Connect-Timeout-Ms: 10000");
	curl_multi_setopt(pc->m, CURLMOPT_MAXCONNECTS, (long)pc->n);
}

static void plain_add_all(struct plain *pc, const struct payload *p, double secs)
{
	pc->c0 = cpu_s();
	pc->t0 = now_s();
	pc->end = pc->t0 + secs;
	for (int i = 0; i < pc->n; i++) {
		char url[128];
		CURL *e = curl_easy_init();

		snprintf(url, sizeof(url), "http://127.0.0.1:%d/push.v1.PusherService/Push",
			 o.port + i % pc->neps);
		curl_easy_setopt(e, CURLOPT_URL, url);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)p->wire);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->wlen);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, pc->hdrs);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
		curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)(intptr_t)i);
		pc->h[i] = e;
		pc->started[i] = now_ns();
		curl_multi_add_handle(pc->m, e);
		pc->active++;
	}
}

/* Counts the finished transfers and starts each again while time is left. */
static void plain_collect(struct plain *pc)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(pc->m, &left))) {
		char *priv = NULL;
		long status = 0;
		int i;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		i = (int)(intptr_t)priv;
		if (msg->data.result == CURLE_OK && status == 200) {
			pc->reqs++;
			run_lat(pc->r, (double)(now_ns() - pc->started[i]) / 1e9);
		} else {
			pc->r->failed++;
			note_error(pc->r, curl_easy_strerror(msg->data.result));
		}
		curl_multi_remove_handle(pc->m, pc->h[i]);
		pc->active--;
		if (now_s() < pc->end) {
			pc->started[i] = now_ns();
			curl_multi_add_handle(pc->m, pc->h[i]);
			pc->active++;
		}
	}
}

static void plain_finish(struct plain *pc)
{
	pc->r->secs = now_s() - pc->t0;
	pc->r->cpu = cpu_s() - pc->c0;
	pc->r->ok = pc->reqs / (uint64_t)pc->neps;
	for (int i = 0; i < pc->n; i++)
		curl_easy_cleanup(pc->h[i]);
	curl_multi_cleanup(pc->m);
	curl_slist_free_all(pc->hdrs);
	free(pc->h);
	free(pc->started);
}

static void plain_run(const struct payload *p, int neps, int conc, double secs, struct run *r)
{
	struct plain pc;

	plain_start(&pc, p, neps, conc, secs, r);
	plain_add_all(&pc, p, secs);
	while (pc.active > 0) {
		int running;

		curl_multi_perform(pc.m, &running);
		plain_collect(&pc);
		if (pc.active > 0)
			curl_multi_poll(pc.m, NULL, 0, 100, NULL);
	}
	plain_finish(&pc);
}

/* The socket_action driver's state: its epoll set and libcurl's timeout. */
struct sa_state {
	int ep;
	long timeout_ms;
	CURLM *m;
};

static int sa_sock(CURL *e, curl_socket_t fd, int what, void *user, void *sockp)
{
	struct sa_state *st = user;
	struct epoll_event ev = {0};

	(void)e;
	ev.data.fd = fd;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(st->ep, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (sockp) {
		epoll_ctl(st->ep, EPOLL_CTL_MOD, fd, &ev);
	} else {
		epoll_ctl(st->ep, EPOLL_CTL_ADD, fd, &ev);
		curl_multi_assign(st->m, fd, st);
	}
	return 0;
}

static int sa_timer(CURLM *m, long timeout_ms, void *user)
{
	struct sa_state *st = user;

	(void)m;
	st->timeout_ms = timeout_ms;
	return 0;
}

static void plain_sa_run(const struct payload *p, int neps, int conc, double secs, struct run *r)
{
	struct plain pc;
	struct sa_state st;
	int running = 0;

	plain_start(&pc, p, neps, conc, secs, r);
	st.ep = epoll_create1(0);
	st.timeout_ms = -1;
	st.m = pc.m;
	curl_multi_setopt(pc.m, CURLMOPT_SOCKETFUNCTION, sa_sock);
	curl_multi_setopt(pc.m, CURLMOPT_SOCKETDATA, &st);
	curl_multi_setopt(pc.m, CURLMOPT_TIMERFUNCTION, sa_timer);
	curl_multi_setopt(pc.m, CURLMOPT_TIMERDATA, &st);
	plain_add_all(&pc, p, secs);
	while (pc.active > 0) {
		struct epoll_event evs[64];
		int k = epoll_wait(st.ep, evs, 64, st.timeout_ms < 0 ? 100 : (int)st.timeout_ms);

		if (k <= 0)
			curl_multi_socket_action(pc.m, CURL_SOCKET_TIMEOUT, 0, &running);
		for (int j = 0; j < k; j++)
			curl_multi_socket_action(
				pc.m, evs[j].data.fd,
				(evs[j].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
					(evs[j].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
					(evs[j].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR
									       : 0),
				&running);
		plain_collect(&pc);
	}
	plain_finish(&pc);
	close(st.ep);
}

/* ---- wrk ---- */

struct wrk_result {
	double rps, p50_ms, p99_ms;
	bool ok;
};

static double wrk_ms(const char *v)
{
	char *end;
	double x = strtod(v, &end);

	if (strncmp(end, "us", 2) == 0)
		return x / 1000.0;
	if (strncmp(end, "ms", 2) == 0)
		return x;
	if (*end == 's')
		return x * 1000.0;
	if (*end == 'm')
		return x * 60000.0;
	return x;
}

static struct wrk_result wrk_run(const struct payload *p, int conns)
{
	struct wrk_result w = {0};
	char body[256], lua[256], cmd[1024], line[512];
	FILE *f;

	if (!o.wrk)
		return w;
	snprintf(body, sizeof(body), "%s/pw-bench-body-%d.bin", o.tmpdir, (int)getpid());
	snprintf(lua, sizeof(lua), "%s/pw-bench-post-%d.lua", o.tmpdir, (int)getpid());
	f = fopen(body, "wb");
	if (!f || fwrite(p->wire, 1, p->wlen, f) != p->wlen) {
		if (f)
			fclose(f);
		return w;
	}
	fclose(f);
	f = fopen(lua, "w");
	if (!f)
		return w;
	fprintf(f,
		"local f = assert(io.open(\"%s\", \"rb\"))\n"
		"wrk.body = f:read(\"*a\")\n"
		"f:close()\n"
		"wrk.method = \"POST\"\n"
		"wrk.headers[\"Content-Type\"] = \"application/proto\"\n"
		"wrk.headers[\"Connect-Protocol-Version\"] = \"1\"\n",
		body);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "'%s' -t%d -c%d -d%ds --latency -s '%s' "
		 "http://127.0.0.1:%d/push.v1.PusherService/Push 2>&1",
		 o.wrk, o.wrk_threads, conns, o.wrk_secs, lua, o.port);
	f = popen(cmd, "r");
	if (!f)
		return w;
	while (fgets(line, sizeof(line), f)) {
		char *v;

		if ((v = strstr(line, "Requests/sec:"))) {
			w.rps = strtod(v + 13, NULL);
			w.ok = true;
		} else if ((v = strstr(line, " 50%"))) {
			w.p50_ms = wrk_ms(v + 4 + strspn(v + 4, " \t"));
		} else if ((v = strstr(line, " 99%"))) {
			w.p99_ms = wrk_ms(v + 4 + strspn(v + 4, " \t"));
		} else if (strstr(line, "Non-2xx") || strstr(line, "Socket errors")) {
			fprintf(stderr, "  wrk: %s", line);
		}
	}
	pclose(f);
	unlink(body);
	unlink(lua);
	return w;
}

/* ---- update latency under load ---- */

struct upd_arg {
	struct plugin *pl;
	atomic_bool stop;
	struct run r;
	char *cfg[2];
};

static void *upd_main(void *arg)
{
	struct upd_arg *a = arg;
	int64_t next = now_ns();

	for (uint64_t i = 0; !atomic_load(&a->stop); i++) {
		struct timespec ts;
		char *err = NULL;
		int64_t t0;
		int rc;

		next += 10 * 1000000LL; /* 100 updates per second */
		ts.tv_sec = (time_t)(next / 1000000000LL);
		ts.tv_nsec = (long)(next % 1000000000LL);
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		t0 = now_ns();
		rc = a->pl->d->update(a->pl->inst, a->cfg[i & 1], &err);
		run_lat(&a->r, (double)(now_ns() - t0) / 1e9);
		if (rc != COMPONENT_OK) {
			a->r.failed++;
			note_error(&a->r, err);
		} else {
			a->r.ok++;
		}
		a->pl->d->free_string(err);
	}
	return NULL;
}

/* ---- the report ---- */

static void check_run(const char *what, const struct run *r)
{
	if (r->failed)
		fprintf(stderr, "  WARNING %s: %llu failed: %s\n", what,
			(unsigned long long)r->failed, r->first_err);
}

struct cell {
	struct run cb;
	struct run plain[MAX_SWEEP];
	int best;
	struct run blk[3];
	struct run plain1;
	struct wrk_result wrk;
	bool have_blk;
	/* Medians of the interleaved re-runs: the ratio of the component to
	 * the plain client comes from these. */
	double cb_rate, plain_rate, cb_cpu, plain_cpu;
};

#define MAX_REPS 5

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double cpu_per_1000(const struct run *r)
{
	return r->ok ? r->cpu * 1000.0 / (double)r->ok : NAN;
}

/*
 * One run of each is noisy on a shared machine, and the sweep's best is the
 * maximum of several noisy runs: counting it would favour the plain client
 * (the winner's curse). So the component and the plain client at the
 * concurrency the sweep picked run again, alternately, and the ratio comes
 * from the medians of these re-runs alone.
 */
static void rerun_pairs(struct plugin *pl, const struct payload *p, int neps, int conc,
			struct cell *c)
{
	double cr[MAX_REPS], pr[MAX_REPS], cc[MAX_REPS], pc[MAX_REPS];
	int n = o.quick ? 1 : MAX_REPS;

	for (int i = 0; i < n; i++) {
		struct run a, b;

		run_init(&a, false);
		plugin_cb_run(pl, p, INFLIGHT, o.secs, &a);
		check_run("plugin cb", &a);
		run_init(&b, false);
		plain_run(p, neps, conc, o.secs, &b);
		check_run("plain", &b);
		cr[i] = rate(&a);
		cc[i] = cpu_per_1000(&a);
		pr[i] = rate(&b);
		pc[i] = cpu_per_1000(&b);
		run_free(&a);
		run_free(&b);
	}
	c->cb_rate = median(cr, n);
	c->cb_cpu = median(cc, n);
	c->plain_rate = median(pr, n);
	c->plain_cpu = median(pc, n);
	fprintf(stderr,
		"  medians of %d re-runs: plugin %.0f, plain at %d/endpoint %.0f profiles/s\n", n,
		c->cb_rate, conc, c->plain_rate);
}

static const int blk_threads[3] = {1, 8, 64};

static void run_cell(struct plugin *pl, const struct payload *p, int neps, struct cell *c,
		     const int *sweep, int nsweep)
{
	char what[96];

	fprintf(stderr, "== %d endpoint(s), %zu B request (%s)\n", neps, p->wlen, p->source);
	run_init(&c->cb, false);
	plugin_cb_run(pl, p, INFLIGHT, o.secs, &c->cb);
	snprintf(what, sizeof(what), "plugin cb%d", INFLIGHT);
	check_run(what, &c->cb);
	fprintf(stderr, "  plugin callback %d in flight: %.0f profiles/s\n", INFLIGHT,
		rate(&c->cb));
	c->best = 0;
	for (int i = 0; i < nsweep; i++) {
		run_init(&c->plain[i], true);
		plain_run(p, neps, sweep[i], o.secs, &c->plain[i]);
		check_run("plain", &c->plain[i]);
		fprintf(stderr, "  plain client %d/endpoint: %.0f profiles/s p50 %.2f ms\n",
			sweep[i], rate(&c->plain[i]), pct_ms(&c->plain[i], 0.5));
		if (rate(&c->plain[i]) > rate(&c->plain[c->best]))
			c->best = i;
	}
	rerun_pairs(pl, p, neps, sweep[c->best], c);
	if (neps != 1)
		return;
	c->have_blk = true;
	for (int i = 0; i < 3; i++) {
		run_init(&c->blk[i], true);
		plugin_blk_run(pl, p, blk_threads[i], o.secs, &c->blk[i]);
		check_run("plugin blocking", &c->blk[i]);
		fprintf(stderr, "  plugin blocking %d threads: %.0f profiles/s\n", blk_threads[i],
			rate(&c->blk[i]));
	}
	run_init(&c->plain1, true);
	plain_run(p, 1, 1, o.secs, &c->plain1);
	check_run("plain", &c->plain1);
	c->wrk = wrk_run(p, INFLIGHT);
	if (c->wrk.ok)
		fprintf(stderr, "  wrk %d connections: %.0f requests/s\n", INFLIGHT, c->wrk.rps);
}

static void cell_free(struct cell *c, int nsweep)
{
	run_free(&c->cb);
	for (int i = 0; i < nsweep; i++)
		run_free(&c->plain[i]);
	if (c->have_blk) {
		for (int i = 0; i < 3; i++)
			run_free(&c->blk[i]);
		run_free(&c->plain1);
	}
}

static double mib(double b)
{
	return b / (1024.0 * 1024.0);
}

/* RSS with 3 endpoints and 1 MiB profiles, INFLIGHT in flight. Runs first,
 * before the heap has held anything else. */
static void memory_run(struct plugin *pl, const struct payload *p)
{
	struct rss_sampler rs = {0};
	struct run r;
	char *cfg = config_json(3, NULL);
	size_t before_create, idle, peak;
	double per, ratio;

	/* The component holding its own copy of each profile, as with a host
	 * that does not keep its samples (with PW_PUSH_KEEP_UNTIL_DONE large
	 * profiles are not copied at all). This runs in a child process, so
	 * the setting goes no further. */
	o.copy = true;
	before_create = rss_bytes();
	plugin_create(pl, cfg);
	usleep(200 * 1000);
	idle = rss_bytes();
	atomic_init(&rs.stop, false);
	rs.peak = idle;
	pthread_create(&rs.thread, NULL, rss_main, &rs);
	run_init(&r, false);
	plugin_cb_run(pl, p, INFLIGHT, o.secs, &r);
	atomic_store(&rs.stop, true);
	pthread_join(rs.thread, NULL);
	check_run("memory run", &r);
	peak = rs.peak;
	per = ((double)peak - (double)idle) / INFLIGHT;
	ratio = per / (double)p->plen;
	printf("\n## Memory (3 endpoints, %s profiles of %zu B, %d in flight, callback form, "
	       "profiles copied)\n\n",
	       size_names[2], p->plen, INFLIGHT);
	printf("| RSS before create | idle RSS after create | peak RSS | growth per profile in "
	       "flight | growth / profile size |\n");
	printf("|---|---|---|---|---|\n");
	printf("| %.1f MiB | %.1f MiB | %.1f MiB | %.2f MiB | %.2fx |\n",
	       mib((double)before_create), mib((double)idle), mib((double)peak), mib(per), ratio);
	printf("\n(rate during the memory run: %.0f profiles/s)\n", rate(&r));
	run_free(&r);
	plugin_destroy(pl);
	free(cfg);
}

static void update_run(struct plugin *pl, const struct payload *p, int size)
{
	struct upd_arg a;
	struct run base, during;
	char *cfg0 = config_json(1, "a");
	double rb[MAX_REPS], rd[MAX_REPS], mb, md;
	int n = o.quick ? 1 : MAX_REPS;

	memset(&a, 0, sizeof(a));
	a.pl = pl;
	a.cfg[0] = config_json(1, "b");
	a.cfg[1] = cfg0;
	atomic_init(&a.stop, false);
	plugin_create(pl, cfg0);
	run_init(&base, false);
	plugin_cb_run(pl, p, INFLIGHT, 0.3, &base); /* warm the connections */
	run_free(&base);
	/* Runs without and with updates alternate, and the medians are
	 * compared: a single pair moves by a third on a busy machine. */
	run_init(&a.r, true);
	for (int i = 0; i < n; i++) {
		pthread_t th;

		run_init(&base, false);
		plugin_cb_run(pl, p, INFLIGHT, o.secs, &base);
		check_run("update base", &base);
		rb[i] = rate(&base);
		run_free(&base);
		run_init(&during, false);
		atomic_store(&a.stop, false);
		pthread_create(&th, NULL, upd_main, &a);
		plugin_cb_run(pl, p, INFLIGHT, o.secs, &during);
		atomic_store(&a.stop, true);
		pthread_join(th, NULL);
		check_run("update during", &during);
		rd[i] = rate(&during);
		run_free(&during);
	}
	check_run("updates", &a.r);
	mb = median(rb, n);
	md = median(rd, n);
	printf("\n## update() under load (1 endpoint, %s, %d in flight, 100 updates/s replacing "
	       "the endpoint's headers)\n\n",
	       size_names[size], INFLIGHT);
	printf("| updates | update p50 | update p99 | max | profiles/s without | profiles/s during "
	       "| ratio |\n");
	printf("|---|---|---|---|---|---|---|\n");
	printf("| %llu | %.3f ms | %.3f ms | %.3f ms | %.0f | %.0f | %.2f |\n",
	       (unsigned long long)a.r.ok, pct_ms(&a.r, 0.5), pct_ms(&a.r, 0.99), pct_ms(&a.r, 1.0),
	       mb, md, mb > 0 ? md / mb : 0);
	printf("\n(medians of %d alternating runs without and with updates)\n", n);
	run_free(&a.r);
	plugin_destroy(pl);
	free(a.cfg[0]);
	free(cfg0);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: pw-bench --plugin PATH [--port BASE] [--seconds S] [--quick]\n"
		"                [--profiles DIR] [--wrk PATH] [--wrk-threads N]\n"
		"                [--single "
		"cb|blk|plain|plainsa|update|qcb|wcb,ENDPOINTS,SIZE-INDEX,CONCURRENCY]\n"
		"                (qcb: the queue, wcb: memory mode with write-through; both\n"
		"                in --queue DIR)\n"
		"                [--max-connections N] [--refill N] [--endpoints 1|3|10]\n"
		"                [--batch JSON]  (each endpoint's batch block; without\n"
		"                --single: 2 KiB, batched against unbatched side by side)\n"
		"                [--queue DIR [--backlog-mib N]]  (the durable queue against\n"
		"                memory mode, fsync and recovery; DIR on the disk to measure)\n"
		"The receiver (pw-bench-recv -p BASE -n 10) must be listening.\n");
	exit(2);
}

/* A whole number in [min, max] from a command-line argument; exits with a
 * usage error otherwise. */
static int arg_int(const char *name, const char *s, int min, int max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "%s wants a number from %d to %d, got \"%s\"\n", name, min, max, s);
		exit(2);
	}
	return (int)v;
}

/* --endpoints N: the throughput rows up to N endpoints (1: the 1-endpoint
 * rows alone, for a short comparison of libcurls or builds). */
static int endpoint_rows(const char *s)
{
	int n = arg_int("--endpoints", s, 1, MAX_EPS);

	for (int e = 0; e < NROWS; e++)
		if (ep_counts[e] == n)
			return e + 1;
	fprintf(stderr, "--endpoints wants 1, 3 or 10, got %d\n", n);
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{"plugin", required_argument, NULL, 'P'},
		{"port", required_argument, NULL, 'p'},
		{"seconds", required_argument, NULL, 's'},
		{"quick", no_argument, NULL, 'q'},
		{"profiles", required_argument, NULL, 'd'},
		{"wrk", required_argument, NULL, 'w'},
		{"wrk-threads", required_argument, NULL, 'W'},
		{"single", required_argument, NULL, 'S'},
		{"max-connections", required_argument, NULL, 'M'},
		{"refill", required_argument, NULL, 'R'},
		{"copy", no_argument, NULL, 'C'},
		{"endpoints", required_argument, NULL, 'E'},
		{"batch", required_argument, NULL, 'B'},
		{"queue", required_argument, NULL, 'Q'},
		{"backlog-mib", required_argument, NULL, 'L'},
		{NULL, 0, NULL, 0},
	};
	int c;
	bool secs_set = false;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'P':
			o.plugin = optarg;
			break;
		case 'p':
			o.port = arg_int("--port", optarg, 1, 65535);
			break;
		case 's':
			o.secs = atof(optarg);
			secs_set = true;
			break;
		case 'q':
			o.quick = true;
			break;
		case 'd':
			o.profiles = optarg;
			break;
		case 'w':
			o.wrk = *optarg ? optarg : NULL;
			break;
		case 'W':
			o.wrk_threads = arg_int("--wrk-threads", optarg, 1, 64);
			break;
		case 'S':
			o.single = optarg;
			break;
		case 'M':
			o.max_conns = optarg;
			break;
		case 'R':
			o.refill = arg_int("--refill", optarg, 1, INFLIGHT);
			break;
		case 'C':
			o.copy = true;
			break;
		case 'E':
			o.rows = endpoint_rows(optarg);
			break;
		case 'B':
			o.batch = optarg;
			break;
		case 'Q':
			o.queue = optarg;
			break;
		case 'L':
			o.backlog_mib = arg_int("--backlog-mib", optarg, 1, 4096);
			break;
		default:
			usage();
		}
	}
	if (!o.plugin || o.port < 1 || o.secs <= 0 || o.wrk_threads < 1)
		usage();
	if (o.quick && !secs_set)
		o.secs = 0.5;
	o.wrk_secs = o.secs < 1.5 ? 1 : (int)(o.secs + 0.5);
	if (getenv("TMPDIR"))
		o.tmpdir = getenv("TMPDIR");
}

static char *queue_config(const char *dir, int port, const char *fsync, long long max_size);
static void remove_dir(const char *dir);
static void queue_cb_run(struct plugin *pl, const struct payload *p, double *accepted,
			 struct run *r, double *accept_rate);

/* One kind of run, five times over: for profiling and for checking one
 * figure without the whole table. */
static int single_main(struct plugin *pl, struct payload *pay)
{
	char kind[16] = "";
	int neps = 1, size = 0, conc = INFLIGHT;

	if (sscanf(o.single, "%15[a-z],%d,%d,%d", kind, &neps, &size, &conc) != 4 || neps < 1 ||
	    neps > MAX_EPS || size < 0 || size >= NSIZES || conc < 1)
		usage();
	if (strcmp(kind, "update") == 0) {
		/* The update() figure alone (one endpoint; ENDPOINTS and
		 * CONCURRENCY are not used). */
		update_run(pl, &pay[size], size);
		return 0;
	}
	if (strcmp(kind, "qcb") == 0) {
		/* The queue (fsync "always", in --queue DIR/q) at one endpoint:
		 * each run's rate counts until the endpoint has everything. */
		char qdir[4096], *cfg;
		double accepted = 0;

		if (!o.queue || neps != 1)
			usage();
		snprintf(qdir, sizeof(qdir), "%s/q", o.queue);
		remove_dir(qdir);
		cfg = queue_config(qdir, o.port, "always", 1LL << 30);
		plugin_create(pl, cfg);
		free(cfg);
		for (int i = 0; i < 5; i++) {
			struct run r;
			double acc;

			run_init(&r, false);
			queue_cb_run(pl, &pay[size], &accepted, &r, &acc);
			check_run(kind, &r);
			printf("qcb %s concurrency %d: %.0f profiles/s delivered, %.0f accepted, "
			       "%.3f CPU s/1000\n",
			       size_names[size], INFLIGHT, rate(&r), acc,
			       r.ok ? r.cpu * 1000.0 / (double)r.ok : NAN);
			fflush(stdout);
			run_free(&r);
		}
		plugin_destroy(pl);
		remove_dir(qdir);
		return 0;
	}
	if (strncmp(kind, "plain", 5) != 0) {
		char *cfg = config_json(neps, NULL);

		plugin_create(pl, cfg);
		free(cfg);
	}
	for (int i = 0; i < 5; i++) {
		struct run r;

		run_init(&r, true);
		if (strcmp(kind, "cb") == 0) {
			plugin_cb_run(pl, &pay[size], conc, o.secs, &r);
		} else if (strcmp(kind, "wcb") == 0) {
			/* Memory mode with write-through to --queue DIR. */
			struct wthru wt;

			if (!o.queue)
				usage();
			wthru_start(&wt, o.queue);
			plugin_cb_run_wt(pl, &pay[size], conc, o.secs, &r, &wt);
			wthru_stop(&wt);
		} else if (strcmp(kind, "blk") == 0)
			plugin_blk_run(pl, &pay[size], conc, o.secs, &r);
		else if (strcmp(kind, "plainsa") == 0)
			plain_sa_run(&pay[size], neps, conc, o.secs, &r);
		else
			plain_run(&pay[size], neps, conc, o.secs, &r);
		check_run(kind, &r);
		printf("%s %d endpoint(s) %s concurrency %d: %.0f profiles/s, %.3f CPU s/1000, "
		       "p50 %.2f ms p99 %.2f ms\n",
		       kind, neps, size_names[size], conc, rate(&r),
		       r.ok ? r.cpu * 1000.0 / (double)r.ok : NAN, pct_ms(&r, 0.5),
		       pct_ms(&r, 0.99));
		fflush(stdout);
		run_free(&r);
	}
	if (pl->inst)
		plugin_destroy(pl);
	return 0;
}

/* ---- batched against unbatched ---- */

/* Sums pyroscope_write_batch_profiles_sum and _count over the endpoints. */
struct batch_stats {
	double sum, count;
};

static int batch_sink(void *user, const char *data, size_t len)
{
	struct batch_stats *bs = user;
	const char *p = data, *end = data + len;

	/* The text comes in chunks of whole lines. */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *sp = NULL;
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		/* The value is after the line's last space. */
		for (size_t i = n; i > 0 && !sp; i--)
			if (p[i - 1] == ' ')
				sp = p + i - 1;
		if (sp && strncmp(p, "pyroscope_write_batch_profiles_sum{", 35) == 0)
			bs->sum += strtod(sp + 1, NULL);
		else if (sp && strncmp(p, "pyroscope_write_batch_profiles_count{", 37) == 0)
			bs->count += strtod(sp + 1, NULL);
		p += n + 1;
	}
	return 0;
}

static double profiles_per_request(struct plugin *pl)
{
	struct batch_stats bs = {0};

	pl->d->metrics(pl->inst, batch_sink, &bs);
	return bs.count > 0 ? bs.sum / bs.count : NAN;
}

/*
 * The floor under any blocking form: `threads` callers that do nothing
 * but hand themselves to one waker thread and sleep until it wakes them,
 * on the same event the blocking push waits on (waitword.c). Every
 * blocking call costs at least this one sleep and wake-up; the rate is how
 * many of them the machine can do per second with no work at all.
 */
struct floor_state {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pw_waitword **posted;
	int nposted;
	atomic_bool stop;
	atomic_long wakes;
};

static void *floor_caller(void *arg)
{
	struct floor_state *f = arg;

	while (!atomic_load(&f->stop)) {
		struct pw_waitword w;

		pw_waitword_init(&w);
		pthread_mutex_lock(&f->lock);
		f->posted[f->nposted++] = &w;
		if (f->nposted == 1)
			pthread_cond_signal(&f->cond);
		pthread_mutex_unlock(&f->lock);
		pw_waitword_wait(&w);
		pw_waitword_destroy(&w);
		atomic_fetch_add_explicit(&f->wakes, 1, memory_order_relaxed);
	}
	return NULL;
}

/* Wakes every caller posted so far; with `wait`, first waits for one. */
static void floor_wake_posted(struct floor_state *f, struct pw_waitword **got, bool wait)
{
	int k;

	pthread_mutex_lock(&f->lock);
	while (wait && !f->nposted)
		pthread_cond_wait(&f->cond, &f->lock);
	k = f->nposted;
	memcpy(got, f->posted, (size_t)k * sizeof(*got));
	f->nposted = 0;
	pthread_mutex_unlock(&f->lock);
	for (int i = 0; i < k; i++)
		pw_waitword_set(got[i]);
}

static double wake_floor_run(int threads, double secs, double *cpu_per_1000)
{
	struct floor_state f = {.nposted = 0};
	struct pw_waitword **got = xmalloc((size_t)threads * sizeof(*got));
	pthread_t *th = xmalloc((size_t)threads * sizeof(*th));
	bool *joined = xmalloc((size_t)threads * sizeof(*joined));
	double t0, c0, elapsed;
	long wakes;

	memset(joined, 0, (size_t)threads * sizeof(*joined));
	f.posted = xmalloc((size_t)threads * sizeof(*f.posted));
	pthread_mutex_init(&f.lock, NULL);
	pthread_cond_init(&f.cond, NULL);
	atomic_init(&f.stop, false);
	atomic_init(&f.wakes, 0);
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, floor_caller, &f);
	t0 = now_s();
	c0 = cpu_s();
	while (now_s() - t0 < secs)
		floor_wake_posted(&f, got, true);
	elapsed = now_s() - t0;
	wakes = atomic_load(&f.wakes);
	*cpu_per_1000 = wakes ? (cpu_s() - c0) * 1000.0 / (double)wakes : NAN;
	atomic_store(&f.stop, true);
	/* Until every caller has seen stop: each posts once more at most. */
	for (int left = threads; left > 0;) {
		for (int i = 0; i < threads; i++) {
			if (!joined[i] && pthread_tryjoin_np(th[i], NULL) == 0) {
				joined[i] = true;
				left--;
			}
		}
		floor_wake_posted(&f, got, false);
	}
	pthread_cond_destroy(&f.cond);
	pthread_mutex_destroy(&f.lock);
	free(f.posted);
	free(got);
	free(th);
	free(joined);
	return (double)wakes / elapsed;
}

/* Medians over the alternating runs of one form, without and with batch. */
struct batch_cell {
	double rate[2], cpu[2], p99[2];
};

static void batch_pair(struct plugin *pl, const struct payload *p, bool blk, struct batch_cell *c)
{
	double r[2][MAX_REPS], cpu[2][MAX_REPS], p99[2][MAX_REPS];
	int n = o.quick ? 1 : MAX_REPS;

	for (int i = 0; i < n; i++) {
		for (int m = 0; m < 2; m++) {
			struct run run;

			run_init(&run, true);
			if (blk)
				plugin_blk_run(&pl[m], p, INFLIGHT, o.secs, &run);
			else
				plugin_cb_run(&pl[m], p, INFLIGHT, o.secs, &run);
			check_run(m ? "batched" : "unbatched", &run);
			r[m][i] = rate(&run);
			cpu[m][i] = cpu_per_1000(&run);
			p99[m][i] = blk ? pct_ms(&run, 0.99) : NAN;
			run_free(&run);
		}
	}
	for (int m = 0; m < 2; m++) {
		c->rate[m] = median(r[m], n);
		c->cpu[m] = median(cpu[m], n);
		c->p99[m] = blk ? median(p99[m], n) : NAN;
	}
}

/*
 * --batch JSON without --single: 2 KiB profiles through two instances, one
 * without and one with the batch block, runs alternating, so every ratio
 * compares runs seconds apart. wrk's request rate for the same request
 * bytes (one profile per request) runs between them.
 */
static int batch_main(struct plugin *pl0, struct payload *pay)
{
	static const int eps[] = {1, 3};
	const char *batch = o.batch;
	struct batch_cell cells[2][2];
	double ppr[2];
	struct wrk_result w = {0};
	int n = o.quick ? 1 : MAX_REPS;
	double floor_r[MAX_REPS], floor_c[MAX_REPS], floor_rate = NAN, floor_cpu = NAN;

	printf("# pw-bench: batch = %s, %s profiles (%zu B request), %d in flight / %d threads, "
	       "%.1f s per run, medians of %d alternating runs, libcurl %s\n",
	       batch, size_names[0], pay[0].wlen, INFLIGHT, INFLIGHT, o.secs, n,
	       curl_version_info(CURLVERSION_NOW)->version);
	for (int e = 0; e < 2; e++) {
		struct plugin pl[2] = {*pl0, *pl0};

		for (int m = 0; m < 2; m++) {
			char *cfg;
			struct run warm;

			o.batch = m ? batch : NULL;
			cfg = config_json(eps[e], NULL);
			plugin_create(&pl[m], cfg);
			free(cfg);
			run_init(&warm, false);
			plugin_cb_run(&pl[m], &pay[0], INFLIGHT, 0.2, &warm);
			run_free(&warm);
		}
		o.batch = batch;
		fprintf(stderr, "== %d endpoint(s)\n", eps[e]);
		batch_pair(pl, &pay[0], false, &cells[e][0]);
		if (e == 0) {
			w = wrk_run(&pay[0], INFLIGHT);
			if (w.ok)
				fprintf(stderr, "  wrk %d connections: %.0f requests/s\n", INFLIGHT,
					w.rps);
		}
		batch_pair(pl, &pay[0], true, &cells[e][1]);
		if (e == 0) {
			for (int i = 0; i < n; i++)
				floor_r[i] = wake_floor_run(INFLIGHT, o.secs, &floor_c[i]);
			floor_rate = median(floor_r, n);
			floor_cpu = median(floor_c, n);
			fprintf(stderr, "  wake-up floor, %d threads: %.0f wakes/s\n", INFLIGHT,
				floor_rate);
		}
		ppr[e] = profiles_per_request(&pl[1]);
		plugin_destroy(&pl[0]);
		plugin_destroy(&pl[1]);
	}

	printf("\n## Batched against unbatched (profiles/s; CPU s per 1000 profiles; p99 of a "
	       "blocking push, ms)\n\n");
	printf("| endpoints | form | unbatched | batched | batched/unbatched | CPU unbatched | "
	       "CPU batched | CPU batched/unbatched | p99 unbatched | p99 batched | p99 added | "
	       "profiles per request | batched/wrk c64 |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (int e = 0; e < 2; e++) {
		for (int k = 0; k < 2; k++) {
			struct batch_cell *c = &cells[e][k];

			printf("| %d | %s | %.0f | %.0f | %.2f | %.4f | %.4f | %.2f |", eps[e],
			       k ? "blocking, 64 threads" : "callback, 64 in flight", c->rate[0],
			       c->rate[1], c->rate[1] / c->rate[0], c->cpu[0], c->cpu[1],
			       c->cpu[1] / c->cpu[0]);
			if (k)
				printf(" %.2f | %.2f | %+.2f |", c->p99[0], c->p99[1],
				       c->p99[1] - c->p99[0]);
			else
				printf(" - | - | - |");
			printf(" %.1f |", ppr[e]);
			if (w.ok)
				printf(" %.2f |\n", c->rate[1] / w.rps);
			else
				printf(" - |\n");
		}
	}
	printf("\n(profiles per request: the mean of pyroscope_write_batch_profiles over all of "
	       "the batched instance's runs)\n");
	if (w.ok)
		printf("\nwrk c64, 1 endpoint, the same %zu B request: %.0f requests/s "
		       "(p50 %.2f ms, p99 %.2f ms)\n",
		       pay[0].wlen, w.rps, w.p50_ms, w.p99_ms);
	printf("\n## Blocking form (64 threads) against callback form (64 in flight)\n\n");
	printf("| endpoints | unbatched blk/cb | batched blk/cb |\n|---|---|---|\n");
	for (int e = 0; e < 2; e++)
		printf("| %d | %.2f | %.2f |\n", eps[e], cells[e][1].rate[0] / cells[e][0].rate[0],
		       cells[e][1].rate[1] / cells[e][0].rate[1]);
	printf("\n## Blocking form against the wake-up floor\n\n"
	       "%d threads that only sleep and are woken by one thread, on the blocking push's "
	       "own event, no work: %.0f wake-ups/s, %.4f CPU s per 1000 (medians of %d runs "
	       "between the blocking runs)\n\n",
	       INFLIGHT, floor_rate, floor_cpu, n);
	printf("| endpoints | blocking unbatched/floor | blocking batched/floor | callback "
	       "batched/floor |\n|---|---|---|---|\n");
	for (int e = 0; e < 2; e++)
		printf("| %d | %.2f | %.2f | %.2f |\n", eps[e], cells[e][1].rate[0] / floor_rate,
		       cells[e][1].rate[1] / floor_rate, cells[e][0].rate[1] / floor_rate);
	return 0;
}

/* ---- the durable queue against memory mode ---- */

/* The whole metrics text of an instance, to read a few series from. */
struct mtext {
	char *buf;
	size_t len, cap;
};

static int mtext_sink(void *user, const char *data, size_t len)
{
	struct mtext *t = user;

	if (t->len + len + 1 > t->cap) {
		size_t cap = (t->cap ? t->cap : 16384);

		while (t->len + len + 1 > cap)
			cap *= 2;
		t->buf = realloc(t->buf, cap);
		if (!t->buf) {
			fprintf(stderr, "pw-bench: out of memory\n");
			exit(1);
		}
		t->cap = cap;
	}
	memcpy(t->buf + t->len, data, len);
	t->len += len;
	t->buf[t->len] = '\0';
	return 0;
}

static char *metrics_text(struct plugin *pl)
{
	struct mtext t = {0};

	pl->d->metrics(pl->inst, mtext_sink, &t);
	return t.buf ? t.buf : calloc(1, 1);
}

/* Sum of the values of the series whose text up to the labels or the value
 * is `name` ("a_total" matches a_total{...} and a_total, not a_total_x);
 * `name` may carry its labels, as in a bucket's `..._bucket{le="0.001"}`. */
static double metric_sum(const char *text, const char *name)
{
	size_t n = strlen(name);
	double sum = 0;

	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');

		if (strncmp(p, name, n) == 0 && (p[n] == '{' || p[n] == ' ')) {
			const char *sp = nl ? nl : p + strlen(p);

			while (sp > p && sp[-1] != ' ')
				sp--;
			sum += strtod(sp, NULL);
		}
		p = nl ? nl + 1 : NULL;
	}
	return sum;
}

static double metric_now(struct plugin *pl, const char *name)
{
	char *t = metrics_text(pl);
	double v = metric_sum(t, name);

	free(t);
	return v;
}

/* One endpoint "e0" at `port`, with a queue block when `dir` is set. */
static char *queue_config(const char *dir, int port, const char *fsync, long long max_size)
{
	char *buf = xmalloc(1024 + (dir ? strlen(dir) : 0));

	if (!dir)
		snprintf(buf, 1024,
			 "{\"endpoint\":[{\"url\":\"http://127.0.0.1:%d\",\"name\":\"e0\"}]}",
			 port);
	else
		snprintf(buf, 1024 + strlen(dir),
			 "{\"endpoint\":[{\"url\":\"http://127.0.0.1:%d\",\"name\":\"e0\"}],"
			 "\"queue\":{\"directory\":\"%s\",\"max_size\":%lld,\"fsync\":\"%s\"}}",
			 port, dir, max_size, fsync);
	return buf;
}

/* The queue directory holds files only (lock, segments, cursors). */
static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[4096];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

/* Until the endpoint has finished every profile the queue accepted (sent
 * or dropped), or `limit` seconds. */
static bool wait_drained(struct plugin *pl, double accepted, double limit)
{
	double end = now_s() + limit;

	while (now_s() < end) {
		char *t = metrics_text(pl);
		double done = metric_sum(t, "pyroscope_write_sent_profiles_total") +
			      metric_sum(t, "pyroscope_write_dropped_profiles_total");

		free(t);
		if (done >= accepted)
			return true;
		usleep(10000);
	}
	return false;
}

/*
 * A queue run: the producer's callbacks come when the profile is on disk,
 * not when it is delivered, so the run lasts until the endpoint has taken
 * everything accepted, and its rate is profiles delivered over that time.
 * `accepted` is the instance's running total; *accept_rate the producer's
 * own rate.
 */
static void queue_cb_run(struct plugin *pl, const struct payload *p, double *accepted,
			 struct run *r, double *accept_rate)
{
	double t0 = now_s(), c0 = cpu_s();

	plugin_cb_run(pl, p, INFLIGHT, o.secs, r);
	*accept_rate = rate(r);
	*accepted += (double)r->ok;
	if (!wait_drained(pl, *accepted, 120))
		fprintf(stderr, "  WARNING queue run: not drained after 120 s\n");
	r->secs = now_s() - t0;
	r->cpu = cpu_s() - c0;
}

#define FSYNC_NB 12
static const char *const fsync_le[FSYNC_NB + 1] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
	"0.1",	  "0.25",  "0.5",    "1",     "2.5",  "+Inf",
};

/* fsync figures from the histogram's change over the measured runs. */
struct fsync_stats {
	double bucket[FSYNC_NB + 1]; /* cumulative */
	double sum, count;
};

static void fsync_read(struct plugin *pl, struct fsync_stats *f)
{
	char *t = metrics_text(pl);
	char name[128];

	for (int i = 0; i <= FSYNC_NB; i++) {
		snprintf(name, sizeof(name),
			 "pyroscope_write_queue_fsync_duration_seconds_bucket{le=\"%s\"}",
			 fsync_le[i]);
		f->bucket[i] = metric_sum(t, name);
	}
	f->sum = metric_sum(t, "pyroscope_write_queue_fsync_duration_seconds_sum");
	f->count = metric_sum(t, "pyroscope_write_queue_fsync_duration_seconds_count");
	free(t);
}

/* Percentile q of the fsyncs between a and b, in ms, interpolated linearly
 * inside the bucket it falls in (as Prometheus' histogram_quantile does). */
static double fsync_pct_ms(const struct fsync_stats *a, const struct fsync_stats *b, double q)
{
	double n = b->count - a->count, want = q * n, lo = 0, prev = 0;

	if (n <= 0)
		return NAN;
	for (int i = 0; i <= FSYNC_NB; i++) {
		double c = b->bucket[i] - a->bucket[i];
		double hi = i < FSYNC_NB ? strtod(fsync_le[i], NULL) : lo;

		if (c >= want) {
			if (c == prev)
				return hi * 1000;
			return (lo + (hi - lo) * (want - prev) / (c - prev)) * 1000;
		}
		prev = c;
		lo = hi;
	}
	return NAN;
}

/* Memory and queue instances side by side at one size, runs alternating. */
struct qcell {
	/* [0] memory, [1] queue, [2] memory with write-through (struct wthru) */
	double rate[3], cpu[3], accept;
	double per_run[3][MAX_REPS];
	struct fsync_stats f0, f1;
	double queued; /* profiles the queue accepted in the measured runs */
	double disk; /* the disk's own rate for this size, MB/s (disk_rate) */
};

/*
 * The disk under the queue, without the queue: rounds of INFLIGHT writes
 * of `size` bytes to one file, each round followed by one fdatasync (the
 * most a group commit with INFLIGHT pushes in flight can combine), for
 * `secs`. The file is cut back every 256 MiB, as the queue deletes
 * segments. Returns MB/s, or NAN when the file cannot be written.
 */
static double disk_rate(const char *dir, size_t size, double secs)
{
	char path[4096];
	char *buf = xmalloc(size);
	double t0 = now_s(), bytes = 0, elapsed;
	off_t off = 0;
	int fd;

	memset(buf, 0x5a, size);
	snprintf(path, sizeof(path), "%s/disk-rate", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(buf);
		return NAN;
	}
	while (now_s() - t0 < secs) {
		for (int i = 0; i < INFLIGHT; i++) {
			if (pwrite(fd, buf, size, off) != (ssize_t)size)
				goto fail;
			off += (off_t)size;
			bytes += (double)size;
		}
		if (fdatasync(fd) != 0)
			goto fail;
		if (off >= (off_t)256 << 20) {
			if (ftruncate(fd, 0) != 0)
				goto fail;
			off = 0;
		}
	}
	elapsed = now_s() - t0;
	close(fd);
	unlink(path);
	free(buf);
	return bytes / elapsed / 1e6;
fail:
	close(fd);
	unlink(path);
	free(buf);
	return NAN;
}

static void queue_pair(struct plugin *pl0, const struct payload *p, const char *qdir,
		       struct qcell *c)
{
	struct plugin pl[2] = {*pl0, *pl0};
	double r[3][MAX_REPS], cpu[3][MAX_REPS], acc[MAX_REPS], accepted = 0;
	int n = o.quick ? 1 : MAX_REPS;

	remove_dir(qdir);
	for (int m = 0; m < 2; m++) {
		char *cfg = queue_config(m ? qdir : NULL, o.port, "always", 1LL << 30);
		struct run warm;
		double a = 0;

		plugin_create(&pl[m], cfg);
		free(cfg);
		run_init(&warm, false);
		if (m)
			queue_cb_run(&pl[m], p, &accepted, &warm, &a);
		else
			plugin_cb_run(&pl[m], p, INFLIGHT, 0.2, &warm);
		run_free(&warm);
	}
	fsync_read(&pl[1], &c->f0);
	c->queued = -accepted;
	for (int i = 0; i < n; i++) {
		for (int m = 0; m < 3; m++) {
			static const char *const what[3] = {"memory", "queue", "write-through"};
			struct run run;
			struct wthru wt;

			run_init(&run, false);
			if (m == 1) {
				queue_cb_run(&pl[1], p, &accepted, &run, &acc[i]);
			} else if (m == 2) {
				wthru_start(&wt, o.queue);
				plugin_cb_run_wt(&pl[0], p, INFLIGHT, o.secs, &run, &wt);
				wthru_stop(&wt);
			} else {
				plugin_cb_run(&pl[0], p, INFLIGHT, o.secs, &run);
			}
			check_run(what[m], &run);
			r[m][i] = c->per_run[m][i] = rate(&run);
			cpu[m][i] = cpu_per_1000(&run);
			run_free(&run);
		}
		fprintf(stderr,
			"  run %d: memory %.0f, queue %.0f, memory with write-through %.0f "
			"profiles/s\n",
			i + 1, r[0][i], r[1][i], r[2][i]);
	}
	fsync_read(&pl[1], &c->f1);
	c->queued += accepted;
	{
		double d[MAX_REPS];

		for (int i = 0; i < n; i++)
			d[i] = disk_rate(o.queue, p->plen, o.secs);
		c->disk = median(d, n);
		fprintf(stderr, "  disk alone: %.0f MB/s\n", c->disk);
	}
	for (int m = 0; m < 3; m++) {
		c->rate[m] = median(r[m], n);
		c->cpu[m] = median(cpu[m], n);
	}
	c->accept = median(acc, n);
	plugin_destroy(&pl[0]);
	plugin_destroy(&pl[1]);
	remove_dir(qdir);
}

/* Push `count` profiles, INFLIGHT at a time; returns the seconds taken. */
static double push_count(struct plugin *pl, const struct payload *p, long count, struct run *r)
{
	struct cb_state st = {.inflight = 0, .r = r, .low = INFLIGHT - 1};
	struct pw_push push;
	struct pw_sample s;
	double t0 = now_s();

	pthread_mutex_init(&st.lock, NULL);
	pthread_cond_init(&st.cond, NULL);
	fill_push(&push, &s, p);
	for (long i = 0; i < count; i++)
		cb_push(pl, &push, &st, INFLIGHT);
	cb_wait_all(&st);
	pthread_cond_destroy(&st.cond);
	pthread_mutex_destroy(&st.lock);
	return now_s() - t0;
}

/* A port nothing listens on: bound, read back and closed again. */
static int closed_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

struct recovery {
	long profiles;
	double build_secs, queue_mib, rss_before, rss_held, backlog_held;
	double create_ms, first_ms, drain_secs, drain_peak_rss, mem_rate[2];
	bool drained;
};

/*
 * A backlog built while the endpoint is down (fsync "interval", so it
 * builds at the disk's write rate), the instance destroyed; then a new
 * instance on the directory with the endpoint still down (RSS with the
 * backlog held), and one with the endpoint up: the time from create() to
 * the first delivery, and the drain rate beside memory mode's at the same
 * size, run just before and just after.
 */
static void recovery_run(struct plugin *pl, const struct payload *p, const char *dir,
			 struct recovery *rc)
{
	int dead = closed_port();
	char *cfg = queue_config(dir, dead, "interval", 2LL << 30);
	struct rss_sampler rs = {0};
	struct run r;
	double t0, first = 0;

	remove_dir(dir);
	plugin_create(pl, cfg);
	run_init(&r, false);
	rc->build_secs = push_count(pl, p, rc->profiles, &r);
	check_run("backlog", &r);
	rc->queue_mib = mib(metric_now(pl, "pyroscope_write_queue_bytes"));
	plugin_destroy(pl);
	run_free(&r);

	/* Held: the endpoint still down. */
	rc->rss_before = mib((double)rss_bytes());
	plugin_create(pl, cfg);
	usleep(1000 * 1000);
	rc->rss_held = mib((double)rss_bytes());
	rc->backlog_held = metric_now(pl, "pyroscope_write_queue_backlog_profiles");
	plugin_destroy(pl);
	free(cfg);

	cfg = queue_config(NULL, o.port, NULL, 0);
	plugin_create(pl, cfg);
	run_init(&r, false);
	plugin_cb_run(pl, p, INFLIGHT, o.secs, &r);
	rc->mem_rate[0] = rate(&r);
	run_free(&r);
	plugin_destroy(pl);

	free(cfg);
	cfg = queue_config(dir, o.port, "interval", 2LL << 30);
	atomic_init(&rs.stop, false);
	rs.peak = rss_bytes();
	pthread_create(&rs.thread, NULL, rss_main, &rs);
	t0 = now_s();
	plugin_create(pl, cfg);
	rc->create_ms = (now_s() - t0) * 1000;
	while (!first && now_s() - t0 < 60) {
		if (metric_now(pl, "pyroscope_write_sent_profiles_total") > 0) {
			first = now_s();
			rc->first_ms = (first - t0) * 1000;
		}
		usleep(100);
	}
	rc->drained = wait_drained(pl, (double)rc->profiles, 120);
	rc->drain_secs = now_s() - t0;
	atomic_store(&rs.stop, true);
	pthread_join(rs.thread, NULL);
	rc->drain_peak_rss = mib((double)rs.peak);
	plugin_destroy(pl);
	remove_dir(dir);
	free(cfg);

	cfg = queue_config(NULL, o.port, NULL, 0);
	plugin_create(pl, cfg);
	run_init(&r, false);
	plugin_cb_run(pl, p, INFLIGHT, o.secs, &r);
	rc->mem_rate[1] = rate(&r);
	run_free(&r);
	plugin_destroy(pl);
	free(cfg);
}

static void queue_print_recovery(const struct payload *p, const struct recovery *rc)
{
	double mem = (rc->mem_rate[0] + rc->mem_rate[1]) / 2 * (double)p->plen / 1e6;
	double drain = (double)rc->profiles * (double)p->plen / 1e6 / rc->drain_secs;

	printf("\n## Recovery with a backlog of %ld profiles of %zu B (queue files %.0f MiB)\n\n",
	       rc->profiles, p->plen, rc->queue_mib);
	printf("| backlog built in (fsync interval, endpoint down) | RSS before create | RSS with "
	       "the backlog held (1 s after create, endpoint down) | backlog seen | create() | "
	       "create() to first delivery | drained in (from create) | drain MB/s | memory mode "
	       "MB/s (before / after) | drain / memory | peak RSS while draining |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
	printf("| %.1f s (%.0f MB/s) | %.1f MiB | %.1f MiB | %.0f profiles | %.1f ms | %.1f ms | "
	       "%.2f s%s | %.0f | %.0f / %.0f | %.2f | %.1f MiB |\n",
	       rc->build_secs, (double)rc->profiles * (double)p->plen / 1e6 / rc->build_secs,
	       rc->rss_before, rc->rss_held, rc->backlog_held, rc->create_ms, rc->first_ms,
	       rc->drain_secs, rc->drained ? "" : " (NOT drained)", drain,
	       rc->mem_rate[0] * (double)p->plen / 1e6, rc->mem_rate[1] * (double)p->plen / 1e6,
	       drain / mem, rc->drain_peak_rss);
}

/*
 * --queue DIR: the durable queue (fsync "always") against memory mode at
 * each size, one endpoint, callback form, runs alternating; the fsync
 * figures of the 64 KiB runs; then recovery from a backlog of
 * --backlog-mib MiB. DIR (created, emptied and removed here) should be on
 * the disk being measured.
 */
static int queue_main(struct plugin *pl, struct payload *pay)
{
	struct qcell cells[NSIZES];
	struct recovery rc = {0};
	char qdir[4096];
	int n = o.quick ? 1 : MAX_REPS;

	printf("# pw-bench --queue: 1 endpoint, %d in flight (callback form), %.1f s per run, "
	       "medians of %d alternating runs, libcurl %s\n\n",
	       INFLIGHT, o.secs, n, curl_version_info(CURLVERSION_NOW)->version);
	printf("payloads:");
	for (int i = 0; i < NSIZES; i++)
		printf(" %s = %zu B profile (%s);", size_names[i], pay[i].plen, pay[i].source);
	printf("\n");
	fflush(stdout);
	if (mkdir(o.queue, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "pw-bench: %s: %s\n", o.queue, strerror(errno));
		return 1;
	}
	snprintf(qdir, sizeof(qdir), "%s/q", o.queue);
	for (int i = 0; i < NSIZES; i++) {
		fprintf(stderr, "== %s\n", size_names[i]);
		queue_pair(pl, &pay[i], qdir, &cells[i]);
	}
	printf("\n## Throughput, queue (fsync \"always\") against memory mode\n\n");
	printf("| size | memory, profiles/s | queue, profiles/s | memory MB/s | queue MB/s | "
	       "queue/memory | queue accepted, profiles/s | CPU s per 1000, memory / queue | "
	       "runs, memory | runs, queue |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < NSIZES; i++) {
		struct qcell *c = &cells[i];

		printf("| %s | %.0f | %.0f | %.1f | %.1f | %.2f | %.0f | %.3f / %.3f |",
		       size_names[i], c->rate[0], c->rate[1],
		       c->rate[0] * (double)pay[i].plen / 1e6,
		       c->rate[1] * (double)pay[i].plen / 1e6, c->rate[1] / c->rate[0], c->accept,
		       c->cpu[0], c->cpu[1]);
		for (int m = 0; m < 2; m++) {
			printf(" ");
			for (int k = 0; k < n; k++)
				printf("%s%.0f", k ? ", " : "", c->per_run[m][k]);
			printf(" |");
		}
		printf("\n");
	}
	printf("\n(queue: profiles delivered over the time from the run's first push until the "
	       "endpoint has taken every profile the run queued; accepted: the producer's rate, "
	       "callbacks at fdatasync)\n");
	printf("\n## The disk alone\n\n"
	       "Rounds of %d writes of the profile's size to one file in the queue's directory, "
	       "one "
	       "fdatasync per round, medians of %d runs after the queue's: the most the queue "
	       "could write there with %d in flight.\n\n",
	       INFLIGHT, n, INFLIGHT);
	printf("| size | disk, MB/s | queue delivered / disk | queue accepted / disk | memory mode "
	       "/ "
	       "disk |\n|---|---|---|---|---|\n");
	for (int i = 0; i < NSIZES; i++) {
		struct qcell *c = &cells[i];
		double mb = (double)pay[i].plen / 1e6;

		printf("| %s | %.0f | %.2f | %.2f | %.2f |\n", size_names[i], c->disk,
		       c->rate[1] * mb / c->disk, c->accept * mb / c->disk,
		       c->rate[0] * mb / c->disk);
	}
	printf("\n## Memory mode with write-through\n\n"
	       "Memory mode while the producer also appends every profile's bytes to one file in "
	       "the queue's directory and a thread fdatasyncs it over and over (nothing waits for "
	       "it), in the same alternation as the two above: the least work any durable queue "
	       "adds to memory mode, without a record format, checksums, reading back or "
	       "acknowledgments.\n\n");
	printf("| size | memory with write-through, profiles/s | write-through / memory | queue / "
	       "write-through | CPU s per 1000, write-through | runs "
	       "|\n|---|---|---|---|---|---|\n");
	for (int i = 0; i < NSIZES; i++) {
		struct qcell *c = &cells[i];

		printf("| %s | %.0f | %.2f | %.2f | %.3f |", size_names[i], c->rate[2],
		       c->rate[2] / c->rate[0], c->rate[1] / c->rate[2], c->cpu[2]);
		for (int k = 0; k < n; k++)
			printf("%s%.0f", k ? ", " : " ", c->per_run[2][k]);
		printf(" |\n");
	}
	printf("\n## fsync (fdatasync) during the queue's measured runs\n\n");
	printf("| size | fsyncs | profiles | profiles per fsync | p50 (from buckets) | p99 (from "
	       "buckets) | mean |\n|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < NSIZES; i++) {
		struct qcell *c = &cells[i];
		double nf = c->f1.count - c->f0.count;

		printf("| %s | %.0f | %.0f | %.1f | %.2f ms | %.2f ms | %.2f ms |\n", size_names[i],
		       nf, c->queued, nf > 0 ? c->queued / nf : NAN,
		       fsync_pct_ms(&c->f0, &c->f1, 0.5), fsync_pct_ms(&c->f0, &c->f1, 0.99),
		       nf > 0 ? (c->f1.sum - c->f0.sum) / nf * 1000 : NAN);
	}
	printf("\n(percentiles interpolated inside the histogram's buckets: 0.5, 1, 2.5, 5, 10, "
	       "25, 50, 100 ms ...; the mean is exact)\n");
	fflush(stdout);

	rc.profiles = (long)((double)o.backlog_mib * 1048576.0 / (double)pay[2].plen);
	snprintf(qdir, sizeof(qdir), "%s/backlog", o.queue);
	fprintf(stderr, "== recovery, %ld profiles\n", rc.profiles);
	recovery_run(pl, &pay[2], qdir, &rc);
	queue_print_recovery(&pay[2], &rc);
	rmdir(o.queue);
	return 0;
}

int main(int argc, char **argv)
{
	static const int sweep_full[] = {8, 16, 24, 28, 32, 48, 64};
	static const int sweep_quick[] = {8, 32, 64};
	const int *sweep = sweep_full;
	int nsweep = (int)(sizeof(sweep_full) / sizeof(sweep_full[0]));
	struct payload pay[NSIZES];
	static struct cell cells[NROWS][NSIZES];
	pid_t child;
	struct plugin pl = {0};

	parse_args(argc, argv);
	if (o.quick) {
		sweep = sweep_quick;
		nsweep = (int)(sizeof(sweep_quick) / sizeof(sweep_quick[0]));
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (int i = 0; i < NSIZES; i++)
		payload_build(&pay[i], nominal_sizes[i]);
	plugin_load(&pl);
	if (o.single || o.batch || o.queue) {
		int rc = o.single  ? single_main(&pl, pay)
			 : o.batch ? batch_main(&pl, pay)
				   : queue_main(&pl, pay);

		for (int i = 0; i < NSIZES; i++)
			payload_free(&pay[i]);
		curl_global_cleanup();
		return rc;
	}

	printf("# pw-bench: %.1f s per run, %d deliveries in flight, libcurl %s\n\n", o.secs,
	       INFLIGHT, curl_version_info(CURLVERSION_NOW)->version);
	printf("payloads:");
	for (int i = 0; i < NSIZES; i++)
		printf(" %s = %zu B profile (%s), %zu B request;", size_names[i], pay[i].plen,
		       pay[i].source, pay[i].wlen);
	printf("\n");
	fflush(stdout);

	/* The memory run goes first, in a child process of its own: its heap
	 * starts clean, and what it leaves behind in the allocator does not
	 * slow down or flatter the runs that follow. No thread exists yet, so
	 * forking is safe. */
	child = fork();
	if (child == 0) {
		memory_run(&pl, &pay[2]);
		fflush(stdout);
		_exit(0);
	}
	if (child > 0)
		waitpid(child, NULL, 0);
	else
		perror("pw-bench: fork");
	fflush(stdout);

	for (int e = 0; e < o.rows; e++) {
		char *cfg = config_json(ep_counts[e], NULL);
		struct run warm;

		plugin_create(&pl, cfg);
		run_init(&warm, false);
		plugin_cb_run(&pl, &pay[0], INFLIGHT, 0.2, &warm);
		run_free(&warm);
		for (int i = 0; i < NSIZES; i++)
			run_cell(&pl, &pay[i], ep_counts[e], &cells[e][i], sweep, nsweep);
		plugin_destroy(&pl);
		free(cfg);
	}

	printf("\n## Throughput (profiles/s; MiB/s counts request bytes sent to all "
	       "endpoints)\n\n");
	if (o.quick)
		printf("plugin cb64 and plain best come from one re-run each, alternately; the\n");
	else
		printf("plugin cb64 and plain best are medians of %d interleaved re-runs; the\n",
		       MAX_REPS);
	printf("plain client runs at the concurrency that was best in its sweep.\n\n");
	printf("| endpoints | size | plugin cb64 | MiB/s | plain best (conc/endpoint) | "
	       "plugin/plain | wrk c64 | plugin/wrk | blocking 1 | blocking 8 | blocking 64 | "
	       "blk64/cb64 |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (int e = 0; e < o.rows; e++) {
		for (int i = 0; i < NSIZES; i++) {
			struct cell *c = &cells[e][i];
			double cb = c->cb_rate;

			printf("| %d | %s | %.0f | %.1f | %.0f (%d) | %.2f |", ep_counts[e],
			       size_names[i], cb, mib(cb * (double)pay[i].wlen * ep_counts[e]),
			       c->plain_rate, sweep[c->best],
			       c->plain_rate > 0 ? cb / c->plain_rate : 0);
			if (c->have_blk && c->wrk.ok)
				printf(" %.0f | %.2f |", c->wrk.rps, cb / c->wrk.rps);
			else
				printf(" - | - |");
			if (c->have_blk)
				printf(" %.0f | %.0f | %.0f | %.2f |\n", rate(&c->blk[0]),
				       rate(&c->blk[1]), rate(&c->blk[2]),
				       cb > 0 ? rate(&c->blk[2]) / cb : 0);
			else
				printf(" - | - | - | - |\n");
		}
	}

	printf("\n## Plain client sweep (profiles/s by concurrent transfers per endpoint)\n\n");
	printf("| endpoints | size |");
	for (int k = 0; k < nsweep; k++)
		printf(" %d |", sweep[k]);
	printf("\n|---|---|");
	for (int k = 0; k < nsweep; k++)
		printf("---|");
	printf("\n");
	for (int e = 0; e < o.rows; e++) {
		for (int i = 0; i < NSIZES; i++) {
			printf("| %d | %s |", ep_counts[e], size_names[i]);
			for (int k = 0; k < nsweep; k++)
				printf(" %.0f (p50 %.1f ms) |", rate(&cells[e][i].plain[k]),
				       pct_ms(&cells[e][i].plain[k], 0.5));
			printf("\n");
		}
	}

	printf("\n## CPU seconds (user+sys of the sending process) per 1000 profiles\n\n");
	printf("| endpoints | size | plugin cb64 | plain best | plugin/plain "
	       "|\n|---|---|---|---|---|\n");
	for (int e = 0; e < o.rows; e++) {
		for (int i = 0; i < NSIZES; i++) {
			struct cell *c = &cells[e][i];
			double pc = c->cb_cpu, bc = c->plain_cpu;

			printf("| %d | %s | %.3f | %.3f | %.2f |\n", ep_counts[e], size_names[i],
			       pc, bc, pc / bc);
		}
	}

	printf("\n## Latency, 1 endpoint (ms): blocking push vs plain client request at the same "
	       "concurrency\n\n");
	printf("| size | concurrency | push p50 | push p99 | plain p50 | plain p99 |");
	printf(" wrk c64 p50 | wrk c64 p99 |\n|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < NSIZES; i++) {
		struct cell *c = &cells[0][i];

		for (int k = 0; k < 3; k++) {
			struct run *pr = NULL;

			if (blk_threads[k] == 1)
				pr = &c->plain1;
			for (int j = 0; j < nsweep && !pr; j++)
				if (sweep[j] == blk_threads[k])
					pr = &c->plain[j];
			printf("| %s | %d | %.2f | %.2f | %.2f | %.2f |", size_names[i],
			       blk_threads[k], pct_ms(&c->blk[k], 0.5), pct_ms(&c->blk[k], 0.99),
			       pr ? pct_ms(pr, 0.5) : NAN, pr ? pct_ms(pr, 0.99) : NAN);
			if (blk_threads[k] == 64 && c->wrk.ok)
				printf(" %.2f | %.2f |\n", c->wrk.p50_ms, c->wrk.p99_ms);
			else
				printf(" - | - |\n");
		}
	}
	fflush(stdout);

	update_run(&pl, &pay[1], 1);

	for (int e = 0; e < o.rows; e++)
		for (int i = 0; i < NSIZES; i++)
			cell_free(&cells[e][i], nsweep);
	for (int i = 0; i < NSIZES; i++)
		payload_free(&pay[i]);
	curl_global_cleanup();
	return 0;
}
