/*
 * strbuf.h - a growable byte buffer with a hard cap.
 *
 * Every append either fits under the cap or fails without changing the
 * buffer, so a caller can never grow memory without bound by accident.
 */
#ifndef PW_STRBUF_H
#define PW_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *data; /* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap; /* allocated bytes */
	size_t limit; /* maximum len; 0 means STRBUF_DEFAULT_LIMIT */
	bool failed; /* an append hit the limit or ran out of memory */
};

#define STRBUF_DEFAULT_LIMIT ((size_t)64 << 20)
#define STRBUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0, 0, false                                                               \
	}

void strbuf_init(struct strbuf *sb, size_t limit);
int strbuf_append(struct strbuf *sb, const void *data, size_t len);
int strbuf_puts(struct strbuf *sb, const char *s);
int strbuf_putc(struct strbuf *sb, char c);
int strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int strbuf_vprintf(struct strbuf *sb, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Hands the (possibly NULL if empty) string to the caller and resets sb.
 * Returns an empty malloc'd string rather than NULL when nothing was added. */
char *strbuf_detach(struct strbuf *sb, size_t *len);
void strbuf_reset(struct strbuf *sb);
void strbuf_free(struct strbuf *sb);

/* Small helpers used across modules. */
char *pw_strdup(const char *s); /* NULL-safe strdup */
char *pw_strndup(const char *s, size_t n);
char *pw_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool pw_utf8_valid(const char *s, size_t len);
/* Wipes memory in a way the compiler cannot drop. */
void pw_memzero(void *p, size_t n);

#endif /* PW_STRBUF_H */
