/* SPDX-License-Identifier: MIT */
/*
 * harness.h - shared scaffolding of the integration tests: a real umirrord
 * on a private socket, a watchdog, pagemap ground truth and CHECK().
 *
 * Every test binary calls harness_start() first and ends with
 * "return harness_summary();". The daemon is killed and reaped at exit
 * (normal or fatal signal) by the process that started it, never by a
 * forked child.
 */
#ifndef UMIRROR_IT_HARNESS_H
#define UMIRROR_IT_HARNESS_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "uapi_compat.h"
#include "um_page.h"
#include "umirror.h"

#define PAGE ((unsigned long)UMP_PAGE_SIZE)
#define SKIP 77

/*
 * The pagemap bits (PM_*) come from uapi_compat.h. PM_SOFT_DIRTY is set on
 * every page of a new VMA (VM_SOFTDIRTY), never-touched ones included, on
 * kernels built with CONFIG_MEM_SOFT_DIRTY (Debian's): "nothing mapped" is
 * harness_pagemap() & ~PM_SOFT_DIRTY == 0.
 */

/**
 * CHECK() - assert @cond; on failure print file:line, the condition and
 * the printf-style message, then exit(1) (which stops the daemon).
 * Counts passed checks for harness_summary().
 */
#define CHECK(cond, fmt, ...)                                                        \
	do {                                                                         \
		if (!(cond))                                                         \
			harness_fail(__FILE__, __LINE__, #cond, fmt, ##__VA_ARGS__); \
		harness_pass();                                                      \
	} while (0)

/**
 * harness_start() - start umirrord on a private socket and arm the watchdog.
 * @name: test name, for messages
 * @extra_args: NULL-terminated extra daemon arguments, or NULL
 *
 * Creates a temp dir (mkdtemp under /tmp), runs the daemon with
 * --socket DIR/umirrord.sock, waits (at most 5 s) until it accepts a
 * connection, sets $UMIRROR_SOCKET, installs the exit/signal cleanup and
 * alarm(60). Both bounds are multiplied by harness_scaled_s(). Exits 1 if
 * the daemon does not come up.
 */
void harness_start(const char *name, const char *const *extra_args);

/**
 * harness_scaled_s() - @s seconds times $UMIRROR_TEST_TIMEOUT_SCALE (a
 * number >= 1; unset or invalid: 1), for watchdogs and give-up bounds, not
 * for what a test asserts. The kernel matrix sets it inside its VMs, where
 * TCG runs everything 10-20x slower (tests/kernels/run-kernel.sh).
 */
unsigned int harness_scaled_s(unsigned int s);

/** harness_dir() - the test's private temp dir (removed at exit). */
const char *harness_dir(void);

/**
 * harness_path() - DIR/@name in the test's temp dir, remembered so that it
 * is removed at exit even after a fatal signal. At most 8 per test.
 */
const char *harness_path(const char *name);

/** harness_socket() - the daemon's socket path. */
const char *harness_socket(void);

/** harness_daemon_pid() - pid of the running daemon, or 0. */
pid_t harness_daemon_pid(void);

/**
 * harness_kill_daemon() - send @sig to the daemon and reap it.
 * Waits for: the daemon to exit (at most 5 s, then SIGKILL).
 * Return: the wait status.
 */
int harness_kill_daemon(int sig);

/**
 * harness_restart_daemon() - kill (SIGKILL) the daemon if it runs, start
 * a new one on the same socket and wait until it accepts connections.
 */
void harness_restart_daemon(void);

/**
 * harness_pagemap() - this process's /proc/self/pagemap entry for @addr.
 * Exits 1 if pagemap cannot be read.
 */
uint64_t harness_pagemap(const void *addr);

/* One entry of another process's /proc/PID/pagemap; fails the test on error. */
uint64_t harness_pagemap_of(pid_t pid, uint64_t addr);

/* Whether transparent huge pages can be had here (THP not "[never]"). */
bool harness_thp_possible(void);

/** harness_now_ms() - CLOCK_MONOTONIC in milliseconds. */
uint64_t harness_now_ms(void);

/**
 * harness_map_anon() - @npages of private anonymous memory with @prot, kept
 * at 4 KiB pages (MADV_NOHUGEPAGE: a huge zero page is not "the" zero
 * page). CHECK-fails on error.
 */
void *harness_map_anon(size_t npages, int prot);

/**
 * harness_zero_pfn() - the zero page's PFN, found by reading two fresh
 * pages and asking pagemap (CHECK-fails unless both show one shared,
 * non-exclusive PFN).
 */
uint64_t harness_zero_pfn(void);

/**
 * harness_kfeatures() - the UM_FEAT_* bits the test's daemon uses (its
 * status over @c): what a test may expect depends on them, e.g. without
 * UM_FEAT_WP_UNPOPULATED never-touched pages are read-faulted to the zero
 * page at insert. CHECK-fails if the status cannot be read.
 */
uint64_t harness_kfeatures(struct um_client *c);

/**
 * harness_snapshot() - um_range_snapshot(@range), retried after
 * wait_until_valid while it says -EAGAIN (at most 5 times).
 * Return: the last um_range_snapshot() result.
 */
long harness_snapshot(struct um_range *range);

/*
 * um_interval_read_begin() until the seq is even, retrying its
 * -ETIMEDOUT up to ten times: an invalidation watched for late zaps may
 * complete after UM_DEFAULT_TIMEOUT_MS on a loaded or emulated machine,
 * which is no error. Returns read_begin's last result.
 */
int harness_wait_even(struct um_interval *iv, uint64_t *seq);

/**
 * harness_sem_wait_ms() - sem_timedwait() for at most @ms milliseconds.
 * Return: true if the semaphore was taken, false on timeout.
 */
bool harness_sem_wait_ms(sem_t *sem, unsigned int ms);

/**
 * struct harness_gate - interval callbacks that hold the event thread.
 * @entered: posted when an invalidate callback begins
 * @go: the invalidate callback waits on it, at most @hold_ms
 * @released: posted when the release callback ran
 * @hold_ms: longest the invalidate callback waits for @go; with nobody
 *	posting @go it is how long the callback takes
 * @ninv, @nrel: callbacks so far
 * @release_error: the error the release callback was given
 * @done: false while an invalidate callback runs, true once it returned
 *
 * While the callback waits, a synchronous interval's invalidation stays
 * unacknowledged: the writer is held and the sequence stays odd.
 * Use with harness_gate_ops and the gate as the interval's priv.
 */
struct harness_gate {
	sem_t entered, go, released;
	atomic_uint hold_ms;
	atomic_uint ninv, nrel;
	atomic_int release_error;
	atomic_bool done;
};

/** harness_gate_ops - invalidate and release callbacks of a struct harness_gate (priv). */
extern const struct um_interval_ops harness_gate_ops;

/** harness_gate_init() - empty semaphores and counters; callbacks hold @hold_ms at most. */
void harness_gate_init(struct harness_gate *g, unsigned int hold_ms);

/**
 * struct harness_writer - a thread that writes @len bytes of @byte at @addr
 * (held in the write fault while an invalidation is unacknowledged), then
 * posts @done.
 */
struct harness_writer {
	pthread_t thread;
	char *addr;
	size_t len;
	char byte;
	sem_t done;
};

/**
 * harness_writer_start() - start @w writing @len bytes of @byte at @addr.
 * Returns at once (exits 1 if the thread cannot be created); the write
 * may be held in its fault for as long as the invalidation lasts.
 */
void harness_writer_start(struct harness_writer *w, void *addr, size_t len, char byte);

/**
 * harness_writer_join() - wait for @w's thread to finish (unbounded: the
 * watchdog covers a hang) and release its semaphore.
 */
void harness_writer_join(struct harness_writer *w);

/**
 * harness_fork() - fork a child talking to this process over two pipes.
 * @child_main: runs in the child with the read end of one pipe and the
 *	write end of the other; must end with _exit(), never return
 * @to_child: receives this process's write end (the child's @in_fd)
 * @from_child: receives this process's read end (the child's @out_fd)
 *
 * The child inherits the daemon but never stops it (see harness_start()).
 * Exits 1 if a pipe or the fork fails.
 * Return: the child's pid, for waitpid() or kill().
 */
pid_t harness_fork(void (*child_main)(int in_fd, int out_fd), int *to_child, int *from_child);

/** harness_skip() - print @why and exit 77 (the kernel lacks something). */
void harness_skip(const char *why) __attribute__((noreturn));

/**
 * harness_summary() - stop the daemon with SIGTERM, check that it exits 0
 * and removed its socket, print "<name>: PASS (N checks)".
 * Return: 0 (failures exit earlier).
 */
int harness_summary(void);

void harness_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 4, 5)));
void harness_pass(void);

#endif /* UMIRROR_IT_HARNESS_H */
