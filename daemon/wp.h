/* SPDX-License-Identifier: MIT */
/*
 * wp.h - write-protect changes on the owner's uffds (UFFDIO_WRITEPROTECT):
 * split by VMA where the kernel refuses a range, queued and retried in
 * order where it refuses with EAGAIN, barriers that wait for the queue,
 * and the lock barrier. Upward needs go through server.hooks (uffd_cb:
 * reading the events the kernel waits for; wp_note: a settling REMOVE).
 */
#ifndef UMD_WP_H
#define UMD_WP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mm_types.h"

/**
 * mm_page_span() - widen [*@start, *@end) to whole pages of the VMAs at
 * its ends: hugetlb pages are write-protected, faulted and COW-copied as
 * one page (UFFDIO_WRITEPROTECT refuses a part of one with EINVAL). No
 * change unless @mm->huge_vmas; then one VMA query per end. Waits for
 * nothing.
 */
void mm_page_span(struct mm *mm, uint64_t *start, uint64_t *end);

/**
 * mm_read_events() - read and handle the events pending on @mm's uffds
 * now, as the loop would (faults, REMOVE, fork...): for code that must
 * wait on the loop thread for an event to be read (UFFDIO_WRITEPROTECT
 * refused with EAGAIN). @mm may be dead afterwards. Waits for nothing.
 */
void mm_read_events(struct mm *mm);

/**
 * mm_wp() - UFFDIO_WRITEPROTECT [start, start+len) on (@wp) or off (wakes
 * the writers waiting there), widened to whole pages (mm_page_span()).
 * A change the kernel refuses with EAGAIN (an event is being delivered)
 * is queued and retried in order from a timer. A failed unprotect may
 * leave a writer blocked: logged at error level. Return: 0 (done or
 * queued) or -errno (ignored by most callers: the range may be gone).
 * -ENODEV once the mm is dead.
 */
int mm_wp(struct mm *mm, uint64_t start, uint64_t len, bool wp);

/**
 * mm_wp_wait() - UFFDIO_WRITEPROTECT [start, end) on (@wp) or off on the
 * owner's uffd now, not queued: a change refused with EAGAIN (an event in
 * delivery) is retried after reading the events (mm_read_events()) for up
 * to ~20 ms, blocking the loop. Where the kernel refuses the range with
 * ENOENT (Linux 6.1: it spans VMAs; later: a VMA the uffd does not track)
 * the change is applied VMA by VMA, holes skipped, as mm_wp() does.
 * @part_failed (may be NULL): called with each part [a, b) that could not
 * be changed and its error (the whole range for an error other than
 * ENOENT); a nonzero return ends the walk and is returned. Without it an
 * untracked VMA is skipped and another error ends the walk. The owner
 * dying meanwhile is -EFAULT. Tells a settling REMOVE (settle_note_wp()).
 * Return: 0, -EFAULT the owner died, -errno (VMAs unreadable, or as above).
 */
int mm_wp_wait(struct mm *mm, uint64_t start, uint64_t end, bool wp,
	       int (*part_failed)(uint64_t a, uint64_t b, int err, void *priv), void *priv);

/**
 * mm_lock_barrier() - wait until every thread of the owner that holds its
 * mmap lock now (a madvise() zapping, above all) has released it.
 *
 * UFFDIO_REGISTER takes the owner's mmap lock for writing before it looks
 * at the VMAs; it is aimed at a page of a VMA that userfaultfd refuses
 * ([vdso], found in /proc/PID/maps and remembered), so it fails after the
 * lock with nothing registered. A thread that has not taken the lock yet
 * is not waited for.
 * Waits for: the lock (blocks the loop while a reader holds it).
 * Return: 0; -ENOENT no such VMA to aim at (nothing was waited for);
 * -ENODEV the mm is dead.
 */
int mm_lock_barrier(struct mm *mm);

/**
 * mm_wp_pending() - are changes mm_wp() queued still waiting to be applied?
 * False once the mm is dead (nothing will ever be applied then).
 */
bool mm_wp_pending(const struct mm *mm);

/**
 * mm_wp_barrier() - call @fn(@arg) once every change mm_wp() accepted
 * before this call is in the page tables: at once (before returning) when
 * none is queued, else from the retry timer right after the last of them
 * was applied. Changes queued later are not waited for.
 *
 * If the mm dies first @fn never runs: its queue is dropped by
 * mm_release(), after inval_drop_all(), so @arg must be something the
 * release frees otherwise (an invalidation record).
 * Return: 0; -ENOMEM (@fn ran at once, without waiting; logged).
 */
int mm_wp_barrier(struct mm *mm, void (*fn)(void *arg), void *arg);

/**
 * wp_barrier_add() - as mm_wp_barrier(), and if the mm dies first
 * @drop(@arg) runs (when set) instead of @fn. Return: as mm_wp_barrier().
 */
int wp_barrier_add(struct mm *mm, void (*fn)(void *arg), void (*drop)(void *arg), void *arg);

/** wp_barrier_cancel() - take the barrier for @arg off the queue, unrun. */
void wp_barrier_cancel(struct mm *mm, void *arg);

/**
 * wp_flush() - apply the queued write-protect changes now, reading the
 * events they wait for, with a short wait while one is still being
 * produced (a fork copying its page tables). Blocks the loop ~200 ms at
 * most. Return: 0; -EFAULT the owner died; -EAGAIN still queued.
 */
int wp_flush(struct mm *mm);

/**
 * wp_async() - write-protect [@start, @end) on the async uffd (WP_ASYNC:
 * nothing waits there, so EAGAIN only needs the events read).
 * Return: 0; -EOPNOTSUPP refused (EINVAL); -EFAULT owner died; -errno.
 */
int wp_async(struct mm *mm, uint64_t start, uint64_t end);

/**
 * wp_drop_all() - the mm is dead: drop the queue unapplied; barriers
 * with a @drop get it called, the others never run.
 */
void wp_drop_all(struct mm *mm);

#endif /* UMD_WP_H */
