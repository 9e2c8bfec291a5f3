/* SPDX-License-Identifier: MIT */
/*
 * test_hugetlb_wp - write tracking of hugetlb memory works a whole huge
 * page at a time.
 *
 * A hugetlb page is write-protected, unprotected and copied on write as
 * one page: UFFDIO_WRITEPROTECT refuses (EINVAL) a range that is not
 * huge-page aligned. A daemon that unprotects only the 4 KiB page a
 * writer faulted on never wakes the writer, and a write fault
 * (um_range_fault) of part of a huge page never completes.
 *
 *  - CPU write: one byte written inside a protected 2 MiB page returns,
 *    after a WRITE invalidation covering the whole huge page (every 4 KiB
 *    of it becomes writable, and the dirty log says so); pagemap shows
 *    the whole page unprotected.
 *  - um_range_fault(WRITE) of 5 pages inside another protected huge page
 *    returns 5 writable entries, after a WRITE invalidation covering that
 *    whole huge page.
 *
 * Needs two free 2 MiB huge pages (vm.nr_hugepages): exit 77 otherwise.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE (2ul << 20)
#define MAX_EV 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct um_invalidation evs[MAX_EV];
static unsigned int nev;

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	(void)iv;
	(void)priv;
	pthread_mutex_lock(&lock);
	if (nev < MAX_EV)
		evs[nev++] = *inv;
	pthread_mutex_unlock(&lock);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

/* free huge pages nobody has reserved yet */
static long hugepages_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	long free_pages = -1, rsvd = -1, size_kb = -1;
	char line[256];

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "HugePages_Free: %ld", &free_pages);
		sscanf(line, "HugePages_Rsvd: %ld", &rsvd);
		sscanf(line, "Hugepagesize: %ld kB", &size_kb);
	}
	fclose(f);
	if (size_kb != (long)(HUGE >> 10) || free_pages < 0 || rsvd < 0)
		return 0;
	return free_pages - rsvd;
}

/* a WRITE invalidation whose span covers [@start, @end) exactly, seen already */
static bool write_covering(uint64_t start, uint64_t end)
{
	bool found = false;

	pthread_mutex_lock(&lock);
	for (unsigned int i = 0; i < nev; i++)
		if (evs[i].reason == UM_REASON_WRITE && evs[i].start == start && evs[i].end == end)
			found = true;
	pthread_mutex_unlock(&lock);
	return found;
}

static void dump_events(const char *what)
{
	pthread_mutex_lock(&lock);
	for (unsigned int i = 0; i < nev; i++)
		fprintf(stderr, "%s: event %u: %s [%#llx, %#llx) seq %llu\n", what, i,
			um_reason_str(evs[i].reason), (unsigned long long)evs[i].start,
			(unsigned long long)evs[i].end, (unsigned long long)evs[i].seq);
	pthread_mutex_unlock(&lock);
}

static void cpu_write(struct um_interval *iv, char *page)
{
	struct harness_writer w;
	uint64_t seq0;
	bool returned;

	CHECK(um_interval_read_begin(iv, &seq0) == 0 && !(seq0 & 1), "read_begin even");
	CHECK(harness_pagemap(page) & PM_UFFD_WP,
	      "the huge page is write-protected (pagemap %#llx)",
	      (unsigned long long)harness_pagemap(page));
	/* one byte inside the 6th 4 KiB page of the huge page */
	harness_writer_start(&w, page + 5 * PAGE + 7, 1, 'w');
	returned = harness_sem_wait_ms(&w.done, 10000);
	if (!returned)
		dump_events("cpu write");
	CHECK(returned, "a write of 1 byte inside a protected huge page returns (10 s)");
	harness_writer_join(&w);
	CHECK(page[5 * PAGE + 7] == 'w', "the byte was written");
	CHECK(um_interval_read_retry(iv, seq0), "the write invalidated the interval");
	if (!write_covering((uintptr_t)page, (uintptr_t)page + HUGE))
		dump_events("cpu write");
	CHECK(write_covering((uintptr_t)page, (uintptr_t)page + HUGE),
	      "a WRITE invalidation covers the whole huge page [%p, +2 MiB)", page);
	for (size_t off = 0; off < HUGE; off += 64 * PAGE)
		CHECK(!(harness_pagemap(page + off) & PM_UFFD_WP),
		      "page +%zu KiB of the huge page is unprotected", off >> 10);
}

static void fault_write(struct um_interval *iv, char *page)
{
	uint64_t pfns[5];
	struct um_range r = { .start = (uintptr_t)page + 3 * PAGE,
			      .end = (uintptr_t)page + 8 * PAGE,
			      .pfns = pfns,
			      .default_flags = UM_DEFAULT_VALID | UM_DEFAULT_WRITE };
	long ret;

	CHECK(harness_pagemap(page) & PM_UFFD_WP, "the second huge page is write-protected");
	CHECK(um_range_register(&r, iv) == 0, "range register");
	ret = um_range_fault(&r, 0);
	if (ret != 5)
		dump_events("fault");
	CHECK(ret == 5, "write fault of 5 pages inside a huge page: %ld (%s), want 5", ret,
	      ret < 0 ? strerror((int)-ret) : "-");
	for (int i = 0; i < 5; i++)
		CHECK((pfns[i] & (UM_DEFAULT_VALID | UM_DEFAULT_WRITE | UM_DEFAULT_HUGE)) ==
			      (UM_DEFAULT_VALID | UM_DEFAULT_WRITE | UM_DEFAULT_HUGE),
		      "entry %d valid, writable, huge: %#llx", i, (unsigned long long)pfns[i]);
	CHECK(write_covering((uintptr_t)page, (uintptr_t)page + HUGE),
	      "a WRITE invalidation covers the whole huge page [%p, +2 MiB)", page);
	CHECK(!(harness_pagemap(page + HUGE - PAGE) & PM_UFFD_WP),
	      "the last 4 KiB of the huge page is unprotected too");
	um_range_unregister(&r);
}

int main(void)
{
	struct um_interval *iv;
	struct um_client *c;
	long avail;
	char *mem;

	harness_start("test_hugetlb_wp", NULL);
	avail = hugepages_available();
	if (avail < 2) {
		char why[160];

		snprintf(why, sizeof(why),
			 "needs 2 free unreserved 2 MiB huge pages, %ld available "
			 "(raise vm.nr_hugepages)",
			 avail);
		harness_skip(why);
	}
	mem = mmap(NULL, 2 * HUGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (mem == MAP_FAILED)
		harness_skip("mmap(MAP_HUGETLB) of 2 huge pages failed");
	memset(mem, 1, 2 * HUGE);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	CHECK(um_interval_insert(c, mem, 2 * HUGE, 0, &ops, NULL, &iv) == 0,
	      "insert over 2 hugetlb pages");
	cpu_write(iv, mem);
	fault_write(iv, mem + HUGE);
	CHECK(um_interval_remove(iv) == 0, "remove");
	um_disconnect(c);
	munmap(mem, 2 * HUGE);
	return harness_summary();
}
