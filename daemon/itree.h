/* SPDX-License-Identifier: MIT */
/*
 * itree.h - interval tree of one address space's intervals.
 *
 * An AVL tree keyed by (start, node address) so equal starts are allowed,
 * each node augmented with the largest end in its subtree. That bound
 * lets an overlap query skip every subtree that ends before the query
 * starts: O(log n + k) for k hits. Intervals are half open [start, end).
 */
#ifndef UMD_ITREE_H
#define UMD_ITREE_H

#include <stddef.h>
#include <stdint.h>

struct itree_node {
	struct itree_node *left, *right;
	uint64_t start, end; /* [start, end), end > start; set before insert */
	uint64_t max_end;    /* private: largest end in this subtree */
	int height;	     /* private */
};

struct itree {
	struct itree_node *root;
	size_t count;
};

/**
 * itree_cb - called for each node that overlaps the query, in ascending
 * start order. Return 0 to continue, anything else to stop the query (the
 * value is passed back by itree_query()). Must not modify the tree.
 */
typedef int (*itree_cb)(struct itree_node *node, void *priv);

/** itree_init() - an empty tree. */
void itree_init(struct itree *t);

/**
 * itree_insert() - add @n, whose start/end the caller set (end > start).
 * O(log n); never fails, allocates nothing, holds nothing.
 */
void itree_insert(struct itree *t, struct itree_node *n);

/**
 * itree_remove() - unlink @n, which must be in @t. O(log n).
 */
void itree_remove(struct itree *t, struct itree_node *n);

/**
 * itree_query() - call @cb for every node overlapping [@start, @end).
 * Return: 0 after visiting every hit, or the first non-zero @cb result.
 * O(log n + k); recursion depth is the tree height (< 1.45 log2 n).
 */
int itree_query(const struct itree *t, uint64_t start, uint64_t end, itree_cb cb, void *priv);

/** itree_first() - the node with the smallest start, or NULL. */
struct itree_node *itree_first(const struct itree *t);

#endif /* UMD_ITREE_H */
