/*
 * run.c - `mockhost run`, the long-running host.
 */
#include <stdio.h>

#include "mockhost.h"

int mockhost_run_main(const char *plugin_path, int argc, char **argv)
{
	(void)plugin_path;
	(void)argc;
	(void)argv;
	fprintf(stderr, "mockhost: the run command is not available in this build\n");
	return 1;
}
