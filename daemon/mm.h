/* SPDX-License-Identifier: MIT */
/*
 * mm.h - one attached address space: its userfaultfd, pagemap, seq area
 * and intervals, and the uffd events that invalidate them.
 *
 * Lifetime: created by ATTACH on the owner's connection; "released" (dead:
 * uffd closed, slots marked DEAD, subscribers told) when the owner exits or
 * its connection goes; destroyed when the owner's connection goes.
 */
#ifndef UMD_MM_H
#define UMD_MM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "inval.h"
#include "itree.h"
#include "list.h"
#include "umirror_proto.h"

#define UM_SEQ_SLOTS 4096
#define UM_GRANTS_MAX 16 /* uids one interval may be granted to */

struct server;
struct client;
struct scan_state;

/* One connection that receives an interval's invalidations. */
struct receiver {
	struct list iv_link;	 /* interval.receivers, in creation order */
	struct list client_link; /* client.receivers */
	struct interval *iv;
	struct client *client;
	bool sync;    /* UM_INSERT_SYNC: writers wait for its ack */
	bool owner;   /* the inserting connection */
	bool evicted; /* missed an ack deadline: gets nothing more */
};

struct interval {
	struct itree_node node; /* node.start / node.end: the range */
	struct list mm_link;	/* mm.intervals */
	struct mm *mm;
	uint64_t id;
	uint32_t slot;
	uint32_t flags;	       /* UM_INSERT_* of the insert */
	struct list receivers; /* struct receiver.iv_link */
	unsigned int active;   /* invalidations in flight */
	bool written;	       /* a WRITE invalidation since the last arm */
	uint64_t invalidations;
	uint32_t backend;	 /* enum um_proto_backend: how writes are tracked */
	uint32_t revalidate_ms;	 /* revalidation scan period in force, 0 off */
	uint64_t *dirty;	 /* dirty.c: a bit per page written since re-armed
				    (UFFD_WP log, SOFT_DIRTY harvested bits), or NULL */
	struct scan_state *scan; /* scan.c: baseline and due time, NULL while off */
	unsigned int ngrants;	 /* grant.c: uids besides root and the owner's */
	uint32_t grants[UM_GRANTS_MAX];
};

/* a span of an interval unmapped since insert (UNMAP, REMAP source) */
struct mm_span {
	uint64_t start, end;
};

struct mm {
	struct list link; /* server.mms */
	struct server *srv;
	struct client *owner;
	uint64_t id;
	pid_t pid;
	uid_t uid;
	int uffd, pagemap_fd, maps_fd, pidfd, seq_fd;
	int mem_fd;	      /* /proc/PID/mem, O_RDONLY: read faults */
	struct mm_span *gone; /* sorted, disjoint, not adjacent */
	unsigned int ngone, gone_cap;
	uv_poll_t uffd_poll, pidfd_poll;
	uv_timer_t wp_timer;	 /* retries writeprotects refused with EAGAIN */
	struct list wp_retry;	 /* struct wp_op, in order */
	unsigned int wp_retries; /* EAGAINs of the first queued change so far */
	uint64_t barrier_addr;	 /* mm_lock_barrier(): a VMA uffd refuses, 0 unknown */
	int open_handles;	 /* uv handles not yet closed; free at 0 after destroy */
	struct um_seq_slot *seq;
	uint32_t next_slot;
	uint64_t slot_used[UM_SEQ_SLOTS / 64];
	struct itree tree;
	struct list intervals;
	struct list invals; /* struct inval.mm_link, creation order */
	uint64_t uffd_features;
	uint64_t remap_from, remap_end; /* source of the REMAP just handled, else 0 */
	int async_uffd;			/* ATTACH with UM_ATTACH_ASYNC: WP_ASYNC uffd, else -1 */
	uint64_t async_features;	/* what UFFDIO_API enabled on it */
	uv_poll_t async_poll;
	int clear_refs_fd;	/* /proc/PID/clear_refs for SOFT_DIRTY intervals, else -1 */
	uint64_t sd_stamp;	/* scan.c: the batch that last harvested soft-dirty bits */
	uint64_t canary;	/* the owner's soft-dirty canary page (UM_ATTACH_CANARY), or 0 */
	int canary_fd;		/* /proc/PID/mem for writing the canary, else -1 */
	bool canary_set;	/* written since our last clear: its bit 55 must still be there */
	uint64_t sd_stolen;	/* clears by another clear_refs writer found by the canary */
	struct list forks;	/* mms of followed children (fork_link), same owner connection */
	struct list fork_link;	/* the parent's forks */
	struct list fork_waits; /* struct fork_wait: children not identified yet */
	pid_t *fork_known;	/* the owner's children before its next fork */
	size_t nfork_known;
	bool uffd_user_only; /* the uffd is UFFD_USER_MODE_ONLY (um_attach.uffd_mode) */
	bool forked;	     /* a followed child (UM_INSERT_FOLLOW_FORK) */
	/*
	 * An interval was inserted over a VMA whose pages are larger than
	 * 4 KiB (hugetlb): page-table changes and WRITE spans are widened to
	 * the VMA's page size (mm_page_span()). Never cleared.
	 */
	bool huge_vmas;
	bool dead;
	bool destroyed;
};

/**
 * mm_attach() - ATTACH: take over the owner's userfaultfd.
 * @c: the owner's connection (HELLO done)
 * @uffd: received fd; consumed in every case
 * @req: the request (its probe page)
 * @rep: reply body filled on success
 * @seq_fd: on success a new fd of the seq area for the reply
 *
 * Does UFFDIO_API, proves on @req->probe that @uffd serves @c's own
 * address space (write-protect through it, read @c's pagemap: four
 * ioctls, three preads; the probe is left as it was), opens
 * /proc/PID/pagemap (and maps for PROCMAP_QUERY), creates the sealed seq
 * area and starts polling the uffd and pidfd. Waits for nothing.
 * Return: 0; -EBUSY already attached (connection or pid); -EBADF not a
 * userfaultfd, or not @c's; -EINVAL UFFDIO_API refused, or the probe is
 * not a present page of @c's; -EAGAIN a fork/mremap of the uffd's
 * address space in flight during the proof; -ESRCH owner gone; -errno.
 */
int mm_attach(struct client *c, int uffd, const struct um_attach *req, struct um_attach_reply *rep,
	      int *seq_fd);

/**
 * mm_attach_async() - ATTACH with UM_ATTACH_ASYNC: the owner's second
 * userfaultfd, for UM_INSERT_TRACK_ASYNC intervals. UFFDIO_API with
 * WP_ASYNC (and WP_UNPOPULATED and the event features when offered), the
 * same proof on @req->probe as mm_attach(); polled like the first. @uffd
 * is consumed in every case; @seq_fd gets another fd of the seq area (the
 * reply type carries one). Waits for nothing.
 * Return: 0; -EBADFD not attached; -EBUSY already has one; -EOPNOTSUPP no
 * WP_ASYNC or PAGEMAP_SCAN (absent or masked); -EBADF not a userfaultfd,
 * or not @c's; -EINVAL UFFDIO_API refused or a bad probe; -EAGAIN as
 * mm_attach(); -EFAULT dead owner.
 */
int mm_attach_async(struct client *c, int uffd, const struct um_attach *req,
		    struct um_attach_reply *rep, int *seq_fd);

/**
 * mm_insert() - INSERT (request @id): register and write-protect a range
 * of @c's mm. The reply must not precede the write-protect: one the kernel
 * refuses with EAGAIN (an event in delivery) is retried after reading the
 * pending events for up to ~20 ms, blocking the loop; still refused, the
 * reply is parked (deferred_add()) and sent by this module once every
 * write-protect queued so far is applied, or at once if the owner dies
 * first (the interval then exists, dead).
 * Return: 0 with @rep filled (answer now); -EINPROGRESS parked;
 * -EBADFD not attached; -EFAULT unmapped part or dead owner; -EOPNOTSUPP
 * not trackable; -ENOSPC no slot; -ENOMEM.
 */
int mm_insert(struct client *c, uint64_t id, const struct um_insert *req,
	      struct um_insert_reply *rep);

/**
 * mm_remove() - REMOVE: the inserter removes the interval (subscribers get
 * EV_RELEASE -ENOENT), a subscriber unsubscribes.
 * Return: 0; -ENOENT no interval of that id that @c inserted or subscribed.
 */
int mm_remove(struct client *c, uint64_t interval_id);

/**
 * mm_subscribe() - SUBSCRIBE to another connection's interval.
 * @seq_fd: on success a new fd of the owner's seq area
 * Return: 0; -ESRCH no such pid/interval; -EPERM other uid; -EBUSY already
 * subscribed on this connection; -ENOMEM.
 */
int mm_subscribe(struct client *c, const struct um_subscribe *req, struct um_subscribe_reply *rep,
		 int *seq_fd);

/**
 * mm_gone() - does [@start, @end) meet a part of an interval that was
 * unmapped since it was inserted (it snapshots as a hole, faults -EFAULT)?
 * Waits for and holds nothing.
 */
bool mm_gone(const struct mm *mm, uint64_t start, uint64_t end);

/**
 * mm_fork_note_children() - remember @mm's owner's children now, so that a
 * later fork's child is told apart from them (UM_INSERT_FOLLOW_FORK).
 * Reads /proc/PID/task/TID/children; holds nothing. Errors keep the old list.
 */
void mm_fork_note_children(struct mm *mm);

/*
 * The intervals of an address space that a span meets, with the part of
 * each that is affected: the hits of one invalidation.
 */
struct hit_walk {
	struct inval_hit *v;
	unsigned int n, cap;
	uint64_t start, end;
	bool whole;	   /* the whole interval, not the intersection */
	bool written_only; /* only intervals with their written flag */
	struct inval_hit stack[16];
};

/**
 * mm_collect() - fill @h (zeroed by the caller, @whole / @written_only set
 * as wanted) with the intervals of @mm that meet [@start, @end).
 * Return: 0, or -ENOMEM (@h holds what was found so far). Always follow
 * with mm_collect_done().
 */
int mm_collect(struct mm *mm, struct hit_walk *h, uint64_t start, uint64_t end);

/** mm_collect_done() - free what mm_collect() allocated. */
void mm_collect_done(struct hit_walk *h);

/** mm_find_pid() - the live (not dead) address space of @pid, or NULL. */
struct mm *mm_find_pid(struct server *s, pid_t pid);

/**
 * receiver_access() - may @c work on [@start, @end) of interval @id?
 * @out: @c's receiver of it on success
 * Return: 0; -ENOENT no such interval; -EPERM @c neither inserted nor
 * subscribed it; -EINVAL the span is empty or not inside it; -EFAULT its
 * owner is gone.
 */
int receiver_access(struct client *c, uint64_t id, uint64_t start, uint64_t end,
		    struct receiver **out);

/** interval_find() - the interval of id @id in any address space, or NULL. */
struct interval *interval_find(struct server *s, uint64_t id);

/** client_receiver() - @c's receiver of interval @id, or NULL. */
struct receiver *client_receiver(struct client *c, uint64_t id);

/**
 * mm_release() - the owner is gone: every slot DEAD and odd (waiters wake),
 * subscribers get EV_RELEASE -EFAULT, pending invalidations are dropped,
 * uffd/pagemap closed so the owner's blocked writers resume. Idempotent.
 */
void mm_release(struct mm *mm, const char *why);

/**
 * mm_destroy() - release, then free every interval and receiver and the
 * mm itself (once its uv handles have closed). The owner's connection is
 * going away.
 */
void mm_destroy(struct mm *mm);

/** receiver_free() - end a subscription; its pending acks count as given. */
void receiver_free(struct receiver *r);

/**
 * interval_armed() - is @iv's memory kept write-protected on the owner's
 * uffd (UFFD_WP), so that a re-arm (after REMOVE, FORK) is due? SOFT_DIRTY
 * intervals are registered there too but protected only during a harvest.
 */
static inline bool interval_armed(const struct interval *iv)
{
	return iv->backend == UMP_BACKEND_UFFD_WP;
}

/** interval_seq_begin() - active++; on 0 -> 1 make the slot's seq odd. */
void interval_seq_begin(struct interval *iv);

/** interval_seq_end() - active--; on 1 -> 0 make the seq even, FUTEX_WAKE. */
void interval_seq_end(struct interval *iv);

/** interval_seq() - the slot's current seq (acquire load). */
uint64_t interval_seq(const struct interval *iv);

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

#endif /* UMD_MM_H */
