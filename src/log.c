/*
 * log.c - turns variadic key/value pairs into the host's field array.
 */
#include "log.h"

#include <stdarg.h>
#include <stddef.h>

#define MAX_FIELDS 16

void pw_log(const struct pw_logger *l, enum component_log_level level, const char *msg, ...)
{
	struct component_log_field fields[MAX_FIELDS];
	size_t n = 0;
	va_list ap;

	if (!pw_log_enabled(l, level))
		return;
	va_start(ap, msg);
	for (;;) {
		const char *k = va_arg(ap, const char *);
		const char *v;

		if (!k)
			break;
		v = va_arg(ap, const char *);
		/* A NULL value leaves the field out (e.g. no error). */
		if (v && n < MAX_FIELDS) {
			fields[n].key = k;
			fields[n].value = v;
			n++;
		}
	}
	va_end(ap);
	l->fn(l->user, level, msg, fields, n);
}

bool pw_lograte_allow(struct pw_lograte *r, int64_t now_ns, uint64_t *suppressed)
{
	int64_t start = atomic_load(&r->window_ns);

	/* One caller opens the next window; the others count in either. */
	if (now_ns - start >= 1000000000LL &&
	    atomic_compare_exchange_strong(&r->window_ns, &start, now_ns))
		atomic_store(&r->used, 0);
	if (atomic_fetch_add(&r->used, 1) >= PW_LOG_RATE_BURST) {
		atomic_fetch_add(&r->suppressed, 1);
		return false;
	}
	*suppressed = atomic_exchange(&r->suppressed, 0);
	return true;
}
