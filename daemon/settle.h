/* SPDX-License-Identifier: MIT */
/*
 * settle.h - invalidations that stay in flight until the change is done.
 *
 * The kernel sends UFFD_EVENT_REMOVE before madvise(MADV_DONTNEED /
 * MADV_REMOVE) zaps, and lets the zap go ahead as soon as the event is
 * read, not when the mirrors acknowledged. Completing at once would let a
 * mirror snapshot pages that are about to be freed (seq even, so it looks
 * valid), and re-arming at once is undone for anonymous memory, whose zap
 * drops uffd-wp markers: the next write would go unseen. So a REMOVE is a
 * held invalidation: after its acks the span's pagemap is polled until
 * every entry that was set when the event was read has changed, then the
 * span is re-armed, and the record completes once the re-arm is applied
 * and found in place after every zap under way: a madvise() thread the
 * read released may still zap after the re-arm (it runs when it gets the
 * CPU; a second zap of pages another thread just emptied shows nothing),
 * so the span is read, the owner's mmap lock waited for
 * (mm_lock_barrier()), the span read again, and lost pages re-armed.
 */
#ifndef UMD_SETTLE_H
#define UMD_SETTLE_H

#include <stdbool.h>
#include <stdint.h>

struct mm;
struct server;
struct inval_hit;

/**
 * settle_remove() - start the REMOVE invalidation of [@start, @end) of @mm
 * over @hits, held until the zap is seen done and the span re-armed.
 *
 * Reads the span's pagemap first (its state when the event was read).
 * Waits for nothing itself: polling runs from the loop (busy for the first
 * 2 ms after the acks, then every millisecond). Only pages present when
 * the event was read are waited for, at most 100 ms (MADV_FREE sends the
 * event and zaps nothing; a page zapped and rewritten with the same PFN
 * looks unchanged), re-arming anyway; but once the zap has visibly begun,
 * the write-protected pages it has not reached yet are waited for until
 * the ack timeout (then completed anyway, logged): a zap whose thread was
 * descheduled half way must not be taken for done. Then the re-arm is
 * verified (two pagemap reads around mm_lock_barrier(), which blocks the
 * loop while a thread of the owner holds its mmap lock) and redone for the
 * pages a zap emptied meanwhile, at most 8 times; a REMOVE that came while
 * another REMOVE of the same pages was in flight is watched 100 ms more.
 * Return: 0, or -ENOMEM (then a plain, unheld REMOVE invalidation is sent).
 */
int settle_remove(struct mm *mm, uint64_t start, uint64_t end, const struct inval_hit *hits,
		  unsigned int nhits);

/**
 * settle_write() - start the WRITE invalidation of [@page, @end) (a uffd-wp
 * fault of thread @tid at @page; more than one page: a write granule, whose
 * other pages the caller found safe to unprotect: their next write keeps
 * their page) over @hits. After the acks the span is unprotected, which
 * lets the writer retry its fault; when that retry replaces the page (zero
 * page, copy on write, nothing mapped) the record completes only once
 * pagemap shows the new page at @page, so no mirror sees "valid" while
 * the old page is still mapped. Gives up after 20 ms (the writer was
 * killed).
 * Return: 0, or what a plain inval_start() returned when no memory.
 */
int settle_write(struct mm *mm, uint64_t page, uint64_t end, uint32_t tid,
		 const struct inval_hit *hits, unsigned int nhits);

/**
 * settle_note_wp() - mm_wp() is changing the write protection of
 * [@start, @end) of @mm (@wp: protecting): a REMOVE settling over it can
 * no longer take a changed uffd-wp bit for its zap, and does not require
 * pages unprotected since its re-arm to be protected. Waits for nothing.
 */
void settle_note_wp(struct mm *mm, uint64_t start, uint64_t end, bool wp);

/** settle_init() - the server's poll handles. Return: 0 or -errno. */
int settle_init(struct server *s);

/** settle_shutdown() - close the poll handles (records are dropped with their mm). */
void settle_shutdown(struct server *s);

#endif /* UMD_SETTLE_H */
