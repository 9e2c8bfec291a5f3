/* SPDX-License-Identifier: MIT */
/*
 * sandbox.h - the seccomp allow-list the daemon runs under once started.
 *
 * Everything that needs a wider set of system calls (binding the socket,
 * probing the kernel, opening /dev/null and /proc/kpageflags, the
 * notification socket, installing signal handlers) happens before
 * sandbox_install(); from then on only the calls a running daemon makes
 * are allowed, and any other one kills the whole process (SIGSYS).
 */
#ifndef UMD_SANDBOX_H
#define UMD_SANDBOX_H

#define SANDBOX_SELFTEST_ENV "UMIRRORD_SANDBOX_SELFTEST"

/**
 * sandbox_install() - load the allow-list filter into every thread of the
 * process (sets no_new_privs; the daemon never executes anything).
 *
 * Return: 0, or -errno from libseccomp (nothing is installed then). Logs
 * the reason.
 */
int sandbox_install(void);

/**
 * sandbox_selftest() - when $UMIRRORD_SANDBOX_SELFTEST is "1", make one
 * forbidden call, socket(AF_INET); under the filter it never returns
 * (the kernel kills the process with SIGSYS).
 *
 * The trigger is harmless to leave in release builds: whoever sets the
 * daemon's environment can kill it anyway.
 *
 * Return: 0 when no self-test was asked for; -EPERM when it was and the
 * forbidden call came back (no filter is in force). Logs that.
 */
int sandbox_selftest(void);

#endif /* UMD_SANDBOX_H */
