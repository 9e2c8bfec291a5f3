/* SPDX-License-Identifier: MIT */
/*
 * place.c - NUMA placement: where an owner's pages are (node queries for
 * snapshots) and PLACE hints that move them.
 *
 * A move changes the PFN behind a virtual address, so it is announced like
 * any other page-table change: one MIGRATE invalidation over the range,
 * held (inval_start_held()) until every mirror acknowledged; then
 * move_pages(2) runs on the owner and only after it the seqs go even. A
 * mirror that snapshots after that sees the new PFNs. The migration runs
 * on the loop thread: move_pages(2) copies at memory bandwidth and the
 * request is bounded by the interval.
 */
#include "place.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/mempolicy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "held.h"
#include "inval.h"
#include "log.h"
#include "lookup.h"
#include "peer.h"

#define CHUNK 512 /* pages per move_pages(2) call: bounded stack arrays */
#define NODE_DIR "/sys/devices/system/node"

struct place_op {
	struct held_req h; /* the requester's parked reply and the MIGRATE record */
	uint64_t start, npages;
	int node;
	pid_t pid;
};

static long sys_move_pages(pid_t pid, unsigned long n, void **pages, const int *nodes, int *status,
			   int flags)
{
	return syscall(SYS_move_pages, pid, n, pages, nodes, status, flags);
}

int place_nodes(struct mm *mm, uint64_t start, uint64_t npages, int32_t *out)
{
	void *pages[CHUNK];

	for (uint64_t done = 0; done < npages;) {
		unsigned long n = npages - done < CHUNK ? npages - done : CHUNK;

		for (unsigned long i = 0; i < n; i++)
			pages[i] = (void *)(uintptr_t)(start + (done + i) * UMP_PAGE_SIZE);
		/* nodes NULL: a query, nothing moves */
		if (sys_move_pages(mm->pid, n, pages, NULL, (int *)out + done, 0) < 0) {
			int err = errno == ENOSYS ? -EOPNOTSUPP : -errno;

			for (uint64_t i = done; i < npages; i++)
				out[i] = -EFAULT;
			return err;
		}
		done += n;
	}
	return 0;
}

/*
 * Is @node able to take pages (N_MEMORY, what move_pages(2) checks)?
 * Return: 0, -ENODEV not, -EOPNOTSUPP no NUMA in this kernel.
 */
static int node_usable(int node)
{
	char buf[256], *p;
	ssize_t n;
	int fd;

	fd = open(NODE_DIR "/has_memory", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = open(NODE_DIR "/online", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -EOPNOTSUPP : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ENODEV;
	buf[n] = 0;
	/* a cpulist: "0", "0-3,5" */
	for (p = buf; *p && *p != '\n';) {
		char *end;
		long lo = strtol(p, &end, 10), hi = lo;

		if (end == p)
			break;
		p = end;
		if (*p == '-') {
			hi = strtol(p + 1, &end, 10);
			if (end == p + 1)
				break;
			p = end;
		}
		if (node >= lo && node <= hi)
			return 0;
		if (*p == ',')
			p++;
	}
	return -ENODEV;
}

/* move the present pages; count those now on the node and those that would not go */
static int migrate(const struct place_op *op, struct ump_place_reply *rep)
{
	void *pages[CHUNK];
	int nodes[CHUNK], status[CHUNK];

	for (uint64_t done = 0; done < op->npages;) {
		unsigned long n = op->npages - done < CHUNK ? op->npages - done : CHUNK;

		for (unsigned long i = 0; i < n; i++) {
			pages[i] = (void *)(uintptr_t)(op->start + (done + i) * UMP_PAGE_SIZE);
			nodes[i] = op->node;
		}
		if (sys_move_pages(op->pid, n, pages, nodes, status, MPOL_MF_MOVE) < 0) {
			int err = errno == ENOSYS ? -EOPNOTSUPP : -errno;

			log_debug("pid %d: move_pages to node %d: %s", (int)op->pid, op->node,
				  strerror(-err));
			return err;
		}
		for (unsigned long i = 0; i < n; i++) {
			if (status[i] == op->node)
				rep->moved++;
			/* not present (-ENOENT) or the zero page (-EFAULT): nothing to move */
			else if (status[i] != -ENOENT && status[i] != -EFAULT)
				rep->failed++;
		}
		done += n;
	}
	return 0;
}

/* the MIGRATE invalidation's acks are in: move, let the seqs go even, answer */
static void place_acked(struct inval *inv, void *arg)
{
	struct place_op *op = container_of(arg, struct place_op, h);
	struct ump_place_reply rep = { 0 };
	int ret = 0;

	/* the requester went away: nothing to move for anyone */
	if (held_parked(&op->h))
		ret = migrate(op, &rep);
	held_complete(&op->h);
	held_end(&op->h, ret, &rep, sizeof(rep));
}

/* acked always finishes at once: a held part that expires cannot happen */
static void place_expired(struct inval *inv, void *arg)
{
	place_acked(inv, arg);
}

static const struct inval_hold_ops place_hold = {
	.acked = place_acked,
	.expired = place_expired,
	.dropped = held_dropped, /* the owner is gone: answer -EFAULT */
};

static void place_destroy(struct held_req *h)
{
	free(container_of(h, struct place_op, h));
}

int place_request(struct client *c, uint64_t id, const struct ump_place *req,
		  struct ump_place_reply *rep)
{
	struct receiver *r;
	struct hit_walk h = { 0 };
	struct place_op *op;
	struct interval *iv;
	struct mm *mm;
	int ret;

	/* watchers are not receivers: a hint moves memory, looking does not */
	ret = receiver_access(c, req->interval_id, req->start,
			      req->start + req->npages * UMP_PAGE_SIZE, &r);
	if (ret)
		return ret;
	iv = r->iv;
	mm = iv->mm;
	ret = node_usable(req->node);
	if (ret)
		return ret;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->start = req->start;
	op->npages = req->npages;
	op->node = req->node;
	op->pid = mm->pid;
	ret = mm_collect(mm, &h, req->start, req->start + req->npages * UMP_PAGE_SIZE);
	if (ret)
		goto fail;
	ret = held_start(&op->h, c, UMP_MSG_PLACE, id, mm, UMP_REASON_MIGRATE, &h, &place_hold,
			 place_destroy);
	mm_collect_done(&h);
	if (ret) {
		free(op);
		return ret;
	}
	return -EINPROGRESS;
fail:
	mm_collect_done(&h);
	free(op);
	return ret;
}
