/* SPDX-License-Identifier: MIT */
/*
 * fault.h - um_range_fault() and the owner's side of a write fault: the
 * populate worker that answers UMP_EV_POPULATE (library-private).
 */
#ifndef UM_FAULT_H
#define UM_FAULT_H

#include <stdint.h>

#include "types.h"

/**
 * populate_post() - queue an UMP_EV_POPULATE for the populate worker,
 * starting the worker at the first one.
 * @c: client
 * @ev: the event (validated by the decoder)
 *
 * Called by the thread holding the reader role, no lock held. The madvise
 * never runs on this thread: it may fault on a page whose invalidation
 * only this thread can acknowledge. Without memory for the job (or the
 * thread) the daemon is answered -ENOMEM at once.
 * Waits for: nothing but c->lock briefly. Holds: nothing on return.
 */
void populate_post(struct um_client *c, const struct ump_ev_populate *ev);

/**
 * populate_stop() - stop and join the populate worker (if it was started)
 * and drop the jobs it did not start. Called by client teardown, after
 * the event thread is gone; no callback or reader may run any more.
 * Waits for: the populate in progress, if any (it resumes when the
 * daemon closes the userfaultfd). Holds: nothing.
 */
void populate_stop(struct um_client *c);

#endif /* UM_FAULT_H */
