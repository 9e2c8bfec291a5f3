/* SPDX-License-Identifier: MIT */
/*
 * test_proto.c - ump_proto_decode() / ump_proto_encode() (proto/proto.c).
 *
 * Every message type round-trips; every malformed header is -EPROTO and
 * every bad field -EINVAL, with the id still reported so that the daemon
 * can answer the request.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "umirror_proto.h"

#define ID 0x1234abcdull
#define ADDR 0x7f0000000000ull

/* receive buffer, 8-byte aligned like the callers' */
static union {
	uint64_t align;
	unsigned char b[2 * UMP_MSG_MAX];
} rx;

static struct ump_hdr *hdr(void)
{
	return (struct ump_hdr *)rx.b;
}

static void *body(void)
{
	return rx.b + sizeof(struct ump_hdr);
}

/* --- one valid sample body per type ------------------------------------ */

struct sample {
	uint16_t type;
	enum ump_proto_side side; /* the side that receives it */
	size_t len;
	union {
		struct ump_hello hello;
		struct ump_attach attach;
		struct ump_insert insert;
		struct ump_remove remove;
		struct ump_subscribe subscribe;
		struct ump_snapshot snapshot;
		struct ump_ack ack;
		struct ump_watch watch;
		struct ump_reply_hdr reply;
		struct ump_hello_reply hello_r;
		struct ump_attach_reply attach_r;
		struct ump_insert_reply insert_r;
		struct ump_subscribe_reply subscribe_r;
		struct ump_snapshot_reply snapshot_r;
		struct ump_status_reply status_r;
		struct ump_list_reply list_r;
		struct ump_ev_invalidate inv;
		struct ump_ev_release rel;
		struct ump_fault fault;
		struct ump_populate_done pop_done;
		struct ump_grant grant;
		struct ump_dirty dirty;
		struct ump_place place;
		struct ump_revalidate reval;
		struct ump_dirty_reply dirty_r;
		struct ump_place_reply place_r;
		struct ump_revalidate_reply reval_r;
		struct ump_trap trap;
		struct ump_trap_reply trap_r;
		struct ump_trap_handover handover;
		struct ump_ev_populate pop;
		struct ump_ev_fork fork;
		unsigned char bytes[UMP_MSG_MAX];
	} u;
};

#define BODY_SIZE(field) sizeof(((struct sample *)0)->u.field)
/* a braced initialiser, kept as written (clang-format would break it up) */
/* clang-format off */
#define REQ(t, field, ...) \
	{ .type = (t), .side = UMP_SIDE_DAEMON, .len = BODY_SIZE(field), .u.field = __VA_ARGS__ }
#define REP(t, field, ...) \
	{ .type = (t) | UMP_REPLY, .side = UMP_SIDE_CLIENT, .len = BODY_SIZE(field), \
	  .u.field = __VA_ARGS__ }
#define EMPTY(t) { .type = (t), .side = UMP_SIDE_DAEMON, .len = 0 }
/* clang-format on */

static const struct sample samples[] = {
	REQ(UMP_MSG_HELLO, hello, { .version = 1, .features = UMP_PFEAT_ALL }),
	REQ(UMP_MSG_ATTACH, attach, { .uffd_mode = UMP_UFFD_USER_ONLY, .probe = ADDR }),
	REQ(UMP_MSG_ATTACH, attach,
	    { .uffd_mode = UMP_UFFD_DEV, .flags = UMP_ATTACH_ASYNC, .probe = ADDR + 4096 }),
	REQ(UMP_MSG_INSERT, insert, { .start = ADDR, .length = 0x40000, .flags = UMP_INSERT_SYNC }),
	REQ(UMP_MSG_REMOVE, remove, { .interval_id = 7 }),
	REQ(UMP_MSG_SUBSCRIBE, subscribe,
	    { .interval_id = 7, .pid = 42, .flags = UMP_INSERT_SYNC }),
	REQ(UMP_MSG_SNAPSHOT, snapshot, { .interval_id = 7, .start = ADDR, .npages = 64 }),
	REQ(UMP_MSG_SNAPSHOT, snapshot, { .start = ADDR, .npages = 1, .pid = 42 }),
	REQ(UMP_MSG_ACK, ack, { .interval_id = 7, .seq = 3 }),
	EMPTY(UMP_MSG_STATUS),
	EMPTY(UMP_MSG_LIST),
	REQ(UMP_MSG_WATCH, watch, { .pid = 0 }),
	REQ(UMP_MSG_WATCH, watch, { .pid = 42 }),
	EMPTY(UMP_MSG_PING),
	REQ(UMP_MSG_FAULT, fault,
	    { .interval_id = 7, .start = ADDR, .npages = 16, .flags = UMP_FAULT_WRITE }),
	REQ(UMP_MSG_POPULATE_DONE, pop_done, { .token = 5, .status = -EFAULT }),
	REQ(UMP_MSG_GRANT, grant, { .interval_id = 7, .uid = 65534 }),
	REQ(UMP_MSG_DIRTY, dirty,
	    { .interval_id = 7,
	      .start = ADDR,
	      .end = ADDR + 0x10000,
	      .max_ranges = 64,
	      .flags = UMP_DIRTY_REARM }),
	REQ(UMP_MSG_PLACE, place, { .interval_id = 7, .start = ADDR, .npages = 4, .node = 0 }),
	REQ(UMP_MSG_REVALIDATE, reval,
	    { .interval_id = 7, .period_ms = 100, .flags = UMP_REVAL_NOW }),
	REQ(UMP_MSG_TRAP, trap,
	    { .start = ADDR, .end = ADDR + 0x2000, .reason = UMP_REASON_PROTECTION, .tid = 42 }),
	REQ(UMP_MSG_TRAP, trap,
	    { .start = ADDR,
	      .end = ADDR + 0x1000,
	      .start2 = ADDR + 0x10000,
	      .end2 = ADDR + 0x11000,
	      .reason = UMP_REASON_UNMAPPING,
	      .tid = 42 }),
	REQ(UMP_MSG_TRAP, trap,
	    { .start = ADDR, .reason = UMP_REASON_UNMAPPING, .tid = 42, .flags = UMP_TRAP_BRK }),
	REQ(UMP_MSG_TRAP, trap,
	    { .start = ADDR,
	      .end = ADDR + 0x1000,
	      .reason = UMP_REASON_PROTECTION,
	      .tid = 43,
	      .flags = UMP_TRAP_CHILD }),
	REQ(UMP_MSG_TRAP, trap,
	    { .start = ADDR,
	      .reason = UMP_REASON_UNMAPPING,
	      .tid = 43,
	      .flags = UMP_TRAP_CHILD | UMP_TRAP_SHMDT }),
	REQ(UMP_MSG_TRAP_HANDOVER, handover, { .what = UMP_HANDOVER_LISTENER }),
	REQ(UMP_MSG_TRAP_HANDOVER, handover, { .what = UMP_HANDOVER_STATE }),

	REP(UMP_MSG_HELLO, hello_r,
	    { .version = 1,
	      .result_size = 4 << 20,
	      .features = UMP_PFEAT_ALL,
	      .kfeatures = 0x7f,
	      .uffd_features = 0x1ffff,
	      .daemon_version = "0.1.0" }),
	REP(UMP_MSG_ATTACH, attach_r, { .mm_id = 3, .uffd_features = 0x1fff, .seq_slots = 4096 }),
	REP(UMP_MSG_INSERT, insert_r,
	    { .interval_id = 9, .slot = 1, .backend = UMP_BACKEND_UFFD_WP }),
	REP(UMP_MSG_REMOVE, reply, { .status = -ENOENT }),
	REP(UMP_MSG_SUBSCRIBE, subscribe_r,
	    { .start = ADDR, .length = 4096, .slot = 2, .seq_slots = 4096 }),
	REP(UMP_MSG_SNAPSHOT, snapshot_r, { .r.status = -EFAULT, .seq = 4, .npages = 64 }),
	REP(UMP_MSG_STATUS, status_r,
	    { .clients = 2,
	      .mms = 1,
	      .intervals = 3,
	      .events = 99,
	      .uptime_ms = 1000,
	      .pid = 1,
	      .daemon_version = "0.1.0" }),
	REP(UMP_MSG_LIST, list_r, { .count = 3, .offset = 64 }),
	REP(UMP_MSG_WATCH, reply, { .status = 0 }),
	REP(UMP_MSG_PING, reply, { .status = 0 }),
	REP(UMP_MSG_FAULT, snapshot_r, { .seq = 6, .npages = 16 }),
	REP(UMP_MSG_GRANT, reply, { .status = -ENOSPC }),
	REP(UMP_MSG_DIRTY, dirty_r,
	    { .count = 2, .walk_end = ADDR + 0x10000, .backend = UMP_BACKEND_WP_ASYNC }),
	REP(UMP_MSG_PLACE, place_r, { .moved = 4 }),
	REP(UMP_MSG_REVALIDATE, reval_r, { .changed = 3, .period_ms = 100 }),
	REP(UMP_MSG_TRAP, trap_r, { .hits = 2 }),

	{ .type = UMP_EV_INVALIDATE,
	  .side = UMP_SIDE_CLIENT,
	  .len = sizeof(struct ump_ev_invalidate),
	  .u.inv = { .interval_id = 7,
		     .start = ADDR,
		     .end = ADDR + 4096,
		     .seq = 5,
		     .reason = UMP_REASON_WRITE,
		     .flags = UMP_INV_SYNC,
		     .pid = 42,
		     .tid = 43 } },
	{ .type = UMP_EV_RELEASE,
	  .side = UMP_SIDE_CLIENT,
	  .len = sizeof(struct ump_ev_release),
	  .u.rel = { .interval_id = 7, .error = -EFAULT } },
	{ .type = UMP_EV_EVICTED,
	  .side = UMP_SIDE_CLIENT,
	  .len = sizeof(struct ump_ev_release),
	  .u.rel = { .interval_id = 7, .error = -ETIMEDOUT } },
	{ .type = UMP_EV_POPULATE,
	  .side = UMP_SIDE_CLIENT,
	  .len = sizeof(struct ump_ev_populate),
	  .u.pop = { .token = 5, .start = ADDR, .end = ADDR + 8192 } },
	{ .type = UMP_EV_FORK,
	  .side = UMP_SIDE_CLIENT,
	  .len = sizeof(struct ump_ev_fork),
	  .u.fork = { .parent_interval_id = 7,
		      .child_interval_id = 8,
		      .start = ADDR,
		      .length = 8192,
		      .child_pid = 43,
		      .slot = 1,
		      .seq_slots = 4096 } },
};

#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static bool is_event(uint16_t type)
{
	return type >= UMP_EV_INVALIDATE && type <= UMP_EV_FORK;
}

/* the first sample of @type */
static struct sample sample_of(uint16_t type)
{
	for (size_t i = 0; i < NSAMPLES; i++)
		if (samples[i].type == type)
			return samples[i];
	fail_msg("no sample of type %#x", type);
	return samples[0];
}

/* Encode @sm with a body of @len bytes (its own size unless testing). */
static size_t put(const struct sample *sm, size_t len)
{
	memset(&rx, 0, sizeof(rx));
	return ump_proto_encode(rx.b, sm->type, is_event(sm->type) ? 0 : ID, sm->u.bytes, len);
}

static int dec(const struct sample *sm, size_t len)
{
	struct ump_msg m;

	return ump_proto_decode(sm->side, rx.b, len, ump_proto_fds(sm->type), &m);
}

static enum ump_proto_side other(enum ump_proto_side side)
{
	return side == UMP_SIDE_DAEMON ? UMP_SIDE_CLIENT : UMP_SIDE_DAEMON;
}

/* --- tests -------------------------------------------------------------- */

static void test_roundtrip(void **state)
{
	unsigned int known = 0;

	for (size_t i = 0; i < NSAMPLES; i++) {
		const struct sample *sm = &samples[i];
		uint64_t id = is_event(sm->type) ? 0 : ID;
		struct ump_msg m;
		size_t len;

		assert_int_equal(ump_proto_body_size(sm->type), (long)sm->len);
		len = put(sm, sm->len);
		assert_int_equal(len, sizeof(struct ump_hdr) + sm->len);
		assert_int_equal(hdr()->magic, UMP_PROTO_MAGIC);
		assert_int_equal(hdr()->version, UMP_PROTO_VERSION);
		assert_int_equal(hdr()->flags, 0);
		assert_int_equal(hdr()->length, len);

		memset(&m, 0xa5, sizeof(m));
		assert_int_equal(ump_proto_decode(sm->side, rx.b, len, ump_proto_fds(sm->type), &m),
				 0);
		assert_ptr_equal(m.hdr, rx.b);
		assert_int_equal(m.type, sm->type);
		assert_int_equal(m.id, id);
		assert_int_equal(m.body_len, sm->len);
		assert_ptr_equal(m.body, body());
		assert_memory_equal(m.body, sm->u.bytes, sm->len ? sm->len : 1);
		assert_string_not_equal(ump_msg_type_name(sm->type), "?");
	}

	/* every type the decoder knows has a sample above */
	for (uint32_t type = 0; type <= UINT16_MAX; type++) {
		bool found = false;

		if (ump_proto_body_size(type) < 0)
			continue;
		for (size_t i = 0; i < NSAMPLES; i++)
			found |= samples[i].type == type;
		if (!found)
			fail_msg("type %#x (%s) has no sample", type, ump_msg_type_name(type));
		known++;
	}
	/* 19 requests, 16 replies (ACK, POPULATE_DONE, TRAP_HANDOVER have none), 5 events */
	assert_int_equal(known, 19 + 16 + 5);
}

static void test_fd_counts(void **state)
{
	assert_int_equal(ump_proto_fds(UMP_MSG_ATTACH), 1);
	assert_int_equal(ump_proto_fds(UMP_MSG_HELLO | UMP_REPLY), 1);
	assert_int_equal(ump_proto_fds(UMP_MSG_ATTACH | UMP_REPLY), 1);
	assert_int_equal(ump_proto_fds(UMP_MSG_SUBSCRIBE | UMP_REPLY), 1);
	assert_int_equal(ump_proto_fds(UMP_MSG_HELLO), 0);
	assert_int_equal(ump_proto_fds(UMP_EV_INVALIDATE), 0);
	assert_int_equal(ump_proto_fds(UMP_EV_FORK), 1);
	assert_int_equal(ump_proto_fds(UMP_MSG_TRAP_HANDOVER), 1);
	assert_int_equal(ump_proto_fds(UMP_MSG_FAULT | UMP_REPLY), 0);
	assert_int_equal(ump_proto_fds(0x7777), 0);
	assert_int_equal(ump_proto_body_size(0x7777), -1);

	for (size_t i = 0; i < NSAMPLES; i++) {
		const struct sample *sm = &samples[i];
		unsigned int fds = ump_proto_fds(sm->type);
		size_t len = put(sm, sm->len);
		struct ump_msg m;

		assert_int_equal(ump_proto_decode(sm->side, rx.b, len, fds + 1, &m), -EPROTO);
		if (fds)
			assert_int_equal(ump_proto_decode(sm->side, rx.b, len, 0, &m), -EPROTO);
	}
}

static void test_bad_header(void **state)
{
	const struct sample insert = sample_of(UMP_MSG_INSERT), *sm = &insert;
	size_t len;

	len = put(sm, sm->len);
	hdr()->magic ^= 1;
	assert_int_equal(dec(sm, len), -EPROTO);

	len = put(sm, sm->len);
	hdr()->version = UMP_PROTO_VERSION + 1;
	assert_int_equal(dec(sm, len), -EPROTO);
	hdr()->version = 0;
	assert_int_equal(dec(sm, len), -EPROTO);

	len = put(sm, sm->len);
	hdr()->flags = 1u << 31;
	assert_int_equal(dec(sm, len), -EPROTO);

	/* the length field must match what was received, both ways */
	len = put(sm, sm->len);
	hdr()->length = len + 8;
	assert_int_equal(dec(sm, len), -EPROTO);
	hdr()->length = len - 8;
	assert_int_equal(dec(sm, len), -EPROTO);
	hdr()->length = len;
	assert_int_equal(dec(sm, len + 8), -EPROTO);
	assert_int_equal(dec(sm, len), 0);
}

static void test_short_and_long(void **state)
{
	const struct sample watch = sample_of(UMP_MSG_WATCH), *sm = &watch;
	struct ump_msg m;
	size_t len = put(sm, sm->len);

	assert_int_equal(ump_proto_decode(UMP_SIDE_DAEMON, NULL, len, 0, &m), -EPROTO);
	for (size_t n = 0; n < sizeof(struct ump_hdr); n++) {
		hdr()->length = n;
		assert_int_equal(dec(sm, n), -EPROTO);
	}

	/* a header-only PING is the shortest legal message */
	len = ump_proto_encode(rx.b, UMP_MSG_PING, ID, NULL, 0);
	assert_int_equal(len, sizeof(struct ump_hdr));
	assert_int_equal(ump_proto_decode(UMP_SIDE_DAEMON, rx.b, len, 0, &m), 0);

	/* longer than UMP_MSG_MAX, with a consistent length field */
	len = ump_proto_encode(rx.b, UMP_MSG_PING, ID, NULL, 0);
	hdr()->length = UMP_MSG_MAX + 8;
	assert_int_equal(ump_proto_decode(UMP_SIDE_DAEMON, rx.b, UMP_MSG_MAX + 8, 0, &m), -EPROTO);
	hdr()->length = UMP_MSG_MAX + 1;
	assert_int_equal(ump_proto_decode(UMP_SIDE_DAEMON, rx.b, UMP_MSG_MAX + 1, 0, &m), -EPROTO);
}

static void test_unknown_type(void **state)
{
	static const uint16_t bad[] = {
		0,
		UMP_MSG_REQ_MAX + 1,
		0x00ff,
		UMP_REPLY,
		UMP_REPLY | (UMP_MSG_REQ_MAX + 1),
		UMP_REPLY | UMP_MSG_ACK,	   /* ACK has no reply */
		UMP_REPLY | UMP_MSG_POPULATE_DONE, /* neither has POPULATE_DONE */
		0x4000,
		UMP_EV_FORK + 1,
		UMP_EV_INVALIDATE | UMP_REPLY,
		0xffff,
	};
	struct ump_msg m;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* a body of 16 bytes, the size of many real types */
		static const uint64_t zero[2];
		size_t len = ump_proto_encode(rx.b, bad[i], ID, zero, sizeof(zero));

		assert_int_equal(ump_proto_body_size(bad[i]), -1);
		assert_string_equal(ump_msg_type_name(bad[i]), "?");
		assert_int_equal(ump_proto_decode(UMP_SIDE_DAEMON, rx.b, len, 0, &m), -EPROTO);
		assert_int_equal(ump_proto_decode(UMP_SIDE_CLIENT, rx.b, len, 0, &m), -EPROTO);
		hdr()->id = 0;
		assert_int_equal(ump_proto_decode(UMP_SIDE_CLIENT, rx.b, len, 0, &m), -EPROTO);
	}
}

static void test_wrong_side(void **state)
{
	for (size_t i = 0; i < NSAMPLES; i++) {
		const struct sample *sm = &samples[i];
		size_t len = put(sm, sm->len);
		struct ump_msg m;

		assert_int_equal(
			ump_proto_decode(other(sm->side), rx.b, len, ump_proto_fds(sm->type), &m),
			-EPROTO);
		/* flipping the id does not make it legal there either */
		hdr()->id = hdr()->id ? 0 : ID;
		assert_int_equal(
			ump_proto_decode(other(sm->side), rx.b, len, ump_proto_fds(sm->type), &m),
			-EPROTO);
	}
}

static void test_body_size(void **state)
{
	for (size_t i = 0; i < NSAMPLES; i++) {
		const struct sample *sm = &samples[i];
		size_t len;

		len = put(sm, sm->len + 1);
		assert_int_equal(dec(sm, len), -EPROTO);
		len = put(sm, sm->len + 8);
		assert_int_equal(dec(sm, len), -EPROTO);
		if (sm->len) {
			len = put(sm, sm->len - 1);
			assert_int_equal(dec(sm, len), -EPROTO);
		}
		len = put(sm, sm->len);
		assert_int_equal(dec(sm, len), 0);
	}
}

static void test_ids(void **state)
{
	for (size_t i = 0; i < NSAMPLES; i++) {
		const struct sample *sm = &samples[i];
		size_t len = put(sm, sm->len);

		/* requests and replies need the id, events must have none */
		hdr()->id = is_event(sm->type) ? 1 : 0;
		assert_int_equal(dec(sm, len), -EPROTO);
		hdr()->id = is_event(sm->type) ? 0 : UINT64_MAX;
		assert_int_equal(dec(sm, len), 0);
	}
}

/*
 * A bad field: -EINVAL, and out still names the message (type, id, body)
 * so that the daemon can answer the request with -EINVAL.
 */
static void expect_einval(const struct sample *sm)
{
	struct ump_msg m;
	size_t len;

	memset(&m, 0, sizeof(m));
	len = ump_proto_encode(rx.b, sm->type, is_event(sm->type) ? 0 : ID, sm->u.bytes, sm->len);
	assert_int_equal(ump_proto_decode(sm->side, rx.b, len, ump_proto_fds(sm->type), &m),
			 -EINVAL);
	assert_int_equal(m.type, sm->type);
	assert_int_equal(m.id, is_event(sm->type) ? 0 : ID);
	assert_ptr_equal(m.body, body());
	assert_int_equal(m.body_len, sm->len);

	/* a header error wins over a field error */
	assert_int_equal(ump_proto_decode(sm->side, rx.b, len, ump_proto_fds(sm->type) + 1, &m),
			 -EPROTO);
}

static void test_fields_requests(void **state)
{
	struct sample t, base;

	base = sample_of(UMP_MSG_HELLO);
	t = base;
	t.u.hello.version = 0;
	expect_einval(&t);
	t = base;
	t.u.hello.pad = 1;
	expect_einval(&t);

	base = sample_of(UMP_MSG_ATTACH);
	t = base;
	t.u.attach.uffd_mode = 0;
	expect_einval(&t);
	t = base;
	t.u.attach.uffd_mode = UMP_UFFD_USER_ONLY + 1;
	expect_einval(&t);
	t = base;
	t.u.attach.flags = UMP_ATTACH_ALL + 1;
	expect_einval(&t);
	t = base;
	t.u.attach.probe = 0;
	expect_einval(&t);
	t = base;
	t.u.attach.probe = ADDR + 1;
	expect_einval(&t);
	t = base;
	t.u.attach.probe = ADDR + 2048;
	expect_einval(&t);
	t = base;
	t.u.attach.probe = UINT64_MAX - 4095;
	expect_einval(&t);

	base = sample_of(UMP_MSG_INSERT);
	t = base;
	t.u.insert.start = ADDR + 1;
	expect_einval(&t);
	t = base;
	t.u.insert.start = ADDR + 2048;
	expect_einval(&t);
	t = base;
	t.u.insert.length = 4095;
	expect_einval(&t);
	t = base;
	t.u.insert.length = 4097;
	expect_einval(&t);
	t = base;
	t.u.insert.length = 0;
	expect_einval(&t);
	t = base;
	t.u.insert.start = UINT64_MAX - 4095;
	t.u.insert.length = 8192;
	expect_einval(&t);
	/* ends exactly at 2^64: not representable as an exclusive end */
	t = base;
	t.u.insert.start = UINT64_MAX - 4095;
	t.u.insert.length = 4096;
	expect_einval(&t);
	t = base;
	t.u.insert.length = UINT64_MAX - 4095;
	expect_einval(&t);
	t = base;
	t.u.insert.flags = UMP_INSERT_ALL + 1;
	expect_einval(&t);
	t = base;
	t.u.insert.pad = 1;
	expect_einval(&t);

	base = sample_of(UMP_MSG_REMOVE);
	t = base;
	t.u.remove.interval_id = 0;
	expect_einval(&t);

	base = sample_of(UMP_MSG_SUBSCRIBE);
	t = base;
	t.u.subscribe.interval_id = 0;
	expect_einval(&t);
	t = base;
	t.u.subscribe.pid = 0;
	expect_einval(&t);
	t = base;
	t.u.subscribe.pid = -1;
	expect_einval(&t);
	t = base;
	t.u.subscribe.flags = 2;
	expect_einval(&t);

	base = sample_of(UMP_MSG_SNAPSHOT); /* by interval id */
	t = base;
	t.u.snapshot.start = ADDR + 8;
	expect_einval(&t);
	t = base;
	t.u.snapshot.npages = 0;
	expect_einval(&t);
	t = base;
	t.u.snapshot.npages = 1ull << 52;
	expect_einval(&t); /* npages << 12 overflows */
	t = base;
	t.u.snapshot.npages = UINT64_MAX;
	expect_einval(&t);
	t = base;
	t.u.snapshot.start = 4096;
	t.u.snapshot.npages = (1ull << 52) - 1;
	expect_einval(&t); /* start + length wraps to 0 */
	t = base;
	t.u.snapshot.start = UINT64_MAX - 4095;
	t.u.snapshot.npages = 2;
	expect_einval(&t);
	t = base;
	t.u.snapshot.flags = UMP_SNAP_ALL + 1;
	expect_einval(&t);
	t = base;
	t.u.snapshot.interval_id = 0;
	t.u.snapshot.pid = 0;
	expect_einval(&t);
	t = base;
	t.u.snapshot.interval_id = 0;
	t.u.snapshot.pid = -3;
	expect_einval(&t);

	base = sample_of(UMP_MSG_ACK);
	t = base;
	t.u.ack.seq = 4;
	expect_einval(&t);
	t = base;
	t.u.ack.seq = 0;
	expect_einval(&t);
	t = base;
	t.u.ack.interval_id = 0;
	expect_einval(&t);

	base = sample_of(UMP_MSG_WATCH);
	t = base;
	t.u.watch.pid = -1;
	expect_einval(&t);
	t = base;
	t.u.watch.pad = 1;
	expect_einval(&t);

	base = sample_of(UMP_MSG_FAULT);
	t = base;
	t.u.fault.interval_id = 0;
	expect_einval(&t);
	t = base;
	t.u.fault.flags = UMP_FAULT_ALL + 1;
	expect_einval(&t);
	t = base;
	t.u.fault.pad = 1;
	expect_einval(&t);
	t = base;
	t.u.fault.npages = 0;
	expect_einval(&t);
	t = base;
	t.u.fault.npages = 1ull << 52;
	expect_einval(&t);
	t = base;
	t.u.fault.start = ADDR + 4;
	expect_einval(&t);
	t = base;
	t.u.fault.start = UINT64_MAX - 4095;
	t.u.fault.npages = 2;
	expect_einval(&t);

	base = sample_of(UMP_MSG_POPULATE_DONE);
	t = base;
	t.u.pop_done.token = 0;
	expect_einval(&t);
	t = base;
	t.u.pop_done.status = 1;
	expect_einval(&t);
	t = base;
	t.u.pop_done.status = -4096;
	expect_einval(&t);
	t = base;
	t.u.pop_done.pad = 1;
	expect_einval(&t);

	base = sample_of(UMP_MSG_GRANT);
	t = base;
	t.u.grant.interval_id = 0;
	expect_einval(&t);
	t = base;
	t.u.grant.flags = UMP_GRANT_REVOKE << 1;
	expect_einval(&t);

	base = sample_of(UMP_MSG_DIRTY);
	t = base;
	t.u.dirty.interval_id = 0;
	expect_einval(&t);
	t = base;
	t.u.dirty.max_ranges = 0;
	expect_einval(&t);
	t = base;
	t.u.dirty.flags = UMP_DIRTY_REARM << 1;
	expect_einval(&t);
	t = base;
	t.u.dirty.end = t.u.dirty.start;
	expect_einval(&t);
	t = base;
	t.u.dirty.end = t.u.dirty.start - 4096;
	expect_einval(&t);
	t = base;
	t.u.dirty.end += 1;
	expect_einval(&t);
	t = base;
	t.u.dirty.start += 1;
	expect_einval(&t);

	base = sample_of(UMP_MSG_PLACE);
	t = base;
	t.u.place.interval_id = 0;
	expect_einval(&t);
	t = base;
	t.u.place.node = -1;
	expect_einval(&t);
	t = base;
	t.u.place.flags = 1;
	expect_einval(&t);
	t = base;
	t.u.place.npages = 0;
	expect_einval(&t);
	t = base;
	t.u.place.npages = UINT64_MAX;
	expect_einval(&t);

	base = sample_of(UMP_MSG_REVALIDATE);
	t = base;
	t.u.reval.interval_id = 0;
	expect_einval(&t);
	t = base;
	t.u.reval.period_ms = 9;
	expect_einval(&t);
	t = base;
	t.u.reval.flags = UMP_REVAL_NOW << 1;
	expect_einval(&t);

	base = sample_of(UMP_MSG_TRAP);
	t = base;
	t.u.trap.tid = 0;
	expect_einval(&t);
	t = base;
	t.u.trap.reason = UMP_REASON_WRITE;
	expect_einval(&t);
	t = base;
	t.u.trap.end = t.u.trap.start;
	expect_einval(&t);
	t = base;
	t.u.trap.end += 1;
	expect_einval(&t);
	t = base;
	t.u.trap.start2 = ADDR + 0x30000; /* a second range that ends before it starts */
	t.u.trap.end2 = ADDR + 0x20000;
	expect_einval(&t);
	t = base;
	t.u.trap.flags = UMP_TRAP_BRK | UMP_TRAP_SHMDT;
	t.u.trap.end = 0;
	t.u.trap.reason = UMP_REASON_UNMAPPING;
	expect_einval(&t);
	t = base;
	t.u.trap.flags = UMP_TRAP_SHMDT; /* an address only */
	t.u.trap.reason = UMP_REASON_UNMAPPING;
	expect_einval(&t);
	t = base;
	t.u.trap.flags = UMP_TRAP_ALL << 1;
	expect_einval(&t);
	t = base;
	t.u.trap.flags = UMP_TRAP_CHILD | UMP_TRAP_BRK | UMP_TRAP_SHMDT;
	t.u.trap.end = 0;
	t.u.trap.reason = UMP_REASON_UNMAPPING;
	expect_einval(&t);
	t = base;
	t.u.trap.pad = 1;
	expect_einval(&t);

	base = sample_of(UMP_MSG_TRAP_HANDOVER);
	t = base;
	t.u.handover.what = 0;
	expect_einval(&t);
	t = base;
	t.u.handover.what = UMP_HANDOVER_STATE + 1;
	expect_einval(&t);
	t = base;
	t.u.handover.pad = 1;
	expect_einval(&t);
}

static void test_fields_client(void **state)
{
	struct sample t, base;

	base = sample_of(UMP_EV_INVALIDATE);
	t = base;
	t.u.inv.reason = 0;
	expect_einval(&t);
	t = base;
	t.u.inv.reason = UMP_REASON_MAX + 1;
	expect_einval(&t);
	t = base;
	t.u.inv.end = t.u.inv.start;
	expect_einval(&t);
	t = base;
	t.u.inv.end = t.u.inv.start - 4096;
	expect_einval(&t);
	t = base;
	t.u.inv.start += 1;
	expect_einval(&t);
	t = base;
	t.u.inv.end += 1;
	expect_einval(&t);
	t = base;
	t.u.inv.flags = 1u << 2;
	expect_einval(&t);
	for (uint32_t r = 1; r <= UMP_REASON_MAX; r++) {
		t = base;
		t.u.inv.reason = r;
		put(&t, t.len);
		assert_int_equal(dec(&t, sizeof(struct ump_hdr) + t.len), 0);
	}

	base = sample_of(UMP_EV_RELEASE);
	t = base;
	t.u.rel.error = 0;
	expect_einval(&t);
	t = base;
	t.u.rel.error = 5;
	expect_einval(&t);
	t = base;
	t.u.rel.error = -4096;
	expect_einval(&t);
	base = sample_of(UMP_EV_EVICTED);
	t = base;
	t.u.rel.error = 0;
	expect_einval(&t);

	base = sample_of(UMP_EV_POPULATE);
	t = base;
	t.u.pop.token = 0;
	expect_einval(&t);
	t = base;
	t.u.pop.end = t.u.pop.start;
	expect_einval(&t);
	t = base;
	t.u.pop.start += 2;
	expect_einval(&t);
	t = base;
	t.u.pop.flags = 1;
	expect_einval(&t);

	base = sample_of(UMP_EV_FORK);
	t = base;
	t.u.fork.parent_interval_id = 0;
	expect_einval(&t);
	t = base;
	t.u.fork.child_interval_id = 0;
	expect_einval(&t);
	t = base;
	t.u.fork.child_pid = 0;
	expect_einval(&t);
	t = base;
	t.u.fork.slot = t.u.fork.seq_slots;
	expect_einval(&t);
	t = base;
	t.u.fork.length = 0;
	expect_einval(&t);
	t = base;
	t.u.fork.pad = 1;
	expect_einval(&t);

	/* a successful INSERT names a backend the client knows */
	base = sample_of(UMP_MSG_INSERT | UMP_REPLY);
	t = base;
	t.u.insert_r.backend = 0;
	expect_einval(&t);
	t = base;
	t.u.insert_r.backend = UMP_BACKEND_MAX + 1;
	expect_einval(&t);
	/* a failed one names none: the error reply is all zero but its status */
	t = base;
	t.u.insert_r.backend = 0;
	t.u.insert_r.r.status = -ENOSPC;
	put(&t, t.len);
	assert_int_equal(dec(&t, sizeof(struct ump_hdr) + t.len), 0);

	/* reply statuses are 0 or -errno */
	for (size_t i = 0; i < NSAMPLES; i++) {
		if (!(samples[i].type & UMP_REPLY))
			continue;
		t = samples[i];
		t.u.reply.status = 1;
		expect_einval(&t);
		t = samples[i];
		t.u.reply.status = INT32_MIN;
		expect_einval(&t);
	}

	/* a daemon version without its NUL */
	t = sample_of(UMP_MSG_HELLO | UMP_REPLY);
	memset(t.u.hello_r.daemon_version, 'v', sizeof(t.u.hello_r.daemon_version));
	expect_einval(&t);
	t = sample_of(UMP_MSG_STATUS | UMP_REPLY);
	memset(t.u.status_r.daemon_version, 'v', sizeof(t.u.status_r.daemon_version));
	expect_einval(&t);
	t.u.status_r.daemon_version[31] = '\0';
	put(&t, t.len);
	assert_int_equal(dec(&t, sizeof(struct ump_hdr) + t.len), 0);
}

static void test_unaligned(void **state)
{
	static union {
		uint64_t align;
		unsigned char b[UMP_MSG_MAX + 16];
	} raw;
	const struct sample *sm = &samples[0];
	struct ump_msg m;
	size_t len = put(sm, sm->len);

	for (size_t off = 1; off < 8; off++) {
		memcpy(raw.b + off, rx.b, len);
		assert_int_equal(ump_proto_decode(sm->side, raw.b + off, len, 0, &m), -EPROTO);
	}
	memcpy(raw.b + 8, rx.b, len);
	assert_int_equal(ump_proto_decode(sm->side, raw.b + 8, len, 0, &m), 0);
}

static void test_names(void **state)
{
	assert_string_equal(ump_reason_name(UMP_REASON_WRITE), "write");
	assert_string_equal(ump_reason_name(UMP_REASON_REMOVE), "remove");
	assert_string_equal(ump_reason_name(UMP_REASON_UNMAP), "unmap");
	assert_string_equal(ump_reason_name(UMP_REASON_REMAP), "remap");
	assert_string_equal(ump_reason_name(UMP_REASON_FORK), "fork");
	assert_string_equal(ump_reason_name(UMP_REASON_RELEASE), "release");
	assert_string_equal(ump_reason_name(UMP_REASON_MIGRATE), "migrate");
	assert_string_equal(ump_reason_name(UMP_REASON_REVALIDATE), "revalidate");
	assert_string_equal(ump_reason_name(UMP_REASON_PROTECT), "protect");
	assert_string_equal(ump_reason_name(0), "?");
	assert_string_equal(ump_reason_name(UMP_REASON_MAX + 1), "?");
	assert_string_equal(ump_reason_name(UINT32_MAX), "?");
	assert_string_equal(ump_msg_type_name(UMP_MSG_SNAPSHOT | UMP_REPLY), "SNAPSHOT|REPLY");
	assert_string_equal(ump_msg_type_name(UMP_EV_INVALIDATE), "INVALIDATE");
	assert_string_equal(ump_msg_type_name(UMP_MSG_HELLO), "HELLO");
	assert_string_equal(ump_msg_type_name(0x7777), "?");

	/* a reply is named after its request, in the one message list */
	for (size_t i = 0; i < NSAMPLES; i++) {
		char want[64];

		if (!(samples[i].type & UMP_REPLY))
			continue;
		snprintf(want, sizeof(want), "%s|REPLY",
			 ump_msg_type_name(samples[i].type & ~UMP_REPLY));
		assert_string_equal(ump_msg_type_name(samples[i].type), want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),	cmocka_unit_test(test_fd_counts),
		cmocka_unit_test(test_bad_header),	cmocka_unit_test(test_short_and_long),
		cmocka_unit_test(test_unknown_type),	cmocka_unit_test(test_wrong_side),
		cmocka_unit_test(test_body_size),	cmocka_unit_test(test_ids),
		cmocka_unit_test(test_fields_requests), cmocka_unit_test(test_fields_client),
		cmocka_unit_test(test_unaligned),	cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
