/* SPDX-License-Identifier: MIT */
/*
 * test_evict - a synchronous subscriber that does not acknowledge within
 * the daemon's --ack-timeout is evicted: the owner's writer resumes after
 * about the timeout (not after the slow callback), the subscriber gets
 * release(-ETIMEDOUT) and no more events, and nobody else notices.
 *
 * Connection A inserts (no callbacks: acks at once); connection B of the
 * same process subscribes with a callback that blocks for 1.5 s.
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
#define ACK_TIMEOUT_MS 200

int main(void)
{
	static const char *const args[] = { "--ack-timeout", "200", NULL };
	struct um_interval *iv_a, *iv_b;
	struct um_client *a, *b;
	uint64_t seq_a, seq_b, t0, dt;
	struct harness_writer w;
	struct harness_gate g; /* the slow subscriber: holds each callback 1.5 s */
	char *buf;

	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	harness_start("test_evict", args);
	harness_gate_init(&g, 1500);

	buf = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(buf != MAP_FAILED, "mmap: %m");
	memset(buf, 'a', NPAGES * PAGE);
	CHECK(um_connect(NULL, 0, &a) == 0 && um_connect(NULL, 0, &b) == 0, "connect twice");
	CHECK(um_interval_insert(a, buf, NPAGES * PAGE, 0, NULL, NULL, &iv_a) == 0, "insert");
	CHECK(um_interval_subscribe(b, getpid(), um_interval_id(iv_a), 0, &harness_gate_ops, &g,
				    &iv_b) == 0,
	      "subscribe");
	CHECK(um_interval_read_begin(iv_b, &seq_b) == 0, "subscriber read_begin");

	t0 = harness_now_ms();
	harness_writer_start(&w, buf, 1, 'w');
	CHECK(harness_sem_wait_ms(&g.entered, 5000), "slow callback started");
	CHECK(harness_sem_wait_ms(&w.done, 1200), "writer resumed before the callback ended");
	dt = harness_now_ms() - t0;
	harness_writer_join(&w);
	CHECK(dt >= ACK_TIMEOUT_MS - 20 && dt < ACK_TIMEOUT_MS + 800,
	      "writer held %llu ms, want about the %d ms ack timeout", (unsigned long long)dt,
	      ACK_TIMEOUT_MS);
	CHECK(buf[0] == 'w', "write landed");
	CHECK(um_interval_read_begin(iv_a, &seq_a) == 0 && seq_a == 2,
	      "owner's interval completed the invalidation: seq %llu", (unsigned long long)seq_a);

	/* the subscriber learns of its eviction once its callback returns */
	sem_post(&g.go);
	CHECK(harness_sem_wait_ms(&g.released, 5000), "release callback ran");
	CHECK(atomic_load(&g.release_error) == -ETIMEDOUT, "release error %d, want -ETIMEDOUT",
	      atomic_load(&g.release_error));
	CHECK(um_interval_read_begin(iv_b, &seq_b) == -EFAULT, "evicted interval: -EFAULT");

	/* the owner goes on; the evicted subscriber hears nothing more */
	t0 = harness_now_ms();
	buf[PAGE] = 'w';
	CHECK(harness_now_ms() - t0 < ACK_TIMEOUT_MS, "next write not held by the evicted one");
	CHECK(um_interval_read_begin(iv_a, &seq_a) == 0 && seq_a == 4, "owner seq %llu",
	      (unsigned long long)seq_a);
	CHECK(!harness_sem_wait_ms(&g.entered, 200) && atomic_load(&g.ninv) == 1,
	      "evicted subscriber got %u invalidations, want 1", atomic_load(&g.ninv));
	CHECK(atomic_load(&g.nrel) == 1, "release ran once");
	CHECK(um_ping(b) == 0, "the evicted subscriber's connection is still served");

	um_interval_remove(iv_b);
	CHECK(um_interval_remove(iv_a) == 0, "remove");
	um_disconnect(b);
	um_disconnect(a);
	munmap(buf, NPAGES * PAGE);
	return harness_summary();
}
