/*
 * hostutil.c - the in-test host.
 */
#define _GNU_SOURCE
#include "hostutil.h"

#include <check.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "standin/standin.h"
#include "strbuf.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct strbuf log_buf = STRBUF_INIT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static void th_log(void *user, enum component_log_level level, const char *msg,
		   const struct component_log_field *f, size_t n)
{
	(void)user;
	pthread_mutex_lock(&log_lock);
	strbuf_printf(&log_buf, "%s %s", level_names[level & 3], msg);
	for (size_t i = 0; i < n; i++)
		strbuf_printf(&log_buf, " %s=%s", f[i].key, f[i].value);
	strbuf_putc(&log_buf, '\n');
	pthread_mutex_unlock(&log_lock);
}

char *th_logs(void)
{
	char *s;

	pthread_mutex_lock(&log_lock);
	s = strdup(log_buf.data ? log_buf.data : "");
	pthread_mutex_unlock(&log_lock);
	return s;
}

void th_logs_clear(void)
{
	pthread_mutex_lock(&log_lock);
	strbuf_free(&log_buf);
	pthread_mutex_unlock(&log_lock);
}

bool th_logs_contain(const char *needle)
{
	char *s = th_logs();
	bool found = strstr(s, needle) != NULL;

	free(s);
	return found;
}

void th_load(struct th_plugin *p, const char *path)
{
	component_entry_fn entry;
	void *sym;

	if (!path)
		path = getenv("PW_PLUGIN");
	ck_assert_msg(path != NULL, "PW_PLUGIN is not set");
	p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	ck_assert_msg(p->dl != NULL, "dlopen %s: %s", path, dlerror());
	sym = dlsym(p->dl, COMPONENT_ENTRY_SYMBOL);
	ck_assert_msg(sym != NULL, "no entry symbol in %s", path);
	memcpy(&entry, &sym, sizeof(entry));
	p->d = entry();
	ck_assert_ptr_nonnull(p->d);
	ck_assert_int_eq(p->d->abi_major, COMPONENT_ABI_MAJOR);
}

void th_unload(struct th_plugin *p)
{
	if (p->dl)
		dlclose(p->dl);
	memset(p, 0, sizeof(*p));
	th_logs_clear();
}

int th_create(struct th_plugin *p, const char *config, struct th_instance *out, char **error)
{
	struct component_host host = {0};
	char *err = NULL;
	const void *exp = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	out->p = p;
	host.struct_size = sizeof(host);
	host.abi_major = COMPONENT_ABI_MAJOR;
	host.abi_minor = COMPONENT_ABI_MINOR;
	host.log = th_log;
	host.log_level = COMPONENT_LOG_DEBUG;
	host.instance_id = "test-instance";
	host.user_agent = "testhost/1.0";
	rc = p->d->create(&host, config, &out->inst, &err);
	if (rc == COMPONENT_OK) {
		ck_assert_int_eq(p->d->get_export(out->inst, PW_RECEIVER_EXPORT, &exp),
				 COMPONENT_OK);
		out->rx = exp;
	}
	if (error)
		*error = err ? strdup(err) : NULL;
	p->d->free_string(err);
	return rc;
}

void th_destroy(struct th_instance *in)
{
	if (in->inst)
		in->p->d->destroy(in->inst);
	in->inst = NULL;
	in->rx = NULL;
}

static int to_strbuf(void *user, const char *data, size_t len)
{
	return strbuf_append(user, data, len);
}

char *th_metrics(struct th_instance *in)
{
	struct strbuf sb = STRBUF_INIT;

	ck_assert_int_eq(in->p->d->metrics(in->inst, to_strbuf, &sb), COMPONENT_OK);
	return strbuf_detach(&sb, NULL);
}

char *th_debug_info(struct th_instance *in)
{
	struct strbuf sb = STRBUF_INIT;

	ck_assert_int_eq(in->p->d->debug_info(in->inst, to_strbuf, &sb), COMPONENT_OK);
	return strbuf_detach(&sb, NULL);
}

double th_metric(struct th_instance *in, const char *series)
{
	char *text = th_metrics(in);
	size_t sl = strlen(series);
	double v = -1;

	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');

		if (strncmp(line, series, sl) == 0 && line[sl] == ' ') {
			v = strtod(line + sl + 1, NULL);
			break;
		}
		line = nl ? nl + 1 : NULL;
	}
	free(text);
	return v;
}

int64_t th_deadline(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return PW_NO_DEADLINE;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec + ms * 1000000LL;
}

int th_push(struct th_instance *in, const char *const *labels, const void *data, size_t len,
	    int64_t timeout_ms, char **error)
{
	struct pw_label l[64];
	struct pw_sample s = {data, len, NULL};
	struct pw_push p = {sizeof(p), l, 0, &s, 1};
	struct pw_result r = {0};
	int rc;

	for (size_t i = 0; labels && labels[2 * i] && i < 64; i++) {
		l[i].name = labels[2 * i];
		l[i].value = labels[2 * i + 1];
		p.nlabels++;
	}
	rc = in->rx->push(in->rx->ctx, &p, th_deadline(timeout_ms), &r);
	ck_assert_int_eq(rc, r.status);
	if (error)
		*error = r.error ? strdup(r.error) : NULL;
	in->rx->free_result(&r);
	return rc;
}

/* A hand-built pprof Profile: sample_type {type: "samples", unit: "count"},
 * one sample with value 1, and its string table. */
static const uint8_t pprof_raw[] = {
	0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, /* sample_type: ValueType{1, 2} */
	0x12, 0x03, 0x12, 0x01, 0x01, /* sample: value = [1], packed */
	0x32, 0x00, /* string_table[0] = "" */
	0x32, 0x07, 's',  'a',	'm',  'p',  'l', 'e', 's', /* string_table[1] */
	0x32, 0x05, 'c',  'o',	'u',  'n',  't', /* string_table[2] */
};

static uint8_t pprof_gz[256];
static size_t pprof_gz_len;
static pthread_once_t pprof_once = PTHREAD_ONCE_INIT;

static void pprof_gz_init(void)
{
	z_stream z;

	memset(&z, 0, sizeof(z));
	/* 16 + MAX_WBITS asks zlib for a gzip wrapper. */
	if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return;
	z.next_in = (Bytef *)pprof_raw;
	z.avail_in = sizeof(pprof_raw);
	z.next_out = pprof_gz;
	z.avail_out = sizeof(pprof_gz);
	if (deflate(&z, Z_FINISH) == Z_STREAM_END)
		pprof_gz_len = z.total_out;
	deflateEnd(&z);
}

const uint8_t *th_pprof_gz(size_t *len)
{
	pthread_once(&pprof_once, pprof_gz_init);
	*len = pprof_gz_len;
	return pprof_gz;
}

char *th_subst(const char *tmpl, const char *key, const char *value)
{
	struct strbuf sb = STRBUF_INIT;
	size_t kl = strlen(key);

	while (*tmpl) {
		const char *hit = strstr(tmpl, key);

		if (!hit) {
			strbuf_puts(&sb, tmpl);
			break;
		}
		strbuf_append(&sb, tmpl, (size_t)(hit - tmpl));
		strbuf_puts(&sb, value);
		tmpl = hit + kl;
	}
	return strbuf_detach(&sb, NULL);
}

struct standin *th_sink_start(void)
{
	struct standin_opts o = {0};
	char *err = NULL;
	struct standin *s = standin_start(&o, &err);

	ck_assert_msg(s != NULL, "standin: %s", err ? err : "?");
	return s;
}

double th_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool th_under_valgrind(void)
{
	const char *v = getenv("PW_UNDER_VALGRIND");

	return v && *v && strcmp(v, "0") != 0;
}

uint8_t *th_big_pprof(size_t size, unsigned seed, size_t *len)
{
	size_t base_len, n = 0;
	const uint8_t *base = standin_pprof_sample(&base_len);
	uint8_t *p = malloc(size + base_len + 1003);

	memcpy(p, base, base_len);
	n = base_len;
	while (n < size) {
		p[n++] = 0x32; /* string_table */
		p[n++] = 0xe8; /* varint 1000 */
		p[n++] = 0x07;
		for (int i = 0; i < 1000; i++) {
			seed = seed * 1103515245u + 12345u;
			p[n++] = (uint8_t)('a' + (seed >> 16) % 26);
		}
	}
	*len = n;
	return p;
}

double th_ep_metric(struct th_instance *in, const char *name, const char *ep)
{
	char series[256];

	snprintf(series, sizeof(series), "%s{endpoint=\"%s\"}", name, ep);
	return th_metric(in, series);
}
