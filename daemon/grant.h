/* SPDX-License-Identifier: MIT */
/*
 * grant.h - who may subscribe to an interval: root, the owner's uid, and
 * uids the owner granted (GRANT).
 */
#ifndef UMD_GRANT_H
#define UMD_GRANT_H

#include <stdbool.h>

struct client;
struct interval;
struct ump_grant;

/**
 * grant_request() - GRANT from @c (must have inserted the interval).
 * Return: 0; -ENOENT; -EPERM @c only subscribed; -ENOSPC full; -EFAULT dead;
 * -ENOMEM (the first grant of an interval allocates its list).
 */
int grant_request(struct client *c, const struct ump_grant *req);

/** grant_allows() - may @c subscribe to @iv? (root, owner uid, granted uid) */
bool grant_allows(const struct client *c, const struct interval *iv);

/** grant_forget() - free @iv's grants (when the interval goes). Waits for nothing. */
void grant_forget(struct interval *iv);

#endif /* UMD_GRANT_H */
