// SPDX-License-Identifier: MIT
/*
 * B3: the first write to a mirrored page.
 *
 * umirror: pages of a populated interval (sync mode, the default) are
 * written one after another. Each write faults on the uffd write-protect
 * bit; umirrord reads the fault, sends the invalidation to the library's
 * event thread, which runs a trivial invalidate callback and acknowledges;
 * the daemon then unprotects the page, which wakes the writer. The figure
 * is the time per page. Single: 2000 pages in stride-2 order (0, 2, 4,
 * ..., then 1, 3, ...), which never continues a write streak, so every
 * write is one page's invalidation. Amortized: every page of 64 MiB in
 * address order, where the daemon's write granules grow (one invalidation
 * unprotects up to 2 MiB).
 * Baseline: the same writes to memory mprotect()ed read-only, with a
 * SIGSEGV handler that makes the faulting page writable: the cheapest
 * in-process way to learn of a first write before it happens.
 *
 * Beside single, in the same rounds: where its time goes (write to
 * callback start, callback start to the write's return) and the floors of
 * its hand-offs (b3_floors.c), each against the same umirror samples.
 *
 * Checks: after each write an invalidation covering its page has already
 * been handled (the writer really waited, or the granule was told first),
 * every page was covered exactly once, reason WRITE, sync (single: one
 * page each); the sequence moved by two per invalidation; the baseline's
 * handler ran once per page.
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

#include "b3_floors.h"
#include "bench.h"
#include "timing.h"

#define B3_PAGES 2000u
#define B3_AMORT_PAGES 16384u /* 64 MiB */
#define B3_MAX_BYTES ((size_t)B3_AMORT_PAGES * 4096)

struct b3 {
	struct um_client *c;
	unsigned int pages;	     /* written per run: B3_PAGES or B3_AMORT_PAGES */
	bool per_write;		     /* time each write (single-page percentiles), stride-2 order */
	double *lat[2 + B3_NFLOORS]; /* per_write: every sample, us: umirror, baseline, floors */
	size_t nlat[2 + B3_NFLOORS], cap;
	struct b3_floors *floors; /* per_write: measured in the same rounds */
	double *split[2];   /* per_write, umirror: write -> callback start -> write returns, us */
	uint8_t *uf_mem;    /* mirrored through umirror */
	uint8_t *mp_mem;    /* mprotect baseline */
	uint8_t *seen;	    /* per page: invalidations covering it this run (atomic access) */
	atomic_uint invals; /* callbacks this run */
	atomic_uint bad;    /* callbacks that were not what one write implies */
	atomic_bool released;
};

/* The baseline's handler needs its region without a context pointer. */
static uint8_t *mp_base;
static size_t mp_len;
static volatile sig_atomic_t mp_faults;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr, base = (uintptr_t)mp_base;

	if (!mp_base || a < base || a >= base + mp_len ||
	    mprotect((void *)(a & ~4095ul), 4096, PROT_READ | PROT_WRITE) < 0) {
		/* not ours: die of it, as without the handler */
		signal(SIGSEGV, SIG_DFL);
		return;
	}
	mp_faults++;
}

/* when the last callback started: splits a single write's time in two */
static _Atomic uint64_t cb_ns;

static void invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	atomic_store_explicit(&cb_ns, bench_now_ns(), memory_order_relaxed);
	struct b3 *b = priv;
	uintptr_t base = (uintptr_t)b->uf_mem, lim = base + (size_t)b->pages * 4096;

	if (inv->reason != UM_REASON_WRITE || !inv->sync || inv->end <= inv->start ||
	    (b->per_write && inv->end - inv->start != 4096) || inv->start < base ||
	    inv->end > lim) {
		atomic_fetch_add(&b->bad, 1);
	} else {
		for (uintptr_t a = inv->start; a < inv->end; a += 4096)
			if (__atomic_fetch_add(&b->seen[(a - base) / 4096], 1, __ATOMIC_RELEASE))
				atomic_fetch_add(&b->bad, 1);
	}
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

/* the page of the @i-th write: in order, or stride 2 (evens, then odds) */
static size_t page_of(unsigned int i, unsigned int pages, bool stride)
{
	if (!stride)
		return i;
	return i < (pages + 1) / 2 ? 2 * (size_t)i : 2 * (size_t)(i - (pages + 1) / 2) + 1;
}

/*
 * Write the first byte of every page (in order, or in stride-2 order);
 * count writes whose page no callback had covered yet (@seen, per page).
 * With @lat (not NULL), also time each write into lat[*nlat++] (room
 * checked by the caller); with @split too, the two parts of it before
 * and after its callback started into split[0][i] and split[1][i], i the
 * same index.
 */
static unsigned int write_pages(uint8_t *mem, unsigned int pages, bool stride, uint8_t *seen,
				double *us, double *lat, size_t *nlat, double **split)
{
	volatile uint8_t *p = mem;
	unsigned int i, late = 0;
	uint64_t t0, t;

	t0 = t = bench_now_ns();
	for (i = 0; i < pages; i++) {
		size_t pg = page_of(i, pages, stride);

		p[pg * 4096] = (uint8_t)(i | 1);
		if (seen && !__atomic_load_n(&seen[pg], __ATOMIC_ACQUIRE))
			late++;
		if (lat) {
			uint64_t now = bench_now_ns(), cb = atomic_load(&cb_ns);

			if (split) {
				split[0][*nlat] = (double)(cb - t) / 1e3;
				split[1][*nlat] = (double)(now - cb) / 1e3;
			}
			lat[(*nlat)++] = (double)(now - t) / 1e3;
			t = now;
		}
	}
	*us = (double)(bench_now_ns() - t0) / 1e3 / pages;
	return late;
}

/* where this run's per-write latencies go: NULL in warm-up or when not timed */
static double *lat_slot(struct b3 *b, int k, bool warm_up)
{
	if (warm_up || !b->per_write || b->nlat[k] + b->pages > b->cap)
		return NULL;
	return b->lat[k];
}

static int umirror_once(void *ctx, bool warm_up, double *us, const char **what)
{
	struct b3 *b = ctx;
	struct um_interval *iv = NULL;
	unsigned int late, i;
	uint64_t seq = 0;
	int ret;

	memset(b->seen, 0, b->pages);
	atomic_store(&b->invals, 0);
	atomic_store(&b->bad, 0);
	*what = "um_interval_insert";
	ret = um_interval_insert(b->c, b->uf_mem, (size_t)b->pages * 4096, 0, &b3_ops, b, &iv);
	if (ret < 0)
		return ret;

	late = write_pages(b->uf_mem, b->pages, b->per_write, b->seen, us, lat_slot(b, 0, warm_up),
			   &b->nlat[0], b->split);

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
		*what = "an invalidation was not (WRITE, sync, in range, first time; single: one "
			"page)";
		goto out;
	}
	for (i = 0; i < b->pages; i++)
		if (b->seen[i] != 1) {
			*what = "a write produced no invalidation";
			goto out;
		}
	if (seq != 2ull * atomic_load(&b->invals)) {
		fprintf(stderr, "umirror-bench: B3: seq %llu after %u invalidations\n",
			(unsigned long long)seq, atomic_load(&b->invals));
		*what = "the sequence did not move by two per invalidation";
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
	struct b3 *b = ctx;

	*what = "mprotect(PROT_READ)";
	mp_len = (size_t)b->pages * 4096;
	if (mprotect(mp_base, mp_len, PROT_READ) < 0)
		return -errno;
	mp_faults = 0;
	write_pages(mp_base, b->pages, b->per_write, NULL, us, lat_slot(b, 1, warm_up), &b->nlat[1],
		    NULL);
	if ((unsigned int)mp_faults != b->pages) {
		*what = "SIGSEGV handler did not run once per page";
		return -EBADMSG;
	}
	return 0;
}

/* a floor's samples, kept beside B3's (timed rounds only) */
static int floor_once(struct b3 *b, enum b3_floor k, bool warm_up, double *us, const char **what)
{
	double *lat = lat_slot(b, 2 + k, warm_up);
	int r;

	r = b3_floor_once(b->floors, k, B3_PAGES, lat ? lat + b->nlat[2 + k] : NULL, us, what);
	if (r == 0 && lat)
		b->nlat[2 + k] += B3_PAGES;
	return r;
}

static int floor_futex_threads(void *ctx, bool warm_up, double *us, const char **what)
{
	return floor_once(ctx, B3_FLOOR_FUTEX_THREADS, warm_up, us, what);
}

static int floor_futex_procs(void *ctx, bool warm_up, double *us, const char **what)
{
	return floor_once(ctx, B3_FLOOR_FUTEX_PROCS, warm_up, us, what);
}

static int floor_uffd_read(void *ctx, bool warm_up, double *us, const char **what)
{
	return floor_once(ctx, B3_FLOOR_UFFD_READ, warm_up, us, what);
}

static int floor_uffd_epoll(void *ctx, bool warm_up, double *us, const char **what)
{
	return floor_once(ctx, B3_FLOOR_UFFD_EPOLL, warm_up, us, what);
}

static int floor_4hop(void *ctx, bool warm_up, double *us, const char **what)
{
	return floor_once(ctx, B3_FLOOR_4HOP, warm_up, us, what);
}

static int floor_3hop(void *ctx, bool warm_up, double *us, const char **what)
{
	return floor_once(ctx, B3_FLOOR_3HOP, warm_up, us, what);
}

/* the medians come out in this order; single-page rounds add the floors */
enum { B3_MPROTECT, B3_UMIRROR, B3_NSTEPS };

static const struct bench_step b3_steps[B3_NSTEPS + B3_NFLOORS] = {
	[B3_MPROTECT] = { "mprotect baseline", baseline_once },
	[B3_UMIRROR] = { "umirror writes", umirror_once },
	[B3_NSTEPS + B3_FLOOR_FUTEX_THREADS] = { "futex threads", floor_futex_threads },
	[B3_NSTEPS + B3_FLOOR_FUTEX_PROCS] = { "futex processes", floor_futex_procs },
	[B3_NSTEPS + B3_FLOOR_UFFD_READ] = { "uffd-wp read", floor_uffd_read },
	[B3_NSTEPS + B3_FLOOR_UFFD_EPOLL] = { "uffd-wp epoll", floor_uffd_epoll },
	[B3_NSTEPS + B3_FLOOR_4HOP] = { "uffd-wp 4 hops", floor_4hop },
	[B3_NSTEPS + B3_FLOOR_3HOP] = { "uffd-wp 3 hops", floor_3hop },
};

static const struct bench_plan b3_plan = { b3_steps, B3_NSTEPS, NULL };
static const struct bench_plan b3_single_plan = { b3_steps, B3_NSTEPS + B3_NFLOORS, NULL };

static uint8_t *map_populated(void)
{
	uint8_t *m = mmap(NULL, B3_MAX_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);

	if (m == MAP_FAILED)
		return NULL;
	madvise(m, B3_MAX_BYTES, MADV_NOHUGEPAGE); /* measure the 4 KiB path */
	memset(m, 1, B3_MAX_BYTES);
	return m;
}

/*
 * Optional: dump the per-write latencies (us) of both sides to
 * $UMIRROR_BENCH_DUMP/b3_lat.dat, "umirror baseline" per line, for the plot.
 */
static void dump_lat(const struct b3 *b)
{
	const char *dir = getenv("UMIRROR_BENCH_DUMP");
	char path[512];
	size_t n = b->nlat[0] < b->nlat[1] ? b->nlat[0] : b->nlat[1];
	FILE *f;

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/b3_lat.dat", dir);
	f = fopen(path, "we");
	if (!f)
		return;
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%.3f %.3f\n", b->lat[0][i], b->lat[1][i]);
	fclose(f);
}

static const char *const floor_bench[B3_NFLOORS] = {
	[B3_FLOOR_FUTEX_THREADS] = "B3_floor_futex_threads",
	[B3_FLOOR_FUTEX_PROCS] = "B3_floor_futex_procs",
	[B3_FLOOR_UFFD_READ] = "B3_floor_uffd_wp_read",
	[B3_FLOOR_UFFD_EPOLL] = "B3_floor_uffd_wp_epoll",
	[B3_FLOOR_4HOP] = "B3_floor_uffd_wp_4hop",
	[B3_FLOOR_3HOP] = "B3_floor_uffd_wp_3hop",
};

static const char *const floor_name[B3_NFLOORS] = {
	[B3_FLOOR_FUTEX_THREADS] = "futex ping-pong round trip, two threads of one process",
	[B3_FLOOR_FUTEX_PROCS] = "futex ping-pong round trip, two processes",
	[B3_FLOOR_UFFD_READ] = "first write, uffd-wp handler thread in process (blocking read, "
			       "UFFDIO_WRITEPROTECT clear)",
	[B3_FLOOR_UFFD_EPOLL] = "first write, uffd-wp handler thread in process (epoll_wait, "
				"read, UFFDIO_WRITEPROTECT clear)",
	[B3_FLOOR_4HOP] = "first write, uffd-wp handler in another process that futex-pings a "
			  "thread of the writer's process before UFFDIO_WRITEPROTECT clear (B3's "
			  "four hand-offs, no work)",
	[B3_FLOOR_3HOP] = "first write, uffd-wp handler in another process that wakes a thread "
			  "of the writer's process, which does the UFFDIO_WRITEPROTECT clear "
			  "(three hand-offs: the event thread would release the writer)",
};

int bench_b3_first_write(struct um_client *c, const struct bench_opts *o)
{
	struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO }, old;
	struct b3 b = { .c = c, .seen = malloc(B3_AMORT_PAGES) };
	unsigned int runs = bench_runs(o), aruns = o->runs ? o->runs : o->quick ? 3 : 7;
	const char *what = "setup", *name = "B3_first_write";
	double med[B3_NSTEPS + B3_NFLOORS], p50[2 + B3_NFLOORS], p99[2 + B3_NFLOORS];
	bool handler = false;
	int ret = -ENOMEM;

	/*
	 * First: the floors fork their partner process, which must not
	 * share B3's pages copy-on-write (a write would then replace the
	 * page, and the daemon's WRITE records wait for that).
	 */
	ret = b3_floors_open(&b.floors, &what);
	if (ret < 0)
		goto fail;
	ret = -ENOMEM;
	b.cap = (size_t)runs * B3_PAGES;
	for (int k = 0; k < 2 + B3_NFLOORS; k++) {
		b.lat[k] = malloc(b.cap * sizeof(double));
		if (!b.lat[k])
			goto fail;
	}
	b.split[0] = malloc(b.cap * sizeof(double));
	b.split[1] = malloc(b.cap * sizeof(double));
	if (!b.seen || !b.split[0] || !b.split[1])
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

	b.pages = B3_PAGES;
	b.per_write = true;
	ret = bench_interleave(&b3_single_plan, &b, runs, med, &what);
	if (ret < 0)
		goto fail;
	dump_lat(&b);

	for (int k = 0; k < 2 + B3_NFLOORS; k++) {
		p99[k] = bench_percentile(b.lat[k], b.nlat[k], 99);
		p50[k] = bench_percentile(b.lat[k], b.nlat[k], 50);
	}
	bench_report(&(struct bench_result){
		.bench = "B3_first_write",
		.unit = "us",
		.value = p50[0],
		.p99 = p99[0],
		.baseline = p50[1],
		.baseline_p99 = p99[1],
		.baseline_name = "mprotect(PROT_READ) + SIGSEGV handler mprotect RW, per page",
		.target = NAN,
		.goal = NAN,
		.runs = runs,
		.note = "p50/p99 of every single write (2000 populated pages per run in stride-2 "
			"order, never a write streak, each timed); "
			"sync invalidation round trip through umirrord and the library's event "
			"thread; issue 12 target p50 <= 8 us, p99 <= 30 us",
	});
	bench_report(&(struct bench_result){
		.bench = "B3_first_write_split",
		.unit = "us",
		.value = bench_percentile(b.split[0], b.nlat[0], 50),
		.p99 = bench_percentile(b.split[0], b.nlat[0], 99),
		.baseline = bench_percentile(b.split[1], b.nlat[0], 50),
		.baseline_p99 = bench_percentile(b.split[1], b.nlat[0], 99),
		.baseline_name =
			"the same writes: from their callback's start to the write's return",
		.target = NAN,
		.goal = NAN,
		.runs = runs,
		.note = "diagnostic: value = from the write to its callback's start (fault, "
			"umirrord "
			"reads it, sends, the event thread wakes); baseline = the rest (ack, "
			"umirrord "
			"unprotects, the writer wakes)",
	});
	for (int k = 0; k < B3_NFLOORS; k++)
		bench_report(&(struct bench_result){
			.bench = floor_bench[k],
			.unit = "us",
			.value = p50[0],
			.p99 = p99[0],
			.baseline = p50[2 + k],
			.baseline_p99 = p99[2 + k],
			.baseline_name = floor_name[k],
			.target = NAN,
			.goal = NAN,
			.runs = runs,
			.note = "a floor of B3_first_write (value, the same samples), measured in "
				"the same rounds, 2000 samples per run; ratio = how many floors "
				"one umirror first write costs",
		});

	if (getenv("B3_SINGLE_ONLY")) {
		ret = 0;
		goto out;
	}
	name = "B3_amortized_64m";
	b.pages = B3_AMORT_PAGES;
	b.per_write = false;
	ret = bench_interleave(&b3_plan, &b, aruns, med, &what);
	if (ret < 0)
		goto fail;
	bench_report(&(struct bench_result){
		.bench = "B3_amortized_64m",
		.unit = "us",
		.value = med[B3_UMIRROR],
		.baseline = med[B3_MPROTECT],
		.baseline_name = "mprotect(PROT_READ) + SIGSEGV handler mprotect RW, per page",
		.target = 1.0,
		.goal = NAN,
		.runs = aruns,
		.note = "every page of 64 MiB written in order (write granules grow to 2 MiB), "
			"total / 16384 pages (median of runs)",
	});
	ret = 0;
	goto out;
fail:
	bench_fail(name, ret == -EBADMSG ? 0 : ret, "%s", what);
out:
	if (handler)
		sigaction(SIGSEGV, &old, NULL);
	mp_base = NULL;
	if (b.uf_mem)
		munmap(b.uf_mem, B3_MAX_BYTES);
	if (b.mp_mem)
		munmap(b.mp_mem, B3_MAX_BYTES);
	b3_floors_close(b.floors);
	free(b.seen);
	free(b.split[0]);
	free(b.split[1]);
	for (int k = 0; k < 2 + B3_NFLOORS; k++)
		free(b.lat[k]);
	return ret;
}
