/* SPDX-License-Identifier: MIT */
/*
 * mm.c - attached address spaces: userfaultfd, seq area, intervals.
 *
 * The daemon is the only holder of the owner's userfaultfd. Writers of a
 * write-protected page sleep in the kernel until we unprotect the page,
 * which we only do when the invalidation of that page completed (inval.c).
 * Everything that turns an uffd message into invalidations is here.
 */
#include "mm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "inval.h"
#include "log.h"
#include "server.h"
#include "snapshot.h"
#include "uapi_compat.h"

#define PAGE 4096ull
#define SEQ_AREA_SIZE (UM_SEQ_SLOTS * sizeof(struct um_seq_slot))
#define UFFD_BATCH 64
#define WP_RETRY_MS 1

#define UFFD_WANTED                                                                    \
	(UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | \
	 UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_THREAD_ID |   \
	 UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_HUGETLBFS_SHMEM)

/* a page-table change the kernel refused with EAGAIN (mmap_changing) */
struct wp_op {
	struct list link;
	uint64_t start, len;
	bool wp;
};

static bool pidfd_alive(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

/* --- seq slots ---------------------------------------------------------- */

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

static int slot_alloc(struct mm *mm, uint32_t *out)
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
static void slot_kill(struct interval *iv)
{
	struct um_seq_slot *s = slot_of(iv);

	__atomic_store_n(&s->flags, UM_SLOT_DEAD, __ATOMIC_RELEASE);
	seq_store(s, s->seq + ((s->seq & 1) ? 2 : 1));
	seq_wake(s);
}

static void slot_free(struct mm *mm, uint32_t i)
{
	mm->slot_used[i / 64] &= ~(1ull << (i % 64));
}

static int seq_area(struct mm *mm)
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
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
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

/* --- page-table changes --------------------------------------------------- */

static int wp_now(struct mm *mm, uint64_t start, uint64_t len, bool wp)
{
	struct uffdio_writeprotect w = {
		.range = { .start = start, .len = len },
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(mm->uffd, UFFDIO_WRITEPROTECT, &w) < 0 ? -errno : 0;
}

static void wp_retry_cb(uv_timer_t *t)
{
	struct mm *mm = t->data;

	while (!list_empty(&mm->wp_retry) && !mm->dead) {
		struct wp_op *op = list_first_entry(&mm->wp_retry, struct wp_op, link);
		int ret = wp_now(mm, op->start, op->len, op->wp);

		if (ret == -EAGAIN) {
			uv_timer_start(&mm->wp_timer, wp_retry_cb, WP_RETRY_MS, 0);
			return;
		}
		if (ret)
			log_debug("mm %llu: writeprotect %#llx+%#llx: %s", (unsigned long long)mm->id,
				  (unsigned long long)op->start, (unsigned long long)op->len,
				  strerror(-ret));
		list_del(&op->link);
		free(op);
	}
}

int mm_wp(struct mm *mm, uint64_t start, uint64_t len, bool wp)
{
	struct wp_op *op;
	int ret;

	if (mm->dead)
		return -ENODEV;
	/* keep the order of changes: never overtake a queued one */
	ret = list_empty(&mm->wp_retry) ? wp_now(mm, start, len, wp) : -EAGAIN;
	if (ret != -EAGAIN)
		return ret;
	/*
	 * mmap_changing: a non-cooperative event is being delivered. The
	 * change must still happen (a writer may sleep until it does), so
	 * retry shortly, after the event was read.
	 */
	op = malloc(sizeof(*op));
	if (!op) {
		log_error("mm %llu: out of memory queueing a writeprotect", (unsigned long long)mm->id);
		return -ENOMEM;
	}
	op->start = start;
	op->len = len;
	op->wp = wp;
	list_add_tail(&mm->wp_retry, &op->link);
	uv_timer_start(&mm->wp_timer, wp_retry_cb, WP_RETRY_MS, 0);
	return 0;
}

struct gap_walk {
	struct mm *mm;
	uint64_t cursor, end;
};

static void unregister_range(struct mm *mm, uint64_t start, uint64_t end)
{
	struct uffdio_range r = { .start = start, .len = end - start };

	/* the range may be partly unmapped already: nothing to undo then */
	if (ioctl(mm->uffd, UFFDIO_UNREGISTER, &r) < 0)
		log_debug("mm %llu: unregister %#llx-%#llx: %m", (unsigned long long)mm->id,
			  (unsigned long long)start, (unsigned long long)end);
}

static int gap_cb(struct itree_node *n, void *priv)
{
	struct gap_walk *g = priv;

	if (n->start > g->cursor)
		unregister_range(g->mm, g->cursor, n->start < g->end ? n->start : g->end);
	if (n->end > g->cursor)
		g->cursor = n->end;
	return 0;
}

/* unregister the parts of [start, end) no interval in the tree covers */
static void unregister_uncovered(struct mm *mm, uint64_t start, uint64_t end)
{
	struct gap_walk g = { .mm = mm, .cursor = start, .end = end };

	if (mm->dead)
		return;
	itree_query(&mm->tree, start, end, gap_cb, &g);
	if (g.cursor < end)
		unregister_range(mm, g.cursor, end);
}

/* --- lookups -------------------------------------------------------------- */

struct mm *mm_find_pid(struct server *s, pid_t pid)
{
	struct mm *mm;

	list_for_each_entry(mm, &s->mms, link)
		if (mm->pid == pid && !mm->dead)
			return mm;
	return NULL;
}

struct receiver *client_receiver(struct client *c, uint64_t id)
{
	struct receiver *r;

	list_for_each_entry(r, &c->receivers, client_link)
		if (r->iv->id == id)
			return r;
	return NULL;
}

struct interval *interval_find(struct server *s, uint64_t id)
{
	struct interval *iv;
	struct mm *mm;

	list_for_each_entry(mm, &s->mms, link)
		list_for_each_entry(iv, &mm->intervals, mm_link)
			if (iv->id == id)
				return iv;
	return NULL;
}

static struct receiver *receiver_new(struct interval *iv, struct client *c, bool sync, bool owner)
{
	struct receiver *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->iv = iv;
	r->client = c;
	r->sync = sync;
	r->owner = owner;
	list_add_tail(&iv->receivers, &r->iv_link);
	list_add_tail(&c->receivers, &r->client_link);
	return r;
}

void receiver_free(struct receiver *r)
{
	inval_forget_receiver(r);
	list_del(&r->iv_link);
	list_del(&r->client_link);
	free(r);
}

static void send_release(struct receiver *r, int error)
{
	struct um_ev_release ev = { .interval_id = r->iv->id, .error = error };

	client_send(r->client, UM_EV_RELEASE, 0, &ev, sizeof(ev), -1);
}

/* --- uffd events ---------------------------------------------------------- */

struct hit_walk {
	struct inval_hit *v;
	unsigned int n, cap;
	uint64_t start, end;
	bool whole;	   /* the whole interval, not the intersection */
	bool written_only; /* only intervals with their written flag */
	struct inval_hit stack[16];
};

static int hit_cb(struct itree_node *n, void *priv)
{
	struct hit_walk *h = priv;
	struct interval *iv = (struct interval *)n;

	if (h->written_only && !iv->written)
		return 0;
	if (h->n == h->cap) {
		unsigned int cap = h->cap * 2;
		struct inval_hit *v = malloc(cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		memcpy(v, h->v, h->n * sizeof(*v));
		if (h->v != h->stack)
			free(h->v);
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n].iv = iv;
	h->v[h->n].start = h->whole || n->start > h->start ? n->start : h->start;
	h->v[h->n].end = h->whole || n->end < h->end ? n->end : h->end;
	h->n++;
	return 0;
}

static int collect(struct mm *mm, struct hit_walk *h, uint64_t start, uint64_t end)
{
	h->v = h->stack;
	h->cap = sizeof(h->stack) / sizeof(h->stack[0]);
	h->n = 0;
	h->start = start;
	h->end = end;
	return itree_query(&mm->tree, start, end, hit_cb, h);
}

static void collect_done(struct hit_walk *h)
{
	if (h->v != h->stack)
		free(h->v);
}

static void on_range_event(struct mm *mm, uint32_t reason, uint64_t start, uint64_t end)
{
	struct hit_walk h = { 0 };

	start &= ~(PAGE - 1);
	if (end <= start)
		return;
	if (collect(mm, &h, start, end))
		log_error("mm %llu: out of memory: %s event partly lost", (unsigned long long)mm->id,
			  um_reason_name(reason));
	if (h.n)
		inval_start(mm, reason, start, end, 0, h.v, h.n);
	collect_done(&h);
}

static void on_fault(struct mm *mm, const struct uffd_msg *msg)
{
	uint64_t page = msg->arg.pagefault.address & ~(PAGE - 1);
	struct hit_walk h = { 0 };

	if (!(msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)) {
		/* we register WP only; a missing fault would be a kernel surprise */
		struct uffdio_range r = { .start = page, .len = PAGE };

		ioctl(mm->uffd, UFFDIO_WAKE, &r);
		return;
	}
	/* the unprotect of the in-flight one wakes this writer too */
	if (inval_write_in_flight(mm, page))
		return;
	if (collect(mm, &h, page, page + PAGE)) {
		log_error("mm %llu: out of memory on a write fault", (unsigned long long)mm->id);
		collect_done(&h);
		h.n = 0;
	}
	for (unsigned int i = 0; i < h.n; i++)
		h.v[i].iv->written = true;
	/* no interval: inval_start() just unprotects */
	inval_start(mm, UMP_REASON_WRITE, page, page + PAGE, msg->arg.pagefault.feat.ptid, h.v, h.n);
	collect_done(&h);
}

static void on_fork(struct mm *mm, const struct uffd_msg *msg)
{
	struct hit_walk h = { .whole = true, .written_only = true };
	struct itree_node *first;

	/* the child is not mirrored: dropping its uffd unregisters it */
	close((int)msg->arg.fork.ufd);
	if (mm->dead)
		return;
	first = itree_first(&mm->tree);
	if (!first)
		return;
	/* never-written intervals stay armed: the COW break faults as WRITE */
	if (collect(mm, &h, 0, UINT64_MAX))
		log_error("mm %llu: out of memory on fork", (unsigned long long)mm->id);
	for (unsigned int i = 0; i < h.n; i++)
		h.v[i].iv->written = false;
	if (h.n)
		inval_start(mm, UMP_REASON_FORK, 0, 0, 0, h.v, h.n);
	collect_done(&h);
}

static void handle_msg(struct mm *mm, const struct uffd_msg *msg)
{
	uint64_t remap_from = mm->remap_from, remap_end = mm->remap_end;

	mm->remap_from = mm->remap_end = 0;
	switch (msg->event) {
	case UFFD_EVENT_PAGEFAULT:
		if (!mm->dead)
			on_fault(mm, msg);
		break;
	case UFFD_EVENT_FORK:
		on_fork(mm, msg);
		break;
	case UFFD_EVENT_REMOVE:
		if (!mm->dead)
			on_range_event(mm, UMP_REASON_REMOVE, msg->arg.remove.start,
				       msg->arg.remove.end);
		break;
	case UFFD_EVENT_UNMAP:
		/*
		 * mremap() of part of a mapping reports REMAP and then UNMAP of
		 * the same source range; the REMAP already invalidated it.
		 */
		if (msg->arg.remove.start == remap_from && msg->arg.remove.end == remap_end &&
		    remap_end)
			break;
		if (!mm->dead)
			on_range_event(mm, UMP_REASON_UNMAP, msg->arg.remove.start,
				       msg->arg.remove.end);
		break;
	case UFFD_EVENT_REMAP: {
		uint64_t from = msg->arg.remap.from, to = msg->arg.remap.to;
		uint64_t len = msg->arg.remap.len;

		if (mm->dead || from + len < from || to + len < to)
			break;
		on_range_event(mm, UMP_REASON_REMAP, from, from + len);
		on_range_event(mm, UMP_REASON_REMAP, to, to + len);
		mm->remap_from = from;
		mm->remap_end = from + len;
		break;
	}
	default:
		log_debug("mm %llu: uffd event %u ignored", (unsigned long long)mm->id, msg->event);
		break;
	}
}

static void uffd_cb(uv_poll_t *p, int status, int events)
{
	struct mm *mm = p->data;
	struct uffd_msg msgs[UFFD_BATCH];

	if (mm->dead)
		return;
	if (status < 0) {
		mm_release(mm, uv_strerror(status));
		return;
	}
	/* bounded, so one busy owner cannot starve the others */
	for (int round = 0; round < 16 && !mm->dead; round++) {
		ssize_t n = read(mm->uffd, msgs, sizeof(msgs));
		size_t count;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				mm_release(mm, strerror(errno));
			return;
		}
		count = (size_t)n / sizeof(msgs[0]);
		/* every message is handled even if the mm dies meanwhile: fork fds */
		for (size_t i = 0; i < count; i++)
			handle_msg(mm, &msgs[i]);
		if (count < UFFD_BATCH)
			return;
	}
}

static void pidfd_cb(uv_poll_t *p, int status, int events)
{
	mm_release(p->data, "owner exited");
}

/* --- requests ------------------------------------------------------------- */

static void mm_handle_closed(uv_handle_t *h)
{
	struct mm *mm = h->data;

	if (--mm->open_handles == 0 && mm->destroyed)
		free(mm);
}

static int check_uffd(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -EBADF;
	target[n] = 0;
	return strcmp(target, "anon_inode:[userfaultfd]") ? -EBADF : 0;
}

int mm_attach(struct client *c, int uffd, struct um_attach_reply *rep, int *seq_fd)
{
	struct server *s = c->srv;
	struct uffdio_api api = { .api = UFFD_API };
	struct mm *mm = NULL;
	char path[64];
	int ret, fl;

	if (c->mm || mm_find_pid(s, c->pid)) {
		ret = -EBUSY;
		goto fail;
	}
	ret = check_uffd(uffd);
	if (ret)
		goto fail;
	api.features = UFFD_WANTED & s->kf.uffd_offered;
	if (ioctl(uffd, UFFDIO_API, &api) < 0) {
		log_debug("client %llu: UFFDIO_API: %m (did the client call it?)",
			  (unsigned long long)c->id);
		ret = -EINVAL;
		goto fail;
	}
	mm = calloc(1, sizeof(*mm));
	if (!mm) {
		ret = -ENOMEM;
		goto fail;
	}
	mm->srv = s;
	mm->uffd = uffd;
	mm->pagemap_fd = mm->maps_fd = mm->pidfd = mm->seq_fd = -1;
	mm->pid = c->pid;
	mm->uid = c->uid;
	mm->uffd_features = api.features;
	itree_init(&mm->tree);
	list_init(&mm->intervals);
	list_init(&mm->invals);
	list_init(&mm->wp_retry);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)c->pid);
	mm->pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (mm->pagemap_fd < 0) {
		ret = errno == ENOENT ? -ESRCH : -errno;
		goto fail_mm;
	}
	if (s->kf.procmap_query) {
		snprintf(path, sizeof(path), "/proc/%d/maps", (int)c->pid);
		mm->maps_fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	/* both opens named the peer, not a process that reused its pid */
	if (!pidfd_alive(c->pidfd)) {
		ret = -ESRCH;
		goto fail_mm;
	}
	mm->pidfd = fcntl(c->pidfd, F_DUPFD_CLOEXEC, 0);
	fl = fcntl(uffd, F_GETFL);
	if (mm->pidfd < 0 || fl < 0 || fcntl(uffd, F_SETFL, fl | O_NONBLOCK) < 0) {
		ret = -errno;
		goto fail_mm;
	}
	ret = seq_area(mm);
	if (ret)
		goto fail_mm;
	*seq_fd = fcntl(mm->seq_fd, F_DUPFD_CLOEXEC, 0);
	if (*seq_fd < 0) {
		ret = -errno;
		goto fail_mm;
	}
	mm->id = ++s->next_mm_id;
	mm->owner = c;
	c->mm = mm;
	list_add_tail(&s->mms, &mm->link);
	s->nmms++;
	uv_poll_init(s->loop, &mm->uffd_poll, mm->uffd);
	uv_poll_init(s->loop, &mm->pidfd_poll, mm->pidfd);
	uv_timer_init(s->loop, &mm->wp_timer);
	mm->uffd_poll.data = mm->pidfd_poll.data = mm->wp_timer.data = mm;
	mm->open_handles = 3;
	uv_poll_start(&mm->uffd_poll, UV_READABLE, uffd_cb);
	uv_poll_start(&mm->pidfd_poll, UV_READABLE, pidfd_cb);
	rep->mm_id = mm->id;
	rep->uffd_features = api.features & UFFD_WANTED;
	rep->seq_slots = UM_SEQ_SLOTS;
	log_info("mm %llu: pid %d attached (uffd features 0x%llx)", (unsigned long long)mm->id,
		 (int)mm->pid, (unsigned long long)rep->uffd_features);
	return 0;
fail_mm:
	if (mm->seq) {
		munmap(mm->seq, SEQ_AREA_SIZE);
		close(mm->seq_fd);
	}
	if (mm->pidfd >= 0)
		close(mm->pidfd);
	if (mm->maps_fd >= 0)
		close(mm->maps_fd);
	if (mm->pagemap_fd >= 0)
		close(mm->pagemap_fd);
	free(mm);
fail:
	close(uffd);
	return ret;
}

/* count an interval of @len bytes against the owner uid's limits */
static int charge_interval(struct mm *mm, uint64_t len)
{
	const uint64_t n[LIMIT_NR] = { [LIMIT_INTERVALS] = 1, [LIMIT_BYTES] = len };
	enum limit_kind hit = LIMIT_NR;
	int ret = limits_charge(&mm->srv->limits, mm->uid, n, &hit);

	if (ret && hit < LIMIT_NR)
		log_warn("mm %llu (pid %d uid %d): insert of %llu bytes refused: %s per uid "
			 "(limit %llu, in use %llu)", (unsigned long long)mm->id, (int)mm->pid,
			 (int)mm->uid, (unsigned long long)len, limits_name(hit),
			 (unsigned long long)limits_max(&mm->srv->limits, mm->uid, hit),
			 (unsigned long long)limits_usage(&mm->srv->limits, mm->uid, hit));
	else if (ret)
		log_warn("mm %llu: interval accounting: %s", (unsigned long long)mm->id,
			 strerror(-ret));
	return ret;
}

static void uncharge_interval(struct mm *mm, uint64_t len)
{
	const uint64_t n[LIMIT_NR] = { [LIMIT_INTERVALS] = 1, [LIMIT_BYTES] = len };

	limits_uncharge(&mm->srv->limits, mm->uid, n);
}

int mm_insert(struct client *c, const struct um_insert *req, struct um_insert_reply *rep)
{
	struct mm *mm = c->mm;
	uint64_t start = req->start, end = req->start + req->length;
	struct uffdio_register reg = {
		.range = { .start = start, .len = req->length },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct interval *iv;
	int ret;

	if (!mm)
		return -EBADFD;
	if (mm->dead)
		return -EFAULT;
	/* UFFDIO_REGISTER's errors do not tell a hole from a bad mapping */
	ret = snapshot_vma_covered(mm, start, end);
	if (ret)
		return ret;
	ret = charge_interval(mm, req->length);
	if (ret)
		return ret;
	iv = calloc(1, sizeof(*iv));
	if (!iv) {
		uncharge_interval(mm, req->length);
		return -ENOMEM;
	}
	ret = slot_alloc(mm, &iv->slot);
	if (ret)
		goto fail_free;
	if (ioctl(mm->uffd, UFFDIO_REGISTER, &reg) < 0) {
		ret = errno == EINVAL ? -EOPNOTSUPP : errno == ENOMEM ? -EFAULT : -errno;
		goto fail_slot;
	}
	if (!(reg.ioctls & (1ull << _UFFDIO_WRITEPROTECT))) {
		ret = -EOPNOTSUPP;
		goto fail_unregister;
	}
	ret = mm_wp(mm, start, req->length, true);
	if (ret) {
		ret = ret == -EINVAL ? -EOPNOTSUPP : ret;
		goto fail_unregister;
	}
	iv->mm = mm;
	iv->id = ++mm->srv->next_interval_id;
	iv->flags = req->flags;
	iv->node.start = start;
	iv->node.end = end;
	iv->backend = UMP_BACKEND_UFFD_WP;
	list_init(&iv->receivers);
	if (!receiver_new(iv, c, req->flags & UM_INSERT_SYNC, true)) {
		ret = -ENOMEM;
		goto fail_unregister;
	}
	itree_insert(&mm->tree, &iv->node);
	list_add_tail(&mm->intervals, &iv->mm_link);
	mm->srv->nintervals++;
	rep->interval_id = iv->id;
	rep->slot = iv->slot;
	rep->backend = iv->backend;
	log_debug("mm %llu: interval %llu [%#llx, %#llx) slot %u", (unsigned long long)mm->id,
		  (unsigned long long)iv->id, (unsigned long long)start, (unsigned long long)end,
		  iv->slot);
	return 0;
fail_unregister:
	unregister_uncovered(mm, start, end);
fail_slot:
	slot_free(mm, iv->slot);
fail_free:
	free(iv);
	uncharge_interval(mm, req->length);
	return ret;
}

/* free @iv; subscribers get EV_RELEASE(@error) unless @error is 0 */
static void interval_destroy(struct interval *iv, int error)
{
	struct mm *mm = iv->mm;
	struct receiver *r, *t;

	inval_forget_interval(iv);
	list_for_each_entry_safe(r, t, &iv->receivers, iv_link) {
		if (error && !r->owner)
			send_release(r, error);
		receiver_free(r);
	}
	itree_remove(&mm->tree, &iv->node);
	list_del(&iv->mm_link);
	unregister_uncovered(mm, iv->node.start, iv->node.end);
	slot_kill(iv);
	slot_free(mm, iv->slot);
	mm->srv->nintervals--;
	uncharge_interval(mm, iv->node.end - iv->node.start);
	free(iv);
}

int mm_remove(struct client *c, uint64_t interval_id)
{
	struct receiver *r = client_receiver(c, interval_id);

	if (!r)
		return -ENOENT;
	if (r->owner)
		interval_destroy(r->iv, -ENOENT);
	else
		receiver_free(r);
	return 0;
}

int mm_subscribe(struct client *c, const struct um_subscribe *req,
		 struct um_subscribe_reply *rep, int *seq_fd)
{
	struct mm *mm = mm_find_pid(c->srv, req->pid);
	struct interval *iv;

	if (!mm)
		return -ESRCH;
	if (!client_may_see(c, mm->uid))
		return -EPERM;
	list_for_each_entry(iv, &mm->intervals, mm_link)
		if (iv->id == req->interval_id)
			goto found;
	return -ESRCH;
found:
	if (client_receiver(c, iv->id))
		return -EBUSY;
	*seq_fd = fcntl(mm->seq_fd, F_DUPFD_CLOEXEC, 0);
	if (*seq_fd < 0)
		return -errno;
	if (!receiver_new(iv, c, req->flags & UM_INSERT_SYNC, false)) {
		close(*seq_fd);
		*seq_fd = -1;
		return -ENOMEM;
	}
	rep->start = iv->node.start;
	rep->length = iv->node.end - iv->node.start;
	rep->slot = iv->slot;
	rep->seq_slots = UM_SEQ_SLOTS;
	return 0;
}

void mm_release(struct mm *mm, const char *why)
{
	struct interval *iv;
	struct receiver *r;
	struct wp_op *op, *t;

	if (mm->dead)
		return;
	log_info("mm %llu: pid %d released: %s", (unsigned long long)mm->id, (int)mm->pid, why);
	mm->dead = true;
	inval_drop_all(mm);
	list_for_each_entry(iv, &mm->intervals, mm_link) {
		iv->active = 0;
		slot_kill(iv);
		list_for_each_entry(r, &iv->receivers, iv_link)
			if (!r->owner)
				send_release(r, -EFAULT);
	}
	list_for_each_entry_safe(op, t, &mm->wp_retry, link) {
		list_del(&op->link);
		free(op);
	}
	uv_close((uv_handle_t *)&mm->uffd_poll, mm_handle_closed);
	uv_close((uv_handle_t *)&mm->pidfd_poll, mm_handle_closed);
	uv_close((uv_handle_t *)&mm->wp_timer, mm_handle_closed);
	/* the last reference: the owner's blocked writers resume */
	close(mm->uffd);
	close(mm->pidfd);
	close(mm->pagemap_fd);
	if (mm->maps_fd >= 0)
		close(mm->maps_fd);
	mm->uffd = mm->pidfd = mm->pagemap_fd = mm->maps_fd = -1;
}

void mm_destroy(struct mm *mm)
{
	struct interval *iv, *t;

	mm_release(mm, "owner connection closed");
	list_for_each_entry_safe(iv, t, &mm->intervals, mm_link)
		interval_destroy(iv, 0);
	list_del(&mm->link);
	mm->srv->nmms--;
	munmap(mm->seq, SEQ_AREA_SIZE);
	close(mm->seq_fd);
	if (mm->owner)
		mm->owner->mm = NULL;
	mm->destroyed = true;
	if (mm->open_handles == 0)
		free(mm);
}
