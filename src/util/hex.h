/*
 * util/hex.h - the value of a hexadecimal digit.
 */
#ifndef PW_UTIL_HEX_H
#define PW_UTIL_HEX_H

/* 0 to 15 for '0'-'9', 'a'-'f' and 'A'-'F'; -1 for any other byte. */
int pwx_hex_val(int c);

#endif /* PW_UTIL_HEX_H */
