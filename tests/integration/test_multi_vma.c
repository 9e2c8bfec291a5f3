/* SPDX-License-Identifier: MIT */
/*
 * test_multi_vma - an interval over several VMAs is armed everywhere, and
 * stays armed after every re-arm (REMOVE, FORK), also when the VMAs were
 * split after insert.
 *
 * Linux 6.1's UFFDIO_WRITEPROTECT works inside one VMA only (-ENOENT for a
 * range that crosses a VMA boundary); later kernels walk every VMA. A
 * daemon that protects the interval in one call is then blind on 6.1:
 * insert fails, or a re-arm silently leaves pages writable and their next
 * write is never reported. Every check here is "a write to a mirrored
 * page ran our callback before it returned".
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPAGES 12
#define RO_FIRST 4 /* pages [RO_FIRST, RO_END) are a PROT_READ VMA */
#define RO_END 8

static atomic_uint ninv;
static sem_t fork_sem;			 /* posted per FORK invalidation */
static _Atomic uint64_t covered[NPAGES]; /* invalidations that covered page i */
static char *base;

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	(void)iv;
	(void)priv;
	for (size_t i = 0; i < NPAGES; i++) {
		uint64_t a = (uintptr_t)base + i * PAGE;

		if (a >= inv->start && a < inv->end)
			atomic_fetch_add(&covered[i], 1);
	}
	atomic_fetch_add(&ninv, 1);
	if (inv->reason == UM_REASON_FORK)
		sem_post(&fork_sem);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

static bool writable_page(size_t i)
{
	return i < RO_FIRST || i >= RO_END;
}

/* every writable page: protected in pagemap, and its first write reported */
static void check_armed(struct um_interval *iv, const char *what)
{
	for (size_t i = 0; i < NPAGES; i++) {
		uint64_t seq, before;

		if (!writable_page(i))
			continue;
		CHECK(um_interval_read_begin(iv, &seq) == 0, "%s: read_begin", what);
		before = atomic_load(&covered[i]);
		base[i * PAGE]++; /* returns only once the daemon let it */
		CHECK(atomic_load(&covered[i]) > before,
		      "%s: page %zu written with no invalidation covering it (pagemap %#llx)", what,
		      i, (unsigned long long)harness_pagemap(base + i * PAGE));
		CHECK(um_interval_read_retry(iv, seq), "%s: page %zu: read_retry false", what, i);
	}
}

static void touch_all(void)
{
	for (size_t i = 0; i < NPAGES; i++)
		if (writable_page(i))
			base[i * PAGE] = 1;
}

static void wait_valid(struct um_interval *iv, const char *what)
{
	uint64_t seq;

	CHECK(um_interval_read_begin(iv, &seq) == 0, "%s: valid again", what);
}

/* three VMAs at insert: RW | RO | RW */
static void split_before_insert(struct um_client *c)
{
	struct um_interval *iv;
	int ret;

	touch_all();
	CHECK(mprotect(base + RO_FIRST * PAGE, (RO_END - RO_FIRST) * PAGE, PROT_READ) == 0,
	      "mprotect: %m");
	ret = um_interval_insert(c, base, NPAGES * PAGE, 0, &ops, NULL, &iv);
	CHECK(ret == 0, "insert over three VMAs: %d", ret);
	if (ret)
		return;
	check_armed(iv, "after insert over three VMAs");

	/* REMOVE over every VMA: the re-arm must cover all of them */
	CHECK(madvise(base, NPAGES * PAGE, MADV_DONTNEED) == 0, "madvise: %m");
	wait_valid(iv, "after MADV_DONTNEED");
	check_armed(iv, "after MADV_DONTNEED over three VMAs");

	CHECK(um_interval_remove(iv) == 0, "remove");
	CHECK(mprotect(base, NPAGES * PAGE, PROT_READ | PROT_WRITE) == 0, "mprotect back: %m");
}

/* one VMA at insert, split by mprotect later; then REMOVE and FORK re-arms */
static void split_after_insert(struct um_client *c)
{
	struct um_interval *iv;
	pid_t pid;
	int status;

	touch_all();
	CHECK(um_interval_insert(c, base, NPAGES * PAGE, 0, &ops, NULL, &iv) == 0, "insert");
	check_armed(iv, "after insert over one VMA");
	CHECK(mprotect(base + RO_FIRST * PAGE, (RO_END - RO_FIRST) * PAGE, PROT_READ) == 0,
	      "mprotect: %m");

	CHECK(madvise(base, NPAGES * PAGE, MADV_DONTNEED) == 0, "madvise: %m");
	wait_valid(iv, "after MADV_DONTNEED");
	check_armed(iv, "after MADV_DONTNEED over VMAs split since insert");

	/* written since armed: a fork re-arms the whole interval */
	pid = fork();
	CHECK(pid >= 0, "fork: %m");
	if (pid == 0)
		_exit(0);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status), "child");
	/*
	 * The FORK invalidation comes after fork() returned (the kernel
	 * waits only for its event to be read): until it completed, a
	 * write may reuse the page without a fault, as documented. From
	 * its completion on, the whole interval must be armed again.
	 */
	CHECK(harness_sem_wait_ms(&fork_sem, 10000), "a FORK invalidation");
	wait_valid(iv, "after fork");
	check_armed(iv, "after fork over VMAs split since insert");

	CHECK(um_interval_remove(iv) == 0, "remove");
}

int main(void)
{
	struct um_client *c;

	if (geteuid() != 0)
		harness_skip("umirrord needs root (userfaultfd of another process, PFNs)");
	sem_init(&fork_sem, 0, 0);
	/* first writes page by page, each its own WRITE (granules: test_write_granule) */
	static const char *const args[] = { "--write-granule", "1", NULL };

	harness_start("test_multi_vma", args);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	base = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	split_before_insert(c);
	split_after_insert(c);
	um_disconnect(c);
	return harness_summary();
}
