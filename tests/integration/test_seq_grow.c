/* SPDX-License-Identifier: MIT */
/*
 * test_seq_grow - one address space holds far more intervals than the
 * first 4096 seq slots (the kernel's mmu_interval_notifier has no such
 * bound): 10,000 one-page intervals, the seq area growing under them.
 * For a sample in every 4096-slot chunk, owner and a subscriber in
 * another process see a write invalidate the interval (read_retry fails
 * across it, the callback ran with an odd seq, read_begin is even after),
 * a snapshot matches /proc/self/pagemap, and remove + insert reuses the
 * slot without growing the area.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 10000
#define NSAMPLE 12

/* slots are handed out in insert order: these are in chunks 0, 1 and 2 */
static const unsigned int sample[NSAMPLE] = { 0,    1,	  2047, 4095, 4096, 4097,
					      6000, 8191, 8192, 9000, 9998, 9999 };

struct rec {
	atomic_uint n;
	atomic_uint odd; /* callbacks that saw an odd seq */
};

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct rec *r = priv;

	(void)iv;
	if (inv->seq & 1)
		atomic_fetch_add(&r->odd, 1);
	atomic_fetch_add(&r->n, 1);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

struct hello_msg {
	pid_t pid;
	uint64_t ids[NSAMPLE];
};

/* kB of VmRSS of @pid, for the log (not asserted: the machine is shared) */
static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * The subscriber: subscribe to the sample, take each seq, say ready; once
 * told the writes are done, check each saw its invalidation, send 'k'.
 */
static void subscriber_main(int in_fd, int out_fd)
{
	struct um_interval *iv[NSAMPLE];
	static struct rec rec[NSAMPLE];
	uint64_t seq[NSAMPLE], now;
	struct hello_msg m;
	struct um_client *c;
	char ch = 'r';

	alarm(harness_scaled_s(60));
	CHECK(read(in_fd, &m, sizeof(m)) == sizeof(m), "subscriber: read hello");
	CHECK(um_connect(NULL, 0, &c) == 0, "subscriber: connect");
	for (int i = 0; i < NSAMPLE; i++) {
		CHECK(um_interval_subscribe(c, m.pid, m.ids[i], 0, &ops, &rec[i], &iv[i]) == 0,
		      "subscriber: subscribe to interval #%u", sample[i]);
		CHECK(harness_wait_even(iv[i], &seq[i]) == 0, "subscriber: read_begin #%u",
		      sample[i]);
	}
	CHECK(write(out_fd, &ch, 1) == 1, "subscriber: ready");
	CHECK(read(in_fd, &ch, 1) == 1 && ch == 'w', "subscriber: writes done");
	for (int i = 0; i < NSAMPLE; i++) {
		/* sync: the owner's write returned only after our callback */
		CHECK(atomic_load(&rec[i].n) >= 1 && atomic_load(&rec[i].odd) == rec[i].n,
		      "subscriber: #%u had %u callbacks (%u odd)", sample[i], rec[i].n, rec[i].odd);
		CHECK(um_interval_read_retry(iv[i], seq[i]), "subscriber: #%u read_retry fails",
		      sample[i]);
		CHECK(harness_wait_even(iv[i], &now) == 0 && now > seq[i] && !(now & 1),
		      "subscriber: #%u seq %llu -> %llu", sample[i], (unsigned long long)seq[i],
		      (unsigned long long)now);
		um_interval_remove(iv[i]);
	}
	ch = 'k';
	CHECK(write(out_fd, &ch, 1) == 1, "subscriber: result");
	um_disconnect(c);
	_exit(0);
}

static void check_snapshot(struct um_interval *iv, char *page, unsigned int k)
{
	uint64_t pfn, pm = harness_pagemap(page);
	struct um_range r = { .start = (uintptr_t)page,
			      .end = (uintptr_t)page + PAGE,
			      .pfns = &pfn };

	long ret;

	CHECK(um_range_register(&r, iv) == 0, "#%u: register", k);
	ret = harness_snapshot(&r);
	CHECK(ret == 1, "#%u: snapshot: %ld", k, ret);
	CHECK((pm & PM_PRESENT) && (pfn & UM_DEFAULT_VALID) && (pfn & UM_DEFAULT_WRITE) &&
		      !(pfn & UM_DEFAULT_UFFD_WP),
	      "#%u: written page valid+write: %#llx (pagemap %#llx)", k, (unsigned long long)pfn,
	      (unsigned long long)pm);
	CHECK((pfn >> UM_DEFAULT_PFN_SHIFT) == (pm & PM_PFN_MASK), "#%u: pfn %#llx, pagemap %#llx",
	      k, (unsigned long long)(pfn >> UM_DEFAULT_PFN_SHIFT),
	      (unsigned long long)(pm & PM_PFN_MASK));
	um_range_unregister(&r);
}

int main(void)
{
	struct hello_msg m = { .pid = getpid() };
	static struct um_interval *iv[N];
	static struct rec rec[N];
	uint64_t seq[NSAMPLE], t0, t1;
	int to_sub, from_sub, status, ret;
	struct um_client *c;
	pid_t sub;
	char *buf, ch;

	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	harness_start("test_seq_grow", NULL);
	alarm(harness_scaled_s(120));
	/* fork before connecting: the child must not share our connection */
	sub = harness_fork(subscriber_main, &to_sub, &from_sub);

	buf = harness_map_anon(N, PROT_READ | PROT_WRITE);
	memset(buf, 'a', (size_t)N * PAGE);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	printf("test_seq_grow: daemon VmRSS %ld kB before\n", rss_kb(harness_daemon_pid()));
	t0 = harness_now_ms();
	for (unsigned int i = 0; i < N; i++) {
		ret = um_interval_insert(c, buf + (size_t)i * PAGE, PAGE, 0, &ops, &rec[i], &iv[i]);
		CHECK(ret == 0, "insert #%u of %u: %s", i, N, strerror(-ret));
	}
	t1 = harness_now_ms();
	printf("test_seq_grow: %u inserts in %llu ms (%.0f/s), daemon VmRSS %ld kB\n", N,
	       (unsigned long long)(t1 - t0), N * 1000.0 / (double)(t1 - t0 ? t1 - t0 : 1),
	       rss_kb(harness_daemon_pid()));

	for (int i = 0; i < NSAMPLE; i++) {
		m.ids[i] = um_interval_id(iv[sample[i]]);
		CHECK(harness_wait_even(iv[sample[i]], &seq[i]) == 0 && !(seq[i] & 1),
		      "#%u: read_begin", sample[i]);
		CHECK(!um_interval_read_retry(iv[sample[i]], seq[i]), "#%u: nothing written yet",
		      sample[i]);
	}
	CHECK(write(to_sub, &m, sizeof(m)) == sizeof(m), "send hello");
	CHECK(read(from_sub, &ch, 1) == 1 && ch == 'r', "subscriber ready");

	for (int i = 0; i < NSAMPLE; i++) {
		unsigned int k = sample[i];
		uint64_t now;

		buf[(size_t)k * PAGE] = 'x';
		CHECK(atomic_load(&rec[k].n) >= 1 && atomic_load(&rec[k].odd) == rec[k].n,
		      "#%u: %u callbacks (%u odd)", k, rec[k].n, rec[k].odd);
		CHECK(um_interval_read_retry(iv[k], seq[i]), "#%u: read_retry fails after a write",
		      k);
		CHECK(harness_wait_even(iv[k], &now) == 0 && now > seq[i] && !(now & 1),
		      "#%u: seq %llu -> %llu", k, (unsigned long long)seq[i],
		      (unsigned long long)now);
		check_snapshot(iv[k], buf + (size_t)k * PAGE, k);
	}
	/* only the written ones were invalidated: neighbours' slots untouched */
	CHECK(atomic_load(&rec[2].n) == 0 && atomic_load(&rec[4098].n) == 0 &&
		      atomic_load(&rec[8193].n) == 0,
	      "unwritten neighbours saw no invalidation");
	ch = 'w';
	CHECK(write(to_sub, &ch, 1) == 1, "tell the subscriber");
	CHECK(read(from_sub, &ch, 1) == 1 && ch == 'k', "subscriber saw every invalidation");
	CHECK(waitpid(sub, &status, 0) == sub && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "subscriber exited cleanly (0x%x)", status);

	/* remove + insert the sample: a new interval there is mirrored again */
	for (int i = 0; i < NSAMPLE; i++) {
		unsigned int k = sample[i];
		uint64_t s;

		CHECK(um_interval_remove(iv[k]) == 0, "#%u: remove", k);
		ret = um_interval_insert(c, buf + (size_t)k * PAGE, PAGE, 0, &ops, &rec[k], &iv[k]);
		CHECK(ret == 0, "#%u: insert again: %s", k, strerror(-ret));
		CHECK(harness_wait_even(iv[k], &s) == 0 && !(s & 1), "#%u: new seq even", k);
		atomic_store(&rec[k].n, 0);
		atomic_store(&rec[k].odd, 0);
		buf[(size_t)k * PAGE] = 'y';
		CHECK(atomic_load(&rec[k].n) >= 1 && um_interval_read_retry(iv[k], s),
		      "#%u: the reinserted interval is invalidated by a write", k);
	}

	t0 = harness_now_ms();
	for (unsigned int i = 0; i < N; i++)
		CHECK(um_interval_remove(iv[i]) == 0, "remove #%u", i);
	t1 = harness_now_ms();
	printf("test_seq_grow: %u removes in %llu ms, daemon VmRSS %ld kB\n", N,
	       (unsigned long long)(t1 - t0), rss_kb(harness_daemon_pid()));
	CHECK(buf[0] == 'y' && buf[2 * PAGE] == 'a' && buf[9999 * PAGE] == 'y', "data intact");
	um_disconnect(c);
	return harness_summary();
}
