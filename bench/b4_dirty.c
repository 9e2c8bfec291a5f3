// SPDX-License-Identifier: MIT
/*
 * B4: harvesting the written pages of 1 GiB.
 *
 * Setup: populated 1 GiB buffers; each round writes the same 1000
 * scattered pages (a fixed pseudo-random set, new bytes every round),
 * untimed, then times one harvest that also re-arms:
 *   umirror, per backend the daemon offers: um_interval_dirty(REARM) on
 *     a UFFD_WP interval and on a TRACK_ASYNC (WP_ASYNC) interval;
 *   baseline memcmp: compare every page against a shadow copy and copy
 *     the changed pages into it (what a mirror without tracking does);
 *   baseline raw: this process's own WP_ASYNC userfaultfd and one
 *     PAGEMAP_SCAN(PAGE_IS_WRITTEN, WP_MATCHING) ioctl on its pagemap,
 *     the kernel's floor for the same harvest.
 * Targets: >= 200 times faster than memcmp, <= 1.2 times raw.
 *
 * Checks: every harvest finds exactly the runs written (never 0, never
 * more), and the shadow compare finds the same number of pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/userfaultfd.h>

#include "bench.h"
#include "timing.h"
#include "uapi_compat.h"

#define GIB (1ull << 30)
#define PG 4096ull
#define NPG (GIB / PG)
#define NWRITES 1000
#define MAXR 4096

struct b4 {
	uint32_t pages[NWRITES]; /* sorted, distinct */
	unsigned int runs;	 /* runs the set forms */
	uint8_t round;
	char *wp_buf, *async_buf, *raw_buf, *shadow;
	struct um_interval *wp_iv, *async_iv;
	int uffd, pagemap_fd;
	struct um_dirty_range out[MAXR];
	struct page_region vec[MAXR];
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* 1000 distinct pages, spread over the whole GiB, reproducible */
static void pick_pages(struct b4 *b)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned int n = 0;

	while (n < NWRITES) {
		uint32_t p;
		bool dup = false;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p = (uint32_t)(x % NPG);
		for (unsigned int i = 0; i < n && !dup; i++)
			dup = b->pages[i] == p;
		if (!dup)
			b->pages[n++] = p;
	}
	qsort(b->pages, NWRITES, sizeof(b->pages[0]), cmp_u32);
	b->runs = 1;
	for (unsigned int i = 1; i < NWRITES; i++)
		b->runs += b->pages[i] != b->pages[i - 1] + 1;
}

/* never the fill byte 1, never the byte of the previous round */
static void write_set(const struct b4 *b, char *buf)
{
	for (unsigned int i = 0; i < NWRITES; i++)
		buf[(uint64_t)b->pages[i] * PG + 64] = (char)(0x80 | (b->round & 0x7f));
}

static int daemon_once(struct b4 *b, struct um_interval *iv, char *buf, double *ms)
{
	uint64_t t0, walk_end;
	long n;

	b->round++;
	write_set(b, buf);
	t0 = bench_now_ns();
	n = um_interval_dirty(iv, (uintptr_t)buf, (uintptr_t)buf + GIB, UM_DIRTY_REARM, b->out,
			      MAXR, &walk_end);
	*ms = (double)(bench_now_ns() - t0) / 1e6;
	if (n < 0)
		return (int)n;
	return (unsigned long)n == b->runs && walk_end == (uintptr_t)buf + GIB ? 0 : -EBADMSG;
}

static int wp_once(void *ctx, bool warm_up, double *ms, const char **what)
{
	struct b4 *b = ctx;

	return daemon_once(b, b->wp_iv, b->wp_buf, ms);
}

static int async_once(void *ctx, bool warm_up, double *ms, const char **what)
{
	struct b4 *b = ctx;

	return daemon_once(b, b->async_iv, b->async_buf, ms);
}

static int raw_once(void *ctx, bool warm_up, double *ms, const char **what)
{
	struct b4 *b = ctx;
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.start = (uintptr_t)b->raw_buf,
		.end = (uintptr_t)b->raw_buf + GIB,
		.vec = (uintptr_t)b->vec,
		.vec_len = MAXR,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
	uint64_t t0;
	long n;

	b->round++;
	write_set(b, b->raw_buf);
	t0 = bench_now_ns();
	n = ioctl(b->pagemap_fd, PAGEMAP_SCAN, &arg);
	*ms = (double)(bench_now_ns() - t0) / 1e6;
	if (n < 0)
		return -errno;
	return (unsigned long)n == b->runs ? 0 : -EBADMSG;
}

/* the shadow shares raw_buf: its writes are the same set, so the count holds */
static int memcmp_once(void *ctx, bool warm_up, double *ms, const char **what)
{
	struct b4 *b = ctx;
	unsigned int changed = 0;
	uint64_t t0;

	b->round++;
	write_set(b, b->raw_buf);
	t0 = bench_now_ns();
	for (uint64_t p = 0; p < NPG; p++) {
		if (!memcmp(b->raw_buf + p * PG, b->shadow + p * PG, PG))
			continue;
		memcpy(b->shadow + p * PG, b->raw_buf + p * PG, PG);
		changed++;
	}
	*ms = (double)(bench_now_ns() - t0) / 1e6;
	return changed == NWRITES ? 0 : -EBADMSG;
}

enum { B4_MEMCMP, B4_RAW, B4_WP, B4_ASYNC, B4_NSTEPS };

static const struct bench_step b4_steps[B4_NSTEPS] = {
	[B4_MEMCMP] = { "memcmp against a shadow copy", memcmp_once },
	[B4_RAW] = { "raw PAGEMAP_SCAN on an own WP_ASYNC uffd", raw_once },
	[B4_WP] = { "um_interval_dirty on a UFFD_WP interval", wp_once },
	[B4_ASYNC] = { "um_interval_dirty on a WP_ASYNC interval", async_once },
};

static char *map_populated(void)
{
	char *p = mmap(NULL, GIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* no THP: 1000 scattered writes must stay 1000 pages, not 1000 huge pages */
	madvise(p, GIB, MADV_NOHUGEPAGE);
	memset(p, 1, GIB);
	return p;
}

/* this process's own WP_ASYNC uffd over raw_buf, all of it protected */
static int raw_setup(struct b4 *b)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
	};
	struct uffdio_register reg = {
		.range = { (uintptr_t)b->raw_buf, GIB },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = { (uintptr_t)b->raw_buf, GIB },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};

	b->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (b->uffd < 0)
		return -errno;
	if (ioctl(b->uffd, UFFDIO_API, &api) < 0 || ioctl(b->uffd, UFFDIO_REGISTER, &reg) < 0 ||
	    ioctl(b->uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
		return -errno;
	b->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	return b->pagemap_fd < 0 ? -errno : 0;
}

static void report(const char *name, double value, double baseline, const char *base_name,
		   bool vs_memcmp, double target, unsigned int runs, const char *note)
{
	bench_report(&(struct bench_result){
		.bench = name,
		.unit = "ms",
		.value = value,
		.baseline = baseline,
		.baseline_name = base_name,
		.higher_is_better = vs_memcmp,
		.target = target,
		.goal = NAN,
		.runs = runs,
		.note = note,
	});
}

/* Maps the buffers and inserts the intervals; *@what names the step that failed. */
static int b4_setup(struct b4 *b, struct um_client *c, const char **what)
{
	const uint64_t async_need = UM_FEAT_WP_ASYNC | UM_FEAT_PAGEMAP_SCAN;
	struct um_status st = UM_STATUS_INIT;
	int ret;

	b->uffd = b->pagemap_fd = -1;
	pick_pages(b);
	*what = "um_status";
	ret = um_status(c, &st);
	if (ret < 0)
		return ret;
	*what = "mmap 1 GiB";
	b->wp_buf = map_populated();
	b->raw_buf = map_populated();
	b->shadow = map_populated();
	if (!b->wp_buf || !b->raw_buf || !b->shadow)
		return -ENOMEM;
	if ((st.kfeatures & async_need) == async_need) {
		b->async_buf = map_populated();
		if (!b->async_buf)
			return -ENOMEM;
	}
	*what = "raw WP_ASYNC uffd (needs Linux 6.7 and CAP_SYS_PTRACE or /dev/userfaultfd)";
	ret = raw_setup(b);
	if (ret < 0)
		return ret;
	*what = "um_interval_insert(UFFD_WP)";
	ret = um_interval_insert(c, b->wp_buf, GIB, UM_INTERVAL_ASYNC, NULL, NULL, &b->wp_iv);
	if (ret < 0 || !b->async_buf)
		return ret;
	*what = "um_interval_insert(TRACK_ASYNC)";
	ret = um_interval_insert(c, b->async_buf, GIB, UM_INTERVAL_TRACK_ASYNC, NULL, NULL,
				 &b->async_iv);
	if (ret < 0)
		return ret;
	return um_interval_backend(b->async_iv) == UM_BACKEND_WP_ASYNC ? 0 : -EOPNOTSUPP;
}

static void b4_teardown(struct b4 *b)
{
	if (b->wp_iv)
		um_interval_remove(b->wp_iv);
	if (b->async_iv)
		um_interval_remove(b->async_iv);
	if (b->uffd >= 0)
		close(b->uffd);
	if (b->pagemap_fd >= 0)
		close(b->pagemap_fd);
	for (char **p = (char *[]){ b->wp_buf, b->async_buf, b->raw_buf, b->shadow }, **e = p + 4;
	     p < e; p++)
		if (*p)
			munmap(*p, GIB);
	free(b);
}

/* @med[@idx[step]] is the median of each step that ran */
static void b4_report(const struct b4 *b, const double *med, const size_t *idx, unsigned int runs)
{
	report("B4_dirty_1g_uffd_wp_vs_memcmp", med[idx[B4_WP]], med[idx[B4_MEMCMP]],
	       "memcmp of 1 GiB against a shadow copy, changed pages copied", true, 200, runs,
	       "1000 scattered written pages; harvest + re-arm; ratio = memcmp / umirror");
	report("B4_dirty_1g_uffd_wp_vs_raw", med[idx[B4_WP]], med[idx[B4_RAW]],
	       "raw in-process PAGEMAP_SCAN(WRITTEN, WP_MATCHING) on a WP_ASYNC uffd", false, NAN,
	       runs, "the daemon's bitmap + UFFDIO_WRITEPROTECT per run vs the kernel's scan");
	if (!b->async_iv)
		return;
	report("B4_dirty_1g_wp_async_vs_memcmp", med[idx[B4_ASYNC]], med[idx[B4_MEMCMP]],
	       "memcmp of 1 GiB against a shadow copy, changed pages copied", true, 200, runs,
	       "1000 scattered written pages; harvest + re-arm; ratio = memcmp / umirror");
	report("B4_dirty_1g_wp_async_vs_raw", med[idx[B4_ASYNC]], med[idx[B4_RAW]],
	       "raw in-process PAGEMAP_SCAN(WRITTEN, WP_MATCHING) on a WP_ASYNC uffd", false, 1.2,
	       runs, "the same ioctl through the daemon: one round trip on top");
}

int bench_b4_dirty(struct um_client *c, const struct bench_opts *o)
{
	struct bench_step steps[B4_NSTEPS];
	struct bench_plan plan = { steps, 0, NULL };
	unsigned int runs = bench_runs(o);
	const char *what = "setup";
	double med[B4_NSTEPS];
	size_t idx[B4_NSTEPS];
	struct b4 *b;
	int ret;

	b = calloc(1, sizeof(*b));
	if (!b) {
		bench_fail("B4_dirty", -ENOMEM, "setup");
		return -ENOMEM;
	}
	ret = b4_setup(b, c, &what);
	if (ret == 0) {
		/* the backends the daemon has, interleaved with both baselines */
		for (size_t k = 0; k < B4_NSTEPS; k++) {
			if (k == B4_ASYNC && !b->async_iv)
				continue;
			idx[k] = plan.nsteps;
			steps[plan.nsteps++] = b4_steps[k];
		}
		ret = bench_interleave(&plan, b, runs, med, &what);
	}
	if (ret == 0)
		b4_report(b, med, idx, runs);
	else
		bench_fail("B4_dirty", ret == -EBADMSG ? 0 : ret, "%s%s", what,
			   ret == -EBADMSG ? ": a harvest found other pages than written" : "");
	b4_teardown(b);
	return ret;
}
