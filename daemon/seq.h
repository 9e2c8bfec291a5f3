/* SPDX-License-Identifier: MIT */
/*
 * seq.h - the seq area: one sealed memfd of seq_max slots (at most
 * UMP_SEQ_SLOTS_MAX) per address space, shared read-only with the clients;
 * a slot per interval whose seq is odd while an invalidation of it is in
 * flight (futex-woken on even).
 *
 * The memfd has its full size from the start and is sealed against every
 * change (F_SEAL_FUTURE_WRITE|SHRINK|GROW|SEAL), so no mapping of it ever
 * moves: a pointer to a slot stays good for the area's life. It is sparse:
 * slots are handed out from [0, slot_cap), which grows 4096 slots at a time
 * only when all of it is in use, so the pages written are those of the most
 * intervals ever live at once. Those pages stay until the area goes: the
 * seals forbid punching holes, the daemon's included.
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
 * seq_area_create() - make @mm's seq area (memfd of
 * srv->opt.seq_slots_max slots, UMP_SEQ_SLOTS_MAX if 0, sealed against
 * the clients' writes, mapped here). Return: 0 (mm->seq, mm->seq_fd set)
 * or -ENOMEM.
 */
int seq_area_create(struct mm *mm);

/** seq_area_destroy() - unmap and close @mm's seq area, if it has one. */
void seq_area_destroy(struct mm *mm);

/** seq_area_slots() - slots in @mm's seq area file (replies' seq_slots). */
uint32_t seq_area_slots(const struct mm *mm);

/**
 * seq_slot_alloc() - a free slot of @mm, LIVE with seq 0, round robin over
 * the slots grown so far (a freed slot is reused as late as possible);
 * grows them by 4096 when all are in use.
 * Return: 0 with *@out; -ENOSPC all seq_max in use (logged); -ENOMEM.
 */
int seq_slot_alloc(struct mm *mm, uint32_t *out);

/** seq_slot_kill() - mark @iv's slot DEAD, make it odd, wake its waiters. */
void seq_slot_kill(struct interval *iv);

/** seq_slot_free() - give slot @i of @mm back (a free slot: no-op). */
void seq_slot_free(struct mm *mm, uint32_t i);

#endif /* UMD_SEQ_H */
