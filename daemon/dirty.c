/* SPDX-License-Identifier: MIT */
/* dirty.c - placeholder until the dirty module lands (contract in dirty.h). */
#include <errno.h>

#include "dirty.h"

int dirty_request(struct client *c, const struct um_dirty *req, struct um_dirty_reply *rep)
{
	(void)c, (void)req, (void)rep;
	return -EOPNOTSUPP;
}
