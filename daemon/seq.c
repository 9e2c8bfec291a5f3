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

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server_types.h"

/* slots added at a time: 64 KiB of area, the size the area once had */
#define SEQ_CHUNK 4096u
#define BITMAP_WORDS(n) (((size_t)(n) + 63) / 64)

static size_t area_size(const struct mm *mm)
{
	size_t sz = (size_t)mm->seq_max * sizeof(struct ump_seq_slot);

	return (sz + UMP_PAGE_SIZE - 1) & ~(size_t)(UMP_PAGE_SIZE - 1);
}

static struct ump_seq_slot *slot_of(const struct interval *iv)
{
	return &iv->mm->seq[iv->slot];
}

static void seq_store(struct ump_seq_slot *s, uint64_t v)
{
	__atomic_store_n(&s->seq, v, __ATOMIC_RELEASE);
}

static void seq_wake(struct ump_seq_slot *s)
{
	/* shared futex: the waiters map the memfd in other processes */
	syscall(SYS_futex, ump_seq_futex_word(s), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

uint64_t interval_seq(const struct interval *iv)
{
	return __atomic_load_n(&slot_of(iv)->seq, __ATOMIC_ACQUIRE);
}

void interval_seq_begin(struct interval *iv)
{
	struct ump_seq_slot *s = slot_of(iv);

	if (iv->active++ == 0)
		seq_store(s, s->seq + 1);
}

void interval_seq_end(struct interval *iv)
{
	struct ump_seq_slot *s = slot_of(iv);

	if (iv->active == 0 || --iv->active)
		return;
	seq_store(s, s->seq + 1);
	seq_wake(s);
}

/*
 * Make room for SEQ_CHUNK more slots (up to mm->seq_max): the memfd is
 * already seq_max slots long but sparse, so this only widens the bitmap;
 * the slots' page cache appears when first written.
 */
static int seq_grow(struct mm *mm)
{
	uint32_t cap = mm->slot_cap + SEQ_CHUNK;
	uint64_t *used;

	if (mm->slot_cap >= mm->seq_max)
		return -ENOSPC;
	if (cap > mm->seq_max)
		cap = mm->seq_max;
	used = realloc(mm->slot_used, BITMAP_WORDS(cap) * sizeof(*used));
	if (!used)
		return -ENOMEM;
	memset(used + BITMAP_WORDS(mm->slot_cap), 0,
	       (BITMAP_WORDS(cap) - BITMAP_WORDS(mm->slot_cap)) * sizeof(*used));
	mm->slot_used = used;
	/* round robin goes on into the new chunk before it wraps */
	mm->next_slot = mm->slot_cap;
	mm->slot_cap = cap;
	return 0;
}

static bool slot_busy(const struct mm *mm, uint32_t i)
{
	return mm->slot_used[i / 64] & (1ull << (i % 64));
}

int seq_slot_alloc(struct mm *mm, uint32_t *out)
{
	uint32_t i = mm->next_slot;
	int ret;

	/*
	 * Round robin over the slots grown so far (a freed slot is reused as
	 * late as possible); grow only when every one of them is in use, so
	 * that the area never outgrows the most intervals ever live at once.
	 */
	if (mm->slots_live >= mm->slot_cap) {
		ret = seq_grow(mm);
		if (ret) {
			if (ret == -ENOSPC)
				log_warn(
					"mm %llu: all %u seq slots in use (--max-intervals-per-mm)",
					(unsigned long long)mm->id, mm->seq_max);
			return ret;
		}
		i = mm->next_slot;
	}
	/* a free slot exists: skip used words whole */
	while (slot_busy(mm, i)) {
		if (i % 64 == 0 && mm->slot_used[i / 64] == UINT64_MAX && i + 64 <= mm->slot_cap)
			i += 64;
		else
			i++;
		if (i >= mm->slot_cap)
			i = 0;
	}
	mm->slot_used[i / 64] |= 1ull << (i % 64);
	mm->slots_live++;
	mm->next_slot = i + 1 < mm->slot_cap ? i + 1 : 0;
	seq_store(&mm->seq[i], 0);
	__atomic_store_n(&mm->seq[i].flags, UMP_SLOT_LIVE, __ATOMIC_RELEASE);
	*out = i;
	return 0;
}

/* mark dead, make odd, wake: readers of a gone interval must notice */
void seq_slot_kill(struct interval *iv)
{
	struct ump_seq_slot *s = slot_of(iv);

	__atomic_store_n(&s->flags, UMP_SLOT_DEAD, __ATOMIC_RELEASE);
	seq_store(s, s->seq + ((s->seq & 1) ? 2 : 1));
	seq_wake(s);
}

void seq_slot_free(struct mm *mm, uint32_t i)
{
	if (i >= mm->slot_cap || !slot_busy(mm, i))
		return;
	mm->slot_used[i / 64] &= ~(1ull << (i % 64));
	mm->slots_live--;
}

uint32_t seq_area_slots(const struct mm *mm)
{
	return mm->seq_max;
}

int seq_area_create(struct mm *mm)
{
	uint32_t max = mm->srv ? mm->srv->opt.seq_slots_max : 0;
	void *p;
	int fd;

	mm->seq_max = max && max < UMP_SEQ_SLOTS_MAX ? max : UMP_SEQ_SLOTS_MAX;
	mm->slot_used = NULL;
	mm->slot_cap = mm->slots_live = mm->next_slot = 0;
	fd = memfd_create("umirror-seq", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	/*
	 * Full size at once, sealed as before: the file is sparse, so only
	 * the pages of slots ever used take memory, and the mappings (here
	 * and in every client) never have to move or grow.
	 */
	if (ftruncate(fd, area_size(mm)) < 0)
		goto fail;
	p = mmap(NULL, area_size(mm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	if (fcntl(fd, F_ADD_SEALS,
		  F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		munmap(p, area_size(mm));
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
	munmap(mm->seq, area_size(mm));
	close(mm->seq_fd);
	free(mm->slot_used);
	mm->slot_used = NULL;
	mm->slot_cap = mm->slots_live = 0;
	mm->seq = NULL;
	mm->seq_fd = -1;
}
