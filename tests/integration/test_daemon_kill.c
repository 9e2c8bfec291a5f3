/* SPDX-License-Identifier: MIT */
/*
 * test_daemon_kill - the daemon dies while this process's writer is held in
 * a write fault (our invalidate callback blocks, so no ack is sent): the
 * writer resumes and its write lands (we closed our uffd copy, the daemon's
 * was the last), the library reports the disconnection (release(-ENOTCONN),
 * requests -ENOTCONN, read_begin -EFAULT), and a restarted daemon serves a
 * new connection. The watchdog turns any hang into a failure.
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

int main(void)
{
	uint64_t pfns[NPAGES], seq;
	struct um_range r = { .pfns = pfns };
	struct um_interval *iv, *iv2;
	struct um_client *c, *c2;
	struct harness_writer w;
	struct harness_gate g;
	char *buf;
	int status;

	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	harness_start("test_daemon_kill", NULL);
	harness_gate_init(&g, 10000);

	buf = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(buf != MAP_FAILED, "mmap: %m");
	memset(buf, 'a', NPAGES * PAGE);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, &harness_gate_ops, &g, &iv) == 0,
	      "insert");
	r.start = (uintptr_t)buf;
	r.end = r.start + NPAGES * PAGE;
	CHECK(um_range_register(&r, iv) == 0, "register");

	harness_writer_start(&w, buf + PAGE, PAGE, 'W');
	CHECK(harness_sem_wait_ms(&g.entered, 5000), "invalidate callback started");
	CHECK(!harness_sem_wait_ms(&w.done, 200), "writer is held in its write fault");

	status = harness_kill_daemon(SIGKILL);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "daemon killed (0x%x)", status);
	CHECK(harness_sem_wait_ms(&w.done, 5000), "writer resumed after the daemon died");
	harness_writer_join(&w);
	{
		size_t i = 0;

		while (i < PAGE && buf[PAGE + i] == 'W')
			i++;
		CHECK(i == PAGE, "the whole write landed (first difference at byte %zu)", i);
	}
	CHECK(buf[0] == 'a' && buf[2 * PAGE] == 'a', "other data intact");
	buf[3 * PAGE] = 'z'; /* nothing protects the memory any more */
	CHECK(buf[3 * PAGE] == 'z', "later writes do not block");

	/* the event thread is still in our callback; let it see the EOF */
	sem_post(&g.go);
	CHECK(harness_sem_wait_ms(&g.released, 5000), "release callback ran");
	CHECK(atomic_load(&g.release_error) == -ENOTCONN, "release error %d, want -ENOTCONN",
	      atomic_load(&g.release_error));
	CHECK(!harness_sem_wait_ms(&g.released, 200) && atomic_load(&g.nrel) == 1,
	      "release ran exactly once");
	CHECK(um_ping(c) == -ENOTCONN, "ping after the daemon died: -ENOTCONN");
	{
		struct um_status st = UM_STATUS_INIT;

		CHECK(um_status(c, &st) == -ENOTCONN, "status: -ENOTCONN");
	}
	CHECK(um_interval_read_begin(iv, &seq) == -EFAULT, "read_begin: -EFAULT");
	CHECK(um_interval_read_retry(iv, 0), "read_retry true");
	CHECK(um_range_wait_until_valid(&r, 100) == -EFAULT, "wait_until_valid: -EFAULT");
	CHECK(um_range_snapshot(&r) < 0, "snapshot fails");
	CHECK(um_interval_insert(c, buf, PAGE, 0, NULL, NULL, &iv2) == -ENOTCONN,
	      "insert: -ENOTCONN");
	um_range_unregister(&r);
	{
		int ret = um_interval_remove(iv);

		CHECK(ret == 0 || ret == -ENOTCONN, "remove of a dead interval: %d", ret);
	}
	um_disconnect(c);

	/* a fresh daemon serves this process again */
	harness_restart_daemon();
	CHECK(um_connect(NULL, 0, &c2) == 0, "connect to the restarted daemon");
	CHECK(um_interval_insert(c2, buf, NPAGES * PAGE, 0, NULL, NULL, &iv2) == 0,
	      "insert again after the restart");
	buf[2 * PAGE] = 'b';
	CHECK(um_interval_read_begin(iv2, &seq) == 0 && seq == 2, "one invalidation: seq %llu",
	      (unsigned long long)seq);
	CHECK(um_interval_remove(iv2) == 0, "remove");
	um_disconnect(c2);
	munmap(buf, NPAGES * PAGE);
	return harness_summary();
}
