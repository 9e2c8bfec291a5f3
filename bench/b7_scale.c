// SPDX-License-Identifier: MIT
/*
 * B7: scale in intervals and clients, and the daemon's memory (MEM).
 *
 * One address space: this process inserts one-page intervals (each over
 * its own populated page, a sync receiver with a trivial callback) up to
 * 100, 1,000, 4,096 ... 100,000 or until the daemon refuses (-ENOSPC past
 * umirrord --max-intervals-per-mm, reported as such). At
 * each level: the insert rate since the last level, and the cost of one
 * first-write invalidation (write a page of an interval chosen evenly
 * across all of them, timed; re-armed untimed with um_interval_dirty) with
 * the daemon and this process pinned to CPU 0, p50/p99 over the samples;
 * the baseline is the same cost at 100 intervals, measured in this run.
 * The daemon's VmRSS is read before the inserts, after them and after
 * removing them all.
 *
 * Many clients: N child processes (256 x 400 intervals, --quick 32 x 100)
 * connect (RSS per client), insert (aggregate insert rate, RSS per
 * interval), and while their intervals exist this process measures its
 * own first-write cost again with 100 intervals; then they exit (RSS
 * after).
 *
 * MEM: the daemon's VmRSS per mirrored GiB: 1 GiB of populated 4 KiB
 * pages inserted as one interval and snapshotted once.
 */
#include <errno.h>
#include <linux/futex.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "timing.h"

#define B7_MAX 100000u
#define B7_SAMPLES 200u

struct b7 {
	struct um_client *c;
	uint8_t *mem;
	struct um_interval **iv;
	unsigned int n;
	atomic_uint invals;
	pid_t dpid;
	/* the one-address-space run's figures */
	long rss0, sh0;	       /* daemon VmRSS and RssShmem (KiB) before any interval */
	long rss1, sh1;	       /* the same at the last level reached */
	double base50, base99; /* dispatch cost at the first level */
	uint64_t ins_ns;       /* time spent inserting, all levels */
};

static void invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct b7 *b = priv;

	atomic_fetch_add_explicit(&b->invals, 1, memory_order_release);
}

static const struct um_interval_ops b7_ops = { .invalidate = invalidate };

/* insert intervals up to @to; 0 or the insert's -errno (b->n tells how far) */
static int grow(struct b7 *b, unsigned int to)
{
	while (b->n < to) {
		uint8_t *p = b->mem + (size_t)b->n * 4096;
		int ret;

		*p = 1;
		ret = um_interval_insert(b->c, p, 4096, 0, &b7_ops, b, &b->iv[b->n]);
		if (ret < 0)
			return ret;
		b->n++;
	}
	return 0;
}

/*
 * First-write cost with b->n intervals: @ns writes to intervals spread
 * evenly over all, each re-armed after. p50/p99 in us; every write must
 * have produced its invalidation before it returned.
 */
static int dispatch_cost(struct b7 *b, unsigned int ns, double *p50, double *p99, const char **what)
{
	double *lat = calloc(ns, sizeof(double));
	struct um_dirty_range dr;
	uint64_t walk_end;
	int ret = 0;

	if (!lat)
		return -ENOMEM;
	bench_pin(0, 0);
	bench_pin(b->dpid, 0);
	for (unsigned int k = 0; k < ns && ret == 0; k++) {
		unsigned int i = (unsigned int)(((uint64_t)k * 7919u + k / 2) % b->n);
		volatile uint8_t *p = b->mem + (size_t)i * 4096;
		unsigned int before = atomic_load(&b->invals);
		uint64_t t0 = bench_now_ns();

		*p ^= 2;
		lat[k] = (double)(bench_now_ns() - t0) / 1e3;
		if (atomic_load_explicit(&b->invals, memory_order_acquire) == before) {
			*what = "a first write returned before its invalidation";
			ret = -EBADMSG;
			break;
		}
		ret = (int)um_interval_dirty(b->iv[i], (uintptr_t)p, (uintptr_t)p + 4096,
					     UM_DIRTY_REARM, &dr, 1, &walk_end);
		if (ret == 1)
			ret = 0;
		else if (ret >= 0) {
			*what = "the written page was not reported dirty";
			ret = -EBADMSG;
		} else {
			*what = "um_interval_dirty(REARM)";
		}
	}
	bench_pin(0, -1);
	bench_pin(b->dpid, -1);
	if (ret == 0) {
		*p99 = bench_percentile(lat, ns, 99);
		*p50 = bench_percentile(lat, ns, 50);
	}
	free(lat);
	return ret;
}

static void dump_row(FILE *f, unsigned int n, double p50, double p99)
{
	if (f)
		fprintf(f, "%u %.3f %.3f\n", n, p50, p99);
}

static FILE *dump_open(const char *name)
{
	const char *dir = getenv("UMIRROR_BENCH_DUMP");
	char path[512];

	if (!dir)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return fopen(path, "we");
}

/* --- many clients --- */

struct b7_shared {
	_Atomic uint32_t connected, inserted, failed, go_insert, go_exit;
	_Atomic uint64_t insert_ns; /* sum over clients */
};

static void wait_for(_Atomic uint32_t *w, uint32_t val)
{
	while (atomic_load(w) < val) {
		struct timespec ts = { 0, 20 * 1000000 };

		syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, atomic_load(w), &ts, NULL, 0);
	}
}

static void bump(_Atomic uint32_t *w)
{
	atomic_fetch_add(w, 1);
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

static void __attribute__((noreturn))
client_main(struct b7_shared *sh, const char *sock, unsigned int per)
{
	struct um_client *c = NULL;
	struct um_interval **iv = calloc(per, sizeof(*iv));
	uint8_t *mem;
	uint64_t t0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	mem = mmap(NULL, (size_t)per * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	if (!iv || mem == MAP_FAILED || um_connect(sock, 0, &c) < 0) {
		bump(&sh->failed);
		bump(&sh->connected);
		bump(&sh->inserted);
		_exit(1);
	}
	memset(mem, 1, (size_t)per * 4096);
	bump(&sh->connected);
	wait_for(&sh->go_insert, 1);
	t0 = bench_now_ns();
	for (unsigned int i = 0; i < per; i++)
		if (um_interval_insert(c, mem + (size_t)i * 4096, 4096, 0, &b7_ops, NULL, &iv[i]) <
		    0) {
			bump(&sh->failed);
			break;
		}
	atomic_fetch_add(&sh->insert_ns, bench_now_ns() - t0);
	bump(&sh->inserted);
	wait_for(&sh->go_exit, 1);
	um_disconnect(c);
	_exit(0);
}

static int many_clients(struct b7 *b, const struct bench_opts *o, double base50)
{
	unsigned int nc = o->quick ? 32 : 256, per = o->quick ? 100 : 400;
	struct b7_shared *sh;
	pid_t *pids = calloc(nc, sizeof(pid_t));
	long r0, r1, r2, r3;
	double p50 = NAN, p99 = NAN, wall;
	const char *what = "many clients";
	char note[512];
	uint64_t t0;
	int ret = 0;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED || !pids) {
		free(pids);
		return -ENOMEM;
	}
	r0 = bench_daemon_rss_kib(b->dpid);
	for (unsigned int i = 0; i < nc; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			client_main(sh, o->socket, per);
	}
	wait_for(&sh->connected, nc);
	r1 = bench_daemon_rss_kib(b->dpid);
	t0 = bench_now_ns();
	bump(&sh->go_insert);
	wait_for(&sh->inserted, nc);
	wall = (double)(bench_now_ns() - t0) / 1e9;
	r2 = bench_daemon_rss_kib(b->dpid);
	if (atomic_load(&sh->failed)) {
		what = "a client could not connect or insert";
		ret = -EBADMSG;
	} else {
		ret = grow(b, 100);
		if (ret == 0)
			ret = dispatch_cost(b, B7_SAMPLES, &p50, &p99, &what);
	}
	bump(&sh->go_exit);
	for (unsigned int i = 0; i < nc; i++)
		waitpid(pids[i], NULL, 0);
	/* the daemon notices the hang-ups asynchronously */
	usleep(500000);
	r3 = bench_daemon_rss_kib(b->dpid);
	free(pids);
	munmap(sh, sizeof(*sh));
	if (ret < 0) {
		bench_fail("B7_many_clients", ret == -EBADMSG ? 0 : ret, "%s", what);
		return ret;
	}
	snprintf(note, sizeof(note),
		 "%u clients x %u one-page intervals = %u: all inserted in %.2f s (%.0f "
		 "inserts/s in all); daemon VmRSS %ld KiB before, %ld connected (%.1f KiB per "
		 "client), %ld inserted (%.0f B per interval), %ld after they exited; value: "
		 "this process's first write with its 100 intervals among them, pinned",
		 nc, per, nc * per, wall, (double)nc * per / wall, r0, r1, (double)(r1 - r0) / nc,
		 r2, (double)(r2 - r1) * 1024.0 / ((double)nc * per), r3);
	bench_report(&(struct bench_result){
		.bench = "B7_many_clients_dispatch",
		.unit = "us",
		.value = p50,
		.p99 = p99,
		.baseline = base50,
		.baseline_name = "the same first write with 100 intervals and no other clients",
		.target = 2.0,
		.goal = NAN,
		.runs = B7_SAMPLES,
		.note = note,
	});
	bench_report(&(struct bench_result){
		.bench = "MEM_daemon_per_client",
		.unit = "KiB",
		.value = (double)(r1 - r0) / nc,
		.baseline = NAN,
		.baseline_name = "none (VmRSS of umirrord before/after clients connect)",
		.target = NAN,
		.goal = NAN,
		.runs = nc,
		.note = "connected clients, no interval yet",
	});
	return 0;
}

static int remove_all(struct b7 *b)
{
	int ret = 0;

	while (b->n)
		if (um_interval_remove(b->iv[--b->n]) < 0)
			ret = -ENOTCONN;
	return ret;
}

/*
 * Grows the address space to @level intervals, measures one dispatch there
 * and reports it. Return: 0, 1 when the daemon refused to grow (said on
 * stderr, the figures stop there; the error in *@stop_err), or -errno.
 */
static int b7_level(struct b7 *b, unsigned int level, FILE *dump, int *stop_err, const char **what)
{
	unsigned int from = b->n;
	uint64_t t0 = bench_now_ns(), dt;
	char note[512], name[48];
	double p50, p99;
	int ret;

	*what = "um_interval_insert";
	ret = grow(b, level);
	dt = bench_now_ns() - t0;
	b->ins_ns += dt;
	if (ret < 0) {
		*stop_err = ret;
		fprintf(stderr, "umirror-bench: B7: one address space stops at %u intervals: %s\n",
			b->n, strerror(-ret));
		return 1;
	}
	b->rss1 = bench_daemon_rss_kib(b->dpid);
	b->sh1 = bench_proc_status_kib(b->dpid, "RssShmem");
	*what = "first-write dispatch cost";
	ret = dispatch_cost(b, B7_SAMPLES, &p50, &p99, what);
	if (ret < 0)
		return ret;
	if (from == 0) {
		b->base50 = p50;
		b->base99 = p99;
	}
	dump_row(dump, b->n, p50, p99);
	snprintf(note, sizeof(note),
		 "one address space, %u one-page sync intervals: first-write "
		 "invalidation, pinned to CPU 0; inserts %u..%u at %.0f/s; daemon VmRSS "
		 "+%ld KiB since none (%.0f B per interval)",
		 b->n, from, b->n, (double)(b->n - from) / ((double)dt / 1e9), b->rss1 - b->rss0,
		 (double)(b->rss1 - b->rss0) * 1024.0 / b->n);
	snprintf(name, sizeof(name), "B7_dispatch_%u", b->n);
	bench_report(&(struct bench_result){
		.bench = name,
		.unit = "us",
		.value = p50,
		.p99 = p99,
		.baseline = b->base50,
		.baseline_p99 = b->base99,
		.baseline_name = "the same at 100 intervals, this run",
		.target = 2.0,
		.goal = NAN,
		.runs = B7_SAMPLES,
		.note = note,
	});
	return 0;
}

/* Removes every interval and reports what each cost the daemon and what stays. */
static int b7_memory(struct b7 *b, int stop_err)
{
	unsigned int reached = b->n;
	char note[512];
	long rss2;
	int ret;

	ret = remove_all(b);
	if (ret < 0)
		return ret;
	usleep(200000);
	rss2 = bench_daemon_rss_kib(b->dpid);
	snprintf(note, sizeof(note),
		 "%u intervals in one address space%s%s; inserted at %.0f/s; daemon VmRSS %ld "
		 "KiB before, %ld with them, %ld after removing them all; of the growth %.0f B "
		 "per interval is shared memory (the seq area's slots)",
		 reached, stop_err ? ", then " : "", stop_err ? strerror(-stop_err) : "",
		 (double)reached / ((double)b->ins_ns / 1e9), b->rss0, b->rss1, rss2,
		 (double)(b->sh1 - b->sh0) * 1024.0 / reached);
	bench_report(&(struct bench_result){
		.bench = "MEM_daemon_per_interval",
		.unit = "B",
		.value = (double)(b->rss1 - b->rss0) * 1024.0 / reached,
		.baseline = (double)(rss2 - b->rss0) * 1024.0 / reached,
		.baseline_name = "what stays per interval after removal",
		.target = NAN,
		.goal = NAN,
		.runs = reached,
		.note = note,
	});
	return 0;
}

int bench_b7_scale(struct um_client *c, const struct bench_opts *o)
{
	static const unsigned int levels[] = { 100, 1000, 4096, 10000, 100000 };
	unsigned int nlev = o->quick ? 4 : 5;
	struct b7 b = { .c = c, .base50 = NAN, .base99 = NAN };
	const char *what = "setup";
	FILE *dump = dump_open("b7_dispatch.dat");
	int ret, stop_err = 0;

	ret = b.dpid = bench_daemon_pid(c);
	if (ret < 0)
		goto fail;
	b.iv = calloc(B7_MAX, sizeof(*b.iv));
	b.mem = mmap(NULL, (size_t)B7_MAX * 4096, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ret = -ENOMEM;
	if (!b.iv || b.mem == MAP_FAILED)
		goto fail;
	madvise(b.mem, (size_t)B7_MAX * 4096, MADV_NOHUGEPAGE);
	b.rss0 = bench_daemon_rss_kib(b.dpid);
	b.sh0 = bench_proc_status_kib(b.dpid, "RssShmem");
	ret = 0;
	for (unsigned int l = 0; l < nlev && ret == 0; l++)
		ret = b7_level(&b, levels[l], dump, &stop_err, &what);
	if (ret < 0)
		goto fail;
	what = "um_interval_remove";
	ret = b7_memory(&b, stop_err);
	if (ret < 0)
		goto fail;
	ret = many_clients(&b, o, b.base50);
	remove_all(&b);
	goto out;
fail:
	bench_fail("B7_scale", ret == -EBADMSG ? 0 : ret, "%s", what);
	remove_all(&b);
out:
	if (dump)
		fclose(dump);
	if (b.mem && b.mem != MAP_FAILED)
		munmap(b.mem, (size_t)B7_MAX * 4096);
	free(b.iv);
	return ret;
}

int bench_mem(struct um_client *c, const struct bench_opts *o)
{
	size_t len = 1ull << 30;
	struct um_interval *iv = NULL;
	struct um_range r = { 0 };
	long r0, r1, r2, sh0, sh1;
	uint8_t *mem;
	pid_t dpid;
	int ret;

	ret = dpid = bench_daemon_pid(c);
	if (ret < 0)
		goto fail;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		ret = -errno;
		goto fail;
	}
	madvise(mem, len, MADV_NOHUGEPAGE);
	memset(mem, 1, len);
	r.pfns = malloc(len / 4096 * sizeof(uint64_t));
	r0 = bench_daemon_rss_kib(dpid);
	sh0 = bench_proc_status_kib(dpid, "RssShmem");
	ret = um_interval_insert(c, mem, len, 0, NULL, NULL, &iv);
	if (ret == 0) {
		r.start = (uintptr_t)mem;
		r.end = (uintptr_t)mem + len;
		ret = r.pfns ? um_range_register(&r, iv) : -ENOMEM;
	}
	if (ret == 0) {
		long n = um_range_snapshot(&r);

		ret = n < 0 ? (int)n : 0;
	}
	/* 1,024 first writes: whatever per-page write state the daemon keeps */
	for (size_t i = 0; ret == 0 && i < len; i += 256 * 4096)
		((volatile uint8_t *)mem)[i] = 2;
	r1 = bench_daemon_rss_kib(dpid);
	sh1 = bench_proc_status_kib(dpid, "RssShmem");
	if (r.iv)
		um_range_unregister(&r);
	if (iv)
		um_interval_remove(iv);
	r2 = bench_daemon_rss_kib(dpid);
	munmap(mem, len);
	free(r.pfns);
	if (ret < 0)
		goto fail;
	char note[384];

	snprintf(note, sizeof(note),
		 "1 GiB of populated 4 KiB pages inserted as one interval, snapshotted once, "
		 "1,024 pages written; value: private growth; daemon VmRSS %ld KiB before, %ld "
		 "with it, %ld after "
		 "removal; of the growth %ld KiB is shared memory (the connection's result "
		 "buffer, the client's, touched once; not per GiB)",
		 r0, r1, r2, sh1 - sh0);
	bench_report(&(struct bench_result){
		.bench = "MEM_daemon_per_gib",
		.unit = "KiB",
		.value = (double)((r1 - r0) - (sh1 - sh0)), /* private: per GiB */
		.baseline = NAN,
		.baseline_name = "none",
		.target = NAN,
		.goal = NAN,
		.runs = 1,
		.note = note,
	});
	return 0;
fail:
	bench_fail("MEM_daemon_per_gib", ret, "setup");
	return ret;
}
