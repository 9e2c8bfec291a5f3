/* SPDX-License-Identifier: MIT */
/*
 * scan.h - the revalidation scan: what userfaultfd never reports
 * (migration, swap-out, KSM, THP split/collapse, reclaim, mprotect) is
 * found by re-walking mirrored intervals and comparing with last time.
 *
 * Per interval with a period: a baseline of one 64-bit "identity" per
 * page (PFN, present, swap, huge, armed, and from the VMAs hole, no read
 * permission, writable), for SOFT_DIRTY intervals also a bit per page
 * harvested written (a scan starts with one soft-dirty harvest per
 * address space, dirty_soft_harvest()), allocated when the period is set
 * and freed when it is turned off or the interval goes. One loop timer serves every
 * interval; the intervals due at one expiry have their pagemap read in
 * one io_uring submission (or by pread). When an invalidation completes,
 * the pages it covered are re-baselined to what they are then, and pages
 * an invalidation in flight covers are not compared: the scan reports
 * what userfaultfd did not, never the same change twice, and a change
 * made right after an invalidation of the same page is still a change.
 *
 * Everything runs on the loop thread.
 */
#ifndef UMD_SCAN_H
#define UMD_SCAN_H

#include <stdbool.h>
#include <stdint.h>

#include "umirror_proto.h"

struct client;
struct interval;
struct server;
struct ump_revalidate;
struct ump_revalidate_reply;

/*
 * A page's identity as the scan compares it: the UM_E_* bits of its entry
 * (snapshot_convert()) that a change of shows, UMP_E_WRITE's position
 * standing for "the VMA is writable", and a bit UM_E_* leaves free marking
 * "covered by an invalidation since the last scan".
 */
#define SCAN_ID_WRITABLE UMP_E_WRITE   /* the VMA allows writes */
#define SCAN_ID_ARMED UMP_E_UFFD_WP    /* write-protected: a write would be seen */
#define SCAN_ID_EXPLAINED (1ull << 60) /* invalidated since the last scan */
/* a mirror was handed a change of it since the baseline: changed, whatever now is */
#define SCAN_ID_STALE (1ull << 61)

/**
 * scan_changed() - whether a page whose identity was @old and is @now
 * changed as the kernel's mmu notifiers would say: an entry a mirror may
 * hold (a present page) changed in any way but being re-armed, the
 * protection changed (writable, PROT_NONE, the VMA gone), or the page lost
 * its write-protection without a fault (a WP_ASYNC write). A page
 * appearing where none was is no change (no mirror can hold it); nothing
 * is, once @old is SCAN_ID_EXPLAINED; anything is once @old is
 * SCAN_ID_STALE. Pure.
 */
bool scan_changed(uint64_t old, uint64_t now);

/**
 * scan_compare() - compare the identities @id[0..@npages) with the
 * baseline @base, which becomes @id: a page changed when scan_changed()
 * says so or its bit in @written is set (a harvested write; NULL: none).
 * @report_run is called with each maximal run [first, end) of changed
 * page indexes, in order, before the pages after it are compared.
 * Return: the number of pages changed.
 */
uint64_t scan_compare(uint64_t *base, const uint64_t *id, const uint64_t *written, uint64_t npages,
		      void (*report_run)(uint64_t first, uint64_t end, void *priv), void *priv);

/**
 * scan_take_handed() - a mirror was handed the UM_E_* entries @e[0..@npages)
 * (PFNs shown) of pages whose baseline is @base[0..@npages): each page
 * whose change from @base to @e scan_changed() would not report (it
 * appeared, or was armed) takes @e as its baseline; the rest keep theirs,
 * marked SCAN_ID_STALE: the next scan reports them even if the change was
 * undone meanwhile (a mirror holds the entry in between). Pure.
 */
void scan_take_handed(uint64_t *base, const uint64_t *e, uint64_t npages);

/**
 * scan_request() - REVALIDATE from @c: scan now if asked (UMP_REVAL_NOW,
 * against the baseline in force), then set the period.
 * @rep: changed (pages the NOW scan found changed), period_ms in force
 *
 * A period of 0 turns the scan off, except for intervals whose backend
 * needs it (not UFFD_WP): they go back to the daemon's default.
 * Waits for: the pagemap and VMA reads of the scan (NOW) or of the first
 * baseline (period set). Invalidations found are started, not completed.
 * Return: 0 (@rep filled); -EPERM not a receiver; -ENOENT no such
 * interval; -EFAULT the owner is dead; -ENOMEM no memory for a baseline.
 */
int scan_request(struct client *c, const struct ump_revalidate *req,
		 struct ump_revalidate_reply *rep);

/**
 * scan_init() - set up the scan timer of @s (opt.revalidate_ms is the
 * default period). Return: 0 or -errno from libuv.
 */
int scan_init(struct server *s);

/**
 * scan_fini() - stop and close the scan timer (shutdown). Baselines go
 * with their intervals.
 */
void scan_fini(struct server *s);

/**
 * scan_interval_default() - a new interval: start the scan at the daemon's
 * default period when its backend cannot see writes before the fact (not
 * UFFD_WP). Takes the first baseline (waits for its reads).
 * Return: 0, or -ENOMEM (the interval then has no scan; logged).
 */
int scan_interval_default(struct interval *iv);

/**
 * scan_interval_free() - @iv is being destroyed: drop its baseline and
 * leave the timer's list. Idempotent; waits for nothing.
 */
void scan_interval_free(struct interval *iv);

/**
 * scan_note_written() - the soft-dirty harvest found [@start, @end) of @iv
 * (SOFT_DIRTY) written: the next scan reports those pages (REVALIDATE),
 * whatever else it finds. A no-op when @iv has no scan. Waits for nothing.
 */
void scan_note_written(struct interval *iv, uint64_t start, uint64_t end);

/**
 * scan_explain() - an invalidation of [@start, @end) of @iv completed (its
 * page-table changes applied): the baseline of those pages becomes what
 * they are now, so that the next scan reports any later change. A no-op
 * when @iv has no scan. On a read error the old baseline stays (the
 * change may be reported again, never lost).
 * Waits for: a pagemap read of the 2 MiB blocks around the span and its
 * VMA walk (and /proc/kpageflags reads of THP candidates). Holds nothing.
 */
void scan_explain(struct interval *iv, uint64_t start, uint64_t end);

/**
 * scan_note_handed() - a receiver of @iv was handed the entries @e
 * (UM_E_*, PFNs shown) of [@start, +@npages), read from the pagemap on
 * this loop turn: the pages that appeared since their baseline take what
 * the mirror now may hold as baseline (scan_take_handed()), so that their
 * going before the next scan is reported. A no-op when @iv has no scan.
 * Waits for nothing.
 */
void scan_note_handed(struct interval *iv, uint64_t start, uint64_t npages, const uint64_t *e);

/**
 * scan_note_armed() - an invalidation whose only change was
 * write-protecting [@start, @end) of @iv (a dirty REARM) completed: the
 * baseline of those pages becomes "armed", so that a write taking the
 * protection away without a fault (WP_ASYNC) is reported by the next
 * scan; the rest of their baseline stays as it was (a change it did not
 * see is reported, never absorbed). Reads nothing: the pagemap read of
 * scan_explain() over a REARM's span (the interval's rest) cost more
 * than the harvest. A no-op when @iv has no scan. Waits for nothing.
 */
void scan_note_armed(struct interval *iv, uint64_t start, uint64_t end);

#endif /* UMD_SCAN_H */
