/* SPDX-License-Identifier: MIT */
/*
 * test_write_granule - adaptive write granules: a streak of first writes
 * in address order is invalidated and unprotected in growing spans, never
 * past what an invalidation covered.
 *
 * A sync interval (its callback logs every invalidation, evlog) over the
 * first 1500 of 4096 populated pages; every page of the mapping written
 * once, in order:
 *  - right after each write returns, a WRITE invalidation covering that
 *    page has been delivered (the callback runs before the daemon lifts
 *    the protection: a page is never writable before its mirror heard);
 *  - every WRITE span lies inside the interval and is at most 2 MiB;
 *  - there were far fewer WRITE invalidations than pages (the granule
 *    doubled: 1500 pages in fewer than 40);
 *  - a dirty harvest reports the written pages, all 1500 (a granule is
 *    logged whole: over-reporting is safe, here exact).
 * After the REARM, writes in random order are one page each.
 * Then pages that map the zero page (read, never written) written in
 * order: each write replaces its page, so none may join a granule: one
 * page per WRITE, each covered when its write returns.
 * Then a streak across two VMAs of one interval: no WRITE span crosses
 * the VMA boundary.
 */
#include "evlog.h"
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NPAGES 4096ul
#define IVPAGES 1500ul
#define ZPAGES 64ul

/* has a WRITE invalidation of @iv covering @p been logged since the reset? */
static bool covered(struct um_interval *iv, const char *p)
{
	bool hit = false;

	pthread_mutex_lock(&evlog.lock);
	for (unsigned int i = 0; i < evlog.n && !hit; i++)
		hit = evlog.ev[i].iv == iv && evlog.ev[i].inv.reason == UM_REASON_WRITE &&
		      evlog.ev[i].inv.start <= (uintptr_t)p && (uintptr_t)p < evlog.ev[i].inv.end;
	pthread_mutex_unlock(&evlog.lock);
	return hit;
}

/* the WRITE events of @iv: all inside [@lo, @hi), none longer than @max pages; their count */
static unsigned int check_spans(struct um_interval *iv, const char *lo, const char *hi,
				unsigned long max, const char *what)
{
	unsigned int n = 0;

	pthread_mutex_lock(&evlog.lock);
	for (unsigned int i = 0; i < evlog.n; i++) {
		const struct um_invalidation *e = &evlog.ev[i].inv;

		if (evlog.ev[i].iv != iv || e->reason != UM_REASON_WRITE)
			continue;
		n++;
		CHECK(e->start >= (uintptr_t)lo && e->end <= (uintptr_t)hi && e->end > e->start,
		      "%s: WRITE [%#llx, %#llx) inside [%p, %p)", what,
		      (unsigned long long)e->start, (unsigned long long)e->end, (void *)lo,
		      (void *)hi);
		CHECK((e->end - e->start) / PAGE <= max, "%s: WRITE of %llu pages, at most %lu",
		      what, (unsigned long long)((e->end - e->start) / PAGE), max);
	}
	CHECK(evlog.n < EVLOG_MAX, "%s: the log kept every event", what);
	pthread_mutex_unlock(&evlog.lock);
	return n;
}

static void part_streak(struct um_client *c)
{
	char *m = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	static const unsigned long rnd[] = { 7, 1499, 13, 1200, 600, 42 };
	struct um_dirty_range out[8];
	struct um_interval *iv;
	unsigned int n;
	long nr;

	madvise(m, NPAGES * PAGE, MADV_NOHUGEPAGE);
	memset(m, 1, NPAGES * PAGE);
	CHECK(um_interval_insert(c, m, IVPAGES * PAGE, 0, &evlog_ops, NULL, &iv) == 0,
	      "insert the interval");
	evlog_reset();
	for (unsigned long i = 0; i < NPAGES; i++) {
		m[i * PAGE] = 2;
		if (i < IVPAGES && !covered(iv, m + i * PAGE))
			CHECK(false, "page %lu written with no WRITE covering it", i);
	}
	n = check_spans(iv, m, m + IVPAGES * PAGE, 512, "streak");
	printf("test_write_granule: %lu pages written in order: %u WRITE invalidations\n", IVPAGES,
	       n);
	CHECK(n < 40, "the granule grew: %u WRITE invalidations for %lu pages", n, IVPAGES);
	nr = um_interval_dirty(iv, (uintptr_t)m, (uintptr_t)m + IVPAGES * PAGE, UM_DIRTY_REARM, out,
			       8, NULL);
	CHECK(nr == 1 && out[0].start == (uintptr_t)m &&
		      out[0].end == (uintptr_t)m + IVPAGES * PAGE,
	      "the dirty log has every page written: %ld ranges", nr);

	/* random order after the REARM: one page each */
	evlog_reset();
	for (size_t k = 0; k < sizeof(rnd) / sizeof(rnd[0]); k++) {
		m[rnd[k] * PAGE] = 3;
		CHECK(covered(iv, m + rnd[k] * PAGE), "random write to page %lu covered", rnd[k]);
	}
	n = check_spans(iv, m, m + IVPAGES * PAGE, 1, "random");
	CHECK(n == sizeof(rnd) / sizeof(rnd[0]), "one WRITE per random write: %u", n);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(m, NPAGES * PAGE);
}

static void part_zero_page(struct um_client *c)
{
	char *m = harness_map_anon(ZPAGES, PROT_READ | PROT_WRITE);
	struct um_interval *iv;
	volatile char sink = 0;
	unsigned int n;

	madvise(m, ZPAGES * PAGE, MADV_NOHUGEPAGE);
	for (unsigned long i = 0; i < ZPAGES; i++)
		sink += m[i * PAGE]; /* the zero page: the next write copies */
	(void)sink;
	CHECK(um_interval_insert(c, m, ZPAGES * PAGE, 0, &evlog_ops, NULL, &iv) == 0,
	      "insert over zero pages");
	evlog_reset();
	for (unsigned long i = 0; i < ZPAGES; i++) {
		m[i * PAGE] = 2;
		CHECK(covered(iv, m + i * PAGE), "zero page %lu: its write covered", i);
	}
	n = check_spans(iv, m, m + ZPAGES * PAGE, 1, "zero pages");
	CHECK(n == ZPAGES, "one WRITE per zero page replaced: %u", n);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(m, ZPAGES * PAGE);
}

static void part_vmas(struct um_client *c)
{
	char *m = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	char *mid = m + NPAGES / 2 * PAGE;
	struct um_interval *iv;

	memset(m, 1, NPAGES * PAGE);
	/* two VMAs: the second half's flags differ */
	CHECK(madvise(mid, NPAGES / 2 * PAGE, MADV_NOHUGEPAGE) == 0, "madvise");
	madvise(m, NPAGES / 2 * PAGE, MADV_HUGEPAGE);
	CHECK(um_interval_insert(c, m, NPAGES * PAGE, 0, &evlog_ops, NULL, &iv) == 0,
	      "insert over two VMAs");
	evlog_reset();
	for (unsigned long i = 0; i < NPAGES; i++) {
		m[i * PAGE] = 2;
		if (!covered(iv, m + i * PAGE))
			CHECK(false, "two VMAs: page %lu written with no WRITE covering it", i);
	}
	check_spans(iv, m, m + NPAGES * PAGE, 512, "two VMAs");
	pthread_mutex_lock(&evlog.lock);
	for (unsigned int i = 0; i < evlog.n; i++) {
		const struct um_invalidation *e = &evlog.ev[i].inv;

		if (e->reason == UM_REASON_WRITE)
			CHECK(!(e->start < (uintptr_t)mid && e->end > (uintptr_t)mid),
			      "WRITE [%#llx, %#llx) crosses the VMA boundary %p",
			      (unsigned long long)e->start, (unsigned long long)e->end,
			      (void *)mid);
	}
	pthread_mutex_unlock(&evlog.lock);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(m, NPAGES * PAGE);
}

int main(void)
{
	struct um_client *c;

	harness_start("test_write_granule", NULL);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	part_streak(c);
	part_zero_page(c);
	part_vmas(c);
	um_disconnect(c);
	return harness_summary();
}
