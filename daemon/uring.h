/* SPDX-License-Identifier: MIT */
/*
 * uring.h - batched reads through one restricted io_uring, or pread.
 *
 * The daemon creates its ring once, before the seccomp filter is in force
 * (io_uring_setup and io_uring_register are not on the allow-list;
 * io_uring_enter is). The ring is created disabled, restricted to
 * IORING_OP_READ (of the SQE flags, IOSQE_ASYNC only), then enabled: a
 * bug elsewhere in the daemon cannot turn it into a way around the
 * sandbox. When the ring
 * cannot be made (kernel.io_uring_disabled, a seccomp filter around us,
 * --mask-features io_uring) every read is a plain pread and the callers
 * notice nothing but the speed.
 *
 * Everything runs on the loop thread: the ring is not locked.
 */
#ifndef UMD_URING_H
#define UMD_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct uring;

/* One read of a batch. @res: bytes read (all of @len unless the file ends) or -errno. */
struct uring_req {
	int fd;
	void *buf;
	size_t len;
	uint64_t off;
	ssize_t res;
};

/**
 * uring_create() - a restricted ring of @entries submission slots.
 * @entries: slots (a power of two is used; batches larger than this are
 *           submitted in rounds)
 * @out: the ring on success
 *
 * Sets the ring up with IORING_SETUP_R_DISABLED, registers the
 * restrictions (IORING_OP_READ only, of the SQE flags IOSQE_ASYNC only,
 * no register opcode)
 * and enables it. Waits for nothing.
 * Return: 0; -ENOSYS / -EPERM when io_uring is unavailable (kernel
 * setting, seccomp); -ENOMEM; another -errno.
 */
int uring_create(unsigned int entries, struct uring **out);

/** uring_destroy() - close @r (NULL is a no-op). Waits for nothing in flight. */
void uring_destroy(struct uring *r);

/**
 * uring_read_batch() - perform @n reads, filling each @reqs[i].res.
 * @r: a ring, or NULL for pread one by one
 * @reqs: the reads
 * @n: how many
 *
 * Reads that come back short (a proc file may stop at a page-table
 * boundary) are completed with pread. Waits for: every read.
 * Return: 0 (per-read results in .res), or -errno when the ring itself
 * failed (the reads were then redone with pread, results still in .res).
 */
int uring_read_batch(struct uring *r, struct uring_req *reqs, unsigned int n);

/**
 * uring_global_init() - create the daemon's ring unless @disabled.
 * @disabled: true when io_uring is masked (--mask-features io_uring)
 *
 * Call once at start-up, before the sandbox. A failure is logged once
 * and leaves the daemon on pread. Return: 0 ring made; -errno otherwise.
 */
int uring_global_init(bool disabled);

/** uring_global() - the daemon's ring, or NULL (pread). Waits for nothing. */
struct uring *uring_global(void);

/** uring_global_exit() - destroy the daemon's ring (shutdown). */
void uring_global_exit(void);

/**
 * uring_read_range() - read @len bytes at @off of @fd through the daemon's
 * ring (or pread), looping over short reads. A read longer than 256 KiB
 * is split into up to 16 chunks read in parallel by io-wq workers; a
 * shorter one, or any read without a ring, is a pread.
 * Waits for: the read (the owner's page tables for /proc/PID/mem and
 * pagemap, briefly). Holds nothing.
 * Return: bytes read (less than @len only at end of file), or -errno.
 */
ssize_t uring_read_range(int fd, void *buf, size_t len, uint64_t off);

#endif /* UMD_URING_H */
