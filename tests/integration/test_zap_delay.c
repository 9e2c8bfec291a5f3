/* SPDX-License-Identifier: MIT */
/*
 * test_zap_delay - a REMOVE invalidation completes only once the zap is
 * done, however long the madvise() thread takes over it.
 *
 * The kernel sends UFFD_EVENT_REMOVE from madvise(MADV_DONTNEED) and zaps
 * after the daemon read it. The daemon polls pagemap until the zap shows.
 * It used to give up after 100 ms and complete anyway: with the madvise
 * thread descheduled for that long in the middle of the zap (a busy
 * machine), the sequence went even while pages about to be freed were
 * still mapped, a mirror could take them, and the rest of the zap was
 * never reported (examples/device_sim saw it as a stale cached page).
 *
 * The delay is made on purpose: the madvise thread zaps a large present,
 * write-protected range on CPU 0, and as soon as pagemap shows the zap
 * begun, a real-time spinner takes CPU 0 for SPIN_MS. Once the sequence
 * is even again, no page of the range may still map the page it had.
 * And MADV_FREE, which sends the same event but zaps nothing, must still
 * complete.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ROUNDS 3
#define NPG (128ul << 10) /* 512 MiB of 4 KiB pages: a zap of some milliseconds */
#define SPIN_MS 300	  /* well beyond the old 100 ms give-up */

static char *region;
static sem_t go, spin_go, cb_sem;
static atomic_bool quit;
static atomic_ullong cb_ms, ret_ms, spin_start_ms, spin_end_ms;

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	if (inv->reason == UM_REASON_REMOVE) {
		atomic_store(&cb_ms, harness_now_ms());
		sem_post(&cb_sem);
	}
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

static void pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	CHECK(sched_setaffinity(0, sizeof(set), &set) == 0, "affinity: %m");
}

static void *zapper(void *arg)
{
	pin_self(0);
	for (;;) {
		sem_wait(&go);
		if (atomic_load(&quit))
			return NULL;
		CHECK(madvise(region, NPG * PAGE, MADV_DONTNEED) == 0, "madvise: %m");
		atomic_store(&ret_ms, harness_now_ms());
	}
}

/* real-time on CPU 0: the (SCHED_OTHER) zapper does not run while it spins */
static void *spinner(void *arg)
{
	struct sched_param sp = { .sched_priority = 10 };

	pin_self(0);
	CHECK(sched_setscheduler(0, SCHED_FIFO, &sp) == 0, "SCHED_FIFO: %m");
	for (;;) {
		uint64_t t0;

		sem_wait(&spin_go);
		if (atomic_load(&quit))
			return NULL;
		t0 = harness_now_ms();
		atomic_store(&spin_start_ms, t0);
		while (harness_now_ms() - t0 < SPIN_MS)
			;
		atomic_store(&spin_end_ms, harness_now_ms());
	}
}

static uint64_t pfn_before[NPG];

/* the region's pagemap entries, one read */
static void read_pagemap(uint64_t *pm)
{
	ssize_t got = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	CHECK(fd >= 0, "open pagemap: %m");
	while (got < (ssize_t)(NPG * 8)) {
		ssize_t r = pread(fd, (char *)pm + got, NPG * 8 - got,
				  (off_t)((uintptr_t)region / PAGE * 8 + got));

		CHECK(r > 0, "read pagemap: %m");
		got += r;
	}
	close(fd);
}

/* pages that still map the page they had before the zap */
static uint64_t not_zapped(void)
{
	static uint64_t pm[NPG];
	uint64_t n = 0;

	read_pagemap(pm);
	for (uint64_t i = 0; i < NPG; i++)
		n += (pm[i] & PM_PRESENT) && (pm[i] & PM_PFN_MASK) == pfn_before[i];
	return n;
}

int main(void)
{
	struct um_client *c;
	pthread_t z, s;
	cpu_set_t one;
	unsigned int slow = 0;
	int pm_fd, ret;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		harness_skip("needs two CPUs (one is kept busy)");
	if (geteuid() != 0)
		harness_skip("needs root (SCHED_FIFO)");
	harness_start("test_zap_delay", NULL);
	/* everything but the zapper and the spinner on CPU 1 */
	CPU_ZERO(&one);
	CPU_SET(1, &one);
	CHECK(sched_setaffinity(0, sizeof(one), &one) == 0, "affinity: %m");
	CHECK(sched_setaffinity(harness_daemon_pid(), sizeof(one), &one) == 0,
	      "daemon affinity: %m");
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	region = harness_map_anon(NPG, PROT_READ | PROT_WRITE);
	pm_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	CHECK(pm_fd >= 0, "open pagemap: %m");
	sem_init(&go, 0, 0);
	sem_init(&spin_go, 0, 0);
	sem_init(&cb_sem, 0, 0);
	CHECK(pthread_create(&z, NULL, zapper, NULL) == 0, "thread");
	CHECK(pthread_create(&s, NULL, spinner, NULL) == 0, "thread");

	for (int round = 0; round < ROUNDS; round++) {
		struct um_interval *iv;
		uint64_t seq, t0, left;

		/* present, then write-protected: a zap certainly changes every entry */
		for (uint64_t i = 0; i < NPG; i++)
			region[i * PAGE] = (char)(round + 1);
		CHECK(um_interval_insert(c, region, NPG * PAGE, 0, &ops, NULL, &iv) == 0, "insert");
		CHECK(um_interval_read_begin(iv, &seq) == 0, "read_begin");
		read_pagemap(pfn_before);
		left = 0;
		for (uint64_t i = 0; i < NPG; i++) {
			left += !(pfn_before[i] & PM_PRESENT) || !(pfn_before[i] & PM_UFFD_WP);
			pfn_before[i] &= PM_PFN_MASK;
		}
		CHECK(left == 0, "round %d: every page present and write-protected (%llu not)",
		      round, (unsigned long long)left);
		atomic_store(&ret_ms, 0);
		sem_post(&go);
		/* the zap has begun: stop the zapper in the middle of it */
		for (t0 = harness_now_ms(); harness_now_ms() - t0 < 10000;) {
			uint64_t e = 0;

			if (pread(pm_fd, &e, 8, (off_t)((uintptr_t)region / PAGE * 8)) == 8 &&
			    (!(e & PM_PRESENT) || (e & PM_PFN_MASK) != pfn_before[0]))
				break;
		}
		sem_post(&spin_go);
		CHECK(harness_sem_wait_ms(&cb_sem, 10000), "round %d: the REMOVE invalidation came",
		      round);
		/*
		 * The zap may outlast read_begin's own wait on a loaded or
		 * emulated machine: waiting longer is fine, what is checked
		 * is the state once the sequence is even.
		 */
		for (int tries = 0;
		     (ret = um_interval_read_begin(iv, &seq)) == -ETIMEDOUT && tries < 10; tries++)
			;
		CHECK(ret == 0, "round %d: read_begin after the REMOVE: %d", round, ret);
		left = not_zapped();
		CHECK(left == 0,
		      "round %d: seq %llu is even %llu ms after the invalidation but %llu pages "
		      "are "
		      "not zapped yet (madvise %s)",
		      round, (unsigned long long)seq,
		      (unsigned long long)(harness_now_ms() - atomic_load(&cb_ms)),
		      (unsigned long long)left, atomic_load(&ret_ms) ? "returned" : "not returned");
		for (t0 = harness_now_ms(); !atomic_load(&ret_ms) && harness_now_ms() - t0 < 10000;)
			usleep(1000);
		CHECK(atomic_load(&ret_ms), "round %d: madvise returned", round);
		/* the zap outlasted the old give-up: this round would have failed */
		if (atomic_load(&ret_ms) > atomic_load(&cb_ms) + 100)
			slow++;
		while (atomic_load(&spin_end_ms) < atomic_load(&spin_start_ms) ||
		       !atomic_load(&spin_start_ms))
			usleep(1000);
		atomic_store(&spin_start_ms, 0);
		CHECK(um_interval_remove(iv) == 0, "remove");
	}
	/*
	 * MADV_FREE sends the same event and zaps nothing: the invalidation
	 * must still complete (read_begin would time out after 1000 ms),
	 * the pages untouched.
	 */
	{
		struct um_interval *iv;
		uint64_t seq, t0;

		for (uint64_t i = 0; i < 16; i++)
			region[i * PAGE] = 1;
		CHECK(um_interval_insert(c, region, 16 * PAGE, 0, &ops, NULL, &iv) == 0, "insert");
		read_pagemap(pfn_before);
		CHECK(madvise(region, 16 * PAGE, MADV_FREE) == 0, "MADV_FREE: %m");
		CHECK(harness_sem_wait_ms(&cb_sem, 10000), "MADV_FREE: a REMOVE invalidation");
		t0 = harness_now_ms();
		ret = um_interval_read_begin(iv, &seq);
		CHECK(ret == 0, "MADV_FREE: the invalidation completes (%s)", strerror(-ret));
		printf("test_zap_delay: MADV_FREE of 16 pages completed %llu ms after its "
		       "callback\n",
		       (unsigned long long)(harness_now_ms() - t0));
		CHECK((harness_pagemap(region) & PM_PFN_MASK) == (pfn_before[0] & PM_PFN_MASK),
		      "MADV_FREE left the page mapped");
		CHECK(um_interval_remove(iv) == 0, "remove");
	}
	printf("test_zap_delay: the zap ended more than 100 ms after the invalidation in %u of "
	       "%d rounds\n",
	       slow, ROUNDS);
	CHECK(slow > 0, "the delay was provoked at least once");
	atomic_store(&quit, true);
	sem_post(&go);
	sem_post(&spin_go);
	pthread_join(z, NULL);
	pthread_join(s, NULL);
	munmap(region, NPG * PAGE);
	close(pm_fd);
	um_disconnect(c);
	return harness_summary();
}
