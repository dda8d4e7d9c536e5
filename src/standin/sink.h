/*
 * sink.h - `mockhost sink`: the stand-in as a foreground process.
 */
#ifndef PW_STANDIN_SINK_H
#define PW_STANDIN_SINK_H

/* Runs the `mockhost sink` command. Returns the exit code. */
int pw_sink_main(int argc, char **argv);

#endif /* PW_STANDIN_SINK_H */
