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

#endif /* UMIRROR_BENCH_TIMING_H */
