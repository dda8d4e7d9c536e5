/*
 * qstore_inspect.c - a read-only look at a queue directory: no lock taken,
 * nothing changed, every segment scanned (a diagnostic may read it all).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qstore.h"
#include "qstore_format.h"
#include "util/clock.h"
#include "util/jsonstr.h"

#define MAX_WHERE 100

struct icursor {
	struct pwq_curent e;
	uint64_t records;
	int64_t oldest_ms;
	bool seen;
};

struct inspect {
	struct strbuf *out;
	struct icursor *cur;
	size_t ncur;
	char segname[24];
	bool last_seg;
	uint64_t seg_len, seg_records, seg_first, seg_last, seg_damaged;
	uint64_t records, lost, spans, nwhere, torn, first_seq, prev_seq, first_cum, last_cum;
	bool any;
	struct strbuf where;
};

static void on_event(void *arg, const struct pwq_scan_ev *ev)
{
	struct inspect *s = arg;

	if (ev->kind == PWQ_SCAN_DAMAGE) {
		if (s->last_seg && ev->off + ev->size == s->seg_len) {
			s->torn += ev->size; /* cut at the next open, never acknowledged */
			return;
		}
		s->spans++;
		s->seg_damaged += ev->size;
		if (s->nwhere++ < MAX_WHERE)
			strbuf_printf(&s->where,
				      "%s{\"segment\":\"%s\",\"offset\":%" PRIu64
				      ",\"bytes\":%" PRIu64 "}",
				      s->nwhere > 1 ? "," : "", s->segname, ev->off, ev->size);
		return;
	}
	if (s->any && ev->rec.seq <= s->prev_seq)
		return; /* a stale copy: the store never reads it twice */
	if (s->any && ev->rec.seq > s->prev_seq + 1)
		s->lost += ev->rec.seq - s->prev_seq - 1;
	if (!s->any) {
		s->first_cum = ev->rec.cum - ev->rec.nprofiles;
		s->first_seq = ev->rec.seq;
	}
	if (!s->seg_records)
		s->seg_first = ev->rec.seq;
	s->any = true;
	s->prev_seq = s->seg_last = ev->rec.seq;
	s->last_cum = ev->rec.cum;
	s->seg_records++;
	s->records++;
	for (size_t k = 0; k < s->ncur; k++) {
		struct icursor *c = &s->cur[k];

		if (ev->rec.seq < c->e.seq)
			continue;
		c->records++;
		if (!c->seen)
			c->oldest_ms = ev->rec.created_ms;
		c->seen = true;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The segment ids in dir, sorted. */
static int list_ids(int dirfd, uint64_t **ids, size_t *n)
{
	DIR *d = fdopendir(dup(dirfd));
	struct dirent *de;
	size_t cap = 0;

	*ids = NULL;
	*n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		uint64_t id;

		if (!pwq_seg_parse(de->d_name, &id))
			continue;
		if (*n == cap) {
			uint64_t *p = realloc(*ids, (cap = cap ? cap * 2 : 16) * sizeof(*p));

			if (!p) {
				closedir(d);
				return -1;
			}
			*ids = p;
		}
		(*ids)[(*n)++] = id;
	}
	closedir(d);
	qsort(*ids, *n, sizeof(**ids), cmp_u64);
	return 0;
}

static void scan_one(struct inspect *s, int dirfd, uint64_t id, bool last)
{
	struct pwq_scan_res res = {0};
	struct stat st;
	void *map = NULL;
	int fd;

	pwq_seg_name(s->segname, id);
	s->seg_len = 0;
	fd = openat(dirfd, s->segname, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		strbuf_printf(s->out, "{\"file\":\"%s\",\"error\":", s->segname);
		pwx_json_quote(s->out, strerror(errno), 0);
		strbuf_putc(s->out, '}');
		if (fd >= 0)
			close(fd);
		return;
	}
	s->last_seg = last;
	s->seg_len = (uint64_t)st.st_size;
	s->seg_records = s->seg_first = s->seg_last = s->seg_damaged = 0;
	if (st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED)
			map = NULL;
	}
	if (map || st.st_size == 0)
		pwq_scan_segment(map, (size_t)st.st_size, on_event, s, &res);
	if (map)
		munmap(map, (size_t)st.st_size);
	close(fd);
	strbuf_printf(s->out,
		      "{\"file\":\"%s\",\"bytes\":%lld,\"header_ok\":%s,\"records\":%" PRIu64,
		      s->segname, (long long)st.st_size, res.header_ok ? "true" : "false",
		      s->seg_records);
	if (s->seg_records)
		strbuf_printf(s->out, ",\"first_seq\":%" PRIu64 ",\"last_seq\":%" PRIu64,
			      s->seg_first, s->seg_last);
	strbuf_printf(s->out, ",\"damaged_bytes\":%" PRIu64 "}", s->seg_damaged);
}

/* Reads the cursors file: "ok", "missing" or "damaged". */
static const char *read_cursors(int dirfd, struct inspect *s, int64_t *size)
{
	struct pwq_curent *e = NULL;
	struct stat st;
	uint8_t *buf = NULL;
	size_t n = 0;
	const char *state = "damaged";
	int fd = openat(dirfd, "cursors", O_RDONLY | O_CLOEXEC);

	*size = 0;
	if (fd < 0)
		return "missing";
	if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size < (64 << 20) &&
	    (buf = malloc((size_t)st.st_size)) &&
	    pread(fd, buf, (size_t)st.st_size, 0) == st.st_size &&
	    pwq_cursors_decode(buf, (size_t)st.st_size, &e, &n) == 0) {
		s->cur = calloc(n ? n : 1, sizeof(*s->cur));
		for (size_t i = 0; s->cur && i < n; i++) {
			s->cur[i].e = e[i];
			e[i].name = NULL;
		}
		s->ncur = s->cur ? n : 0;
		state = "ok";
	}
	*size = st.st_size;
	pwq_curents_free(e, n);
	free(buf);
	close(fd);
	return state;
}

static void put_cursors(struct inspect *s)
{
	int64_t now = pwx_wall_ms();

	strbuf_puts(s->out, ",\"cursors\":[");
	for (size_t k = 0; k < s->ncur; k++) {
		struct icursor *c = &s->cur[k];
		uint64_t profiles = s->last_cum > c->e.cum ? s->last_cum - c->e.cum : 0;

		strbuf_printf(s->out, "%s{\"name\":", k ? "," : "");
		pwx_json_quote(s->out, c->e.name, 0);
		strbuf_printf(s->out,
			      ",\"segment\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"seq\":%" PRIu64
			      ",\"backlog_records\":%" PRIu64 ",\"backlog_profiles\":%" PRIu64
			      ",\"oldest_age_seconds\":%.3f}",
			      c->e.seg, c->e.off, c->e.seq, c->records, profiles,
			      c->seen ? (double)(now - c->oldest_ms) / 1000.0 : 0.0);
	}
	strbuf_putc(s->out, ']');
}

int pwq_inspect(const char *dir, struct strbuf *json, char **err)
{
	struct inspect s = {.out = json, .where = STRBUF_INIT};
	uint64_t *ids = NULL;
	size_t nids = 0;
	int64_t bytes = 0, cbytes;
	const char *cstate;
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*err = NULL;
	if (dirfd < 0) {
		*err = pw_asprintf("queue directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (list_ids(dirfd, &ids, &nids) < 0) {
		*err = pw_asprintf("queue directory %s: %s", dir, strerror(errno));
		close(dirfd);
		return -1;
	}
	cstate = read_cursors(dirfd, &s, &cbytes);
	strbuf_puts(json, "{\"directory\":");
	pwx_json_quote(json, dir, 0);
	strbuf_puts(json, ",\"segments\":[");
	for (size_t i = 0; i < nids; i++) {
		if (i)
			strbuf_putc(json, ',');
		scan_one(&s, dirfd, ids[i], i + 1 == nids);
		bytes += (int64_t)s.seg_len;
	}
	bytes += cbytes;
	strbuf_printf(json,
		      "],\"bytes\":%lld,\"records\":%" PRIu64 ",\"profiles\":%" PRIu64
		      ",\"torn_tail_bytes\":%" PRIu64 ",\"damaged\":{\"records\":%" PRIu64
		      ",\"spans\":%" PRIu64 ",\"where\":[%s]}",
		      (long long)bytes, s.records, s.last_cum - s.first_cum, s.torn, s.lost,
		      s.spans, s.where.data ? s.where.data : "");
	if (s.any)
		strbuf_printf(json, ",\"first_seq\":%" PRIu64 ",\"last_seq\":%" PRIu64, s.first_seq,
			      s.prev_seq);
	strbuf_printf(json, ",\"cursors_file\":\"%s\"", cstate);
	put_cursors(&s);
	strbuf_putc(json, '}');
	for (size_t k = 0; k < s.ncur; k++)
		free(s.cur[k].e.name);
	free(s.cur);
	free(ids);
	strbuf_free(&s.where);
	close(dirfd);
	if (json->failed) {
		*err = pw_strdup("out of memory");
		return -1;
	}
	return 0;
}
