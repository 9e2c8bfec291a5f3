/* SPDX-License-Identifier: MIT */
/*
 * dirty.h - DIRTY: which pages of an interval were written since re-armed,
 * from the interval's tracking backend (uffd-wp log, WP_ASYNC +
 * PAGEMAP_SCAN, soft-dirty harvests), and the helpers that keep the uffd-wp log and
 * make write-protection stick without WP_UNPOPULATED.
 */
#ifndef UMD_DIRTY_H
#define UMD_DIRTY_H

#include <stdbool.h>
#include <stdint.h>

struct client;
struct interval;
struct mm;
struct ump_dirty;
struct ump_dirty_reply;
struct ump_dirty_rec;
struct page_region;

/**
 * dirty_request() - DIRTY from @c: write ump_dirty_rec[] into @c's result
 * buffer, re-arm what was reported when asked.
 * Return: 0 (@rep filled); -EPERM not a receiver of the interval; -ENOENT;
 * -EINVAL range outside the interval; -EOPNOTSUPP backend cannot see
 * writes; -EFAULT dead owner.
 */
int dirty_request(struct client *c, const struct ump_dirty *req, struct ump_dirty_reply *rep);

/**
 * dirty_soft_fits() - can SOFT_DIRTY see every write to [@start, @end) of
 * @mm: soft-dirty present, no hugetlb VMA there, and each VMA of a kind
 * (private / shared) whose writes still set bit 55 after the harvest's
 * uffd-wp window (probed at start-up: shared memory fails on Linux 6.1).
 * The memory must still be registrable on the owner's uffd (anonymous or
 * shmem); the caller finds that out. Waits for: the VMA walk.
 */
bool dirty_soft_fits(struct mm *mm, uint64_t start, uint64_t end);

/**
 * dirty_soft_open() - open /proc/PID/clear_refs of @mm for SOFT_DIRTY
 * intervals (once). Return: 0 or -errno.
 */
int dirty_soft_open(struct mm *mm);

/**
 * dirty_soft_harvest() - one soft-dirty harvest of @mm: the bits of every
 * SOFT_DIRTY interval of it are ORed into that interval's dirty log and
 * scan bitmap (scan_note_written()), then cleared (clear_refs 4, the whole
 * process). Writers of those intervals are held by a uffd-wp write-protect
 * for the time of the reads and the clear (the "window"), so that no write
 * lands between the read of its bit and the clear. Parts that cannot be
 * protected (not registered: mapped after insert) are counted written.
 * A no-op without SOFT_DIRTY intervals.
 * Waits for: two pagemap reads of each interval, clear_refs (a walk of the
 * whole address space), the uffd ioctls; events the kernel is delivering
 * meanwhile are read and handled (mm_read_events()).
 * Return: 0; -EFAULT the owner died; -ENOMEM; -errno from a pagemap read
 * or clear_refs (then nothing was cleared: no bit is lost).
 */
int dirty_soft_harvest(struct mm *mm);

/**
 * dirty_soft_baseline() - @iv (SOFT_DIRTY, just inserted, in @iv->mm's
 * list) starts clean: a harvest feeds the other intervals and clears the
 * bits, @iv learns nothing from it. If the harvest fails, @iv is counted
 * written in full (never "clean" where nothing is known). Waits for: as
 * dirty_soft_harvest().
 */
void dirty_soft_baseline(struct interval *iv);

/*
 * The pure steps of a harvest, apart for their unit test. Page runs are
 * struct ump_dirty_rec [start, end) byte ranges, sorted by start.
 */

/**
 * dirty_merge_runs() - the runs of @a[0..@na) and @b[0..@nb) (each sorted,
 * runs in one list apart or touching) into @out (room for @na + @nb, not
 * @a or @b): sorted, and runs that overlap or touch made one, so that a
 * written range is never split in a reply. Return: the number in @out.
 */
uint64_t dirty_merge_runs(const struct ump_dirty_rec *a, uint64_t na, const struct ump_dirty_rec *b,
			  uint64_t nb, struct ump_dirty_rec *out);

/**
 * dirty_add_regions() - append the @got PAGEMAP_SCAN regions @vec to
 * @out[0..@n): only those inside [@cur, @end), not empty and after the
 * last run (never trust more than was asked); one that continues the last
 * run extends it. Return: the new @n.
 */
uint64_t dirty_add_regions(struct ump_dirty_rec *out, uint64_t n, const struct page_region *vec,
			   long got, uint64_t cur, uint64_t end);

/**
 * dirty_soft_written() - the soft-dirty harvest's verdict on one page:
 * written if bit 55 was set at the first read (@first_dirty), or if the
 * page was neither present nor swapped then (@first_empty) and the second
 * read @ent (after the clear) shows a page that is not the zero page
 * @zero_pfn (0: unknown, any page counts), or there was no second read
 * (@unread). A page that appeared may have been written before the clear
 * wiped its bit: without WP_UNPOPULATED an empty page cannot be held.
 */
bool dirty_soft_written(bool first_dirty, bool first_empty, bool unread, uint64_t ent,
			uint64_t zero_pfn);

#endif /* UMD_DIRTY_H */
