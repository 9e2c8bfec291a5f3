/* SPDX-License-Identifier: MIT */
/*
 * seq.c - the seq area and its slots (seq.h).
 */
#include "seq.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SEQ_AREA_SIZE (UM_SEQ_SLOTS * sizeof(struct um_seq_slot))

static struct um_seq_slot *slot_of(const struct interval *iv)
{
	return &iv->mm->seq[iv->slot];
}

static void seq_store(struct um_seq_slot *s, uint64_t v)
{
	__atomic_store_n(&s->seq, v, __ATOMIC_RELEASE);
}

static void seq_wake(struct um_seq_slot *s)
{
	/* shared futex: the waiters map the memfd in other processes */
	syscall(SYS_futex, um_seq_futex_word(s), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

uint64_t interval_seq(const struct interval *iv)
{
	return __atomic_load_n(&slot_of(iv)->seq, __ATOMIC_ACQUIRE);
}

void interval_seq_begin(struct interval *iv)
{
	struct um_seq_slot *s = slot_of(iv);

	if (iv->active++ == 0)
		seq_store(s, s->seq + 1);
}

void interval_seq_end(struct interval *iv)
{
	struct um_seq_slot *s = slot_of(iv);

	if (iv->active == 0 || --iv->active)
		return;
	seq_store(s, s->seq + 1);
	seq_wake(s);
}

int seq_slot_alloc(struct mm *mm, uint32_t *out)
{
	/* round robin: a freed slot is reused as late as possible */
	for (uint32_t k = 0; k < UM_SEQ_SLOTS; k++) {
		uint32_t i = (mm->next_slot + k) % UM_SEQ_SLOTS;

		if (mm->slot_used[i / 64] & (1ull << (i % 64)))
			continue;
		mm->slot_used[i / 64] |= 1ull << (i % 64);
		mm->next_slot = (i + 1) % UM_SEQ_SLOTS;
		seq_store(&mm->seq[i], 0);
		__atomic_store_n(&mm->seq[i].flags, UM_SLOT_LIVE, __ATOMIC_RELEASE);
		*out = i;
		return 0;
	}
	return -ENOSPC;
}

/* mark dead, make odd, wake: readers of a gone interval must notice */
void seq_slot_kill(struct interval *iv)
{
	struct um_seq_slot *s = slot_of(iv);

	__atomic_store_n(&s->flags, UM_SLOT_DEAD, __ATOMIC_RELEASE);
	seq_store(s, s->seq + ((s->seq & 1) ? 2 : 1));
	seq_wake(s);
}

void seq_slot_free(struct mm *mm, uint32_t i)
{
	mm->slot_used[i / 64] &= ~(1ull << (i % 64));
}

int seq_area_create(struct mm *mm)
{
	void *p;
	int fd;

	fd = memfd_create("umirror-seq", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, SEQ_AREA_SIZE) < 0)
		goto fail;
	p = mmap(NULL, SEQ_AREA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	if (fcntl(fd, F_ADD_SEALS,
		  F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		munmap(p, SEQ_AREA_SIZE);
		goto fail;
	}
	mm->seq = p;
	mm->seq_fd = fd;
	return 0;
fail:
	close(fd);
	return -ENOMEM;
}

void seq_area_destroy(struct mm *mm)
{
	if (!mm->seq)
		return;
	munmap(mm->seq, SEQ_AREA_SIZE);
	close(mm->seq_fd);
	mm->seq = NULL;
	mm->seq_fd = -1;
}
