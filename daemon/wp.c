/* SPDX-License-Identifier: MIT */
/*
 * wp.c - write-protect changes (wp.h).
 */
#include "wp.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "dirtylog.h"
#include "log.h"
#include "server_types.h"
#include "uapi_compat.h"
#include "vma.h"

#define WP_RETRY_MS 1

/*
 * A page-table change the kernel refused with EAGAIN (mmap_changing), or,
 * with @fn set, a barrier: @fn(@arg) runs once every change queued before
 * it has been applied; if the mm dies first, @drop(@arg) runs instead
 * (when set).
 */
struct wp_op {
	struct list link;
	uint64_t start, len;
	bool wp;
	void (*fn)(void *arg);
	void (*drop)(void *arg);
	void *arg;
};

/* the events of the uffd polled by @p, as the loop would read them (uffd_event.c) */
static void read_uffd(struct mm *mm, uv_poll_t *p)
{
	if (mm->srv->hooks.uffd_cb)
		mm->srv->hooks.uffd_cb(p, 0, UV_READABLE);
}

/* a write-protect change of [start, end) is about to be made (settle.c) */
static void wp_note(struct mm *mm, uint64_t start, uint64_t end, bool wp)
{
	if (mm->srv->hooks.wp_note)
		mm->srv->hooks.wp_note(mm, start, end, wp);
}

static int wp_ioctl(int uffd, uint64_t start, uint64_t len, bool wp)
{
	struct uffdio_writeprotect w = {
		.range = { .start = start, .len = len },
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &w) < 0 ? -errno : 0;
}

/* UFFDIO_WRITEPROTECT once more after reading the events in delivery (EAGAIN) */
static int wp_ioctl_wait(struct mm *mm, int uffd, uint64_t start, uint64_t len, bool wp)
{
	for (int tries = 0; tries < 200; tries++) {
		int ret = wp_ioctl(uffd, start, len, wp);

		if (ret != -EAGAIN)
			return ret;
		/* mmap_changing: an event (fork, mremap, madvise) waits to be read */
		mm_read_events(mm);
		if (mm->dead)
			return -EFAULT;
		/*
		 * Read, but its sender has not run yet to end mmap_changing (or a
		 * fork is still copying): let it run. ppoll() of nothing, not
		 * usleep(): the seccomp filter has no nanosleep.
		 */
		if (tries)
			ppoll(NULL, 0, &(struct timespec){ .tv_nsec = 100 * 1000 }, NULL);
		else
			log_debug("mm %llu: writeprotect %#llx+%#llx waits for an event",
				  (unsigned long long)mm->id, (unsigned long long)start,
				  (unsigned long long)len);
	}
	return -EAGAIN;
}

struct wp_split {
	struct mm *mm;
	int uffd;
	uint64_t start, end;
	bool wp, wait;
	int (*part_failed)(uint64_t a, uint64_t b, int err, void *priv);
	void *priv;
};

static int wp_part(struct wp_split *w, uint64_t a, uint64_t b)
{
	if (w->wait)
		return wp_ioctl_wait(w->mm, w->uffd, a, b - a, w->wp);
	return wp_ioctl(w->uffd, a, b - a, w->wp);
}

static int wp_vma_cb(const struct vma *v, void *priv)
{
	struct wp_split *w = priv;
	uint64_t a = v->start > w->start ? v->start : w->start;
	uint64_t b = v->end < w->end ? v->end : w->end;
	int ret = wp_part(w, a, b);

	if (ret && w->part_failed)
		return w->part_failed(a, b, ret, w->priv);
	/* -ENOENT: a VMA not registered with our uffd (mapped after insert) */
	return ret == -ENOENT ? 0 : ret;
}

/*
 * UFFDIO_WRITEPROTECT of [start, start + len). Linux 6.1 takes a range
 * inside one VMA only (-ENOENT across a boundary); later kernels walk the
 * VMAs but stop at the first one the uffd does not track, leaving the rest
 * untouched. Either way an interval split into several VMAs (mprotect, a
 * partial munmap) would silently stay writable: on -ENOENT apply the
 * change VMA by VMA, skipping holes. Without @w->part_failed a VMA the
 * uffd does not track is skipped and any other error ends the walk; with
 * it, every part that failed (the whole range for an error other than
 * -ENOENT) goes to it, and a nonzero return of it ends the walk.
 */
static int wp_split_apply(struct wp_split *w)
{
	int ret = wp_part(w, w->start, w->end);

	if (ret && ret != -ENOENT && w->part_failed)
		return w->part_failed(w->start, w->end, ret, w->priv);
	if (ret != -ENOENT)
		return ret;
	ret = vma_walk(w->mm, w->start, w->end, wp_vma_cb, w);
	return ret < 0 ? ret : 0;
}

static int wp_range(struct mm *mm, int uffd, uint64_t start, uint64_t len, bool wp)
{
	struct wp_split w = {
		.mm = mm,
		.uffd = uffd,
		.start = start,
		.end = start + len,
		.wp = wp,
	};

	return wp_split_apply(&w);
}

static int wp_now(struct mm *mm, uint64_t start, uint64_t len, bool wp)
{
	return wp_range(mm, mm->uffd, start, len, wp);
}

int mm_wp_wait(struct mm *mm, uint64_t start, uint64_t end, bool wp,
	       int (*part_failed)(uint64_t a, uint64_t b, int err, void *priv), void *priv)
{
	struct wp_split w = {
		.mm = mm,
		.uffd = mm->uffd,
		.start = start,
		.end = end,
		.wp = wp,
		.wait = true,
		.part_failed = part_failed,
		.priv = priv,
	};

	if (mm->dead)
		return -EFAULT;
	/* a REMOVE settling there must not take this change for its zap */
	wp_note(mm, start, end, wp);
	return wp_split_apply(&w);
}

static void wp_failed(struct mm *mm, uint64_t start, uint64_t len, bool wp, int err);

static void wp_retry_cb(uv_timer_t *t)
{
	struct mm *mm = t->data;

	while (!list_empty(&mm->wp_retry) && !mm->dead) {
		struct wp_op *op = list_first_entry(&mm->wp_retry, struct wp_op, link);
		int ret = op->fn ? 0 : wp_now(mm, op->start, op->len, op->wp);

		if (ret == -EAGAIN) {
			/* the event stays undelivered only while we do not read it */
			if (++mm->wp_retries % 1000 == 0)
				log_warn("mm %llu: writeprotect %#llx+%#llx still refused after %u "
					 "tries",
					 (unsigned long long)mm->id, (unsigned long long)op->start,
					 (unsigned long long)op->len, mm->wp_retries);
			uv_timer_start(&mm->wp_timer, wp_retry_cb, WP_RETRY_MS, 0);
			return;
		}
		mm->wp_retries = 0;
		if (ret)
			wp_failed(mm, op->start, op->len, op->wp, ret);
		list_del(&op->link);
		/* off the queue first: @fn may queue more */
		if (op->fn)
			op->fn(op->arg);
		free(op);
	}
}

struct page_size_q {
	uint64_t addr, size;
};

static int page_size_cb(const struct vma *v, void *priv)
{
	struct page_size_q *q = priv;

	if (v->start <= q->addr && q->addr < v->end && v->page_size > UMP_PAGE_SIZE)
		q->size = v->page_size;
	return 1;
}

/* the page size of the VMA at @addr: UMP_PAGE_SIZE for no VMA or an unreadable one */
static uint64_t page_size_at(struct mm *mm, uint64_t addr)
{
	struct page_size_q q = { .addr = addr, .size = UMP_PAGE_SIZE };

	vma_walk(mm, addr, addr + 1, page_size_cb, &q);
	return q.size;
}

void mm_page_span(struct mm *mm, uint64_t *start, uint64_t *end)
{
	uint64_t ps;

	if (!mm->huge_vmas || *end <= *start)
		return;
	ps = page_size_at(mm, *start);
	*start &= ~(ps - 1);
	ps = page_size_at(mm, *end - 1);
	*end = (*end + ps - 1) & ~(ps - 1);
}

/* a failed unprotect may leave a writer asleep in its fault for good */
static void wp_failed(struct mm *mm, uint64_t start, uint64_t len, bool wp, int err)
{
	if (!wp && err != -ENOENT)
		log_error("mm %llu: unprotect %#llx+%#llx failed, writers there may stay "
			  "blocked: %s",
			  (unsigned long long)mm->id, (unsigned long long)start,
			  (unsigned long long)len, strerror(-err));
	else
		log_debug("mm %llu: writeprotect%s %#llx+%#llx: %s", (unsigned long long)mm->id,
			  wp ? "" : " off", (unsigned long long)start, (unsigned long long)len,
			  strerror(-err));
}

int mm_wp(struct mm *mm, uint64_t start, uint64_t len, bool wp)
{
	struct wp_op *op;
	uint64_t end = start + len;
	int ret;

	if (mm->dead)
		return -ENODEV;
	mm_page_span(mm, &start, &end);
	len = end - start;
	/* a REMOVE waiting for its zap must not take this change for it */
	wp_note(mm, start, start + len, wp);
	/* every unprotect lets writes in: the dirty log counts the pages written */
	if (!wp)
		mm_mark_unprotected(mm, start, start + len);
	else
		mm_prefault(mm, start, start + len);
	/* keep the order of changes: never overtake a queued one */
	ret = list_empty(&mm->wp_retry) ? wp_now(mm, start, len, wp) : -EAGAIN;
	if (ret && ret != -EAGAIN)
		wp_failed(mm, start, len, wp, ret);
	if (ret != -EAGAIN)
		return ret;
	/*
	 * mmap_changing: a non-cooperative event is being delivered. The
	 * change must still happen (a writer may sleep until it does), so
	 * retry shortly, after the event was read.
	 */
	op = malloc(sizeof(*op));
	if (!op) {
		log_error("mm %llu: out of memory queueing a writeprotect",
			  (unsigned long long)mm->id);
		return -ENOMEM;
	}
	*op = (struct wp_op){ .start = start, .len = len, .wp = wp };
	list_add_tail(&mm->wp_retry, &op->link);
	uv_timer_start(&mm->wp_timer, wp_retry_cb, WP_RETRY_MS, 0);
	return 0;
}

/* a page of a VMA userfaultfd cannot register: [vdso] (or [vvar]), 0 if none */
static uint64_t barrier_vma(struct mm *mm)
{
	uint64_t found = 0, s, e;
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)mm->pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);

		while (n && line[n - 1] == '\n')
			line[--n] = 0;
		if (n < 6 || sscanf(line, "%" SCNx64 "-%" SCNx64, &s, &e) != 2)
			continue;
		if (!strcmp(line + n - 6, "[vdso]") || (!found && !strcmp(line + n - 6, "[vvar]")))
			found = s;
	}
	fclose(f);
	return found;
}

static int covered_cb(struct itree_node *n, void *priv)
{
	(void)n;
	(void)priv;
	return 1;
}

int mm_lock_barrier(struct mm *mm)
{
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };

	if (mm->dead)
		return -ENODEV;
	/* never aim at mirrored memory: unregistering it below would disarm it */
	if (mm->barrier_addr && itree_query(&mm->tree, mm->barrier_addr,
					    mm->barrier_addr + UMP_PAGE_SIZE, covered_cb, NULL))
		mm->barrier_addr = 0;
	if (!mm->barrier_addr)
		mm->barrier_addr = barrier_vma(mm);
	if (!mm->barrier_addr)
		return -ENOENT;
	reg.range.start = mm->barrier_addr;
	reg.range.len = UMP_PAGE_SIZE;
	if (ioctl(mm->uffd, UFFDIO_REGISTER, &reg) == 0) {
		/* the owner mapped memory there since: undo, look again next time */
		struct uffdio_range r = reg.range;

		ioctl(mm->uffd, UFFDIO_UNREGISTER, &r);
		log_debug("mm %llu: lock barrier at %#llx found registrable memory",
			  (unsigned long long)mm->id, (unsigned long long)mm->barrier_addr);
		mm->barrier_addr = 0;
	}
	return 0;
}

bool mm_wp_pending(const struct mm *mm)
{
	return !mm->dead && !list_empty(&mm->wp_retry);
}

int wp_barrier_add(struct mm *mm, void (*fn)(void *arg), void (*drop)(void *arg), void *arg)
{
	struct wp_op *op;

	if (!mm_wp_pending(mm)) {
		fn(arg);
		return 0;
	}
	op = malloc(sizeof(*op));
	if (!op) {
		/* cannot wait without memory: the caller goes on as if applied */
		log_error("mm %llu: out of memory waiting for a writeprotect",
			  (unsigned long long)mm->id);
		fn(arg);
		return -ENOMEM;
	}
	*op = (struct wp_op){ .fn = fn, .drop = drop, .arg = arg };
	list_add_tail(&mm->wp_retry, &op->link);
	return 0;
}

int mm_wp_barrier(struct mm *mm, void (*fn)(void *arg), void *arg)
{
	return wp_barrier_add(mm, fn, NULL, arg);
}

/* its waiter went away */
void wp_barrier_cancel(struct mm *mm, void *arg)
{
	struct wp_op *op;

	list_for_each_entry (op, &mm->wp_retry, link) {
		if (op->fn && op->arg == arg) {
			list_del(&op->link);
			free(op);
			return;
		}
	}
}

void mm_read_events(struct mm *mm)
{
	if (mm->dead)
		return;
	read_uffd(mm, &mm->uffd_poll);
	if (mm->async_uffd >= 0 && !mm->dead)
		read_uffd(mm, &mm->async_poll);
}

/* nothing waits there, so EAGAIN only needs the events read */
int wp_async(struct mm *mm, uint64_t start, uint64_t end)
{
	for (int tries = 0; tries < 64; tries++) {
		int ret = wp_range(mm, mm->async_uffd, start, end - start, true);

		if (!ret)
			return 0;
		if (ret != -EAGAIN)
			return ret == -EINVAL ? -EOPNOTSUPP : ret;
		read_uffd(mm, &mm->async_poll);
		read_uffd(mm, &mm->uffd_poll);
		if (mm->dead)
			return -EFAULT;
	}
	return -EAGAIN;
}

/*
 * Apply queued write-protect changes now. They wait for a non-cooperative
 * event (fork, mremap, madvise) to be read, so read the events here, with
 * a short wait while the event is still being produced (a fork copying
 * its page tables). INSERT must not reply before its range is armed: a
 * write in that gap would go unseen. At most ~200 ms.
 */
int wp_flush(struct mm *mm)
{
	for (int tries = 0; tries < 200 && !list_empty(&mm->wp_retry); tries++) {
		read_uffd(mm, &mm->uffd_poll);
		if (mm->async_uffd >= 0)
			read_uffd(mm, &mm->async_poll);
		if (mm->dead)
			return -EFAULT;
		wp_retry_cb(&mm->wp_timer);
		/* ppoll() of nothing, not usleep(): the seccomp filter has no nanosleep */
		if (!list_empty(&mm->wp_retry))
			ppoll(NULL, 0, &(struct timespec){ .tv_nsec = 100 * 1000 }, NULL);
	}
	return list_empty(&mm->wp_retry) ? 0 : -EAGAIN;
}

void wp_drop_all(struct mm *mm)
{
	struct wp_op *op, *t;

	list_for_each_entry_safe (op, t, &mm->wp_retry, link) {
		list_del(&op->link);
		/* a parked INSERT reply: its owner is gone, nothing to wait for */
		if (op->drop)
			op->drop(op->arg);
		free(op);
	}
}
