/* SPDX-License-Identifier: MIT */
/*
 * test_revalidate - the revalidation scan reports what userfaultfd does not:
 * mprotect (on demand and from the period timer), THP collapse, THP split,
 * page-out of file pages, page-out of shmem pages a mirror took after
 * the baseline, KSM merging, writes to a wp-async interval,
 * changes right after an invalidation of the same page (mprotect, THP
 * collapse); and it never reports again what
 * userfaultfd already did (a write, a MADV_DONTNEED). Period 0 turns it
 * off; um_list() shows the period in force.
 */
#include "evlog.h"
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define LONG_PERIOD 600000 /* the timer never fires during a test part */
#define HPAGE (2ul << 20)

/* pages covered by events of @reason on @iv, and how many such events */
static uint64_t pages_of(struct um_interval *iv, enum um_reason reason, unsigned int *count)
{
	uint64_t pages = 0;

	*count = 0;
	pthread_mutex_lock(&evlog.lock);
	for (unsigned int i = 0; i < evlog.n; i++)
		if (evlog.ev[i].iv == iv && evlog.ev[i].inv.reason == reason) {
			pages += (evlog.ev[i].inv.end - evlog.ev[i].inv.start) / PAGE;
			(*count)++;
		}
	pthread_mutex_unlock(&evlog.lock);
	return pages;
}

/* does an event of @reason on @iv cover the page at @addr? */
static bool covered(struct um_interval *iv, enum um_reason reason, const void *addr)
{
	uint64_t a = (uintptr_t)addr;
	bool hit = false;

	pthread_mutex_lock(&evlog.lock);
	for (unsigned int i = 0; i < evlog.n; i++)
		if (evlog.ev[i].iv == iv && evlog.ev[i].inv.reason == reason &&
		    evlog.ev[i].inv.start <= a && a < evlog.ev[i].inv.end)
			hit = true;
	pthread_mutex_unlock(&evlog.lock);
	return hit;
}

static void dump(const char *what)
{
	pthread_mutex_lock(&evlog.lock);
	for (unsigned int i = 0; i < evlog.n && i < 16; i++)
		fprintf(stderr, "%s: event %u: %s [%#llx, %#llx)\n", what, i,
			um_reason_str(evlog.ev[i].inv.reason),
			(unsigned long long)evlog.ev[i].inv.start,
			(unsigned long long)evlog.ev[i].inv.end);
	pthread_mutex_unlock(&evlog.lock);
}

/* exactly one REVALIDATE event on @iv, over [@start, +@len), and nothing else */
static void expect_one(struct um_interval *iv, const void *start, size_t len, const char *what)
{
	unsigned int n = evlog_settle(3000);

	if (n != 1)
		dump(what);
	CHECK(n == 1, "%s: %u invalidations, want 1", what, n);
	CHECK(evlog.ev[0].iv == iv && evlog.ev[0].inv.reason == UM_REASON_REVALIDATE,
	      "%s: reason %s, want revalidate", what, um_reason_str(evlog.ev[0].inv.reason));
	CHECK(evlog.ev[0].inv.start == (uintptr_t)start &&
		      evlog.ev[0].inv.end == (uintptr_t)start + len,
	      "%s: span [%#llx, %#llx), want [%p, +%zu)", what,
	      (unsigned long long)evlog.ev[0].inv.start, (unsigned long long)evlog.ev[0].inv.end,
	      start, len);
}

static uint64_t now_scan(struct um_interval *iv, uint32_t period)
{
	uint64_t changed = UINT64_MAX;
	int ret = um_interval_revalidate(iv, period, UM_REVALIDATE_NOW, &changed);

	CHECK(ret == 0, "revalidate NOW: %s", strerror(-ret));
	return changed;
}

static uint32_t listed_period(struct um_client *c, struct um_interval *iv)
{
	struct um_interval_info *info;
	uint32_t p = UINT32_MAX;
	size_t n;

	CHECK(um_list(c, &info, &n) == 0, "um_list");
	for (size_t i = 0; i < n; i++)
		if (info[i].interval_id == um_interval_id(iv))
			p = info[i].revalidate_ms;
	free(info);
	CHECK(p != UINT32_MAX, "um_list shows interval %llu",
	      (unsigned long long)um_interval_id(iv));
	return p;
}

/* mprotect, on demand; a write and a MADV_DONTNEED are not reported twice */
static void part_mprotect(struct um_client *c)
{
	const size_t np = 16;
	char *mem = harness_map_anon(np, PROT_READ | PROT_WRITE);
	struct um_interval *iv;
	uint64_t changed;
	unsigned int n;

	memset(mem, 0x11, np * PAGE);
	CHECK(um_interval_insert(c, mem, np * PAGE, 0, &evlog_ops, NULL, &iv) == 0, "insert");
	CHECK(listed_period(c, iv) == 0, "a uffd-wp interval is not scanned by default");
	CHECK(um_interval_revalidate(iv, 9, 0, NULL) == -EINVAL, "a period below 10 ms: -EINVAL");
	CHECK(um_interval_revalidate(iv, LONG_PERIOD, 0, NULL) == 0, "set the period");
	CHECK(listed_period(c, iv) == LONG_PERIOD, "um_list shows the period");

	evlog_reset();
	CHECK(now_scan(iv, LONG_PERIOD) == 0, "nothing changed yet");
	CHECK(evlog_settle(300) == 0, "no invalidation without a change");

	CHECK(mprotect(mem + 4 * PAGE, 4 * PAGE, PROT_READ) == 0, "mprotect: %m");
	changed = now_scan(iv, LONG_PERIOD);
	CHECK(changed == 4, "mprotect of 4 pages: %llu pages changed", (unsigned long long)changed);
	expect_one(iv, mem + 4 * PAGE, 4 * PAGE, "mprotect(PROT_READ)");

	evlog_reset();
	CHECK(now_scan(iv, LONG_PERIOD) == 0, "reported once, then re-baselined");
	CHECK(evlog_settle(300) == 0, "no second report of the mprotect");

	/* userfaultfd's own reports: the scan must stay silent about them */
	mem[0] = 1;
	CHECK(evlog_settle(3000) == 1, "the write is one invalidation");
	CHECK(pages_of(iv, UM_REASON_WRITE, &n) == 1 && n == 1, "it is a WRITE of one page");
	CHECK(madvise(mem + 10 * PAGE, PAGE, MADV_DONTNEED) == 0, "MADV_DONTNEED: %m");
	CHECK(evlog_settle(3000) == 2, "the zap is one invalidation");
	CHECK(pages_of(iv, UM_REASON_REMOVE, &n) == 1 && n == 1, "it is a REMOVE of one page");
	changed = now_scan(iv, LONG_PERIOD);
	CHECK(changed == 0, "the scan does not report the write or the zap again (%llu)",
	      (unsigned long long)changed);
	CHECK(evlog_settle(300) == 2, "no REVALIDATE after them");
	pages_of(iv, UM_REASON_REVALIDATE, &n);
	CHECK(n == 0, "no REVALIDATE event");

	/* the timer: one period, waited for at most ten */
	CHECK(um_interval_revalidate(iv, 50, 0, NULL) == 0, "period 50 ms");
	evlog_reset();
	CHECK(mprotect(mem + 4 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE) == 0, "mprotect: %m");
	{
		uint64_t t0 = harness_now_ms();

		while (evlog.n == 0 && harness_now_ms() - t0 < 500)
			usleep(2000);
		CHECK(evlog.n > 0, "the timer's scan reported within 10 periods");
		printf("timer scan reported after %llu ms (period 50)\n",
		       (unsigned long long)(harness_now_ms() - t0));
	}
	expect_one(iv, mem + 4 * PAGE, 2 * PAGE, "mprotect seen by the timer");

	/* off: nothing more, from the timer or on demand */
	CHECK(um_interval_revalidate(iv, 0, 0, NULL) == 0, "period 0");
	CHECK(listed_period(c, iv) == 0, "um_list shows the scan off");
	evlog_reset();
	CHECK(mprotect(mem + 4 * PAGE, 2 * PAGE, PROT_READ) == 0, "mprotect: %m");
	CHECK(evlog_settle(400) == 0, "no scan while off");
	CHECK(now_scan(iv, 0) == 0, "NOW without a baseline finds nothing");
	CHECK(evlog_settle(200) == 0, "and sends nothing");

	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(mem, np * PAGE);
}

/*
 * A change userfaultfd does not report, made right after an invalidation
 * of the same page completed, within one scan period: the scan compares
 * it with the page as that invalidation left it (it used to take the
 * page as it found it at the next scan, so the change was never sent).
 */
static void part_after_invalidation(struct um_client *c)
{
	const size_t np = 16;
	char *mem = harness_map_anon(np, PROT_READ | PROT_WRITE);
	struct um_interval *iv;
	uint64_t changed, seq;
	unsigned int n;

	memset(mem, 0x11, np * PAGE);
	CHECK(um_interval_insert(c, mem, np * PAGE, 0, &evlog_ops, NULL, &iv) == 0, "insert");
	CHECK(um_interval_revalidate(iv, LONG_PERIOD, 0, NULL) == 0, "set the period");

	/* write, then mprotect(PROT_READ) as soon as the WRITE completed */
	evlog_reset();
	mem[0] = 1;
	CHECK(um_interval_read_begin(iv, &seq) == 0, "read_begin after the write");
	CHECK(mprotect(mem, PAGE, PROT_READ) == 0, "mprotect: %m");
	changed = now_scan(iv, LONG_PERIOD);
	evlog_settle(3000);
	CHECK(pages_of(iv, UM_REASON_WRITE, &n) == 1 && n == 1, "the write is one WRITE");
	CHECK(changed == 1, "write then mprotect(PROT_READ): %llu pages changed, want 1",
	      (unsigned long long)changed);
	CHECK(covered(iv, UM_REASON_REVALIDATE, mem), "the mprotect is a REVALIDATE of the page");
	pages_of(iv, UM_REASON_REVALIDATE, &n);
	CHECK(n == 1, "one REVALIDATE, %u", n);

	/* the same with PROT_NONE on a page written in this period too */
	evlog_reset();
	mem[2 * PAGE] = 1;
	CHECK(um_interval_read_begin(iv, &seq) == 0, "read_begin after the write");
	CHECK(mprotect(mem + 2 * PAGE, PAGE, PROT_NONE) == 0, "mprotect: %m");
	changed = now_scan(iv, LONG_PERIOD);
	evlog_settle(3000);
	CHECK(changed == 1, "write then mprotect(PROT_NONE): %llu pages changed, want 1",
	      (unsigned long long)changed);
	CHECK(covered(iv, UM_REASON_REVALIDATE, mem + 2 * PAGE),
	      "the mprotect is a REVALIDATE of the page");

	/* what the invalidation itself changed is still not reported twice */
	evlog_reset();
	mem[4 * PAGE] = 1;
	CHECK(um_interval_read_begin(iv, &seq) == 0, "read_begin after the write");
	CHECK(madvise(mem + 6 * PAGE, PAGE, MADV_DONTNEED) == 0, "MADV_DONTNEED: %m");
	CHECK(um_interval_read_begin(iv, &seq) == 0, "read_begin after the zap");
	changed = now_scan(iv, LONG_PERIOD);
	CHECK(changed == 0, "a write and a zap alone: %llu pages changed",
	      (unsigned long long)changed);
	CHECK(evlog_settle(300) == 2, "a WRITE and a REMOVE, nothing else");

	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(mem, np * PAGE);
}

/* 2 MiB of 4 KiB pages, aligned, written through the interval (no uffd-wp left) */
static char *map_thp_candidate(char **base)
{
	char *m = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(m != MAP_FAILED, "mmap: %m");
	*base = m;
	return (char *)(((uintptr_t)m + HPAGE - 1) & ~(HPAGE - 1));
}

static bool is_thp(const char *p)
{
	uint64_t e0 = harness_pagemap(p), e1 = harness_pagemap(p + HPAGE - PAGE);

	return (e0 & PM_PRESENT) && (e1 & PM_PRESENT) && (e0 & PM_PFN_MASK) % 512 == 0 &&
	       (e1 & PM_PFN_MASK) == (e0 & PM_PFN_MASK) + 511;
}

/* THP collapse changes every PFN; a split after it changes the huge state */
static void part_thp(struct um_client *c)
{
	char *base, *m = map_thp_candidate(&base);
	const size_t np = HPAGE / PAGE;
	struct um_interval *iv;
	uint64_t pfn_before, changed, pages;
	unsigned int n;

	/* 4 KiB pages: THP "madvise" mode and no MADV_HUGEPAGE, or "never" */
	for (size_t i = 0; i < np; i++)
		m[i * PAGE] = 1;
	CHECK(um_interval_insert(c, m, HPAGE, 0, &evlog_ops, NULL, &iv) == 0, "insert");
	/*
	 * The period first: the pages' WRITE invalidations complete within
	 * it, and the collapse right after them must still be reported.
	 */
	CHECK(um_interval_revalidate(iv, LONG_PERIOD, 0, NULL) == 0, "period");
	/* khugepaged refuses PTEs that still carry uffd-wp: write every page first */
	for (size_t i = 0; i < np; i++)
		m[i * PAGE] = 2;
	{
		uint64_t seq;

		CHECK(um_interval_read_begin(iv, &seq) == 0, "read_begin after the writes");
	}
	evlog_reset();
	pfn_before = harness_pagemap(m) & PM_PFN_MASK;
	if (madvise(m, HPAGE, MADV_COLLAPSE) != 0 || !is_thp(m)) {
		printf("test_revalidate: THP part skipped: MADV_COLLAPSE: %s\n",
		       is_thp(m) ? "?" : strerror(errno));
		goto out;
	}
	CHECK((harness_pagemap(m) & PM_PFN_MASK) != pfn_before, "the collapse moved the pages");
	changed = now_scan(iv, LONG_PERIOD);
	evlog_settle(3000);
	pages = pages_of(iv, UM_REASON_REVALIDATE, &n);
	CHECK(changed == np, "THP collapse: %llu pages changed, want %zu",
	      (unsigned long long)changed, np);
	CHECK(pages == np && n == 1, "one REVALIDATE over the 2 MiB (%llu pages, %u events)",
	      (unsigned long long)pages, n);
	CHECK(evlog_settle(200) == n,
	      "nothing but REVALIDATE from a collapse (uffd is blind to it)");

	/* mprotect of one subpage splits the PMD, not the folio: that page only */
	evlog_reset();
	CHECK(mprotect(m + 300 * PAGE, PAGE, PROT_READ) == 0, "mprotect: %m");
	changed = now_scan(iv, LONG_PERIOD);
	CHECK(changed == 1, "mprotect inside a THP: %llu pages changed, want 1",
	      (unsigned long long)changed);
	expect_one(iv, m + 300 * PAGE, PAGE, "mprotect inside a THP");

	/* MADV_DONTNEED of one subpage: uffd reports it, the scan the split of the rest */
	evlog_reset();
	CHECK(madvise(m + 100 * PAGE, PAGE, MADV_DONTNEED) == 0, "MADV_DONTNEED: %m");
	evlog_settle(3000);
	CHECK(covered(iv, UM_REASON_REMOVE, m + 100 * PAGE), "userfaultfd reports the zap");
	changed = now_scan(iv, LONG_PERIOD);
	evlog_settle(3000);
	pages = pages_of(iv, UM_REASON_REVALIDATE, &n);
	printf("THP split by MADV_DONTNEED of one subpage: %llu pages changed in %u events\n",
	       (unsigned long long)changed, n);
	CHECK(changed > 0 && pages == changed, "the split is reported (%llu pages, %llu in events)",
	      (unsigned long long)changed, (unsigned long long)pages);
	CHECK(!covered(iv, UM_REASON_REVALIDATE, m + 100 * PAGE), "not the zapped page again");
	CHECK(covered(iv, UM_REASON_REVALIDATE, m + 101 * PAGE),
	      "its neighbour, no longer part of a huge mapping");
out:
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(base, 2 * HPAGE);
}

/* page-out of clean file pages: an async-tracked interval over an ext4 file */
static void part_pageout(struct um_client *c)
{
	const size_t np = 16;
	const char *path = harness_path("file");
	struct um_interval *iv = NULL;
	char *m, buf[PAGE];
	uint64_t changed, pages;
	unsigned int n, gone = 0;
	int fd, ret;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0, "open %s: %m", path);
	memset(buf, 0x33, sizeof(buf));
	for (size_t i = 0; i < np; i++)
		CHECK(write(fd, buf, PAGE) == (ssize_t)PAGE, "write: %m");
	CHECK(fsync(fd) == 0, "fsync: %m");
	m = mmap(NULL, np * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mmap: %m");
	for (size_t i = 0; i < np; i++)
		(void)*(volatile char *)(m + i * PAGE);
	ret = um_interval_insert(c, m, np * PAGE, UM_INTERVAL_TRACK_ASYNC, &evlog_ops, NULL, &iv);
	if (ret) {
		printf("test_revalidate: page-out part skipped: insert of a file mapping with "
		       "UM_INTERVAL_TRACK_ASYNC: %s\n",
		       strerror(-ret));
		goto out;
	}
	CHECK(listed_period(c, iv) > 0, "an async-tracked interval is scanned by default");
	/* no timer scan may come between the two NOW scans */
	evlog_reset();
	CHECK(now_scan(iv, LONG_PERIOD) == 0, "nothing changed yet");
	CHECK(madvise(m, np * PAGE, MADV_PAGEOUT) == 0, "MADV_PAGEOUT: %m");
	for (size_t i = 0; i < np; i++)
		gone += !(harness_pagemap(m + i * PAGE) & PM_PRESENT);
	if (!gone) {
		printf("test_revalidate: page-out part skipped: MADV_PAGEOUT reclaimed nothing\n");
		goto out;
	}
	changed = now_scan(iv, LONG_PERIOD);
	evlog_settle(3000);
	pages = pages_of(iv, UM_REASON_REVALIDATE, &n);
	CHECK(changed == gone && pages == gone,
	      "page-out of %u pages: %llu changed, %llu in events", gone,
	      (unsigned long long)changed, (unsigned long long)pages);
out:
	if (iv)
		CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(m, np * PAGE);
	close(fd);
	unlink(path);
}

/*
 * A page that appears after the baseline (a read fault: no event), is
 * taken by a mirror's snapshot and then goes (page-out of shmem) before
 * the next scan: that scan sees "not present" twice, yet the mirror held
 * the page. The snapshot takes the baseline of such pages.
 */
static void part_appear_snapshot_pageout(struct um_client *c)
{
	const size_t np = 16;
	uint64_t pfns[16], changed, pages;
	struct um_range r = { 0 };
	struct um_interval *iv;
	unsigned int n, gone = 0, held = 0;
	char *m;
	long got;
	int fd;

	fd = memfd_create("umirror-revalidate", MFD_CLOEXEC);
	CHECK(fd >= 0, "memfd_create: %m");
	CHECK(ftruncate(fd, np * PAGE) == 0, "ftruncate: %m");
	m = mmap(NULL, np * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mmap: %m");
	CHECK(um_interval_insert(c, m, np * PAGE, 0, &evlog_ops, NULL, &iv) == 0, "insert");
	/* the baseline: nothing mapped yet */
	CHECK(um_interval_revalidate(iv, LONG_PERIOD, 0, NULL) == 0, "set the period");
	for (size_t i = 0; i < np; i++)
		(void)*(volatile char *)(m + i * PAGE);
	r.start = (uintptr_t)m;
	r.end = (uintptr_t)m + np * PAGE;
	r.pfns = pfns;
	CHECK(um_range_register(&r, iv) == 0, "register");
	got = harness_snapshot(&r);
	CHECK(got == (long)np, "snapshot: %ld", got);
	for (size_t i = 0; i < np; i++)
		held += !!(pfns[i] & UM_DEFAULT_VALID);
	CHECK(held == np, "the mirror holds the %zu read-faulted pages (%u)", np, held);
	evlog_reset();
	CHECK(madvise(m, np * PAGE, MADV_PAGEOUT) == 0, "MADV_PAGEOUT: %m");
	for (size_t i = 0; i < np; i++)
		gone += !(harness_pagemap(m + i * PAGE) & PM_PRESENT);
	if (!gone) {
		printf("test_revalidate: appear-snapshot-pageout part skipped: MADV_PAGEOUT "
		       "reclaimed no shmem page\n");
		goto out;
	}
	changed = now_scan(iv, LONG_PERIOD);
	evlog_settle(3000);
	pages = pages_of(iv, UM_REASON_REVALIDATE, &n);
	CHECK(changed == gone && pages == gone,
	      "page-out of %u held pages that appeared after the baseline: %llu changed, "
	      "%llu in events",
	      gone, (unsigned long long)changed, (unsigned long long)pages);
out:
	um_range_unregister(&r);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(m, np * PAGE);
	close(fd);
}

/* a write to an async-tracked (WP-async) interval is seen by the scan only */
static void part_async_write(struct um_client *c)
{
	const size_t np = 16;
	char *mem = harness_map_anon(np, PROT_READ | PROT_WRITE);
	struct um_interval *iv;
	uint64_t changed;
	int ret;

	memset(mem, 0x22, np * PAGE);
	ret = um_interval_insert(c, mem, np * PAGE, UM_INTERVAL_TRACK_ASYNC, &evlog_ops, NULL, &iv);
	CHECK(ret == 0, "async insert: %s", strerror(-ret));
	if (um_interval_backend(iv) != UM_BACKEND_WP_ASYNC) {
		printf("test_revalidate: async write part skipped: backend %s, not wp-async\n",
		       um_backend_str(um_interval_backend(iv)));
		goto out;
	}
	CHECK(listed_period(c, iv) == 1000, "the daemon's default period (1000 ms) is in force");
	CHECK(um_interval_revalidate(iv, 0, 0, NULL) == 0 && listed_period(c, iv) == 1000,
	      "period 0 keeps the default on a backend that needs the scan");
	/* no timer scan may come between the two NOW scans */
	evlog_reset();
	CHECK(now_scan(iv, LONG_PERIOD) == 0, "nothing written yet");
	mem[5 * PAGE] = 1;
	CHECK(evlog_settle(300) == 0, "the write itself is not reported (nobody waits)");
	changed = now_scan(iv, LONG_PERIOD);
	CHECK(changed == 1, "the scan finds the written page: %llu", (unsigned long long)changed);
	expect_one(iv, mem + 5 * PAGE, PAGE, "write to a wp-async interval");
out:
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(mem, np * PAGE);
}

static int read_knob(const char *name, char *buf, size_t size)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/kernel/mm/ksm/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	return 0;
}

static int write_knob(const char *name, const char *v)
{
	char path[128];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/sys/kernel/mm/ksm/%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, v, strlen(v)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* KSM merges identical pages: every merged page gets another PFN */
static void part_ksm(struct um_client *c)
{
	const size_t np = 32;
	char run[16], scan[16], sleep_ms[16];
	struct um_interval *iv;
	char *mem;
	uint64_t changed, t0;
	bool merged = false;
	int ksm_lock;

	if (access("/sys/kernel/mm/ksm", F_OK) != 0) {
		printf("test_revalidate: KSM part skipped: no /sys/kernel/mm/ksm\n");
		return;
	}
	/*
	 * ksmd's knobs are global: the compat61 copy of this test may run at
	 * the same time, and would save our "1" and restore it after we put
	 * back the machine's "0" (ksmd then runs on, ~10% of a CPU).
	 */
	ksm_lock = open("/tmp/umirror-test-ksm.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	CHECK(ksm_lock >= 0 && flock(ksm_lock, LOCK_EX) == 0, "KSM settings lock: %m");
	if (read_knob("run", run, sizeof(run)) || read_knob("pages_to_scan", scan, sizeof(scan)) ||
	    read_knob("sleep_millisecs", sleep_ms, sizeof(sleep_ms))) {
		printf("test_revalidate: KSM part skipped: cannot read its settings\n");
		close(ksm_lock);
		return;
	}
	mem = harness_map_anon(np, PROT_READ | PROT_WRITE);
	memset(mem, 0x5a, np * PAGE);
	CHECK(um_interval_insert(c, mem, np * PAGE, 0, &evlog_ops, NULL, &iv) == 0, "insert");
	CHECK(um_interval_revalidate(iv, LONG_PERIOD, 0, NULL) == 0, "period");
	CHECK(madvise(mem, np * PAGE, MADV_MERGEABLE) == 0, "MADV_MERGEABLE: %m");
	CHECK(write_knob("pages_to_scan", "5000") == 0 &&
		      write_knob("sleep_millisecs", "10") == 0 && write_knob("run", "1") == 0,
	      "start ksmd");
	evlog_reset();
	t0 = harness_now_ms();
	while (!merged && harness_now_ms() - t0 < 15000) {
		uint64_t a = harness_pagemap(mem), b = harness_pagemap(mem + (np - 1) * PAGE);

		merged = (a & PM_PRESENT) && (a & PM_PFN_MASK) == (b & PM_PFN_MASK);
		if (!merged)
			usleep(20000);
	}
	if (merged) {
		changed = now_scan(iv, LONG_PERIOD);
		evlog_settle(3000);
		CHECK(changed >= np - 1, "KSM merge: %llu pages changed",
		      (unsigned long long)changed);
		CHECK(covered(iv, UM_REASON_REVALIDATE, mem + (np - 1) * PAGE),
		      "a merged page is reported");
	} else {
		printf("test_revalidate: KSM part skipped: ksmd merged nothing in 15 s\n");
	}
	madvise(mem, np * PAGE, MADV_UNMERGEABLE);
	write_knob("pages_to_scan", scan);
	write_knob("sleep_millisecs", sleep_ms);
	write_knob("run", run);
	close(ksm_lock);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(mem, np * PAGE);
}

int main(void)
{
	struct um_client *c;

	harness_start("test_revalidate", NULL);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	part_mprotect(c);
	part_after_invalidation(c);
	part_thp(c);
	part_pageout(c);
	part_appear_snapshot_pageout(c);
	part_async_write(c);
	part_ksm(c);
	um_disconnect(c);
	return harness_summary();
}
