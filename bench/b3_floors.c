// SPDX-License-Identifier: MIT
/*
 * The floors of B3 single: what the hand-offs of a first write cost on
 * this machine without umirror, measured in the same rounds as B3.
 *
 * A umirror first write is four hand-offs, two round trips: the writer's
 * fault wakes umirrord (uffd readable), umirrord's message wakes the
 * library's event thread, its ack wakes umirrord, whose unprotect wakes
 * the writer. Floors, each timed per sample like B3's writes:
 *
 * - futex ping-pong between two threads of this process: one round trip
 *   (two hand-offs), FUTEX_WAIT/WAKE_PRIVATE, no spinning;
 * - the same between this process and a forked child (shared futex word):
 *   the cross-process round trip; umirror has two of them;
 * - a uffd-wp handler thread in this process, blocking read(2) of the
 *   userfaultfd and UFFDIO_WRITEPROTECT (clear, which wakes the writer)
 *   of the faulting page: one round trip through the kernel's uffd, the
 *   least any uffd-based first write can cost;
 * - the same handler waiting in epoll_wait(2) before a non-blocking read,
 *   as umirrord's libuv loop does: the price of the epoll hop.
 *
 * Checks: every ping-pong sample saw the other side's answer; every
 * uffd write faulted (the handler counted one fault per page).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "b3_floors.h"
#include "timing.h"

/* a ping-pong word: PING from the timer, PONG from the partner, EXIT to stop */
enum { PP_PONG, PP_PING, PP_EXIT };

struct pingpong {
	_Atomic int *word;
	bool private;
	pthread_t thread;
	pid_t child;
	bool running;
};

struct uffd_handler {
	int uffd, epfd;		  /* epfd >= 0: wait in epoll_wait before each read */
	pid_t child;		  /* > 0: the handler is this process (4 hops) */
	struct pingpong *relay;	  /* child: ping this partner before each unprotect */
	struct releaser *release; /* child: let this thread unprotect instead */
	uint8_t *mem;		  /* B3_FLOOR_PAGES pages, then one stop page */
	pthread_t thread;
	bool running;
	_Atomic bool *stop; /* shared with the child */
	_Atomic unsigned int *faults;
	_Atomic int *error;
	void *shared; /* the page holding them */
};

/* 3 hops: a thread of the writer's process unprotects what a child read */
struct releaser {
	_Atomic int *word;	/* PP_PING: unprotect *addr; PP_PONG: idle */
	_Atomic uint64_t *addr; /* shared with the child */
	int uffd;
	pthread_t thread;
	bool running;
};

struct b3_floors {
	struct pingpong pp[2];	   /* threads, processes */
	_Atomic int words[2];	   /* the threads' word (the processes' is shared) */
	struct uffd_handler uh[3]; /* blocking read, epoll, another process */
	struct pingpong relay;	   /* uh[2]'s "event thread": a thread of this process */
	struct uffd_handler uh3;   /* 3 hops: another process, unprotected by... */
	struct releaser rel;	   /* ...this thread of this process */
};

static long futex(_Atomic int *w, int op, int val, bool private)
{
	return syscall(SYS_futex, w, op | (private ? FUTEX_PRIVATE_FLAG : 0), val, NULL, NULL, 0);
}

/* wait while *@w == @val */
static void futex_wait_while(_Atomic int *w, int val, bool private)
{
	while (atomic_load_explicit(w, memory_order_acquire) == val)
		futex(w, FUTEX_WAIT, val, private);
}

static void partner_loop(struct pingpong *p)
{
	for (;;) {
		futex_wait_while(p->word, PP_PONG, p->private);
		if (atomic_load(p->word) == PP_EXIT)
			return;
		atomic_store_explicit(p->word, PP_PONG, memory_order_release);
		futex(p->word, FUTEX_WAKE, 1, p->private);
	}
}

static void *partner_thread(void *arg)
{
	partner_loop(arg);
	return NULL;
}

/* time @n round trips into @lat (or not); -EBADMSG if the partner is gone */
static int pingpong_run(struct pingpong *p, unsigned int n, double *lat, double *mean_us)
{
	uint64_t t0 = bench_now_ns(), t = t0;

	for (unsigned int i = 0; i < n; i++) {
		atomic_store_explicit(p->word, PP_PING, memory_order_release);
		futex(p->word, FUTEX_WAKE, 1, p->private);
		futex_wait_while(p->word, PP_PING, p->private);
		if (atomic_load(p->word) != PP_PONG)
			return -EBADMSG;
		if (lat) {
			uint64_t now = bench_now_ns();

			lat[i] = (double)(now - t) / 1e3;
			t = now;
		}
	}
	*mean_us = (double)(bench_now_ns() - t0) / 1e3 / n;
	return 0;
}

static void pingpong_stop(struct pingpong *p)
{
	if (!p->running)
		return;
	atomic_store(p->word, PP_EXIT);
	futex(p->word, FUTEX_WAKE, 1, p->private);
	if (p->child > 0)
		waitpid(p->child, NULL, 0);
	else
		pthread_join(p->thread, NULL);
	p->running = false;
}

static int pingpong_start_thread(struct pingpong *p, _Atomic int *word, bool private)
{
	sigset_t all, old;
	int r;

	p->word = word;
	p->private = private;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&p->thread, NULL, partner_thread, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	p->running = r == 0;
	return r;
}

/* a partner thread of this process on a shared word, pinged from a child */
static int pingpong_start_process_word(struct pingpong *p)
{
	void *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int r;

	if (w == MAP_FAILED)
		return -errno;
	r = pingpong_start_thread(p, w, false);
	if (r)
		munmap(w, 4096);
	return r;
}

static int pingpong_start_process(struct pingpong *p)
{
	void *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (w == MAP_FAILED)
		return -errno;
	p->word = w;
	p->private = false;
	p->child = fork();
	if (p->child < 0)
		return -errno;
	if (p->child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		partner_loop(p);
		_exit(0);
	}
	p->running = true;
	return 0;
}

/* --- the uffd-wp handler ------------------------------------------------ */

static int wp(int uffd, void *a, size_t len, bool on)
{
	struct uffdio_writeprotect w = {
		.range = { .start = (uintptr_t)a, .len = len },
		.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &w) < 0 ? -errno : 0;
}

/* one round trip with the partner of @p, from the pinging side */
static int relay_once(struct pingpong *p)
{
	atomic_store_explicit(p->word, PP_PING, memory_order_release);
	futex(p->word, FUTEX_WAKE, 1, p->private);
	futex_wait_while(p->word, PP_PING, p->private);
	return atomic_load(p->word) == PP_PONG ? 0 : -EBADMSG;
}

static int wp(int uffd, void *a, size_t len, bool on);

static void *releaser_thread(void *arg)
{
	struct releaser *r = arg;

	for (;;) {
		int ping = PP_PING;
		uint64_t a;

		futex_wait_while(r->word, PP_PONG, false);
		if (atomic_load(r->word) == PP_EXIT)
			return NULL;
		a = atomic_load(r->addr);
		/* taken before the unprotect: the next fault's ping cannot be lost */
		atomic_compare_exchange_strong(r->word, &ping, PP_PONG);
		wp(r->uffd, (void *)(uintptr_t)a, 4096, false);
	}
}

static void *handler_thread(void *arg)
{
	struct uffd_handler *h = arg;
	struct uffd_msg msg;

	for (;;) {
		struct epoll_event ev;
		ssize_t n;

		if (h->epfd >= 0 && epoll_wait(h->epfd, &ev, 1, -1) < 0 && errno != EINTR) {
			atomic_store(h->error, -errno);
			return NULL;
		}
		n = read(h->uffd, &msg, sizeof(msg));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n != sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT ||
		    !(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)) {
			atomic_store(h->error, -EBADMSG);
			return NULL;
		}
		atomic_fetch_add_explicit(h->faults, 1, memory_order_relaxed);
		if (h->release && !atomic_load(h->stop)) {
			atomic_store(h->release->addr, msg.arg.pagefault.address & ~4095ull);
			atomic_store_explicit(h->release->word, PP_PING, memory_order_release);
			futex(h->release->word, FUTEX_WAKE, 1, false);
			continue;
		}
		/* 4 hops: the "daemon" hands the fault to the "event thread" and back */
		if (h->relay && !atomic_load(h->stop) && relay_once(h->relay)) {
			atomic_store(h->error, -EBADMSG);
			return NULL;
		}
		/* clearing the protection wakes the writer */
		if (wp(h->uffd, (void *)(uintptr_t)(msg.arg.pagefault.address & ~4095ull), 4096,
		       false) < 0) {
			atomic_store(h->error, -EIO);
			return NULL;
		}
		if (atomic_load(h->stop))
			return NULL;
	}
}

static int handler_start(struct uffd_handler *h, bool use_epoll, struct pingpong *relay,
			 struct releaser *release)
{
	size_t len = (size_t)(B3_FLOOR_PAGES + 1) * 4096;
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t all, old;
	int r;

	h->uffd = h->epfd = -1;
	h->shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (h->shared == MAP_FAILED) {
		h->shared = NULL;
		return -errno;
	}
	h->stop = h->shared;
	h->faults = (void *)((char *)h->shared + 64);
	h->error = (void *)((char *)h->shared + 128);
	h->mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h->mem == MAP_FAILED) {
		h->mem = NULL;
		return -errno;
	}
	madvise(h->mem, len, MADV_NOHUGEPAGE);
	/* a child handler must not share the pages: the writes would copy them */
	madvise(h->mem, len, MADV_DONTFORK);
	memset(h->mem, 1, len);
	h->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | (use_epoll ? O_NONBLOCK : 0));
	if (h->uffd < 0)
		return -errno;
	reg.range.start = (uintptr_t)h->mem;
	reg.range.len = len;
	if (ioctl(h->uffd, UFFDIO_API, &api) < 0 || ioctl(h->uffd, UFFDIO_REGISTER, &reg) < 0)
		return -errno;
	if (use_epoll) {
		h->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (h->epfd < 0 || epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->uffd, &ev) < 0)
			return -errno;
	}
	if (release) {
		release->uffd = h->uffd;
		release->word = (void *)((char *)h->shared + 192);
		release->addr = (void *)((char *)h->shared + 256);
		r = -pthread_create(&release->thread, NULL, releaser_thread, release);
		if (r)
			return r;
		release->running = true;
	}
	if (relay || release) {
		/* the uffd acts on this process's memory from the child, as umirrord's does */
		h->relay = relay;
		h->release = release;
		h->child = fork();
		if (h->child < 0)
			return -errno;
		if (h->child == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			handler_thread(h);
			_exit(0);
		}
		h->running = true;
		return 0;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&h->thread, NULL, handler_thread, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	h->running = r == 0;
	return r;
}

static void handler_stop(struct uffd_handler *h)
{
	if (h->running) {
		/* one more fault on the stop page; the handler clears it and ends */
		atomic_store(h->stop, true);
		if (wp(h->uffd, h->mem + (size_t)B3_FLOOR_PAGES * 4096, 4096, true) == 0 &&
		    !atomic_load(h->error))
			((volatile uint8_t *)h->mem)[(size_t)B3_FLOOR_PAGES * 4096] = 2;
		if (h->child > 0)
			waitpid(h->child, NULL, 0);
		else
			pthread_join(h->thread, NULL);
	}
	if (h->epfd >= 0)
		close(h->epfd);
	if (h->uffd >= 0)
		close(h->uffd);
	if (h->mem)
		munmap(h->mem, (size_t)(B3_FLOOR_PAGES + 1) * 4096);
	if (h->shared)
		munmap(h->shared, 4096);
}

/* protect @n pages, then write them in B3's stride-2 order, each timed */
static int handler_run(struct uffd_handler *h, unsigned int n, double *lat, double *mean_us)
{
	volatile uint8_t *p = h->mem;
	uint64_t t0, t;
	int r;

	if (n > B3_FLOOR_PAGES)
		return -EINVAL;
	r = wp(h->uffd, h->mem, (size_t)n * 4096, true);
	if (r)
		return r;
	atomic_store(h->faults, 0);
	t0 = t = bench_now_ns();
	for (unsigned int i = 0; i < n; i++) {
		size_t pg = i < (n + 1) / 2 ? 2 * (size_t)i : 2 * (size_t)(i - (n + 1) / 2) + 1;

		p[pg * 4096] = (uint8_t)(i | 1);
		if (lat) {
			uint64_t now = bench_now_ns();

			lat[i] = (double)(now - t) / 1e3;
			t = now;
		}
	}
	*mean_us = (double)(bench_now_ns() - t0) / 1e3 / n;
	if (atomic_load(h->error))
		return atomic_load(h->error);
	return atomic_load(h->faults) == n ? 0 : -EBADMSG;
}

/* --- the module ---------------------------------------------------------- */

int b3_floors_open(struct b3_floors **out, const char **what)
{
	struct b3_floors *f = calloc(1, sizeof(*f));
	int r;

	*out = NULL;
	if (!f)
		return -ENOMEM;
	for (int k = 0; k < 3; k++)
		f->uh[k].uffd = f->uh[k].epfd = -1;
	f->uh3.uffd = f->uh3.epfd = -1;
	*what = "floor: futex partner thread";
	r = pingpong_start_thread(&f->pp[0], &f->words[0], true);
	if (r == 0) {
		*what = "floor: futex partner process";
		r = pingpong_start_process(&f->pp[1]);
	}
	if (r == 0) {
		*what = "floor: uffd-wp handler (blocking read)";
		r = handler_start(&f->uh[0], false, NULL, NULL);
	}
	if (r == 0) {
		*what = "floor: uffd-wp handler (epoll)";
		r = handler_start(&f->uh[1], true, NULL, NULL);
	}
	if (r == 0) {
		*what = "floor: relay thread";
		r = pingpong_start_process_word(&f->relay);
	}
	if (r == 0) {
		*what = "floor: uffd-wp handler process (4 hops)";
		r = handler_start(&f->uh[2], false, &f->relay, NULL);
	}
	if (r == 0) {
		*what = "floor: uffd-wp handler process, unprotect by a thread (3 hops)";
		r = handler_start(&f->uh3, false, NULL, &f->rel);
	}
	if (r) {
		b3_floors_close(f);
		return r;
	}
	*out = f;
	return 0;
}

int b3_floor_once(struct b3_floors *f, enum b3_floor k, unsigned int n, double *lat,
		  double *mean_us, const char **what)
{
	static const char *const names[B3_NFLOORS] = {
		[B3_FLOOR_FUTEX_THREADS] = "floor: futex ping-pong, two threads",
		[B3_FLOOR_FUTEX_PROCS] = "floor: futex ping-pong, two processes",
		[B3_FLOOR_UFFD_READ] = "floor: uffd-wp handler thread, blocking read",
		[B3_FLOOR_UFFD_EPOLL] = "floor: uffd-wp handler thread, epoll_wait + read",
		[B3_FLOOR_4HOP] = "floor: uffd-wp handler process relaying to a thread",
		[B3_FLOOR_3HOP] = "floor: uffd-wp handler process, a thread unprotects",
	};

	*what = names[k];
	switch (k) {
	case B3_FLOOR_FUTEX_THREADS:
	case B3_FLOOR_FUTEX_PROCS:
		return pingpong_run(&f->pp[k - B3_FLOOR_FUTEX_THREADS], n, lat, mean_us);
	case B3_FLOOR_UFFD_READ:
	case B3_FLOOR_UFFD_EPOLL:
	case B3_FLOOR_4HOP:
		return handler_run(&f->uh[k - B3_FLOOR_UFFD_READ], n, lat, mean_us);
	case B3_FLOOR_3HOP:
		return handler_run(&f->uh3, n, lat, mean_us);
	default:
		return -EINVAL;
	}
}

void b3_floors_close(struct b3_floors *f)
{
	if (!f)
		return;
	for (int k = 0; k < 3; k++)
		handler_stop(&f->uh[k]);
	/* first: its word is in uh3's shared page; the child ends on the stop page alone */
	if (f->rel.running) {
		atomic_store(f->rel.word, PP_EXIT);
		futex(f->rel.word, FUTEX_WAKE, 1, false);
		pthread_join(f->rel.thread, NULL);
	}
	handler_stop(&f->uh3);
	pingpong_stop(&f->relay);
	for (int k = 0; k < 2; k++)
		pingpong_stop(&f->pp[k]);
	if (f->pp[1].word)
		munmap((void *)f->pp[1].word, 4096);
	if (f->relay.word)
		munmap((void *)f->relay.word, 4096);
	free(f);
}
