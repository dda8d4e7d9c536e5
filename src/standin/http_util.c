/*
 * http_util.c - the helpers around the stand-in's HTTP server: header
 * lookup, response building, reason phrases and listen addresses.
 */
#define _GNU_SOURCE
#include "standin/http_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "strbuf.h"

#define READ_CHUNK 16384

const char *standin_http_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Entity";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 499:
		return "Client Closed Request";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

const char *standin_http_header(const struct standin_header *h, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(h[i].name, name) == 0)
			return h[i].value;
	return NULL;
}

int standin_http_add_header(struct standin_http_response *r, const char *name, const char *value)
{
	struct standin_header *nh;
	char *n = pw_strdup(name), *v = pw_strdup(value);

	nh = (n && v) ? realloc(r->headers, (r->nheaders + 1) * sizeof(*nh)) : NULL;
	if (!nh) {
		free(n);
		free(v);
		return -1;
	}
	r->headers = nh;
	nh[r->nheaders].name = n;
	nh[r->nheaders].value = v;
	r->nheaders++;
	return 0;
}

int standin_http_set_body(struct standin_http_response *r, const void *data, size_t len)
{
	uint8_t *b = malloc(len ? len : 1);

	if (!b)
		return -1;
	if (len)
		memcpy(b, data, len);
	free(r->body);
	r->body = b;
	r->body_len = len;
	return 0;
}

void standin_http_response_free(struct standin_http_response *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

int standin_split_listen(const char *arg, char **addr, int *port)
{
	const char *colon, *host = arg;
	size_t hostlen;
	char *end;
	long p;

	if (*arg == '[') {
		const char *rb = strchr(arg, ']');

		if (!rb || rb[1] != ':')
			return -1;
		host = arg + 1;
		hostlen = (size_t)(rb - host);
		colon = rb + 1;
	} else {
		colon = strrchr(arg, ':');
		if (!colon)
			return -1;
		hostlen = (size_t)(colon - arg);
	}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || p < 0 || p > 65535)
		return -1;
	*addr = hostlen ? pw_strndup(host, hostlen) : pw_strdup("127.0.0.1");
	*port = (int)p;
	return *addr ? 0 : -1;
}
