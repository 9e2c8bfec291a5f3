// SPDX-License-Identifier: MIT
/*
 * B6: the daemon's io_uring against pread, for the pagemap reads of a
 * revalidation scan of 64 intervals of 16 MiB (4096 pages each).
 *
 * umirror: uring_read_batch() of daemon/uring.c on its restricted ring,
 * the 64 reads in one submission, in this process.
 * Baseline: the same module without a ring, i.e. 64 preads one after the
 * other, which is what the daemon does when the ring cannot be made.
 * Ratio = uring / pread (lower is better).
 *
 * Checks: every read returns all 32 KiB and the entries of both paths
 * agree with each other (present pages, same PFNs).
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
#include "timing.h"
#include "uapi_compat.h"
#include "uring.h"

#define B6_NIV 64
#define B6_IV_BYTES (16ull << 20)
#define B6_IV_PAGES (B6_IV_BYTES / 4096)

struct b6 {
	uint8_t *mem;
	int pagemap_fd;
	struct uring *ring;
	uint64_t *buf[2]; /* entries read by pread [0] and the ring [1] */
	struct uring_req reqs[B6_NIV];
};

static int read_all(struct b6 *b, bool ring, double *ms)
{
	uint64_t *buf = b->buf[ring], t0;

	for (unsigned int i = 0; i < B6_NIV; i++)
		b->reqs[i] = (struct uring_req){
			.fd = b->pagemap_fd,
			.buf = buf + i * B6_IV_PAGES,
			.len = B6_IV_PAGES * 8,
			.off = ((uintptr_t)b->mem + i * B6_IV_BYTES) / 4096 * 8,
		};
	t0 = bench_now_ns();
	uring_read_batch(ring ? b->ring : NULL, b->reqs, B6_NIV);
	*ms = (double)(bench_now_ns() - t0) / 1e6;
	for (unsigned int i = 0; i < B6_NIV; i++) {
		if (b->reqs[i].res < 0)
			return (int)b->reqs[i].res;
		if ((size_t)b->reqs[i].res != B6_IV_PAGES * 8)
			return -EIO;
	}
	return 0;
}

static int step_pread(void *ctx, bool warm_up, double *ms, const char **what)
{
	return read_all(ctx, false, ms);
}

static int step_uring(void *ctx, bool warm_up, double *ms, const char **what)
{
	return read_all(ctx, true, ms);
}

static int agree(void *ctx, const char **what)
{
	struct b6 *b = ctx;

	*what = "check: both paths read the same present pages";
	for (uint64_t i = 0; i < B6_NIV * B6_IV_PAGES; i++)
		if (!(b->buf[0][i] & PM_PRESENT) ||
		    (b->buf[0][i] & PM_PFN_MASK) != (b->buf[1][i] & PM_PFN_MASK) ||
		    (b->buf[0][i] & PM_PRESENT) != (b->buf[1][i] & PM_PRESENT))
			return -EBADMSG;
	return 0;
}

enum { B6_PREAD, B6_URING, B6_NSTEPS };

static const struct bench_step b6_steps[B6_NSTEPS] = {
	[B6_PREAD] = { "pread x64", step_pread },
	[B6_URING] = { "io_uring batch of 64", step_uring },
};

static const struct bench_plan b6_plan = { b6_steps, B6_NSTEPS, agree };

int bench_b6_uring(struct um_client *c, const struct bench_opts *o)
{
	unsigned int runs = bench_runs(o);
	struct b6 b = { .pagemap_fd = -1 };
	const char *what = "setup";
	double med[B6_NSTEPS];
	size_t total = B6_NIV * B6_IV_BYTES;
	int ret;

	ret = uring_create(B6_NIV, &b.ring);
	if (ret < 0) {
		what = "uring_create (io_uring unavailable here)";
		goto fail;
	}
	b.pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	b.buf[0] = malloc(B6_NIV * B6_IV_PAGES * 8);
	b.buf[1] = malloc(B6_NIV * B6_IV_PAGES * 8);
	b.mem = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b.pagemap_fd < 0 || !b.buf[0] || !b.buf[1] || b.mem == MAP_FAILED) {
		ret = b.pagemap_fd < 0 || b.mem == MAP_FAILED ? -errno : -ENOMEM;
		if (b.mem == MAP_FAILED)
			b.mem = NULL;
		goto fail;
	}
	/* 4 KiB pages, as the scan of a daemon's ordinary interval sees them */
	madvise(b.mem, total, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < total; i += 4096)
		b.mem[i] = (uint8_t)(i >> 12 | 1);
	ret = bench_interleave(&b6_plan, &b, runs, med, &what);
	if (ret < 0)
		goto fail;
	bench_report(&(struct bench_result){
		.bench = "B6_uring_scan_64x16m",
		.unit = "ms",
		.value = med[B6_URING],
		.baseline = med[B6_PREAD],
		.baseline_name = "64 x pread /proc/self/pagemap (16 MiB each), in process",
		.target = NAN,
		.goal = NAN,
		.runs = runs,
		.note = "daemon/uring.c: one restricted-ring submission of the 64 pagemap reads; "
			"all 262144 entries checked present and equal on both paths",
	});
	ret = 0;
	goto out;
fail:
	bench_fail("B6_uring_scan_64x16m", ret, "%s", what);
out:
	if (b.mem)
		munmap(b.mem, total);
	if (b.pagemap_fd >= 0)
		close(b.pagemap_fd);
	free(b.buf[0]);
	free(b.buf[1]);
	uring_destroy(b.ring);
	return ret;
}
