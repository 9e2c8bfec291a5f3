/* SPDX-License-Identifier: MIT */
/*
 * place.c - requests about who and where: grants to subscribe
 * (um_interval_grant) and NUMA placement hints (um_range_place).
 */
#include <errno.h>

#include "call.h"
#include "seq.h"

UM_EXPORT int um_interval_grant(struct um_interval *iv, uid_t uid, bool allow)
{
	struct ump_grant g;
	struct conn_msg reply;
	int r;

	if (!iv)
		return -EINVAL;
	if (seq_dead(iv))
		return -EFAULT;
	g = (struct ump_grant){
		.interval_id = iv->id,
		.uid = (uint32_t)uid,
		.flags = allow ? 0 : UMP_GRANT_REVOKE,
	};
	r = call_lock(iv->c);
	if (r < 0)
		return r;
	r = call_roundtrip(iv->c, UMP_MSG_GRANT, &g, sizeof(g), -1, &reply, UM_REQUEST_TIMEOUT_MS,
			   NULL);
	call_unlock(iv->c);
	return r;
}

UM_EXPORT long um_range_place(struct um_range *range, int node)
{
	const struct ump_place_reply *pr;
	struct um_interval *iv;
	struct ump_place p;
	struct conn_msg reply;
	int r;

	if (!range || !range->iv || node < 0)
		return -EINVAL;
	iv = range->iv;
	if ((range->start | range->end) & (UMP_PAGE_SIZE - 1) || range->end <= range->start ||
	    range->start < iv->start || range->end - iv->start > iv->length)
		return -EINVAL;
	if (seq_dead(iv))
		return -EFAULT;
	p = (struct ump_place){
		.interval_id = iv->id,
		.start = range->start,
		.npages = (range->end - range->start) / UMP_PAGE_SIZE,
		.node = node,
	};
	r = call_lock(iv->c);
	if (r < 0)
		return r;
	/* the daemon answers after the MIGRATE acks (ours included) and the move */
	r = call_roundtrip(iv->c, UMP_MSG_PLACE, &p, sizeof(p), -1, &reply, UM_REQUEST_TIMEOUT_MS,
			   NULL);
	call_unlock(iv->c);
	if (r < 0)
		return r;
	pr = reply.msg.body;
	if (pr->moved > p.npages)
		return -EPROTO;
	return (long)pr->moved;
}
