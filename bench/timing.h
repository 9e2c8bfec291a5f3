/* SPDX-License-Identifier: MIT */
/*
 * timing.h - the benchmark's only clock and its only statistic.
 *
 * Every figure umirror-bench prints is a median of per-run values measured
 * with CLOCK_MONOTONIC, so one noisy neighbour on the shared machine moves
 * a single run, not the result.
 */
#ifndef UMIRROR_BENCH_TIMING_H
#define UMIRROR_BENCH_TIMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * bench_now_ns() - CLOCK_MONOTONIC in nanoseconds.
 *
 * Waits for nothing, holds nothing.
 * Return: the time; the clock cannot fail on Linux with a valid clock id.
 */
uint64_t bench_now_ns(void);

/**
 * bench_median() - median of @n samples (mean of the middle two if @n is even).
 * @v: samples; reordered in place (sorted)
 * @n: number of samples
 *
 * Return: the median, or NAN when @n is 0.
 */
double bench_median(double *v, size_t n);

/**
 * bench_percentile() - the @p-th percentile (0..100) of @n samples, by
 * nearest rank.
 * @v: samples; sorted in place
 * @n: number of samples
 *
 * Return: the sample, or NAN when @n is 0.
 */
double bench_percentile(double *v, size_t n, double p);

/**
 * struct bench_step - one timed operation of a benchmark.
 * @name: what failed, for the report (unless @once names it more exactly)
 * @once: run the operation once (a lighter load when @warm_up, if it
 *	likes), store its figure in *@out, check its result; may point
 *	*@what at a more exact reason; return 0 or -errno
 */
struct bench_step {
	const char *name;
	int (*once)(void *ctx, bool warm_up, double *out, const char **what);
};

/**
 * struct bench_plan - what bench_interleave() runs.
 * @steps: the operations, in the order of each round (baseline first)
 * @nsteps: how many
 * @check: called after the warm-up round and after the last round, or
 *	NULL; returns 0 or -errno and then points *@what at the reason
 */
struct bench_plan {
	const struct bench_step *steps;
	size_t nsteps;
	int (*check)(void *ctx, const char **what);
};

/**
 * bench_interleave() - measure the steps of @p side by side.
 * @p: the steps
 * @ctx: passed to every step and to the check
 * @runs: timed rounds (at least 1)
 * @medians: receives @p->nsteps medians, one per step, in @p's order
 * @what: points at the name of what failed, on failure
 *
 * Runs one untimed warm-up round (page in code, fill caches, reach a
 * steady state), then @runs rounds of every step in turn (A B A B ...),
 * so that a noisy neighbour hits all steps alike. Waits for whatever the
 * steps wait for; holds nothing on return.
 * Return: 0, or the first failure's -errno (nothing run after it).
 */
int bench_interleave(const struct bench_plan *p, void *ctx, unsigned int runs, double *medians,
		     const char **what);

#endif /* UMIRROR_BENCH_TIMING_H */
