/* SPDX-License-Identifier: MIT */
/*
 * revalidate.c - um_interval_revalidate(): the revalidation scan's period
 * and the scan on demand (the daemon does the work, see daemon/scan.c).
 */
#include <errno.h>

#include "call.h"
#include "seq.h"

UM_EXPORT int um_interval_revalidate(struct um_interval *iv, unsigned int period_ms,
				     unsigned int flags, uint64_t *changed)
{
	struct ump_revalidate req;
	const struct ump_revalidate_reply *rr;
	struct conn_msg reply;
	int r;

	if (!iv || (flags & ~UM_REVALIDATE_NOW))
		return -EINVAL;
	/* the daemon refuses these too; say so without a round trip */
	if (period_ms != UM_REVALIDATE_DEFAULT && period_ms && period_ms < 10)
		return -EINVAL;
	if (seq_dead(iv))
		return -EFAULT;
	req = (struct ump_revalidate){
		.interval_id = iv->id,
		.period_ms =
			period_ms == UM_REVALIDATE_DEFAULT ? UMP_REVAL_DEFAULT_PERIOD : period_ms,
		.flags = (flags & UM_REVALIDATE_NOW) ? UMP_REVAL_NOW : 0,
	};
	r = call_lock(iv->c);
	if (r < 0)
		return r;
	r = call_roundtrip(iv->c, UMP_MSG_REVALIDATE, &req, sizeof(req), -1, &reply,
			   UM_REQUEST_TIMEOUT_MS, NULL);
	call_unlock(iv->c);
	if (r < 0)
		return r;
	rr = reply.msg.body;
	if (changed)
		*changed = rr->changed;
	return 0;
}
