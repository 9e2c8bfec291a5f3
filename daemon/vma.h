/* SPDX-License-Identifier: MIT */
/*
 * vma.h - walking the VMAs of an attached address space.
 */
#ifndef UMD_VMA_H
#define UMD_VMA_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct mm;

/* one VMA as vma_next() and vma_walk() report it */
struct vma {
	uint64_t start, end, page_size;
	uint64_t inode, offset; /* the file behind it (0 for none), and where in it */
	bool read, write, exec, shared;
	bool anon; /* private memory with no file behind it (MAP_ANONYMOUS, heap, stack) */
};

/**
 * vma_walk() - call @cb for each VMA of @mm that meets [@start, @end),
 * in ascending order (holes are simply not reported).
 * Waits for: PROCMAP_QUERY or /proc/PID/maps reads. Holds nothing.
 * Return: 0, the first non-zero @cb result, or -errno the VMAs could not be read.
 */
int vma_walk(struct mm *mm, uint64_t start, uint64_t end,
	     int (*cb)(const struct vma *v, void *priv), void *priv);

/**
 * vma_covered() - is [@start, @end) of @mm mapped without holes?
 * Return: 0, -EFAULT a hole, -errno the VMAs could not be read.
 */
int vma_covered(struct mm *mm, uint64_t start, uint64_t end);

/**
 * vma_check() - may [@start, @end) of @mm be faulted in (@write:
 * for writing)? Reads the VMAs only.
 * Return: 0; -EFAULT a hole; -EPERM a VMA without read permission, or
 * without write permission when @write; -errno the VMAs could not be read.
 */
int vma_check(struct mm *mm, uint64_t start, uint64_t end, bool write);

/* VMAs in ascending order: PROCMAP_QUERY, else a streamed /proc/PID/maps */
struct vma_iter {
	struct mm *mm;
	FILE *maps;
};

/**
 * vma_next() - the VMA of @it's address space that covers @addr, or the
 * next one above it, in *@v. Start with @it zeroed but for its mm; end
 * with vma_iter_done(). Calls must ask for ascending addresses.
 * Waits for: one PROCMAP_QUERY, or reads of /proc/PID/maps.
 * Return: 0; -ENOENT no VMA at or above @addr; -errno.
 */
int vma_next(struct vma_iter *it, uint64_t addr, struct vma *v);

/** vma_iter_done() - free what vma_next() opened. */
void vma_iter_done(struct vma_iter *it);

#endif /* UMD_VMA_H */
