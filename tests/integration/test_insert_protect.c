/* SPDX-License-Identifier: MIT */
/*
 * test_insert_protect - INSERT of an interval over pages another interval's
 * mirror holds writable invalidates that interval first.
 *
 * An interval starts write-protected (UFFDIO_WRITEPROTECT over its whole
 * range). A page an older interval covers, written since it was armed,
 * may be held VALID|WRITE by that interval's mirror; the new interval's
 * arm takes the write permission away in the CPU page table, which is a
 * downgrade of the mirror's entry (the kernel's own UFFDIO_WRITEPROTECT
 * runs mmu notifiers for it). Before the fix the older interval heard
 * nothing.
 *
 * Interval A over 16 pages; page 5 written (WRITE invalidation, then a
 * snapshot shows it VALID|WRITE). Interval B inserted over pages 4..7:
 *  - when the insert returns, A's sequence has moved (read_retry true)
 *    and A got a PROTECT invalidation of the overlap [4, 8);
 *  - once A is valid again, page 5 is write-protected in pagemap (the
 *    protect was applied before the sequence went even) and a snapshot of
 *    A shows it without WRITE;
 *  - B itself got no invalidation.
 * Then page 10 (A only) written and snapshot VALID|WRITE, and a dirty
 * harvest with UM_DIRTY_REARM, which write-protects it again: the same
 * checks (PROTECT invalidation of A covering page 10, started when the
 * harvest returns; page 10 protected once A is valid).
 * Then the same for a WP_ASYNC interval (UM_INTERVAL_TRACK_ASYNC where the
 * kernel has it; the part says so and is left out where not): its REARM
 * re-protects in PAGEMAP_SCAN, and its own mirror, which holds a written
 * page VALID|WRITE, heard nothing before the fix.
 */
#include "evlog.h"
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NPAGES 16
static void dump_events(const char *what)
{
	pthread_mutex_lock(&evlog.lock);
	for (unsigned int i = 0; i < evlog.n; i++)
		fprintf(stderr, "%s: event %u: interval %p %s [%#llx, %#llx) seq %llu\n", what, i,
			(void *)evlog.ev[i].iv, um_reason_str(evlog.ev[i].inv.reason),
			(unsigned long long)evlog.ev[i].inv.start,
			(unsigned long long)evlog.ev[i].inv.end,
			(unsigned long long)evlog.ev[i].inv.seq);
	pthread_mutex_unlock(&evlog.lock);
}

/* invalidations of @iv seen so far; @match: the one with @reason over [@start, @end) */
static unsigned int events_of(struct um_interval *iv, enum um_reason reason, uint64_t start,
			      uint64_t end, bool *match)
{
	unsigned int n = 0;

	*match = false;
	pthread_mutex_lock(&evlog.lock);
	for (unsigned int i = 0; i < evlog.n; i++) {
		if (evlog.ev[i].iv != iv)
			continue;
		n++;
		if (evlog.ev[i].inv.reason == reason && evlog.ev[i].inv.start == start &&
		    evlog.ev[i].inv.end == end)
			*match = true;
	}
	pthread_mutex_unlock(&evlog.lock);
	return n;
}

/* @page's entry in @iv's snapshot, taken once @iv is valid */
static uint64_t entry(struct um_interval *iv, char *page, uint64_t *seq)
{
	uint64_t pfn = 0;
	struct um_range r = { .start = (uintptr_t)page,
			      .end = (uintptr_t)page + PAGE,
			      .pfns = &pfn };
	long n;

	CHECK(um_range_register(&r, iv) == 0, "range register");
	CHECK(um_range_wait_until_valid(&r, 5000) == 0, "valid within 5 s");
	n = harness_snapshot(&r);
	CHECK(n == 1, "snapshot: %ld", n);
	*seq = r.notifier_seq;
	um_range_unregister(&r);
	return pfn;
}

/* @iv got a PROTECT invalidation covering @page */
static bool protect_covers(struct um_interval *iv, const char *page)
{
	bool match = false;

	pthread_mutex_lock(&evlog.lock);
	for (unsigned int i = 0; i < evlog.n; i++)
		match |= evlog.ev[i].iv == iv && evlog.ev[i].inv.reason == UM_REASON_PROTECT &&
			 evlog.ev[i].inv.start <= (uintptr_t)page &&
			 (uintptr_t)page < evlog.ev[i].inv.end;
	pthread_mutex_unlock(&evlog.lock);
	return match;
}

/* a REARM harvest of [m, m + NPAGES pages) that reports @page */
static void rearm_reports(struct um_interval *iv, char *m, char *page)
{
	struct um_dirty_range out[16];
	uint64_t walk_end = 0;
	long nr = um_interval_dirty(iv, (uintptr_t)m, (uintptr_t)m + NPAGES * PAGE, UM_DIRTY_REARM,
				    out, 16, &walk_end);
	bool has = false;

	CHECK(nr > 0, "dirty harvest: %ld", nr);
	for (long i = 0; i < nr; i++)
		has |= out[i].start <= (uintptr_t)page && (uintptr_t)page < out[i].end;
	CHECK(has, "page %ld reported dirty", (long)((page - m) / PAGE));
}

static void part_wp_async(struct um_client *c)
{
	char *m = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	struct um_interval *w;
	uint64_t seq, pm, e;
	int ret;

	memset(m, 1, NPAGES * PAGE);
	ret = um_interval_insert(c, m, NPAGES * PAGE, UM_INTERVAL_TRACK_ASYNC, &evlog_ops, NULL,
				 &w);
	CHECK(ret == 0, "insert W with UM_INTERVAL_TRACK_ASYNC: %s", strerror(-ret));
	if (um_interval_backend(w) != UM_BACKEND_WP_ASYNC) {
		printf("test_insert_protect: TRACK_ASYNC gives %s here, not wp-async: its REARM "
		       "part not run\n",
		       um_backend_str(um_interval_backend(w)));
		CHECK(um_interval_remove(w) == 0, "remove W");
		munmap(m, NPAGES * PAGE);
		return;
	}
	/* a WP_ASYNC write never waits: the mirror may hold page 6 writable */
	m[6 * PAGE] = 4;
	e = entry(w, m + 6 * PAGE, &seq);
	CHECK((e & (UM_DEFAULT_VALID | UM_DEFAULT_WRITE)) == (UM_DEFAULT_VALID | UM_DEFAULT_WRITE),
	      "W's snapshot holds page 6 VALID|WRITE: %#llx", (unsigned long long)e);
	evlog_reset();
	rearm_reports(w, m, m + 6 * PAGE);
	CHECK(um_interval_read_retry(w, seq), "W invalidated by the time the REARM returned");
	e = entry(w, m + 6 * PAGE, &seq);
	pm = harness_pagemap(m + 6 * PAGE);
	if (!protect_covers(w, m + 6 * PAGE))
		dump_events("wp-async rearm");
	CHECK(protect_covers(w, m + 6 * PAGE), "W got a PROTECT invalidation covering page 6");
	CHECK(pm & PM_UFFD_WP, "once W is valid again page 6 is write-protected (pagemap %#llx)",
	      (unsigned long long)pm);
	CHECK(!(e & UM_DEFAULT_WRITE), "W's snapshot shows page 6 not writable: %#llx",
	      (unsigned long long)e);
	/* nothing written since: nothing to take, nothing sent */
	evlog_reset();
	{
		struct um_dirty_range out[16];
		long nr = um_interval_dirty(w, (uintptr_t)m, (uintptr_t)m + NPAGES * PAGE,
					    UM_DIRTY_REARM, out, 16, NULL);

		CHECK(nr == 0, "W: nothing written since the REARM: %ld ranges", nr);
	}
	CHECK(!protect_covers(w, m + 6 * PAGE), "no PROTECT for a REARM that protects nothing");
	CHECK(um_interval_remove(w) == 0, "remove W");
	munmap(m, NPAGES * PAGE);
}

int main(void)
{
	struct um_interval *a, *b;
	uint64_t seq, pm, e;
	struct um_client *c;
	unsigned int n;
	bool match;
	char *mem;

	harness_start("test_insert_protect", NULL);
	mem = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	memset(mem, 1, NPAGES * PAGE);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	CHECK(um_interval_insert(c, mem, NPAGES * PAGE, 0, &evlog_ops, NULL, &a) == 0, "insert A");

	/* page 5 written: A's mirror may now hold it writable */
	mem[5 * PAGE] = 2;
	e = entry(a, mem + 5 * PAGE, &seq);
	CHECK((e & (UM_DEFAULT_VALID | UM_DEFAULT_WRITE)) == (UM_DEFAULT_VALID | UM_DEFAULT_WRITE),
	      "A's snapshot holds page 5 VALID|WRITE: %#llx", (unsigned long long)e);
	CHECK(!(harness_pagemap(mem + 5 * PAGE) & PM_UFFD_WP), "page 5 unprotected");
	evlog_reset();

	CHECK(um_interval_insert(c, mem + 4 * PAGE, 4 * PAGE, 0, &evlog_ops, NULL, &b) == 0,
	      "insert B over pages 4..7");
	/* started before the arm, so before the insert's reply */
	CHECK(um_interval_read_retry(a, seq), "A invalidated by the time B's insert returned");

	e = entry(a, mem + 5 * PAGE, &seq);
	pm = harness_pagemap(mem + 5 * PAGE);
	n = events_of(a, UM_REASON_PROTECT, (uintptr_t)mem + 4 * PAGE, (uintptr_t)mem + 8 * PAGE,
		      &match);
	if (n != 1 || !match)
		dump_events("insert B");
	CHECK(n == 1 && match, "A got one PROTECT invalidation over the overlap [4, 8): %u events",
	      n);
	CHECK(pm & PM_UFFD_WP, "once A is valid again page 5 is write-protected (pagemap %#llx)",
	      (unsigned long long)pm);
	CHECK((e & (UM_DEFAULT_VALID | UM_DEFAULT_WRITE | UM_DEFAULT_UFFD_WP)) ==
		      (UM_DEFAULT_VALID | UM_DEFAULT_UFFD_WP),
	      "A's snapshot shows page 5 armed, not writable: %#llx", (unsigned long long)e);
	n = events_of(b, UM_REASON_PROTECT, 0, 0, &match);
	CHECK(n == 0, "B itself was not invalidated: %u events", n);

	CHECK(um_interval_remove(b) == 0, "remove B");

	/* dirty REARM write-protects what it reports: the same downgrade */
	mem[10 * PAGE] = 3;
	e = entry(a, mem + 10 * PAGE, &seq);
	CHECK((e & (UM_DEFAULT_VALID | UM_DEFAULT_WRITE)) == (UM_DEFAULT_VALID | UM_DEFAULT_WRITE),
	      "A's snapshot holds page 10 VALID|WRITE: %#llx", (unsigned long long)e);
	evlog_reset();
	rearm_reports(a, mem, mem + 10 * PAGE);
	CHECK(um_interval_read_retry(a, seq), "A invalidated by the time the REARM returned");
	e = entry(a, mem + 10 * PAGE, &seq);
	pm = harness_pagemap(mem + 10 * PAGE);
	match = protect_covers(a, mem + 10 * PAGE);
	if (!match)
		dump_events("dirty rearm");
	CHECK(match, "A got a PROTECT invalidation covering page 10");
	CHECK(pm & PM_UFFD_WP, "once A is valid again page 10 is write-protected (pagemap %#llx)",
	      (unsigned long long)pm);
	CHECK(!(e & UM_DEFAULT_WRITE), "A's snapshot shows page 10 not writable: %#llx",
	      (unsigned long long)e);

	CHECK(um_interval_remove(a) == 0, "remove A");
	part_wp_async(c);
	um_disconnect(c);
	munmap(mem, NPAGES * PAGE);
	return harness_summary();
}
