/*
 * util/hex.c - the value of a hexadecimal digit, for the URL, query-string
 * and Alloy string decoders.
 */
#include "util/hex.h"

int pwx_hex_val(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
