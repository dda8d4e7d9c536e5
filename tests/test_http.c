/*
 * test_http.c - the HTTP client options against real peers on loopback:
 * nginx (TLS, mTLS, HTTP/2, TLS 1.2 only, basic auth, redirects) and
 * tinyproxy (forwarding and CONNECT), both started here with configuration
 * from tests/peers/, in front of the strict Pyroscope stand-in. An OAuth2
 * token endpoint and a CONNECT proxy that records headers run in-process.
 *
 * The peers start once per test case in the parent process; the stand-ins
 * start in each test (so they also exist in Check's forked children) on
 * ports chosen up front, which the nginx configuration points to.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hostutil.h"
#include "proto.h"
#include "proto_decode.h"
#include "standin/standin.h"
#include "strbuf.h"

/* Secrets used below; none may show up in logs, errors or metrics. */
#define BASIC_PASS "pw-Secret-1"
#define BASIC_HEADER "Basic YWxpY2U6cHctU2VjcmV0LTE=" /* alice:pw-Secret-1 */
#define CLIENT_SECRET "cs-Secret-9"
#define CLIENT_BASIC "Basic Y2xpZW50LTE6Y3MtU2VjcmV0LTk=" /* client-1:cs-Secret-9 */
#define PROXY_PASS "pxy-Secret-3"
#define CONNECT_SECRET "pct-Secret-7"

static const char *const LABELS[] = {"__name__", "process_cpu", "service_name", "http-test", NULL};

/* ---- peers (parent process, once per test case) ---- */

static struct {
	char dir[256];
	char nginx_bin[256];
	char tinyproxy_bin[256];
	int standin, standin2, http, tls, named, mtls, tls12, proxy, dead, token;
	pid_t nginx, tinyproxy;
	char *ca_pem, *client_pem, *client_key;
} P;

static bool find_exe(const char *name, char *out, size_t outlen)
{
	const char *path = getenv("PATH");
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s:/usr/sbin:/sbin:/usr/bin:/usr/local/sbin", path ? path : "");
	for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(out, outlen, "%s/%s", d, name);
		if (access(out, X_OK) == 0)
			return true;
	}
	return false;
}

static int free_port(const char *addr)
{
	struct sockaddr_in sa = {0};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	sa.sin_family = AF_INET;
	inet_pton(AF_INET, addr, &sa.sin_addr);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static bool port_open(int port)
{
	struct sockaddr_in sa = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static void wait_port(int port, const char *what)
{
	for (int i = 0; i < 200; i++) {
		if (port_open(port))
			return;
		usleep(25000);
	}
	ck_abort_msg("%s did not start listening on port %d (see %s)", what, port, P.dir);
}

static char *read_file(const char *path, long from)
{
	FILE *f = fopen(path, "rb");
	struct strbuf sb = STRBUF_INIT;
	char buf[4096];
	size_t n;

	strbuf_puts(&sb, "");
	if (!f)
		return strbuf_detach(&sb, NULL);
	if (from > 0)
		fseek(f, from, SEEK_SET);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_append(&sb, buf, n);
	fclose(f);
	return strbuf_detach(&sb, NULL);
}

static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static void write_file(const char *path, const char *text)
{
	char tmp[512];
	FILE *f;

	/* Write beside and rename, as secret rotation usually does. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	ck_assert_int_eq(rename(tmp, path), 0);
}

static char *path_in(const char *name)
{
	return pw_asprintf("%s/%s", P.dir, name);
}

static char *peer_file(const char *name)
{
	char *p = path_in(name), *s = read_file(p, 0);

	free(p);
	return s;
}

static void run(const char *cmd)
{
	int rc = system(cmd);

	ck_assert_msg(rc == 0, "command failed (%d): %s", rc, cmd);
}

static pid_t spawn(char *const argv[], const char *logname)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *log = path_in(logname);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Fills a template from tests/peers/ into the peer directory. */
static void render(const char *tmpl, const char *out)
{
	const char *root = getenv("PW_SOURCE_ROOT");
	char *src = pw_asprintf("%s/tests/peers/%s", root ? root : ".", tmpl);
	char *text = read_file(src, 0), *dst = path_in(out);
	struct {
		const char *key;
		int port;
	} ports[] = {
		{"@STANDIN2@", P.standin2}, {"@STANDIN@", P.standin}, {"@HTTP@", P.http},
		{"@TLS12@", P.tls12},	    {"@TLS@", P.tls},	      {"@NAMED@", P.named},
		{"@MTLS@", P.mtls},	    {"@PROXY@", P.proxy},     {"@TOKEN@", P.token},
	};
	FILE *f;

	ck_assert_msg(text[0] != '\0', "cannot read %s", src);
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		char num[16], *t;

		snprintf(num, sizeof(num), "%d", ports[i].port);
		t = th_subst(text, ports[i].key, num);
		free(text);
		text = t;
	}
	{
		char *t = th_subst(text, "@DIR@", P.dir);

		free(text);
		text = t;
	}
	f = fopen(dst, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	free(text);
	free(src);
	free(dst);
}

static void peers_up(void)
{
	const char *root = getenv("PW_SOURCE_ROOT");
	char *cmd;

	snprintf(P.dir, sizeof(P.dir), "%s", "/tmp/pw-http-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(P.dir));
	/* nginx workers may run as another user when the tests run as root. */
	chmod(P.dir, 0755);
	P.standin = free_port("127.0.0.1");
	P.standin2 = free_port("127.0.0.2");
	P.http = free_port("127.0.0.1");
	P.tls = free_port("127.0.0.1");
	P.named = free_port("127.0.0.1");
	P.mtls = free_port("127.0.0.1");
	P.tls12 = free_port("127.0.0.1");
	P.proxy = free_port("127.0.0.1");
	P.dead = free_port("127.0.0.1"); /* nothing listens there */
	P.token = free_port("127.0.0.1");
	ck_assert_msg(P.standin2 > 0, "cannot bind 127.0.0.2 (needed for cross-host redirects)");

	cmd = pw_asprintf("sh '%s/tests/peers/mkcerts.sh' '%s' && "
			  "printf 'alice:%%s\\n' \"$(openssl passwd -apr1 '%s')\" > '%s/htpasswd'",
			  root ? root : ".", P.dir, BASIC_PASS, P.dir);
	run(cmd);
	free(cmd);
	P.ca_pem = peer_file("ca.pem");
	P.client_pem = peer_file("client.pem");
	P.client_key = peer_file("client.key");

	render("nginx.conf.in", "nginx.conf");
	render("tinyproxy.conf.in", "tinyproxy.conf");
	{
		char *prefix = pw_asprintf("%s/", P.dir), *conf = path_in("nginx.conf");
		char *elog = path_in("error.log");
		char *g = pw_strdup(geteuid() == 0 ? "daemon off; user root;" : "daemon off;");
		char *argv[] = {P.nginx_bin, "-p", prefix, "-c", conf, "-e", elog, "-g", g, NULL};

		P.nginx = spawn(argv, "nginx.out");
		free(prefix);
		free(conf);
		free(elog);
		free(g);
	}
	{
		char *conf = path_in("tinyproxy.conf");
		char *argv[] = {P.tinyproxy_bin, "-d", "-c", conf, NULL};

		P.tinyproxy = spawn(argv, "tinyproxy.out");
		free(conf);
	}
	wait_port(P.http, "nginx");
	wait_port(P.tls, "nginx");
	wait_port(P.tls12, "nginx");
	wait_port(P.proxy, "tinyproxy");
}

static void stop_pid(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
}

static void peers_down(void)
{
	char *cmd;

	stop_pid(P.nginx);
	stop_pid(P.tinyproxy);
	P.nginx = P.tinyproxy = 0;
	free(P.ca_pem);
	free(P.client_pem);
	free(P.client_key);
	P.ca_pem = P.client_pem = P.client_key = NULL;
	if (getenv("PW_KEEP_PEERS"))
		return;
	cmd = pw_asprintf("rm -rf '%s'", P.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", P.dir);
	free(cmd);
}

/* ---- per test ---- */

static struct th_plugin plugin;
static struct standin *S, *S2;
static long access_off, proxy_off;
static char *garbage[64];
static size_t ngarbage;

/* Keeps a malloc'd string until the end of the test. */
static char *K(char *s)
{
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_lt(ngarbage, sizeof(garbage) / sizeof(garbage[0]));
	garbage[ngarbage++] = s;
	return s;
}

static void per_test_up(void)
{
	struct standin_opts o = {0};
	char *err = NULL, *p;

	o.port = P.standin;
	S = standin_start(&o, &err);
	ck_assert_msg(S != NULL, "stand-in: %s", err ? err : "?");
	o.listen_addr = "127.0.0.2";
	o.port = P.standin2;
	S2 = standin_start(&o, &err);
	ck_assert_msg(S2 != NULL, "second stand-in: %s", err ? err : "?");
	th_load(&plugin, NULL);
	th_logs_clear();
	p = path_in("access.log");
	access_off = file_size(p);
	free(p);
	p = path_in("tinyproxy.log");
	proxy_off = file_size(p);
	free(p);
}

static void per_test_down(void)
{
	standin_stop(S);
	standin_stop(S2);
	S = S2 = NULL;
	th_unload(&plugin);
	for (size_t i = 0; i < ngarbage; i++)
		free(garbage[i]);
	ngarbage = 0;
}

/* Lines nginx logged since the test started. */
static char *access_log(void)
{
	char *p = path_in("access.log"), *s;

	/* nginx writes the line after answering; give it a moment. */
	usleep(100000);
	s = read_file(p, access_off);
	free(p);
	return s;
}

static char *proxy_log(void)
{
	char *p = path_in("tinyproxy.log"), *s;

	usleep(100000);
	s = read_file(p, proxy_off);
	free(p);
	return s;
}

static bool log_has(char *(*get)(void), const char *needle)
{
	char *s = get();
	bool found = strstr(s, needle) != NULL;

	if (!found)
		fprintf(stderr, "log lacks \"%s\":\n%s\n", needle, s);
	free(s);
	return found;
}

/* A JSON string literal (quoted, escaped). */
static char *J(const char *s)
{
	json_t *v = json_string(s);
	char *out = json_dumps(v, JSON_ENCODE_ANY);

	json_decref(v);
	return K(out);
}

/* One endpoint with fast, single-attempt retry settings plus `extra`
 * (JSON members, may be ""). */
static char *endpoint(const char *url, const char *extra)
{
	return K(pw_asprintf(
		"{\"endpoint\":[{\"name\":\"t\",\"url\":\"%s\",\"remote_timeout\":\"5s\","
		"\"min_backoff_period\":\"50ms\",\"max_backoff_period\":\"100ms\","
		"\"max_backoff_retries\":1%s%s}]}",
		url, *extra ? "," : "", extra));
}

static char *url_of(const char *scheme, const char *host, int port, const char *path)
{
	return K(pw_asprintf("%s://%s:%d%s", scheme, host, port, path ? path : ""));
}

static void create(struct th_instance *in, const char *cfg)
{
	char *err = NULL;
	int rc = th_create(&plugin, cfg, in, &err);

	ck_assert_msg(rc == COMPONENT_OK, "create: %s\nconfig: %s", err ? err : "?", cfg);
	free(err);
}

/* Pushes one profile; returns the status and keeps the error text. */
static int push(struct th_instance *in, char **errout)
{
	size_t len;
	const uint8_t *data = th_pprof_gz(&len);
	char *err = NULL;
	int rc = th_push(in, LABELS, data, len, 20000, &err);

	if (errout)
		*errout = err ? K(err) : NULL;
	else
		free(err);
	return rc;
}

static void push_ok(struct th_instance *in)
{
	char *err = NULL;
	int rc = push(in, &err);

	ck_assert_msg(rc == COMPONENT_OK, "push failed: %s", err ? err : "?");
}

static char *push_fails(struct th_instance *in)
{
	char *err = NULL;
	int rc = push(in, &err);

	ck_assert_msg(rc != COMPONENT_OK, "push unexpectedly succeeded");
	ck_assert_ptr_nonnull(err);
	return err;
}

/* One instance, one push that must succeed, destroyed again. */
static void deliver(const char *cfg)
{
	struct th_instance in;

	create(&in, cfg);
	push_ok(&in);
	th_destroy(&in);
}

/* One instance, one push that must fail; returns the error text. */
static char *refused(const char *cfg)
{
	struct th_instance in;
	char *err;

	create(&in, cfg);
	err = push_fails(&in);
	th_destroy(&in);
	return err;
}

/* The secret appears in none of: the error, the logs, the metrics. */
static void assert_secret_hidden(struct th_instance *in, const char *err, const char *secret)
{
	char *logs = th_logs();

	ck_assert_msg(!err || !strstr(err, secret), "secret in error: %s", err);
	ck_assert_msg(!strstr(logs, secret), "secret in logs:\n%s", logs);
	free(logs);
	if (in && in->inst) {
		char *m = th_metrics(in);

		ck_assert_msg(!strstr(m, secret), "secret in metrics");
		free(m);
	}
}

/* The value of a header in stand-in request i ("" when absent). */
static char *header_at(struct standin *s, size_t i, const char *name)
{
	struct standin_request *r;
	const char *v;
	char *out;

	ck_assert_int_eq(standin_wait(s, i + 1, 5000), 0);
	r = standin_request_get(s, i);
	ck_assert_ptr_nonnull(r);
	ck_assert_msg(r->error == NULL, "stand-in rejected request %zu: %s", i, r->error);
	v = standin_request_header(r, name);
	out = K(pw_strdup(v ? v : ""));
	standin_request_free(r);
	return out;
}

static size_t header_count(struct standin *s, size_t i, const char *name)
{
	struct standin_request *r = standin_request_get(s, i);
	size_t n = 0;

	ck_assert_ptr_nonnull(r);
	for (size_t k = 0; k < r->nheaders; k++)
		if (strcasecmp(r->headers[k].name, name) == 0)
			n++;
	standin_request_free(r);
	return n;
}

static char *tls_block(const char *members)
{
	return K(pw_asprintf("\"tls_config\":{%s}", members));
}

static char *ca_pem_member(void)
{
	return K(pw_asprintf("\"ca_pem\":%s", J(P.ca_pem)));
}

/* ---- authentication ---- */

START_TEST(basic_auth_password)
{
	struct th_instance in;
	char *err;
	const char *url = url_of("http", "127.0.0.1", P.http, "/basic");

	create(&in,
	       endpoint(url,
			"\"basic_auth\":{\"username\":\"alice\",\"password\":\"" BASIC_PASS "\"}"));
	push_ok(&in);
	ck_assert_str_eq(header_at(S, 0, "Authorization"), BASIC_HEADER);
	ck_assert(log_has(access_log, "status=200 auth=" BASIC_HEADER));
	assert_secret_hidden(&in, NULL, BASIC_PASS);
	th_destroy(&in);

	/* nginx checks the password: a wrong one is refused there (401). */
	create(&in,
	       endpoint(url, "\"basic_auth\":{\"username\":\"alice\",\"password\":\"wrong-pw\"}"));
	err = push_fails(&in);
	ck_assert_msg(strstr(err, "Unauthorized") != NULL, "unexpected error: %s", err);
	ck_assert_uint_eq(standin_count(S), 1);
	th_destroy(&in);
}
END_TEST

START_TEST(basic_auth_password_file)
{
	char *file = K(path_in("basic-pass"));
	struct th_instance in;

	write_file(file, BASIC_PASS "\n");
	create(&in, endpoint(url_of("http", "127.0.0.1", P.http, "/basic"),
			     K(pw_asprintf(
				     "\"basic_auth\":{\"username\":\"alice\",\"password_file\":%s}",
				     J(file)))));
	push_ok(&in);
	ck_assert_str_eq(header_at(S, 0, "Authorization"), BASIC_HEADER);
	assert_secret_hidden(&in, NULL, BASIC_PASS);
	th_destroy(&in);
}
END_TEST

START_TEST(bearer_token_and_file_rotation)
{
	char *file = K(path_in("token")), *err;
	const char *url = url_of("http", "127.0.0.1", P.standin, NULL);
	struct th_instance in;

	deliver(endpoint(url, "\"bearer_token\":\"tok-Static-5\""));
	ck_assert_str_eq(header_at(S, 0, "Authorization"), "Bearer tok-Static-5");

	write_file(file, "tok-one\n");
	create(&in, endpoint(url, K(pw_asprintf("\"bearer_token_file\":%s", J(file)))));
	push_ok(&in);
	ck_assert_str_eq(header_at(S, 1, "Authorization"), "Bearer tok-one");
	/* Rotation: the next request carries the new content. */
	write_file(file, "  tok-second-longer  \n");
	push_ok(&in);
	ck_assert_str_eq(header_at(S, 2, "Authorization"), "Bearer tok-second-longer");
	assert_secret_hidden(&in, NULL, "tok-second-longer");
	assert_secret_hidden(&in, NULL, "tok-Static-5");
	/* A line break inside the token would add a header line of the
	 * file's choosing: nothing is sent. */
	write_file(file, "tok-third\r\nX-Scope-OrgID: victim\n");
	err = push_fails(&in);
	ck_assert_msg(strstr(err, "control character") != NULL, "%s", err);
	ck_assert_ptr_null(strstr(err, "tok-third"));
	ck_assert_uint_eq(standin_count(S), 3);
	th_destroy(&in);
}
END_TEST

START_TEST(authorization_type_and_credentials)
{
	char *file = K(path_in("creds"));
	const char *url = url_of("http", "127.0.0.1", P.standin, NULL);

	deliver(endpoint(url,
			 "\"authorization\":{\"type\":\"Token\",\"credentials\":\"c-Secret-1\"}"));
	ck_assert_str_eq(header_at(S, 0, "Authorization"), "Token c-Secret-1");
	write_file(file, "c-Secret-file\n");
	deliver(endpoint(url, K(pw_asprintf("\"authorization\":{\"type\":\"Token\","
					    "\"credentials_file\":%s}",
					    J(file)))));
	ck_assert_str_eq(header_at(S, 1, "Authorization"), "Token c-Secret-file");
	/* type defaults to Bearer. */
	deliver(endpoint(url, "\"authorization\":{\"credentials\":\"c-Secret-2\"}"));
	ck_assert_str_eq(header_at(S, 2, "Authorization"), "Bearer c-Secret-2");
	assert_secret_hidden(NULL, NULL, "c-Secret");
}
END_TEST

START_TEST(headers_authorization_wins_over_basic)
{
	const char *url = url_of("http", "127.0.0.1", P.standin, NULL);

	deliver(endpoint(url, "\"headers\":{\"Authorization\":\"Custom abc\"},"
			      "\"basic_auth\":{\"username\":\"alice\",\"password\":\"" BASIC_PASS
			      "\"}"));
	ck_assert_str_eq(header_at(S, 0, "Authorization"), "Custom abc");
	ck_assert_uint_eq(header_count(S, 0, "Authorization"), 1);
	deliver(endpoint(url, "\"headers\":{\"Authorization\":\"Custom def\"},"
			      "\"bearer_token\":\"tok-x\""));
	ck_assert_str_eq(header_at(S, 1, "Authorization"), "Custom def");
	ck_assert_uint_eq(header_count(S, 1, "Authorization"), 1);
}
END_TEST

/* ---- OAuth2 ---- */

struct token_server {
	pthread_mutex_t lock;
	int requests;
	int fail_status; /* answer this instead of a token when set */
	int expires_in;
	char problems[1024]; /* what the last request got wrong */
};

static void note_problem(struct token_server *ts, const char *what)
{
	size_t len = strlen(ts->problems);

	snprintf(ts->problems + len, sizeof(ts->problems) - len, "%s", what);
}

static char *form_get(const char *body, const char *key)
{
	size_t kl = strlen(key);

	for (const char *p = body; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t n = amp ? (size_t)(amp - p) : strlen(p);

		if (n > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
			char *v = pw_strndup(p + kl + 1, n - kl - 1), *w = v;

			/* Form decoding: '+' is a space, %XX a byte. */
			for (char *r = v; *r; r++, w++) {
				if (*r == '+') {
					*w = ' ';
				} else if (*r == '%' && r[1] && r[2]) {
					char hex[3] = {r[1], r[2], 0};

					*w = (char)strtol(hex, NULL, 16);
					r += 2;
				} else {
					*w = *r;
				}
			}
			*w = '\0';
			return v;
		}
		p = amp ? amp + 1 : NULL;
	}
	return NULL;
}

static void token_handler(void *user, const struct standin_http_request *req,
			  struct standin_http_response *resp)
{
	struct token_server *ts = user;
	const char *auth = standin_http_header(req->headers, req->nheaders, "Authorization");
	const char *ct = standin_http_header(req->headers, req->nheaders, "Content-Type");
	const char *body = (const char *)req->body;
	char *gt = form_get(body, "grant_type"), *scope = form_get(body, "scope");
	char *aud = form_get(body, "audience");
	char out[256];
	int n;

	pthread_mutex_lock(&ts->lock);
	n = ++ts->requests;
	ts->problems[0] = '\0';
	if (strcmp(req->method, "POST") != 0)
		note_problem(ts, "method;");
	if (!ct || strncmp(ct, "application/x-www-form-urlencoded", 33) != 0)
		note_problem(ts, "content-type;");
	if (!auth || strcmp(auth, CLIENT_BASIC) != 0)
		note_problem(ts, "client-auth;");
	if (!gt || strcmp(gt, "client_credentials") != 0)
		note_problem(ts, "grant_type;");
	if (!scope || strcmp(scope, "profiles:write metrics:read") != 0)
		note_problem(ts, "scope;");
	if (!aud || strcmp(aud, "pyro") != 0)
		note_problem(ts, "endpoint_params;");
	if (ts->fail_status) {
		resp->status = ts->fail_status;
		standin_http_set_body(resp, "{\"error\":\"server_error\"}", 24);
	} else {
		snprintf(
			out, sizeof(out),
			"{\"access_token\":\"tok-%d\",\"token_type\":\"bearer\",\"expires_in\":%d}",
			n, ts->expires_in);
		standin_http_add_header(resp, "Content-Type", "application/json");
		standin_http_set_body(resp, out, strlen(out));
	}
	pthread_mutex_unlock(&ts->lock);
	free(gt);
	free(scope);
	free(aud);
}

static struct standin_httpd *token_start(struct token_server *ts)
{
	struct standin_httpd_opts o = {0};

	/* A fixed port: nginx forwards https://.../oauth/ there. */
	o.port = P.token;
	struct standin_httpd *h;
	char *err = NULL;

	pthread_mutex_init(&ts->lock, NULL);
	o.handler = token_handler;
	o.user = ts;
	h = standin_httpd_start(&o, &err);
	ck_assert_msg(h != NULL, "token endpoint: %s", err ? err : "?");
	return h;
}

static char *oauth2_block(struct standin_httpd *h, const char *secret)
{
	return K(pw_asprintf("\"oauth2\":{\"client_id\":\"client-1\",\"client_secret\":\"%s\","
			     "\"token_url\":\"http://127.0.0.1:%d/token\","
			     "\"scopes\":[\"profiles:write\",\"metrics:read\"],"
			     "\"endpoint_params\":{\"audience\":\"pyro\"}}",
			     secret, standin_httpd_port(h)));
}

START_TEST(oauth2_client_credentials_and_refresh)
{
	struct token_server ts = {.expires_in = 11}; /* valid for 1 s after the 10 s margin */
	struct standin_httpd *h = token_start(&ts);
	struct th_instance in;

	create(&in, endpoint(url_of("http", "127.0.0.1", P.standin, NULL),
			     oauth2_block(h, CLIENT_SECRET)));
	push_ok(&in);
	push_ok(&in);
	pthread_mutex_lock(&ts.lock);
	ck_assert_msg(ts.problems[0] == '\0', "token request problems: %s", ts.problems);
	ck_assert_int_eq(ts.requests, 1); /* cached */
	pthread_mutex_unlock(&ts.lock);
	ck_assert_str_eq(header_at(S, 0, "Authorization"), "Bearer tok-1");
	ck_assert_str_eq(header_at(S, 1, "Authorization"), "Bearer tok-1");
	usleep(1300 * 1000);
	push_ok(&in);
	pthread_mutex_lock(&ts.lock);
	ck_assert_int_eq(ts.requests, 2); /* refreshed */
	pthread_mutex_unlock(&ts.lock);
	ck_assert_str_eq(header_at(S, 2, "Authorization"), "Bearer tok-2");
	assert_secret_hidden(&in, NULL, CLIENT_SECRET);
	th_destroy(&in);
	standin_httpd_stop(h);
	pthread_mutex_destroy(&ts.lock);
}
END_TEST

START_TEST(oauth2_overrides_headers_authorization)
{
	struct token_server ts = {.expires_in = 3600};
	struct standin_httpd *h = token_start(&ts);
	char *extra = K(pw_asprintf("\"headers\":{\"Authorization\":\"Custom abc\"},%s",
				    oauth2_block(h, CLIENT_SECRET)));

	deliver(endpoint(url_of("http", "127.0.0.1", P.standin, NULL), extra));
	ck_assert_str_eq(header_at(S, 0, "Authorization"), "Bearer tok-1");
	ck_assert_uint_eq(header_count(S, 0, "Authorization"), 1);
	standin_httpd_stop(h);
	pthread_mutex_destroy(&ts.lock);
}
END_TEST

START_TEST(oauth2_token_endpoint_failure)
{
	struct token_server ts = {.fail_status = 500};
	struct standin_httpd *h = token_start(&ts);
	struct th_instance in;
	char *cfg, *err;

	cfg = K(pw_asprintf(
		"{\"endpoint\":[{\"name\":\"t\",\"url\":\"%s\",\"remote_timeout\":\"5s\","
		"\"min_backoff_period\":\"20ms\",\"max_backoff_period\":\"50ms\","
		"\"max_backoff_retries\":3,%s}]}",
		url_of("http", "127.0.0.1", P.standin, NULL), oauth2_block(h, CLIENT_SECRET)));
	create(&in, cfg);
	err = push_fails(&in);
	ck_assert_msg(strstr(err, "token") != NULL, "error does not name the token request: %s",
		      err);
	pthread_mutex_lock(&ts.lock);
	/* Retryable: every attempt asked for a token again. */
	ck_assert_int_eq(ts.requests, 3);
	pthread_mutex_unlock(&ts.lock);
	ck_assert_uint_eq(standin_count(S), 0);
	assert_secret_hidden(&in, err, CLIENT_SECRET);
	th_destroy(&in);
	standin_httpd_stop(h);
	pthread_mutex_destroy(&ts.lock);
}
END_TEST

START_TEST(oauth2_own_tls_and_proxy)
{
	struct token_server ts = {.expires_in = 3600};
	struct standin_httpd *h = token_start(&ts);
	const char *url = url_of("http", "127.0.0.1", P.standin, NULL);
	char *base =
		K(pw_asprintf("\"client_id\":\"client-1\",\"client_secret\":\"" CLIENT_SECRET "\","
			      "\"token_url\":\"https://127.0.0.1:%d/oauth/token\","
			      "\"scopes\":[\"profiles:write\",\"metrics:read\"],"
			      "\"endpoint_params\":{\"audience\":\"pyro\"}",
			      P.tls));
	char *err;

	/* The endpoint's tls_config does not apply to the token request. */
	err = refused(endpoint(
		url, K(pw_asprintf("%s,\"oauth2\":{%s}", tls_block(ca_pem_member()), base))));
	ck_assert_msg(strstr(err, "token") != NULL, "unexpected error: %s", err);
	assert_secret_hidden(NULL, err, CLIENT_SECRET);
	pthread_mutex_lock(&ts.lock);
	ck_assert_int_eq(ts.requests, 0);
	pthread_mutex_unlock(&ts.lock);
	/* Its own does, and so does its own proxy. */
	deliver(endpoint(url,
			 K(pw_asprintf("\"oauth2\":{%s,%s,\"proxy_url\":\"http://127.0.0.1:%d\"}",
				       base, tls_block(ca_pem_member()), P.proxy))));
	pthread_mutex_lock(&ts.lock);
	ck_assert_int_eq(ts.requests, 1);
	ck_assert_msg(ts.problems[0] == '\0', "token request problems: %s", ts.problems);
	pthread_mutex_unlock(&ts.lock);
	ck_assert_str_eq(header_at(S, 0, "Authorization"), "Bearer tok-1");
	ck_assert(log_has(proxy_log, K(pw_asprintf("CONNECT 127.0.0.1:%d", P.tls))));
	standin_httpd_stop(h);
	pthread_mutex_destroy(&ts.lock);
}
END_TEST

/* ---- TLS ---- */

START_TEST(tls_ca_pem_and_ca_file)
{
	const char *url = url_of("https", "127.0.0.1", P.tls, NULL);
	char *ca_file = K(path_in("ca.pem"));

	deliver(endpoint(url, tls_block(ca_pem_member())));
	deliver(endpoint(url, tls_block(K(pw_asprintf("\"ca_file\":%s", J(ca_file))))));
	ck_assert_uint_eq(standin_count(S), 2);
	ck_assert(log_has(access_log, "status=200"));
}
END_TEST

START_TEST(tls_verification)
{
	const char *url = url_of("https", "127.0.0.1", P.tls, NULL);
	char *err;

	/* Without the test CA the certificate cannot be verified. */
	err = refused(endpoint(url, ""));
	ck_assert_msg(strcasestr(err, "certificate") != NULL, "unexpected error: %s", err);
	ck_assert_uint_eq(standin_count(S), 0);
	deliver(endpoint(url, tls_block("\"insecure_skip_verify\":true")));
	ck_assert_uint_eq(standin_count(S), 1);
}
END_TEST

START_TEST(tls_client_certificates)
{
	const char *url = url_of("https", "127.0.0.1", P.mtls, NULL);
	char *cert = K(path_in("client.pem")), *key = K(path_in("client.key"));
	struct th_instance in;
	char *err;

	create(&in, endpoint(url, tls_block(K(pw_asprintf("%s,\"cert_pem\":%s,\"key_pem\":%s",
							  ca_pem_member(), J(P.client_pem),
							  J(P.client_key))))));
	push_ok(&in);
	assert_secret_hidden(&in, NULL, "PRIVATE KEY");
	th_destroy(&in);
	deliver(endpoint(url, tls_block(K(pw_asprintf("%s,\"cert_file\":%s,\"key_file\":%s",
						      ca_pem_member(), J(cert), J(key))))));
	ck_assert_uint_eq(standin_count(S), 2);
	ck_assert(log_has(access_log, "client=SUCCESS"));
	/* nginx answers 400 Bad Request when no client certificate was sent. */
	err = refused(endpoint(url, tls_block(ca_pem_member())));
	ck_assert_msg(strstr(err, "Bad Request") != NULL, "unexpected error: %s", err);
	ck_assert_uint_eq(standin_count(S), 2);
}
END_TEST

START_TEST(tls_server_name)
{
	const char *url = url_of("https", "127.0.0.1", P.named, NULL);

	/* The certificate is valid for pyroscope.test only. */
	refused(endpoint(url, tls_block(ca_pem_member())));
	refused(endpoint(url, tls_block(K(pw_asprintf("%s,\"server_name\":\"other.test\"",
						      ca_pem_member())))));
	ck_assert_uint_eq(standin_count(S), 0);
	deliver(endpoint(url, tls_block(K(pw_asprintf("%s,\"server_name\":\"pyroscope.test\"",
						      ca_pem_member())))));
	ck_assert_uint_eq(standin_count(S), 1);
	/* SNI carried the name; the Host header still names the URL's host. */
	ck_assert(log_has(access_log, "sni=pyroscope.test"));
	/* Through an HTTP proxy (CONNECT tunnel) as well. */
	deliver(endpoint(
		url, K(pw_asprintf("\"proxy_url\":\"http://127.0.0.1:%d\",%s", P.proxy,
				   tls_block(K(pw_asprintf("%s,\"server_name\":\"pyroscope.test\"",
							   ca_pem_member())))))));
	ck_assert_uint_eq(standin_count(S), 2);
	ck_assert(log_has(proxy_log, K(pw_asprintf("CONNECT 127.0.0.1:%d", P.named))));
}
END_TEST

START_TEST(tls_min_version)
{
	const char *url12 = url_of("https", "127.0.0.1", P.tls12, NULL);

	refused(endpoint(
		url12, tls_block(K(pw_asprintf("%s,\"min_version\":\"TLS13\"", ca_pem_member())))));
	ck_assert_uint_eq(standin_count(S), 0);
	deliver(endpoint(
		url12, tls_block(K(pw_asprintf("%s,\"min_version\":\"TLS12\"", ca_pem_member())))));
	ck_assert(
		log_has(access_log, K(pw_asprintf("port=%d proto=HTTP/1.1 tls=TLSv1.2", P.tls12))));
	deliver(endpoint(
		url_of("https", "127.0.0.1", P.tls, NULL),
		tls_block(K(pw_asprintf("%s,\"min_version\":\"TLS13\"", ca_pem_member())))));
	ck_assert(log_has(access_log, "tls=TLSv1.3"));
	ck_assert_uint_eq(standin_count(S), 2);
}
END_TEST

/* ---- HTTP/2, redirects ---- */

START_TEST(http2_negotiation)
{
	const char *url = url_of("https", "127.0.0.1", P.tls, NULL);
	char *log;

	deliver(endpoint(url,
			 K(pw_asprintf("\"enable_http2\":true,%s", tls_block(ca_pem_member())))));
	log = access_log();
	ck_assert_msg(strstr(log, "proto=HTTP/2.0") != NULL, "no HTTP/2 request in:\n%s", log);
	ck_assert_msg(strstr(log, "proto=HTTP/1.1") == NULL, "unexpected HTTP/1.1 in:\n%s", log);
	free(log);
	access_off = file_size(K(path_in("access.log")));
	deliver(endpoint(url,
			 K(pw_asprintf("\"enable_http2\":false,%s", tls_block(ca_pem_member())))));
	log = access_log();
	ck_assert_msg(strstr(log, "proto=HTTP/1.1") != NULL, "no HTTP/1.1 request in:\n%s", log);
	ck_assert_msg(strstr(log, "proto=HTTP/2.0") == NULL, "unexpected HTTP/2 in:\n%s", log);
	free(log);
}
END_TEST

START_TEST(redirects)
{
	const char *url = url_of("http", "127.0.0.1", P.http, "/redir");
	char *err;

	/* Followed with method and body kept (307), but the credentials stay
	 * behind: the target is another host. */
	deliver(endpoint(url, "\"follow_redirects\":true,\"bearer_token\":\"tok-Redirect-4\""));
	ck_assert_uint_eq(standin_count(S2), 1);
	ck_assert_str_eq(header_at(S2, 0, "Authorization"), "");
	ck_assert(log_has(access_log, "status=307 auth=Bearer tok-Redirect-4"));
	ck_assert_uint_eq(standin_count(S), 0);

	err = refused(
		endpoint(url, "\"follow_redirects\":false,\"bearer_token\":\"tok-Redirect-4\""));
	ck_assert_msg(strstr(err, "Redirect") != NULL, "unexpected error: %s", err);
	ck_assert_uint_eq(standin_count(S2), 1);
	assert_secret_hidden(NULL, err, "tok-Redirect-4");

	/* A profile large enough to be sent from the caller's memory: nginx
	 * answers 307 without reading it, libcurl rewinds the body (the seek
	 * callback) and the redirect target gets every byte. */
	{
		struct th_instance in;
		struct standin_request *r;
		struct pw_dec_push d;
		size_t len;
		uint8_t *big = th_big_pprof(400 * 1000, 5, &len);
		char *derr = NULL;

		create(&in, endpoint(url, "\"follow_redirects\":true"));
		ck_assert_int_eq(th_push(&in, LABELS, big, len, 20000, NULL), COMPONENT_OK);
		th_destroy(&in);
		ck_assert_int_eq(standin_wait(S2, 2, 5000), 0);
		r = standin_request_get(S2, 1);
		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(r->status, 200);
		ck_assert_msg(pw_proto_decode_push(r->body, r->body_len, &d, &derr) == 0, "%s",
			      derr);
		ck_assert_uint_eq(d.series[0].nsamples, 1);
		ck_assert_uint_eq(d.series[0].samples[0].len, len);
		ck_assert_int_eq(memcmp(d.series[0].samples[0].data, big, len), 0);
		pw_dec_push_free(&d);
		standin_request_free(r);
		free(big);
	}
}
END_TEST

/* ---- proxies ---- */

START_TEST(proxy_url_http_and_connect)
{
	const char *plain = url_of("http", "127.0.0.1", P.standin, NULL);
	char *proxy = K(
		pw_asprintf("\"proxy_url\":\"http://user:" PROXY_PASS "@127.0.0.1:%d\"", P.proxy));
	struct th_instance in;

	create(&in, endpoint(plain, proxy));
	push_ok(&in);
	assert_secret_hidden(&in, NULL, PROXY_PASS);
	th_destroy(&in);
	ck_assert(log_has(
		proxy_log,
		K(pw_asprintf("POST http://127.0.0.1:%d/push.v1.PusherService/Push", P.standin))));
	ck_assert_uint_eq(standin_count(S), 1);

	deliver(endpoint(url_of("https", "127.0.0.1", P.tls, NULL),
			 K(pw_asprintf("%s,%s", proxy, tls_block(ca_pem_member())))));
	ck_assert(log_has(proxy_log, K(pw_asprintf("CONNECT 127.0.0.1:%d", P.tls))));
	ck_assert_uint_eq(standin_count(S), 2);
}
END_TEST

START_TEST(no_proxy_entries)
{
	const char *url = url_of("http", "127.0.0.1", P.standin, NULL);
	char *dead = K(pw_asprintf("\"proxy_url\":\"http://127.0.0.1:%d\"", P.dead));
	const char *bypass[] = {"127.0.0.1", "127.0.0.0/8", "example.com, 127.0.0.1", NULL};
	const char *kept[] = {"10.0.0.0/8", "127.0.0.2", "127.0.0.1:1", "localhost", NULL};
	size_t n = 0;

	/* The proxy is dead: only a bypassed request can succeed. */
	for (size_t i = 0; bypass[i]; i++, n++)
		deliver(endpoint(url, K(pw_asprintf("%s,\"no_proxy\":\"%s\"", dead, bypass[i]))));
	deliver(endpoint(url, K(pw_asprintf("%s,\"no_proxy\":\"127.0.0.1:%d\"", dead, P.standin))));
	n++;
	for (size_t i = 0; kept[i]; i++)
		refused(endpoint(url, K(pw_asprintf("%s,\"no_proxy\":\"%s\"", dead, kept[i]))));
	ck_assert_uint_eq(standin_count(S), n);
}
END_TEST

static void env_clear(void)
{
	static const char *const names[] = {"HTTP_PROXY",  "http_proxy", "HTTPS_PROXY",
					    "https_proxy", "NO_PROXY",	 "no_proxy"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unsetenv(names[i]);
}

START_TEST(proxy_from_environment)
{
	const char *plain = url_of("http", "127.0.0.1", P.standin, NULL);
	const char *tls = url_of("https", "127.0.0.1", P.tls, NULL);
	char *live = K(pw_asprintf("http://127.0.0.1:%d", P.proxy));
	char *dead = K(pw_asprintf("127.0.0.1:%d", P.dead)); /* no scheme: http */
	const char *env = "\"proxy_from_environment\":true";
	char *env_tls = K(pw_asprintf("%s,%s", env, tls_block(ca_pem_member())));

	env_clear();
	/* Nothing set: direct. Without the option the environment is ignored. */
	deliver(endpoint(plain, env));
	setenv("HTTP_PROXY", dead, 1);
	deliver(endpoint(plain, ""));
	refused(endpoint(plain, env));

	/* Lower case works too; NO_PROXY is honoured. */
	env_clear();
	setenv("http_proxy", live, 1);
	deliver(endpoint(plain, env));
	ck_assert(log_has(
		proxy_log,
		K(pw_asprintf("POST http://127.0.0.1:%d/push.v1.PusherService/Push", P.standin))));
	setenv("http_proxy", dead, 1);
	setenv("NO_PROXY", "127.0.0.1", 1);
	deliver(endpoint(plain, env));

	/* The proxy is chosen by the URL's scheme. */
	env_clear();
	setenv("HTTPS_PROXY", dead, 1);
	deliver(endpoint(plain, env));
	refused(endpoint(tls, env_tls));
	setenv("HTTPS_PROXY", live, 1);
	setenv("HTTP_PROXY", dead, 1);
	deliver(endpoint(tls, env_tls));
	ck_assert(log_has(proxy_log, K(pw_asprintf("CONNECT 127.0.0.1:%d", P.tls))));
	env_clear();
	ck_assert_uint_eq(standin_count(S), 6);
}
END_TEST

/* A CONNECT proxy that records the request head it receives, then tunnels. */
struct fake_proxy {
	int lfd, port;
	pthread_t th;
	atomic_int stop;
	pthread_mutex_t lock;
	char head[4096];
};

static void relay(int a, int b, atomic_int *stop)
{
	char buf[16384];

	while (!atomic_load(stop)) {
		struct pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
		int r = poll(p, 2, 100);

		if (r < 0 && errno != EINTR)
			return;
		for (int i = 0; i < 2 && r > 0; i++) {
			if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t n = read(p[i].fd, buf, sizeof(buf));

				if (n <= 0 || write(p[1 - i].fd, buf, (size_t)n) != n)
					return;
			}
		}
	}
}

static void *fake_proxy_main(void *arg)
{
	struct fake_proxy *fp = arg;

	while (!atomic_load(&fp->stop)) {
		struct pollfd pl = {fp->lfd, POLLIN, 0};
		char head[4096];
		size_t len = 0;
		int c, up = -1, port = 0;
		struct sockaddr_in sa = {0};

		if (poll(&pl, 1, 100) <= 0)
			continue;
		c = accept(fp->lfd, NULL, NULL);
		if (c < 0)
			continue;
		while (len < sizeof(head) - 1) {
			ssize_t n = read(c, head + len, sizeof(head) - 1 - len);

			if (n <= 0)
				break;
			len += (size_t)n;
			head[len] = '\0';
			if (strstr(head, "\r\n\r\n"))
				break;
		}
		head[len] = '\0';
		pthread_mutex_lock(&fp->lock);
		snprintf(fp->head, sizeof(fp->head), "%s", head);
		pthread_mutex_unlock(&fp->lock);
		if (sscanf(head, "CONNECT 127.0.0.1:%d ", &port) == 1) {
			sa.sin_family = AF_INET;
			sa.sin_port = htons((uint16_t)port);
			inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
			up = socket(AF_INET, SOCK_STREAM, 0);
			if (connect(up, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
				static const char ok[] =
					"HTTP/1.1 200 Connection established\r\n\r\n";

				if (write(c, ok, sizeof(ok) - 1) == (ssize_t)sizeof(ok) - 1)
					relay(c, up, &fp->stop);
			}
			close(up);
		}
		close(c);
	}
	return NULL;
}

static void fake_proxy_start(struct fake_proxy *fp)
{
	struct sockaddr_in sa = {0};
	socklen_t sl = sizeof(sa);

	memset(fp, 0, sizeof(*fp));
	pthread_mutex_init(&fp->lock, NULL);
	fp->lfd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	ck_assert_int_eq(bind(fp->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fp->lfd, 8), 0);
	getsockname(fp->lfd, (struct sockaddr *)&sa, &sl);
	fp->port = ntohs(sa.sin_port);
	ck_assert_int_eq(pthread_create(&fp->th, NULL, fake_proxy_main, fp), 0);
}

static void fake_proxy_stop(struct fake_proxy *fp)
{
	atomic_store(&fp->stop, 1);
	pthread_join(fp->th, NULL);
	close(fp->lfd);
	pthread_mutex_destroy(&fp->lock);
}

START_TEST(proxy_connect_header)
{
	struct fake_proxy fp;
	struct th_instance in;
	char head[4096];

	fake_proxy_start(&fp);
	create(&in,
	       endpoint(url_of("https", "127.0.0.1", P.tls, NULL),
			K(pw_asprintf(
				"\"proxy_url\":\"http://127.0.0.1:%d\","
				"\"proxy_connect_header\":{\"X-Proxy-Token\":[\"" CONNECT_SECRET
				"\"]},%s",
				fp.port, tls_block(ca_pem_member())))));
	push_ok(&in);
	assert_secret_hidden(&in, NULL, CONNECT_SECRET);
	th_destroy(&in);
	fake_proxy_stop(&fp);
	snprintf(head, sizeof(head), "%s", fp.head);
	ck_assert_msg(strncmp(head, "CONNECT 127.0.0.1:", 18) == 0, "not a CONNECT: %s", head);
	ck_assert_msg(strcasestr(head, "\r\nX-Proxy-Token: " CONNECT_SECRET "\r\n") != NULL,
		      "connect header missing:\n%s", head);
	/* Only the proxy sees it. */
	ck_assert_str_eq(header_at(S, 0, "X-Proxy-Token"), "");
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("peers");

	tcase_add_unchecked_fixture(tc, peers_up, peers_down);
	tcase_add_checked_fixture(tc, per_test_up, per_test_down);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, basic_auth_password);
	tcase_add_test(tc, basic_auth_password_file);
	tcase_add_test(tc, bearer_token_and_file_rotation);
	tcase_add_test(tc, authorization_type_and_credentials);
	tcase_add_test(tc, headers_authorization_wins_over_basic);
	tcase_add_test(tc, oauth2_client_credentials_and_refresh);
	tcase_add_test(tc, oauth2_overrides_headers_authorization);
	tcase_add_test(tc, oauth2_token_endpoint_failure);
	tcase_add_test(tc, oauth2_own_tls_and_proxy);
	tcase_add_test(tc, tls_ca_pem_and_ca_file);
	tcase_add_test(tc, tls_verification);
	tcase_add_test(tc, tls_client_certificates);
	tcase_add_test(tc, tls_server_name);
	tcase_add_test(tc, tls_min_version);
	tcase_add_test(tc, http2_negotiation);
	tcase_add_test(tc, redirects);
	tcase_add_test(tc, proxy_url_http_and_connect);
	tcase_add_test(tc, no_proxy_entries);
	tcase_add_test(tc, proxy_from_environment);
	tcase_add_test(tc, proxy_connect_header);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	char openssl_bin[256];
	SRunner *sr;
	int failed;

	if (!find_exe("nginx", P.nginx_bin, sizeof(P.nginx_bin)) ||
	    !find_exe("tinyproxy", P.tinyproxy_bin, sizeof(P.tinyproxy_bin)) ||
	    !find_exe("openssl", openssl_bin, sizeof(openssl_bin))) {
		printf("SKIP: the HTTP client tests need nginx, tinyproxy and the openssl command "
		       "(apt-get install nginx-light tinyproxy openssl)\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	sr = srunner_create(http_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
