/* SPDX-License-Identifier: MIT */
/*
 * fault.h - um_range_fault() and the owner's side of a write fault: the
 * populate worker that answers UM_EV_POPULATE (library-private).
 */
#ifndef UM_FAULT_H
#define UM_FAULT_H

#include <stdint.h>

#include "client.h"
#include "encode.h"

/**
 * populate_post() - queue an UM_EV_POPULATE for the populate worker,
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
void populate_post(struct um_client *c, const struct um_ev_populate *ev);

/**
 * populate_stop() - stop and join the populate worker (if it was started)
 * and drop the jobs it did not start. Called by client teardown, after
 * the event thread is gone; no callback or reader may run any more.
 * Waits for: the populate in progress, if any (it resumes when the
 * daemon closes the userfaultfd). Holds: nothing.
 */
void populate_stop(struct um_client *c);

/**
 * snapshot_chunks() - (range.c) snapshot [start, start + npages pages) into
 * @out, one round trip per result buffer, encoded with @enc (raw entries
 * when NULL), NUMA nodes into @nodes when not NULL; with @want_seq every reply's seq must equal *want_seq, else
 * -EAGAIN. Entries are filled also for holes and unreadable pages.
 *
 * Waits for: one round trip per chunk. Holds: req_lock during each.
 * Return: 0, -EFAULT (a hole), -EPERM (an unreadable page), or another
 * -errno; *filled entries are valid.
 */
int snapshot_chunks(struct um_client *c, uint64_t interval_id, pid_t pid, uint64_t start,
		    uint64_t npages, uint64_t *out, int32_t *nodes, const struct um_encoding *enc,
		    const uint64_t *want_seq, uint64_t *filled);

#endif /* UM_FAULT_H */
