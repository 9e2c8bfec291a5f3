/* SPDX-License-Identifier: MIT */
/*
 * proto.c - the one decoder of the umirror wire protocol.
 *
 * Everything the peer sent is checked here before any other code reads
 * it: a caller that got 0 from ump_proto_decode() may use every field of
 * the body without further range checks on lengths and counts.
 */
#include "umirror_proto.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#define MEMBER_SIZE(type, member) sizeof(((type *)0)->member)

struct type_info {
	uint16_t body;
	uint8_t fds;
	uint8_t side; /* the side that receives it */
	const char *name;
	int (*check)(const void *body); /* the fields, once the size is right */
};

const char *ump_reason_name(uint32_t reason)
{
	static const char *const names[] = {
		[UMP_REASON_WRITE] = "write",	      [UMP_REASON_REMOVE] = "remove",
		[UMP_REASON_UNMAP] = "unmap",	      [UMP_REASON_REMAP] = "remap",
		[UMP_REASON_FORK] = "fork",	      [UMP_REASON_RELEASE] = "release",
		[UMP_REASON_MIGRATE] = "migrate",     [UMP_REASON_REVALIDATE] = "revalidate",
		[UMP_REASON_PROTECT] = "protect",     [UMP_REASON_PROTECTION] = "protection",
		[UMP_REASON_UNMAPPING] = "unmapping",
	};

	if (reason == 0 || reason > UMP_REASON_MAX)
		return "?";
	return names[reason];
}

/* start/length must describe a non-empty, page-aligned, non-wrapping range */
static int check_range(uint64_t start, uint64_t length)
{
	if (length == 0 || (start & (UMP_PAGE_SIZE - 1)) || (length & (UMP_PAGE_SIZE - 1)))
		return -EINVAL;
	if (start + length < start)
		return -EINVAL;
	return 0;
}

/* status/error fields: -errno (kernel range), or 0 where success is allowed */
static int check_status(int32_t v, bool zero_ok)
{
	if (v == 0)
		return zero_ok ? 0 : -EINVAL;
	return v < 0 && v >= -4095 ? 0 : -EINVAL;
}

static int check_cstr(const char *s, size_t size)
{
	return memchr(s, '\0', size) ? 0 : -EINVAL;
}

/*
 * Field checks, one per body (the message list names them): each runs on
 * a body whose size is already known to be right.
 */
static int check_none(const void *body)
{
	return 0;
}

static int check_hello(const void *body)
{
	const struct ump_hello *m = body;

	return m->version == 0 || m->pad ? -EINVAL : 0;
}

static int check_attach(const void *body)
{
	const struct ump_attach *m = body;

	if (m->uffd_mode < UMP_UFFD_DEV || m->uffd_mode > UMP_UFFD_USER_ONLY)
		return -EINVAL;
	if (m->flags & ~UMP_ATTACH_ALL || !m->probe)
		return -EINVAL;
	return check_range(m->probe, UMP_PAGE_SIZE);
}

static int check_insert(const void *body)
{
	const struct ump_insert *m = body;

	if (m->flags & ~UMP_INSERT_ALL || m->pad)
		return -EINVAL;
	return check_range(m->start, m->length);
}

static int check_remove(const void *body)
{
	return ((const struct ump_remove *)body)->interval_id ? 0 : -EINVAL;
}

static int check_subscribe(const void *body)
{
	const struct ump_subscribe *m = body;

	if (!m->interval_id || m->pid <= 0 || m->flags & ~UMP_SUBSCRIBE_ALL)
		return -EINVAL;
	return 0;
}

static int check_snapshot(const void *body)
{
	const struct ump_snapshot *m = body;

	if (m->flags & ~UMP_SNAP_ALL || m->npages == 0 ||
	    m->npages > (UINT64_MAX >> UMP_PAGE_SHIFT))
		return -EINVAL;
	if (!m->interval_id && m->pid <= 0)
		return -EINVAL;
	return check_range(m->start, m->npages << UMP_PAGE_SHIFT);
}

static int check_ack(const void *body)
{
	const struct ump_ack *m = body;

	return m->interval_id && (m->seq & 1) ? 0 : -EINVAL;
}

static int check_watch(const void *body)
{
	const struct ump_watch *m = body;

	return m->pid < 0 || m->pad ? -EINVAL : 0;
}

static int check_fault(const void *body)
{
	const struct ump_fault *m = body;

	if (!m->interval_id || m->flags & ~UMP_FAULT_ALL || m->pad)
		return -EINVAL;
	if (m->npages == 0 || m->npages > (UINT64_MAX >> UMP_PAGE_SHIFT))
		return -EINVAL;
	return check_range(m->start, m->npages << UMP_PAGE_SHIFT);
}

static int check_trap(const void *body)
{
	const struct ump_trap *m = body;

	if (m->flags & ~UMP_TRAP_ALL || m->pad || !m->tid)
		return -EINVAL;
	if (m->reason != UMP_REASON_PROTECTION && m->reason != UMP_REASON_UNMAPPING &&
	    m->reason != UMP_REASON_REMOVE)
		return -EINVAL;
	if (m->flags & ~UMP_TRAP_CHILD) {
		uint32_t f = m->flags & ~UMP_TRAP_CHILD;

		/* one of BRK, SHMDT: an address, the daemon finds the range */
		if ((f & (f - 1)) || m->reason != UMP_REASON_UNMAPPING)
			return -EINVAL;
		if (m->start & (UMP_PAGE_SIZE - 1) || m->end || m->start2 || m->end2)
			return -EINVAL;
		return 0;
	}
	if (m->end <= m->start || check_range(m->start, m->end - m->start))
		return -EINVAL;
	if (!m->start2 && !m->end2)
		return 0;
	if (m->end2 <= m->start2)
		return -EINVAL;
	return check_range(m->start2, m->end2 - m->start2);
}

static int check_populate_done(const void *body)
{
	const struct ump_populate_done *m = body;

	if (!m->token || m->pad)
		return -EINVAL;
	return check_status(m->status, true);
}

static int check_grant(const void *body)
{
	const struct ump_grant *m = body;

	return !m->interval_id || m->flags & ~UMP_GRANT_REVOKE ? -EINVAL : 0;
}

static int check_dirty(const void *body)
{
	const struct ump_dirty *m = body;

	if (!m->interval_id || !m->max_ranges || m->flags & ~UMP_DIRTY_REARM)
		return -EINVAL;
	if (m->end <= m->start)
		return -EINVAL;
	return check_range(m->start, m->end - m->start);
}

static int check_place(const void *body)
{
	const struct ump_place *m = body;

	if (!m->interval_id || m->node < 0 || m->flags)
		return -EINVAL;
	if (m->npages == 0 || m->npages > (UINT64_MAX >> UMP_PAGE_SHIFT))
		return -EINVAL;
	return check_range(m->start, m->npages << UMP_PAGE_SHIFT);
}

static int check_revalidate(const void *body)
{
	const struct ump_revalidate *m = body;

	if (!m->interval_id || m->flags & ~UMP_REVAL_NOW)
		return -EINVAL;
	/* a period below 10 ms would turn the daemon into a busy loop */
	if (m->period_ms && m->period_ms < 10)
		return -EINVAL;
	return 0;
}

static int check_trap_handover(const void *body)
{
	const struct ump_trap_handover *m = body;

	if (m->pad)
		return -EINVAL;
	return m->what == UMP_HANDOVER_LISTENER || m->what == UMP_HANDOVER_STATE ? 0 : -EINVAL;
}

/* every reply: a status the caller can hand on as 0 / -errno */
static int check_reply(const void *body)
{
	return check_status(((const struct ump_reply_hdr *)body)->status, true);
}

/* a daemon version the client will print must be a C string */
static int check_hello_reply(const void *body)
{
	int ret = check_reply(body);

	if (ret)
		return ret;
	return check_cstr(((const struct ump_hello_reply *)body)->daemon_version,
			  MEMBER_SIZE(struct ump_hello_reply, daemon_version));
}

static int check_insert_reply(const void *body)
{
	const struct ump_insert_reply *m = body;
	int ret = check_reply(body);

	if (ret || m->r.status)
		return ret;
	if (m->slot >= UMP_SEQ_SLOTS_MAX)
		return -EINVAL;
	return m->backend == 0 || m->backend > UMP_BACKEND_MAX ? -EINVAL : 0;
}

static int check_status_reply(const void *body)
{
	int ret = check_reply(body);

	if (ret)
		return ret;
	return check_cstr(((const struct ump_status_reply *)body)->daemon_version,
			  MEMBER_SIZE(struct ump_status_reply, daemon_version));
}

static int check_ev_invalidate(const void *body)
{
	const struct ump_ev_invalidate *m = body;

	if (m->reason == 0 || m->reason > UMP_REASON_MAX)
		return -EINVAL;
	if ((m->start | m->end) & (UMP_PAGE_SIZE - 1) || m->flags & ~(UMP_INV_SYNC | UMP_INV_WATCH))
		return -EINVAL;
	return m->end > m->start ? 0 : -EINVAL;
}

static int check_ev_release(const void *body)
{
	return check_status(((const struct ump_ev_release *)body)->error, false);
}

static int check_ev_populate(const void *body)
{
	const struct ump_ev_populate *m = body;

	if (!m->token || m->flags || m->pad || (m->start | m->end) & (UMP_PAGE_SIZE - 1))
		return -EINVAL;
	return m->end > m->start ? 0 : -EINVAL;
}

static int check_ev_fork(const void *body)
{
	const struct ump_ev_fork *m = body;

	if (!m->parent_interval_id || !m->child_interval_id || m->child_pid <= 0 || m->pad)
		return -EINVAL;
	if (m->slot >= m->seq_slots || m->seq_slots > UMP_SEQ_SLOTS_MAX)
		return -EINVAL;
	return check_range(m->start, m->length);
}

/* every message fits one datagram with its fds */
#define FITS(type, name, size, nfds, side, check)                                          \
	_Static_assert(sizeof(struct ump_hdr) + (size) <= UMP_MSG_MAX, name " too large"); \
	_Static_assert((nfds) <= UMP_MSG_MAX_FDS, name " carries too many fds");
UMP_PROTO_MESSAGES(FITS)
#undef FITS

/* a switch, so that two list entries with one type value do not compile */
static const struct type_info *lookup(uint16_t type)
{
	switch (type) {
#define TYPE_CASE(type, name, size, nfds, side, chk)                                          \
	case type: {                                                                          \
		static const struct type_info info = { size, nfds, side, name, check_##chk }; \
		return &info;                                                                 \
	}
		UMP_PROTO_MESSAGES(TYPE_CASE)
#undef TYPE_CASE
	default:
		return NULL;
	}
}

long ump_proto_body_size(uint16_t type)
{
	const struct type_info *t = lookup(type);

	return t ? (long)t->body : -1;
}

unsigned int ump_proto_fds(uint16_t type)
{
	const struct type_info *t = lookup(type);

	return t ? t->fds : 0;
}

const char *ump_msg_type_name(uint16_t type)
{
	const struct type_info *t = lookup(type);

	return t ? t->name : "?";
}

int ump_proto_decode(enum ump_proto_side side, const void *buf, size_t len, unsigned int nfds,
		     struct ump_msg *out)
{
	const struct ump_hdr *h = buf;
	const struct type_info *t;

	if (!buf || len < sizeof(*h) || len > UMP_MSG_MAX || ((uintptr_t)buf & 7))
		return -EPROTO;
	if (h->magic != UMP_PROTO_MAGIC || h->version != UMP_PROTO_VERSION || h->flags)
		return -EPROTO;
	if (h->length != len)
		return -EPROTO;
	t = lookup(h->type);
	if (!t || t->side != side)
		return -EPROTO;
	if (len - sizeof(*h) != t->body || nfds != t->fds)
		return -EPROTO;
	/* requests and replies carry the request's id; events must not */
	if ((h->id != 0) != (side == UMP_SIDE_DAEMON || (h->type & UMP_REPLY)))
		return -EPROTO;

	out->hdr = h;
	out->type = h->type;
	out->id = h->id;
	out->body = (const char *)buf + sizeof(*h);
	out->body_len = t->body;
	return t->check(out->body);
}

size_t ump_proto_encode(void *buf, uint16_t type, uint64_t id, const void *body, size_t body_len)
{
	struct ump_hdr *h = buf;

	assert(sizeof(*h) + body_len <= UMP_MSG_MAX);
	memset(h, 0, sizeof(*h));
	h->magic = UMP_PROTO_MAGIC;
	h->version = UMP_PROTO_VERSION;
	h->type = type;
	h->length = (uint32_t)(sizeof(*h) + body_len);
	h->id = id;
	if (body_len)
		memcpy(h + 1, body, body_len);
	return h->length;
}
