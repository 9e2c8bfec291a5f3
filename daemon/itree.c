/* SPDX-License-Identifier: MIT */
/*
 * itree.c - augmented AVL interval tree.
 *
 * Recursive insert/remove without parent pointers: the height is below
 * 1.45 log2 n, so the recursion is shallow, and every node on the path is
 * rebalanced and re-augmented on the way back up, which keeps max_end
 * right without a separate fix-up pass.
 */
#include "itree.h"

static int height(const struct itree_node *n)
{
	return n ? n->height : 0;
}

static void update(struct itree_node *n)
{
	int hl = height(n->left), hr = height(n->right);

	n->height = (hl > hr ? hl : hr) + 1;
	n->max_end = n->end;
	if (n->left && n->left->max_end > n->max_end)
		n->max_end = n->left->max_end;
	if (n->right && n->right->max_end > n->max_end)
		n->max_end = n->right->max_end;
}

static struct itree_node *rotate_right(struct itree_node *n)
{
	struct itree_node *l = n->left;

	n->left = l->right;
	l->right = n;
	update(n);
	update(l);
	return l;
}

static struct itree_node *rotate_left(struct itree_node *n)
{
	struct itree_node *r = n->right;

	n->right = r->left;
	r->left = n;
	update(n);
	update(r);
	return r;
}

static struct itree_node *balance(struct itree_node *n)
{
	int bf;

	update(n);
	bf = height(n->left) - height(n->right);
	if (bf > 1) {
		if (height(n->left->left) < height(n->left->right))
			n->left = rotate_left(n->left);
		return rotate_right(n);
	}
	if (bf < -1) {
		if (height(n->right->right) < height(n->right->left))
			n->right = rotate_right(n->right);
		return rotate_left(n);
	}
	return n;
}

/* total order: start, then address, so equal starts are distinct keys */
static int cmp(const struct itree_node *a, const struct itree_node *b)
{
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	if (a != b)
		return (uintptr_t)a < (uintptr_t)b ? -1 : 1;
	return 0;
}

static struct itree_node *insert(struct itree_node *t, struct itree_node *n)
{
	if (!t)
		return n;
	if (cmp(n, t) < 0)
		t->left = insert(t->left, n);
	else
		t->right = insert(t->right, n);
	return balance(t);
}

static struct itree_node *remove_min(struct itree_node *t, struct itree_node **min)
{
	if (!t->left) {
		*min = t;
		return t->right;
	}
	t->left = remove_min(t->left, min);
	return balance(t);
}

static struct itree_node *remove_node(struct itree_node *t, struct itree_node *n)
{
	struct itree_node *m;
	int c;

	if (!t)
		return NULL;
	c = cmp(n, t);
	if (c < 0) {
		t->left = remove_node(t->left, n);
	} else if (c > 0) {
		t->right = remove_node(t->right, n);
	} else {
		if (!t->left)
			return t->right;
		if (!t->right)
			return t->left;
		t->right = remove_min(t->right, &m);
		m->left = t->left;
		m->right = t->right;
		t = m;
	}
	return balance(t);
}

void itree_init(struct itree *t)
{
	t->root = NULL;
	t->count = 0;
}

void itree_insert(struct itree *t, struct itree_node *n)
{
	n->left = n->right = NULL;
	n->height = 1;
	n->max_end = n->end;
	t->root = insert(t->root, n);
	t->count++;
}

void itree_remove(struct itree *t, struct itree_node *n)
{
	t->root = remove_node(t->root, n);
	n->left = n->right = NULL;
	t->count--;
}

static int query(struct itree_node *n, uint64_t start, uint64_t end, itree_cb cb, void *priv)
{
	int ret;

	/* nothing in this subtree ends after the query starts */
	if (!n || n->max_end <= start)
		return 0;
	ret = query(n->left, start, end, cb, priv);
	if (ret)
		return ret;
	/* this node and its whole right subtree start at or after end */
	if (n->start >= end)
		return 0;
	if (n->end > start) {
		ret = cb(n, priv);
		if (ret)
			return ret;
	}
	return query(n->right, start, end, cb, priv);
}

int itree_query(const struct itree *t, uint64_t start, uint64_t end, itree_cb cb, void *priv)
{
	if (end <= start)
		return 0;
	return query(t->root, start, end, cb, priv);
}

struct itree_node *itree_first(const struct itree *t)
{
	struct itree_node *n = t->root;

	while (n && n->left)
		n = n->left;
	return n;
}
