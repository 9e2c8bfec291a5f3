/* SPDX-License-Identifier: MIT */
/*
 * test_encode.c - raw snapshot entries to the caller's encoding (encode.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "encode.h"
#include "umirror_proto.h"

/* every flag a present page can carry, with its index in flags[] */
static const struct {
	uint64_t raw;
	enum um_pfn_flag flag;
} flag_map[] = {
	{ UMP_E_WRITE, UM_PFN_WRITE }, { UMP_E_ZERO, UM_PFN_ZERO },
	{ UMP_E_FILE, UM_PFN_FILE },   { UMP_E_EXCL, UM_PFN_EXCLUSIVE },
	{ UMP_E_HUGE, UM_PFN_HUGE },   { UMP_E_UFFD_WP, UM_PFN_UFFD_WP },
};
#define NFLAGS (sizeof(flag_map) / sizeof(flag_map[0]))

/* a caller encoding whose bits share nothing with the defaults */
static const uint64_t custom_flags[UM_PFN_FLAG_MAX] = {
	[UM_PFN_VALID] = 1ull << 63, [UM_PFN_WRITE] = 1ull << 62,   [UM_PFN_ZERO] = 1ull << 61,
	[UM_PFN_SWAP] = 1ull << 60,  [UM_PFN_FILE] = 1ull << 59,    [UM_PFN_EXCLUSIVE] = 1ull << 58,
	[UM_PFN_HUGE] = 1ull << 57,  [UM_PFN_UFFD_WP] = 1ull << 56,
};
static const uint64_t custom_values[UM_PFN_VALUE_MAX] = {
	[UM_PFN_ERROR] = 0xdead,
	[UM_PFN_NONE] = 0x7,
	[UM_PFN_SPECIAL] = 0x99,
};

static void test_default_init(void **state)
{
	struct um_encoding e;

	assert_int_equal(encode_init(&e, NULL, NULL, 0), 0);
	for (int i = 0; i < UM_PFN_FLAG_MAX; i++)
		assert_int_equal(e.flags[i], 1ull << i);
	assert_int_equal(e.flags[UM_PFN_VALID], UM_DEFAULT_VALID);
	assert_int_equal(e.flags[UM_PFN_UFFD_WP], UM_DEFAULT_UFFD_WP);
	assert_int_equal(e.values[UM_PFN_ERROR], UM_DEFAULT_ERROR);
	assert_int_equal(e.values[UM_PFN_NONE], 0);
	assert_int_equal(e.values[UM_PFN_SPECIAL], UM_DEFAULT_SPECIAL);
	assert_int_equal(e.pfn_shift, UM_DEFAULT_PFN_SHIFT);
	/* without flags the shift is the default one, whatever was passed */
	assert_int_equal(encode_init(&e, NULL, NULL, 200), 0);
	assert_int_equal(e.pfn_shift, UM_DEFAULT_PFN_SHIFT);
}

static void test_bad_shift(void **state)
{
	struct um_encoding e;

	assert_int_equal(encode_init(&e, custom_flags, NULL, 64), -EINVAL);
	assert_int_equal(encode_init(&e, custom_flags, NULL, 255), -EINVAL);
	assert_int_equal(encode_init(&e, custom_flags, NULL, 63), 0);
}

static void test_default_present(void **state)
{
	struct um_encoding e;
	uint64_t out;

	encode_init(&e, NULL, NULL, 0);
	out = encode_entry(&e, UMP_E_PRESENT | UMP_E_WRITE | UMP_E_EXCL | 0x1234);
	assert_int_equal(out, (0x1234ull << 12) | UM_DEFAULT_VALID | UM_DEFAULT_WRITE |
				      UM_DEFAULT_EXCLUSIVE);
	/* the header's promise: pfn = entry >> 12 */
	assert_int_equal(out >> UM_DEFAULT_PFN_SHIFT, 0x1234);

	/* PFN 0 (peer not shown PFNs) still encodes as a valid entry */
	out = encode_entry(&e, UMP_E_PRESENT | UMP_E_ZERO);
	assert_int_equal(out, UM_DEFAULT_VALID | UM_DEFAULT_ZERO);
}

static void test_each_flag(void **state)
{
	struct um_encoding d, c;

	encode_init(&d, NULL, NULL, 0);
	encode_init(&c, custom_flags, custom_values, 8);
	for (size_t i = 0; i < NFLAGS; i++) {
		uint64_t raw = UMP_E_PRESENT | flag_map[i].raw | 0x42;

		assert_int_equal(encode_entry(&d, raw),
				 (0x42ull << 12) | UM_DEFAULT_VALID | (1ull << flag_map[i].flag));
		assert_int_equal(encode_entry(&c, raw), (0x42ull << 8) |
								custom_flags[UM_PFN_VALID] |
								custom_flags[flag_map[i].flag]);
	}
}

static void test_all_flags(void **state)
{
	uint64_t raw = UMP_E_PRESENT | 7, want = (7ull << 8) | custom_flags[UM_PFN_VALID];
	struct um_encoding c;

	encode_init(&c, custom_flags, custom_values, 8);
	for (size_t i = 0; i < NFLAGS; i++) {
		raw |= flag_map[i].raw;
		want |= custom_flags[flag_map[i].flag];
	}
	assert_int_equal(encode_entry(&c, raw), want);
	/* SWAP is never set on a present page */
	assert_int_equal(encode_entry(&c, raw) & custom_flags[UM_PFN_SWAP], 0);
}

static void test_errors(void **state)
{
	struct um_encoding d, c;

	encode_init(&d, NULL, NULL, 0);
	encode_init(&c, custom_flags, custom_values, 8);
	assert_int_equal(encode_entry(&d, UMP_E_HOLE), UM_DEFAULT_ERROR);
	assert_int_equal(encode_entry(&d, UMP_E_NOPERM), UM_DEFAULT_ERROR);
	/* an error wins over anything else the entry says */
	assert_int_equal(encode_entry(&d, UMP_E_NOPERM | UMP_E_PRESENT | UMP_E_WRITE | 5),
			 UM_DEFAULT_ERROR);
	assert_int_equal(encode_entry(&c, UMP_E_HOLE | UMP_E_SWAP), 0xdead);
	assert_int_equal(encode_entry(&c, UMP_E_NOPERM), 0xdead);
}

static void test_none_and_swap(void **state)
{
	struct um_encoding d, c;

	encode_init(&d, NULL, NULL, 0);
	encode_init(&c, custom_flags, custom_values, 8);
	assert_int_equal(encode_entry(&d, 0), 0);
	assert_int_equal(encode_entry(&d, UMP_E_SWAP), UM_DEFAULT_SWAP);
	assert_int_equal(encode_entry(&c, 0), 0x7);
	assert_int_equal(encode_entry(&c, UMP_E_SWAP), 0x7 | custom_flags[UM_PFN_SWAP]);
	/* not present: no PFN and no VALID even if the daemon left bits over */
	assert_int_equal(encode_entry(&c, UMP_E_FILE | 0x55) & custom_flags[UM_PFN_VALID], 0);
	assert_int_equal(encode_entry(&c, UMP_E_FILE | 0x55), 0x7);
	/* an armed never-touched or zapped page says so */
	assert_int_equal(encode_entry(&d, UMP_E_UFFD_WP), UM_DEFAULT_UFFD_WP);
	assert_int_equal(encode_entry(&c, UMP_E_UFFD_WP | UMP_E_SWAP),
			 0x7 | custom_flags[UM_PFN_UFFD_WP] | custom_flags[UM_PFN_SWAP]);
}

static void test_values_only(void **state)
{
	struct um_encoding e;

	/* custom values with default flags and the default shift */
	assert_int_equal(encode_init(&e, NULL, custom_values, 3), 0);
	assert_int_equal(encode_entry(&e, UMP_E_HOLE), 0xdead);
	assert_int_equal(encode_entry(&e, 0), 0x7);
	assert_int_equal(encode_entry(&e, UMP_E_PRESENT | 9), (9ull << 12) | UM_DEFAULT_VALID);
}

static void test_pfn_mask(void **state)
{
	struct um_encoding e;

	encode_init(&e, custom_flags, NULL, 0);
	/* the largest PFN the wire can carry, shift 0: only the PFN and VALID */
	assert_int_equal(encode_entry(&e, UMP_E_PRESENT | UMP_E_PFN_MASK),
			 UMP_E_PFN_MASK | custom_flags[UM_PFN_VALID]);
}

static void test_entries_in_place(void **state)
{
	uint64_t a[5] = { UMP_E_PRESENT | 1, UMP_E_HOLE, 0, UMP_E_SWAP,
			  UMP_E_PRESENT | UMP_E_WRITE | 2 };
	const uint64_t want[5] = { (1ull << 12) | UM_DEFAULT_VALID, UM_DEFAULT_ERROR, 0,
				   UM_DEFAULT_SWAP,
				   (2ull << 12) | UM_DEFAULT_VALID | UM_DEFAULT_WRITE };
	struct um_encoding e;

	encode_init(&e, NULL, NULL, 0);
	encode_entries(&e, a, a, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(a[i], want[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_init),	cmocka_unit_test(test_bad_shift),
		cmocka_unit_test(test_default_present), cmocka_unit_test(test_each_flag),
		cmocka_unit_test(test_all_flags),	cmocka_unit_test(test_errors),
		cmocka_unit_test(test_none_and_swap),	cmocka_unit_test(test_values_only),
		cmocka_unit_test(test_pfn_mask),	cmocka_unit_test(test_entries_in_place),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
