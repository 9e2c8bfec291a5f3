/* SPDX-License-Identifier: MIT */
/*
 * test_settle - the bounded settle of a held REMOVE invalidation
 * (daemon/settle.c: step(), zap_done(), verify_rearm()), linked with the
 * floors below it only (daemon/LAYERS). Fakes: the connection
 * (client_send(), server_watch_copy()), the clock (server_now_ms()) and
 * the owner's pagemap, a temporary file at mm->pagemap_fd that the test
 * writes, read by the real pagemap.c. The owner (pid 4242, uffd -1) does
 * not exist: mm_wp() fails (ignored, as for an unmapped range) and
 * mm_lock_barrier() finds nothing to aim at, as settle.c allows.
 *
 * Checked: the record stays in flight (seq odd) until the span's pagemap
 * shows the zap, then completes (seq even); a zap never seen is given up
 * on after SETTLE_GIVE_UP_MS (100 ms) of the test's clock, not before; a
 * zap seen begun is waited for past that bound; a re-arm that never shows
 * in pagemap is redone at most SETTLE_REARM_ROUNDS (8) times, then the
 * record completes. In every case the seq ends even.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "inval.h"
#include "list.h"
#include "mm_types.h"
#include "peer.h"
#include "seq.h"
#include "server_types.h"
#include "settle.h"
#include "uapi_compat.h"

/* --- the fake connection and clock ------------------------------------------ */

/* as the daemon's clients (peer.c): a receiver is found by its interval's id */
static uint64_t receiver_id(const void *r)
{
	return ((const struct receiver *)r)->iv->id;
}

static uint64_t fake_now;
static uint64_t last_seq; /* the seq of the last EV_INVALIDATE sent */

void client_flush(struct client *c)
{
	(void)c;
}

bool client_input_pending(const struct client *c)
{
	(void)c;
	return false;
}

int client_send(struct client *c, uint16_t type, uint64_t id, const void *body, size_t len, int fd)
{
	(void)c;
	(void)id;
	(void)fd;
	if (type == UMP_EV_INVALIDATE) {
		struct ump_ev_invalidate ev;

		assert_true(len >= sizeof(ev));
		memcpy(&ev, body, sizeof(ev));
		last_seq = ev.seq;
	}
	return 0;
}

void server_watch_copy(struct server *s, pid_t pid, uid_t owner_uid,
		       const struct ump_ev_invalidate *ev)
{
}

uint64_t server_now_ms(const struct server *s)
{
	return fake_now;
}

/* --- fixture: one server, one mm, one armed interval, one sync receiver ----- */

#define IV_START 0x100000ull
#define NPAGES 4
#define SPAN_END (IV_START + NPAGES * UMP_PAGE_SIZE)

struct fix {
	uv_loop_t loop;
	struct server s;
	struct mm mm;
	struct interval iv;
	struct client a;
	struct receiver ra;
};

static void noop_hook(struct interval *iv, uint64_t start, uint64_t end)
{
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->s.loop = &f->loop;
	f->s.opt.ack_timeout_ms = 100000; /* never expires in these tests */
	f->s.hooks.explained = noop_hook;
	f->s.hooks.armed = noop_hook;
	list_init(&f->s.timed);
	list_init(&f->s.mms);
	assert_int_equal(inval_timer_init(&f->s), 0);
	assert_int_equal(settle_init(&f->s), 0);

	f->mm.srv = &f->s;
	f->mm.id = 1;
	f->mm.pid = 4242;
	f->mm.uffd = -1;
	f->mm.maps_fd = -1;
	f->mm.uffd_features = UFFD_FEATURE_WP_UNPOPULATED;
	f->mm.pagemap_fd = memfd_create("fake-pagemap", MFD_CLOEXEC);
	assert_true(f->mm.pagemap_fd >= 0);
	itree_init(&f->mm.tree);
	list_init(&f->mm.intervals);
	list_init(&f->mm.invals);
	list_init(&f->mm.wp_retry);
	list_add_tail(&f->s.mms, &f->mm.link);
	assert_int_equal(seq_area_create(&f->mm), 0);

	f->iv.mm = &f->mm;
	f->iv.id = 7;
	f->iv.node.start = IV_START;
	f->iv.node.end = IV_START + 16 * UMP_PAGE_SIZE;
	f->iv.backend = UMP_BACKEND_UFFD_WP;
	list_init(&f->iv.receivers);
	assert_int_equal(seq_slot_alloc(&f->mm, &f->iv.slot), 0);
	itree_insert(&f->mm.tree, &f->iv.node);
	list_add_tail(&f->mm.intervals, &f->iv.mm_link);

	f->a.id = 1;
	f->a.srv = &f->s;
	list_init(&f->a.receivers);
	f->ra = (struct receiver){ .iv = &f->iv, .client = &f->a, .sync = true };
	list_add_tail(&f->iv.receivers, &f->ra.iv_link);
	list_add_tail(&f->a.receivers, &f->ra.client_link);
	idmap_init(&f->a.receiver_ids, receiver_id);
	assert_int_equal(idmap_put(&f->a.receiver_ids, &f->ra), 0);

	fake_now = 1000;
	last_seq = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	inval_drop_all(&f->mm);
	settle_shutdown(&f->s);
	uv_close((uv_handle_t *)&f->s.ack_timer, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	seq_area_destroy(&f->mm);
	idmap_fini(&f->a.receiver_ids);
	close(f->mm.pagemap_fd);
	free(f);
	return 0;
}

/* the fake pagemap entry of page @i of the span */
static void set_pm(struct fix *f, unsigned int i, uint64_t e)
{
	off_t off = (off_t)(((IV_START >> UMP_PAGE_SHIFT) + i) * sizeof(e));

	assert_int_equal(pwrite(f->mm.pagemap_fd, &e, sizeof(e), off), (ssize_t)sizeof(e));
}

static void set_all(struct fix *f, uint64_t e)
{
	for (unsigned int i = 0; i < NPAGES; i++)
		set_pm(f, i, e ? e + i : 0);
}

/* present, write-protected pages (PFN 0x1000 + i) */
#define ARMED_PAGE (PM_PRESENT | PM_UFFD_WP | 0x1000)

/* the REMOVE of the span, acked: settling from now on */
static void remove_acked(struct fix *f)
{
	struct inval_hit hit = { &f->iv, IV_START, SPAN_END };
	struct ump_ack a = { .interval_id = 7 };

	assert_int_equal(settle_remove(&f->mm, IV_START, SPAN_END, &hit, 1), 0);
	assert_true(interval_seq(&f->iv) & 1);
	assert_int_equal(last_seq, interval_seq(&f->iv));
	a.seq = last_seq;
	inval_ack(&f->a, &a);
}

/*
 * One poll of the settling records, as the loop's timer makes it: its
 * callback (libuv's timer_cb field) called directly, so one call is one
 * step whatever the real time. Nothing settling: the timer never started.
 */
static void poll_once(struct fix *f)
{
	if (!list_empty(&f->s.settling))
		f->s.settle_timer.timer_cb(&f->s.settle_timer);
}

static bool in_flight(struct fix *f)
{
	return interval_seq(&f->iv) & 1;
}

/* --- tests ----------------------------------------------------------------- */

static void test_settles_when_zap_shows(void **state)
{
	struct fix *f = *state;

	set_all(f, ARMED_PAGE);
	remove_acked(f);
	assert_true(in_flight(f));
	for (int i = 0; i < 5; i++) {
		fake_now += 10;
		poll_once(f);
		assert_true(in_flight(f));
	}
	/* zapped, and the re-arm in place: uffd-wp markers on empty entries */
	set_all(f, 0);
	for (unsigned int i = 0; i < NPAGES; i++)
		set_pm(f, i, PM_UFFD_WP);
	poll_once(f);
	assert_false(in_flight(f));
	assert_true(list_empty(&f->s.settling));
	assert_true(list_empty(&f->mm.invals));
}

static void test_gives_up_after_bound(void **state)
{
	struct fix *f = *state;

	/* MADV_FREE: the event comes, nothing is zapped */
	set_all(f, ARMED_PAGE);
	remove_acked(f);
	fake_now += 99;
	poll_once(f);
	assert_true(in_flight(f));
	fake_now += 1; /* 100 ms since the acks */
	poll_once(f);
	assert_false(in_flight(f));
	assert_true(list_empty(&f->s.settling));
}

static void test_begun_zap_waited_past_bound(void **state)
{
	struct fix *f = *state;

	set_all(f, ARMED_PAGE);
	remove_acked(f);
	/* the zap has begun (page 0 gone); the others are write-protected */
	set_pm(f, 0, PM_UFFD_WP);
	fake_now += 1000;
	poll_once(f);
	assert_true(in_flight(f));
	for (unsigned int i = 1; i < NPAGES; i++)
		set_pm(f, i, PM_UFFD_WP);
	poll_once(f);
	assert_false(in_flight(f));
}

static void test_rearm_rounds_bounded(void **state)
{
	struct fix *f = *state;
	int polls = 0;
	void *p;

	/*
	 * The span must be mapped without holes (vma_covered()), else the
	 * unarmed pages are taken for holes and not re-armed: the owner's
	 * VMAs are this process's, the span mapped here.
	 */
	p = mmap((void *)IV_START, NPAGES * UMP_PAGE_SIZE, PROT_READ,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != (void *)IV_START) {
		print_message("skip: cannot map the span at %#llx\n", IV_START);
		skip();
	}
	f->mm.pid = getpid();
	set_all(f, ARMED_PAGE);
	remove_acked(f);
	/* zapped, and no re-arm ever shows in pagemap */
	set_all(f, 0);
	while (in_flight(f) && polls < 50) {
		poll_once(f);
		polls++;
	}
	assert_false(in_flight(f));
	/* the poll that saw the zap re-arms once, then 8 re-arms, then gives up */
	assert_int_equal(polls, 9);
	munmap(p, NPAGES * UMP_PAGE_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_settles_when_zap_shows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gives_up_after_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_begun_zap_waited_past_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rearm_rounds_bounded, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
