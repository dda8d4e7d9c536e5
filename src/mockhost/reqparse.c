/*
 * reqparse.c - the request header values `mockhost run` parses itself; see
 * reqparse.h. Kept apart from run_http.c so that the fuzzer and the unit
 * tests reach them without a listener or a component.
 */
#include <strings.h>

#include "reqparse.h"

const char *reqparse_media_type(const char *ct, char *buf, size_t len)
{
	size_t n = 0;

	if (!ct)
		ct = "";
	while (*ct == ' ' || *ct == '\t')
		ct++;
	while (ct[n] && ct[n] != ';' && ct[n] != ' ' && ct[n] != '\t' && n + 1 < len) {
		char c = ct[n];

		buf[n] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		n++;
	}
	buf[n] = '\0';
	return buf;
}

int reqparse_timeout_ms(const char *s, int64_t *ms)
{
	int64_t v = 0;
	size_t n = 0;

	/* Counted as it is read: the value may be as long as a header. */
	for (; s[n]; n++) {
		if (n == 10 || s[n] < '0' || s[n] > '9')
			return -1;
		v = v * 10 + (s[n] - '0');
	}
	if (n == 0)
		return -1;
	*ms = v;
	return 0;
}

enum reqparse_encoding reqparse_encoding(const char *enc)
{
	if (!enc || strcasecmp(enc, "identity") == 0)
		return REQPARSE_ENC_IDENTITY;
	if (strcasecmp(enc, "gzip") == 0)
		return REQPARSE_ENC_GZIP;
	return REQPARSE_ENC_OTHER;
}
