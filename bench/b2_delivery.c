// SPDX-License-Identifier: MIT
/*
 * B2: delivery of an invalidation to a mirror in another process.
 *
 * An owner process (forked, its own connection) inserts one interval over
 * populated pages; this process subscribes to it with a sync invalidate
 * callback. For each sample the owner takes a CLOCK_MONOTONIC timestamp
 * and calls madvise(MADV_DONTNEED) on one page (REMOVE, before the fact)
 * or munmap() of one page (UNMAP, after the fact); the figure is the time
 * until the subscriber's callback starts.
 * Baseline: the same owner writes one byte into a pipe that a thread of
 * this process is blocked reading: the plain wake-up between the same two
 * processes, interleaved with the umirror samples.
 *
 * Three settings: idle; idle with the daemon, the owner and this process
 * all pinned to CPU 0 (on a VM the wake-up of an idle vCPU is a large part
 * of a cross-CPU hand-off); and under load: N more client processes
 * (--load, default 64) writing into their own sync intervals as fast as
 * they can (write every page of 16, harvest-and-rearm, again), whose
 * progress is compared at the end (max/min: does anyone starve?).
 *
 * Checks: every callback has the expected reason and page; every sample
 * arrives (a lost one fails the bench after 10 s).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "timing.h"

#define B2_MAX_LOAD 1024u
#define LOAD_PAGES 16u

enum { OP_NONE, OP_DONTNEED, OP_UNMAP, OP_PIPE, OP_QUIT };

/* shared between this process, the owner and the load clients */
struct b2_shared {
	_Atomic uint32_t go;   /* futex: bumped per command */
	_Atomic uint32_t done; /* futex: bumped per delivered sample */
	_Atomic uint32_t owner_ready, load_ready, load_failed, stop;
	uint32_t op, page;   /* the command */
	_Atomic uint64_t t0; /* owner's timestamp just before the operation */
	_Atomic uint64_t iv_id, iv_start;
	_Atomic uint64_t progress[B2_MAX_LOAD];
};

struct b2 {
	struct b2_shared *sh;
	_Atomic uint32_t expect_op; /* OP_DONTNEED / OP_UNMAP while one is in flight */
	_Atomic uint64_t expect_addr;
	_Atomic double last_us;
	atomic_uint bad;
	int pipe_r;
	/* what bench_b2_delivery() set up, for b2_teardown() */
	pid_t owner, *lpids;
	unsigned int nload;
	struct um_interval *iv;
	pthread_t reader;
	bool reader_up;
	int pipe_w;
	double *lat[3];
};

static long futex(_Atomic uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, (uint32_t *)uaddr, op, val, ts, NULL, 0);
}

static void wake(_Atomic uint32_t *w)
{
	futex(w, FUTEX_WAKE, INT32_MAX, NULL);
}

/* wait until *@w != @old, up to @ms; 0 or -ETIMEDOUT */
static int wait_change(_Atomic uint32_t *w, uint32_t old, int ms)
{
	uint64_t deadline = bench_now_ns() + (uint64_t)ms * 1000000ull;

	while (atomic_load(w) == old) {
		struct timespec ts = { 0, 50 * 1000000 };

		if (bench_now_ns() > deadline)
			return -ETIMEDOUT;
		futex(w, FUTEX_WAIT, old, &ts);
	}
	return 0;
}

static void deliver(struct b2 *b)
{
	uint64_t t1 = bench_now_ns();

	atomic_store(&b->last_us, (double)(t1 - atomic_load(&b->sh->t0)) / 1e3);
	atomic_store(&b->expect_op, OP_NONE);
	atomic_fetch_add(&b->sh->done, 1);
	wake(&b->sh->done);
}

static void invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct b2 *b = priv;
	uint32_t op = atomic_load(&b->expect_op);
	enum um_reason want = op == OP_DONTNEED ? UM_REASON_REMOVE : UM_REASON_UNMAP;

	if (op != OP_DONTNEED && op != OP_UNMAP)
		return;
	if (inv->reason != want || inv->start != atomic_load(&b->expect_addr)) {
		atomic_fetch_add(&b->bad, 1);
		return;
	}
	deliver(b);
}

static const struct um_interval_ops b2_ops = { .invalidate = invalidate };

static void *pipe_reader(void *arg)
{
	struct b2 *b = arg;
	char ch;

	while (read(b->pipe_r, &ch, 1) == 1 && ch != 'q')
		deliver(b);
	return NULL;
}

/* --- the owner (a child process) --- */

static void __attribute__((noreturn))
owner_main(struct b2_shared *sh, const char *sock, int pipe_w, size_t pages)
{
	struct um_client *c = NULL;
	struct um_interval *iv = NULL;
	uint32_t seen = 0;
	uint8_t *mem;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	mem = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || um_connect(sock, 0, &c) < 0)
		_exit(1);
	madvise(mem, pages * 4096, MADV_NOHUGEPAGE);
	memset(mem, 1, pages * 4096);
	if (um_interval_insert(c, mem, pages * 4096, 0, NULL, NULL, &iv) < 0)
		_exit(2);
	atomic_store(&sh->iv_id, um_interval_id(iv));
	atomic_store(&sh->iv_start, (uintptr_t)mem);
	atomic_store(&sh->owner_ready, 1);
	wake(&sh->owner_ready);
	for (;;) {
		uint8_t *page;

		if (wait_change(&sh->go, seen, 600000) < 0)
			_exit(3);
		seen = atomic_load(&sh->go);
		page = mem + (size_t)sh->page * 4096;
		atomic_store(&sh->t0, bench_now_ns());
		switch (sh->op) {
		case OP_DONTNEED:
			madvise(page, 4096, MADV_DONTNEED);
			break;
		case OP_UNMAP:
			munmap(page, 4096);
			break;
		case OP_PIPE:
			if (write(pipe_w, "x", 1) != 1)
				_exit(4);
			break;
		default:
			um_disconnect(c);
			_exit(0);
		}
	}
}

/* --- a load client (a child process) --- */

static void noop_inval(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
}

static const struct um_interval_ops load_ops = { .invalidate = noop_inval };

static void __attribute__((noreturn))
load_main(struct b2_shared *sh, const char *sock, unsigned idx)
{
	struct um_dirty_range dr[LOAD_PAGES];
	struct um_client *c = NULL;
	struct um_interval *iv = NULL;
	volatile uint8_t *mem;
	uint64_t walk_end;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	mem = mmap(NULL, LOAD_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		   0);
	if (mem == MAP_FAILED || um_connect(sock, 0, &c) < 0)
		goto fail;
	memset((void *)mem, 1, LOAD_PAGES * 4096);
	if (um_interval_insert(c, (void *)mem, LOAD_PAGES * 4096, 0, &load_ops, NULL, &iv) < 0)
		goto fail;
	atomic_fetch_add(&sh->load_ready, 1);
	wake(&sh->load_ready);
	while (!atomic_load(&sh->stop)) {
		for (unsigned int i = 0; i < LOAD_PAGES; i++)
			mem[i * 4096] ^= 1;
		atomic_fetch_add(&sh->progress[idx], LOAD_PAGES);
		if (um_interval_dirty(iv, (uintptr_t)mem, (uintptr_t)mem + LOAD_PAGES * 4096,
				      UM_DIRTY_REARM, dr, LOAD_PAGES, &walk_end) < 0)
			goto fail;
	}
	um_disconnect(c);
	_exit(0);
fail:
	atomic_fetch_add(&sh->load_failed, 1);
	atomic_fetch_add(&sh->load_ready, 1);
	wake(&sh->load_ready);
	_exit(1);
}

/* --- this process: the subscriber and the driver --- */

struct b2_run {
	const char *name;
	double *lat[3]; /* DONTNEED, UNMAP, PIPE samples, us */
	size_t n;
};

static int one(struct b2 *b, uint32_t op, uint32_t page, double *out)
{
	struct b2_shared *sh = b->sh;
	uint32_t done = atomic_load(&sh->done);
	int ret;

	if (op != OP_PIPE) {
		atomic_store(&b->expect_addr, atomic_load(&sh->iv_start) + (uint64_t)page * 4096);
		atomic_store(&b->expect_op, op);
	}
	sh->op = op;
	sh->page = page;
	atomic_fetch_add(&sh->go, 1);
	wake(&sh->go);
	ret = wait_change(&sh->done, done, 10000);
	if (ret < 0)
		return ret;
	*out = atomic_load(&b->last_us);
	return atomic_load(&b->bad) ? -EBADMSG : 0;
}

/* @n samples of each kind, pages [@first, @first + @n) of each half */
static int measure(struct b2 *b, size_t first, size_t n, size_t half, double **lat)
{
	int ret = 0;

	for (size_t k = 0; k < n && ret == 0; k++) {
		ret = one(b, OP_DONTNEED, (uint32_t)(first + k), &lat[0][k]);
		if (ret == 0)
			ret = one(b, OP_PIPE, 0, &lat[2][k]);
		if (ret == 0)
			ret = one(b, OP_UNMAP, (uint32_t)(half + first + k), &lat[1][k]);
	}
	return ret;
}

static void report(const char *name, const char *kind, double *lat, double *base, size_t n,
		   const char *note)
{
	char bname[96];
	double p50, p99, b50, b99;

	snprintf(bname, sizeof(bname), "B2_delivery_%s_%s", kind, name);
	p99 = bench_percentile(lat, n, 99);
	p50 = bench_percentile(lat, n, 50);
	b99 = bench_percentile(base, n, 99);
	b50 = bench_percentile(base, n, 50);
	bench_report(&(struct bench_result){
		.bench = bname,
		.unit = "us",
		.value = p50,
		.p99 = p99,
		.baseline = b50,
		.baseline_p99 = b99,
		.baseline_name = "pipe write -> blocked read() wake between the same two processes",
		.target = NAN,
		.goal = NAN,
		.runs = (unsigned int)n,
		.note = note,
	});
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int start_load(struct b2_shared *sh, const char *sock, unsigned int n, pid_t *pids)
{
	for (unsigned int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			return -errno;
		if (pids[i] == 0)
			load_main(sh, sock, i);
	}
	for (;;) {
		uint32_t r = atomic_load(&sh->load_ready);

		if (r >= n)
			break;
		if (wait_change(&sh->load_ready, r, 60000) < 0)
			return -ETIMEDOUT;
	}
	return atomic_load(&sh->load_failed) ? -ECHILD : 0;
}

static void stop_children(struct b2_shared *sh, pid_t *pids, unsigned int n)
{
	atomic_store(&sh->stop, 1);
	for (unsigned int i = 0; i < n; i++)
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
}

/* B2 idle, unpinned then all pinned to CPU 0; *@what names the part that failed */
static int b2_idle(struct b2 *b, pid_t owner, pid_t dpid, size_t n, size_t half, double **lat,
		   const char **what)
{
	int ret;

	*what = "idle";
	ret = measure(b, 0, 20 < n ? 20 : n, half, lat); /* warm-up: pages 0..19 spent */
	if (ret == 0)
		ret = measure(b, 0 + 20, n - 20, half, lat);
	if (ret < 0)
		return ret;
	report("idle", "dontneed", lat[0], lat[2], n - 20, "unpinned, idle machine");
	report("idle", "unmap", lat[1], lat[2], n - 20, "unpinned, idle machine");

	*what = "idle pinned";
	if ((ret = bench_pin(0, 0)) < 0 || (ret = bench_pin(owner, 0)) < 0 ||
	    (ret = bench_pin(dpid, 0)) < 0)
		return ret;
	ret = measure(b, n, n, half, lat);
	bench_pin(0, -1);
	bench_pin(owner, -1);
	bench_pin(dpid, -1);
	if (ret < 0)
		return ret;
	report("idle_pinned", "dontneed", lat[0], lat[2], n,
	       "umirrord, owner and subscriber all pinned to CPU 0");
	report("idle_pinned", "unmap", lat[1], lat[2], n,
	       "umirrord, owner and subscriber all pinned to CPU 0");

	return 0;
}

/*
 * B2 under load, the load clients running: the delivery samples into
 * @lat, and into @note (@len bytes) what the load did meanwhile (rate,
 * spread across clients, umirrord's CPU). Return: 0 or -errno.
 */
static int b2_under_load(struct b2 *b, pid_t dpid, unsigned int nload, size_t n, size_t half,
			 double **lat, char *note, size_t len)
{
	int ret;

	uint64_t *p0 = calloc(nload, sizeof(uint64_t));
	uint64_t t0, mn = UINT64_MAX, mx = 0, sum = 0, p10, p50, p90;
	double secs, cpu0, cpu1;
	long cs0, cs1;

	if (!p0)
		return -ENOMEM;
	/* let the load reach a steady state; spread over >= 2 s */
	usleep(500000);
	t0 = bench_now_ns();
	cpu0 = bench_proc_cpu_s(dpid);
	cs0 = bench_proc_ctxsw(dpid);
	for (unsigned int i = 0; i < nload; i++)
		p0[i] = atomic_load(&b->sh->progress[i]);
	ret = measure(b, 2 * n, n, half, lat);
	while (ret == 0 && bench_now_ns() - t0 < 2000000000ull)
		usleep(100000);
	secs = (double)(bench_now_ns() - t0) / 1e9;
	cpu1 = bench_proc_cpu_s(dpid);
	cs1 = bench_proc_ctxsw(dpid);
	for (unsigned int i = 0; i < nload; i++) {
		uint64_t d = atomic_load(&b->sh->progress[i]) - p0[i];

		mn = d < mn ? d : mn;
		mx = d > mx ? d : mx;
		sum += d;
		/* p0[] now holds each client's progress, for the percentiles */
		p0[i] = d;
	}
	qsort(p0, nload, sizeof(p0[0]), cmp_u64);
	p10 = p0[nload / 10];
	p50 = p0[nload / 2];
	p90 = p0[nload - 1 - nload / 10];
	free(p0);
	if (ret < 0)
		return ret;
	snprintf(note, len,
		 "%u load clients writing their own sync intervals (16 pages, write all, "
		 "harvest+rearm, again): %.0f write invalidations/s in all; progress "
		 "per client min %llu p10 %llu median %llu p90 %llu max %llu (max/min "
		 "%.2f) over %.1f s; umirrord used "
		 "%.0f%% of one CPU, %.1f us CPU and %.2f context switches (main thread) "
		 "per write invalidation; unpinned; issue 12 target p50 <= 20 us, p99 <= "
		 "100 us",
		 nload, (double)sum / secs, (unsigned long long)mn, (unsigned long long)p10,
		 (unsigned long long)p50, (unsigned long long)p90, (unsigned long long)mx,
		 mn ? (double)mx / (double)mn : INFINITY, secs, 100.0 * (cpu1 - cpu0) / secs,
		 sum ? (cpu1 - cpu0) * 1e6 / (double)sum : NAN,
		 sum ? (double)(cs1 - cs0) / (double)sum : NAN);
	fprintf(stderr, "umirror-bench: B2 load: %s\n", note);
	return 0;
}

/* Stops the owner and the load clients and frees what bench_b2_delivery() set up. */
static void b2_teardown(struct b2 *b)
{
	if (b->sh != MAP_FAILED && b->sh) {
		stop_children(b->sh, b->lpids, b->nload);
		if (b->owner > 0) {
			b->sh->op = OP_QUIT;
			atomic_fetch_add(&b->sh->go, 1);
			wake(&b->sh->go);
		}
	}
	if (b->iv)
		um_interval_remove(b->iv);
	if (b->owner > 0)
		waitpid(b->owner, NULL, 0);
	if (b->reader_up) {
		if (write(b->pipe_w, "q", 1) == 1)
			pthread_join(b->reader, NULL);
	}
	if (b->pipe_r >= 0)
		close(b->pipe_r);
	if (b->pipe_w >= 0)
		close(b->pipe_w);
	for (int k = 0; k < 3; k++)
		free(b->lat[k]);
	free(b->lpids);
	if (b->sh && b->sh != MAP_FAILED)
		munmap(b->sh, sizeof(*b->sh));
}

int bench_b2_delivery(struct um_client *c, const struct bench_opts *o)
{
	size_t n = o->runs ? o->runs : o->quick ? 100 : 400;
	unsigned int nload = o->load ? o->load : 64;
	size_t half = 3 * n, pages = 2 * half;
	struct b2 b = { .pipe_r = -1, .pipe_w = -1, .owner = -1 };
	double **lat = b.lat;
	const char *what = "setup";
	int pfd[2], ret;
	pid_t dpid;
	char note[640];

	if (nload > B2_MAX_LOAD)
		nload = B2_MAX_LOAD;
	b.nload = nload;
	b.sh = mmap(NULL, sizeof(*b.sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	b.lpids = calloc(nload, sizeof(*b.lpids));
	for (int k = 0; k < 3; k++)
		lat[k] = calloc(n, sizeof(double));
	ret = -ENOMEM;
	if (b.sh == MAP_FAILED || !b.lpids || !lat[0] || !lat[1] || !lat[2])
		goto fail;
	ret = -errno;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		goto fail;
	b.pipe_r = pfd[0];
	b.pipe_w = pfd[1];
	ret = dpid = bench_daemon_pid(c);
	if (ret < 0)
		goto fail;
	b.owner = fork();
	if (b.owner < 0) {
		ret = -errno;
		goto fail;
	}
	if (b.owner == 0)
		owner_main(b.sh, o->socket, pfd[1], pages);
	what = "owner start";
	while (!atomic_load(&b.sh->owner_ready))
		if ((ret = wait_change(&b.sh->owner_ready, 0, 10000)) < 0)
			goto fail;
	what = "um_interval_subscribe";
	ret = um_interval_subscribe(c, b.owner, atomic_load(&b.sh->iv_id), 0, &b2_ops, &b, &b.iv);
	if (ret < 0)
		goto fail;
	ret = -pthread_create(&b.reader, NULL, pipe_reader, &b);
	if (ret < 0)
		goto fail;
	b.reader_up = true;

	ret = b2_idle(&b, b.owner, dpid, n, half, lat, &what);
	if (ret < 0)
		goto fail;
	what = "load clients";
	ret = start_load(b.sh, o->socket, nload, b.lpids);
	if (ret < 0)
		goto fail;
	what = "under load";
	ret = b2_under_load(&b, dpid, nload, n, half, lat, note, sizeof(note));
	if (ret < 0)
		goto fail;
	{
		char kind[32];

		snprintf(kind, sizeof(kind), "load%u", nload);
		report(kind, "dontneed", lat[0], lat[2], n, note);
		report(kind, "unmap", lat[1], lat[2], n, note);
	}
	ret = 0;
	goto out;
fail:
	bench_fail("B2_delivery", ret == -EBADMSG ? 0 : ret, "%s", what);
out:
	b2_teardown(&b);
	return ret;
}
