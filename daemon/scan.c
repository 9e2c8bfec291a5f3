/* SPDX-License-Identifier: MIT */
/* scan.c - placeholder until the scan module lands (contract in scan.h). */
#include <errno.h>

#include "scan.h"

int scan_request(struct client *c, const struct um_revalidate *req,
		 struct um_revalidate_reply *rep)
{
	(void)c, (void)req, (void)rep;
	return -EOPNOTSUPP;
}
