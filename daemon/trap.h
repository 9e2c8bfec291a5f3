/* SPDX-License-Identifier: MIT */
/*
 * trap.h - TRAP requests: a page-table change announced before it happens.
 *
 * In trap mode (UM_CONNECT_TRAP_VMA) the owner's library stops every
 * thread that calls mprotect, munmap, mremap, madvise (advice that zaps),
 * mmap MAP_FIXED, shmdt or brk in a seccomp user notification and asks
 * here, on a connection of its own, whether the call may go ahead. The
 * answer comes once every synchronous receiver of the intervals the call
 * meets has acknowledged the invalidation (at once when it meets none);
 * the record stays in flight, seqs odd, until the owner's maps or
 * pagemap show the change and its mmap lock has been released, or
 * TRAP_SETTLE_MS ran out (the call failed, or changed nothing visible).
 */
#ifndef UMD_TRAP_H
#define UMD_TRAP_H

#include <stdint.h>

#include "umirror_proto.h"

struct client;

/**
 * trap_request() - TRAP from @c (request @id).
 *
 * The address space is that of @c's process (SO_PEERCRED), attached by
 * another connection of it; with UMP_TRAP_CHILD that of the process of
 * thread @req->tid, if it is a child the daemon follows
 * (UMP_INSERT_FOLLOW_FORK) for an owner connection of @c's process. Reads the owner's maps and
 * pagemap over the ranges (their state before the call), starts a held invalidation. Waits for
 * nothing (the reply is parked until the acks are in). Return: 0 with @rep->hits 0 (nothing
 * mirrored there: answered now); -EINPROGRESS (parked); -ENOENT no attached address space of @c's
 * pid (UMP_TRAP_CHILD: @req->tid's process is no followed child of it); -EPERM trap mode forbidden
 * (umirrord --trap=forbid); -ENOMEM.
 */
int trap_request(struct client *c, uint64_t id, const struct ump_trap *req,
		 struct ump_trap_reply *rep);

/**
 * trap_handover() - TRAP_HANDOVER from @c: keep @fd (the process's seccomp
 * listener or its trap state memfd) until @c is gone; never receive from
 * the listener while @c is open.
 * Takes @fd (closed on error). The message has no reply.
 * Return: 0; -EPERM trap mode forbidden, or this daemon cannot serve
 * listeners (UMP_PFEAT_TRAP_HANDOVER not granted); -EBADF @fd is not a
 * seccomp listener, or not a memfd sealed against shrinking; -EBUSY this
 * connection already handed that over.
 */
int trap_handover(struct client *c, const struct ump_trap_handover *h, int fd);

/**
 * trap_client_gone() - @c is being freed (its socket still open): if its
 * peer closed its end (the process exited or exec'd: no trap thread is
 * left to receive), give the handed-over listener to the serving thread;
 * else (the daemon drops a live peer: its trap thread keeps serving)
 * close it. Waits for nothing.
 */
void trap_client_gone(struct client *c);

#endif /* UMD_TRAP_H */
