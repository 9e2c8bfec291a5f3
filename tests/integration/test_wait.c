/* SPDX-License-Identifier: MIT */
/*
 * test_wait - um_range_wait_until_valid() waits exactly as long as an
 * invalidation is in progress: a slow invalidate callback keeps the
 * sequence odd (the library acknowledges only when it returns), a waiter
 * in another thread returns 0 once it did, and -ETIMEDOUT when its own
 * timeout is shorter than the callback.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NPAGES 4

/* nobody posts its "go": each callback lasts its hold_ms */
static struct harness_gate g;

/*
 * Start @w writing to @page and return once the invalidate callback
 * (lasting @sleep_ms) has begun.
 */
static void start_invalidation(struct harness_writer *w, char *page, unsigned int sleep_ms)
{
	atomic_store(&g.hold_ms, sleep_ms);
	harness_writer_start(w, page, 1, 'w');
	CHECK(harness_sem_wait_ms(&g.entered, 5000), "invalidate callback started");
}

int main(void)
{
	uint64_t pfns[NPAGES], t0, dt;
	struct um_range r = { .pfns = pfns };
	struct um_interval *iv;
	struct um_client *c;
	struct harness_writer w;
	char *buf;
	int ret;

	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	/* first writes page by page, each its own WRITE (granules: test_write_granule) */
	static const char *const args[] = { "--write-granule", "1", NULL };

	harness_start("test_wait", args);
	harness_gate_init(&g, 0);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");

	buf = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(buf != MAP_FAILED, "mmap: %m");
	memset(buf, 'a', NPAGES * PAGE);
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, &harness_gate_ops, &g, &iv) == 0,
	      "insert");
	r.start = (uintptr_t)buf;
	r.end = r.start + NPAGES * PAGE;
	CHECK(um_range_register(&r, iv) == 0, "register");
	CHECK(um_range_valid(&r), "fresh range is valid");
	CHECK(um_range_wait_until_valid(&r, 50) == 0, "nothing in progress: returns 0 at once");

	/* 1: the wait outlasts a 300 ms callback */
	start_invalidation(&w, buf, 300);
	CHECK(!um_range_valid(&r), "range invalid while the callback runs");
	t0 = harness_now_ms();
	ret = um_range_wait_until_valid(&r, 2000);
	dt = harness_now_ms() - t0;
	CHECK(ret == 0, "wait_until_valid(2000) during a 300 ms callback: %d", ret);
	CHECK(atomic_load(&g.done), "wait returned only after the callback ended");
	CHECK(dt >= 150 && dt < 1500, "waited %llu ms for a 300 ms callback",
	      (unsigned long long)dt);
	CHECK(um_range_valid(&r), "valid again after the wait");
	CHECK(!(r.notifier_seq & 1), "new notifier_seq %llu is even",
	      (unsigned long long)r.notifier_seq);
	harness_writer_join(&w);
	CHECK(buf[0] == 'w', "write landed");

	/* 2: a 50 ms wait during a 500 ms callback times out */
	start_invalidation(&w, buf + PAGE, 500);
	t0 = harness_now_ms();
	ret = um_range_wait_until_valid(&r, 50);
	dt = harness_now_ms() - t0;
	CHECK(ret == -ETIMEDOUT, "wait_until_valid(50) during a 500 ms callback: %d", ret);
	CHECK(dt >= 40 && dt < 400, "timed out after %llu ms, want about 50",
	      (unsigned long long)dt);
	CHECK(!atomic_load(&g.done), "callback still running at the timeout");
	CHECK(!um_range_valid(&r), "range still invalid after the timeout");
	ret = um_range_wait_until_valid(&r, 2000);
	CHECK(ret == 0 && atomic_load(&g.done), "then a long wait succeeds: %d", ret);
	harness_writer_join(&w);
	CHECK(buf[PAGE] == 'w' && buf[PAGE + 1] == 'a', "write landed, data intact");

	/* read_begin waits the same way */
	start_invalidation(&w, buf + 2 * PAGE, 200);
	{
		uint64_t seq;

		ret = um_interval_read_begin(iv, &seq);
		CHECK(ret == 0 && !(seq & 1) && atomic_load(&g.done),
		      "read_begin waited for the callback: %d", ret);
	}
	harness_writer_join(&w);
	CHECK(atomic_load(&g.ninv) == 3, "%u invalidations, want 3", atomic_load(&g.ninv));

	um_range_unregister(&r);
	CHECK(um_interval_remove(iv) == 0, "remove");
	um_disconnect(c);
	munmap(buf, NPAGES * PAGE);
	return harness_summary();
}
