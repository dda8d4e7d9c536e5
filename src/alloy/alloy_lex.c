/*
 * alloy_lex.c - the scanner behind alloy.c: tokens, string literals and
 * their escapes, comments, source positions and error messages that point
 * at them, and the UTF-8 checks on the input.
 *
 * It knows every token of the Alloy syntax, not only those of literal
 * values, so that the parser can step over other components (which may
 * hold references and expressions) by balancing brackets.
 */
#include "alloy/alloy_lex.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "util/hex.h"

/* Bounds a single string literal. */
#define MAX_STRING ((size_t)16 << 20)

/* Columns count characters, so continuation bytes of UTF-8 are skipped. */
static size_t column(const struct lexer *lx, struct where w)
{
	size_t col = 1;

	for (size_t i = w.line_start; i < w.off && i < lx->len; i++)
		if (((unsigned char)lx->text[i] & 0xC0) != 0x80)
			col++;
	return col;
}

int alloy_lex_fail_at(struct lexer *lx, struct where w, const char *fmt, ...)
{
	char *msg;
	va_list ap;
	struct strbuf sb = STRBUF_INIT;

	if (lx->err)
		return -1;
	va_start(ap, fmt);
	strbuf_init(&sb, 0);
	strbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	msg = strbuf_detach(&sb, NULL);
	if (msg) {
		if (lx->filename)
			lx->err = pw_asprintf("%s:%zu:%zu: %s", lx->filename, w.line, column(lx, w),
					      msg);
		else
			lx->err = pw_asprintf("%zu:%zu: %s", w.line, column(lx, w), msg);
	}
	free(msg);
	if (!lx->err)
		lx->oom = true;
	return -1;
}

/* For problems that concern the whole file rather than one place in it. */
int alloy_lex_fail_file(struct lexer *lx, const char *msg)
{
	if (lx->err)
		return -1;
	if (lx->filename)
		lx->err = pw_asprintf("%s: %s", lx->filename, msg);
	else
		lx->err = pw_strdup(msg);
	if (!lx->err)
		lx->oom = true;
	return -1;
}

int alloy_lex_fail_oom(struct lexer *lx)
{
	lx->oom = true;
	return -1;
}

/* ---- tokens ----------------------------------------------------------- */

static bool is_ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_ident_char(unsigned char c)
{
	return is_ident_start(c) || is_digit(c);
}

static void newline_at(struct lexer *lx, size_t nl_off)
{
	lx->line++;
	lx->line_start = nl_off + 1;
}

/* Skips blanks and comments; reports whether a line break was crossed. */
static int skip_space(struct lexer *lx, bool *nl)
{
	const char *s = lx->text;

	while (lx->pos < lx->len) {
		char c = s[lx->pos];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
			lx->pos++;
		} else if (c == '\n') {
			newline_at(lx, lx->pos);
			*nl = true;
			lx->pos++;
		} else if (c == '#' ||
			   (c == '/' && lx->pos + 1 < lx->len && s[lx->pos + 1] == '/')) {
			while (lx->pos < lx->len && s[lx->pos] != '\n')
				lx->pos++;
		} else if (c == '/' && lx->pos + 1 < lx->len && s[lx->pos + 1] == '*') {
			struct where w = {lx->pos, lx->line, lx->line_start};
			size_t i = lx->pos + 2;

			for (;;) {
				if (i + 1 >= lx->len) {
					lx->pos = lx->len;
					return alloy_lex_fail_at(lx, w,
								 "block comment not terminated");
				}
				if (s[i] == '*' && s[i + 1] == '/')
					break;
				if (s[i] == '\n') {
					newline_at(lx, i);
					*nl = true;
				}
				i++;
			}
			lx->pos = i + 2;
		} else {
			break;
		}
	}
	return 0;
}

static void put_utf8(struct strbuf *sb, uint32_t v)
{
	char u[4];

	if (v < 0x80) {
		u[0] = (char)v;
		strbuf_append(sb, u, 1);
	} else if (v < 0x800) {
		u[0] = (char)(0xC0 | (v >> 6));
		u[1] = (char)(0x80 | (v & 0x3F));
		strbuf_append(sb, u, 2);
	} else if (v < 0x10000) {
		u[0] = (char)(0xE0 | (v >> 12));
		u[1] = (char)(0x80 | ((v >> 6) & 0x3F));
		u[2] = (char)(0x80 | (v & 0x3F));
		strbuf_append(sb, u, 3);
	} else {
		u[0] = (char)(0xF0 | (v >> 18));
		u[1] = (char)(0x80 | ((v >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((v >> 6) & 0x3F));
		u[3] = (char)(0x80 | (v & 0x3F));
		strbuf_append(sb, u, 4);
	}
}

/* Decodes the escape at text[*i] (just after the backslash) into sb. */
static int scan_escape(struct lexer *lx, struct strbuf *sb, size_t *i, struct where w)
{
	const char *s = lx->text;
	unsigned char c = *i < lx->len ? (unsigned char)s[*i] : '\n';
	int ndig, base;
	uint32_t max, v = 0;

	switch (c) {
	case 'a':
		strbuf_putc(sb, '\a');
		break;
	case 'b':
		strbuf_putc(sb, '\b');
		break;
	case 'f':
		strbuf_putc(sb, '\f');
		break;
	case 'n':
		strbuf_putc(sb, '\n');
		break;
	case 'r':
		strbuf_putc(sb, '\r');
		break;
	case 't':
		strbuf_putc(sb, '\t');
		break;
	case 'v':
		strbuf_putc(sb, '\v');
		break;
	case '\\':
		strbuf_putc(sb, '\\');
		break;
	case '"':
		strbuf_putc(sb, '"');
		break;
	case '\'':
		strbuf_putc(sb, '\'');
		break;
	default:
		goto numeric;
	}
	(*i)++;
	return 0;

numeric:
	base = 16;
	max = 0x10FFFF;
	if (c >= '0' && c <= '7') {
		ndig = 3;
		base = 8;
		max = 255;
	} else if (c == 'x') {
		ndig = 2;
		max = 255;
		(*i)++;
	} else if (c == 'u') {
		ndig = 4;
		(*i)++;
	} else if (c == 'U') {
		ndig = 8;
		(*i)++;
	} else if (c == '\n') {
		return alloy_lex_fail_at(lx, w, "escape sequence not terminated");
	} else if (c >= 0x20 && c < 0x7F) {
		return alloy_lex_fail_at(lx, w, "unknown escape sequence \\%c", c);
	} else {
		return alloy_lex_fail_at(lx, w, "unknown escape sequence");
	}
	for (int k = 0; k < ndig; k++, (*i)++) {
		int d = *i < lx->len ? pwx_hex_val((unsigned char)s[*i]) : -1;

		if (d < 0 || d >= base)
			return alloy_lex_fail_at(lx, w, "escape sequence needs %d %s digits", ndig,
						 base == 8 ? "octal" : "hexadecimal");
		v = v * (uint32_t)base + (uint32_t)d;
	}
	if (v > max || (v >= 0xD800 && v < 0xE000))
		return alloy_lex_fail_at(lx, w,
					 "escape sequence is not a valid Unicode code point");
	if (c != 'u' && c != 'U') {
		/* Octal and \x escapes give single bytes, as in Go; the whole
		 * string is checked for valid UTF-8 afterwards. */
		strbuf_putc(sb, (char)v);
		return 0;
	}
	put_utf8(sb, v);
	return 0;
}

/* Scans a "..." (escapes, one line) or `...` (raw, may span lines) string. */
static int scan_string(struct lexer *lx, struct token *t)
{
	const char *s = lx->text;
	char quote = s[lx->pos];
	struct where start = where_of(t);
	struct strbuf sb = STRBUF_INIT;
	size_t i = lx->pos + 1;
	int rc = -1;

	strbuf_init(&sb, MAX_STRING);
	for (;;) {
		char c;

		if (i >= lx->len || (quote == '"' && s[i] == '\n')) {
			alloy_lex_fail_at(lx, start, "string literal not terminated");
			goto out;
		}
		c = s[i];
		if (c == quote)
			break;
		if (c == '\\' && quote == '"') {
			struct where w = {i, lx->line, lx->line_start};

			i++;
			if (scan_escape(lx, &sb, &i, w) < 0)
				goto out;
			continue;
		}
		if (c == '\n')
			newline_at(lx, i);
		/* Raw strings drop carriage returns, as Go does. */
		if (c != '\r' || quote == '"')
			strbuf_putc(&sb, c);
		i++;
	}
	lx->pos = i + 1;
	if (sb.failed) {
		if (sb.len >= MAX_STRING - 4)
			alloy_lex_fail_at(lx, start, "string literal is too long");
		else
			alloy_lex_fail_oom(lx);
		goto out;
	}
	if (!pw_utf8_valid(sb.data ? sb.data : "", sb.len)) {
		alloy_lex_fail_at(lx, start, "string is not valid UTF-8");
		goto out;
	}
	if (sb.data && memchr(sb.data, '\0', sb.len)) {
		alloy_lex_fail_at(lx, start, "strings may not contain NUL characters");
		goto out;
	}
	t->str = strbuf_detach(&sb, &t->str_len);
	if (!t->str) {
		alloy_lex_fail_oom(lx);
		goto out;
	}
	t->kind = T_STRING;
	rc = 0;
out:
	strbuf_free(&sb);
	return rc;
}

static int scan_number(struct lexer *lx, struct token *t)
{
	const char *s = lx->text;
	size_t i = lx->pos;

	while (i < lx->len && is_digit((unsigned char)s[i]))
		i++;
	if (i < lx->len && s[i] == '.') {
		i++;
		while (i < lx->len && is_digit((unsigned char)s[i]))
			i++;
	}
	if (i < lx->len && (s[i] == 'e' || s[i] == 'E')) {
		size_t digits = 0;

		i++;
		if (i < lx->len && (s[i] == '+' || s[i] == '-'))
			i++;
		while (i < lx->len && is_digit((unsigned char)s[i]))
			i++, digits++;
		if (!digits)
			return alloy_lex_fail_at(lx, where_of(t), "exponent has no digits");
	}
	if (i < lx->len && (is_ident_char((unsigned char)s[i]) || s[i] == '.'))
		return alloy_lex_fail_at(
			lx, where_of(t),
			"invalid number literal (durations and sizes are strings, e.g. \"10s\")");
	t->kind = T_NUMBER;
	lx->pos = i;
	return 0;
}

static int scan_punct(struct lexer *lx, struct token *t)
{
	static const char singles[] = "{}[](),.=+-*/%^!<>&|:?";
	static const struct {
		char a, b;
		int code;
	} pairs[] = {
		{'=', '=', OP_EQ}, {'!', '=', OP_NE},  {'<', '=', OP_LE},
		{'>', '=', OP_GE}, {'&', '&', OP_AND}, {'|', '|', OP_OR},
	};
	unsigned char c = (unsigned char)lx->text[lx->pos];

	t->kind = T_PUNCT;
	if (lx->pos + 1 < lx->len) {
		for (size_t k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++) {
			if (c == pairs[k].a && lx->text[lx->pos + 1] == pairs[k].b) {
				t->punct = pairs[k].code;
				lx->pos += 2;
				return 0;
			}
		}
	}
	if (c != '\0' && strchr(singles, c)) {
		t->punct = c;
		lx->pos++;
		return 0;
	}
	if (c == '\'')
		return alloy_lex_fail_at(
			lx, where_of(t),
			"single-quoted strings are not supported; use double quotes");
	if (c >= 0x20 && c < 0x7F)
		return alloy_lex_fail_at(lx, where_of(t), "illegal character '%c'", c);
	if (c == '\0')
		return alloy_lex_fail_at(lx, where_of(t), "illegal character NUL");
	return alloy_lex_fail_at(lx, where_of(t), "illegal character 0x%02x", c);
}

/* Replaces lx->tok with the next token. */
int alloy_lex_advance(struct lexer *lx)
{
	struct token *t = &lx->tok;
	bool nl = false;
	unsigned char c;
	int rc;

	free(t->str);
	memset(t, 0, sizeof(*t));
	if (skip_space(lx, &nl) < 0)
		return -1;
	t->off = lx->pos;
	t->line = lx->line;
	t->line_start = lx->line_start;
	t->nl_before = nl;
	if (lx->pos >= lx->len) {
		t->kind = T_EOF;
		t->end = lx->pos;
		return 0;
	}
	c = (unsigned char)lx->text[lx->pos];
	if (is_ident_start(c)) {
		while (lx->pos < lx->len && is_ident_char((unsigned char)lx->text[lx->pos]))
			lx->pos++;
		t->kind = T_IDENT;
		rc = 0;
	} else if (is_digit(c) || (c == '.' && lx->pos + 1 < lx->len &&
				   is_digit((unsigned char)lx->text[lx->pos + 1]))) {
		rc = scan_number(lx, t);
	} else if (c == '"' || c == '`') {
		rc = scan_string(lx, t);
	} else {
		rc = scan_punct(lx, t);
	}
	t->end = lx->pos;
	return rc;
}

int alloy_lex_tok_len(const struct token *t)
{
	size_t n = t->end - t->off;

	return n > 40 ? 40 : (int)n;
}

/* Names the current token for a message; string contents are never quoted
 * because they may be secrets. */
const char *alloy_lex_describe(const struct lexer *lx, char *buf, size_t size)
{
	switch (lx->tok.kind) {
	case T_EOF:
		return "end of file";
	case T_STRING:
		return "a string";
	case T_NUMBER:
		return "a number";
	default:
		snprintf(buf, size, "'%.*s'", alloy_lex_tok_len(&lx->tok), lx->text + lx->tok.off);
		return buf;
	}
}

static int check_utf8(struct lexer *lx)
{
	const unsigned char *s = (const unsigned char *)lx->text;
	size_t line = 1, line_start = 0;

	for (size_t i = 0; i < lx->len; i++) {
		size_t n;

		if (s[i] == '\n') {
			line++;
			line_start = i + 1;
		}
		if (s[i] < 0x80)
			continue;
		n = (s[i] & 0xE0) == 0xC0   ? 2
		    : (s[i] & 0xF0) == 0xE0 ? 3
		    : (s[i] & 0xF8) == 0xF0 ? 4
					    : 1;
		if (n > lx->len - i || !pw_utf8_valid(lx->text + i, n)) {
			struct where w = {i, line, line_start};

			return alloy_lex_fail_at(lx, w, "the file is not valid UTF-8");
		}
		i += n - 1;
	}
	return 0;
}

void alloy_lex_init(struct lexer *lx, const char *text, size_t len, const char *filename)
{
	memset(lx, 0, sizeof(*lx));
	lx->text = text ? text : "";
	lx->len = text ? len : 0;
	lx->filename = filename;
	lx->line = 1;
}

int alloy_lex_start(struct lexer *lx)
{
	if (lx->len >= 3 && memcmp(lx->text, "\xEF\xBB\xBF", 3) == 0)
		lx->pos = lx->line_start = 3;
	if (check_utf8(lx) < 0)
		return -1;
	return alloy_lex_advance(lx);
}

void alloy_lex_free(struct lexer *lx)
{
	free(lx->tok.str);
	lx->tok.str = NULL;
	free(lx->err);
	lx->err = NULL;
}
