/* SPDX-License-Identifier: MIT */
/*
 * test_thp_zero_rearm - a mirrored page the daemon unprotected for a
 * write, which the kernel then replaced with the shared zero page.
 *
 * Linux 6.12 and later map the zero-filled pages of an anonymous THP they
 * split (MADV_COLD or MADV_PAGEOUT of part of it, reclaim, migration) to
 * the shared zero page, keeping each page's uffd-wp bit as it was: none
 * on a page written since it was armed. Nothing tells userfaultfd. A
 * mirror that snapshots the page then holds the zero page (VALID, not
 * WRITE), and the next CPU write copies it to a new page without a uffd-wp
 * fault: the mirror's PFN is stale and no invalidation ever comes
 * (umirror-check found it on Debian's 6.12 under --mask-features 6.1:
 * `--kind thp --seed 107626800 --scan on --mask-features 6.1 --steps 1370`,
 * where a partial MADV_PAGEOUT split the folio).
 *
 * Contract: a page of a UFFD_WP interval that a snapshot finds mapped,
 * not write-protected and not writable in place (the zero page, a page
 * shared copy-on-write, a private file page) is armed again under a
 * PROTECT invalidation, so that the snapshot that found it is retried and
 * the write faults. Skipped (77) where the kernel keeps the page: no THP,
 * or a kernel before 6.12.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_COLD
#define MADV_COLD 20
#endif

#define HPAGE (2ul << 20)
#define NPAGES (HPAGE / PAGE)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static unsigned int nwrite1; /* WRITE invalidations covering page 1 */
static char *base;

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	uint64_t p1 = (uintptr_t)base + PAGE;

	(void)iv;
	(void)priv;
	pthread_mutex_lock(&lock);
	if (inv->reason == UM_REASON_WRITE && inv->start <= p1 && p1 < inv->end)
		nwrite1++;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

/* wait (at most 5 s) for a WRITE of page 1 beyond @n */
static bool write_seen(unsigned int n)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&lock);
	while (nwrite1 <= n)
		if (pthread_cond_timedwait(&cond, &lock, &ts) == ETIMEDOUT)
			break;
	ok = nwrite1 > n;
	pthread_mutex_unlock(&lock);
	return ok;
}

static unsigned int writes(void)
{
	unsigned int n;

	pthread_mutex_lock(&lock);
	n = nwrite1;
	pthread_mutex_unlock(&lock);
	return n;
}

static void skip(struct um_client *c, const char *why)
{
	um_disconnect(c);
	harness_skip(why);
}

int main(void)
{
	uint64_t zero_pfn, e0, e1, *pfns, seq;
	struct um_interval *iv;
	struct um_range range = { 0 };
	struct um_client *c;
	unsigned int n;
	bool seen;
	char *m;
	long ret;

	harness_start("test_thp_zero_rearm", NULL);
	zero_pfn = harness_zero_pfn();
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");

	/* one THP: its first page written, the other 511 zero-filled */
	m = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED, "mmap: %m");
	base = (char *)(((uintptr_t)m + HPAGE - 1) & ~(HPAGE - 1));
	if (madvise(base, HPAGE, MADV_HUGEPAGE))
		skip(c, "MADV_HUGEPAGE refused (no THP)");
	base[0] = 1;
	e0 = harness_pagemap(base);
	e1 = harness_pagemap(base + PAGE);
	if (!(e0 & PM_PRESENT) || !(e1 & PM_PRESENT) ||
	    (e1 & PM_PFN_MASK) != (e0 & PM_PFN_MASK) + 1 || (e0 & PM_PFN_MASK) % NPAGES)
		skip(c, "no transparent huge page was given");

	CHECK(um_interval_insert(c, base, HPAGE, 0, &ops, NULL, &iv) == 0, "insert");
	CHECK(harness_pagemap(base + PAGE) & PM_UFFD_WP, "page 1 armed by the insert");
	/* a write of a zero byte: reported, unprotected, still zero-filled */
	n = writes();
	base[PAGE] = 0;
	CHECK(write_seen(n), "the first write of page 1 reported");
	CHECK(um_interval_read_begin(iv, &seq) == 0, "read_begin");
	CHECK(!(harness_pagemap(base + PAGE) & PM_UFFD_WP), "page 1 unprotected by its write");

	/* split the folio: part of it cold */
	CHECK(madvise(base + 100 * PAGE, 4 * PAGE, MADV_COLD) == 0, "MADV_COLD: %m");
	e1 = harness_pagemap(base + PAGE);
	if ((e1 & PM_PFN_MASK) != zero_pfn)
		skip(c, "the kernel kept page 1 when it split the THP "
			"(it maps zero-filled pages of a split THP to the zero page since Linux "
			"6.12)");
	printf("test_thp_zero_rearm: page 1 is now the zero page, pagemap %#llx\n",
	       (unsigned long long)e1);

	/* the mirror takes the page: the kernel's loop, as the documents show it */
	pfns = calloc(NPAGES, sizeof(*pfns));
	CHECK(pfns, "out of memory");
	range.start = (uintptr_t)base;
	range.end = range.start + HPAGE;
	range.pfns = pfns;
	CHECK(um_range_register(&range, iv) == 0, "register");
	for (int i = 0;; i++) {
		CHECK(i < 20, "a valid snapshot within 20 rounds");
		CHECK(um_interval_read_begin(iv, &range.notifier_seq) == 0, "read_begin");
		ret = um_range_snapshot(&range);
		if (ret == -EAGAIN)
			continue;
		CHECK(ret >= 0, "snapshot: %ld", ret);
		if (!um_interval_read_retry(iv, range.notifier_seq))
			break;
	}
	CHECK((pfns[1] & UM_DEFAULT_VALID) && (pfns[1] & UM_DEFAULT_ZERO) &&
		      !(pfns[1] & UM_DEFAULT_WRITE),
	      "the mirror holds page 1 as the zero page: %#llx", (unsigned long long)pfns[1]);
	e1 = harness_pagemap(base + PAGE);

	/* its next write copies it to a new page: reported before it completes */
	n = writes();
	base[PAGE] = 2;
	seen = write_seen(n);
	CHECK((e1 & PM_UFFD_WP) && seen,
	      "page 1, the zero page in a mirror's valid snapshot: pagemap %#llx (%s); its "
	      "write %s",
	      (unsigned long long)e1, e1 & PM_UFFD_WP ? "armed" : "NOT write-protected",
	      seen ? "was reported" : "was NOT reported in 5 s: the mirror keeps a stale PFN");
	CHECK(um_interval_read_retry(iv, range.notifier_seq), "the mirror's snapshot is stale");

	um_range_unregister(&range);
	free(pfns);
	CHECK(um_interval_remove(iv) == 0, "remove");
	um_disconnect(c);
	munmap(m, 2 * HPAGE);
	return harness_summary();
}
