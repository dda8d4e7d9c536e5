/*
 * retry.c - what one delivery attempt means, and when to try again.
 *
 * The push path follows the Connect unary protocol's client rules (error
 * bodies are JSON, with a fallback from the HTTP status), the ingest path
 * follows the legacy /ingest rules. Both feed the same backoff. Nothing
 * here does I/O or keeps state beyond the caller's structs.
 */
#include "retry.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strbuf.h"
#include "util/gzip.h"

/* Error bodies are a few hundred bytes; anything beyond this is not one. */
#define MAX_ERROR_BODY ((size_t)1 << 20)
/* How much of an /ingest error body goes into the error text. */
#define MAX_INGEST_MSG 2048
/* Retry-After values beyond this many seconds are treated as this many. */
#define MAX_RETRY_AFTER_S INT64_C(1000000000)
#define NS_PER_S INT64_C(1000000000)

static const char *const code_names[] = {
	[PW_CODE_OK] = "ok",
	[PW_CODE_CANCELED] = "canceled",
	[PW_CODE_UNKNOWN] = "unknown",
	[PW_CODE_INVALID_ARGUMENT] = "invalid_argument",
	[PW_CODE_DEADLINE_EXCEEDED] = "deadline_exceeded",
	[PW_CODE_NOT_FOUND] = "not_found",
	[PW_CODE_ALREADY_EXISTS] = "already_exists",
	[PW_CODE_PERMISSION_DENIED] = "permission_denied",
	[PW_CODE_RESOURCE_EXHAUSTED] = "resource_exhausted",
	[PW_CODE_FAILED_PRECONDITION] = "failed_precondition",
	[PW_CODE_ABORTED] = "aborted",
	[PW_CODE_OUT_OF_RANGE] = "out_of_range",
	[PW_CODE_UNIMPLEMENTED] = "unimplemented",
	[PW_CODE_INTERNAL] = "internal",
	[PW_CODE_UNAVAILABLE] = "unavailable",
	[PW_CODE_DATA_LOSS] = "data_loss",
	[PW_CODE_UNAUTHENTICATED] = "unauthenticated",
};

#define NCODES ((int)(sizeof(code_names) / sizeof(code_names[0])))

const char *pw_code_name(int code)
{
	if (code < 0 || code >= NCODES)
		return "unknown";
	return code_names[code];
}

int pw_code_parse(const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < NCODES; i++)
		if (strcmp(name, code_names[i]) == 0)
			return i;
	return -1;
}

int pw_code_from_http(long http_status)
{
	switch (http_status) {
	case 400:
		return PW_CODE_INTERNAL;
	case 401:
		return PW_CODE_UNAUTHENTICATED;
	case 403:
		return PW_CODE_PERMISSION_DENIED;
	case 404:
		return PW_CODE_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504:
		return PW_CODE_UNAVAILABLE;
	default:
		return PW_CODE_UNKNOWN;
	}
}

/* Standard reason phrases, as Go's net/http spells them. */
static const char *status_text(long status)
{
	static const struct {
		long code;
		const char *text;
	} table[] = {
		{200, "OK"},
		{201, "Created"},
		{202, "Accepted"},
		{203, "Non-Authoritative Information"},
		{204, "No Content"},
		{205, "Reset Content"},
		{206, "Partial Content"},
		{300, "Multiple Choices"},
		{301, "Moved Permanently"},
		{302, "Found"},
		{303, "See Other"},
		{304, "Not Modified"},
		{305, "Use Proxy"},
		{307, "Temporary Redirect"},
		{308, "Permanent Redirect"},
		{400, "Bad Request"},
		{401, "Unauthorized"},
		{402, "Payment Required"},
		{403, "Forbidden"},
		{404, "Not Found"},
		{405, "Method Not Allowed"},
		{406, "Not Acceptable"},
		{407, "Proxy Authentication Required"},
		{408, "Request Timeout"},
		{409, "Conflict"},
		{410, "Gone"},
		{411, "Length Required"},
		{412, "Precondition Failed"},
		{413, "Request Entity Too Large"},
		{414, "Request URI Too Long"},
		{415, "Unsupported Media Type"},
		{416, "Requested Range Not Satisfiable"},
		{417, "Expectation Failed"},
		{418, "I'm a teapot"},
		{421, "Misdirected Request"},
		{422, "Unprocessable Entity"},
		{423, "Locked"},
		{424, "Failed Dependency"},
		{425, "Too Early"},
		{426, "Upgrade Required"},
		{428, "Precondition Required"},
		{429, "Too Many Requests"},
		{431, "Request Header Fields Too Large"},
		{451, "Unavailable For Legal Reasons"},
		{500, "Internal Server Error"},
		{501, "Not Implemented"},
		{502, "Bad Gateway"},
		{503, "Service Unavailable"},
		{504, "Gateway Timeout"},
		{505, "HTTP Version Not Supported"},
		{506, "Variant Also Negotiates"},
		{507, "Insufficient Storage"},
		{508, "Loop Detected"},
		{510, "Not Extended"},
		{511, "Network Authentication Required"},
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].code == status)
			return table[i].text;
	return NULL;
}

/* "Bad Request", or "HTTP status 599" for a status without a phrase. */
static char *status_message(long status)
{
	const char *t = status_text(status);

	return t ? pw_strdup(t) : pw_asprintf("HTTP status %ld", status);
}

/*
 * Appends bytes for an error text: valid UTF-8 is kept, NUL and bytes that
 * are not UTF-8 are written as \xHH so a log line stays one readable string.
 */
static void append_safe(struct strbuf *sb, const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t run = 1;

		if (p[i] >= 0x80) {
			/* Find the length of the sequence this lead byte announces. */
			run = p[i] >= 0xF0 ? 4 : p[i] >= 0xE0 ? 3 : 2;
			if (run > n - i || !pw_utf8_valid((const char *)p + i, run))
				run = 0;
		} else if (p[i] == 0) {
			run = 0;
		}
		if (run == 0) {
			strbuf_printf(sb, "\\x%02X", p[i]);
			i++;
		} else {
			strbuf_append(sb, p + i, run);
			i += run;
		}
	}
}

static bool is_gzip(const struct pw_attempt *a)
{
	if (a->content_encoding && strcasecmp(a->content_encoding, "gzip") == 0)
		return true;
	return a->body_len >= 2 && a->body[0] == 0x1f && a->body[1] == 0x8b;
}

/*
 * The body to interpret: gunzipped into *owned when it is gzip, else the
 * body itself. Returns false when a gzip body cannot be decoded.
 */
static bool plain_body(const struct pw_attempt *a, const uint8_t **body, size_t *len,
		       uint8_t **owned)
{
	*owned = NULL;
	*body = a->body;
	*len = a->body ? a->body_len : 0;
	if (!*len || !is_gzip(a))
		return true;
	/* Bytes after the gzip member are ignored, as they always were here. */
	if (pwx_gunzip(a->body, a->body_len, MAX_ERROR_BODY, PWX_GUNZIP_ALLOW_TRAILING, owned,
		       len) < 0)
		return false;
	*body = *owned;
	return true;
}

/* Skips optional whitespace. */
static const char *ows(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* application/json, optionally with "; charset=utf-8". */
static bool is_json_type(const char *ct)
{
	if (!ct || strncasecmp(ct, "application/json", 16) != 0)
		return false;
	ct = ows(ct + 16);
	if (!*ct)
		return true;
	if (*ct != ';')
		return false;
	ct = ows(ct + 1);
	if (strncasecmp(ct, "charset=utf-8", 13) != 0)
		return false;
	return *ows(ct + 13) == '\0';
}

/*
 * Parses a Connect error body. Returns false when it is not a usable
 * {"code": string, "message": string} object; *code is -1 when the code is
 * absent or not one this protocol defines.
 */
static bool parse_connect_error(const uint8_t *body, size_t len, int *code, char **message)
{
	json_t *root, *c, *m;
	bool ok = false;

	*code = -1;
	*message = NULL;
	root = json_loadb((const char *)body, len, 0, NULL);
	if (!root || !json_is_object(root))
		goto out;
	c = json_object_get(root, "code");
	m = json_object_get(root, "message");
	if ((c && !json_is_string(c)) || (m && !json_is_string(m)))
		goto out;
	if (c)
		*code = pw_code_parse(json_string_value(c));
	if (*code == PW_CODE_OK)
		*code = -1;
	if (m && json_string_length(m) > 0) {
		struct strbuf sb = STRBUF_INIT;

		append_safe(&sb, (const uint8_t *)json_string_value(m), json_string_length(m));
		*message = strbuf_detach(&sb, NULL);
	}
	ok = true;
out:
	json_decref(root);
	return ok;
}

static bool code_retryable(int code, bool retry_on_429)
{
	switch (code) {
	case PW_CODE_UNKNOWN:
	case PW_CODE_INTERNAL:
	case PW_CODE_UNAVAILABLE:
	case PW_CODE_DATA_LOSS:
	case PW_CODE_ABORTED:
	case PW_CODE_DEADLINE_EXCEEDED:
		return true;
	case PW_CODE_RESOURCE_EXHAUSTED:
		return retry_on_429;
	default:
		return false;
	}
}

/* Whether an application/<codec>[;params] content type names the proto codec. */
static bool codec_is_proto(const char *ct, bool *is_application)
{
	const char *c, *end;

	*is_application = ct && strncasecmp(ct, "application/", 12) == 0;
	if (!*is_application)
		return false;
	c = ct + 12;
	end = strchr(c, ';');
	if (!end)
		end = c + strlen(c);
	while (end > c && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return end - c == 5 && strncasecmp(c, "proto", 5) == 0;
}

static enum pw_verdict push_transport(const struct pw_attempt *a, int *code, char **msg)
{
	switch (a->transport) {
	case PW_TRANSPORT_TIMEOUT:
		*code = PW_CODE_DEADLINE_EXCEEDED;
		*msg = pw_strdup("context deadline exceeded");
		return PW_VERDICT_RETRY;
	case PW_TRANSPORT_CANCELED:
		*code = PW_CODE_CANCELED;
		*msg = pw_strdup("context canceled");
		return PW_VERDICT_DROP;
	default:
		*code = PW_CODE_UNAVAILABLE;
		*msg = pw_strdup(a->transport_error && *a->transport_error ? a->transport_error
									   : "transport error");
		return PW_VERDICT_RETRY;
	}
}

/* A 200 answer: delivered only when it speaks the codec that was sent. */
static enum pw_verdict push_ok_status(const struct pw_attempt *a, int *code, char **msg)
{
	struct strbuf sb = STRBUF_INIT;
	bool application;

	if (codec_is_proto(a->content_type, &application))
		return PW_VERDICT_DELIVERED;
	/* Not a Connect answer at all (a proxy page): unknown; a Connect answer
	 * in another codec: internal. Both are retried. */
	*code = application ? PW_CODE_INTERNAL : PW_CODE_UNKNOWN;
	strbuf_puts(&sb, "invalid content-type: \"");
	if (a->content_type)
		append_safe(&sb, (const uint8_t *)a->content_type, strlen(a->content_type));
	strbuf_puts(&sb, "\"; expecting \"application/proto\"");
	*msg = strbuf_detach(&sb, NULL);
	return PW_VERDICT_RETRY;
}

/* A non-200 answer: the Connect error body, else the HTTP status. */
static enum pw_verdict push_error_status(const struct pw_attempt *a, bool retry_on_429, int *code,
					 char **msg)
{
	const uint8_t *body;
	size_t len;
	uint8_t *owned = NULL;
	bool from_status = true;

	*code = -1;
	if (is_json_type(a->content_type) && plain_body(a, &body, &len, &owned)) {
		if (!parse_connect_error(body, len, code, msg))
			*code = -1;
		free(owned);
	}
	if (*code >= 0)
		from_status = false;
	else
		*code = pw_code_from_http(a->http_status);
	if (!*msg)
		*msg = status_message(a->http_status);

	/*
	 * A code derived from the HTTP status (no usable Connect error) comes
	 * from a proxy or load balancer: a 400 there will not get better by
	 * resending, and a 429 is rate limiting like resource_exhausted. The
	 * code and the text keep Connect's fallback ("internal: Bad Request",
	 * "unavailable: Too Many Requests"); only the verdict differs from the reference (a plain 400 is final).
	 * This also covers a JSON body whose code is missing or unknown.
	 */
	if (from_status && a->http_status == 400)
		return PW_VERDICT_DROP;
	if (from_status && a->http_status == 429)
		return retry_on_429 ? PW_VERDICT_RETRY : PW_VERDICT_DROP;
	return code_retryable(*code, retry_on_429) ? PW_VERDICT_RETRY : PW_VERDICT_DROP;
}

enum pw_verdict pw_classify_push(const struct pw_attempt *a, bool retry_on_429, int *code,
				 char **err)
{
	enum pw_verdict v;
	int c = PW_CODE_OK;
	char *msg = NULL;

	if (a->transport != PW_TRANSPORT_OK)
		v = push_transport(a, &c, &msg);
	else if (a->http_status == 200)
		v = push_ok_status(a, &c, &msg);
	else
		v = push_error_status(a, retry_on_429, &c, &msg);

	if (code)
		*code = v == PW_VERDICT_DELIVERED ? PW_CODE_OK : c;
	if (err) {
		*err = NULL;
		if (v != PW_VERDICT_DELIVERED)
			*err = pw_asprintf("%s: %s", pw_code_name(c), msg ? msg : "");
	}
	free(msg);
	return v;
}

enum pw_verdict pw_classify_ingest(const struct pw_attempt *a, bool retry_on_429, char **err)
{
	enum pw_verdict v;
	struct strbuf sb = STRBUF_INIT;
	const uint8_t *body;
	size_t len;
	uint8_t *owned = NULL;

	if (err)
		*err = NULL;
	switch (a->transport) {
	case PW_TRANSPORT_OK:
		break;
	case PW_TRANSPORT_TIMEOUT:
		if (err)
			*err = pw_strdup("deadline_exceeded: context deadline exceeded");
		return PW_VERDICT_RETRY;
	case PW_TRANSPORT_CANCELED:
		if (err)
			*err = pw_strdup("canceled: context canceled");
		return PW_VERDICT_DROP;
	default:
		if (err)
			*err = pw_asprintf("unknown: %s", a->transport_error && *a->transport_error
								  ? a->transport_error
								  : "transport error");
		return PW_VERDICT_RETRY;
	}

	if (a->http_status >= 200 && a->http_status <= 299)
		return PW_VERDICT_DELIVERED;
	if (a->http_status == 429)
		v = retry_on_429 ? PW_VERDICT_RETRY : PW_VERDICT_DROP;
	else if (a->http_status == 408 || a->http_status >= 500)
		v = PW_VERDICT_RETRY;
	else
		v = PW_VERDICT_DROP;
	if (!err)
		return v;

	/* A gzip body that does not decode is quoted as received. */
	if (!plain_body(a, &body, &len, &owned)) {
		body = a->body;
		len = a->body_len;
	}
	strbuf_printf(&sb, "remote error: pyroscope write error: status=%ld msg=", a->http_status);
	if (body)
		append_safe(&sb, body, len > MAX_INGEST_MSG ? MAX_INGEST_MSG : len);
	free(owned);
	*err = strbuf_detach(&sb, NULL);
	return v;
}

/* ---- Retry-After ------------------------------------------------------- */

static int parse_digits(const char **s, int ndigits, int *out)
{
	int v = 0;

	for (int i = 0; i < ndigits; i++) {
		if ((*s)[i] < '0' || (*s)[i] > '9')
			return -1;
		v = v * 10 + ((*s)[i] - '0');
	}
	*s += ndigits;
	*out = v;
	return 0;
}

static int parse_month(const char **s)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

	for (int i = 0; i < 12; i++)
		if (strncmp(*s, months + 3 * i, 3) == 0) {
			*s += 3;
			return i + 1;
		}
	return -1;
}

static bool expect(const char **s, const char *lit)
{
	size_t n = strlen(lit);

	if (strncmp(*s, lit, n) != 0)
		return false;
	*s += n;
	return true;
}

/* "HH:MM:SS" */
static int parse_clock(const char **s, int *h, int *m, int *sec)
{
	if (parse_digits(s, 2, h) < 0 || !expect(s, ":") || parse_digits(s, 2, m) < 0 ||
	    !expect(s, ":") || parse_digits(s, 2, sec) < 0)
		return -1;
	return 0;
}

/* Skips a day name ("Sun" or "Sunday"); the date itself is authoritative. */
static bool skip_day_name(const char **s, bool long_form)
{
	static const char *const days[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
					   "Thursday", "Friday", "Saturday"};

	for (int i = 0; i < 7; i++) {
		size_t n = long_form ? strlen(days[i]) : 3;

		if (strncmp(*s, days[i], n) == 0) {
			*s += n;
			return true;
		}
	}
	return false;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * HTTP-date in its three forms (RFC 9110 5.6.7):
 *   Sun, 06 Nov 1994 08:49:37 GMT   (IMF-fixdate)
 *   Sunday, 06-Nov-94 08:49:37 GMT  (RFC 850)
 *   Sun Nov  6 08:49:37 1994        (asctime)
 */
static int parse_http_date(const char *s, int64_t *unix_s)
{
	int day, mon, year, h, m, sec;
	const char *p = s;

	if (skip_day_name(&p, false) && expect(&p, ", ")) {
		if (parse_digits(&p, 2, &day) < 0 || !expect(&p, " ") ||
		    (mon = parse_month(&p)) < 0 || !expect(&p, " ") ||
		    parse_digits(&p, 4, &year) < 0 || !expect(&p, " ") ||
		    parse_clock(&p, &h, &m, &sec) < 0 || !expect(&p, " GMT"))
			return -1;
	} else if ((p = s, skip_day_name(&p, true)) && expect(&p, ", ")) {
		if (parse_digits(&p, 2, &day) < 0 || !expect(&p, "-") ||
		    (mon = parse_month(&p)) < 0 || !expect(&p, "-") ||
		    parse_digits(&p, 2, &year) < 0 || !expect(&p, " ") ||
		    parse_clock(&p, &h, &m, &sec) < 0 || !expect(&p, " GMT"))
			return -1;
		year += year < 70 ? 2000 : 1900;
	} else if ((p = s, skip_day_name(&p, false)) && expect(&p, " ")) {
		if ((mon = parse_month(&p)) < 0 || !expect(&p, " "))
			return -1;
		if (*p == ' ')
			p++; /* single-digit days are space-padded */
		if (parse_digits(&p, *p && p[1] >= '0' && p[1] <= '9' ? 2 : 1, &day) < 0 ||
		    !expect(&p, " ") || parse_clock(&p, &h, &m, &sec) < 0 || !expect(&p, " ") ||
		    parse_digits(&p, 4, &year) < 0)
			return -1;
	} else {
		return -1;
	}
	if (*ows(p) != '\0' || day < 1 || day > 31 || h > 23 || m > 59 || sec > 60)
		return -1;
	*unix_s = days_from_civil(year, mon, day) * 86400 + h * 3600 + m * 60 + sec;
	return 0;
}

int64_t pw_retry_after_parse(const char *value, int64_t now_unix_s)
{
	const char *s;
	int64_t secs = 0;

	if (!value)
		return -1;
	s = ows(value);
	if (*s >= '0' && *s <= '9') {
		for (; *s >= '0' && *s <= '9'; s++)
			if (secs < MAX_RETRY_AFTER_S)
				secs = secs * 10 + (*s - '0');
		if (*ows(s) != '\0')
			return -1;
	} else {
		int64_t when;

		if (parse_http_date(s, &when) < 0 || when <= now_unix_s)
			return -1;
		/* Both are bounded well below overflow: now is a real clock. */
		if (now_unix_s < 0 || when - now_unix_s > MAX_RETRY_AFTER_S)
			secs = MAX_RETRY_AFTER_S;
		else
			secs = when - now_unix_s;
	}
	if (secs <= 0)
		return -1;
	if (secs > MAX_RETRY_AFTER_S)
		secs = MAX_RETRY_AFTER_S;
	return secs * NS_PER_S;
}

/* ---- backoff ----------------------------------------------------------- */

/* min(2v, max) without overflowing. */
static int64_t double_capped(int64_t v, int64_t max)
{
	if (v > max / 2)
		return max;
	return 2 * v;
}

void pw_backoff_init(struct pw_backoff *b, int64_t min_ns, int64_t max_ns, int64_t max_retries)
{
	if (min_ns < 0)
		min_ns = 0;
	if (max_ns < 0)
		max_ns = 0;
	b->min_ns = min_ns;
	b->max_ns = max_ns;
	b->lo_ns = min_ns;
	b->hi_ns = double_capped(min_ns, max_ns);
	b->max_retries = max_retries;
	b->count = 0;
}

int64_t pw_backoff_next(struct pw_backoff *b, uint64_t rnd)
{
	int64_t delay;

	if (b->count < INT64_MAX)
		b->count++;
	/* 0 means unlimited; a negative limit allows no retry at all. */
	if (b->max_retries != 0 && b->count >= b->max_retries)
		return -1;
	if (b->lo_ns >= b->hi_ns) {
		delay = b->lo_ns;
	} else {
		delay = b->lo_ns + (int64_t)(rnd % (uint64_t)(b->hi_ns - b->lo_ns));
		if (b->hi_ns < b->max_ns) {
			b->lo_ns = double_capped(b->lo_ns, b->max_ns);
			b->hi_ns = double_capped(b->hi_ns, b->max_ns);
		}
	}
	return delay;
}
