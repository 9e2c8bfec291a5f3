/* SPDX-License-Identifier: MIT */
/*
 * fault.c - FAULT: hmm_range_fault done on behalf of another process.
 *
 * Read faults: a pread of /proc/PID/mem makes the kernel fault every page
 * in for the owner (zero page for never-touched anon, swap-in, page
 * cache) without writing anything. Nothing a mirror may hold changes, so
 * there is no invalidation.
 *
 * Write faults must break COW and replace zero pages in the owner's page
 * tables, and only the owner can do that without racing its own stores
 * (a FOLL_WRITE through /proc/PID/mem would have to write data). So: one
 * held WRITE invalidation over the range (inval_start_held()); after its
 * acks the range is unprotected and the owner's library is asked to
 * MADV_POPULATE_WRITE it (UMP_EV_POPULATE). The record stays in flight,
 * seqs odd, until the owner answers (UMP_MSG_POPULATE_DONE) or the ack
 * timeout passes, so no mirror can take the page being replaced for a
 * valid one. Then the seqs go even and the requester gets a snapshot.
 */
#include "fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gone.h"
#include "held.h"
#include "inval.h"
#include "log.h"
#include "lookup.h"
#include "peer.h"
#include "seq.h"
#include "snapshot.h"
#include "vma.h"
#include "wp.h"

#define READ_CHUNK (256u << 10)

/* one write fault in flight */
struct fault_op {
	struct held_req h; /* the requester's parked reply and the held record */
	struct mm *mm;
	uint64_t token;
	uint64_t interval_id, start, npages;
};

/* read faults only land here; nothing is ever read back from it */
static char scratch[READ_CHUNK];
static uint64_t next_token;

/* the requester's receiver of the interval, after the request's checks */
static int check(struct client *c, const struct ump_fault *req, struct receiver **out)
{
	return receiver_access(c, req->interval_id, req->start,
			       req->start + req->npages * UMP_PAGE_SIZE, out);
}

/* the entries of the range after the fault, into @c's result buffer */
static int fill_reply(struct client *c, struct interval *iv, uint64_t start, uint64_t npages,
		      struct ump_snapshot_reply *rep)
{
	if (iv->mm->dead)
		return -EFAULT;
	rep->seq = interval_seq(iv);
	rep->npages = npages;
	rep->offset = 0;
	return snapshot_fill_interval(c, iv, start, npages, rep->seq);
}

static int read_fault(struct mm *mm, uint64_t start, uint64_t len)
{
	uint64_t off = 0;

	while (off < len) {
		size_t want = len - off > READ_CHUNK ? READ_CHUNK : len - off;
		ssize_t n = pread(mm->mem_fd, scratch, want, (off_t)(start + off));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* VM_IO / PFNMAP, or unmapped since the VMA check */
			log_debug("mm %llu: read fault at %#llx: %s", (unsigned long long)mm->id,
				  (unsigned long long)(start + off), n ? strerror(errno) : "EOF");
			return -EFAULT;
		}
		off += (uint64_t)n;
	}
	return 0;
}

/* --- write faults ------------------------------------------------------- */

/* the owner's part is over (or given up): seqs even, then the reply */
static void finish(struct fault_op *op, int status)
{
	struct ump_snapshot_reply rep = { 0 };

	held_complete(&op->h);
	if (held_parked(&op->h)) {
		struct client *c = op->h.d.c;
		struct receiver *r = client_receiver(c, op->interval_id);
		int ret = -ENOENT;

		if (r)
			ret = fill_reply(c, r->iv, op->start, op->npages, &rep);
		status = status ? status : ret;
	}
	held_end(&op->h, status, &rep, sizeof(rep));
}

static void hold_acked(struct inval *inv, void *arg)
{
	struct fault_op *op = container_of(arg, struct fault_op, h);
	struct ump_ev_populate ev = {
		.token = op->token,
		.start = op->start,
		.end = op->start + op->npages * UMP_PAGE_SIZE,
	};
	int ret;

	/* wakes writers held meanwhile; their stores now race only the populate */
	ret = mm_wp(op->mm, ev.start, ev.end - ev.start, false);
	if (ret)
		log_debug("mm %llu: unprotect for a write fault: %s",
			  (unsigned long long)op->mm->id, strerror(-ret));
	if (!op->mm->owner || client_send(op->mm->owner, UMP_EV_POPULATE, 0, &ev, sizeof(ev), -1))
		finish(op, -EFAULT);
}

static void hold_expired(struct inval *inv, void *arg)
{
	struct fault_op *op = container_of(arg, struct fault_op, h);

	log_info("mm %llu (pid %d): no populate in %u ms for [%#llx, +%llu pages)",
		 (unsigned long long)op->mm->id, (int)op->mm->pid, op->mm->srv->opt.ack_timeout_ms,
		 (unsigned long long)op->start, (unsigned long long)op->npages);
	finish(op, -ETIMEDOUT);
}

static const struct inval_hold_ops hold_ops = {
	.acked = hold_acked,
	.expired = hold_expired,
	.dropped = held_dropped, /* the owner is gone: answer -EFAULT */
};

static void fault_destroy(struct held_req *h)
{
	free(container_of(h, struct fault_op, h));
}

static int write_fault(struct client *c, uint64_t id, struct interval *iv, uint64_t start,
		       uint64_t npages)
{
	struct mm *mm = iv->mm;
	uint64_t span_start = start, span_end = start + npages * UMP_PAGE_SIZE;
	struct hit_walk h = { 0 };
	struct fault_op *op;
	int ret;

	/* every interval the range meets, as a uffd-wp fault on each page would */
	mm_page_span(mm, &span_start, &span_end);
	ret = mm_collect(mm, &h, span_start, span_end);
	op = ret ? NULL : calloc(1, sizeof(*op));
	if (!op) {
		mm_collect_done(&h);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < h.n; i++)
		h.v[i].iv->written = true;
	op->mm = mm;
	op->token = ++next_token;
	op->interval_id = iv->id;
	op->start = start;
	op->npages = npages;
	ret = held_start(&op->h, c, UMP_MSG_FAULT, id, mm, UMP_REASON_WRITE, &h, &hold_ops,
			 fault_destroy);
	mm_collect_done(&h);
	if (ret) {
		free(op);
		return ret;
	}
	return -EINPROGRESS;
}

int fault_request(struct client *c, uint64_t id, const struct ump_fault *req,
		  struct ump_snapshot_reply *rep)
{
	uint64_t n = req->npages, max = c->result_size / 8;
	bool write = req->flags & UMP_FAULT_WRITE;
	struct receiver *r;
	struct mm *mm;
	int ret;

	ret = check(c, req, &r);
	if (ret)
		return ret;
	mm = r->iv->mm;
	/* the reply's entries must fit: the library asks again for the rest */
	if (n > max)
		n = max;
	if (mm_gone(mm, req->start, req->start + n * UMP_PAGE_SIZE))
		return -EFAULT;
	ret = vma_check(mm, req->start, req->start + n * UMP_PAGE_SIZE, write);
	if (ret)
		return ret == -EFAULT || ret == -EPERM ? ret : -EFAULT;
	if (write)
		return write_fault(c, id, r->iv, req->start, n);
	ret = read_fault(mm, req->start, n * UMP_PAGE_SIZE);
	if (ret)
		return ret;
	return fill_reply(c, r->iv, req->start, n, rep);
}

/* madvise says ENOMEM for an unmapped range too: that one is a hole */
static int populate_status(struct fault_op *op, int status)
{
	uint64_t end = op->start + op->npages * UMP_PAGE_SIZE;

	if (status == -ENOMEM && (mm_gone(op->mm, op->start, end) ||
				  vma_check(op->mm, op->start, end, false) == -EFAULT))
		return -EFAULT;
	return status;
}

void fault_populate_done(struct client *c, const struct ump_populate_done *m)
{
	struct inval *inv;

	if (c->mm) {
		list_for_each_entry (inv, &c->mm->invals, mm_link) {
			struct fault_op *op;

			if (inv->hold != &hold_ops || !inv->acked)
				continue;
			op = container_of(inv->hold_arg, struct fault_op, h);
			if (op->token == m->token) {
				if (m->status)
					log_debug("mm %llu: populate of [%#llx, +%llu pages): %s",
						  (unsigned long long)c->mm->id,
						  (unsigned long long)op->start,
						  (unsigned long long)op->npages,
						  strerror(-m->status));
				finish(op, populate_status(op, m->status));
				return;
			}
		}
	}
	/* after the timeout, or a bogus token: nothing waits for it */
	log_debug("client %llu: stray POPULATE_DONE token %llu", (unsigned long long)c->id,
		  (unsigned long long)m->token);
}
