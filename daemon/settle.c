/* SPDX-License-Identifier: MIT */
/*
 * settle.c - REMOVE and WRITE invalidations held until the page tables
 * really changed (settle.h).
 */
#include "settle.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gone.h"
#include "inval.h"
#include "log.h"
#include "lookup.h"
#include "pagemap.h"
#include "peer.h"
#include "vma.h"
#include "wp.h"
#include "uapi_compat.h"

#define SETTLE_SPIN_NS (2ull * 1000 * 1000) /* busy polling after the acks */
#define SETTLE_POLL_MS 1		    /* then this often */
#define SETTLE_GIVE_UP_MS 100		    /* zap never seen: re-arm anyway */
#define SETTLE_WRITE_GIVE_UP_MS 20	    /* the writer never retried (killed?) */
#define SETTLE_REARM_ROUNDS 8		    /* re-arms of one REMOVE, at most */
#define SETTLE_QUIET_MS 100		    /* overlapping REMOVEs: no late zap for this long */

#define PM_MAPPED (PM_PRESENT | PM_SWAP)

struct settle {
	struct list link; /* server.settling, once acked */
	struct mm *mm;
	struct inval *inv;
	uint32_t reason; /* UMP_REASON_REMOVE or UMP_REASON_WRITE */
	bool wait;	 /* WRITE: the writer's retry will change the PFN */
	uint64_t start, end;
	uint64_t *before; /* pagemap entries when the event was read */
	uint64_t *now;	  /* scratch for the polls */
	uint64_t acked_ns, give_up_ms;
	bool changed; /* the change was seen (or given up on); REMOVE: re-armed */
	bool written; /* REMOVE: uffd-wp bits in the span changed by us since the event */
	bool anon;    /* REMOVE: the span is private anonymous memory (its zap drops markers) */
	/* REMOVE, once re-armed (verify_rearm()) */
	uint64_t *armed;  /* pagemap entries once the re-arm was applied */
	uint64_t *unprot; /* bitmap: pages we unprotected since our last re-arm */
	uint64_t unarmed; /* pages the last re-arm left unprotected */
	unsigned int rounds;
	bool verified;	   /* the last re-arm was found in place */
	bool overlap;	   /* another REMOVE of these pages was in flight when it came */
	uint64_t quiet_ms; /* overlap: done once no zap was seen until then */
};

static void settle_free(struct settle *st)
{
	if (!list_empty(&st->link))
		list_del(&st->link);
	free(st->before);
	free(st->now);
	free(st->armed);
	free(st->unprot);
	free(st);
}

/*
 * Has the zap passed every page it will change? The pages mapped when
 * the event was read (present or swapped: not "none", which is neither)
 * must now differ from what they were (zapped, or zapped and written
 * again); a kernel with soft-dirty shows bit 55 on never-touched pages of
 * a new VMA, and a zap does not clear it: a page whose soft-dirty bit
 * alone changed was not zapped.
 *
 * Not every REMOVE zaps: MADV_FREE sends one and leaves the pages mapped,
 * and a madvise() that fails after the event zaps nothing; and a page
 * zapped and written again may get the same PFN and look unchanged. So an
 * unchanged page is normally waited for only SETTLE_GIVE_UP_MS (@sure
 * false). But once the zap has visibly begun (a present page of the span
 * gone or replaced, or a page already empty when the event was handled:
 * its thread runs as soon as we read the event), a present
 * write-protected page it has not reached yet certainly will change (a
 * page written there after a zap carries no uffd-wp bit): then the wait
 * has no such limit (@sure true), only the ack timeout of the held
 * record. Swap entries and uffd-wp markers are never that sure (a zap of
 * shmem leaves the marker as it was). Our own write-protect changes in
 * the span (a write fault's unprotect, a re-arm: @st->written) change
 * uffd-wp bits without a zap: then only a PFN change or no page counts.
 * An unreadable pagemap (owner gone) counts as done.
 */
static bool zap_done(struct settle *st, bool *sure)
{
	uint64_t n = (st->end - st->start) / UMP_PAGE_SIZE;
	bool begun = false, unsure = false, done = true;

	*sure = false;
	if (pagemap_read(st->mm->pagemap_fd, st->start, n, st->now))
		return true;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t b = st->before[i] & ~PM_SOFT_DIRTY, x = st->now[i] & ~PM_SOFT_DIRTY;
		bool moved;

		/*
		 * Nothing at all, not even a uffd-wp marker, in an armed span:
		 * zapped already (an anonymous zap drops the markers that
		 * arming leaves on empty entries), before we read the span.
		 */
		if (!(b & PM_MAPPED)) {
			begun |= !b;
			continue;
		}
		/*
		 * A uffd-wp marker (a swap entry of no swap file, as
		 * snapshot.c tells them apart) holds no page. A zap of shmem
		 * (or hugetlb) leaves it where it is (and puts one on every
		 * page it zaps): it never changes. A zap of private anonymous
		 * memory drops it (Linux 6.5+, the only ones with markers
		 * there): it certainly changes, and until it has, the re-arm
		 * would come before the zap and be dropped with it. Unless we
		 * write-protected in the span since (@st->written: another
		 * REMOVE's re-arm puts the very same marker back).
		 */
		if (pagemap_is_marker(b)) {
			if (!st->anon || st->written)
				continue;
			if (x == b)
				done = false;
			else
				begun = true;
			continue;
		}
		if (!(b & PM_PRESENT)) {
			if (x == b) {
				done = false;
				unsure = true;
			}
			continue;
		}
		moved = !(x & PM_PRESENT) || (x & PM_PFN_MASK) != (b & PM_PFN_MASK);
		begun |= moved;
		if (moved || (!st->written && x != b))
			continue;
		done = false;
		unsure |= st->written || !(b & PM_UFFD_WP);
	}
	*sure = begun && !unsure;
	return done;
}

/* WRITE: the writer's fault retry has replaced the page */
static bool write_done(struct settle *st)
{
	uint64_t now;

	if (pagemap_read(st->mm->pagemap_fd, st->start, 1, &now))
		return true;
	if (!(now & PM_PRESENT))
		return false;
	return !(st->before[0] & PM_PRESENT) ||
	       (now & PM_PFN_MASK) != (st->before[0] & PM_PFN_MASK);
}

/*
 * Write-protect [@start, @end) except its gone parts: what was unmapped
 * there since (munmap, MAP_FIXED, mremap) is not registered any more, so
 * a write-protect could only fail there, and without WP_UNPOPULATED the
 * read fault before it would populate a mapping nobody mirrors (a huge
 * page, for hugetlb).
 */
static void wp_not_gone(struct mm *mm, uint64_t start, uint64_t end)
{
	for (unsigned int i = 0; i < mm->ngone && start < end; i++) {
		const struct mm_span *g = &mm->gone[i];

		if (g->end <= start)
			continue;
		if (g->start >= end)
			break;
		if (g->start > start)
			mm_wp(mm, start, g->start - start, true);
		start = g->end;
	}
	if (start < end)
		mm_wp(mm, start, end - start, true);
}

static void rearm(struct settle *st)
{
	struct inval *inv = st->inv;

	/* errors ignored: the range may be unmapped by now, unnoticed yet */
	for (unsigned int i = 0; i < inv->nhits; i++)
		if (inv->hits[i].iv && interval_armed(inv->hits[i].iv))
			wp_not_gone(st->mm, inv->hits[i].start, inv->hits[i].end);
}

/* is @page in an interval of @st whose writes the uffd-wp bit tracks? */
static bool in_hits(const struct settle *st, uint64_t page)
{
	const struct inval *inv = st->inv;

	for (unsigned int i = 0; i < inv->nhits; i++) {
		const struct interval *iv = inv->hits[i].iv;

		if (iv && page >= inv->hits[i].start && page < inv->hits[i].end &&
		    (iv->backend == UMP_BACKEND_UFFD_WP || iv->backend == UMP_BACKEND_WP_ASYNC))
			return true;
	}
	return false;
}

/*
 * REMOVE, re-armed: is the re-arm really in place, so that the seqs may go
 * even? The madvise() threads the kernel released when we read their
 * events zap under the owner's mmap lock whenever they get to run (a
 * thread woken by our read can be rescheduled before it even takes the
 * lock); a zap that comes after the re-arm drops the uffd-wp bits and
 * markers of anonymous memory again, and the next write would not fault.
 *
 * Once the re-arm is applied: read the span, wait for every zap under
 * way (mm_lock_barrier()), read it again. A page armed the first time and
 * no longer the second was zapped meanwhile: re-arm again, and verify
 * again. Pages we unprotected ourselves since (a write fault's WRITE) are
 * left alone. A page the re-arm left unarmed is re-armed again (a zap came
 * between the re-arm and the first read), unless part of the span was
 * unmapped since and a round left as many unarmed (holes cannot be armed).
 *
 * When another REMOVE of the same pages was in flight as this one came
 * (@st->overlap: two threads zapping the same pages), a zap that found
 * the pages already empty left no trace, and nothing tells whether the
 * other thread has zapped yet: the re-arm must then stay in place for
 * SETTLE_QUIET_MS (each loss re-armed and the wait started again).
 * Return: true when done, false to be called again.
 */
static bool verify_rearm(struct settle *st, uint64_t now_ms)
{
	struct mm *mm = st->mm;
	uint64_t n = (st->end - st->start) / UMP_PAGE_SIZE, lost = 0, unarmed = 0;
	int ret;

	if (mm->dead || !st->armed || !st->unprot)
		return true;
	/* the re-arm is still queued behind an event being delivered */
	if (mm_wp_pending(mm))
		return false;
	if (st->verified) {
		/* overlap: watching for a late zap until quiet_ms */
		if (pagemap_read(mm->pagemap_fd, st->start, n, st->now))
			return true;
		for (uint64_t i = 0; i < n; i++)
			if (!((st->unprot[i / 64] >> (i % 64)) & 1) &&
			    (st->armed[i] & PM_UFFD_WP) && !(st->now[i] & PM_UFFD_WP))
				lost++;
		if (!lost)
			return now_ms >= st->quiet_ms;
		log_debug("mm %llu: REMOVE [%#llx, %#llx): %llu pages zapped %llu ms after the "
			  "re-arm: re-arming again",
			  (unsigned long long)mm->id, (unsigned long long)st->start,
			  (unsigned long long)st->end, (unsigned long long)lost,
			  (unsigned long long)(now_ms + SETTLE_QUIET_MS - st->quiet_ms));
		st->verified = false;
		rearm(st);
		return false;
	}
	if (pagemap_read(mm->pagemap_fd, st->start, n, st->armed))
		return true;
	/* -ENOENT: nothing to aim the barrier at; the second read is all we have */
	ret = mm_lock_barrier(mm);
	if ((ret && ret != -ENOENT) || pagemap_read(mm->pagemap_fd, st->start, n, st->now))
		return true;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t page = st->start + i * UMP_PAGE_SIZE;

		/* gone: unmapped since, not registered, nothing to arm */
		if ((st->unprot[i / 64] >> (i % 64)) & 1 || !in_hits(st, page) ||
		    mm_gone(mm, page, page + UMP_PAGE_SIZE)) {
			st->armed[i] = 0; /* not watched */
			continue;
		}
		if (!(st->armed[i] & PM_UFFD_WP))
			unarmed++;
		else if (!(st->now[i] & PM_UFFD_WP))
			lost++;
	}
	/*
	 * Every page of a span still mapped can be armed (a marker, or the
	 * zero page read-faulted first); only a hole cannot.
	 */
	if (lost || (unarmed && (unarmed != st->unarmed || !vma_covered(mm, st->start, st->end)))) {
		if (++st->rounds > SETTLE_REARM_ROUNDS) {
			log_warn(
				"mm %llu: REMOVE [%#llx, %#llx): still %llu pages unarmed after %u "
				"re-arms, completing",
				(unsigned long long)mm->id, (unsigned long long)st->start,
				(unsigned long long)st->end, (unsigned long long)(lost + unarmed),
				SETTLE_REARM_ROUNDS);
			return true;
		}
		log_debug(
			"mm %llu: REMOVE [%#llx, %#llx): %llu pages zapped after the re-arm, %llu "
			"not armed: re-arming again",
			(unsigned long long)mm->id, (unsigned long long)st->start,
			(unsigned long long)st->end, (unsigned long long)lost,
			(unsigned long long)unarmed);
		st->unarmed = unarmed;
		rearm(st);
		return false;
	}
	if (!st->overlap)
		return true;
	st->verified = true;
	st->quiet_ms = now_ms + SETTLE_QUIET_MS;
	return false;
}

/* one step; true when @st completed (and was freed) */
static bool step(struct settle *st, uint64_t now_ms)
{
	if (!st->changed) {
		bool sure = false;
		bool done = st->reason == UMP_REASON_REMOVE ? zap_done(st, &sure) : write_done(st);

		if (!done) {
			/*
			 * A zap under way that has not reached every page yet
			 * (its thread descheduled in the middle) is waited for
			 * until the ack timeout expires (on_expired).
			 */
			if (now_ms < st->give_up_ms || sure)
				return false;
			log_debug("mm %llu: %s [%#llx, %#llx): change not seen in time, completing",
				  (unsigned long long)st->mm->id, ump_reason_name(st->reason),
				  (unsigned long long)st->start, (unsigned long long)st->end);
		}
		st->changed = true;
		if (st->reason == UMP_REASON_REMOVE)
			rearm(st);
	}
	if (st->reason == UMP_REASON_REMOVE && !verify_rearm(st, now_ms))
		return false;
	/* the seqs go even once the re-arm is applied (a queued one waited for) */
	inval_finish(st->inv);
	settle_free(st);
	return true;
}

static void idle_cb(uv_idle_t *h);

static void poll_all(struct server *s)
{
	uint64_t now_ms = server_now_ms(s), now_ns = uv_hrtime();
	bool spin = false;
	struct settle *st, *t;

	list_for_each_entry_safe (st, t, &s->settling, link) {
		if (step(st, now_ms))
			continue;
		spin |= now_ns - st->acked_ns < SETTLE_SPIN_NS;
	}
	if (spin)
		uv_idle_start(&s->settle_idle, idle_cb);
	else
		uv_idle_stop(&s->settle_idle);
	if (list_empty(&s->settling))
		uv_timer_stop(&s->settle_timer);
}

static void idle_cb(uv_idle_t *h)
{
	poll_all(h->data);
}

static void timer_cb(uv_timer_t *h)
{
	poll_all(h->data);
}

static void on_acked(struct inval *inv, void *arg)
{
	struct settle *st = arg;
	struct server *s = st->mm->srv;

	(void)inv;
	st->acked_ns = uv_hrtime();
	st->give_up_ms =
		server_now_ms(s) +
		(st->reason == UMP_REASON_REMOVE ? SETTLE_GIVE_UP_MS : SETTLE_WRITE_GIVE_UP_MS);
	if (st->reason == UMP_REASON_WRITE) {
		/* lets the writer (and every writer of the span meanwhile) go on */
		mm_wp(st->mm, st->start, st->end - st->start, false);
		if (!st->wait) {
			inval_finish(st->inv);
			settle_free(st);
			return;
		}
	}
	if (step(st, server_now_ms(s)))
		return;
	list_add_tail(&s->settling, &st->link);
	uv_idle_start(&s->settle_idle, idle_cb);
	if (!uv_is_active((uv_handle_t *)&s->settle_timer))
		uv_timer_start(&s->settle_timer, timer_cb, SETTLE_POLL_MS, SETTLE_POLL_MS);
}

/* the ack timeout ran out a second time: complete whatever the state */
static void on_expired(struct inval *inv, void *arg)
{
	struct settle *st = arg;

	(void)inv;
	if (st->reason == UMP_REASON_WRITE && !st->acked_ns) {
		mm_wp(st->mm, st->start, st->end - st->start, false);
	} else if (st->reason == UMP_REASON_REMOVE && !st->changed) {
		log_warn("mm %llu: REMOVE [%#llx, %#llx): zap not seen in %u ms, completing",
			 (unsigned long long)st->mm->id, (unsigned long long)st->start,
			 (unsigned long long)st->end, st->mm->srv->opt.ack_timeout_ms);
		rearm(st);
	}
	inval_finish(st->inv);
	settle_free(st);
}

static void on_dropped(struct inval *inv, void *arg)
{
	(void)inv;
	settle_free(arg);
}

static const struct inval_hold_ops settle_ops = {
	.acked = on_acked,
	.expired = on_expired,
	.dropped = on_dropped,
};

static int anon_cb(const struct vma *v, void *priv)
{
	*(bool *)priv = v->anon;
	return 1;
}

/* is a REMOVE of some page of [@start, @end) of @mm in flight? */
static bool remove_in_flight(struct mm *mm, uint64_t start, uint64_t end)
{
	struct inval *inv;

	/* held or not, settling or applying its re-arm */
	list_for_each_entry (inv, &mm->invals, mm_link)
		if (inv->reason == UMP_REASON_REMOVE && start < inv->end && end > inv->start)
			return true;
	return false;
}

int settle_remove(struct mm *mm, uint64_t start, uint64_t end, const struct inval_hit *hits,
		  unsigned int nhits)
{
	uint64_t n = (end - start) / UMP_PAGE_SIZE;
	struct settle *st = calloc(1, sizeof(*st));
	int ret;

	if (st) {
		st->before = malloc(n * sizeof(*st->before));
		st->now = malloc(n * sizeof(*st->now));
		/* without these the re-arm is not verified (verify_rearm()) */
		st->armed = malloc(n * sizeof(*st->armed));
		st->unprot = calloc((n + 63) / 64, sizeof(*st->unprot));
	}
	if (!st || !st->before || !st->now)
		goto fallback;
	list_init(&st->link);
	st->mm = mm;
	st->reason = UMP_REASON_REMOVE;
	st->start = start;
	st->end = end;
	/* unreadable: compare against "nothing there", which settles at once */
	if (pagemap_read(mm->pagemap_fd, start, n, st->before))
		memset(st->before, 0, n * sizeof(*st->before));
	/* a queued write-protect change lands later: not a sign of the zap */
	st->written = mm_wp_pending(mm);
	st->overlap = remove_in_flight(mm, start, end);
	/* one VMA: the kernel sends a REMOVE per VMA; unreadable: not anonymous */
	vma_walk(mm, start, start + UMP_PAGE_SIZE, anon_cb, &st->anon);
	ret = inval_start_held(mm, UMP_REASON_REMOVE, start, end, 0, hits, nhits, &settle_ops, st,
			       &st->inv);
	if (ret == 0)
		return 0;
fallback:
	if (st)
		settle_free(st);
	log_error("mm %llu: out of memory: REMOVE not held until the zap",
		  (unsigned long long)mm->id);
	inval_start(mm, UMP_REASON_REMOVE, start, end, 0, hits, nhits);
	return -ENOMEM;
}

static int shared_cb(const struct vma *v, void *priv)
{
	*(bool *)priv = v->shared;
	return 1;
}

/*
 * Will the writer's retry give the page a new PFN (zero page, copy on
 * write, nothing mapped yet), so that completion must wait for it?
 * Writes to an exclusive anonymous page or to a shared mapping's page
 * keep the PFN.
 */
static bool write_changes_pfn(struct mm *mm, uint64_t page, uint64_t e)
{
	bool shared = false;

	if (!mm->srv->kf.pfn_visible)
		return false; /* cannot tell PFNs apart: complete as before */
	if (!(e & PM_PRESENT) || (e & PM_PFN_MASK) == mm->srv->kf.zero_pfn)
		return true;
	if (!(e & PM_FILE))
		return !(e & PM_MMAP_EXCLUSIVE);
	/* a file or shmem page: copied only in a private mapping */
	if (vma_walk(mm, page, page + UMP_PAGE_SIZE, shared_cb, &shared) < 0)
		return false;
	return !shared;
}

int settle_write(struct mm *mm, uint64_t page, uint64_t end, uint32_t tid,
		 const struct inval_hit *hits, unsigned int nhits)
{
	struct settle *st = calloc(1, sizeof(*st));

	if (st) {
		st->before = malloc(sizeof(*st->before));
		st->now = malloc(sizeof(*st->now));
	}
	if (!st || !st->before || !st->now) {
		if (st)
			settle_free(st);
		log_error("mm %llu: out of memory: WRITE not held until the page changed",
			  (unsigned long long)mm->id);
		return inval_start(mm, UMP_REASON_WRITE, page, end, tid, hits, nhits);
	}
	list_init(&st->link);
	st->mm = mm;
	st->reason = UMP_REASON_WRITE;
	st->start = page;
	st->end = end;
	/* the writer is stopped in its fault: this is the page it would replace */
	if (pagemap_read(mm->pagemap_fd, page, 1, st->before))
		st->before[0] = 0;
	st->wait = st->before[0] && write_changes_pfn(mm, page, st->before[0]);
	if (inval_start_held(mm, UMP_REASON_WRITE, page, end, tid, hits, nhits, &settle_ops, st,
			     &st->inv) == 0)
		return 0;
	settle_free(st);
	return inval_start(mm, UMP_REASON_WRITE, page, end, tid, hits, nhits);
}

int settle_init(struct server *s)
{
	int ret;

	list_init(&s->settling);
	s->hooks.wp_note = settle_note_wp;
	ret = uv_idle_init(s->loop, &s->settle_idle);
	if (ret)
		return ret;
	s->settle_idle.data = s;
	ret = uv_timer_init(s->loop, &s->settle_timer);
	if (ret)
		return ret;
	s->settle_timer.data = s;
	uv_unref((uv_handle_t *)&s->settle_timer);
	return 0;
}

void settle_shutdown(struct server *s)
{
	uv_idle_stop(&s->settle_idle);
	uv_timer_stop(&s->settle_timer);
	if (!uv_is_closing((uv_handle_t *)&s->settle_idle))
		uv_close((uv_handle_t *)&s->settle_idle, NULL);
	if (!uv_is_closing((uv_handle_t *)&s->settle_timer))
		uv_close((uv_handle_t *)&s->settle_timer, NULL);
}

void settle_note_wp(struct mm *mm, uint64_t start, uint64_t end, bool wp)
{
	struct inval *inv;

	list_for_each_entry (inv, &mm->invals, mm_link) {
		struct settle *st = inv->hold_arg;
		uint64_t a, b;

		if (inv->hold != &settle_ops || inv->reason != UMP_REASON_REMOVE ||
		    start >= inv->end || end <= inv->start)
			continue;
		st->written = true;
		if (!st->unprot)
			continue;
		a = start > st->start ? start : st->start;
		b = end < st->end ? end : st->end;
		for (uint64_t i = (a - st->start) / UMP_PAGE_SIZE;
		     i < (b - st->start + UMP_PAGE_SIZE - 1) / UMP_PAGE_SIZE; i++)
			if (wp)
				st->unprot[i / 64] &= ~(1ull << (i % 64));
			else
				st->unprot[i / 64] |= 1ull << (i % 64);
	}
}
