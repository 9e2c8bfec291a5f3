/* SPDX-License-Identifier: MIT */
/*
 * fault.c - um_range_fault() (hmm_range_fault across processes), and the
 * owner's half of a write fault: the populate worker.
 *
 * The daemon read-faults pages itself (/proc/PID/mem). A write fault must
 * happen in the owner's own process: the daemon announces it as a WRITE
 * invalidation, unprotects the range after the acks and sends
 * UMP_EV_POPULATE to the owner's connection; this library runs
 * madvise(MADV_POPULATE_WRITE) on a worker thread and answers
 * UMP_MSG_POPULATE_DONE. Never on the thread that reads the socket: the
 * populate can hit a page whose invalidation only that thread would ack.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "call.h"
#include "encode.h"
#include "fault.h"
#include "range.h"
#include "seq.h"
#include "trap.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#define FAULT_ROUNDS 16

/* --- the populate worker --------------------------------------------- */

struct populate_job {
	struct populate_job *next;
	uint64_t token, start, end;
};

struct um_populate {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct populate_job *head, **tail;
	bool stop;
};

/* sent like an ack: no reply, under send_lock only */
static void send_done(struct um_client *c, uint64_t token, int status)
{
	struct ump_populate_done d = { .token = token, .status = status };

	/* a dead connection needs no answer: the daemon dropped the fault */
	call_oneway(c, UMP_MSG_POPULATE_DONE, &d, sizeof(d));
}

static int populate(uint64_t start, uint64_t end)
{
	for (int tries = 0; tries < 100; tries++) {
		if (madvise((void *)(uintptr_t)start, end - start, MADV_POPULATE_WRITE) == 0)
			return 0;
		/* EINTR: a signal; EAGAIN: a page under migration or similar */
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	}
	return -EAGAIN;
}

static void *populate_thread(void *arg)
{
	struct um_client *c = arg;
	struct um_populate *p = c->populate;

	/* its MADV_POPULATE_WRITE is not trapped, but a free() of it may be */
	trap_self_enter();
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct populate_job *j;

		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop)
			break;
		j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = &p->head;
		pthread_mutex_unlock(&p->lock);
		send_done(c, j->token, populate(j->start, j->end));
		free(j);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	trap_self_leave();
	return NULL;
}

/* c->lock held */
static struct um_populate *populate_start_locked(struct um_client *c)
{
	struct um_populate *p;
	sigset_t all, old;
	int r;

	if (c->populate)
		return c->populate;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->tail = &p->head;
	c->populate = p;
	/* like the event thread: signals belong to the application's threads */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&p->thread, NULL, populate_thread, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		c->populate = NULL;
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return NULL;
	}
	return p;
}

void populate_post(struct um_client *c, const struct ump_ev_populate *ev)
{
	struct populate_job *j = malloc(sizeof(*j));
	struct um_populate *p;

	pthread_mutex_lock(&c->lock);
	p = j ? populate_start_locked(c) : NULL;
	pthread_mutex_unlock(&c->lock);
	if (!p) {
		free(j);
		send_done(c, ev->token, -ENOMEM);
		return;
	}
	j->next = NULL;
	j->token = ev->token;
	j->start = ev->start;
	j->end = ev->end;
	pthread_mutex_lock(&p->lock);
	*p->tail = j;
	p->tail = &j->next;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void populate_stop(struct um_client *c)
{
	struct um_populate *p = c->populate;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	while (p->head) {
		struct populate_job *j = p->head;

		p->head = j->next;
		free(j);
	}
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
	c->populate = NULL;
}

/* --- um_range_fault ---------------------------------------------------- */

enum need {
	NEED_NONE = 0,
	NEED_READ = 1,	/* requested VALID, not present */
	NEED_WRITE = 2, /* requested WRITE, not writable */
};

/*
 * FAULT [start, start + npages pages) of @iv, as many requests as the
 * result buffer needs (the daemon faults no more than it can report).
 * Waits for: each round trip (a write one: its invalidation's acks and
 * the owner's populate). Holds: req_lock during each.
 */
static int fault_run(struct um_interval *iv, uint64_t start, uint64_t npages, bool write)
{
	struct um_client *c = iv->c;
	const uint64_t chunk_max = c->result_size / sizeof(uint64_t);
	uint64_t done = 0;

	while (done < npages) {
		struct ump_fault req = {
			.interval_id = iv->id,
			.start = start + done * UMP_PAGE_SIZE,
			.npages = npages - done,
			.flags = write ? UMP_FAULT_WRITE : 0,
		};
		struct conn_msg reply;
		uint64_t n = 0;
		int r;

		if (req.npages > chunk_max)
			req.npages = chunk_max;
		r = call_lock(c);
		if (r < 0)
			return r;
		r = call_roundtrip(c, UMP_MSG_FAULT, &req, sizeof(req), -1, &reply,
				   UM_REQUEST_TIMEOUT_MS, NULL);
		if (r == 0)
			n = ((const struct ump_snapshot_reply *)reply.msg.body)->npages;
		call_unlock(c);
		if (r < 0)
			return r;
		/* the entries are not used: the next round's snapshot decides */
		if (n == 0 || n > req.npages)
			return -EPROTO;
		done += n;
	}
	return 0;
}

/* what page @i still needs, from its request and its raw entry */
static enum need page_need(uint8_t want, uint64_t raw)
{
	if (want == NEED_WRITE && !(raw & UMP_E_WRITE))
		return NEED_WRITE;
	if (want && !(raw & UMP_E_PRESENT))
		return NEED_READ;
	return NEED_NONE;
}

/* the seq to snapshot against: read_begin, or -EBUSY when NONBLOCK and odd */
static int begin(struct um_interval *iv, unsigned int flags, uint64_t *seq)
{
	if (!(flags & UM_FAULT_NONBLOCK))
		return seq_wait_even(iv, UM_DEFAULT_TIMEOUT_MS, seq);
	if (seq_dead(iv))
		return -EFAULT;
	*seq = seq_load(iv);
	return (*seq & 1) ? -EBUSY : 0;
}

/*
 * One round: snapshot, then fault every run of pages that still needs it.
 * *@snapped is set when @raw holds a whole snapshot (holes included).
 * Return: 1 another round is needed, 0 done (@raw satisfies every request
 * and was taken at *@seq), or -errno.
 */
static int fault_round(struct um_range *range, unsigned int flags, const uint8_t *want,
		       uint64_t *raw, uint64_t npages, uint64_t *seq, bool *snapped)
{
	struct um_interval *iv = range->iv;
	uint64_t filled, i = 0;
	bool faulted = false;
	int r;

	r = begin(iv, flags, seq);
	if (r)
		return r;
	*snapped = false;
	r = snapshot_chunks(iv->c, iv->id, iv->pid, range->start, npages, raw, range->nodes, NULL,
			    seq, &filled);
	if (r == -EAGAIN)
		return 1;
	*snapped = filled == npages;
	/* a hole or a PROT_NONE page: the daemon would refuse to fault anyway */
	if (r)
		return r;
	while (i < npages) {
		enum need k = page_need(want[i], raw[i]);
		uint64_t j = i + 1;

		if (k == NEED_NONE) {
			i++;
			continue;
		}
		while (j < npages && page_need(want[j], raw[j]) == k)
			j++;
		r = fault_run(iv, range->start + i * UMP_PAGE_SIZE, j - i, k == NEED_WRITE);
		if (r)
			return r;
		faulted = true;
		i = j;
	}
	return faulted ? 1 : 0;
}

UM_EXPORT long um_range_fault(struct um_range *range, unsigned int flags)
{
	uint64_t *raw = NULL, npages, seq = 0;
	uint8_t *want = NULL;
	struct um_encoding e;
	bool snapped = false;
	long ret;
	int r = 1;

	if (!range || !range->iv || !range->pfns || (flags & ~UM_FAULT_NONBLOCK))
		return -EINVAL;
	if (call_in_callback())
		return -EDEADLK;
	if (encode_init(&e, range->flags, range->values, range->pfn_shift) < 0)
		return -EINVAL;
	if (seq_dead(range->iv))
		return -EFAULT;
	npages = (range->end - range->start) / UMP_PAGE_SIZE;
	want = malloc(npages);
	raw = malloc(npages * sizeof(*raw));
	if (!want || !raw) {
		ret = -ENOMEM;
		goto out;
	}
	/* pfns[] is input now and output later: read every request first */
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t req = (range->pfns[i] & range->pfn_flags_mask) | range->default_flags;

		want[i] = (req & e.flags[UM_PFN_WRITE])	  ? NEED_WRITE
			  : (req & e.flags[UM_PFN_VALID]) ? NEED_READ
							  : NEED_NONE;
	}
	for (int round = 0; round < FAULT_ROUNDS && r == 1; round++) {
		r = fault_round(range, flags, want, raw, npages, &seq, &snapped);
	}
	if (r == 1)
		r = -EBUSY;
	/* on failure too: the last whole snapshot says which pages are the problem */
	if (snapped)
		encode_entries(&e, raw, range->pfns, npages);
	if (r == 0)
		range->notifier_seq = seq;
	ret = r ? r : (long)npages;
out:
	free(want);
	free(raw);
	if (ret >= 0 && seq_dead(range->iv))
		ret = -EFAULT;
	return ret;
}
