// SPDX-License-Identifier: MIT
/*
 * B3: the first write to a mirrored page.
 *
 * umirror: pages of a populated interval (sync mode, the default) are
 * written one after another. Each write faults on the uffd write-protect
 * bit; umirrord reads the fault, sends the invalidation to the library's
 * event thread, which runs a trivial invalidate callback and acknowledges;
 * the daemon then unprotects the page, which wakes the writer. The figure
 * is the time per page.
 * Baseline: the same writes to memory mprotect()ed read-only, with a
 * SIGSEGV handler that makes the faulting page writable: the cheapest
 * in-process way to learn of a first write before it happens.
 *
 * Checks: after each write its invalidation has already been handled (the
 * writer really waited), each page's callback came exactly once with
 * reason WRITE, sync, one page; the sequence moved by two per write; the
 * baseline's handler ran once per page.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "timing.h"

#define B3_PAGES 2000u
#define B3_BYTES ((size_t)B3_PAGES * 4096)

struct b3 {
	struct um_client *c;
	uint8_t *uf_mem;    /* mirrored through umirror */
	uint8_t *mp_mem;    /* mprotect baseline */
	uint8_t *seen;	    /* per page: invalidations this run */
	atomic_uint invals; /* callbacks this run */
	atomic_uint bad;    /* callbacks that were not what one write implies */
	atomic_bool released;
};

/* The baseline's handler needs its region without a context pointer. */
static uint8_t *mp_base;
static volatile sig_atomic_t mp_faults;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr, base = (uintptr_t)mp_base;

	if (!mp_base || a < base || a >= base + B3_BYTES ||
	    mprotect((void *)(a & ~4095ul), 4096, PROT_READ | PROT_WRITE) < 0) {
		/* not ours: die of it, as without the handler */
		signal(SIGSEGV, SIG_DFL);
		return;
	}
	mp_faults++;
}

static void invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct b3 *b = priv;
	uintptr_t base = (uintptr_t)b->uf_mem;

	if (inv->reason != UM_REASON_WRITE || !inv->sync || inv->end - inv->start != 4096 ||
	    inv->start < base || inv->start >= base + B3_BYTES ||
	    b->seen[(inv->start - base) / 4096]++)
		atomic_fetch_add(&b->bad, 1);
	atomic_fetch_add_explicit(&b->invals, 1, memory_order_release);
}

static void release(struct um_interval *iv, int error, void *priv)
{
	struct b3 *b = priv;

	atomic_store(&b->released, true);
}

static const struct um_interval_ops b3_ops = {
	.invalidate = invalidate,
	.release = release,
};

/* Write the first byte of every page; count writes whose callback had not run. */
static unsigned int write_pages(uint8_t *mem, atomic_uint *done, double *us)
{
	volatile uint8_t *p = mem;
	unsigned int i, late = 0;
	uint64_t t0;

	t0 = bench_now_ns();
	for (i = 0; i < B3_PAGES; i++) {
		p[(size_t)i * 4096] = (uint8_t)(i | 1);
		if (done && atomic_load_explicit(done, memory_order_acquire) != i + 1)
			late++;
	}
	*us = (double)(bench_now_ns() - t0) / 1e3 / B3_PAGES;
	return late;
}

static int umirror_once(void *ctx, bool warm_up, double *us, const char **what)
{
	struct b3 *b = ctx;
	struct um_interval *iv = NULL;
	unsigned int late, i;
	uint64_t seq = 0;
	int ret;

	memset(b->seen, 0, B3_PAGES);
	atomic_store(&b->invals, 0);
	atomic_store(&b->bad, 0);
	*what = "um_interval_insert";
	ret = um_interval_insert(b->c, b->uf_mem, B3_BYTES, 0, &b3_ops, b, &iv);
	if (ret < 0)
		return ret;

	late = write_pages(b->uf_mem, &b->invals, us);

	*what = "um_interval_read_begin after the writes";
	ret = um_interval_read_begin(iv, &seq);
	if (ret < 0)
		goto out;
	ret = -EBADMSG;
	if (atomic_load(&b->released)) {
		*what = "interval released during the writes";
		goto out;
	}
	if (late) {
		fprintf(stderr, "umirror-bench: B3: %u writes returned before their callback\n",
			late);
		*what = "a write returned before its invalidation was handled (not sync)";
		goto out;
	}
	if (atomic_load(&b->bad)) {
		fprintf(stderr, "umirror-bench: B3: %u unexpected invalidations\n",
			atomic_load(&b->bad));
		*what = "an invalidation was not (WRITE, sync, one page, first time)";
		goto out;
	}
	for (i = 0; i < B3_PAGES; i++)
		if (b->seen[i] != 1) {
			*what = "a write produced no invalidation";
			goto out;
		}
	if (seq != 2ull * B3_PAGES) {
		fprintf(stderr, "umirror-bench: B3: seq %llu after %u writes, expected %u\n",
			(unsigned long long)seq, B3_PAGES, 2 * B3_PAGES);
		*what = "the sequence did not move by two per write";
		goto out;
	}
	ret = 0;
out:
	if (um_interval_remove(iv) < 0 && ret == 0) {
		*what = "um_interval_remove";
		ret = -ENOTCONN;
	}
	return ret;
}

static int baseline_once(void *ctx, bool warm_up, double *us, const char **what)
{
	*what = "mprotect(PROT_READ)";
	if (mprotect(mp_base, B3_BYTES, PROT_READ) < 0)
		return -errno;
	mp_faults = 0;
	write_pages(mp_base, NULL, us);
	if (mp_faults != B3_PAGES) {
		*what = "SIGSEGV handler did not run once per page";
		return -EBADMSG;
	}
	return 0;
}

/* the medians come out in this order */
enum { B3_MPROTECT, B3_UMIRROR, B3_NSTEPS };

static const struct bench_step b3_steps[B3_NSTEPS] = {
	[B3_MPROTECT] = { "mprotect baseline", baseline_once },
	[B3_UMIRROR] = { "umirror writes", umirror_once },
};

static const struct bench_plan b3_plan = { b3_steps, B3_NSTEPS, NULL };

static uint8_t *map_populated(void)
{
	uint8_t *m =
		mmap(NULL, B3_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return NULL;
	madvise(m, B3_BYTES, MADV_NOHUGEPAGE); /* measure the 4 KiB path */
	memset(m, 1, B3_BYTES);
	return m;
}

int bench_b3_first_write(struct um_client *c, const struct bench_opts *o)
{
	struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO }, old;
	struct b3 b = { .c = c, .seen = malloc(B3_PAGES) };
	unsigned int runs = bench_runs(o);
	const char *what = "setup";
	double med[B3_NSTEPS];
	bool handler = false;
	int ret = -ENOMEM;

	if (!b.seen)
		goto fail;
	b.uf_mem = map_populated();
	b.mp_mem = map_populated();
	if (!b.uf_mem || !b.mp_mem) {
		ret = -errno;
		goto fail;
	}
	mp_base = b.mp_mem;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &old) < 0) {
		ret = -errno;
		goto fail;
	}
	handler = true;

	ret = bench_interleave(&b3_plan, &b, runs, med, &what);
	if (ret < 0)
		goto fail;
	bench_report(&(struct bench_result){
		.bench = "B3_first_write",
		.unit = "us",
		.value = med[B3_UMIRROR],
		.baseline = med[B3_MPROTECT],
		.baseline_name = "mprotect(PROT_READ) + SIGSEGV handler mprotect RW, per page",
		.target = NAN,
		.goal = NAN,
		.runs = runs,
		.note = "per page over 2000 populated pages; sync invalidation round trip "
			"through umirrord and the library's event thread",
	});
	ret = 0;
	goto out;
fail:
	bench_fail("B3_first_write", ret == -EBADMSG ? 0 : ret, "%s", what);
out:
	if (handler)
		sigaction(SIGSEGV, &old, NULL);
	mp_base = NULL;
	if (b.uf_mem)
		munmap(b.uf_mem, B3_BYTES);
	if (b.mp_mem)
		munmap(b.mp_mem, B3_BYTES);
	free(b.seen);
	return ret;
}
