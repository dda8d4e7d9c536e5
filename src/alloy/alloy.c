/*
 * alloy.c - Alloy configuration syntax to the component's JSON document.
 *
 * A small hand-written recursive-descent parser over the scanner in
 * alloy_lex.c. The scanner knows every token of the Alloy syntax (so that
 * other components, which may hold references and expressions, can be
 * stepped over by balancing brackets), while the parser accepts values
 * only when they are literals.
 */
#include "alloy/alloy.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloy/alloy_lex.h"
#include "strbuf.h"

#define COMPONENT_NAME "pyroscope.write"
/* Deeper nesting than this is certainly a mistake and would otherwise let a
 * hostile file exhaust the stack of the recursive parser. */
#define MAX_DEPTH 64
/* Bounds a dotted name. */
#define MAX_NAME 1024

struct parser {
	struct lexer lx;
	alloy_notice_fn notice;
	void *user;
	char **labels; /* pyroscope.write labels seen so far */
	size_t nlabels;
};

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

/* ---- the current token ------------------------------------------------ */

static bool tok_is(const struct parser *p, int punct)
{
	return p->lx.tok.kind == T_PUNCT && p->lx.tok.punct == punct;
}

static bool tok_ident(const struct parser *p, const char *word)
{
	size_t n = strlen(word);

	return p->lx.tok.kind == T_IDENT && p->lx.tok.end - p->lx.tok.off == n &&
	       memcmp(p->lx.text + p->lx.tok.off, word, n) == 0;
}

/* Makes the dotted name starting at the current identifier, e.g.
 * "local.file.token.content", and leaves the token after it current. */
static int read_dotted(struct parser *p, struct strbuf *name)
{
	strbuf_init(name, MAX_NAME);
	for (;;) {
		strbuf_append(name, p->lx.text + p->lx.tok.off, p->lx.tok.end - p->lx.tok.off);
		if (alloy_lex_advance(&p->lx) < 0)
			return -1;
		if (!tok_is(p, '.'))
			break;
		strbuf_putc(name, '.');
		if (alloy_lex_advance(&p->lx) < 0)
			return -1;
		if (p->lx.tok.kind != T_IDENT)
			return alloy_lex_fail_at(&p->lx, where_of(&p->lx.tok),
						 "expected a name after '.'");
	}
	if (name->failed)
		return alloy_lex_fail_at(&p->lx, where_of(&p->lx.tok), "name is too long");
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
				return alloy_lex_fail_at(&p->lx, where_of(&p->lx.tok),
							 "nesting is too deep");
			stack[depth] = (char)closer_of(p->lx.tok.punct);
			opened[depth++] = where_of(&p->lx.tok);
		} else if (is_closer(p)) {
			if (p->lx.tok.punct != stack[depth - 1])
				return alloy_lex_fail_at(&p->lx, where_of(&p->lx.tok),
							 "unexpected '%c'; expected '%c'",
							 p->lx.tok.punct, stack[depth - 1]);
			depth--;
		} else if (p->lx.tok.kind == T_EOF) {
			return alloy_lex_fail_at(&p->lx, opened[depth - 1], "'%c' is never closed",
						 stack[depth - 1] == '}'   ? '{'
						 : stack[depth - 1] == ']' ? '['
									   : '(');
		}
		if (alloy_lex_advance(&p->lx) < 0)
			return -1;
	} while (depth > 0);
	return 0;
}

/* ---- values ------------------------------------------------------------- */

static bool is_operator(const struct parser *p)
{
	static const char ops[] = "+-*/%^!<>&|.([?:=";

	if (p->lx.tok.kind != T_PUNCT)
		return false;
	return p->lx.tok.punct >= 256 || strchr(ops, p->lx.tok.punct) != NULL;
}

static int reject_expression(struct parser *p)
{
	return alloy_lex_fail_at(
		&p->lx, where_of(&p->lx.tok),
		"expressions are not supported: operator '%.*s' (only literal values are accepted)",
		alloy_lex_tok_len(&p->lx.tok), p->lx.text + p->lx.tok.off);
}

static int parse_value(struct parser *p, json_t **out, int depth);

static int parse_number(struct parser *p, bool negative, json_t **out)
{
	const struct token *t = &p->lx.tok;
	char buf[128];
	size_t n = t->end - t->off;

	if (n >= sizeof(buf))
		return alloy_lex_fail_at(&p->lx, where_of(t), "number literal is too long");
	memcpy(buf, p->lx.text + t->off, n);
	buf[n] = '\0';
	if (strcspn(buf, ".eE") == n) {
		unsigned long long v;
		char *end;

		errno = 0;
		v = strtoull(buf, &end, 10);
		if (errno || *end || v > (unsigned long long)INT64_MAX + (negative ? 1u : 0u))
			return alloy_lex_fail_at(&p->lx, where_of(t),
						 "integer %s%s is out of range",
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
			return alloy_lex_fail_at(&p->lx, where_of(t), "number %s is out of range",
						 buf);
		*out = json_real(negative ? -d : d);
	}
	return *out ? 0 : alloy_lex_fail_oom(&p->lx);
}

static int parse_object(struct parser *p, json_t **out, int depth)
{
	struct where open = where_of(&p->lx.tok);
	json_t *obj = json_object(), *v = NULL;
	char *key = NULL;
	int rc = -1;

	if (!obj || alloy_lex_advance(&p->lx) < 0)
		goto out;
	while (!tok_is(p, '}')) {
		struct where kw = where_of(&p->lx.tok);

		if (p->lx.tok.kind == T_EOF) {
			alloy_lex_fail_at(&p->lx, open, "object is never closed");
			goto out;
		}
		if (p->lx.tok.kind == T_STRING)
			key = pw_strdup(p->lx.tok.str);
		else if (p->lx.tok.kind == T_IDENT)
			key = pw_strndup(p->lx.text + p->lx.tok.off, p->lx.tok.end - p->lx.tok.off);
		else {
			alloy_lex_fail_at(&p->lx, kw,
					  "expected an object key (a name or a string)");
			goto out;
		}
		if (!key || alloy_lex_advance(&p->lx) < 0)
			goto out;
		if (!tok_is(p, '=')) {
			alloy_lex_fail_at(&p->lx, where_of(&p->lx.tok),
					  "missing '=' after object key \"%s\"", key);
			goto out;
		}
		if (alloy_lex_advance(&p->lx) < 0 || parse_value(p, &v, depth + 1) < 0)
			goto out;
		if (json_object_get(obj, key)) {
			alloy_lex_fail_at(&p->lx, kw, "duplicate object key \"%s\"", key);
			goto out;
		}
		if (json_object_set_new(obj, key, v) < 0) {
			v = NULL;
			alloy_lex_fail_oom(&p->lx);
			goto out;
		}
		v = NULL;
		free(key);
		key = NULL;
		if (tok_is(p, ',')) {
			if (alloy_lex_advance(&p->lx) < 0)
				goto out;
		} else if (!tok_is(p, '}')) {
			alloy_lex_fail_at(&p->lx, where_of(&p->lx.tok),
					  "expected ',' or '}' in object");
			goto out;
		}
	}
	if (alloy_lex_advance(&p->lx) < 0)
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
	struct where open = where_of(&p->lx.tok);
	json_t *arr = json_array(), *v = NULL;
	int rc = -1;

	if (!arr || alloy_lex_advance(&p->lx) < 0)
		goto out;
	while (!tok_is(p, ']')) {
		if (p->lx.tok.kind == T_EOF) {
			alloy_lex_fail_at(&p->lx, open, "list is never closed");
			goto out;
		}
		if (parse_value(p, &v, depth + 1) < 0)
			goto out;
		if (json_array_append_new(arr, v) < 0) {
			v = NULL;
			alloy_lex_fail_oom(&p->lx);
			goto out;
		}
		v = NULL;
		if (tok_is(p, ',')) {
			if (alloy_lex_advance(&p->lx) < 0)
				goto out;
		} else if (!tok_is(p, ']')) {
			alloy_lex_fail_at(&p->lx, where_of(&p->lx.tok),
					  "expected ',' or ']' in list");
			goto out;
		}
	}
	if (alloy_lex_advance(&p->lx) < 0)
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
	struct where w = where_of(&p->lx.tok);
	struct strbuf name = STRBUF_INIT;
	int rc = -1;

	if (tok_ident(p, "true") || tok_ident(p, "false") || tok_ident(p, "null")) {
		*out = tok_ident(p, "null") ? json_null() : json_boolean(tok_ident(p, "true"));
		return alloy_lex_advance(&p->lx);
	}
	if (read_dotted(p, &name) < 0)
		goto out;
	if (tok_is(p, '('))
		alloy_lex_fail_at(&p->lx, w, "function calls are not supported: %s(...)",
				  name.data);
	else
		alloy_lex_fail_at(&p->lx, w, "references are not supported: %s", name.data);
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
		return alloy_lex_fail_at(&p->lx, where_of(&p->lx.tok), "nesting is too deep");
	switch (p->lx.tok.kind) {
	case T_STRING:
		*out = json_stringn(p->lx.tok.str, p->lx.tok.str_len);
		rc = *out ? alloy_lex_advance(&p->lx) : alloy_lex_fail_oom(&p->lx);
		break;
	case T_NUMBER:
		rc = parse_number(p, false, out);
		if (rc == 0)
			rc = alloy_lex_advance(&p->lx);
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
			struct where minus = where_of(&p->lx.tok);

			if (alloy_lex_advance(&p->lx) < 0)
				return -1;
			if (p->lx.tok.kind != T_NUMBER)
				return alloy_lex_fail_at(
					&p->lx, minus,
					"expressions are not supported: operator '-' (only "
					"literal values are accepted)");
			rc = parse_number(p, true, out);
			if (rc == 0)
				rc = alloy_lex_advance(&p->lx);
		} else if (is_operator(p)) {
			rc = reject_expression(p);
		} else {
			rc = alloy_lex_fail_at(
				&p->lx, where_of(&p->lx.tok), "missing value before '%.*s'",
				alloy_lex_tok_len(&p->lx.tok), p->lx.text + p->lx.tok.off);
		}
		break;
	default:
		rc = alloy_lex_fail_at(&p->lx, where_of(&p->lx.tok),
				       "missing value at end of file");
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
		return alloy_lex_fail_at(&p->lx, w, "%s is already set as an attribute", name);
	if (depth == 1 && strcmp(name, "endpoint") == 0) {
		arr = json_object_get(obj, name);
		if (!arr) {
			arr = json_array();
			if (!arr || json_object_set_new(obj, name, arr) < 0)
				return alloy_lex_fail_oom(&p->lx);
		}
		if (json_array_append_new(arr, *child) < 0) {
			*child = NULL;
			return alloy_lex_fail_oom(&p->lx);
		}
		*child = NULL;
	} else {
		if (kind)
			return alloy_lex_fail_at(&p->lx, w, "block %s may appear only once", name);
		if (json_object_set_new(obj, name, *child) < 0) {
			*child = NULL;
			return alloy_lex_fail_oom(&p->lx);
		}
		*child = NULL;
	}
	return json_object_set_new(kinds, name, json_true()) < 0 ? alloy_lex_fail_oom(&p->lx) : 0;
}

/* One statement inside a block body: `name = value` or `name { ... }`. */
static int parse_statement(struct parser *p, json_t *obj, json_t *kinds, int depth)
{
	struct where w = where_of(&p->lx.tok);
	char *name = pw_strndup(p->lx.text + p->lx.tok.off, p->lx.tok.end - p->lx.tok.off);
	json_t *v = NULL;
	int rc = -1;

	if (!name || alloy_lex_advance(&p->lx) < 0)
		goto out;
	if (tok_is(p, '=')) {
		if (alloy_lex_advance(&p->lx) < 0 || parse_value(p, &v, depth + 1) < 0)
			goto out;
		if (json_object_get(kinds, name)) {
			alloy_lex_fail_at(&p->lx, w,
					  json_is_true(json_object_get(kinds, name))
						  ? "%s is already given as a block"
						  : "attribute %s is set more than once",
					  name);
			goto out;
		}
		if (json_object_set_new(obj, name, v) < 0 ||
		    json_object_set_new(kinds, name, json_false()) < 0) {
			v = NULL;
			alloy_lex_fail_oom(&p->lx);
			goto out;
		}
		v = NULL;
	} else if (tok_is(p, '{')) {
		struct where open = where_of(&p->lx.tok);

		if (depth >= MAX_DEPTH) {
			alloy_lex_fail_at(&p->lx, open, "nesting is too deep");
			goto out;
		}
		v = json_object();
		if (!v || alloy_lex_advance(&p->lx) < 0 ||
		    parse_body(p, name, open, depth + 1, v) < 0 ||
		    add_block(p, obj, kinds, name, w, depth, &v) < 0)
			goto out;
	} else if (p->lx.tok.kind == T_STRING) {
		struct where lw = where_of(&p->lx.tok);

		if (alloy_lex_advance(&p->lx) < 0)
			goto out;
		if (tok_is(p, '{'))
			alloy_lex_fail_at(&p->lx, lw,
					  "block %s inside a component cannot have a label", name);
		else
			alloy_lex_fail_at(&p->lx, lw, "missing '=' after attribute name %s", name);
		goto out;
	} else if (tok_is(p, '.')) {
		alloy_lex_fail_at(&p->lx, where_of(&p->lx.tok), "expected '=' or '{' after %s",
				  name);
		goto out;
	} else {
		alloy_lex_fail_at(&p->lx, where_of(&p->lx.tok),
				  "missing '=' after attribute name %s", name);
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
		alloy_lex_fail_oom(&p->lx);
		goto out;
	}
	while (!tok_is(p, '}')) {
		if (p->lx.tok.kind == T_EOF) {
			alloy_lex_fail_at(&p->lx, open, "block %s is never closed", block);
			goto out;
		}
		if (!first && !p->lx.tok.nl_before) {
			alloy_lex_fail_at(&p->lx, where_of(&p->lx.tok),
					  "expected a line break before %s",
					  alloy_lex_describe(&p->lx, desc, sizeof(desc)));
			goto out;
		}
		if (p->lx.tok.kind != T_IDENT) {
			alloy_lex_fail_at(&p->lx, where_of(&p->lx.tok),
					  "expected an attribute or block name in %s, found %s",
					  block, alloy_lex_describe(&p->lx, desc, sizeof(desc)));
			goto out;
		}
		if (parse_statement(p, obj, kinds, depth) < 0)
			goto out;
		first = false;
	}
	if (alloy_lex_advance(&p->lx) < 0)
		goto out;
	rc = 0;
out:
	json_decref(kinds);
	return rc;
}

/* ---- the file ----------------------------------------------------------- */

static int add_label(struct parser *p, const char *label, struct where w)
{
	char **grown;

	for (size_t i = 0; i < p->nlabels; i++)
		if (strcmp(p->labels[i], label) == 0)
			return alloy_lex_fail_at(
				&p->lx, w, COMPONENT_NAME " \"%s\" is declared more than once",
				label);
	grown = realloc(p->labels, (p->nlabels + 1) * sizeof(*grown));
	if (!grown)
		return alloy_lex_fail_oom(&p->lx);
	p->labels = grown;
	p->labels[p->nlabels] = pw_strdup(label);
	if (!p->labels[p->nlabels])
		return alloy_lex_fail_oom(&p->lx);
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
	if (alloy_lex_advance(&p->lx) < 0)
		return -1;
	do {
		if (p->lx.tok.kind == T_EOF)
			break;
		if ((is_opener(p) ? skip_group(p) : alloy_lex_advance(&p->lx)) < 0)
			return -1;
	} while (!p->lx.tok.nl_before);
	return 0;
}

/* A pyroscope.write block whose opening brace is current: converted when
 * it is the one wanted, else stepped over. */
static int take_component(struct parser *p, const char *label, struct where w, const char *want,
			  bool list_only, json_t **result)
{
	struct where open = where_of(&p->lx.tok);
	json_t *obj;

	if (!label)
		return alloy_lex_fail_at(&p->lx, w,
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
		return alloy_lex_fail_oom(&p->lx);
	if (alloy_lex_advance(&p->lx) < 0 || parse_body(p, COMPONENT_NAME, open, 1, obj) < 0) {
		json_decref(obj);
		return -1;
	}
	*result = obj;
	return 0;
}

/* One top-level statement; the current token is its first name. */
static int parse_top_statement(struct parser *p, const char *want, bool list_only, json_t **result)
{
	struct where w = where_of(&p->lx.tok);
	struct strbuf name = STRBUF_INIT;
	char *label = NULL;
	int rc = -1;

	if (read_dotted(p, &name) < 0)
		goto out;
	if (tok_is(p, '=')) {
		rc = skip_attribute(p, name.data);
		goto out;
	}
	if (p->lx.tok.kind == T_STRING) {
		label = pw_strdup(p->lx.tok.str);
		if (!label) {
			alloy_lex_fail_oom(&p->lx);
			goto out;
		}
		if (alloy_lex_advance(&p->lx) < 0)
			goto out;
	}
	if (!tok_is(p, '{')) {
		if (label || strchr(name.data, '.'))
			alloy_lex_fail_at(&p->lx, where_of(&p->lx.tok), "expected '{' after %s",
					  name.data);
		else
			alloy_lex_fail_at(&p->lx, where_of(&p->lx.tok),
					  "missing '=' or '{' after %s", name.data);
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

	if (alloy_lex_start(&p->lx) < 0)
		return -1;
	while (p->lx.tok.kind != T_EOF) {
		struct where w = where_of(&p->lx.tok);

		if (!first && !p->lx.tok.nl_before)
			return alloy_lex_fail_at(&p->lx, w, "expected a line break before %s",
						 alloy_lex_describe(&p->lx, desc, sizeof(desc)));
		first = false;
		if (p->lx.tok.kind != T_IDENT)
			return alloy_lex_fail_at(&p->lx, w,
						 "expected a block or attribute name, found %s",
						 alloy_lex_describe(&p->lx, desc, sizeof(desc)));
		if (parse_top_statement(p, want, list_only, result) < 0)
			return -1;
	}
	return 0;
}

static void parser_free(struct parser *p)
{
	alloy_lex_free(&p->lx);
	alloy_labels_free(p->labels, p->nlabels);
}

/* Makes the final message for a selection that did not work out. */
static int selection_error(struct parser *p, const char *want)
{
	char *list = label_list(p);
	char *msg;

	if (!list)
		return alloy_lex_fail_oom(&p->lx);
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
		return alloy_lex_fail_oom(&p->lx);
	alloy_lex_fail_file(&p->lx, msg);
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
	if (p->lx.err) {
		*err = p->lx.err;
		p->lx.err = NULL;
	} else {
		*err = pw_strdup(p->lx.oom ? "out of memory" : "conversion failed");
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
	alloy_lex_init(&p.lx, text, len, filename);
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
		alloy_lex_fail_oom(&p.lx);
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
	alloy_lex_init(&p.lx, text, len, filename);
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
