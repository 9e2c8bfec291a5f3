/* SPDX-License-Identifier: MIT */
/*
 * dirtylog.h - the dirty log of an interval (struct interval.dirty): a bit
 * per page written since it was re-armed.
 */
#ifndef UMD_DIRTYLOG_H
#define UMD_DIRTYLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "mm_types.h"

/* bitmap helpers over page indexes [from, to) */
void bits_set(uint64_t *bm, uint64_t from, uint64_t to);
void bits_clear(uint64_t *bm, uint64_t from, uint64_t to);
/* first index in [from, to) whose bit equals @set, or @to */
uint64_t bits_next(const uint64_t *bm, uint64_t from, uint64_t to, bool set);

/** iv_pages() - the number of 4 KiB pages of @iv. */
uint64_t iv_pages(const struct interval *iv);

/**
 * dirty_log_alloc() - give @iv a dirty log (a bit per page, all clear) when
 * its backend keeps one (UFFD_WP, SOFT_DIRTY). Return: 0 or -ENOMEM.
 */
int dirty_log_alloc(struct interval *iv);

/** dirty_log_free() - free @iv's dirty log. Idempotent. */
void dirty_log_free(struct interval *iv);

/**
 * interval_mark_dirty() - count [@start, @end) of @iv (clipped to it) as
 * written in its dirty log. A no-op for backends without a log. Waits for
 * and holds nothing.
 */
void interval_mark_dirty(struct interval *iv, uint64_t start, uint64_t end);

/**
 * mm_mark_dirty() - interval_mark_dirty() on every interval of @mm that
 * [@start, @end) meets (O(log n + hits)). Waits for and holds nothing.
 */
void mm_mark_dirty(struct mm *mm, uint64_t start, uint64_t end);

/**
 * mm_mark_unprotected() - [@start, @end) of @mm lost its write protection
 * (an unprotect through mm_wp()): mm_mark_dirty(), and SOFT_DIRTY
 * intervals' scans count the pages written too (their later writes may
 * fall before a harvest's clear). Waits for and holds nothing.
 */
void mm_mark_unprotected(struct mm *mm, uint64_t start, uint64_t end);

/**
 * mm_prefault() - without WP_UNPOPULATED (kernel before 6.7, or masked),
 * write-protecting a never-touched anonymous page installs nothing, so its
 * first write would go unseen: read-fault every page of [@start, @end)
 * that is neither present nor swapped, through /proc/PID/mem (the zero page
 * or the page cache gets mapped), so that the protection that follows
 * sticks. A no-op when the mm's uffd has WP_UNPOPULATED.
 * Waits for: the pagemap and mem reads. Return: 0 or -errno (a range that
 * cannot be read is skipped: it is gone or not readable).
 */
int mm_prefault(struct mm *mm, uint64_t start, uint64_t end);

#endif /* UMD_DIRTYLOG_H */
