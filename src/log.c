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
