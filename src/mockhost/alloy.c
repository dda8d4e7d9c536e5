/*
 * alloy.c - Alloy configuration syntax to the component's JSON document.
 *
 * A small hand-written scanner and recursive-descent parser. The scanner
 * knows every token of the Alloy syntax (so that other components, which
 * may hold references and expressions, can be stepped over by balancing
 * brackets), while the parser accepts values only when they are literals.
 */
#include "alloy.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "strbuf.h"

#define COMPONENT_NAME "pyroscope.write"
/* Deeper nesting than this is certainly a mistake and would otherwise let a
 * hostile file exhaust the stack of the recursive parser. */
#define MAX_DEPTH 64
/* Bounds a single string literal and a dotted name. */
#define MAX_STRING ((size_t)16 << 20)
#define MAX_NAME 1024

enum tok_kind { T_EOF, T_IDENT, T_STRING, T_NUMBER, T_PUNCT };

/* Two-character operators get codes outside the byte range. */
enum {
	OP_EQ = 256, /* == */
	OP_NE, /* != */
	OP_LE, /* <= */
	OP_GE, /* >= */
	OP_AND, /* && */
	OP_OR, /* || */
};

struct token {
	enum tok_kind kind;
	size_t off, end; /* byte range in the input */
	size_t line; /* 1-based */
	size_t line_start; /* offset of the first byte of that line */
	bool nl_before; /* a line break separates it from the previous token */
	int punct; /* T_PUNCT: the character or an OP_* code */
	char *str; /* T_STRING: decoded value, owned */
	size_t str_len;
};

struct parser {
	const char *text;
	size_t len;
	const char *filename;
	size_t pos, line, line_start;
	struct token tok; /* the current token */
	char *err;
	bool oom;
	alloy_notice_fn notice;
	void *user;
	char **labels; /* pyroscope.write labels seen so far */
	size_t nlabels;
};

/* A remembered source position for messages about earlier tokens. */
struct where {
	size_t off, line, line_start;
};

static struct where where_of(const struct token *t)
{
	struct where w = {t->off, t->line, t->line_start};
	return w;
}

/* Columns count characters, so continuation bytes of UTF-8 are skipped. */
static size_t column(const struct parser *p, struct where w)
{
	size_t col = 1;

	for (size_t i = w.line_start; i < w.off && i < p->len; i++)
		if (((unsigned char)p->text[i] & 0xC0) != 0x80)
			col++;
	return col;
}

__attribute__((format(printf, 3, 4))) static int fail_at(struct parser *p, struct where w,
							 const char *fmt, ...)
{
	char *msg;
	va_list ap;
	struct strbuf sb = STRBUF_INIT;

	if (p->err)
		return -1;
	va_start(ap, fmt);
	strbuf_init(&sb, 0);
	strbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	msg = strbuf_detach(&sb, NULL);
	if (msg) {
		if (p->filename)
			p->err = pw_asprintf("%s:%zu:%zu: %s", p->filename, w.line, column(p, w),
					     msg);
		else
			p->err = pw_asprintf("%zu:%zu: %s", w.line, column(p, w), msg);
	}
	free(msg);
	if (!p->err)
		p->oom = true;
	return -1;
}

/* For problems that concern the whole file rather than one place in it. */
static int fail_file(struct parser *p, const char *msg)
{
	if (p->err)
		return -1;
	if (p->filename)
		p->err = pw_asprintf("%s: %s", p->filename, msg);
	else
		p->err = pw_strdup(msg);
	if (!p->err)
		p->oom = true;
	return -1;
}

static int fail_oom(struct parser *p)
{
	p->oom = true;
	return -1;
}

static void notify(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void notify(struct parser *p, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	if (!p->notice)
		return;
	va_start(ap, fmt);
	strbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	if (!sb.failed && sb.data)
		p->notice(p->user, sb.data);
	strbuf_free(&sb);
}

/* ---- scanner ---------------------------------------------------------- */

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

static int hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

static void newline_at(struct parser *p, size_t nl_off)
{
	p->line++;
	p->line_start = nl_off + 1;
}

/* Skips blanks and comments; reports whether a line break was crossed. */
static int skip_space(struct parser *p, bool *nl)
{
	const char *s = p->text;

	while (p->pos < p->len) {
		char c = s[p->pos];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
			p->pos++;
		} else if (c == '\n') {
			newline_at(p, p->pos);
			*nl = true;
			p->pos++;
		} else if (c == '#' || (c == '/' && p->pos + 1 < p->len && s[p->pos + 1] == '/')) {
			while (p->pos < p->len && s[p->pos] != '\n')
				p->pos++;
		} else if (c == '/' && p->pos + 1 < p->len && s[p->pos + 1] == '*') {
			struct where w = {p->pos, p->line, p->line_start};
			size_t i = p->pos + 2;

			for (;;) {
				if (i + 1 >= p->len) {
					p->pos = p->len;
					return fail_at(p, w, "block comment not terminated");
				}
				if (s[i] == '*' && s[i + 1] == '/')
					break;
				if (s[i] == '\n') {
					newline_at(p, i);
					*nl = true;
				}
				i++;
			}
			p->pos = i + 2;
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
static int scan_escape(struct parser *p, struct strbuf *sb, size_t *i, struct where w)
{
	const char *s = p->text;
	unsigned char c = *i < p->len ? (unsigned char)s[*i] : '\n';
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
		return fail_at(p, w, "escape sequence not terminated");
	} else if (c >= 0x20 && c < 0x7F) {
		return fail_at(p, w, "unknown escape sequence \\%c", c);
	} else {
		return fail_at(p, w, "unknown escape sequence");
	}
	for (int k = 0; k < ndig; k++, (*i)++) {
		int d = *i < p->len ? hex_val((unsigned char)s[*i]) : 99;

		if (d >= base)
			return fail_at(p, w, "escape sequence needs %d %s digits", ndig,
				       base == 8 ? "octal" : "hexadecimal");
		v = v * (uint32_t)base + (uint32_t)d;
	}
	if (v > max || (v >= 0xD800 && v < 0xE000))
		return fail_at(p, w, "escape sequence is not a valid Unicode code point");
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
static int scan_string(struct parser *p, struct token *t)
{
	const char *s = p->text;
	char quote = s[p->pos];
	struct where start = where_of(t);
	struct strbuf sb = STRBUF_INIT;
	size_t i = p->pos + 1;
	int rc = -1;

	strbuf_init(&sb, MAX_STRING);
	for (;;) {
		char c;

		if (i >= p->len || (quote == '"' && s[i] == '\n')) {
			fail_at(p, start, "string literal not terminated");
			goto out;
		}
		c = s[i];
		if (c == quote)
			break;
		if (c == '\\' && quote == '"') {
			struct where w = {i, p->line, p->line_start};

			i++;
			if (scan_escape(p, &sb, &i, w) < 0)
				goto out;
			continue;
		}
		if (c == '\n')
			newline_at(p, i);
		/* Raw strings drop carriage returns, as Go does. */
		if (c != '\r' || quote == '"')
			strbuf_putc(&sb, c);
		i++;
	}
	p->pos = i + 1;
	if (sb.failed) {
		if (sb.len >= MAX_STRING - 4)
			fail_at(p, start, "string literal is too long");
		else
			fail_oom(p);
		goto out;
	}
	if (!pw_utf8_valid(sb.data ? sb.data : "", sb.len)) {
		fail_at(p, start, "string is not valid UTF-8");
		goto out;
	}
	if (sb.data && memchr(sb.data, '\0', sb.len)) {
		fail_at(p, start, "strings may not contain NUL characters");
		goto out;
	}
	t->str = strbuf_detach(&sb, &t->str_len);
	if (!t->str) {
		fail_oom(p);
		goto out;
	}
	t->kind = T_STRING;
	rc = 0;
out:
	strbuf_free(&sb);
	return rc;
}

static int scan_number(struct parser *p, struct token *t)
{
	const char *s = p->text;
	size_t i = p->pos;

	while (i < p->len && is_digit((unsigned char)s[i]))
		i++;
	if (i < p->len && s[i] == '.') {
		i++;
		while (i < p->len && is_digit((unsigned char)s[i]))
			i++;
	}
	if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
		size_t digits = 0;

		i++;
		if (i < p->len && (s[i] == '+' || s[i] == '-'))
			i++;
		while (i < p->len && is_digit((unsigned char)s[i]))
			i++, digits++;
		if (!digits)
			return fail_at(p, where_of(t), "exponent has no digits");
	}
	if (i < p->len && (is_ident_char((unsigned char)s[i]) || s[i] == '.'))
		return fail_at(
			p, where_of(t),
			"invalid number literal (durations and sizes are strings, e.g. \"10s\")");
	t->kind = T_NUMBER;
	p->pos = i;
	return 0;
}

static int scan_punct(struct parser *p, struct token *t)
{
	static const char singles[] = "{}[](),.=+-*/%^!<>&|:?";
	static const struct {
		char a, b;
		int code;
	} pairs[] = {
		{'=', '=', OP_EQ}, {'!', '=', OP_NE},  {'<', '=', OP_LE},
		{'>', '=', OP_GE}, {'&', '&', OP_AND}, {'|', '|', OP_OR},
	};
	unsigned char c = (unsigned char)p->text[p->pos];

	t->kind = T_PUNCT;
	if (p->pos + 1 < p->len) {
		for (size_t k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++) {
			if (c == pairs[k].a && p->text[p->pos + 1] == pairs[k].b) {
				t->punct = pairs[k].code;
				p->pos += 2;
				return 0;
			}
		}
	}
	if (c != '\0' && strchr(singles, c)) {
		t->punct = c;
		p->pos++;
		return 0;
	}
	if (c == '\'')
		return fail_at(p, where_of(t),
			       "single-quoted strings are not supported; use double quotes");
	if (c >= 0x20 && c < 0x7F)
		return fail_at(p, where_of(t), "illegal character '%c'", c);
	if (c == '\0')
		return fail_at(p, where_of(t), "illegal character NUL");
	return fail_at(p, where_of(t), "illegal character 0x%02x", c);
}

/* Replaces p->tok with the next token. */
static int advance(struct parser *p)
{
	struct token *t = &p->tok;
	bool nl = false;
	unsigned char c;
	int rc;

	free(t->str);
	memset(t, 0, sizeof(*t));
	if (skip_space(p, &nl) < 0)
		return -1;
	t->off = p->pos;
	t->line = p->line;
	t->line_start = p->line_start;
	t->nl_before = nl;
	if (p->pos >= p->len) {
		t->kind = T_EOF;
		t->end = p->pos;
		return 0;
	}
	c = (unsigned char)p->text[p->pos];
	if (is_ident_start(c)) {
		while (p->pos < p->len && is_ident_char((unsigned char)p->text[p->pos]))
			p->pos++;
		t->kind = T_IDENT;
		rc = 0;
	} else if (is_digit(c) || (c == '.' && p->pos + 1 < p->len &&
				   is_digit((unsigned char)p->text[p->pos + 1]))) {
		rc = scan_number(p, t);
	} else if (c == '"' || c == '`') {
		rc = scan_string(p, t);
	} else {
		rc = scan_punct(p, t);
	}
	t->end = p->pos;
	return rc;
}

static bool tok_is(const struct parser *p, int punct)
{
	return p->tok.kind == T_PUNCT && p->tok.punct == punct;
}

static bool tok_ident(const struct parser *p, const char *word)
{
	size_t n = strlen(word);

	return p->tok.kind == T_IDENT && p->tok.end - p->tok.off == n &&
	       memcmp(p->text + p->tok.off, word, n) == 0;
}

static int tok_len(const struct token *t)
{
	size_t n = t->end - t->off;

	return n > 40 ? 40 : (int)n;
}

/* Names the current token for a message; string contents are never quoted
 * because they may be secrets. */
static const char *describe(const struct parser *p, char *buf, size_t size)
{
	switch (p->tok.kind) {
	case T_EOF:
		return "end of file";
	case T_STRING:
		return "a string";
	case T_NUMBER:
		return "a number";
	default:
		snprintf(buf, size, "'%.*s'", tok_len(&p->tok), p->text + p->tok.off);
		return buf;
	}
}

/* Makes the dotted name starting at the current identifier, e.g.
 * "local.file.token.content", and leaves the token after it current. */
static int read_dotted(struct parser *p, struct strbuf *name)
{
	strbuf_init(name, MAX_NAME);
	for (;;) {
		strbuf_append(name, p->text + p->tok.off, p->tok.end - p->tok.off);
		if (advance(p) < 0)
			return -1;
		if (!tok_is(p, '.'))
			break;
		strbuf_putc(name, '.');
		if (advance(p) < 0)
			return -1;
		if (p->tok.kind != T_IDENT)
			return fail_at(p, where_of(&p->tok), "expected a name after '.'");
	}
	if (name->failed)
		return fail_at(p, where_of(&p->tok), "name is too long");
	return 0;
}

/* ---- skipping what is not ours ---------------------------------------- */

static int closer_of(int open)
{
	return open == '{' ? '}' : open == '[' ? ']' : ')';
}

static bool is_opener(const struct parser *p)
{
	return tok_is(p, '{') || tok_is(p, '[') || tok_is(p, '(');
}

static bool is_closer(const struct parser *p)
{
	return tok_is(p, '}') || tok_is(p, ']') || tok_is(p, ')');
}

/* Steps over a bracketed group whose opener is current, without looking at
 * what it holds; leaves the token after the closer current. */
static int skip_group(struct parser *p)
{
	char stack[MAX_DEPTH];
	struct where opened[MAX_DEPTH];
	size_t depth = 0;

	do {
		if (is_opener(p)) {
			if (depth == MAX_DEPTH)
				return fail_at(p, where_of(&p->tok), "nesting is too deep");
			stack[depth] = (char)closer_of(p->tok.punct);
			opened[depth++] = where_of(&p->tok);
		} else if (is_closer(p)) {
			if (p->tok.punct != stack[depth - 1])
				return fail_at(p, where_of(&p->tok),
					       "unexpected '%c'; expected '%c'", p->tok.punct,
					       stack[depth - 1]);
			depth--;
		} else if (p->tok.kind == T_EOF) {
			return fail_at(p, opened[depth - 1], "'%c' is never closed",
				       stack[depth - 1] == '}'	 ? '{'
				       : stack[depth - 1] == ']' ? '['
								 : '(');
		}
		if (advance(p) < 0)
			return -1;
	} while (depth > 0);
	return 0;
}

/* ---- values ------------------------------------------------------------- */

static bool is_operator(const struct parser *p)
{
	static const char ops[] = "+-*/%^!<>&|.([?:=";

	if (p->tok.kind != T_PUNCT)
		return false;
	return p->tok.punct >= 256 || strchr(ops, p->tok.punct) != NULL;
}

static int reject_expression(struct parser *p)
{
	return fail_at(
		p, where_of(&p->tok),
		"expressions are not supported: operator '%.*s' (only literal values are accepted)",
		tok_len(&p->tok), p->text + p->tok.off);
}

static int parse_value(struct parser *p, json_t **out, int depth);

static int parse_number(struct parser *p, bool negative, json_t **out)
{
	const struct token *t = &p->tok;
	char buf[128];
	size_t n = t->end - t->off;

	if (n >= sizeof(buf))
		return fail_at(p, where_of(t), "number literal is too long");
	memcpy(buf, p->text + t->off, n);
	buf[n] = '\0';
	if (strcspn(buf, ".eE") == n) {
		unsigned long long v;
		char *end;

		errno = 0;
		v = strtoull(buf, &end, 10);
		if (errno || *end || v > (unsigned long long)INT64_MAX + (negative ? 1u : 0u))
			return fail_at(p, where_of(t), "integer %s%s is out of range",
				       negative ? "-" : "", buf);
		if (negative)
			*out = json_integer(v == (unsigned long long)INT64_MAX + 1u
						    ? INT64_MIN
						    : -(json_int_t)v);
		else
			*out = json_integer((json_int_t)v);
	} else {
		double d = strtod(buf, NULL);

		if (!isfinite(d))
			return fail_at(p, where_of(t), "number %s is out of range", buf);
		*out = json_real(negative ? -d : d);
	}
	return *out ? 0 : fail_oom(p);
}

static int parse_object(struct parser *p, json_t **out, int depth)
{
	struct where open = where_of(&p->tok);
	json_t *obj = json_object(), *v = NULL;
	char *key = NULL;
	int rc = -1;

	if (!obj || advance(p) < 0)
		goto out;
	while (!tok_is(p, '}')) {
		struct where kw = where_of(&p->tok);

		if (p->tok.kind == T_EOF) {
			fail_at(p, open, "object is never closed");
			goto out;
		}
		if (p->tok.kind == T_STRING)
			key = pw_strdup(p->tok.str);
		else if (p->tok.kind == T_IDENT)
			key = pw_strndup(p->text + p->tok.off, p->tok.end - p->tok.off);
		else {
			fail_at(p, kw, "expected an object key (a name or a string)");
			goto out;
		}
		if (!key || advance(p) < 0)
			goto out;
		if (!tok_is(p, '=')) {
			fail_at(p, where_of(&p->tok), "missing '=' after object key \"%s\"", key);
			goto out;
		}
		if (advance(p) < 0 || parse_value(p, &v, depth + 1) < 0)
			goto out;
		if (json_object_get(obj, key)) {
			fail_at(p, kw, "duplicate object key \"%s\"", key);
			goto out;
		}
		if (json_object_set_new(obj, key, v) < 0) {
			v = NULL;
			fail_oom(p);
			goto out;
		}
		v = NULL;
		free(key);
		key = NULL;
		if (tok_is(p, ',')) {
			if (advance(p) < 0)
				goto out;
		} else if (!tok_is(p, '}')) {
			fail_at(p, where_of(&p->tok), "expected ',' or '}' in object");
			goto out;
		}
	}
	if (advance(p) < 0)
		goto out;
	*out = obj;
	obj = NULL;
	rc = 0;
out:
	free(key);
	json_decref(v);
	json_decref(obj);
	return rc;
}

static int parse_list(struct parser *p, json_t **out, int depth)
{
	struct where open = where_of(&p->tok);
	json_t *arr = json_array(), *v = NULL;
	int rc = -1;

	if (!arr || advance(p) < 0)
		goto out;
	while (!tok_is(p, ']')) {
		if (p->tok.kind == T_EOF) {
			fail_at(p, open, "list is never closed");
			goto out;
		}
		if (parse_value(p, &v, depth + 1) < 0)
			goto out;
		if (json_array_append_new(arr, v) < 0) {
			v = NULL;
			fail_oom(p);
			goto out;
		}
		v = NULL;
		if (tok_is(p, ',')) {
			if (advance(p) < 0)
				goto out;
		} else if (!tok_is(p, ']')) {
			fail_at(p, where_of(&p->tok), "expected ',' or ']' in list");
			goto out;
		}
	}
	if (advance(p) < 0)
		goto out;
	*out = arr;
	arr = NULL;
	rc = 0;
out:
	json_decref(v);
	json_decref(arr);
	return rc;
}

/* An identifier in value position: a keyword literal, or something this
 * converter cannot evaluate. */
static int parse_word(struct parser *p, json_t **out)
{
	struct where w = where_of(&p->tok);
	struct strbuf name = STRBUF_INIT;
	int rc = -1;

	if (tok_ident(p, "true") || tok_ident(p, "false") || tok_ident(p, "null")) {
		*out = tok_ident(p, "null") ? json_null() : json_boolean(tok_ident(p, "true"));
		return advance(p);
	}
	if (read_dotted(p, &name) < 0)
		goto out;
	if (tok_is(p, '('))
		fail_at(p, w, "function calls are not supported: %s(...)", name.data);
	else
		fail_at(p, w, "references are not supported: %s", name.data);
out:
	strbuf_free(&name);
	return rc;
}

/* Parses one literal and rejects an operator right after it, so that
 * "1 + 2" is reported as an expression rather than a stray token. */
static int parse_value(struct parser *p, json_t **out, int depth)
{
	int rc;

	*out = NULL;
	if (depth > MAX_DEPTH)
		return fail_at(p, where_of(&p->tok), "nesting is too deep");
	switch (p->tok.kind) {
	case T_STRING:
		*out = json_stringn(p->tok.str, p->tok.str_len);
		rc = *out ? advance(p) : fail_oom(p);
		break;
	case T_NUMBER:
		rc = parse_number(p, false, out);
		if (rc == 0)
			rc = advance(p);
		break;
	case T_IDENT:
		rc = parse_word(p, out);
		break;
	case T_PUNCT:
		if (tok_is(p, '{')) {
			rc = parse_object(p, out, depth);
		} else if (tok_is(p, '[')) {
			rc = parse_list(p, out, depth);
		} else if (tok_is(p, '-')) {
			/* A negative number is written as unary minus in Alloy;
			 * accept it on a number literal only. */
			struct where minus = where_of(&p->tok);

			if (advance(p) < 0)
				return -1;
			if (p->tok.kind != T_NUMBER)
				return fail_at(p, minus,
					       "expressions are not supported: operator '-' (only "
					       "literal values are accepted)");
			rc = parse_number(p, true, out);
			if (rc == 0)
				rc = advance(p);
		} else if (is_operator(p)) {
			rc = reject_expression(p);
		} else {
			rc = fail_at(p, where_of(&p->tok), "missing value before '%.*s'",
				     tok_len(&p->tok), p->text + p->tok.off);
		}
		break;
	default:
		rc = fail_at(p, where_of(&p->tok), "missing value at end of file");
		break;
	}
	if (rc == 0 && is_operator(p))
		rc = reject_expression(p);
	if (rc < 0) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

/* ---- block bodies ------------------------------------------------------- */

static int parse_body(struct parser *p, const char *block, struct where open, int depth,
		      json_t *obj);

/* Adds a nested block: `endpoint` directly inside pyroscope.write repeats
 * and is always an array; every other block may appear once. */
static int add_block(struct parser *p, json_t *obj, json_t *kinds, const char *name, struct where w,
		     int depth, json_t **child)
{
	json_t *kind = json_object_get(kinds, name);
	json_t *arr;

	if (kind && json_is_false(kind))
		return fail_at(p, w, "%s is already set as an attribute", name);
	if (depth == 1 && strcmp(name, "endpoint") == 0) {
		arr = json_object_get(obj, name);
		if (!arr) {
			arr = json_array();
			if (!arr || json_object_set_new(obj, name, arr) < 0)
				return fail_oom(p);
		}
		if (json_array_append_new(arr, *child) < 0) {
			*child = NULL;
			return fail_oom(p);
		}
		*child = NULL;
	} else {
		if (kind)
			return fail_at(p, w, "block %s may appear only once", name);
		if (json_object_set_new(obj, name, *child) < 0) {
			*child = NULL;
			return fail_oom(p);
		}
		*child = NULL;
	}
	return json_object_set_new(kinds, name, json_true()) < 0 ? fail_oom(p) : 0;
}

/* One statement inside a block body: `name = value` or `name { ... }`. */
static int parse_statement(struct parser *p, json_t *obj, json_t *kinds, int depth)
{
	struct where w = where_of(&p->tok);
	char *name = pw_strndup(p->text + p->tok.off, p->tok.end - p->tok.off);
	json_t *v = NULL;
	int rc = -1;

	if (!name || advance(p) < 0)
		goto out;
	if (tok_is(p, '=')) {
		if (advance(p) < 0 || parse_value(p, &v, depth + 1) < 0)
			goto out;
		if (json_object_get(kinds, name)) {
			fail_at(p, w,
				json_is_true(json_object_get(kinds, name))
					? "%s is already given as a block"
					: "attribute %s is set more than once",
				name);
			goto out;
		}
		if (json_object_set_new(obj, name, v) < 0 ||
		    json_object_set_new(kinds, name, json_false()) < 0) {
			v = NULL;
			fail_oom(p);
			goto out;
		}
		v = NULL;
	} else if (tok_is(p, '{')) {
		struct where open = where_of(&p->tok);

		if (depth >= MAX_DEPTH) {
			fail_at(p, open, "nesting is too deep");
			goto out;
		}
		v = json_object();
		if (!v || advance(p) < 0 || parse_body(p, name, open, depth + 1, v) < 0 ||
		    add_block(p, obj, kinds, name, w, depth, &v) < 0)
			goto out;
	} else if (p->tok.kind == T_STRING) {
		struct where lw = where_of(&p->tok);

		if (advance(p) < 0)
			goto out;
		if (tok_is(p, '{'))
			fail_at(p, lw, "block %s inside a component cannot have a label", name);
		else
			fail_at(p, lw, "missing '=' after attribute name %s", name);
		goto out;
	} else if (tok_is(p, '.')) {
		fail_at(p, where_of(&p->tok), "expected '=' or '{' after %s", name);
		goto out;
	} else {
		fail_at(p, where_of(&p->tok), "missing '=' after attribute name %s", name);
		goto out;
	}
	rc = 0;
out:
	json_decref(v);
	free(name);
	return rc;
}

/* Parses statements up to and including the closing brace of `block`. */
static int parse_body(struct parser *p, const char *block, struct where open, int depth,
		      json_t *obj)
{
	json_t *kinds = json_object(); /* name -> true (block) / false (attribute) */
	bool first = true;
	char desc[64];
	int rc = -1;

	if (!kinds) {
		fail_oom(p);
		goto out;
	}
	while (!tok_is(p, '}')) {
		if (p->tok.kind == T_EOF) {
			fail_at(p, open, "block %s is never closed", block);
			goto out;
		}
		if (!first && !p->tok.nl_before) {
			fail_at(p, where_of(&p->tok), "expected a line break before %s",
				describe(p, desc, sizeof(desc)));
			goto out;
		}
		if (p->tok.kind != T_IDENT) {
			fail_at(p, where_of(&p->tok),
				"expected an attribute or block name in %s, found %s", block,
				describe(p, desc, sizeof(desc)));
			goto out;
		}
		if (parse_statement(p, obj, kinds, depth) < 0)
			goto out;
		first = false;
	}
	if (advance(p) < 0)
		goto out;
	rc = 0;
out:
	json_decref(kinds);
	return rc;
}

/* ---- the file ----------------------------------------------------------- */

static int check_utf8(struct parser *p)
{
	const unsigned char *s = (const unsigned char *)p->text;
	size_t line = 1, line_start = 0;

	for (size_t i = 0; i < p->len; i++) {
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
		if (n > p->len - i || !pw_utf8_valid(p->text + i, n)) {
			struct where w = {i, line, line_start};

			return fail_at(p, w, "the file is not valid UTF-8");
		}
		i += n - 1;
	}
	return 0;
}

static int add_label(struct parser *p, const char *label, struct where w)
{
	char **grown;

	for (size_t i = 0; i < p->nlabels; i++)
		if (strcmp(p->labels[i], label) == 0)
			return fail_at(p, w, COMPONENT_NAME " \"%s\" is declared more than once",
				       label);
	grown = realloc(p->labels, (p->nlabels + 1) * sizeof(*grown));
	if (!grown)
		return fail_oom(p);
	p->labels = grown;
	p->labels[p->nlabels] = pw_strdup(label);
	if (!p->labels[p->nlabels])
		return fail_oom(p);
	p->nlabels++;
	return 0;
}

/* "a", "b", "c" for messages. */
static char *label_list(const struct parser *p)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < p->nlabels; i++)
		strbuf_printf(&sb, "%s\"%s\"", i ? ", " : "", p->labels[i]);
	if (sb.failed) {
		strbuf_free(&sb);
		return NULL;
	}
	return strbuf_detach(&sb, NULL);
}

/* Steps over a top-level attribute's value: it belongs to the file, not to
 * the component. The value ends at the first line break outside brackets. */
static int skip_attribute(struct parser *p, const char *name)
{
	notify(p, "skipping attribute %s", name);
	if (advance(p) < 0)
		return -1;
	do {
		if (p->tok.kind == T_EOF)
			break;
		if ((is_opener(p) ? skip_group(p) : advance(p)) < 0)
			return -1;
	} while (!p->tok.nl_before);
	return 0;
}

/* A pyroscope.write block whose opening brace is current: converted when
 * it is the one wanted, else stepped over. */
static int take_component(struct parser *p, const char *label, struct where w, const char *want,
			  bool list_only, json_t **result)
{
	struct where open = where_of(&p->tok);
	json_t *obj;

	if (!label)
		return fail_at(p, w,
			       COMPONENT_NAME " needs a label, e.g. " COMPONENT_NAME
					      " \"default\" { ... }");
	if (add_label(p, label, w) < 0)
		return -1;
	if (list_only || *result || (want && strcmp(want, label) != 0)) {
		if (want && !list_only)
			notify(p, "skipping " COMPONENT_NAME " \"%s\"", label);
		return skip_group(p);
	}
	obj = json_object();
	if (!obj)
		return fail_oom(p);
	if (advance(p) < 0 || parse_body(p, COMPONENT_NAME, open, 1, obj) < 0) {
		json_decref(obj);
		return -1;
	}
	*result = obj;
	return 0;
}

/* One top-level statement; the current token is its first name. */
static int parse_top_statement(struct parser *p, const char *want, bool list_only, json_t **result)
{
	struct where w = where_of(&p->tok);
	struct strbuf name = STRBUF_INIT;
	char *label = NULL;
	int rc = -1;

	if (read_dotted(p, &name) < 0)
		goto out;
	if (tok_is(p, '=')) {
		rc = skip_attribute(p, name.data);
		goto out;
	}
	if (p->tok.kind == T_STRING) {
		label = pw_strdup(p->tok.str);
		if (!label) {
			fail_oom(p);
			goto out;
		}
		if (advance(p) < 0)
			goto out;
	}
	if (!tok_is(p, '{')) {
		if (label || strchr(name.data, '.'))
			fail_at(p, where_of(&p->tok), "expected '{' after %s", name.data);
		else
			fail_at(p, where_of(&p->tok), "missing '=' or '{' after %s", name.data);
		goto out;
	}
	if (strcmp(name.data, COMPONENT_NAME) == 0) {
		rc = take_component(p, label, w, want, list_only, result);
		goto out;
	}
	if (label)
		notify(p, "skipping %s \"%s\"", name.data, label);
	else
		notify(p, "skipping %s", name.data);
	rc = skip_group(p);
out:
	strbuf_free(&name);
	free(label);
	return rc;
}

/*
 * Walks the top level. want: the label to convert (NULL: the first one);
 * list_only: skip every pyroscope.write body, just collect labels.
 */
static int parse_file(struct parser *p, const char *want, bool list_only, json_t **result)
{
	bool first = true;
	char desc[64];

	if (p->len >= 3 && memcmp(p->text, "\xEF\xBB\xBF", 3) == 0)
		p->pos = p->line_start = 3;
	if (check_utf8(p) < 0 || advance(p) < 0)
		return -1;
	while (p->tok.kind != T_EOF) {
		struct where w = where_of(&p->tok);

		if (!first && !p->tok.nl_before)
			return fail_at(p, w, "expected a line break before %s",
				       describe(p, desc, sizeof(desc)));
		first = false;
		if (p->tok.kind != T_IDENT)
			return fail_at(p, w, "expected a block or attribute name, found %s",
				       describe(p, desc, sizeof(desc)));
		if (parse_top_statement(p, want, list_only, result) < 0)
			return -1;
	}
	return 0;
}

static void parser_free(struct parser *p)
{
	free(p->tok.str);
	alloy_labels_free(p->labels, p->nlabels);
	free(p->err);
}

/* Makes the final message for a selection that did not work out. */
static int selection_error(struct parser *p, const char *want)
{
	char *list = label_list(p);
	char *msg;

	if (!list)
		return fail_oom(p);
	if (want && p->nlabels)
		msg = pw_asprintf("no " COMPONENT_NAME " block labelled \"%s\" (found %s)", want,
				  list);
	else if (want)
		msg = pw_asprintf("no " COMPONENT_NAME " block labelled \"%s\"", want);
	else if (!p->nlabels)
		msg = pw_strdup("no " COMPONENT_NAME " block found");
	else
		msg = pw_asprintf("found %zu " COMPONENT_NAME
				  " blocks (%s); choose one by its label",
				  p->nlabels, list);
	free(list);
	if (!msg)
		return fail_oom(p);
	fail_file(p, msg);
	free(msg);
	return -1;
}

static char *dump_json(const json_t *doc)
{
	size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER;
	size_t n = json_dumpb(doc, NULL, 0, flags);
	char *buf;

	/* json_dumpb into our own buffer keeps the result free()-able
	 * whatever allocator jansson was configured with. */
	if (n == 0 || n == SIZE_MAX)
		return NULL;
	buf = malloc(n + 1);
	if (!buf)
		return NULL;
	if (json_dumpb(doc, buf, n, flags) != n) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static void take_error(struct parser *p, char **err)
{
	if (!err)
		return;
	if (p->err) {
		*err = p->err;
		p->err = NULL;
	} else {
		*err = pw_strdup(p->oom ? "out of memory" : "conversion failed");
	}
}

int alloy_convert(const char *text, size_t len, const char *filename, const char *label,
		  char **json, char **err, alloy_notice_fn notice, void *user)
{
	struct parser p = {0};
	json_t *result = NULL;
	int rc = -1;

	if (json)
		*json = NULL;
	if (err)
		*err = NULL;
	p.text = text ? text : "";
	p.len = text ? len : 0;
	p.filename = filename;
	p.line = 1;
	p.notice = notice;
	p.user = user;
	if (!json)
		goto out;
	if (parse_file(&p, label, false, &result) < 0)
		goto out;
	if (!result || (!label && p.nlabels > 1)) {
		selection_error(&p, label);
		goto out;
	}
	*json = dump_json(result);
	if (!*json) {
		fail_oom(&p);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		take_error(&p, err);
	json_decref(result);
	parser_free(&p);
	return rc;
}

int alloy_list_labels(const char *text, size_t len, const char *filename, char ***labels,
		      size_t *count, char **err)
{
	struct parser p = {0};
	json_t *unused = NULL;
	int rc = -1;

	if (err)
		*err = NULL;
	if (labels)
		*labels = NULL;
	if (count)
		*count = 0;
	p.text = text ? text : "";
	p.len = text ? len : 0;
	p.filename = filename;
	p.line = 1;
	if (!labels || !count || parse_file(&p, NULL, true, &unused) < 0)
		goto out;
	*labels = p.labels;
	*count = p.nlabels;
	p.labels = NULL;
	p.nlabels = 0;
	rc = 0;
out:
	if (rc < 0)
		take_error(&p, err);
	parser_free(&p);
	return rc;
}

void alloy_labels_free(char **labels, size_t count)
{
	if (!labels)
		return;
	for (size_t i = 0; i < count; i++)
		free(labels[i]);
	free(labels);
}
