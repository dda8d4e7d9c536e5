/*
 * config_diag.c - the config parser's list of problems, the paths that say
 * which value each problem is about, and user text made safe to quote.
 *
 * The parser never stops at the first problem: every check records what it
 * found here and parsing goes on, so one pass lists them all, each line
 * prefixed with the path of the value it is about.
 */
#include "config_diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_ERRORS 100
#define MAX_TEXT ((size_t)1 << 20)

void pw_cfg_diag_init(struct pw_cfg_diag *d)
{
	strbuf_init(&d->errs, MAX_TEXT);
	d->nerrs = 0;
}

void pw_cfg_diag_free(struct pw_cfg_diag *d)
{
	strbuf_free(&d->errs);
}

char *pw_cfg_diag_take(struct pw_cfg_diag *d)
{
	size_t n = 0;
	char *text;

	if (d->nerrs > MAX_ERRORS)
		strbuf_printf(&d->errs, "... and %zu more problems\n", d->nerrs - MAX_ERRORS);
	text = strbuf_detach(&d->errs, &n);
	/* One line per problem, without a trailing newline. */
	if (text && n > 0 && text[n - 1] == '\n')
		text[n - 1] = '\0';
	return text;
}

void pw_cfg_err_at(struct pw_cfg_diag *d, const char *path, const char *fmt, ...)
{
	va_list ap;

	d->nerrs++;
	if (d->nerrs > MAX_ERRORS)
		return;
	strbuf_printf(&d->errs, "%s: ", *path ? path : "document");
	va_start(ap, fmt);
	strbuf_vprintf(&d->errs, fmt, ap);
	va_end(ap);
	strbuf_putc(&d->errs, '\n');
}

void pw_cfg_err_line(struct pw_cfg_diag *d, int line, int col, const char *fmt, ...)
{
	va_list ap;

	d->nerrs++;
	if (d->nerrs > MAX_ERRORS)
		return;
	strbuf_printf(&d->errs, "line %d, column %d: ", line, col);
	va_start(ap, fmt);
	strbuf_vprintf(&d->errs, fmt, ap);
	va_end(ap);
	strbuf_putc(&d->errs, '\n');
}

/*
 * Copies user text into dst so it is safe inside a one-line message between
 * double quotes: control bytes and quotes are escaped, long text truncated.
 */
void pw_cfg_show(char *dst, size_t n, const char *s, size_t len)
{
	size_t w = 0;

	for (size_t i = 0; i < len && w + 8 < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (i >= SHOW_LEN) {
			memcpy(dst + w, "...", 3);
			w += 3;
			break;
		}
		if (ch < 0x20 || ch == 0x7f) {
			w += (size_t)snprintf(dst + w, n - w, "\\x%02x", ch);
		} else if (ch == '"' || ch == '\\') {
			dst[w++] = '\\';
			dst[w++] = (char)ch;
		} else {
			dst[w++] = (char)ch;
		}
	}
	dst[w] = '\0';
}

/* Marks a path cut short by PATH_LEN so nobody mistakes it for a real one. */
static void fit_path(char *dst, int n)
{
	if (n >= PATH_LEN)
		memcpy(dst + PATH_LEN - 4, "...", 4);
}

void pw_cfg_path_key(char *dst, const char *parent, const char *key)
{
	char k[SHOW_BUF];

	pw_cfg_show(k, sizeof(k), key, strlen(key));
	fit_path(dst, snprintf(dst, PATH_LEN, "%s%s%s", parent, *parent ? "." : "", k));
}

void pw_cfg_path_index(char *dst, const char *parent, size_t i)
{
	fit_path(dst, snprintf(dst, PATH_LEN, "%s[%zu]", parent, i));
}

void pw_cfg_path_map(char *dst, const char *parent, const char *key, size_t klen)
{
	char k[SHOW_BUF];

	pw_cfg_show(k, sizeof(k), key, klen);
	fit_path(dst, snprintf(dst, PATH_LEN, "%s[\"%s\"]", parent, k));
}

const char *pw_cfg_jtype(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "bool";
	case JSON_NULL:
		return "null";
	}
	return "unknown";
}
