/* SPDX-License-Identifier: MIT */
/*
 * mm.c - attached address spaces: ATTACH (the proof that a userfaultfd
 * is the owner's own), open, release, destroy.
 *
 * The daemon is the only holder of the owner's userfaultfd. Writers of a
 * write-protected page sleep in the kernel until we unprotect the page,
 * which we only do when the invalidation of that page completed (inval.c).
 */
#include "mm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "interval.h"
#include "inval.h"
#include "log.h"
#include "lookup.h"
#include "pagemap.h"
#include "pidfd.h"
#include "seq.h"
#include "wp.h"
#include "uapi_compat.h"

#define UFFD_WANTED                                                                            \
	(UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | \
	 UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_THREAD_ID |       \
	 UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_HUGETLBFS_SHMEM)

/* the owner's pidfd and /proc files, each closed if open, then -1 */
static void close_proc_fds(struct mm *mm)
{
	int *fds[] = { &mm->pidfd, &mm->pagemap_fd, &mm->maps_fd, &mm->mem_fd };

	for (unsigned int i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

static void pidfd_cb(uv_poll_t *p, int status, int events)
{
	mm_release(p->data, "owner exited");
}

static void mm_handle_closed(uv_handle_t *h)
{
	struct mm *mm = h->data;

	if (--mm->open_handles == 0 && mm->destroyed)
		free(mm);
}

/*
 * The uffd polled by @p is read by uffd_event.c: through the server's
 * uffd epoll set, so that the events of every address space are read
 * before any is handled (the ones the kernel waits on first), or, without
 * that set, by a poll of its own.
 */
static void uffd_watch(struct mm *mm, uv_poll_t *p, int fd)
{
	struct server *s = mm->srv;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };

	if (s->uffd_ep_on && epoll_ctl(s->uffd_ep, EPOLL_CTL_ADD, fd, &ev) == 0)
		return;
	uv_poll_start(p, UV_READABLE, s->hooks.uffd_cb);
}

/* before @fd is closed: no event of it may be read after the mm's release */
static void uffd_unwatch(struct mm *mm, int fd)
{
	if (mm->srv->uffd_ep_on)
		epoll_ctl(mm->srv->uffd_ep, EPOLL_CTL_DEL, fd, NULL);
}

static int check_uffd(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -EBADF;
	target[n] = 0;
	return strcmp(target, "anon_inode:[userfaultfd]") ? -EBADF : 0;
}

/* write-protect (@wp) or unprotect the probe page through @uffd */
static int probe_wp(int uffd, uint64_t probe, bool wp)
{
	struct uffdio_writeprotect w = {
		.range = { .start = probe, .len = UMP_PAGE_SIZE },
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w) == 0)
		return 0;
	/* a fork or mremap of that mm in flight: its event waits for us */
	return errno == EAGAIN ? -EAGAIN : -EBADF;
}

/*
 * Prove that @uffd (UFFDIO_API done) serves the address space whose
 * pagemap is @pagemap_fd (docs/SEMANTICS.md, ATTACH): register @probe on
 * it, write-protect the page through it, and the peer's own PTE must
 * show uffd-wp; unprotect, and the bit must be gone. The bit lives in
 * the page table of the address space the uffd serves, one per process
 * even for a page two processes share, so another process's uffd leaves
 * the peer's PTE as it was, whatever that process maps at @probe: the
 * peer cannot fake the two states without changing its own page table
 * in step with the daemon (which only a peer racing the daemon on
 * purpose could; it could as well keep a copy of its own uffd and
 * unprotect its memory: the owner is trusted with its own memory). Costs
 * four ioctls and three pagemap reads. Leaves @probe unregistered and
 * unprotected (the daemon's writes to the PTE are undone).
 * Return: 0 proven; -EINVAL @probe is not a present, unprotected page of
 * the peer; -EBADF not proven; -EAGAIN a fork or mremap of the uffd's
 * address space was in flight (try again with a new uffd); -errno
 * pagemap unreadable.
 */
static int uffd_prove(int uffd, int pagemap_fd, uint64_t probe)
{
	struct uffdio_register reg = {
		.range = { .start = probe, .len = UMP_PAGE_SIZE },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_range range = { .start = probe, .len = UMP_PAGE_SIZE };
	uint64_t before, armed = 0, after = 0;
	int ret;

	ret = pagemap_read(pagemap_fd, probe, 1, &before);
	if (ret)
		return ret;
	if (!(before & PM_PRESENT) || (before & PM_UFFD_WP))
		return -EINVAL;
	/* fails where that mm has no such mapping, or someone else's uffd has it */
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		log_debug("uffd proof: UFFDIO_REGISTER of the probe %#llx: %m",
			  (unsigned long long)probe);
		return -EBADF;
	}
	ret = reg.ioctls & (1ull << _UFFDIO_WRITEPROTECT) ? 0 : -EBADF;
	if (!ret)
		ret = probe_wp(uffd, probe, true);
	if (!ret)
		ret = pagemap_read(pagemap_fd, probe, 1, &armed);
	if (!ret)
		ret = probe_wp(uffd, probe, false);
	if (!ret)
		ret = pagemap_read(pagemap_fd, probe, 1, &after);
	ioctl(uffd, UFFDIO_UNREGISTER, &range);
	if (ret)
		return ret;
	if (!(armed & PM_PRESENT) || !(armed & PM_UFFD_WP) || (after & PM_UFFD_WP)) {
		log_debug("uffd proof: the peer's PTE of %#llx did not follow the uffd "
			  "(pagemap %#llx protected, %#llx unprotected)",
			  (unsigned long long)probe, (unsigned long long)armed,
			  (unsigned long long)after);
		return -EBADF;
	}
	return 0;
}

/*
 * Check that @uffd is a userfaultfd, enable @wanted & what the kernel
 * offers on it, and prove on @probe that it serves @c's own address space
 * (uffd_prove(); @pagemap_fd is @c's pagemap, or -1: opened here).
 * @features: what was enabled (the kernel writes back every feature it
 * has, not the ones enabled, so it is not read back).
 * Return: 0; -EBADF not a userfaultfd, or not @c's; -EINVAL UFFDIO_API
 * refused (the client already did it) or a bad probe page; -EAGAIN
 * (uffd_prove); -ESRCH @c's process is gone.
 */
static int uffd_handshake(struct client *c, int uffd, uint64_t wanted, uint64_t probe,
			  int pagemap_fd, uint64_t *features)
{
	struct uffdio_api api = { .api = UFFD_API };
	int ret = check_uffd(uffd), own_fd = -1;

	if (ret)
		return ret;
	api.features = wanted & c->srv->kf.uffd_offered;
	if (ioctl(uffd, UFFDIO_API, &api) < 0) {
		log_debug("client %llu: UFFDIO_API: %m (did the client call it?)",
			  (unsigned long long)c->id);
		return -EINVAL;
	}
	if (pagemap_fd < 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)c->pid);
		own_fd = pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (pagemap_fd < 0)
			return errno == ENOENT ? -ESRCH : -errno;
		/* it named the peer, not a process that reused its pid */
		if (!pidfd_alive(c->pidfd)) {
			close(own_fd);
			return -ESRCH;
		}
	}
	ret = uffd_prove(uffd, pagemap_fd, probe);
	if (own_fd >= 0)
		close(own_fd);
	if (ret) {
		log_info("client %llu (pid %d): ATTACH refused: %s", (unsigned long long)c->id,
			 (int)c->pid,
			 ret == -EBADF ? "the userfaultfd is not this process's" : strerror(-ret));
		return ret;
	}
	*features = wanted & c->srv->kf.uffd_offered;
	return 0;
}

/* @mm's pagemap, maps (with PROCMAP_QUERY) and mem, of the process @pidfd names */
static int open_proc_files(struct mm *mm, bool procmap_query, int pidfd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)mm->pid);
	mm->pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (mm->pagemap_fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	if (procmap_query) {
		snprintf(path, sizeof(path), "/proc/%d/maps", (int)mm->pid);
		mm->maps_fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)mm->pid);
	mm->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (mm->mem_fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	/* the opens named the process, not one that reused its pid */
	if (!pidfd_alive(pidfd))
		return -ESRCH;
	return 0;
}

int mm_open(struct server *s, struct client *owner, pid_t pid, uid_t uid, int pidfd, int uffd,
	    uint64_t features, struct mm **out, int *seq_fd)
{
	struct mm *mm;
	int ret, fl;

	mm = calloc(1, sizeof(*mm));
	if (!mm)
		return -ENOMEM;
	mm->srv = s;
	mm->uffd = uffd;
	mm->pagemap_fd = mm->maps_fd = mm->pidfd = mm->seq_fd = mm->mem_fd = -1;
	mm->async_uffd = mm->clear_refs_fd = mm->canary_fd = -1;
	mm->pid = pid;
	mm->uid = uid;
	mm->uffd_features = features;
	itree_init(&mm->tree);
	list_init(&mm->intervals);
	list_init(&mm->invals);
	list_init(&mm->wp_retry);
	list_init(&mm->forks);
	list_init(&mm->fork_link);
	list_init(&mm->fork_waits);
	ret = open_proc_files(mm, s->kf.procmap_query, pidfd);
	if (ret)
		goto fail_mm;
	mm->pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 0);
	fl = fcntl(uffd, F_GETFL);
	if (mm->pidfd < 0 || fl < 0 || fcntl(uffd, F_SETFL, fl | O_NONBLOCK) < 0) {
		ret = -errno;
		goto fail_mm;
	}
	ret = seq_area_create(mm);
	if (ret)
		goto fail_mm;
	*seq_fd = fcntl(mm->seq_fd, F_DUPFD_CLOEXEC, 0);
	if (*seq_fd < 0) {
		ret = -errno;
		goto fail_mm;
	}
	mm->id = ++s->next_mm_id;
	mm->owner = owner;
	list_add_tail(&s->mms, &mm->link);
	s->nmms++;
	uv_poll_init(s->loop, &mm->uffd_poll, mm->uffd);
	uv_poll_init(s->loop, &mm->pidfd_poll, mm->pidfd);
	uv_timer_init(s->loop, &mm->wp_timer);
	mm->uffd_poll.data = mm->pidfd_poll.data = mm->wp_timer.data = mm;
	mm->open_handles = 3;
	uffd_watch(mm, &mm->uffd_poll, mm->uffd);
	uv_poll_start(&mm->pidfd_poll, UV_READABLE, pidfd_cb);
	*out = mm;
	return 0;
fail_mm:
	seq_area_destroy(mm);
	close_proc_fds(mm);
	free(mm);
	return ret;
}

int mm_attach(struct client *c, int uffd, const struct ump_attach *req,
	      struct ump_attach_reply *rep, int *seq_fd)
{
	struct server *s = c->srv;
	struct mm *mm = NULL;
	uint64_t features;
	int ret;

	if (c->mm || mm_find_pid(s, c->pid)) {
		ret = -EBUSY;
		goto fail;
	}
	ret = uffd_handshake(c, uffd, UFFD_WANTED, req->probe, -1, &features);
	if (ret)
		goto fail;
	ret = mm_open(s, c, c->pid, c->uid, c->pidfd, uffd, features, &mm, seq_fd);
	if (ret)
		goto fail;
	c->mm = mm;
	/* the client's word: a lie only costs it EFAULTs in its own system calls */
	mm->uffd_user_only = req->uffd_mode == UMP_UFFD_USER_ONLY;
	if (req->flags & UMP_ATTACH_CANARY)
		mm->canary = req->probe;
	rep->mm_id = mm->id;
	rep->uffd_features = features;
	rep->seq_slots = seq_area_slots(mm);
	log_info("mm %llu: pid %d attached (uffd features 0x%llx)", (unsigned long long)mm->id,
		 (int)mm->pid, (unsigned long long)rep->uffd_features);
	return 0;
fail:
	close(uffd);
	return ret;
}

#define UFFD_ASYNC_WANTED                                                                  \
	(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_EVENT_FORK |   \
	 UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP | \
	 UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_WP_HUGETLBFS_SHMEM)

int mm_attach_async(struct client *c, int uffd, const struct ump_attach *req,
		    struct ump_attach_reply *rep, int *seq_fd)
{
	struct server *s = c->srv;
	struct mm *mm = c->mm;
	uint64_t features;
	int ret, fl;

	if (!mm) {
		ret = -EBADFD;
		goto fail;
	}
	if (mm->dead) {
		ret = -EFAULT;
		goto fail;
	}
	if (mm->async_uffd >= 0) {
		ret = -EBUSY;
		goto fail;
	}
	/* masked features count as absent (kfeat_apply_mask cleared them) */
	if (!(s->kf.uffd_offered & UFFD_FEATURE_WP_ASYNC) || !s->kf.pagemap_scan) {
		ret = -EOPNOTSUPP;
		goto fail;
	}
	ret = uffd_handshake(c, uffd, UFFD_ASYNC_WANTED, req->probe, mm->pagemap_fd, &features);
	if (ret)
		goto fail;
	fl = fcntl(uffd, F_GETFL);
	if (fl < 0 || fcntl(uffd, F_SETFL, fl | O_NONBLOCK) < 0) {
		ret = -errno;
		goto fail;
	}
	*seq_fd = fcntl(mm->seq_fd, F_DUPFD_CLOEXEC, 0);
	if (*seq_fd < 0) {
		ret = -errno;
		goto fail;
	}
	mm->async_uffd = uffd;
	mm->async_features = features;
	/* events of TRACK_ASYNC memory (REMOVE, UNMAP, REMAP, FORK) come from here */
	uv_poll_init(s->loop, &mm->async_poll, uffd);
	mm->async_poll.data = mm;
	mm->open_handles++;
	uffd_watch(mm, &mm->async_poll, uffd);
	rep->mm_id = mm->id;
	rep->uffd_features = features;
	rep->seq_slots = seq_area_slots(mm);
	log_info("mm %llu: async uffd attached (features 0x%llx)", (unsigned long long)mm->id,
		 (unsigned long long)features);
	return 0;
fail:
	close(uffd);
	return ret;
}

void mm_release(struct mm *mm, const char *why)
{
	struct interval *iv;
	struct receiver *r;

	if (mm->dead)
		return;
	log_info("mm %llu: pid %d released: %s", (unsigned long long)mm->id, (int)mm->pid, why);
	mm->dead = true;
	inval_drop_all(mm);
	while (!list_empty(&mm->fork_waits)) {
		struct mm_waiter *w = list_first_entry(&mm->fork_waits, struct mm_waiter, link);

		w->drop(w);
	}
	list_for_each_entry (iv, &mm->intervals, mm_link) {
		iv->active = 0;
		watch_release(iv);
		seq_slot_kill(iv);
		/* a followed child's inserter is its parent: alive, it must hear it */
		list_for_each_entry (r, &iv->receivers, iv_link)
			if (!r->owner || mm->forked)
				send_release(r, -EFAULT);
	}
	wp_drop_all(mm);
	uffd_unwatch(mm, mm->uffd);
	uv_close((uv_handle_t *)&mm->uffd_poll, mm_handle_closed);
	uv_close((uv_handle_t *)&mm->pidfd_poll, mm_handle_closed);
	uv_close((uv_handle_t *)&mm->wp_timer, mm_handle_closed);
	if (mm->async_uffd >= 0) {
		uffd_unwatch(mm, mm->async_uffd);
		uv_close((uv_handle_t *)&mm->async_poll, mm_handle_closed);
		close(mm->async_uffd);
		mm->async_uffd = -1;
	}
	if (mm->clear_refs_fd >= 0)
		close(mm->clear_refs_fd);
	if (mm->canary_fd >= 0)
		close(mm->canary_fd);
	mm->clear_refs_fd = mm->canary_fd = -1;
	/* the last reference: the owner's blocked writers resume */
	close(mm->uffd);
	mm->uffd = -1;
	close_proc_fds(mm);
}

void mm_destroy(struct mm *mm)
{
	struct interval *iv, *t;

	mm_release(mm, "owner connection closed");
	/* followed children belong to the same connection */
	while (!list_empty(&mm->forks))
		mm_destroy(list_first_entry(&mm->forks, struct mm, fork_link));
	list_del(&mm->fork_link);
	list_for_each_entry_safe (iv, t, &mm->intervals, mm_link)
		interval_destroy(iv, 0);
	list_del(&mm->link);
	mm->srv->nmms--;
	seq_area_destroy(mm);
	free(mm->gone);
	mm->gone = NULL;
	free(mm->fork_known);
	mm->fork_known = NULL;
	mm->ngone = 0;
	if (mm->owner && mm->owner->mm == mm)
		mm->owner->mm = NULL;
	mm->destroyed = true;
	if (mm->open_handles == 0)
		free(mm);
}
