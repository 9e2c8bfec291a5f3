/* SPDX-License-Identifier: MIT */
/*
 * gone.h - the spans of an address space's intervals unmapped since they
 * were inserted (UNMAP, REMAP source): they snapshot as holes and fault
 * -EFAULT until an insert registers them anew.
 */
#ifndef UMD_GONE_H
#define UMD_GONE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mm_types.h"

/**
 * mm_gone() - does [@start, @end) meet a part of an interval that was
 * unmapped since it was inserted (it snapshots as a hole, faults -EFAULT)?
 * Waits for and holds nothing.
 */
bool mm_gone(const struct mm *mm, uint64_t start, uint64_t end);

/** gone_clear() - [@start, @end) is registered anew (an insert): no longer gone. */
void gone_clear(struct mm *mm, uint64_t start, uint64_t end);

/** gone_mark() - remember the parts of intervals that [@start, @end) unmapped. */
void gone_mark(struct mm *mm, uint64_t start, uint64_t end);

#endif /* UMD_GONE_H */
