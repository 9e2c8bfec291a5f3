/* SPDX-License-Identifier: MIT */
/*
 * test_inval - the invalidation fan-out's hold/ack/evict state machine
 * (daemon/inval.c), linked with the floors below it only and a fake
 * connection: client_send(), server_watch_copy() and server_now_ms() are
 * defined here (peer.c is not linked), so every message inval.c sends is
 * recorded and the clock is the test's.
 *
 * Checked: an invalidation is in flight (seq odd) until every sync
 * receiver acked it, then complete (seq even, the explained hook called);
 * a late, repeated or wrong-seq ack changes nothing; a receiver that does
 * not ack in time is evicted (EV_EVICTED -ETIMEDOUT) and hears nothing
 * more, and the invalidation completes without it; a receiver that goes
 * away counts as acked; a send that fails is not waited for; a held
 * invalidation calls its holder after the acks and completes only when
 * the holder finishes; dropping an mm's records tells the holder; a
 * record whose only change was a re-protection (inval_armed_only()) tells
 * the scan the re-protected runs inside each hit (the armed hook) at
 * completion, and nothing is explained (no pagemap read).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>

#include "inval.h"
#include "list.h"
#include "mm_types.h"
#include "peer.h"
#include "seq.h"
#include "server_types.h"
#include "uapi_compat.h"

/* --- the fake connection ---------------------------------------------------- */

#define MAX_SENT 64

struct sent {
	struct client *c;
	uint16_t type;
	union {
		struct ump_ev_invalidate inv;
		struct ump_ev_release rel;
	} body;
};

/* as the daemon's clients (peer.c): a receiver is found by its interval's id */
static uint64_t receiver_id(const void *r)
{
	return ((const struct receiver *)r)->iv->id;
}

static struct sent sent[MAX_SENT];
static unsigned int nsent, nwatch;
static uint64_t fake_now;
static struct client *fail_send_to; /* client_send() to it fails (-EAGAIN) */
static struct client *queue_to;	    /* client_send() to it queues (peer.c's full socket) */
static struct client *unread_from;  /* client_input_pending() of it is true */

void client_flush(struct client *c)
{
	(void)c;
}

bool client_input_pending(const struct client *c)
{
	return c == unread_from;
}

int client_send(struct client *c, uint16_t type, uint64_t id, const void *body, size_t len, int fd)
{
	(void)id;
	(void)fd;
	if (c == fail_send_to)
		return -EAGAIN;
	if (c == queue_to) {
		if (c->sendq_in == c->sendq_out)
			c->sendq_moved_ms = fake_now;
		c->sendq_in++;
	}
	assert_true(nsent < MAX_SENT);
	assert_true(len <= sizeof(sent[nsent].body));
	sent[nsent].c = c;
	sent[nsent].type = type;
	memcpy(&sent[nsent].body, body, len);
	nsent++;
	return 0;
}

void server_watch_copy(struct server *s, pid_t pid, uid_t owner_uid,
		       const struct ump_ev_invalidate *ev)
{
	nwatch++;
}

uint64_t server_now_ms(const struct server *s)
{
	return fake_now;
}

/* --- fixture: one server, one mm, one interval, two sync receivers ------------ */

struct fix {
	uv_loop_t loop;
	struct server s;
	struct mm mm;
	struct interval iv;
	struct client a, b;
	struct receiver ra, rb;
	unsigned int explained;
	unsigned int narmed;
	struct mm_span armed[8]; /* the armed hook's calls */
};

static struct fix *cur;

static void explained(struct interval *iv, uint64_t start, uint64_t end)
{
	cur->explained++;
}

static void armed(struct interval *iv, uint64_t start, uint64_t end)
{
	assert_ptr_equal(iv, &cur->iv);
	assert_true(cur->narmed < 8);
	cur->armed[cur->narmed++] = (struct mm_span){ start, end };
}

static void add_receiver(struct fix *f, struct receiver *r, struct client *c)
{
	*r = (struct receiver){ .iv = &f->iv, .client = c, .sync = true };
	list_add_tail(&f->iv.receivers, &r->iv_link);
	list_add_tail(&c->receivers, &r->client_link);
	/* as receiver_new(): the ack path finds it by interval id */
	if (!c->receiver_ids.key_of)
		idmap_init(&c->receiver_ids, receiver_id);
	assert_int_equal(idmap_put(&c->receiver_ids, r), 0);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->s.loop = &f->loop;
	f->s.opt.ack_timeout_ms = 1000;
	f->s.hooks.explained = explained;
	f->s.hooks.armed = armed;
	list_init(&f->s.timed);
	list_init(&f->s.mms);
	assert_int_equal(inval_timer_init(&f->s), 0);

	f->mm.srv = &f->s;
	f->mm.id = 1;
	f->mm.pid = 4242;
	f->mm.uffd = -1;
	/* no read-faulting before an arm (dirtylog's mm_prefault) */
	f->mm.uffd_features = UFFD_FEATURE_WP_UNPOPULATED;
	itree_init(&f->mm.tree);
	list_init(&f->mm.intervals);
	list_init(&f->mm.invals);
	list_init(&f->mm.wp_retry);
	list_add_tail(&f->s.mms, &f->mm.link);
	assert_int_equal(seq_area_create(&f->mm), 0);

	f->iv.mm = &f->mm;
	f->iv.id = 7;
	f->iv.node.start = 0x100000;
	f->iv.node.end = 0x110000;
	f->iv.backend = UMP_BACKEND_UFFD_WP;
	list_init(&f->iv.receivers);
	assert_int_equal(seq_slot_alloc(&f->mm, &f->iv.slot), 0);
	itree_insert(&f->mm.tree, &f->iv.node);
	list_add_tail(&f->mm.intervals, &f->iv.mm_link);

	f->a.id = 1;
	f->b.id = 2;
	f->a.srv = f->b.srv = &f->s;
	list_init(&f->a.receivers);
	list_init(&f->b.receivers);
	add_receiver(f, &f->ra, &f->a);
	add_receiver(f, &f->rb, &f->b);

	nsent = nwatch = 0;
	fake_now = 1000;
	fail_send_to = queue_to = unread_from = NULL;
	cur = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	inval_drop_all(&f->mm);
	uv_close((uv_handle_t *)&f->s.ack_timer, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	seq_area_destroy(&f->mm);
	idmap_fini(&f->a.receiver_ids);
	idmap_fini(&f->b.receiver_ids);
	free(f);
	return 0;
}

/* an UNMAP of the whole interval: no page-table change of its own */
static void start_unmap(struct fix *f)
{
	struct inval_hit hit = { &f->iv, f->iv.node.start, f->iv.node.end };

	assert_int_equal(inval_start(&f->mm, UMP_REASON_UNMAP, hit.start, hit.end, 0, &hit, 1), 0);
}

static void ack(struct client *c, uint64_t seq)
{
	struct ump_ack a = { .interval_id = 7, .seq = seq };

	inval_ack(c, &a);
}

/* the seq sent to @c in the last EV_INVALIDATE to it */
static uint64_t sent_seq(struct client *c)
{
	for (unsigned int i = nsent; i-- > 0;)
		if (sent[i].c == c && sent[i].type == UMP_EV_INVALIDATE)
			return sent[i].body.inv.seq;
	fail_msg("no EV_INVALIDATE to client %llu", (unsigned long long)c->id);
	return 0;
}

static unsigned int count(struct client *c, uint16_t type)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < nsent; i++)
		n += sent[i].c == c && sent[i].type == type;
	return n;
}

/* --- tests ----------------------------------------------------------------- */

static void test_acks_complete(void **state)
{
	struct fix *f = *state;
	uint64_t seq;

	start_unmap(f);
	seq = interval_seq(&f->iv);
	assert_true(seq & 1);
	assert_int_equal(count(&f->a, UMP_EV_INVALIDATE), 1);
	assert_int_equal(count(&f->b, UMP_EV_INVALIDATE), 1);
	assert_int_equal(sent_seq(&f->a), seq);
	assert_true(sent[0].body.inv.flags & UMP_INV_SYNC);
	assert_int_equal(sent[0].body.inv.reason, UMP_REASON_UNMAP);
	assert_int_equal(nwatch, 1);

	ack(&f->a, seq);
	/* one of two: still in flight */
	assert_int_equal(interval_seq(&f->iv), seq);
	assert_false(list_empty(&f->mm.invals));
	assert_int_equal(f->explained, 0);

	ack(&f->b, seq);
	assert_int_equal(interval_seq(&f->iv), seq + 1);
	assert_true(list_empty(&f->mm.invals));
	assert_true(list_empty(&f->s.timed));
	assert_int_equal(f->explained, 1);
}

static void test_stray_acks_ignored(void **state)
{
	struct fix *f = *state;
	uint64_t seq;

	start_unmap(f);
	seq = interval_seq(&f->iv);
	/* a wrong seq and an ack of a client that is no receiver count for nothing */
	ack(&f->a, seq + 2);
	ack(&f->b, seq - 1);
	{
		struct client stranger = { .id = 9, .srv = &f->s };

		list_init(&stranger.receivers);
		ack(&stranger, seq);
	}
	assert_int_equal(interval_seq(&f->iv), seq);
	/* the same ack twice is one ack */
	ack(&f->a, seq);
	ack(&f->a, seq);
	assert_int_equal(interval_seq(&f->iv), seq);
	assert_false(list_empty(&f->mm.invals));
	ack(&f->b, seq);
	assert_int_equal(interval_seq(&f->iv), seq + 1);
	/* late: after completion, nothing happens */
	ack(&f->b, seq);
	ack(&f->a, seq);
	assert_int_equal(interval_seq(&f->iv), seq + 1);
	assert_int_equal(f->explained, 1);
	assert_int_equal(nsent, 2);
}

static void test_slow_receiver_evicted(void **state)
{
	struct fix *f = *state;
	uint64_t seq;

	/* the deadline is now: the timer fires on the next loop turn */
	f->s.opt.ack_timeout_ms = 0;
	start_unmap(f);
	seq = interval_seq(&f->iv);
	ack(&f->a, seq);
	assert_false(f->rb.evicted);
	fake_now++;
	uv_run(&f->loop, UV_RUN_NOWAIT);

	assert_true(f->rb.evicted);
	assert_false(f->ra.evicted);
	assert_int_equal(count(&f->b, UMP_EV_EVICTED), 1);
	assert_int_equal(count(&f->a, UMP_EV_EVICTED), 0);
	for (unsigned int i = 0; i < nsent; i++)
		if (sent[i].type == UMP_EV_EVICTED) {
			assert_int_equal(sent[i].body.rel.error, -ETIMEDOUT);
			assert_int_equal(sent[i].body.rel.interval_id, 7);
		}
	/* completed without it */
	assert_int_equal(interval_seq(&f->iv), seq + 1);
	assert_true(list_empty(&f->mm.invals));
	assert_int_equal(f->explained, 1);

	/* evicted: hears nothing more, its late ack is ignored */
	nsent = 0;
	start_unmap(f);
	assert_int_equal(count(&f->b, UMP_EV_INVALIDATE), 0);
	assert_int_equal(count(&f->a, UMP_EV_INVALIDATE), 1);
	ack(&f->b, seq);
	assert_true(interval_seq(&f->iv) & 1);
	ack(&f->a, interval_seq(&f->iv));
	assert_false(interval_seq(&f->iv) & 1);
}

/* one turn of the ack timer, @ms (the timeout) after the last */
static void next_deadline(struct fix *f, unsigned int ms)
{
	fake_now += ms;
	uv_run(&f->loop, UV_RUN_ONCE);
}

/*
 * An event that waits in the daemon's send queue (behind a burst) has
 * its ack timeout from when it reached the socket, as long as the client
 * reads; one that stopped reading is evicted as before.
 */
static void test_queued_event_timeout(void **state)
{
	struct fix *f = *state;
	const unsigned int t = 20; /* ms: the loop's timer really waits */
	uint64_t seq;

	f->s.opt.ack_timeout_ms = t;
	queue_to = &f->b;
	start_unmap(f);
	seq = interval_seq(&f->iv);
	ack(&f->a, seq);
	/* still queued, the queue moved 5 ms ago: more time */
	f->b.sendq_moved_ms = fake_now + t - 5;
	next_deadline(f, t);
	assert_false(f->rb.evicted);
	assert_int_equal(interval_seq(&f->iv), seq);
	/* delivered since: a whole timeout from this deadline */
	f->b.sendq_out = f->b.sendq_in;
	f->b.sendq_moved_ms = fake_now;
	next_deadline(f, t);
	assert_false(f->rb.evicted);
	assert_int_equal(interval_seq(&f->iv), seq);
	/* and no more */
	next_deadline(f, t);
	assert_true(f->rb.evicted);
	assert_int_equal(count(&f->b, UMP_EV_EVICTED), 1);
	assert_int_equal(interval_seq(&f->iv), seq + 1);

	/* a client whose queue did not move for a timeout: evicted at the deadline */
	f->rb.evicted = false;
	f->b.sendq_in = f->b.sendq_out = 0;
	start_unmap(f);
	seq = interval_seq(&f->iv);
	ack(&f->a, seq);
	next_deadline(f, t);
	assert_true(f->rb.evicted);
	assert_int_equal(interval_seq(&f->iv), seq + 1);
}

/* input the daemon has not read yet (maybe the ack): one more timeout, once */
static void test_unread_input_timeout(void **state)
{
	struct fix *f = *state;
	const unsigned int t = 20;
	uint64_t seq;

	f->s.opt.ack_timeout_ms = t;
	unread_from = &f->b;
	start_unmap(f);
	seq = interval_seq(&f->iv);
	ack(&f->a, seq);
	next_deadline(f, t);
	assert_false(f->rb.evicted);
	ack(&f->b, seq);
	assert_int_equal(interval_seq(&f->iv), seq + 1);

	/* input that never is the ack: evicted a timeout later */
	start_unmap(f);
	seq = interval_seq(&f->iv);
	ack(&f->a, seq);
	next_deadline(f, t);
	assert_false(f->rb.evicted);
	next_deadline(f, t);
	assert_true(f->rb.evicted);
	assert_int_equal(interval_seq(&f->iv), seq + 1);
}

static void test_release_counts_as_ack(void **state)
{
	struct fix *f = *state;
	uint64_t seq;

	start_unmap(f);
	seq = interval_seq(&f->iv);
	ack(&f->a, seq);
	/* b's subscription ends while it is waited for */
	inval_forget_receiver(&f->rb);
	assert_int_equal(interval_seq(&f->iv), seq + 1);
	assert_true(list_empty(&f->mm.invals));
}

static void test_failed_send_not_waited_for(void **state)
{
	struct fix *f = *state;

	fail_send_to = &f->b;
	start_unmap(f);
	assert_int_equal(count(&f->b, UMP_EV_INVALIDATE), 0);
	ack(&f->a, interval_seq(&f->iv));
	assert_false(interval_seq(&f->iv) & 1);
	assert_true(list_empty(&f->mm.invals));
}

struct holder {
	unsigned int acked, expired, dropped;
};

static void h_acked(struct inval *inv, void *arg)
{
	((struct holder *)arg)->acked++;
}

static void h_expired(struct inval *inv, void *arg)
{
	((struct holder *)arg)->expired++;
}

static void h_dropped(struct inval *inv, void *arg)
{
	((struct holder *)arg)->dropped++;
}

static const struct inval_hold_ops hold_ops = {
	.acked = h_acked,
	.expired = h_expired,
	.dropped = h_dropped,
};

static void test_held(void **state)
{
	struct fix *f = *state;
	struct inval_hit hit = { &f->iv, f->iv.node.start, f->iv.node.end };
	struct holder h = { 0 };
	struct inval *inv = NULL;
	uint64_t seq;

	assert_int_equal(inval_start_held(&f->mm, UMP_REASON_PROTECT, hit.start, hit.end, 0, &hit,
					  1, &hold_ops, &h, &inv),
			 0);
	assert_non_null(inv);
	seq = interval_seq(&f->iv);
	ack(&f->a, seq);
	assert_int_equal(h.acked, 0);
	ack(&f->b, seq);
	/* acks in: the holder's part runs, the seq stays odd until it is done */
	assert_int_equal(h.acked, 1);
	assert_true(inv->acked);
	assert_int_equal(interval_seq(&f->iv), seq);
	/* its holder's part has a deadline of its own */
	assert_false(list_empty(&f->s.timed));
	inval_finish(inv);
	assert_int_equal(interval_seq(&f->iv), seq + 1);
	assert_true(list_empty(&f->mm.invals));
	assert_true(list_empty(&f->s.timed));
	assert_int_equal(h.expired + h.dropped, 0);
}

static void test_held_expires_and_drops(void **state)
{
	struct fix *f = *state;
	struct inval_hit hit = { &f->iv, f->iv.node.start, f->iv.node.end };
	struct holder h = { 0 }, h2 = { 0 };
	struct inval *inv = NULL, *inv2 = NULL;

	f->s.opt.ack_timeout_ms = 0;
	assert_int_equal(inval_start_held(&f->mm, UMP_REASON_PROTECT, hit.start, hit.end, 0, &hit,
					  1, &hold_ops, &h, &inv),
			 0);
	ack(&f->a, interval_seq(&f->iv));
	ack(&f->b, interval_seq(&f->iv));
	assert_int_equal(h.acked, 1);
	/* the holder's part runs out of time: told, not evicted */
	uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(h.expired, 1);
	assert_false(f->ra.evicted || f->rb.evicted);
	inval_finish(inv);
	assert_false(interval_seq(&f->iv) & 1);

	/* the owner goes with a held record in flight: its holder hears it */
	assert_int_equal(inval_start_held(&f->mm, UMP_REASON_PROTECT, hit.start, hit.end, 0, &hit,
					  1, &hold_ops, &h2, &inv2),
			 0);
	inval_drop_all(&f->mm);
	assert_int_equal(h2.dropped, 1);
	assert_int_equal(h2.acked + h2.expired, 0);
	assert_true(list_empty(&f->mm.invals));
	assert_true(list_empty(&f->s.timed));
}

static void test_armed_only(void **state)
{
	struct fix *f = *state;
	uint64_t b = f->iv.node.start;
	/* the hit: [b + 0x2000, end); runs before, across and after its start */
	struct inval_hit hit = { &f->iv, b + 0x2000, f->iv.node.end };
	struct mm_span *runs = malloc(3 * sizeof(*runs));
	struct holder h = { 0 };
	struct inval *inv = NULL;
	uint64_t seq;

	assert_non_null(runs);
	runs[0] = (struct mm_span){ b, b + 0x1000 };
	runs[1] = (struct mm_span){ b + 0x1000, b + 0x4000 };
	runs[2] = (struct mm_span){ b + 0x8000, b + 0x9000 };
	assert_int_equal(inval_start_held(&f->mm, UMP_REASON_PROTECT, hit.start, hit.end, 0, &hit,
					  1, &hold_ops, &h, &inv),
			 0);
	inval_armed_only(inv, runs, 3);
	seq = interval_seq(&f->iv);
	ack(&f->a, seq);
	ack(&f->b, seq);
	assert_int_equal(f->narmed, 0);
	inval_finish(inv);
	assert_int_equal(interval_seq(&f->iv), seq + 1);
	assert_int_equal(f->explained, 0);
	assert_int_equal(f->narmed, 2);
	assert_int_equal(f->armed[0].start, b + 0x2000);
	assert_int_equal(f->armed[0].end, b + 0x4000);
	assert_int_equal(f->armed[1].start, b + 0x8000);
	assert_int_equal(f->armed[1].end, b + 0x9000);

	/* dropped with its runs (the owner gone): nothing told, nothing leaked */
	runs = malloc(sizeof(*runs));
	assert_non_null(runs);
	runs[0] = (struct mm_span){ b + 0x2000, b + 0x3000 };
	h = (struct holder){ 0 };
	assert_int_equal(inval_start_held(&f->mm, UMP_REASON_PROTECT, hit.start, hit.end, 0, &hit,
					  1, &hold_ops, &h, &inv),
			 0);
	inval_armed_only(inv, runs, 1);
	inval_drop_all(&f->mm);
	assert_int_equal(h.dropped, 1);
	assert_int_equal(f->narmed, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_acks_complete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stray_acks_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_receiver_evicted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queued_event_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unread_input_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_counts_as_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_send_not_waited_for, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_expires_and_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_armed_only, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
