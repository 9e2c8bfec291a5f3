/* SPDX-License-Identifier: MIT */
/*
 * scan.h - the revalidation scan: what userfaultfd never reports
 * (migration, swap-out, KSM, THP split/collapse, reclaim, mprotect) is
 * found by re-walking mirrored intervals and comparing with last time.
 */
#ifndef UMD_SCAN_H
#define UMD_SCAN_H

struct client;
struct um_revalidate;
struct um_revalidate_reply;

/**
 * scan_request() - REVALIDATE from @c: set the period, scan now if asked.
 * Return: 0 (@rep filled); -EPERM not a receiver; -ENOENT; -EFAULT dead.
 */
int scan_request(struct client *c, const struct um_revalidate *req,
		 struct um_revalidate_reply *rep);

#endif /* UMD_SCAN_H */
