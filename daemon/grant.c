/* SPDX-License-Identifier: MIT */
/* grant.c - placeholder until the grant module lands (contract in grant.h). */
#include <errno.h>

#include "grant.h"

int grant_request(struct client *c, const struct um_grant *req)
{
	(void)c, (void)req;
	return -EOPNOTSUPP;
}

bool grant_allows(const struct client *c, const struct interval *iv)
{
	(void)c, (void)iv;
	return false;
}
