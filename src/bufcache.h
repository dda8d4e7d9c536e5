/*
 * bufcache.h - a small cache of payload buffers.
 *
 * Each delivery needs a buffer the size of its encoded request, filled by
 * the producer and released by the I/O thread when the last endpoint is
 * done. Handing those buffers straight back to malloc makes the allocator
 * return the memory to the kernel and fault it in again for the next
 * profile once many large profiles are in flight (glibc trims the top of a
 * heap when more than 128 KiB are free there), which costs more CPU than
 * sending them. The cache keeps a few recently released buffers of 16 KiB
 * or more for reuse, and lets them go when the engine has been idle.
 */
#ifndef PW_BUFCACHE_H
#define PW_BUFCACHE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Buffers below this size are left to malloc, which recycles them well. */
#define PW_BUFCACHE_MIN (16 * 1024)
/* At most this many bytes and buffers are kept. */
#define PW_BUFCACHE_MAX_BYTES (16u * 1024 * 1024)
#define PW_BUFCACHE_MAX_BUFS 256

struct pw_bufcache {
	pthread_mutex_t lock;
	struct pw_cached_buf *head;
	size_t bytes, count;
	uint64_t hits, misses; /* for tests and debugging */
};

void pw_bufcache_init(struct pw_bufcache *c);
/* Frees every cached buffer; the cache stays usable. */
void pw_bufcache_trim(struct pw_bufcache *c);
void pw_bufcache_destroy(struct pw_bufcache *c);

/*
 * A buffer of at least len bytes (NULL when out of memory). *cap receives
 * its real size, to be handed back to pw_bufcache_put(). A cached buffer is
 * reused only when it is at most an eighth larger than asked for, so the
 * memory held per profile stays close to the profile's size.
 */
void *pw_bufcache_get(struct pw_bufcache *c, size_t len, size_t *cap);
/* Gives a buffer back (NULL is ignored): cached, or freed when the cache
 * is full, the buffer is small or c is NULL. Any buffer from malloc may be
 * given, with its size as cap. */
void pw_bufcache_put(struct pw_bufcache *c, void *buf, size_t cap);

#endif /* PW_BUFCACHE_H */
