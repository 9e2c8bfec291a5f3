/* SPDX-License-Identifier: MIT */
/* place.c - placeholder until the placement module lands (contract in place.h). */
#include <errno.h>

#include "place.h"

int place_request(struct client *c, uint64_t id, const struct um_place *req,
		  struct um_place_reply *rep)
{
	(void)c, (void)id, (void)req, (void)rep;
	return -EOPNOTSUPP;
}
