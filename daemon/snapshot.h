/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h - page-table snapshots from /proc/PID/pagemap and the VMAs.
 */
#ifndef UMD_SNAPSHOT_H
#define UMD_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

struct client;
struct mm;
struct server;
struct ump_snapshot;
struct ump_snapshot_reply;

/**
 * snapshot_request() - SNAPSHOT: check permissions and the range, walk,
 * write the entries into @c's result buffer at offset 0.
 * @rep: filled (seq, npages, offset) whenever entries were written
 *
 * Waits for: the pagemap read (the owner's page-table lock, briefly).
 * Return: 0; -EFAULT some page is a hole (or the owner is dead); -EPERM
 * some page has no read permission, or @c may not look; -EINVAL range
 * outside the interval; -ESRCH pid not attached; -ENOENT no such interval.
 */
int snapshot_request(struct client *c, const struct ump_snapshot *req,
		     struct ump_snapshot_reply *rep);

/**
 * snapshot_fill() - the walk itself: @npages UM_E_* entries from @start of
 * @mm into @out (which doubles as the pagemap read buffer).
 * @show_pfn: false zeroes every PFN
 *
 * Return: 0, -EFAULT (hole or unreadable pagemap), -EPERM (NOPERM page).
 * Entries are filled either way.
 */
int snapshot_fill(struct mm *mm, uint64_t start, uint64_t npages, uint64_t *out, bool show_pfn);

/**
 * snapshot_convert() - snapshot_fill() without its pagemap read: @out holds
 * the raw pagemap entries of [@start, +@npages) (read by the caller, e.g.
 * batched through io_uring) and is converted in place to UM_E_* entries.
 * Waits for: the VMA walk (PROCMAP_QUERY or /proc/PID/maps) and the
 * /proc/kpageflags reads of THP candidates. Holds nothing.
 * Return: as snapshot_fill().
 */
int snapshot_convert(struct mm *mm, uint64_t start, uint64_t npages, uint64_t *out, bool show_pfn);

/*
 * Bits of a raw pagemap entry the kernel leaves zero, with which the walk
 * marks the pages of a THP (and of the huge zero page) before converting.
 */
#define SNAPSHOT_RAW_THP (1ull << 60)
#define SNAPSHOT_RAW_HUGE_ZERO (1ull << 59)

struct vma;

/**
 * snapshot_convert_vma() - the conversion itself, pure: raw pagemap
 * entries @e[0..@n) of the readable VMA @v (with the walk's
 * SNAPSHOT_RAW_* marks) into UM_E_* entries in place. @zero_pfn: the
 * shared zero page's PFN (0: unknown); @show_pfn: false zeroes every PFN.
 * WRITE where a CPU write would land in the page itself: a writable VMA,
 * not write-protected, not the zero page, and shared or an exclusive
 * anonymous page (a private file page or one shared copy-on-write would
 * be copied first).
 */
void snapshot_convert_vma(uint64_t *e, uint64_t n, const struct vma *v, uint64_t zero_pfn,
			  bool show_pfn);

struct interval;
struct client;

/**
 * snapshot_fill_interval() - snapshot_fill() of [@start, +@npages) of
 * @iv for its receiver @c, into @c's result buffer (PFNs as
 * c->pfn_visible), at seq @seq (read before the walk): the entries
 * are shown to the scan (hooks.handed: a page that appeared since its
 * baseline is now one a mirror may hold) before the PFNs are hidden, then
 * snapshot_rearm_lost().
 * Waits for: the walk (as snapshot_fill()). Return: as snapshot_fill().
 */
int snapshot_fill_interval(struct client *c, struct interval *iv, uint64_t start, uint64_t npages,
			   uint64_t seq);

/**
 * snapshot_rearm_lost() - after a walk of [@start, +@npages) of UFFD_WP
 * interval @iv at seq @seq (read before the walk): arm again, through
 * mm_rearm_lost(), every run of pages @e shows mapped, not write-protected
 * and not writable in place, which the next write would copy without a
 * uffd-wp fault. Nothing while @seq is odd (the next valid snapshot
 * comes at an even one). Waits for nothing.
 */
void snapshot_rearm_lost(struct interval *iv, uint64_t start, uint64_t npages, const uint64_t *e,
			 uint64_t seq);

#endif /* UMD_SNAPSHOT_H */
