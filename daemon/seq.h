/* SPDX-License-Identifier: MIT */
/*
 * seq.h - the seq area: one sealed memfd of UM_SEQ_SLOTS slots per address
 * space, shared read-only with the clients; a slot per interval whose seq
 * is odd while an invalidation of it is in flight (futex-woken on even).
 */
#ifndef UMD_SEQ_H
#define UMD_SEQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mm_types.h"

/** interval_seq_begin() - active++; on 0 -> 1 make the slot's seq odd. */
void interval_seq_begin(struct interval *iv);

/** interval_seq_end() - active--; on 1 -> 0 make the seq even, FUTEX_WAKE. */
void interval_seq_end(struct interval *iv);

/** interval_seq() - the slot's current seq (acquire load). */
uint64_t interval_seq(const struct interval *iv);

/**
 * seq_area_create() - make @mm's seq area (memfd, sealed against the
 * clients' writes, mapped here). Return: 0 (mm->seq, mm->seq_fd set) or
 * -ENOMEM.
 */
int seq_area_create(struct mm *mm);

/** seq_area_destroy() - unmap and close @mm's seq area, if it has one. */
void seq_area_destroy(struct mm *mm);

/**
 * seq_slot_alloc() - a free slot of @mm, LIVE with seq 0, round robin (a
 * freed slot is reused as late as possible).
 * Return: 0 with *@out; -ENOSPC all in use.
 */
int seq_slot_alloc(struct mm *mm, uint32_t *out);

/** seq_slot_kill() - mark @iv's slot DEAD, make it odd, wake its waiters. */
void seq_slot_kill(struct interval *iv);

/** seq_slot_free() - give slot @i of @mm back. */
void seq_slot_free(struct mm *mm, uint32_t i);

#endif /* UMD_SEQ_H */
