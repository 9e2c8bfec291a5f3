/* SPDX-License-Identifier: MIT */
/*
 * sd_notify.h - the systemd notification protocol (Type=notify), by hand.
 *
 * The protocol is one datagram of "KEY=VALUE\n" lines to the AF_UNIX
 * socket named by $NOTIFY_SOCKET (a path, or '@' for the abstract
 * namespace). Linking libsystemd for that would be the only reason to
 * link it. Without $NOTIFY_SOCKET every function here does nothing.
 */
#ifndef UMD_SD_NOTIFY_H
#define UMD_SD_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct server;

/**
 * sd_env_u64() - a decimal unsigned variable the service manager set
 * ($LISTEN_PID, $LISTEN_FDS, $WATCHDOG_USEC, $WATCHDOG_PID).
 * @name: variable
 * @out: its value (0 unless 0 is returned)
 *
 * Return: 0; -ENOENT unset or empty; -EINVAL not a plain decimal number.
 * Waits for nothing, holds nothing.
 */
int sd_env_u64(const char *name, uint64_t *out);

/**
 * notify_init() - read $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID,
 * and open the datagram socket every later message goes out on (so that
 * nothing after start-up, when the sandbox forbids socket(2), needs one).
 *
 * Return: 0 (also when there is no $NOTIFY_SOCKET), or -errno when it is
 * set but unusable (too long, or no socket could be made). Logs why.
 */
int notify_init(void);

/**
 * notify_send() - send @msg ("KEY=VALUE" lines) as one datagram.
 * Never blocks (MSG_DONTWAIT): a service manager that does not read is
 * not worth stalling the page-fault path for.
 * Return: 0, -ENOTCONN when notifications are off, or -errno of sendto().
 */
int notify_send(const char *msg);

/**
 * notify_ready() - READY=1 with a STATUS= line naming @listen_desc, then
 * start the loop's watchdog and status timers on @s->loop.
 * @s: the running server (its counters feed STATUS=)
 * @listen_desc: where the daemon listens, for the status line
 *
 * The watchdog timer pings WATCHDOG=1 at half of $WATCHDOG_USEC, when
 * that is set and $WATCHDOG_PID is unset or names this process. The
 * status timer sends "STATUS=N clients, M intervals" at most once a
 * second and only when a number changed. Both timers are unref'd: they
 * never keep the loop alive.
 */
void notify_ready(struct server *s, const char *listen_desc);

/**
 * notify_stopping() - STOPPING=1, stop and close the timers, close the
 * notification socket. Call once, when shutdown begins; the loop finishes
 * closing the timers.
 */
void notify_stopping(void);

/**
 * notify_watchdog_usec() - the watchdog interval asked for, 0 if none
 * (or it is meant for another process). Valid after notify_init().
 */
uint64_t notify_watchdog_usec(void);

#endif /* UMD_SD_NOTIFY_H */
