/* SPDX-License-Identifier: MIT */
/*
 * test_trap - trap mode (UM_CONNECT_TRAP_VMA): mprotect to read-only and
 * to none, MADV_DONTNEED, mremap and munmap over a mirrored page have run
 * a subscriber's invalidate callback before they return in the owner
 * (revalidation scan off: nothing else would see mprotect); the seq goes
 * even again afterwards; a call over an unmirrored range is answered
 * without an invalidation and without waiting behind a call that is held;
 * a forked child's calls are answered, also once the owner has exited;
 * and when the daemon is SIGKILLed
 * while a thread is held in a trapped munmap, that munmap completes and
 * later calls keep working.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPAGES 16

/* the subscriber's view: what its callback saw, and a gate to hold it */
static atomic_uint ninv;
static atomic_uint last_reason;
static atomic_uintptr_t last_start, last_end;
static atomic_bool hold;
static sem_t entered, go;

/*
 * Read by AddressSanitizer's runtime, when there is one. LeakSanitizer's
 * exit-time check stops every thread, the trap thread too, and its
 * helper task then unmaps memory: a trapped call that nobody is left to
 * answer (docs/SEMANTICS.md, "Trap mode"). Exported, or the runtime
 * does not see it (the build hides symbols by default).
 */
__attribute__((visibility("default"))) const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}

static bool mapped(void *p);
static atomic_int unmapping_saw_mapped = -1; /* at the last UNMAPPING callback */

static void sub_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	if (inv->reason == UM_REASON_UNMAPPING)
		atomic_store(&unmapping_saw_mapped, mapped((void *)(uintptr_t)inv->start));
	atomic_store(&last_reason, inv->reason);
	atomic_store(&last_start, inv->start);
	atomic_store(&last_end, inv->end);
	/* counted last: a reader that sees the count sees the rest */
	atomic_fetch_add(&ninv, 1);
	if (atomic_load(&hold)) {
		sem_post(&entered);
		harness_sem_wait_ms(&go, 20000);
	}
}

static const struct um_interval_ops sub_ops = { .invalidate = sub_invalidate };

/* the first invalidation since @before covers [@s, @s + @len) with @reason */
static void expect_before(const char *what, unsigned int before, unsigned int reason, char *s,
			  size_t len)
{
	unsigned int n = atomic_load(&ninv);

	CHECK(n > before, "%s: the subscriber's callback ran before the call returned", what);
	CHECK(atomic_load(&last_reason) == reason || n > before + 1, "%s: reason %s, want %s", what,
	      um_reason_str(atomic_load(&last_reason)), um_reason_str(reason));
	CHECK(atomic_load(&last_start) <= (uintptr_t)s &&
		      atomic_load(&last_end) >= (uintptr_t)s + len,
	      "%s: invalidated [%#lx, %#lx), want [%p, +%zu)", what,
	      (unsigned long)atomic_load(&last_start), (unsigned long)atomic_load(&last_end), s,
	      len);
}

struct unmapper {
	pthread_t t;
	void *addr;
	size_t len;
	int ret;
	sem_t done;
};

static void *unmap_thread(void *arg)
{
	struct unmapper *u = arg;

	u->ret = munmap(u->addr, u->len);
	sem_post(&u->done);
	return NULL;
}

static void unmapper_start(struct unmapper *u, void *addr, size_t len)
{
	u->addr = addr;
	u->len = len;
	u->ret = -2;
	sem_init(&u->done, 0, 0);
	CHECK(pthread_create(&u->t, NULL, unmap_thread, u) == 0, "pthread_create");
}

static atomic_uint nsig;

static void on_usr1(int sig)
{
	atomic_fetch_add(&nsig, 1);
}

/* a snapshot of the page at @p through @iv, right now: its status, the entry in @e */
static long snap1(struct um_interval *iv, void *p, uint64_t *e)
{
	struct um_range r = { .start = (uintptr_t)p, .end = (uintptr_t)p + PAGE, .pfns = e };
	long ret;

	*e = 0;
	CHECK(um_range_register(&r, iv) == 0, "register");
	ret = harness_snapshot(&r);
	um_range_unregister(&r);
	return ret;
}

static bool mapped(void *p)
{
	unsigned char v;

	return mincore(p, PAGE, &v) == 0;
}

/*
 * A process in trap mode (O) forks a child (G) and exits. G keeps the
 * filter; the daemon, handed O's listener, answers once O is gone: G's
 * trapped calls succeed (they must not hang, nor fail with ENOSYS as
 * when nobody listens). O writes G's pid to @out_fd, G what mprotect
 * returned.
 */
static void orphan_stage(int out_fd)
{
	int gate[2], r;
	struct um_client *c;
	pid_t g;

	if (pipe(gate))
		_exit(10);
	r = um_connect(NULL, UM_CONNECT_TRAP_VMA, &c);
	if (r) {
		int v = r == -EOPNOTSUPP ? 77 : 11;

		(void)!write(out_fd, &v, sizeof(v));
		_exit(0);
	}
	g = fork();
	if (g < 0)
		_exit(12);
	if (g > 0 && write(out_fd, &g, sizeof(g)) != sizeof(g))
		_exit(13);
	if (g == 0) {
		char b;
		void *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0);

		close(gate[1]);
		/* EOF: O is gone */
		(void)!read(gate[0], &b, 1);
		r = mprotect(m, PAGE, PROT_READ) == 0 ? 0 : errno;
		(void)!write(out_fd, &r, sizeof(r));
		_exit(0);
	}
	_exit(0);
}

int main(void)
{
	static const char *const args[] = { "--revalidate-ms", "0", NULL };
	struct um_interval *iv, *siv;
	struct um_client *c, *s;
	struct unmapper u;
	unsigned int before;
	uint64_t seq;
	char *buf, *other, *dst;
	pid_t child;
	int r, status;

	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	harness_start("test_trap", args);
	sem_init(&entered, 0, 0);
	sem_init(&go, 0, 0);

	/* before this process takes the filter: the orphaned child */
	{
		int fds[2], v = -1;
		struct pollfd pf;
		pid_t o, g = 0;

		CHECK(pipe(fds) == 0, "pipe: %m");
		o = fork();
		CHECK(o >= 0, "fork: %m");
		if (o == 0) {
			close(fds[0]);
			orphan_stage(fds[1]);
		}
		close(fds[1]);
		CHECK(waitpid(o, &status, 0) == o && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the trap-mode process exited (0x%x)", status);
		CHECK(read(fds[0], &v, sizeof(v)) == sizeof(v), "read: %m");
		if (v != 77) {
			g = v;
			pf = (struct pollfd){ .fd = fds[0], .events = POLLIN };
			if (poll(&pf, 1, (int)harness_scaled_s(10) * 1000) != 1)
				kill(g, SIGKILL); /* hung: do not leave it behind */
			CHECK(pf.revents & POLLIN,
			      "its child's trapped mprotect returned (did not hang)");
			CHECK(read(fds[0], &v, sizeof(v)) == sizeof(v), "read: %m");
		}
		close(fds[0]);
		if (v == 77)
			harness_skip(
				"trap mode: no seccomp user notification with TSYNC_ESRCH here");
		/* the daemon serves the listener once the owner is gone */
		CHECK(v == 0,
		      "after the owner exited its child's trapped call returned "
		      "%d (%s), want 0",
		      v, strerror(v));
	}

	r = um_connect(NULL, UM_CONNECT_TRAP_VMA, &c);
	if (r == -EOPNOTSUPP)
		harness_skip("trap mode: no seccomp user notification with TSYNC_ESRCH here");
	CHECK(r == 0, "connect in trap mode: %s", strerror(-r));
	buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	other = harness_map_anon(4, PROT_READ | PROT_WRITE);
	memset(buf, 'a', NPAGES * PAGE);
	memset(other, 'o', 4 * PAGE);
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0, "insert");
	CHECK(um_connect(NULL, 0, &s) == 0, "subscriber connect");
	CHECK(um_interval_subscribe(s, getpid(), um_interval_id(iv), 0, &sub_ops, NULL, &siv) == 0,
	      "subscribe");
	CHECK(harness_wait_even(siv, &seq) == 0, "even after subscribe");

	/* mprotect read-only */
	before = atomic_load(&ninv);
	CHECK(mprotect(buf, PAGE, PROT_READ) == 0, "mprotect RO: %m");
	expect_before("mprotect RO", before, UM_REASON_PROTECTION, buf, PAGE);
	{
		uint64_t e;
		long n = snap1(siv, buf, &e);

		CHECK(n == 1 && (e & UM_DEFAULT_VALID) && !(e & UM_DEFAULT_WRITE),
		      "snapshot after mprotect RO: %ld, entry %#llx (valid, not writable)", n,
		      (unsigned long long)e);
	}
	CHECK(harness_wait_even(siv, &seq) == 0, "even after mprotect RO");

	/* mprotect none */
	before = atomic_load(&ninv);
	CHECK(mprotect(buf + PAGE, PAGE, PROT_NONE) == 0, "mprotect NONE: %m");
	expect_before("mprotect NONE", before, UM_REASON_PROTECTION, buf + PAGE, PAGE);
	{
		uint64_t e;
		long n = snap1(siv, buf + PAGE, &e);

		CHECK(n == -EPERM, "snapshot after mprotect NONE: %ld, want -EPERM", n);
	}
	CHECK(harness_wait_even(siv, &seq) == 0, "even after mprotect NONE");

	/* MADV_DONTNEED (the uffd REMOVE event is before the zap too; both are) */
	before = atomic_load(&ninv);
	CHECK(madvise(buf + 2 * PAGE, PAGE, MADV_DONTNEED) == 0, "madvise: %m");
	expect_before("MADV_DONTNEED", before, UM_REASON_REMOVE, buf + 2 * PAGE, PAGE);
	CHECK(harness_wait_even(siv, &seq) == 0, "even after DONTNEED");

	/* mremap away: UNMAPPING before, REMAP after */
	dst = harness_map_anon(1, PROT_READ | PROT_WRITE);
	before = atomic_load(&ninv);
	CHECK(mremap(buf + 3 * PAGE, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == dst,
	      "mremap: %m");
	CHECK(atomic_load(&ninv) > before, "mremap: callback ran before the call returned");
	CHECK(atomic_load(&ninv) == before + 1 || atomic_load(&last_reason) == UM_REASON_REMAP ||
		      atomic_load(&last_reason) == UM_REASON_UNMAPPING,
	      "mremap: reason %s", um_reason_str(atomic_load(&last_reason)));
	CHECK(dst[0] == 'a', "the page moved");
	{
		uint64_t e;
		long n = snap1(siv, buf + 3 * PAGE, &e);

		CHECK(n == -EFAULT, "snapshot after mremap: %ld, want -EFAULT (a hole)", n);
	}
	CHECK(harness_wait_even(siv, &seq) == 0, "even after mremap");

	/* munmap */
	before = atomic_load(&ninv);
	CHECK(munmap(buf + 4 * PAGE, PAGE) == 0, "munmap: %m");
	CHECK(atomic_load(&ninv) > before, "munmap: callback ran before the call returned");
	CHECK(atomic_load(&unmapping_saw_mapped) == 1,
	      "the UNMAPPING callback ran while the page was still mapped");
	{
		uint64_t e;
		long n = snap1(siv, buf + 4 * PAGE, &e);

		CHECK(n == -EFAULT, "snapshot after munmap: %ld, want -EFAULT (a hole)", n);
	}
	CHECK(harness_wait_even(siv, &seq) == 0, "even after munmap");

	/* an unmirrored range: no invalidation */
	CHECK(harness_wait_even(siv, &seq) == 0, "even");
	before = atomic_load(&ninv);
	CHECK(mprotect(other, PAGE, PROT_READ) == 0, "mprotect unmirrored: %m");
	CHECK(munmap(other + 3 * PAGE, PAGE) == 0, "munmap unmirrored: %m");
	/*
	 * brk and shmdt name an address: asked about whenever an interval
	 * lies above it (ours does), the daemon finds the range (the heap's
	 * end, the segment) and that it meets no interval
	 */
	{
		void *b0 = sbrk(0);
		int id = shmget(IPC_PRIVATE, 4 * PAGE, IPC_CREAT | 0600);
		char *shm;

		CHECK(b0 != (void *)-1 && sbrk(1 << 20) == b0, "sbrk grow: %m");
		memset(b0, 1, 1 << 20);
		CHECK(sbrk(-(1 << 20)) != (void *)-1 && sbrk(0) == b0, "sbrk shrink: %m");
		CHECK(id >= 0, "shmget: %m");
		shm = shmat(id, NULL, 0);
		CHECK(shm != (void *)-1, "shmat: %m");
		shmctl(id, IPC_RMID, NULL);
		shm[0] = 1;
		CHECK(shmdt(shm) == 0, "shmdt: %m");
	}
	CHECK(atomic_load(&ninv) == before, "no invalidation for an unmirrored range");
	{
		uint64_t seq2;

		CHECK(um_interval_read_begin(siv, &seq2) == 0 && seq2 == seq,
		      "seq unchanged by unmirrored calls: %llu -> %llu", (unsigned long long)seq,
		      (unsigned long long)seq2);
	}

	/* a child inherits the filter: its calls are answered */
	child = fork();
	CHECK(child >= 0, "fork: %m");
	if (child == 0) {
		char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);

		if (m == MAP_FAILED || mprotect(m, PAGE, PROT_READ) ||
		    mprotect(buf + 5 * PAGE, PAGE, PROT_READ) || munmap(buf + 6 * PAGE, PAGE) ||
		    madvise(buf + 7 * PAGE, PAGE, MADV_DONTNEED) || munmap(m, 2 * PAGE))
			_exit(1);
		_exit(0);
	}
	CHECK(waitpid(child, &status, 0) == child, "waitpid: %m");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the child's trapped calls were answered and succeeded (status 0x%x)", status);
	CHECK(buf[6 * PAGE] == 'a' && buf[7 * PAGE] == 'a', "the child's calls left ours alone");

	/* exec in a child: the new program's trapped calls (ld.so's) are answered */
	child = fork();
	CHECK(child >= 0, "fork: %m");
	if (child == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "a child exec'd /bin/true under the filter (status 0x%x)", status);

	/*
	 * A signal (a handler without SA_RESTART) to a thread held in a
	 * trapped munmap does not make the munmap fail with EINTR: the filter
	 * waits killable once the notification is received (5.19+); the
	 * handler runs after the call.
	 */
	{
		struct sigaction sa = { .sa_handler = on_usr1 }; /* no SA_RESTART */
		struct unmapper u2;

		CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction: %m");
		CHECK(harness_wait_even(siv, &seq) == 0, "even before the signalled munmap");
		atomic_store(&hold, true);
		unmapper_start(&u2, buf + 11 * PAGE, PAGE);
		CHECK(harness_sem_wait_ms(&entered, 10000), "the callback started");
		CHECK(!harness_sem_wait_ms(&u2.done, 200), "the munmap is held");
		CHECK(pthread_kill(u2.t, SIGUSR1) == 0, "signal the held thread");
		CHECK(!harness_sem_wait_ms(&u2.done, 300), "still held after a signal (ret %d)",
		      u2.ret);
		atomic_store(&hold, false);
		sem_post(&go);
		CHECK(harness_sem_wait_ms(&u2.done, 10000), "the munmap returned after the ack");
		pthread_join(u2.t, NULL);
		CHECK(u2.ret == 0, "and succeeded (%d, not EINTR)", u2.ret);
		CHECK(!mapped(buf + 11 * PAGE), "the page is gone");
		CHECK(atomic_load(&nsig) == 1, "the handler ran once (%u)", atomic_load(&nsig));
	}

	/* a held call does not hold an unmirrored one */
	CHECK(harness_wait_even(siv, &seq) == 0, "even before the held munmap");
	atomic_store(&hold, true);
	unmapper_start(&u, buf + 8 * PAGE, PAGE);
	CHECK(harness_sem_wait_ms(&entered, 10000), "the subscriber's callback started");
	CHECK(!harness_sem_wait_ms(&u.done, 200), "the munmap is held while the callback runs");
	CHECK(mprotect(other + PAGE, PAGE, PROT_READ) == 0,
	      "an unmirrored mprotect returns while a mirrored munmap is held: %m");
	CHECK(mapped(buf + 8 * PAGE), "the held munmap has not happened yet");

	/* the daemon dies while the munmap is held: it goes ahead */
	status = harness_kill_daemon(SIGKILL);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "daemon killed (0x%x)", status);
	CHECK(harness_sem_wait_ms(&u.done, 10000),
	      "the held munmap returned after the daemon died");
	pthread_join(u.t, NULL);
	CHECK(u.ret == 0, "the held munmap succeeded (%d)", u.ret);
	CHECK(!mapped(buf + 8 * PAGE), "and unmapped the page");
	CHECK(mprotect(buf + 9 * PAGE, PAGE, PROT_READ) == 0, "later trapped calls work: %m");
	CHECK(munmap(buf + 10 * PAGE, PAGE) == 0, "munmap after the daemon died: %m");
	{
		void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);

		CHECK(p != MAP_FAILED && munmap(p, 1 << 20) == 0, "mmap/munmap keep working");
	}
	atomic_store(&hold, false);
	sem_post(&go);
	um_disconnect(s);
	um_disconnect(c);
	return harness_summary();
}
