/*
 * timerheap.c - a binary min-heap of timers, laid out as a tree of
 * pointers (as libuv's timer heap is) so nodes live in the waiting objects
 * and the heap never allocates. The shape is a complete binary tree: the
 * bits of the node count give the path from the root to the next free
 * place and to the last node.
 *
 * Layer: leaf; calls nothing.
 */
#include "timerheap.h"

static bool before(const struct pw_timer *a, const struct pw_timer *b)
{
	if (a->due_ns != b->due_ns)
		return a->due_ns < b->due_ns;
	return a->seq < b->seq;
}

void pw_timerheap_init(struct pw_timerheap *h)
{
	h->min = NULL;
	h->n = 0;
	h->next_seq = 0;
}

struct pw_timer *pw_timerheap_min(const struct pw_timerheap *h)
{
	return h->min;
}

/* Swaps child with its parent in the tree, fixing every link. */
static void swap_up(struct pw_timerheap *h, struct pw_timer *parent, struct pw_timer *child)
{
	struct pw_timer *l = parent->left, *r = parent->right, *p = parent->parent, *sibling;

	parent->left = child->left;
	parent->right = child->right;
	parent->parent = child;
	child->left = l;
	child->right = r;
	child->parent = p;
	if (child->left == child) {
		child->left = parent;
		sibling = child->right;
	} else {
		child->right = parent;
		sibling = child->left;
	}
	if (sibling)
		sibling->parent = child;
	if (parent->left)
		parent->left->parent = parent;
	if (parent->right)
		parent->right->parent = parent;
	if (!child->parent)
		h->min = child;
	else if (child->parent->left == parent)
		child->parent->left = child;
	else
		child->parent->right = child;
}

/* The link that holds (or will hold) node number `pos` (1-based, in
 * breadth-first order); *parent is set to the node that owns the link. */
static struct pw_timer **slot(struct pw_timerheap *h, size_t pos, struct pw_timer **parent)
{
	struct pw_timer **link = &h->min;
	size_t path = 0;
	unsigned depth = 0;

	for (size_t n = pos; n >= 2; n /= 2, depth++)
		path = (path << 1) | (n & 1);
	*parent = NULL;
	while (depth-- > 0) {
		*parent = *link;
		link = (path & 1) ? &(*link)->right : &(*link)->left;
		path >>= 1;
	}
	return link;
}

void pw_timerheap_add(struct pw_timerheap *h, struct pw_timer *t, int64_t due_ns)
{
	struct pw_timer *parent, **link;

	t->left = t->right = NULL;
	t->due_ns = due_ns;
	t->seq = h->next_seq++;
	t->armed = true;
	link = slot(h, h->n + 1, &parent);
	t->parent = parent;
	*link = t;
	h->n++;
	while (t->parent && before(t, t->parent))
		swap_up(h, t->parent, t);
}

void pw_timerheap_remove(struct pw_timerheap *h, struct pw_timer *t)
{
	struct pw_timer *parent, **link, *last;

	if (!t->armed || h->n == 0)
		return;
	t->armed = false;
	link = slot(h, h->n, &parent);
	last = *link;
	*link = NULL;
	h->n--;
	if (last == t) {
		/* t was the last node (perhaps the only one). */
		if (h->min == t)
			h->min = NULL;
		return;
	}
	/* The last node takes t's place, then sinks or rises to its own. */
	last->left = t->left;
	last->right = t->right;
	last->parent = t->parent;
	if (last->left)
		last->left->parent = last;
	if (last->right)
		last->right->parent = last;
	if (!t->parent)
		h->min = last;
	else if (t->parent->left == t)
		t->parent->left = last;
	else
		t->parent->right = last;
	for (;;) {
		struct pw_timer *least = last;

		if (last->left && before(last->left, least))
			least = last->left;
		if (last->right && before(last->right, least))
			least = last->right;
		if (least == last)
			break;
		swap_up(h, last, least);
	}
	while (last->parent && before(last, last->parent))
		swap_up(h, last->parent, last);
}

struct pw_timer *pw_timerheap_pop_due(struct pw_timerheap *h, int64_t now)
{
	struct pw_timer *t = h->min;

	if (!t || t->due_ns > now)
		return NULL;
	pw_timerheap_remove(h, t);
	return t;
}
