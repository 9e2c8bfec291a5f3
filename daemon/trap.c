/* SPDX-License-Identifier: MIT */
/*
 * trap.c - TRAP requests: invalidate before mprotect, munmap, mremap,
 * madvise, mmap MAP_FIXED, shmdt and brk (see trap.h and SEMANTICS.md,
 * "Trap mode").
 *
 * The library's trap thread holds the seccomp listener and answers the
 * kernel itself; this side only decides when the call may go ahead. A
 * record is a held invalidation (inval_start_held()): the reply goes out
 * when its acks are in, and the record completes (seqs even) only once
 * the call's change is visible, as the kernel's invalidate_range_end()
 * follows the change. Visible means: the owner's VMAs over the ranges or
 * the pagemap entries of their first pages differ from what they were
 * when the request came, and the owner's mmap lock has been released
 * since (mm_lock_barrier(): the call that changed the first VMA may still
 * be changing the rest). A call that failed or changed nothing visible
 * (mprotect to the protection already there, DONTNEED over nothing
 * present) completes after TRAP_SETTLE_MS.
 */
#include "trap.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <poll.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inval.h"
#include "log.h"
#include "lookup.h"
#include "mm_types.h"
#include "peer.h"
#include "server_types.h"
#include "trap_serve.h"
#include "uapi_compat.h"
#include "vma.h"
#include "wp.h"

#define TRAP_SETTLE_MS 100 /* a call that changes nothing visible */
#define TRAP_POLL_MS 1
#define PM_PAGES 512 /* pagemap entries read per range for the fingerprint */

struct trap_op {
	struct deferred d;
	bool parked;
	struct inval *inv; /* while in flight */
	struct mm *mm;
	uv_timer_t timer;
	bool timer_init;
	uint64_t r[2][2]; /* the ranges */
	unsigned int nr;
	uint64_t fp; /* fingerprint when the request came */
	uint64_t deadline_ms;
	unsigned int hits;
};

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

/* the permissions as one word, bits as PROCMAP_QUERY's vma_flags */
static uint64_t vma_flags(const struct vma *v)
{
	return (uint64_t)v->read | (uint64_t)v->write << 1 | (uint64_t)v->exec << 2 |
	       (uint64_t)v->shared << 3;
}

/* the VMA covering @addr: [*start, *end), or -ENOENT */
static int vma_at(struct mm *mm, uint64_t addr, uint64_t *start, uint64_t *end)
{
	struct vma_iter it = { .mm = mm };
	struct vma v;
	int ret = vma_next(&it, addr, &v);

	vma_iter_done(&it);
	if (ret)
		return ret;
	if (v.start > addr)
		return -ENOENT;
	*start = v.start;
	*end = v.end;
	return 0;
}

/* what the call will change: the VMAs over the ranges, the first pages' PTEs */
static uint64_t fingerprint(struct trap_op *op)
{
	uint64_t h = 0;

	for (unsigned int i = 0; i < op->nr; i++) {
		uint64_t addr = op->r[i][0], end = op->r[i][1];
		uint64_t pm[PM_PAGES];
		uint64_t n = (end - addr) >> UMP_PAGE_SHIFT;
		struct vma_iter it = { .mm = op->mm };
		ssize_t got;

		while (addr < end) {
			struct vma v;

			if (vma_next(&it, addr, &v) || v.start >= end)
				break;
			h = mix(mix(mix(mix(mix(h, v.start), v.end), vma_flags(&v)), v.inode),
				v.offset);
			addr = v.end;
		}
		vma_iter_done(&it);
		h = mix(h, 0x5eedu); /* the end of this range's VMAs */
		if (n > PM_PAGES)
			n = PM_PAGES;
		got = pread(op->mm->pagemap_fd, pm, n * sizeof(pm[0]),
			    (off_t)((op->r[i][0] >> UMP_PAGE_SHIFT) * sizeof(pm[0])));
		for (ssize_t k = 0; k < got / (ssize_t)sizeof(pm[0]); k++)
			h = mix(h, pm[k] & (PM_PRESENT | PM_SWAP | PM_PFN_MASK));
	}
	return h;
}

static void op_free_cb(uv_handle_t *hd)
{
	free(hd->data);
}

/* the record is over (or was never started) and nobody waits for a reply: free */
static void op_maybe_free(struct trap_op *op)
{
	if (op->inv || op->parked)
		return;
	if (op->timer_init) {
		uv_timer_stop(&op->timer);
		op->timer.data = op;
		uv_close((uv_handle_t *)&op->timer, op_free_cb);
		return;
	}
	free(op);
}

static void op_finish(struct trap_op *op)
{
	struct inval *inv = op->inv;

	if (inv) {
		op->inv = NULL;
		inval_finish(inv);
	}
	if (op->timer_init)
		uv_timer_stop(&op->timer);
	op_maybe_free(op);
}

static void op_poll(uv_timer_t *t)
{
	struct trap_op *op = t->data;

	if (!op->inv)
		return;
	if (fingerprint(op) != op->fp) {
		/* the change began; a call still changing the rest holds the lock */
		mm_lock_barrier(op->mm);
		op_finish(op);
		return;
	}
	if (server_now_ms(op->mm->srv) >= op->deadline_ms) {
		log_debug("mm %llu: trapped call over [%#" PRIx64 ", %#" PRIx64
			  ") changed nothing visible in %d ms",
			  (unsigned long long)op->mm->id, op->r[0][0], op->r[0][1], TRAP_SETTLE_MS);
		op_finish(op);
	}
}

static void op_reply(struct trap_op *op, int status)
{
	struct ump_trap_reply rep = { .hits = op->hits };

	if (!op->parked)
		return;
	op->parked = false;
	deferred_reply(&op->d, status, &rep, sizeof(rep));
}

/* every mirror let go of the ranges: the call may go ahead; watch for its change */
static void trap_acked(struct inval *inv, void *arg)
{
	struct trap_op *op = arg;
	struct server *s = op->mm->srv;

	op_reply(op, 0);
	if (uv_timer_init(s->loop, &op->timer) == 0) {
		op->timer_init = true;
		op->timer.data = op;
		op->deadline_ms = server_now_ms(s) + TRAP_SETTLE_MS;
		if (uv_timer_start(&op->timer, op_poll, TRAP_POLL_MS, TRAP_POLL_MS) == 0)
			return;
	}
	op_finish(op);
}

static void trap_expired(struct inval *inv, void *arg)
{
	op_finish(arg);
}

/* the owner went away: the record is freed without completion */
static void trap_dropped(struct inval *inv, void *arg)
{
	struct trap_op *op = arg;

	op->inv = NULL;
	op_reply(op, -EFAULT);
	if (op->timer_init)
		uv_timer_stop(&op->timer);
	op_maybe_free(op);
}

static const struct inval_hold_ops trap_hold = {
	.acked = trap_acked,
	.expired = trap_expired,
	.dropped = trap_dropped,
};

/* the requester's connection closes: the record runs on, unanswered */
static void trap_cancel(struct deferred *d)
{
	struct trap_op *op = container_of(d, struct trap_op, d);

	op->parked = false;
	op_maybe_free(op);
}

/* the intervals of @op's ranges, into one array (@out: stack or malloc) */
static int collect(struct trap_op *op, struct inval_hit **out, unsigned int *n)
{
	struct hit_walk h[2] = { 0 };
	struct inval_hit *v;
	int ret = 0;

	*out = NULL;
	*n = 0;
	for (unsigned int i = 0; i < op->nr && !ret; i++)
		ret = mm_collect(op->mm, &h[i], op->r[i][0], op->r[i][1]);
	if (!ret && h[0].n + h[1].n) {
		v = malloc((h[0].n + h[1].n) * sizeof(*v));
		if (!v) {
			ret = -ENOMEM;
		} else {
			memcpy(v, h[0].v, h[0].n * sizeof(*v));
			if (h[1].n)
				memcpy(v + h[0].n, h[1].v, h[1].n * sizeof(*v));
			*out = v;
			*n = h[0].n + h[1].n;
		}
	}
	for (unsigned int i = 0; i < op->nr; i++)
		mm_collect_done(&h[i]);
	return ret;
}

/* the thread group of thread @tid (/proc/TID/status), or 0 */
static pid_t tgid_of(pid_t tid)
{
	char path[48], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strstr(buf, "\nTgid:");
	return p ? (pid_t)strtol(p + 6, NULL, 10) : 0;
}

/*
 * The address space of the process of thread @tid (a pid in our
 * namespace, as the daemon's fork handling assumes too) if it is a
 * followed child (UMP_INSERT_FOLLOW_FORK) of @c's process's owner
 * connection; NULL otherwise (not followed, not yet identified, another
 * process's, or gone).
 */
static struct mm *followed_child(struct client *c, pid_t tid)
{
	pid_t tgid = tgid_of(tid);
	struct mm *mm = tgid > 0 ? mm_find_pid(c->srv, tgid) : NULL;

	if (!mm || !mm->forked || !mm->owner || mm->owner->pid != c->pid)
		return NULL;
	return mm;
}

int trap_request(struct client *c, uint64_t id, const struct ump_trap *req,
		 struct ump_trap_reply *rep)
{
	struct inval_hit *hits;
	struct trap_op *op;
	unsigned int n;
	struct mm *mm;
	int ret;

	if (!(c->features & UMP_PFEAT_TRAP))
		return -EPERM;
	mm = req->flags & UMP_TRAP_CHILD ? followed_child(c, req->tid)
					 : mm_find_pid(c->srv, c->pid);
	if (!mm || mm->uid != c->uid)
		return -ENOENT;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->mm = mm;
	op->r[0][0] = req->start;
	op->r[0][1] = req->end;
	op->nr = 1;
	if (req->flags & (UMP_TRAP_BRK | UMP_TRAP_SHMDT)) {
		uint64_t s, e;

		/* brk: from the new break to the end of the heap; shmdt: the segment's VMA */
		if (vma_at(mm, req->start, &s, &e)) {
			free(op);
			return 0;
		}
		op->r[0][1] = e;
		if (req->flags & UMP_TRAP_SHMDT)
			op->r[0][0] = s;
	} else if (req->end2) {
		op->r[1][0] = req->start2;
		op->r[1][1] = req->end2;
		op->nr = 2;
	}
	ret = collect(op, &hits, &n);
	if (ret || !n) {
		free(op);
		return ret;
	}
	op->hits = n;
	rep->hits = n;
	op->fp = fingerprint(op);
	deferred_add(c, &op->d, UMP_MSG_TRAP, id, trap_cancel);
	op->parked = true;
	ret = inval_start_held(mm, req->reason, op->r[0][0], op->r[0][1], req->tid, hits, n,
			       &trap_hold, op, &op->inv);
	free(hits);
	if (ret) {
		if (op->parked)
			list_del(&op->d.link);
		free(op);
		return ret;
	}
	return -EINPROGRESS;
}

int trap_handover(struct client *c, const struct ump_trap_handover *h, int fd)
{
	int *slot = h->what == UMP_HANDOVER_LISTENER ? &c->trap_listener : &c->trap_state;
	int ret = 0;

	if (!(c->features & UMP_PFEAT_TRAP_HANDOVER) || !trap_serve_running())
		ret = -EPERM;
	else if (*slot >= 0)
		ret = -EBUSY;
	else if (h->what == UMP_HANDOVER_LISTENER && !trap_serve_is_listener(fd))
		ret = -EBADF;
	else if (h->what == UMP_HANDOVER_STATE) {
		/* read with pread, never mapped: a shrinking file cannot hurt, but say so */
		int seals = fcntl(fd, F_GET_SEALS);
		struct stat st;

		if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(fd, &st) ||
		    st.st_size < (off_t)sizeof(struct ump_trap_state))
			ret = -EBADF;
	}
	if (ret) {
		/* no reply to carry it */
		log_info("client %llu (pid %d): trap handover refused: %s",
			 (unsigned long long)c->id, (int)c->pid, strerror(-ret));
		close(fd);
		return ret;
	}
	*slot = fd;
	log_debug("client %llu (pid %d): trap %s handed over", (unsigned long long)c->id,
		  (int)c->pid, h->what == UMP_HANDOVER_LISTENER ? "listener" : "state");
	return 0;
}

void trap_client_gone(struct client *c)
{
	struct pollfd pf = { .fd = c->fd, .events = POLLIN };
	int listener = c->trap_listener, state = c->trap_state;

	c->trap_listener = c->trap_state = -1;
	if (listener < 0) {
		if (state >= 0)
			close(state);
		return;
	}
	/*
	 * Our end reports a hang-up only once every copy of the peer's end
	 * is closed: the trap thread is dead (exit, or exec's killing of
	 * the other threads before close-on-exec), so we are the only
	 * receiver from now on.
	 */
	if (poll(&pf, 1, 0) != 1 || !(pf.revents & POLLHUP)) {
		close(listener);
		if (state >= 0)
			close(state);
		log_info("client %llu (pid %d): dropped while its process lives: its trap "
			 "thread keeps serving its listener",
			 (unsigned long long)c->id, (int)c->pid);
		return;
	}
	if (trap_serve_take(listener, state))
		log_warn("pid %d is gone: cannot serve its trap listener (its filter's "
			 "users' trapped calls fail with ENOSYS)",
			 (int)c->pid);
	else
		log_debug("pid %d is gone: serving its trap listener", (int)c->pid);
}
