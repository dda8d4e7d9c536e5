/*
 * alloy_lex.h - the scanner shared by alloy.c (parser) and alloy_lex.c.
 * Internal to the Alloy converter.
 *
 * The scanner also owns the error state: the first failure reported
 * through alloy_lex_fail_* is kept, later ones are ignored, so the
 * message always names the place where things first went wrong.
 */
#ifndef PW_MOCKHOST_ALLOY_LEX_H
#define PW_MOCKHOST_ALLOY_LEX_H

#include <stdbool.h>
#include <stddef.h>

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

struct lexer {
	const char *text; /* borrowed; need not be NUL-terminated */
	size_t len;
	const char *filename; /* borrowed; NULL for none */
	size_t pos, line, line_start;
	struct token tok; /* the current token */
	char *err; /* the first error message, owned */
	bool oom;
};

/* A remembered source position for messages about earlier tokens. */
struct where {
	size_t off, line, line_start;
};

static inline struct where where_of(const struct token *t)
{
	struct where w = {t->off, t->line, t->line_start};
	return w;
}

/* Sets up lx over text/len (NULL text reads as empty); nothing to fail. */
void alloy_lex_init(struct lexer *lx, const char *text, size_t len, const char *filename);

/* Skips a UTF-8 byte order mark, checks that the whole input is valid
 * UTF-8 and reads the first token. Returns 0 or -1 (error recorded). */
int alloy_lex_start(struct lexer *lx);

/* Replaces lx->tok with the next token. Returns 0 or -1 (error recorded). */
int alloy_lex_advance(struct lexer *lx);

/* Frees the current token and the error message; lx may be reused after
 * alloy_lex_init. */
void alloy_lex_free(struct lexer *lx);

/*
 * Record an error unless one is already recorded; all return -1 so that
 * callers can `return alloy_lex_fail_at(...)`. fail_at prefixes
 * "FILE:LINE:COL: " (or "LINE:COL: "), fail_file only "FILE: ", and
 * fail_oom just sets lx->oom.
 */
int alloy_lex_fail_at(struct lexer *lx, struct where w, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int alloy_lex_fail_file(struct lexer *lx, const char *msg);
int alloy_lex_fail_oom(struct lexer *lx);

/* The length of t's source text for "%.*s", capped at 40 characters. */
int alloy_lex_tok_len(const struct token *t);

/* Names the current token for a message ("end of file", "a string", or
 * the quoted source text) in buf of size bytes, or a static string. */
const char *alloy_lex_describe(const struct lexer *lx, char *buf, size_t size);

#endif /* PW_MOCKHOST_ALLOY_LEX_H */
