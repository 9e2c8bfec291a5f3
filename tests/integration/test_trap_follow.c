/* SPDX-License-Identifier: MIT */
/*
 * test_trap_follow - trap mode with a followed child
 * (UM_INTERVAL_FOLLOW_FORK): the child's mprotect to read-only, munmap
 * and MADV_DONTNEED over its followed interval have run the owner's
 * invalidate callback for the child's interval before they return in the
 * child (revalidation scan off: nothing else would see the mprotect);
 * its calls over memory no interval covers cause no invalidation and
 * succeed. The child reads the callback's count itself, from memory it
 * shares with the owner, right after each call.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPAGES 8

/* LeakSanitizer stops the trap thread too (see test_trap.c) */
__attribute__((visibility("default"))) const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}

/* shared with the child (MAP_SHARED): what the owner's callback saw */
struct seen {
	atomic_uint n; /* invalidations of the child's interval */
	atomic_uint reason;
	atomic_uintptr_t start, end;
	uintptr_t other;       /* the unmirrored mapping (2 pages) */
	atomic_bool hit_other; /* an invalidation of the child's interval met it */
};

static struct seen *seen;
static struct um_interval *child_iv;
static pid_t child_pid;
static sem_t forked;

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	if (iv != child_iv)
		return;
	if (inv->start < seen->other + 2 * PAGE && seen->other < inv->end)
		atomic_store(&seen->hit_other, true);
	atomic_store(&seen->reason, inv->reason);
	atomic_store(&seen->start, inv->start);
	atomic_store(&seen->end, inv->end);
	atomic_fetch_add(&seen->n, 1); /* last: a reader that sees it sees the rest */
}

static void on_fork(struct um_interval *parent, struct um_interval *child, pid_t pid, void *priv)
{
	child_iv = child;
	child_pid = pid;
	sem_post(&forked);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate, .fork = on_fork };

/* the child's checks, a bit each; 0: all passed */
enum {
	BAD_MPROTECT = 1 << 0,
	BAD_MPROTECT_REASON = 1 << 1,
	BAD_MUNMAP = 1 << 2,
	BAD_MUNMAP_REASON = 1 << 3,
	BAD_DONTNEED = 1 << 4,
	BAD_UNMIRRORED = 1 << 5,
	BAD_CALL = 1 << 6,
};

/* one call over [p, p + PAGE): did the callback see it before it returned? */
static int before(int r, unsigned int n0, unsigned int reason, char *p, int bad, int bad_reason)
{
	int out = 0;

	if (r)
		return BAD_CALL;
	if (atomic_load(&seen->n) <= n0)
		return bad;
	if (atomic_load(&seen->n) == n0 + 1 &&
	    (atomic_load(&seen->reason) != reason || atomic_load(&seen->start) > (uintptr_t)p ||
	     atomic_load(&seen->end) < (uintptr_t)p + PAGE))
		out = bad_reason;
	return out;
}

static int child_calls(char *buf, char *other)
{
	int bad = 0;
	unsigned int n0;

	n0 = atomic_load(&seen->n);
	bad |= before(mprotect(buf, PAGE, PROT_READ), n0, UM_REASON_PROTECTION, buf, BAD_MPROTECT,
		      BAD_MPROTECT_REASON);
	n0 = atomic_load(&seen->n);
	bad |= before(munmap(buf + PAGE, PAGE), n0, UM_REASON_UNMAPPING, buf + PAGE, BAD_MUNMAP,
		      BAD_MUNMAP_REASON);
	n0 = atomic_load(&seen->n);
	bad |= before(madvise(buf + 2 * PAGE, PAGE, MADV_DONTNEED), n0, UM_REASON_REMOVE,
		      buf + 2 * PAGE, BAD_DONTNEED, 0);
	/* later events of the calls above may still come: only the range tells */
	if (mprotect(other, PAGE, PROT_READ) || munmap(other + PAGE, PAGE))
		bad |= BAD_CALL;
	if (atomic_load(&seen->hit_other))
		bad |= BAD_UNMIRRORED;
	return bad;
}

int main(void)
{
	static const char *const args[] = { "--revalidate-ms", "0", NULL };
	struct um_interval *iv;
	struct um_client *c;
	int go[2], res[2], r, bad = -1, status;
	char *buf, *other, b = 0;
	uint64_t seq;
	pid_t pid;

	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	harness_start("test_trap_follow", args);
	sem_init(&forked, 0, 0);
	seen = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(seen != MAP_FAILED, "mmap: %m");
	r = um_connect(NULL, UM_CONNECT_TRAP_VMA, &c);
	if (r == -EOPNOTSUPP)
		harness_skip("trap mode: no seccomp user notification with TSYNC_ESRCH here");
	CHECK(r == 0, "connect in trap mode: %s", strerror(-r));
	buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	other = harness_map_anon(2, PROT_READ | PROT_WRITE);
	memset(buf, 'a', NPAGES * PAGE);
	memset(other, 'o', 2 * PAGE);
	seen->other = (uintptr_t)other;
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, UM_INTERVAL_FOLLOW_FORK, &ops, NULL, &iv) ==
		      0,
	      "insert FOLLOW_FORK");
	CHECK(pipe(go) == 0 && pipe(res) == 0, "pipe: %m");
	pid = fork();
	CHECK(pid >= 0, "fork: %m");
	if (pid == 0) {
		close(go[1]);
		close(res[0]);
		/* once the owner has the child's interval */
		if (read(go[0], &b, 1) != 1)
			_exit(1);
		bad = child_calls(buf, other);
		_exit(write(res[1], &bad, sizeof(bad)) == sizeof(bad) ? 0 : 1);
	}
	close(go[0]);
	close(res[1]);
	CHECK(harness_sem_wait_ms(&forked, 10000), "ops->fork called");
	CHECK(child_pid == pid, "the child's interval is the child's (%d, %d)", (int)child_pid,
	      (int)pid);
	CHECK(harness_wait_even(child_iv, &seq) == 0, "the child's interval is even");
	CHECK(write(go[1], &b, 1) == 1, "go: %m");
	CHECK(read(res[0], &bad, sizeof(bad)) == sizeof(bad), "the child's result: %m");
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the child exited 0 (0x%x)", status);
	CHECK(!(bad & BAD_CALL), "the child's trapped calls succeeded");
	CHECK(!(bad & BAD_MPROTECT),
	      "child mprotect RO: the owner's callback for the child's interval ran before it "
	      "returned");
	CHECK(!(bad & BAD_MPROTECT_REASON), "child mprotect RO: reason PROTECTION over the page");
	CHECK(!(bad & BAD_MUNMAP), "child munmap: the callback ran before it returned");
	CHECK(!(bad & BAD_MUNMAP_REASON), "child munmap: reason UNMAPPING over the page");
	CHECK(!(bad & BAD_DONTNEED), "child MADV_DONTNEED: the callback ran before it returned");
	CHECK(!(bad & BAD_UNMIRRORED) && !atomic_load(&seen->hit_other),
	      "the child's unmirrored calls invalidated nothing");
	CHECK(buf[0] == 'a' && buf[PAGE] == 'a' && buf[2 * PAGE] == 'a',
	      "the child's calls left ours alone");
	um_disconnect(c);
	return harness_summary();
}
