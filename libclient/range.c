/* SPDX-License-Identifier: MIT */
/*
 * range.c - the hmm_range layer (Documentation/mm/hmm.rst) over intervals: register,
 * validity, wait_until_valid and snapshot; and the raw snapshot that
 * umirrorctl uses.
 */
#include <errno.h>
#include <string.h>

#include "call.h"
#include "encode.h"
#include "range.h"
#include "seq.h"

/*
 * Snapshot [start, start + npages pages) into @out, as many round trips as
 * the result buffer needs, encoded with @enc (raw entries when NULL) in the
 * one pass that copies them out of the result buffer. With @want_seq not NULL every reply's seq
 * must equal *want_seq, else -EAGAIN. Entries are filled also when a page is a hole or unreadable;
 * *filled says how many are valid.
 *
 * Waits for: one round trip per chunk. Holds: req_lock during each.
 * Return: 0, -EFAULT (a hole), -EPERM (an unreadable page), or another
 * -errno with *filled entries valid.
 */
int snapshot_chunks(struct um_client *c, uint64_t interval_id, pid_t pid, uint64_t start,
		    uint64_t npages, uint64_t *out, int32_t *nodes, const struct um_encoding *enc,
		    const uint64_t *want_seq, uint64_t *filled)
{
	const uint64_t chunk_max = c->result_size / sizeof(uint64_t);
	int worst = 0, r;

	*filled = 0;
	while (*filled < npages) {
		struct ump_snapshot req = {
			.interval_id = interval_id,
			.start = start + *filled * UMP_PAGE_SIZE,
			.npages = npages - *filled,
			.pid = pid,
			.flags = nodes ? UMP_SNAP_NODES : 0,
		};
		const struct ump_snapshot_reply *sr;
		struct conn_msg reply;

		if (req.npages > chunk_max)
			req.npages = chunk_max;
		r = call_lock(c);
		if (r < 0)
			return r;
		r = call_roundtrip(c, UMP_MSG_SNAPSHOT, &req, sizeof(req), -1, &reply,
				   UM_REQUEST_TIMEOUT_MS, NULL);
		if (r < 0 && r != -EFAULT && r != -EPERM)
			goto unlock;
		sr = reply.msg.body;
		if (sr->npages == 0) {
			/* a dead owner, or a daemon that makes no progress */
			r = r < 0 ? r : -EPROTO;
			goto unlock;
		}
		if (sr->npages > req.npages || sr->offset > c->result_size ||
		    sr->npages > (c->result_size - sr->offset) / sizeof(uint64_t)) {
			r = -EPROTO;
			goto unlock;
		}
		if (want_seq && sr->seq != *want_seq) {
			r = -EAGAIN;
			goto unlock;
		}
		if (nodes && (sr->nodes_offset & 7 || sr->nodes_offset > c->result_size ||
			      sr->npages > (c->result_size - sr->nodes_offset) / sizeof(int32_t))) {
			r = -EPROTO;
			goto unlock;
		}
		if (nodes)
			memcpy(nodes + *filled, (const char *)c->result + sr->nodes_offset,
			       sr->npages * sizeof(int32_t));
		/* copy out before the next request can reuse the buffer */
		if (enc)
			encode_entries(enc,
				       (const uint64_t *)((const char *)c->result + sr->offset),
				       out + *filled, sr->npages);
		else
			memcpy(out + *filled, (const char *)c->result + sr->offset,
			       sr->npages * sizeof(uint64_t));
		*filled += sr->npages;
		if (r == -EFAULT || (r == -EPERM && worst == 0))
			worst = r;
		r = 0;
	unlock:
		call_unlock(c);
		if (r < 0)
			return r;
	}
	return worst;
}

UM_EXPORT long um_snapshot_raw(struct um_client *c, pid_t pid, uint64_t start, uint64_t npages,
			       uint64_t *out)
{
	uint64_t filled;
	int r;

	if (!c || !out || pid <= 0 || !npages || (start & (UMP_PAGE_SIZE - 1)))
		return -EINVAL;
	if (npages > (UINT64_MAX >> UMP_PAGE_SHIFT) || start + (npages << UMP_PAGE_SHIFT) < start)
		return -EINVAL;
	r = snapshot_chunks(c, 0, pid, start, npages, out, NULL, NULL, NULL, &filled);
	return r < 0 ? r : (long)npages;
}

UM_EXPORT int um_range_register(struct um_range *range, struct um_interval *iv)
{
	struct um_encoding e;

	if (!range || !iv || !range->pfns)
		return -EINVAL;
	if ((range->start | range->end) & (UMP_PAGE_SIZE - 1) || range->end <= range->start)
		return -EINVAL;
	if (range->start < iv->start || range->end - iv->start > iv->length)
		return -EINVAL;
	if (encode_init(&e, range->flags, range->values, range->pfn_shift) < 0)
		return -EINVAL;
	if (seq_dead(iv))
		return -EFAULT;
	/* no wait (as hmm_range): an odd value just makes the range invalid */
	range->notifier_seq = seq_load(iv);
	range->iv = iv;
	return 0;
}

UM_EXPORT void um_range_unregister(struct um_range *range)
{
	if (range)
		range->iv = NULL;
}

UM_EXPORT bool um_range_valid(const struct um_range *range)
{
	if (!range || !range->iv || (range->notifier_seq & 1))
		return false;
	return !um_interval_check_retry(range->iv, range->notifier_seq) && !seq_dead(range->iv);
}

UM_EXPORT int um_range_wait_until_valid(struct um_range *range, unsigned int timeout_ms)
{
	uint64_t seq;
	int r;

	if (!range || !range->iv)
		return -EINVAL;
	r = seq_wait_even(range->iv, timeout_ms ? timeout_ms : UM_DEFAULT_TIMEOUT_MS, &seq);
	if (r == 0)
		range->notifier_seq = seq;
	return r;
}

/*
 * range->notifier_seq is stale: an invalidation started since it was
 * taken. Take a new one the way um_range_wait_until_valid() does (waiting
 * while an invalidation is in progress), so that calling again makes
 * progress whatever the caller's loop did with its own sequence value: a
 * loop that kept read_begin's value in a variable of its own used to
 * compare against the same stale notifier_seq forever.
 * Return: -EAGAIN (the entries are not valid), or the wait's error.
 */
static long renew_seq(struct um_range *range)
{
	uint64_t seq;
	int r = seq_wait_even(range->iv, UM_DEFAULT_TIMEOUT_MS, &seq);

	if (r)
		return r;
	range->notifier_seq = seq;
	return -EAGAIN;
}

UM_EXPORT long um_range_snapshot(struct um_range *range)
{
	struct um_interval *iv;
	struct um_encoding e;
	uint64_t npages, filled;
	int r;

	if (!range || !range->iv || !range->pfns)
		return -EINVAL;
	iv = range->iv;
	if (encode_init(&e, range->flags, range->values, range->pfn_shift) < 0)
		return -EINVAL;
	if (seq_dead(iv))
		return -EFAULT;
	if (!um_range_valid(range))
		return renew_seq(range);

	npages = (range->end - range->start) / UMP_PAGE_SIZE;
	r = snapshot_chunks(iv->c, iv->id, iv->pid, range->start, npages, range->pfns, range->nodes,
			    &e, &range->notifier_seq, &filled);
	if (seq_dead(iv))
		return -EFAULT;
	if (r == -EAGAIN)
		return renew_seq(range);
	return r < 0 ? r : (long)npages;
}
