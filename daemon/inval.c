/* SPDX-License-Identifier: MIT */
/*
 * inval.c - invalidation records: start, fan-out, acks, timeout, complete.
 *
 * Invariant: a record on mm.invals always has npending > 0, or is held
 * and acked; the moment the last wait is satisfied (ack, eviction,
 * receiver gone) it completes and is freed, or (held) its holder's acked
 * callback runs. Neither frees any other record and messages sent meanwhile
 * are only queued, so it can run from any loop over other records
 * (list_for_each_entry_safe) without surprises.
 *
 * Timeouts: every record gets the same ack timeout, so deadlines are in
 * creation order and one timer over a FIFO (server.timed) serves them all.
 */
#include "inval.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lookup.h"
#include "peer.h"
#include "seq.h"
#include "wp.h"

static void timer_arm(struct server *s);

static void record_free(struct inval *inv)
{
	free(inv->armed);
	free(inv->hits);
	free(inv->waits);
	free(inv);
}

/* the runs of inval_armed_only() inside @hit: armed now, nothing else changed by us */
static void armed_hit(struct inval *inv, const struct inval_hit *hit)
{
	void (*armed)(struct interval *, uint64_t, uint64_t) = inv->mm->srv->hooks.armed;

	for (unsigned int j = 0; armed && j < inv->narmed; j++) {
		uint64_t a = inv->armed[j].start > hit->start ? inv->armed[j].start : hit->start;
		uint64_t b = inv->armed[j].end < hit->end ? inv->armed[j].end : hit->end;

		if (a < b)
			armed(hit->iv, a, b);
	}
}

void inval_armed_only(struct inval *inv, struct mm_span *runs, unsigned int n)
{
	free(inv->armed);
	inv->armed = runs;
	inv->narmed = n;
	inv->armed_only = true;
}

/* every page-table change of @inv is applied: seqs even, waiters woken, freed */
static void end_record(void *arg)
{
	struct inval *inv = arg;

	list_del(&inv->mm_link);
	for (unsigned int i = 0; i < inv->nhits; i++) {
		if (!inv->hits[i].iv)
			continue;
		/* the scan compares these pages with how this change left them */
		if (inv->armed_only)
			armed_hit(inv, &inv->hits[i]);
		else if (inv->reason != UMP_REASON_REVALIDATE && inv->mm->srv->hooks.explained)
			inv->mm->srv->hooks.explained(inv->hits[i].iv, inv->hits[i].start,
						      inv->hits[i].end);
		interval_seq_end(inv->hits[i].iv);
	}
	record_free(inv);
}

/*
 * The deferred page-table change, then seqs even and waiters woken, once
 * every change asked for so far is really in the page tables: one the
 * kernel refused with EAGAIN (an event still being delivered, a fork's
 * above all) is queued, and a mirror that saw the seq even before it is
 * applied could snapshot pages that are about to change silently (a
 * fork's COW pages not re-armed yet). Meanwhile the record stays on
 * mm.invals, in flight, but nothing waits for acks or times out.
 */
static void complete(struct inval *inv)
{
	struct mm *mm = inv->mm;

	list_del(&inv->timed_link);
	/* a held record's holder did its own page-table change */
	switch (inv->hold ? 0 : inv->reason) {
	case UMP_REASON_WRITE:
		/* also wakes every writer that faulted on its span meanwhile */
		mm_wp(mm, inv->start, inv->end - inv->start, false);
		break;
	case UMP_REASON_REMOVE:
	case UMP_REASON_FORK:
		/* errors ignored: the range may be gone by now */
		for (unsigned int i = 0; i < inv->nhits; i++)
			if (inv->hits[i].iv && interval_armed(inv->hits[i].iv))
				mm_wp(mm, inv->hits[i].start, inv->hits[i].end - inv->hits[i].start,
				      true);
		break;
	default:
		break;
	}
	/* the holder is done with it: a drop from now on is ours alone */
	inv->hold = NULL;
	inv->applying = true;
	mm_wp_barrier(mm, end_record, inv);
}

/*
 * No memory for a record: do the deferred change at once so no writer
 * stays blocked. The mirror is not told; the error is logged.
 */
static void change_now(struct mm *mm, uint32_t reason, uint64_t start, uint64_t end,
		       const struct inval_hit *hits, unsigned int nhits)
{
	if (reason == UMP_REASON_WRITE) {
		mm_wp(mm, start, end - start, false);
		return;
	}
	if (reason == UMP_REASON_REMOVE || reason == UMP_REASON_FORK)
		for (unsigned int i = 0; i < nhits; i++)
			if (interval_armed(hits[i].iv))
				mm_wp(mm, hits[i].start, hits[i].end - hits[i].start, true);
}

/* a held record's acks are in: the ack timeout starts again for the holder's part */
static void held_acked(struct inval *inv)
{
	struct server *s = inv->mm->srv;

	inv->acked = true;
	list_del(&inv->timed_link);
	inv->deadline_ms = server_now_ms(s) + s->opt.ack_timeout_ms;
	list_add_tail(&s->timed, &inv->timed_link);
	if (s->timed.next == &inv->timed_link)
		timer_arm(s);
	/* may finish (free) @inv */
	inv->hold->acked(inv, inv->hold_arg);
}

/* EV_INVALIDATE of @hit to its receivers (the sync ones are waited for) and watchers */
static void send_hit(struct inval *inv, const struct inval_hit *hit)
{
	struct mm *mm = inv->mm;
	struct interval *iv = hit->iv;
	struct ump_ev_invalidate ev = {
		.interval_id = iv->id,
		.start = hit->start,
		.end = hit->end,
		.seq = interval_seq(iv),
		.reason = inv->reason,
		.pid = mm->pid,
		.tid = inv->tid,
	};
	struct receiver *r;
	uint64_t mark;

	list_for_each_entry (r, &iv->receivers, iv_link) {
		if (r->evicted || r->client->dropping)
			continue;
		ev.flags = r->sync ? UMP_INV_SYNC : 0;
		if (client_send(r->client, UMP_EV_INVALIDATE, 0, &ev, sizeof(ev), -1) || !r->sync)
			continue;
		mark = client_send_mark(r->client);
		inv->waits[inv->nwaits++] = (struct inval_wait){
			.r = r,
			.seq = ev.seq,
			.mark = mark,
			.queued = !client_delivered(r->client, mark),
		};
	}
	server_watch_copy(mm->srv, mm->pid, mm->uid, &ev);
}

static int start_record(struct mm *mm, uint32_t reason, uint64_t start, uint64_t end, uint32_t tid,
			const struct inval_hit *hits, unsigned int nhits,
			const struct inval_hold_ops *hold, void *hold_arg, struct inval **out)
{
	struct server *s = mm->srv;
	unsigned int nsync = 0;
	struct inval *inv;
	struct receiver *r;

	for (unsigned int i = 0; i < nhits; i++)
		list_for_each_entry (r, &hits[i].iv->receivers, iv_link)
			nsync += r->sync;
	inv = calloc(1, sizeof(*inv));
	if (inv) {
		inv->hits = malloc(sizeof(*hits) * (nhits ? nhits : 1));
		inv->waits = calloc(nsync ? nsync : 1, sizeof(*inv->waits));
	}
	if (!inv || !inv->hits || !inv->waits) {
		log_error("mm %llu: out of memory: %s invalidation not sent",
			  (unsigned long long)mm->id, ump_reason_name(reason));
		if (inv) {
			free(inv->hits);
			free(inv->waits);
			free(inv);
		}
		if (!hold)
			change_now(mm, reason, start, end, hits, nhits);
		return -ENOMEM;
	}
	inv->hold = hold;
	inv->hold_arg = hold_arg;
	inv->held = hold;
	if (out)
		*out = inv;
	inv->mm = mm;
	inv->reason = reason;
	inv->tid = tid;
	inv->start = start;
	inv->end = end;
	inv->nhits = nhits;
	memcpy(inv->hits, hits, sizeof(*hits) * nhits);
	list_add_tail(&mm->invals, &inv->mm_link);
	list_init(&inv->timed_link);
	/* seqs odd before anyone hears of it */
	for (unsigned int i = 0; i < nhits; i++) {
		interval_seq_begin(hits[i].iv);
		hits[i].iv->invalidations++;
	}
	s->events++;
	for (unsigned int i = 0; i < nhits; i++)
		send_hit(inv, &hits[i]);
	log_debug("mm %llu: %s [%#llx, %#llx) on %u intervals, %u acks to wait for",
		  (unsigned long long)mm->id, ump_reason_name(reason), (unsigned long long)start,
		  (unsigned long long)end, nhits, inv->nwaits);
	inv->npending = inv->nwaits;
	if (!inv->npending) {
		if (hold)
			held_acked(inv);
		else
			complete(inv);
		return 0;
	}
	inv->deadline_ms = server_now_ms(s) + s->opt.ack_timeout_ms;
	list_add_tail(&s->timed, &inv->timed_link);
	if (s->timed.next == &inv->timed_link)
		timer_arm(s);
	return 0;
}

int inval_start(struct mm *mm, uint32_t reason, uint64_t start, uint64_t end, uint32_t tid,
		const struct inval_hit *hits, unsigned int nhits)
{
	return start_record(mm, reason, start, end, tid, hits, nhits, NULL, NULL, NULL);
}

int inval_start_held(struct mm *mm, uint32_t reason, uint64_t start, uint64_t end, uint32_t tid,
		     const struct inval_hit *hits, unsigned int nhits,
		     const struct inval_hold_ops *ops, void *arg, struct inval **out)
{
	return start_record(mm, reason, start, end, tid, hits, nhits, ops, arg, out);
}

void inval_finish(struct inval *inv)
{
	complete(inv);
}

/* count @w as given; complete @inv when it was the last */
static bool satisfy(struct inval *inv, struct inval_wait *w)
{
	w->r = NULL;
	if (--inv->npending)
		return false;
	if (inv->hold)
		held_acked(inv);
	else
		complete(inv);
	return true;
}

void inval_ack(struct client *c, const struct ump_ack *ack)
{
	struct receiver *r = client_receiver(c, ack->interval_id);
	struct inval *inv;

	if (!r)
		goto stray;
	list_for_each_entry (inv, &r->iv->mm->invals, mm_link)
		for (unsigned int i = 0; i < inv->nwaits; i++)
			if (inv->waits[i].r == r && inv->waits[i].seq == ack->seq) {
				satisfy(inv, &inv->waits[i]);
				return;
			}
stray:
	/* late (after eviction) or bogus: harmless */
	log_debug("client %llu: stray ack interval %llu seq %llu", (unsigned long long)c->id,
		  (unsigned long long)ack->interval_id, (unsigned long long)ack->seq);
}

bool inval_write_in_flight(struct mm *mm, uint64_t page)
{
	struct inval *inv;

	list_for_each_entry (inv, &mm->invals, mm_link) {
		if (inv->reason != UMP_REASON_WRITE)
			continue;
		/*
		 * Not held: it unprotects at completion; while it waits for
		 * the write-protect queue (applying) that unprotect is queued
		 * ahead of its end, not applied yet.
		 */
		if (!inv->held && page >= inv->start && page < inv->end)
			return true;
		/*
		 * Held: only until its acks are in; then its holder unprotects
		 * at once, and a later fault means the page was protected
		 * again since (it must be an invalidation of its own).
		 */
		if (inv->hold && !inv->acked && page >= inv->start && page < inv->end)
			return true;
	}
	return false;
}

/* satisfy every wait of @mm's records that @match selects */
static void satisfy_matching(struct mm *mm, bool (*match)(const struct inval_wait *, const void *),
			     const void *arg)
{
	struct inval *inv, *t;

	list_for_each_entry_safe (inv, t, &mm->invals, mm_link)
		for (unsigned int i = 0; i < inv->nwaits; i++)
			if (inv->waits[i].r && match(&inv->waits[i], arg) &&
			    satisfy(inv, &inv->waits[i]))
				break;
}

static bool match_receiver(const struct inval_wait *w, const void *r)
{
	return w->r == r;
}

static bool match_interval(const struct inval_wait *w, const void *iv)
{
	return w->r->iv == iv;
}

static bool match_evicted(const struct inval_wait *w, const void *unused)
{
	return w->r->evicted;
}

void inval_forget_receiver(struct receiver *r)
{
	satisfy_matching(r->iv->mm, match_receiver, r);
}

void inval_forget_interval(struct interval *iv)
{
	struct inval *inv;

	/* the interval's seq is not ended: its slot dies with it */
	list_for_each_entry (inv, &iv->mm->invals, mm_link)
		for (unsigned int i = 0; i < inv->nhits; i++)
			if (inv->hits[i].iv == iv)
				inv->hits[i].iv = NULL;
	iv->active = 0;
	satisfy_matching(iv->mm, match_interval, iv);
}

void inval_drop_all(struct mm *mm)
{
	struct inval *inv, *t;

	list_for_each_entry_safe (inv, t, &mm->invals, mm_link) {
		list_del(&inv->mm_link);
		list_del(&inv->timed_link);
		if (inv->hold)
			inv->hold->dropped(inv, inv->hold_arg);
		record_free(inv);
	}
	timer_arm(mm->srv);
}

/*
 * Has @w had its ack timeout? It runs from when the event reached the
 * client's socket, not while it waited in the daemon's queue behind a
 * burst the daemon made (a fork over thousands of intervals): one still
 * queued has more time as long as the client reads (its queue moved
 * within the timeout), and one that went through the queue gets, at the
 * first deadline that finds it delivered, one more timeout from then: at
 * least a timeout after it was delivered, whenever that was. The daemon
 * itself may have been busy for longer than the timeout (making
 * thousands of fork copies), with the client's acks unread in the socket
 * or the client blocked sending them (and so not reading): one more
 * timeout, once, when the client has sent anything not read yet. A
 * client that neither reads nor writes is evicted at the deadline, as
 * before.
 */
static bool wait_overdue(struct inval_wait *w, uint64_t now, unsigned int timeout_ms)
{
	struct client *c = w->r->client;

	/* the queue may have stood still because we were busy: send what fits first */
	if (!client_delivered(c, w->mark))
		client_flush(c);
	if (!client_delivered(c, w->mark)) {
		if (now - c->sendq_moved_ms < timeout_ms)
			return false;
	} else if (w->queued) {
		w->queued = false;
		return false;
	}
	if (!w->unread && client_input_pending(c)) {
		w->unread = true;
		return false;
	}
	return true;
}

/*
 * The receivers of @inv that did not ack in time: evicted, then it
 * completes; when some still have time (wait_overdue()), its deadline
 * moves on instead.
 */
static void expire(struct inval *inv)
{
	struct mm *mm = inv->mm;
	struct server *s = mm->srv;
	uint64_t now = server_now_ms(s);
	bool more = false;

	if (inv->hold && inv->acked) {
		/* the holder's part ran out of time; off the list first: progress */
		list_del(&inv->timed_link);
		inv->hold->expired(inv, inv->hold_arg);
		return;
	}
	for (unsigned int i = 0; i < inv->nwaits; i++) {
		struct receiver *r = inv->waits[i].r;
		struct ump_ev_release ev = { .error = -ETIMEDOUT };

		if (!r || r->evicted)
			continue;
		if (!wait_overdue(&inv->waits[i], now, s->opt.ack_timeout_ms)) {
			more = true;
			continue;
		}
		r->evicted = true;
		ev.interval_id = r->iv->id;
		log_info("client %llu (pid %d): evicted from interval %llu: no ack in %u ms",
			 (unsigned long long)r->client->id, (int)r->client->pid,
			 (unsigned long long)ev.interval_id, s->opt.ack_timeout_ms);
		client_send(r->client, UMP_EV_EVICTED, 0, &ev, sizeof(ev), -1);
	}
	if (more) {
		/* now + timeout is the latest deadline yet: the list stays in order */
		list_del(&inv->timed_link);
		inv->deadline_ms = now + s->opt.ack_timeout_ms;
		list_add_tail(&s->timed, &inv->timed_link);
	}
	/* completes @inv (unless more) and every other record that only waited for them */
	satisfy_matching(mm, match_evicted, NULL);
}

static void timer_cb(uv_timer_t *t)
{
	struct server *s = t->data;
	uint64_t now = server_now_ms(s);

	while (!list_empty(&s->timed)) {
		struct inval *inv = list_first_entry(&s->timed, struct inval, timed_link);

		if (inv->deadline_ms > now)
			break;
		expire(inv);
	}
	timer_arm(s);
}

static void timer_arm(struct server *s)
{
	struct inval *inv;
	uint64_t now = server_now_ms(s);

	if (list_empty(&s->timed)) {
		uv_timer_stop(&s->ack_timer);
		return;
	}
	inv = list_first_entry(&s->timed, struct inval, timed_link);
	uv_timer_start(&s->ack_timer, timer_cb, inv->deadline_ms > now ? inv->deadline_ms - now : 0,
		       0);
}

int inval_timer_init(struct server *s)
{
	int ret = uv_timer_init(s->loop, &s->ack_timer);

	s->ack_timer.data = s;
	return ret;
}
