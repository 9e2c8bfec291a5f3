/* SPDX-License-Identifier: MIT */
/*
 * interval.c - intervals: insert, remove, subscribe, their end (interval.h).
 */
#include "interval.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "dirty.h"
#include "children.h"
#include "dirtylog.h"
#include "gone.h"
#include "grant.h"
#include "inval.h"
#include "log.h"
#include "lookup.h"
#include "peer.h"
#include "protect.h"
#include "scan.h"
#include "seq.h"
#include "vma.h"
#include "wp.h"
#include "uapi_compat.h"

struct gap_walk {
	struct mm *mm;
	uint64_t cursor, end;
};

static void unregister_range(struct mm *mm, uint64_t start, uint64_t end)
{
	struct uffdio_range r = { .start = start, .len = end - start };

	/* the range may be partly unmapped already: nothing to undo then */
	if (ioctl(mm->uffd, UFFDIO_UNREGISTER, &r) < 0)
		log_debug("mm %llu: unregister %#llx-%#llx: %m", (unsigned long long)mm->id,
			  (unsigned long long)start, (unsigned long long)end);
	/* TRACK_ASYNC intervals are registered on the second uffd */
	if (mm->async_uffd >= 0)
		ioctl(mm->async_uffd, UFFDIO_UNREGISTER, &r);
}

static int gap_cb(struct itree_node *n, void *priv)
{
	struct gap_walk *g = priv;

	if (n->start > g->cursor)
		unregister_range(g->mm, g->cursor, n->start < g->end ? n->start : g->end);
	if (n->end > g->cursor)
		g->cursor = n->end;
	return 0;
}

/* unregister the parts of [start, end) no interval in the tree covers */
static void unregister_uncovered(struct mm *mm, uint64_t start, uint64_t end)
{
	struct gap_walk g = { .mm = mm, .cursor = start, .end = end };

	if (mm->dead)
		return;
	itree_query(&mm->tree, start, end, gap_cb, &g);
	if (g.cursor < end)
		unregister_range(mm, g.cursor, end);
}

struct receiver *receiver_new(struct interval *iv, struct client *c, bool sync, bool owner)
{
	struct receiver *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->iv = iv;
	r->client = c;
	r->sync = sync;
	r->owner = owner;
	/* the first receiver of an id stays the one found, as the list walk did */
	if (!idmap_get(&c->receiver_ids, iv->id) && idmap_put(&c->receiver_ids, r)) {
		free(r);
		return NULL;
	}
	list_add_tail(&iv->receivers, &r->iv_link);
	list_add_tail(&c->receivers, &r->client_link);
	return r;
}

void receiver_free(struct receiver *r)
{
	inval_forget_receiver(r);
	if (idmap_get(&r->client->receiver_ids, r->iv->id) == r)
		idmap_del(&r->client->receiver_ids, r->iv->id);
	list_del(&r->iv_link);
	list_del(&r->client_link);
	free(r);
}

void send_release(struct receiver *r, int error)
{
	struct ump_ev_release ev = { .interval_id = r->iv->id, .error = error };

	client_send(r->client, UMP_EV_RELEASE, 0, &ev, sizeof(ev), -1);
}

/*
 * Watchers hear an interval's end as a last copy with reason RELEASE over
 * the whole interval: they hold no receiver, so EV_RELEASE never reaches
 * them, and without it `umirrorctl watch PID` cannot tell that PID is gone.
 */
void watch_release(struct interval *iv)
{
	struct mm *mm = iv->mm;
	struct ump_ev_invalidate ev = {
		.interval_id = iv->id,
		.start = iv->node.start,
		.end = iv->node.end,
		.seq = interval_seq(iv),
		.reason = UMP_REASON_RELEASE,
		.pid = mm->pid,
	};

	server_watch_copy(mm->srv, mm->pid, mm->uid, &ev);
}

/* register [start, end) on @uffd in write-protect mode; -EOPNOTSUPP: cannot track */
static int register_wp(int uffd, uint64_t start, uint64_t end)
{
	struct uffdio_register reg = {
		.range = { .start = start, .len = end - start },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		return errno == EINVAL ? -EOPNOTSUPP : errno == ENOMEM ? -EFAULT : -errno;
	return reg.ioctls & (1ull << _UFFDIO_WRITEPROTECT) ? 0 : -EOPNOTSUPP;
}

/*
 * Register and arm [start, end) with the best backend (docs/SEMANTICS.md,
 * "Tracking backends"): without @track_async only sync uffd-wp, else
 * WP_ASYNC, SOFT_DIRTY (memory it can see, registered on the owner's
 * uffd), sync uffd-wp, SCAN in that order.
 * Return: UMP_BACKEND_* or -errno (nothing left registered for it).
 */
static int track_arm(struct mm *mm, uint64_t start, uint64_t end, bool track_async)
{
	int ret;

	if (track_async && mm->async_uffd >= 0) {
		/* WP_ASYNC accepts any memory, regular files included */
		ret = register_wp(mm->async_uffd, start, end);
		if (!ret)
			ret = wp_async(mm, start, end);
		if (!ret)
			return UMP_BACKEND_WP_ASYNC;
		unregister_uncovered(mm, start, end);
		return ret;
	}
	/*
	 * Registered (never protected but during a harvest) so that zaps,
	 * unmaps and remaps are reported and the harvest can hold writers
	 * while it reads and clears the bits (dirty.c).
	 */
	if (track_async && dirty_soft_fits(mm, start, end)) {
		ret = register_wp(mm->uffd, start, end);
		if (!ret)
			ret = dirty_soft_open(mm);
		if (!ret)
			return UMP_BACKEND_SOFT_DIRTY;
		unregister_uncovered(mm, start, end);
		if (ret != -EOPNOTSUPP)
			return ret;
	}
	ret = register_wp(mm->uffd, start, end);
	if (!ret) {
		ret = mm_wp(mm, start, end - start, true);
		if (ret == -EINVAL)
			ret = -EOPNOTSUPP;
	}
	if (!ret)
		return UMP_BACKEND_UFFD_WP;
	unregister_uncovered(mm, start, end);
	/* never mirror blind, unless the caller accepted after-the-fact scans */
	return ret == -EOPNOTSUPP && track_async ? UMP_BACKEND_SCAN : ret;
}

int charge_interval(struct mm *mm, uint64_t len)
{
	const uint64_t n[LIMIT_NR] = { [LIMIT_INTERVALS] = 1, [LIMIT_BYTES] = len };
	enum limit_kind hit = LIMIT_NR;
	int ret = limits_charge(&mm->srv->limits, mm->uid, n, &hit);

	if (ret && hit < LIMIT_NR)
		log_warn("mm %llu (pid %d uid %d): insert of %llu bytes refused: %s per uid "
			 "(limit %llu, in use %llu)",
			 (unsigned long long)mm->id, (int)mm->pid, (int)mm->uid,
			 (unsigned long long)len, limits_name(hit),
			 (unsigned long long)limits_max(&mm->srv->limits, mm->uid, hit),
			 (unsigned long long)limits_usage(&mm->srv->limits, mm->uid, hit));
	else if (ret)
		log_warn("mm %llu: interval accounting: %s", (unsigned long long)mm->id,
			 strerror(-ret));
	return ret;
}

void uncharge_interval(struct mm *mm, uint64_t len)
{
	const uint64_t n[LIMIT_NR] = { [LIMIT_INTERVALS] = 1, [LIMIT_BYTES] = len };

	limits_uncharge(&mm->srv->limits, mm->uid, n);
}

/* an INSERT reply parked until its write-protect is in the page tables */
struct insert_wait {
	struct deferred d;
	struct mm *mm;
	struct ump_insert_reply rep;
};

static void insert_armed(void *arg)
{
	struct insert_wait *w = arg;

	deferred_reply(&w->d, 0, &w->rep, sizeof(w->rep));
	free(w);
}

/* the client went first: the barrier must not answer it */
static void insert_cancel(struct deferred *d)
{
	struct insert_wait *w = container_of(d, struct insert_wait, d);

	wp_barrier_cancel(w->mm, w);
	free(w);
}

/*
 * Answer INSERT once every write-protect queued so far, its own included,
 * is applied (mm_wp_barrier()); at once when none is. The owner dying
 * first answers too: the interval exists, dead, as if it died just after.
 * Return: 0 answered now with @rep; -EINPROGRESS parked.
 */
static int insert_reply_armed(struct client *c, uint64_t id, struct ump_insert_reply *rep)
{
	struct mm *mm = c->mm;
	struct insert_wait *w;

	if (!mm_wp_pending(mm))
		return 0;
	w = calloc(1, sizeof(*w));
	if (!w) {
		log_error("mm %llu: out of memory: INSERT answered before its write-protect",
			  (unsigned long long)mm->id);
		return 0;
	}
	w->mm = mm;
	w->rep = *rep;
	deferred_add(c, &w->d, UMP_MSG_INSERT, id, insert_cancel);
	wp_barrier_add(mm, insert_armed, insert_armed, w);
	return -EINPROGRESS;
}

static int huge_cb(const struct vma *v, void *priv)
{
	if (v->page_size <= UMP_PAGE_SIZE)
		return 0;
	*(bool *)priv = true;
	return 1;
}

/* the new @iv goes into @mm's tree, its harvest and scan start, its arm is flushed */
static void insert_link(struct mm *mm, struct interval *iv)
{
	itree_insert(&mm->tree, &iv->node);
	list_add_tail(&mm->intervals, &iv->mm_link);
	mm->srv->nintervals++;
	/* the first harvest reports what is written from now on, not what was before */
	if (iv->backend == UMP_BACKEND_SOFT_DIRTY)
		dirty_soft_baseline(iv);
	/* backends that see writes only after the fact need the scan from the start */
	scan_interval_default(iv);
	/* in the tree now, so faults on it that the flush reads are handled as such */
	if (iv->backend == UMP_BACKEND_UFFD_WP && wp_flush(mm) == -EAGAIN)
		log_debug("mm %llu: interval %llu: an event keeps the kernel busy, the reply "
			  "waits for the write-protect",
			  (unsigned long long)mm->id, (unsigned long long)iv->id);
}

int mm_insert(struct client *c, uint64_t id, const struct ump_insert *req,
	      struct ump_insert_reply *rep)
{
	struct mm *mm = c->mm;
	uint64_t start = req->start, end = req->start + req->length;
	bool track_async = req->flags & UMP_INSERT_TRACK_ASYNC;
	struct mm_protect *protect;
	struct interval *iv;
	int ret;

	if (!mm)
		return -EBADFD;
	if (mm->dead)
		return -EFAULT;
	/* UFFDIO_REGISTER's errors do not tell a hole from a bad mapping */
	ret = vma_covered(mm, start, end);
	if (ret)
		return ret;
	if (!mm->huge_vmas)
		vma_walk(mm, start, end, huge_cb, &mm->huge_vmas);
	ret = charge_interval(mm, req->length);
	if (ret)
		return ret;
	iv = calloc(1, sizeof(*iv));
	if (!iv) {
		uncharge_interval(mm, req->length);
		return -ENOMEM;
	}
	ret = seq_slot_alloc(mm, &iv->slot);
	if (ret)
		goto fail_free;
	/* seqs odd before the arm takes WRITE from other intervals' mirrors */
	protect = mm_protect_start(mm, start, end);
	ret = track_arm(mm, start, end, track_async);
	mm_protect_armed(protect);
	if (ret < 0)
		goto fail_slot;
	iv->backend = ret;
	iv->mm = mm;
	iv->id = ++mm->srv->next_interval_id;
	/* TRACK_ASYNC: writers never wait, so nobody acks */
	iv->flags = track_async ? req->flags & ~UMP_INSERT_SYNC : req->flags;
	iv->node.start = start;
	iv->node.end = end;
	list_init(&iv->receivers);
	/* what is mapped there now is registered: no longer gone */
	gone_clear(mm, start, end);
	ret = dirty_log_alloc(iv);
	if (ret)
		goto fail_unregister;
	if (!receiver_new(iv, c, iv->flags & UMP_INSERT_SYNC, true)) {
		ret = -ENOMEM;
		goto fail_unregister;
	}
	insert_link(mm, iv);
	rep->interval_id = iv->id;
	rep->slot = iv->slot;
	rep->backend = iv->backend;
	if (iv->flags & UM_INSERT_FOLLOW_FORK)
		mm_fork_note_children(mm);
	log_debug("mm %llu: interval %llu [%#llx, %#llx) slot %u", (unsigned long long)mm->id,
		  (unsigned long long)iv->id, (unsigned long long)start, (unsigned long long)end,
		  iv->slot);
	/* a write before the range is armed would go unseen */
	return insert_reply_armed(c, id, rep);
fail_unregister:
	unregister_uncovered(mm, start, end);
fail_slot:
	seq_slot_free(mm, iv->slot);
fail_free:
	dirty_log_free(iv);
	free(iv);
	uncharge_interval(mm, req->length);
	return ret;
}

/*
 * Intervals are a few hundred bytes each, freed in the middle of the heap,
 * which glibc keeps: give whole free pages back to the kernel once per
 * TRIM_EVERY intervals destroyed (malloc_trim walks the heap: ~ms for tens
 * of MB, so not on every removal).
 */
#define TRIM_EVERY 1024

static void trim_heap(void)
{
	static unsigned int destroyed; /* the loop thread only */

	if (++destroyed < TRIM_EVERY)
		return;
	destroyed = 0;
	malloc_trim(0);
}

void interval_destroy(struct interval *iv, int error)
{
	struct mm *mm = iv->mm;
	struct receiver *r, *t;

	/* a dead address space's intervals were announced by mm_release() */
	if (error && !mm->dead)
		watch_release(iv);
	inval_forget_interval(iv);
	scan_interval_free(iv);
	list_for_each_entry_safe (r, t, &iv->receivers, iv_link) {
		if (error && !r->owner)
			send_release(r, error);
		receiver_free(r);
	}
	itree_remove(&mm->tree, &iv->node);
	list_del(&iv->mm_link);
	unregister_uncovered(mm, iv->node.start, iv->node.end);
	seq_slot_kill(iv);
	seq_slot_free(mm, iv->slot);
	mm->srv->nintervals--;
	uncharge_interval(mm, iv->node.end - iv->node.start);
	dirty_log_free(iv);
	grant_forget(iv);
	free(iv);
	trim_heap();
}

int mm_remove(struct client *c, uint64_t interval_id)
{
	struct receiver *r = client_receiver(c, interval_id);

	if (!r)
		return -ENOENT;
	if (r->owner)
		interval_destroy(r->iv, -ENOENT);
	else
		receiver_free(r);
	return 0;
}

int mm_subscribe(struct client *c, const struct ump_subscribe *req, struct ump_subscribe_reply *rep,
		 int *seq_fd)
{
	struct mm *mm = mm_find_pid(c->srv, req->pid);
	struct interval *iv;

	if (!mm)
		return -ESRCH;
	list_for_each_entry (iv, &mm->intervals, mm_link)
		if (iv->id == req->interval_id)
			goto found;
	/* a stranger learns nothing about which intervals exist */
	return client_may_see(c, mm->uid) ? -ESRCH : -EACCES;
found:
	if (!grant_allows(c, iv))
		return -EACCES;
	if (client_receiver(c, iv->id))
		return -EBUSY;
	*seq_fd = fcntl(mm->seq_fd, F_DUPFD_CLOEXEC, 0);
	if (*seq_fd < 0)
		return -errno;
	if (!receiver_new(iv, c, req->flags & UMP_INSERT_SYNC, false)) {
		close(*seq_fd);
		*seq_fd = -1;
		return -ENOMEM;
	}
	rep->start = iv->node.start;
	rep->length = iv->node.end - iv->node.start;
	rep->slot = iv->slot;
	rep->seq_slots = seq_area_slots(mm);
	return 0;
}
