/* SPDX-License-Identifier: MIT */
/*
 * test_dirty_merge.c - the pure parts of the DIRTY harvest (daemon/dirty.c):
 * merging the WP_ASYNC scan's runs with the logged ones, taking only
 * what was asked of PAGEMAP_SCAN's regions, and which pages the
 * soft-dirty harvest counts written.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dirty.h"
#include "uapi_compat.h"
#include "umirror_proto.h"

#define P(n) ((uint64_t)(n)*4096)
#define R(a, b) ((struct ump_dirty_rec){ P(a), P(b) })

static void check_runs(const struct ump_dirty_rec *got, uint64_t ngot,
		       const struct ump_dirty_rec *want, uint64_t nwant)
{
	assert_int_equal(ngot, nwant);
	for (uint64_t i = 0; i < nwant; i++) {
		assert_true(got[i].start == want[i].start);
		assert_true(got[i].end == want[i].end);
	}
}

static void merge(const struct ump_dirty_rec *a, uint64_t na, const struct ump_dirty_rec *b,
		  uint64_t nb, const struct ump_dirty_rec *want, uint64_t nwant)
{
	struct ump_dirty_rec out[16];
	uint64_t n;

	memset(out, 0xa5, sizeof(out));
	n = dirty_merge_runs(a, na, b, nb, out);
	check_runs(out, n, want, nwant);
	/* the same with the lists swapped */
	n = dirty_merge_runs(b, nb, a, na, out);
	check_runs(out, n, want, nwant);
}

static void test_merge_disjoint(void **state)
{
	const struct ump_dirty_rec a[] = { R(0, 1), R(4, 5), R(10, 12) };
	const struct ump_dirty_rec b[] = { R(2, 3), R(6, 8) };
	const struct ump_dirty_rec want[] = { R(0, 1), R(2, 3), R(4, 5), R(6, 8), R(10, 12) };

	merge(a, 3, b, 2, want, 5);
}

/* runs that touch are one run: the reply never splits a written range */
static void test_merge_touching(void **state)
{
	const struct ump_dirty_rec a[] = { R(0, 2), R(4, 6) };
	const struct ump_dirty_rec b[] = { R(2, 4), R(6, 7) };
	const struct ump_dirty_rec want[] = { R(0, 7) };

	merge(a, 2, b, 2, want, 1);
}

static void test_merge_overlap(void **state)
{
	const struct ump_dirty_rec a[] = { R(0, 5), R(8, 9) };
	const struct ump_dirty_rec b[] = { R(1, 2), R(3, 9), R(20, 21) };
	const struct ump_dirty_rec want[] = { R(0, 9), R(20, 21) };

	merge(a, 2, b, 3, want, 2);
}

static void test_merge_empty(void **state)
{
	const struct ump_dirty_rec a[] = { R(3, 4), R(5, 6) };
	struct ump_dirty_rec out[4];

	merge(a, 2, NULL, 0, a, 2);
	assert_int_equal(dirty_merge_runs(NULL, 0, NULL, 0, out), 0);
}

/* against a bitmap of pages, over random lists (seeded by the iteration) */
static void test_merge_random(void **state)
{
	for (unsigned int seed = 1; seed <= 2000; seed++) {
		struct ump_dirty_rec l[2][8], out[16];
		uint64_t nl[2] = { 0, 0 }, n;
		bool page[80] = { false }, got[80] = { false };

		srand(seed);
		for (int k = 0; k < 2; k++) {
			uint64_t at = rand() % 4;

			while (nl[k] < 8 && at < 70) {
				uint64_t len = 1 + rand() % 5;

				l[k][nl[k]++] = R(at, at + len);
				for (uint64_t p = at; p < at + len; p++)
					page[p] = true;
				at += len + rand() % 6; /* 0: the next one touches */
			}
		}
		n = dirty_merge_runs(l[0], nl[0], l[1], nl[1], out);
		for (uint64_t i = 0; i < n; i++) {
			assert_true(out[i].start < out[i].end);
			/* sorted, and a gap between runs: else they would be one */
			if (i)
				assert_true(out[i].start > out[i - 1].end);
			for (uint64_t p = out[i].start / 4096; p < out[i].end / 4096; p++)
				got[p] = true;
		}
		if (memcmp(page, got, sizeof(page)))
			fail_msg("seed %u: merged runs cover other pages than the lists", seed);
	}
}

static void test_add_regions(void **state)
{
	const struct page_region vec[] = {
		{ P(0), P(2), PAGE_IS_WRITTEN },   /* before cur: dropped */
		{ P(4), P(6), PAGE_IS_WRITTEN },   /* kept */
		{ P(6), P(7), PAGE_IS_WRITTEN },   /* continues it: merged */
		{ P(5), P(9), PAGE_IS_WRITTEN },   /* goes backwards: dropped */
		{ P(9), P(9), PAGE_IS_WRITTEN },   /* empty: dropped */
		{ P(10), P(12), PAGE_IS_WRITTEN }, /* kept */
		{ P(15), P(21), PAGE_IS_WRITTEN }, /* beyond end: dropped */
	};
	const struct ump_dirty_rec want[] = { R(4, 7), R(10, 12) };
	struct ump_dirty_rec out[8];
	uint64_t n;

	n = dirty_add_regions(out, 0, vec, 7, P(3), P(20));
	check_runs(out, n, want, 2);
	/* appending to what an earlier call left: continues its last run */
	{
		const struct page_region more[] = { { P(12), P(13), PAGE_IS_WRITTEN },
						    { P(14), P(15), PAGE_IS_WRITTEN } };
		const struct ump_dirty_rec want2[] = { R(4, 7), R(10, 13), R(14, 15) };

		n = dirty_add_regions(out, n, more, 2, P(12), P(20));
		check_runs(out, n, want2, 3);
	}
	assert_int_equal(dirty_add_regions(out, 0, vec, 0, 0, P(100)), 0);
}

/*
 * The soft-dirty harvest's verdict on one page: bit 55 at the first read;
 * or nothing there at the first read and a page (not the zero page) at the
 * second, or no second read at all.
 */
static void test_soft_written(void **state)
{
	const uint64_t zero = 0x77, page = PM_PRESENT | 0x1234, zp = PM_PRESENT | zero;

	assert_true(dirty_soft_written(true, false, false, 0, zero));
	assert_true(dirty_soft_written(true, false, false, page, zero));
	assert_false(dirty_soft_written(false, false, false, page, zero));
	/* an empty page that appeared: written, unless it is the zero page */
	assert_true(dirty_soft_written(false, true, false, page, zero));
	assert_false(dirty_soft_written(false, true, false, zp, zero));
	/* zero PFN unknown (or hidden): every page that appeared counts */
	assert_true(dirty_soft_written(false, true, false, zp, 0));
	/* still empty, or swapped (a non-present entry): not written */
	assert_false(dirty_soft_written(false, true, false, 0, zero));
	assert_false(dirty_soft_written(false, true, false, PM_SWAP | 0x1234, zero));
	/* second read failed: every page that was empty counts */
	assert_true(dirty_soft_written(false, true, true, 0, zero));
	assert_false(dirty_soft_written(false, false, true, 0, zero));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_disjoint), cmocka_unit_test(test_merge_touching),
		cmocka_unit_test(test_merge_overlap),  cmocka_unit_test(test_merge_empty),
		cmocka_unit_test(test_merge_random),   cmocka_unit_test(test_add_regions),
		cmocka_unit_test(test_soft_written),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
