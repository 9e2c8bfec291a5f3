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
#include "map.h"
#include "timing.h"
#include "uapi_compat.h"

#define B1S_BYTES (1ull << 30)
#define B1S_PAGES (B1S_BYTES / 4096)
#define B1S_RUN 256u	 /* populated pages per run (1 MiB) */
#define B1S_STRIDE 2560u /* a run every 10 MiB */

static bool populated(uint64_t i)
{
	return i % B1S_STRIDE < B1S_RUN;
}

static int step_pagemap(void *ctx, bool warm_up, double *ms, const char **what)
{
	struct bench_map *m = ctx;
	int ret = bench_map_pread(m, ms);

	if (ret < 0)
		return ret;
	for (uint64_t i = 0; i < B1S_PAGES; i++)
		if (!!(m->pm[i] & PM_PRESENT) != populated(i)) {
			*what = "pagemap: a page's presence is not what the bench wrote";
			return -EBADMSG;
		}
	return 0;
}

static int step_snapshot(void *ctx, bool warm_up, double *ms, const char **what)
{
	struct bench_map *m = ctx;
	uint64_t t0, i;
	long n;

	memset(m->pfns, 0xff, B1S_PAGES * sizeof(uint64_t));
	t0 = bench_now_ns();
	n = um_range_snapshot(&m->range);
	*ms = (double)(bench_now_ns() - t0) / 1e6;
	if (n < 0)
		return (int)n;
	if ((uint64_t)n != B1S_PAGES)
		return -EIO;
	for (i = 0; i < B1S_PAGES; i++) {
		bool valid = (m->pfns[i] & UM_DEFAULT_VALID) && !(m->pfns[i] & UM_DEFAULT_ERROR);

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
	struct bench_map *m = ctx;
	uint64_t addr = (uintptr_t)m->mem, end = addr + B1S_BYTES, t0, pages = 0;
	struct page_region vec[256];

	if (!(m->kfeatures & UM_FEAT_PAGEMAP_SCAN)) {
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
		int n = ioctl(m->pagemap_fd, PAGEMAP_SCAN, &arg);

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

static uint8_t fill_runs(uint64_t page)
{
	return populated(page);
}

int bench_b1s_sparse(struct um_client *c, const struct bench_opts *o)
{
	unsigned int runs = bench_runs(o);
	struct bench_map m = { .pagemap_fd = -1 };
	const char *what = "setup";
	double med[B1S_NSTEPS];
	int ret;

	ret = bench_map_setup(&m, c, B1S_PAGES, fill_runs);
	if (ret == 0)
		ret = bench_interleave(&b1s_plan, &m, runs, med, &what);
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
	bench_map_teardown(&m);
	return ret;
}
