/* SPDX-License-Identifier: MIT */
/*
 * test_invalidate - every source of invalidation gives exactly one event
 * with the right reason and span, moves the sequence by two, makes
 * read_retry true, and leaves the data intact: first write (from another
 * thread, held until the callback ran), MADV_DONTNEED, munmap, mremap,
 * fork (never-written and written intervals).
 */
#include "evlog.h"
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPAGES 8
static void dump_events(const char *what)
{
	pthread_mutex_lock(&evlog.lock);
	for (unsigned int i = 0; i < evlog.n; i++)
		fprintf(stderr, "%s: event %u: %s [%#llx, %#llx) seq %llu\n", what, i,
			um_reason_str(evlog.ev[i].inv.reason),
			(unsigned long long)evlog.ev[i].inv.start,
			(unsigned long long)evlog.ev[i].inv.end,
			(unsigned long long)evlog.ev[i].inv.seq);
	pthread_mutex_unlock(&evlog.lock);
}

/* Wait for @want events, then make sure no more arrive within 200 ms. */
static void expect_events(unsigned int want, const char *what)
{
	bool extra;

	for (unsigned int i = 0; i < want; i++)
		CHECK(harness_sem_wait_ms(&evlog.sem, 5000), "%s: invalidation %u of %u arrived",
		      what, i + 1, want);
	extra = harness_sem_wait_ms(&evlog.sem, 200);
	if (extra)
		dump_events(what);
	CHECK(!extra, "%s: no extra invalidation", what);
	pthread_mutex_lock(&evlog.lock);
	CHECK(want == 0 || evlog.n == want, "%s: %u invalidations, want %u", what, evlog.n, want);
	pthread_mutex_unlock(&evlog.lock);
}

static void check_event(unsigned int i, struct um_interval *iv, enum um_reason reason,
			const void *start, size_t len, uint64_t seq0, const char *what)
{
	const struct um_invalidation *inv = &evlog.ev[i].inv;

	CHECK(evlog.ev[i].iv == iv, "%s: event on the right interval", what);
	CHECK(inv->reason == reason, "%s: reason %s, want %s", what, um_reason_str(inv->reason),
	      um_reason_str(reason));
	CHECK(inv->start == (uintptr_t)start && inv->end == (uintptr_t)start + len,
	      "%s: span [%#llx, %#llx), want [%p, +%zu)", what, (unsigned long long)inv->start,
	      (unsigned long long)inv->end, start, len);
	CHECK(inv->seq & 1, "%s: event seq %llu is odd", what, (unsigned long long)inv->seq);
	CHECK(inv->seq > seq0, "%s: event seq %llu after %llu", what, (unsigned long long)inv->seq,
	      (unsigned long long)seq0);
}

/* After one invalidation: read_retry(old) true, new seq = old + 2. */
static void check_seq_moved(struct um_interval *iv, uint64_t seq0, const char *what)
{
	uint64_t seq1;

	CHECK(um_interval_read_retry(iv, seq0), "%s: read_retry(before) is true", what);
	CHECK(um_interval_read_begin(iv, &seq1) == 0, "%s: read_begin after", what);
	CHECK(seq1 != seq0 && seq1 == seq0 + 2, "%s: seq %llu -> %llu, want +2", what,
	      (unsigned long long)seq0, (unsigned long long)seq1);
	CHECK(!um_interval_read_retry(iv, seq1), "%s: read_retry(after) is false", what);
}

/* Start watching @iv: its sequence now (even), with the event log emptied. */
static uint64_t watch(struct um_interval *iv, const char *what)
{
	uint64_t seq0;

	CHECK(um_interval_read_begin(iv, &seq0) == 0 && !(seq0 & 1), "%s: read_begin even", what);
	evlog_reset();
	return seq0;
}

/*
 * Exactly one invalidation of @iv since watch() returned @seq0: @reason over
 * [@start, +@len), and the sequence moved by two.
 */
static void expect_one(struct um_interval *iv, enum um_reason reason, const void *start, size_t len,
		       uint64_t seq0, const char *what)
{
	expect_events(1, what);
	check_event(0, iv, reason, start, len, seq0, what);
	check_seq_moved(iv, seq0, what);
}

static char *map_buf(size_t npages, char fill)
{
	char *p = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);

	CHECK(p != MAP_FAILED, "mmap: %m");
	CHECK(madvise(p, npages * PAGE, MADV_NOHUGEPAGE) == 0, "madvise: %m");
	if (fill)
		for (size_t i = 0; i < npages; i++)
			memset(p + i * PAGE, fill + (char)i, PAGE);
	return p;
}

static bool page_is(const char *p, char v)
{
	for (size_t i = 0; i < PAGE; i++)
		if (p[i] != v)
			return false;
	return true;
}

struct writer {
	char *addr;
	pid_t tid;
	unsigned int started, done;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	w->tid = gettid();
	w->started = evlog_tick();
	memset(w->addr, 0x5a, PAGE); /* held here until the callback returned */
	w->done = evlog_tick();
	return NULL;
}

static void test_write(struct um_client *c)
{
	char *buf = map_buf(NPAGES, 'a');
	struct writer w = { .addr = buf + 2 * PAGE };
	struct um_interval *iv;
	pthread_t t;
	uint64_t seq0;

	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, &evlog_ops, NULL, &iv) == 0, "insert");
	seq0 = watch(iv, "write");
	evlog.cb_delay_ms = 100;
	CHECK(pthread_create(&t, NULL, writer_main, &w) == 0, "pthread_create");
	pthread_join(t, NULL);
	evlog.cb_delay_ms = 0;
	expect_one(iv, UM_REASON_WRITE, buf + 2 * PAGE, PAGE, seq0, "write");
	CHECK(evlog.ev[0].inv.sync, "write: invalidation is sync");
	CHECK(evlog.ev[0].inv.tid == w.tid, "write: tid %d, want writer %d", evlog.ev[0].inv.tid,
	      w.tid);
	CHECK(w.started < evlog.ev[0].order && evlog.ev[0].order < w.done,
	      "writer returned only after the callback (start %u cb %u done %u)", w.started,
	      evlog.ev[0].order, w.done);
	CHECK(page_is(buf + 2 * PAGE, 0x5a) && page_is(buf + PAGE, 'b') &&
		      page_is(buf + 3 * PAGE, 'd'),
	      "write: data intact");

	/* the page is writable now: a second write is not an invalidation */
	seq0 = watch(iv, "second write");
	buf[2 * PAGE + 1] = 1;
	CHECK(!harness_sem_wait_ms(&evlog.sem, 200), "second write to the same page is silent");
	CHECK(!um_interval_read_retry(iv, seq0), "second write leaves the seq alone");
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

static void test_dontneed(struct um_client *c)
{
	char *buf = map_buf(NPAGES, 'a');
	struct um_interval *iv;
	uint64_t seq0;

	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, &evlog_ops, NULL, &iv) == 0, "insert");
	seq0 = watch(iv, "dontneed");
	CHECK(madvise(buf + 4 * PAGE, 2 * PAGE, MADV_DONTNEED) == 0, "madvise: %m");
	expect_one(iv, UM_REASON_REMOVE, buf + 4 * PAGE, 2 * PAGE, seq0, "dontneed");
	{
		/* zapped and re-armed: not present, not swapped, protected again */
		uint64_t pfns[2];
		struct um_range r = { .start = (uintptr_t)buf + 4 * PAGE,
				      .end = (uintptr_t)buf + 6 * PAGE,
				      .pfns = pfns };

		const uint64_t zero_wp = UM_DEFAULT_VALID | UM_DEFAULT_ZERO | UM_DEFAULT_UFFD_WP;
		struct um_status st = UM_STATUS_INIT;

		CHECK(um_status(c, &st) == 0, "status");
		CHECK(um_range_register(&r, iv) == 0, "dontneed: register");
		CHECK(um_range_snapshot(&r) == 2, "dontneed: snapshot");
		for (int i = 0; i < 2; i++) {
			if (st.kfeatures & UM_FEAT_WP_UNPOPULATED)
				CHECK(pfns[i] == UM_DEFAULT_UFFD_WP,
				      "dontneed: zapped page %d entry %#llx, want NONE|UFFD_WP", i,
				      (unsigned long long)pfns[i]);
			else /* no WP_UNPOPULATED: read-faulted before the re-arm */
				CHECK((pfns[i] & (zero_wp | UM_DEFAULT_WRITE)) == zero_wp,
				      "dontneed: zapped page %d entry %#llx, want the armed zero "
				      "page",
				      i, (unsigned long long)pfns[i]);
		}
		um_range_unregister(&r);
	}
	CHECK(page_is(buf + 4 * PAGE, 0) && page_is(buf + 5 * PAGE, 0), "zapped pages read 0");
	CHECK(page_is(buf + 3 * PAGE, 'd') && page_is(buf + 6 * PAGE, 'g'), "neighbours intact");
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

static void test_munmap(struct um_client *c)
{
	char *buf = map_buf(NPAGES, 'a');
	uint64_t pfns[NPAGES];
	struct um_range r = { .start = (uintptr_t)buf,
			      .end = (uintptr_t)buf + NPAGES * PAGE,
			      .pfns = pfns };
	struct um_interval *iv;
	uint64_t seq0;
	long ret;

	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, &evlog_ops, NULL, &iv) == 0, "insert");
	seq0 = watch(iv, "munmap");
	CHECK(munmap(buf + 5 * PAGE, 3 * PAGE) == 0, "munmap: %m");
	expect_one(iv, UM_REASON_UNMAP, buf + 5 * PAGE, 3 * PAGE, seq0, "munmap");
	CHECK(page_is(buf + 4 * PAGE, 'e'), "munmap: remaining data intact");

	CHECK(um_range_register(&r, iv) == 0, "register");
	ret = um_range_snapshot(&r);
	CHECK(ret == -EFAULT, "snapshot over unmapped pages: %ld, want -EFAULT", ret);
	for (int i = 0; i < NPAGES; i++)
		CHECK(i < 5 ? (pfns[i] & UM_DEFAULT_VALID) != 0 : pfns[i] == UM_DEFAULT_ERROR,
		      "munmap: page %d entry %#llx", i, (unsigned long long)pfns[i]);
	um_range_unregister(&r);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, 5 * PAGE);
}

static void test_mremap(struct um_client *c)
{
	char *buf = map_buf(NPAGES, 'a');
	char *dst = map_buf(2, 0);
	struct um_interval *iv;
	uint64_t seq0;
	void *moved;

	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, &evlog_ops, NULL, &iv) == 0, "insert");
	seq0 = watch(iv, "mremap");
	moved = mremap(buf + 6 * PAGE, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	CHECK(moved == dst, "mremap: %m");
	/*
	 * The kernel reports a move twice: UFFD_EVENT_REMAP, then (after
	 * mmap_lock is dropped) UFFD_EVENT_UNMAP of the old range. The daemon
	 * folds the second into the first: exactly one invalidation.
	 */
	CHECK(harness_sem_wait_ms(&evlog.sem, 5000), "mremap: invalidation arrived");
	expect_events(0, "mremap");
	CHECK(evlog.n == 1, "mremap: %u invalidations", evlog.n);
	check_event(0, iv, UM_REASON_REMAP, buf + 6 * PAGE, 2 * PAGE, seq0, "mremap");
	{
		uint64_t seq1;

		CHECK(um_interval_read_retry(iv, seq0), "mremap: read_retry(before) is true");
		CHECK(um_interval_read_begin(iv, &seq1) == 0 && seq1 > seq0 && !(seq1 & 1),
		      "mremap: seq %llu -> %llu", (unsigned long long)seq0,
		      (unsigned long long)seq1);
	}
	CHECK(page_is(dst, 'g') && page_is(dst + PAGE, 'h'), "moved data intact");
	/* the moved pages lie outside every interval: writing them is silent */
	evlog_reset();
	dst[0] = 1;
	CHECK(!harness_sem_wait_ms(&evlog.sem, 200), "write outside intervals is not reported");
	CHECK(dst[0] == 1 && page_is(buf + 5 * PAGE, 'f'), "data intact after mremap");
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, 6 * PAGE);
	munmap(dst, 2 * PAGE);
}

static void fork_and_reap(void)
{
	int status;
	pid_t pid = fork();

	CHECK(pid >= 0, "fork: %m");
	if (pid == 0)
		_exit(0);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child exited cleanly");
}

static void test_fork(struct um_client *c)
{
	char *buf = map_buf(NPAGES, 'a');
	struct um_interval *iv;
	uint64_t seq0;

	/* never written since inserted: fork is silent, the parent's write faults */
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, &evlog_ops, NULL, &iv) == 0, "insert");
	seq0 = watch(iv, "fork, never written");
	fork_and_reap();
	buf[3 * PAGE] = 'X';
	expect_one(iv, UM_REASON_WRITE, buf + 3 * PAGE, PAGE, seq0, "fork, never written");
	CHECK(buf[3 * PAGE] == 'X' && page_is(buf + 4 * PAGE, 'e'), "fork: data intact");

	/* written since inserted: fork itself invalidates the whole interval */
	seq0 = watch(iv, "fork, written");
	fork_and_reap();
	expect_one(iv, UM_REASON_FORK, buf, NPAGES * PAGE, seq0, "fork, written");
	/* and the page written before the fork is protected again */
	seq0 = watch(iv, "write after fork");
	buf[3 * PAGE] = 'Y';
	expect_one(iv, UM_REASON_WRITE, buf + 3 * PAGE, PAGE, seq0, "write after fork");
	CHECK(buf[3 * PAGE] == 'Y' && buf[3 * PAGE + 1] == 'd', "data intact after fork");
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

int main(void)
{
	struct um_client *c;

	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	harness_start("test_invalidate", NULL);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	test_write(c);
	test_dontneed(c);
	test_munmap(c);
	test_mremap(c);
	test_fork(c);
	um_disconnect(c);
	return harness_summary();
}
