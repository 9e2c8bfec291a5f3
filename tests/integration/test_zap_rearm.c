/* SPDX-License-Identifier: MIT */
/*
 * test_zap_rearm - MADV_DONTNEED of mirrored anonymous pages: once the
 * REMOVE invalidation completed (the seq is even again), every zapped
 * page is write-protected again (pagemap bit 57: a uffd-wp PTE or marker)
 * and its next write is a WRITE invalidation.
 *
 * Phase 1: one thread; random page states (never touched, read, written),
 * random zap spans, a random zapped page written after completion.
 * Phase 2: two threads at once (released together), each zapping a span
 * or writing pages, spans overlapping; afterwards every page whose last
 * invalidation was a REMOVE must be protected and its write reported.
 * Randomized: prints its seed; replay with UMIRROR_TEST_SEED=N.
 *
 * With --load N, N more client processes write into their own sync
 * intervals and harvest-and-rearm them in a loop meanwhile, so that the
 * daemon's loop is always busy: the zaps are then read between other
 * clients' messages and handled before write faults read with them
 * (docs/ARCHITECTURE.md, "The uffd event source"), which must not change
 * the order of one address space's events. Every load client must keep
 * making progress (none starved by the zaps' priority).
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NPAGES 16
#define ROUNDS1 100
#define ROUNDS2 300
#define MAX_LOAD 64
#define LOAD_PAGES 16

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static unsigned int nwrite[NPAGES], nremove;
static int last[NPAGES]; /* reason of the last invalidation of each page */
static char *base;

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	uint64_t b = (uintptr_t)base, e = b + NPAGES * PAGE;

	(void)iv;
	(void)priv;
	pthread_mutex_lock(&lock);
	for (uint64_t a = inv->start < b ? b : inv->start; a < inv->end && a < e; a += PAGE)
		last[(a - b) / PAGE] = inv->reason;
	if (inv->reason == UM_REASON_WRITE && inv->start >= b && inv->start < e)
		nwrite[(inv->start - b) / PAGE]++;
	else if (inv->reason == UM_REASON_REMOVE)
		nremove++;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

/* wait (at most 5 s) until *@count reaches @want; false if it did not */
static bool wait_count(const unsigned int *count, unsigned int want)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&lock);
	while (*count < want)
		if (pthread_cond_timedwait(&cond, &lock, &ts) == ETIMEDOUT)
			break;
	ok = *count >= want;
	pthread_mutex_unlock(&lock);
	return ok;
}

static unsigned int count_of(const unsigned int *count)
{
	unsigned int n;

	pthread_mutex_lock(&lock);
	n = *count;
	pthread_mutex_unlock(&lock);
	return n;
}

static int last_of(unsigned int page)
{
	int r;

	pthread_mutex_lock(&lock);
	r = last[page];
	pthread_mutex_unlock(&lock);
	return r;
}

/* write @page and wait for its WRITE invalidation */
static void write_reported(unsigned int page, char byte, const char *what, unsigned int round)
{
	unsigned int before = count_of(&nwrite[page]);

	base[page * PAGE] = byte;
	CHECK(wait_count(&nwrite[page], before + 1), "%s round %u: the write of page %u reported",
	      what, round, page);
}

/*
 * After the REMOVEs completed: a page whose last invalidation was a REMOVE
 * must be armed (a write would fault), and a write to it is reported.
 */
static void check_armed(const char *what, unsigned int round, unsigned int seed)
{
	for (unsigned int i = 0; i < NPAGES; i++) {
		uint64_t e = harness_pagemap(base + i * PAGE);
		unsigned int n;
		bool seen;

		if (last_of(i) != UM_REASON_REMOVE || (e & PM_UFFD_WP))
			continue;
		/* lost: show that the write goes unseen too */
		n = count_of(&nwrite[i]);
		base[i * PAGE] = (char)round;
		seen = wait_count(&nwrite[i], n + 1);
		CHECK(false,
		      "%s round %u (seed %u): page %u not write-protected after its REMOVE "
		      "completed: pagemap %#llx; a write to it %s",
		      what, round, seed, i, (unsigned long long)e,
		      seen ? "was reported" : "was not reported in 5 s");
	}
	for (unsigned int i = 0; i < NPAGES; i++)
		if (last_of(i) == UM_REASON_REMOVE && rand_r(&seed) % 4 == 0)
			write_reported(i, (char)round, what, round);
}

/* --- phase 2: two actors at once ------------------------------------------ */

struct actor {
	pthread_t thread;
	pthread_barrier_t *go;
	unsigned int a, n; /* span [a, a + n) */
	bool zap;	   /* else write every page of the span */
	char byte;
	int err;
};

static void *actor_main(void *arg)
{
	struct actor *t = arg;

	pthread_barrier_wait(t->go);
	if (t->zap)
		t->err = madvise(base + t->a * PAGE, t->n * PAGE, MADV_DONTNEED) ? errno : 0;
	else
		for (unsigned int i = t->a; i < t->a + t->n; i++)
			base[i * PAGE] = t->byte;
	return NULL;
}

static void pick_span(unsigned int *seed, unsigned int *a, unsigned int *n)
{
	*a = rand_r(seed) % NPAGES;
	*n = 1 + rand_r(seed) % 4;
	if (*a + *n > NPAGES)
		*n = NPAGES - *a;
}

/* --- load clients ------------------------------------------------------------ */

struct load_shared {
	atomic_uint stop, ready, failed;
	atomic_ulong rounds[MAX_LOAD];
};

static void load_noop(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	(void)iv;
	(void)inv;
	(void)priv;
}

static const struct um_interval_ops load_ops = { .invalidate = load_noop };

/* write every page of a sync interval, harvest and re-arm, again, until told to stop */
static void __attribute__((noreturn)) load_main(struct load_shared *sh, unsigned int idx)
{
	struct um_dirty_range dr[LOAD_PAGES];
	struct um_interval *iv;
	struct um_client *c;
	volatile char *mem;
	uint64_t walk_end;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	mem = harness_map_anon(LOAD_PAGES, PROT_READ | PROT_WRITE);
	if (um_connect(NULL, 0, &c) < 0 ||
	    um_interval_insert(c, (void *)mem, LOAD_PAGES * PAGE, 0, &load_ops, NULL, &iv) < 0) {
		atomic_fetch_add(&sh->failed, 1);
		_exit(1);
	}
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load(&sh->stop)) {
		for (unsigned int i = 0; i < LOAD_PAGES; i++)
			mem[i * PAGE]++;
		if (um_interval_dirty(iv, (uintptr_t)mem, (uintptr_t)mem + LOAD_PAGES * PAGE,
				      UM_DIRTY_REARM, dr, LOAD_PAGES, &walk_end) < 0) {
			atomic_fetch_add(&sh->failed, 1);
			_exit(1);
		}
		atomic_fetch_add(&sh->rounds[idx], 1);
	}
	um_disconnect(c);
	_exit(0);
}

static void load_start(struct load_shared *sh, unsigned int n, pid_t *pids)
{
	uint64_t deadline = harness_now_ms() + 1000ull * harness_scaled_s(30);

	for (unsigned int i = 0; i < n; i++) {
		pids[i] = fork();
		CHECK(pids[i] >= 0, "fork: %m");
		if (pids[i] == 0)
			load_main(sh, i);
	}
	while (atomic_load(&sh->ready) + atomic_load(&sh->failed) < n &&
	       harness_now_ms() < deadline)
		usleep(10000);
	CHECK(atomic_load(&sh->ready) == n, "%u of %u load clients up", atomic_load(&sh->ready), n);
}

/*
 * Every load client makes progress after @before (bounded generously: a
 * starved one never would), then all stop and exit cleanly.
 */
static void load_stop(struct load_shared *sh, unsigned int n, pid_t *pids,
		      const unsigned long *before)
{
	uint64_t deadline = harness_now_ms() + 1000ull * harness_scaled_s(30);

	for (unsigned int i = 0; i < n; i++) {
		while (atomic_load(&sh->rounds[i]) == before[i] && harness_now_ms() < deadline)
			usleep(10000);
		CHECK(atomic_load(&sh->rounds[i]) > before[i],
		      "load client %u made progress (%lu rounds)", i, atomic_load(&sh->rounds[i]));
	}
	atomic_store(&sh->stop, 1);
	for (unsigned int i = 0; i < n; i++) {
		int status = 0;

		CHECK(waitpid(pids[i], &status, 0) == pids[i] && WIFEXITED(status) &&
			      WEXITSTATUS(status) == 0,
		      "load client %u exited cleanly (0x%x)", i, status);
	}
}

int main(int argc, char **argv)
{
	unsigned long before[MAX_LOAD] = { 0 };
	struct load_shared *sh = NULL;
	pid_t pids[MAX_LOAD];
	unsigned int nload = 0;
	const char *env = getenv("UMIRROR_TEST_SEED");
	unsigned int seed, removes = 0;
	struct um_interval *iv;
	struct um_client *c;
	uint64_t seq;

	seed = env ? (unsigned int)strtoul(env, NULL, 0) : (unsigned int)getpid();
	printf("test_zap_rearm: seed %u (replay: UMIRROR_TEST_SEED=%u)\n", seed, seed);
	fflush(stdout);
	if (argc == 3 && !strcmp(argv[1], "--load"))
		nload = (unsigned int)strtoul(argv[2], NULL, 0);
	if (nload > MAX_LOAD)
		nload = MAX_LOAD;
	harness_start("test_zap_rearm", NULL);
	if (nload) {
		sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
			  0);
		CHECK(sh != MAP_FAILED, "mmap: %m");
		/* before our own connection: the children must not share it */
		load_start(sh, nload, pids);
		printf("test_zap_rearm: %u load clients\n", nload);
	}
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	base = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	CHECK(um_interval_insert(c, base, NPAGES * PAGE, 0, &ops, NULL, &iv) == 0, "insert");

	for (unsigned int r = 0; r < ROUNDS1; r++) {
		unsigned int a, n;

		pick_span(&seed, &a, &n);
		/* the pages' states before the zap: untouched, read, or written */
		for (unsigned int i = a; i < a + n; i++) {
			unsigned int k = rand_r(&seed) % 3;

			if (k == 1)
				(void)*(volatile char *)(base + i * PAGE);
			else if (k == 2 && last_of(i) != UM_REASON_WRITE)
				write_reported(i, (char)r, "phase 1", r);
			else if (k == 2)
				base[i * PAGE] = (char)r; /* not armed: no fault */
		}
		CHECK(madvise(base + a * PAGE, n * PAGE, MADV_DONTNEED) == 0, "madvise: %m");
		removes++;
		CHECK(wait_count(&nremove, removes),
		      "phase 1 round %u: REMOVE of [%u, %u) reported", r, a, a + n);
		/* complete once the seq is even: its re-arm must be in place */
		CHECK(harness_wait_even(iv, &seq) == 0, "phase 1 round %u: read_begin", r);
		check_armed("phase 1", r, seed + r);
	}

	for (unsigned int i = 0; i < nload; i++)
		before[i] = atomic_load(&sh->rounds[i]);
	for (unsigned int r = 0; r < ROUNDS2; r++) {
		struct actor t[2] = { 0 };
		pthread_barrier_t go;
		unsigned int zaps = 0;
		char what[96];

		pthread_barrier_init(&go, NULL, 2);
		for (int k = 0; k < 2; k++) {
			pick_span(&seed, &t[k].a, &t[k].n);
			/* at least one zap; the other zaps (same span half the time) or writes */
			t[k].zap = k == 0 || rand_r(&seed) % 2;
			if (k == 1 && t[1].zap && rand_r(&seed) % 2) {
				t[1].a = t[0].a;
				t[1].n = t[0].n;
			}
			t[k].byte = (char)(r + k);
			t[k].go = &go;
			zaps += t[k].zap;
		}
		for (int k = 0; k < 2; k++)
			CHECK(pthread_create(&t[k].thread, NULL, actor_main, &t[k]) == 0,
			      "pthread_create");
		for (int k = 0; k < 2; k++) {
			pthread_join(t[k].thread, NULL);
			CHECK(t[k].err == 0, "madvise: %s", strerror(t[k].err));
		}
		pthread_barrier_destroy(&go);
		removes += zaps;
		CHECK(wait_count(&nremove, removes), "phase 2 round %u: %u REMOVEs reported", r,
		      zaps);
		CHECK(harness_wait_even(iv, &seq) == 0, "phase 2 round %u: read_begin", r);
		snprintf(what, sizeof(what), "phase 2 (%s [%u, %u) with %s [%u, %u))",
			 t[0].zap ? "zap" : "write", t[0].a, t[0].a + t[0].n,
			 t[1].zap ? "zap" : "write", t[1].a, t[1].a + t[1].n);
		check_armed(what, r, seed + r);
	}
	if (nload)
		load_stop(sh, nload, pids, before);
	CHECK(um_interval_remove(iv) == 0, "remove");
	um_disconnect(c);
	return harness_summary();
}
