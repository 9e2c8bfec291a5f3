/* SPDX-License-Identifier: MIT */
/*
 * place.h - NUMA placement: node queries for snapshots and PLACE hints
 * (move_pages(2) on the owner, announced as a MIGRATE invalidation).
 */
#ifndef UMD_PLACE_H
#define UMD_PLACE_H

#include <stdint.h>

struct client;
struct um_place;
struct um_place_reply;

/**
 * place_request() - PLACE from @c (request id @id).
 * Return: 0 or -errno to answer now with @rep; -EINPROGRESS when parked
 * (deferred_add) until the invalidation completed and the pages moved.
 */
int place_request(struct client *c, uint64_t id, const struct um_place *req,
		  struct um_place_reply *rep);

#endif /* UMD_PLACE_H */
