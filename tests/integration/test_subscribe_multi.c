/* SPDX-License-Identifier: MIT */
/*
 * test_subscribe_multi - a subscriber in another process sees the same
 * invalidations, in the same order, with the same sequence values, as the
 * owner; and being synchronous, it holds the owner's writers too.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPAGES 8
#define MAX_EV 16

struct rec {
	uint64_t start, end, seq;
	uint32_t reason;
	uint32_t sync;
};

struct log {
	pthread_mutex_t lock;
	struct rec r[MAX_EV];
	unsigned int n;
	sem_t sem;
};

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct log *l = priv;

	pthread_mutex_lock(&l->lock);
	if (l->n < MAX_EV)
		l->r[l->n++] =
			(struct rec){ inv->start, inv->end, inv->seq, inv->reason, inv->sync };
	pthread_mutex_unlock(&l->lock);
	sem_post(&l->sem);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

static void log_init(struct log *l)
{
	pthread_mutex_init(&l->lock, NULL);
	sem_init(&l->sem, 0, 0);
	l->n = 0;
}

struct hello_msg {
	pid_t pid;
	uint64_t interval_id;
};

/* The subscriber: subscribe, say ready, collect @n events, send them back. */
static void subscriber_main(int in_fd, int out_fd)
{
	struct hello_msg m;
	struct um_interval *iv;
	struct um_client *c;
	struct log l;
	unsigned int n;
	char ready = 'r';

	alarm(harness_scaled_s(30));
	log_init(&l);
	CHECK(read(in_fd, &m, sizeof(m)) == sizeof(m), "subscriber: read hello");
	CHECK(um_connect(NULL, 0, &c) == 0, "subscriber: connect");
	CHECK(um_interval_subscribe(c, m.pid, m.interval_id, 0, &ops, &l, &iv) == 0,
	      "subscriber: subscribe");
	CHECK(write(out_fd, &ready, 1) == 1, "subscriber: ready");
	CHECK(read(in_fd, &n, sizeof(n)) == sizeof(n) && n <= MAX_EV, "subscriber: count");
	for (unsigned int i = 0; i < n; i++)
		CHECK(harness_sem_wait_ms(&l.sem, 5000), "subscriber: event %u arrived", i);
	CHECK(!harness_sem_wait_ms(&l.sem, 200), "subscriber: no extra event");
	CHECK(write(out_fd, &l.n, sizeof(l.n)) == sizeof(l.n), "subscriber: send count");
	CHECK(write(out_fd, l.r, sizeof(l.r[0]) * l.n) == (ssize_t)(sizeof(l.r[0]) * l.n),
	      "subscriber: send events");
	um_interval_remove(iv);
	um_disconnect(c);
	_exit(0);
}

int main(void)
{
	int to_sub, from_sub, status;
	struct hello_msg m = { .pid = getpid() };
	struct rec theirs[MAX_EV];
	struct um_interval *iv;
	struct um_client *c;
	struct log mine;
	unsigned int n, nsub;
	uint64_t seq;
	char *buf, ready;
	pid_t sub;

	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	harness_start("test_subscribe_multi", NULL);
	log_init(&mine);
	/* fork before connecting: the child must not share our connection */
	sub = harness_fork(subscriber_main, &to_sub, &from_sub);

	buf = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(buf != MAP_FAILED, "mmap: %m");
	memset(buf, 'a', NPAGES * PAGE);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, &ops, &mine, &iv) == 0, "insert");
	m.interval_id = um_interval_id(iv);
	CHECK(write(to_sub, &m, sizeof(m)) == sizeof(m), "send hello");
	CHECK(read(from_sub, &ready, 1) == 1, "subscriber ready");

	/* a mix of sources, in an order the subscriber must reproduce */
	buf[3 * PAGE] = 'x';
	buf[1 * PAGE] = 'x';
	CHECK(madvise(buf + 5 * PAGE, 2 * PAGE, MADV_DONTNEED) == 0, "madvise: %m");
	buf[0] = 'x';
	CHECK(munmap(buf + 7 * PAGE, PAGE) == 0, "munmap: %m");
	n = 5;
	for (unsigned int i = 0; i < n; i++)
		CHECK(harness_sem_wait_ms(&mine.sem, 5000), "owner: event %u arrived", i);
	CHECK(write(to_sub, &n, sizeof(n)) == sizeof(n), "send count");

	CHECK(read(from_sub, &nsub, sizeof(nsub)) == sizeof(nsub), "subscriber's count");
	CHECK(nsub == n, "subscriber saw %u invalidations, owner %u", nsub, n);
	CHECK(read(from_sub, theirs, sizeof(theirs[0]) * nsub) ==
		      (ssize_t)(sizeof(theirs[0]) * nsub),
	      "subscriber's events");
	CHECK(waitpid(sub, &status, 0) == sub && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "subscriber exited cleanly (0x%x)", status);
	CHECK(mine.n == n, "owner saw %u invalidations, want %u", mine.n, n);

	static const uint32_t want_reason[] = { UM_REASON_WRITE, UM_REASON_WRITE, UM_REASON_REMOVE,
						UM_REASON_WRITE, UM_REASON_UNMAP };
	for (unsigned int i = 0; i < n; i++) {
		CHECK(mine.r[i].reason == want_reason[i], "owner event %u: %s", i,
		      um_reason_str(mine.r[i].reason));
		CHECK(theirs[i].reason == mine.r[i].reason && theirs[i].start == mine.r[i].start &&
			      theirs[i].end == mine.r[i].end && theirs[i].seq == mine.r[i].seq,
		      "event %u: subscriber (%s %#llx-%#llx seq %llu) != owner (%s %#llx-%#llx "
		      "seq %llu)",
		      i, um_reason_str(theirs[i].reason), (unsigned long long)theirs[i].start,
		      (unsigned long long)theirs[i].end, (unsigned long long)theirs[i].seq,
		      um_reason_str(mine.r[i].reason), (unsigned long long)mine.r[i].start,
		      (unsigned long long)mine.r[i].end, (unsigned long long)mine.r[i].seq);
		/* overlapping invalidations share one odd value (mmu_interval_notifier) */
		CHECK(i == 0 || mine.r[i].seq >= mine.r[i - 1].seq, "seq never goes back");
		CHECK(theirs[i].sync, "subscriber's copy is sync");
	}
	CHECK(um_interval_read_begin(iv, &seq) == 0 && !(seq & 1) && seq > mine.r[n - 1].seq &&
		      seq <= 2 * n,
	      "seq %llu after %u events", (unsigned long long)seq, n);
	CHECK(buf[0] == 'x' && buf[PAGE] == 'x' && buf[3 * PAGE] == 'x' && buf[2 * PAGE] == 'a',
	      "data intact");
	CHECK(um_interval_remove(iv) == 0, "remove");
	um_disconnect(c);
	return harness_summary();
}
