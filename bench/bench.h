/* SPDX-License-Identifier: MIT */
/*
 * bench.h - what every umirror benchmark gets and gives back.
 *
 * A benchmark measures one operation of umirror ("value") and a baseline
 * that does the same job without umirror, in the same process, interleaved
 * run by run (A B A B ...) so that a noisy neighbour on the shared machine
 * hits both alike. It checks every result it times (a snapshot that misses
 * pages, a write that produced no invalidation) and fails instead of
 * reporting a broken path as fast. Results go out through bench_report().
 */
#ifndef UMIRROR_BENCH_BENCH_H
#define UMIRROR_BENCH_BENCH_H

#include <stdbool.h>

#include <umirror.h>

struct bench_opts {
	bool quick;	    /* fewer repetitions: the whole run under a minute */
	unsigned int runs;  /* 0: the benchmark's default for quick / full */
	unsigned int load;  /* B2: load clients (--load N, default 64) */
	const char *socket; /* the daemon's socket (B2 and B7 connect more clients) */
};

/** bench_runs() - pairs to measure: --runs if given, else 7 with --quick, 31 without. */
static inline unsigned int bench_runs(const struct bench_opts *o)
{
	return o->runs ? o->runs : o->quick ? 7 : 31;
}

struct bench_result {
	const char *bench;	   /* "B1_snapshot_1g" */
	const char *unit;	   /* "ms", "us", "ns" */
	double value;		   /* median of the umirror runs */
	double baseline;	   /* median of the baseline runs */
	const char *baseline_name; /* what the baseline does */
	bool higher_is_better;	   /* false: ratio = value / baseline;
				      true: ratio = baseline / value */
	double target;		   /* ratio to meet, NAN when none is set */
	double goal;		   /* ratio hoped for, NAN when none */
	unsigned int runs;	   /* pairs measured */
	const char *note;	   /* extra context for the reader, or NULL */
	double p99;		   /* latencies: 99th percentile of the umirror
				      samples (value is then their p50); 0: none */
	double baseline_p99;	   /* the same for the baseline; 0: none */
};

/**
 * bench_report() - print one result as a JSON object on one line (stdout).
 * @r: the result
 *
 * Fields: bench, value, unit, baseline, baseline_name, ratio, ratio_kind
 * ("lower_is_better": ratio = value / baseline; "higher_is_better": ratio
 * = baseline / value), target, goal, meets_target, runs, note. Absent
 * targets print as null.
 */
void bench_report(const struct bench_result *r);

/**
 * bench_fail() - print a failed benchmark as {"bench":..,"error":..} on
 * stdout and the reason on stderr.
 * @bench: the benchmark's name
 * @err: negative errno (or 0 when @why says it all)
 * @why: printf format for the reason
 */
void bench_fail(const char *bench, int err, const char *why, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * The benchmarks. Each uses the connected client @c (one connection for
 * the whole program: the daemon allows one attached address space per
 * process), reports its results with bench_report() and returns 0, or
 * reports with bench_fail() and returns a negative errno. Each waits for
 * the daemon round trips it measures and holds nothing on return: every
 * interval it inserted is removed and every mapping unmapped.
 */
int bench_b1_snapshot(struct um_client *c, const struct bench_opts *o);
int bench_b3_first_write(struct um_client *c, const struct bench_opts *o);
int bench_b4_dirty(struct um_client *c, const struct bench_opts *o);
int bench_b5_read_retry(struct um_client *c, const struct bench_opts *o);
int bench_b6_uring(struct um_client *c, const struct bench_opts *o);
int bench_b1s_sparse(struct um_client *c, const struct bench_opts *o);
int bench_b2_delivery(struct um_client *c, const struct bench_opts *o);
int bench_b7_scale(struct um_client *c, const struct bench_opts *o);
int bench_mem(struct um_client *c, const struct bench_opts *o);
/* B8 forks its own clients (plain and trap mode) and leaves @c alone */
int bench_b8_trap(struct um_client *c, const struct bench_opts *o);

/* --- helpers shared by B2, B7 and MEM (util.c) --- */

/**
 * bench_daemon_rss_kib() - VmRSS of @pid from /proc/PID/status, in KiB.
 * Waits for nothing. Return: KiB (> 0), or -errno.
 */
long bench_daemon_rss_kib(pid_t pid);

/** bench_proc_status_kib() - a "Field: N kB" line of /proc/PID/status, or -errno. */
long bench_proc_status_kib(pid_t pid, const char *field);

/**
 * bench_pin() - set the CPU affinity of every thread of @pid (0: this
 * process) to @cpu, or to all CPUs when @cpu < 0.
 * Return: 0 or -errno of the first thread that could not be set.
 */
int bench_pin(pid_t pid, int cpu);

/**
 * bench_proc_cpu_s() - user + system CPU time of process @pid (all its
 * threads) so far, in seconds, from /proc/PID/stat. Return: NAN on error.
 */
double bench_proc_cpu_s(pid_t pid);

/**
 * bench_proc_ctxsw() - voluntary + involuntary context switches of @pid's
 * main thread (/proc/PID/status). Return: the count or -errno.
 */
long bench_proc_ctxsw(pid_t pid);

/** bench_daemon_pid() - the daemon's pid as um_status() reports it, or -errno. */
pid_t bench_daemon_pid(struct um_client *c);

#endif /* UMIRROR_BENCH_BENCH_H */
