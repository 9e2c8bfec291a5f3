/* SPDX-License-Identifier: MIT */
/*
 * test_limits - per-uid accounting: defaults, refusal codes, all-or-nothing
 * charges, root exempt unless limit_root, uncharge and reuse.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "uidlimits.h"

static const uint64_t one_client[LIMIT_NR] = { [LIMIT_CLIENTS] = 1 };

static void test_defaults(void **state)
{
	struct limits_cfg cfg;
	struct limits l;

	limits_cfg_defaults(&cfg);
	limits_init(&l, &cfg);
	assert_int_equal(limits_max(&l, 1000, LIMIT_CLIENTS), 64);
	assert_int_equal(limits_max(&l, 1000, LIMIT_INTERVALS), 4096);
	assert_true(limits_max(&l, 1000, LIMIT_BYTES) == 64ull << 30);
	/* root is unlimited by default */
	for (int k = 0; k < LIMIT_NR; k++)
		assert_int_equal(limits_max(&l, 0, k), 0);
	limits_fini(&l);
}

static void test_clients_eusers(void **state)
{
	struct limits_cfg cfg;
	struct limits l;
	enum limit_kind hit = LIMIT_NR;

	limits_cfg_defaults(&cfg);
	limits_cfg_set(&cfg, LIMIT_CLIENTS, 3);
	limits_init(&l, &cfg);
	for (int i = 0; i < 3; i++)
		assert_int_equal(limits_charge(&l, 1000, one_client, &hit), 0);
	assert_int_equal(limits_charge(&l, 1000, one_client, &hit), -EUSERS);
	assert_int_equal(hit, LIMIT_CLIENTS);
	assert_int_equal(limits_usage(&l, 1000, LIMIT_CLIENTS), 3);
	/* another uid has its own budget; root has none */
	assert_int_equal(limits_charge(&l, 1001, one_client, NULL), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(limits_charge(&l, 0, one_client, NULL), 0);
	assert_int_equal(limits_usage(&l, 0, LIMIT_CLIENTS), 10);
	limits_fini(&l);
	/* limit_root: root counts like anybody */
	cfg.limit_root = true;
	limits_init(&l, &cfg);
	for (int i = 0; i < 3; i++)
		assert_int_equal(limits_charge(&l, 0, one_client, NULL), 0);
	assert_int_equal(limits_charge(&l, 0, one_client, NULL), -EUSERS);
	for (int i = 0; i < 3; i++)
		assert_int_equal(limits_charge(&l, 1000, one_client, NULL), 0);
	/* giving one back makes room for exactly one */
	limits_uncharge(&l, 1000, one_client);
	assert_int_equal(limits_charge(&l, 1000, one_client, NULL), 0);
	assert_int_equal(limits_charge(&l, 1000, one_client, NULL), -EUSERS);
	limits_fini(&l);
}

static void test_intervals_bytes_edquot(void **state)
{
	struct limits_cfg cfg;
	struct limits l;
	enum limit_kind hit = LIMIT_NR;
	uint64_t iv[LIMIT_NR] = { [LIMIT_INTERVALS] = 1, [LIMIT_BYTES] = 4096 };
	uint64_t big[LIMIT_NR] = { [LIMIT_INTERVALS] = 1, [LIMIT_BYTES] = 1ull << 20 };

	limits_cfg_defaults(&cfg);
	limits_cfg_set(&cfg, LIMIT_INTERVALS, 2);
	limits_cfg_set(&cfg, LIMIT_BYTES, 1ull << 20);
	limits_init(&l, &cfg);
	assert_int_equal(limits_charge(&l, 1000, iv, &hit), 0);
	/* the byte limit refuses and nothing is charged: all or nothing */
	assert_int_equal(limits_charge(&l, 1000, big, &hit), -EDQUOT);
	assert_int_equal(hit, LIMIT_BYTES);
	assert_int_equal(limits_usage(&l, 1000, LIMIT_INTERVALS), 1);
	assert_int_equal(limits_usage(&l, 1000, LIMIT_BYTES), 4096);
	assert_int_equal(limits_charge(&l, 1000, iv, &hit), 0);
	assert_int_equal(limits_charge(&l, 1000, iv, &hit), -EDQUOT);
	assert_int_equal(hit, LIMIT_INTERVALS);
	/* root is unaffected */
	for (int i = 0; i < 5; i++)
		assert_int_equal(limits_charge(&l, 0, big, NULL), 0);
	assert_true(limits_usage(&l, 0, LIMIT_BYTES) == 5ull << 20);
	limits_fini(&l);
}

static void test_uncharge_forgets(void **state)
{
	struct limits_cfg cfg;
	struct limits l;
	uint64_t iv[LIMIT_NR] = { [LIMIT_INTERVALS] = 1, [LIMIT_BYTES] = 8192 };

	limits_cfg_defaults(&cfg);
	limits_init(&l, &cfg);
	/* more uids than the initial array holds */
	for (uid_t u = 1; u <= 20; u++)
		assert_int_equal(limits_charge(&l, u, iv, NULL), 0);
	assert_int_equal(l.nuse, 20);
	for (uid_t u = 1; u <= 20; u += 2)
		limits_uncharge(&l, u, iv);
	assert_int_equal(l.nuse, 10);
	for (uid_t u = 1; u <= 20; u++)
		assert_int_equal(limits_usage(&l, u, LIMIT_BYTES), u % 2 ? 0 : 8192);
	/* over-uncharging clamps instead of wrapping */
	limits_uncharge(&l, 2, iv);
	limits_uncharge(&l, 2, iv);
	assert_int_equal(limits_usage(&l, 2, LIMIT_INTERVALS), 0);
	assert_int_equal(l.nuse, 9);
	limits_fini(&l);
}

static void test_unlimited_and_overflow(void **state)
{
	struct limits_cfg cfg;
	struct limits l;
	uint64_t huge[LIMIT_NR] = { [LIMIT_BYTES] = UINT64_MAX };
	uint64_t page[LIMIT_NR] = { [LIMIT_BYTES] = 4096 };

	limits_cfg_defaults(&cfg);
	limits_cfg_set(&cfg, LIMIT_BYTES, 0); /* explicitly unlimited */
	limits_init(&l, &cfg);
	assert_int_equal(limits_charge(&l, 1000, huge, NULL), 0);
	assert_int_equal(limits_charge(&l, 1000, page, NULL), -EOVERFLOW);
	assert_true(limits_usage(&l, 1000, LIMIT_BYTES) == UINT64_MAX);
	assert_string_equal(limits_name(LIMIT_INTERVALS), "intervals");
	limits_fini(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_clients_eusers),
		cmocka_unit_test(test_intervals_bytes_edquot),
		cmocka_unit_test(test_uncharge_forgets),
		cmocka_unit_test(test_unlimited_and_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
