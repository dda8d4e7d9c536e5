/*
 * mockhost.h - the commands main.c dispatches to other files. The services
 * they share are in hostsvc.h.
 */
#ifndef MOCKHOST_H
#define MOCKHOST_H

/* `mockhost run`: argv[0] is "run". */
int mockhost_run_main(const char *plugin_path, int argc, char **argv);

#endif
