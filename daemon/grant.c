/* SPDX-License-Identifier: MIT */
/*
 * grant.c - who may subscribe to an interval.
 *
 * The owner's uid and root always may; any other uid only after the
 * inserting connection granted it. A grant is per interval (not per
 * address space): an owner exposes exactly the memory it chose. Revoking
 * stops new subscriptions only; existing ones end with REMOVE or the
 * owner, as a revoked file permission does not close open files.
 */
#include "grant.h"

#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "lookup.h"
#include "peer.h"

static int grant_index(const struct interval *iv, uint32_t uid)
{
	for (unsigned int i = 0; i < iv->ngrants; i++)
		if (iv->grants[i] == uid)
			return (int)i;
	return -1;
}

int grant_request(struct client *c, const struct ump_grant *req)
{
	struct receiver *r = client_receiver(c, req->interval_id);
	struct interval *iv;
	int i;

	/* not ours to name: do not tell whether it exists */
	if (!r)
		return -ENOENT;
	if (!r->owner)
		return -EACCES;
	iv = r->iv;
	if (iv->mm->dead)
		return -EFAULT;
	i = grant_index(iv, req->uid);
	if (req->flags & UMP_GRANT_REVOKE) {
		if (i >= 0)
			iv->grants[i] = iv->grants[--iv->ngrants];
		return 0;
	}
	if (i >= 0)
		return 0;
	if (iv->ngrants == UM_GRANTS_MAX)
		return -ENOSPC;
	if (!iv->grants && !(iv->grants = calloc(UM_GRANTS_MAX, sizeof(*iv->grants))))
		return -ENOMEM;
	iv->grants[iv->ngrants++] = req->uid;
	log_debug("interval %llu: uid %u may subscribe", (unsigned long long)iv->id,
		  (unsigned int)req->uid);
	return 0;
}

void grant_forget(struct interval *iv)
{
	free(iv->grants);
	iv->grants = NULL;
	iv->ngrants = 0;
}

bool grant_allows(const struct client *c, const struct interval *iv)
{
	return client_may_see(c, iv->mm->uid) || grant_index(iv, c->uid) >= 0;
}
