/* SPDX-License-Identifier: MIT */
/*
 * held.c - the parked reply of a request that holds an invalidation
 * (FAULT, PLACE): see held.h.
 */
#include "held.h"

#include <assert.h>
#include <errno.h>

#include "inval.h"
#include "peer.h"

/* the requester's connection is going: the record runs on without it */
static void held_cancel(struct deferred *d)
{
	struct held_req *hr = container_of(d, struct held_req, d);

	hr->parked = false;
	if (!hr->inv)
		hr->destroy(hr);
}

int held_start(struct held_req *hr, struct client *c, uint16_t type, uint64_t id, struct mm *mm,
	       uint32_t reason, const struct hit_walk *h, const struct inval_hold_ops *ops,
	       void (*destroy)(struct held_req *hr))
{
	int ret;

	hr->destroy = destroy;
	/* parked first: the acks may all be in (and the reply sent) before the start returns */
	deferred_add(c, &hr->d, type, id, held_cancel);
	hr->parked = true;
	ret = inval_start_held(mm, reason, h->start, h->end, 0, h->v, h->n, ops, hr, &hr->inv);
	if (ret) {
		list_del(&hr->d.link);
		hr->parked = false;
	}
	return ret;
}

void held_complete(struct held_req *hr)
{
	struct inval *inv = hr->inv;

	if (!inv)
		return;
	hr->inv = NULL;
	inval_finish(inv);
}

void held_end(struct held_req *hr, int status, void *body, size_t len)
{
	assert(!hr->inv);
	if (hr->parked) {
		hr->parked = false;
		deferred_reply(&hr->d, status, body, len);
	}
	hr->destroy(hr);
}

void held_dropped(struct inval *inv, void *arg)
{
	struct held_req *hr = arg;

	hr->inv = NULL;
	held_end(hr, -EFAULT, NULL, 0);
}
