/* SPDX-License-Identifier: MIT */
/*
 * interval.h - intervals: INSERT (backend choice, registration, the
 * first arm), REMOVE, SUBSCRIBE, their receivers, and their end.
 */
#ifndef UMD_INTERVAL_H
#define UMD_INTERVAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mm_types.h"
#include "server_types.h"

/**
 * mm_insert() - INSERT (request @id): register and write-protect a range
 * of @c's mm. The reply must not precede the write-protect: one the kernel
 * refuses with EAGAIN (an event in delivery) is retried after reading the
 * pending events for up to ~20 ms, blocking the loop; still refused, the
 * reply is parked (deferred_add()) and sent by this module once every
 * write-protect queued so far is applied, or at once if the owner dies
 * first (the interval then exists, dead).
 * Return: 0 with @rep filled (answer now); -EINPROGRESS parked;
 * -EBADFD not attached; -EFAULT unmapped part or dead owner; -EOPNOTSUPP
 * not trackable; -ENOSPC no slot; -ENOMEM.
 */
int mm_insert(struct client *c, uint64_t id, const struct ump_insert *req,
	      struct ump_insert_reply *rep);

/**
 * mm_remove() - REMOVE: the inserter removes the interval (subscribers get
 * EV_RELEASE -ENOENT), a subscriber unsubscribes.
 * Return: 0; -ENOENT no interval of that id that @c inserted or subscribed.
 */
int mm_remove(struct client *c, uint64_t interval_id);

/**
 * mm_subscribe() - SUBSCRIBE to another connection's interval.
 * @seq_fd: on success a new fd of the owner's seq area
 * Return: 0; -ESRCH no such pid/interval; -EPERM other uid; -EBUSY already
 * subscribed on this connection; -ENOMEM.
 */
int mm_subscribe(struct client *c, const struct ump_subscribe *req, struct ump_subscribe_reply *rep,
		 int *seq_fd);

/** receiver_free() - end a subscription; its pending acks count as given. */
void receiver_free(struct receiver *r);

/** receiver_new() - a receiver of @iv on @c; NULL without memory. */
struct receiver *receiver_new(struct interval *iv, struct client *c, bool sync, bool owner);

/** send_release() - EV_RELEASE(@error) to @r's connection. */
void send_release(struct receiver *r, int error);

/** watch_release() - tell the watchers of @iv's address space that @iv ended. */
void watch_release(struct interval *iv);

/**
 * charge_interval() - count an interval of @len bytes against the owner
 * uid's limits. Return: 0; -errno (refused: logged).
 */
int charge_interval(struct mm *mm, uint64_t len);

/** uncharge_interval() - undo charge_interval(). */
void uncharge_interval(struct mm *mm, uint64_t len);

/**
 * interval_destroy() - free @iv; subscribers get EV_RELEASE(@error)
 * unless @error is 0.
 */
void interval_destroy(struct interval *iv, int error);

#endif /* UMD_INTERVAL_H */
