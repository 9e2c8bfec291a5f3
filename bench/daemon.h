/* SPDX-License-Identifier: MIT */
/*
 * daemon.h - a private umirrord for one benchmark run.
 *
 * The benchmark must not disturb (or be disturbed by) a system daemon, so
 * by default it starts the umirrord it was built with on a socket in a
 * fresh directory under /tmp and stops it at exit. The daemon's stderr goes
 * to a log file in that directory, printed if start-up fails.
 */
#ifndef UMIRROR_BENCH_DAEMON_H
#define UMIRROR_BENCH_DAEMON_H

#include <limits.h>
#include <sys/types.h>

struct bench_daemon {
	pid_t pid;	       /* 0 when not running */
	char dir[64];	       /* mkdtemp directory, "" when none */
	char socket[PATH_MAX]; /* dir/umirrord.sock */
	char log[PATH_MAX];    /* dir/umirrord.log */
};

/**
 * bench_daemon_start() - start @exe on a private socket and wait until it
 * accepts connections.
 * @d: zeroed by the caller; filled on success and on failure (so that
 *     bench_daemon_stop() cleans up either way)
 * @exe: path of umirrord
 * @timeout_ms: how long to wait for the socket to accept a connection
 *
 * The child gets PR_SET_PDEATHSIG(SIGTERM) so it cannot outlive the
 * benchmark even if the benchmark is killed.
 *
 * Waits for: the daemon's socket, up to @timeout_ms. Holds: nothing.
 * Return: 0; -errno from mkdtemp/fork; -ECHILD the daemon exited;
 * -ETIMEDOUT it never accepted.
 */
int bench_daemon_start(struct bench_daemon *d, const char *exe, int timeout_ms);

/**
 * bench_daemon_print_log() - copy the daemon's log to stderr (on failure).
 * @d: a started (or failed) daemon
 */
void bench_daemon_print_log(const struct bench_daemon *d);

/**
 * bench_daemon_stop() - SIGTERM the daemon, reap it, remove the directory.
 * @d: as filled by bench_daemon_start(); a no-op on a zeroed one
 *
 * Waits for: the daemon to exit, up to 2 s, then SIGKILLs it.
 * Return: the daemon's exit status (0 clean), or -1 when it had to be
 * killed or died of a signal.
 */
int bench_daemon_stop(struct bench_daemon *d);

#endif /* UMIRROR_BENCH_DAEMON_H */
