// SPDX-License-Identifier: MIT
/*
 * B1: snapshot of 1 GiB of populated anonymous memory.
 *
 * umirror: um_range_snapshot() of an interval covering the 262,144 pages,
 * i.e. a round trip to umirrord, which reads the pagemap of this process,
 * looks at the VMA, encodes the entries into the shared result buffer, and
 * the library converting them to the caller's encoding.
 * Baseline: what a process could do for itself with no daemon, one pread
 * of /proc/self/pagemap for the same range into a buffer.
 * Also reported: um_snapshot_raw() against the same baseline, which skips
 * the library's re-encoding and so shows where the time goes.
 *
 * Checks: every snapshot returns all pages, each VALID (present), and
 * (when this process may see PFNs) the PFNs match the pagemap's.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "map.h"
#include "timing.h"
#include "uapi_compat.h"

#define B1_BYTES (1ull << 30)
#define B1_PAGES (B1_BYTES / 4096)

struct b1 {
	struct bench_map m;
	uint64_t *raw; /* um_snapshot_raw entries */
};

/* One pread of the range's pagemap entries; all must be present. */
static int baseline_once(struct b1 *b, double *ms)
{
	int ret = bench_map_pread(&b->m, ms);

	if (ret < 0)
		return ret;
	for (uint64_t i = 0; i < B1_PAGES; i++)
		if (!(b->m.pm[i] & PM_PRESENT))
			return -ENODATA;
	return 0;
}

/* A populated page's entry: VALID in the library's encoding, PRESENT in the daemon's. */
static bool entry_ok(bool raw, uint64_t e)
{
	if (raw)
		return (e & UM_RAW_PRESENT) && !(e & (UM_RAW_HOLE | UM_RAW_NOPERM));
	return (e & UM_DEFAULT_VALID) && !(e & UM_DEFAULT_ERROR);
}

/*
 * um_range_snapshot of the whole interval, or with @raw um_snapshot_raw of
 * the same pages; every page must be there and populated.
 */
static int snapshot_once(struct b1 *b, bool raw, double *ms)
{
	uint64_t *e = raw ? b->raw : b->m.pfns;
	uint64_t t0, i;
	long n;

	memset(e, 0, B1_PAGES * sizeof(uint64_t));
	t0 = bench_now_ns();
	n = raw ? um_snapshot_raw(b->m.c, getpid(), (uintptr_t)b->m.mem, B1_PAGES, e)
		: um_range_snapshot(&b->m.range);
	*ms = (double)(bench_now_ns() - t0) / 1e6;
	if (n < 0)
		return (int)n;
	if ((uint64_t)n != B1_PAGES)
		return -EIO;
	for (i = 0; i < B1_PAGES; i++)
		if (!entry_ok(raw, e[i]))
			return -ENODATA;
	return 0;
}

/*
 * PFNs of the last three reads must agree. Nothing here migrates pages
 * (no THP, no swap), but the kernel may; so a mismatch is re-read once
 * before it counts.
 */
static long pfn_mismatches(struct b1 *b)
{
	long bad = 0;
	uint64_t i;

	for (i = 0; i < B1_PAGES; i++) {
		uint64_t pm = b->m.pm[i] & PM_PFN_MASK;

		if (b->m.pfns[i] >> UM_DEFAULT_PFN_SHIFT != pm ||
		    (b->raw[i] & UM_RAW_PFN_MASK) != pm)
			bad++;
	}
	return bad;
}

/* 0 when the PFNs agree (or cannot be seen), else the mismatches or -errno. */
static long check_pfns(struct b1 *b)
{
	double ms;
	int ret;

	if (!(b->m.kfeatures & UM_FEAT_PFN_VISIBLE) || pfn_mismatches(b) == 0)
		return 0;
	if ((ret = baseline_once(b, &ms)) < 0 || (ret = snapshot_once(b, false, &ms)) < 0 ||
	    (ret = snapshot_once(b, true, &ms)) < 0)
		return ret;
	return pfn_mismatches(b);
}

static int pfn_check(void *ctx, const char **what)
{
	long bad = check_pfns(ctx);

	if (bad > 0) {
		fprintf(stderr, "umirror-bench: B1: %ld PFNs differ from /proc/self/pagemap\n",
			bad);
		*what = "PFN check: snapshot PFNs differ from /proc/self/pagemap";
		return -EBADMSG;
	}
	*what = "PFN check";
	return (int)bad;
}

static int step_pagemap(void *ctx, bool warm_up, double *ms, const char **what)
{
	return baseline_once(ctx, ms);
}

static int step_snapshot(void *ctx, bool warm_up, double *ms, const char **what)
{
	return snapshot_once(ctx, false, ms);
}

static int step_raw(void *ctx, bool warm_up, double *ms, const char **what)
{
	return snapshot_once(ctx, true, ms);
}

/* the medians come out in this order */
enum { B1_PAGEMAP, B1_SNAPSHOT, B1_RAW, B1_NSTEPS };

static const struct bench_step b1_steps[B1_NSTEPS] = {
	[B1_PAGEMAP] = { "pagemap pread", step_pagemap },
	[B1_SNAPSHOT] = { "um_range_snapshot", step_snapshot },
	[B1_RAW] = { "um_snapshot_raw", step_raw },
};

static const struct bench_plan b1_plan = { b1_steps, B1_NSTEPS, pfn_check };

/* every page populated, with a value that differs from page to page */
static uint8_t fill_all(uint64_t page)
{
	return (uint8_t)(page | 1);
}

static int setup(struct b1 *b, struct um_client *c)
{
	b->raw = malloc(B1_PAGES * sizeof(uint64_t));
	if (!b->raw)
		return -ENOMEM;
	return bench_map_setup(&b->m, c, B1_PAGES, fill_all);
}

static void teardown(struct b1 *b)
{
	bench_map_teardown(&b->m);
	free(b->raw);
}

int bench_b1_snapshot(struct um_client *c, const struct bench_opts *o)
{
	unsigned int runs = bench_runs(o);
	struct b1 b = { .m.pagemap_fd = -1 };
	const char *what = "setup";
	double med[B1_NSTEPS];
	int ret;

	ret = setup(&b, c);
	if (ret < 0)
		goto fail;
	ret = bench_interleave(&b1_plan, &b, runs, med, &what);
	if (ret < 0)
		goto fail;

	bench_report(&(struct bench_result){
		.bench = "B1_snapshot_1g",
		.unit = "ms",
		.value = med[B1_SNAPSHOT],
		.baseline = med[B1_PAGEMAP],
		.baseline_name = "pread /proc/self/pagemap, 1 GiB, in process",
		.target = 1.5,
		.goal = 1.15,
		.runs = runs,
		.note = (b.m.kfeatures & UM_FEAT_PFN_VISIBLE)
				? "um_range_snapshot of 262144 populated 4 KiB pages; all "
				  "checked VALID, PFNs equal to /proc/self/pagemap's"
				: "um_range_snapshot of 262144 populated 4 KiB pages; all "
				  "checked VALID (PFNs not visible to this process)",
	});
	bench_report(&(struct bench_result){
		.bench = "B1_snapshot_raw_1g",
		.unit = "ms",
		.value = med[B1_RAW],
		.baseline = med[B1_PAGEMAP],
		.baseline_name = "pread /proc/self/pagemap, 1 GiB, in process",
		.target = NAN,
		.goal = NAN,
		.runs = runs,
		.note = "diagnostic: um_snapshot_raw, the daemon's part without the library's "
			"re-encoding",
	});
	ret = 0;
	goto out;
fail:
	bench_fail("B1_snapshot_1g", ret, "%s%s", what,
		   ret == -EIO	     ? " returned fewer pages than asked"
		   : ret == -ENODATA ? " reported a populated page not present"
				     : "");
out:
	teardown(&b);
	return ret;
}
