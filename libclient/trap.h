/* SPDX-License-Identifier: MIT */
/*
 * trap.h - trap mode (UM_CONNECT_TRAP_VMA): the process's seccomp filter,
 * its listener and the thread that answers it.
 *
 * Once per process: the filter cannot be removed, so the listener and its
 * thread live until the process exits, whatever becomes of the clients.
 * The thread asks the daemon, on a connection of its own, before letting a
 * trapped call of one of the process's threads continue; calls of the
 * library's own threads (trap_self_enter()) and of other processes (a
 * child that inherited the filter) continue at once, and so does
 * everything once the daemon is gone.
 */
#ifndef UM_TRAP_H
#define UM_TRAP_H

#include <stdint.h>

/**
 * trap_install() - install the filter and start the trap thread, unless
 * this process already did.
 * @path: the daemon's socket (NULL: $UMIRROR_SOCKET, else the default)
 *
 * Connects a second socket and does HELLO on it asking for
 * UMP_PFEAT_TRAP (and UMP_PFEAT_TRAP_HANDOVER), starts the thread, sets
 * PR_SET_NO_NEW_PRIVS and installs the filter on every thread (TSYNC).
 * With the handover granted, the thread sends the daemon its state memfd
 * and a copy of the listener (TRAP_HANDOVER) before anything else. The
 * socket is never closed by the library: the daemon serves the listener
 * once it sees it closed, i.e. once this process has exited or exec'd.
 * Waits for: the HELLO round trip, and the thread's handover sent (not
 * answered). Holds: a process-wide install lock
 * during the call, nothing on return.
 * Return: 0; -EOPNOTSUPP no seccomp user notification here (kernel older
 * than 5.7, no seccomp, an architecture this filter does not know) or the
 * daemon does not allow trap mode; -EBUSY the process's filters already
 * have a listener, or a thread could not be synchronised; -ENOMEM; or
 * what connecting to the daemon returned.
 */
int trap_install(const char *path);

/**
 * trap_self_enter() - the calling thread is one of the library's (event
 * thread, populate worker, um_dispatch()): its trapped calls continue at
 * once, never waiting for an invalidation this process may have to ack.
 * Lock-free; a no-op once 64 threads are registered.
 */
void trap_self_enter(void);

/** trap_self_leave() - undo trap_self_enter() for the calling thread. */

/**
 * trap_follow_on() - this process inserts a FOLLOW_FORK interval (call
 * before the INSERT is sent): from now on the trap thread asks the daemon
 * about every trapped call of a child (UMP_TRAP_CHILD), which the daemon
 * holds for the child's followed intervals. Lock-free, sticky.
 */
void trap_follow_on(void);
void trap_self_leave(void);

/**
 * trap_range_add() - [@start, @end) may be an interval of this address
 * space from now on (add before the INSERT is sent): trapped calls over it
 * are asked about; calls that meet no such range continue without a
 * round trip. Beyond 256 ranges every call is asked about.
 * Holds: the table's writer lock, briefly; never waits for the trap thread.
 */
void trap_range_add(uint64_t start, uint64_t end);

/**
 * trap_range_del() - undo one trap_range_add() of [@start, @end) (after
 * the REMOVE, or when the insert failed). Holds: the writer lock, briefly.
 */
void trap_range_del(uint64_t start, uint64_t end);

#endif /* UM_TRAP_H */
