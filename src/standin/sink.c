/*
 * sink.c - `mockhost sink`: the Pyroscope stand-in as a foreground process
 * for demos and manual testing.
 *
 * SIGINT and SIGTERM are blocked before any thread starts and then taken
 * with sigwait(), so the server threads never see them and shutdown runs
 * in ordinary code rather than in a signal handler.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "standin/sink.h"
#include "standin/standin.h"
#include "strbuf.h"

static void usage(FILE *f)
{
	fputs("usage: mockhost sink --listen ADDR:PORT [--dir DIR] [--require-tenant] [--quiet]\n"
	      "\n"
	      "Runs a strict local stand-in for the Pyroscope server until SIGINT or SIGTERM.\n"
	      "\n"
	      "  --listen ADDR:PORT  address to listen on, e.g. 127.0.0.1:4040 or [::1]:4040\n"
	      "                      (port 0 picks a free port; the URL is printed)\n"
	      "  --dir DIR           store every accepted series and ingest in DIR\n"
	      "  --require-tenant    refuse requests without X-Scope-OrgID (401)\n"
	      "  --quiet             do not print a line per received series or ingest\n"
	      "  --help              show this help\n"
	      "\n"
	      "Routes: POST /push.v1.PusherService/Push, POST [/prefix]/ingest,\n"
	      "GET /stats, GET /-/ready. See docs/sink.md.\n",
	      f);
}

int pw_sink_main(int argc, char **argv)
{
	struct standin_opts o = {0};
	struct standin *s = NULL;
	char *addr = NULL, *err = NULL;
	const char *listen = NULL;
	bool quiet = false;
	sigset_t set;
	int sig, rc = 2;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--listen") == 0 && i + 1 < argc) {
			listen = argv[++i];
		} else if (strncmp(a, "--listen=", 9) == 0) {
			listen = a + 9;
		} else if (strcmp(a, "--dir") == 0 && i + 1 < argc) {
			o.store_dir = argv[++i];
		} else if (strncmp(a, "--dir=", 6) == 0) {
			o.store_dir = a + 6;
		} else if (strcmp(a, "--require-tenant") == 0) {
			o.require_tenant = true;
		} else if (strcmp(a, "--quiet") == 0) {
			quiet = true;
		} else {
			fprintf(stderr, "mockhost sink: unknown or incomplete argument \"%s\"\n",
				a);
			usage(stderr);
			return 2;
		}
	}
	if (!listen) {
		fputs("mockhost sink: --listen is required\n", stderr);
		usage(stderr);
		return 2;
	}
	if (standin_split_listen(listen, &addr, &o.port) < 0) {
		fprintf(stderr, "mockhost sink: invalid --listen \"%s\" (ADDR:PORT expected)\n",
			listen);
		return 2;
	}
	o.listen_addr = addr;
	o.log = quiet ? NULL : stdout;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	s = standin_start(&o, &err);
	if (!s) {
		fprintf(stderr, "mockhost sink: %s\n", err ? err : "cannot start");
		rc = 1;
		goto out;
	}
	printf("sink listening on %s\n", standin_url(s));
	fflush(stdout);
	while (sigwait(&set, &sig) != 0)
		;
	standin_stop(s);
	rc = 0;
out:
	free(err);
	free(addr);
	return rc;
}
