/*
 * run_state.c - the services both halves of `mockhost run` use: logging at
 * the configured level, and the gate that every call into the instance
 * passes, which shutdown closes before destroy().
 */
#include "run_state.h"

#include <pthread.h>

#include "hostsvc.h"

static void run_log(struct run *r, enum component_log_level level, const char *msg,
		    const struct component_log_field *fields, size_t n)
{
	if (level >= r->level)
		mockhost_log(NULL, level, msg, fields, n);
}

void run_log1(struct run *r, enum component_log_level level, const char *msg, const char *k1,
	      const char *v1, const char *k2, const char *v2)
{
	struct component_log_field f[2] = {{k1, v1}, {k2, v2}};

	run_log(r, level, msg, f, k1 ? (k2 ? 2 : 1) : 0);
}

/* ---- the gate around calls into the instance ---- */

bool run_gate_enter(struct run *r)
{
	bool ok;

	pthread_mutex_lock(&r->mu);
	ok = !r->gate_closed;
	if (ok)
		r->gate_active++;
	pthread_mutex_unlock(&r->mu);
	return ok;
}

void run_gate_leave(struct run *r)
{
	pthread_mutex_lock(&r->mu);
	r->gate_active--;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

void run_gate_close(struct run *r)
{
	pthread_mutex_lock(&r->mu);
	r->gate_closed = true;
	while (r->gate_active > 0)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
}
