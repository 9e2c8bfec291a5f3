/* SPDX-License-Identifier: MIT */
/*
 * test_fault - um_range_fault() against a real daemon, every entry checked
 * against /proc/self/pagemap: read faults (zero page), write faults (a
 * WRITE invalidation, COW broken after fork), permissions, holes and
 * unmapped parts, per-page requests, NONBLOCK, lost-update race with
 * concurrent writers, shared memory and hugetlb.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPAGES 16
#define HPAGE (2ul << 20)
#define HPAGES (HPAGE / PAGE)

static uint64_t zero_pfn;

/* invalidations of one interval, WRITE ones per page */
struct log {
	pthread_mutex_t lock;
	uint64_t base;
	atomic_uint n, nwrite;
	unsigned int per_page[NPAGES];
};

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct log *l = priv;

	(void)iv;
	pthread_mutex_lock(&l->lock);
	atomic_fetch_add(&l->n, 1);
	if (inv->reason == UM_REASON_WRITE) {
		atomic_fetch_add(&l->nwrite, 1);
		for (uint64_t a = inv->start; a < inv->end; a += PAGE)
			if (a >= l->base && (a - l->base) / PAGE < NPAGES)
				l->per_page[(a - l->base) / PAGE]++;
	}
	pthread_mutex_unlock(&l->lock);
}

static const struct um_interval_ops log_ops = { .invalidate = on_invalidate };

static void log_init(struct log *l, void *base)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	l->base = (uintptr_t)base;
}

static uint64_t pm_pfn(const void *addr)
{
	return harness_pagemap(addr) & PM_PFN_MASK;
}

static uint64_t pfn_of(uint64_t e)
{
	return e >> UM_DEFAULT_PFN_SHIFT;
}

/* um_range_fault over [buf, buf + n pages) with @dflt for every page */
static long fault(struct um_interval *iv, void *buf, size_t n, uint64_t dflt, uint64_t *pfns,
		  unsigned int flags)
{
	struct um_range r = { .start = (uintptr_t)buf,
			      .end = (uintptr_t)buf + n * PAGE,
			      .pfns = pfns,
			      .default_flags = dflt };
	long ret;

	CHECK(um_range_register(&r, iv) == 0, "range register");
	ret = um_range_fault(&r, flags);
	if (ret >= 0)
		CHECK(!(r.notifier_seq & 1), "notifier_seq %llu even after a fault",
		      (unsigned long long)r.notifier_seq);
	um_range_unregister(&r);
	return ret;
}

static void check_written(const uint64_t *pfns, const char *buf, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t pm = harness_pagemap(buf + i * PAGE);

		CHECK((pfns[i] & (UM_DEFAULT_VALID | UM_DEFAULT_WRITE | UM_DEFAULT_ZERO |
				  UM_DEFAULT_UFFD_WP)) == (UM_DEFAULT_VALID | UM_DEFAULT_WRITE),
		      "%s: page %zu VALID|WRITE, not ZERO/UFFD_WP: %#llx", what, i,
		      (unsigned long long)pfns[i]);
		CHECK((pm & PM_PRESENT) && !(pm & PM_UFFD_WP) &&
			      pfn_of(pfns[i]) == (pm & PM_PFN_MASK) && pfn_of(pfns[i]) != zero_pfn,
		      "%s: page %zu PFN %#llx is pagemap's (%#llx), present, unprotected", what, i,
		      (unsigned long long)pfn_of(pfns[i]), (unsigned long long)pm);
	}
}

static bool wp_unpopulated; /* the daemon's UM_FEAT_WP_UNPOPULATED */

/*
 * Is @pm what insert leaves on a never-touched page that nothing has
 * faulted since? With WP_UNPOPULATED nothing is mapped (a uffd-wp marker
 * at most); without it the daemon read-faulted the page at insert (no PTE,
 * nothing to protect otherwise): the zero page, protected.
 */
static bool as_inserted(uint64_t pm)
{
	if (wp_unpopulated)
		return !(pm & PM_PRESENT);
	return (pm & PM_PRESENT) && (pm & PM_PFN_MASK) == zero_pfn && (pm & PM_UFFD_WP);
}

/* never-touched anon, read fault: the zero page, and no invalidation */
static void read_untouched(struct um_client *c)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	uint64_t pfns[NPAGES];
	struct um_interval *iv;
	struct log l;

	log_init(&l, buf);
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, &log_ops, &l, &iv) == 0, "insert");
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(as_inserted(harness_pagemap(buf + i * PAGE)),
		      "page %zu as insert left it (WP_UNPOPULATED %d): %#llx", i, wp_unpopulated,
		      (unsigned long long)harness_pagemap(buf + i * PAGE));
	CHECK(fault(iv, buf, NPAGES, UM_DEFAULT_VALID, pfns, 0) == NPAGES, "read fault");
	for (size_t i = 0; i < NPAGES; i++)
		CHECK((pfns[i] & (UM_DEFAULT_VALID | UM_DEFAULT_ZERO | UM_DEFAULT_WRITE)) ==
				      (UM_DEFAULT_VALID | UM_DEFAULT_ZERO) &&
			      pfn_of(pfns[i]) == zero_pfn && pm_pfn(buf + i * PAGE) == zero_pfn,
		      "page %zu: VALID|ZERO, the zero page in pagemap too: %#llx", i,
		      (unsigned long long)pfns[i]);
	CHECK(atomic_load(&l.n) == 0, "a read fault invalidates nothing (%u)", atomic_load(&l.n));
	CHECK(buf[0] == 0 && buf[NPAGES * PAGE - 1] == 0, "zeroes");
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

/* write fault over untouched, zero-page and written-before-insert pages */
static void write_fault(struct um_client *c)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	uint64_t pfns[NPAGES], seq;
	struct um_interval *iv;
	volatile char sink;
	struct log l;

	for (size_t i = 0; i < NPAGES / 4; i++)
		sink = buf[i * PAGE];
	(void)sink;
	for (size_t i = NPAGES / 4; i < NPAGES / 2; i++)
		buf[i * PAGE] = (char)i;
	log_init(&l, buf);
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, &log_ops, &l, &iv) == 0, "insert");
	CHECK(um_interval_read_begin(iv, &seq) == 0, "read_begin");
	CHECK(fault(iv, buf, NPAGES, UM_DEFAULT_VALID | UM_DEFAULT_WRITE, pfns, 0) == NPAGES,
	      "write fault");
	check_written(pfns, buf, NPAGES, "write fault");
	CHECK(um_interval_read_retry(iv, seq), "the write fault invalidated the interval");
	CHECK(atomic_load(&l.nwrite) >= 1, "a WRITE invalidation reached the callback");
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(l.per_page[i] >= 1, "page %zu covered by a WRITE invalidation", i);
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(buf[i * PAGE] == (i >= NPAGES / 4 && i < NPAGES / 2 ? (char)i : 0),
		      "page %zu data kept", i);
	/* already writable: nothing more to do, no more invalidations */
	{
		unsigned int before = atomic_load(&l.n);

		CHECK(fault(iv, buf, NPAGES, UM_DEFAULT_VALID | UM_DEFAULT_WRITE, pfns, 0) ==
			      NPAGES,
		      "second write fault");
		CHECK(atomic_load(&l.n) == before, "no invalidation for writable pages");
		check_written(pfns, buf, NPAGES, "second write fault");
	}
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

/* figures: a 1 MiB read fault and a 1 MiB write fault of fresh memory */
static void timing(struct um_client *c)
{
	const size_t n = 256;
	char *buf = harness_map_anon(n, PROT_READ | PROT_WRITE);
	uint64_t *pfns = calloc(n, sizeof(*pfns));
	struct um_interval *iv;
	uint64_t t0, t1, t2;

	CHECK(pfns != NULL, "calloc");
	CHECK(um_interval_insert(c, buf, n * PAGE, 0, NULL, NULL, &iv) == 0, "insert 1 MiB");
	t0 = harness_now_ms();
	CHECK(fault(iv, buf, n, UM_DEFAULT_VALID, pfns, 0) == (long)n, "1 MiB read fault");
	t1 = harness_now_ms();
	CHECK(fault(iv, buf, n, UM_DEFAULT_WRITE, pfns, 0) == (long)n, "1 MiB write fault");
	t2 = harness_now_ms();
	check_written(pfns, buf, n, "1 MiB");
	printf("test_fault: 1 MiB read fault %llu ms, 1 MiB write fault %llu ms\n",
	       (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1));
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, n * PAGE);
	free(pfns);
}

static char *cow_buf;

/* the child's own PFN of @addr (harness_pagemap's fd names the parent's mm) */
static uint64_t child_pfn(int fd, const void *addr)
{
	uint64_t e = 0;

	if (pread(fd, &e, sizeof(e), (off_t)((uintptr_t)addr / PAGE * 8)) != sizeof(e))
		_exit(3);
	return e & PM_PFN_MASK;
}

/* report PFNs, wait for the parent's fault, report them again with the data */
static void cow_child(int in_fd, int out_fd)
{
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t pfn[NPAGES];
	char go, ok = 'k';

	if (pm < 0)
		_exit(3);
	for (size_t i = 0; i < NPAGES; i++)
		pfn[i] = child_pfn(pm, cow_buf + i * PAGE);
	if (write(out_fd, pfn, sizeof(pfn)) != sizeof(pfn) || read(in_fd, &go, 1) != 1)
		_exit(2);
	for (size_t i = 0; i < NPAGES; i++) {
		pfn[i] = child_pfn(pm, cow_buf + i * PAGE);
		if (cow_buf[i * PAGE] != 'p')
			ok = 'x';
	}
	if (write(out_fd, pfn, sizeof(pfn)) != sizeof(pfn) || write(out_fd, &ok, 1) != 1)
		_exit(2);
	_exit(0);
}

/* write fault after fork: a new private page for the parent, the child keeps the old */
static void write_after_fork(struct um_client *c)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	uint64_t pfns[NPAGES], old[NPAGES], child_before[NPAGES], child_after[NPAGES];
	int to_child, from_child, status;
	struct um_interval *iv;
	char ok = 0;
	pid_t pid;

	memset(buf, 'p', NPAGES * PAGE);
	for (size_t i = 0; i < NPAGES; i++)
		old[i] = pm_pfn(buf + i * PAGE);
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0, "insert");
	cow_buf = buf;
	pid = harness_fork(cow_child, &to_child, &from_child);
	CHECK(read(from_child, child_before, sizeof(child_before)) == sizeof(child_before),
	      "child's PFNs");
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(child_before[i] == old[i] && pm_pfn(buf + i * PAGE) == old[i],
		      "page %zu shared after fork", i);
	CHECK(fault(iv, buf, NPAGES, UM_DEFAULT_WRITE, pfns, 0) == NPAGES,
	      "write fault after fork");
	check_written(pfns, buf, NPAGES, "COW");
	CHECK(write(to_child, "g", 1) == 1, "go");
	CHECK(read(from_child, child_after, sizeof(child_after)) == sizeof(child_after) &&
		      read(from_child, &ok, 1) == 1 && ok == 'k',
	      "child's data intact");
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child exit 0x%x", status);
	for (size_t i = 0; i < NPAGES; i++) {
		CHECK(pfn_of(pfns[i]) != old[i], "page %zu: a new private PFN", i);
		CHECK(child_after[i] == old[i], "page %zu: the child keeps PFN %#llx (now %#llx)",
		      i, (unsigned long long)old[i], (unsigned long long)child_after[i]);
		CHECK(buf[i * PAGE] == 'p', "page %zu parent data", i);
	}
	close(to_child);
	close(from_child);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

/* PROT_READ + write -> -EPERM, nothing faulted; PROT_NONE -> -EPERM, ERROR entries */
static void permissions(struct um_client *c)
{
	char *ro = harness_map_anon(NPAGES, PROT_READ);
	char *none = harness_map_anon(NPAGES, PROT_NONE);
	uint64_t pfns[NPAGES];
	struct um_interval *a, *b;
	long ret;

	CHECK(um_interval_insert(c, ro, NPAGES * PAGE, 0, NULL, NULL, &a) == 0, "insert ro");
	ret = fault(a, ro, NPAGES, UM_DEFAULT_VALID | UM_DEFAULT_WRITE, pfns, 0);
	CHECK(ret == -EPERM, "write fault of PROT_READ: %ld", ret);
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(as_inserted(harness_pagemap(ro + i * PAGE)), "ro page %zu not faulted", i);
	CHECK(fault(a, ro, NPAGES, UM_DEFAULT_VALID, pfns, 0) == NPAGES, "read fault of PROT_READ");
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(pfn_of(pfns[i]) == zero_pfn && !(pfns[i] & UM_DEFAULT_WRITE),
		      "ro page %zu: zero page, not WRITE", i);

	CHECK(um_interval_insert(c, none, NPAGES * PAGE, 0, NULL, NULL, &b) == 0, "insert none");
	memset(pfns, 0, sizeof(pfns));
	ret = fault(b, none, NPAGES, UM_DEFAULT_VALID, pfns, 0);
	CHECK(ret == -EPERM, "read fault of PROT_NONE: %ld", ret);
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(pfns[i] == UM_DEFAULT_ERROR, "PROT_NONE page %zu: ERROR, got %#llx", i,
		      (unsigned long long)pfns[i]);
	CHECK(um_interval_remove(a) == 0 && um_interval_remove(b) == 0, "remove");
	munmap(ro, NPAGES * PAGE);
	munmap(none, NPAGES * PAGE);
}

/* munmap in the middle: -EFAULT, also after something new is mapped there */
static void hole(struct um_client *c)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	uint64_t pfns[NPAGES];
	struct um_interval *iv;
	char *again;
	long ret;

	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0, "insert");
	CHECK(munmap(buf + 6 * PAGE, 4 * PAGE) == 0, "munmap middle");
	ret = fault(iv, buf, NPAGES, UM_DEFAULT_VALID, pfns, 0);
	CHECK(ret == -EFAULT, "fault over a hole: %ld", ret);
	for (size_t i = 6; i < 10; i++)
		CHECK(pfns[i] == UM_DEFAULT_ERROR, "hole page %zu ERROR: %#llx", i,
		      (unsigned long long)pfns[i]);
	CHECK(as_inserted(harness_pagemap(buf)), "nothing faulted on a failed check");
	CHECK(fault(iv, buf, 6, UM_DEFAULT_VALID | UM_DEFAULT_WRITE, pfns, 0) == 6,
	      "the part before the hole still faults");
	check_written(pfns, buf, 6, "before the hole");
	again = mmap(buf + 6 * PAGE, 4 * PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(again == buf + 6 * PAGE, "map the hole again: %m");
	ret = fault(iv, buf + 6 * PAGE, 4, UM_DEFAULT_VALID, pfns, 0);
	CHECK(ret == -EFAULT, "unmapped since insert stays gone: %ld", ret);
	CHECK(pfns[0] == UM_DEFAULT_ERROR, "gone page snapshots as ERROR: %#llx",
	      (unsigned long long)pfns[0]);
	CHECK(!(harness_pagemap(again) & PM_PRESENT), "the new mapping was not faulted");
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

/* per-page requests: only what pfns[] & mask | default_flags asks for */
static void per_page(struct um_client *c)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	uint64_t pfns[NPAGES];
	struct um_interval *iv;
	struct um_range r = { .start = (uintptr_t)buf,
			      .end = (uintptr_t)buf + NPAGES * PAGE,
			      .pfns = pfns,
			      .pfn_flags_mask = UM_DEFAULT_VALID | UM_DEFAULT_WRITE };

	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0, "insert");
	CHECK(um_range_register(&r, iv) == 0, "register");
	for (size_t i = 0; i < NPAGES; i++)
		/* bits outside the mask must not count */
		pfns[i] = (i % 4 == 0	? UM_DEFAULT_VALID
			   : i % 4 == 1 ? UM_DEFAULT_WRITE
					: 0) |
			  UM_DEFAULT_HUGE | UM_DEFAULT_SWAP;
	CHECK(um_range_fault(&r, 0) == NPAGES, "per-page fault");
	for (size_t i = 0; i < NPAGES; i++) {
		uint64_t pm = harness_pagemap(buf + i * PAGE);

		if (i % 4 == 0)
			CHECK((pfns[i] & UM_DEFAULT_VALID) && pfn_of(pfns[i]) == zero_pfn &&
				      (pm & PM_PFN_MASK) == zero_pfn,
			      "page %zu read-faulted: %#llx", i, (unsigned long long)pfns[i]);
		else if (i % 4 == 1)
			check_written(&pfns[i], buf + i * PAGE, 1, "per-page write");
		else
			CHECK(as_inserted(pm) &&
				      (wp_unpopulated
					       ? pfns[i] == UM_DEFAULT_UFFD_WP
					       : (pfns[i] &
						  (UM_DEFAULT_VALID | UM_DEFAULT_ZERO |
						   UM_DEFAULT_UFFD_WP | UM_DEFAULT_WRITE)) ==
							 (UM_DEFAULT_VALID | UM_DEFAULT_ZERO |
							  UM_DEFAULT_UFFD_WP)),
			      "page %zu not requested, not faulted: %#llx pagemap %#llx", i,
			      (unsigned long long)pfns[i], (unsigned long long)pm);
	}
	/* default_flags alone, with a zero mask: every page */
	r.pfn_flags_mask = 0;
	r.default_flags = UM_DEFAULT_VALID;
	for (size_t i = 0; i < NPAGES; i++)
		pfns[i] = UM_DEFAULT_WRITE;
	CHECK(um_range_fault(&r, 0) == NPAGES, "default_flags fault");
	for (size_t i = 0; i < NPAGES; i++) {
		CHECK((pfns[i] & UM_DEFAULT_VALID) && pfn_of(pfns[i]) == pm_pfn(buf + i * PAGE),
		      "page %zu present: %#llx", i, (unsigned long long)pfns[i]);
		CHECK(!!(pfns[i] & UM_DEFAULT_WRITE) == (i % 4 == 1),
		      "page %zu WRITE only where written before: %#llx", i,
		      (unsigned long long)pfns[i]);
	}
	um_range_unregister(&r);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

/* NONBLOCK: -EBUSY while an invalidation is held, success once it is released */
static void nonblock(struct um_client *c)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	struct harness_gate g;
	struct harness_writer w;
	uint64_t pfns[NPAGES];
	struct um_interval *iv;
	long ret;

	harness_gate_init(&g, 800); /* below the daemon's 1000 ms ack timeout */
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, &harness_gate_ops, &g, &iv) == 0,
	      "insert");
	harness_writer_start(&w, buf, 1, 'w');
	CHECK(harness_sem_wait_ms(&g.entered, 5000), "the writer's invalidation is held");
	ret = fault(iv, buf, NPAGES, UM_DEFAULT_VALID, pfns, UM_FAULT_NONBLOCK);
	CHECK(ret == -EBUSY, "NONBLOCK while held: %ld", ret);
	sem_post(&g.go);
	harness_writer_join(&w);
	for (int i = 0; i < 100 && !atomic_load(&g.done); i++)
		usleep(1000);
	ret = -EBUSY;
	for (int i = 0; i < 100 && ret == -EBUSY; i++) {
		ret = fault(iv, buf, NPAGES, UM_DEFAULT_VALID, pfns, UM_FAULT_NONBLOCK);
		if (ret == -EBUSY)
			usleep(1000);
	}
	CHECK(ret == NPAGES, "NONBLOCK after release: %ld", ret);
	CHECK((pfns[0] & UM_DEFAULT_WRITE) && pfn_of(pfns[1]) == zero_pfn,
	      "written page and zero page: %#llx %#llx", (unsigned long long)pfns[0],
	      (unsigned long long)pfns[1]);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

/* --- race: atomic increments while the pages are write-faulted ------------ */

#define RACE_PAGES 4
#define RACE_COUNTERS 8 /* per page, a cache line apart */
#define RACE_ROUNDS 200
#define FORK_ROUNDS 100
#define RACE_N (RACE_PAGES * RACE_COUNTERS)

struct race {
	uint64_t *base;
	atomic_bool stop;
	pthread_t t[2];
	uint64_t done[2][RACE_N]; /* increments each writer made, per counter */
};

static uint64_t *race_counter(struct race *r, unsigned int i)
{
	return &r->base[(i % RACE_PAGES) * (PAGE / 8) + (i / RACE_PAGES) * 8];
}

static void *race_writer0(void *arg);
static void *race_writer1(void *arg);

static void race_write(struct race *r, int me)
{
	for (uint64_t k = 0; !atomic_load_explicit(&r->stop, memory_order_relaxed); k++) {
		unsigned int i = k % RACE_N;

		__atomic_fetch_add(race_counter(r, i), 1, __ATOMIC_RELAXED);
		r->done[me][i]++;
	}
}

static void *race_writer0(void *arg)
{
	race_write(arg, 0);
	return NULL;
}

static void *race_writer1(void *arg)
{
	race_write(arg, 1);
	return NULL;
}

static void race(struct um_client *c)
{
	/* the counter pages, then one page only for MADV_DONTNEED */
	char *buf = harness_map_anon(RACE_PAGES + 1, PROT_READ | PROT_WRITE);
	static struct race r;
	uint64_t pfns[RACE_PAGES], total = 0;
	unsigned int ok = 0, busy = 0;
	struct um_interval *iv;
	struct log l;

	memset(&r, 0, sizeof(r));
	r.base = (uint64_t *)buf;
	log_init(&l, buf);
	CHECK(um_interval_insert(c, buf, (RACE_PAGES + 1) * PAGE, 0, &log_ops, &l, &iv) == 0,
	      "insert");
	CHECK(pthread_create(&r.t[0], NULL, race_writer0, &r) == 0 &&
		      pthread_create(&r.t[1], NULL, race_writer1, &r) == 0,
	      "writer threads");
	for (unsigned int round = 1; round <= RACE_ROUNDS; round++) {
		long ret = fault(iv, buf, RACE_PAGES, UM_DEFAULT_WRITE, pfns, 0);
		pid_t pid;

		CHECK(ret == RACE_PAGES || ret == -EBUSY, "race fault: %ld", ret);
		ok += ret == RACE_PAGES;
		busy += ret == -EBUSY;
		buf[RACE_PAGES * PAGE] = 1;
		CHECK(madvise(buf + RACE_PAGES * PAGE, PAGE, MADV_DONTNEED) == 0, "dontneed");
		/* every few rounds: re-arm everything and make the pages COW */
		if (round % 8 == 0) {
			pid = fork();
			CHECK(pid >= 0, "fork: %m");
			if (pid == 0)
				_exit(0);
			CHECK(waitpid(pid, NULL, 0) == pid, "reap");
		}
	}
	atomic_store(&r.stop, true);
	CHECK(pthread_join(r.t[0], NULL) == 0 && pthread_join(r.t[1], NULL) == 0, "join");
	for (unsigned int i = 0; i < RACE_N; i++) {
		uint64_t want = r.done[0][i] + r.done[1][i];

		total += want;
		CHECK(*race_counter(&r, i) == want, "counter %u: %llu, want %llu (lost update)", i,
		      (unsigned long long)*race_counter(&r, i), (unsigned long long)want);
	}
	CHECK(ok > 0, "some faults succeeded (%u ok, %u busy)", ok, busy);
	printf("test_fault: race: %u rounds, %u faults ok, %u -EBUSY, %u invalidations, "
	       "%llu increments\n",
	       RACE_ROUNDS, ok, busy, atomic_load(&l.n), (unsigned long long)total);
	CHECK(fault(iv, buf, RACE_PAGES, UM_DEFAULT_WRITE, pfns, 0) == RACE_PAGES, "final fault");
	check_written(pfns, buf, RACE_PAGES, "after the race");
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, (RACE_PAGES + 1) * PAGE);
}

/*
 * A write fault right after a fork whose child is gone again: the pages
 * are the parent's alone (exclusive) and written, so a snapshot taken
 * before the FORK invalidation's re-arm is in place calls them WRITE and
 * um_range_fault() has nothing to do. The FORK invalidation must not
 * complete before that re-arm is applied: when the kernel refused it with
 * EAGAIN (the fork event still being delivered) the daemon used to let the
 * seq go even with the re-arm queued, the fault returned WRITE entries, and
 * a millisecond later the queued re-arm protected the pages (race()'s final
 * check_written() saw bit 57 about once in 150 runs).
 */
static void fault_after_fork(struct um_client *c)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	uint64_t pfns[NPAGES];
	struct um_interval *iv;
	char what[48];

	memset(buf, 'f', NPAGES * PAGE);
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0, "insert");
	for (int round = 0; round < FORK_ROUNDS; round++) {
		pid_t pid;

		/* written: the interval's FORK invalidation re-arms it */
		memset(buf, round, NPAGES * PAGE);
		pid = fork();
		CHECK(pid >= 0, "fork: %m");
		if (pid == 0)
			_exit(0);
		CHECK(waitpid(pid, NULL, 0) == pid, "reap");
		snprintf(what, sizeof(what), "fault after fork, round %d", round);
		CHECK(fault(iv, buf, NPAGES, UM_DEFAULT_WRITE, pfns, 0) == NPAGES, "%s", what);
		check_written(pfns, buf, NPAGES, what);
	}
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

/* --- shared memory ------------------------------------------------------ */

static void shared_one(struct um_client *c, char *m, int fd, const char *what)
{
	uint64_t pfns[NPAGES], first[NPAGES];
	struct um_interval *iv;
	char b;

	m[3 * PAGE] = 'd';
	CHECK(um_interval_insert(c, m, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0, "%s: insert", what);
	/*
	 * mm_insert() may reply while its write-protect waits in the daemon's
	 * EAGAIN retry queue (mmap_changing after the race's forks): wait
	 * until the written page shows armed before relying on it.
	 */
	for (int i = 0; i < 1000 && !(harness_pagemap(m + 3 * PAGE) & PM_UFFD_WP); i++)
		usleep(1000);
	CHECK(harness_pagemap(m + 3 * PAGE) & PM_UFFD_WP, "%s: armed after insert", what);
	CHECK(fault(iv, m, NPAGES, UM_DEFAULT_VALID, pfns, 0) == NPAGES, "%s: read fault", what);
	for (size_t i = 0; i < NPAGES; i++) {
		uint64_t pm = harness_pagemap(m + i * PAGE);

		CHECK((pfns[i] & (UM_DEFAULT_VALID | UM_DEFAULT_FILE)) ==
				      (UM_DEFAULT_VALID | UM_DEFAULT_FILE) &&
			      !(pfns[i] & UM_DEFAULT_WRITE) && (pm & PM_PRESENT) &&
			      pfn_of(pfns[i]) == (pm & PM_PFN_MASK),
		      "%s: page %zu VALID|FILE, armed, pagemap's PFN: %#llx (pagemap %#llx)", what,
		      i, (unsigned long long)pfns[i], (unsigned long long)pm);
		first[i] = pfn_of(pfns[i]);
	}
	CHECK(fault(iv, m, NPAGES, UM_DEFAULT_WRITE, pfns, 0) == NPAGES, "%s: write fault", what);
	check_written(pfns, m, NPAGES, what);
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(pfn_of(pfns[i]) == first[i] && (pfns[i] & UM_DEFAULT_FILE),
		      "%s: page %zu the same shared page after the write fault", what, i);
	CHECK(m[3 * PAGE] == 'd' && m[4 * PAGE] == 0, "%s: data", what);
	if (fd >= 0)
		CHECK(pread(fd, &b, 1, 3 * PAGE) == 1 && b == 'd', "%s: file data", what);
	CHECK(um_interval_remove(iv) == 0, "%s: remove", what);
}

static void shared(struct um_client *c)
{
	int fd = memfd_create("umirror-fault", MFD_CLOEXEC);
	char *m;

	CHECK(fd >= 0 && ftruncate(fd, NPAGES * PAGE) == 0, "memfd: %m");
	m = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mmap memfd: %m");
	shared_one(c, m, fd, "memfd");
	munmap(m, NPAGES * PAGE);
	close(fd);
	m = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED, "mmap shared anon: %m");
	shared_one(c, m, -1, "shared anon");
	munmap(m, NPAGES * PAGE);
}

/* --- hugetlb ------------------------------------------------------------- */

static long saved_nr = -1;

static long nr_hugepages(long set)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", set >= 0 ? "we" : "re");
	long v = -1;

	if (!f)
		return -1;
	if (set >= 0)
		v = fprintf(f, "%ld\n", set) > 0 ? set : -1;
	else if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	if (fclose(f) != 0)
		v = -1;
	return v;
}

static void restore_nr(void)
{
	if (saved_nr >= 0)
		nr_hugepages(saved_nr);
}

static void hugetlb(struct um_client *c)
{
	static uint64_t pfns[HPAGES];
	struct um_interval *iv;
	long old = nr_hugepages(-1);
	char *buf;

	if (old < 0 || nr_hugepages(old + 2) < 0 || nr_hugepages(-1) < old + 2) {
		printf("test_fault: hugetlb: SKIPPED: cannot reserve 2 MiB huge pages "
		       "(nr_hugepages %ld)\n",
		       nr_hugepages(-1));
		if (old >= 0)
			nr_hugepages(old);
		return;
	}
	saved_nr = old;
	atexit(restore_nr);
	buf = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
		   -1, 0);
	CHECK(buf != MAP_FAILED, "mmap MAP_HUGETLB: %m");
	CHECK(um_interval_insert(c, buf, HPAGE, 0, NULL, NULL, &iv) == 0, "insert hugetlb");
	CHECK(fault(iv, buf, HPAGES, UM_DEFAULT_VALID, pfns, 0) == (long)HPAGES,
	      "hugetlb read fault");
	for (size_t i = 0; i < HPAGES; i++)
		CHECK((pfns[i] & (UM_DEFAULT_VALID | UM_DEFAULT_HUGE)) ==
				      (UM_DEFAULT_VALID | UM_DEFAULT_HUGE) &&
			      pfn_of(pfns[i]) == pm_pfn(buf + i * PAGE) &&
			      pfn_of(pfns[i]) == pfn_of(pfns[0]) + i,
		      "hugetlb read entry %zu: %#llx", i, (unsigned long long)pfns[i]);
	CHECK(fault(iv, buf, HPAGES, UM_DEFAULT_WRITE, pfns, 0) == (long)HPAGES,
	      "hugetlb write fault");
	check_written(pfns, buf, HPAGES, "hugetlb");
	for (size_t i = 0; i < HPAGES; i++)
		CHECK((pfns[i] & UM_DEFAULT_HUGE) && pfn_of(pfns[i]) == pfn_of(pfns[0]) + i &&
			      (pfn_of(pfns[0]) & (HPAGES - 1)) == 0,
		      "hugetlb write entry %zu HUGE, contiguous: %#llx", i,
		      (unsigned long long)pfns[i]);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, HPAGE);
	CHECK(nr_hugepages(old) == old, "restore nr_hugepages");
	saved_nr = -1;
}

/*
 * A manual-dispatch client: the requester reads the socket, the worker
 * populates. In a child: the daemon attaches one connection per pid.
 */
static void manual_child(int in_fd, int out_fd)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	uint64_t pfns[NPAGES];
	struct um_interval *iv;
	struct um_client *m;
	struct log l;

	log_init(&l, buf);
	CHECK(um_connect(NULL, UM_CONNECT_MANUAL, &m) == 0, "connect manual");
	CHECK(um_interval_insert(m, buf, NPAGES * PAGE, 0, &log_ops, &l, &iv) == 0, "insert");
	CHECK(fault(iv, buf, NPAGES, UM_DEFAULT_WRITE, pfns, 0) == NPAGES, "manual write fault");
	check_written(pfns, buf, NPAGES, "manual");
	CHECK(atomic_load(&l.nwrite) >= 1, "the WRITE invalidation ran on the requester");
	CHECK(um_interval_remove(iv) == 0, "remove");
	um_disconnect(m);
	munmap(buf, NPAGES * PAGE);
	(void)in_fd;
	if (write(out_fd, "k", 1) != 1)
		_exit(2);
	_exit(0);
}

static void manual(void)
{
	int to_child, from_child, status;
	pid_t pid = harness_fork(manual_child, &to_child, &from_child);
	char ok = 0;

	CHECK(read(from_child, &ok, 1) == 1 && ok == 'k', "manual child finished");
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "manual child exit 0x%x", status);
	close(to_child);
	close(from_child);
}

static struct um_client *cb_client;
static struct um_range *cb_range;
static atomic_long cb_ret;

static void deadlock_cb(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	(void)iv, (void)inv, (void)priv;
	atomic_store(&cb_ret, um_range_fault(cb_range, 0));
}

/* from a callback: -EDEADLK */
static void from_callback(struct um_client *c)
{
	static const struct um_interval_ops ops = { .invalidate = deadlock_cb };
	char *buf = harness_map_anon(1, PROT_READ | PROT_WRITE);
	uint64_t pfn;
	struct um_interval *iv;
	struct um_range r = { .start = (uintptr_t)buf,
			      .end = (uintptr_t)buf + PAGE,
			      .pfns = &pfn,
			      .default_flags = UM_DEFAULT_VALID };

	cb_client = c;
	cb_range = &r;
	atomic_store(&cb_ret, 1);
	CHECK(um_interval_insert(c, buf, PAGE, 0, &ops, NULL, &iv) == 0, "insert");
	CHECK(um_range_register(&r, iv) == 0, "register");
	buf[0] = 1; /* held until the callback returned */
	CHECK(atomic_load(&cb_ret) == -EDEADLK, "um_range_fault in a callback: %ld",
	      atomic_load(&cb_ret));
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, PAGE);
}

/*
 * VM_IO / VM_PFNMAP: [vvar] is such a mapping in every process (its pages
 * are inserted by PFN). userfaultfd cannot register it, so no interval
 * (and no fault) ever covers it: refused, never mirrored blind. Raw
 * snapshots of it show nothing present (pagemap skips PFNMAP VMAs).
 */
static void pfnmap(struct um_client *c)
{
	char line[256];
	uint64_t lo = 0, hi = 0, raw[4];
	struct um_interval *iv = NULL;
	FILE *f = fopen("/proc/self/maps", "r");
	long ret;

	CHECK(f, "maps: %m");
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "[vvar]") && sscanf(line, "%" SCNx64 "-%" SCNx64, &lo, &hi) == 2)
			break;
	fclose(f);
	if (!hi) {
		printf("pfnmap: no [vvar] mapping on this kernel, part skipped\n");
		return;
	}
	ret = um_interval_insert(c, (void *)(uintptr_t)lo, PAGE, 0, NULL, NULL, &iv);
	CHECK(ret == -EOPNOTSUPP && !iv, "insert over [vvar] (VM_PFNMAP): %ld", ret);
	ret = um_snapshot_raw(c, getpid(), lo, 1, raw);
	CHECK(ret == 1 && !(raw[0] & UM_RAW_PRESENT), "raw snapshot of [vvar]: %ld %#llx", ret,
	      (unsigned long long)raw[0]);
}

int main(void)
{
	struct um_client *c;

	if (geteuid() != 0)
		harness_skip("umirrord needs root (userfaultfd of another process, PFNs)");
	harness_start("test_fault", NULL);
	manual();
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	zero_pfn = harness_zero_pfn();
	wp_unpopulated = harness_kfeatures(c) & UM_FEAT_WP_UNPOPULATED;
	read_untouched(c);
	write_fault(c);
	timing(c);
	write_after_fork(c);
	permissions(c);
	hole(c);
	pfnmap(c);
	per_page(c);
	nonblock(c);
	race(c);
	fault_after_fork(c);
	shared(c);
	hugetlb(c);
	from_callback(c);
	um_disconnect(c);
	return harness_summary();
}
