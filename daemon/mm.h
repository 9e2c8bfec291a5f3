/* SPDX-License-Identifier: MIT */
/*
 * mm.h - attaching an address space (ATTACH: the owner's userfaultfd,
 * proven to be its own), and its release and destruction.
 */
#ifndef UMD_MM_H
#define UMD_MM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mm_types.h"
#include "server_types.h"

/**
 * mm_attach() - ATTACH: take over the owner's userfaultfd.
 * @c: the owner's connection (HELLO done)
 * @uffd: received fd; consumed in every case
 * @req: the request (its probe page)
 * @rep: reply body filled on success
 * @seq_fd: on success a new fd of the seq area for the reply
 *
 * Does UFFDIO_API, proves on @req->probe that @uffd serves @c's own
 * address space (write-protect through it, read @c's pagemap: four
 * ioctls, three preads; the probe is left as it was), opens
 * /proc/PID/pagemap (and maps for PROCMAP_QUERY), creates the sealed seq
 * area and starts polling the uffd and pidfd. Waits for nothing.
 * Return: 0; -EBUSY already attached (connection or pid); -EBADF not a
 * userfaultfd, or not @c's; -EINVAL UFFDIO_API refused, or the probe is
 * not a present page of @c's; -EAGAIN a fork/mremap of the uffd's
 * address space in flight during the proof; -ESRCH owner gone; -errno.
 */
int mm_attach(struct client *c, int uffd, const struct ump_attach *req,
	      struct ump_attach_reply *rep, int *seq_fd);

/**
 * mm_attach_async() - ATTACH with UMP_ATTACH_ASYNC: the owner's second
 * userfaultfd, for UMP_INSERT_TRACK_ASYNC intervals. UFFDIO_API with
 * WP_ASYNC (and WP_UNPOPULATED and the event features when offered), the
 * same proof on @req->probe as mm_attach(); polled like the first. @uffd
 * is consumed in every case; @seq_fd gets another fd of the seq area (the
 * reply type carries one). Waits for nothing.
 * Return: 0; -EBADFD not attached; -EBUSY already has one; -EOPNOTSUPP no
 * WP_ASYNC or PAGEMAP_SCAN (absent or masked); -EBADF not a userfaultfd,
 * or not @c's; -EINVAL UFFDIO_API refused or a bad probe; -EAGAIN as
 * mm_attach(); -EFAULT dead owner.
 */
int mm_attach_async(struct client *c, int uffd, const struct ump_attach *req,
		    struct ump_attach_reply *rep, int *seq_fd);

/**
 * mm_release() - the owner is gone: every slot DEAD and odd (waiters wake),
 * subscribers get EV_RELEASE -EFAULT, pending invalidations are dropped,
 * uffd/pagemap closed so the owner's blocked writers resume. Idempotent.
 */
void mm_release(struct mm *mm, const char *why);

/**
 * mm_destroy() - release, then free every interval and receiver and the
 * mm itself (once its uv handles have closed). The owner's connection is
 * going away.
 */
void mm_destroy(struct mm *mm);

/**
 * mm_open() - a new address space for @pid (uid @uid) watched through
 * @uffd (UFFDIO_API done, @features enabled) and @pidfd (dup'ed), owned
 * by connection @owner: pagemap, maps, mem opened, seq area made, polls
 * started (server.hooks.uffd_cb reads the uffd). The owner's own (ATTACH)
 * and its followed children (fork.c) are made here alike.
 * Return: 0 with *@out and a new fd of the seq area in *@seq_fd; -errno
 * (@uffd is the caller's to close then).
 */
int mm_open(struct server *s, struct client *owner, pid_t pid, uid_t uid, int pidfd, int uffd,
	    uint64_t features, struct mm **out, int *seq_fd);

#endif /* UMD_MM_H */
