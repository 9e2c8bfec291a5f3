// SPDX-License-Identifier: MIT
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "timing.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
	if (n == 0)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	if (n % 2)
		return v[n / 2];
	return (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

double bench_percentile(double *v, size_t n, double p)
{
	size_t k;

	if (n == 0)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	k = (size_t)ceil(p / 100.0 * (double)n);
	return v[k ? k - 1 : 0];
}

/* One round of every step; step k's figure goes to out[k * stride]. */
static int round_once(const struct bench_plan *p, void *ctx, bool warm_up, double *out,
		      size_t stride, const char **what)
{
	int ret;

	for (size_t k = 0; k < p->nsteps; k++) {
		*what = p->steps[k].name;
		ret = p->steps[k].once(ctx, warm_up, &out[k * stride], what);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int check(const struct bench_plan *p, void *ctx, const char **what)
{
	return p->check ? p->check(ctx, what) : 0;
}

int bench_interleave(const struct bench_plan *p, void *ctx, unsigned int runs, double *medians,
		     const char **what)
{
	double *v = calloc(p->nsteps * runs, sizeof(*v));
	unsigned int i;
	int ret;

	*what = "setup";
	if (!v)
		return -ENOMEM;
	/* the warm-up's figures land in round 0's places and are overwritten */
	ret = round_once(p, ctx, true, v, runs, what);
	if (ret == 0)
		ret = check(p, ctx, what);
	for (i = 0; ret == 0 && i < runs; i++)
		ret = round_once(p, ctx, false, v + i, runs, what);
	if (ret == 0)
		ret = check(p, ctx, what);
	if (ret == 0)
		for (size_t k = 0; k < p->nsteps; k++)
			medians[k] = bench_median(v + k * runs, runs);
	free(v);
	return ret;
}
