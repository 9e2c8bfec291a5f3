/* SPDX-License-Identifier: MIT */
/*
 * seq.c - the read side of an interval's sequence word (the
 * mmu_interval_read_begin/read_retry protocol over the shared seq area),
 * and the accessors of struct um_interval. Lock-free.
 */
#include "seq.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "call.h"

static uint32_t *futex_word(const struct um_interval *iv)
{
	return ump_seq_futex_word((struct ump_seq_slot *)iv->slot);
}

void seq_wake_all(const struct um_interval *iv)
{
	/* shared, not private: the daemon and other processes map the same word */
	syscall(SYS_futex, futex_word(iv), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int seq_map_slot(int fd, uint32_t seq_slots, uint32_t slot, void **map,
		 const struct ump_seq_slot **s)
{
	uint64_t at = (uint64_t)slot * sizeof(struct ump_seq_slot);
	uint64_t off = at & ~(uint64_t)(UMP_PAGE_SIZE - 1);
	struct stat st;
	void *p;

	if (!seq_slots || seq_slots > UMP_SEQ_SLOTS_MAX || slot >= seq_slots)
		return -EPROTO;
	if (fstat(fd, &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size < at + sizeof(**s))
		return -EPROTO;
	p = mmap(NULL, UMP_PAGE_SIZE, PROT_READ, MAP_SHARED, fd, (off_t)off);
	if (p == MAP_FAILED)
		return -errno;
	*map = p;
	*s = (const struct ump_seq_slot *)((const char *)p + (at - off));
	return 0;
}

/* --- read side -------------------------------------------------------- */

bool seq_dead(const struct um_interval *iv)
{
	return atomic_load(&iv->dead) || atomic_load(&iv->c->dead) ||
	       (__atomic_load_n(&iv->slot->flags, __ATOMIC_ACQUIRE) & UMP_SLOT_DEAD);
}

uint64_t seq_load(const struct um_interval *iv)
{
	return __atomic_load_n(&iv->slot->seq, __ATOMIC_ACQUIRE);
}

int seq_wait_even(const struct um_interval *iv, unsigned int timeout_ms, uint64_t *seq)
{
	int64_t deadline = call_now_ms() + timeout_ms;

	for (;;) {
		struct timespec ts;
		int64_t left;
		uint64_t s;

		if (seq_dead(iv))
			return -EFAULT;
		s = seq_load(iv);
		if (!(s & 1)) {
			*seq = s;
			return 0;
		}
		left = deadline - call_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000;
		/* EAGAIN (moved on already), EINTR, ETIMEDOUT: all re-check above */
		if (syscall(SYS_futex, futex_word(iv), FUTEX_WAIT, (uint32_t)s, &ts, NULL, 0) < 0 &&
		    errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT)
			return -errno;
	}
}

UM_EXPORT int um_interval_read_begin(struct um_interval *iv, uint64_t *seq)
{
	if (!iv || !seq)
		return -EINVAL;
	return seq_wait_even(iv, UM_DEFAULT_TIMEOUT_MS, seq);
}

UM_EXPORT bool um_interval_read_retry(const struct um_interval *iv, uint64_t seq)
{
	return !iv || seq_dead(iv) || seq_load(iv) != seq;
}

UM_EXPORT bool um_interval_check_retry(const struct um_interval *iv, uint64_t seq)
{
	return !iv || atomic_load_explicit(&iv->dead, memory_order_relaxed) ||
	       __atomic_load_n(&iv->slot->seq, __ATOMIC_RELAXED) != seq;
}

UM_EXPORT uint64_t um_interval_id(const struct um_interval *iv)
{
	return iv ? iv->id : 0;
}

UM_EXPORT uint64_t um_interval_start(const struct um_interval *iv)
{
	return iv ? iv->start : 0;
}

UM_EXPORT uint64_t um_interval_length(const struct um_interval *iv)
{
	return iv ? iv->length : 0;
}
