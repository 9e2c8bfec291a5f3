/* SPDX-License-Identifier: MIT */
/*
 * scan.c - the revalidation scan (contract in scan.h).
 *
 * What counts as a change follows the kernel's mmu notifiers: an entry a
 * mirror may hold (a present page) that changes in any way, a present
 * page that goes (swap-out, migration), a protection change (mprotect,
 * the VMA going), and a page that loses its write-protection without a
 * fault (WP_ASYNC writes), and a page the soft-dirty harvest found written
 * (SOFT_DIRTY: a write to an exclusive page keeps its PFN, only bit 55
 * shows it). A page appearing where none was (a read fault,
 * swap-in) invalidates nothing: no mirror can hold a not-present page.
 *
 * Identities reuse the UM_E_* bit positions (snapshot_convert() makes
 * them), with UMP_E_WRITE's bit standing for "the VMA is writable" and one
 * bit UM_E_* leaves free marking "covered by an invalidation in flight".
 *
 * The baseline of a page is what the last scan saw, or, when an
 * invalidation covering it completed since, what the page was at that
 * completion: a change made after an invalidation completed is a new
 * change, even within one period.
 */
#include "scan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dirty.h"
#include "inval.h"
#include "log.h"
#include "lookup.h"
#include "pagemap.h"
#include "peer.h"
#include "snapshot.h"
#include "uring.h"
#include "vma.h"

#define HPAGE (2ull << 20)

#define ID_KEEP                                                                                 \
	(UMP_E_PFN_MASK | UMP_E_PRESENT | UMP_E_SWAP | UMP_E_HUGE | UMP_E_NOPERM | UMP_E_HOLE | \
	 SCAN_ID_ARMED)
#define ID_PROT (SCAN_ID_WRITABLE | UMP_E_NOPERM | UMP_E_HOLE)

struct scan_state {
	struct list link; /* server.scans; unlinked once the owner is dead */
	struct interval *iv;
	uint64_t npages;
	uint64_t due_ms;
	uint64_t *base;	   /* npages identities, valid once have_base */
	uint64_t *written; /* SOFT_DIRTY: a bit per page harvested written since the last scan */
	bool have_base;
};

static void timer_arm(struct server *s);

/* the next multiple of @period after @now: intervals of one period scan together */
static uint64_t next_due(uint64_t now, uint32_t period)
{
	return (now / period + 1) * period;
}

/* --- identities ----------------------------------------------------------- */

struct writable_walk {
	uint64_t *id;
	uint64_t start, end;
};

static int writable_cb(const struct vma *v, void *priv)
{
	struct writable_walk *w = priv;
	uint64_t a = v->start > w->start ? v->start : w->start;
	uint64_t b = v->end < w->end ? v->end : w->end;

	if (!v->write)
		return 0;
	for (uint64_t p = a; p < b; p += UMP_PAGE_SIZE)
		w->id[(p - w->start) / UMP_PAGE_SIZE] |= SCAN_ID_WRITABLE;
	return 0;
}

/*
 * @id holds @res bytes of the raw pagemap entries of [@start, +@npages),
 * a part of @iv: make them identities in place.
 */
static int identities(struct interval *iv, uint64_t start, uint64_t npages, uint64_t *id,
		      ssize_t res)
{
	uint64_t end = start + npages * UMP_PAGE_SIZE;
	struct writable_walk w = { id, start, end };
	size_t len = npages * 8;

	if (res < 0)
		return (int)res;
	/* beyond the end of the address space: the VMA walk makes these holes */
	if ((size_t)res < len)
		memset((char *)id + res, 0, len - res);
	snapshot_convert(iv->mm, start, npages, id, true);
	for (uint64_t i = 0; i < npages; i++)
		id[i] &= ID_KEEP;
	return vma_walk(iv->mm, start, end, writable_cb, &w);
}

bool scan_changed(uint64_t old, uint64_t now)
{
	if (old & SCAN_ID_EXPLAINED)
		return false;
	/* a write nobody saw (WP_ASYNC) */
	if ((old & SCAN_ID_ARMED) && !(now & SCAN_ID_ARMED))
		return true;
	if ((old ^ now) & ID_PROT)
		return true;
	/* what a mirror may hold changed; re-arming alone changes nothing */
	return (old & UMP_E_PRESENT) && ((old ^ now) & ~SCAN_ID_ARMED);
}

/*
 * Mark what the in-flight invalidations of @st's interval cover as
 * explained: a change made while one is in flight is covered by it (no
 * mirror holds an entry from before it that it did not drop), and its
 * completion takes the baseline of those pages again.
 */
static void explain_in_flight(struct scan_state *st)
{
	struct interval *iv = st->iv;
	struct inval *inv;

	list_for_each_entry (inv, &iv->mm->invals, mm_link) {
		if (inv->reason == UMP_REASON_REVALIDATE)
			continue;
		for (unsigned int i = 0; i < inv->nhits; i++) {
			uint64_t a = inv->hits[i].start, b = inv->hits[i].end;

			if (inv->hits[i].iv != iv)
				continue;
			a = a < iv->node.start ? iv->node.start : a & ~(UMP_PAGE_SIZE - 1);
			b = b > iv->node.end ? iv->node.end : b;
			for (; a < b; a += UMP_PAGE_SIZE)
				st->base[(a - iv->node.start) / UMP_PAGE_SIZE] |= SCAN_ID_EXPLAINED;
		}
	}
}

/*
 * The runs one compare of an interval found, reported as at most
 * SCAN_RUNS_MAX invalidations: the first runs each on its own, every
 * later one merged into the last span (from its first page to the last
 * changed page). Scattered changes (reclaim, migration, mprotect of
 * every other page) make thousands of runs in one interval, and an
 * invalidation each would be a burst the interval's receivers cannot
 * have read (peer.c's queue limit allows a few messages per interval);
 * the pages in between that did not change are invalidated too, which
 * is safe: a mirror re-reads them and finds them as they were.
 */
#define SCAN_RUNS_MAX 2

struct report_runs {
	struct interval *iv;
	unsigned int n;
	uint64_t first, end; /* the span still to report, once n == SCAN_RUNS_MAX - 1 */
};

static void report_span(struct interval *iv, uint64_t first, uint64_t end)
{
	struct inval_hit hit = {
		.iv = iv,
		.start = iv->node.start + first * UMP_PAGE_SIZE,
		.end = iv->node.start + end * UMP_PAGE_SIZE,
	};

	inval_start(iv->mm, UMP_REASON_REVALIDATE, hit.start, hit.end, 0, &hit, 1);
}

static void report(uint64_t first, uint64_t end, void *priv)
{
	struct report_runs *r = priv;

	if (r->n < SCAN_RUNS_MAX - 1) {
		r->n++;
		report_span(r->iv, first, end);
		return;
	}
	if (r->first == r->end)
		r->first = first;
	r->end = end;
}

uint64_t scan_compare(uint64_t *base, const uint64_t *id, const uint64_t *written, uint64_t npages,
		      void (*report_run)(uint64_t first, uint64_t end, void *priv), void *priv)
{
	uint64_t n = 0, run = 0;
	bool in_run = false;

	for (uint64_t i = 0; i < npages; i++) {
		/*
		 * A harvested write keeps the PFN of an exclusive page: only
		 * bit 55 shows it. Reported even where an invalidation was
		 * (the write may have come after it): at worst twice, never
		 * missed.
		 */
		bool c = scan_changed(base[i], id[i]) ||
			 (written && (written[i / 64] >> (i % 64) & 1));

		base[i] = id[i];
		if (c && !in_run)
			run = i;
		else if (!c && in_run)
			report_run(run, i, priv);
		in_run = c;
		n += c;
	}
	if (in_run)
		report_run(run, npages, priv);
	return n;
}

/* compare @id with the baseline, send invalidations of the runs (report()); return pages changed */
static uint64_t compare(struct scan_state *st, const uint64_t *id)
{
	struct report_runs runs = { .iv = st->iv };
	uint64_t n = 0;

	if (!st->have_base) {
		memcpy(st->base, id, st->npages * 8);
		st->have_base = true;
		goto out;
	}
	explain_in_flight(st);
	n = scan_compare(st->base, id, st->written, st->npages, report, &runs);
	if (runs.first != runs.end)
		report_span(st->iv, runs.first, runs.end);
	if (n)
		log_debug("interval %llu: scan found %llu pages changed",
			  (unsigned long long)st->iv->id, (unsigned long long)n);
out:
	if (st->written)
		memset(st->written, 0, (st->npages + 63) / 64 * 8);
	return n;
}

/*
 * SOFT_DIRTY intervals among @sts: one harvest per address space first,
 * which feeds the written bitmaps of all its soft-dirty intervals.
 */
static void harvest_soft_dirty(struct scan_state **sts, unsigned int n)
{
	static uint64_t stamp;

	stamp++;
	for (unsigned int i = 0; i < n; i++) {
		struct mm *mm = sts[i]->iv->mm;
		int ret;

		/* the first baseline needs none: the insert's harvest just cleared */
		if (!sts[i]->written || !sts[i]->have_base || mm->sd_stamp == stamp)
			continue;
		mm->sd_stamp = stamp;
		ret = dirty_soft_harvest(mm);
		/* nothing was cleared then: the bits wait for the next scan */
		if (ret && ret != -EFAULT)
			log_warn("mm %llu: soft-dirty harvest for the scan: %s",
				 (unsigned long long)mm->id, strerror(-ret));
	}
}

/*
 * Scan @n intervals: their pagemap reads in one batch, then each compared.
 * @changed: per interval pages changed, or NULL. Return: 0 or the first -errno.
 */
static int scan_batch(struct scan_state **sts, unsigned int n, uint64_t *changed_out)
{
	struct uring_req *reqs = calloc(n, sizeof(*reqs));
	int ret = 0;

	if (!reqs)
		return -ENOMEM;
	harvest_soft_dirty(sts, n);
	for (unsigned int i = 0; i < n; i++) {
		struct interval *iv = sts[i]->iv;

		reqs[i].fd = iv->mm->pagemap_fd;
		reqs[i].len = sts[i]->npages * 8;
		reqs[i].off = iv->node.start / UMP_PAGE_SIZE * 8;
		reqs[i].buf = malloc(reqs[i].len);
		if (!reqs[i].buf) {
			ret = -ENOMEM;
			goto out;
		}
	}
	/* one interval (a NOW request): its read split across the ring's workers */
	if (n == 1)
		reqs[0].res = uring_read_range(reqs[0].fd, reqs[0].buf, reqs[0].len, reqs[0].off);
	else
		uring_read_batch(uring_global(), reqs, n);
	for (unsigned int i = 0; i < n; i++) {
		struct interval *iv = sts[i]->iv;
		int err = identities(iv, iv->node.start, sts[i]->npages, reqs[i].buf, reqs[i].res);
		uint64_t c = 0;

		if (err) {
			log_debug("interval %llu: scan: %s", (unsigned long long)sts[i]->iv->id,
				  strerror(-err));
			ret = ret ? ret : err;
		} else {
			c = compare(sts[i], reqs[i].buf);
		}
		if (changed_out)
			changed_out[i] = c;
	}
out:
	for (unsigned int i = 0; i < n; i++)
		free(reqs[i].buf);
	free(reqs);
	return ret;
}

/* --- period and timer ------------------------------------------------------ */

void scan_explain(struct interval *iv, uint64_t start, uint64_t end)
{
	struct scan_state *st = iv->scan;
	uint64_t a, b, *id;
	ssize_t res = 0;
	int ret = 0;

	if (!st || !st->have_base || iv->mm->dead)
		return;
	start = (start < iv->node.start ? iv->node.start : start) & ~(UMP_PAGE_SIZE - 1);
	end = end > iv->node.end ? iv->node.end : end;
	if (start >= end)
		return;
	/* whole 2 MiB blocks (in the interval): a THP is recognised as the full scan does */
	a = start & ~(HPAGE - 1);
	b = (end + HPAGE - 1) & ~(HPAGE - 1);
	a = a < iv->node.start ? iv->node.start : a;
	b = b > iv->node.end ? iv->node.end : b;
	id = malloc((b - a) / UMP_PAGE_SIZE * 8);
	if (!id)
		goto keep;
	res = pagemap_pread(iv->mm->pagemap_fd, a, (b - a) / UMP_PAGE_SIZE, id);
	ret = identities(iv, a, (b - a) / UMP_PAGE_SIZE, id, res);
	if (ret)
		goto keep;
	memcpy(&st->base[(start - iv->node.start) / UMP_PAGE_SIZE],
	       &id[(start - a) / UMP_PAGE_SIZE], (end - start) / UMP_PAGE_SIZE * 8);
	free(id);
	return;
keep:
	/* the old baseline: the next scan may report this change again, never miss one */
	log_debug("interval %llu: no baseline at completion of [%#llx, %#llx): %s",
		  (unsigned long long)iv->id, (unsigned long long)start, (unsigned long long)end,
		  id ? strerror(-ret) : "out of memory");
	free(id);
}

void scan_note_armed(struct interval *iv, uint64_t start, uint64_t end)
{
	struct scan_state *st = iv->scan;

	if (!st || !st->have_base)
		return;
	start = (start < iv->node.start ? iv->node.start : start) & ~(UMP_PAGE_SIZE - 1);
	end = end > iv->node.end ? iv->node.end : end;
	/* the rest of the identity stays: a change it missed is still reported */
	for (uint64_t a = start; a < end; a += UMP_PAGE_SIZE)
		st->base[(a - iv->node.start) / UMP_PAGE_SIZE] |= SCAN_ID_ARMED;
}

void scan_note_written(struct interval *iv, uint64_t start, uint64_t end)
{
	struct scan_state *st = iv->scan;

	if (!st || !st->written)
		return;
	start = (start < iv->node.start ? iv->node.start : start) & ~(UMP_PAGE_SIZE - 1);
	end = end > iv->node.end ? iv->node.end : end;
	for (uint64_t a = start; a < end; a += UMP_PAGE_SIZE) {
		uint64_t i = (a - iv->node.start) / UMP_PAGE_SIZE;

		st->written[i / 64] |= 1ull << (i % 64);
	}
}

void scan_interval_free(struct interval *iv)
{
	struct scan_state *st = iv->scan;

	if (!st)
		return;
	list_del(&st->link);
	free(st->base);
	free(st->written);
	free(st);
	iv->scan = NULL;
	iv->revalidate_ms = 0;
}

/* the period a request's @period_ms means for @iv */
static uint32_t effective_period(const struct interval *iv, uint32_t period_ms)
{
	uint32_t def = iv->mm->srv->opt.revalidate_ms;

	if (period_ms == UMP_REVAL_DEFAULT_PERIOD)
		return def;
	/* these backends see writes only through the scan */
	if (period_ms == 0 && iv->backend != UMP_BACKEND_UFFD_WP)
		return def;
	return period_ms;
}

static int set_period(struct interval *iv, uint32_t period)
{
	struct server *s = iv->mm->srv;
	struct scan_state *st = iv->scan;

	if (period == 0 || iv->mm->dead) {
		scan_interval_free(iv);
		return 0;
	}
	if (!st) {
		st = calloc(1, sizeof(*st));
		if (!st)
			return -ENOMEM;
		st->iv = iv;
		st->npages = (iv->node.end - iv->node.start) / UMP_PAGE_SIZE;
		st->base = malloc(st->npages * 8);
		if (iv->backend == UMP_BACKEND_SOFT_DIRTY)
			st->written = calloc((st->npages + 63) / 64, 8);
		if (!st->base || (iv->backend == UMP_BACKEND_SOFT_DIRTY && !st->written)) {
			free(st->base);
			free(st->written);
			free(st);
			return -ENOMEM;
		}
		list_add_tail(&s->scans, &st->link);
		iv->scan = st;
		/* from now on every change counts */
		scan_batch(&st, 1, NULL);
	}
	if (iv->revalidate_ms != period || !st->due_ms) {
		iv->revalidate_ms = period;
		st->due_ms = next_due(server_now_ms(s), period);
		timer_arm(s);
	}
	return 0;
}

int scan_interval_default(struct interval *iv)
{
	int ret;

	if (iv->backend == UMP_BACKEND_UFFD_WP)
		return 0;
	ret = set_period(iv, effective_period(iv, UMP_REVAL_DEFAULT_PERIOD));
	if (ret)
		log_error("interval %llu: no memory for its revalidation baseline: not scanned",
			  (unsigned long long)iv->id);
	return ret;
}

static void timer_cb(uv_timer_t *t)
{
	struct server *s = t->data;
	uint64_t now = server_now_ms(s);
	struct scan_state *st, *tmp, **due = NULL;
	unsigned int n = 0, cap = 0;

	list_for_each_entry_safe (st, tmp, &s->scans, link) {
		if (st->iv->mm->dead) {
			/* nothing to read any more; freed with the interval */
			list_del(&st->link);
			continue;
		}
		if (st->due_ms > now)
			continue;
		if (n == cap) {
			unsigned int ncap = cap ? cap * 2 : 16;
			struct scan_state **v = realloc(due, ncap * sizeof(*v));

			if (!v)
				break; /* scan what fits; the rest stays due */
			due = v;
			cap = ncap;
		}
		due[n++] = st;
	}
	if (n) {
		int ret = scan_batch(due, n, NULL);

		if (ret == -ENOMEM)
			log_warn("revalidation scan: out of memory, retried next period");
	}
	for (unsigned int i = 0; i < n; i++)
		due[i]->due_ms = next_due(now, due[i]->iv->revalidate_ms);
	free(due);
	timer_arm(s);
}

static void timer_arm(struct server *s)
{
	uint64_t now = server_now_ms(s), first = UINT64_MAX;
	struct scan_state *st;

	list_for_each_entry (st, &s->scans, link)
		if (st->due_ms < first)
			first = st->due_ms;
	if (first == UINT64_MAX) {
		uv_timer_stop(&s->scan_timer);
		return;
	}
	uv_timer_start(&s->scan_timer, timer_cb, first > now ? first - now : 0, 0);
}

int scan_init(struct server *s)
{
	int ret = uv_timer_init(s->loop, &s->scan_timer);

	list_init(&s->scans);
	s->scan_timer.data = s;
	s->hooks.explained = scan_explain;
	s->hooks.armed = scan_note_armed;
	s->hooks.soft_written = scan_note_written;
	return ret;
}

void scan_fini(struct server *s)
{
	struct scan_state *st, *t;

	/* the intervals outlive the loop's last turn: leave their states unlinked */
	list_for_each_entry_safe (st, t, &s->scans, link)
		list_del(&st->link);
	uv_timer_stop(&s->scan_timer);
	uv_close((uv_handle_t *)&s->scan_timer, NULL);
}

/* --- the request ------------------------------------------------------------ */

int scan_request(struct client *c, const struct ump_revalidate *req,
		 struct ump_revalidate_reply *rep)
{
	struct receiver *r = client_receiver(c, req->interval_id);
	struct interval *iv;
	uint64_t changed_pages = 0;
	int ret;

	if (!r)
		return interval_find(c->srv, req->interval_id) ? -EACCES : -ENOENT;
	iv = r->iv;
	if (iv->mm->dead)
		return -EFAULT;
	if ((req->flags & UMP_REVAL_NOW) && iv->scan && iv->scan->have_base) {
		ret = scan_batch(&iv->scan, 1, &changed_pages);
		if (ret == -ENOMEM)
			return ret;
	}
	ret = set_period(iv, effective_period(iv, req->period_ms));
	if (ret)
		return ret;
	rep->changed = changed_pages;
	rep->period_ms = iv->revalidate_ms;
	return 0;
}
