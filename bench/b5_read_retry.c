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

static int retry_once(struct um_interval *iv, uint64_t seq, unsigned int calls, double *ns)
{
	unsigned int i, stale = 0;
	uint64_t t0;

	t0 = bench_now_ns();
	for (i = 0; i < calls; i++)
		stale += um_interval_read_retry(iv, seq);
	*ns = (double)(bench_now_ns() - t0) / calls;
	return stale ? -EBADMSG : 0;
}

static int ping_once(struct um_client *c, unsigned int calls, double *ns)
{
	unsigned int i;
	uint64_t t0;
	int ret;

	t0 = bench_now_ns();
	for (i = 0; i < calls; i++) {
		ret = um_ping(c);
		if (ret < 0)
			return ret;
	}
	*ns = (double)(bench_now_ns() - t0) / calls;
	return 0;
}

int bench_b5_read_retry(struct um_client *c, const struct bench_opts *o)
{
	unsigned int runs = o->runs ? o->runs : o->quick ? 7 : 31, i;
	const unsigned int retries = 1000000, pings = o->quick ? 1000 : 4000;
	double *base = calloc(runs, sizeof(double)), *rr = calloc(runs, sizeof(double));
	struct um_interval *iv = NULL;
	const char *what = "setup";
	uint8_t *mem = NULL;
	uint64_t seq = 0;
	double warm;
	int ret = -ENOMEM;

	if (!base || !rr)
		goto fail;
	mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		mem = NULL;
		ret = -errno;
		goto fail;
	}
	memset(mem, 1, 4096);
	what = "um_interval_insert";
	ret = um_interval_insert(c, mem, 4096, 0, NULL, NULL, &iv);
	if (ret < 0)
		goto fail;
	what = "um_interval_read_begin";
	ret = um_interval_read_begin(iv, &seq);
	if (ret < 0)
		goto fail;

	what = "warm-up";
	if ((ret = ping_once(c, pings / 10, &warm)) < 0 ||
	    (ret = retry_once(iv, seq, retries / 10, &warm)) < 0)
		goto fail;
	for (i = 0; i < runs; i++) {
		what = "um_ping";
		if ((ret = ping_once(c, pings, &base[i])) < 0)
			goto fail;
		what = "um_interval_read_retry said retry on an untouched interval";
		if ((ret = retry_once(iv, seq, retries, &rr[i])) < 0)
			goto fail;
	}
	bench_report(&(struct bench_result){
		.bench = "B5_read_retry",
		.unit = "ns",
		.value = bench_median(rr, runs),
		.baseline = bench_median(base, runs),
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
	if (iv)
		um_interval_remove(iv);
	if (mem)
		munmap(mem, 4096);
	free(base);
	free(rr);
	return ret;
}
