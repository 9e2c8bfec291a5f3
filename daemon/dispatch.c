/* SPDX-License-Identifier: MIT */
/*
 * dispatch.c - every request type, its handler and how it is answered.
 *
 * The connection code (peer.c) decodes a request and hands it here
 * through its dispatch hook; this file is the only one that knows which
 * module serves which request, so the modules below never see the
 * socket and peer.c never calls up into them. The reply's size and fd
 * count come from the message list (umirror_proto.h), as the decoder's do.
 *
 * A handler fills the zeroed reply body it is given and returns its
 * status; client_reply() (peer.c) zeroes the body of an error reply
 * (not of KEEP_BODY types) and stands /dev/null in for a missing fd.
 */
#include "dispatch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dirty.h"
#include "fault.h"
#include "grant.h"
#include "inval.h"
#include "interval.h"
#include "log.h"
#include "lookup.h"
#include "mm.h"
#include "peer.h"
#include "place.h"
#include "scan.h"
#include "seq.h"
#include "snapshot.h"
#include "trap.h"
#include "trap_serve.h"

/*
 * A request handler. @fd is the fd the request carries (or -1) and is
 * consumed by the handlers of the types that carry one (ATTACH); @rep is
 * the zeroed reply body, @out_fd the fd to send with it.
 * Return: the reply's status (0 or -errno); with MAY_PARK, -EINPROGRESS
 * when the handler answered itself or parked the reply.
 */
typedef int request_fn(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd);

struct request_type {
	request_fn *handle;
	unsigned int flags;
};

#define BEFORE_HELLO (1u << 0) /* may come before HELLO (only HELLO itself) */
#define KEEP_BODY (1u << 1)    /* entries written so far are valid whatever the status */
#define MAY_PARK (1u << 2)     /* -EINPROGRESS: the handler answers (or answered) */

static void reply(struct client *c, const struct ump_msg *m, int status, void *body, size_t len,
		  int fd)
{
	client_reply(c, m->type, m->id, status, body, len, fd);
}

/* --- HELLO, STATUS, LIST, WATCH, PING ------------------------------------ */

static int result_buffer(struct client *c, int *fdp)
{
	int fd, ret;
	void *p;

	fd = memfd_create("umirror-result", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, c->srv->opt.result_size) < 0)
		goto fail;
	p = mmap(NULL, c->srv->opt.result_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	/* our writable mapping predates the seal; theirs can only be read-only */
	if (fcntl(fd, F_ADD_SEALS,
		  F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		ret = -errno;
		munmap(p, c->srv->opt.result_size);
		close(fd);
		return ret;
	}
	c->result = p;
	c->result_size = c->srv->opt.result_size;
	*fdp = fd;
	return 0;
fail:
	ret = -errno;
	close(fd);
	return ret;
}

/* count @c against its uid's client limit; refused: reply -EUSERS, drop */
static int charge_client(struct client *c, const struct ump_msg *m, struct ump_hello_reply *r)
{
	static const uint64_t one[LIMIT_NR] = { [LIMIT_CLIENTS] = 1 };
	int ret = limits_charge(&c->srv->limits, c->uid, one, NULL);

	if (ret == 0) {
		c->charged = true;
		return 0;
	}
	log_warn("client %llu (pid %d uid %d): refused: %s (limit %llu clients per uid)",
		 (unsigned long long)c->id, (int)c->pid, (int)c->uid, strerror(-ret),
		 (unsigned long long)limits_max(&c->srv->limits, c->uid, LIMIT_CLIENTS));
	reply(c, m, ret, r, sizeof(*r), -1);
	client_drop(c, "too many clients for its uid");
	return ret;
}

static int do_hello(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	const struct ump_hello *h = m->body;
	struct ump_hello_reply *r = rep;
	int ret;

	if (c->hello)
		return -EALREADY;
	if (h->version != UMP_PROTO_VERSION) {
		/* answered before the drop: a dropping client is sent nothing */
		reply(c, m, -EPROTONOSUPPORT, r, sizeof(*r), -1);
		client_drop_bad(c, "unsupported protocol version");
		return -EINPROGRESS;
	}
	if (!c->charged && charge_client(c, m, r))
		return -EINPROGRESS;
	ret = result_buffer(c, out_fd);
	if (ret) {
		log_warn("client %llu: result buffer: %s", (unsigned long long)c->id,
			 strerror(-ret));
		return ret;
	}
	c->hello = true;
	c->features = h->features & UMP_PFEAT_ALL &
		      ~(c->srv->opt.trap_forbid ? UMP_PFEAT_TRAP | UMP_PFEAT_TRAP_HANDOVER : 0);
	if (!(c->features & UMP_PFEAT_TRAP) || !trap_serve_running())
		c->features &= ~UMP_PFEAT_TRAP_HANDOVER;
	r->version = UMP_PROTO_VERSION;
	r->result_size = c->result_size;
	r->features = c->features;
	r->kfeatures = kfeat_mask(&c->srv->kf) | (c->pfn_visible ? UMP_KFEAT_PFN_VISIBLE : 0);
	r->uffd_features = c->srv->kf.uffd_offered;
	snprintf(r->daemon_version, sizeof(r->daemon_version), "%s", UMD_VERSION);
	return 0;
}

static int do_status(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	struct server *s = c->srv;
	struct ump_status_reply *r = rep;

	r->kfeatures = kfeat_mask(&s->kf) | (c->pfn_visible ? UMP_KFEAT_PFN_VISIBLE : 0);
	r->uffd_features = s->kf.uffd_offered;
	r->kfeatures_masked = s->kf.masked;
	r->clients = s->nclients;
	r->mms = s->nmms;
	r->intervals = s->nintervals;
	r->events = s->events;
	r->uptime_ms = server_now_ms(s) - s->start_ms;
	r->pid = getpid();
	snprintf(r->daemon_version, sizeof(r->daemon_version), "%s", UMD_VERSION);
	return 0;
}

static int do_list(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	struct ump_list_reply *r = rep;
	struct ump_list_rec *rec = c->result;
	uint64_t max = c->result_size / sizeof(*rec);
	struct mm *mm;
	struct interval *iv;
	struct receiver *rv;

	list_for_each_entry (mm, &c->srv->mms, link) {
		if (!client_may_see(c, mm->uid))
			continue;
		list_for_each_entry (iv, &mm->intervals, mm_link) {
			struct ump_list_rec x = { 0 };

			if (r->count == max)
				break;
			x.interval_id = iv->id;
			x.mm_id = mm->id;
			x.start = iv->node.start;
			x.length = iv->node.end - iv->node.start;
			x.seq = interval_seq(iv);
			x.invalidations = iv->invalidations;
			x.pid = mm->pid;
			x.uid = mm->uid;
			list_for_each_entry (rv, &iv->receivers, iv_link)
				x.subscribers += !rv->owner;
			x.flags = iv->flags | (mm->dead ? UMP_LIST_DEAD : 0);
			x.backend = iv->backend;
			x.revalidate_ms = iv->revalidate_ms;
			rec[r->count++] = x;
		}
	}
	return 0;
}

static int do_watch(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	const struct ump_watch *w = m->body;

	if (w->pid) {
		struct mm *mm = mm_find_pid(c->srv, w->pid);

		if (!mm)
			return -ESRCH;
		if (!client_may_see(c, mm->uid))
			return -EACCES;
	}
	c->watching = true;
	c->watch_pid = w->pid;
	return 0;
}

static int do_ping(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	return 0;
}

/* --- the modules' requests ---------------------------------------------- */

static int do_attach(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	if (((const struct ump_attach *)m->body)->flags & UMP_ATTACH_ASYNC)
		return mm_attach_async(c, fd, m->body, rep, out_fd);
	return mm_attach(c, fd, m->body, rep, out_fd);
}

static int do_insert(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	return mm_insert(c, m->id, m->body, rep);
}

static int do_remove(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	return mm_remove(c, ((const struct ump_remove *)m->body)->interval_id);
}

static int do_subscribe(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	return mm_subscribe(c, m->body, rep, out_fd);
}

static int do_snapshot(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	return snapshot_request(c, m->body, rep);
}

static int do_ack(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	inval_ack(c, m->body);
	return 0;
}

static int do_fault(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	return fault_request(c, m->id, m->body, rep);
}

static int do_populate_done(struct client *c, const struct ump_msg *m, int fd, void *rep,
			    int *out_fd)
{
	fault_populate_done(c, m->body);
	return 0;
}

static int do_grant(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	return grant_request(c, m->body);
}

static int do_dirty(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	return dirty_request(c, m->body, rep);
}

static int do_place(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	return place_request(c, m->id, m->body, rep);
}

static int do_revalidate(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	return scan_request(c, m->body, rep);
}

static int do_trap(struct client *c, const struct ump_msg *m, int fd, void *rep, int *out_fd)
{
	return trap_request(c, m->id, m->body, rep);
}

static int do_trap_handover(struct client *c, const struct ump_msg *m, int fd, void *rep,
			    int *out_fd)
{
	return trap_handover(c, m->body, fd);
}

/* --- the table ---------------------------------------------------------- */

/* every request of the message list has its slot below */
#define IN_TABLE(type, name, size, nfds, side, chk)                            \
	_Static_assert((side) != UMP_SIDE_DAEMON || (type) <= UMP_MSG_REQ_MAX, \
		       name " has no slot in the dispatch table");
UMP_PROTO_MESSAGES(IN_TABLE)
#undef IN_TABLE

static const struct request_type requests[UMP_MSG_REQ_MAX + 1] = {
	[UMP_MSG_HELLO] = { do_hello, BEFORE_HELLO | MAY_PARK },
	[UMP_MSG_ATTACH] = { do_attach, 0 },
	[UMP_MSG_INSERT] = { do_insert, MAY_PARK },
	[UMP_MSG_REMOVE] = { do_remove, 0 },
	[UMP_MSG_SUBSCRIBE] = { do_subscribe, 0 },
	[UMP_MSG_SNAPSHOT] = { do_snapshot, KEEP_BODY },
	[UMP_MSG_ACK] = { do_ack, 0 },
	[UMP_MSG_STATUS] = { do_status, 0 },
	[UMP_MSG_LIST] = { do_list, 0 },
	[UMP_MSG_WATCH] = { do_watch, 0 },
	[UMP_MSG_PING] = { do_ping, 0 },
	[UMP_MSG_FAULT] = { do_fault, KEEP_BODY | MAY_PARK },
	[UMP_MSG_POPULATE_DONE] = { do_populate_done, 0 },
	[UMP_MSG_GRANT] = { do_grant, 0 },
	[UMP_MSG_DIRTY] = { do_dirty, 0 },
	[UMP_MSG_PLACE] = { do_place, MAY_PARK },
	[UMP_MSG_REVALIDATE] = { do_revalidate, 0 },
	[UMP_MSG_TRAP] = { do_trap, MAY_PARK },
	[UMP_MSG_TRAP_HANDOVER] = { do_trap_handover, 0 },
};

void dispatch_request(struct client *c, const struct ump_msg *m, int fd)
{
	const struct request_type *t = m->type <= UMP_MSG_REQ_MAX ? &requests[m->type] : NULL;
	long len = ump_proto_body_size(m->type | UMP_REPLY);
	uint64_t rep[UMP_MSG_MAX / 8] = { 0 };
	int ret, out_fd = -1;

	if (!c->hello && !(t && t->flags & BEFORE_HELLO)) {
		if (fd >= 0)
			close(fd);
		client_drop_bad(c, "request before HELLO");
		return;
	}
	if (!t || !t->handle) {
		/* the decoder let through a type we do not know: a bug */
		if (fd >= 0)
			close(fd);
		client_drop_bad(c, "unhandled message type");
		return;
	}
	/* the handler of a type that carries an fd owns it */
	if (!ump_proto_fds(m->type) && fd >= 0) {
		close(fd);
		fd = -1;
	}
	ret = t->handle(c, m, fd, rep, &out_fd);
	if (len < 0 || (ret == -EINPROGRESS && t->flags & MAY_PARK))
		return; /* no reply (ACK, POPULATE_DONE), or the handler's own */
	if (t->flags & KEEP_BODY) {
		((struct ump_reply_hdr *)rep)->status = ret;
		client_send(c, m->type | UMP_REPLY, m->id, rep, len, out_fd);
		return;
	}
	reply(c, m, ret, rep, len, out_fd);
}
