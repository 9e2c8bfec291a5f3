/* SPDX-License-Identifier: MIT */
/*
 * fault.h - FAULT (hmm_range_fault across processes): read faults through
 * /proc/PID/mem, write faults by an invalidation plus the owner's own
 * MADV_POPULATE_WRITE (UMP_EV_POPULATE / UMP_MSG_POPULATE_DONE).
 */
#ifndef UMD_FAULT_H
#define UMD_FAULT_H

#include <stdint.h>

struct client;
struct ump_fault;
struct ump_populate_done;
struct ump_snapshot_reply;

/**
 * fault_request() - FAULT from @c (request id @id).
 * @rep: filled when the request is answered at once
 *
 * Return: 0 or -errno to answer now with @rep; -EINPROGRESS when the
 * reply was parked (deferred_add) and will be sent by this module.
 */
int fault_request(struct client *c, uint64_t id, const struct ump_fault *req,
		  struct ump_snapshot_reply *rep);

/**
 * fault_populate_done() - POPULATE_DONE from an owner's connection: finish
 * the write fault waiting for it. An unknown token is ignored (late).
 */
void fault_populate_done(struct client *c, const struct ump_populate_done *m);

#endif /* UMD_FAULT_H */
