/* SPDX-License-Identifier: MIT */
/*
 * dirty.c - tracking backends and the dirty-page harvest
 * (um_interval_dirty, um_interval_backend, um_backend_str).
 *
 * The records come through the result buffer, which the next request on
 * this connection overwrites: they are copied out under req_lock.
 */
#include "dirty.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "call.h"
#include "seq.h"
#include "uffd.h"

int dirty_async_prepare(struct um_client *c)
{
	const uint64_t need = UMP_KFEAT_WP_ASYNC | UMP_KFEAT_PAGEMAP_SCAN;
	int r;

	if (c->async_attached || (c->kfeatures & need) != need)
		return 0;
	r = uffd_attach_async(c);
	/* refused (no uffd, masked meanwhile): the daemon chooses another backend */
	return r == -ENOTCONN || r == -ETIMEDOUT ? r : 0;
}

void dirty_learn_backend(struct um_client *c, struct um_interval *iv)
{
	const struct ump_list_reply *lr;
	struct conn_msg reply;
	uint64_t n;

	if (call_roundtrip(c, UMP_MSG_LIST, NULL, 0, -1, &reply, UM_REQUEST_TIMEOUT_MS, NULL) < 0)
		return;
	lr = reply.msg.body;
	n = lr->count;
	if (lr->offset > c->result_size ||
	    n > (c->result_size - lr->offset) / sizeof(struct ump_list_rec))
		return;
	for (uint64_t i = 0; i < n; i++) {
		struct ump_list_rec rec;

		memcpy(&rec, (const char *)c->result + lr->offset + i * sizeof(rec), sizeof(rec));
		if (rec.interval_id != iv->id)
			continue;
		if (rec.backend >= UMP_BACKEND_UFFD_WP && rec.backend <= UMP_BACKEND_MAX) {
			pthread_mutex_lock(&c->lock);
			iv->backend = (enum um_backend)rec.backend;
			pthread_mutex_unlock(&c->lock);
		}
		return;
	}
}

UM_EXPORT enum um_backend um_interval_backend(const struct um_interval *iv)
{
	enum um_backend b;

	if (!iv)
		return 0;
	pthread_mutex_lock(&iv->c->lock);
	b = iv->backend;
	pthread_mutex_unlock(&iv->c->lock);
	return b;
}

UM_EXPORT const char *um_backend_str(enum um_backend backend)
{
	switch (backend) {
	case UM_BACKEND_UFFD_WP:
		return "uffd-wp";
	case UM_BACKEND_WP_ASYNC:
		return "wp-async";
	case UM_BACKEND_SOFT_DIRTY:
		return "soft-dirty";
	case UM_BACKEND_SCAN:
		return "scan";
	}
	return "?";
}

/*
 * One DIRTY round trip from @from; appends to @out[*n..max), merging a run
 * that continues the last one. Caller holds req_lock.
 * Return: 0 with *next where the daemon stopped, or -errno.
 */
static int dirty_once(struct um_interval *iv, uint64_t from, uint64_t end, unsigned int flags,
		      struct um_dirty_range *out, size_t max, size_t *n, uint64_t *next)
{
	struct um_client *c = iv->c;
	const struct ump_dirty_reply *dr;
	struct conn_msg reply;
	struct ump_dirty req = {
		.interval_id = iv->id,
		.start = from,
		.end = end,
		.flags = flags & UM_DIRTY_REARM ? UMP_DIRTY_REARM : 0,
	};
	uint64_t room = max - *n, cap = c->result_size / sizeof(struct ump_dirty_rec);
	uint64_t prev_end = *n ? out[*n - 1].end : 0;
	int r;

	/* never more than fit: with REARM whatever the daemon reports is re-armed */
	req.max_ranges = room > UINT32_MAX ? UINT32_MAX : (uint32_t)room;
	if (req.max_ranges > cap)
		req.max_ranges = (uint32_t)cap;
	r = call_roundtrip(c, UMP_MSG_DIRTY, &req, sizeof(req), -1, &reply, UM_REQUEST_TIMEOUT_MS,
			   NULL);
	if (r < 0)
		return r;
	dr = reply.msg.body;
	if (dr->backend >= UMP_BACKEND_UFFD_WP && dr->backend <= UMP_BACKEND_MAX) {
		pthread_mutex_lock(&c->lock);
		iv->backend = (enum um_backend)dr->backend;
		pthread_mutex_unlock(&c->lock);
	}
	if (dr->count > req.max_ranges || dr->offset > c->result_size ||
	    dr->count > (c->result_size - dr->offset) / sizeof(struct ump_dirty_rec) ||
	    dr->walk_end <= from || dr->walk_end > end)
		return -EPROTO;
	for (uint64_t i = 0; i < dr->count; i++) {
		struct ump_dirty_rec rec;

		memcpy(&rec, (const char *)c->result + dr->offset + i * sizeof(rec), sizeof(rec));
		if (rec.start < from || rec.end > dr->walk_end || rec.start >= rec.end ||
		    (rec.start | rec.end) & (UMP_PAGE_SIZE - 1) || rec.start < prev_end)
			return -EPROTO;
		if (*n && out[*n - 1].end == rec.start) {
			out[*n - 1].end = rec.end;
		} else if (*n < max) {
			out[(*n)++] = (struct um_dirty_range){ rec.start, rec.end };
		} else {
			return -EPROTO; /* more than asked for */
		}
		prev_end = rec.end;
	}
	*next = dr->walk_end;
	return 0;
}

UM_EXPORT long um_interval_dirty(struct um_interval *iv, uint64_t start, uint64_t end,
				 unsigned int flags, struct um_dirty_range *out, size_t max,
				 uint64_t *walk_end)
{
	uint64_t cur = start;
	size_t n = 0;
	int r;

	if (!iv || !out || !max || (flags & ~UM_DIRTY_REARM) || start >= end ||
	    (start | end) & (UMP_PAGE_SIZE - 1) || start < iv->start ||
	    end > iv->start + iv->length)
		return -EINVAL;
	if (seq_dead(iv))
		return -EFAULT;
	r = call_lock(iv->c);
	if (r < 0)
		return r;
	/* the daemon stops at its result buffer too: go on from where it did */
	while (cur < end && n < max) {
		uint64_t next = cur;

		/* each round moves forward: dirty_once() checks walk_end > cur */
		r = dirty_once(iv, cur, end, flags, out, max, &n, &next);
		if (r < 0)
			break;
		cur = next;
	}
	call_unlock(iv->c);
	if (r < 0)
		return r;
	if (walk_end)
		*walk_end = cur;
	return (long)n;
}
