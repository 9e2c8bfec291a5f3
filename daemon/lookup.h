/* SPDX-License-Identifier: MIT */
/*
 * lookup.h - finding address spaces, intervals and receivers, and the
 * intervals a span meets. Reads the types only; waits for and holds
 * nothing.
 */
#ifndef UMD_LOOKUP_H
#define UMD_LOOKUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mm_types.h"
#include "server_types.h"

/*
 * The intervals of an address space that a span meets, with the part of
 * each that is affected: the hits of one invalidation.
 */
struct hit_walk {
	struct inval_hit *v;
	unsigned int n, cap;
	uint64_t start, end;
	bool whole;	   /* the whole interval, not the intersection */
	bool written_only; /* only intervals with their written flag */
	struct inval_hit stack[16];
};

/**
 * mm_collect() - fill @h (zeroed by the caller, @whole / @written_only set
 * as wanted) with the intervals of @mm that meet [@start, @end).
 * Return: 0, or -ENOMEM (@h holds what was found so far). Always follow
 * with mm_collect_done().
 */
int mm_collect(struct mm *mm, struct hit_walk *h, uint64_t start, uint64_t end);

/** mm_collect_done() - free what mm_collect() allocated. */
void mm_collect_done(struct hit_walk *h);

/** mm_find_pid() - the live (not dead) address space of @pid, or NULL. */
struct mm *mm_find_pid(struct server *s, pid_t pid);

/**
 * receiver_access() - may @c work on [@start, @end) of interval @id?
 * @out: @c's receiver of it on success
 * Return: 0; -ENOENT no such interval; -EPERM @c neither inserted nor
 * subscribed it; -EINVAL the span is empty or not inside it; -EFAULT its
 * owner is gone.
 */
int receiver_access(struct client *c, uint64_t id, uint64_t start, uint64_t end,
		    struct receiver **out);

/** interval_find() - the interval of id @id in any address space, or NULL. */
struct interval *interval_find(struct server *s, uint64_t id);

/** client_receiver() - @c's receiver of interval @id, or NULL; a hash lookup, O(1). */
struct receiver *client_receiver(struct client *c, uint64_t id);

/**
 * interval_armed() - is @iv's memory kept write-protected on the owner's
 * uffd (UFFD_WP), so that a re-arm (after REMOVE, FORK) is due? SOFT_DIRTY
 * intervals are registered there too but protected only during a harvest.
 */
static inline bool interval_armed(const struct interval *iv)
{
	return iv->backend == UMP_BACKEND_UFFD_WP;
}

#endif /* UMD_LOOKUP_H */
