/* SPDX-License-Identifier: MIT */
/*
 * dirty.h - tracking backends and dirty-page harvest (library-private
 * part; the public functions are in umirror.h).
 */
#ifndef UM_DIRTY_H
#define UM_DIRTY_H

#include "types.h"

/**
 * dirty_async_prepare() - before a UM_INTERVAL_TRACK_ASYNC insert: hand the
 * daemon a second userfaultfd for WP_ASYNC tracking, once per connection,
 * when its kernel features have WP_ASYNC and PAGEMAP_SCAN. Without them,
 * or when the daemon refuses, the daemon picks another backend.
 * @c: client; the caller holds req_lock and the first uffd is attached
 *
 * Waits for: one round trip the first time. Holds: req_lock (the caller's).
 * Return: 0; -ENOTCONN or -ETIMEDOUT (the connection is unusable).
 */
int dirty_async_prepare(struct um_client *c);

/**
 * dirty_learn_backend() - a subscriber learns @iv's backend from the
 * daemon's LIST (the subscribe reply does not carry it); left 0 ("?")
 * when the daemon does not list it.
 * @c: client; the caller holds req_lock
 *
 * Waits for: one round trip. Holds: req_lock (the caller's), c->lock to
 * store the result.
 */
void dirty_learn_backend(struct um_client *c, struct um_interval *iv);

#endif /* UM_DIRTY_H */
