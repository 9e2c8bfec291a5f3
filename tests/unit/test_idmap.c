/* SPDX-License-Identifier: MIT */
/*
 * test_idmap.c - the id hash map against a plain array, with random puts,
 * replacements, gets and deletes (seeded, the seed printed), checking
 * every key after each step and that the table shrinks back to nothing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "idmap.h"

#define KEYS 3000
#define COPIES 3 /* objects per id, so that a put can replace */

struct item {
	uint64_t id;
};

static struct item items[KEYS][COPIES];

/* keys: consecutive ids like the daemon's, plus far-apart ones that collide in low bits */
static uint64_t key_of(unsigned int i)
{
	return i % 2 ? i : ((uint64_t)i << 32);
}

static uint64_t item_id(const void *v)
{
	return ((const struct item *)v)->id;
}

static void random_ops(void **state)
{
	const char *env = getenv("UM_IDMAP_SEED");
	unsigned int seed = env ? (unsigned int)strtoul(env, NULL, 0) : (unsigned int)time(NULL);
	static void *model[KEYS];
	struct idmap m;
	size_t count = 0, max_cap = 0;

	(void)state;
	printf("test_idmap: seed %u (UM_IDMAP_SEED=%u replays)\n", seed, seed);
	srand(seed);
	for (unsigned int i = 0; i < KEYS; i++)
		for (unsigned int j = 0; j < COPIES; j++)
			items[i][j].id = key_of(i);
	idmap_init(&m, item_id);
	for (unsigned int step = 0; step < 60000; step++) {
		unsigned int i = (unsigned int)rand() % KEYS;
		/* first half grows, second half drains */
		bool grow = step < 30000 ? rand() % 4 != 0 : rand() % 4 == 0;

		if (grow) {
			void *v = &items[i][step % COPIES];

			assert_int_equal(idmap_put(&m, v), 0);
			if (!model[i])
				count++;
			model[i] = v;
		} else {
			assert_ptr_equal(idmap_del(&m, key_of(i)), model[i]);
			if (model[i])
				count--;
			model[i] = NULL;
		}
		assert_int_equal(m.count, count);
		/* at most 7/8 full: the probe runs stay short */
		assert_true(m.count * 8 <= m.cap * 7);
		if (m.cap > max_cap)
			max_cap = m.cap;
		if (step % 97 == 0)
			for (unsigned int k = 0; k < KEYS; k++)
				assert_ptr_equal(idmap_get(&m, key_of(k)), model[k]);
	}
	for (unsigned int k = 0; k < KEYS; k++) {
		assert_ptr_equal(idmap_get(&m, key_of(k)), model[k]);
		assert_ptr_equal(idmap_del(&m, key_of(k)), model[k]);
	}
	assert_int_equal(m.count, 0);
	/* given back: an empty map holds no table */
	assert_null(m.ent);
	assert_int_equal(m.cap, 0);
	assert_true(max_cap >= 1024);
	assert_int_equal(idmap_put(&m, NULL), -EINVAL);
	idmap_fini(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_ops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
