/*
 * duration.c - Go-syntax durations ("1m30s", "500ms", "-1.5h").
 *
 * The grammar and the arithmetic follow Go's time.ParseDuration and
 * Duration.String exactly, so a value copied from an Alloy configuration
 * means the same thing here and prints back the same way.
 */
#include "duration.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define NS_US UINT64_C(1000)
#define NS_MS UINT64_C(1000000)
#define NS_S UINT64_C(1000000000)
#define NS_M (NS_S * 60)
#define NS_H (NS_M * 60)

/* 1 << 63: the magnitude of INT64_MIN, reachable only with a minus sign. */
#define MAG_LIMIT (UINT64_C(1) << 63)

struct unit {
	const char *name;
	uint64_t ns;
};

static const struct unit units[] = {
	{"ns", 1},
	{"us", NS_US},
	{"\xc2\xb5s", NS_US}, /* U+00B5 MICRO SIGN */
	{"\xce\xbcs", NS_US}, /* U+03BC GREEK SMALL LETTER MU */
	{"ms", NS_MS},
	{"s", NS_S},
	{"m", NS_M},
	{"h", NS_H},
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Consumes leading digits into *v; false on overflow past 1 << 63. */
static bool leading_int(const char **sp, uint64_t *v)
{
	const char *s = *sp;
	uint64_t x = 0;

	for (; is_digit(*s); s++) {
		if (x > (MAG_LIMIT - 1) / 10)
			return false;
		x = x * 10 + (uint64_t)(*s - '0');
		if (x > MAG_LIMIT)
			return false;
	}
	*sp = s;
	*v = x;
	return true;
}

/* Consumes fraction digits; digits past what fits are read but dropped,
 * which only loses precision below a nanosecond. */
static void leading_fraction(const char **sp, uint64_t *f, double *scale)
{
	const char *s = *sp;
	bool overflow = false;
	uint64_t x = 0;
	double sc = 1;

	for (; is_digit(*s); s++) {
		if (overflow)
			continue;
		if (x > (UINT64_MAX >> 1) / 10) {
			overflow = true;
			continue;
		}
		x = x * 10 + (uint64_t)(*s - '0');
		if (x > (UINT64_MAX >> 1)) {
			overflow = true;
			continue;
		}
		sc *= 10;
	}
	*sp = s;
	*f = x;
	*scale = sc;
}

static const struct unit *find_unit(const char *u, size_t n)
{
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0)
			return &units[i];
	return NULL;
}

int pw_duration_parse(const char *s, int64_t *out, const char **why)
{
	const char *dummy;
	uint64_t d = 0;
	bool neg = false;

	if (!why)
		why = &dummy;
	if (!s || !*s) {
		*why = "empty duration";
		return -1;
	}
	if (*s == '-' || *s == '+') {
		neg = *s == '-';
		s++;
	}
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	if (!*s) {
		*why = "invalid duration";
		return -1;
	}
	while (*s) {
		const struct unit *u;
		const char *start;
		uint64_t v = 0, f = 0;
		double scale = 1;
		bool pre, post = false;
		size_t n = 0;

		if (!(*s == '.' || is_digit(*s))) {
			*why = "invalid duration";
			return -1;
		}
		start = s;
		if (!leading_int(&s, &v)) {
			*why = "duration out of range";
			return -1;
		}
		pre = s != start;
		if (*s == '.') {
			s++;
			start = s;
			leading_fraction(&s, &f, &scale);
			post = s != start;
		}
		if (!pre && !post) {
			*why = "invalid duration";
			return -1;
		}
		while (s[n] && s[n] != '.' && !is_digit(s[n]))
			n++;
		if (n == 0) {
			*why = "missing unit in duration";
			return -1;
		}
		u = find_unit(s, n);
		if (!u) {
			*why = "unknown unit in duration";
			return -1;
		}
		s += n;
		if (v > MAG_LIMIT / u->ns) {
			*why = "duration out of range";
			return -1;
		}
		v *= u->ns;
		if (f > 0) {
			/* Same float arithmetic as Go so results match bit for bit. */
			v += (uint64_t)((double)f * ((double)u->ns / scale));
			if (v > MAG_LIMIT) {
				*why = "duration out of range";
				return -1;
			}
		}
		d += v;
		if (d > MAG_LIMIT) {
			*why = "duration out of range";
			return -1;
		}
	}
	if (neg) {
		*out = d == MAG_LIMIT ? INT64_MIN : -(int64_t)d;
		return 0;
	}
	if (d > MAG_LIMIT - 1) {
		*why = "duration out of range";
		return -1;
	}
	*out = (int64_t)d;
	return 0;
}

/* Writes the fraction of v with prec digits, omitting trailing zeros, right
 * to left ending before buf[w]; returns the new w and v without the digits. */
static size_t fmt_frac(char *buf, size_t w, uint64_t *v, int prec)
{
	bool print = false;

	for (int i = 0; i < prec; i++) {
		unsigned digit = (unsigned)(*v % 10);

		print = print || digit != 0;
		if (print)
			buf[--w] = (char)('0' + digit);
		*v /= 10;
	}
	if (print)
		buf[--w] = '.';
	return w;
}

static size_t fmt_int(char *buf, size_t w, uint64_t v)
{
	if (v == 0) {
		buf[--w] = '0';
		return w;
	}
	while (v > 0) {
		buf[--w] = (char)('0' + v % 10);
		v /= 10;
	}
	return w;
}

void pw_duration_format(int64_t ns, char *out, size_t len)
{
	char buf[40];
	size_t w = sizeof(buf);
	bool neg = ns < 0;
	uint64_t u = neg ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;

	if (!out || len == 0)
		return;
	if (u < NS_S) {
		int prec;

		buf[--w] = 's';
		if (u == 0) {
			buf[--w] = '0';
			goto done;
		} else if (u < NS_US) {
			prec = 0;
			buf[--w] = 'n';
		} else if (u < NS_MS) {
			prec = 3;
			buf[--w] = '\xb5';
			buf[--w] = '\xc2';
		} else {
			prec = 6;
			buf[--w] = 'm';
		}
		w = fmt_frac(buf, w, &u, prec);
		w = fmt_int(buf, w, u);
	} else {
		buf[--w] = 's';
		w = fmt_frac(buf, w, &u, 9);
		w = fmt_int(buf, w, u % 60);
		u /= 60;
		if (u > 0) {
			buf[--w] = 'm';
			w = fmt_int(buf, w, u % 60);
			u /= 60;
			if (u > 0) {
				buf[--w] = 'h';
				w = fmt_int(buf, w, u);
			}
		}
	}
	if (neg)
		buf[--w] = '-';
done:
	snprintf(out, len, "%.*s", (int)(sizeof(buf) - w), buf + w);
}
