// SPDX-License-Identifier: MIT
/*
 * B1s: snapshot of a sparse 1 GiB: 10 % of the pages populated, in runs of
 * 1 MiB every 10 MiB, the rest never touched (holes in the page tables).
 *
 * umirror: um_range_snapshot() of one interval over the whole GiB; the
 * library fills all 262,144 entries.
 * Baseline: one in-process pread of /proc/self/pagemap for the whole
 * range, i.e. what a program without umirror reads to learn the same.
 * Issue 12's target: umirror >= 3 times faster (ratio = pread / umirror),
 * which needs the daemon to skip holes instead of reading every entry.
 *
 * Checks: every populated page VALID, every other page not VALID.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "timing.h"
#include "uapi_compat.h"

#define B1S_BYTES (1ull << 30)
#define B1S_PAGES (B1S_BYTES / 4096)
#define B1S_RUN 256u	 /* populated pages per run (1 MiB) */
#define B1S_STRIDE 2560u /* a run every 10 MiB */

struct b1s {
	struct um_client *c;
	uint8_t *mem;
	struct um_interval *iv;
	struct um_range range;
	uint64_t *pfns;
	uint64_t *pm;
	int pagemap_fd;
	bool has_scan; /* PAGEMAP_SCAN: the floor of skipping holes, in process */
};

static bool populated(uint64_t i)
{
	return i % B1S_STRIDE < B1S_RUN;
}

static int step_pagemap(void *ctx, bool warm_up, double *ms, const char **what)
{
	struct b1s *b = ctx;
	size_t want = B1S_PAGES * sizeof(uint64_t);
	off_t off = (off_t)((uintptr_t)b->mem / 4096 * sizeof(uint64_t));
	uint64_t t0, i;
	ssize_t n;

	t0 = bench_now_ns();
	n = pread(b->pagemap_fd, b->pm, want, off);
	*ms = (double)(bench_now_ns() - t0) / 1e6;
	if (n < 0)
		return -errno;
	if ((size_t)n != want)
		return -EIO;
	for (i = 0; i < B1S_PAGES; i++)
		if (!!(b->pm[i] & PM_PRESENT) != populated(i)) {
			*what = "pagemap: a page's presence is not what the bench wrote";
			return -EBADMSG;
		}
	return 0;
}

static int step_snapshot(void *ctx, bool warm_up, double *ms, const char **what)
{
	struct b1s *b = ctx;
	uint64_t t0, i;
	long n;

	memset(b->pfns, 0xff, B1S_PAGES * sizeof(uint64_t));
	t0 = bench_now_ns();
	n = um_range_snapshot(&b->range);
	*ms = (double)(bench_now_ns() - t0) / 1e6;
	if (n < 0)
		return (int)n;
	if ((uint64_t)n != B1S_PAGES)
		return -EIO;
	for (i = 0; i < B1S_PAGES; i++) {
		bool valid = (b->pfns[i] & UM_DEFAULT_VALID) && !(b->pfns[i] & UM_DEFAULT_ERROR);

		if (valid != populated(i)) {
			*what = valid ? "snapshot: a hole reported VALID"
				      : "snapshot: a populated page not VALID";
			return -EBADMSG;
		}
	}
	return 0;
}

/*
 * Diagnostic: the kernel's own cost of finding the populated runs, one
 * in-process PAGEMAP_SCAN of the range for present or swap-format pages
 * (what a daemon skipping holes would have to do first). The interval's
 * never-touched pages carry uffd-wp markers (WP_UNPOPULATED), which the
 * scan has to visit one PTE at a time like present pages.
 */
static int step_scan(void *ctx, bool warm_up, double *ms, const char **what)
{
	struct b1s *b = ctx;
	uint64_t addr = (uintptr_t)b->mem, end = addr + B1S_BYTES, t0, pages = 0;
	struct page_region vec[256];

	if (!b->has_scan) {
		*ms = NAN;
		return 0;
	}
	t0 = bench_now_ns();
	while (addr < end) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.start = addr,
			.end = end,
			.vec = (uint64_t)(uintptr_t)vec,
			.vec_len = 256,
			.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
			.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_WRITTEN,
		};
		int n = ioctl(b->pagemap_fd, PAGEMAP_SCAN, &arg);

		if (n < 0)
			return -errno;
		for (int k = 0; k < n; k++)
			if (vec[k].categories & PAGE_IS_PRESENT)
				pages += (vec[k].end - vec[k].start) / 4096;
		if (arg.walk_end <= addr)
			return -EIO;
		addr = arg.walk_end;
	}
	*ms = (double)(bench_now_ns() - t0) / 1e6;
	if (pages != B1S_PAGES / B1S_STRIDE * B1S_RUN + B1S_RUN) {
		*what = "PAGEMAP_SCAN: present pages not what the bench wrote";
		return -EBADMSG;
	}
	return 0;
}

enum { B1S_PAGEMAP, B1S_SNAPSHOT, B1S_SCAN, B1S_NSTEPS };

static const struct bench_step b1s_steps[B1S_NSTEPS] = {
	[B1S_PAGEMAP] = { "pagemap pread", step_pagemap },
	[B1S_SNAPSHOT] = { "um_range_snapshot", step_snapshot },
	[B1S_SCAN] = { "PAGEMAP_SCAN in process", step_scan },
};

static const struct bench_plan b1s_plan = { b1s_steps, B1S_NSTEPS, NULL };

static int setup(struct b1s *b)
{
	struct um_status st = UM_STATUS_INIT;
	int ret;

	b->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (b->pagemap_fd < 0)
		return -errno;
	b->pfns = malloc(B1S_PAGES * sizeof(uint64_t));
	b->pm = malloc(B1S_PAGES * sizeof(uint64_t));
	if (!b->pfns || !b->pm)
		return -ENOMEM;
	b->mem = mmap(NULL, B1S_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->mem == MAP_FAILED) {
		b->mem = NULL;
		return -errno;
	}
	madvise(b->mem, B1S_BYTES, MADV_NOHUGEPAGE);
	for (uint64_t i = 0; i < B1S_PAGES; i++)
		if (populated(i))
			b->mem[i * 4096] = 1;
	ret = um_status(b->c, &st);
	if (ret < 0)
		return ret;
	b->has_scan = st.kfeatures & UM_FEAT_PAGEMAP_SCAN;
	ret = um_interval_insert(b->c, b->mem, B1S_BYTES, 0, NULL, NULL, &b->iv);
	if (ret < 0)
		return ret;
	b->range.start = (uintptr_t)b->mem;
	b->range.end = (uintptr_t)b->mem + B1S_BYTES;
	b->range.pfns = b->pfns;
	return um_range_register(&b->range, b->iv);
}

int bench_b1s_sparse(struct um_client *c, const struct bench_opts *o)
{
	unsigned int runs = bench_runs(o);
	struct b1s b = { .c = c, .pagemap_fd = -1 };
	const char *what = "setup";
	double med[B1S_NSTEPS];
	int ret;

	ret = setup(&b);
	if (ret == 0)
		ret = bench_interleave(&b1s_plan, &b, runs, med, &what);
	if (ret < 0) {
		bench_fail("B1s_sparse_1g", ret == -EBADMSG ? 0 : ret, "%s", what);
	} else {
		bench_report(&(struct bench_result){
			.bench = "B1s_sparse_1g",
			.unit = "ms",
			.value = med[B1S_SNAPSHOT],
			.baseline = med[B1S_PAGEMAP],
			.baseline_name = "pread /proc/self/pagemap of the whole 1 GiB, in process",
			.higher_is_better = true,
			.target = 3.0,
			.goal = NAN,
			.runs = runs,
			.note = "1 GiB, 10% populated in 1 MiB runs every 10 MiB; all 262144 "
				"entries filled and checked; ratio = pread / umirror",
		});
		bench_report(&(struct bench_result){
			.bench = "B1s_scan_inprocess_1g",
			.unit = "ms",
			.value = med[B1S_SCAN],
			.baseline = med[B1S_PAGEMAP],
			.baseline_name = "pread /proc/self/pagemap of the whole 1 GiB, in process",
			.higher_is_better = true,
			.target = NAN,
			.goal = NAN,
			.runs = runs,
			.note = "diagnostic floor: one in-process PAGEMAP_SCAN (present|swapped) "
				"of "
				"the same range with the interval inserted (holes carry uffd-wp "
				"markers); null without PAGEMAP_SCAN",
		});
	}
	if (b.range.iv)
		um_range_unregister(&b.range);
	if (b.iv)
		um_interval_remove(b.iv);
	if (b.mem)
		munmap(b.mem, B1S_BYTES);
	if (b.pagemap_fd >= 0)
		close(b.pagemap_fd);
	free(b.pfns);
	free(b.pm);
	return ret;
}
