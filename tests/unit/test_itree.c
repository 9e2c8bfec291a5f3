/* SPDX-License-Identifier: MIT */
/*
 * test_itree.c - the interval tree against a brute-force list, with
 * random inserts, removes and overlap queries, checking the AVL and
 * max_end invariants after every change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itree.h"

#define NODES 512

struct item {
	struct itree_node node;
	int in_tree;
	int hit;
};

static struct item items[NODES];

/* returns the height; asserts balance, ordering and max_end of the subtree */
static int check(const struct itree_node *n, uint64_t *max_end, size_t *count)
{
	uint64_t ml = 0, mr = 0;
	int hl, hr;

	if (!n) {
		*max_end = 0;
		return 0;
	}
	hl = check(n->left, &ml, count);
	hr = check(n->right, &mr, count);
	assert_true(hl - hr <= 1 && hr - hl <= 1);
	assert_int_equal(n->height, (hl > hr ? hl : hr) + 1);
	if (n->left)
		assert_true(n->left->start <= n->start);
	if (n->right)
		assert_true(n->right->start >= n->start);
	*max_end = n->end;
	if (ml > *max_end)
		*max_end = ml;
	if (mr > *max_end)
		*max_end = mr;
	assert_int_equal(n->max_end, *max_end);
	(*count)++;
	return n->height;
}

static void check_tree(const struct itree *t)
{
	uint64_t me;
	size_t count = 0;

	check(t->root, &me, &count);
	assert_int_equal(count, t->count);
}

struct visit {
	uint64_t last_start;
	int calls;
	int stop_after;
};

static int mark(struct itree_node *n, void *priv)
{
	struct visit *v = priv;
	struct item *it = (struct item *)n;

	assert_true(n->start >= v->last_start); /* ascending order */
	v->last_start = n->start;
	assert_int_equal(it->hit, 0); /* each hit once */
	it->hit = 1;
	v->calls++;
	if (v->stop_after && v->calls == v->stop_after)
		return 7;
	return 0;
}

static void query_and_compare(struct itree *t, uint64_t qs, uint64_t qe)
{
	struct visit v = { 0 };
	int expected = 0;

	for (int i = 0; i < NODES; i++)
		items[i].hit = 0;
	assert_int_equal(itree_query(t, qs, qe, mark, &v), 0);
	for (int i = 0; i < NODES; i++) {
		int overlaps =
			items[i].in_tree && items[i].node.start < qe && items[i].node.end > qs;

		expected += overlaps;
		assert_int_equal(items[i].hit, overlaps);
	}
	assert_int_equal(v.calls, expected);
}

static void test_random(void **state)
{
	struct itree t;

	srand(12345);
	itree_init(&t);
	memset(items, 0, sizeof(items));
	for (int round = 0; round < 20000; round++) {
		int i = rand() % NODES;
		int op = rand() % 3;

		if (op < 2 && !items[i].in_tree) {
			/* small coordinates so that overlaps and equal starts are common */
			items[i].node.start = (uint64_t)(rand() % 4096) << 12;
			items[i].node.end =
				items[i].node.start + ((uint64_t)(1 + rand() % 64) << 12);
			itree_insert(&t, &items[i].node);
			items[i].in_tree = 1;
		} else if (items[i].in_tree) {
			itree_remove(&t, &items[i].node);
			items[i].in_tree = 0;
		}
		if (round % 16 == 0)
			check_tree(&t);
		uint64_t qs = (uint64_t)(rand() % 4200) << 12;
		uint64_t qe = qs + ((uint64_t)(1 + rand() % 128) << 12);

		query_and_compare(&t, qs, qe);
	}
	check_tree(&t);
	/* drain */
	for (int i = 0; i < NODES; i++)
		if (items[i].in_tree) {
			itree_remove(&t, &items[i].node);
			items[i].in_tree = 0;
		}
	assert_null(t.root);
	assert_int_equal(t.count, 0);
}

static void test_stop_and_edges(void **state)
{
	struct itree t;
	struct visit v = { 0 };

	itree_init(&t);
	memset(items, 0, sizeof(items));
	for (int i = 0; i < 10; i++) {
		items[i].node.start = (uint64_t)i << 12;
		items[i].node.end = (uint64_t)(i + 1) << 12;
		items[i].in_tree = 1;
		itree_insert(&t, &items[i].node);
	}
	check_tree(&t);
	/* half-open: [3p, 4p) touches only item 3 */
	query_and_compare(&t, 3 << 12, 4 << 12);
	/* empty query range hits nothing */
	query_and_compare(&t, 5 << 12, 5 << 12);
	/* a callback's non-zero result stops the walk and comes back */
	for (int i = 0; i < NODES; i++)
		items[i].hit = 0;
	v.stop_after = 3;
	assert_int_equal(itree_query(&t, 0, UINT64_MAX, mark, &v), 7);
	assert_int_equal(v.calls, 3);
	assert_ptr_equal(itree_first(&t), &items[0].node);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_stop_and_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
