/*
 * recv.c - a minimal HTTP/1.1 receiver for the benchmark.
 *
 * Listens on N consecutive loopback ports, reads every request with its
 * whole body (Content-Length framing, keep-alive) and answers each with an
 * empty 200 application/proto response, as a Pyroscope push handler does
 * once it has read the request. Answering before the body is read (nginx's
 * `return 200`) would let a client skip work it has to do against a real
 * server, so this receiver never does.
 *
 * One epoll loop per thread; with more than one thread every port is opened
 * once per thread with SO_REUSEPORT and the kernel spreads connections.
 *
 * usage: pw-bench-recv [-p BASEPORT] [-n PORTS] [-t THREADS]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PORTS 64
#define MAX_THREADS 16
#define HDR_CAP 16384
#define READ_CAP (256 * 1024)

static const char response[] = "HTTP/1.1 200 OK\r\n"
			       "Content-Type: application/proto\r\n"
			       "Content-Length: 0\r\n"
			       "\r\n";

struct conn {
	int fd;
	bool in_body;
	bool close_after;
	size_t hlen;
	unsigned long long body_left;
	char hdr[HDR_CAP];
};

struct worker {
	int base_port;
	int nports;
	int listeners[MAX_PORTS];
	pthread_t thread;
};

static int listen_on(int port, bool reuseport)
{
	struct sockaddr_in a = {0};
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4096) < 0) {
		fprintf(stderr, "pw-bench-recv: port %d: %s\n", port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Finds Content-Length and Connection: close in a complete header block. */
static int parse_headers(struct conn *c)
{
	char *line = memchr(c->hdr, '\n', c->hlen);

	c->body_left = 0;
	c->close_after = false;
	while (line && (size_t)(line - c->hdr) < c->hlen) {
		char *start = line + 1;
		char *end = memchr(start, '\n', c->hlen - (size_t)(start - c->hdr));

		if (!end)
			break;
		if (strncasecmp(start, "Content-Length:", 15) == 0)
			c->body_left = strtoull(start + 15, NULL, 10);
		else if (strncasecmp(start, "Transfer-Encoding:", 18) == 0)
			return -1; /* chunked bodies are not needed by any client here */
		else if (strncasecmp(start, "Connection:", 11) == 0 && strcasestr(start, "close") &&
			 strcasestr(start, "close") < end)
			c->close_after = true;
		line = end;
	}
	return 0;
}

static int answer(struct conn *c)
{
	size_t off = 0;

	/* The response is tiny and the socket buffer empty at this point
	 * (clients wait for the answer), so one send normally takes it all. */
	while (off < sizeof(response) - 1) {
		ssize_t n = send(c->fd, response + off, sizeof(response) - 1 - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			usleep(50);
			continue;
		}
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return c->close_after ? -1 : 0;
}

/* Consumes n bytes read from the connection. Returns -1 to close it. */
static int consume(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		if (c->in_body) {
			size_t take = n < c->body_left ? n : (size_t)c->body_left;

			c->body_left -= take;
			p += take;
			n -= take;
			if (c->body_left == 0) {
				c->in_body = false;
				c->hlen = 0;
				if (answer(c) < 0)
					return -1;
			}
			continue;
		}
		/* Header bytes: copy until the blank line. */
		while (n > 0) {
			if (c->hlen == HDR_CAP)
				return -1;
			c->hdr[c->hlen++] = *p++;
			n--;
			if (c->hlen >= 4 && memcmp(c->hdr + c->hlen - 4, "\r\n\r\n", 4) == 0) {
				if (parse_headers(c) < 0)
					return -1;
				c->in_body = true;
				if (c->body_left == 0) {
					c->in_body = false;
					c->hlen = 0;
					if (answer(c) < 0)
						return -1;
				}
				break;
			}
		}
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[256];
	char *buf = malloc(READ_CAP);
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (!buf || ep < 0) {
		perror("pw-bench-recv");
		exit(1);
	}
	for (int i = 0; i < w->nports; i++) {
		struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};

		e.data.u64 = (uint64_t)i; /* listener index; connections use pointers */
		e.data.u64 |= 1ULL << 63;
		epoll_ctl(ep, EPOLL_CTL_ADD, w->listeners[i], &e);
	}
	for (;;) {
		int n = epoll_wait(ep, ev, 256, -1);

		for (int i = 0; i < n; i++) {
			if (ev[i].data.u64 >> 63) {
				int lfd = w->listeners[ev[i].data.u64 & 0xffff];
				int fd;

				while ((fd = accept4(lfd, NULL, NULL,
						     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					struct conn *c = calloc(1, sizeof(*c));
					struct epoll_event e = {.events = EPOLLIN};
					int one = 1;

					if (!c) {
						close(fd);
						continue;
					}
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					c->fd = fd;
					e.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
				}
				continue;
			}
			struct conn *c = ev[i].data.ptr;
			bool drop = false;

			for (;;) {
				ssize_t r = recv(c->fd, buf, READ_CAP, 0);

				if (r < 0 && errno == EINTR)
					continue;
				if (r < 0 && errno == EAGAIN)
					break;
				if (r <= 0 || consume(c, buf, (size_t)r) < 0) {
					drop = true;
					break;
				}
				if (r < READ_CAP)
					break;
			}
			if (drop) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				free(c);
			}
		}
	}
	return NULL;
}

/* A whole number in [min, max] from a command-line argument; exits with a
 * usage error otherwise. */
static int arg_int(const char *name, const char *s, int min, int max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "%s wants a number from %d to %d, got \"%s\"\n", name, min, max, s);
		exit(2);
	}
	return (int)v;
}

int main(int argc, char **argv)
{
	struct worker workers[MAX_THREADS];
	int base = 18080, nports = 1, nthreads = 1, opt;

	while ((opt = getopt(argc, argv, "p:n:t:")) != -1) {
		switch (opt) {
		case 'p':
			base = arg_int("-p", optarg, 1, 65535);
			break;
		case 'n':
			nports = arg_int("-n", optarg, 1, 64);
			break;
		case 't':
			nthreads = arg_int("-t", optarg, 1, 64);
			break;
		default:
			fprintf(stderr,
				"usage: pw-bench-recv [-p BASEPORT] [-n PORTS] [-t THREADS]\n");
			return 2;
		}
	}
	if (nports < 1 || nports > MAX_PORTS || nthreads < 1 || nthreads > MAX_THREADS ||
	    base < 1 || base + nports > 65535) {
		fprintf(stderr, "pw-bench-recv: bad arguments\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	for (int t = 0; t < nthreads; t++) {
		workers[t].base_port = base;
		workers[t].nports = nports;
		for (int i = 0; i < nports; i++) {
			workers[t].listeners[i] = listen_on(base + i, nthreads > 1);
			if (workers[t].listeners[i] < 0)
				return 1;
		}
	}
	printf("listening on 127.0.0.1:%d-%d\n", base, base + nports - 1);
	fflush(stdout);
	for (int t = 1; t < nthreads; t++)
		pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]);
	worker_main(&workers[0]);
	return 0;
}
