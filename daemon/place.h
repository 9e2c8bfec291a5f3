/* SPDX-License-Identifier: MIT */
/*
 * place.h - NUMA placement: node queries for snapshots and PLACE hints
 * (move_pages(2) on the owner, announced as a MIGRATE invalidation).
 */
#ifndef UMD_PLACE_H
#define UMD_PLACE_H

#include <stdint.h>

struct client;
struct mm;
struct ump_place;
struct ump_place_reply;

/**
 * place_request() - PLACE from @c (request id @id).
 * Return: 0 or -errno to answer now with @rep; -EINPROGRESS when parked
 * (deferred_add) until the invalidation completed and the pages moved.
 */
int place_request(struct client *c, uint64_t id, const struct ump_place *req,
		  struct ump_place_reply *rep);

/**
 * place_nodes() - the NUMA node of each of @npages pages from @start of
 * @mm (move_pages(2) query on the owner; nothing moves).
 * @out: node >= 0, or -ENOENT not present, -EFAULT (zero page, no
 *       mapping), per page; all -EFAULT when the query failed
 *
 * Waits for: the owner's page-table walk. Holds nothing.
 * Return: 0, -EOPNOTSUPP no NUMA in the kernel, -errno (owner gone).
 */
int place_nodes(struct mm *mm, uint64_t start, uint64_t npages, int32_t *out);

#endif /* UMD_PLACE_H */
