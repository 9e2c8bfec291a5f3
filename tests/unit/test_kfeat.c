/* SPDX-License-Identifier: MIT */
/*
 * test_kfeat.c - the parts of daemon/kfeat.c that need no kernel: the
 * --mask-features list, masking probed features, the UM_KFEAT_* bits
 * reported to clients, and what a pagemap entry and a PROCMAP_QUERY
 * answer say.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kfeat.h"
#include "log.h"
#include "uapi_compat.h"
#include "umirror_proto.h"

/* what Linux 6.1 lacks, as --mask-features 6.1 names it */
#define MASK_61                                                                   \
	(UMP_KFEAT_PAGEMAP_SCAN | UMP_KFEAT_WP_ASYNC | UMP_KFEAT_WP_UNPOPULATED | \
	 UMP_KFEAT_PROCMAP_QUERY)
#define KNOWN (MASK_61 | UMP_KFEAT_IO_URING | UMP_KFEAT_SOFT_DIRTY)
#define OTHER_UFFD (UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_PAGEFAULT_FLAG_WP)

static uint64_t mask_of(const char *list)
{
	uint64_t m = ~0ull;

	assert_int_equal(kfeat_parse_mask(list, &m), 0);
	return m;
}

static void test_parse_names(void **state)
{
	assert_true(mask_of(NULL) == 0);
	assert_true(mask_of("") == 0);
	assert_true(mask_of("pagemap_scan") == UMP_KFEAT_PAGEMAP_SCAN);
	assert_true(mask_of("wp_async") == UMP_KFEAT_WP_ASYNC);
	assert_true(mask_of("wp_unpopulated") == UMP_KFEAT_WP_UNPOPULATED);
	assert_true(mask_of("procmap_query") == UMP_KFEAT_PROCMAP_QUERY);
	assert_true(mask_of("io_uring") == UMP_KFEAT_IO_URING);
	assert_true(mask_of("soft_dirty") == UMP_KFEAT_SOFT_DIRTY);
	assert_true(mask_of("6.1") == MASK_61);
	/* never PFN visibility: that is the peer's, not the kernel's */
	assert_true((mask_of("6.1,io_uring,soft_dirty") & UMP_KFEAT_PFN_VISIBLE) == 0);
	assert_true(mask_of("6.1,io_uring,soft_dirty") == KNOWN);
}

/* commas and spaces both separate; empty items are nothing */
static void test_parse_separators(void **state)
{
	assert_true(mask_of("io_uring,soft_dirty") == (UMP_KFEAT_IO_URING | UMP_KFEAT_SOFT_DIRTY));
	assert_true(mask_of("io_uring, soft_dirty") == (UMP_KFEAT_IO_URING | UMP_KFEAT_SOFT_DIRTY));
	assert_true(mask_of("io_uring soft_dirty") == (UMP_KFEAT_IO_URING | UMP_KFEAT_SOFT_DIRTY));
	assert_true(mask_of(",,wp_async,,") == UMP_KFEAT_WP_ASYNC);
	assert_true(mask_of(" , ") == 0);
	assert_true(mask_of("6.1,pagemap_scan") == MASK_61);
}

static void check_bad(const char *list)
{
	uint64_t m;

	assert_int_equal(kfeat_parse_mask(list, &m), -EINVAL);
}

/* a name is the whole item: no prefix, no suffix, no other case */
static void test_parse_unknown(void **state)
{
	check_bad("pagemap");
	check_bad("pagemap_scanx");
	check_bad("PAGEMAP_SCAN");
	check_bad("6");
	check_bad("6.10");
	check_bad("6.1;io_uring");
	check_bad("io_uring,bogus");
	check_bad("bogus,io_uring");
	check_bad("pfn_visible");
}

/* a kernel that has everything */
static struct kfeat full_kernel(void)
{
	return (struct kfeat){
		.uffd_offered = OTHER_UFFD | UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
		.pagemap_scan = true,
		.procmap_query = true,
		.soft_dirty = true,
		.soft_dirty_anon = true,
		.soft_dirty_shmem = true,
		.pfn_visible = true,
		.kpageflags = true,
		.zero_pfn = 0x1234,
		.io_uring = true,
	};
}

static void test_mask_bits(void **state)
{
	struct kfeat kf = full_kernel();

	assert_true(kfeat_mask(&kf) == KNOWN);
	memset(&kf, 0, sizeof(kf));
	kf.pfn_visible = true;
	kf.uffd_offered = OTHER_UFFD;
	assert_true(kfeat_mask(&kf) == 0);
	kf.uffd_offered = UFFD_FEATURE_WP_ASYNC;
	assert_true(kfeat_mask(&kf) == UMP_KFEAT_WP_ASYNC);
	kf.uffd_offered = UFFD_FEATURE_WP_UNPOPULATED;
	assert_true(kfeat_mask(&kf) == UMP_KFEAT_WP_UNPOPULATED);
}

static void test_apply_61(void **state)
{
	struct kfeat kf = full_kernel();

	kfeat_apply_mask(&kf, MASK_61);
	assert_false(kf.pagemap_scan);
	assert_false(kf.procmap_query);
	assert_true(kf.uffd_offered == OTHER_UFFD);
	/* what 6.1 has stays */
	assert_true(kf.soft_dirty && kf.soft_dirty_anon && kf.soft_dirty_shmem);
	assert_true(kf.io_uring && kf.pfn_visible && kf.kpageflags);
	assert_true(kf.zero_pfn == 0x1234);
	assert_true(kf.masked == MASK_61);
	assert_true(kfeat_mask(&kf) == (UMP_KFEAT_SOFT_DIRTY | UMP_KFEAT_IO_URING));
}

static void test_apply_soft_dirty(void **state)
{
	struct kfeat kf = full_kernel();

	kfeat_apply_mask(&kf, UMP_KFEAT_SOFT_DIRTY);
	/* the window probes mean nothing without the bit itself */
	assert_false(kf.soft_dirty || kf.soft_dirty_anon || kf.soft_dirty_shmem);
	assert_true(kf.masked == UMP_KFEAT_SOFT_DIRTY);
}

/* masked records what the kernel had, except io_uring: always, when asked */
static void test_apply_records_had(void **state)
{
	struct kfeat kf = { .uffd_offered = OTHER_UFFD };

	kfeat_apply_mask(&kf, MASK_61 | UMP_KFEAT_SOFT_DIRTY);
	assert_true(kf.masked == 0);
	kfeat_apply_mask(&kf, UMP_KFEAT_IO_URING);
	assert_true(kf.masked == UMP_KFEAT_IO_URING);
	assert_false(kf.io_uring);
}

static void test_apply_nothing(void **state)
{
	struct kfeat kf = full_kernel(), before = kf;

	kfeat_apply_mask(&kf, 0);
	assert_memory_equal(&kf, &before, sizeof(kf));
}

/*
 * Every subset of the known features masked on every subset of them
 * present: nothing masked is still reported, nothing else is lost, and
 * masked is exactly what was both asked and present (io_uring: asked).
 */
static void test_apply_every_subset(void **state)
{
	static const uint64_t bits[] = { UMP_KFEAT_PAGEMAP_SCAN,  UMP_KFEAT_SOFT_DIRTY,
					 UMP_KFEAT_PROCMAP_QUERY, UMP_KFEAT_WP_UNPOPULATED,
					 UMP_KFEAT_WP_ASYNC,	  UMP_KFEAT_IO_URING };
	const unsigned int n = sizeof(bits) / sizeof(bits[0]);

	log_set_level(UM_LOG_WARN); /* not 4096 "masked" lines */
	for (unsigned int h = 0; h < 1u << n; h++) {
		for (unsigned int m = 0; m < 1u << n; m++) {
			uint64_t had = 0, mask = 0;
			struct kfeat kf = { .uffd_offered = OTHER_UFFD };

			for (unsigned int i = 0; i < n; i++) {
				had |= h & 1u << i ? bits[i] : 0;
				mask |= m & 1u << i ? bits[i] : 0;
			}
			kf.pagemap_scan = had & UMP_KFEAT_PAGEMAP_SCAN;
			kf.soft_dirty = had & UMP_KFEAT_SOFT_DIRTY;
			kf.procmap_query = had & UMP_KFEAT_PROCMAP_QUERY;
			kf.io_uring = had & UMP_KFEAT_IO_URING;
			if (had & UMP_KFEAT_WP_UNPOPULATED)
				kf.uffd_offered |= UFFD_FEATURE_WP_UNPOPULATED;
			if (had & UMP_KFEAT_WP_ASYNC)
				kf.uffd_offered |= UFFD_FEATURE_WP_ASYNC;
			assert_true(kfeat_mask(&kf) == had);
			kfeat_apply_mask(&kf, mask);
			assert_true(kfeat_mask(&kf) == (had & ~mask));
			assert_true(kf.masked == ((had & mask) | (mask & UMP_KFEAT_IO_URING)));
			assert_true((kf.uffd_offered & OTHER_UFFD) == OTHER_UFFD);
		}
	}
	log_set_level(UM_LOG_INFO);
}

static void test_entry_pfn(void **state)
{
	uint64_t pfn = 77;

	assert_true(kfeat_entry_pfn(PM_PRESENT | 0x1234, &pfn));
	assert_true(pfn == 0x1234);
	/* the flag bits above the PFN are not part of it */
	assert_true(kfeat_entry_pfn(PM_PRESENT | PM_SOFT_DIRTY | PM_FILE | PM_PFN_MASK, &pfn));
	assert_true(pfn == PM_PFN_MASK);
	pfn = 77;
	/* hidden from an unprivileged reader: present, PFN 0 */
	assert_false(kfeat_entry_pfn(PM_PRESENT, &pfn));
	/* swapped: the low bits are the swap entry */
	assert_false(kfeat_entry_pfn(PM_SWAP | 0x1234, &pfn));
	assert_false(kfeat_entry_pfn(0, &pfn));
	assert_false(kfeat_entry_pfn(PM_SOFT_DIRTY | 0x1234, &pfn));
	assert_true(pfn == 77);
}

static void test_procmap_covers(void **state)
{
	assert_true(kfeat_procmap_covers(0x1000, 0x1000, 0x3000));
	assert_true(kfeat_procmap_covers(0x2fff, 0x1000, 0x3000));
	assert_false(kfeat_procmap_covers(0x3000, 0x1000, 0x3000)); /* end exclusive */
	assert_false(kfeat_procmap_covers(0x0fff, 0x1000, 0x3000));
	assert_false(kfeat_procmap_covers(0x1000, 0, 0)); /* left unfilled */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_names),	   cmocka_unit_test(test_parse_separators),
		cmocka_unit_test(test_parse_unknown),	   cmocka_unit_test(test_mask_bits),
		cmocka_unit_test(test_apply_61),	   cmocka_unit_test(test_apply_soft_dirty),
		cmocka_unit_test(test_apply_records_had),  cmocka_unit_test(test_apply_nothing),
		cmocka_unit_test(test_apply_every_subset), cmocka_unit_test(test_entry_pfn),
		cmocka_unit_test(test_procmap_covers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
