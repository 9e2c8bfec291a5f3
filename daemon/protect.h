/* SPDX-License-Identifier: MIT */
/*
 * protect.h - PROTECT invalidations: the daemon write-protects memory
 * again (INSERT, dirty REARM, a lost arm) and the mirrors must first drop
 * what they may hold writable there.
 */
#ifndef UMD_PROTECT_H
#define UMD_PROTECT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mm_types.h"

struct ump_dirty_rec;

struct mm_protect;

/**
 * mm_protect_start() - the daemon is about to write-protect [@start, @end)
 * again (INSERT arming its range, dirty REARM): start a PROTECT
 * invalidation, seqs odd, of every interval whose mirror may hold a page
 * there writable (written since armed, or a backend that never stops a
 * writer), clipped to the range; the kernel's own UFFDIO_WRITEPROTECT
 * runs the mmu notifiers for the same reason. Call mm_protect_armed()
 * right after the write-protect, on the same loop turn.
 * Return: the holder for mm_protect_armed(), or NULL (nothing to
 * invalidate; no memory: logged). Waits for nothing.
 */
struct mm_protect *mm_protect_start(struct mm *mm, uint64_t start, uint64_t end);

/**
 * mm_protect_armed() - the write-protect of mm_protect_start() was applied,
 * queued or failed: the invalidation completes once its acks are in and
 * every queued write-protect change is applied (then seqs even). Frees
 * @p at some point; NULL is a no-op. Waits for nothing.
 */
void mm_protect_armed(struct mm_protect *p);

/**
 * mm_protect_armed_runs() - as mm_protect_armed(), when the write-protect
 * of mm_protect_start() covered exactly @runs (@n sorted, disjoint spans
 * inside its range: what a dirty REARM re-protected), less than the
 * range. Its completion then tells the revalidation scan that those pages
 * are armed, and reads no pagemap: the range's other pages were not
 * changed by it (a REARM's range is the interval's rest, from its first
 * written page on, and re-reading its pagemap cost more than the harvest).
 * Without memory for the copy of @runs the completion reads the range as
 * mm_protect_armed()'s does. Frees @p at some point; NULL is a no-op.
 * Waits for nothing.
 */
void mm_protect_armed_runs(struct mm_protect *p, const struct ump_dirty_rec *runs, uint64_t n);

/**
 * mm_rearm_lost() - write-protect [@start, @end) again, where a snapshot
 * found pages of a UFFD_WP interval mapped without uffd-wp although their
 * next write replaces them (the zero page, a page shared copy-on-write):
 * the kernel dropped their protection behind the daemon's back (Linux
 * 6.12+ maps the zero-filled pages of a THP it splits to the zero page,
 * keeping uffd-wp as it was, none on a page written since armed). Under a
 * PROTECT invalidation of every interval over the range, started (seqs
 * odd) before the write-protect, so before the caller replies: a page
 * table change under an even seq would be invisible to read_retry.
 * Return: mm_wp()'s result. Waits for nothing.
 */
int mm_rearm_lost(struct mm *mm, uint64_t start, uint64_t end);

#endif /* UMD_PROTECT_H */
