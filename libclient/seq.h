/* SPDX-License-Identifier: MIT */
/*
 * seq.h - the read side of an interval's sequence word (library-private).
 */
#ifndef UM_SEQ_H
#define UM_SEQ_H

#include <stdbool.h>
#include <stdint.h>

#include "types.h"

/**
 * seq_dead() - must @iv's read side fail with -EFAULT?
 * Return: true when released, evicted, its slot is marked dead by the
 * daemon, or the connection is gone. Lockless: waits for and holds nothing.
 */
bool seq_dead(const struct um_interval *iv);

/**
 * seq_wait_even() - wait until @iv's sequence is even.
 * @iv: interval
 * @timeout_ms: > 0
 * @seq: the even value on success
 *
 * Waits for: a futex wake on the shared sequence word, up to @timeout_ms.
 * Holds: nothing. Return: 0, -EFAULT (dead), -ETIMEDOUT.
 */
int seq_wait_even(const struct um_interval *iv, unsigned int timeout_ms, uint64_t *seq);

/**
 * seq_load() - @iv's current sequence value (acquire load).
 * Return: the value. Lockless: waits for and holds nothing.
 */
uint64_t seq_load(const struct um_interval *iv);

/**
 * seq_wake_all() - FUTEX_WAKE every waiter on @iv's sequence word (a wake
 * works on a read-only mapping), so that they see it dead.
 * Waits for and holds nothing.
 */
void seq_wake_all(const struct um_interval *iv);

/**
 * seq_map_slot() - map read-only the page of seq area @fd holding @slot.
 * @fd: the seq area memfd from the reply (not consumed)
 * @seq_slots: the area's size the reply named, <= UMP_SEQ_SLOTS_MAX
 * @slot: < @seq_slots
 * @map: the mapping, UMP_PAGE_SIZE bytes, for munmap() when done
 * @s: the slot within it; it never moves while @map is mapped
 *
 * A receiver reads only its own slot: one page of a seq area that may be
 * 16 MiB long (UMP_SEQ_SLOTS_MAX), whatever the slot's number.
 * Return: 0; -EPROTO (bad sizes, or the file is shorter); -errno of mmap.
 */
int seq_map_slot(int fd, uint32_t seq_slots, uint32_t slot, void **map,
		 const struct ump_seq_slot **s);

#endif /* UM_SEQ_H */
