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
 * Then a page mapped exclusively yet copied on its write (it lost its
 * exclusive mark in a fork, and has an extra reference): present pages of
 * private mappings never join a granule, so its write faults and is a
 * WRITE like any first write.
 */
#include "evlog.h"
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
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

/* @npages of shared anonymous memory (shmem): written in place, never copied */
static char *map_shared(size_t npages)
{
	char *m = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		       0);

	CHECK(m != MAP_FAILED, "mmap shared: %m");
	return m;
}

/*
 * A private mapping's present page never joins a granule (a fork may have
 * taken its exclusive mark, which pagemap cannot show): in-order writes
 * over such pages are one WRITE each.
 */
static void part_private(struct um_client *c)
{
	char *m = harness_map_anon(64, PROT_READ | PROT_WRITE);
	struct um_interval *iv;
	unsigned int n;

	madvise(m, 64 * PAGE, MADV_NOHUGEPAGE);
	memset(m, 1, 64 * PAGE);
	CHECK(um_interval_insert(c, m, 64 * PAGE, 0, &evlog_ops, NULL, &iv) == 0, "insert");
	evlog_reset();
	for (unsigned long i = 0; i < 64; i++) {
		m[i * PAGE] = 4;
		CHECK(covered(iv, m + i * PAGE), "present private page %lu: its write covered", i);
	}
	n = check_spans(iv, m, m + 64 * PAGE, 1, "present private");
	CHECK(n == 64, "present private pages: one WRITE per page, %u for 64", n);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(m, 64 * PAGE);
}

static void part_streak(struct um_client *c)
{
	char *m = map_shared(NPAGES);
	static const unsigned long rnd[] = { 7, 1499, 13, 1200, 600, 42 };
	struct um_dirty_range out[8];
	struct um_interval *iv;
	unsigned int n;
	long nr;

	/* a shared mapping's page is written in place: granules may cover it */
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
	char *m = map_shared(NPAGES);
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

/* pages of @iv covered by an event of @reason logged since the reset */
static bool covered_by(struct um_interval *iv, enum um_reason reason, const char *p)
{
	bool hit = false;

	pthread_mutex_lock(&evlog.lock);
	for (unsigned int i = 0; i < evlog.n && !hit; i++)
		hit = evlog.ev[i].iv == iv && evlog.ev[i].inv.reason == reason &&
		      evlog.ev[i].inv.start <= (uintptr_t)p && (uintptr_t)p < evlog.ev[i].inv.end;
	pthread_mutex_unlock(&evlog.lock);
	return hit;
}

/*
 * After a fork whose child is gone, the parent's pages are mapped once
 * again but lost their exclusive mark, which pagemap does not show: with
 * an extra reference (here a vmsplice) the kernel copies such a page on
 * its write. Had a granule unprotected it unwritten, the copy would put
 * a new page under the mirror unseen (the daemon did so while it trusted
 * pagemap's exclusive bit: page 4 came out unprotected, pagemap
 * 0x810000000037d57b). The fork here is not even seen by the daemon (no
 * VMA of this process is registered at the time). Now present pages of a
 * private mapping never join a granule: page 4 stays armed and its write
 * is a WRITE covering it.
 */
static void part_copied_exclusive(struct um_client *c)
{
	const size_t np = 16;
	char *m = harness_map_anon(np, PROT_READ | PROT_WRITE), *p4 = m + 4 * PAGE;
	uint64_t pfns[16], before, after;
	struct um_range r = { 0 };
	struct iovec iov = { p4, PAGE };
	struct um_interval *iv;
	int pipefd[2], st;
	pid_t pid;

	madvise(m, np * PAGE, MADV_NOHUGEPAGE);
	memset(m, 1, np * PAGE);
	pid = fork();
	CHECK(pid >= 0, "fork: %m");
	if (pid == 0)
		_exit(0);
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid: %m");
	CHECK(um_interval_insert(c, m, np * PAGE, 0, &evlog_ops, NULL, &iv) == 0, "insert");
	/* a streak: pages 0, 1-2, then 3 and on; 4-6 would join a granule */
	m[0] = 2;
	m[PAGE] = 2;
	m[3 * PAGE] = 2;
	before = harness_pagemap(p4);
	CHECK((before & PM_PRESENT) && (before & PM_MMAP_EXCLUSIVE),
	      "page 4 mapped exclusively (%#llx)", (unsigned long long)before);
	CHECK(before & PM_UFFD_WP,
	      "page 4 (present, private) still armed after the streak's write to page 3: no "
	      "granule over it (pagemap %#llx)",
	      (unsigned long long)before);
	r.start = (uintptr_t)m;
	r.end = (uintptr_t)m + np * PAGE;
	r.pfns = pfns;
	CHECK(um_range_register(&r, iv) == 0, "register");
	CHECK(harness_snapshot(&r) == (long)np, "snapshot");
	CHECK(pfns[4] & UM_DEFAULT_VALID, "the mirror holds page 4");
	CHECK(pipe(pipefd) == 0, "pipe: %m");
	CHECK(vmsplice(pipefd[1], &iov, 1, 0) == (ssize_t)PAGE, "vmsplice: %m");
	evlog_reset();
	p4[8] = 3;
	evlog_settle(3000);
	after = harness_pagemap(p4);
	CHECK(covered_by(iv, UM_REASON_WRITE, p4), "the write to page 4 is a WRITE (pfn %s)",
	      (after & PM_PFN_MASK) == (before & PM_PFN_MASK) ? "kept" : "copied");
	close(pipefd[0]);
	close(pipefd[1]);
	um_range_unregister(&r);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(m, np * PAGE);
}

int main(void)
{
	struct um_client *c;

	harness_start("test_write_granule", NULL);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	part_streak(c);
	part_private(c);
	part_zero_page(c);
	part_vmas(c);
	part_copied_exclusive(c);
	um_disconnect(c);
	return harness_summary();
}
