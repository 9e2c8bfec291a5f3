/* SPDX-License-Identifier: MIT */
/*
 * range.h - the snapshot round trips under um_range_snapshot(),
 * um_range_fault() and um_snapshot_raw() (library-private).
 */
#ifndef UM_RANGE_H
#define UM_RANGE_H

#include <stdint.h>

#include "encode.h"
#include "types.h"

/**
 * snapshot_chunks() - snapshot [start, start + npages pages) into
 * @out, one round trip per result buffer, encoded with @enc (raw entries
 * when NULL), NUMA nodes into @nodes when not NULL; with @want_seq every reply's seq must equal
 * *want_seq, else -EAGAIN. Entries are filled also for holes and unreadable pages.
 *
 * Waits for: one round trip per chunk. Holds: req_lock during each.
 * Return: 0, -EFAULT (a hole), -EPERM (an unreadable page), or another
 * -errno; *filled entries are valid.
 */
int snapshot_chunks(struct um_client *c, uint64_t interval_id, pid_t pid, uint64_t start,
		    uint64_t npages, uint64_t *out, int32_t *nodes, const struct um_encoding *enc,
		    const uint64_t *want_seq, uint64_t *filled);

#endif /* UM_RANGE_H */
