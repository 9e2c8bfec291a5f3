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

#endif /* UM_SEQ_H */
