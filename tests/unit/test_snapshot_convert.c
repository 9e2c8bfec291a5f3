/* SPDX-License-Identifier: MIT */
/*
 * test_snapshot_convert.c - the conversion of raw pagemap entries of one VMA into
 * UM_E_* entries (daemon/snapshot.c), and which of them a write would
 * copy rather than write in place (what a walk re-arms).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "snapshot.h"
#include "uapi_compat.h"
#include "umirror_proto.h"
#include "vma.h"

#define ZERO_PFN 0x99ull
#define PFN 0x1234ull
#define SWAP_TYPE 3ull /* a swap area (below MAX_SWAPFILES) */

static const struct vma anon_rw = {
	.start = 0, .end = 1 << 20, .page_size = 4096, .read = true, .write = true, .anon = true
};
static const struct vma anon_ro = {
	.start = 0, .end = 1 << 20, .page_size = 4096, .read = true, .anon = true
};
static const struct vma file_private_rw = {
	.start = 0, .end = 1 << 20, .page_size = 4096, .read = true, .write = true
};
static const struct vma shared_rw = {
	.start = 0, .end = 1 << 20, .page_size = 4096, .read = true, .write = true, .shared = true
};
static const struct vma hugetlb_rw = { .start = 0,
				       .end = 1 << 21,
				       .page_size = 2 << 20,
				       .read = true,
				       .write = true,
				       .shared = true };

/* one raw entry of @v converted */
static uint64_t conv(uint64_t raw, const struct vma *v, bool show_pfn)
{
	uint64_t e = raw;

	snapshot_convert_vma(&e, 1, v, ZERO_PFN, show_pfn);
	return e;
}

static void test_present_anon(void **state)
{
	const uint64_t raw = PM_PRESENT | PM_MMAP_EXCLUSIVE | PFN;

	/* written in place: writable, exclusive, not protected */
	assert_true(conv(raw, &anon_rw, true) == (UMP_E_PRESENT | UMP_E_EXCL | UMP_E_WRITE | PFN));
	/* the PFN only for who may see it; the flags the same */
	assert_true(conv(raw, &anon_rw, false) == (UMP_E_PRESENT | UMP_E_EXCL | UMP_E_WRITE));
	/* armed: write-protected, so not WRITE */
	assert_true(conv(raw | PM_UFFD_WP, &anon_rw, true) ==
		    (UMP_E_PRESENT | UMP_E_EXCL | UMP_E_UFFD_WP | PFN));
	/* the VMA forbids writes */
	assert_true(conv(raw, &anon_ro, true) == (UMP_E_PRESENT | UMP_E_EXCL | PFN));
	/* shared copy-on-write (after fork): the write copies it */
	assert_true(conv(PM_PRESENT | PFN, &anon_rw, true) == (UMP_E_PRESENT | PFN));
}

static void test_zero_page(void **state)
{
	uint64_t e = conv(PM_PRESENT | ZERO_PFN, &anon_rw, true);

	assert_true(e == (UMP_E_PRESENT | UMP_E_ZERO | ZERO_PFN));
	/* even where the kernel called it exclusive, it is never written in place */
	e = conv(PM_PRESENT | PM_MMAP_EXCLUSIVE | ZERO_PFN, &anon_rw, true);
	assert_false(e & UMP_E_WRITE);
	/* hidden PFNs: the zero page cannot be told apart, nor is PFN 0 it */
	e = conv(PM_PRESENT | PM_MMAP_EXCLUSIVE, &anon_rw, false);
	assert_true(e == (UMP_E_PRESENT | UMP_E_EXCL | UMP_E_WRITE));
}

static void test_file_pages(void **state)
{
	const uint64_t raw = PM_PRESENT | PM_FILE | PM_MMAP_EXCLUSIVE | PFN;

	/* a private mapping's page-cache page: read-only to the CPU until copied */
	assert_true(conv(raw, &file_private_rw, true) ==
		    (UMP_E_PRESENT | UMP_E_FILE | UMP_E_EXCL | PFN));
	/* a shared mapping writes the page itself, exclusive or not */
	assert_true(conv(PM_PRESENT | PM_FILE | PFN, &shared_rw, true) ==
		    (UMP_E_PRESENT | UMP_E_FILE | UMP_E_WRITE | PFN));
	assert_true(conv(PM_PRESENT | PM_FILE | PFN | PM_UFFD_WP, &shared_rw, true) ==
		    (UMP_E_PRESENT | UMP_E_FILE | UMP_E_UFFD_WP | PFN));
}

static void test_huge(void **state)
{
	/* hugetlb: every present page is part of a huge page */
	assert_true(conv(PM_PRESENT | PFN, &hugetlb_rw, true) ==
		    (UMP_E_PRESENT | UMP_E_HUGE | UMP_E_WRITE | PFN));
	assert_true(conv(0, &hugetlb_rw, true) == 0);
	/* a THP block found by the walk (its mark), and the huge zero page */
	assert_true(conv(PM_PRESENT | PM_MMAP_EXCLUSIVE | PFN | SNAPSHOT_RAW_THP, &anon_rw, true) ==
		    (UMP_E_PRESENT | UMP_E_EXCL | UMP_E_WRITE | UMP_E_HUGE | PFN));
	assert_true(conv(PM_PRESENT | PFN | SNAPSHOT_RAW_THP | SNAPSHOT_RAW_HUGE_ZERO, &anon_rw,
			 true) == (UMP_E_PRESENT | UMP_E_HUGE | UMP_E_ZERO | PFN));
}

static void test_not_present(void **state)
{
	const uint64_t swp = PM_SWAP | (0x4567ull << 5) | SWAP_TYPE;

	assert_true(conv(0, &anon_rw, true) == 0);
	assert_true(conv(swp, &anon_rw, true) == UMP_E_SWAP);
	/* shmem swapped out */
	assert_true(conv(swp | PM_FILE, &shared_rw, true) == (UMP_E_SWAP | UMP_E_FILE));
	/* a page we protected, swapped out: still armed */
	assert_true(conv(swp | PM_UFFD_WP, &anon_rw, true) == (UMP_E_SWAP | UMP_E_UFFD_WP));
	/* an armed never-touched page: a marker, not swap (type hidden or not) */
	assert_true(conv(PM_SWAP | PM_UFFD_WP, &anon_rw, false) == UMP_E_UFFD_WP);
	assert_true(conv(PM_SWAP | PM_UFFD_WP | 31, &anon_rw, true) == UMP_E_UFFD_WP);
	/* a migration entry (type above the swap areas) is not swap */
	assert_true(conv(PM_SWAP | (0x4567ull << 5) | 29, &anon_rw, true) == 0);
}

/* raw bits that share positions with UM_E_* bits never leak through */
static void test_no_raw_bits(void **state)
{
	/* bit 55: soft-dirty raw, UMP_E_SWAP converted */
	assert_false(conv(PM_PRESENT | PM_SOFT_DIRTY | PFN, &anon_rw, true) & UMP_E_SWAP);
	assert_false(conv(PM_SOFT_DIRTY, &anon_rw, true));
	/* a PFN wider than UMP_E_PFN_MASK stays out of the flag bits */
	assert_true((conv(PM_PRESENT | PM_PFN_MASK, &anon_ro, true) & ~UMP_E_PFN_MASK) ==
		    UMP_E_PRESENT);
}

/* a run of entries of one VMA is converted entry by entry */
static void test_run(void **state)
{
	uint64_t e[4] = { PM_PRESENT | PM_MMAP_EXCLUSIVE | PFN, 0, PM_PRESENT | ZERO_PFN,
			  PM_SWAP | SWAP_TYPE };

	snapshot_convert_vma(e, 4, &anon_rw, ZERO_PFN, false);
	assert_true(e[0] == (UMP_E_PRESENT | UMP_E_EXCL | UMP_E_WRITE));
	assert_true(e[1] == 0);
	assert_true(e[2] == (UMP_E_PRESENT | UMP_E_ZERO));
	assert_true(e[3] == UMP_E_SWAP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_present_anon), cmocka_unit_test(test_zero_page),
		cmocka_unit_test(test_file_pages),   cmocka_unit_test(test_huge),
		cmocka_unit_test(test_not_present),  cmocka_unit_test(test_no_raw_bits),
		cmocka_unit_test(test_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
