/* SPDX-License-Identifier: MIT */
/*
 * uffd_event.c - the uffd event source (uffd_event.h). Everything that
 * turns an uffd message into invalidations is here.
 */
#include "uffd_event.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "dirtylog.h"
#include "fork.h"
#include "gone.h"
#include "inval.h"
#include "log.h"
#include "lookup.h"
#include "mm.h"
#include "pagemap.h"
#include "settle.h"
#include "vma.h"
#include "wp.h"
#include "uapi_compat.h"

#define UFFD_BATCH 64
#define DRAIN_FDS 64	/* uffds read per look */
#define MAX_BATCHES 128 /* batches read and not handled yet */
/*
 * Between two looks at the uffds while the loop is busy with other work
 * (uffd_event_tick()): an owner's munmap waits at most about this long
 * plus one message's work before it is read, for one epoll_wait() per gap.
 */
#define TICK_GAP_NS 5000
#define GRANULE_MAX ((2ull << 20) / UMP_PAGE_SIZE) /* pages of the widest write granule */

static void on_range_event(struct mm *mm, uint32_t reason, uint64_t start, uint64_t end)
{
	struct hit_walk h = { 0 };

	start &= ~(UMP_PAGE_SIZE - 1);
	if (end <= start)
		return;
	if (mm_collect(mm, &h, start, end))
		log_error("mm %llu: out of memory: %s event partly lost",
			  (unsigned long long)mm->id, ump_reason_name(reason));
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

struct granule_iv {
	uint64_t page, end;
	bool any, refuse;
};

/*
 * The intervals meeting a granule: it ends where the first UFFD_WP
 * interval over its page does, and before any other kind (those never
 * fault here for writes: nothing of theirs is unprotected by a granule).
 */
static int granule_iv_cb(struct itree_node *n, void *priv)
{
	struct interval *iv = (struct interval *)n;
	struct granule_iv *g = priv;

	if (n->start <= g->page) {
		if (iv->backend != UMP_BACKEND_UFFD_WP) {
			g->refuse = true;
			return 1;
		}
		g->any = true;
		if (n->end < g->end)
			g->end = n->end;
	} else if (iv->backend != UMP_BACKEND_UFFD_WP && n->start < g->end) {
		g->end = n->start;
	}
	return 0;
}

struct granule_vma {
	uint64_t end;
	bool shared, ok;
};

static int granule_vma_cb(const struct vma *v, void *priv)
{
	struct granule_vma *g = priv;

	g->ok = v->page_size == UMP_PAGE_SIZE;
	g->end = v->end;
	g->shared = v->shared;
	return 1;
}

/*
 * Will a write to the page of entry @e keep that page? Only such a page
 * may join a granule: once unprotected, its write goes unseen, and a copy
 * would put a new page under a mirror that holds the old one. Nothing
 * mapped (a marker, a swapped page): nothing a mirror can hold; the write
 * maps a new page where the mirror saw none. A shared mapping's page is
 * written in place. A private mapping's present page is not trusted, even
 * an anonymous one pagemap shows mapped exclusively: if a fork ever
 * shared it (a fork the daemon need not have seen: none is reported while
 * no VMA is registered) it lost its exclusive mark, which pagemap cannot
 * show (PM_MMAP_EXCLUSIVE counts mappers), and then any other reference
 * (a pin, a vmsplice, the swap cache) makes its write a copy.
 */
static bool write_keeps_page(const struct mm *mm, uint64_t e, bool shared)
{
	uint64_t pfn = e & PM_PFN_MASK;

	if (!(e & PM_PRESENT))
		return true;
	if (!shared)
		return false;
	return mm->srv->kf.pfn_visible && mm->srv->kf.zero_pfn && pfn &&
	       pfn != mm->srv->kf.zero_pfn;
}

/*
 * The end of a granule of @want pages from @page (write-faulted): clipped
 * to the end of the UFFD_WP intervals over @page and of its VMA, and cut
 * before the first page a write would replace (write_keeps_page()).
 * At least @page + one page.
 */
static uint64_t granule_end(struct mm *mm, uint64_t page, uint64_t want)
{
	uint64_t one = page + UMP_PAGE_SIZE, end = page + want * UMP_PAGE_SIZE;
	uint64_t ents[GRANULE_MAX];
	struct granule_iv iv = { page, end, false, false };
	struct granule_vma g = { 0 };

	itree_query(&mm->tree, page, end, granule_iv_cb, &iv);
	if (iv.refuse || !iv.any)
		return one;
	end = iv.end;
	if (vma_walk(mm, page, one, granule_vma_cb, &g) != 1 || !g.ok)
		return one;
	if (g.end < end)
		end = g.end;
	if (end <= one || pagemap_read(mm->pagemap_fd, one, (end - one) / UMP_PAGE_SIZE, ents))
		return one;
	for (uint64_t a = one; a < end; a += UMP_PAGE_SIZE)
		if (!write_keeps_page(mm, ents[(a - one) / UMP_PAGE_SIZE], g.shared))
			return a;
	return end;
}

/*
 * Adaptive write granules, as readahead for writes: a write fault right
 * after the last WRITE span continues a streak and gets twice as many
 * pages (up to 2 MiB), unprotected together under one invalidation whose
 * span is all of them; any other write fault gets one page.
 */
static uint64_t write_span(struct mm *mm, uint64_t page)
{
	uint64_t end = page + UMP_PAGE_SIZE, max = mm->srv->opt.write_granule;

	if (max > GRANULE_MAX)
		max = GRANULE_MAX;
	if (page == mm->wstreak_end && mm->wgranule && max > 1)
		end = granule_end(mm, page, mm->wgranule * 2 < max ? mm->wgranule * 2 : max);
	mm->wstreak_end = end;
	mm->wgranule = (end - page) / UMP_PAGE_SIZE;
	return end;
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
	if (end == page + UMP_PAGE_SIZE)
		end = write_span(mm, page);
	if (mm_collect(mm, &h, page, end)) {
		log_error("mm %llu: out of memory on a write fault", (unsigned long long)mm->id);
		mm_collect_done(&h);
		h.n = 0;
	}
	/* the granule's pages are logged written: over-reporting is safe */
	for (unsigned int i = 0; i < h.n; i++) {
		h.v[i].iv->written = true;
		interval_mark_dirty(h.v[i].iv, h.v[i].start, h.v[i].end);
	}
	/* no interval: inval_start() just unprotects (one page: no granule without one) */
	if (h.n)
		settle_write(mm, page, end, msg->arg.pagefault.feat.ptid, h.v, h.n);
	else
		inval_start(mm, UMP_REASON_WRITE, page, page + UMP_PAGE_SIZE,
			    msg->arg.pagefault.feat.ptid, h.v, h.n);
	mm_collect_done(&h);
}

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

/*
 * Messages read and not handled yet, one batch per uffd read, in the
 * order read. A handler that reads the same uffd again (mm_read_events()
 * after an EAGAIN) must first handle what is left here, or that uffd's
 * messages would be handled out of order: @next moves before each message
 * is handled, so such a nested read sees where the batch stands.
 */
struct drain_batch {
	uv_poll_t *p;
	unsigned int n, next;
	bool urgent;
	struct uffd_msg msgs[UFFD_BATCH];
};

static struct drain_batch batches[MAX_BATCHES];
static unsigned int nbatches;

static int uffd_of(uv_poll_t *p)
{
	struct mm *mm = p->data;

	return p == &mm->async_poll ? mm->async_uffd : mm->uffd;
}

static bool has_pending(uv_poll_t *p)
{
	for (unsigned int i = 0; i < nbatches; i++)
		if (batches[i].p == p && batches[i].next < batches[i].n)
			return true;
	return false;
}

/* handle what was read from @p's uffd and not handled yet */
static void handle_pending(uv_poll_t *p)
{
	struct mm *mm = p->data;

	for (unsigned int i = 0; i < nbatches; i++) {
		struct drain_batch *b = &batches[i];

		if (b->p != p)
			continue;
		/* every message is handled even if the mm dies meanwhile: fork fds */
		while (b->next < b->n)
			handle_msg(mm, &b->msgs[b->next++]);
	}
}

/* one read of up to @max messages: how many, 0 if none (or the mm was released) */
static size_t read_msgs(struct mm *mm, int fd, struct uffd_msg *msgs, size_t max)
{
	for (;;) {
		ssize_t n = read(fd, msgs, max * sizeof(msgs[0]));

		if (n >= 0)
			return (size_t)n / sizeof(msgs[0]);
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			mm_release(mm, strerror(errno));
		return 0;
	}
}

void uffd_event_cb(uv_poll_t *p, int status, int events)
{
	struct mm *mm = p->data;
	struct uffd_msg msgs[UFFD_BATCH];

	if (mm->dead)
		return;
	if (status < 0) {
		mm_release(mm, uv_strerror(status));
		return;
	}
	handle_pending(p);
	/* bounded, so one busy owner cannot starve the others */
	for (int round = 0; round < 16 && !mm->dead; round++) {
		size_t count = read_msgs(mm, uffd_of(p), msgs, UFFD_BATCH);

		/* every message is handled even if the mm dies meanwhile: fork fds */
		for (size_t i = 0; i < count; i++)
			handle_msg(mm, &msgs[i]);
		if (count < UFFD_BATCH)
			return;
	}
}

/*
 * Does @msg keep a thread of the owner waiting for the read itself
 * (REMOVE, UNMAP, REMAP, FORK: its madvise/munmap/mremap/fork), with
 * the change under way once it is read? A write fault waits for our
 * unprotect, not for the read: read and not handled yet, it is the same
 * as not read yet.
 */
static bool msg_urgent(const struct uffd_msg *msg)
{
	return msg->event != UFFD_EVENT_PAGEFAULT;
}

/*
 * Read one batch from every ready uffd that has nothing read and
 * unhandled (which keeps each uffd's messages in order) into batches[].
 * Every batch of an address space is urgent if one is: they are
 * handled together, in the order read. True if any is urgent.
 */
static bool read_ready(struct server *s)
{
	struct epoll_event evs[DRAIN_FDS];
	bool urgent = false;
	int n;

	n = epoll_wait(s->uffd_ep, evs, DRAIN_FDS, 0);
	/*
	 * Full (more address spaces with write faults waiting than that):
	 * the rest stay in the kernel until the end of the turn empties it.
	 */
	for (int i = 0; i < n && nbatches < MAX_BATCHES; i++) {
		uv_poll_t *p = evs[i].data.ptr;
		struct mm *mm = p->data;
		struct drain_batch *b = &batches[nbatches];

		if (mm->dead || has_pending(p))
			continue;
		b->n = (unsigned int)read_msgs(mm, uffd_of(p), b->msgs, UFFD_BATCH);
		if (!b->n)
			continue;
		b->p = p;
		b->next = 0;
		b->urgent = false;
		for (unsigned int k = 0; k < b->n && !b->urgent; k++)
			b->urgent = msg_urgent(&b->msgs[k]);
		urgent |= b->urgent;
		nbatches++;
	}
	for (unsigned int i = 0; urgent && i < nbatches; i++)
		for (unsigned int j = 0; batches[i].urgent && j < nbatches; j++)
			if (batches[j].p->data == batches[i].p->data)
				batches[j].urgent = true;
	return urgent;
}

/*
 * Handle the batches read: the urgent ones (first), and unless
 * @urgent_only the others; what is left stays for later. The number of
 * batches handled.
 */
static unsigned int handle_batches(bool urgent_only)
{
	unsigned int handled = 0, kept = 0;

	for (int urgent = 1; urgent >= (urgent_only ? 1 : 0); urgent--) {
		for (unsigned int i = 0; i < nbatches; i++) {
			if (batches[i].urgent != (bool)urgent || batches[i].next == batches[i].n)
				continue;
			handle_pending(batches[i].p);
			handled++;
		}
	}
	for (unsigned int i = 0; i < nbatches; i++) {
		if (batches[i].next == batches[i].n)
			continue;
		if (kept != i)
			batches[kept] = batches[i];
		kept++;
	}
	nbatches = kept;
	return handled;
}

/*
 * One look: read every ready uffd, handle the urgent address spaces at
 * once; write faults wait for the end of the loop turn (check_cb()). The
 * number of batches handled.
 */
static unsigned int look(struct server *s)
{
	unsigned int handled = 0;

	if (s->uffd_draining)
		return 0;
	s->uffd_draining = true;
	s->uffd_looked_ns = uv_hrtime();
	if (read_ready(s))
		handled = handle_batches(true);
	s->uffd_draining = false;
	return handled;
}

static void uffd_ep_cb(uv_poll_t *p, int status, int events)
{
	struct server *s = p->data;

	if (status < 0) {
		log_error("uffd epoll set: %s", uv_strerror(status));
		return;
	}
	look(s);
}

/*
 * The end of each loop turn: the write faults read during it, one batch
 * per uffd, after every connection had its turn. Handled where they were
 * read, the acks of their invalidations could come back within the same
 * turn, and the clients whose sockets the loop happens to serve after
 * that point would get two rounds per turn while the others get one
 * (measured: progress max/min 4-15 across 64 writers when handled in the
 * middle of a connection's turn, 1.9 when handled at the loop's uffd
 * poll; against 1.1-1.4 for the loop reading each uffd in epoll order).
 */
static void check_cb(uv_check_t *h)
{
	struct server *s = h->data;

	if (!nbatches || s->uffd_draining)
		return;
	s->uffd_draining = true;
	handle_batches(false);
	s->uffd_draining = false;
}

bool uffd_event_tick(struct server *s)
{
	if (!s->uffd_ep_on || s->uffd_draining || uv_hrtime() - s->uffd_looked_ns < TICK_GAP_NS)
		return false;
	return look(s);
}

int uffd_event_init(struct server *s)
{
	s->hooks.uffd_cb = uffd_event_cb;
	s->hooks.tick = uffd_event_tick;
	s->uffd_ep = epoll_create1(EPOLL_CLOEXEC);
	if (s->uffd_ep < 0)
		return -errno;
	uv_poll_init(s->loop, &s->uffd_ep_poll, s->uffd_ep);
	s->uffd_ep_poll.data = s;
	uv_poll_start(&s->uffd_ep_poll, UV_READABLE, uffd_ep_cb);
	uv_check_init(s->loop, &s->uffd_check);
	s->uffd_check.data = s;
	uv_check_start(&s->uffd_check, check_cb);
	/* runs every turn, but keeps no loop alive */
	uv_unref((uv_handle_t *)&s->uffd_check);
	s->uffd_ep_on = true;
	return 0;
}

void uffd_event_fini(struct server *s)
{
	if (!s->uffd_ep_on)
		return;
	uv_close((uv_handle_t *)&s->uffd_ep_poll, NULL);
	uv_close((uv_handle_t *)&s->uffd_check, NULL);
	close(s->uffd_ep);
	s->uffd_ep_on = false;
}
