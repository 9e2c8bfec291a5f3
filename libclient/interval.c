/* SPDX-License-Identifier: MIT */
/*
 * interval.c - intervals (the kernel's mmu_interval_notifier): insert,
 * subscribe, remove, and running the callbacks of the daemon's events
 * (handed down by the sink client.c installs). The read side of the
 * sequence protocol is in seq.c.
 */
#include "interval.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "call.h"
#include "dirty.h"
#include "seq.h"
#include "trap.h"
#include "uffd.h"

/* --- the table (c->lock) ---------------------------------------------- */

/* index of the first interval with id >= @id */
static size_t table_lower(const struct um_client *c, uint64_t id)
{
	size_t lo = 0, hi = c->niv;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->ivs[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Make room for one more interval, so the reader's hook cannot fail. */
static int table_reserve(struct um_client *c)
{
	struct um_interval **n;
	size_t cap;

	if (c->niv < c->cap_iv)
		return 0;
	cap = c->cap_iv ? c->cap_iv * 2 : 16;
	n = realloc(c->ivs, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	c->ivs = n;
	c->cap_iv = cap;
	return 0;
}

/* After its equals, so the same id subscribed twice keeps its order. */
static void table_add(struct um_client *c, struct um_interval *iv)
{
	size_t i = table_lower(c, iv->id + 1);

	memmove(&c->ivs[i + 1], &c->ivs[i], (c->niv - i) * sizeof(*c->ivs));
	c->ivs[i] = iv;
	c->niv++;
}

static void table_del(struct um_client *c, struct um_interval *iv)
{
	for (size_t i = table_lower(c, iv->id); i < c->niv && c->ivs[i]->id == iv->id; i++) {
		if (c->ivs[i] != iv)
			continue;
		memmove(&c->ivs[i], &c->ivs[i + 1], (c->niv - i - 1) * sizeof(*c->ivs));
		c->niv--;
		return;
	}
}

/* --- insert / subscribe / remove ------------------------------------- */

static struct um_interval *interval_new(struct um_client *c, unsigned int flags,
					const struct um_interval_ops *ops, void *priv)
{
	struct um_interval *iv = calloc(1, sizeof(*iv));

	if (!iv)
		return NULL;
	iv->c = c;
	iv->ops = ops;
	iv->priv = priv;
	iv->sync = !(flags & UM_INTERVAL_ASYNC);
	atomic_init(&iv->dead, false);
	return iv;
}

/*
 * Send @type (INSERT or SUBSCRIBE) whose reply @hook turns into a table
 * entry, with room in the table reserved first so that the hook cannot
 * fail for want of memory. Caller holds req_lock; c->lock is taken for
 * the reservation only. Waits for the reply.
 * Return: as call_roundtrip(), or -ENOMEM; reply->fd is -1 or the caller's.
 */
static int interval_request(struct um_client *c, uint16_t type, const void *body, size_t len,
			    struct conn_msg *reply, const struct call_hook *hook)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = table_reserve(c);
	pthread_mutex_unlock(&c->lock);
	if (r < 0) {
		reply->fd = -1;
		return r;
	}
	return call_roundtrip(c, type, body, len, -1, reply, UM_REQUEST_TIMEOUT_MS, hook);
}

/*
 * The daemon made interval @id but its reply was unusable (the hook left
 * the interval without a slot): give it back, so nothing holds it there.
 * Caller holds req_lock. Waits for the REMOVE reply, whose result does not
 * matter: the request failed either way.
 * Return: -EPROTO.
 */
static int interval_give_back(struct um_client *c, uint64_t id)
{
	struct ump_remove rm = { .interval_id = id };
	struct conn_msg reply;

	if (!id)
		return -EPROTO;
	call_roundtrip(c, UMP_MSG_REMOVE, &rm, sizeof(rm), -1, &reply, UM_REQUEST_TIMEOUT_MS, NULL);
	if (reply.fd >= 0)
		close(reply.fd);
	return -EPROTO;
}

/* Reader-side hook (c->lock held): the new interval joins the table now. */
static void insert_hook(struct um_client *c, struct conn_msg *reply, void *arg)
{
	const struct ump_insert_reply *ir = reply->msg.body;
	struct um_interval *iv = arg;

	if (!ir->interval_id || ir->slot >= c->seq_slots)
		return; /* the requester sees id 0 and fails with -EPROTO */
	iv->id = ir->interval_id;
	iv->slot = &c->seq_area[ir->slot];
	iv->backend = (enum um_backend)ir->backend;
	table_add(c, iv);
}

UM_EXPORT int um_interval_insert(struct um_client *c, void *addr, size_t len, unsigned int flags,
				 const struct um_interval_ops *ops, void *priv,
				 struct um_interval **out)
{
	uint64_t start = (uintptr_t)addr;
	struct ump_insert ins = { .start = start, .length = len };
	struct call_hook hook = { .fn = insert_hook };
	struct um_interval *iv;
	struct conn_msg reply;
	int r;

	if (!c || !out ||
	    (flags & ~(UM_INTERVAL_ASYNC | UM_INTERVAL_TRACK_ASYNC | UM_INTERVAL_FOLLOW_FORK)))
		return -EINVAL;
	/* a followed child needs an owner in this process; async tracking is not followed */
	if ((flags & UM_INTERVAL_FOLLOW_FORK) &&
	    (!ops || !ops->fork || (flags & UM_INTERVAL_TRACK_ASYNC)))
		return -EINVAL;
	if (!len || (start | len) & (UMP_PAGE_SIZE - 1) || start + len < start)
		return -EINVAL;
	/* tracked after the fact: no writer ever waits for this mirror */
	if (flags & UM_INTERVAL_TRACK_ASYNC)
		flags |= UM_INTERVAL_ASYNC;
	iv = interval_new(c, flags, ops, priv);
	if (!iv)
		return -ENOMEM;
	iv->start = start;
	iv->length = len;
	iv->pid = getpid();
	ins.flags = iv->sync ? UMP_INSERT_SYNC : 0;
	if (flags & UM_INTERVAL_FOLLOW_FORK)
		ins.flags |= UM_INSERT_FOLLOW_FORK;
	if (flags & UM_INTERVAL_TRACK_ASYNC)
		ins.flags |= UMP_INSERT_TRACK_ASYNC;
	hook.arg = iv;

	/* before the daemon can know it: a trapped call over it is asked about */
	trap_range_add(start, start + len);
	if (flags & UM_INTERVAL_FOLLOW_FORK)
		trap_follow_on(); /* and so are its children's */
	r = call_lock(c);
	if (r < 0)
		goto fail;
	if (!c->seq_area) {
		r = uffd_attach(c);
		if (r < 0)
			goto unlock;
	}
	if (flags & UM_INTERVAL_TRACK_ASYNC) {
		r = dirty_async_prepare(c);
		if (r < 0)
			goto unlock;
	}
	r = interval_request(c, UMP_MSG_INSERT, &ins, sizeof(ins), &reply, &hook);
	if (r == 0 && !iv->slot)
		r = interval_give_back(
			c, ((const struct ump_insert_reply *)reply.msg.body)->interval_id);
unlock:
	call_unlock(c);
	if (r < 0)
		goto fail;
	*out = iv;
	return 0;
fail:
	trap_range_del(start, start + len);
	free(iv);
	return r;
}

struct subscribe_ctx {
	struct um_interval *iv;
	int fd;
};

/*
 * Reader-side hook (c->lock held): map the owner's seq area and put the
 * interval in the table before the first event for it can be read.
 */
static void subscribe_hook(struct um_client *c, struct conn_msg *reply, void *arg)
{
	const struct ump_subscribe_reply *sr = reply->msg.body;
	struct subscribe_ctx *ctx = arg;
	struct um_interval *iv = ctx->iv;
	const struct ump_seq_slot *s;
	void *p;

	if (reply->fd < 0 || !sr->length || sr->start + sr->length < sr->start ||
	    seq_map_slot(reply->fd, sr->seq_slots, sr->slot, &p, &s))
		return;
	iv->map = p;
	iv->map_len = UMP_PAGE_SIZE;
	iv->slot = s;
	iv->start = sr->start;
	iv->length = sr->length;
	table_add(c, iv);
}

UM_EXPORT int um_interval_subscribe(struct um_client *c, pid_t pid, uint64_t interval_id,
				    unsigned int flags, const struct um_interval_ops *ops,
				    void *priv, struct um_interval **out)
{
	struct ump_subscribe sub = { .interval_id = interval_id, .pid = pid };
	struct subscribe_ctx ctx = { .fd = -1 };
	struct call_hook hook = { .fn = subscribe_hook, .arg = &ctx };
	struct um_interval *iv;
	struct conn_msg reply;
	int r;

	if (!c || !out || pid <= 0 || !interval_id || (flags & ~UM_INTERVAL_ASYNC))
		return -EINVAL;
	iv = interval_new(c, flags, ops, priv);
	if (!iv)
		return -ENOMEM;
	/* the hook sets the table's key from the reply; the id is ours already */
	iv->id = interval_id;
	iv->pid = pid;
	sub.flags = iv->sync ? UMP_INSERT_SYNC : 0;
	ctx.iv = iv;

	r = call_lock(c);
	if (r < 0)
		goto fail;
	r = interval_request(c, UMP_MSG_SUBSCRIBE, &sub, sizeof(sub), &reply, &hook);
	if (r == 0 && !iv->slot)
		r = interval_give_back(c, interval_id);
	if (r == 0)
		dirty_learn_backend(c, iv);
	call_unlock(c);
	if (reply.fd >= 0)
		close(reply.fd);
	if (r < 0)
		goto fail;
	*out = iv;
	return 0;
fail:
	free(iv);
	return r;
}

UM_EXPORT int um_interval_remove(struct um_interval *iv)
{
	struct um_client *c;
	int r = 0;

	if (!iv)
		return 0;
	if (call_current_callback() == iv)
		return -EDEADLK;
	c = iv->c;

	if (!seq_dead(iv)) {
		struct ump_remove rm = { .interval_id = iv->id };
		struct conn_msg reply;

		r = call_lock(c);
		if (r < 0)
			return r;
		r = call_roundtrip(c, UMP_MSG_REMOVE, &rm, sizeof(rm), -1, &reply,
				   UM_REQUEST_TIMEOUT_MS, NULL);
		call_unlock(c);
		/*
		 * The daemon dropped the interval while the REMOVE was on its
		 * way (its owner died, the RELEASE is behind): removed all the
		 * same, as the kernel's notifier removal cannot fail.
		 */
		if (r == -ENOENT && seq_dead(iv))
			r = 0;
	} else if (atomic_load(&c->dead)) {
		r = -ENOTCONN;
	}

	pthread_mutex_lock(&c->lock);
	iv->removing = true;
	table_del(c, iv);
	while (iv->busy)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);

	if (iv->map)
		munmap(iv->map, iv->map_len);
	else if (iv->pid == getpid())
		trap_range_del(iv->start, iv->start + iv->length); /* inserted here */
	free(iv);
	return r;
}

/* --- events ----------------------------------------------------------- */

/*
 * Find the first interval of @id that still takes callbacks and mark a
 * callback running on it. c->lock held. @release: pick only intervals
 * whose release callback has not run, and mark it run.
 */
static struct um_interval *get_for_callback(struct um_client *c, uint64_t id, bool release,
					    size_t *from)
{
	for (size_t i = *from; i < c->niv && c->ivs[i]->id == id; i++) {
		struct um_interval *iv = c->ivs[i];

		if (iv->removing || (release && iv->released))
			continue;
		if (release) {
			iv->released = true;
			atomic_store(&iv->dead, true);
			seq_wake_all(iv);
		} else if (atomic_load(&iv->dead)) {
			continue;
		}
		iv->busy++;
		*from = i + 1;
		return iv;
	}
	return NULL;
}

static void put_after_callback(struct um_client *c, struct um_interval *iv)
{
	if (--iv->busy == 0)
		pthread_cond_broadcast(&c->cond);
}

static void handle_invalidate(struct um_client *c, const struct ump_ev_invalidate *ev)
{
	struct um_invalidation inv = {
		.start = ev->start,
		.end = ev->end,
		.seq = ev->seq,
		.reason = (enum um_reason)ev->reason,
		.sync = ev->flags & UMP_INV_SYNC,
		.tid = (pid_t)ev->tid,
	};
	struct um_interval *iv;
	size_t from;

	if (ev->flags & UMP_INV_WATCH) {
		void (*cb)(uint64_t, pid_t, const struct um_invalidation *, void *);
		void *priv;

		pthread_mutex_lock(&c->lock);
		cb = c->watch_cb;
		priv = c->watch_priv;
		pthread_mutex_unlock(&c->lock);
		if (cb) {
			call_callback_enter(NULL);
			cb(ev->interval_id, ev->pid, &inv, priv);
			call_callback_exit();
		}
		return;
	}

	pthread_mutex_lock(&c->lock);
	from = table_lower(c, ev->interval_id);
	while ((iv = get_for_callback(c, ev->interval_id, false, &from))) {
		pthread_mutex_unlock(&c->lock);
		if (iv->ops && iv->ops->invalidate) {
			call_callback_enter(iv);
			iv->ops->invalidate(iv, &inv, iv->priv);
			call_callback_exit();
		}
		pthread_mutex_lock(&c->lock);
		put_after_callback(c, iv);
		/* the table may have changed meanwhile: find our place again */
		from = table_lower(c, ev->interval_id);
		while (from < c->niv && c->ivs[from]->id == ev->interval_id && c->ivs[from] != iv)
			from++;
		if (from < c->niv && c->ivs[from] == iv)
			from++;
	}
	pthread_mutex_unlock(&c->lock);

	if (ev->flags & UMP_INV_SYNC) {
		struct ump_ack ack = { .interval_id = ev->interval_id, .seq = ev->seq };

		/* a dead connection counts as acked */
		call_oneway(c, UMP_MSG_ACK, &ack, sizeof(ack));
	}
}

static void handle_release(struct um_client *c, const struct ump_ev_release *ev)
{
	struct um_interval *iv;
	size_t from;

	pthread_mutex_lock(&c->lock);
	from = table_lower(c, ev->interval_id);
	while ((iv = get_for_callback(c, ev->interval_id, true, &from))) {
		pthread_mutex_unlock(&c->lock);
		if (!c->closing && iv->ops && iv->ops->release) {
			call_callback_enter(iv);
			iv->ops->release(iv, ev->error, iv->priv);
			call_callback_exit();
		}
		pthread_mutex_lock(&c->lock);
		put_after_callback(c, iv);
		from = table_lower(c, ev->interval_id);
	}
	pthread_mutex_unlock(&c->lock);
}

/*
 * The owner forked and the daemon follows the child's copy of a
 * FOLLOW_FORK interval: a new interval with the parent's ops and priv,
 * in the table before the next message (an invalidation of it) is read,
 * then ops->fork hands it to the caller. Consumes m->fd (the child's seq
 * area).
 */
static void handle_fork(struct um_client *c, const struct conn_msg *m)
{
	const struct ump_ev_fork *ev = m->msg.body;
	struct um_interval *parent = NULL, *iv = NULL;
	const size_t size = UMP_PAGE_SIZE;
	const struct ump_seq_slot *s;
	size_t from;
	void *p;

	if (m->fd < 0)
		return;
	if (seq_map_slot(m->fd, ev->seq_slots, ev->slot, &p, &s)) {
		close(m->fd);
		return;
	}
	close(m->fd);

	pthread_mutex_lock(&c->lock);
	from = table_lower(c, ev->parent_interval_id);
	for (; from < c->niv && c->ivs[from]->id == ev->parent_interval_id; from++)
		if (!c->ivs[from]->removing) {
			parent = c->ivs[from];
			break;
		}
	if (parent)
		iv = interval_new(c, parent->sync ? 0 : UM_INTERVAL_ASYNC, parent->ops,
				  parent->priv);
	if (!iv || table_reserve(c) < 0) {
		/* nobody to hand it to: its sync invalidations are acked unseen */
		pthread_mutex_unlock(&c->lock);
		free(iv);
		munmap(p, size);
		return;
	}
	iv->id = ev->child_interval_id;
	iv->start = ev->start;
	iv->length = ev->length;
	iv->pid = ev->child_pid;
	iv->map = p;
	iv->map_len = size;
	iv->slot = s;
	iv->backend = parent->backend;
	table_add(c, iv);
	parent->busy++;
	pthread_mutex_unlock(&c->lock);

	if (parent->ops && parent->ops->fork) {
		call_callback_enter(parent);
		parent->ops->fork(parent, iv, ev->child_pid, parent->priv);
		call_callback_exit();
	}
	pthread_mutex_lock(&c->lock);
	put_after_callback(c, parent);
	pthread_mutex_unlock(&c->lock);
}

void interval_handle_event(struct um_client *c, const struct conn_msg *m)
{
	switch (m->msg.type) {
	case UMP_EV_FORK:
		handle_fork(c, m);
		break;
	case UMP_EV_INVALIDATE:
		handle_invalidate(c, m->msg.body);
		break;
	case UMP_EV_RELEASE:
	case UMP_EV_EVICTED:
		handle_release(c, m->msg.body);
		break;
	default:
		break;
	}
}

void interval_mark_all_dead_locked(struct um_client *c)
{
	for (size_t i = 0; i < c->niv; i++) {
		atomic_store(&c->ivs[i]->dead, true);
		seq_wake_all(c->ivs[i]);
	}
}

void interval_release_all(struct um_client *c, int error)
{
	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct um_interval *iv = NULL;

		if (c->closing)
			break;
		for (size_t i = 0; i < c->niv && !iv; i++)
			if (!c->ivs[i]->released && !c->ivs[i]->removing)
				iv = c->ivs[i];
		if (!iv)
			break;
		iv->released = true;
		iv->busy++;
		pthread_mutex_unlock(&c->lock);
		if (iv->ops && iv->ops->release) {
			call_callback_enter(iv);
			iv->ops->release(iv, error, iv->priv);
			call_callback_exit();
		}
		pthread_mutex_lock(&c->lock);
		put_after_callback(c, iv);
	}
	pthread_mutex_unlock(&c->lock);
}

void interval_free_all(struct um_client *c)
{
	for (size_t i = 0; i < c->niv; i++) {
		if (c->ivs[i]->map)
			munmap(c->ivs[i]->map, c->ivs[i]->map_len);
		else if (c->ivs[i]->pid == getpid())
			trap_range_del(c->ivs[i]->start, c->ivs[i]->start + c->ivs[i]->length);
		free(c->ivs[i]);
	}
	free(c->ivs);
	c->ivs = NULL;
	c->niv = c->cap_iv = 0;
}
