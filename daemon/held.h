/* SPDX-License-Identifier: MIT */
/*
 * held.h - a request whose reply waits for a held invalidation and the
 * work its holder does after the acks: FAULT (the owner's populate) and
 * PLACE (the migration).
 *
 * The lifecycle both share: the reply is parked on the requester's
 * connection (struct deferred), then inval_start_held() announces the
 * change; when the holder's part is over the record is completed (seqs
 * even) and then the reply sent. Either side may go first: the requester
 * (its connection closes: the record runs on, unanswered, and is freed at
 * its end) or the owner (the record is dropped: the reply is -EFAULT).
 */
#ifndef UMD_HELD_H
#define UMD_HELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lookup.h"
#include "server_types.h"

struct hit_walk;
struct inval;
struct inval_hold_ops;
struct mm;

/* Embedded in the holder's record. */
struct held_req {
	struct deferred d;		      /* the parked reply, while @parked */
	bool parked;			      /* d is on its client's list: answer at the end */
	struct inval *inv;		      /* the held record while it is in flight */
	void (*destroy)(struct held_req *hr); /* frees the holder's record */
};

/**
 * held_start() - park request @id of @type from @c, then start one held
 * invalidation of @mm over @h (span and hits) for @reason.
 * @ops: the holder's callbacks; their @arg is @hr. @ops->acked may run
 *       (and even end @hr) before this returns.
 * @destroy: frees the record that embeds @hr, once @hr has ended
 *
 * Return: 0 (the caller answers -EINPROGRESS), or -ENOMEM: nothing is
 * parked or started and the caller still owns (and frees) its record.
 */
int held_start(struct held_req *hr, struct client *c, uint16_t type, uint64_t id, struct mm *mm,
	       uint32_t reason, const struct hit_walk *h, const struct inval_hold_ops *ops,
	       void (*destroy)(struct held_req *hr));

/** held_parked() - will @hr's end answer a requester (still connected)? */
static inline bool held_parked(const struct held_req *hr)
{
	return hr->parked;
}

/**
 * held_complete() - the holder's part is over: complete the record (seqs
 * even, waiters woken, inval_finish()). Idempotent. Call before reading
 * what the reply reports, then held_end().
 */
void held_complete(struct held_req *hr);

/**
 * held_end() - answer the requester if it is still there (@status, and
 * @body of @len bytes: the reply type's full body; zeroed on an error
 * status) and destroy the record. The record must be completed or dropped.
 */
void held_end(struct held_req *hr, int status, void *body, size_t len);

/**
 * held_dropped() - the holder's @ops->dropped, as it is: the owner went
 * away and inval_drop_all() frees the record; answer -EFAULT, destroy.
 * @arg: the struct held_req
 */
void held_dropped(struct inval *inv, void *arg);

#endif /* UMD_HELD_H */
