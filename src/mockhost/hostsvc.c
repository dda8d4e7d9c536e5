/*
 * hostsvc.c - the services the mock host's commands share: the logger
 * handed to the plugin, the component_host they create instances with, and
 * reading files and configurations. main.c and run.c call down into it.
 */
#define _GNU_SOURCE
#include "hostsvc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloy/alloy.h"
#include "logfmt.h"
#include "pw_version.h"
#include "strbuf.h"

#define MAX_FILE (256u << 20)

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void mockhost_log(void *user, enum component_log_level level, const char *msg,
		  const struct component_log_field *fields, size_t n)
{
	FILE *f = user ? user : stderr;
	struct strbuf sb = STRBUF_INIT;

	mockhost_logfmt(&sb, level, msg, fields, n);
	if (sb.failed) {
		strbuf_free(&sb);
		return;
	}
	pthread_mutex_lock(&log_lock);
	fwrite(sb.data, 1, sb.len, f);
	fflush(f);
	pthread_mutex_unlock(&log_lock);
	strbuf_free(&sb);
}

int mockhost_parse_level(const char *s, enum component_log_level *out)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};

	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum component_log_level)i;
			return 0;
		}
	}
	return -1;
}

void mockhost_host_init(struct component_host *h, enum component_log_level level)
{
	memset(h, 0, sizeof(*h));
	h->struct_size = sizeof(*h);
	h->abi_major = COMPONENT_ABI_MAJOR;
	h->abi_minor = COMPONENT_ABI_MINOR;
	h->log = mockhost_log;
	h->log_user = NULL;
	h->log_level = level;
	h->instance_id = getenv("MOCKHOST_INSTANCE_ID");
	h->user_agent = "mockhost/" PW_VERSION;
}

/* ---- files and configuration ---- */

/*
 * Opens path for reading without ever blocking: O_NONBLOCK so that a FIFO
 * planted at the path cannot hold the caller (a reload, and a SIGTERM
 * waiting behind it) until a writer appears. Only regular files are read.
 */
static FILE *open_regular(const char *path, char **err)
{
	struct stat st;
	FILE *f = NULL;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		*err = pw_asprintf("cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		*err = pw_asprintf("cannot read %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		*err = pw_asprintf("cannot read %s: not a regular file", path);
		goto fail;
	}
	f = fdopen(fd, "rb");
	if (!f) {
		*err = pw_asprintf("cannot read %s: %s", path, strerror(errno));
		goto fail;
	}
	return f;
fail:
	close(fd);
	return NULL;
}

int mockhost_read_file(const char *path, char **data, size_t *len, char **err)
{
	FILE *f;
	struct strbuf sb;
	char buf[65536];
	size_t n;

	*data = NULL;
	*len = 0;
	f = open_regular(path, err);
	if (!f)
		return -1;
	strbuf_init(&sb, MAX_FILE);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (strbuf_append(&sb, buf, n) < 0) {
			*err = pw_asprintf("%s is larger than %u bytes", path, MAX_FILE);
			fclose(f);
			strbuf_free(&sb);
			return -1;
		}
	}
	if (ferror(f)) {
		*err = pw_asprintf("cannot read %s: %s", path, strerror(errno));
		fclose(f);
		strbuf_free(&sb);
		return -1;
	}
	fclose(f);
	*data = strbuf_detach(&sb, len);
	return 0;
}

void mockhost_notice(void *user, const char *msg)
{
	(void)user;
	fprintf(stderr, "mockhost: %s\n", msg);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

int mockhost_load_config(const char *path, const char *component, char **json, char **err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	*json = NULL;
	if (mockhost_read_file(path, &text, &len, err) < 0)
		return -1;
	if (!ends_with(path, ".alloy")) {
		*json = text;
		return 0;
	}
	rc = alloy_convert(text, len, path, component, json, err, mockhost_notice, NULL);
	free(text);
	return rc;
}
