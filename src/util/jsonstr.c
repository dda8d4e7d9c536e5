/*
 * util/jsonstr.c - a C string as a quoted JSON string, for the config's
 * canonical JSON and the endpoints' debug output.
 */
#include "util/jsonstr.h"

/* The short form of c under flags, or NULL when c has none. */
static const char *short_escape(unsigned char c, unsigned flags)
{
	if (c == '"')
		return "\\\"";
	if (c == '\\')
		return "\\\\";
	if (!(flags & PWX_JSON_SHORT_ESCAPES))
		return NULL;
	if (c == '\n')
		return "\\n";
	if (c == '\r')
		return "\\r";
	if (c == '\t')
		return "\\t";
	return NULL;
}

void pwx_json_quote(struct strbuf *sb, const char *s, unsigned flags)
{
	strbuf_putc(sb, '"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		const char *e = short_escape(c, flags);

		if (e)
			strbuf_puts(sb, e);
		else if (c < 0x20)
			strbuf_printf(sb, "\\u%04x", c);
		else
			strbuf_putc(sb, (char)c);
	}
	strbuf_putc(sb, '"');
}
