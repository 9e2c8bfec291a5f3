/* SPDX-License-Identifier: MIT */
/*
 * uring.c - one restricted io_uring for batched reads, pread otherwise.
 *
 * Every read is marked IOSQE_ASYNC, so the kernel runs it on an io-wq
 * worker: the reads of a batch (many address spaces, or the chunks of one
 * long read) proceed on several CPUs at once instead of one after the
 * other on the loop thread. Without the flag the kernel performs procfs
 * reads inline, one after the other, inside io_uring_enter: measured
 * slower than plain pread (docs/BENCHMARKS.md, B6).
 */
#include "uring.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

/* one SQE reads at most this much; the rest of a longer read is a pread */
#define URING_MAX_LEN (1u << 30)
#define URING_GLOBAL_ENTRIES 64
/* uring_read_range() splits a read into at most this many chunks of at least */
#define URING_SPLIT 16
#define URING_MIN_CHUNK (256u << 10)

struct uring {
	struct io_uring ring;
	unsigned int entries;
	bool broken; /* the kernel refused a submission: pread from now on */
};

static struct uring *global;

/*
 * io_uring_register(2) itself: Debian 12's liburing 2.3 declares
 * io_uring_register_restrictions() and io_uring_enable_rings() but its
 * shared library does not export them.
 */
static int ring_register(struct uring *r, unsigned int op, const void *arg, unsigned int nr)
{
	return syscall(__NR_io_uring_register, r->ring.ring_fd, op, arg, nr) < 0 ? -errno : 0;
}

int uring_create(unsigned int entries, struct uring **out)
{
	struct io_uring_params p = { .flags = IORING_SETUP_R_DISABLED };
	struct io_uring_restriction res[2];
	struct uring *r;
	int ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	ret = io_uring_queue_init_params(entries, &r->ring, &p);
	if (ret < 0) {
		free(r);
		return ret;
	}
	/* IORING_OP_READ and nothing else; of the SQE flags only IOSQE_ASYNC */
	memset(res, 0, sizeof(res));
	res[0].opcode = IORING_RESTRICTION_SQE_OP;
	res[0].sqe_op = IORING_OP_READ;
	res[1].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[1].sqe_flags = IOSQE_ASYNC;
	ret = ring_register(r, IORING_REGISTER_RESTRICTIONS, res, 2);
	if (ret == 0)
		ret = ring_register(r, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
	if (ret < 0) {
		io_uring_queue_exit(&r->ring);
		free(r);
		return ret;
	}
	r->entries = p.sq_entries;
	*out = r;
	return 0;
}

void uring_destroy(struct uring *r)
{
	if (!r)
		return;
	io_uring_queue_exit(&r->ring);
	free(r);
}

/* pread until @len bytes, end of file or an error; @done bytes are already there */
static ssize_t pread_rest(int fd, void *buf, size_t len, uint64_t off, size_t done)
{
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return done ? (ssize_t)done : -errno;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

/* submit reqs[0..n) (n <= entries) and reap them; -errno when the ring failed */
static int ring_round(struct uring *r, struct uring_req *reqs, unsigned int n)
{
	unsigned int queued = 0, reaped = 0;
	int submitted;

	for (; queued < n; queued++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
		struct uring_req *q = &reqs[queued];

		if (!sqe)
			break;
		io_uring_prep_read(sqe, q->fd, q->buf,
				   q->len > URING_MAX_LEN ? URING_MAX_LEN : (unsigned int)q->len,
				   q->off);
		io_uring_sqe_set_data64(sqe, queued);
		sqe->flags |= IOSQE_ASYNC;
		q->res = -ECANCELED;
	}
	do
		submitted = io_uring_submit(&r->ring);
	while (submitted == -EINTR);
	if (submitted < 0) {
		/* never enter this ring again: its queued SQEs must not run later */
		r->broken = true;
		return submitted;
	}
	while (reaped < (unsigned int)submitted) {
		struct io_uring_cqe *cqe;
		int ret = io_uring_wait_cqe(&r->ring, &cqe);

		if (ret == -EINTR)
			continue;
		if (ret < 0) {
			/* reads may still land in the buffers: nothing else is safe */
			log_error("io_uring: waiting for completions: %s", strerror(-ret));
			abort();
		}
		if (cqe->user_data < n)
			reqs[cqe->user_data].res = cqe->res;
		io_uring_cqe_seen(&r->ring, cqe);
		reaped++;
	}
	if ((unsigned int)submitted < queued) {
		r->broken = true;
		return -EIO;
	}
	return 0;
}

int uring_read_batch(struct uring *r, struct uring_req *reqs, unsigned int n)
{
	int err = 0;

	for (unsigned int i = 0; r && !r->broken && i < n;) {
		unsigned int k = n - i < r->entries ? n - i : r->entries;

		err = ring_round(r, reqs + i, k);
		if (err) {
			log_warn("io_uring: submission failed (%s): reads use pread from now on",
				 strerror(-err));
			break;
		}
		i += k;
	}
	for (unsigned int i = 0; i < n; i++) {
		struct uring_req *q = &reqs[i];

		if (!r || r->broken || q->res == -ECANCELED)
			q->res = pread_rest(q->fd, q->buf, q->len, q->off, 0);
		else if (q->res > 0 && (size_t)q->res < q->len)
			q->res = pread_rest(q->fd, q->buf, q->len, q->off, q->res);
	}
	return err;
}

int uring_global_init(bool disabled)
{
	int ret;

	if (disabled) {
		log_info("io_uring masked: reads use pread");
		return -EOPNOTSUPP;
	}
	ret = uring_create(URING_GLOBAL_ENTRIES, &global);
	if (ret)
		log_info("io_uring unavailable (%s): reads use pread", strerror(-ret));
	else
		log_debug("io_uring: %u entries, restricted to IORING_OP_READ", global->entries);
	return ret;
}

struct uring *uring_global(void)
{
	return global && !global->broken ? global : NULL;
}

void uring_global_exit(void)
{
	uring_destroy(global);
	global = NULL;
}

ssize_t uring_read_range(int fd, void *buf, size_t len, uint64_t off)
{
	struct uring *r = uring_global();
	struct uring_req q[URING_SPLIT];
	size_t chunk = (len + URING_SPLIT - 1) / URING_SPLIT, done = 0;
	unsigned int n = 0;

	chunk = (chunk + 4095) & ~(size_t)4095;
	if (chunk < URING_MIN_CHUNK)
		chunk = URING_MIN_CHUNK;
	/* one chunk: a worker would only add a hand-over */
	if (!r || len <= chunk)
		return pread_rest(fd, buf, len, off, 0);
	for (size_t at = 0; at < len; at += chunk)
		q[n++] = (struct uring_req){ fd, (char *)buf + at,
					     len - at < chunk ? len - at : chunk, off + at, 0 };
	uring_read_batch(r, q, n);
	/* what was read contiguously from @off */
	for (unsigned int i = 0; i < n; i++) {
		if (q[i].res < 0)
			return done ? (ssize_t)done : q[i].res;
		done += q[i].res;
		if ((size_t)q[i].res < q[i].len)
			break;
	}
	return done;
}
