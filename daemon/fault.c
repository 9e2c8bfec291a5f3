/* SPDX-License-Identifier: MIT */
/* fault.c - placeholder until the fault module lands (contract in fault.h). */
#include <errno.h>

#include "fault.h"

int fault_request(struct client *c, uint64_t id, const struct um_fault *req,
		  struct um_snapshot_reply *rep)
{
	(void)c, (void)id, (void)req, (void)rep;
	return -EOPNOTSUPP;
}

void fault_populate_done(struct client *c, const struct um_populate_done *m)
{
	(void)c, (void)m;
}
