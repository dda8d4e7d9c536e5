/*
 * util/jsonstr.h - a C string as a quoted JSON string.
 */
#ifndef PW_UTIL_JSONSTR_H
#define PW_UTIL_JSONSTR_H

#include "strbuf.h"

/* Escape \n, \r and \t in their short forms; without it they are written
 * as \u000a, \u000d and \u0009 like every other control byte. */
#define PWX_JSON_SHORT_ESCAPES 1u

/*
 * Appends s to sb between double quotes: '"' and '\' are backslashed,
 * bytes below 0x20 become \u00xx (lowercase hex) or, with
 * PWX_JSON_SHORT_ESCAPES, \n \r \t; every other byte is copied as is (the
 * caller vouches for UTF-8). A NULL s is written as "". Failures show in
 * sb->failed, as for every strbuf append.
 */
void pwx_json_quote(struct strbuf *sb, const char *s, unsigned flags);

#endif /* PW_UTIL_JSONSTR_H */
