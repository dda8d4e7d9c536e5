/*
 * logfmt.h - one log line in logfmt, as Go's go-logfmt and Loki's logfmt
 * parser read it.
 */
#ifndef MOCKHOST_LOGFMT_H
#define MOCKHOST_LOGFMT_H

#include <stddef.h>

#include "component_abi.h"
#include "strbuf.h"

/*
 * Appends `level=<level> msg="<msg>"` and ` key=value` for each field, then
 * a newline, to sb. A value is quoted when it holds a space, a
 * control character, `=` or `"`; inside quotes `"` and `\` are escaped with
 * a backslash, and control characters as \n, \r, \t or \u00XX. Keys are
 * written as they are: the plugin's keys are fixed identifiers.
 */
void mockhost_logfmt(struct strbuf *sb, enum component_log_level level, const char *msg,
		     const struct component_log_field *fields, size_t n);

#endif
