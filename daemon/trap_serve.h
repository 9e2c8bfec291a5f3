/* SPDX-License-Identifier: MIT */
/*
 * trap_serve.h - serving a trap-mode process's seccomp listener once that
 * process is gone (exited or exec'd): its children and the program it
 * exec'd keep the filter, and every trapped call of theirs would fail
 * with ENOSYS without a listener (see SEMANTICS.md, "Trap mode").
 *
 * One thread, started before the sandbox: SECCOMP_IOCTL_NOTIF_RECV blocks
 * even on an O_NONBLOCK listener when the notification vanished between
 * poll and receive (its task was killed), which the loop must never do.
 * The thread arms a per-thread timer around each receive, so a receive
 * that blocks is interrupted (EINTR) and the thread polls again; it drops
 * a listener once the filter has no users left (POLLHUP).
 */
#ifndef UMD_TRAP_SERVE_H
#define UMD_TRAP_SERVE_H

#include <stdbool.h>

/**
 * trap_serve_init() - start the serving thread. Call once, before the
 * sandbox (it makes the thread, its timer and its signal handler).
 * Return: 0 or a negative errno (the daemon then refuses handovers).
 */
int trap_serve_init(void);

/** trap_serve_running() - trap_serve_init() succeeded. */
bool trap_serve_running(void);

/**
 * trap_serve_is_listener() - @fd is a seccomp listener (its
 * /proc/self/fd link reads "anon_inode:seccomp notify").
 */
bool trap_serve_is_listener(int fd);

/**
 * trap_serve_take() - serve @listener from now on: first answer CONTINUE
 * to every notification the library's state (@state, a memfd holding a
 * struct ump_trap_state, or -1) names as received and perhaps not
 * answered, then receive and answer every later one with CONTINUE.
 * The caller must be sure no other receiver of this listener is left.
 * Takes both fds (closes them on failure). Waits for nothing: the thread
 * gets them through a pipe.
 * Return: 0; -EAGAIN the thread is not running or its pipe is full.
 */
int trap_serve_take(int listener, int state);

#endif /* UMD_TRAP_SERVE_H */
