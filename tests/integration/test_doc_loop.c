/* SPDX-License-Identifier: MIT */
/*
 * test_doc_loop - the usage loop exactly as the documents show it,
 * compiled from the documents themselves and run through invalidations.
 *
 * Issue 9, finding 5: the loop of the README and libumirror(3) took its
 * sequence value into a variable of its own, while um_range_snapshot()
 * checked range->notifier_seq, which only um_range_register() and
 * um_range_wait_until_valid() set. After the first invalidation a program
 * written from the documents spun at 100% CPU forever.
 *
 * extract-doc-loop.sh copies, at build time, the README's ```c block
 * after the "usage-loop" marker, the .EX block after the "usage-loop"
 * comment of libumirror(3) and the loop in umirror.h's file comment into
 * doc_loop_*.inc, which are #included below as they are: editing a
 * document rebuilds this test. The README's block connects and inserts
 * by itself, so every run is a child process of its own.
 *
 * The library calls of a block go through hooks (macros) that count
 * them and invalidate the interval at a chosen point of the loop: right
 * after um_range_register(), after um_interval_read_begin(), after
 * um_range_snapshot() (before the update lock). An invalidation is a
 * MADV_DONTNEED of one page, waited for until it completed. No timing:
 * a loop that takes more than 2 * (invalidations + 1) + 2 snapshots
 * spins and fails. Once out of the loop the entries must match
 * /proc/self/pagemap (a zapped page not VALID, the others VALID with
 * their PFN). The loop the documents used to show (read_begin's value
 * kept apart from the range) runs the same way: the library must not let
 * it spin either.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPAGES 8
#define UNUSED __attribute__((unused))

/* the "device" of the documents: an update lock its invalidate callback takes */
struct device {
	pthread_mutex_t update;
	unsigned int invalidations; /* under update */
};

static void dev_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct device *d = priv;

	pthread_mutex_lock(&d->update);
	d->invalidations++;
	pthread_mutex_unlock(&d->update);
}

/* --- where to invalidate, and the hooks -------------------------------- */

struct schedule {
	const char *name;
	bool at_register;	    /* once, right after um_range_register() */
	unsigned int at_read_begin; /* after each of the first N read_begins */
	unsigned int at_snapshot;   /* after each of the first N snapshots */
};

static const struct schedule schedules[] = {
	{ .name = "no invalidation" },
	{ "after um_range_register", true, 0, 0 },
	{ "after um_interval_read_begin", false, 1, 0 },
	{ "after um_range_snapshot", false, 0, 1 },
	{ "at every point, three passes", true, 3, 3 },
};

static const struct schedule *sched;
static char *g_buf;
static unsigned int fired, read_begins, snapshots, reg_calls;

/* one invalidation of @iv, completed (the seq moved on and is even) on return */
static void invalidate_now(struct um_interval *iv)
{
	uint64_t before, after;
	char *page = g_buf + (fired % NPAGES) * PAGE;

	CHECK(um_interval_read_begin(iv, &before) == 0, "read_begin before invalidating");
	CHECK(madvise(page, PAGE, MADV_DONTNEED) == 0, "MADV_DONTNEED: %m");
	/* the daemon starts it once it read the event; polling, no deadline (watchdog) */
	while (!um_interval_check_retry(iv, before))
		usleep(100);
	CHECK(um_interval_read_begin(iv, &after) == 0 && after != before,
	      "invalidation %u completed (seq %" PRIu64 " -> %" PRIu64 ")", fired, before, after);
	fired++;
}

static int hook_register(struct um_range *range, struct um_interval *iv)
{
	int ret = um_range_register(range, iv);

	CHECK(ret == 0, "um_range_register: %d", ret);
	reg_calls++;
	if (sched->at_register)
		invalidate_now(iv);
	return ret;
}

static int hook_read_begin(struct um_interval *iv, uint64_t *seq)
{
	int ret = um_interval_read_begin(iv, seq);

	if (read_begins++ < sched->at_read_begin)
		invalidate_now(iv);
	return ret;
}

static long hook_snapshot(struct um_range *range)
{
	long ret = um_range_snapshot(range);

	snapshots++;
	CHECK(snapshots <= 2 * (fired + 1) + 2,
	      "the documented loop spins: %u snapshots for %u invalidations (last returned %ld)",
	      snapshots, fired, ret);
	if (snapshots <= sched->at_snapshot)
		invalidate_now(range->iv);
	return ret;
}

/* --- the documents' blocks, as written --------------------------------- */

#define um_range_register(range, iv) hook_register(range, iv)
#define um_interval_read_begin(iv, seq) hook_read_begin(iv, seq)
#define um_range_snapshot(range) hook_snapshot(range)

/* README.md: connects, inserts, registers and loops by itself */
static long readme_block(void *buf, size_t len, uint64_t *pfns, struct device *dev,
			 struct um_range *out_range, struct um_client **out_c)
{
	const struct um_interval_ops ops = { .invalidate = dev_invalidate };
	uint64_t seq UNUSED;

#include "doc_loop_readme.inc"

	*out_range = r;
	*out_c = c;
	return 0;
}

/* libumirror(3): the loop, over a range registered here */
static long man_block(struct um_interval *iv, struct um_range *io_range, struct device *dev)
{
	struct um_range range = *io_range;
	uint64_t seq UNUSED;
	long ret UNUSED;

	um_range_register(&range, iv);

#include "doc_loop_man.inc"

	*io_range = range;
	return 0;
}

/* umirror.h's file comment: the same loop */
static long header_block(struct um_interval *iv, struct um_range *io_range, struct device *dev)
{
	struct um_range range = *io_range;
	uint64_t seq UNUSED;
	long ret UNUSED;

	um_range_register(&range, iv);

#include "doc_loop_header.inc"

	*io_range = range;
	return 0;
}

/*
 * The loop the documents showed before issue 9, read_begin's value in a
 * variable of its own that um_range_snapshot() never sees: it must end
 * too (the library renews a stale range->notifier_seq on -EAGAIN).
 */
static long old_block(struct um_interval *iv, struct um_range *io_range, struct device *dev)
{
	struct um_range range = *io_range;
	uint64_t seq;
	long ret;

	um_range_register(&range, iv);
again:
	um_interval_read_begin(iv, &seq);
	ret = um_range_snapshot(&range);
	if (ret == -EAGAIN)
		goto again;
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&dev->update);
	if (um_interval_read_retry(iv, seq)) {
		pthread_mutex_unlock(&dev->update);
		goto again;
	}
	pthread_mutex_unlock(&dev->update);
	*io_range = range;
	return 0;
}

#undef um_range_register
#undef um_interval_read_begin
#undef um_range_snapshot

/* --- one run per document and schedule --------------------------------- */

enum doc { DOC_README, DOC_MAN, DOC_HEADER, DOC_OLD, DOC_MAX };
static const char *const doc_name[DOC_MAX] = { "README.md", "libumirror(3)", "umirror.h",
					       "the old loop (own seq variable)" };

/* the entries the loop ended with against pagemap */
static void check_entries(const struct um_range *r, const char *what)
{
	for (unsigned int i = 0; i < NPAGES; i++) {
		uint64_t pm = harness_pagemap(g_buf + i * PAGE), e = r->pfns[i];

		if (pm & PM_PRESENT) {
			CHECK(e & UM_DEFAULT_VALID,
			      "%s: page %u present, entry VALID (%#" PRIx64 ")", what, i, e);
			CHECK(e >> UM_DEFAULT_PFN_SHIFT == (pm & PM_PFN_MASK),
			      "%s: page %u PFN %#" PRIx64 " = pagemap's %#llx", what, i,
			      e >> UM_DEFAULT_PFN_SHIFT, (unsigned long long)(pm & PM_PFN_MASK));
		} else {
			CHECK(!(e & UM_DEFAULT_VALID),
			      "%s: page %u not present, entry not VALID "
			      "(%#" PRIx64 ")",
			      what, i, e);
		}
	}
}

static void run_child(enum doc doc, const struct schedule *s)
{
	static struct device dev = { .update = PTHREAD_MUTEX_INITIALIZER };
	static const struct um_interval_ops ops = { .invalidate = dev_invalidate };
	uint64_t pfns[NPAGES];
	struct um_client *c = NULL;
	struct um_interval *iv = NULL;
	struct um_range r = { 0 };
	char what[96];
	long ret;

	alarm(harness_scaled_s(30));
	sched = s;
	snprintf(what, sizeof(what), "%s, %s", doc_name[doc], s->name);
	g_buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	memset(g_buf, 0x5a, NPAGES * PAGE);
	if (doc == DOC_README) {
		ret = readme_block(g_buf, NPAGES * PAGE, pfns, &dev, &r, &c);
	} else {
		CHECK(um_connect(NULL, 0, &c) == 0, "%s: um_connect", what);
		CHECK(um_interval_insert(c, g_buf, NPAGES * PAGE, 0, &ops, &dev, &iv) == 0,
		      "%s: um_interval_insert", what);
		r = (struct um_range){ .start = (uint64_t)(uintptr_t)g_buf,
				       .end = (uint64_t)(uintptr_t)g_buf + NPAGES * PAGE,
				       .pfns = pfns };
		ret = doc == DOC_MAN	  ? man_block(iv, &r, &dev)
		      : doc == DOC_HEADER ? header_block(iv, &r, &dev)
					  : old_block(iv, &r, &dev);
	}
	CHECK(ret == 0, "%s: the block ran to its end (%ld)", what, ret);
	CHECK(reg_calls == 1, "%s: one um_range_register", what);
	CHECK(fired >= (unsigned int)(s->at_register + !!s->at_read_begin + !!s->at_snapshot),
	      "%s: every scheduled point invalidated (%u invalidations)", what, fired);
	pthread_mutex_lock(&dev.update);
	CHECK(dev.invalidations >= fired, "%s: the callback saw every invalidation (%u of %u)",
	      what, dev.invalidations, fired);
	pthread_mutex_unlock(&dev.update);
	check_entries(&r, what);
	printf("test_doc_loop: %s: %u invalidations, %u snapshots, %u read_begins\n", what, fired,
	       snapshots, read_begins);
	um_disconnect(c);
	_exit(0);
}

int main(void)
{
	harness_start("test_doc_loop", NULL);
	for (int d = 0; d < DOC_MAX; d++) {
		for (size_t i = 0; i < sizeof(schedules) / sizeof(schedules[0]); i++) {
			pid_t pid;
			int status;

			fflush(stdout);
			pid = fork();
			CHECK(pid >= 0, "fork: %m");
			if (pid == 0)
				run_child(d, &schedules[i]);
			CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %m");
			CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "%s, %s: the documented loop finished and was right (status 0x%x)",
			      doc_name[d], schedules[i].name, status);
		}
	}
	return harness_summary();
}
