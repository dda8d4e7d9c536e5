/*
 * mockhost - a small pipeline host for component plugins: loads the plugin,
 * checks its ABI and drives it from the command line. It is how the plugin
 * is tried, demonstrated and tested.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloy/alloy.h"
#include "component_abi.h"
#include "config.h"
#include "duration.h"
#include "hostsvc.h"
#include "loader.h"
#include "mockhost.h"
#include "pw_version.h"
#include "pyroscope_write.h"
#include "qstore.h"
#include "sdkname.h"
#include "standin/sink.h"
#include "strbuf.h"
#include "util/clock.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

static const char usage_text[] =
	"usage: mockhost [--plugin PATH] COMMAND [OPTIONS]\n"
	"\n"
	"Loads a component plugin (by default the pyroscope.write plugin built or\n"
	"installed beside mockhost) and drives it.\n"
	"\n"
	"commands:\n"
	"  check   --config FILE [--component LABEL]\n"
	"          create an instance from FILE and print \"ok\" or the validation errors\n"
	"  push    --config FILE --label NAME=VALUE... --profile FILE... [--id ID]\n"
	"          [--timeout DURATION] [--metrics] [--debug]\n"
	"          one blocking push of the files as the samples of one series\n"
	"  ingest  --config FILE --url '/ingest?name=APP{k=v}&format=pprof' --body FILE\n"
	"          [--content-type TYPE]... [--timeout DURATION] [--metrics] [--debug]\n"
	"          one blocking ingest, as an SDK request relayed by a host\n"
	"  convert FILE [--component LABEL]\n"
	"          print the JSON document for the pyroscope.write block of an .alloy file\n"
	"  run     --config FILE [--listen ADDR:PORT] ...   (see mockhost run --help)\n"
	"          keep the component running: hot reload, receivers, /metrics\n"
	"  sink    --listen ADDR:PORT [--dir DIR] [--require-tenant]\n"
	"          a local Pyroscope-compatible receiver (see mockhost sink --help)\n"
	"  queue inspect --dir DIR\n"
	"          print a queue directory's state as JSON, read-only (no lock taken)\n"
	"\n"
	"common options:\n"
	"  --plugin PATH       the plugin shared object to load\n"
	"  --component LABEL   which pyroscope.write block of an .alloy file to use\n"
	"  --log-level LEVEL   debug, info, warn or error (default warn)\n"
	"  --version           print mockhost, plugin and ABI versions\n"
	"  --help              this text\n"
	"\n"
	"FILE may be JSON (the component's configuration document) or Alloy syntax\n"
	"(a name ending in .alloy). DURATION uses Go syntax: 500ms, 10s, 1m30s.\n"
	"\n"
	"exit status: 0 success, 1 validation or delivery failure, 2 usage error\n";

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mockhost: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nrun 'mockhost --help' for usage\n");
}

static enum component_log_level log_level = COMPONENT_LOG_WARN;

/* ---- instance helpers ---- */

struct session {
	struct plugin plugin;
	struct component_instance *inst;
	const struct pw_receiver *rx;
};

static int sink_stdout(void *user, const char *data, size_t len)
{
	(void)user;
	return fwrite(data, 1, len, stdout) == len ? 0 : -1;
}

static int session_open(struct session *s, const char *plugin_path, const char *config_path,
			const char *component)
{
	struct component_host host;
	char errbuf[1024];
	char *json = NULL, *err = NULL;
	const void *exp = NULL;
	int rc;

	memset(s, 0, sizeof(*s));
	if (plugin_load(plugin_path, &s->plugin, errbuf, sizeof(errbuf)) < 0) {
		fprintf(stderr, "mockhost: %s\n", errbuf);
		return EXIT_FAIL;
	}
	if (mockhost_load_config(config_path, component, &json, &err) < 0) {
		fprintf(stderr, "mockhost: %s\n", err);
		free(err);
		return EXIT_FAIL;
	}
	mockhost_host_init(&host, log_level);
	rc = s->plugin.desc->create(&host, json, &s->inst, &err);
	free(json);
	if (rc != COMPONENT_OK) {
		fprintf(stderr, "mockhost: %s: %s\n%s\n", config_path, s->plugin.desc->strerror(rc),
			err ? err : "");
		s->plugin.desc->free_string(err);
		return EXIT_FAIL;
	}
	if (s->plugin.desc->get_export(s->inst, PW_RECEIVER_EXPORT, &exp) != COMPONENT_OK || !exp) {
		fprintf(stderr, "mockhost: the plugin has no \"receiver\" export\n");
		return EXIT_FAIL;
	}
	s->rx = exp;
	return 0;
}

static void session_close(struct session *s)
{
	if (s->inst)
		s->plugin.desc->destroy(s->inst);
	plugin_unload(&s->plugin);
}

static int64_t deadline_from(int64_t timeout_ns)
{
	if (timeout_ns <= 0)
		return PW_NO_DEADLINE;
	return pwx_now_ns() + timeout_ns;
}

/* ---- commands ---- */

struct opts {
	const char *config;
	const char *component;
	const char *id;
	const char *url;
	const char *body;
	int64_t timeout_ns;
	bool metrics;
	bool debug;
	char **labels;
	size_t nlabels;
	char **profiles;
	size_t nprofiles;
	char **ctypes;
	size_t nctypes;
};

enum {
	OPT_CONFIG = 256,
	OPT_COMPONENT,
	OPT_LABEL,
	OPT_PROFILE,
	OPT_ID,
	OPT_TIMEOUT,
	OPT_METRICS,
	OPT_DEBUG,
	OPT_URL,
	OPT_CTYPE,
	OPT_BODY,
	OPT_LOGLEVEL,
	OPT_HELP,
};

static const struct option cmd_options[] = {
	{"config", required_argument, NULL, OPT_CONFIG},
	{"component", required_argument, NULL, OPT_COMPONENT},
	{"label", required_argument, NULL, OPT_LABEL},
	{"profile", required_argument, NULL, OPT_PROFILE},
	{"id", required_argument, NULL, OPT_ID},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"metrics", no_argument, NULL, OPT_METRICS},
	{"debug", no_argument, NULL, OPT_DEBUG},
	{"url", required_argument, NULL, OPT_URL},
	{"content-type", required_argument, NULL, OPT_CTYPE},
	{"body", required_argument, NULL, OPT_BODY},
	{"log-level", required_argument, NULL, OPT_LOGLEVEL},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

static int push_arg(char ***v, size_t *n, char *arg)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(char *));

	if (!nv)
		return -1;
	nv[(*n)++] = arg;
	*v = nv;
	return 0;
}

static void opts_free(struct opts *o)
{
	free(o->labels);
	free(o->profiles);
	free(o->ctypes);
}

/* Returns 0, or EXIT_USAGE after printing why; 1 when --help was printed. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	int c;

	memset(o, 0, sizeof(*o));
	optind = 1;
	while ((c = getopt_long(argc, argv, "", cmd_options, NULL)) != -1) {
		const char *why = NULL;

		switch (c) {
		case OPT_CONFIG:
			o->config = optarg;
			break;
		case OPT_COMPONENT:
			o->component = optarg;
			break;
		case OPT_LABEL:
			if (!strchr(optarg, '=')) {
				usage_error("--label wants NAME=VALUE, got \"%s\"", optarg);
				return EXIT_USAGE;
			}
			push_arg(&o->labels, &o->nlabels, optarg);
			break;
		case OPT_PROFILE:
			push_arg(&o->profiles, &o->nprofiles, optarg);
			break;
		case OPT_ID:
			o->id = optarg;
			break;
		case OPT_TIMEOUT:
			if (pw_duration_parse(optarg, &o->timeout_ns, &why) < 0 ||
			    o->timeout_ns <= 0) {
				usage_error("--timeout wants a positive duration such as 10s, got "
					    "\"%s\"",
					    optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_METRICS:
			o->metrics = true;
			break;
		case OPT_DEBUG:
			o->debug = true;
			break;
		case OPT_URL:
			o->url = optarg;
			break;
		case OPT_CTYPE:
			push_arg(&o->ctypes, &o->nctypes, optarg);
			break;
		case OPT_BODY:
			o->body = optarg;
			break;
		case OPT_LOGLEVEL:
			if (mockhost_parse_level(optarg, &log_level) < 0) {
				usage_error(
					"--log-level wants debug, info, warn or error, got \"%s\"",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_HELP:
			fputs(usage_text, stdout);
			return 1;
		default:
			usage_error("unknown or incomplete option");
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		usage_error("unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	if (!o->config) {
		usage_error("--config FILE is required");
		return EXIT_USAGE;
	}
	return 0;
}

static void print_after(struct session *s, const struct opts *o)
{
	if (o->metrics)
		s->plugin.desc->metrics(s->inst, sink_stdout, NULL);
	if (o->debug && s->plugin.desc->debug_info)
		s->plugin.desc->debug_info(s->inst, sink_stdout, NULL);
}

/* The end of a push or ingest: the failure (if any), then what --metrics
 * and --debug asked for. Frees the result; returns the exit status. */
static int report_call(struct session *s, const struct opts *o, int st, struct pw_result *res)
{
	if (st != COMPONENT_OK)
		printf("failed: %s\n%s\n", s->plugin.desc->strerror(st),
		       res->error ? res->error : "");
	s->rx->free_result(res);
	print_after(s, o);
	return st == COMPONENT_OK ? 0 : EXIT_FAIL;
}

static int cmd_check(const char *plugin_path, struct opts *o)
{
	struct session s;
	int rc = session_open(&s, plugin_path, o->config, o->component);

	if (rc == 0) {
		printf("ok\n");
		print_after(&s, o);
	}
	session_close(&s);
	return rc;
}

static int cmd_push(const char *plugin_path, struct opts *o)
{
	struct pw_label *labels = calloc(o->nlabels + 1, sizeof(*labels));
	struct pw_sample *samples = calloc(o->nprofiles + 1, sizeof(*samples));
	char **bufs = calloc(o->nprofiles + 1, sizeof(char *));
	struct pw_result res = {0};
	struct session s = {0};
	struct pw_push p = {0};
	int rc = EXIT_FAIL, st;

	if (!labels || !samples || !bufs)
		goto out;
	if (o->nprofiles == 0) {
		usage_error("push needs at least one --profile FILE");
		rc = EXIT_USAGE;
		goto out;
	}
	for (size_t i = 0; i < o->nlabels; i++) {
		char *eq = strchr(o->labels[i], '=');

		*eq = '\0';
		labels[i].name = o->labels[i];
		labels[i].value = eq + 1;
	}
	for (size_t i = 0; i < o->nprofiles; i++) {
		char *err = NULL;

		if (mockhost_read_file(o->profiles[i], &bufs[i], &samples[i].len, &err) < 0) {
			fprintf(stderr, "mockhost: %s\n", err);
			free(err);
			goto out;
		}
		samples[i].data = (const uint8_t *)bufs[i];
		samples[i].id = o->id;
	}
	if ((rc = session_open(&s, plugin_path, o->config, o->component)) != 0)
		goto out;
	p.struct_size = sizeof(p);
	p.labels = labels;
	p.nlabels = o->nlabels;
	p.samples = samples;
	p.nsamples = o->nprofiles;
	st = s.rx->push(s.rx->ctx, &p, deadline_from(o->timeout_ns), &res);
	if (st == COMPONENT_OK)
		printf("ok: pushed %zu profile(s)\n", o->nprofiles);
	rc = report_call(&s, o, st, &res);
out:
	session_close(&s);
	for (size_t i = 0; bufs && i < o->nprofiles; i++)
		free(bufs[i]);
	free(bufs);
	free(samples);
	free(labels);
	return rc;
}

static int cmd_ingest(const char *plugin_path, struct opts *o)
{
	struct pw_kv *kv = NULL;
	size_t nkv = 0;
	struct pw_label *labels = NULL;
	char *body = NULL, *name = NULL, *err = NULL;
	size_t body_len = 0;
	struct pw_result res = {0};
	struct session s = {0};
	struct pw_ingest in = {0};
	int rc = EXIT_FAIL, st;

	if (!o->url || !o->body) {
		usage_error("ingest needs --url and --body");
		return EXIT_USAGE;
	}
	if (o->url[0] != '/') {
		usage_error("--url wants a path and query such as /ingest?name=app, got \"%s\"",
			    o->url);
		return EXIT_USAGE;
	}
	if (mockhost_read_file(o->body, &body, &body_len, &err) < 0) {
		fprintf(stderr, "mockhost: %s\n", err);
		free(err);
		return EXIT_FAIL;
	}
	name = sdk_query_param(o->url, "name");
	if (name && sdk_name_labels(name, &kv, &nkv, &err) < 0) {
		/* As a receiving host does: carry on with no labels, the
		 * component refuses the profile with its own message. */
		fprintf(stderr, "mockhost: cannot parse name \"%s\": %s\n", name, err);
		free(err);
	}
	labels = calloc(nkv + 1, sizeof(*labels));
	if (!labels)
		goto out;
	for (size_t i = 0; i < nkv; i++) {
		labels[i].name = kv[i].key;
		labels[i].value = kv[i].value;
	}
	if ((rc = session_open(&s, plugin_path, o->config, o->component)) != 0)
		goto out;
	in.struct_size = sizeof(in);
	in.path_query = o->url;
	in.content_types = (const char *const *)o->ctypes;
	in.ncontent_types = o->nctypes;
	in.body = (const uint8_t *)body;
	in.body_len = body_len;
	in.labels = labels;
	in.nlabels = nkv;
	st = s.rx->ingest(s.rx->ctx, &in, deadline_from(o->timeout_ns), &res);
	printf("status: %d\n", res.http_status);
	if (st == COMPONENT_OK)
		printf("ok: ingested %zu bytes\n", body_len);
	rc = report_call(&s, o, st, &res);
out:
	session_close(&s);
	sdk_labels_free(kv, nkv);
	free(labels);
	free(name);
	free(body);
	return rc;
}

static int cmd_convert(int argc, char **argv)
{
	const char *file = NULL, *component = NULL;
	char *text = NULL, *json = NULL, *err = NULL;
	size_t len = 0;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--component") == 0 && i + 1 < argc) {
			component = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0) {
			fputs(usage_text, stdout);
			return 0;
		} else if (argv[i][0] == '-' || file) {
			usage_error("convert: unexpected argument \"%s\"", argv[i]);
			return EXIT_USAGE;
		} else {
			file = argv[i];
		}
	}
	if (!file) {
		usage_error("convert needs a FILE");
		return EXIT_USAGE;
	}
	if (mockhost_read_file(file, &text, &len, &err) < 0) {
		fprintf(stderr, "mockhost: %s\n", err);
		free(err);
		return EXIT_FAIL;
	}
	rc = alloy_convert(text, len, file, component, &json, &err, mockhost_notice, NULL);
	if (rc == 0)
		printf("%s\n", json);
	else
		fprintf(stderr, "mockhost: %s\n", err);
	free(text);
	free(json);
	free(err);
	return rc == 0 ? 0 : EXIT_FAIL;
}

/* `mockhost queue inspect --dir DIR`: the store's read-only JSON view. */
static int cmd_queue(int argc, char **argv)
{
	struct strbuf sb = STRBUF_INIT;
	const char *dir = NULL;
	char *err = NULL;
	int rc;

	if (argc < 2) {
		usage_error("queue needs a subcommand: inspect --dir DIR");
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "inspect") != 0) {
		usage_error("queue: unknown subcommand \"%s\" (only inspect)", argv[1]);
		return EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc && !dir) {
			dir = argv[++i];
		} else {
			usage_error("queue inspect: unexpected argument \"%s\"", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (!dir) {
		usage_error("queue inspect needs --dir DIR");
		return EXIT_USAGE;
	}
	rc = pwq_inspect(dir, &sb, &err);
	if (rc == 0)
		printf("%s\n", sb.data);
	else
		fprintf(stderr, "mockhost: %s\n", err);
	free(err);
	strbuf_free(&sb);
	return rc == 0 ? 0 : EXIT_FAIL;
}

static int cmd_version(const char *plugin_path)
{
	struct plugin p;
	char err[1024];

	printf("mockhost %s (component ABI %d.%d)\n", PW_VERSION, COMPONENT_ABI_MAJOR,
	       COMPONENT_ABI_MINOR);
	if (plugin_load(plugin_path, &p, err, sizeof(err)) < 0) {
		printf("plugin: %s\n", err);
		return EXIT_FAIL;
	}
	printf("plugin %s: %s %s (component ABI %u.%u)\n", plugin_path, p.desc->name,
	       p.desc->version, p.desc->abi_major, p.desc->abi_minor);
	plugin_unload(&p);
	return 0;
}

int main(int argc, char **argv)
{
	char defpath[PATH_MAX];
	const char *plugin_path = NULL;
	const char *cmd;
	struct opts o;
	int i = 1, rc;

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--plugin") == 0 && i + 1 < argc) {
			plugin_path = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--plugin=", 9) == 0) {
			plugin_path = argv[i] + 9;
			i++;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage_text, stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			return cmd_version(plugin_path
						   ? plugin_path
						   : plugin_default_path(defpath, sizeof(defpath)));
		} else {
			usage_error("unknown option \"%s\"", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage_error("a command is required");
		return EXIT_USAGE;
	}
	if (!plugin_path)
		plugin_path = plugin_default_path(defpath, sizeof(defpath));
	cmd = argv[i];
	argc -= i;
	argv += i;

	if (strcmp(cmd, "sink") == 0)
		return pw_sink_main(argc, argv);
	if (strcmp(cmd, "convert") == 0)
		return cmd_convert(argc, argv);
	if (strcmp(cmd, "queue") == 0)
		return cmd_queue(argc, argv);
	if (strcmp(cmd, "run") == 0)
		return mockhost_run_main(plugin_path, argc, argv);
	if (strcmp(cmd, "check") != 0 && strcmp(cmd, "push") != 0 && strcmp(cmd, "ingest") != 0) {
		usage_error("unknown command \"%s\"", cmd);
		return EXIT_USAGE;
	}
	rc = parse_opts(argc, argv, &o);
	if (rc == 1) {
		opts_free(&o);
		return 0;
	}
	if (rc != 0) {
		opts_free(&o);
		return rc;
	}
	if (strcmp(cmd, "check") == 0)
		rc = cmd_check(plugin_path, &o);
	else if (strcmp(cmd, "push") == 0)
		rc = cmd_push(plugin_path, &o);
	else
		rc = cmd_ingest(plugin_path, &o);
	opts_free(&o);
	return rc;
}
