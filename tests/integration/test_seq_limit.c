/* SPDX-License-Identifier: MIT */
/*
 * test_seq_limit - umirrord --max-intervals-per-mm bounds one address
 * space's seq area: past it INSERT fails -ENOSPC; a removed interval's
 * slot is what the next insert gets (the area does not grow past the
 * bound). A forked child's copies (UM_INTERVAL_FOLLOW_FORK) come from the
 * child's own area, made by the same code: every one of the MAX live
 * intervals follows, so the copies fill the child's area to the bound;
 * every copy is handed over and invalidated by the child's writes.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX 4100 /* a second 4096-slot chunk, partly */

struct rec {
	_Atomic(struct um_interval *) child;
	atomic_uint n, child_n, child_odd;
};

static atomic_uint nfork;

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct rec *r = priv;

	if (iv == atomic_load(&r->child)) {
		if (inv->seq & 1)
			atomic_fetch_add(&r->child_odd, 1);
		atomic_fetch_add(&r->child_n, 1);
	} else {
		atomic_fetch_add(&r->n, 1);
	}
}

static void on_fork(struct um_interval *parent, struct um_interval *child, pid_t pid, void *priv)
{
	struct rec *r = priv;

	(void)parent;
	(void)pid;
	atomic_store(&r->child, child);
	atomic_fetch_add(&nfork, 1);
}

static void on_release(struct um_interval *iv, int error, void *priv)
{
	(void)iv;
	(void)error;
	(void)priv;
}

static const struct um_interval_ops ops = {
	.invalidate = on_invalidate,
	.release = on_release,
	.fork = on_fork,
};

static struct um_interval *iv[MAX + 1];
static struct rec rec[MAX + 1];

static int insert(struct um_client *c, char *buf, unsigned int k)
{
	return um_interval_insert(c, buf + (size_t)k * PAGE, PAGE, UM_INTERVAL_FOLLOW_FORK, &ops,
				  &rec[k], &iv[k]);
}

int main(void)
{
	static const char *const args[] = { "--max-intervals-per-mm", "4100", NULL };
	static const unsigned int written[] = { 0, 7, 4097, MAX };
	struct um_interval *extra = NULL;
	int to_child[2], from_child[2], status, ret;
	struct um_client *c;
	uint64_t seq[4];
	pid_t child;
	char *buf, ch;

	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	harness_start("test_seq_limit", args);
	alarm(harness_scaled_s(120));
	buf = harness_map_anon(MAX + 1, PROT_READ | PROT_WRITE);
	memset(buf, 'a', (size_t)(MAX + 1) * PAGE);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	for (unsigned int k = 0; k < MAX; k++) {
		ret = insert(c, buf, k);
		CHECK(ret == 0, "insert #%u of %u: %s", k, MAX, strerror(-ret));
	}
	ret = insert(c, buf, MAX);
	CHECK(ret == -ENOSPC, "insert past --max-intervals-per-mm: %s", strerror(-ret));
	ret = um_interval_insert(c, buf, PAGE, 0, &ops, &rec[MAX], &extra);
	CHECK(ret == -ENOSPC && !extra, "an overlapping one too: %s", strerror(-ret));

	/* freed slots are the only room left: the inserts must reuse them */
	CHECK(um_interval_remove(iv[7]) == 0 && um_interval_remove(iv[4098]) == 0, "remove two");
	CHECK(insert(c, buf, MAX) == 0, "insert into a freed slot");
	CHECK(insert(c, buf, 7) == 0, "insert into the other freed slot");
	ret = insert(c, buf, 4098);
	CHECK(ret == -ENOSPC, "full again: %s", strerror(-ret));
	iv[4098] = NULL;

	/* the child's copies, in its own area */
	CHECK(pipe(to_child) == 0 && pipe(from_child) == 0, "pipes: %m");
	child = fork();
	CHECK(child >= 0, "fork: %m");
	if (child == 0) {
		close(to_child[1]);
		close(from_child[0]);
		if (read(to_child[0], &ch, 1) != 1)
			_exit(2);
		for (unsigned int i = 0; i < sizeof(written) / sizeof(written[0]); i++)
			buf[(size_t)written[i] * PAGE] = 'c';
		ch = 'd';
		if (write(from_child[1], &ch, 1) != 1)
			_exit(3);
		/* stay until told: exiting would release the copies */
		if (read(to_child[0], &ch, 1) < 0)
			_exit(4);
		_exit(0);
	}
	close(to_child[0]);
	close(from_child[1]);
	for (unsigned int t = 0; atomic_load(&nfork) < MAX && t < harness_scaled_s(60) * 100; t++)
		usleep(10000);
	CHECK(atomic_load(&nfork) == MAX, "%u of %u copies handed over", atomic_load(&nfork), MAX);
	CHECK(um_ping(c) == 0, "the owner is still connected");
	for (unsigned int i = 0; i < 4; i++) {
		struct um_interval *civ = atomic_load(&rec[written[i]].child);

		CHECK(civ && harness_wait_even(civ, &seq[i]) == 0, "child copy of #%u: read_begin",
		      written[i]);
		atomic_store(&rec[written[i]].n, 0);
	}
	ch = 'w';
	CHECK(write(to_child[1], &ch, 1) == 1 && read(from_child[0], &ch, 1) == 1 && ch == 'd',
	      "the child wrote");
	for (unsigned int i = 0; i < 4; i++) {
		struct rec *r = &rec[written[i]];

		CHECK(atomic_load(&r->child_n) >= 1 && r->child_odd == r->child_n,
		      "child copy of #%u: %u callbacks (%u odd)", written[i], r->child_n,
		      r->child_odd);
		CHECK(um_interval_read_retry(atomic_load(&r->child), seq[i]),
		      "child copy of #%u: read_retry fails", written[i]);
		/* the parent's page was not written: its copy-on-write broke in the child */
		CHECK(atomic_load(&r->n) == 0, "parent's #%u not invalidated by the child",
		      written[i]);
	}
	/* removed before the child exits, so that no release is sent for them */
	for (unsigned int k = 0; k <= MAX; k++) {
		struct um_interval *civ = atomic_load(&rec[k].child);

		if (civ)
			CHECK(um_interval_remove(civ) == 0, "remove the child's #%u", k);
		if (iv[k])
			CHECK(um_interval_remove(iv[k]) == 0, "remove #%u", k);
	}
	close(to_child[1]);
	CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child exited cleanly (0x%x)", status);
	um_disconnect(c);
	return harness_summary();
}
