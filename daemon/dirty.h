/* SPDX-License-Identifier: MIT */
/*
 * dirty.h - DIRTY: which pages of an interval were written since re-armed,
 * from the interval's tracking backend (uffd-wp log, WP_ASYNC +
 * PAGEMAP_SCAN, soft-dirty).
 */
#ifndef UMD_DIRTY_H
#define UMD_DIRTY_H

struct client;
struct um_dirty;
struct um_dirty_reply;

/**
 * dirty_request() - DIRTY from @c: write um_dirty_rec[] into @c's result
 * buffer, re-arm what was reported when asked.
 * Return: 0 (@rep filled); -EPERM not a receiver of the interval; -ENOENT;
 * -EINVAL range outside the interval; -EOPNOTSUPP backend cannot see
 * writes; -EFAULT dead owner.
 */
int dirty_request(struct client *c, const struct um_dirty *req, struct um_dirty_reply *rep);

#endif /* UMD_DIRTY_H */
