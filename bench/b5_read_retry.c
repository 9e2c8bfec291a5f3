// SPDX-License-Identifier: MIT
/*
 * B5: what the shared sequence word saves.
 *
 * umirror: um_interval_read_retry(), the check a mirror makes before it
 * uses a snapshot: one acquire load from the read-only shared seq area.
 * Baseline: the cheapest question one could ask the daemon instead, a
 * um_ping() request/reply round trip over the socket.
 * Ratio = ping / read_retry (higher is better); the point of the seq area
 * is that it is >= 1000 times cheaper.
 *
 * Checks: every read_retry says "still valid" on an interval nobody
 * writes (a dead or broken interval answers true), every ping succeeds.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"
#include "timing.h"

struct b5 {
	struct um_client *c;
	struct um_interval *iv;
	uint64_t seq;	      /* the untouched interval's sequence */
	unsigned int retries; /* read_retry calls per run */
	unsigned int pings;   /* um_ping calls per run */
};

/* The warm-up makes a tenth of the calls of a timed run. */
static int retry_once(void *ctx, bool warm_up, double *ns, const char **what)
{
	struct b5 *b = ctx;
	unsigned int i, stale = 0, calls = warm_up ? b->retries / 10 : b->retries;
	uint64_t t0;

	t0 = bench_now_ns();
	for (i = 0; i < calls; i++)
		stale += um_interval_read_retry(b->iv, b->seq);
	*ns = (double)(bench_now_ns() - t0) / calls;
	return stale ? -EBADMSG : 0;
}

static int ping_once(void *ctx, bool warm_up, double *ns, const char **what)
{
	struct b5 *b = ctx;
	unsigned int i, calls = warm_up ? b->pings / 10 : b->pings;
	uint64_t t0;
	int ret;

	t0 = bench_now_ns();
	for (i = 0; i < calls; i++) {
		ret = um_ping(b->c);
		if (ret < 0)
			return ret;
	}
	*ns = (double)(bench_now_ns() - t0) / calls;
	return 0;
}

/* the medians come out in this order */
enum { B5_PING, B5_RETRY, B5_NSTEPS };

static const struct bench_step b5_steps[B5_NSTEPS] = {
	[B5_PING] = { "um_ping", ping_once },
	[B5_RETRY] = { "um_interval_read_retry said retry on an untouched interval", retry_once },
};

static const struct bench_plan b5_plan = { b5_steps, B5_NSTEPS, NULL };

int bench_b5_read_retry(struct um_client *c, const struct bench_opts *o)
{
	struct b5 b = { .c = c, .retries = 1000000, .pings = o->quick ? 1000 : 4000 };
	unsigned int runs = bench_runs(o);
	const char *what = "setup";
	double med[B5_NSTEPS];
	uint8_t *mem = NULL;
	int ret;

	mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		mem = NULL;
		ret = -errno;
		goto fail;
	}
	memset(mem, 1, 4096);
	what = "um_interval_insert";
	ret = um_interval_insert(c, mem, 4096, 0, NULL, NULL, &b.iv);
	if (ret < 0)
		goto fail;
	what = "um_interval_read_begin";
	ret = um_interval_read_begin(b.iv, &b.seq);
	if (ret < 0)
		goto fail;
	ret = bench_interleave(&b5_plan, &b, runs, med, &what);
	if (ret < 0)
		goto fail;
	bench_report(&(struct bench_result){
		.bench = "B5_read_retry",
		.unit = "ns",
		.value = med[B5_RETRY],
		.baseline = med[B5_PING],
		.baseline_name = "um_ping socket round trip to umirrord",
		.higher_is_better = true,
		.target = 1000,
		.goal = NAN,
		.runs = runs,
		.note = "per call; ratio = ping / read_retry",
	});
	ret = 0;
	goto out;
fail:
	bench_fail("B5_read_retry", ret == -EBADMSG ? 0 : ret, "%s", what);
out:
	if (b.iv)
		um_interval_remove(b.iv);
	if (mem)
		munmap(mem, 4096);
	return ret;
}
