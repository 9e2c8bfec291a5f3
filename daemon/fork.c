/* SPDX-License-Identifier: MIT */
/*
 * fork.c - following forks (fork.h).
 */
#include "fork.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "children.h"
#include "gone.h"
#include "interval.h"
#include "log.h"
#include "lookup.h"
#include "mm.h"
#include "peer.h"
#include "seq.h"
#include "vma.h"
#include "wp.h"
#include "uapi_compat.h"

/*
 * The kernel reports UFFD_EVENT_FORK from inside fork(), before the child
 * has a pid or is linked to its parent; the event carries the child's
 * uffd but not its pid, and fork() returns as soon as the event is read,
 * so the child may already be listed when we look. So the daemon keeps
 * the owner's children as they were before the fork (noted when a
 * FOLLOW_FORK interval is inserted and after each fork is resolved) and
 * watches for the one child that is not among them. The child's writes
 * to its (inherited, still armed) pages block on the uffd we hold
 * meanwhile, so nothing it does goes unseen. A child made without a fork
 * event (vfork, posix_spawn) between two forks makes the next one
 * ambiguous: it is then not mirrored (logged).
 */
#define FORK_FIND_MS 1000 /* how long a new child may take to show up */
#define FORK_POLL_MS 1

struct fork_wait {
	struct mm_waiter waiter; /* on mm.fork_waits, oldest first */
	struct mm *mm;		 /* the forking owner */
	int ufd;		 /* the child's uffd, until handed to its mm */
	uint64_t deadline_ms;
	pid_t *before; /* the owner's children when the event was read */
	size_t nbefore;
	uv_timer_t timer;
};

static void fork_wait_closed(uv_handle_t *h)
{
	free(h->data);
}

static void fork_wait_free(struct fork_wait *w)
{
	list_del(&w->waiter.link);
	if (w->ufd >= 0)
		close(w->ufd); /* not followed: closing it unregisters the child */
	free(w->before);
	uv_close((uv_handle_t *)&w->timer, fork_wait_closed);
}

/* mm_release(): the owner is gone, the child is not looked for any more */
static void fork_wait_drop(struct mm_waiter *mw)
{
	fork_wait_free(container_of(mw, struct fork_wait, waiter));
}

/* the child's copy of @piv in @child: registered, armed, announced to the inserter */
static void fork_interval(struct mm *child, struct interval *piv, struct sendfd *seq)
{
	uint64_t start = piv->node.start, end = piv->node.end, len = end - start;
	struct uffdio_register reg = {
		.range = { .start = start, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct receiver *pr = NULL, *r;
	struct ump_ev_fork ev = { 0 };
	struct interval *iv;

	list_for_each_entry (r, &piv->receivers, iv_link)
		if (r->owner)
			pr = r;
	/* only what the sync uffd tracks is in the child's uffd */
	if (!pr || piv->backend != UMP_BACKEND_UFFD_WP || mm_gone(piv->mm, start, end) ||
	    vma_covered(child, start, end)) {
		log_info("mm %llu: interval %llu not followed into pid %d",
			 (unsigned long long)piv->mm->id, (unsigned long long)piv->id,
			 (int)child->pid);
		return;
	}
	if (charge_interval(child, len))
		return;
	iv = calloc(1, sizeof(*iv));
	if (!iv || seq_slot_alloc(child, &iv->slot))
		goto fail;
	/* inherited registrations stay; registering again makes sure of it */
	if (ioctl(child->uffd, UFFDIO_REGISTER, &reg) < 0 || mm_wp(child, start, len, true)) {
		log_warn("mm %llu: cannot arm the child's copy of interval %llu: %m",
			 (unsigned long long)child->id, (unsigned long long)piv->id);
		seq_slot_free(child, iv->slot);
		goto fail;
	}
	iv->mm = child;
	iv->id = ++child->srv->next_interval_id;
	iv->flags = piv->flags;
	iv->node.start = start;
	iv->node.end = end;
	iv->backend = UMP_BACKEND_UFFD_WP;
	list_init(&iv->receivers);
	if (!receiver_new(iv, pr->client, pr->sync, true)) {
		seq_slot_free(child, iv->slot);
		goto fail;
	}
	itree_insert(&child->tree, &iv->node);
	list_add_tail(&child->intervals, &iv->mm_link);
	child->srv->nintervals++;
	ev.parent_interval_id = piv->id;
	ev.child_interval_id = iv->id;
	ev.start = start;
	ev.length = len;
	ev.child_pid = child->pid;
	ev.slot = iv->slot;
	ev.seq_slots = seq_area_slots(child);
	if (!seq) {
		log_error("mm %llu: no fd for the fork event of interval %llu",
			  (unsigned long long)child->id, (unsigned long long)iv->id);
		return; /* the interval lives on; the connection cannot see it */
	}
	/* one fd for all the copies, however many of their events are queued */
	client_send_shared(pr->client, UMP_EV_FORK, 0, &ev, sizeof(ev), seq);
	return;
fail:
	free(iv);
	uncharge_interval(child, len);
}

/* @pid is the child of @w: give it an mm like its parent's, with the followed intervals */
static void fork_adopt(struct fork_wait *w, pid_t pid)
{
	struct mm *parent = w->mm, *child;
	struct pidset now = { 0 };
	struct interval *piv;
	struct sendfd *seq;
	int pidfd, seq_fd, ret;

	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		log_warn("mm %llu: forked child %d: pidfd: %m", (unsigned long long)parent->id,
			 (int)pid);
		return;
	}
	/* still the owner's child: the pidfd names it, not a recycled pid */
	ret = read_children(parent->pid, &now);
	if (ret || !pid_in(now.v, now.n, pid)) {
		log_warn("mm %llu: forked child %d vanished", (unsigned long long)parent->id,
			 (int)pid);
		goto out;
	}
	ret = mm_open(parent->srv, parent->owner, pid, parent->uid, pidfd, w->ufd,
		      parent->uffd_features, &child, &seq_fd);
	if (ret) {
		log_warn("mm %llu: forked child %d: %s", (unsigned long long)parent->id, (int)pid,
			 strerror(-ret));
		goto out;
	}
	w->ufd = -1;
	child->forked = true;
	list_add_tail(&parent->forks, &child->fork_link);
	log_info("mm %llu: pid %d forked %d: followed as mm %llu", (unsigned long long)parent->id,
		 (int)parent->pid, (int)pid, (unsigned long long)child->id);
	seq = sendfd_new(seq_fd);
	list_for_each_entry (piv, &parent->intervals, mm_link)
		if (piv->flags & UM_INSERT_FOLLOW_FORK)
			fork_interval(child, piv, seq);
	sendfd_put(seq);
	if (list_empty(&child->intervals))
		mm_destroy(child);
out:
	free(now.v);
	close(pidfd);
}

static void fork_wait_cb(uv_timer_t *t);

/*
 * Match every waiting fork of @mm with the child that appeared since,
 * newest first: a child that an older wait could also take is then
 * already claimed (it has an mm) by the fork that made it.
 */
static void fork_resolve(struct mm *mm)
{
	uint64_t now_ms = server_now_ms(mm->srv);
	struct pidset now = { 0 };
	struct list *l, *prev;

	if (read_children(mm->pid, &now))
		now.n = 0;
	for (l = mm->fork_waits.prev; l != &mm->fork_waits; l = prev) {
		struct fork_wait *w = container_of(l, struct fork_wait, waiter.link);
		unsigned int n = 0;
		pid_t found = 0;

		prev = l->prev;
		for (size_t i = 0; i < now.n; i++)
			if (!pid_in(w->before, w->nbefore, now.v[i]) &&
			    !mm_find_pid(mm->srv, now.v[i])) {
				found = now.v[i];
				n++;
			}
		if (n == 1) {
			fork_adopt(w, found);
		} else if (n > 1) {
			log_warn("mm %llu: pid %d forked, %u new children: which one is ambiguous, "
				 "child not mirrored",
				 (unsigned long long)mm->id, (int)mm->pid, n);
		} else if (now_ms < w->deadline_ms) {
			uv_timer_start(&w->timer, fork_wait_cb, FORK_POLL_MS, 0);
			continue;
		} else {
			log_warn("mm %llu: pid %d forked but no new child showed up in %d ms: "
				 "child not mirrored",
				 (unsigned long long)mm->id, (int)mm->pid, FORK_FIND_MS);
		}
		fork_wait_free(w);
	}
	/* all resolved: what exists now is what the next fork must not take */
	if (list_empty(&mm->fork_waits) && !read_children(mm->pid, &now)) {
		free(mm->fork_known);
		mm->fork_known = now.v;
		mm->nfork_known = now.n;
		return;
	}
	free(now.v);
}

static void fork_wait_cb(uv_timer_t *t)
{
	struct fork_wait *w = t->data;

	fork_resolve(w->mm);
}

static bool follows_forks(struct mm *mm)
{
	struct interval *iv;

	list_for_each_entry (iv, &mm->intervals, mm_link)
		if (iv->flags & UM_INSERT_FOLLOW_FORK)
			return true;
	return false;
}

/* UFFD_EVENT_FORK: keep the child's @ufd while we look for the child, or close it */
void fork_follow(struct mm *mm, int ufd)
{
	struct pidset before = { 0 };
	struct fork_wait *w;
	int ret;

	if (mm->dead || !follows_forks(mm))
		goto drop;
	w = calloc(1, sizeof(*w));
	if (!w) {
		log_error("mm %llu: out of memory: forked child not mirrored",
			  (unsigned long long)mm->id);
		goto drop;
	}
	ret = -ENOMEM;
	before.v = malloc((mm->nfork_known + 1) * sizeof(pid_t));
	if (before.v) {
		before.n = mm->nfork_known;
		if (before.n)
			memcpy(before.v, mm->fork_known, before.n * sizeof(pid_t));
		ret = 0;
	}
	if (ret) {
		log_warn("mm %llu: cannot read the children of pid %d: %s: child not mirrored",
			 (unsigned long long)mm->id, (int)mm->pid, strerror(-ret));
		free(before.v);
		free(w);
		goto drop;
	}
	w->mm = mm;
	w->ufd = ufd;
	w->before = before.v;
	w->nbefore = before.n;
	w->deadline_ms = server_now_ms(mm->srv) + FORK_FIND_MS;
	uv_timer_init(mm->srv->loop, &w->timer);
	w->timer.data = w;
	w->waiter.drop = fork_wait_drop;
	list_add_tail(&mm->fork_waits, &w->waiter.link);
	uv_timer_start(&w->timer, fork_wait_cb, FORK_POLL_MS, 0);
	return;
drop:
	close(ufd);
}
