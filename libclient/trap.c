/* SPDX-License-Identifier: MIT */
/*
 * trap.c - trap mode: see trap.h and SEMANTICS.md, "Trap mode".
 *
 * While this process lives, only its thread receives from the listener:
 * the daemon is asked, not given the calls. A daemon that dies holding a
 * received notification would leave the trapped thread stuck (the kernel
 * fails a notification with ENOSYS only once no listener fd is open, and
 * no other copy can receive it again), while here the daemon's death is
 * an EOF that lets every pending and later call continue. The daemon gets
 * a copy of the listener all the same (hand_over()), which it receives
 * from only once our end of the trap socket is closed: once we exited or
 * exec'd, since we never close it ourselves.
 *
 * The thread's loop neither allocates nor takes a lock another thread may
 * hold: a trapped free() may hold the malloc arena's lock, a trapped
 * thread of the library may hold the client's. It polls the listener and
 * its own socket, so one call waiting for its acks delays no other call
 * (a callback of this process that must ack may itself make a trapped
 * call). The thread itself must make no trapped call: it would wait for
 * itself.
 */
#include "trap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "conn.h"
#include "uapi_compat.h"
#include "umirror_proto.h"

#if defined(__x86_64__)
#define TRAP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TRAP_ARCH AUDIT_ARCH_AARCH64
#endif

#define SELF_MAX 64
#define HELLO_TIMEOUT_MS 10000 /* as any request (types.h) */
#define PENDING_MAX 64

static _Atomic pid_t self_tids[SELF_MAX];

/*
 * A FOLLOW_FORK interval was inserted: the daemon may follow children,
 * so their calls are asked about (UMP_TRAP_CHILD) instead of answered at
 * once. Sticky: a followed child's interval outlives the owner's own.
 */
static atomic_bool follow;

void trap_follow_on(void)
{
	atomic_store(&follow, true);
}

static struct {
	pthread_mutex_t lock; /* install only */
	bool installed;
	bool handover; /* the daemon takes the listener once we are gone */
	bool dead;     /* the daemon is gone: answer everything at once */
	int listener, sock, state_fd;
	struct ump_trap_state *state; /* shared with the daemon (a memfd) */
	sem_t go;		      /* the listener is set (or -1: give up) */
	sem_t ready;		      /* the thread runs its own code (its start-up is over) */
	sem_t handed;		      /* the thread sent the handover (or had none to send) */
	pthread_t thread;
	struct seccomp_notif *req;
	struct seccomp_notif_resp *resp;
	size_t req_size, resp_size;
} T = { .lock = PTHREAD_MUTEX_INITIALIZER, .listener = -1, .sock = -1, .state_fd = -1 };

/*
 * This thread's id, asked once: an event thread marks itself around every
 * callback. A fork's child is a new thread with the forking thread's copy:
 * it asks again.
 */
static __thread pid_t tl_tid;
static pthread_once_t tid_once = PTHREAD_ONCE_INIT;

static void tid_atfork_child(void)
{
	tl_tid = 0;
}

static void tid_register(void)
{
	pthread_atfork(NULL, NULL, tid_atfork_child);
}

static pid_t gettid_raw(void)
{
	if (!tl_tid) {
		pthread_once(&tid_once, tid_register);
		tl_tid = (pid_t)syscall(SYS_gettid);
	}
	return tl_tid;
}

void trap_self_enter(void)
{
	pid_t me = gettid_raw();

	for (int i = 0; i < SELF_MAX; i++) {
		pid_t z = 0;

		if (atomic_compare_exchange_strong(&self_tids[i], &z, me))
			return;
	}
}

void trap_self_leave(void)
{
	pid_t me = gettid_raw();

	for (int i = 0; i < SELF_MAX; i++) {
		pid_t x = me;

		if (atomic_compare_exchange_strong(&self_tids[i], &x, 0))
			return;
	}
}

/*
 * The ranges of this process's intervals, for the trap thread to read
 * without a lock: a seqcount (odd while a writer changes the table; the
 * reader retries) over a fixed array of atomics, so a writer preempted
 * half way costs the reader a spin, never a wait on a lock a trapped
 * thread might hold. Writers (insert, remove) serialise on a mutex.
 */
#define RANGES_MAX 256

static struct {
	pthread_mutex_t wlock;
	atomic_uint seq;
	atomic_uint n;
	atomic_bool overflow; /* more than RANGES_MAX: ask about everything */
	_Atomic uint64_t start[RANGES_MAX], end[RANGES_MAX];
} R = { .wlock = PTHREAD_MUTEX_INITIALIZER };

void trap_range_add(uint64_t start, uint64_t end)
{
	unsigned int n;

	pthread_mutex_lock(&R.wlock);
	atomic_fetch_add(&R.seq, 1);
	n = atomic_load(&R.n);
	if (n < RANGES_MAX) {
		atomic_store(&R.start[n], start);
		atomic_store(&R.end[n], end);
		atomic_store(&R.n, n + 1);
	} else {
		atomic_store(&R.overflow, true);
	}
	atomic_fetch_add(&R.seq, 1);
	pthread_mutex_unlock(&R.wlock);
}

void trap_range_del(uint64_t start, uint64_t end)
{
	unsigned int n;

	pthread_mutex_lock(&R.wlock);
	atomic_fetch_add(&R.seq, 1);
	n = atomic_load(&R.n);
	for (unsigned int i = 0; i < n; i++) {
		if (atomic_load(&R.start[i]) != start || atomic_load(&R.end[i]) != end)
			continue;
		/* the last one fills the hole */
		atomic_store(&R.start[i], atomic_load(&R.start[n - 1]));
		atomic_store(&R.end[i], atomic_load(&R.end[n - 1]));
		atomic_store(&R.n, n - 1);
		break;
	}
	atomic_fetch_add(&R.seq, 1);
	pthread_mutex_unlock(&R.wlock);
}

/* may [s, e) meet an interval? (true when unsure) */
static bool range_meets(uint64_t s, uint64_t e)
{
	for (;;) {
		unsigned int seq = atomic_load(&R.seq), n;
		bool hit = atomic_load(&R.overflow);

		if (seq & 1)
			continue;
		n = atomic_load(&R.n);
		for (unsigned int i = 0; i < n && i < RANGES_MAX && !hit; i++)
			hit = atomic_load(&R.start[i]) < e && s < atomic_load(&R.end[i]);
		if (atomic_load(&R.seq) == seq)
			return hit;
	}
}

static bool is_self(pid_t tid)
{
	for (int i = 0; i < SELF_MAX; i++)
		if (atomic_load_explicit(&self_tids[i], memory_order_relaxed) == tid)
			return true;
	return false;
}

/* --- the filter ---------------------------------------------------------- */

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(i) (offsetof(struct seccomp_data, args[i]))
#define ARG_HI(i) (offsetof(struct seccomp_data, args[i]) + 4)
#else
#define ARG_LO(i) (offsetof(struct seccomp_data, args[i]) + 4)
#define ARG_HI(i) (offsetof(struct seccomp_data, args[i]))
#endif

/* advice values that change PTEs (zap, reclaim, collapse, guard) */
static const unsigned int zap_advice[] = {
	MADV_DONTNEED,
	MADV_FREE,
	MADV_REMOVE,
	21 /* MADV_PAGEOUT */,
	24 /* MADV_DONTNEED_LOCKED */,
	25 /* MADV_COLLAPSE */,
	102 /* MADV_GUARD_INSTALL */,
};

#ifdef TRAP_ARCH
/*
 * The program, written out: jumps are relative and only go forward, so
 * the blocks are laid out with their distances computed from the block
 * sizes below (a block that allows ends in its own return).
 *   0  arch != ours            -> allow
 *   2  nr in the always-set    -> notify
 *      brk                     -> brk block
 *      madvise                 -> madvise block
 *      mmap                    -> mmap block
 *      else                    -> allow
 */
static int build_filter(struct sock_filter *f, size_t max)
{
	static const unsigned int always[] = {
		SYS_mprotect, SYS_pkey_mprotect, SYS_munmap, SYS_mremap, SYS_shmdt,
	};
	const size_t nadv = sizeof(zap_advice) / sizeof(zap_advice[0]);
	const size_t nalw = sizeof(always) / sizeof(always[0]);
	size_t n = 0, allow, notify, brk_blk, madv_blk, mmap_blk;

	/* blocks: header 3, dispatch nalw + 3, allow 1, brk 5, madvise nadv + 2, mmap 3, notify 1
	 */
	size_t hdr = 3, disp = nalw + 3;

	allow = hdr + disp;
	brk_blk = allow + 1;
	madv_blk = brk_blk + 5;
	mmap_blk = madv_blk + 1 + nadv + 1;
	notify = mmap_blk + 3;
	if (notify + 1 > max)
		return -1;
#define AT(i) ((i)-n - 1) /* jump offset from instruction n to i */
	f[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					    offsetof(struct seccomp_data, arch));
	n++;
	f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TRAP_ARCH, 0, AT(allow));
	n++;
	f[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					    offsetof(struct seccomp_data, nr));
	n++;
	for (size_t i = 0; i < nalw; i++, n++)
		f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, always[i],
						    AT(notify), 0);
	f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_brk, AT(brk_blk), 0);
	n++;
	f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_madvise, AT(madv_blk),
					    0);
	n++;
	f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mmap, AT(mmap_blk), 0);
	n++;
	/* allow */
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	/* brk(0) asks where the break is: nothing changes */
	f[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0));
	n++;
	f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, AT(notify));
	n++;
	f[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_HI(0));
	n++;
	f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, AT(notify));
	n++;
	f[n] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	n++;
	/* madvise: the advice */
	f[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2));
	n++;
	for (size_t i = 0; i < nadv; i++, n++)
		f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, zap_advice[i],
						    AT(notify), 0);
	f[n] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	n++;
	/* mmap: only MAP_FIXED replaces what was there (not MAP_FIXED_NOREPLACE) */
	f[n] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(3));
	n++;
	f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, MAP_FIXED, AT(notify), 0);
	n++;
	f[n] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	n++;
	/* notify */
	f[n] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	n++;
#undef AT
	/* a block whose size above is wrong would jump into the middle of another */
	return n == notify + 1 ? (int)n : -1;
}
#endif

/* --- the thread ------------------------------------------------------------ */

struct pending {
	uint64_t req_id; /* 0: free */
	uint64_t notif_id;
};

/* the request id of the handover messages (no reply): never a pending TRAP's */
#define HANDOVER_ID (UINT64_MAX - 1)

/*
 * What the daemon answers for us once we are gone (the state memfd): a
 * notification we received and hold, or the last we received. Plain
 * stores: the daemon reads them only after every thread of ours is dead.
 */
static void state_held(int slot, uint64_t id)
{
	if (T.state)
		__atomic_store_n(&T.state->held[slot], id, __ATOMIC_RELAXED);
}

static void state_last(uint64_t id)
{
	if (T.state)
		__atomic_store_n(&T.state->last, id, __ATOMIC_RELAXED);
}

static void answer(uint64_t id)
{
	struct seccomp_notif_resp *r = T.resp;

	memset(r, 0, T.resp_size);
	r->id = id;
	r->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	/* ENOENT: the thread was killed meanwhile, nothing to answer */
	ioctl(T.listener, SECCOMP_IOCTL_NOTIF_SEND, r);
}

static uint64_t page_up(uint64_t v)
{
	return (v + UMP_PAGE_SIZE - 1) & ~(uint64_t)(UMP_PAGE_SIZE - 1);
}

/* the request for the trapped call in T.req; false: nothing to ask */
static bool describe(const struct seccomp_notif *n, struct ump_trap *t)
{
	const __u64 *a = n->data.args;
	uint64_t start = a[0] & ~(uint64_t)(UMP_PAGE_SIZE - 1);
	long nr = n->data.nr;

	memset(t, 0, sizeof(*t));
	t->tid = n->pid;
	t->start = start;
	if (nr == SYS_brk) {
		t->start = page_up(a[0]);
		t->flags = UMP_TRAP_BRK;
		t->reason = UMP_REASON_UNMAPPING;
		return t->start != 0;
	}
	if (nr == SYS_shmdt) {
		t->flags = UMP_TRAP_SHMDT;
		t->reason = UMP_REASON_UNMAPPING;
		return true;
	}
	t->end = a[0] + page_up(a[1]);
	if (nr == SYS_mprotect || nr == SYS_pkey_mprotect)
		t->reason = UMP_REASON_PROTECTION;
	else if (nr == SYS_madvise)
		t->reason = UMP_REASON_REMOVE;
	else
		t->reason = UMP_REASON_UNMAPPING; /* munmap, mremap, mmap MAP_FIXED */
	if (nr == SYS_mremap && (a[3] & MREMAP_FIXED)) {
		t->start2 = a[4] & ~(uint64_t)(UMP_PAGE_SIZE - 1);
		t->end2 = a[4] + page_up(a[2]);
		if (t->end2 <= t->start2)
			t->start2 = t->end2 = 0;
	}
	if (t->end <= t->start || page_up(t->end) < t->end) {
		/* nothing (mremap's old_size 0) or a wrap: only the second range */
		if (!t->end2)
			return false;
		t->start = t->start2;
		t->end = t->end2;
		t->start2 = t->end2 = 0;
	}
	t->end = page_up(t->end);
	return true;
}

/*
 * Does the call meet a range of ours? brk and shmdt name an address, not a
 * range: anything at or above it (the daemon finds the VMA).
 */
static bool trap_meets(const struct ump_trap *t)
{
	if (t->flags)
		return range_meets(t->start, UINT64_MAX);
	return range_meets(t->start, t->end) || (t->end2 && range_meets(t->start2, t->end2));
}

/*
 * The daemon is gone, or dropped us: answer everything ourselves from now
 * on. The socket stays open until we exit or exec: the daemon takes the
 * listener over only when it sees our end closed, so that it and this
 * thread never both receive from it.
 */
static void go_dead(struct pending *p)
{
	T.dead = true;
	for (int i = 0; i < PENDING_MAX; i++)
		if (p[i].req_id) {
			answer(p[i].notif_id);
			p[i].req_id = 0;
			state_held(i, 0);
		}
}

static void on_reply(struct pending *p, int *npend)
{
	struct conn_msg m;

	for (;;) {
		int r = conn_recv(T.sock, &m);

		if (r == -EAGAIN)
			return;
		if (r < 0) {
			go_dead(p);
			*npend = 0;
			return;
		}
		if (m.fd >= 0)
			close(m.fd);
		for (int i = 0; i < PENDING_MAX; i++)
			if (p[i].req_id == m.msg.id) {
				/* whatever the status: the daemon did what it could */
				answer(p[i].notif_id);
				p[i].req_id = 0;
				state_held(i, 0);
				(*npend)--;
				break;
			}
	}
}

static void on_notif(struct pending *p, int *npend, uint64_t *next_id, pid_t me_pid)
{
	struct seccomp_notif *n = T.req;
	uint64_t buf[UMP_MSG_MAX / 8];
	struct ump_trap t;
	bool other;
	size_t len;
	int slot;

	memset(n, 0, T.req_size);
	if (ioctl(T.listener, SECCOMP_IOCTL_NOTIF_RECV, n) < 0)
		return; /* EINTR; ENOENT: the caller died before we got it */
	state_last(n->id);
	/*
	 * Continue at once: the daemon is gone; a library thread (it may be
	 * the one that has to ack); another process (a child that inherited
	 * the filter: tgkill with signal 0 finds the thread only in ours)
	 * unless the daemon may follow it; a range that meets none of our
	 * intervals.
	 */
	if (T.dead || is_self((pid_t)n->pid)) {
		answer(n->id);
		return;
	}
	/*
	 * Another process: a child that inherited the filter. Asked about
	 * (whatever the range: its intervals are not in our table) only if
	 * the daemon may follow it.
	 */
	other = syscall(SYS_tgkill, me_pid, (pid_t)n->pid, 0) != 0;
	if ((other && !atomic_load(&follow)) || !describe(n, &t) || (!other && !trap_meets(&t))) {
		answer(n->id);
		return;
	}
	if (other)
		t.flags |= UMP_TRAP_CHILD;
	for (slot = 0; slot < PENDING_MAX && p[slot].req_id; slot++)
		;
	p[slot].req_id = (*next_id)++;
	p[slot].notif_id = n->id;
	state_held(slot, n->id);
	len = ump_proto_encode(buf, UMP_MSG_TRAP, p[slot].req_id, &t, sizeof(t));
	if (conn_send(T.sock, buf, len, -1) < 0) {
		p[slot].req_id = 0;
		state_held(slot, 0);
		answer(n->id);
		go_dead(p);
		*npend = 0;
		return;
	}
	(*npend)++;
}

/*
 * Give the daemon the state memfd and a copy of the listener, for when we
 * are gone. No reply comes; a daemon that refuses leaves things as
 * without the handover.
 */
static void hand_over(void)
{
	static const uint32_t what[2] = { UMP_HANDOVER_STATE, UMP_HANDOVER_LISTENER };
	uint64_t buf[UMP_MSG_MAX / 8];

	for (int i = 0; i < 2; i++) {
		struct ump_trap_handover h = { .what = what[i] };
		size_t len =
			ump_proto_encode(buf, UMP_MSG_TRAP_HANDOVER, HANDOVER_ID, &h, sizeof(h));
		int fd = i ? T.listener : T.state_fd;

		if (fd < 0 || conn_send(T.sock, buf, len, fd) < 0)
			return;
	}
}

static void *trap_thread(void *arg)
{
	static struct pending p[PENDING_MAX];
	uint64_t next_id = 1;
	pid_t me_pid = getpid();
	int npend = 0;

	(void)arg;
	trap_self_enter();
	sem_post(&T.ready);
	while (sem_wait(&T.go) < 0)
		;
	if (T.listener < 0)
		return NULL;
	if (T.handover)
		hand_over();
	if (T.state_fd >= 0)
		close(T.state_fd); /* the daemon has its own copy, the mapping stays */
	T.state_fd = -1;
	sem_post(&T.handed);
	for (;;) {
		struct pollfd pf[2] = {
			/* a full table: let the kernel queue the next calls */
			{ .fd = npend < PENDING_MAX ? T.listener : -1, .events = POLLIN },
			{ .fd = T.dead ? -1 : T.sock, .events = POLLIN },
		};

		if (poll(pf, 2, -1) < 0)
			continue;
		if (pf[1].revents)
			on_reply(p, &npend);
		if (pf[0].revents & POLLIN)
			on_notif(p, &npend, &next_id, me_pid);
		/* POLLHUP alone: no task uses the filter any more (cannot happen to us) */
	}
	return NULL;
}

/* --- install -------------------------------------------------------------- */

/*
 * A child has the filter but not the thread: its copy of the listener
 * would keep the filter "listened to" after we exit, and its trapped
 * calls would then wait forever instead of failing. Our thread answers
 * its calls while we live. close() only: async-signal-safe.
 */
static void trap_atfork_child(void)
{
	if (T.listener >= 0)
		close(T.listener);
	if (T.sock >= 0)
		close(T.sock);
	if (T.state_fd >= 0)
		close(T.state_fd);
	T.listener = T.sock = T.state_fd = -1;
	/* the mapping is the parent's: this process has no trap thread to write it */
	T.state = NULL;
}

static int trap_hello(int fd)
{
	struct ump_hello h = { .version = UMP_PROTO_VERSION,
			       .features = UMP_PFEAT_TRAP | UMP_PFEAT_TRAP_HANDOVER };
	uint64_t buf[UMP_MSG_MAX / 8];
	const struct ump_hello_reply *hr;
	struct conn_msg m;
	size_t len = ump_proto_encode(buf, UMP_MSG_HELLO, 1, &h, sizeof(h));
	int r;

	r = conn_send(fd, buf, len, -1);
	if (r < 0)
		return r;
	for (;;) {
		r = conn_poll(fd, HELLO_TIMEOUT_MS);
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0 && r != -EINTR)
			return r;
		r = conn_recv(fd, &m);
		if (r == -EAGAIN)
			continue;
		if (r < 0)
			return r;
		if (m.fd >= 0)
			close(m.fd); /* the result buffer: this connection reads nothing */
		if (m.msg.type != (UMP_MSG_HELLO | UMP_REPLY))
			return -EPROTO;
		hr = m.msg.body;
		if (hr->r.status)
			return hr->r.status;
		T.handover = hr->features & UMP_PFEAT_TRAP_HANDOVER;
		return hr->features & UMP_PFEAT_TRAP ? 0 : -EOPNOTSUPP;
	}
}

/*
 * The memfd the daemon reads once we are gone (ump_trap_state), mapped
 * here; sealed so it cannot shrink under the daemon. Without it (or
 * without a daemon that takes the listener over) there is no handover.
 */
static void trap_state_open(void)
{
	int fd = (int)syscall(SYS_memfd_create, "umirror-trap", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	void *p = MAP_FAILED;

	if (fd >= 0 && ftruncate(fd, sizeof(*T.state)) == 0)
		p = mmap(NULL, sizeof(*T.state), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		if (p != MAP_FAILED)
			munmap(p, sizeof(*T.state));
		if (fd >= 0)
			close(fd);
		T.handover = false;
		return;
	}
	T.state = p;
	T.state->magic = UMP_TRAP_STATE_MAGIC;
	T.state_fd = fd;
}

#ifdef TRAP_ARCH
/*
 * The request and response buffers at the sizes this kernel uses (never
 * below our headers' sizes). The caller frees both on failure.
 */
static int trap_alloc_bufs(const struct seccomp_notif_sizes *sz)
{
	T.req_size = sz->seccomp_notif > sizeof(*T.req) ? sz->seccomp_notif : sizeof(*T.req);
	T.resp_size =
		sz->seccomp_notif_resp > sizeof(*T.resp) ? sz->seccomp_notif_resp : sizeof(*T.resp);
	T.req = calloc(1, T.req_size);
	T.resp = calloc(1, T.resp_size);
	return T.req && T.resp ? 0 : -ENOMEM;
}

/*
 * Start the trap thread and wait until it has posted T.ready, i.e. runs
 * its own code; it then waits on T.go for the listener. The caller must
 * install the filter only after this returns 0, and destroys the two
 * semaphores on failure.
 */
static int trap_start_thread(void)
{
	sigset_t all, old;
	int r;

	sem_init(&T.go, 0, 0);
	sem_init(&T.ready, 0, 0);
	sem_init(&T.handed, 0, 0);
	/*
	 * The thread first: once the filter is in, creating one (mmap and
	 * mprotect of its stack) would wait for an answer nobody gives. And
	 * the filter only once the thread runs its own code: what runs in it
	 * before (a sanitizer runtime's thread start-up allocates, and its
	 * allocator maps with MAP_FIXED) would be a trapped call of the one
	 * thread that answers them (test_trap hung there under ASan).
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&T.thread, NULL, trap_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return r;
	while (sem_wait(&T.ready) < 0)
		;
	return 0;
}

/*
 * Install the @n instructions of @f for all threads with a listener, into
 * T.listener. Returns 0, -EOPNOTSUPP (seccomp or a needed flag missing),
 * -EBUSY (a listener already) or another negative errno.
 */
static int trap_set_filter(struct sock_filter *f, int n)
{
	unsigned long flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC |
			      SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
	struct sock_fprog prog = { .len = (unsigned short)n, .filter = f };
	long l;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	/*
	 * Killable once received (5.19): without it a signal to a
	 * thread held for its acks interrupts the call, and munmap or
	 * mprotect would fail with EINTR, which no caller expects.
	 */
	l = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
		    flags | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
	if (l < 0 && errno == EINVAL)
		l = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (l < 0)
		/* EINVAL: a flag this kernel lacks; EBUSY: a listener already */
		return errno == EINVAL || errno == ENOSYS ? -EOPNOTSUPP
		       : errno == ESRCH			  ? -EBUSY
							  : -errno;
	T.listener = (int)l;
	return 0;
}
#endif

int trap_install(const char *path)
{
#ifndef TRAP_ARCH
	(void)path;
	return -EOPNOTSUPP;
#else
	struct sock_filter f[64];
	struct seccomp_notif_sizes sz;
	int r, n, fd = -1;

	pthread_mutex_lock(&T.lock);
	if (T.installed) {
		pthread_mutex_unlock(&T.lock);
		return 0;
	}
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) < 0) {
		r = errno == EINVAL || errno == ENOSYS ? -EOPNOTSUPP : -errno;
		goto out;
	}
	n = build_filter(f, sizeof(f) / sizeof(f[0]));
	if (n < 0) {
		r = -EOPNOTSUPP;
		goto out;
	}
	r = trap_alloc_bufs(&sz);
	if (r < 0)
		goto out_free;
	r = conn_open(path, &fd);
	if (r < 0)
		goto out_free;
	r = trap_hello(fd);
	if (r < 0)
		goto out_close;
	T.sock = fd;
	if (T.handover)
		trap_state_open();
	/* the thread must run before the filter is in: see trap_start_thread() */
	r = trap_start_thread();
	if (r)
		goto out_sem;
	r = trap_set_filter(f, n);
	/* the thread waits for the listener, or for -1 to leave */
	sem_post(&T.go);
	if (r) {
		pthread_join(T.thread, NULL);
		goto out_sem;
	}
	/*
	 * Once sent, the listener is the daemon's even if we exec or exit
	 * the next moment (an fd in flight holds the file); before, an exec
	 * would leave the filter without a listener.
	 */
	while (sem_wait(&T.handed) < 0)
		;
	/*
	 * One trapped call of ours, answered at once (an empty range), so
	 * that the state names a notification id from the start: the daemon
	 * answers the ids after the last one recorded, and without one it
	 * could not find a notification our thread received and did not get
	 * to record or answer when the process died (a child's, the first
	 * one ever: its caller would wait for good).
	 */
	if (T.state)
		madvise((void *)T.state, 0, MADV_DONTNEED);
	T.installed = true;
	pthread_atfork(NULL, NULL, trap_atfork_child);
	pthread_mutex_unlock(&T.lock);
	return 0;
out_sem:
	sem_destroy(&T.go);
	sem_destroy(&T.ready);
	sem_destroy(&T.handed);
	T.sock = -1;
	if (T.state) {
		munmap(T.state, sizeof(*T.state));
		close(T.state_fd);
		T.state = NULL;
		T.state_fd = -1;
	}
out_close:
	close(fd);
out_free:
	free(T.req);
	free(T.resp);
	T.req = NULL;
	T.resp = NULL;
out:
	pthread_mutex_unlock(&T.lock);
	return r;
#endif
}
