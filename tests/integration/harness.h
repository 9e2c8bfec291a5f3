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

#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PAGE 4096ul
#define SKIP 77

/* pagemap bits (Documentation/admin-guide/mm/pagemap.rst) */
#define PM_PFN_MASK ((1ull << 55) - 1)
#define PM_EXCL (1ull << 56)
#define PM_UFFD_WP (1ull << 57)
#define PM_FILE (1ull << 61)
#define PM_SWAP (1ull << 62)
#define PM_PRESENT (1ull << 63)

/**
 * CHECK() - assert @cond; on failure print file:line, the condition and
 * the printf-style message, then exit(1) (which stops the daemon).
 * Counts passed checks for harness_summary().
 */
#define CHECK(cond, fmt, ...)                                                           \
	do {                                                                            \
		if (!(cond))                                                            \
			harness_fail(__FILE__, __LINE__, #cond, fmt, ##__VA_ARGS__);    \
		harness_pass();                                                         \
	} while (0)

/**
 * harness_start() - start umirrord on a private socket and arm the watchdog.
 * @name: test name, for messages
 * @extra_args: NULL-terminated extra daemon arguments, or NULL
 *
 * Creates a temp dir (mkdtemp under /tmp), runs the daemon with
 * --socket DIR/umirrord.sock, waits (at most 5 s) until it accepts a
 * connection, sets $UMIRROR_SOCKET, installs the exit/signal cleanup and
 * alarm(60). Exits 1 if the daemon does not come up.
 */
void harness_start(const char *name, const char *const *extra_args);

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

/** harness_now_ms() - CLOCK_MONOTONIC in milliseconds. */
uint64_t harness_now_ms(void);

/**
 * harness_sem_wait_ms() - sem_timedwait() for at most @ms milliseconds.
 * Return: true if the semaphore was taken, false on timeout.
 */
bool harness_sem_wait_ms(sem_t *sem, unsigned int ms);

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
