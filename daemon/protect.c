/* SPDX-License-Identifier: MIT */
/*
 * protect.c - PROTECT invalidations (protect.h), held (inval.h) until
 * the write-protect was applied.
 */
#include "protect.h"

#include <limits.h>
#include <stdlib.h>

#include "inval.h"
#include "log.h"
#include "lookup.h"
#include "wp.h"

/* a PROTECT invalidation (protect.h mm_protect_start()) */
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

void mm_protect_armed_runs(struct mm_protect *p, const struct ump_dirty_rec *runs, uint64_t n)
{
	struct mm_span *copy;

	/* no memory: the completion takes the whole span's baseline again, as before */
	if (p && p->inv && n < UINT_MAX && (copy = malloc((n ? n : 1) * sizeof(*copy)))) {
		for (uint64_t i = 0; i < n; i++)
			copy[i] = (struct mm_span){ runs[i].start, runs[i].end };
		inval_armed_only(p->inv, copy, (unsigned int)n);
	}
	mm_protect_armed(p);
}
