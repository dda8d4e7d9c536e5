/*
 * test_run.c - `mockhost run` end to end: real `mockhost run` and
 * `mockhost sink` processes on loopback, driven over HTTP with libcurl.
 *
 * Each test starts its own processes on ephemeral ports (the URL each one
 * prints as its first stdout line) in its own temporary directory, and
 * stops them at the end, checking the exit status.
 */
#define _GNU_SOURCE
#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/gzip.h"
#include "hostutil.h"
#include "labels.h"
#include "proto.h"
#include "standin/httpd.h"
#include "standin/standin.h"
#include "strbuf.h"

/* ---- processes ---- */

struct proc {
	pid_t pid;
	int out_fd; /* read end of the child's stdout */
	char url[128]; /* from the first stdout line */
};

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts argv with stdout on a pipe and stderr into errfile, then reads the
 * first stdout line ("... listening on URL"). */
static void proc_start(struct proc *p, char *const argv[], const char *errfile)
{
	char line[512];
	size_t n = 0;
	int fds[2];
	int64_t until = mono_ms() + 15000;
	const char *on;

	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	p->pid = fork();
	ck_assert_int_ge(p->pid, 0);
	if (p->pid == 0) {
		int efd = open(errfile, O_WRONLY | O_CREAT | O_APPEND, 0644);

		/* A failed assertion ends the test process without stopping
		 * its servers: let them go with it. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);

		dup2(fds[1], 1);
		if (efd >= 0)
			dup2(efd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	p->out_fd = fds[0];
	while (n + 1 < sizeof(line)) {
		struct pollfd pf = {.fd = p->out_fd, .events = POLLIN};
		ssize_t r;

		ck_assert_msg(poll(&pf, 1, 1000) >= 0, "poll");
		ck_assert_msg(mono_ms() < until, "%s did not start (see %s)", argv[0], errfile);
		if (!(pf.revents & (POLLIN | POLLHUP)))
			continue;
		r = read(p->out_fd, line + n, 1);
		ck_assert_msg(r == 1, "%s exited before printing its address (see %s)", argv[0],
			      errfile);
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	on = strstr(line, " on ");
	ck_assert_msg(on != NULL, "unexpected first line \"%s\"", line);
	snprintf(p->url, sizeof(p->url), "%s", on + 4);
}

/* Sends sig and waits for the exit; returns the exit code (or 128+signal). */
static int proc_stop(struct proc *p, int sig, int timeout_ms)
{
	int64_t until = mono_ms() + timeout_ms;
	int status = 0;
	pid_t w;

	if (p->pid <= 0)
		return -1;
	kill(p->pid, sig);
	while ((w = waitpid(p->pid, &status, WNOHANG)) == 0 && mono_ms() < until)
		msleep(10);
	if (w == 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &status, 0);
		status = 0x7f00; /* reported below as a failure */
	}
	close(p->out_fd);
	p->pid = 0;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255;
}

static bool proc_alive(struct proc *p)
{
	int status;

	return p->pid > 0 && waitpid(p->pid, &status, WNOHANG) == 0;
}

/* ---- HTTP ---- */

struct resp {
	long code;
	char *body;
	size_t len;
	char *ctype;
};

static size_t write_cb(char *data, size_t size, size_t nmemb, void *user)
{
	return strbuf_append(user, data, size * nmemb) == 0 ? size * nmemb : 0;
}

/* One request; headers is a NULL-terminated list of "Name: value". On a
 * connection failure code is 0. */
static void http_do(const char *method, const char *url, const char *const *headers,
		    const void *body, size_t len, struct resp *r)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;
	struct strbuf sb;
	char *ct = NULL;

	memset(r, 0, sizeof(*r));
	ck_assert_ptr_nonnull(c);
	strbuf_init(&sb, 64 << 20);
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sb);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
		curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
		r->ctype = ct ? strdup(ct) : NULL;
	}
	r->body = strbuf_detach(&sb, &r->len);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
}

static void resp_free(struct resp *r)
{
	free(r->body);
	free(r->ctype);
	memset(r, 0, sizeof(*r));
}

static long http_get(const char *base, const char *path, char **body)
{
	char *url = pw_asprintf("%s%s", base, path);
	struct resp r;
	long code;

	http_do("GET", url, NULL, NULL, 0, &r);
	free(url);
	code = r.code;
	if (body) {
		*body = r.body;
		r.body = NULL;
	}
	resp_free(&r);
	return code;
}

static long http_post(const char *base, const char *path, const char *const *headers,
		      const void *body, size_t len, struct resp *out)
{
	char *url = pw_asprintf("%s%s", base, path);
	struct resp r;
	long code;

	http_do("POST", url, headers, body ? body : "", len, &r);
	free(url);
	code = r.code;
	if (out)
		*out = r;
	else
		resp_free(&r);
	return code;
}

/* The value of one sample line of /metrics; -1 when absent. */
static double metric(const char *base, const char *series)
{
	char *text = NULL;
	double v = -1;
	size_t sl = strlen(series);

	ck_assert_int_eq(http_get(base, "/metrics", &text), 200);
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');

		if (strncmp(line, series, sl) == 0 && line[sl] == ' ')
			v = strtod(line + sl + 1, NULL);
		line = nl ? nl + 1 : NULL;
	}
	free(text);
	return v;
}

/* A counter of the sink's /stats, e.g. ("ingest", "accepted"). */
static long long sink_stat(const char *base, const char *group, const char *key)
{
	char *text = NULL;
	json_t *j, *v;
	long long n;

	ck_assert_int_eq(http_get(base, "/stats", &text), 200);
	j = json_loads(text, 0, NULL);
	ck_assert_ptr_nonnull(j);
	v = json_object_get(json_object_get(j, group), key);
	ck_assert_msg(json_is_integer(v), "no %s.%s in %s", group, key, text);
	n = json_integer_value(v);
	json_decref(j);
	free(text);
	return n;
}

/* ---- files ---- */

static void write_file(const char *path, const char *text, bool atomic)
{
	char *tmp = atomic ? pw_asprintf("%s.tmp", path) : NULL;
	FILE *f = fopen(tmp ? tmp : path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	if (tmp)
		ck_assert_int_eq(rename(tmp, path), 0);
	free(tmp);
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct strbuf sb;
	char buf[8192];
	size_t n;

	if (!f)
		return NULL;
	strbuf_init(&sb, 64 << 20);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_append(&sb, buf, n);
	fclose(f);
	return strbuf_detach(&sb, len);
}

/* Sorted names in dir that start with prefix and end with suffix. */
static size_t list_files(const char *dir, const char *prefix, const char *suffix, char ***out)
{
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, alphasort);
	size_t count = 0;

	*out = calloc((size_t)(n > 0 ? n : 0) + 1, sizeof(char *));
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		size_t l = strlen(name), sl = strlen(suffix);

		if (strncmp(name, prefix, strlen(prefix)) == 0 && l >= sl &&
		    strcmp(name + l - sl, suffix) == 0)
			(*out)[count++] = pw_asprintf("%s/%s", dir, name);
		free(ents[i]);
	}
	free(ents);
	return count;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* ---- the environment of one test ---- */

#define MAX_SINKS 2

struct env {
	char dir[64];
	char cfg[128];
	char errlog[128];
	char *mockhost;
	char *plugin;
	struct proc sink[MAX_SINKS];
	char sinkdir[MAX_SINKS][128];
	int nsinks;
	struct proc run;
	char *endpoint_url[MAX_SINKS]; /* where each endpoint points */
};

static struct env E;

/* The configuration: two endpoints, each to its own URL, one external
 * label env=<env>. */
static char *config_text(const char *env)
{
	return pw_asprintf(
		"{\"external_labels\":{\"env\":\"%s\"},\"endpoint\":["
		"{\"name\":\"primary\",\"url\":\"%s\",\"min_backoff_period\":\"10ms\"},"
		"{\"name\":\"secondary\",\"url\":\"%s\",\"min_backoff_period\":\"10ms\"}]}",
		env, E.endpoint_url[0], E.endpoint_url[1 % MAX_SINKS]);
}

static void write_config(const char *env, bool atomic)
{
	char *t = config_text(env);

	write_file(E.cfg, t, atomic);
	free(t);
}

static void env_init(void)
{
	memset(&E, 0, sizeof(E));
	snprintf(E.dir, sizeof(E.dir), "/tmp/pw-run-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(E.dir));
	snprintf(E.cfg, sizeof(E.cfg), "%s/config.json", E.dir);
	snprintf(E.errlog, sizeof(E.errlog), "%s/run.log", E.dir);
	E.mockhost = getenv("PW_MOCKHOST");
	E.plugin = getenv("PW_PLUGIN");
	ck_assert_msg(E.mockhost && E.plugin, "PW_MOCKHOST and PW_PLUGIN must be set");
}

/* Starts n sink processes storing into their own directories. */
static void env_sinks(int n)
{
	for (int i = 0; i < n; i++) {
		char errf[160];
		char *argv[] = {E.mockhost, "sink",  "--listen",   "127.0.0.1:0",
				"--quiet",  "--dir", E.sinkdir[i], NULL};

		snprintf(E.sinkdir[i], sizeof(E.sinkdir[i]), "%s/sink%d", E.dir, i);
		snprintf(errf, sizeof(errf), "%s/sink%d.log", E.dir, i);
		proc_start(&E.sink[i], argv, errf);
		E.endpoint_url[i] = E.sink[i].url;
	}
	if (n == 1)
		E.endpoint_url[1] = E.sink[0].url;
	E.nsinks = n;
}

static void wait_ready(const char *base)
{
	int64_t until = mono_ms() + 10000;

	while (http_get(base, "/-/ready", NULL) != 200) {
		ck_assert_msg(mono_ms() < until, "%s never became ready", base);
		msleep(20);
	}
}

/* Starts `mockhost run` on the current config with extra arguments. */
static void env_run(const char *const *extra)
{
	char *argv[32];
	int i = 0;

	argv[i++] = E.mockhost;
	argv[i++] = "--plugin";
	argv[i++] = E.plugin;
	argv[i++] = "run";
	argv[i++] = "--config";
	argv[i++] = E.cfg;
	argv[i++] = "--listen";
	argv[i++] = "127.0.0.1:0";
	for (size_t j = 0; extra && extra[j] && i < 30; j++)
		argv[i++] = (char *)extra[j];
	argv[i] = NULL;
	proc_start(&E.run, argv, E.errlog);
	wait_ready(E.run.url);
}

/* The usual start: N sinks, the configuration for `env`, mockhost run. */
static void env_start(int nsinks, const char *env)
{
	env_init();
	env_sinks(nsinks);
	write_config(env, false);
	env_run(NULL);
}

static void env_fini(void)
{
	if (E.run.pid > 0)
		ck_assert_int_eq(proc_stop(&E.run, SIGTERM, 30000), 0);
	for (int i = 0; i < E.nsinks; i++)
		ck_assert_int_eq(proc_stop(&E.sink[i], SIGTERM, 10000), 0);
	nftw(E.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static bool log_contains(const char *needle)
{
	size_t len;
	char *text = read_all(E.errlog, &len);
	bool found = text && strstr(text, needle);

	free(text);
	return found;
}

/* Waits until a metric reaches at least v. */
static void wait_metric_ge(const char *series, double v)
{
	int64_t until = mono_ms() + 10000;

	while (metric(E.run.url, series) < v) {
		ck_assert_msg(mono_ms() < until, "%s never reached %g", series, v);
		msleep(20);
	}
}

static long healthy(char **body)
{
	return http_get(E.run.url, "/-/healthy", body);
}

/* Waits until /-/healthy answers `code`. */
static void wait_healthy(long code)
{
	int64_t until = mono_ms() + 10000;

	while (healthy(NULL) != code) {
		ck_assert_msg(mono_ms() < until, "/-/healthy never answered %ld", code);
		msleep(20);
	}
}

/* ---- SDK and Connect request bodies ---- */

static const char *const octet_headers[] = {"Content-Type: application/octet-stream", NULL};
#define BOUNDARY "pwTestBoundary7d93a"
static const char *const multipart_headers[] = {
	"Content-Type: multipart/form-data; boundary=" BOUNDARY, NULL};
static const char *const proto_headers[] = {"Content-Type: application/proto",
					    "Connect-Protocol-Version: 1", NULL};

/* A multipart body as the Go and Python SDKs send it: the profile and a
 * sample_type_config part. */
static char *multipart_body(size_t *len)
{
	struct strbuf sb;
	size_t plen;
	const uint8_t *prof = th_pprof_gz(&plen);

	strbuf_init(&sb, 1 << 20);
	strbuf_puts(
		&sb,
		"--" BOUNDARY "\r\n"
		"Content-Disposition: form-data; name=\"profile\"; filename=\"profile.pprof\"\r\n"
		"Content-Type: application/octet-stream\r\n\r\n");
	strbuf_append(&sb, prof, plen);
	strbuf_puts(&sb, "\r\n--" BOUNDARY "\r\n"
			 "Content-Disposition: form-data; name=\"sample_type_config\"; "
			 "filename=\"sample_type_config.json\"\r\n"
			 "Content-Type: application/octet-stream\r\n\r\n"
			 "{\"cpu\":{\"units\":\"nanoseconds\",\"display-name\":\"cpu\"}}\r\n"
			 "--" BOUNDARY "--\r\n");
	return strbuf_detach(&sb, len);
}

/* A PushRequest with one series of the given labels and one sample: the
 * given bytes, or the small test profile when data is NULL. */
static uint8_t *push_body_of(const char *service, const uint8_t *data, size_t dlen, size_t *len)
{
	struct pw_kv items[2] = {{"__name__", "process_cpu"}, {"service_name", (char *)service}};
	struct pw_labelset ls = {items, 2};
	struct pw_sample s = {data, dlen, NULL};
	uint8_t *out = NULL;

	if (!data)
		s.data = th_pprof_gz(&s.len);
	ck_assert_int_eq(pw_proto_encode_push(&ls, &s, 1, &out, len), 0);
	return out;
}

static uint8_t *push_body(const char *service, size_t *len)
{
	return push_body_of(service, NULL, 0, len);
}

/* ---- tests ---- */

START_TEST(test_ingest_pprof_reaches_sink_intact)
{
	const char *path = "/ingest?name=demo.app.cpu%7Bregion%3Deu%7D&format=pprof&spyName=gospy"
			   "&sampleRate=100";
	size_t plen, n, blen;
	const uint8_t *prof = th_pprof_gz(&plen);
	char **files, *body, *side;
	struct resp r;

	env_start(1, "test");

	ck_assert_int_eq(http_post(E.run.url, path, octet_headers, prof, plen, &r), 200);
	ck_assert_uint_eq(r.len, 0);
	resp_free(&r);
	ck_assert_int_eq(sink_stat(E.sink[0].url, "ingest", "accepted"), 2);

	n = list_files(E.sinkdir[0], "ingest-", ".body", &files);
	ck_assert_uint_eq(n, 2);
	for (size_t i = 0; i < n; i++) {
		body = read_all(files[i], &blen);
		ck_assert_ptr_nonnull(body);
		ck_assert_uint_eq(blen, plen);
		ck_assert_int_eq(memcmp(body, prof, plen), 0);
		free(body);
	}
	free_list(files, n);
	n = list_files(E.sinkdir[0], "ingest-", ".json", &files);
	ck_assert_uint_eq(n, 2);
	side = read_all(files[0], &blen);
	/* The SDK's labels, service_name added by the host, the external
	 * label, and the other parameters kept. */
	ck_assert_ptr_nonnull(
		strstr(side, "demo.app.cpu{env=test,region=eu,service_name=demo.app.cpu}"));
	ck_assert_ptr_nonnull(strstr(side, "spyName=gospy"));
	ck_assert_ptr_nonnull(strstr(side, "sampleRate=100"));
	ck_assert_ptr_nonnull(strstr(side, "application/octet-stream"));
	free(side);
	free_list(files, n);
	env_fini();
}
END_TEST

START_TEST(test_ingest_multipart_reaches_sink_intact)
{
	size_t len, n, blen;
	char *mp = multipart_body(&len), **files, *body, *side;

	env_start(2, "test");

	ck_assert_int_eq(http_post(E.run.url, "/ingest?name=py.app&format=pprof&spyName=pyspy",
				   multipart_headers, mp, len, NULL),
			 200);
	for (int s = 0; s < 2; s++) {
		ck_assert_int_eq(sink_stat(E.sink[s].url, "ingest", "accepted"), 1);
		n = list_files(E.sinkdir[s], "ingest-", ".body", &files);
		ck_assert_uint_eq(n, 1);
		body = read_all(files[0], &blen);
		ck_assert_uint_eq(blen, len);
		ck_assert_int_eq(memcmp(body, mp, len), 0);
		free(body);
		free_list(files, n);
		n = list_files(E.sinkdir[s], "ingest-", ".json", &files);
		ck_assert_uint_eq(n, 1);
		side = read_all(files[0], &blen);
		/* The boundary must survive or the body cannot be split. */
		ck_assert_ptr_nonnull(strstr(side, "boundary=" BOUNDARY));
		ck_assert_ptr_nonnull(strstr(side, "py.app{env=test,service_name=py.app}"));
		free(side);
		free_list(files, n);
	}
	free(mp);
	env_fini();
}
END_TEST

START_TEST(test_ingest_downstream_status_relayed)
{
	size_t plen;
	const uint8_t *prof = th_pprof_gz(&plen);
	struct resp r;

	env_start(1, "test");

	/* Garbage with format=pprof: the sink answers 422, the SDK gets 422. */
	ck_assert_int_eq(http_post(E.run.url, "/ingest?name=app&format=pprof", octet_headers,
				   "not a profile", 13, &r),
			 422);
	resp_free(&r);
	/* A name that does not parse: the component refuses the empty label
	 * set before sending anything, with the status it chose (400). */
	ck_assert_int_eq(http_post(E.run.url, "/ingest?name=%7Bbad&format=pprof", octet_headers,
				   prof, plen, &r),
			 400);
	resp_free(&r);
	ck_assert_int_eq(sink_stat(E.sink[0].url, "ingest", "accepted"), 0);
	ck_assert_int_eq(http_get(E.run.url, "/ingest", NULL), 405);
	ck_assert_int_eq(http_get(E.run.url, "/nowhere", NULL), 404);
	env_fini();
}
END_TEST

START_TEST(test_push_reaches_sink_with_external_labels)
{
	size_t len, n, plen, blen;
	uint8_t *body = push_body("svc", &len);
	const uint8_t *prof = th_pprof_gz(&plen);
	char **files, *raw;
	struct resp r;
	json_t *side, *labels;

	env_start(1, "demo");

	ck_assert_int_eq(
		http_post(E.run.url, "/push.v1.PusherService/Push", proto_headers, body, len, &r),
		200);
	ck_assert_str_eq(r.ctype, "application/proto");
	ck_assert_uint_eq(r.len, 0);
	resp_free(&r);
	ck_assert_int_eq(sink_stat(E.sink[0].url, "push", "series"), 2);

	n = list_files(E.sinkdir[0], "push-", "-0.json", &files);
	ck_assert_uint_eq(n, 2);
	for (size_t i = 0; i < n; i++) {
		side = json_load_file(files[i], 0, NULL);
		ck_assert_ptr_nonnull(side);
		labels = json_object_get(side, "labels");
		ck_assert_str_eq(json_string_value(json_object_get(labels, "env")), "demo");
		ck_assert_str_eq(json_string_value(json_object_get(labels, "service_name")), "svc");
		ck_assert_str_eq(json_string_value(json_object_get(labels, "__name__")),
				 "process_cpu");
		json_decref(side);
	}
	free_list(files, n);
	n = list_files(E.sinkdir[0], "push-", ".pprof", &files);
	ck_assert_uint_eq(n, 2);
	raw = read_all(files[0], &blen);
	ck_assert_uint_eq(blen, plen);
	ck_assert_int_eq(memcmp(raw, prof, plen), 0);
	free(raw);
	free_list(files, n);
	free(body);
	env_fini();
}
END_TEST

/* A profile large enough for mockhost run to hand it over without a copy
 * (it keeps the request body until the outcome): every byte arrives. */
START_TEST(test_large_push_reaches_sink_intact)
{
	size_t len, plen, blen, n;
	uint8_t *prof = th_big_pprof(500 * 1000, 9, &plen);
	uint8_t *body = push_body_of("big", prof, plen, &len);
	char **files, *raw;
	struct resp r;

	env_start(1, "demo");
	ck_assert_int_eq(
		http_post(E.run.url, "/push.v1.PusherService/Push", proto_headers, body, len, &r),
		200);
	resp_free(&r);
	n = list_files(E.sinkdir[0], "push-", ".pprof", &files);
	ck_assert_uint_ge(n, 1);
	for (size_t i = 0; i < n; i++) {
		raw = read_all(files[i], &blen);
		ck_assert_uint_eq(blen, plen);
		ck_assert_int_eq(memcmp(raw, prof, plen), 0);
		free(raw);
	}
	free_list(files, n);
	free(body);
	free(prof);
	env_fini();
}
END_TEST

START_TEST(test_push_errors_are_connect_errors)
{
	const char *const timeout_headers[] = {"Content-Type: application/proto",
					       "Connect-Timeout-Ms: soon", NULL};
	const char *const json_headers[] = {"Content-Type: application/json", NULL};
	size_t len;
	uint8_t *body = push_body("svc", &len);
	struct resp r;

	env_start(1, "test");

	ck_assert_int_eq(http_post(E.run.url, "/push.v1.PusherService/Push", proto_headers,
				   "\xff\xff\xff", 3, &r),
			 400);
	ck_assert_str_eq(r.ctype, "application/json");
	ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"invalid_argument\""));
	resp_free(&r);
	ck_assert_int_eq(
		http_post(E.run.url, "/push.v1.PusherService/Push", timeout_headers, body, len, &r),
		400);
	ck_assert_ptr_nonnull(strstr(r.body, "invalid_argument"));
	resp_free(&r);
	ck_assert_int_eq(
		http_post(E.run.url, "/push.v1.PusherService/Push", json_headers, "{}", 2, NULL),
		415);
	ck_assert_int_eq(sink_stat(E.sink[0].url, "push", "accepted"), 0);
	free(body);
	env_fini();
}
END_TEST

START_TEST(test_push_downstream_failure_is_internal)
{
	struct standin_opts so = {0};
	struct standin_reply rep = {.status = 400,
				    .content_type = "application/json",
				    .body = "{\"code\":\"invalid_argument\",\"message\":\"nope\"}",
				    .times = 2};
	struct standin *down;
	char *err = NULL;
	size_t len;
	uint8_t *body = push_body("svc", &len);
	struct resp r;

	env_init();
	down = standin_start(&so, &err);
	ck_assert_ptr_nonnull(down);
	E.endpoint_url[0] = E.endpoint_url[1] = (char *)standin_url(down);
	write_config("test", false);
	env_run(NULL);
	standin_script(down, STANDIN_ROUTE_PUSH, &rep);

	ck_assert_int_eq(
		http_post(E.run.url, "/push.v1.PusherService/Push", proto_headers, body, len, &r),
		500);
	ck_assert_str_eq(r.ctype, "application/json");
	ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"internal\""));
	ck_assert_ptr_nonnull(strstr(r.body, "nope"));
	resp_free(&r);
	env_fini();
	standin_stop(down);
	free(body);
}
END_TEST

START_TEST(test_reload_by_file_signal_and_http)
{
	char *text = NULL;
	double ok0;
	struct resp r;

	env_start(1, "one");

	/* inotify, with an editor-style rename. */
	write_config("two", true);
	wait_metric_ge("mockhost_reloads_total{result=\"success\"}", 1);
	ck_assert_int_eq(http_get(E.run.url, "/debug", &text), 200);
	ck_assert_ptr_nonnull(strstr(text, "\"two\""));
	free(text);
	/* inotify, rewritten in place. */
	write_config("three", false);
	wait_metric_ge("mockhost_reloads_total{result=\"success\"}", 2);
	ck_assert_int_eq(http_get(E.run.url, "/debug", &text), 200);
	ck_assert_ptr_nonnull(strstr(text, "\"three\""));
	free(text);

	/* SIGHUP reloads even an unchanged file. */
	ok0 = metric(E.run.url, "mockhost_reloads_total{result=\"success\"}");
	kill(E.run.pid, SIGHUP);
	wait_metric_ge("mockhost_reloads_total{result=\"success\"}", ok0 + 1);
	ck_assert(log_contains("source=SIGHUP"));

	ck_assert_int_eq(http_post(E.run.url, "/-/reload", NULL, NULL, 0, &r), 200);
	ck_assert_str_eq(r.body, "reloaded\n");
	resp_free(&r);
	ck_assert_int_eq(metric(E.run.url, "mockhost_reloads_total{result=\"success\"}"), ok0 + 2);
	ck_assert_int_eq(http_get(E.run.url, "/-/reload", NULL), 405);
	env_fini();
}
END_TEST

START_TEST(test_invalid_config_keeps_last_and_reports)
{
	char *body = NULL;
	size_t plen;
	const uint8_t *prof = th_pprof_gz(&plen);
	struct resp r;
	json_t *j;

	env_start(1, "good");
	ck_assert_int_eq(healthy(&body), 200);
	ck_assert_str_eq(body, "ok\n");
	free(body);

	write_file(E.cfg, "{\"endpoint\":[{\"url\":\"ftp://nowhere\"}]}", true);
	wait_healthy(503);
	ck_assert_int_eq(healthy(&body), 503);
	ck_assert_ptr_nonnull(strstr(body, "endpoint[0].url"));
	free(body);
	ck_assert(log_contains("configuration refused"));
	ck_assert_int_eq(metric(E.run.url, "mockhost_config_last_reload_successful"), 0);
	ck_assert_int_ge(metric(E.run.url, "mockhost_reloads_total{result=\"failure\"}"), 1);

	/* POST /-/reload says why too. */
	ck_assert_int_eq(http_post(E.run.url, "/-/reload", NULL, NULL, 0, &r), 400);
	ck_assert_ptr_nonnull(strstr(r.body, "ftp"));
	resp_free(&r);

	/* Still delivering with the last valid configuration. */
	ck_assert_int_eq(http_post(E.run.url, "/ingest?name=app&format=pprof", octet_headers, prof,
				   plen, NULL),
			 200);
	ck_assert_int_eq(sink_stat(E.sink[0].url, "ingest", "accepted"), 2);

	/* A document the host cannot even read is reported as well. */
	write_file(E.cfg, "{ not json", true);
	msleep(200);
	ck_assert_int_eq(healthy(&body), 503);
	free(body);

	write_config("good-again", true);
	wait_healthy(200);
	ck_assert_int_eq(metric(E.run.url, "mockhost_config_last_reload_successful"), 1);
	ck_assert_int_eq(http_get(E.run.url, "/debug", &body), 200);
	j = json_loads(body, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_ptr_nonnull(strstr(body, "good-again"));
	json_decref(j);
	free(body);
	env_fini();
}
END_TEST

/* After a file the host cannot even convert (an .alloy file with a syntax
 * error), writing back the very configuration that was running before is
 * applied again and restores health, although it converts to the JSON
 * applied last. */
START_TEST(test_reload_back_to_identical_config_restores_health)
{
	char *good, *body = NULL;

	env_init();
	env_sinks(1);
	snprintf(E.cfg, sizeof(E.cfg), "%s/config.alloy", E.dir);
	good = pw_asprintf("pyroscope.write \"default\" {\n"
			   "  endpoint {\n    url = \"%s\"\n  }\n"
			   "  external_labels = {\n    \"env\" = \"good\",\n  }\n}\n",
			   E.endpoint_url[0]);
	write_file(E.cfg, good, false);
	env_run(NULL);
	ck_assert_int_eq(healthy(NULL), 200);

	write_file(E.cfg, "pyroscope.write \"default\" {\n  endpoint {\n", true);
	wait_healthy(503);
	ck_assert_int_eq(metric(E.run.url, "mockhost_config_last_reload_successful"), 0);

	write_file(E.cfg, good, true);
	wait_healthy(200);
	ck_assert_int_eq(metric(E.run.url, "mockhost_config_last_reload_successful"), 1);
	ck_assert_int_eq(http_get(E.run.url, "/debug", &body), 200);
	ck_assert_ptr_nonnull(strstr(body, "\"good\""));
	free(body);
	free(good);
	env_fini();
}
END_TEST

/* Deleting the configuration's directory and creating it again (as some
 * deployment tools do) must not end hot reload. */
START_TEST(test_reload_survives_directory_recreated)
{
	char confdir[96], *body = NULL;
	int64_t until;

	env_init();
	env_sinks(1);
	snprintf(confdir, sizeof(confdir), "%s/conf", E.dir);
	snprintf(E.cfg, sizeof(E.cfg), "%s/config.json", confdir);
	ck_assert_int_eq(mkdir(confdir, 0755), 0);
	write_config("one", false);
	env_run(NULL);

	ck_assert_int_eq(unlink(E.cfg), 0);
	ck_assert_int_eq(rmdir(confdir), 0);
	until = mono_ms() + 10000;
	while (!log_contains("configuration directory gone")) {
		ck_assert_msg(mono_ms() < until, "the lost watch was never reported");
		msleep(20);
	}
	ck_assert_int_eq(mkdir(confdir, 0755), 0);
	write_config("two", true);
	wait_metric_ge("mockhost_reloads_total{result=\"success\"}", 1);
	ck_assert_int_eq(http_get(E.run.url, "/debug", &body), 200);
	ck_assert_ptr_nonnull(strstr(body, "\"two\""));
	free(body);
	ck_assert(log_contains("hot reload resumed"));

	/* Watched again, not just read once: a later edit is seen too. */
	write_config("three", false);
	wait_metric_ge("mockhost_reloads_total{result=\"success\"}", 2);
	ck_assert_int_eq(http_get(E.run.url, "/debug", &body), 200);
	ck_assert_ptr_nonnull(strstr(body, "\"three\""));
	free(body);
	ck_assert_int_eq(healthy(NULL), 200);
	env_fini();
}
END_TEST

/* A FIFO in place of the configuration is refused at once, naming the
 * path, instead of blocking the reload (and SIGTERM behind it) until some
 * writer opens it. */
START_TEST(test_reload_refuses_fifo)
{
	struct resp r;
	char *body = NULL;

	env_start(1, "one");
	ck_assert_int_eq(unlink(E.cfg), 0);
	ck_assert_int_eq(mkfifo(E.cfg, 0644), 0);

	ck_assert_int_eq(http_post(E.run.url, "/-/reload", NULL, NULL, 0, &r), 400);
	ck_assert_ptr_nonnull(strstr(r.body, E.cfg));
	ck_assert_ptr_nonnull(strstr(r.body, "not a regular file"));
	resp_free(&r);
	ck_assert_int_eq(healthy(&body), 503);
	ck_assert_ptr_nonnull(strstr(body, "not a regular file"));
	free(body);
	/* The running configuration stays in use, and SIGTERM still works. */
	ck_assert_int_eq(http_get(E.run.url, "/-/ready", NULL), 200);
	ck_assert_int_eq(proc_stop(&E.run, SIGTERM, 10000), 0);
	env_fini();
}
END_TEST

/* Writes a metrics exposition to a file and has promtool check it. */
static void promtool_passes(const char *text)
{
	char *path = pw_asprintf("%s/metrics.txt", E.dir), *cmd;
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	cmd = pw_asprintf("promtool check metrics < %s >&2", path);
	ck_assert_msg(system(cmd) == 0, "promtool check metrics failed:\n%s", text);
	free(cmd);
	free(path);
}

/*
 * `mockhost run` with a queue block: 200 once the profile is on disk,
 * delivered afterwards; the queue's series pass promtool and the debug
 * view shows the queue; a full queue with when_full = "refuse" answers
 * 429 at once.
 */
START_TEST(queue_mode_over_http)
{
	struct standin_opts so = {0};
	struct standin *down;
	size_t plen, blen;
	const uint8_t *prof = th_pprof_gz(&plen);
	uint8_t *big = th_big_pprof(40 * 1024, 7, &blen);
	size_t pushlen, big_pushlen;
	uint8_t *push, *big_push = push_body_of("app", big, blen, &big_pushlen);
	char *err = NULL, *cfg, *text = NULL;
	long code = 0;

	env_init();
	env_sinks(1);
	down = standin_start(&so, &err);
	ck_assert_msg(down != NULL, "standin: %s", err ? err : "?");
	standin_script(down, STANDIN_ROUTE_INGEST,
		       &(struct standin_reply){.status = 503, .times = 100000});
	standin_script(down, STANDIN_ROUTE_PUSH,
		       &(struct standin_reply){.status = 503, .times = 100000});
	cfg = pw_asprintf("{\"endpoint\":[{\"url\":\"%s\",\"name\":\"live\"},"
			  "{\"url\":\"%s\",\"name\":\"down\",\"min_backoff_period\":\"10ms\","
			  "\"max_backoff_period\":\"50ms\"}],"
			  "\"queue\":{\"directory\":\"%s/queue\",\"max_size\":65536,"
			  "\"when_full\":\"refuse\"}}",
			  E.endpoint_url[0], standin_url(down), E.dir);
	write_file(E.cfg, cfg, false);
	free(cfg);
	env_run(NULL);

	ck_assert_int_eq(http_post(E.run.url, "/ingest?name=app&format=pprof", octet_headers, prof,
				   plen, NULL),
			 200);
	push = push_body_of("app", prof, plen, &pushlen);
	ck_assert_int_eq(http_post(E.run.url, "/push.v1.PusherService/Push", proto_headers, push,
				   pushlen, NULL),
			 200);
	/* The live endpoint gets them; the dead one keeps them on disk. Then
	 * 40 KiB bodies fill the 64 KiB queue: refused with 429, at once. */
	for (int i = 0; i < 4 && code != 429; i++)
		code = http_post(E.run.url, "/ingest?name=app&format=pprof", octet_headers, big,
				 blen, NULL);
	ck_assert_int_eq(code, 429);
	/* A Connect push that does not fit either: resource_exhausted, 429. */
	ck_assert_int_eq(http_post(E.run.url, "/push.v1.PusherService/Push", proto_headers,
				   big_push, big_pushlen, NULL),
			 429);
	for (int i = 0; i < 250; i++) {
		free(text);
		text = NULL;
		ck_assert_int_eq(http_get(E.run.url, "/metrics", &text), 200);
		/* The backlog gauges are refreshed a few times a second. */
		if (strstr(text, "pyroscope_write_sent_profiles_total{endpoint=\"live\"} 3") &&
		    strstr(text, "pyroscope_write_queue_backlog_profiles{endpoint=\"down\"} 3"))
			break;
		msleep(20);
	}
	ck_assert_ptr_nonnull(
		strstr(text, "pyroscope_write_sent_profiles_total{endpoint=\"live\"} 3"));
	ck_assert_ptr_nonnull(
		strstr(text, "pyroscope_write_queue_backlog_profiles{endpoint=\"down\"} 3"));
	ck_assert_ptr_nonnull(strstr(text, "pyroscope_write_queue_fsync_duration_seconds_count"));
	ck_assert_ptr_nonnull(strstr(text, "pyroscope_write_queue_dropped_profiles_total{endpoint="
					   "\"down\",reason=\"full\"} 2"));
	if (system("command -v promtool >/dev/null 2>&1") == 0)
		promtool_passes(text);
	free(text);
	text = NULL;
	ck_assert_int_eq(http_get(E.run.url, "/debug", &text), 200);
	ck_assert_ptr_nonnull(strstr(text, "\"queue\":{\"directory\":"));
	free(text);
	free(big);
	free(push);
	free(big_push);
	env_fini();
	standin_stop(down);
}
END_TEST

START_TEST(test_metrics_pass_promtool)
{
	char *text = NULL;
	size_t plen;
	const uint8_t *prof = th_pprof_gz(&plen);

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		fprintf(stderr, "SKIP test_metrics_pass_promtool: promtool is not installed\n");
		return;
	}
	env_start(1, "test");
	ck_assert_int_eq(http_post(E.run.url, "/ingest?name=app&format=pprof", octet_headers, prof,
				   plen, NULL),
			 200);
	ck_assert_int_eq(
		http_post(E.run.url, "/ingest?name=app&format=pprof", octet_headers, "x", 1, NULL),
		422);
	ck_assert_int_eq(http_get(E.run.url, "/metrics", &text), 200);
	ck_assert_ptr_nonnull(
		strstr(text, "mockhost_http_requests_total{path=\"/ingest\",code=\"200\"} 1"));
	ck_assert_ptr_nonnull(
		strstr(text, "mockhost_http_requests_total{path=\"/ingest\",code=\"422\"} 1"));
	ck_assert_ptr_nonnull(
		strstr(text, "pyroscope_write_sent_profiles_total{endpoint=\"primary\"} 1"));
	ck_assert_ptr_nonnull(strstr(text, "mockhost_inflight_requests_limit 16384"));
	promtool_passes(text);
	free(text);
	env_fini();
}
END_TEST

/* ---- concurrency ---- */

#define CLIENTS 8
#define MIN_PER_CLIENT 10

struct client {
	pthread_t t;
	int ok;
	int failed;
};

/* Set once the configuration has been rewritten for the last time: the
 * clients keep sending until then, so every rewrite races with traffic. */
static volatile sig_atomic_t clients_stop;

static void *client_main(void *arg)
{
	struct client *c = arg;
	size_t plen;
	const uint8_t *prof = th_pprof_gz(&plen);
	char *url = pw_asprintf("%s/ingest?name=stress.app%%7Bclient%%3D%p%%7D&format=pprof",
				E.run.url, arg);

	while (!__atomic_load_n(&clients_stop, __ATOMIC_SEQ_CST) ||
	       c->ok + c->failed < MIN_PER_CLIENT) {
		struct resp r;

		http_do("POST", url, octet_headers, prof, plen, &r);
		if (r.code == 200)
			c->ok++;
		else
			c->failed++;
		resp_free(&r);
	}
	free(url);
	return NULL;
}

START_TEST(test_clients_during_100_reloads)
{
	struct client cl[CLIENTS];
	int ok = 0, failed = 0;
	const char *names[2] = {"primary", "secondary"};
	char *body = NULL;

	env_start(2, "v0");

	memset(cl, 0, sizeof(cl));
	clients_stop = 0;
	for (int i = 0; i < CLIENTS; i++)
		ck_assert_int_eq(pthread_create(&cl[i].t, NULL, client_main, &cl[i]), 0);
	for (int i = 0; i < 100; i++) {
		if (i % 2 == 0) {
			char env[16];

			snprintf(env, sizeof(env), "v%d", i);
			write_config(env, i % 4 == 0);
		} else {
			write_file(E.cfg, i % 3 ? "{\"endpoint\":[{\"url\":\"\"}]}" : "{ broken",
				   i % 4 == 1);
		}
		msleep(25);
	}
	__atomic_store_n(&clients_stop, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(cl[i].t, NULL);
		ok += cl[i].ok;
		failed += cl[i].failed;
	}
	ck_assert(proc_alive(&E.run));
	/* A refused configuration never stops deliveries. */
	ck_assert_int_eq(failed, 0);
	ck_assert_int_ge(ok, CLIENTS * MIN_PER_CLIENT);
	/* Saves close together are read once; many are applied or refused. */
	ck_assert_int_ge(metric(E.run.url, "mockhost_reloads_total{result=\"success\"}"), 10);
	ck_assert_int_ge(metric(E.run.url, "mockhost_reloads_total{result=\"failure\"}"), 10);
	fprintf(stderr, "stress: %d requests, %g reloads applied, %g refused\n", ok,
		metric(E.run.url, "mockhost_reloads_total{result=\"success\"}"),
		metric(E.run.url, "mockhost_reloads_total{result=\"failure\"}"));

	for (int s = 0; s < 2; s++) {
		char series[128];
		double sent, dropped;

		snprintf(series, sizeof(series),
			 "pyroscope_write_sent_profiles_total{endpoint=\"%s\"}", names[s]);
		sent = metric(E.run.url, series);
		snprintf(series, sizeof(series),
			 "pyroscope_write_dropped_profiles_total{endpoint=\"%s\"}", names[s]);
		dropped = metric(E.run.url, series);
		ck_assert_msg(sent + dropped == ok, "%s: sent %g + dropped %g != %d", names[s],
			      sent, dropped, ok);
		ck_assert_int_eq((long long)sent, sink_stat(E.sink[s].url, "ingest", "accepted"));
	}
	write_config("final", true);
	wait_healthy(200);
	ck_assert_int_eq(http_get(E.run.url, "/debug", &body), 200);
	ck_assert_ptr_nonnull(strstr(body, "final"));
	free(body);
	env_fini();
}
END_TEST

/* ---- limits and shutdown, against a slow in-process downstream ---- */

struct slow_req {
	pthread_t t;
	long code;
};

static void *slow_req_main(void *arg)
{
	struct slow_req *s = arg;
	size_t plen;
	const uint8_t *prof = th_pprof_gz(&plen);
	struct resp r;
	char *url = pw_asprintf("%s/ingest?name=slow&format=pprof", E.run.url);

	http_do("POST", url, octet_headers, prof, plen, &r);
	s->code = r.code;
	resp_free(&r);
	free(url);
	return NULL;
}

static struct standin *slow_downstream(int delay_ms, unsigned times)
{
	struct standin_opts so = {0};
	struct standin_reply rep = {.delay_ms = delay_ms, .times = times};
	struct standin *down;
	char *err = NULL;

	down = standin_start(&so, &err);
	ck_assert_msg(down != NULL, "%s", err ? err : "");
	standin_script(down, STANDIN_ROUTE_INGEST, &rep);
	E.endpoint_url[0] = E.endpoint_url[1] = (char *)standin_url(down);
	return down;
}

START_TEST(test_conn_limit)
{
	const char *extra[] = {"--conn-limit", "1", NULL};
	struct slow_req a = {0};
	struct standin *down;
	size_t plen;
	const uint8_t *prof = th_pprof_gz(&plen);

	env_init();
	down = slow_downstream(1500, 2);
	write_config("test", false);
	env_run(extra);

	ck_assert_int_eq(pthread_create(&a.t, NULL, slow_req_main, &a), 0);
	wait_metric_ge("mockhost_inflight_requests", 1);
	ck_assert_int_eq(http_post(E.run.url, "/ingest?name=other&format=pprof", octet_headers,
				   prof, plen, NULL),
			 429);
	/* Health and metrics are not receivers: they still answer. */
	ck_assert_int_eq(healthy(NULL), 200);
	pthread_join(a.t, NULL);
	ck_assert_int_eq(a.code, 200);
	ck_assert_int_eq(metric(E.run.url, "mockhost_limited_requests_total"), 1);
	env_fini();
	standin_stop(down);
}
END_TEST

START_TEST(test_sigterm_drains_and_exits_0)
{
	struct slow_req a = {0}, b = {0};
	struct standin *down;
	struct standin_stats st;
	int64_t t0;

	env_init();
	down = slow_downstream(1000, 4);
	write_config("test", false);
	env_run((const char *const[]){"--drain-timeout", "20s", NULL});

	ck_assert_int_eq(pthread_create(&a.t, NULL, slow_req_main, &a), 0);
	ck_assert_int_eq(pthread_create(&b.t, NULL, slow_req_main, &b), 0);
	wait_metric_ge("mockhost_inflight_requests", 2);
	t0 = mono_ms();
	ck_assert_int_eq(proc_stop(&E.run, SIGTERM, 20000), 0);
	pthread_join(a.t, NULL);
	pthread_join(b.t, NULL);
	/* Both requests under way were answered after their delivery. */
	ck_assert_int_eq(a.code, 200);
	ck_assert_int_eq(b.code, 200);
	ck_assert_int_lt(mono_ms() - t0, 15000);
	standin_stats_get(down, &st);
	ck_assert_uint_eq(st.scripted, 4);
	ck_assert(log_contains("drained"));
	env_fini();
	standin_stop(down);
}
END_TEST

START_TEST(test_sigterm_drain_timeout_bounds_exit)
{
	struct slow_req a = {0};
	struct standin *down;
	int64_t t0;

	env_init();
	/* A downstream that never answers in time: the drain bound, then
	 * destroy(), end the request. */
	down = slow_downstream(60000, 2);
	write_config("test", false);
	env_run((const char *const[]){"--drain-timeout", "300ms", "--request-timeout", "60s",
				      NULL});

	ck_assert_int_eq(pthread_create(&a.t, NULL, slow_req_main, &a), 0);
	wait_metric_ge("mockhost_inflight_requests", 1);
	t0 = mono_ms();
	ck_assert_int_eq(proc_stop(&E.run, SIGTERM, 30000), 0);
	pthread_join(a.t, NULL);
	ck_assert_int_ne(a.code, 200);
	/* The drain bound plus the component's own bounded shutdown (5s). */
	ck_assert_int_lt(mono_ms() - t0, 12000);
	env_fini();
	standin_stop(down);
}
END_TEST

START_TEST(test_usage_errors)
{
	char *cmd;

	env_init();
	cmd = pw_asprintf("%s run --listen 127.0.0.1:0 >/dev/null 2>&1", E.mockhost);
	ck_assert_int_eq(WEXITSTATUS(system(cmd)), 2);
	free(cmd);
	cmd = pw_asprintf("%s run --config %s --conn-limit 0 >/dev/null 2>&1", E.mockhost, E.cfg);
	ck_assert_int_eq(WEXITSTATUS(system(cmd)), 2);
	free(cmd);
	/* An invalid first configuration: nothing to run. */
	write_file(E.cfg, "{\"endpoint\":[{\"url\":\"\"}]}", false);
	cmd = pw_asprintf(
		"timeout 20 %s --plugin %s run --config %s --listen 127.0.0.1:0 >/dev/null 2>&1",
		E.mockhost, E.plugin, E.cfg);
	ck_assert_int_eq(WEXITSTATUS(system(cmd)), 1);
	free(cmd);
	env_fini();
}
END_TEST

/* `mockhost sink --dir` naming a regular file fails at start, saying so,
 * instead of answering every request later with a failure. */
START_TEST(test_sink_dir_is_a_file)
{
	char *cmd, *text;
	size_t len;

	env_init();
	write_file(E.cfg, "not a directory\n", false);
	cmd = pw_asprintf("timeout 20 %s sink --listen 127.0.0.1:0 --dir %s >/dev/null 2>%s",
			  E.mockhost, E.cfg, E.errlog);
	ck_assert_int_eq(WEXITSTATUS(system(cmd)), 1);
	free(cmd);
	text = read_all(E.errlog, &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(strstr(text, E.cfg));
	ck_assert_ptr_nonnull(strstr(text, "not a directory"));
	free(text);
	env_fini();
}
END_TEST

/* ---- mockhost sink on a full disk (root only: mounts a tmpfs) ---- */

/* The size of each stored ingest body: with its side file, five pages of
 * the 64 KiB tmpfs, so the fourth request runs out of space half-way. */
#define DISK_BODY 16384

/* Files in dir and their total size. */
static size_t dir_usage(const char *dir, off_t *bytes)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	*bytes = 0;
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		char *p;
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		p = pw_asprintf("%s/%s", dir, e->d_name);
		ck_assert_int_eq(stat(p, &st), 0);
		*bytes += st.st_size;
		free(p);
		n++;
	}
	closedir(d);
	return n;
}

START_TEST(test_sink_full_disk_answers_507)
{
	char disk[96], errf[160];
	char *argv[] = {E.mockhost, "sink",  "--listen", "127.0.0.1:0",
			"--quiet",  "--dir", disk,	 NULL};
	size_t blen, plen, nfiles, ok = 0, full = 0;
	uint8_t *body, *push;
	struct resp r;
	off_t bytes;
	char **files;

	env_init();
	argv[0] = E.mockhost;
	snprintf(disk, sizeof(disk), "%s/disk", E.dir);
	snprintf(errf, sizeof(errf), "%s/sink.log", E.dir);
	ck_assert_int_eq(mkdir(disk, 0755), 0);
	ck_assert_msg(mount("tmpfs", disk, "tmpfs", 0, "size=64k") == 0, "mount tmpfs: %s",
		      strerror(errno));
	proc_start(&E.sink[0], argv, errf);
	E.nsinks = 1;

	body = th_big_pprof(DISK_BODY, 1, &blen);
	for (int i = 0; i < 8; i++) {
		long code = http_post(E.sink[0].url, "/ingest?name=app&format=pprof", octet_headers,
				      body, blen, &r);

		if (code == 200) {
			ck_assert_uint_eq(full, 0);
			ok++;
		} else {
			ck_assert_int_eq(code, 507);
			ck_assert_ptr_nonnull(strstr(r.body, "No space left on device"));
			full++;
		}
		resp_free(&r);
	}
	ck_assert_uint_ge(ok, 1);
	ck_assert_uint_ge(full, 1);
	ck_assert_int_eq(sink_stat(E.sink[0].url, "ingest", "accepted"), (long long)ok);
	ck_assert_int_eq(sink_stat(E.sink[0].url, "rejected", "storage"), (long long)full);
	/* Only whole requests are kept: a body and its side file each, and
	 * every body complete. */
	nfiles = list_files(disk, "ingest-", ".body", &files);
	ck_assert_uint_eq(nfiles, ok);
	for (size_t i = 0; i < nfiles; i++) {
		struct stat st;

		ck_assert_int_eq(stat(files[i], &st), 0);
		ck_assert_int_eq(st.st_size, (off_t)blen);
	}
	free_list(files, nfiles);
	ck_assert_uint_eq(dir_usage(disk, &bytes), 2 * ok);

	/* A push that no longer fits is refused the same way. */
	push = push_body_of("app", body, blen, &plen);
	ck_assert_int_eq(http_post(E.sink[0].url, "/push.v1.PusherService/Push", proto_headers,
				   push, plen, NULL),
			 507);
	ck_assert_int_eq(sink_stat(E.sink[0].url, "push", "accepted"), 0);
	ck_assert_uint_eq(dir_usage(disk, &bytes), 2 * ok);
	free(push);
	free(body);

	ck_assert_int_eq(proc_stop(&E.sink[0], SIGTERM, 10000), 0);
	E.nsinks = 0;
	ck_assert_int_eq(umount2(disk, MNT_DETACH), 0);
	env_fini();
}
END_TEST

/*
 * The queue on a real full disk: a 512 KiB tmpfs, far below max_size, with
 * the endpoint down. drop_oldest keeps answering 200 by dropping the
 * oldest profiles (counted); refuse answers 429 and takes profiles again
 * once the endpoint has taken what was queued. Nothing acknowledged is
 * lost: every profile answered 200 is delivered or counted as dropped.
 */
static void queue_full_disk(bool refuse)
{
	char disk[96], *cfg;
	struct standin_opts so = {0};
	struct standin *down;
	size_t blen;
	uint8_t *body = th_big_pprof(40 * 1024, 3, &blen);
	char *err = NULL;
	int ok = 0, refused = 0;
	double sent = -1, dropped;

	env_init();
	snprintf(disk, sizeof(disk), "%s/disk", E.dir);
	ck_assert_int_eq(mkdir(disk, 0755), 0);
	ck_assert_msg(mount("tmpfs", disk, "tmpfs", 0, "size=512k") == 0, "mount tmpfs: %s",
		      strerror(errno));
	down = standin_start(&so, &err);
	ck_assert_msg(down != NULL, "standin: %s", err ? err : "?");
	standin_script(down, STANDIN_ROUTE_INGEST,
		       &(struct standin_reply){.status = 503, .times = 100000});
	cfg = pw_asprintf("{\"endpoint\":[{\"url\":\"%s\",\"name\":\"a\","
			  "\"min_backoff_period\":\"10ms\",\"max_backoff_period\":\"50ms\"}],"
			  "\"queue\":{\"directory\":\"%s/q\",\"max_size\":67108864,"
			  "\"when_full\":\"%s\"}}",
			  standin_url(down), disk, refuse ? "refuse" : "drop_oldest");
	write_file(E.cfg, cfg, false);
	free(cfg);
	env_run(NULL);

	for (int i = 0; i < 30; i++) {
		long code = http_post(E.run.url, "/ingest?name=app&format=pprof", octet_headers,
				      body, blen, NULL);

		if (code == 200) {
			ok++;
		} else {
			ck_assert_msg(refuse && code == 429, "answer %ld", code);
			refused++;
		}
	}
	/* 30 x 40 KiB cannot fit in 512 KiB. */
	if (refuse)
		ck_assert_int_ge(refused, 1);
	else
		ck_assert_int_eq(ok, 30);
	ck_assert_int_eq(http_get(E.run.url, "/-/healthy", NULL), 200);
	standin_script_clear(down);
	for (int i = 0; i < 500; i++) {
		sent = metric(E.run.url, "pyroscope_write_sent_profiles_total{endpoint=\"a\"}");
		dropped = metric(E.run.url,
				 "pyroscope_write_queue_dropped_profiles_total{endpoint=\"a\","
				 "reason=\"full\"}");
		if (sent + (refuse ? 0 : dropped) >= ok)
			break;
		msleep(20);
	}
	if (refuse) {
		ck_assert_double_eq(sent, ok);
		ck_assert_double_eq(dropped, refused);
		/* Room again. */
		ck_assert_int_eq(http_post(E.run.url, "/ingest?name=app&format=pprof",
					   octet_headers, body, blen, NULL),
				 200);
	} else {
		ck_assert_double_ge(dropped, 1);
		ck_assert_double_eq(sent + dropped, ok);
	}
	free(body);
	ck_assert_int_eq(proc_stop(&E.run, SIGTERM, 30000), 0);
	E.run.pid = 0;
	standin_stop(down);
	ck_assert_int_eq(umount2(disk, MNT_DETACH), 0);
	env_fini();
}

START_TEST(test_queue_full_disk_drop_oldest)
{
	queue_full_disk(false);
}
END_TEST

START_TEST(test_queue_full_disk_refuse)
{
	queue_full_disk(true);
}
END_TEST

/* ---- hostile clients ---- */

/* Sends raw bytes to `mockhost run` on a fresh connection and reads until
 * it closes. Returns everything it answered (malloc'd). */
static char *raw_exchange(const void *req, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct strbuf in = STRBUF_INIT;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int64_t until = mono_ms() + 30000;

	ck_assert_int_ge(fd, 0);
	sa.sin_port = htons((uint16_t)atoi(strrchr(E.run.url, ':') + 1));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		char tmp[4096];
		ssize_t n;

		ck_assert_msg(mono_ms() < until, "no close after: %s", in.data ? in.data : "");
		if (poll(&pf, 1, 1000) <= 0)
			continue;
		n = recv(fd, tmp, sizeof(tmp), 0);
		if (n <= 0)
			break;
		strbuf_append(&in, tmp, (size_t)n);
	}
	close(fd);
	strbuf_putc(&in, '\0');
	return strbuf_detach(&in, NULL);
}

static size_t count_of(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* `mockhost run` forwarding to a recording stand-in that expects tenant-a. */
static struct standin *env_start_recorded(const char *const *extra)
{
	struct standin_opts so = {0};
	char *err = NULL, *cfg;
	struct standin *down;

	env_init();
	down = standin_start(&so, &err);
	ck_assert_msg(down != NULL, "standin: %s", err ? err : "?");
	cfg = pw_asprintf("{\"endpoint\":[{\"url\":\"%s\",\"min_backoff_period\":\"10ms\","
			  "\"headers\":{\"X-Scope-OrgID\":\"tenant-a\"}}]}",
			  standin_url(down));
	write_file(E.cfg, cfg, false);
	free(cfg);
	env_run(extra);
	return down;
}

/* An ingest of the test profile with extra header lines, closing after. */
static char *ingest_request(const char *headers, size_t *len)
{
	size_t plen;
	const uint8_t *prof = th_pprof_gz(&plen);
	struct strbuf sb = STRBUF_INIT;

	strbuf_printf(
		&sb,
		"POST /ingest?name=app&format=pprof HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s"
		"Content-Length: %zu\r\n\r\n",
		headers, plen);
	strbuf_append(&sb, prof, plen);
	return strbuf_detach(&sb, len);
}

/* A bare LF in a Content-Type value used to reach the downstream request
 * as a header line of its own: a second X-Scope-OrgID, ahead of the
 * configured one. */
START_TEST(test_ingest_header_injection_refused)
{
	struct standin *down = env_start_recorded(NULL);
	struct standin_request *rec;
	size_t len, nten = 0;
	char *req, *ans;

	req = ingest_request("Content-Type: application/octet-stream\nX-Scope-OrgID: victim\r\n",
			     &len);
	ans = raw_exchange(req, len);
	ck_assert_msg(strncmp(ans, "HTTP/1.1 400 ", 13) == 0, "answered: %s", ans);
	free(ans);
	free(req);
	ck_assert_uint_eq(standin_count(down), 0);
	/* Refused by the listener, from the head: the receiver never saw it,
	 * so the 400 is not one relayed from a downstream that refused it. */
	ck_assert_double_eq(
		metric(E.run.url, "mockhost_http_rejected_total{reason=\"bad_request\"}"), 1);

	/* The same request without the LF goes through with one tenant. */
	req = ingest_request("Content-Type: application/octet-stream\r\n", &len);
	ans = raw_exchange(req, len);
	ck_assert_msg(strncmp(ans, "HTTP/1.1 200 ", 13) == 0, "answered: %s", ans);
	free(ans);
	free(req);
	ck_assert_uint_eq(standin_count(down), 1);
	rec = standin_request_get(down, 0);
	for (size_t i = 0; i < rec->nheaders; i++)
		nten += strcasecmp(rec->headers[i].name, "X-Scope-OrgID") == 0;
	ck_assert_uint_eq(nten, 1);
	ck_assert_str_eq(rec->tenant, "tenant-a");
	standin_request_free(rec);
	env_fini();
	standin_stop(down);
}
END_TEST

/* A %00 in the SDK name cut it short: "app{env=ab}%00{x=y}" was forwarded
 * as "app{env=ab}". The name now counts as unusable, so the profile has no
 * service name and is refused. */
START_TEST(test_ingest_nul_in_name_refused)
{
	size_t plen;
	const uint8_t *prof = th_pprof_gz(&plen);
	struct standin *down = env_start_recorded(NULL);
	struct resp r;

	ck_assert_int_eq(http_post(E.run.url,
				   "/ingest?name=app%7Benv%3Dab%7D%00%7Bx%3Dy%7D&format=pprof",
				   octet_headers, prof, plen, &r),
			 400);
	resp_free(&r);
	ck_assert_uint_eq(standin_count(down), 0);
	ck_assert_int_eq(http_post(E.run.url, "/ingest?name=app%7Benv%3Dabcd%7D&format=pprof",
				   octet_headers, prof, plen, NULL),
			 200);
	ck_assert_uint_eq(standin_count(down), 1);
	env_fini();
	standin_stop(down);
}
END_TEST

/* A NUL in the head used to end it early: Content-Length was lost, the
 * body was served as a second request, and the first forwarded an empty
 * profile with 200. */
START_TEST(test_nul_in_head_no_smuggling)
{
	static const char inner[] = "POST /ingest?name=smuggled HTTP/1.1\r\nHost: t\r\n"
				    "Content-Length: 0\r\n\r\n";
	struct standin *down = env_start_recorded(NULL);
	struct strbuf req = STRBUF_INIT;
	char *ans;

	strbuf_puts(&req, "POST /ingest?name=app HTTP/1.1\r\nHost: t\r\nX-Pad: a");
	strbuf_putc(&req, '\0');
	strbuf_printf(&req, "b\r\nContent-Length: %zu\r\n\r\n%s", sizeof(inner) - 1, inner);
	ans = raw_exchange(req.data, req.len);
	ck_assert_msg(strncmp(ans, "HTTP/1.1 400 ", 13) == 0, "answered: %s", ans);
	ck_assert_uint_eq(count_of(ans, "HTTP/1.1 "), 1);
	ck_assert_uint_eq(standin_count(down), 0);
	free(ans);
	strbuf_free(&req);
	env_fini();
	standin_stop(down);
}
END_TEST

static long vm_hwm_kib(pid_t pid)
{
	char path[64], *text, *p;
	size_t len;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	text = read_all(path, &len);
	ck_assert_ptr_nonnull(text);
	p = strstr(text, "VmHWM:");
	if (p)
		kib = strtol(p + 6, NULL, 10);
	free(text);
	ck_assert_int_gt(kib, 0);
	return kib;
}

/* Millions of empty series ("0a 00" each) in a small gzip body: each was
 * decoded into a struct of its own, one realloc at a time, then pushed on
 * its own, and answered 500 after GiB of memory. */
START_TEST(test_push_bomb_refused_small)
{
	const char *const gz_headers[] = {"Content-Type: application/proto",
					  "Content-Encoding: gzip", NULL};
	size_t nseries = (size_t)5 << 20, gzlen;
	uint8_t *raw = malloc(2 * nseries), *gz = NULL;
	long before, grew, code;
	struct resp r;

	ck_assert_ptr_nonnull(raw);
	for (size_t i = 0; i < nseries; i++) {
		raw[2 * i] = 0x0A;
		raw[2 * i + 1] = 0x00;
	}
	ck_assert_int_eq(pwx_gzip(raw, 2 * nseries, &gz, &gzlen), 0);
	free(raw);
	ck_assert_uint_lt(gzlen, 64 << 10);
	env_start(1, "test");
	before = vm_hwm_kib(E.run.pid);

	code = http_post(E.run.url, "/push.v1.PusherService/Push", gz_headers, gz, gzlen, &r);
	/* The inflated body (10 MiB) is the only large allocation left. */
	grew = vm_hwm_kib(E.run.pid) - before;
	ck_assert_msg(grew < 100 << 10, "peak RSS grew by %ld KiB", grew);
	ck_assert_int_eq(code, 400);
	ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"invalid_argument\""));
	ck_assert_ptr_nonnull(strstr(r.body, "more than 10000 series"));
	resp_free(&r);
	ck_assert_int_eq(sink_stat(E.sink[0].url, "push", "accepted"), 0);
	free(gz);
	env_fini();
}
END_TEST

static Suite *disk_suite(void)
{
	Suite *s = suite_create("run-disk");
	TCase *tc = tcase_create("full disk");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_sink_full_disk_answers_507);
	tcase_add_test(tc, test_queue_full_disk_drop_oldest);
	tcase_add_test(tc, test_queue_full_disk_refuse);
	suite_add_tcase(s, tc);
	return s;
}

/* A series the component refuses before sending (its labels) is the
 * client's mistake: 400, which an upstream pyroscope.write does not retry,
 * rather than 500, which it does. */
START_TEST(test_push_invalid_labels_are_invalid_argument)
{
	struct pw_kv dup[] = {{"service_name", "a"}, {"service_name", "b"}};
	struct pw_kv empty_name[] = {{"", "x"}, {"service_name", "a"}};
	const struct pw_labelset sets[] = {{NULL, 0}, {dup, 2}, {empty_name, 2}};
	size_t plen;
	struct pw_sample smp = {th_pprof_gz(&plen), 0, NULL};

	smp.len = plen;
	env_start(1, "test");
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		uint8_t *body = NULL;
		size_t len;
		struct resp r;

		ck_assert_int_eq(pw_proto_encode_push(&sets[i], &smp, 1, &body, &len), 0);
		ck_assert_int_eq(http_post(E.run.url, "/push.v1.PusherService/Push", proto_headers,
					   body, len, &r),
				 400);
		ck_assert_msg(strstr(r.body, "\"code\":\"invalid_argument\"") != NULL, "%zu: %s", i,
			      r.body);
		resp_free(&r);
		free(body);
	}
	ck_assert_int_eq(sink_stat(E.sink[0].url, "push", "accepted"), 0);
	env_fini();
}
END_TEST

/* A series whose tenant label holds an invalid tenant ID is refused as
 * invalid_argument too; a valid one is accepted. */
START_TEST(test_push_invalid_tenant_is_invalid_argument)
{
	struct pw_kv bad[] = {{"__tenant__", "a/b"}, {"service_name", "a"}};
	struct pw_kv good[] = {{"__tenant__", "team-a"}, {"service_name", "a"}};
	const struct pw_labelset sets[] = {{bad, 2}, {good, 2}};
	size_t plen;
	struct pw_sample smp = {th_pprof_gz(&plen), 0, NULL};
	char *cfg;

	smp.len = plen;
	env_init();
	env_sinks(1);
	cfg = pw_asprintf("{\"endpoint\":[{\"name\":\"primary\",\"url\":\"%s\","
			  "\"tenant_label\":\"__tenant__\"}]}",
			  E.endpoint_url[0]);
	write_file(E.cfg, cfg, false);
	free(cfg);
	env_run(NULL);
	for (size_t i = 0; i < 2; i++) {
		uint8_t *body = NULL;
		size_t len;
		struct resp r;

		ck_assert_int_eq(pw_proto_encode_push(&sets[i], &smp, 1, &body, &len), 0);
		ck_assert_int_eq(http_post(E.run.url, "/push.v1.PusherService/Push", proto_headers,
					   body, len, &r),
				 i == 0 ? 400 : 200);
		if (i == 0) {
			ck_assert_msg(strstr(r.body, "\"code\":\"invalid_argument\"") != NULL, "%s",
				      r.body);
			ck_assert_msg(strstr(r.body, "invalid tenant in profile") != NULL, "%s",
				      r.body);
		}
		resp_free(&r);
		free(body);
	}
	ck_assert_int_eq(sink_stat(E.sink[0].url, "push", "accepted"), 1);
	env_fini();
}
END_TEST

static size_t log_lines(void)
{
	size_t len, n;
	char *text = read_all(E.errlog, &len);

	n = text ? count_of(text, "\n") : 0;
	free(text);
	return n;
}

/* At debug level every refused series wrote a line: one push of many bad
 * series wrote as many lines. Now a few lines a second at most, and one
 * summary per request. */
START_TEST(test_bad_push_logs_bounded)
{
	const char *const extra[] = {"--log-level", "debug", NULL};
	size_t nseries = 5000, before, lines;
	uint8_t *body = malloc(2 * nseries);
	double t0, secs;
	long code;
	struct resp r;
	char *text;

	ck_assert_ptr_nonnull(body);
	for (size_t i = 0; i < nseries; i++) {
		body[2 * i] = 0x0A;
		body[2 * i + 1] = 0x00;
	}
	env_init();
	env_sinks(1);
	write_config("test", false);
	env_run(extra);
	msleep(200);
	before = log_lines();
	t0 = th_now_s();
	code = http_post(E.run.url, "/push.v1.PusherService/Push", proto_headers, body, 2 * nseries,
			 &r);
	secs = th_now_s() - t0;
	msleep(200);
	lines = log_lines() - before;
	/* A burst of five a second, and the request's own lines. */
	ck_assert_msg(lines <= 5 * (size_t)(secs + 2) + 10, "%zu lines for %zu bad series in %.1fs",
		      lines, nseries, secs);
	ck_assert_int_eq(code, 400);
	ck_assert_ptr_nonnull(strstr(r.body, "(and 4997 more errors)"));
	resp_free(&r);
	text = read_all(E.errlog, &before);
	ck_assert_ptr_nonnull(strstr(text, "rejected profile"));
	free(text);

	/* A name that does not parse is logged at debug level: a newline in
	 * it must not start a line of its own. */
	ck_assert_int_eq(http_post(E.run.url,
				   "/ingest?name=x%7B%0Alevel%3Derror+msg%3D%22forged%22",
				   octet_headers, "x", 1, NULL),
			 400);
	text = read_all(E.errlog, &before);
	ck_assert_ptr_nonnull(strstr(text, "cannot parse the SDK name"));
	ck_assert_ptr_null(strstr(text, "\nlevel=error msg=\"forged\""));
	ck_assert_ptr_nonnull(strstr(text, "x{\\nlevel=error msg=\\\"forged\\\""));
	free(text);
	free(body);
	env_fini();
}
END_TEST

static Suite *run_suite(void)
{
	Suite *s = suite_create("run");
	TCase *tc = tcase_create("end to end");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_ingest_pprof_reaches_sink_intact);
	tcase_add_test(tc, test_ingest_multipart_reaches_sink_intact);
	tcase_add_test(tc, test_ingest_downstream_status_relayed);
	tcase_add_test(tc, test_push_reaches_sink_with_external_labels);
	tcase_add_test(tc, test_large_push_reaches_sink_intact);
	tcase_add_test(tc, test_push_errors_are_connect_errors);
	tcase_add_test(tc, test_push_downstream_failure_is_internal);
	tcase_add_test(tc, test_reload_by_file_signal_and_http);
	tcase_add_test(tc, test_invalid_config_keeps_last_and_reports);
	tcase_add_test(tc, test_reload_back_to_identical_config_restores_health);
	tcase_add_test(tc, test_reload_survives_directory_recreated);
	tcase_add_test(tc, test_reload_refuses_fifo);
	tcase_add_test(tc, test_metrics_pass_promtool);
	tcase_add_test(tc, queue_mode_over_http);
	tcase_add_test(tc, test_clients_during_100_reloads);
	tcase_add_test(tc, test_conn_limit);
	tcase_add_test(tc, test_sigterm_drains_and_exits_0);
	tcase_add_test(tc, test_sigterm_drain_timeout_bounds_exit);
	tcase_add_test(tc, test_usage_errors);
	tcase_add_test(tc, test_sink_dir_is_a_file);
	suite_add_tcase(s, tc);
	tc = tcase_create("hostile clients");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_ingest_header_injection_refused);
	tcase_add_test(tc, test_nul_in_head_no_smuggling);
	tcase_add_test(tc, test_ingest_nul_in_name_refused);
	tcase_add_test(tc, test_push_bomb_refused_small);
	tcase_add_test(tc, test_push_invalid_labels_are_invalid_argument);
	tcase_add_test(tc, test_push_invalid_tenant_is_invalid_argument);
	tcase_add_test(tc, test_bad_push_logs_bounded);
	suite_add_tcase(s, tc);
	return s;
}

/* `test_run disk` runs the full-disk tests, which mount a tmpfs: they need
 * root (as in CI) and are skipped (exit 77) without it. */
int main(int argc, char **argv)
{
	bool disk = argc > 1 && strcmp(argv[1], "disk") == 0;
	SRunner *sr;
	int failed;

	if (disk && geteuid() != 0) {
		fprintf(stderr, "test_run disk: needs root to mount a tmpfs, skipped\n");
		return 77;
	}
	sr = srunner_create(disk ? disk_suite() : run_suite());
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
