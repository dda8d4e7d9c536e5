/*
 * bufcache.c - a small cache of payload buffers (see bufcache.h).
 */
#include "bufcache.h"

#include <stdlib.h>

struct pw_cached_buf {
	struct pw_cached_buf *next;
	size_t cap;
};

#define PAGE 4096u

void pw_bufcache_init(struct pw_bufcache *c)
{
	pthread_mutex_init(&c->lock, NULL);
	c->head = NULL;
	c->bytes = c->count = 0;
	c->hits = c->misses = 0;
}

void pw_bufcache_trim(struct pw_bufcache *c)
{
	struct pw_cached_buf *list;

	pthread_mutex_lock(&c->lock);
	list = c->head;
	c->head = NULL;
	c->bytes = c->count = 0;
	pthread_mutex_unlock(&c->lock);
	while (list) {
		struct pw_cached_buf *b = list;

		list = b->next;
		free(b);
	}
}

void pw_bufcache_destroy(struct pw_bufcache *c)
{
	pw_bufcache_trim(c);
	pthread_mutex_destroy(&c->lock);
}

void *pw_bufcache_get(struct pw_bufcache *c, size_t len, size_t *cap)
{
	size_t want;
	void *p;

	if (len < PW_BUFCACHE_MIN) {
		*cap = len;
		return malloc(len ? len : 1);
	}
	pthread_mutex_lock(&c->lock);
	for (struct pw_cached_buf **pp = &c->head; *pp; pp = &(*pp)->next) {
		struct pw_cached_buf *b = *pp;

		if (b->cap >= len && b->cap - len <= len / 8) {
			*pp = b->next;
			c->bytes -= b->cap;
			c->count--;
			c->hits++;
			pthread_mutex_unlock(&c->lock);
			*cap = b->cap;
			return b;
		}
	}
	c->misses++;
	pthread_mutex_unlock(&c->lock);
	/* Whole pages, so profiles of nearly the same size share buffers. */
	if (len > SIZE_MAX - PAGE)
		return NULL;
	want = (len + PAGE - 1) / PAGE * PAGE;
	p = malloc(want);
	*cap = want;
	return p;
}

void pw_bufcache_put(struct pw_bufcache *c, void *buf, size_t cap)
{
	struct pw_cached_buf *b = buf;

	if (!buf)
		return;
	if (!c || cap < PW_BUFCACHE_MIN || cap > PW_BUFCACHE_MAX_BYTES) {
		free(buf);
		return;
	}
	pthread_mutex_lock(&c->lock);
	if (c->count < PW_BUFCACHE_MAX_BUFS && c->bytes + cap <= PW_BUFCACHE_MAX_BYTES) {
		b->cap = cap;
		b->next = c->head;
		c->head = b;
		c->bytes += cap;
		c->count++;
		buf = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	free(buf);
}
