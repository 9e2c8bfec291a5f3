/* SPDX-License-Identifier: MIT */
/*
 * mm_types.h - one attached address space, its intervals and their
 * receivers: types only. The functions are in mm.h (attach, release),
 * interval.h (insert, remove), seq.h, wp.h, lookup.h, gone.h, fork.h.
 *
 * Lifetime: created by ATTACH on the owner's connection; "released" (dead:
 * uffd closed, slots marked DEAD, subscribers told) when the owner exits or
 * its connection goes; destroyed when the owner's connection goes.
 */
#ifndef UMD_MM_TYPES_H
#define UMD_MM_TYPES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "itree.h"
#include "list.h"
#include "umirror_proto.h"

#define UM_GRANTS_MAX 16 /* uids one interval may be granted to */

struct server;
struct client;
struct scan_state;
struct interval;

/* the part of an interval one invalidation affects */
struct inval_hit {
	struct interval *iv; /* NULL once the interval was removed */
	uint64_t start, end; /* the part of the interval affected */
};

/*
 * Something tied to an mm's life that mm_release() must drop (fork.c's
 * search for a new child): @drop unlinks and frees it.
 */
struct mm_waiter {
	struct list link; /* mm.fork_waits */
	void (*drop)(struct mm_waiter *w);
};

/* One connection that receives an interval's invalidations. */
struct receiver {
	struct list iv_link;	 /* interval.receivers, in creation order */
	struct list client_link; /* client.receivers */
	struct interval *iv;
	struct client *client;
	bool sync;    /* UMP_INSERT_SYNC: writers wait for its ack */
	bool owner;   /* the inserting connection */
	bool evicted; /* missed an ack deadline: gets nothing more */
};

struct interval {
	/* pointers and 64-bit fields first, then the 32-bit ones: no padding
	 * holes, 168 bytes, so one interval is one 176-byte malloc chunk */
	struct itree_node node; /* node.start / node.end: the range */
	struct list mm_link;	/* mm.intervals */
	struct list receivers;	/* struct receiver.iv_link */
	struct mm *mm;
	uint64_t id;
	uint64_t invalidations;
	uint64_t *dirty;	 /* dirty.c: a bit per page written since re-armed
				    (UFFD_WP log, SOFT_DIRTY harvested bits), or NULL;
				    &dirty_small when the interval has <= 64 pages */
	uint64_t dirty_small;	 /* the log of a small interval: no allocation */
	struct scan_state *scan; /* scan.c: baseline and due time, NULL while off */
	uint32_t *grants;	 /* grant.c: room for UM_GRANTS_MAX, NULL until the first
				    grant (most intervals have none: 64 bytes each saved) */
	uint32_t slot;
	uint32_t flags;		/* UM_INSERT_* of the insert */
	uint32_t backend;	/* enum ump_proto_backend: how writes are tracked */
	uint32_t revalidate_ms; /* revalidation scan period in force, 0 off */
	unsigned int active;	/* invalidations in flight */
	unsigned int ngrants;	/* grant.c: uids besides root and the owner's */
	bool written;		/* a WRITE invalidation since the last arm */
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
	uv_timer_t wp_timer;	  /* retries writeprotects refused with EAGAIN */
	struct list wp_retry;	  /* struct wp_op, in order */
	unsigned int wp_retries;  /* EAGAINs of the first queued change so far */
	uint64_t barrier_addr;	  /* mm_lock_barrier(): a VMA uffd refuses, 0 unknown */
	int open_handles;	  /* uv handles not yet closed; free at 0 after destroy */
	struct ump_seq_slot *seq; /* seq_max slots, mapped once (seq.h) */
	uint32_t seq_max;	  /* slots in the memfd: the most intervals */
	uint32_t slot_cap;	  /* slots handed out so far cover [0, slot_cap) */
	uint32_t slots_live;	  /* bits set in slot_used */
	uint32_t next_slot;	  /* round robin cursor, < slot_cap */
	uint64_t *slot_used;	  /* bitmap of slot_cap bits */
	struct itree tree;
	struct list intervals;
	struct list invals; /* struct inval.mm_link, creation order */
	uint64_t uffd_features;
	uint64_t remap_from, remap_end; /* source of the REMAP just handled, else 0 */
	int async_uffd;			/* ATTACH with UMP_ATTACH_ASYNC: WP_ASYNC uffd, else -1 */
	uint64_t async_features;	/* what UFFDIO_API enabled on it */
	uv_poll_t async_poll;
	int clear_refs_fd;	/* /proc/PID/clear_refs for SOFT_DIRTY intervals, else -1 */
	uint64_t sd_stamp;	/* scan.c: the batch that last harvested soft-dirty bits */
	uint64_t canary;	/* the owner's soft-dirty canary page (UMP_ATTACH_CANARY), or 0 */
	int canary_fd;		/* /proc/PID/mem for writing the canary, else -1 */
	bool canary_set;	/* written since our last clear: its bit 55 must still be there */
	uint64_t sd_stolen;	/* clears by another clear_refs writer found by the canary */
	struct list forks;	/* mms of followed children (fork_link), same owner connection */
	struct list fork_link;	/* the parent's forks */
	struct list fork_waits; /* struct mm_waiter (fork.c): children not identified yet */
	pid_t *fork_known;	/* the owner's children before its next fork */
	size_t nfork_known;
	bool uffd_user_only; /* the uffd is UFFD_USER_MODE_ONLY (ump_attach.uffd_mode) */
	bool forked;	     /* a followed child (UM_INSERT_FOLLOW_FORK) */
	/*
	 * An interval was inserted over a VMA whose pages are larger than
	 * 4 KiB (hugetlb): page-table changes and WRITE spans are widened to
	 * the VMA's page size (mm_page_span()). Never cleared.
	 */
	bool huge_vmas;
	/*
	 * uffd_event.c, the write streak: a write fault at wstreak_end (the
	 * end of the last WRITE span) gets twice wgranule pages (at most 2
	 * MiB), any other one page.
	 */
	uint64_t wstreak_end;
	uint64_t wgranule;
	bool dead;
	bool destroyed;
};

#endif /* UMD_MM_TYPES_H */
