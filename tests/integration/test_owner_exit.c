/* SPDX-License-Identifier: MIT */
/*
 * test_owner_exit - the owner dies while an invalidation is in progress:
 * a subscriber's waiter wakes promptly with -EFAULT, read_begin fails with
 * -EFAULT, and the release callback runs with -EFAULT.
 *
 * The owner is a forked child. The test process subscribes with a slow
 * invalidate callback (blocked on a semaphore), so the owner's write keeps
 * the sequence odd; then the owner is SIGKILLed.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPAGES 4

struct hello_msg {
	pid_t pid;
	uint64_t interval_id;
};

/* The owner: insert, report, wait for "go", write (and block), get killed. */
static void owner_main(int go_fd, int report_fd)
{
	struct hello_msg m = { .pid = getpid() };
	struct um_interval *iv;
	struct um_client *c;
	char *buf, go;

	alarm(harness_scaled_s(30));
	buf = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(buf != MAP_FAILED, "owner mmap: %m");
	memset(buf, 'o', NPAGES * PAGE);
	CHECK(um_connect(NULL, 0, &c) == 0, "owner connect");
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0, "owner insert");
	m.interval_id = um_interval_id(iv);
	CHECK(write(report_fd, &m, sizeof(m)) == sizeof(m), "owner report: %m");
	CHECK(read(go_fd, &go, 1) == 1, "owner go: %m");
	buf[PAGE] = 'x'; /* blocks: the subscriber's callback holds the ack */
	_exit(0);
}

struct waiter {
	struct um_range *range;
	int ret;
	uint64_t t_end;
	sem_t started;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	sem_post(&w->started);
	w->ret = um_range_wait_until_valid(w->range, 10000);
	w->t_end = harness_now_ms();
	return NULL;
}

int main(void)
{
	int report, go, status;
	struct hello_msg m;
	struct um_client *c;
	struct um_interval *iv;
	uint64_t pfns[NPAGES], seq, t_kill;
	struct um_range r = { .pfns = pfns };
	struct waiter w = { .range = &r };
	struct harness_gate g;
	pthread_t wt;
	pid_t owner;

	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	harness_start("test_owner_exit", NULL);
	harness_gate_init(&g, 10000);
	sem_init(&w.started, 0, 0);
	owner = harness_fork(owner_main, &go, &report);
	CHECK(read(report, &m, sizeof(m)) == sizeof(m), "owner reported its interval");
	CHECK(m.pid == owner && m.interval_id != 0, "owner pid %d id %llu", m.pid,
	      (unsigned long long)m.interval_id);

	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	CHECK(um_interval_subscribe(c, owner, m.interval_id, 0, &harness_gate_ops, &g, &iv) == 0,
	      "subscribe");
	r.start = um_interval_start(iv);
	r.end = r.start + um_interval_length(iv);
	CHECK(um_interval_length(iv) == NPAGES * PAGE, "subscribed length");
	CHECK(um_range_register(&r, iv) == 0, "register");
	CHECK(um_interval_read_begin(iv, &seq) == 0 && !(seq & 1), "valid before the write");

	/* the owner writes; our callback blocks, so its seq stays odd */
	CHECK(write(go, "g", 1) == 1, "go: %m");
	CHECK(harness_sem_wait_ms(&g.entered, 5000), "invalidation reached the subscriber");
	CHECK(um_interval_read_retry(iv, seq), "read_retry true during the invalidation");
	CHECK(pthread_create(&wt, NULL, waiter_main, &w) == 0, "pthread_create");
	sem_wait(&w.started);
	/* bounded check that the waiter is really waiting (nothing to signal on) */
	usleep(100000);
	CHECK(w.t_end == 0, "waiter waits while the sequence is odd");

	t_kill = harness_now_ms();
	CHECK(kill(owner, SIGKILL) == 0, "kill owner: %m");
	CHECK(waitpid(owner, &status, 0) == owner && WIFSIGNALED(status) &&
		      WTERMSIG(status) == SIGKILL,
	      "owner died of SIGKILL (status 0x%x)", status);
	pthread_join(wt, NULL);
	CHECK(w.ret == -EFAULT, "waiter returned %d, want -EFAULT", w.ret);
	CHECK(w.t_end - t_kill < 2000, "waiter woke %llu ms after the kill",
	      (unsigned long long)(w.t_end - t_kill));
	CHECK(um_interval_read_begin(iv, &seq) == -EFAULT, "read_begin on a dead owner: -EFAULT");
	CHECK(um_interval_read_retry(iv, seq), "read_retry true on a dead owner");
	CHECK(um_range_wait_until_valid(&r, 100) == -EFAULT, "wait on a dead owner: -EFAULT");

	/* let the stuck callback finish; the release comes after it */
	sem_post(&g.go);
	CHECK(harness_sem_wait_ms(&g.released, 5000), "release callback ran");
	CHECK(atomic_load(&g.release_error) == -EFAULT, "release error %d, want -EFAULT",
	      atomic_load(&g.release_error));
	CHECK(!harness_sem_wait_ms(&g.released, 200) && atomic_load(&g.nrel) == 1,
	      "release ran exactly once");
	CHECK(atomic_load(&g.ninv) == 1, "%u invalidations, want 1", atomic_load(&g.ninv));
	CHECK(um_ping(c) == 0, "the subscriber's connection survives the owner");
	CHECK(um_range_snapshot(&r) == -EFAULT, "snapshot of a dead interval: -EFAULT");

	um_range_unregister(&r);
	um_interval_remove(iv);
	um_disconnect(c);
	return harness_summary();
}
