/* SPDX-License-Identifier: MIT */
/*
 * settle.c - REMOVE invalidations held until the zap is done (settle.h).
 */
#include "settle.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inval.h"
#include "log.h"
#include "mm.h"
#include "server.h"

#define PAGE 4096ull
#define SETTLE_SPIN_NS (2ull * 1000 * 1000) /* busy polling after the acks */
#define SETTLE_POLL_MS 1		     /* then this often */
#define SETTLE_GIVE_UP_MS 100		     /* zap never seen: re-arm anyway */

struct settle {
	struct list link; /* server.settling, once acked */
	struct mm *mm;
	struct inval *inv;
	uint64_t start, end;
	uint64_t *before; /* pagemap entries when the event was read */
	uint64_t *now;	  /* scratch for the polls */
	uint64_t acked_ns, give_up_ms;
	bool rearmed;
};

static void settle_free(struct settle *st)
{
	if (!list_empty(&st->link))
		list_del(&st->link);
	free(st->before);
	free(st->now);
	free(st);
}

static int read_pagemap(struct mm *mm, uint64_t start, uint64_t npages, uint64_t *out)
{
	size_t want = npages * sizeof(*out), got = 0;

	while (got < want) {
		ssize_t n = pread(mm->pagemap_fd, (char *)out + got, want - got,
				  (off_t)((start / PAGE) * sizeof(*out) + got));

		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		got += n;
	}
	return 0;
}

/*
 * Has the zap passed every page it will change? Pages that were none stay
 * none; every other page must differ from what it was (zapped, or zapped
 * and written again). An unreadable pagemap (owner gone) counts as done.
 */
static bool zap_done(struct settle *st)
{
	uint64_t n = (st->end - st->start) / PAGE;

	if (read_pagemap(st->mm, st->start, n, st->now))
		return true;
	for (uint64_t i = 0; i < n; i++)
		if (st->before[i] && st->now[i] == st->before[i])
			return false;
	return true;
}

static void rearm(struct settle *st)
{
	struct inval *inv = st->inv;

	st->rearmed = true;
	/* errors ignored: the range may be gone by now */
	for (unsigned int i = 0; i < inv->nhits; i++)
		if (inv->hits[i].iv)
			mm_wp(st->mm, inv->hits[i].start, inv->hits[i].end - inv->hits[i].start,
			      true);
}

/* one step; true when @st completed (and was freed) */
static bool step(struct settle *st, uint64_t now_ms)
{
	if (!st->rearmed) {
		if (!zap_done(st)) {
			if (now_ms < st->give_up_ms)
				return false;
			log_debug("mm %llu: REMOVE [%#llx, %#llx): zap not seen in %d ms, re-arming",
				  (unsigned long long)st->mm->id, (unsigned long long)st->start,
				  (unsigned long long)st->end, SETTLE_GIVE_UP_MS);
		}
		rearm(st);
	}
	/* a re-arm refused with EAGAIN is queued: complete only once it is applied */
	if (!list_empty(&st->mm->wp_retry) && !st->mm->dead && now_ms < st->give_up_ms + 1000)
		return false;
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

	list_for_each_entry_safe(st, t, &s->settling, link) {
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
	st->give_up_ms = server_now_ms(s) + SETTLE_GIVE_UP_MS;
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
	if (!st->rearmed)
		rearm(st);
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

int settle_remove(struct mm *mm, uint64_t start, uint64_t end, const struct inval_hit *hits,
		  unsigned int nhits)
{
	uint64_t n = (end - start) / PAGE;
	struct settle *st = calloc(1, sizeof(*st));
	int ret;

	if (st) {
		st->before = malloc(n * sizeof(*st->before));
		st->now = malloc(n * sizeof(*st->now));
	}
	if (!st || !st->before || !st->now)
		goto fallback;
	list_init(&st->link);
	st->mm = mm;
	st->start = start;
	st->end = end;
	/* unreadable: compare against "nothing there", which settles at once */
	if (read_pagemap(mm, start, n, st->before))
		memset(st->before, 0, n * sizeof(*st->before));
	ret = inval_start_held(mm, UMP_REASON_REMOVE, start, end, hits, nhits, &settle_ops, st,
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

int settle_init(struct server *s)
{
	int ret;

	list_init(&s->settling);
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
