/* SPDX-License-Identifier: MIT */
/*
 * test_fork_rearm - a FORK invalidation completes only once the interval
 * is write-protected again.
 *
 * fork() makes every written page copy-on-write without a uffd-wp bit; the
 * FORK invalidation re-arms the interval. The kernel refuses that re-arm
 * with EAGAIN until the forking thread has finished delivering the fork
 * event, so the daemon may have to retry it. If the sequence went even
 * before the retry was applied, a mirror could take a valid snapshot of
 * the old (shared) page, and the parent's next write would break the COW
 * to a new PFN with no invalidation at all.
 *
 * Each round: write the page (the interval is "written"), fork a child
 * that keeps the page shared until told to exit, and
 *  - "write at once": the parent writes right after fork(); an
 *    invalidation covering the page must come, and once the sequence is
 *    even the page is either armed again or already exclusively the
 *    parent's (a further write keeps the PFN);
 *  - "write after valid": the parent waits for the FORK invalidation to
 *    complete, then pagemap must show the page armed, a snapshot must say
 *    so too (UFFD_WP, not WRITE, the PFN pagemap shows), and the parent's
 *    write, which breaks the COW, must be an invalidation of the page.
 * Intervals with asynchronous receivers (nobody acks, so the record
 * completes while the fork event is still being delivered) and with
 * synchronous ones.
 */
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

#define ROUNDS 100
#define NPAGES 4

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t page_addr; /* the page whose invalidations are counted */
static uint64_t covering;  /* invalidations covering it so far */
static uint64_t last_seq;  /* the highest (odd) seq among them */

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	pthread_mutex_lock(&lock);
	if (inv->start <= page_addr && page_addr < inv->end) {
		covering++;
		if (inv->seq > last_seq)
			last_seq = inv->seq;
	}
	pthread_mutex_unlock(&lock);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

/* invalidations covering the page so far; @seq: the highest seq among them */
static uint64_t covering_count(uint64_t *seq)
{
	uint64_t n;

	pthread_mutex_lock(&lock);
	n = covering;
	if (seq)
		*seq = last_seq;
	pthread_mutex_unlock(&lock);
	return n;
}

/* the child keeps the parent's pages shared until a byte arrives */
static void child_main(int in_fd, int out_fd)
{
	char b;

	(void)out_fd;
	while (read(in_fd, &b, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

static void child_end(pid_t pid, int to_child, int from_child)
{
	int status;

	CHECK(write(to_child, "x", 1) == 1, "tell the child to exit: %m");
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child exits 0");
	close(to_child);
	close(from_child);
}

/*
 * Wait (at most 5 s) until an invalidation began since @seq0 and the
 * callback saw one covering the page whose seq is after @seq0 (an
 * asynchronous receiver's callbacks run after the seq moved on, so an
 * older one may still come in meanwhile).
 */
static void wait_invalidated(struct um_interval *iv, uint64_t seq0, const char *what, int round)
{
	uint64_t t0 = harness_now_ms(), seq = 0;

	for (;;) {
		covering_count(&seq);
		if ((um_interval_read_retry(iv, seq0) && seq > seq0) ||
		    harness_now_ms() - t0 > 5000)
			break;
		usleep(100);
	}
	CHECK(um_interval_read_retry(iv, seq0), "%s round %d: read_retry(seq %llu) true", what,
	      round, (unsigned long long)seq0);
	CHECK(seq > seq0,
	      "%s round %d: an invalidation covering the page (last seq %llu, after %llu)", what,
	      round, (unsigned long long)seq, (unsigned long long)seq0);
}

static uint64_t raw_entry(struct um_client *c, const char *page)
{
	uint64_t raw = 0;
	long n = um_snapshot_raw(c, getpid(), (uintptr_t)page, 1, &raw);

	CHECK(n == 1, "raw snapshot: %ld", n);
	return raw;
}

static void write_at_once(struct um_client *c, struct um_interval *iv, char *page, int round,
			  const char *what)
{
	uint64_t seq0, seq1, pm, raw;
	int to_child, from_child;
	pid_t pid;

	page[0] = (char)round; /* written: the fork must invalidate it */
	CHECK(um_interval_read_begin(iv, &seq0) == 0, "read_begin");
	pid = harness_fork(child_main, &to_child, &from_child);
	page[0] = (char)(round + 1); /* breaks the COW, armed or not */
	wait_invalidated(iv, seq0, what, round);
	CHECK(um_interval_read_begin(iv, &seq1) == 0, "read_begin after");
	pm = harness_pagemap(page);
	raw = raw_entry(c, page);
	/* armed again, or the parent's own page: no silent PFN change is left */
	CHECK((pm & PM_UFFD_WP) || (pm & PM_MMAP_EXCLUSIVE),
	      "%s round %d: after the invalidations the page is armed or exclusive (pagemap %#llx)",
	      what, round, (unsigned long long)pm);
	CHECK(!!(raw & UM_RAW_UFFD_WP) == !!(pm & PM_UFFD_WP) &&
		      (raw & UM_RAW_PFN_MASK) == (pm & PM_PFN_MASK),
	      "%s round %d: snapshot %#llx agrees with pagemap %#llx", what, round,
	      (unsigned long long)raw, (unsigned long long)pm);
	child_end(pid, to_child, from_child);
}

static void write_after_valid(struct um_client *c, struct um_interval *iv, char *page, int round,
			      const char *what)
{
	uint64_t seq0, seq1, pm, pm2, raw;
	int to_child, from_child;
	pid_t pid;

	page[0] = (char)round;
	CHECK(um_interval_read_begin(iv, &seq0) == 0, "read_begin");
	pid = harness_fork(child_main, &to_child, &from_child);
	wait_invalidated(iv, seq0, what, round);
	/* the FORK invalidation completed: its re-arm must be in the page tables */
	CHECK(um_interval_read_begin(iv, &seq1) == 0, "read_begin after the fork");
	pm = harness_pagemap(page);
	CHECK(pm & PM_UFFD_WP,
	      "%s round %d: seq %llu is even but the page is not write-protected (pagemap %#llx)",
	      what, round, (unsigned long long)seq1, (unsigned long long)pm);
	raw = raw_entry(c, page);
	CHECK((raw & UM_RAW_UFFD_WP) && !(raw & UM_RAW_WRITE) &&
		      (raw & UM_RAW_PFN_MASK) == (pm & PM_PFN_MASK),
	      "%s round %d: snapshot %#llx shows the armed, shared page of pagemap %#llx", what,
	      round, (unsigned long long)raw, (unsigned long long)pm);
	page[0] = (char)(round + 1); /* the child still shares it: a new PFN */
	pm2 = harness_pagemap(page);
	CHECK((pm2 & PM_PFN_MASK) != (pm & PM_PFN_MASK), "%s round %d: the write broke the COW",
	      what, round);
	CHECK(um_interval_read_retry(iv, seq1),
	      "%s round %d: the COW break (PFN %#llx -> %#llx) made read_retry true", what, round,
	      (unsigned long long)(pm & PM_PFN_MASK), (unsigned long long)(pm2 & PM_PFN_MASK));
	/* an asynchronous receiver's callback may still be on its way */
	wait_invalidated(iv, seq1, what, round);
	child_end(pid, to_child, from_child);
}

static void run(struct um_client *c, unsigned int flags, const char *what)
{
	char *mem = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	struct um_interval *iv;
	char label[64];
	int ret;

	memset(mem, 1, NPAGES * PAGE);
	ret = um_interval_insert(c, mem, NPAGES * PAGE, flags, &ops, NULL, &iv);
	CHECK(ret == 0, "insert: %s", strerror(-ret));
	pthread_mutex_lock(&lock);
	page_addr = (uintptr_t)mem + PAGE;
	pthread_mutex_unlock(&lock);
	snprintf(label, sizeof(label), "%s, write after valid", what);
	for (int i = 0; i < ROUNDS; i++)
		write_after_valid(c, iv, mem + PAGE, i, label);
	snprintf(label, sizeof(label), "%s, write at once", what);
	for (int i = 0; i < ROUNDS; i++)
		write_at_once(c, iv, mem + PAGE, i, label);
	printf("%s: %d + %d rounds\n", what, ROUNDS, ROUNDS);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(mem, NPAGES * PAGE);
}

int main(void)
{
	struct um_client *c;

	harness_start("test_fork_rearm", NULL);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	if (geteuid() != 0)
		harness_skip("the PFN checks need PFNs, which only root sees");
	run(c, UM_INTERVAL_ASYNC, "async receiver");
	run(c, 0, "sync receiver");
	um_disconnect(c);
	return harness_summary();
}
