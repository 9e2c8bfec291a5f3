/* SPDX-License-Identifier: MIT */
/*
 * inval.h - invalidation records (mmu_interval_notifier's
 * invalidate_range_start / _end done across processes).
 *
 * A record is created for one CPU page-table change of one address space.
 * Start: every interval it hits gets its seq odd and each receiver an
 * event. It completes when every synchronous receiver acked or timed out
 * (then evicted): the deferred page-table change is performed (unprotect
 * the written page, re-arm after REMOVE/FORK), seqs go even, waiters wake.
 */
#ifndef UMD_INVAL_H
#define UMD_INVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "list.h"
#include "mm_types.h"

struct mm;
struct interval;
struct receiver;
struct client;
struct server;
struct ump_ack;

struct inval_wait {
	struct receiver *r; /* NULL once acked, timed out or gone */
	uint64_t seq;	    /* the odd seq sent to it */
	uint64_t mark;	    /* client_send_mark() of the event */
	bool queued;	    /* the event waited in the daemon's queue (no extra time yet) */
	bool unread;	    /* had the extra time for input the daemon had not read */
};

struct inval;

/*
 * A held record (inval_start_held()) does not complete when its acks are
 * in: @acked runs instead and the record stays in flight (seqs odd) until
 * its holder calls inval_finish(). The ack timeout then runs once more
 * for the holder's part: @expired, which must call inval_finish(). When
 * the owner goes away first, @dropped runs and the record is freed
 * without completion; the holder must forget it there.
 */
struct inval_hold_ops {
	void (*acked)(struct inval *inv, void *arg);
	void (*expired)(struct inval *inv, void *arg);
	void (*dropped)(struct inval *inv, void *arg);
};

struct inval {
	struct list mm_link;	/* mm.invals */
	struct list timed_link; /* server.timed while acks are pending */
	struct mm *mm;
	uint32_t reason; /* UMP_REASON_* */
	uint32_t tid;
	uint64_t start, end; /* the source span (WRITE: the page) */
	uint64_t deadline_ms;
	unsigned int nhits, nwaits, npending;
	struct inval_hit *hits;
	struct inval_wait *waits;
	const struct inval_hold_ops *hold; /* NULL: completes after its acks (or the
					      holder is done: applying) */
	void *hold_arg;
	struct mm_span *armed; /* inval_armed_only(): the pages write-protected, sorted */
	unsigned int narmed;
	bool armed_only;
	bool held;     /* started held (inval_start_held()) */
	bool acked;    /* held: acks in, the holder's part runs */
	bool applying; /* complete: waits for its page-table changes to be applied */
};

/**
 * inval_start() - create, announce and (if nobody must ack) complete one
 * invalidation of @mm.
 * @reason: UMP_REASON_*
 * @start, @end: the source span (for WRITE, the faulting page)
 * @tid: faulting thread or 0
 * @hits: the affected intervals and their spans (copied)
 * @nhits: may be 0 (then only the deferred change is done)
 *
 * Return: 0, or -ENOMEM (then the deferred change is done at once so no
 * writer stays blocked).
 */
int inval_start(struct mm *mm, uint32_t reason, uint64_t start, uint64_t end, uint32_t tid,
		const struct inval_hit *hits, unsigned int nhits);

/**
 * inval_start_held() - as inval_start(), for a record that stays in flight
 * after its acks until inval_finish() (see struct inval_hold_ops). No
 * deferred page-table change is done at completion: the holder does its own.
 * @tid: the faulting thread (WRITE) or 0
 * @ops, @arg: the holder's callbacks; @ops->acked may run before this returns
 * @out: the record, set before any callback runs
 *
 * Return: 0, or -ENOMEM (nothing started, no callback runs).
 */
int inval_start_held(struct mm *mm, uint32_t reason, uint64_t start, uint64_t end, uint32_t tid,
		     const struct inval_hit *hits, unsigned int nhits,
		     const struct inval_hold_ops *ops, void *arg, struct inval **out);

/**
 * inval_armed_only() - the one page-table change made under @inv was
 * write-protecting @runs (@n sorted, disjoint spans; a dirty REARM), so
 * its completion tells the scan that those pages are armed
 * (hooks.armed) instead of taking the baseline of its whole span again
 * (hooks.explained, a pagemap read of every page it covers). Takes @runs
 * (malloc'd; freed with the record). Call before inval_finish().
 * Waits for nothing.
 */
void inval_armed_only(struct inval *inv, struct mm_span *runs, unsigned int n);

/**
 * inval_finish() - complete a held record: seqs even, waiters woken, the
 * record freed. May be called from its own acked/expired callbacks.
 */
void inval_finish(struct inval *inv);

/**
 * inval_ack() - ACK from @c: count the oldest matching pending wait as
 * given. An ACK that matches nothing (late, duplicate) is ignored.
 */
void inval_ack(struct client *c, const struct ump_ack *ack);

/**
 * inval_write_in_flight() - is a WRITE invalidation of @page pending whose
 * completion (or, held, whose acks) will unprotect it?
 */
bool inval_write_in_flight(struct mm *mm, uint64_t page);

/**
 * inval_forget_receiver() - @r will get nothing more: its pending waits
 * count as given (records may complete).
 */
void inval_forget_receiver(struct receiver *r);

/**
 * inval_forget_interval() - @iv is being removed: drop it from every
 * record and drop its receivers' waits (records may complete).
 */
void inval_forget_interval(struct interval *iv);

/**
 * inval_drop_all() - owner gone: free every record of @mm, no completion
 * (held records: their dropped callback runs first).
 */
void inval_drop_all(struct mm *mm);

/** inval_timer_init() - set up the ack timeout timer of @s. Return: 0/-errno. */
int inval_timer_init(struct server *s);

#endif /* UMD_INVAL_H */
