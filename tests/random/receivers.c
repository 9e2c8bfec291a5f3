/* SPDX-License-Identifier: MIT */
/*
 * receivers.c - who receives the invalidations in umirror-check: the
 * intervals this process inserts (each logs what its callback saw), and a
 * subscriber process that subscribes to them on request and logs into
 * memory it shares with this one, so that the checker reads its log
 * without a round trip (and can tell whether a callback had run before a
 * write returned).
 */
#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* --- owner intervals ------------------------------------------------------- */

static void owner_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct ivrec *v = priv;
	bool drop = false;

	pthread_mutex_lock(&v->lock);
	if (inv->seq & 1) {
		uint64_t expect = v->last_odd ? v->last_odd + 2 : v->seq0 + 1;

		if (inv->seq != v->last_odd && inv->seq != expect)
			v->odd_gap = true;
		if (inv->seq > v->last_odd)
			v->last_odd = inv->seq;
	}
	/* self-test: a receiver that ignores some of what it is told */
	if (v->drop_every &&
	    (inv->reason == UM_REASON_REMOVE || inv->reason == UM_REASON_UNMAP ||
	     inv->reason == UM_REASON_REMAP) &&
	    ++v->dropped_seen % v->drop_every == 0)
		drop = true;
	if (v->nev == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 256;
		v->ev = realloc(v->ev, v->cap * sizeof(*v->ev));
		CHECK(v->ev, "event log: out of memory");
	}
	/* a dropped event stays in the log, marked, so the check can tell */
	v->ev[v->nev++] = (struct evrec){ .seq = inv->seq,
					  .start = inv->start,
					  .end = inv->end,
					  .reason = inv->reason | (drop ? 0x100u : 0),
					  .sync = inv->sync };
	if (drop)
		atomic_fetch_add(&v->dropped, 1);
	pthread_mutex_unlock(&v->lock);
}

static const struct um_interval_ops owner_ops = { .invalidate = owner_invalidate };

static void ivrec_free(struct ivrec *v)
{
	free(v->ev);
	free(v->mirror);
	free(v->touched);
	free(v->stouched);
	free(v->base);
	free(v->base_seq);
	free(v->snap);
	free(v->exp);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

int ivrec_insert(struct run *r, size_t first, size_t np, struct ivrec **out)
{
	struct ivrec *v = calloc(1, sizeof(*v));
	int ret;

	CHECK(v, "out of memory");
	v->run = r;
	v->drop_every = r->selftest ? 2 : 0;
	v->first = first;
	v->np = np;
	pthread_mutex_init(&v->lock, NULL);
	v->mirror = malloc(np * sizeof(uint64_t));
	v->touched = calloc(np, 1);
	v->stouched = calloc(np, 1);
	v->base = malloc(np * sizeof(uint64_t));
	v->base_seq = calloc(np, sizeof(uint64_t));
	v->snap = calloc(np, sizeof(uint64_t));
	v->exp = calloc(np, sizeof(uint64_t));
	CHECK(v->mirror && v->touched && v->stouched && v->base && v->base_seq && v->snap && v->exp,
	      "out of memory");
	/* nothing held yet: the first check takes the mirror */
	for (size_t i = 0; i < np; i++)
		v->mirror[i] = v->base[i] = UM_DEFAULT_ERROR;
	ret = um_interval_insert(r->c, r->win + first * PAGE, np * PAGE, 0, &owner_ops, v, &v->iv);
	if (ret < 0) {
		ivrec_free(v);
		return ret;
	}
	v->id = um_interval_id(v->iv);
	ret = um_interval_read_begin(v->iv, &v->seq0);
	CHECK(ret == 0, "read_begin after insert: %d", ret);
	v->mirror_seq = v->seq0;
	if (r->scan) {
		ret = um_interval_revalidate(v->iv, LONG_PERIOD, 0, NULL);
		CHECK(ret == 0, "revalidate period: %d", ret);
	}
	*out = v;
	return 0;
}

void ivrec_remove(struct ivrec *v)
{
	int ret = um_interval_remove(v->iv);

	CHECK(ret == 0, "um_interval_remove: %d", ret);
	ivrec_free(v);
}

static bool ev_covers(const struct evrec *e, uint64_t addr)
{
	return e->start <= addr && addr < e->end;
}

bool ivrec_covered(struct ivrec *v, size_t w, uint64_t min_seq)
{
	uint64_t addr = (uint64_t)(uintptr_t)v->run->win + w * PAGE;
	bool hit = false;

	pthread_mutex_lock(&v->lock);
	for (size_t i = v->nev; i-- > 0 && v->ev[i].seq >= min_seq;)
		if (!(v->ev[i].reason & 0x100u) && ev_covers(&v->ev[i], addr)) {
			hit = true;
			break;
		}
	pthread_mutex_unlock(&v->lock);
	return hit;
}

/* --- the subscriber process ---------------------------------------------- */

struct sub_cmd {
	char op;
	int slot;
	uint64_t id;
	unsigned int flags;
	uint64_t start, npages;
	bool write;
};

struct sub_reply {
	long ret;
	uint64_t seq;
};

static struct sub_shm *shm;
static pid_t sub_pid;
static int to_sub = -1, from_sub = -1;

struct sub_shm *sub_shm(void)
{
	return shm;
}

static void sub_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct sub_slot *s = priv;
	uint64_t n = atomic_load_explicit(&s->n, memory_order_relaxed);

	/* now and then a slower receiver, so writers wait on it */
	if (n % 7 == 3)
		usleep(200);
	s->ring[n % SUB_RING] = (struct evrec){ .seq = inv->seq,
						.start = inv->start,
						.end = inv->end,
						.reason = inv->reason,
						.sync = inv->sync };
	atomic_store_explicit(&s->n, n + 1, memory_order_release);
}

static void sub_release(struct um_interval *iv, int error, void *priv)
{
	struct sub_slot *s = priv;

	atomic_store(&s->release_error, error);
	atomic_store(&s->released, 1);
}

static const struct um_interval_ops sub_ops = { .invalidate = sub_invalidate,
						.release = sub_release };

static long sub_range(struct um_interval *iv, const struct sub_cmd *m, uint64_t *seq)
{
	struct um_range rg = {
		.start = m->start,
		.end = m->start + m->npages * PAGE,
		.pfns = shm->entries,
	};
	long ret = um_range_register(&rg, iv);

	if (ret < 0)
		return ret;
	for (int tries = 0; tries < 50; tries++) {
		if (m->op == 'P') {
			ret = um_interval_read_begin(iv, seq);
			if (ret < 0)
				return ret;
			rg.notifier_seq = *seq;
			ret = um_range_snapshot(&rg);
			if (ret != -EAGAIN)
				return ret;
		} else {
			rg.default_flags = UM_DEFAULT_VALID | (m->write ? UM_DEFAULT_WRITE : 0);
			rg.pfn_flags_mask = 0;
			ret = um_range_fault(&rg, 0);
			*seq = rg.notifier_seq;
			if (ret != -EBUSY && ret != -EAGAIN)
				return ret;
		}
	}
	return ret;
}

static void sub_main(int in_fd, int out_fd)
{
	struct um_interval *iv[MAX_SUB] = { 0 };
	pid_t owner = getppid();
	struct um_client *c;
	struct sub_cmd m;

	CHECK(um_connect(NULL, 0, &c) == 0, "subscriber: connect");
	while (read(in_fd, &m, sizeof(m)) == (ssize_t)sizeof(m)) {
		struct sub_reply rep = { 0 };

		if (m.op == 'Q')
			break;
		switch (m.op) {
		case 'S':
			atomic_store(&shm->slot[m.slot].n, 0);
			atomic_store(&shm->slot[m.slot].released, 0);
			rep.ret = um_interval_subscribe(c, owner, m.id, m.flags, &sub_ops,
							&shm->slot[m.slot], &iv[m.slot]);
			if (rep.ret == 0 && um_interval_read_begin(iv[m.slot], &rep.seq) < 0)
				rep.seq = UINT64_MAX;
			break;
		case 'U':
			rep.ret = um_interval_remove(iv[m.slot]);
			iv[m.slot] = NULL;
			break;
		case 'P':
		case 'F':
			rep.ret = sub_range(iv[m.slot], &m, &rep.seq);
			break;
		default:
			rep.ret = -EINVAL;
		}
		if (write(out_fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
			break;
	}
	for (int i = 0; i < MAX_SUB; i++)
		um_interval_remove(iv[i]);
	um_disconnect(c);
	_exit(0);
}

void sub_start(void)
{
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shm != MAP_FAILED, "mmap shared log: %m");
	sub_pid = harness_fork(sub_main, &to_sub, &from_sub);
}

void sub_stop(void)
{
	struct sub_cmd m = { .op = 'Q' };
	int status;

	if (sub_pid <= 0)
		return;
	if (write(to_sub, &m, sizeof(m)) != (ssize_t)sizeof(m))
		kill(sub_pid, SIGKILL);
	waitpid(sub_pid, &status, 0);
	sub_pid = 0;
	close(to_sub);
	close(from_sub);
}

long sub_call(char op, int slot, uint64_t id, unsigned int flags, uint64_t start, uint64_t npages,
	      bool write_, uint64_t *seq)
{
	struct sub_cmd m = { .op = op,
			     .slot = slot,
			     .id = id,
			     .flags = flags,
			     .start = start,
			     .npages = npages,
			     .write = write_ };
	struct sub_reply rep;

	CHECK(write(to_sub, &m, sizeof(m)) == (ssize_t)sizeof(m), "to subscriber: %m");
	CHECK(read(from_sub, &rep, sizeof(rep)) == (ssize_t)sizeof(rep), "subscriber process died");
	if (seq)
		*seq = rep.seq;
	return rep.ret;
}

bool slot_covered(int slot, uint64_t from, uint64_t base, size_t w, uint64_t min_seq)
{
	struct sub_slot *s = &shm->slot[slot];
	uint64_t n = atomic_load_explicit(&s->n, memory_order_acquire);
	uint64_t addr = base + w * PAGE;

	if (n > from + SUB_RING)
		from = n - SUB_RING;
	for (uint64_t i = n; i-- > from;) {
		const struct evrec *e = &s->ring[i % SUB_RING];

		if (e->seq < min_seq)
			break;
		if (ev_covers(e, addr))
			return true;
	}
	return false;
}
