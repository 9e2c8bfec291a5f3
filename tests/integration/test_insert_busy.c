/* SPDX-License-Identifier: MIT */
/*
 * test_insert_busy - INSERT while the owner keeps the kernel delivering
 * events: a thread zaps (MADV_DONTNEED) and rewrites pages of one interval
 * without pause while the main thread inserts and removes another. An
 * INSERT whose write-protect the kernel refuses with EAGAIN (a REMOVE in
 * delivery) reads the events and waits a little before trying again; the
 * daemon runs under its seccomp filter, which has no sleep system call
 * (that wait used to be usleep(): SIGSYS, every client -ENOTCONN). Each
 * INSERT must succeed and the daemon must live. The zapper keeps going
 * until the main thread has written to the new interval, so a protect can
 * stay refused for longer than the daemon's short synchronous retry (~20
 * ms): the INSERT reply must wait until the write-protect is applied
 * (SEMANTICS, INSERT), so the write right after each INSERT must be
 * invalidated, every round. It used to reply with the range not yet armed
 * ("armed late" in its log) and the write went unseen.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NZAP 64
#define ROUNDS 100
/* zaps per round at most: bounds a round however long a protect is refused */
#define BURST 300

static atomic_bool stop, busy;
static atomic_uint invalidated;

/* zaps and rewrites without pause while a round's INSERT is in flight */
static void *zapper(void *arg)
{
	char *m = arg;
	unsigned int i = 0, burst = 0;

	while (!atomic_load(&stop)) {
		if (!atomic_load(&busy) || burst == BURST) {
			if (!atomic_load(&busy))
				burst = 0;
			sched_yield();
			continue;
		}
		CHECK(madvise(m + (i % NZAP) * PAGE, PAGE, MADV_DONTNEED) == 0, "madvise: %m");
		m[(i % NZAP) * PAGE] = 1;
		i++;
		burst++;
	}
	return NULL;
}

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	(void)iv;
	(void)priv;
	if (inv->reason == UM_REASON_WRITE)
		atomic_fetch_add(&invalidated, 1);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

int main(void)
{
	char *zap = harness_map_anon(NZAP, PROT_READ | PROT_WRITE);
	char *b = harness_map_anon(4, PROT_READ | PROT_WRITE);
	struct um_interval *iz, *ib;
	struct um_client *c;
	struct um_status st = UM_STATUS_INIT;
	unsigned int late = 0;
	pthread_t t;
	int ret;

	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	harness_start("test_insert_busy", NULL);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	memset(zap, 'z', NZAP * PAGE);
	memset(b, 'b', 4 * PAGE);
	/* ASYNC: the zapper's write faults never wait for an ack */
	CHECK(um_interval_insert(c, zap, NZAP * PAGE, UM_INTERVAL_ASYNC, NULL, NULL, &iz) == 0,
	      "insert the zapped interval");
	CHECK(pthread_create(&t, NULL, zapper, zap) == 0, "thread");
	for (int i = 0; i < ROUNDS; i++) {
		unsigned int before = atomic_load(&invalidated);

		atomic_store(&busy, true);
		/* sync: the write below returns only after our callback ran */
		ret = um_interval_insert(c, b, 4 * PAGE, 0, &ops, NULL, &ib);
		atomic_store(&busy, false);
		CHECK(ret == 0, "round %d: insert while zapping: %s", i, strerror(-ret));
		/* armed: this write faults and is invalidated before it lands */
		b[PAGE] = (char)i;
		late += atomic_load(&invalidated) == before;
		CHECK(um_interval_remove(ib) == 0, "round %d: remove", i);
	}
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	printf("test_insert_busy: %u of %d inserts armed late (write not seen)\n", late, ROUNDS);
	CHECK(late == 0, "%u of %d writes right after INSERT not invalidated", late, ROUNDS);
	CHECK(um_status(c, &st) == 0, "the daemon lives");
	CHECK(um_interval_remove(iz) == 0, "remove");
	um_disconnect(c);
	return harness_summary();
}
