/* SPDX-License-Identifier: MIT */
/*
 * proto.c - the one decoder of the umirror wire protocol.
 *
 * Everything the peer sent is checked here before any other code reads
 * it: a caller that got 0 from um_proto_decode() may use every field of
 * the body without further range checks on lengths and counts.
 */
#include "umirror_proto.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#define PAGE_MASK_4K 4095ull
#define MEMBER_SIZE(type, member) sizeof(((type *)0)->member)

struct type_info {
	uint16_t type;
	uint16_t body;
	uint8_t fds;
	uint8_t side; /* the side that receives it */
	const char *name;
};

static const struct type_info types[] = {
	{ UM_MSG_HELLO, sizeof(struct um_hello), 0, UM_SIDE_DAEMON, "HELLO" },
	{ UM_MSG_ATTACH, sizeof(struct um_attach), 1, UM_SIDE_DAEMON, "ATTACH" },
	{ UM_MSG_INSERT, sizeof(struct um_insert), 0, UM_SIDE_DAEMON, "INSERT" },
	{ UM_MSG_REMOVE, sizeof(struct um_remove), 0, UM_SIDE_DAEMON, "REMOVE" },
	{ UM_MSG_SUBSCRIBE, sizeof(struct um_subscribe), 0, UM_SIDE_DAEMON, "SUBSCRIBE" },
	{ UM_MSG_SNAPSHOT, sizeof(struct um_snapshot), 0, UM_SIDE_DAEMON, "SNAPSHOT" },
	{ UM_MSG_ACK, sizeof(struct um_ack), 0, UM_SIDE_DAEMON, "ACK" },
	{ UM_MSG_STATUS, 0, 0, UM_SIDE_DAEMON, "STATUS" },
	{ UM_MSG_LIST, 0, 0, UM_SIDE_DAEMON, "LIST" },
	{ UM_MSG_WATCH, sizeof(struct um_watch), 0, UM_SIDE_DAEMON, "WATCH" },
	{ UM_MSG_PING, 0, 0, UM_SIDE_DAEMON, "PING" },
	{ UM_MSG_FAULT, sizeof(struct um_fault), 0, UM_SIDE_DAEMON, "FAULT" },
	{ UM_MSG_POPULATE_DONE, sizeof(struct um_populate_done), 0, UM_SIDE_DAEMON, "POPULATE_DONE" },
	{ UM_MSG_GRANT, sizeof(struct um_grant), 0, UM_SIDE_DAEMON, "GRANT" },
	{ UM_MSG_DIRTY, sizeof(struct um_dirty), 0, UM_SIDE_DAEMON, "DIRTY" },
	{ UM_MSG_PLACE, sizeof(struct um_place), 0, UM_SIDE_DAEMON, "PLACE" },
	{ UM_MSG_REVALIDATE, sizeof(struct um_revalidate), 0, UM_SIDE_DAEMON, "REVALIDATE" },

	{ UM_MSG_HELLO | UM_REPLY, sizeof(struct um_hello_reply), 1, UM_SIDE_CLIENT, "HELLO|REPLY" },
	{ UM_MSG_ATTACH | UM_REPLY, sizeof(struct um_attach_reply), 1, UM_SIDE_CLIENT, "ATTACH|REPLY" },
	{ UM_MSG_INSERT | UM_REPLY, sizeof(struct um_insert_reply), 0, UM_SIDE_CLIENT, "INSERT|REPLY" },
	{ UM_MSG_REMOVE | UM_REPLY, sizeof(struct um_reply_hdr), 0, UM_SIDE_CLIENT, "REMOVE|REPLY" },
	{ UM_MSG_SUBSCRIBE | UM_REPLY, sizeof(struct um_subscribe_reply), 1, UM_SIDE_CLIENT, "SUBSCRIBE|REPLY" },
	{ UM_MSG_SNAPSHOT | UM_REPLY, sizeof(struct um_snapshot_reply), 0, UM_SIDE_CLIENT, "SNAPSHOT|REPLY" },
	{ UM_MSG_STATUS | UM_REPLY, sizeof(struct um_status_reply), 0, UM_SIDE_CLIENT, "STATUS|REPLY" },
	{ UM_MSG_LIST | UM_REPLY, sizeof(struct um_list_reply), 0, UM_SIDE_CLIENT, "LIST|REPLY" },
	{ UM_MSG_WATCH | UM_REPLY, sizeof(struct um_reply_hdr), 0, UM_SIDE_CLIENT, "WATCH|REPLY" },
	{ UM_MSG_PING | UM_REPLY, sizeof(struct um_reply_hdr), 0, UM_SIDE_CLIENT, "PING|REPLY" },
	{ UM_MSG_FAULT | UM_REPLY, sizeof(struct um_snapshot_reply), 0, UM_SIDE_CLIENT, "FAULT|REPLY" },
	{ UM_MSG_GRANT | UM_REPLY, sizeof(struct um_reply_hdr), 0, UM_SIDE_CLIENT, "GRANT|REPLY" },
	{ UM_MSG_DIRTY | UM_REPLY, sizeof(struct um_dirty_reply), 0, UM_SIDE_CLIENT, "DIRTY|REPLY" },
	{ UM_MSG_PLACE | UM_REPLY, sizeof(struct um_place_reply), 0, UM_SIDE_CLIENT, "PLACE|REPLY" },
	{ UM_MSG_REVALIDATE | UM_REPLY, sizeof(struct um_revalidate_reply), 0, UM_SIDE_CLIENT, "REVALIDATE|REPLY" },

	{ UM_EV_INVALIDATE, sizeof(struct um_ev_invalidate), 0, UM_SIDE_CLIENT, "INVALIDATE" },
	{ UM_EV_RELEASE, sizeof(struct um_ev_release), 0, UM_SIDE_CLIENT, "RELEASE" },
	{ UM_EV_EVICTED, sizeof(struct um_ev_release), 0, UM_SIDE_CLIENT, "EVICTED" },
	{ UM_EV_POPULATE, sizeof(struct um_ev_populate), 0, UM_SIDE_CLIENT, "POPULATE" },
	{ UM_EV_FORK, sizeof(struct um_ev_fork), 1, UM_SIDE_CLIENT, "FORK" },
};

static const struct type_info *lookup(uint16_t type)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == type)
			return &types[i];
	return NULL;
}

long um_proto_body_size(uint16_t type)
{
	const struct type_info *t = lookup(type);

	return t ? (long)t->body : -1;
}

unsigned int um_proto_fds(uint16_t type)
{
	const struct type_info *t = lookup(type);

	return t ? t->fds : 0;
}

const char *um_msg_type_name(uint16_t type)
{
	const struct type_info *t = lookup(type);

	return t ? t->name : "?";
}

const char *um_reason_name(uint32_t reason)
{
	static const char *const names[] = {
		[UMP_REASON_WRITE] = "write",   [UMP_REASON_REMOVE] = "remove",
		[UMP_REASON_UNMAP] = "unmap",   [UMP_REASON_REMAP] = "remap",
		[UMP_REASON_FORK] = "fork",     [UMP_REASON_RELEASE] = "release",
		[UMP_REASON_MIGRATE] = "migrate", [UMP_REASON_REVALIDATE] = "revalidate",
		[UMP_REASON_PROTECT] = "protect",
	};

	if (reason == 0 || reason > UMP_REASON_MAX)
		return "?";
	return names[reason];
}

/* start/length must describe a non-empty, page-aligned, non-wrapping range */
static int check_range(uint64_t start, uint64_t length)
{
	if (length == 0 || (start & PAGE_MASK_4K) || (length & PAGE_MASK_4K))
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

/* Field checks for a body whose size is already known to be right. */
static int check_body(uint16_t type, const void *body)
{
	int ret;

	switch (type) {
	case UM_MSG_HELLO: {
		const struct um_hello *m = body;

		return m->version == 0 || m->pad ? -EINVAL : 0;
	}
	case UM_MSG_ATTACH: {
		const struct um_attach *m = body;

		if (m->uffd_mode < UMP_UFFD_DEV || m->uffd_mode > UMP_UFFD_USER_ONLY)
			return -EINVAL;
		if (m->flags & ~UM_ATTACH_ALL || !m->probe)
			return -EINVAL;
		return check_range(m->probe, PAGE_MASK_4K + 1);
	}
	case UM_MSG_INSERT: {
		const struct um_insert *m = body;

		if (m->flags & ~UM_INSERT_ALL || m->pad)
			return -EINVAL;
		return check_range(m->start, m->length);
	}
	case UM_MSG_REMOVE:
		return ((const struct um_remove *)body)->interval_id ? 0 : -EINVAL;
	case UM_MSG_SUBSCRIBE: {
		const struct um_subscribe *m = body;

		if (!m->interval_id || m->pid <= 0 || m->flags & ~UM_SUBSCRIBE_ALL)
			return -EINVAL;
		return 0;
	}
	case UM_MSG_SNAPSHOT: {
		const struct um_snapshot *m = body;

		if (m->flags & ~UM_SNAP_ALL || m->npages == 0 || m->npages > (UINT64_MAX >> 12))
			return -EINVAL;
		if (!m->interval_id && m->pid <= 0)
			return -EINVAL;
		return check_range(m->start, m->npages << 12);
	}
	case UM_MSG_FAULT: {
		const struct um_fault *m = body;

		if (!m->interval_id || m->flags & ~UM_FAULT_ALL || m->pad)
			return -EINVAL;
		if (m->npages == 0 || m->npages > (UINT64_MAX >> 12))
			return -EINVAL;
		return check_range(m->start, m->npages << 12);
	}
	case UM_MSG_POPULATE_DONE: {
		const struct um_populate_done *m = body;

		if (!m->token || m->pad)
			return -EINVAL;
		return check_status(m->status, true);
	}
	case UM_MSG_GRANT: {
		const struct um_grant *m = body;

		return !m->interval_id || m->flags & ~UM_GRANT_REVOKE ? -EINVAL : 0;
	}
	case UM_MSG_DIRTY: {
		const struct um_dirty *m = body;

		if (!m->interval_id || !m->max_ranges || m->flags & ~UM_DIRTY_REARM)
			return -EINVAL;
		if (m->end <= m->start)
			return -EINVAL;
		return check_range(m->start, m->end - m->start);
	}
	case UM_MSG_PLACE: {
		const struct um_place *m = body;

		if (!m->interval_id || m->node < 0 || m->flags)
			return -EINVAL;
		if (m->npages == 0 || m->npages > (UINT64_MAX >> 12))
			return -EINVAL;
		return check_range(m->start, m->npages << 12);
	}
	case UM_MSG_REVALIDATE: {
		const struct um_revalidate *m = body;

		if (!m->interval_id || m->flags & ~UM_REVAL_NOW)
			return -EINVAL;
		/* a period below 10 ms would turn the daemon into a busy loop */
		if (m->period_ms && m->period_ms < 10)
			return -EINVAL;
		return 0;
	}
	case UM_EV_POPULATE: {
		const struct um_ev_populate *m = body;

		if (!m->token || m->flags || m->pad || (m->start | m->end) & PAGE_MASK_4K)
			return -EINVAL;
		return m->end > m->start ? 0 : -EINVAL;
	}
	case UM_EV_FORK: {
		const struct um_ev_fork *m = body;

		if (!m->parent_interval_id || !m->child_interval_id || m->child_pid <= 0 || m->pad)
			return -EINVAL;
		if (m->slot >= m->seq_slots)
			return -EINVAL;
		return check_range(m->start, m->length);
	}
	case UM_MSG_ACK: {
		const struct um_ack *m = body;

		return m->interval_id && (m->seq & 1) ? 0 : -EINVAL;
	}
	case UM_MSG_WATCH: {
		const struct um_watch *m = body;

		return m->pid < 0 || m->pad ? -EINVAL : 0;
	}
	case UM_EV_INVALIDATE: {
		const struct um_ev_invalidate *m = body;

		if (m->reason == 0 || m->reason > UMP_REASON_MAX)
			return -EINVAL;
		if ((m->start | m->end) & PAGE_MASK_4K || m->flags & ~(UM_INV_SYNC | UM_INV_WATCH))
			return -EINVAL;
		return m->end > m->start ? 0 : -EINVAL;
	}
	case UM_EV_RELEASE:
	case UM_EV_EVICTED:
		return check_status(((const struct um_ev_release *)body)->error, false);
	default:
		break;
	}
	if (!(type & UM_REPLY))
		return 0;
	/* every reply: a status the caller can hand on as 0 / -errno */
	ret = check_status(((const struct um_reply_hdr *)body)->status, true);
	if (ret)
		return ret;
	/* a daemon version the client will print must be a C string */
	if (type == (UM_MSG_HELLO | UM_REPLY))
		return check_cstr(((const struct um_hello_reply *)body)->daemon_version,
				  MEMBER_SIZE(struct um_hello_reply, daemon_version));
	if (type == (UM_MSG_INSERT | UM_REPLY) && !((const struct um_reply_hdr *)body)->status) {
		uint32_t b = ((const struct um_insert_reply *)body)->backend;

		if (b == 0 || b > UMP_BACKEND_MAX)
			return -EINVAL;
	}
	if (type == (UM_MSG_STATUS | UM_REPLY))
		return check_cstr(((const struct um_status_reply *)body)->daemon_version,
				  MEMBER_SIZE(struct um_status_reply, daemon_version));
	return 0;
}

int um_proto_decode(enum um_proto_side side, const void *buf, size_t len,
		    unsigned int nfds, struct um_msg *out)
{
	const struct um_hdr *h = buf;
	const struct type_info *t;

	if (!buf || len < sizeof(*h) || len > UM_MSG_MAX || ((uintptr_t)buf & 7))
		return -EPROTO;
	if (h->magic != UM_PROTO_MAGIC || h->version != UM_PROTO_VERSION || h->flags)
		return -EPROTO;
	if (h->length != len)
		return -EPROTO;
	t = lookup(h->type);
	if (!t || t->side != side)
		return -EPROTO;
	if (len - sizeof(*h) != t->body || nfds != t->fds)
		return -EPROTO;
	/* requests and replies carry the request's id; events must not */
	if ((h->id != 0) != (side == UM_SIDE_DAEMON || (h->type & UM_REPLY)))
		return -EPROTO;

	out->hdr = h;
	out->type = h->type;
	out->id = h->id;
	out->body = (const char *)buf + sizeof(*h);
	out->body_len = t->body;
	return check_body(h->type, out->body);
}

size_t um_proto_encode(void *buf, uint16_t type, uint64_t id, const void *body,
		       size_t body_len)
{
	struct um_hdr *h = buf;

	assert(sizeof(*h) + body_len <= UM_MSG_MAX);
	memset(h, 0, sizeof(*h));
	h->magic = UM_PROTO_MAGIC;
	h->version = UM_PROTO_VERSION;
	h->type = type;
	h->length = (uint32_t)(sizeof(*h) + body_len);
	h->id = id;
	if (body_len)
		memcpy(h + 1, body, body_len);
	return h->length;
}
