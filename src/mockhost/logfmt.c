/*
 * logfmt.c - formats a log line in logfmt. A value with a quote or a
 * backslash has to be escaped, or a parser splits it at the inner quote.
 */
#include "logfmt.h"

#include <stdbool.h>

static const char *level_name(enum component_log_level l)
{
	switch (l) {
	case COMPONENT_LOG_DEBUG:
		return "debug";
	case COMPONENT_LOG_INFO:
		return "info";
	case COMPONENT_LOG_WARN:
		return "warn";
	default:
		return "error";
	}
}

/* The bytes after which a parser would end an unquoted value, or that it
 * refuses in one. */
static bool needs_quotes(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p == '=' || *p == '"' || *p == 0x7f)
			return true;
	return false;
}

static void put_quoted(struct strbuf *sb, const char *v)
{
	strbuf_putc(sb, '"');
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		switch (*p) {
		case '"':
			strbuf_puts(sb, "\\\"");
			break;
		case '\\':
			strbuf_puts(sb, "\\\\");
			break;
		case '\n':
			strbuf_puts(sb, "\\n");
			break;
		case '\r':
			strbuf_puts(sb, "\\r");
			break;
		case '\t':
			strbuf_puts(sb, "\\t");
			break;
		default:
			if (*p < ' ' || *p == 0x7f)
				strbuf_printf(sb, "\\u%04x", *p);
			else
				strbuf_putc(sb, (char)*p);
		}
	}
	strbuf_putc(sb, '"');
}

void mockhost_logfmt(struct strbuf *sb, enum component_log_level level, const char *msg,
		     const struct component_log_field *fields, size_t n)
{
	strbuf_printf(sb, "level=%s msg=", level_name(level));
	put_quoted(sb, msg ? msg : "");
	for (size_t i = 0; i < n; i++) {
		const char *v = fields[i].value ? fields[i].value : "";

		strbuf_printf(sb, " %s=", fields[i].key);
		if (needs_quotes(v))
			put_quoted(sb, v);
		else
			strbuf_puts(sb, v);
	}
	strbuf_putc(sb, '\n');
}
