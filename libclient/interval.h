/* SPDX-License-Identifier: MIT */
/*
 * interval.h - the client's interval table and event dispatch
 * (library-private).
 */
#ifndef UM_INTERVAL_H
#define UM_INTERVAL_H

#include <stdbool.h>
#include <stddef.h>

#include "types.h"

/**
 * interval_handle_event() - run the callbacks of one event.
 * @c: client
 * @m: a decoded UMP_EV_* message
 *
 * Called by the thread holding the reader role, with no lock held. Takes
 * c->lock to find the interval, drops it while the callback runs, then
 * acknowledges a synchronous invalidation (even for an interval it no
 * longer knows: the daemon must not wait for it).
 */
void interval_handle_event(struct um_client *c, const struct conn_msg *m);

/**
 * interval_mark_all_dead_locked() - the connection died: mark every
 * interval dead and FUTEX_WAKE every sequence word (a wake works on a
 * read-only mapping). Caller holds c->lock; waits for nothing.
 */
void interval_mark_all_dead_locked(struct um_client *c);

/**
 * interval_release_all() - call release(@error) once for every interval
 * not yet released or being removed. Called by the reader, no lock held;
 * takes c->lock between callbacks.
 */
void interval_release_all(struct um_client *c, int error);

/**
 * interval_free_all() - free every interval of @c (um_disconnect()). No
 * callback may run any more. Takes no lock.
 */
void interval_free_all(struct um_client *c);

#endif /* UM_INTERVAL_H */
