/* SPDX-License-Identifier: MIT */
/*
 * ops.c - one run of umirror-check: random operations on a window of
 * memory three intervals mirror, and after every step the checks:
 *
 *  - every snapshot entry is what docs/SEMANTICS.md says for the page
 *    tables the oracle read around it (page tables unchanged meanwhile);
 *  - every page a mirror held that was downgraded since (downgrade())
 *    has an invalidation with a seq after the mirror's that covers it:
 *    for changes userfaultfd reports (the operation's pages: "touched")
 *    by the time the next snapshot is answered; for the others, when the
 *    scan is on, once UM_REVALIDATE_NOW has run; with the scan off those
 *    are counted as unchecked;
 *  - a write to a write-protected page returns only after every
 *    synchronous receiver's callback for it has run;
 *  - read_begin/wait_until_valid return a seq only once every callback of
 *    every earlier invalidation has run (the receiver has seen every odd
 *    value before it);
 *  - the subscriber process got the owner's invalidations, in the same
 *    order, with the same seq, span and reason;
 *  - in trap mode (--trap), mprotect RO/NONE, munmap, mremap,
 *    MADV_DONTNEED and mmap MAP_FIXED over a mirrored page return only
 *    after every synchronous receiver's callback for it ran and a
 *    snapshot from before reads as stale, and mprotect counts as a
 *    reported change (its downgrades are checked with the scan off).
 */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define MAX_PRINT 3		      /* failure reports per run with the history */
#define MAX_LINES 60		      /* failure reports per run at all */
#define MAX_SUBOPS 3		      /* operations in one combined step */
#define WINDOW_BASE 0x100000000000ull /* 16 TiB: far below the kernel's mmap area */

const char *const op_names[OP_NR] = {
	[OP_WRITE] = "write",	    [OP_SPAN] = "span",		[OP_READ] = "read",
	[OP_THREADS] = "threads",   [OP_FAULT] = "fault",	[OP_DONTNEED] = "dontneed",
	[OP_MUNMAP] = "munmap",	    [OP_MMAP] = "mmap",		[OP_MREMAP] = "mremap",
	[OP_MPROTECT] = "mprotect", [OP_FORK] = "fork",		[OP_PAGEOUT] = "pageout",
	[OP_COLLAPSE] = "collapse", [OP_REINSERT] = "reinsert", [OP_SUB] = "sub",
	[OP_SUBSNAP] = "subsnap",   [OP_SUBFAULT] = "subfault", [OP_COMBO] = "combo",
};

static const unsigned int weight[OP_NR] = {
	[OP_WRITE] = 18,   [OP_SPAN] = 7,     [OP_READ] = 5,   [OP_THREADS] = 3,
	[OP_FAULT] = 6,	   [OP_DONTNEED] = 7, [OP_MUNMAP] = 3, [OP_MMAP] = 4,
	[OP_MREMAP] = 6,   [OP_MPROTECT] = 7, [OP_FORK] = 3,   [OP_PAGEOUT] = 3,
	[OP_COLLAPSE] = 2, [OP_REINSERT] = 4, [OP_SUB] = 4,    [OP_SUBSNAP] = 2,
	[OP_SUBFAULT] = 2, [OP_COMBO] = 10,
};

/* --- bookkeeping -------------------------------------------------------------- */

uint64_t rnd(struct run *r)
{
	uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t rnd_below(struct run *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

void hist(struct run *r, const char *fmt, ...)
{
	char *line = r->hist[r->nhist++ % HIST];
	int off = snprintf(line, sizeof(r->hist[0]), "step %llu: ", (unsigned long long)r->step);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line + off, sizeof(r->hist[0]) - (size_t)off, fmt, ap);
	va_end(ap);
}

static void print_history(struct run *r)
{
	unsigned int n = r->nhist < HIST ? r->nhist : HIST;

	fprintf(stderr, "  history (last %u operations):\n", n);
	for (unsigned int i = r->nhist - n; i < r->nhist; i++)
		fprintf(stderr, "    %s\n", r->hist[i % HIST]);
	fprintf(stderr, "  replay: %s --steps %llu\n", r->replay, (unsigned long long)r->step);
}

/* the operations of the current step, for one-line reports */
static void print_step_ops(struct run *r)
{
	unsigned int n = r->nhist < HIST ? r->nhist : HIST;
	char prefix[32];

	snprintf(prefix, sizeof(prefix), "step %llu: ", (unsigned long long)r->step);
	fprintf(stderr, " [ops:");
	for (unsigned int i = r->nhist - n; i < r->nhist; i++)
		if (!strncmp(r->hist[i % HIST], prefix, strlen(prefix)))
			fprintf(stderr, " %s;", r->hist[i % HIST] + strlen(prefix));
	fprintf(stderr, "]");
}

void report(struct run *r, bool miss, const char *cls, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&r->fail_lock);
	if (miss)
		r->cnt.misses++;
	else
		r->cnt.divergences++;
	/* the first few with the history and the replay line, then one line each */
	if (r->printed < MAX_LINES) {
		fprintf(stderr, "umirror-check: %s [%s] kind %s seed %llu step %llu: ",
			miss ? "MISSED INVALIDATION" : "DIVERGENCE", cls, r->k->name,
			(unsigned long long)r->seed, (unsigned long long)r->step);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		if (r->printed >= MAX_PRINT)
			print_step_ops(r);
		fputc('\n', stderr);
		if (r->printed < MAX_PRINT)
			print_history(r);
		r->printed++;
	}
	pthread_mutex_unlock(&r->fail_lock);
}

static uint64_t addr_of(const struct run *r, size_t w)
{
	return (uint64_t)(uintptr_t)r->win + w * PAGE;
}

static bool in_iv(const struct ivrec *v, size_t w)
{
	return v && w >= v->first && w < v->first + v->np;
}

static bool live(const struct run *r, size_t w)
{
	for (int i = 0; i < MAX_IV; i++)
		if (in_iv(r->iv[i], w))
			return true;
	return false;
}

/* pages [w, w+n) changed by an operation userfaultfd reports */
static void touch(struct run *r, size_t w, size_t n)
{
	for (size_t p = w; p < w + n && p < r->np; p++)
		for (int i = 0; i < MAX_IV; i++)
			if (in_iv(r->iv[i], p))
				r->iv[i]->touched[p - r->iv[i]->first] = 1;
}

/* pages [w, w+n) changed by an operation only the scan sees */
static void stouch(struct run *r, size_t w, size_t n)
{
	for (size_t p = w; p < w + n && p < r->np; p++)
		for (int i = 0; i < MAX_IV; i++)
			if (in_iv(r->iv[i], p))
				r->iv[i]->stouched[p - r->iv[i]->first] = 1;
}

/*
 * pages [w, w+n) advised with an operation only the scan sees, on THP
 * memory: the whole 2 MiB blocks around them are the scan's. MADV_PAGEOUT
 * or MADV_COLD of part of a THP splits it (and, without swap, page-out
 * splits even a whole one), and Linux 6.12+ then maps every zero-filled
 * subpage of it to the shared zero page, far outside the advised range
 * (docs/SEMANTICS.md, "Protection the kernel drops"). The window is 2 MiB
 * aligned (op_collapse() counts on it too).
 */
static void stouch_blocks(struct run *r, size_t w, size_t n)
{
	size_t a = w / HPAGE_PAGES * HPAGE_PAGES;
	size_t b = (w + n + HPAGE_PAGES - 1) / HPAGE_PAGES * HPAGE_PAGES;

	stouch(r, a, b - a);
}

/* SEMANTICS: a part of an interval whose mapping goes away is gone for good */
static void gone_mark(struct run *r, size_t w, size_t n)
{
	for (size_t p = w; p < w + n && p < r->np; p++)
		if (live(r, p))
			r->gone[p] = 1;
}

static uint32_t vma_of(const struct run *r, size_t w)
{
	return oracle_vma(&r->cur, w);
}

static bool page_ok(const struct run *r, size_t w, uint32_t need)
{
	return (vma_of(r, w) & (need | OV_MAPPED)) == (need | OV_MAPPED);
}

/*
 * Where the next operation starts: half the time near the page the last
 * one touched, so that operations meet on the same pages (a write, then
 * an mprotect of that page within one scan period ...).
 */
static size_t pick_start(struct run *r)
{
	size_t span = 8 * r->k->gran, lo;

	if (rnd(r) & 1)
		return rnd_below(r, r->np);
	lo = r->hot > span ? r->hot - span : 0;
	return (lo + rnd_below(r, 2 * span)) % r->np;
}

/* a random page of the region whose VMA has @need (OV_R/OV_W); false if none */
static bool pick_page(struct run *r, uint32_t need, size_t *w)
{
	size_t start = pick_start(r);

	for (size_t i = 0; i < r->np; i++) {
		size_t p = (start + i) % r->np;

		if (page_ok(r, p, need)) {
			*w = p;
			r->hot = p;
			return true;
		}
	}
	return false;
}

/* a random gran-aligned range of 1..@maxu units inside [lo, hi) */
static void pick_range(struct run *r, size_t lo, size_t hi, size_t maxu, size_t *w, size_t *n)
{
	size_t g = r->k->gran, units = (hi - lo) / g, u, len;

	u = lo == 0 ? pick_start(r) / g % units : rnd_below(r, units);
	len = 1 + rnd_below(r, maxu);
	if (u + len > units)
		len = units - u;
	*w = lo + u * g;
	*n = len * g;
	if (lo == 0)
		r->hot = *w;
}

/* a random gran-aligned range of 1..@maxu units inside one VMA within [lo, hi) */
static bool pick_in_vma(struct run *r, size_t lo, size_t hi, size_t maxu, size_t *w, size_t *n)
{
	size_t g = r->k->gran, units = (hi - lo) / g;
	size_t start = lo == 0 ? pick_start(r) / g % units : rnd_below(r, units);

	for (size_t i = 0; i < units; i++) {
		size_t u = (start + i) % units, p = lo + u * g, e = p, len;
		int32_t vi = r->cur.vi[p];

		if (vi < 0)
			continue;
		while (e < hi && r->cur.vi[e] == vi)
			e += g;
		len = 1 + rnd_below(r, maxu);
		if (len > (e - p) / g)
			len = (e - p) / g;
		*w = p;
		*n = len * g;
		if (lo == 0)
			r->hot = p;
		return true;
	}
	return false;
}

static bool range_all(const struct run *r, size_t w, size_t n, uint32_t need)
{
	for (size_t p = w; p < w + n; p++)
		if (!page_ok(r, p, need))
			return false;
	return true;
}

/* --- the oracle around operations ------------------------------------------- */

static void read_oracle(struct run *r, struct oracle *o)
{
	int ret = oracle_read(o);

	CHECK(ret == 0, "oracle read: %s", strerror(-ret));
}

enum dst_rule { DST_NONE, DST_REPLACED, DST_IF_MOVED };

/*
 * After an operation: read the page tables, mark gone what left (any page
 * of a live interval mapped before and not now), and the destination
 * [@dw, +@dn) of a move: all of it (DST_REPLACED), or for a failed mremap
 * the pages that source pages [@sw, +@dn) moved onto - the kernel moves
 * VMA by VMA, so a source page that left went to the same offset of the
 * destination (DST_IF_MOVED). Then the new state is current.
 */
static void after_op_move(struct run *r, size_t sw, size_t dw, size_t dn, enum dst_rule rule)
{
	struct oracle *pre = &r->cur, *post = &r->o1, tmp;

	read_oracle(r, post);
	for (size_t p = 0; p < r->np; p++)
		if (pre->vi[p] >= 0 && post->vi[p] < 0 && live(r, p))
			r->gone[p] = 1;
	for (size_t k = 0; rule != DST_NONE && k < dn; k++) {
		bool moved = sw + k < r->nw && pre->vi[sw + k] >= 0 && post->vi[sw + k] < 0;

		if (rule == DST_REPLACED || moved)
			gone_mark(r, dw + k, 1);
	}
	tmp = *pre;
	*pre = *post;
	*post = tmp;
}

static void after_op(struct run *r, size_t dw, size_t dn, enum dst_rule rule)
{
	after_op_move(r, 0, dw, dn, rule);
}

/* scratch space vacated by a move is reserved again, so nobody else maps there */
static void reserve_scratch(struct run *r)
{
	bool any = false;

	for (size_t p = r->np; p < r->nw;) {
		size_t e = p;

		if (r->cur.vi[p] >= 0) {
			p++;
			continue;
		}
		while (e < r->nw && r->cur.vi[e] < 0)
			e++;
		CHECK(mmap(r->win + p * PAGE, (e - p) * PAGE, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1,
			   0) != MAP_FAILED,
		      "reserve scratch: %m");
		any = true;
		p = e;
	}
	if (any)
		read_oracle(r, &r->cur);
}

/* a fresh mapping of the run's kind over window pages [w, w+n) */
static int map_fresh(struct run *r, size_t w, size_t n, bool prefill)
{
	char *a = r->win + w * PAGE;
	void *p = mmap(a, n * PAGE, PROT_READ | PROT_WRITE, r->map_flags | MAP_FIXED, r->fd,
		       r->fd >= 0 ? (off_t)(w * PAGE) : 0);

	if (p == MAP_FAILED)
		return -errno;
	if (r->kid == K_THP)
		madvise(a, n * PAGE, MADV_HUGEPAGE);
	else if (r->kid == K_ANON)
		madvise(a, n * PAGE, MADV_NOHUGEPAGE);
	if (prefill)
		memset(a, (int)(r->step & 0xff), n * PAGE);
	return 0;
}

/* --- sequence values and callbacks ------------------------------------------ */

/*
 * The lowest seq an invalidation starting from now (or in flight now) can
 * carry: the current odd value, or the next one. Found with check_retry
 * (the seq is not public), starting from what the callback has seen.
 */
static uint64_t seq_floor(struct ivrec *v)
{
	uint64_t lo;

	pthread_mutex_lock(&v->lock);
	lo = v->last_odd > v->seq0 ? v->last_odd : v->seq0;
	pthread_mutex_unlock(&v->lock);
	for (uint64_t c = lo; c < lo + 16; c++)
		if (!um_interval_check_retry(v->iv, c))
			return (c & 1) ? c : c + 1;
	return lo | 1;
}

/*
 * read_begin, waiting through long invalidations; then the receiver must
 * have seen every odd value below the returned seq (all callbacks done).
 */
static int wait_even(struct run *r, struct ivrec *v, uint64_t *seq)
{
	uint64_t last;
	bool gap;
	int ret = -ETIMEDOUT;

	for (int i = 0; i < 30 && ret == -ETIMEDOUT; i++)
		ret = um_interval_read_begin(v->iv, seq);
	if (ret < 0) {
		report(r, false, "stuck", "interval %llu: read_begin: %s (seq odd for 30 s)",
		       (unsigned long long)v->id, strerror(-ret));
		return ret;
	}
	pthread_mutex_lock(&v->lock);
	last = v->last_odd;
	gap = v->odd_gap;
	v->odd_gap = false;
	pthread_mutex_unlock(&v->lock);
	if (gap)
		report(r, true, "seq-gap",
		       "interval %llu: an odd seq value before %llu never reached the owner's "
		       "callback",
		       (unsigned long long)v->id, (unsigned long long)last);
	if (*seq > v->seq0 && last + 1 < *seq)
		report(r, false, "valid-early",
		       "interval %llu: read_begin returned seq %llu while the owner's callbacks "
		       "had seen only up to %llu",
		       (unsigned long long)v->id, (unsigned long long)*seq,
		       (unsigned long long)last);
	return 0;
}

static long snapshot_at(struct ivrec *v, uint64_t seq, uint64_t *out)
{
	struct um_range rg = {
		.start = (uint64_t)(uintptr_t)v->run->win + v->first * PAGE,
		.end = (uint64_t)(uintptr_t)v->run->win + (v->first + v->np) * PAGE,
		.pfns = out,
	};
	long ret = um_range_register(&rg, v->iv);

	if (ret < 0)
		return ret;
	/* the read loop of hmm.rst: the snapshot is valid for this seq or -EAGAIN */
	rg.notifier_seq = seq;
	return um_range_snapshot(&rg);
}

/* --- writes ---------------------------------------------------------------------- */

/*
 * Write one byte of window page @w. If the page was write-protected in a
 * live interval, every synchronous receiver's callback for it must have
 * run before the write returns.
 */
static void write_page(struct run *r, size_t w)
{
	volatile char *a = r->win + w * PAGE + (w * 72) % (PAGE - 8);
	uint64_t pm, floor[MAX_IV] = { 0 };
	bool armed;

	/*
	 * The floors first: if the page is still protected after them, the
	 * invalidation that lets this write through starts at or after them
	 * (or is in flight at them, with the odd value the floor names).
	 */
	for (int i = 0; i < MAX_IV; i++)
		if (in_iv(r->iv[i], w))
			floor[i] = seq_floor(r->iv[i]);
	pm = harness_pagemap((const void *)a);
	armed = (pm & PM_UFFD_WP) && w < r->np && !r->gone[w] && live(r, w);
	*a = (char)(r->step + w);
	if (!armed)
		return;
	for (int i = 0; i < MAX_IV; i++) {
		struct ivrec *v = r->iv[i];

		if (!in_iv(v, w))
			continue;
		if (!ivrec_covered(v, w, floor[i]))
			report(r, true, "write-early",
			       "write to protected page %zu (%#llx) of interval %llu returned "
			       "before "
			       "the owner's callback for it ran (seq floor %llu)",
			       w, (unsigned long long)addr_of(r, w), (unsigned long long)v->id,
			       (unsigned long long)floor[i]);
		for (int s = 0; s < MAX_SUB; s++) {
			const struct subrec *sr = &r->sub[s];

			if (!sr->used || sr->of != v || !sr->sync || sr->evicted)
				continue;
			if (!slot_covered(s, sr->sub_next, (uint64_t)(uintptr_t)r->win, w,
					  floor[i]))
				report(r, true, "write-early",
				       "write to protected page %zu (%#llx) of interval %llu "
				       "returned "
				       "before the subscriber's callback for it ran",
				       w, (unsigned long long)addr_of(r, w),
				       (unsigned long long)v->id);
		}
	}
}

struct writer {
	pthread_t t;
	struct run *r;
	size_t pages[8];
	unsigned int n;
};

static void *writer_main(void *arg)
{
	struct writer *wr = arg;

	for (unsigned int i = 0; i < wr->n; i++)
		write_page(wr->r, wr->pages[i]);
	return NULL;
}

struct waiter {
	pthread_t t;
	struct run *r;
	struct ivrec *v;
	atomic_bool stop;
};

/* wait_until_valid in a loop beside the writers: never valid before the callbacks */
static void *waiter_main(void *arg)
{
	struct waiter *wt = arg;
	struct ivrec *v = wt->v;
	uint64_t dummy[1];
	struct um_range rg = {
		.start = (uint64_t)(uintptr_t)wt->r->win + v->first * PAGE,
		.end = (uint64_t)(uintptr_t)wt->r->win + (v->first + 1) * PAGE,
		.pfns = dummy,
	};

	if (um_range_register(&rg, v->iv) < 0)
		return NULL;
	while (!atomic_load(&wt->stop)) {
		uint64_t last;

		if (um_range_wait_until_valid(&rg, 1000) != 0)
			continue;
		pthread_mutex_lock(&v->lock);
		last = v->last_odd;
		pthread_mutex_unlock(&v->lock);
		if (rg.notifier_seq & 1)
			report(wt->r, false, "valid-odd", "wait_until_valid returned odd seq %llu",
			       (unsigned long long)rg.notifier_seq);
		else if (rg.notifier_seq > v->seq0 && last + 1 < rg.notifier_seq)
			report(wt->r, false, "valid-early",
			       "interval %llu: wait_until_valid returned seq %llu while the "
			       "owner's "
			       "callbacks had seen only up to %llu",
			       (unsigned long long)v->id, (unsigned long long)rg.notifier_seq,
			       (unsigned long long)last);
		usleep(50);
	}
	return NULL;
}

static struct ivrec *pick_iv(struct run *r)
{
	int n = 0, k;

	for (int i = 0; i < MAX_IV; i++)
		n += r->iv[i] != NULL;
	if (!n)
		return NULL;
	k = (int)rnd_below(r, (uint64_t)n);
	for (int i = 0; i < MAX_IV; i++)
		if (r->iv[i] && k-- == 0)
			return r->iv[i];
	return NULL;
}

/* --- operations ---------------------------------------------------------------- */

static void op_write(struct run *r)
{
	size_t w;

	if (!pick_page(r, OV_W, &w))
		return;
	hist(r, "write page %zu", w);
	write_page(r, w);
	touch(r, w, 1);
	after_op(r, 0, 0, DST_NONE);
}

static void op_span(struct run *r)
{
	size_t w, n = 2 + rnd_below(r, r->kid == K_THP ? 64 : 16);

	if (!pick_page(r, OV_W, &w))
		return;
	if (w + n > r->np)
		n = r->np - w;
	while (n && !range_all(r, w, n, OV_W))
		n--;
	hist(r, "write span %zu+%zu", w, n);
	for (size_t p = w; p < w + n; p++)
		write_page(r, p);
	touch(r, w, n);
	after_op(r, 0, 0, DST_NONE);
}

static void op_read(struct run *r)
{
	size_t w, n = 1 + rnd_below(r, 16);
	unsigned int sum = 0;

	if (!pick_page(r, OV_R, &w))
		return;
	if (w + n > r->np)
		n = r->np - w;
	while (n && !range_all(r, w, n, OV_R))
		n--;
	hist(r, "read span %zu+%zu", w, n);
	for (size_t p = w; p < w + n; p++)
		sum += *(volatile unsigned char *)(r->win + p * PAGE);
	(void)sum;
	after_op(r, 0, 0, DST_NONE);
}

static void op_threads(struct run *r)
{
	struct writer wr[3];
	struct waiter wt = { .r = r, .v = pick_iv(r) };
	unsigned int nt = 2 + (unsigned int)rnd_below(r, 2);
	char line[160];
	int off;

	off = snprintf(line, sizeof(line), "%u writer threads:", nt);
	for (unsigned int t = 0; t < nt; t++) {
		wr[t].r = r;
		wr[t].n = 0;
		for (unsigned int i = 0, n = 2 + (unsigned int)rnd_below(r, 6); i < n; i++) {
			size_t w;

			if (!pick_page(r, OV_W, &w))
				break;
			wr[t].pages[wr[t].n++] = w;
			if (off < (int)sizeof(line))
				off += snprintf(line + off, sizeof(line) - (size_t)off, " %zu", w);
		}
		if (off < (int)sizeof(line))
			off += snprintf(line + off, sizeof(line) - (size_t)off, " |");
	}
	hist(r, "%s", line);
	atomic_init(&wt.stop, false);
	if (wt.v)
		CHECK(pthread_create(&wt.t, NULL, waiter_main, &wt) == 0, "pthread_create");
	for (unsigned int t = 0; t < nt; t++)
		CHECK(pthread_create(&wr[t].t, NULL, writer_main, &wr[t]) == 0, "pthread_create");
	for (unsigned int t = 0; t < nt; t++) {
		pthread_join(wr[t].t, NULL);
		for (unsigned int i = 0; i < wr[t].n; i++)
			touch(r, wr[t].pages[i], 1);
	}
	atomic_store(&wt.stop, true);
	if (wt.v)
		pthread_join(wt.t, NULL);
	after_op(r, 0, 0, DST_NONE);
}

/* what um_range_fault must return for window pages [w, w+n) now */
static long fault_expect(const struct run *r, size_t w, size_t n, bool write)
{
	bool perm = false;

	for (size_t p = w; p < w + n; p++) {
		uint32_t f = vma_of(r, p);

		if (!(f & OV_MAPPED) || r->gone[p])
			return -EFAULT;
		if (!(f & OV_R) || (write && !(f & OV_W)))
			perm = true;
	}
	return perm ? -EPERM : (long)n;
}

/* after a successful fault every page is there (and writable if asked) */
static void fault_post(struct run *r, size_t w, size_t n, bool write, const char *who)
{
	uint64_t *raw = r->raw;

	oracle_expect(&r->cur, r->gone, w, n, r->zero_pfn, r->show_pfn, raw);
	for (size_t i = 0; i < n; i++) {
		uint64_t need = E_PRESENT | (write ? E_WRITE : 0);

		if ((raw[i] & need) != need) {
			char b[96];

			report(r, false, "fault-post",
			       "%s %s fault of %zu+%zu succeeded but page %zu is %s", who,
			       write ? "write" : "read", w, n, w + i,
			       entry_str(encode_default(raw[i]), b, sizeof(b)));
			return;
		}
	}
}

static void op_fault(struct run *r)
{
	struct ivrec *v = pick_iv(r);
	size_t w, n, len;
	bool write = rnd(r) & 1;
	long want, ret = -EBUSY;
	uint64_t *pfns;
	struct um_range rg = { 0 };

	if (!v)
		return;
	len = 1 + rnd_below(r, 16);
	w = v->first + rnd_below(r, v->np);
	n = len < v->first + v->np - w ? len : v->first + v->np - w;
	want = fault_expect(r, w, n, write);
	hist(r, "owner %s fault %zu+%zu of interval %llu (expect %ld)", write ? "write" : "read", w,
	     n, (unsigned long long)v->id, want);
	pfns = calloc(n, sizeof(*pfns));
	CHECK(pfns, "out of memory");
	rg.start = addr_of(r, w);
	rg.end = addr_of(r, w + n);
	rg.pfns = pfns;
	rg.default_flags = UM_DEFAULT_VALID | (write ? UM_DEFAULT_WRITE : 0);
	CHECK(um_range_register(&rg, v->iv) == 0, "register");
	for (int i = 0; i < 50 && (ret == -EBUSY || ret == -EAGAIN); i++)
		ret = um_range_fault(&rg, 0);
	free(pfns);
	if (write)
		touch(r, w, n);
	after_op(r, 0, 0, DST_NONE);
	if (ret != want)
		report(r, false, "fault-status", "owner %s fault of %zu+%zu returned %ld, want %ld",
		       write ? "write" : "read", w, n, ret, want);
	else if (ret > 0)
		fault_post(r, w, n, write, "owner");
}

/*
 * Trap mode (--trap, UM_CONNECT_TRAP_VMA): a trapped call over a mirrored
 * page returns only once the invalidation it caused reached every
 * synchronous receiver - the owner's callback and the subscriber's - and
 * a snapshot taken at the seq before it is no longer valid
 * (docs/SEMANTICS.md "Trap mode"). The floors are taken before the call,
 * as for a write (write_page()).
 */
struct trap_pre {
	uint64_t floor[MAX_IV];
};

static void trap_before(struct run *r, struct trap_pre *t)
{
	for (int i = 0; i < MAX_IV; i++)
		t->floor[i] = r->trap && r->iv[i] ? seq_floor(r->iv[i]) : 0;
}

/* after the call over window pages [@w, @w + @n): a miss per interval that lacks it */
static void trap_after(struct run *r, const struct trap_pre *t, const char *what, size_t w,
		       size_t n)
{
	if (!r->trap)
		return;
	for (int i = 0; i < MAX_IV; i++) {
		struct ivrec *v = r->iv[i];
		size_t own = 0, first_own = 0, sub = 0, first_sub = 0;
		int sub_slot = -1;

		if (!v)
			continue;
		for (size_t p = w; p < w + n; p++) {
			if (!in_iv(v, p))
				continue;
			if (!ivrec_covered(v, p, t->floor[i]) && !own++)
				first_own = p;
			for (int s = 0; s < MAX_SUB; s++) {
				const struct subrec *sr = &r->sub[s];

				/* an eviction (ack timeout) is check_subs()'s to count */
				if (!sr->used || sr->of != v || !sr->sync || sr->evicted ||
				    atomic_load(&sub_shm()->slot[s].released))
					continue;
				if (!slot_covered(s, sr->sub_next, (uint64_t)(uintptr_t)r->win, p,
						  t->floor[i]) &&
				    !sub++) {
					first_sub = p;
					sub_slot = s;
				}
			}
		}
		if (own || sub)
			r->cnt.trap_misses++;
		if (own)
			report(r, true, "trap-before",
			       "%s of %zu+%zu returned before the owner's callback of interval "
			       "%llu ran for %zu of its pages; first page %zu (%#llx), seq floor "
			       "%llu",
			       what, w, n, (unsigned long long)v->id, own, first_own,
			       (unsigned long long)addr_of(r, first_own),
			       (unsigned long long)t->floor[i]);
		if (sub)
			report(r, true, "trap-before",
			       "%s of %zu+%zu returned before the subscriber's (slot %d) callback "
			       "of interval %llu ran for %zu of its pages; first page %zu (%#llx)",
			       what, w, n, sub_slot, (unsigned long long)v->id, sub, first_sub,
			       (unsigned long long)addr_of(r, first_sub));
		/* the mirror's snapshot from before the call must read as stale */
		if (w < v->first + v->np && v->first < w + n &&
		    !um_interval_check_retry(v->iv, t->floor[i] - 1))
			report(r, true, "trap-stale",
			       "%s of %zu+%zu returned while interval %llu's seq %llu (from "
			       "before it) still read as valid",
			       what, w, n, (unsigned long long)v->id,
			       (unsigned long long)(t->floor[i] - 1));
	}
}

static void op_madvise(struct run *r, int advice, const char *name, bool uffd_reported)
{
	struct trap_pre t;
	size_t w, n;
	int ret;

	pick_range(r, 0, r->np, 8, &w, &n);
	trap_before(r, &t);
	ret = madvise(r->win + w * PAGE, n * PAGE, advice);
	hist(r, "madvise %s %zu+%zu: %s", name, w, n, ret ? strerror(errno) : "ok");
	if (advice == MADV_DONTNEED)
		trap_after(r, &t, "madvise DONTNEED", w, n);
	if (uffd_reported)
		touch(r, w, n);
	else if (r->kid == K_THP)
		stouch_blocks(r, w, n);
	else
		stouch(r, w, n);
	after_op(r, 0, 0, DST_NONE);
}

static void op_munmap(struct run *r)
{
	size_t w, n;

	struct trap_pre t;

	pick_range(r, 0, r->np, 8, &w, &n);
	hist(r, "munmap %zu+%zu", w, n);
	trap_before(r, &t);
	CHECK(munmap(r->win + w * PAGE, n * PAGE) == 0, "munmap: %m");
	trap_after(r, &t, "munmap", w, n);
	touch(r, w, n);
	after_op(r, 0, 0, DST_NONE);
}

static void op_mmap(struct run *r)
{
	size_t w, n;
	bool prefill = rnd(r) & 1;
	int ret;

	struct trap_pre t;

	pick_range(r, 0, r->np, r->kid == K_THP ? 512 : 8, &w, &n);
	trap_before(r, &t);
	ret = map_fresh(r, w, n, prefill);
	hist(r, "mmap MAP_FIXED %zu+%zu%s: %s", w, n, prefill ? " + fill" : "",
	     ret ? strerror(-ret) : "ok");
	trap_after(r, &t, "mmap MAP_FIXED", w, n);
	touch(r, w, n);
	after_op(r, w, n, ret ? DST_NONE : DST_REPLACED);
}

static void op_mprotect(struct run *r)
{
	static const int prots[] = { PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE };
	static const char *const names[] = { "RO", "RW", "NONE" };
	size_t w, n;
	int k = (int)rnd_below(r, 3), ret;

	struct trap_pre t;
	char what[32];

	pick_range(r, 0, r->np, 8, &w, &n);
	trap_before(r, &t);
	ret = mprotect(r->win + w * PAGE, n * PAGE, prots[k]);
	hist(r, "mprotect %s %zu+%zu: %s", names[k], w, n, ret ? strerror(errno) : "ok");
	snprintf(what, sizeof(what), "mprotect %s", names[k]);
	if (prots[k] != (PROT_READ | PROT_WRITE))
		trap_after(r, &t, what, w, n);
	/*
	 * userfaultfd does not report mprotect: the scan's business, unless
	 * trap mode reports it before the fact
	 */
	if (r->trap)
		touch(r, w, n);
	else
		stouch(r, w, n);
	after_op(r, 0, 0, DST_NONE);
}

static void do_mremap(struct run *r, const char *what, size_t s, size_t n, size_t ns, int flags,
		      size_t d)
{
	void *dst = flags & MREMAP_FIXED ? r->win + d * PAGE : NULL;
	struct trap_pre t;
	void *p;
	int err;

	trap_before(r, &t);
	p = mremap(r->win + s * PAGE, n * PAGE, ns * PAGE, flags, dst);
	err = p == MAP_FAILED ? errno : 0;

	if (flags & MREMAP_FIXED)
		hist(r, "mremap %s %zu+%zu -> %zu: %s", what, s, n, d, err ? strerror(err) : "ok");
	else
		hist(r, "mremap %s %zu+%zu to %zu pages: %s", what, s, n, ns,
		     err ? strerror(err) : "ok");
	trap_after(r, &t, "mremap (source)", s, n);
	if (flags & MREMAP_FIXED)
		trap_after(r, &t, "mremap (target)", d, ns);
	touch(r, s, n);
	if (flags & MREMAP_FIXED) {
		touch(r, d, ns);
		/*
		 * Linux 6.17+ moves several VMAs at once and keeps the gaps
		 * between them: a destination page facing a gap of the
		 * source is left alone, so even a successful move replaces
		 * only what faced a source page
		 */
		after_op_move(r, s, d, ns, DST_IF_MOVED);
	} else {
		after_op(r, 0, 0, DST_NONE);
	}
	reserve_scratch(r);
}

static void op_mremap(struct run *r)
{
	size_t g = r->k->gran, np = r->np, s, n, d;
	int flags = MREMAP_MAYMOVE | MREMAP_FIXED;

	switch (rnd_below(r, 7)) {
	case 0: /* away: part of a region VMA into scratch */
		if (!pick_in_vma(r, 0, np, 8, &s, &n))
			return;
		d = np + rnd_below(r, (np - n) / g + 1) * g;
		do_mremap(r, "away", s, n, n, flags, d);
		break;
	case 1: /* back: a scratch VMA into the region, over whatever is there */
		if (!pick_in_vma(r, np, r->nw, 8, &s, &n))
			return;
		d = rnd_below(r, (np - n) / g + 1) * g;
		do_mremap(r, "back", s, n, n, flags, d);
		break;
	case 2: /* elsewhere inside the region */
		if (!pick_in_vma(r, 0, np, 8, &s, &n))
			return;
		for (int tries = 0; tries < 8; tries++) {
			d = rnd_below(r, (np - n) / g + 1) * g;
			if (d + n <= s || d >= s + n) {
				do_mremap(r, "elsewhere", s, n, n, flags, d);
				return;
			}
		}
		break;
	case 3: /* shrink in place */
		if (!pick_in_vma(r, 0, np, 8, &s, &n) || n < 2 * g)
			return;
		do_mremap(r, "shrink", s, n, n - g * (1 + rnd_below(r, n / g - 1)), 0, 0);
		break;
	case 4: { /* grow in place: fails unless the pages after it are free */
		size_t k = g * (1 + rnd_below(r, 4));

		/* (shared anonymous memory has no pages past its end: SIGBUS there) */
		if (!pick_in_vma(r, 0, np, 8, &s, &n) || s + n + k > np || r->kid == K_SHARED)
			return;
		do_mremap(r, "grow", s, n, n + k, 0, 0);
		break;
	}
	case 5: { /* across two VMAs (or a VMA and a hole) */
		size_t units = np / g, u0 = rnd_below(r, units - 1), b = g, a, z;

		/* a boundary: the VMA (or hole) changes at b */
		for (size_t t = 0; t < units - 1; t++) {
			b = g * (1 + (u0 + t) % (units - 1));
			if (r->cur.vi[b - g] != r->cur.vi[b])
				break;
		}
		a = b - g * (1 + rnd_below(r, b / g < 4 ? b / g : 4));
		z = b + g * (1 + rnd_below(r, (np - b) / g < 4 ? (np - b) / g : 4));
		if (z > np)
			z = np;
		/* into scratch, or over other pages of the region */
		d = rnd_below(r, (np - (z - a)) / g + 1) * g;
		if ((rnd(r) & 1) || (d < z && d + (z - a) > a))
			d += np;
		do_mremap(r, "across-vmas", a, z - a, z - a, flags, d);
		break;
	}
	default: /* overlapping source and destination: EINVAL */
		if (!pick_in_vma(r, 0, np, 8, &s, &n))
			return;
		d = s + (n > g ? g : 0);
		if (d + n > np)
			return;
		do_mremap(r, "overlapping", s, n, n, flags, d);
		break;
	}
}

static void child_main_write(struct run *r, const size_t *pages, unsigned int n, int wait_fd)
{
	char c;

	if (wait_fd >= 0 && read(wait_fd, &c, 1) != 1)
		_exit(2); /* the checker went away */
	for (unsigned int i = 0; i < n; i++)
		r->win[pages[i] * PAGE + 8] = 'c';
	_exit(0);
}

static void reap(struct run *r, pid_t pid)
{
	int status;

	CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %m");
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		hist(r, "(child %d ended with status %#x)", (int)pid, status);
}

static void op_fork(struct run *r)
{
	size_t pages[4];
	unsigned int n = 0;
	bool keep;
	int pfd[2] = { -1, -1 };
	pid_t pid;

	if (r->child) { /* the kept child writes and exits */
		hist(r, "kept child %d writes and exits", (int)r->child);
		CHECK(write(r->child_fd, "x", 1) == 1, "to child: %m");
		reap(r, r->child);
		close(r->child_fd);
		r->child = 0;
		after_op(r, 0, 0, DST_NONE);
		return;
	}
	for (unsigned int i = 0, want = 1 + (unsigned int)rnd_below(r, 4); i < want; i++)
		if (pick_page(r, OV_W, &pages[n]))
			n++;
	keep = rnd_below(r, 3) == 0;
	if (keep)
		CHECK(pipe2(pfd, O_CLOEXEC) == 0, "pipe: %m");
	pid = fork();
	CHECK(pid >= 0, "fork: %m");
	if (pid == 0) {
		if (keep)
			close(pfd[1]);
		child_main_write(r, pages, n, pfd[0]);
	}
	r->cnt.forks++;
	hist(r, "fork: child %d writes %u pages %s", (int)pid, n,
	     keep ? "later (kept alive)" : "and exits");
	/* every written interval: one FORK invalidation over all of it */
	touch(r, 0, r->np);
	if (keep) {
		close(pfd[0]);
		r->child = pid;
		r->child_fd = pfd[1];
	} else {
		reap(r, pid);
	}
	after_op(r, 0, 0, DST_NONE);
}

static void op_collapse(struct run *r)
{
	size_t b = rnd_below(r, r->np / HPAGE_PAGES) * HPAGE_PAGES;
	int ret;

	if (rnd_below(r, 3) == 0 && range_all(r, b, HPAGE_PAGES, OV_W)) {
		hist(r, "write all of block %zu", b);
		for (size_t p = b; p < b + HPAGE_PAGES; p++)
			write_page(r, p);
		touch(r, b, HPAGE_PAGES);
		after_op(r, 0, 0, DST_NONE);
	}
	ret = madvise(r->win + b * PAGE, HPAGE, MADV_COLLAPSE);
	stouch(r, b, HPAGE_PAGES);
	if (!ret)
		r->cnt.collapsed++;
	hist(r, "madvise COLLAPSE block %zu: %s", b, ret ? strerror(errno) : "ok");
	after_op(r, 0, 0, DST_NONE);
}

/* --- intervals and subscriptions ---------------------------------------------- */

static void check_subs(struct run *r);

static void sub_drop(struct run *r, int s)
{
	long ret;

	check_subs(r);
	ret = sub_call('U', s, 0, 0, 0, 0, false, NULL);
	if (ret && !r->sub[s].evicted && r->sub[s].of)
		report(r, false, "sub-status", "unsubscribe slot %d: %ld", s, ret);
	r->sub[s].used = false;
}

static void iv_remove(struct run *r, int i)
{
	struct ivrec *v = r->iv[i];

	check_subs(r);
	hist(r, "remove interval %llu (%zu+%zu)", (unsigned long long)v->id, v->first, v->np);
	r->iv[i] = NULL;
	ivrec_remove(v);
	for (int s = 0; s < MAX_SUB; s++) {
		struct sub_slot *sl = &sub_shm()->slot[s];
		uint64_t t0 = harness_now_ms();

		if (!r->sub[s].used || r->sub[s].of != v)
			continue;
		r->sub[s].of = NULL;
		while (!atomic_load(&sl->released) && harness_now_ms() - t0 < 3000)
			usleep(1000);
		if (!atomic_load(&sl->released))
			report(r, false, "release",
			       "subscriber of removed interval %llu never got its release",
			       (unsigned long long)r->sub[s].id);
		else if (atomic_load(&sl->release_error) != -ENOENT && !r->sub[s].evicted)
			report(r, false, "release",
			       "subscriber of removed interval %llu released with %d, want -ENOENT",
			       (unsigned long long)r->sub[s].id, atomic_load(&sl->release_error));
		sub_drop(r, s);
	}
}

static int iv_insert(struct run *r, int i, size_t w, size_t n)
{
	long want = range_all(r, w, n, 0) ? 0 : -EFAULT;
	int ret = ivrec_insert(r, w, n, &r->iv[i]);

	hist(r, "insert %zu+%zu: %d%s%llu", w, n, ret, ret ? "" : " id ",
	     ret ? 0ull : (unsigned long long)r->iv[i]->id);
	if (ret != want)
		report(r, false, "insert-status", "insert of %zu+%zu returned %d, want %ld", w, n,
		       ret, want);
	if (ret) {
		r->iv[i] = NULL;
		return ret;
	}
	/* what is mapped there now is registered: tracked again */
	memset(r->gone + w, 0, n);
	return 0;
}

/* a random fully mapped gran-aligned range, or (rarely) any range */
static void pick_insert_range(struct run *r, size_t *w, size_t *n)
{
	for (int tries = 0; tries < 16; tries++) {
		pick_range(r, 0, r->np, r->np / r->k->gran, w, n);
		if (range_all(r, *w, *n, 0))
			return;
	}
	if (!pick_in_vma(r, 0, r->np, r->np, w, n))
		pick_range(r, 0, r->np, 1, w, n);
}

static void op_reinsert(struct run *r)
{
	int nv = 0, i = (int)rnd_below(r, MAX_IV), free_slot = -1;
	size_t w, n;

	for (int k = 0; k < MAX_IV; k++) {
		nv += r->iv[k] != NULL;
		if (!r->iv[k] && free_slot < 0)
			free_slot = k;
	}
	if (nv > 0 && (nv == MAX_IV || rnd_below(r, 3))) {
		while (!r->iv[i])
			i = (i + 1) % MAX_IV;
		w = r->iv[i]->first;
		n = r->iv[i]->np;
		iv_remove(r, i);
		if (nv > 1 && rnd_below(r, 4) == 0) {
			after_op(r, 0, 0, DST_NONE);
			return; /* removed only */
		}
		if (rnd(r) & 1)
			pick_insert_range(r, &w, &n);
		iv_insert(r, i, w, n);
	} else if (free_slot >= 0) {
		pick_insert_range(r, &w, &n);
		iv_insert(r, free_slot, w, n);
	}
	after_op(r, 0, 0, DST_NONE);
}

static void op_sub(struct run *r)
{
	int s = (int)rnd_below(r, MAX_SUB);
	struct ivrec *v;
	long ret, want = 0;

	if (r->sub[s].used) {
		hist(r, "unsubscribe slot %d (interval %llu)", s, (unsigned long long)r->sub[s].id);
		sub_drop(r, s);
		return;
	}
	v = pick_iv(r);
	if (!v)
		return;
	/* one receiver per connection and interval: a second one is -EBUSY */
	for (int k = 0; k < MAX_SUB; k++)
		if (r->sub[k].used && r->sub[k].of == v)
			want = -EBUSY;
	r->sub[s] = (struct subrec){
		.used = true, .sync = rnd_below(r, 4) != 0, .of = v, .id = v->id, .own_next = v->nev
	};
	ret = sub_call('S', s, v->id, r->sub[s].sync ? 0 : UM_INTERVAL_ASYNC, 0, 0, false,
		       &r->sub[s].seq0);
	hist(r, "subscribe slot %d to interval %llu (%s): %ld", s, (unsigned long long)v->id,
	     r->sub[s].sync ? "sync" : "async", ret);
	if (ret != want)
		report(r, false, "sub-status", "subscribe to interval %llu: %ld, want %ld",
		       (unsigned long long)v->id, ret, want);
	if (ret)
		r->sub[s].used = false;
}

static int pick_sub(struct run *r)
{
	int s = (int)rnd_below(r, MAX_SUB);

	for (int i = 0; i < MAX_SUB; i++, s = (s + 1) % MAX_SUB)
		if (r->sub[s].used && r->sub[s].of && !r->sub[s].evicted)
			return s;
	return -1;
}

static void op_subsnap(struct run *r)
{
	int s = pick_sub(r);
	struct ivrec *v;
	size_t w, n;
	uint64_t seq;
	long ret, want;
	int st;

	if (s < 0)
		return;
	v = r->sub[s].of;
	w = v->first + rnd_below(r, v->np);
	n = 1 + rnd_below(r, v->first + v->np - w);
	for (int tries = 0; tries < 20; tries++) {
		read_oracle(r, &r->o1);
		ret = sub_call('P', s, 0, 0, addr_of(r, w), n, false, &seq);
		read_oracle(r, &r->o2);
		if (ret != -EAGAIN && oracle_same(&r->o1, &r->o2))
			break;
		ret = -EAGAIN;
	}
	hist(r, "subscriber snapshot %zu+%zu of interval %llu: %ld", w, n,
	     (unsigned long long)v->id, ret);
	if (ret == -EAGAIN) {
		r->cnt.unstable++;
		return;
	}
	st = oracle_expect(&r->o1, r->gone, w, n, r->zero_pfn, r->show_pfn, r->raw);
	want = st ? st : (long)n;
	if (ret != want)
		report(r, false, "snapshot-status",
		       "subscriber snapshot of %zu+%zu returned %ld, want %ld", w, n, ret, want);
	for (size_t i = 0; i < n; i++) {
		uint64_t e = encode_default(r->raw[i]), g = sub_shm()->entries[i];
		char b1[96], b2[96];

		if (e != g) {
			report(r, false, "snapshot",
			       "subscriber snapshot %zu+%zu page %zu (%#llx): expected %s, got %s",
			       w, n, w + i, (unsigned long long)addr_of(r, w + i),
			       entry_str(e, b1, sizeof(b1)), entry_str(g, b2, sizeof(b2)));
			break;
		}
	}
}

static void op_subfault(struct run *r)
{
	int s = pick_sub(r);
	struct ivrec *v;
	bool write = rnd(r) & 1;
	size_t w, n;
	long ret, want;

	if (s < 0)
		return;
	v = r->sub[s].of;
	w = v->first + rnd_below(r, v->np);
	n = 1 + rnd_below(r, 8);
	if (n > v->first + v->np - w)
		n = v->first + v->np - w;
	want = fault_expect(r, w, n, write);
	ret = sub_call('F', s, 0, 0, addr_of(r, w), n, write, NULL);
	hist(r, "subscriber %s fault %zu+%zu of interval %llu: %ld (expect %ld)",
	     write ? "write" : "read", w, n, (unsigned long long)v->id, ret, want);
	if (write)
		touch(r, w, n);
	after_op(r, 0, 0, DST_NONE);
	if (ret != want)
		report(r, false, "fault-status",
		       "subscriber %s fault of %zu+%zu returned %ld, want %ld",
		       write ? "write" : "read", w, n, ret, want);
	else if (ret > 0)
		fault_post(r, w, n, write, "subscriber");
}

/* --- the checks ------------------------------------------------------------------ */

/*
 * The page tables changed while every seq was even and nothing ran: the
 * kernel may do that (khugepaged, compaction), but a uffd-wp bit or a
 * read-faulted zero page appearing is the daemon's own deferred change
 * (a re-arm) done after its invalidation completed. Reported once a step.
 */
static bool late_change(struct run *r)
{
	for (size_t p = 0; p < r->np; p++) {
		uint64_t a = r->o1.pm[p], b = r->o2.pm[p];
		bool wp_appeared = !(a & PM_UFFD_WP) && (b & PM_UFFD_WP);

		if (a == b || !live(r, p) || r->gone[p])
			continue;
		if (wp_appeared) {
			report(r, false, "late-change",
			       "page %zu (%#llx) was write-protected again (pagemap %#llx -> "
			       "%#llx) "
			       "while every seq was even: a deferred re-arm after completion",
			       p, (unsigned long long)addr_of(r, p), (unsigned long long)a,
			       (unsigned long long)b);
			return true;
		}
	}
	return false;
}

/*
 * Phase B: every interval's snapshot, at an even seq, with the page tables
 * the same before and after all of them (r->o1 holds them).
 */
static bool stable_snapshots(struct run *r)
{
	bool late = false;

	for (int attempt = 0; attempt < 40; attempt++) {
		bool ok = true, seqs_held = true;

		for (int i = 0; i < MAX_IV; i++)
			if (r->iv[i] && wait_even(r, r->iv[i], &r->iv[i]->snap_seq) < 0)
				return false;
		read_oracle(r, &r->o1);
		for (int i = 0; i < MAX_IV && ok; i++) {
			struct ivrec *v = r->iv[i];

			if (!v)
				continue;
			v->snap_ret = snapshot_at(v, v->snap_seq, v->snap);
			ok = v->snap_ret != -EAGAIN;
		}
		read_oracle(r, &r->o2);
		for (int i = 0; i < MAX_IV; i++)
			if (r->iv[i] && um_interval_check_retry(r->iv[i]->iv, r->iv[i]->snap_seq))
				seqs_held = false;
		if (ok && seqs_held && oracle_same(&r->o1, &r->o2))
			return true;
		/* every seq even and unchanged from before o1 to after o2 */
		if (ok && seqs_held && !late)
			late = late_change(r);
		if (getenv("UMIRROR_CHECK_DEBUG"))
			fprintf(stderr, "unstable: step %llu attempt %d: snapshots %s, seqs %s\n",
				(unsigned long long)r->step, attempt, ok ? "ok" : "EAGAIN",
				seqs_held ? "held" : "moved");
		if (getenv("UMIRROR_CHECK_DEBUG") && ok)
			for (size_t p = 0; p < r->nw; p++)
				if (r->o1.pm[p] != r->o2.pm[p] || r->o1.vi[p] != r->o2.vi[p])
					fprintf(stderr,
						"unstable: step %llu page %zu: %#llx -> %#llx\n",
						(unsigned long long)r->step, p,
						(unsigned long long)r->o1.pm[p],
						(unsigned long long)r->o2.pm[p]);
		if (attempt > 10)
			usleep(1000);
	}
	return false;
}

/* Phase C: each snapshot against what the contract says for r->o1 */
static void compare_snapshots(struct run *r, bool quiet)
{
	for (int i = 0; i < MAX_IV; i++) {
		struct ivrec *v = r->iv[i];
		size_t bad = 0, first_bad = 0, planted = SIZE_MAX;
		uint64_t want_e = 0;
		long want;
		int st;

		if (!v)
			continue;
		st = oracle_expect(&r->o1, r->gone, v->first, v->np, r->zero_pfn, r->show_pfn,
				   r->raw);
		for (size_t p = 0; p < v->np; p++)
			v->exp[p] = encode_default(r->raw[p]);
		if (quiet)
			continue;
		want = st ? st : (long)v->np;
		if (v->snap_ret != want)
			report(r, false, "snapshot-status",
			       "interval %llu snapshot returned %ld, want %ld",
			       (unsigned long long)v->id, v->snap_ret, want);
		/* self-test: a corrupted oracle must be caught */
		if (r->corrupt_now && i == 0) {
			planted = rnd_below(r, v->np);
			r->cnt.planted++;
		}
		for (size_t p = 0; p < v->np; p++) {
			uint64_t e = v->exp[p] ^ (p == planted ? UM_DEFAULT_WRITE : 0);

			if (e == v->snap[p])
				continue;
			if (!bad++) {
				first_bad = p;
				want_e = e;
			}
			if (p == planted)
				r->cnt.planted_div++;
		}
		if (bad) {
			char b1[96], b2[96];
			size_t w = v->first + first_bad;

			report(r, false, "snapshot",
			       "interval %llu (%zu+%zu, seq %llu): %zu pages differ; first page "
			       "%zu "
			       "(%#llx): expected %s, got %s%s",
			       (unsigned long long)v->id, v->first, v->np,
			       (unsigned long long)v->snap_seq, bad, w,
			       (unsigned long long)addr_of(r, w), entry_str(want_e, b1, sizeof(b1)),
			       entry_str(v->snap[first_bad], b2, sizeof(b2)),
			       r->gone[w] ? " (page gone since insert)" : "");
		}
	}
}

static bool dropped_covers(struct ivrec *v, size_t w, uint64_t min_seq)
{
	uint64_t addr = (uint64_t)(uintptr_t)v->run->win + w * PAGE;
	bool hit = false;

	pthread_mutex_lock(&v->lock);
	for (size_t i = v->nev; i-- > 0 && v->ev[i].seq >= min_seq;)
		if ((v->ev[i].reason & 0x100u) && v->ev[i].start <= addr && addr < v->ev[i].end)
			hit = true;
	pthread_mutex_unlock(&v->lock);
	return hit;
}

/* misses of one interval in one check, reported as one line */
struct misses {
	size_t n, first, last;
	uint64_t held, now, min_seq;
};

static void miss_add(struct run *r, struct ivrec *v, struct misses *m, size_t p, uint64_t held,
		     uint64_t now, uint64_t min_seq)
{
	if (v->drop_every && dropped_covers(v, v->first + p, min_seq))
		r->cnt.planted_miss++;
	if (!m->n++) {
		m->first = p;
		m->held = held;
		m->now = now;
		m->min_seq = min_seq;
	}
	m->last = p;
}

static void miss_report(struct run *r, struct ivrec *v, struct misses *m, const char *cls)
{
	size_t w = v->first + m->first;
	bool moved = um_interval_check_retry(v->iv, m->min_seq - 1);
	char b1[96], b2[96];

	if (!m->n)
		return;
	/* one count per page; report() counted one */
	pthread_mutex_lock(&r->fail_lock);
	r->cnt.misses += m->n - 1;
	pthread_mutex_unlock(&r->fail_lock);
	report(r, true, cls,
	       "interval %llu (%zu+%zu): %zu pages in %zu..%zu; first page %zu (%#llx): held %s "
	       "(seq %llu), now %s; %s",
	       (unsigned long long)v->id, v->first, v->np, m->n, v->first + m->first,
	       v->first + m->last, w, (unsigned long long)addr_of(r, w),
	       entry_str(m->held, b1, sizeof(b1)), (unsigned long long)(m->min_seq - 1),
	       entry_str(m->now, b2, sizeof(b2)),
	       moved ? "invalidations came but none covered it"
		     : "read_retry is still false: no invalidation at all");
	memset(m, 0, sizeof(*m));
}

/*
 * A writable page write-protected again, nothing else changed: only the
 * daemon does that (re-arming), and it knows when: always its to report.
 */
static bool rearmed(uint64_t held, uint64_t now)
{
	return (held & UM_DEFAULT_VALID) && (held & UM_DEFAULT_WRITE) && (now & UM_DEFAULT_VALID) &&
	       (now & UM_DEFAULT_UFFD_WP) && held >> 12 == now >> 12;
}

/*
 * Phase D. Two promises:
 *  - what userfaultfd reports: every downgrade of what the mirror held,
 *    on a page a reported operation (and no scan-only one) changed since,
 *    has an invalidation after the mirror's seq covering it, by the time
 *    the next snapshot is answered;
 *  - what only the scan sees (@final, scan on: UM_REVALIDATE_NOW has
 *    run): every downgrade from the scan's baseline - the page as the
 *    last scan saw it, or as it was once the last invalidation covering
 *    it completed - to now has an invalidation covering it since.
 * Return: true when a second scan was needed (events after the snapshot).
 */
static bool coverage(struct run *r, struct ivrec *v, bool final)
{
	struct misses mu = { 0 }, ms = { 0 };
	size_t pending = 0;

	for (size_t p = 0; p < v->np; p++) {
		size_t w = v->first + p;

		if (downgrade(v->mirror[p], v->exp[p]) &&
		    ((v->touched[p] && !v->stouched[p]) || rearmed(v->mirror[p], v->exp[p])) &&
		    !(v->snap_seq != v->mirror_seq && ivrec_covered(v, w, v->mirror_seq + 1))) {
			miss_add(r, v, &mu, p, v->mirror[p], v->exp[p], v->mirror_seq + 1);
			/* counted once: the scan's check starts from here */
			v->base[p] = v->exp[p];
			v->base_seq[p] = v->snap_seq;
		}
		if (final && downgrade(v->base[p], v->exp[p]) &&
		    !ivrec_covered(v, w, v->base_seq[p] + 1)) {
			if (r->scan)
				pending++;
			else
				r->cnt.unchecked++;
		}
	}
	miss_report(r, v, &mu, "uffd/rearm");
	if (!final || !pending || !r->scan)
		return false;
	/* the change may have come after the first scan read the page tables */
	{
		uint64_t s;
		int ret = um_interval_revalidate(v->iv, LONG_PERIOD, UM_REVALIDATE_NOW, NULL);

		CHECK(ret == 0, "revalidate NOW: %d", ret);
		wait_even(r, v, &s);
	}
	for (size_t p = 0; p < v->np; p++)
		if (downgrade(v->base[p], v->exp[p]) &&
		    !ivrec_covered(v, v->first + p, v->base_seq[p] + 1))
			miss_add(r, v, &ms, p, v->base[p], v->exp[p], v->base_seq[p] + 1);
	miss_report(r, v, &ms, "scan");
	return true;
}

/*
 * Phase E: the mirror now holds what the snapshot said (the contract's
 * value). The scan's baseline moves on at the end of a step (the scan
 * ran), and mid-step for the pages an invalidation covered since.
 */
static void take_mirror(struct ivrec *v, bool final)
{
	for (size_t p = 0; p < v->np; p++)
		if (final || ivrec_covered(v, v->first + p, v->base_seq[p] + 1)) {
			v->base[p] = v->exp[p];
			v->base_seq[p] = v->snap_seq;
		}
	memcpy(v->mirror, v->exp, v->np * sizeof(uint64_t));
	v->mirror_seq = v->snap_seq;
	memset(v->touched, 0, v->np);
	memset(v->stouched, 0, v->np);
}

/* Phase F: the subscriber's log equals the owner's, event for event */
static void check_subs(struct run *r)
{
	for (int s = 0; s < MAX_SUB; s++) {
		struct subrec *sr = &r->sub[s];
		struct sub_slot *sl = &sub_shm()->slot[s];
		struct ivrec *v = sr->of;
		uint64_t n, seq;
		size_t owner_n;
		bool bad = false;

		if (!sr->used || !v || sr->evicted)
			continue;
		if (atomic_load(&sl->released)) {
			if (atomic_load(&sl->release_error) == -ETIMEDOUT) {
				sr->evicted = true;
				r->cnt.evicted++;
				hist(r, "subscriber slot %d evicted (ack timeout)", s);
			} else {
				report(r, false, "release",
				       "subscriber of live interval %llu released (%d)",
				       (unsigned long long)sr->id, atomic_load(&sl->release_error));
				sr->evicted = true;
			}
			continue;
		}
		pthread_mutex_lock(&v->lock);
		owner_n = v->nev;
		pthread_mutex_unlock(&v->lock);
		/* an asynchronous receiver gets its copies in its own time */
		for (uint64_t t0 = harness_now_ms(); !sr->sync && harness_now_ms() - t0 < 3000;) {
			n = atomic_load_explicit(&sl->n, memory_order_acquire);
			if (n - sr->sub_next >= owner_n - sr->own_next)
				break;
			usleep(500);
		}
		n = atomic_load_explicit(&sl->n, memory_order_acquire);
		if (n - sr->sub_next > SUB_RING) {
			sr->sub_next = n - SUB_RING;
			hist(r, "subscriber slot %d: log ring overflowed", s);
		}
		pthread_mutex_lock(&v->lock);
		while (sr->sub_next < n && sr->own_next < v->nev && !bad) {
			const struct evrec *a = &sl->ring[sr->sub_next % SUB_RING];
			const struct evrec *b = &v->ev[sr->own_next];

			if (a->seq != b->seq || a->start != b->start || a->end != b->end ||
			    a->reason != (b->reason & 0xffu)) {
				bad = true;
				report(r, false, "order",
				       "interval %llu event %zu: owner got %s [%#llx, %#llx) seq "
				       "%llu, "
				       "subscriber slot %d got %s [%#llx, %#llx) seq %llu",
				       (unsigned long long)v->id, sr->own_next,
				       um_reason_str(b->reason & 0xffu),
				       (unsigned long long)b->start, (unsigned long long)b->end,
				       (unsigned long long)b->seq, s, um_reason_str(a->reason),
				       (unsigned long long)a->start, (unsigned long long)a->end,
				       (unsigned long long)a->seq);
			}
			if ((a->seq & 1) && a->seq > sr->last_odd)
				sr->last_odd = a->seq;
			r->cnt.sub_events++;
			sr->sub_next++;
			sr->own_next++;
		}
		if (!bad && sr->sub_next < n)
			report(r, false, "order",
			       "interval %llu: subscriber slot %d got %llu events the owner did "
			       "not",
			       (unsigned long long)v->id, s,
			       (unsigned long long)(n - sr->sub_next));
		if (!bad && sr->own_next < v->nev)
			report(r, true, "subscriber",
			       "interval %llu: subscriber slot %d (%s) missed %zu of the owner's "
			       "events",
			       (unsigned long long)v->id, s, sr->sync ? "sync" : "async",
			       v->nev - sr->own_next);
		sr->sub_next = n;
		sr->own_next = v->nev;
		pthread_mutex_unlock(&v->lock);
		/* a synchronous receiver has run every callback before the seq is even */
		if (sr->sync && um_interval_read_begin(v->iv, &seq) == 0 && seq > sr->seq0 &&
		    sr->last_odd + 1 < seq) {
			uint64_t m = atomic_load_explicit(&sl->n, memory_order_acquire);

			for (uint64_t i = sr->sub_next; i < m; i++)
				if ((sl->ring[i % SUB_RING].seq & 1) &&
				    sl->ring[i % SUB_RING].seq > sr->last_odd)
					sr->last_odd = sl->ring[i % SUB_RING].seq;
			if (sr->last_odd + 1 < seq && sr->last_odd + 1 > sr->seq0)
				report(r, false, "valid-early",
				       "interval %llu: seq %llu is even while the subscriber's "
				       "callbacks had seen only up to %llu",
				       (unsigned long long)v->id, (unsigned long long)seq,
				       (unsigned long long)sr->last_odd);
		}
	}
}

/* a mid-step refresh (@final false) or the end of a step */
static void check_owner(struct run *r, bool final)
{
	if (final && r->scan)
		for (int i = 0; i < MAX_IV; i++)
			if (r->iv[i])
				CHECK(um_interval_revalidate(r->iv[i]->iv, LONG_PERIOD,
							     UM_REVALIDATE_NOW, NULL) == 0,
				      "revalidate NOW");
	for (int iter = 0; iter < 2; iter++) {
		bool rescanned = false;

		if (!stable_snapshots(r)) {
			r->cnt.unstable++;
			hist(r, "(page tables did not hold still: step not checked)");
			return;
		}
		compare_snapshots(r, iter > 0);
		if (iter > 0)
			break;
		for (int i = 0; i < MAX_IV; i++)
			if (r->iv[i])
				rescanned |= coverage(r, r->iv[i], final);
		if (!rescanned)
			break;
	}
	for (int i = 0; i < MAX_IV; i++)
		if (r->iv[i])
			take_mirror(r->iv[i], final);
	if (final)
		check_subs(r);
	oracle_copy(&r->cur, &r->o1);
}

/* --- steps --------------------------------------------------------------------- */

static bool allowed(struct run *r, enum op op)
{
	if (!(r->ops_mask & (1ull << op)))
		return false;
	switch (op) {
	case OP_COLLAPSE:
		return r->kid == K_THP;
	case OP_PAGEOUT:
		return r->kid != K_HUGETLB;
	case OP_MREMAP:
		/*
		 * Linux 6.18 leaks hugetlb reservations when pieces of a private
		 * hugetlb mapping are moved and mapped over (no userfaultfd
		 * needed); each leak keeps a huge page reserved until reboot
		 */
		return r->kid != K_HUGETLB;
	case OP_SUBSNAP:
	case OP_SUBFAULT:
		return pick_sub(r) >= 0;
	default:
		return true;
	}
}

static enum op pick_op(struct run *r, bool in_combo)
{
	unsigned int total = 0, x;

	for (int op = 0; op < OP_NR; op++)
		if (allowed(r, (enum op)op) &&
		    !(in_combo &&
		      (op == OP_COMBO || op == OP_SUB || op == OP_REINSERT || op == OP_THREADS)))
			total += weight[op];
	if (!total)
		return OP_READ;
	x = (unsigned int)rnd_below(r, total);
	for (int op = 0; op < OP_NR; op++) {
		if (!allowed(r, (enum op)op) ||
		    (in_combo &&
		     (op == OP_COMBO || op == OP_SUB || op == OP_REINSERT || op == OP_THREADS)))
			continue;
		if (x < weight[op])
			return (enum op)op;
		x -= weight[op];
	}
	return OP_READ;
}

static void do_op(struct run *r, enum op op)
{
	switch (op) {
	case OP_WRITE:
		op_write(r);
		break;
	case OP_SPAN:
		op_span(r);
		break;
	case OP_READ:
		op_read(r);
		break;
	case OP_THREADS:
		op_threads(r);
		break;
	case OP_FAULT:
		op_fault(r);
		break;
	case OP_DONTNEED:
		op_madvise(r, MADV_DONTNEED, "DONTNEED", true);
		break;
	case OP_MUNMAP:
		op_munmap(r);
		break;
	case OP_MMAP:
		op_mmap(r);
		break;
	case OP_MREMAP:
		op_mremap(r);
		break;
	case OP_MPROTECT:
		op_mprotect(r);
		break;
	case OP_FORK:
		op_fork(r);
		break;
	case OP_PAGEOUT:
		if (rnd(r) & 1)
			op_madvise(r, MADV_PAGEOUT, "PAGEOUT", false);
		else
			op_madvise(r, MADV_COLD, "COLD", false);
		break;
	case OP_COLLAPSE:
		op_collapse(r);
		break;
	case OP_REINSERT:
		op_reinsert(r);
		break;
	case OP_SUB:
		op_sub(r);
		break;
	case OP_SUBSNAP:
		op_subsnap(r);
		break;
	case OP_SUBFAULT:
		op_subfault(r);
		break;
	case OP_COMBO: {
		/* several changes within one scan period, the mirror re-reading between */
		unsigned int n = 2 + (unsigned int)rnd_below(r, MAX_SUBOPS - 1);

		for (unsigned int i = 0; i < n; i++) {
			if (i && rnd_below(r, 10) < 7) {
				hist(r, "(mirror re-reads)");
				check_owner(r, false);
			}
			do_op(r, pick_op(r, true));
		}
		break;
	}
	default:
		break;
	}
}

/* --- one run ------------------------------------------------------------------- */

static void *map_window(size_t nw)
{
	for (uint64_t a = WINDOW_BASE; a < WINDOW_BASE + (64ull << 30); a += 1ull << 30) {
		void *p = mmap((void *)(uintptr_t)a, nw * PAGE, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
			       -1, 0);

		if (p == (void *)(uintptr_t)a)
			return p;
		if (p != MAP_FAILED)
			munmap(p, nw * PAGE);
	}
	return NULL;
}

static int setup(struct run *r)
{
	int ret;

	r->np = r->k->npages;
	r->nw = 2 * r->np;
	r->fd = -1;
	switch (r->kid) {
	case K_ANON:
	case K_THP:
		r->map_flags = MAP_PRIVATE | MAP_ANONYMOUS;
		break;
	case K_SHARED:
		r->map_flags = MAP_SHARED | MAP_ANONYMOUS;
		break;
	case K_HUGETLB:
		r->map_flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB;
		break;
	case K_MEMFD:
	case K_TMPFS: {
		char path[96];

		if (r->kid == K_MEMFD) {
			r->fd = memfd_create("umirror-check", MFD_CLOEXEC);
		} else {
			snprintf(path, sizeof(path), "/dev/shm/umirror-check-%d", (int)getpid());
			r->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			unlink(path);
		}
		CHECK(r->fd >= 0, "%s file: %m", r->k->name);
		CHECK(ftruncate(r->fd, (off_t)(r->nw * PAGE)) == 0, "ftruncate: %m");
		/* a third of the runs map the file privately (copy-on-write) */
		r->map_flags = rnd_below(r, 3) == 0 ? MAP_PRIVATE : MAP_SHARED;
		break;
	}
	default:
		break;
	}
	r->win = map_window(r->nw);
	CHECK(r->win, "no room for the window");
	oracle_init(&r->cur, (uint64_t)(uintptr_t)r->win, r->nw);
	oracle_init(&r->o1, (uint64_t)(uintptr_t)r->win, r->nw);
	oracle_init(&r->o2, (uint64_t)(uintptr_t)r->win, r->nw);
	r->gone = calloc(r->nw, 1);
	r->raw = calloc(r->nw, sizeof(uint64_t));
	CHECK(r->gone && r->raw, "out of memory");
	ret = map_fresh(r, 0, r->np, r->kid == K_THP);
	if (ret)
		return ret;
	if (r->kid == K_HUGETLB)
		memset(r->win, 1, HPAGE); /* one huge page present from the start */
	read_oracle(r, &r->cur);
	return 0;
}

static void teardown(struct run *r)
{
	for (int s = 0; s < MAX_SUB; s++)
		if (r->sub[s].used)
			sub_drop(r, s);
	for (int i = 0; i < MAX_IV; i++)
		if (r->iv[i]) {
			ivrec_remove(r->iv[i]);
			r->iv[i] = NULL;
		}
	if (r->child) {
		CHECK(write(r->child_fd, "x", 1) == 1, "to child: %m");
		reap(r, r->child);
		close(r->child_fd);
		r->child = 0;
	}
	munmap(r->win, r->nw * PAGE);
	if (r->fd >= 0)
		close(r->fd);
	oracle_free(&r->cur);
	oracle_free(&r->o1);
	oracle_free(&r->o2);
	free(r->gone);
	free(r->raw);
}

int run_kind(struct run *r, struct counters *total)
{
	uint64_t t0 = harness_now_ms();
	int ret;

	/* a mixed start: seeds N and N+1 must not be one stream shifted by a step */
	r->rng = r->seed ^ ((uint64_t)r->kid << 56);
	r->rng = rnd(r) ^ rnd(r);
	pthread_mutex_init(&r->fail_lock, NULL);
	ret = setup(r);
	if (ret) {
		printf("umirror-check: %s: skipped: cannot map the region: %s\n", r->k->name,
		       strerror(-ret));
		return SKIP;
	}
	/* the first interval is the whole region, up to two more anywhere */
	CHECK(iv_insert(r, 0, 0, r->np) == 0, "insert the region");
	for (int i = 1; i < MAX_IV; i++)
		if (rnd(r) & 1) {
			size_t w, n;

			pick_insert_range(r, &w, &n);
			iv_insert(r, i, w, n);
		}
	if (r->ops_mask & (1ull << OP_SUB))
		op_sub(r);
	read_oracle(r, &r->cur);
	check_owner(r, true);

	for (r->step = 1; r->step <= r->nsteps; r->step++) {
		do_op(r, pick_op(r, false));
		r->corrupt_now = r->selftest && r->step % 10 == 0;
		check_owner(r, true);
		r->corrupt_now = false;
		r->cnt.steps++;
		if (r->stop_on_fail && (r->cnt.divergences || r->cnt.misses))
			break;
	}
	r->step--;
	teardown(r);
	printf("umirror-check: %s seed %llu scan %s%s: %llu steps in %.1f s, %llu divergences, "
	       "%llu missed invalidations (%llu scan-only downgrades unchecked, %llu unstable, "
	       "%llu forks, %llu collapses, %llu evictions, %llu subscriber events compared)\n",
	       r->k->name, (unsigned long long)r->seed, r->scan ? "on" : "off",
	       r->map_flags & MAP_SHARED ? " shared" : "", (unsigned long long)r->cnt.steps,
	       (double)(harness_now_ms() - t0) / 1000.0, (unsigned long long)r->cnt.divergences,
	       (unsigned long long)r->cnt.misses, (unsigned long long)r->cnt.unchecked,
	       (unsigned long long)r->cnt.unstable, (unsigned long long)r->cnt.forks,
	       (unsigned long long)r->cnt.collapsed, (unsigned long long)r->cnt.evicted,
	       (unsigned long long)r->cnt.sub_events);
	total->steps += r->cnt.steps;
	total->divergences += r->cnt.divergences;
	total->misses += r->cnt.misses;
	total->unchecked += r->cnt.unchecked;
	total->unstable += r->cnt.unstable;
	total->collapsed += r->cnt.collapsed;
	total->forks += r->cnt.forks;
	total->evicted += r->cnt.evicted;
	total->planted += r->cnt.planted;
	total->planted_div += r->cnt.planted_div;
	total->sub_events += r->cnt.sub_events;
	total->planted_miss += r->cnt.planted_miss;
	total->trap_misses += r->cnt.trap_misses;
	return 0;
}
