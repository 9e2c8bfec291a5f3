/* SPDX-License-Identifier: MIT */
/*
 * test_fork_follow - UM_INTERVAL_FOLLOW_FORK: a fork hands the owner a
 * second interval (ops->fork, with the child's pid) that mirrors the
 * child's copy: the child's writes invalidate it and not the parent's,
 * the parent's copy-on-write breaks invalidate the parent's only, its
 * snapshot is the child's pagemap, and the child's exit releases it
 * (-EFAULT). Without the flag the child is not mirrored at all, while the
 * parent's COW breaks are still invalidations.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPAGES 4
#define MAX_EV 64

struct ev {
	struct um_interval *iv;
	uint64_t start;
	int reason;
};

static struct {
	pthread_mutex_t lock;
	sem_t inv, forked, released;
	unsigned int n;
	struct ev v[MAX_EV];
	struct um_interval *child, *released_iv;
	pid_t child_pid;
	int release_error;
	unsigned int nfork;
} st = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	pthread_mutex_lock(&st.lock);
	if (st.n < MAX_EV)
		st.v[st.n++] = (struct ev){ iv, inv->start, inv->reason };
	pthread_mutex_unlock(&st.lock);
	sem_post(&st.inv);
}

static void on_release(struct um_interval *iv, int error, void *priv)
{
	pthread_mutex_lock(&st.lock);
	st.released_iv = iv;
	st.release_error = error;
	pthread_mutex_unlock(&st.lock);
	sem_post(&st.released);
}

static void on_fork(struct um_interval *parent, struct um_interval *child, pid_t pid, void *priv)
{
	CHECK(priv == &st, "fork callback priv");
	pthread_mutex_lock(&st.lock);
	st.child = child;
	st.child_pid = pid;
	st.nfork++;
	pthread_mutex_unlock(&st.lock);
	sem_post(&st.forked);
}

static const struct um_interval_ops ops = {
	.invalidate = on_invalidate,
	.release = on_release,
	.fork = on_fork,
};

/* the forked child: writes the page it is told to, answers, until told 'q' */
static void child_loop(char *p, int in_fd, int out_fd)
{
	unsigned char k;

	while (read(in_fd, &k, 1) == 1 && k != 'q') {
		p[k * PAGE] = 'c';
		if (write(out_fd, &k, 1) != 1)
			_exit(2);
	}
	_exit(0);
}

/* harness_fork()'s child entry: the interval's memory is the same address there */
static char *child_mem;

static void child_main(int in_fd, int out_fd)
{
	child_loop(child_mem, in_fd, out_fd);
}

static pid_t fork_child(char *p, int *to, int *from)
{
	child_mem = p;
	return harness_fork(child_main, to, from);
}

static void child_write(int to, int from, unsigned char page)
{
	unsigned char k;

	CHECK(write(to, &page, 1) == 1 && read(from, &k, 1) == 1 && k == page,
	      "child write of page %u", page);
}

/* events of @iv at @start with @reason so far */
static unsigned int count(struct um_interval *iv, uint64_t start, int reason)
{
	unsigned int n = 0;

	pthread_mutex_lock(&st.lock);
	for (unsigned int i = 0; i < st.n; i++)
		n += st.v[i].iv == iv && (!start || st.v[i].start == start) &&
		     (!reason || st.v[i].reason == reason);
	pthread_mutex_unlock(&st.lock);
	return n;
}

/* wait (at most 5 s) until @iv has an event at @start of @reason */
static bool wait_event(struct um_interval *iv, uint64_t start, int reason)
{
	uint64_t deadline = harness_now_ms() + 5000;

	while (!count(iv, start, reason)) {
		if (harness_now_ms() > deadline)
			return false;
		harness_sem_wait_ms(&st.inv, 50);
	}
	return true;
}

/* the child interval's snapshot is the child's pagemap (its pages stay put meanwhile) */
static void check_child_snapshot(struct um_interval *civ, pid_t pid, char *p)
{
	uint64_t pfns[NPAGES];
	struct um_range r = { .start = (uintptr_t)p,
			      .end = (uintptr_t)p + NPAGES * PAGE,
			      .pfns = pfns };
	long n;

	CHECK(um_range_register(&r, civ) == 0, "register on the child interval");
	n = harness_snapshot(&r);
	CHECK(n == NPAGES, "child snapshot: %ld", n);
	for (int i = 0; i < NPAGES; i++) {
		uint64_t e = harness_pagemap_of(pid, r.start + i * PAGE);
		bool present = e & PM_PRESENT;

		CHECK(!!(pfns[i] & UM_DEFAULT_VALID) == present, "page %d: valid %d, pagemap %#llx",
		      i, !!(pfns[i] & UM_DEFAULT_VALID), (unsigned long long)e);
		if (present)
			CHECK(pfns[i] >> UM_DEFAULT_PFN_SHIFT == (e & PM_PFN_MASK),
			      "page %d: PFN %#llx, child's pagemap %#llx", i,
			      (unsigned long long)(pfns[i] >> UM_DEFAULT_PFN_SHIFT),
			      (unsigned long long)(e & PM_PFN_MASK));
	}
	um_range_unregister(&r);
}

static void follow(struct um_client *c)
{
	struct um_interval *iv, *civ;
	uint64_t seq, base;
	int to, from, status, err;
	pid_t pid;
	char *p = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);

	memset(p, 'p', NPAGES * PAGE);
	base = (uintptr_t)p;
	err = um_interval_insert(c, p, NPAGES * PAGE, UM_INTERVAL_FOLLOW_FORK, NULL, NULL, &iv);
	CHECK(err == -EINVAL, "FOLLOW_FORK without ops->fork: %s, want EINVAL", strerror(-err));
	CHECK(um_interval_insert(c, p, NPAGES * PAGE, UM_INTERVAL_FOLLOW_FORK, &ops, &st, &iv) == 0,
	      "insert FOLLOW_FORK");

	pid = fork_child(p, &to, &from);
	CHECK(harness_sem_wait_ms(&st.forked, 5000), "ops->fork called");
	pthread_mutex_lock(&st.lock);
	civ = st.child;
	pthread_mutex_unlock(&st.lock);
	CHECK(st.child_pid == pid, "fork callback pid %d, fork() said %d", (int)st.child_pid,
	      (int)pid);
	CHECK(civ && civ != iv && um_interval_id(civ) != um_interval_id(iv), "a new interval");
	CHECK(um_interval_start(civ) == base && um_interval_length(civ) == NPAGES * PAGE,
	      "child interval range");
	check_child_snapshot(civ, pid, p);

	/* the child's write: its interval, not the parent's */
	child_write(to, from, 0);
	CHECK(wait_event(civ, base, UM_REASON_WRITE),
	      "child's write invalidates the child interval");
	CHECK(count(iv, base, 0) == 0, "the parent's interval saw the child's write");
	CHECK(memcmp(p, "pppp", 4) == 0, "the parent's memory is its own");

	/* the parent's COW break: its interval, not the child's */
	p[PAGE] = 'P';
	CHECK(wait_event(iv, base + PAGE, UM_REASON_WRITE), "parent's COW break invalidates");
	CHECK(count(civ, base + PAGE, 0) == 0, "the child interval saw the parent's write");
	check_child_snapshot(civ, pid, p);

	/* the child exits: its interval is released */
	CHECK(write(to, "q", 1) == 1, "tell the child to exit");
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child status 0x%x", status);
	CHECK(harness_sem_wait_ms(&st.released, 5000), "child interval released");
	CHECK(st.released_iv == civ && st.release_error == -EFAULT, "release of %p: %d",
	      (void *)st.released_iv, st.release_error);
	CHECK(um_interval_read_begin(civ, &seq) == -EFAULT, "read_begin on the dead child");
	CHECK(um_interval_read_begin(iv, &seq) == 0, "the parent's interval lives on");
	CHECK(um_interval_remove(civ) == 0, "remove the child interval");
	CHECK(um_interval_remove(iv) == 0, "remove");
	close(to);
	close(from);
	munmap(p, NPAGES * PAGE);
}

static void no_follow(struct um_client *c)
{
	struct um_interval *iv;
	unsigned int forks = st.nfork;
	int to, from, status;
	uint64_t base;
	pid_t pid;
	char *p = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);

	memset(p, 'p', NPAGES * PAGE);
	base = (uintptr_t)p;
	CHECK(um_interval_insert(c, p, NPAGES * PAGE, 0, &ops, &st, &iv) == 0, "insert");
	pid = fork_child(p, &to, &from);
	child_write(to, from, 2);
	/* the parent's COW break is seen, through the parent's own protection */
	p[3 * PAGE] = 'P';
	CHECK(wait_event(iv, base + 3 * PAGE, UM_REASON_WRITE), "parent's COW break invalidates");
	CHECK(count(iv, base + 2 * PAGE, 0) == 0,
	      "the child's write reached the parent's interval");
	CHECK(st.nfork == forks, "fork callback without FOLLOW_FORK");
	CHECK(write(to, "q", 1) == 1, "tell the child to exit");
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child status 0x%x", status);
	CHECK(count(iv, base + 2 * PAGE, 0) == 0 && st.nfork == forks, "nothing of the child");
	CHECK(um_interval_remove(iv) == 0, "remove");
	close(to);
	close(from);
	munmap(p, NPAGES * PAGE);
}

int main(void)
{
	struct um_client *c;

	harness_start("test_fork_follow", NULL);
	sem_init(&st.inv, 0, 0);
	sem_init(&st.forked, 0, 0);
	sem_init(&st.released, 0, 0);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	follow(c);
	no_follow(c);
	um_disconnect(c);
	return harness_summary();
}
