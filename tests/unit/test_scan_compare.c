/* SPDX-License-Identifier: MIT */
/*
 * test_scan_compare.c - the revalidation scan's compare (daemon/scan.c): which
 * change of a page's identity invalidates (as the kernel's mmu notifiers
 * would) and which does not, the runs of changed pages it reports, and
 * the baseline a snapshot handed to a mirror gives a page that appeared.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scan.h"
#include "umirror_proto.h"

#define PFN 0x1234ull
/* a present page of a writable VMA, armed */
#define PAGE (UMP_E_PRESENT | SCAN_ID_WRITABLE | SCAN_ID_ARMED | PFN)

static void test_changed_present(void **state)
{
	/* the same: nothing */
	assert_false(scan_changed(PAGE, PAGE));
	/* another page there (migration, COW, remap) */
	assert_true(scan_changed(PAGE, PAGE + 1));
	/* gone (zap, swap-out) */
	assert_true(scan_changed(PAGE, SCAN_ID_WRITABLE));
	assert_true(scan_changed(PAGE, (PAGE & ~UMP_E_PRESENT) | UMP_E_SWAP));
	/* became huge (collapse into a THP) */
	assert_true(scan_changed(PAGE, PAGE | UMP_E_HUGE));
	/* a write nobody saw: the protection went without a fault (WP_ASYNC) */
	assert_true(scan_changed(PAGE, PAGE & ~SCAN_ID_ARMED));
	/* re-armed only: a mirror's entry is as good as before */
	assert_false(scan_changed(PAGE & ~SCAN_ID_ARMED, PAGE));
}

static void test_changed_not_present(void **state)
{
	const uint64_t none = SCAN_ID_WRITABLE, swapped = SCAN_ID_WRITABLE | UMP_E_SWAP;

	/* appearing where nothing was (read fault, swap-in): no mirror held it */
	assert_false(scan_changed(none, PAGE));
	assert_false(scan_changed(swapped, PAGE));
	assert_false(scan_changed(none, swapped));
	assert_false(scan_changed(swapped | 5, swapped | 6));
	/* but protection changes count, present or not */
	assert_true(scan_changed(none, 0));			 /* mprotect read-only */
	assert_true(scan_changed(0, SCAN_ID_WRITABLE));		 /* mprotect writable */
	assert_true(scan_changed(none, none | UMP_E_NOPERM));	 /* PROT_NONE */
	assert_true(scan_changed(none, UMP_E_HOLE));		 /* the VMA went */
	assert_true(scan_changed(UMP_E_HOLE, SCAN_ID_WRITABLE)); /* a new VMA */
	/* an armed never-touched page written unseen (WP_ASYNC marker gone) */
	assert_true(scan_changed(none | SCAN_ID_ARMED, PAGE & ~SCAN_ID_ARMED));
}

/* covered by an invalidation since the last scan: nothing more to say */
static void test_changed_explained(void **state)
{
	assert_false(scan_changed(PAGE | SCAN_ID_EXPLAINED, 0));
	assert_false(scan_changed(PAGE | SCAN_ID_EXPLAINED, UMP_E_HOLE));
	assert_false(scan_changed(PAGE | SCAN_ID_EXPLAINED, PAGE & ~SCAN_ID_ARMED));
}

struct runs {
	uint64_t first[16], end[16];
	unsigned int n;
};

static void record(uint64_t first, uint64_t end, void *priv)
{
	struct runs *r = priv;

	assert_true(r->n < 16);
	r->first[r->n] = first;
	r->end[r->n] = end;
	r->n++;
}

static void test_compare_runs(void **state)
{
	uint64_t base[8], id[8], written = 0;
	struct runs r = { .n = 0 };

	for (int i = 0; i < 8; i++)
		base[i] = id[i] = PAGE + i;
	id[1] = 0;		      /* gone */
	id[2] = PAGE + 100;	      /* replaced */
	id[4] &= ~SCAN_ID_ARMED;      /* written unseen */
	base[5] |= SCAN_ID_EXPLAINED; /* invalidated meanwhile: */
	id[5] = 0;		      /* its change is said */
	written = 1ull << 7;	      /* harvested written (soft-dirty) */
	assert_int_equal(scan_compare(base, id, &written, 8, record, &r), 4);
	assert_int_equal(r.n, 3);
	assert_true(r.first[0] == 1 && r.end[0] == 3);
	assert_true(r.first[1] == 4 && r.end[1] == 5);
	assert_true(r.first[2] == 7 && r.end[2] == 8); /* a run up to the end */
	/* the new baseline is what was seen, explained marks gone */
	assert_memory_equal(base, id, sizeof(id));
	/* the same again: nothing */
	r.n = 0;
	assert_int_equal(scan_compare(base, id, NULL, 8, record, &r), 0);
	assert_int_equal(r.n, 0);
}

/* a written page is reported even where an invalidation was (at worst twice) */
static void test_compare_written_explained(void **state)
{
	uint64_t base[2] = { PAGE | SCAN_ID_EXPLAINED, PAGE }, id[2] = { PAGE, PAGE };
	uint64_t written = 3;
	struct runs r = { .n = 0 };

	assert_int_equal(scan_compare(base, id, &written, 2, record, &r), 2);
	assert_int_equal(r.n, 1);
	assert_true(r.first[0] == 0 && r.end[0] == 2);
}

/* what the runs reported cover, checking they come in order and apart */
struct cover {
	bool page[100];
	uint64_t last_end;
	unsigned int n;
};

static void cover(uint64_t first, uint64_t end, void *priv)
{
	struct cover *c = priv;

	assert_true(first < end && end <= 100);
	/* maximal runs: an unchanged page between two of them */
	if (c->n)
		assert_true(first > c->last_end);
	for (uint64_t i = first; i < end; i++)
		c->page[i] = true;
	c->last_end = end;
	c->n++;
}

/* against a page-by-page model over random identities (seeded by the iteration) */
static void test_compare_random(void **state)
{
	static const uint64_t ids[] = {
		0,	    SCAN_ID_WRITABLE,	   PAGE,
		PAGE + 1,   PAGE & ~SCAN_ID_ARMED, UMP_E_SWAP | SCAN_ID_WRITABLE,
		UMP_E_HOLE, UMP_E_NOPERM,
	};
	const unsigned int nids = sizeof(ids) / sizeof(ids[0]);

	for (unsigned int seed = 1; seed <= 2000; seed++) {
		uint64_t base[100], id[100], written[2] = { 0, 0 }, npages, n = 0, got;
		struct cover c = { .n = 0 };
		bool want[100] = { false };

		srand(seed);
		npages = 1 + rand() % 100;
		for (uint64_t i = 0; i < npages; i++) {
			base[i] = ids[rand() % nids] | (rand() % 8 ? 0 : SCAN_ID_EXPLAINED);
			id[i] = rand() % 3 ? base[i] & ~SCAN_ID_EXPLAINED : ids[rand() % nids];
			if (!(rand() % 10))
				written[i / 64] |= 1ull << (i % 64);
			want[i] = scan_changed(base[i], id[i]) || (written[i / 64] >> (i % 64) & 1);
			n += want[i];
		}
		got = scan_compare(base, id, written, npages, cover, &c);
		if (got != n || memcmp(c.page, want, sizeof(want)))
			fail_msg("seed %u: %llu pages changed, want %llu, or other pages", seed,
				 (unsigned long long)got, (unsigned long long)n);
		assert_memory_equal(base, id, npages * sizeof(*id));
	}
}

/*
 * A page that appeared after the baseline and was handed to a mirror, then
 * went before the next scan (shmem page-out): that scan must report it.
 */
static void test_handed_then_gone(void **state)
{
	const uint64_t none = SCAN_ID_WRITABLE | SCAN_ID_ARMED; /* a WP_UNPOPULATED marker */
	/* the entry as a snapshot hands it: UM_E_* bits the identity does not keep too */
	const uint64_t handed = (PAGE & ~SCAN_ID_WRITABLE) | UMP_E_FILE | UMP_E_EXCL;
	uint64_t base[5] = { none, none, PAGE, none, none | UMP_E_NOPERM };
	uint64_t e[5] = { handed, handed, handed + 1, none & ~SCAN_ID_WRITABLE, handed };
	uint64_t id[5] = { none, PAGE, PAGE + 1, none, none };
	struct runs r = { .n = 0 };

	scan_take_handed(base, e, 5);
	/* appeared: taken, with the baseline's view of the VMA */
	assert_int_equal(base[0], PAGE);
	assert_int_equal(base[1], PAGE);
	/* a change the scan reports anyway (another page): kept, marked */
	assert_int_equal(base[2], PAGE | SCAN_ID_STALE);
	/* nothing there: nothing a mirror holds */
	assert_int_equal(base[3], none);
	/* a protection change (PROT_NONE gone): kept, marked */
	assert_int_equal(base[4], none | UMP_E_NOPERM | SCAN_ID_STALE);
	/*
	 * page 0 went again; page 2 is back to the baseline's page and page 4
	 * to PROT_NONE, but a mirror was handed what was between
	 */
	id[2] = PAGE;
	id[4] = none | UMP_E_NOPERM;
	assert_int_equal(scan_compare(base, id, NULL, 5, record, &r), 3);
	assert_int_equal(r.n, 3);
	assert_true(r.first[0] == 0 && r.end[0] == 1);
	assert_true(r.first[1] == 2 && r.end[1] == 3);
	assert_true(r.first[2] == 4 && r.end[2] == 5);
	/* the marks go with the scan */
	r.n = 0;
	assert_int_equal(scan_compare(base, id, NULL, 5, record, &r), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_changed_present),
		cmocka_unit_test(test_changed_not_present),
		cmocka_unit_test(test_changed_explained),
		cmocka_unit_test(test_compare_runs),
		cmocka_unit_test(test_compare_written_explained),
		cmocka_unit_test(test_compare_random),
		cmocka_unit_test(test_handed_then_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
