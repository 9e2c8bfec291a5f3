/* SPDX-License-Identifier: MIT */
/*
 * mm.c - attached address spaces: userfaultfd, seq area, intervals.
 *
 * The daemon is the only holder of the owner's userfaultfd. Writers of a
 * write-protected page sleep in the kernel until we unprotect the page,
 * which we only do when the invalidation of that page completed (inval.c).
 * Everything that turns an uffd message into invalidations is here.
 */
#include "mm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "grant.h"
#include "dirty.h"
#include "inval.h"
#include "log.h"
#include "scan.h"
#include "settle.h"
#include "server.h"
#include "snapshot.h"
#include "uapi_compat.h"

#define SEQ_AREA_SIZE (UM_SEQ_SLOTS * sizeof(struct um_seq_slot))
#define UFFD_BATCH 64
#define WP_RETRY_MS 1

#define UFFD_WANTED                                                                            \
	(UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | \
	 UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_THREAD_ID |       \
	 UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_HUGETLBFS_SHMEM)

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

static bool pidfd_alive(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

/* --- seq slots ---------------------------------------------------------- */

static struct um_seq_slot *slot_of(const struct interval *iv)
{
	return &iv->mm->seq[iv->slot];
}

static void seq_store(struct um_seq_slot *s, uint64_t v)
{
	__atomic_store_n(&s->seq, v, __ATOMIC_RELEASE);
}

static void seq_wake(struct um_seq_slot *s)
{
	/* shared futex: the waiters map the memfd in other processes */
	syscall(SYS_futex, um_seq_futex_word(s), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

uint64_t interval_seq(const struct interval *iv)
{
	return __atomic_load_n(&slot_of(iv)->seq, __ATOMIC_ACQUIRE);
}

void interval_seq_begin(struct interval *iv)
{
	struct um_seq_slot *s = slot_of(iv);

	if (iv->active++ == 0)
		seq_store(s, s->seq + 1);
}

void interval_seq_end(struct interval *iv)
{
	struct um_seq_slot *s = slot_of(iv);

	if (iv->active == 0 || --iv->active)
		return;
	seq_store(s, s->seq + 1);
	seq_wake(s);
}

static int slot_alloc(struct mm *mm, uint32_t *out)
{
	/* round robin: a freed slot is reused as late as possible */
	for (uint32_t k = 0; k < UM_SEQ_SLOTS; k++) {
		uint32_t i = (mm->next_slot + k) % UM_SEQ_SLOTS;

		if (mm->slot_used[i / 64] & (1ull << (i % 64)))
			continue;
		mm->slot_used[i / 64] |= 1ull << (i % 64);
		mm->next_slot = (i + 1) % UM_SEQ_SLOTS;
		seq_store(&mm->seq[i], 0);
		__atomic_store_n(&mm->seq[i].flags, UM_SLOT_LIVE, __ATOMIC_RELEASE);
		*out = i;
		return 0;
	}
	return -ENOSPC;
}

/* mark dead, make odd, wake: readers of a gone interval must notice */
static void slot_kill(struct interval *iv)
{
	struct um_seq_slot *s = slot_of(iv);

	__atomic_store_n(&s->flags, UM_SLOT_DEAD, __ATOMIC_RELEASE);
	seq_store(s, s->seq + ((s->seq & 1) ? 2 : 1));
	seq_wake(s);
}

static void slot_free(struct mm *mm, uint32_t i)
{
	mm->slot_used[i / 64] &= ~(1ull << (i % 64));
}

static int seq_area(struct mm *mm)
{
	void *p;
	int fd;

	fd = memfd_create("umirror-seq", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, SEQ_AREA_SIZE) < 0)
		goto fail;
	p = mmap(NULL, SEQ_AREA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	if (fcntl(fd, F_ADD_SEALS,
		  F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		munmap(p, SEQ_AREA_SIZE);
		goto fail;
	}
	mm->seq = p;
	mm->seq_fd = fd;
	return 0;
fail:
	close(fd);
	return -ENOMEM;
}

/* --- page-table changes --------------------------------------------------- */

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

static int wp_vma_cb(const struct snapshot_vma *v, void *priv)
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
	ret = snapshot_vma_walk(w->mm, w->start, w->end, wp_vma_cb, w);
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
	settle_note_wp(mm, start, end, wp);
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

static int page_size_cb(const struct snapshot_vma *v, void *priv)
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

	snapshot_vma_walk(mm, addr, addr + 1, page_size_cb, &q);
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
	settle_note_wp(mm, start, start + len, wp);
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

static int wp_barrier_add(struct mm *mm, void (*fn)(void *arg), void (*drop)(void *arg), void *arg)
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

/* take the barrier for @arg off the queue unrun (its waiter went away) */
static void wp_barrier_cancel(struct mm *mm, void *arg)
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

/* --- gone spans ----------------------------------------------------------- */

bool mm_gone(const struct mm *mm, uint64_t start, uint64_t end)
{
	for (unsigned int i = 0; i < mm->ngone; i++)
		if (mm->gone[i].start < end && mm->gone[i].end > start)
			return true;
	return false;
}

/* remove [start, end) from the gone spans (an insert registers it anew) */
static void gone_clear(struct mm *mm, uint64_t start, uint64_t end)
{
	struct mm_span *v;
	unsigned int n = 0;

	if (!mm_gone(mm, start, end))
		return;
	/* one span may split in two */
	v = malloc((mm->ngone + 1) * sizeof(*v));
	if (!v) {
		log_error("mm %llu: out of memory: unmapped spans kept",
			  (unsigned long long)mm->id);
		return;
	}
	for (unsigned int i = 0; i < mm->ngone; i++) {
		struct mm_span g = mm->gone[i];

		if (g.end <= start || g.start >= end) {
			v[n++] = g;
			continue;
		}
		if (g.start < start)
			v[n++] = (struct mm_span){ g.start, start };
		if (g.end > end)
			v[n++] = (struct mm_span){ end, g.end };
	}
	free(mm->gone);
	mm->gone = v;
	mm->ngone = n;
	mm->gone_cap = mm->ngone + 1;
}

static int gone_add_one(struct mm *mm, uint64_t start, uint64_t end)
{
	unsigned int i = 0, j;

	/* merge with every span it overlaps or touches, keep the array sorted */
	while (i < mm->ngone && mm->gone[i].end < start)
		i++;
	j = i;
	while (j < mm->ngone && mm->gone[j].start <= end) {
		if (mm->gone[j].start < start)
			start = mm->gone[j].start;
		if (mm->gone[j].end > end)
			end = mm->gone[j].end;
		j++;
	}
	if (i == j) {
		if (mm->ngone + 1 >= mm->gone_cap) {
			unsigned int cap = mm->gone_cap ? mm->gone_cap * 2 : 8;
			struct mm_span *v = realloc(mm->gone, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			mm->gone = v;
			mm->gone_cap = cap;
		}
		memmove(&mm->gone[i + 1], &mm->gone[i], (mm->ngone - i) * sizeof(*mm->gone));
		mm->ngone++;
	} else {
		memmove(&mm->gone[i + 1], &mm->gone[j], (mm->ngone - j) * sizeof(*mm->gone));
		mm->ngone -= j - i - 1;
	}
	mm->gone[i] = (struct mm_span){ start, end };
	return 0;
}

struct gone_walk {
	struct mm *mm;
	uint64_t start, end;
};

static int gone_cb(struct itree_node *n, void *priv)
{
	struct gone_walk *g = priv;

	return gone_add_one(g->mm, n->start > g->start ? n->start : g->start,
			    n->end < g->end ? n->end : g->end);
}

/* remember the parts of intervals that [start, end) unmapped */
static void gone_mark(struct mm *mm, uint64_t start, uint64_t end)
{
	struct gone_walk g = { mm, start & ~(UMP_PAGE_SIZE - 1), end };

	if (end > g.start && itree_query(&mm->tree, g.start, end, gone_cb, &g))
		log_error("mm %llu: out of memory: unmapped span not remembered",
			  (unsigned long long)mm->id);
}

/* --- lookups -------------------------------------------------------------- */

struct mm *mm_find_pid(struct server *s, pid_t pid)
{
	struct mm *mm;

	list_for_each_entry (mm, &s->mms, link)
		if (mm->pid == pid && !mm->dead)
			return mm;
	return NULL;
}

struct receiver *client_receiver(struct client *c, uint64_t id)
{
	struct receiver *r;

	list_for_each_entry (r, &c->receivers, client_link)
		if (r->iv->id == id)
			return r;
	return NULL;
}

int receiver_access(struct client *c, uint64_t id, uint64_t start, uint64_t end,
		    struct receiver **out)
{
	struct receiver *r = client_receiver(c, id);
	struct interval *iv;

	if (!r)
		return interval_find(c->srv, id) ? -EACCES : -ENOENT;
	iv = r->iv;
	if (start >= end || start < iv->node.start || end > iv->node.end)
		return -EINVAL;
	if (iv->mm->dead)
		return -EFAULT;
	*out = r;
	return 0;
}

struct interval *interval_find(struct server *s, uint64_t id)
{
	struct interval *iv;
	struct mm *mm;

	list_for_each_entry (mm, &s->mms, link)
		list_for_each_entry (iv, &mm->intervals, mm_link)
			if (iv->id == id)
				return iv;
	return NULL;
}

static struct receiver *receiver_new(struct interval *iv, struct client *c, bool sync, bool owner)
{
	struct receiver *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->iv = iv;
	r->client = c;
	r->sync = sync;
	r->owner = owner;
	list_add_tail(&iv->receivers, &r->iv_link);
	list_add_tail(&c->receivers, &r->client_link);
	return r;
}

void receiver_free(struct receiver *r)
{
	inval_forget_receiver(r);
	list_del(&r->iv_link);
	list_del(&r->client_link);
	free(r);
}

static void send_release(struct receiver *r, int error)
{
	struct um_ev_release ev = { .interval_id = r->iv->id, .error = error };

	client_send(r->client, UM_EV_RELEASE, 0, &ev, sizeof(ev), -1);
}

/*
 * Watchers hear an interval's end as a last copy with reason RELEASE over
 * the whole interval: they hold no receiver, so EV_RELEASE never reaches
 * them, and without it `umirrorctl watch PID` cannot tell that PID is gone.
 */
static void watch_release(struct interval *iv)
{
	struct mm *mm = iv->mm;
	struct um_ev_invalidate ev = {
		.interval_id = iv->id,
		.start = iv->node.start,
		.end = iv->node.end,
		.seq = interval_seq(iv),
		.reason = UMP_REASON_RELEASE,
		.pid = mm->pid,
	};

	server_watch_copy(mm->srv, mm->pid, mm->uid, &ev);
}

/* --- uffd events ---------------------------------------------------------- */

static int hit_cb(struct itree_node *n, void *priv)
{
	struct hit_walk *h = priv;
	struct interval *iv = (struct interval *)n;

	if (h->written_only && !iv->written)
		return 0;
	if (h->n == h->cap) {
		unsigned int cap = h->cap * 2;
		struct inval_hit *v = malloc(cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		memcpy(v, h->v, h->n * sizeof(*v));
		if (h->v != h->stack)
			free(h->v);
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n].iv = iv;
	h->v[h->n].start = h->whole || n->start > h->start ? n->start : h->start;
	h->v[h->n].end = h->whole || n->end < h->end ? n->end : h->end;
	h->n++;
	return 0;
}

int mm_collect(struct mm *mm, struct hit_walk *h, uint64_t start, uint64_t end)
{
	h->v = h->stack;
	h->cap = sizeof(h->stack) / sizeof(h->stack[0]);
	h->n = 0;
	h->start = start;
	h->end = end;
	return itree_query(&mm->tree, start, end, hit_cb, h);
}

void mm_collect_done(struct hit_walk *h)
{
	if (h->v != h->stack)
		free(h->v);
}

static void on_range_event(struct mm *mm, uint32_t reason, uint64_t start, uint64_t end)
{
	struct hit_walk h = { 0 };

	start &= ~(UMP_PAGE_SIZE - 1);
	if (end <= start)
		return;
	if (mm_collect(mm, &h, start, end))
		log_error("mm %llu: out of memory: %s event partly lost",
			  (unsigned long long)mm->id, um_reason_name(reason));
	if (h.n)
		inval_start(mm, reason, start, end, 0, h.v, h.n);
	mm_collect_done(&h);
}

/* before the zap: held until it is done, then re-armed (settle.h) */
static void on_remove(struct mm *mm, uint64_t start, uint64_t end)
{
	struct hit_walk h = { 0 };

	start &= ~(UMP_PAGE_SIZE - 1);
	if (end <= start)
		return;
	if (mm_collect(mm, &h, start, end))
		log_error("mm %llu: out of memory: remove event partly lost",
			  (unsigned long long)mm->id);
	if (h.n)
		settle_remove(mm, start, end, h.v, h.n);
	mm_collect_done(&h);
}

static void on_fault(struct mm *mm, const struct uffd_msg *msg)
{
	uint64_t page = msg->arg.pagefault.address & ~(UMP_PAGE_SIZE - 1),
		 end = page + UMP_PAGE_SIZE;
	struct hit_walk h = { 0 };

	if (!(msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)) {
		/* we register WP only; a missing fault would be a kernel surprise */
		struct uffdio_range r = { .start = page, .len = UMP_PAGE_SIZE };

		ioctl(mm->uffd, UFFDIO_WAKE, &r);
		return;
	}
	/*
	 * A hugetlb page is unprotected (and COW-copied) as a whole: the
	 * span is all of it, and every fault in it is the same page.
	 */
	mm_page_span(mm, &page, &end);
	/* the unprotect of the in-flight one wakes this writer too */
	if (inval_write_in_flight(mm, page))
		return;
	if (mm_collect(mm, &h, page, end)) {
		log_error("mm %llu: out of memory on a write fault", (unsigned long long)mm->id);
		mm_collect_done(&h);
		h.n = 0;
	}
	for (unsigned int i = 0; i < h.n; i++) {
		h.v[i].iv->written = true;
		interval_mark_dirty(h.v[i].iv, page, end);
	}
	/* no interval: inval_start() just unprotects */
	if (h.n)
		settle_write(mm, page, msg->arg.pagefault.feat.ptid, h.v, h.n);
	else
		inval_start(mm, UMP_REASON_WRITE, page, page + UMP_PAGE_SIZE,
			    msg->arg.pagefault.feat.ptid, h.v, h.n);
	mm_collect_done(&h);
}

static void fork_follow(struct mm *mm, int ufd);

static void on_fork(struct mm *mm, const struct uffd_msg *msg)
{
	struct hit_walk h = { .whole = true, .written_only = true };
	struct itree_node *first;

	/* the child is mirrored only for FOLLOW_FORK intervals (else its uffd is closed) */
	fork_follow(mm, (int)msg->arg.fork.ufd);
	if (mm->dead)
		return;
	first = itree_first(&mm->tree);
	if (!first)
		return;
	/* never-written intervals stay armed: the COW break faults as WRITE */
	if (mm_collect(mm, &h, 0, UINT64_MAX))
		log_error("mm %llu: out of memory on fork", (unsigned long long)mm->id);
	for (unsigned int i = 0; i < h.n; i++)
		h.v[i].iv->written = false;
	if (h.n)
		inval_start(mm, UMP_REASON_FORK, 0, 0, 0, h.v, h.n);
	mm_collect_done(&h);
}

static void handle_msg(struct mm *mm, const struct uffd_msg *msg)
{
	uint64_t remap_from = mm->remap_from, remap_end = mm->remap_end;

	mm->remap_from = mm->remap_end = 0;
	switch (msg->event) {
	case UFFD_EVENT_PAGEFAULT:
		if (!mm->dead)
			on_fault(mm, msg);
		break;
	case UFFD_EVENT_FORK:
		on_fork(mm, msg);
		break;
	case UFFD_EVENT_REMOVE:
		if (!mm->dead) {
			/* zapped: whatever is there next is new to every mirror */
			mm_mark_dirty(mm, msg->arg.remove.start, msg->arg.remove.end);
			on_remove(mm, msg->arg.remove.start, msg->arg.remove.end);
		}
		break;
	case UFFD_EVENT_UNMAP:
		/*
		 * mremap() of part of a mapping reports REMAP and then UNMAP of
		 * the same source range; the REMAP already invalidated it.
		 */
		if (!mm->dead)
			gone_mark(mm, msg->arg.remove.start, msg->arg.remove.end);
		if (msg->arg.remove.start == remap_from && msg->arg.remove.end == remap_end &&
		    remap_end)
			break;
		if (!mm->dead)
			on_range_event(mm, UMP_REASON_UNMAP, msg->arg.remove.start,
				       msg->arg.remove.end);
		break;
	case UFFD_EVENT_REMAP: {
		uint64_t from = msg->arg.remap.from, to = msg->arg.remap.to;
		uint64_t len = msg->arg.remap.len;

		if (mm->dead || from + len < from || to + len < to)
			break;
		on_range_event(mm, UMP_REASON_REMAP, from, from + len);
		on_range_event(mm, UMP_REASON_REMAP, to, to + len);
		mm_mark_dirty(mm, to, to + len);
		gone_mark(mm, from, from + len);
		mm->remap_from = from;
		mm->remap_end = from + len;
		break;
	}
	default:
		log_debug("mm %llu: uffd event %u ignored", (unsigned long long)mm->id, msg->event);
		break;
	}
}

static void uffd_cb(uv_poll_t *p, int status, int events)
{
	struct mm *mm = p->data;
	struct uffd_msg msgs[UFFD_BATCH];
	int fd = p == &mm->async_poll ? mm->async_uffd : mm->uffd;

	if (mm->dead)
		return;
	if (status < 0) {
		mm_release(mm, uv_strerror(status));
		return;
	}
	/* bounded, so one busy owner cannot starve the others */
	for (int round = 0; round < 16 && !mm->dead; round++) {
		ssize_t n = read(fd, msgs, sizeof(msgs));
		size_t count;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				mm_release(mm, strerror(errno));
			return;
		}
		count = (size_t)n / sizeof(msgs[0]);
		/* every message is handled even if the mm dies meanwhile: fork fds */
		for (size_t i = 0; i < count; i++)
			handle_msg(mm, &msgs[i]);
		if (count < UFFD_BATCH)
			return;
	}
}

void mm_read_events(struct mm *mm)
{
	if (mm->dead)
		return;
	uffd_cb(&mm->uffd_poll, 0, UV_READABLE);
	if (mm->async_uffd >= 0 && !mm->dead)
		uffd_cb(&mm->async_poll, 0, UV_READABLE);
}

static void pidfd_cb(uv_poll_t *p, int status, int events)
{
	mm_release(p->data, "owner exited");
}

/* --- requests ------------------------------------------------------------- */

static void mm_handle_closed(uv_handle_t *h)
{
	struct mm *mm = h->data;

	if (--mm->open_handles == 0 && mm->destroyed)
		free(mm);
}

static int check_uffd(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -EBADF;
	target[n] = 0;
	return strcmp(target, "anon_inode:[userfaultfd]") ? -EBADF : 0;
}

/* @pagemap_fd's entry for the page at @addr */
static int pagemap_entry(int pagemap_fd, uint64_t addr, uint64_t *e)
{
	ssize_t n = pread(pagemap_fd, e, sizeof(*e), (off_t)(addr / UMP_PAGE_SIZE * sizeof(*e)));

	if (n == (ssize_t)sizeof(*e))
		return 0;
	return n < 0 ? -errno : -EIO;
}

/* write-protect (@wp) or unprotect the probe page through @uffd */
static int probe_wp(int uffd, uint64_t probe, bool wp)
{
	struct uffdio_writeprotect w = {
		.range = { .start = probe, .len = UMP_PAGE_SIZE },
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w) == 0)
		return 0;
	/* a fork or mremap of that mm in flight: its event waits for us */
	return errno == EAGAIN ? -EAGAIN : -EBADF;
}

/*
 * Prove that @uffd (UFFDIO_API done) serves the address space whose
 * pagemap is @pagemap_fd (docs/SEMANTICS.md, ATTACH): register @probe on
 * it, write-protect the page through it, and the peer's own PTE must
 * show uffd-wp; unprotect, and the bit must be gone. The bit lives in
 * the page table of the address space the uffd serves, one per process
 * even for a page two processes share, so another process's uffd leaves
 * the peer's PTE as it was, whatever that process maps at @probe: the
 * peer cannot fake the two states without changing its own page table
 * in step with the daemon (which only a peer racing the daemon on
 * purpose could; it could as well keep a copy of its own uffd and
 * unprotect its memory: the owner is trusted with its own memory). Costs
 * four ioctls and three pagemap reads. Leaves @probe unregistered and
 * unprotected (the daemon's writes to the PTE are undone).
 * Return: 0 proven; -EINVAL @probe is not a present, unprotected page of
 * the peer; -EBADF not proven; -EAGAIN a fork or mremap of the uffd's
 * address space was in flight (try again with a new uffd); -errno
 * pagemap unreadable.
 */
static int uffd_prove(int uffd, int pagemap_fd, uint64_t probe)
{
	struct uffdio_register reg = {
		.range = { .start = probe, .len = UMP_PAGE_SIZE },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_range range = { .start = probe, .len = UMP_PAGE_SIZE };
	uint64_t before, armed = 0, after = 0;
	int ret;

	ret = pagemap_entry(pagemap_fd, probe, &before);
	if (ret)
		return ret;
	if (!(before & PM_PRESENT) || (before & PM_UFFD_WP))
		return -EINVAL;
	/* fails where that mm has no such mapping, or someone else's uffd has it */
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		log_debug("uffd proof: UFFDIO_REGISTER of the probe %#llx: %m",
			  (unsigned long long)probe);
		return -EBADF;
	}
	ret = reg.ioctls & (1ull << _UFFDIO_WRITEPROTECT) ? 0 : -EBADF;
	if (!ret)
		ret = probe_wp(uffd, probe, true);
	if (!ret)
		ret = pagemap_entry(pagemap_fd, probe, &armed);
	if (!ret)
		ret = probe_wp(uffd, probe, false);
	if (!ret)
		ret = pagemap_entry(pagemap_fd, probe, &after);
	ioctl(uffd, UFFDIO_UNREGISTER, &range);
	if (ret)
		return ret;
	if (!(armed & PM_PRESENT) || !(armed & PM_UFFD_WP) || (after & PM_UFFD_WP)) {
		log_debug("uffd proof: the peer's PTE of %#llx did not follow the uffd "
			  "(pagemap %#llx protected, %#llx unprotected)",
			  (unsigned long long)probe, (unsigned long long)armed,
			  (unsigned long long)after);
		return -EBADF;
	}
	return 0;
}

/*
 * Check that @uffd is a userfaultfd, enable @wanted & what the kernel
 * offers on it, and prove on @probe that it serves @c's own address space
 * (uffd_prove(); @pagemap_fd is @c's pagemap, or -1: opened here).
 * @features: what was enabled (the kernel writes back every feature it
 * has, not the ones enabled, so it is not read back).
 * Return: 0; -EBADF not a userfaultfd, or not @c's; -EINVAL UFFDIO_API
 * refused (the client already did it) or a bad probe page; -EAGAIN
 * (uffd_prove); -ESRCH @c's process is gone.
 */
static int uffd_handshake(struct client *c, int uffd, uint64_t wanted, uint64_t probe,
			  int pagemap_fd, uint64_t *features)
{
	struct uffdio_api api = { .api = UFFD_API };
	int ret = check_uffd(uffd), own_fd = -1;

	if (ret)
		return ret;
	api.features = wanted & c->srv->kf.uffd_offered;
	if (ioctl(uffd, UFFDIO_API, &api) < 0) {
		log_debug("client %llu: UFFDIO_API: %m (did the client call it?)",
			  (unsigned long long)c->id);
		return -EINVAL;
	}
	if (pagemap_fd < 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)c->pid);
		own_fd = pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (pagemap_fd < 0)
			return errno == ENOENT ? -ESRCH : -errno;
		/* it named the peer, not a process that reused its pid */
		if (!pidfd_alive(c->pidfd)) {
			close(own_fd);
			return -ESRCH;
		}
	}
	ret = uffd_prove(uffd, pagemap_fd, probe);
	if (own_fd >= 0)
		close(own_fd);
	if (ret) {
		log_info("client %llu (pid %d): ATTACH refused: %s", (unsigned long long)c->id,
			 (int)c->pid,
			 ret == -EBADF ? "the userfaultfd is not this process's" : strerror(-ret));
		return ret;
	}
	*features = wanted & c->srv->kf.uffd_offered;
	return 0;
}

/*
 * A new address space for @pid (uid @uid) watched through @uffd (UFFDIO_API
 * done, @features enabled) and @pidfd (dup'ed), owned by connection @owner:
 * pagemap, maps, mem opened, seq area made, polls started. The owner's own
 * (ATTACH) and its followed children (fork) are made here alike.
 * Return: 0 with *@out and a new fd of the seq area in *@seq_fd; -errno
 * (@uffd is the caller's to close then).
 */
static int mm_open(struct server *s, struct client *owner, pid_t pid, uid_t uid, int pidfd,
		   int uffd, uint64_t features, struct mm **out, int *seq_fd)
{
	struct mm *mm;
	char path[64];
	int ret, fl;

	mm = calloc(1, sizeof(*mm));
	if (!mm) {
		return -ENOMEM;
	}
	mm->srv = s;
	mm->uffd = uffd;
	mm->pagemap_fd = mm->maps_fd = mm->pidfd = mm->seq_fd = mm->mem_fd = -1;
	mm->async_uffd = mm->clear_refs_fd = mm->canary_fd = -1;
	mm->pid = pid;
	mm->uid = uid;
	mm->uffd_features = features;
	itree_init(&mm->tree);
	list_init(&mm->intervals);
	list_init(&mm->invals);
	list_init(&mm->wp_retry);
	list_init(&mm->forks);
	list_init(&mm->fork_link);
	list_init(&mm->fork_waits);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	mm->pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (mm->pagemap_fd < 0) {
		ret = errno == ENOENT ? -ESRCH : -errno;
		goto fail_mm;
	}
	if (s->kf.procmap_query) {
		snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
		mm->maps_fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	mm->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (mm->mem_fd < 0) {
		ret = errno == ENOENT ? -ESRCH : -errno;
		goto fail_mm;
	}
	/* the opens named the process, not one that reused its pid */
	if (!pidfd_alive(pidfd)) {
		ret = -ESRCH;
		goto fail_mm;
	}
	mm->pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 0);
	fl = fcntl(uffd, F_GETFL);
	if (mm->pidfd < 0 || fl < 0 || fcntl(uffd, F_SETFL, fl | O_NONBLOCK) < 0) {
		ret = -errno;
		goto fail_mm;
	}
	ret = seq_area(mm);
	if (ret)
		goto fail_mm;
	*seq_fd = fcntl(mm->seq_fd, F_DUPFD_CLOEXEC, 0);
	if (*seq_fd < 0) {
		ret = -errno;
		goto fail_mm;
	}
	mm->id = ++s->next_mm_id;
	mm->owner = owner;
	list_add_tail(&s->mms, &mm->link);
	s->nmms++;
	uv_poll_init(s->loop, &mm->uffd_poll, mm->uffd);
	uv_poll_init(s->loop, &mm->pidfd_poll, mm->pidfd);
	uv_timer_init(s->loop, &mm->wp_timer);
	mm->uffd_poll.data = mm->pidfd_poll.data = mm->wp_timer.data = mm;
	mm->open_handles = 3;
	uv_poll_start(&mm->uffd_poll, UV_READABLE, uffd_cb);
	uv_poll_start(&mm->pidfd_poll, UV_READABLE, pidfd_cb);
	*out = mm;
	return 0;
fail_mm:
	if (mm->seq) {
		munmap(mm->seq, SEQ_AREA_SIZE);
		close(mm->seq_fd);
	}
	if (mm->pidfd >= 0)
		close(mm->pidfd);
	if (mm->maps_fd >= 0)
		close(mm->maps_fd);
	if (mm->pagemap_fd >= 0)
		close(mm->pagemap_fd);
	if (mm->mem_fd >= 0)
		close(mm->mem_fd);
	free(mm);
	return ret;
}

int mm_attach(struct client *c, int uffd, const struct um_attach *req, struct um_attach_reply *rep,
	      int *seq_fd)
{
	struct server *s = c->srv;
	struct mm *mm = NULL;
	uint64_t features;
	int ret;

	if (c->mm || mm_find_pid(s, c->pid)) {
		ret = -EBUSY;
		goto fail;
	}
	ret = uffd_handshake(c, uffd, UFFD_WANTED, req->probe, -1, &features);
	if (ret)
		goto fail;
	ret = mm_open(s, c, c->pid, c->uid, c->pidfd, uffd, features, &mm, seq_fd);
	if (ret)
		goto fail;
	c->mm = mm;
	/* the client's word: a lie only costs it EFAULTs in its own system calls */
	mm->uffd_user_only = req->uffd_mode == UMP_UFFD_USER_ONLY;
	if (req->flags & UM_ATTACH_CANARY)
		mm->canary = req->probe;
	rep->mm_id = mm->id;
	rep->uffd_features = features;
	rep->seq_slots = UM_SEQ_SLOTS;
	log_info("mm %llu: pid %d attached (uffd features 0x%llx)", (unsigned long long)mm->id,
		 (int)mm->pid, (unsigned long long)rep->uffd_features);
	return 0;
fail:
	close(uffd);
	return ret;
}

#define UFFD_ASYNC_WANTED                                                                  \
	(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_EVENT_FORK |   \
	 UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP | \
	 UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_WP_HUGETLBFS_SHMEM)

int mm_attach_async(struct client *c, int uffd, const struct um_attach *req,
		    struct um_attach_reply *rep, int *seq_fd)
{
	struct server *s = c->srv;
	struct mm *mm = c->mm;
	uint64_t features;
	int ret, fl;

	if (!mm) {
		ret = -EBADFD;
		goto fail;
	}
	if (mm->dead) {
		ret = -EFAULT;
		goto fail;
	}
	if (mm->async_uffd >= 0) {
		ret = -EBUSY;
		goto fail;
	}
	/* masked features count as absent (kfeat_apply_mask cleared them) */
	if (!(s->kf.uffd_offered & UFFD_FEATURE_WP_ASYNC) || !s->kf.pagemap_scan) {
		ret = -EOPNOTSUPP;
		goto fail;
	}
	ret = uffd_handshake(c, uffd, UFFD_ASYNC_WANTED, req->probe, mm->pagemap_fd, &features);
	if (ret)
		goto fail;
	fl = fcntl(uffd, F_GETFL);
	if (fl < 0 || fcntl(uffd, F_SETFL, fl | O_NONBLOCK) < 0) {
		ret = -errno;
		goto fail;
	}
	*seq_fd = fcntl(mm->seq_fd, F_DUPFD_CLOEXEC, 0);
	if (*seq_fd < 0) {
		ret = -errno;
		goto fail;
	}
	mm->async_uffd = uffd;
	mm->async_features = features;
	/* events of TRACK_ASYNC memory (REMOVE, UNMAP, REMAP, FORK) come from here */
	uv_poll_init(s->loop, &mm->async_poll, uffd);
	mm->async_poll.data = mm;
	mm->open_handles++;
	uv_poll_start(&mm->async_poll, UV_READABLE, uffd_cb);
	rep->mm_id = mm->id;
	rep->uffd_features = features;
	rep->seq_slots = UM_SEQ_SLOTS;
	log_info("mm %llu: async uffd attached (features 0x%llx)", (unsigned long long)mm->id,
		 (unsigned long long)features);
	return 0;
fail:
	close(uffd);
	return ret;
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

/* protect on the async uffd; nothing waits there, so EAGAIN only needs the events read */
static int async_wp(struct mm *mm, uint64_t start, uint64_t end)
{
	for (int tries = 0; tries < 64; tries++) {
		int ret = wp_range(mm, mm->async_uffd, start, end - start, true);

		if (!ret)
			return 0;
		if (ret != -EAGAIN)
			return ret == -EINVAL ? -EOPNOTSUPP : ret;
		uffd_cb(&mm->async_poll, 0, UV_READABLE);
		uffd_cb(&mm->uffd_poll, 0, UV_READABLE);
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
static int wp_flush(struct mm *mm)
{
	for (int tries = 0; tries < 200 && !list_empty(&mm->wp_retry); tries++) {
		uffd_cb(&mm->uffd_poll, 0, UV_READABLE);
		if (mm->async_uffd >= 0)
			uffd_cb(&mm->async_poll, 0, UV_READABLE);
		if (mm->dead)
			return -EFAULT;
		wp_retry_cb(&mm->wp_timer);
		/* ppoll() of nothing, not usleep(): the seccomp filter has no nanosleep */
		if (!list_empty(&mm->wp_retry))
			ppoll(NULL, 0, &(struct timespec){ .tv_nsec = 100 * 1000 }, NULL);
	}
	return list_empty(&mm->wp_retry) ? 0 : -EAGAIN;
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
			ret = async_wp(mm, start, end);
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

/* count an interval of @len bytes against the owner uid's limits */
static int charge_interval(struct mm *mm, uint64_t len)
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

static void uncharge_interval(struct mm *mm, uint64_t len)
{
	const uint64_t n[LIMIT_NR] = { [LIMIT_INTERVALS] = 1, [LIMIT_BYTES] = len };

	limits_uncharge(&mm->srv->limits, mm->uid, n);
}

/* a PROTECT invalidation (mm.h mm_protect_start()) */
struct mm_protect {
	struct inval *inv; /* NULL once dropped (owner gone) */
	bool armed;	   /* track_arm() returned: applied, queued or failed */
	bool acked;
};

static void protect_done(struct mm_protect *p)
{
	inval_finish(p->inv);
	free(p);
}

static void protect_acked(struct inval *inv, void *arg)
{
	struct mm_protect *p = arg;

	(void)inv;
	p->acked = true;
	if (p->armed)
		protect_done(p);
}

/* the holder's part (the arm) is over before the loop runs again: never waits */
static void protect_expired(struct inval *inv, void *arg)
{
	(void)inv;
	protect_done(arg);
}

static void protect_dropped(struct inval *inv, void *arg)
{
	struct mm_protect *p = arg;

	(void)inv;
	p->inv = NULL;
	/* before the arm, the caller still holds it: mm_protect_armed() frees it */
	if (p->armed)
		free(p);
}

static const struct inval_hold_ops protect_ops = {
	.acked = protect_acked,
	.expired = protect_expired,
	.dropped = protect_dropped,
};

/* @all: every interval over the range, else those whose mirrors may hold WRITE */
static struct mm_protect *protect_start(struct mm *mm, uint64_t start, uint64_t end, bool all)
{
	struct hit_walk h = { 0 };
	struct mm_protect *p = NULL;
	unsigned int n = 0;

	if (mm_collect(mm, &h, start, end))
		log_error("mm %llu: out of memory: protect invalidation partly lost",
			  (unsigned long long)mm->id);
	for (unsigned int i = 0; i < h.n; i++)
		if (all || h.v[i].iv->written || h.v[i].iv->backend != UMP_BACKEND_UFFD_WP)
			h.v[n++] = h.v[i];
	if (n)
		p = calloc(1, sizeof(*p));
	if (n && (!p || inval_start_held(mm, UMP_REASON_PROTECT, start, end, 0, h.v, n,
					 &protect_ops, p, &p->inv))) {
		log_error("mm %llu: out of memory: protect invalidation not sent",
			  (unsigned long long)mm->id);
		free(p);
		p = NULL;
	}
	mm_collect_done(&h);
	return p;
}

struct mm_protect *mm_protect_start(struct mm *mm, uint64_t start, uint64_t end)
{
	return protect_start(mm, start, end, false);
}

int mm_rearm_lost(struct mm *mm, uint64_t start, uint64_t end)
{
	struct mm_protect *p;
	int ret;

	if (mm->dead)
		return -ENODEV;
	/* a hugetlb page is armed whole: so is the invalidation */
	mm_page_span(mm, &start, &end);
	log_debug("mm %llu: [%#llx, %#llx) mapped, not write-protected, copied on the next "
		  "write: arming it again",
		  (unsigned long long)mm->id, (unsigned long long)start, (unsigned long long)end);
	p = protect_start(mm, start, end, true);
	ret = mm_wp(mm, start, end - start, true);
	mm_protect_armed(p);
	return ret;
}

/* the arm of the insert is applied (or queued, or failed): @p may complete */
void mm_protect_armed(struct mm_protect *p)
{
	if (!p)
		return;
	p->armed = true;
	if (!p->inv)
		free(p);
	else if (p->acked)
		protect_done(p);
}

/* an INSERT reply parked until its write-protect is in the page tables */
struct insert_wait {
	struct deferred d;
	struct mm *mm;
	struct um_insert_reply rep;
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
static int insert_reply_armed(struct client *c, uint64_t id, struct um_insert_reply *rep)
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
	deferred_add(c, &w->d, UM_MSG_INSERT, id, insert_cancel);
	wp_barrier_add(mm, insert_armed, insert_armed, w);
	return -EINPROGRESS;
}

static int huge_cb(const struct snapshot_vma *v, void *priv)
{
	if (v->page_size <= UMP_PAGE_SIZE)
		return 0;
	*(bool *)priv = true;
	return 1;
}

int mm_insert(struct client *c, uint64_t id, const struct um_insert *req,
	      struct um_insert_reply *rep)
{
	struct mm *mm = c->mm;
	uint64_t start = req->start, end = req->start + req->length;
	bool track_async = req->flags & UM_INSERT_TRACK_ASYNC;
	struct mm_protect *protect;
	struct interval *iv;
	int ret;

	if (!mm)
		return -EBADFD;
	if (mm->dead)
		return -EFAULT;
	/* UFFDIO_REGISTER's errors do not tell a hole from a bad mapping */
	ret = snapshot_vma_covered(mm, start, end);
	if (ret)
		return ret;
	if (!mm->huge_vmas)
		snapshot_vma_walk(mm, start, end, huge_cb, &mm->huge_vmas);
	ret = charge_interval(mm, req->length);
	if (ret)
		return ret;
	iv = calloc(1, sizeof(*iv));
	if (!iv) {
		uncharge_interval(mm, req->length);
		return -ENOMEM;
	}
	ret = slot_alloc(mm, &iv->slot);
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
	iv->flags = track_async ? req->flags & ~UM_INSERT_SYNC : req->flags;
	iv->node.start = start;
	iv->node.end = end;
	list_init(&iv->receivers);
	/* what is mapped there now is registered: no longer gone */
	gone_clear(mm, start, end);
	ret = dirty_log_alloc(iv);
	if (ret)
		goto fail_unregister;
	if (!receiver_new(iv, c, iv->flags & UM_INSERT_SYNC, true)) {
		ret = -ENOMEM;
		goto fail_unregister;
	}
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
	slot_free(mm, iv->slot);
fail_free:
	dirty_log_free(iv);
	free(iv);
	uncharge_interval(mm, req->length);
	return ret;
}

/* free @iv; subscribers get EV_RELEASE(@error) unless @error is 0 */
static void interval_destroy(struct interval *iv, int error)
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
	slot_kill(iv);
	slot_free(mm, iv->slot);
	mm->srv->nintervals--;
	uncharge_interval(mm, iv->node.end - iv->node.start);
	dirty_log_free(iv);
	free(iv);
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

int mm_subscribe(struct client *c, const struct um_subscribe *req, struct um_subscribe_reply *rep,
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
	if (!receiver_new(iv, c, req->flags & UM_INSERT_SYNC, false)) {
		close(*seq_fd);
		*seq_fd = -1;
		return -ENOMEM;
	}
	rep->start = iv->node.start;
	rep->length = iv->node.end - iv->node.start;
	rep->slot = iv->slot;
	rep->seq_slots = UM_SEQ_SLOTS;
	return 0;
}

/* --- following forks (UM_INSERT_FOLLOW_FORK) ------------------------------- */

/*
 * The kernel reports UFFD_EVENT_FORK from inside fork(), before the child
 * has a pid or is linked to its parent; the event carries the child's
 * uffd but not its pid, and fork() returns as soon as the event is read,
 * so the child may already be listed when we look. So the daemon keeps
 * the owner's children as they were before the fork (noted when a
 * FOLLOW_FORK interval is inserted and after each fork is resolved) and
 * watches for the one child that is not among them. The child's writes
 * to its (inherited, still armed) pages block on the uffd we hold
 * meanwhile, so nothing it does goes unseen. A child made without a fork
 * event (vfork, posix_spawn) between two forks makes the next one
 * ambiguous: it is then not mirrored (logged).
 */
#define FORK_FIND_MS 1000 /* how long a new child may take to show up */
#define FORK_POLL_MS 1

struct fork_wait {
	struct list link; /* mm.fork_waits, oldest first */
	struct mm *mm;	  /* the forking owner */
	int ufd;	  /* the child's uffd, until handed to its mm */
	uint64_t deadline_ms;
	pid_t *before; /* the owner's children when the event was read */
	size_t nbefore;
	uv_timer_t timer;
};

struct pidset {
	pid_t *v;
	size_t n, cap;
};

static bool pid_in(const pid_t *v, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == pid)
			return true;
	return false;
}

/* the children of every thread of @pid (/proc/PID/task/TID/children) */
static int read_children(pid_t pid, struct pidset *out)
{
	char path[80];
	struct dirent *e;
	DIR *d;
	int ret = 0;

	out->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while (!ret && (e = readdir(d))) {
		FILE *f;
		int child;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children", (int)pid, e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue; /* the thread exited meanwhile */
		while (!ret && fscanf(f, "%d", &child) == 1) {
			if (out->n == out->cap) {
				size_t cap = out->cap ? out->cap * 2 : 16;
				pid_t *v = realloc(out->v, cap * sizeof(*v));

				if (!v) {
					ret = -ENOMEM;
					break;
				}
				out->v = v;
				out->cap = cap;
			}
			out->v[out->n++] = child;
		}
		fclose(f);
	}
	closedir(d);
	return ret;
}

static void fork_wait_closed(uv_handle_t *h)
{
	free(h->data);
}

static void fork_wait_free(struct fork_wait *w)
{
	list_del(&w->link);
	if (w->ufd >= 0)
		close(w->ufd); /* not followed: closing it unregisters the child */
	free(w->before);
	uv_close((uv_handle_t *)&w->timer, fork_wait_closed);
}

/* the child's copy of @piv in @child: registered, armed, announced to the inserter */
static void fork_interval(struct mm *child, struct interval *piv, int seq_fd)
{
	uint64_t start = piv->node.start, end = piv->node.end, len = end - start;
	struct uffdio_register reg = {
		.range = { .start = start, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct receiver *pr = NULL, *r;
	struct um_ev_fork ev = { 0 };
	struct interval *iv;
	int fd;

	list_for_each_entry (r, &piv->receivers, iv_link)
		if (r->owner)
			pr = r;
	/* only what the sync uffd tracks is in the child's uffd */
	if (!pr || piv->backend != UMP_BACKEND_UFFD_WP || mm_gone(piv->mm, start, end) ||
	    snapshot_vma_covered(child, start, end)) {
		log_info("mm %llu: interval %llu not followed into pid %d",
			 (unsigned long long)piv->mm->id, (unsigned long long)piv->id,
			 (int)child->pid);
		return;
	}
	if (charge_interval(child, len))
		return;
	iv = calloc(1, sizeof(*iv));
	if (!iv || slot_alloc(child, &iv->slot))
		goto fail;
	/* inherited registrations stay; registering again makes sure of it */
	if (ioctl(child->uffd, UFFDIO_REGISTER, &reg) < 0 || mm_wp(child, start, len, true)) {
		log_warn("mm %llu: cannot arm the child's copy of interval %llu: %m",
			 (unsigned long long)child->id, (unsigned long long)piv->id);
		slot_free(child, iv->slot);
		goto fail;
	}
	iv->mm = child;
	iv->id = ++child->srv->next_interval_id;
	iv->flags = piv->flags;
	iv->node.start = start;
	iv->node.end = end;
	iv->backend = UMP_BACKEND_UFFD_WP;
	list_init(&iv->receivers);
	if (!receiver_new(iv, pr->client, pr->sync, true)) {
		slot_free(child, iv->slot);
		goto fail;
	}
	itree_insert(&child->tree, &iv->node);
	list_add_tail(&child->intervals, &iv->mm_link);
	child->srv->nintervals++;
	ev.parent_interval_id = piv->id;
	ev.child_interval_id = iv->id;
	ev.start = start;
	ev.length = len;
	ev.child_pid = child->pid;
	ev.slot = iv->slot;
	ev.seq_slots = UM_SEQ_SLOTS;
	fd = fcntl(seq_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		log_error("mm %llu: no fd for the fork event of interval %llu: %m",
			  (unsigned long long)child->id, (unsigned long long)iv->id);
		return; /* the interval lives on; the connection cannot see it */
	}
	client_send(pr->client, UM_EV_FORK, 0, &ev, sizeof(ev), fd);
	return;
fail:
	free(iv);
	uncharge_interval(child, len);
}

/* @pid is the child of @w: give it an mm like its parent's, with the followed intervals */
static void fork_adopt(struct fork_wait *w, pid_t pid)
{
	struct mm *parent = w->mm, *child;
	struct pidset now = { 0 };
	struct interval *piv;
	int pidfd, seq_fd, ret;

	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		log_warn("mm %llu: forked child %d: pidfd: %m", (unsigned long long)parent->id,
			 (int)pid);
		return;
	}
	/* still the owner's child: the pidfd names it, not a recycled pid */
	ret = read_children(parent->pid, &now);
	if (ret || !pid_in(now.v, now.n, pid)) {
		log_warn("mm %llu: forked child %d vanished", (unsigned long long)parent->id,
			 (int)pid);
		goto out;
	}
	ret = mm_open(parent->srv, parent->owner, pid, parent->uid, pidfd, w->ufd,
		      parent->uffd_features, &child, &seq_fd);
	if (ret) {
		log_warn("mm %llu: forked child %d: %s", (unsigned long long)parent->id, (int)pid,
			 strerror(-ret));
		goto out;
	}
	w->ufd = -1;
	child->forked = true;
	list_add_tail(&parent->forks, &child->fork_link);
	log_info("mm %llu: pid %d forked %d: followed as mm %llu", (unsigned long long)parent->id,
		 (int)parent->pid, (int)pid, (unsigned long long)child->id);
	list_for_each_entry (piv, &parent->intervals, mm_link)
		if (piv->flags & UM_INSERT_FOLLOW_FORK)
			fork_interval(child, piv, seq_fd);
	close(seq_fd);
	if (list_empty(&child->intervals))
		mm_destroy(child);
out:
	free(now.v);
	close(pidfd);
}

static void fork_wait_cb(uv_timer_t *t);

/*
 * Match every waiting fork of @mm with the child that appeared since,
 * newest first: a child that an older wait could also take is then
 * already claimed (it has an mm) by the fork that made it.
 */
static void fork_resolve(struct mm *mm)
{
	uint64_t now_ms = server_now_ms(mm->srv);
	struct pidset now = { 0 };
	struct list *l, *prev;

	if (read_children(mm->pid, &now))
		now.n = 0;
	for (l = mm->fork_waits.prev; l != &mm->fork_waits; l = prev) {
		struct fork_wait *w = list_entry(l, struct fork_wait, link);
		unsigned int n = 0;
		pid_t found = 0;

		prev = l->prev;
		for (size_t i = 0; i < now.n; i++)
			if (!pid_in(w->before, w->nbefore, now.v[i]) &&
			    !mm_find_pid(mm->srv, now.v[i])) {
				found = now.v[i];
				n++;
			}
		if (n == 1) {
			fork_adopt(w, found);
		} else if (n > 1) {
			log_warn("mm %llu: pid %d forked, %u new children: which one is ambiguous, "
				 "child not mirrored",
				 (unsigned long long)mm->id, (int)mm->pid, n);
		} else if (now_ms < w->deadline_ms) {
			uv_timer_start(&w->timer, fork_wait_cb, FORK_POLL_MS, 0);
			continue;
		} else {
			log_warn("mm %llu: pid %d forked but no new child showed up in %d ms: "
				 "child not mirrored",
				 (unsigned long long)mm->id, (int)mm->pid, FORK_FIND_MS);
		}
		fork_wait_free(w);
	}
	/* all resolved: what exists now is what the next fork must not take */
	if (list_empty(&mm->fork_waits) && !read_children(mm->pid, &now)) {
		free(mm->fork_known);
		mm->fork_known = now.v;
		mm->nfork_known = now.n;
		return;
	}
	free(now.v);
}

void mm_fork_note_children(struct mm *mm)
{
	struct pidset now = { 0 };

	if (!list_empty(&mm->fork_waits) || read_children(mm->pid, &now)) {
		free(now.v);
		return;
	}
	free(mm->fork_known);
	mm->fork_known = now.v;
	mm->nfork_known = now.n;
}

static void fork_wait_cb(uv_timer_t *t)
{
	struct fork_wait *w = t->data;

	fork_resolve(w->mm);
}

static bool follows_forks(struct mm *mm)
{
	struct interval *iv;

	list_for_each_entry (iv, &mm->intervals, mm_link)
		if (iv->flags & UM_INSERT_FOLLOW_FORK)
			return true;
	return false;
}

/* UFFD_EVENT_FORK: keep the child's @ufd while we look for the child, or close it */
static void fork_follow(struct mm *mm, int ufd)
{
	struct pidset before = { 0 };
	struct fork_wait *w;
	int ret;

	if (mm->dead || !follows_forks(mm))
		goto drop;
	w = calloc(1, sizeof(*w));
	if (!w) {
		log_error("mm %llu: out of memory: forked child not mirrored",
			  (unsigned long long)mm->id);
		goto drop;
	}
	ret = -ENOMEM;
	before.v = malloc((mm->nfork_known + 1) * sizeof(pid_t));
	if (before.v) {
		before.n = mm->nfork_known;
		if (before.n)
			memcpy(before.v, mm->fork_known, before.n * sizeof(pid_t));
		ret = 0;
	}
	if (ret) {
		log_warn("mm %llu: cannot read the children of pid %d: %s: child not mirrored",
			 (unsigned long long)mm->id, (int)mm->pid, strerror(-ret));
		free(before.v);
		free(w);
		goto drop;
	}
	w->mm = mm;
	w->ufd = ufd;
	w->before = before.v;
	w->nbefore = before.n;
	w->deadline_ms = server_now_ms(mm->srv) + FORK_FIND_MS;
	uv_timer_init(mm->srv->loop, &w->timer);
	w->timer.data = w;
	list_add_tail(&mm->fork_waits, &w->link);
	uv_timer_start(&w->timer, fork_wait_cb, FORK_POLL_MS, 0);
	return;
drop:
	close(ufd);
}

void mm_release(struct mm *mm, const char *why)
{
	struct interval *iv;
	struct receiver *r;
	struct wp_op *op, *t;

	if (mm->dead)
		return;
	log_info("mm %llu: pid %d released: %s", (unsigned long long)mm->id, (int)mm->pid, why);
	mm->dead = true;
	inval_drop_all(mm);
	while (!list_empty(&mm->fork_waits))
		fork_wait_free(list_first_entry(&mm->fork_waits, struct fork_wait, link));
	list_for_each_entry (iv, &mm->intervals, mm_link) {
		iv->active = 0;
		watch_release(iv);
		slot_kill(iv);
		/* a followed child's inserter is its parent: alive, it must hear it */
		list_for_each_entry (r, &iv->receivers, iv_link)
			if (!r->owner || mm->forked)
				send_release(r, -EFAULT);
	}
	list_for_each_entry_safe (op, t, &mm->wp_retry, link) {
		list_del(&op->link);
		/* a parked INSERT reply: its owner is gone, nothing to wait for */
		if (op->drop)
			op->drop(op->arg);
		free(op);
	}
	uv_close((uv_handle_t *)&mm->uffd_poll, mm_handle_closed);
	uv_close((uv_handle_t *)&mm->pidfd_poll, mm_handle_closed);
	uv_close((uv_handle_t *)&mm->wp_timer, mm_handle_closed);
	if (mm->async_uffd >= 0) {
		uv_close((uv_handle_t *)&mm->async_poll, mm_handle_closed);
		close(mm->async_uffd);
		mm->async_uffd = -1;
	}
	if (mm->clear_refs_fd >= 0)
		close(mm->clear_refs_fd);
	if (mm->canary_fd >= 0)
		close(mm->canary_fd);
	mm->clear_refs_fd = mm->canary_fd = -1;
	/* the last reference: the owner's blocked writers resume */
	close(mm->uffd);
	close(mm->pidfd);
	close(mm->pagemap_fd);
	if (mm->maps_fd >= 0)
		close(mm->maps_fd);
	if (mm->mem_fd >= 0)
		close(mm->mem_fd);
	mm->uffd = mm->pidfd = mm->pagemap_fd = mm->maps_fd = mm->mem_fd = -1;
}

void mm_destroy(struct mm *mm)
{
	struct interval *iv, *t;

	mm_release(mm, "owner connection closed");
	/* followed children belong to the same connection */
	while (!list_empty(&mm->forks))
		mm_destroy(list_first_entry(&mm->forks, struct mm, fork_link));
	list_del(&mm->fork_link);
	list_for_each_entry_safe (iv, t, &mm->intervals, mm_link)
		interval_destroy(iv, 0);
	list_del(&mm->link);
	mm->srv->nmms--;
	munmap(mm->seq, SEQ_AREA_SIZE);
	close(mm->seq_fd);
	free(mm->gone);
	mm->gone = NULL;
	free(mm->fork_known);
	mm->fork_known = NULL;
	mm->ngone = 0;
	if (mm->owner && mm->owner->mm == mm)
		mm->owner->mm = NULL;
	mm->destroyed = true;
	if (mm->open_handles == 0)
		free(mm);
}
