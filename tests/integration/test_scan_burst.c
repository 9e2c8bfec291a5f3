/* SPDX-License-Identifier: MIT */
/*
 * test_scan_burst - one revalidation scan of one interval that finds
 * thousands of separate changed runs (mprotect of every other page, as
 * scattered reclaim or migration would leave it) is a burst the daemon
 * makes on its own: the owner, reading all along, must stay connected,
 * and the invalidations it gets must cover every changed page (a
 * snapshot afterwards matches /proc/self/pagemap and the protections).
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NP 4096
#define PERIOD 600000 /* ms: only the NOW scans run */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char covered[NP];
static unsigned int nreval;
static atomic_uint released;
static uintptr_t base;

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	(void)iv;
	(void)priv;
	if (inv->reason != UM_REASON_REVALIDATE)
		return;
	pthread_mutex_lock(&lock);
	nreval++;
	for (uint64_t a = inv->start; a < inv->end; a += PAGE)
		if (a >= base && a < base + NP * PAGE)
			covered[(a - base) / PAGE] = 1;
	pthread_mutex_unlock(&lock);
}

static void on_release(struct um_interval *iv, int error, void *priv)
{
	(void)iv;
	(void)error;
	(void)priv;
	atomic_fetch_add(&released, 1);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate, .release = on_release };

static uint64_t now_scan(struct um_interval *iv)
{
	uint64_t changed = UINT64_MAX;
	int ret = um_interval_revalidate(iv, PERIOD, UM_REVALIDATE_NOW, &changed);

	CHECK(ret == 0, "revalidate NOW: %s", strerror(-ret));
	return changed;
}

int main(void)
{
	static uint64_t pfns[NP];
	struct um_range r = { .pfns = pfns };
	struct um_interval *iv;
	uint64_t changed, seq;
	unsigned int n, missed = 0;
	struct um_client *c;
	char *mem;
	long got;

	harness_start("test_scan_burst", NULL);
	alarm(harness_scaled_s(120));
	mem = harness_map_anon(NP, PROT_READ | PROT_WRITE);
	memset(mem, 0x5a, (size_t)NP * PAGE);
	base = (uintptr_t)mem;
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	CHECK(um_interval_insert(c, mem, (size_t)NP * PAGE, 0, &ops, NULL, &iv) == 0, "insert");
	changed = now_scan(iv);
	CHECK(changed == 0, "the first scan takes the baseline: %llu changed",
	      (unsigned long long)changed);
	/* the odd pages written (unprotected): WRITE in a snapshot, unless mprotected */
	for (unsigned int i = 1; i < NP; i += 2)
		mem[(size_t)i * PAGE] = 0x33;

	/* NP / 2 runs of one page each: mprotect is nothing userfaultfd reports */
	for (unsigned int i = 0; i < NP; i += 2)
		CHECK(mprotect(mem + (size_t)i * PAGE, PAGE, PROT_READ) == 0,
		      "mprotect page %u: %m", i);
	changed = now_scan(iv);
	CHECK(changed == NP / 2, "the scan found %llu pages changed, want %u",
	      (unsigned long long)changed, NP / 2);
	CHECK(um_ping(c) == 0, "the owner is still connected");
	CHECK(atomic_load(&released) == 0, "the interval was not released");
	CHECK(harness_wait_even(iv, &seq) == 0, "read_begin after the scan");

	pthread_mutex_lock(&lock);
	n = nreval;
	for (unsigned int i = 0; i < NP; i += 2)
		missed += !covered[i];
	pthread_mutex_unlock(&lock);
	printf("test_scan_burst: %u REVALIDATE invalidations for %u changed runs\n", n, NP / 2);
	CHECK(n >= 1 && missed == 0, "%u changed pages not covered by the %u invalidations", missed,
	      n);

	/* the mirror's next snapshot: read-only where mprotected, writable where written */
	r.start = base;
	r.end = base + (size_t)NP * PAGE;
	CHECK(um_range_register(&r, iv) == 0, "register");
	got = harness_snapshot(&r);
	CHECK(got == NP, "snapshot: %ld", got);
	for (unsigned int i = 0; i < NP; i++) {
		uint64_t pm = harness_pagemap(mem + (size_t)i * PAGE);

		CHECK(!!(pfns[i] & UM_DEFAULT_VALID) == !!(pm & PM_PRESENT) &&
			      (pfns[i] >> UM_DEFAULT_PFN_SHIFT) == (pm & PM_PFN_MASK),
		      "page %u: %#llx, pagemap %#llx", i, (unsigned long long)pfns[i],
		      (unsigned long long)pm);
		CHECK(!(pfns[i] & UM_DEFAULT_WRITE) == !(i & 1), "page %u: write %d", i,
		      !!(pfns[i] & UM_DEFAULT_WRITE));
	}
	um_range_unregister(&r);
	CHECK(um_interval_remove(iv) == 0, "remove");
	um_disconnect(c);
	return harness_summary();
}
