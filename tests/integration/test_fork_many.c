/* SPDX-License-Identifier: MIT */
/*
 * test_fork_many - a fork followed over thousands of intervals is a burst
 * of messages the daemon makes on its own: one UMP_EV_FORK per followed
 * interval and one FORK invalidation per written one, a copy of each to a
 * watcher; the child's exit releases every copy at once, an
 * MADV_DONTNEED over all of them is one REMOVE per interval, an interval
 * inserted over all of them one PROTECT per written interval. Each burst
 * is far beyond the send queue limit (UMD_SENDQ_MAX, 1024 messages), yet
 * the owner and the watcher read their sockets all along and must stay
 * connected: every copy is handed over (also the one the child wrote
 * before the fork was announced), the child's writes invalidate the
 * child's copies and the parent's copy-on-write breaks the parent's,
 * snapshots match each process's /proc/PID/pagemap, and every event of
 * every burst arrives (with 1024 fds in the daemon: the fork events
 * share one fd), none of them lost to an eviction (the ack timeout
 * of an invalidation queued behind a burst runs from its delivery:
 * test_inval's test_queued_event_timeout checks that rule on its own,
 * without a clock race).
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 4000
#define NSAMPLE 8

/* across the 4096-slot chunk of the child's seq area and the queue limit */
static const unsigned int sample[NSAMPLE] = { 0, 1, 511, 1023, 1024, 2047, 3000, N - 2 };
/*
 * The child writes it right after the fork. Not written in the parent
 * since armed, so the child inherits it write-protected and the write
 * waits in the child's uffd for the daemon, which must report it after
 * handing the copy over. (A page the parent had made writable comes to
 * the child unprotected: its write before the copy is armed goes
 * unseen, and is in what the copy's first snapshot reads.)
 */
#define EARLY (N - 1)

struct rec {
	_Atomic(struct um_interval *) child;
	atomic_uint fork_inv, write_inv, remove_inv, protect_inv; /* the parent's interval */
	atomic_uint child_write, child_other;			  /* the child's copy */
	atomic_uint child_odd; /* child callbacks with an odd seq */
	atomic_uint released, child_released;
	atomic_int release_error, child_release_error;
};

static struct rec rec[N];
static struct um_interval *iv[N];
static atomic_uint nfork, nforkpid_bad;
static atomic_uint anyrel; /* releases of the parent's intervals: a dropped owner */
static atomic_uint watch_fork, watch_remove, watch_other;
static pid_t child_pid;

static void on_invalidate(struct um_interval *i, const struct um_invalidation *inv, void *priv)
{
	struct rec *r = priv;

	if (i == atomic_load(&r->child)) {
		if (inv->seq & 1)
			atomic_fetch_add(&r->child_odd, 1);
		if (inv->reason == UM_REASON_WRITE)
			atomic_fetch_add(&r->child_write, 1);
		else
			atomic_fetch_add(&r->child_other, 1);
		return;
	}
	if (inv->reason == UM_REASON_FORK)
		atomic_fetch_add(&r->fork_inv, 1);
	else if (inv->reason == UM_REASON_WRITE)
		atomic_fetch_add(&r->write_inv, 1);
	else if (inv->reason == UM_REASON_REMOVE)
		atomic_fetch_add(&r->remove_inv, 1);
	else if (inv->reason == UM_REASON_PROTECT)
		atomic_fetch_add(&r->protect_inv, 1);
}

static void on_release(struct um_interval *i, int error, void *priv)
{
	struct rec *r = priv;

	if (i == atomic_load(&r->child)) {
		atomic_store(&r->child_release_error, error);
		atomic_fetch_add(&r->child_released, 1);
	} else {
		atomic_store(&r->release_error, error);
		atomic_fetch_add(&r->released, 1);
		atomic_fetch_add(&anyrel, 1);
	}
}

static void on_fork(struct um_interval *parent, struct um_interval *child, pid_t pid, void *priv)
{
	struct rec *r = priv;

	(void)parent;
	if (pid != child_pid)
		atomic_fetch_add(&nforkpid_bad, 1);
	atomic_store(&r->child, child);
	atomic_fetch_add(&nfork, 1);
}

static const struct um_interval_ops ops = {
	.invalidate = on_invalidate,
	.release = on_release,
	.fork = on_fork,
};

static void on_watch(uint64_t id, pid_t pid, const struct um_invalidation *inv, void *priv)
{
	(void)id;
	(void)pid;
	(void)priv;
	if (inv->reason == UM_REASON_FORK)
		atomic_fetch_add(&watch_fork, 1);
	else if (inv->reason == UM_REASON_REMOVE)
		atomic_fetch_add(&watch_remove, 1);
	else
		atomic_fetch_add(&watch_other, 1);
}

/* wait (a give-up bound, not an assertion) until @get() reaches @want */
static unsigned int wait_count(unsigned int (*get)(void), unsigned int want)
{
	unsigned int n = get();

	for (unsigned int t = 0; n < want && t < harness_scaled_s(60) * 100 && !anyrel; t++) {
		usleep(10000);
		n = get();
	}
	return n;
}

static unsigned int get_nfork(void)
{
	return atomic_load(&nfork);
}

static unsigned int get_watch_fork(void)
{
	return atomic_load(&watch_fork);
}

static unsigned int get_watch_remove(void)
{
	return atomic_load(&watch_remove);
}

#define COUNT_ALL(field)                                         \
	static unsigned int all_##field(void)                    \
	{                                                        \
		unsigned int n = 0;                              \
                                                                 \
		for (unsigned int k = 0; k < N; k++)             \
			n += atomic_load(&rec[k].field) ? 1 : 0; \
		return n;                                        \
	}
COUNT_ALL(fork_inv)
COUNT_ALL(remove_inv)
COUNT_ALL(protect_inv)
COUNT_ALL(child_released)
COUNT_ALL(released)

/* the child: writes EARLY at once (and says so), then page k for each k it is sent, until
 * UINT32_MAX */
static void child_main(char *buf, int in_fd, int out_fd)
{
	uint32_t k;

	k = EARLY;
	buf[(size_t)k * PAGE] = 'e';
	if (write(out_fd, &k, sizeof(k)) != sizeof(k))
		_exit(2);
	while (read(in_fd, &k, sizeof(k)) == sizeof(k) && k != UINT32_MAX) {
		buf[(size_t)k * PAGE] = 'c';
		if (write(out_fd, &k, sizeof(k)) != sizeof(k))
			_exit(2);
	}
	_exit(0);
}

static void child_write(int to, int from, uint32_t k)
{
	uint32_t back;

	CHECK(write(to, &k, sizeof(k)) == sizeof(k) &&
		      read(from, &back, sizeof(back)) == sizeof(back) && back == k,
	      "child wrote page %u", k);
}

/* @civ's snapshot of page @k is @pid's pagemap entry there */
static void check_snapshot(struct um_interval *i, pid_t pid, char *page, unsigned int k)
{
	uint64_t pfn = 0, pm;
	struct um_range r = { .start = (uintptr_t)page,
			      .end = (uintptr_t)page + PAGE,
			      .pfns = &pfn };
	long ret;

	CHECK(um_range_register(&r, i) == 0, "#%u: register", k);
	ret = harness_snapshot(&r);
	CHECK(ret == 1, "#%u: snapshot of pid %d: %ld", k, (int)pid, ret);
	pm = harness_pagemap_of(pid, (uintptr_t)page);
	CHECK(!!(pfn & UM_DEFAULT_VALID) == !!(pm & PM_PRESENT),
	      "#%u pid %d: valid %d, pagemap %#llx", k, (int)pid, !!(pfn & UM_DEFAULT_VALID),
	      (unsigned long long)pm);
	if (pm & PM_PRESENT)
		CHECK((pfn >> UM_DEFAULT_PFN_SHIFT) == (pm & PM_PFN_MASK),
		      "#%u pid %d: pfn %#llx, pagemap %#llx", k, (int)pid,
		      (unsigned long long)(pfn >> UM_DEFAULT_PFN_SHIFT),
		      (unsigned long long)(pm & PM_PFN_MASK));
	um_range_unregister(&r);
}

int main(void)
{
	int to_child[2], from_child[2], status, ret;
	struct um_client *c, *w;
	uint64_t seq[NSAMPLE], t0;
	unsigned int n;
	char *buf;

	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	/*
	 * The daemon inherits 1024 fds at most: the N fork events queued at
	 * once must not hold an fd each (they share the child's seq area).
	 */
	{
		struct rlimit rl;

		CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0, "getrlimit: %m");
		if (rl.rlim_cur > 1024)
			rl.rlim_cur = 1024;
		CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %m");
	}
	harness_start("test_fork_many", NULL);
	alarm(harness_scaled_s(240));
	buf = harness_map_anon(N, PROT_READ | PROT_WRITE);
	memset(buf, 'a', (size_t)N * PAGE);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	for (unsigned int k = 0; k < N; k++) {
		ret = um_interval_insert(c, buf + (size_t)k * PAGE, PAGE, UM_INTERVAL_FOLLOW_FORK,
					 &ops, &rec[k], &iv[k]);
		CHECK(ret == 0, "insert #%u of %u: %s", k, N, strerror(-ret));
	}
	/* written since armed: the fork invalidates every one of them but EARLY */
	for (unsigned int k = 0; k < N; k++)
		if (k != EARLY)
			buf[(size_t)k * PAGE] = 'b';
	CHECK(atomic_load(&rec[0].write_inv) == 1 && atomic_load(&rec[N - 2].write_inv) == 1,
	      "writes invalidated");
	CHECK(um_connect(NULL, 0, &w) == 0 && um_watch(w, getpid(), on_watch, NULL) == 0,
	      "a watcher");

	/* the fork: N fork events, N FORK invalidations, N watcher copies */
	CHECK(pipe(to_child) == 0 && pipe(from_child) == 0, "pipes: %m");
	t0 = harness_now_ms();
	child_pid = fork();
	CHECK(child_pid >= 0, "fork: %m");
	if (child_pid == 0) {
		close(to_child[1]);
		close(from_child[0]);
		child_main(buf, to_child[0], from_child[1]);
	}
	close(to_child[0]);
	close(from_child[1]);
	n = wait_count(get_nfork, N);
	printf("test_fork_many: %u of %u copies handed over in %llu ms\n", n, N,
	       (unsigned long long)(harness_now_ms() - t0));
	CHECK(n == N, "%u of %u copies handed over", n, N);
	CHECK(atomic_load(&nforkpid_bad) == 0, "fork callbacks name the child");
	CHECK(um_ping(c) == 0, "the owner is still connected");
	CHECK(all_released() == 0, "no parent interval released (error %d)",
	      atomic_load(&rec[0].release_error));
	n = wait_count(all_fork_inv, N - 1);
	CHECK(n == N - 1 && !atomic_load(&rec[EARLY].fork_inv),
	      "%u of %u FORK invalidations of the parent's written intervals", n, N - 1);
	n = wait_count(get_watch_fork, N - 1);
	CHECK(n == N - 1, "the watcher saw %u of %u FORK invalidations", n, N - 1);
	CHECK(um_ping(w) == 0, "the watcher is still connected");
	for (unsigned int k = 0; k < N; k++) {
		struct um_interval *civ = atomic_load(&rec[k].child);

		CHECK(civ && um_interval_start(civ) == (uintptr_t)buf + (size_t)k * PAGE &&
			      um_interval_length(civ) == PAGE,
		      "child copy of #%u over the parent's range", k);
	}

	/* the write the child made before its copies were handed over */
	{
		struct rec *r = &rec[EARLY];
		struct um_interval *civ = atomic_load(&r->child);
		uint32_t k;
		uint64_t s;

		/* its write returned: the copy's synchronous callback ran */
		CHECK(read(from_child[0], &k, sizeof(k)) == sizeof(k) && k == EARLY,
		      "the child wrote page %u", EARLY);
		CHECK(harness_wait_even(civ, &s) == 0, "child copy of #%u: read_begin", EARLY);
		CHECK(atomic_load(&r->child_write) >= 1 && r->child_odd == r->child_write,
		      "the child's early write invalidated its copy (%u callbacks)",
		      atomic_load(&r->child_write));
		check_snapshot(civ, child_pid, buf + (size_t)EARLY * PAGE, EARLY);
	}

	/* the child's writes: its copies only; the parent's COW breaks: the parent's only */
	for (int i = 0; i < NSAMPLE; i++) {
		struct um_interval *civ = atomic_load(&rec[sample[i]].child);

		CHECK(harness_wait_even(civ, &seq[i]) == 0, "child copy of #%u: read_begin",
		      sample[i]);
		atomic_store(&rec[sample[i]].write_inv, 0);
	}
	for (int i = 0; i < NSAMPLE; i++) {
		unsigned int k = sample[i];
		struct rec *r = &rec[k];
		struct um_interval *civ = atomic_load(&r->child);
		uint64_t s;

		child_write(to_child[1], from_child[0], k);
		CHECK(atomic_load(&r->child_write) >= 1 && r->child_odd == r->child_write,
		      "child copy of #%u: %u write callbacks (%u odd)", k, r->child_write,
		      r->child_odd);
		CHECK(um_interval_read_retry(civ, seq[i]), "child copy of #%u: read_retry fails",
		      k);
		CHECK(atomic_load(&r->write_inv) == 0, "parent's #%u saw the child's write", k);
		check_snapshot(civ, child_pid, buf + (size_t)k * PAGE, k);

		CHECK(harness_wait_even(iv[k], &s) == 0, "#%u: read_begin", k);
		buf[(size_t)k * PAGE] = 'P';
		CHECK(atomic_load(&r->write_inv) == 1, "parent's COW break of #%u invalidates", k);
		CHECK(um_interval_read_retry(iv[k], s), "#%u: read_retry fails", k);
		check_snapshot(iv[k], getpid(), buf + (size_t)k * PAGE, k);
	}
	CHECK(um_ping(c) == 0, "the owner is still connected");

	/* one MADV_DONTNEED over all: N REMOVE invalidations, N watcher copies */
	CHECK(madvise(buf, (size_t)N * PAGE, MADV_DONTNEED) == 0, "madvise: %m");
	n = wait_count(all_remove_inv, N);
	CHECK(n == N, "%u of %u REMOVE invalidations", n, N);
	n = wait_count(get_watch_remove, N);
	CHECK(n == N, "the watcher saw %u of %u REMOVE invalidations", n, N);
	CHECK(um_ping(c) == 0 && um_ping(w) == 0, "owner and watcher still connected");
	CHECK(all_released() == 0, "no parent interval released");

	/* the child exits: N releases at once */
	{
		uint32_t q = UINT32_MAX;

		CHECK(write(to_child[1], &q, sizeof(q)) == sizeof(q), "tell the child to exit");
	}
	CHECK(waitpid(child_pid, &status, 0) == child_pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0,
	      "child exited cleanly (0x%x)", status);
	n = wait_count(all_child_released, N);
	CHECK(n == N, "%u of %u child copies released", n, N);
	CHECK(atomic_load(&rec[0].child_release_error) == -EFAULT &&
		      atomic_load(&rec[N - 1].child_release_error) == -EFAULT,
	      "released with -EFAULT");
	CHECK(um_ping(c) == 0, "the owner is still connected");
	CHECK(all_released() == 0, "no parent interval released");

	/* the parent's intervals live on */
	for (int i = 0; i < NSAMPLE; i++) {
		unsigned int k = sample[i];
		uint64_t s;

		CHECK(harness_wait_even(iv[k], &s) == 0, "#%u: read_begin after all", k);
		atomic_store(&rec[k].write_inv, 0);
		buf[(size_t)k * PAGE] = 'z';
		CHECK(atomic_load(&rec[k].write_inv) == 1 && um_interval_read_retry(iv[k], s),
		      "#%u: still invalidated by a write", k);
	}

	/* one interval over all of them re-arms every written page: N PROTECT invalidations */
	{
		static struct rec big_rec;
		struct um_interval *big;

		for (unsigned int k = 0; k < N; k++)
			buf[(size_t)k * PAGE] = 'y';
		CHECK(um_interval_insert(c, buf, (size_t)N * PAGE, 0, &ops, &big_rec, &big) == 0,
		      "insert one interval over all");
		n = wait_count(all_protect_inv, N);
		CHECK(n == N, "%u of %u PROTECT invalidations", n, N);
		CHECK(um_ping(c) == 0, "the owner is still connected");
		CHECK(all_released() == 0, "no parent interval released");
		CHECK(um_interval_remove(big) == 0, "remove the one over all");
	}
	for (unsigned int k = 0; k < N; k++) {
		CHECK(um_interval_remove(atomic_load(&rec[k].child)) == 0, "remove child copy #%u",
		      k);
		CHECK(um_interval_remove(iv[k]) == 0, "remove #%u", k);
	}
	close(to_child[1]);
	close(from_child[0]);
	um_disconnect(w);
	um_disconnect(c);
	return harness_summary();
}
