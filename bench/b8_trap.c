// SPDX-License-Identifier: MIT
/*
 * B8: what trap mode (UM_CONNECT_TRAP_VMA) costs the owner's calls.
 *
 * Two worker processes, forked from the bench, each with its own
 * connection and one interval of 32 pages with an empty (synchronous)
 * invalidate callback: the plain worker connects without the mode, the
 * trapped one with it (a seccomp filter cannot be removed from a process,
 * so neither side may be the bench itself). Per case, the bench tells
 * them in turn (plain, trapped, plain, ...) to run a batch of calls, each
 * timed alone:
 *   - mprotect of one page between read-only and read-write, inside the
 *     interval ("mirrored": the trapped call waits for the daemon's
 *     invalidation and the callback's ack) and outside it ("unmirrored":
 *     the library's trap thread answers at once);
 *   - munmap of one written page, inside (a page mapped back with
 *     MAP_FIXED, untimed, before each) and outside the interval;
 *   - glibc malloc of 256 KiB, one byte written, free: with glibc's
 *     default (its dynamic mmap threshold moves the blocks to the heap
 *     after the first free) and with M_MMAP_THRESHOLD at 128 KiB (an mmap
 *     and a munmap per block). The default case runs first: mallopt
 *     cannot be undone (and malloc_trim() then gives the heap back, or
 *     its top would serve the blocks).
 * value = the trapped worker's p50, baseline = the plain worker's p50,
 * ratio = trapped / plain; both p99s are reported.
 *
 * Checks: every call succeeds; in the trapped worker every mirrored call
 * ran the callback before it returned (the mode is on), in the plain
 * worker none did (nothing else would invalidate for mprotect).
 */
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "timing.h"

#define B8_PAGE 4096ul
#define B8_PAGES 64 /* the worker's region; the interval is its first 32 pages */
#define B8_IV_PAGES 32
#define B8_MIRRORED 8	 /* the page the mirrored cases use */
#define B8_UNMIRRORED 48 /* the page the unmirrored mprotect uses */
#define B8_BLOCK (256ul << 10)

enum {
	C_MPROT_MIR,
	C_MPROT_UNMIR,
	C_MUNMAP_MIR,
	C_MUNMAP_UNMIR,
	C_MALLOC_DEF,
	C_MALLOC_MMAP,
	C_NR
};

static const struct {
	const char *bench, *baseline_name, *note;
} cases[C_NR] = {
	[C_MPROT_MIR] = { "B8_trap_mprotect_mirrored", "plain mprotect (no trap mode)",
			  "per call, 1 page RO<->RW inside a 32-page interval with a sync "
			  "receiver; "
			  "ratio = trapped / plain p50" },
	[C_MPROT_UNMIR] = { "B8_trap_mprotect_unmirrored", "plain mprotect (no trap mode)",
			    "per call, 1 page RO<->RW outside every interval; ratio = trapped / "
			    "plain p50" },
	[C_MUNMAP_MIR] = { "B8_trap_munmap_mirrored", "plain munmap (no trap mode)",
			   "per call, 1 written page inside a 32-page interval with a sync "
			   "receiver; ratio = trapped / plain p50" },
	[C_MUNMAP_UNMIR] = { "B8_trap_munmap_unmirrored", "plain munmap (no trap mode)",
			     "per call, 1 written page outside every interval; ratio = trapped / "
			     "plain p50" },
	[C_MALLOC_DEF] = { "B8_trap_malloc_256k_default", "the same loop without trap mode",
			   "per malloc(256 KiB) + 1 byte written + free, glibc defaults; ratio = "
			   "trapped / plain p50" },
	[C_MALLOC_MMAP] = { "B8_trap_malloc_256k_mmap", "the same loop without trap mode",
			    "per malloc(256 KiB) + 1 byte written + free, M_MMAP_THRESHOLD 128 KiB "
			    "(an mmap and a munmap each); ratio = trapped / plain p50" },
};

struct b8_cmd {
	int c;		    /* case, or -1: exit */
	unsigned int round; /* where the samples go; runs: the warm-up's scratch */
};

struct b8_worker {
	pid_t pid;
	int to, from; /* command pipe, answer pipe */
	double *samples;
};

struct b8_ctx {
	struct um_client *c;
	char *region;
	atomic_uint ninv; /* the callback's count */
	bool malloc_fixed;
};

static void b8_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct b8_ctx *x = priv;

	atomic_fetch_add(&x->ninv, 1);
}

static const struct um_interval_ops b8_ops = { .invalidate = b8_invalidate };

/* one batch of case @c into @out; Return: 0 or -errno (-EBADMSG: a wrong callback count) */
static int b8_batch(struct b8_ctx *x, bool trap, int c, unsigned int n, double *out)
{
	char *mir = x->region + B8_MIRRORED * B8_PAGE;
	char *unmir = x->region + B8_UNMIRRORED * B8_PAGE;
	unsigned int before = atomic_load(&x->ninv), want = 0;
	uint64_t t0;

	if (c == C_MALLOC_MMAP && !x->malloc_fixed) {
		if (!mallopt(M_MMAP_THRESHOLD, 128 << 10))
			return -EINVAL;
		/* else the default case's heap top would serve the blocks */
		malloc_trim(0);
		x->malloc_fixed = true;
	}
	for (unsigned int i = 0; i < n; i++) {
		int prot = i & 1 ? PROT_READ | PROT_WRITE : PROT_READ, ret = 0;
		char *p;

		switch (c) {
		case C_MPROT_MIR:
		case C_MPROT_UNMIR:
			t0 = bench_now_ns();
			ret = mprotect(c == C_MPROT_MIR ? mir : unmir, B8_PAGE, prot);
			out[i] = (double)(bench_now_ns() - t0) / 1000.0;
			want += c == C_MPROT_MIR;
			break;
		case C_MUNMAP_MIR:
		case C_MUNMAP_UNMIR:
			p = mmap(c == C_MUNMAP_MIR ? mir : NULL, B8_PAGE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | (c == C_MUNMAP_MIR ? MAP_FIXED : 0),
				 -1, 0);
			if (p == MAP_FAILED)
				return -errno;
			*p = 1;
			before = atomic_load(&x->ninv);
			t0 = bench_now_ns();
			ret = munmap(p, B8_PAGE);
			out[i] = (double)(bench_now_ns() - t0) / 1000.0;
			/* the munmap's own invalidation, before it returned */
			if (c == C_MUNMAP_MIR && trap && atomic_load(&x->ninv) == before)
				return -EBADMSG;
			break;
		default:
			t0 = bench_now_ns();
			p = malloc(B8_BLOCK);
			if (p)
				p[i % B8_BLOCK] = 1;
			/* or the compiler drops the malloc/free pair */
			__asm__ volatile("" : : "r"(p) : "memory");
			free(p);
			out[i] = (double)(bench_now_ns() - t0) / 1000.0;
			if (!p)
				return -ENOMEM;
			break;
		}
		if (ret)
			return -errno;
	}
	if (c == C_MPROT_MIR || c == C_MPROT_UNMIR) {
		unsigned int got = atomic_load(&x->ninv) - before;

		/* trapped: one invalidation per mirrored call at least; plain: none */
		if (trap ? got < want : got != 0)
			return -EBADMSG;
	}
	return 0;
}

/* the worker process: connect, mirror, run what the bench asks; never returns */
static void b8_worker_main(bool trap, const char *socket, int in, int out, double *samples,
			   unsigned int runs, unsigned int batch)
{
	struct b8_ctx x = { 0 };
	struct um_interval *iv = NULL;
	struct b8_cmd cmd;
	int ret;

	x.region = mmap(NULL, B8_PAGES * B8_PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ret = x.region == MAP_FAILED ? -errno : 0;
	if (!ret) {
		memset(x.region, 1, B8_PAGES * B8_PAGE);
		ret = um_connect(socket, trap ? UM_CONNECT_TRAP_VMA : 0, &x.c);
	}
	if (!ret)
		ret = um_interval_insert(x.c, x.region, B8_IV_PAGES * B8_PAGE, 0, &b8_ops, &x, &iv);
	if (write(out, &ret, sizeof(ret)) != sizeof(ret) || ret)
		_exit(1);
	while (read(in, &cmd, sizeof(cmd)) == sizeof(cmd) && cmd.c >= 0) {
		ret = b8_batch(&x, trap, cmd.c, batch,
			       samples + ((size_t)cmd.c * (runs + 1) + cmd.round) * batch);
		if (write(out, &ret, sizeof(ret)) != sizeof(ret))
			break;
	}
	um_interval_remove(iv);
	um_disconnect(x.c);
	_exit(0);
}

static int b8_start(struct b8_worker *w, bool trap, const struct bench_opts *o, unsigned int runs,
		    unsigned int batch)
{
	int to[2], from[2], ret = 0;

	if (pipe(to) < 0)
		return -errno;
	if (pipe(from) < 0) {
		ret = -errno;
		close(to[0]);
		close(to[1]);
		return ret;
	}
	w->pid = fork();
	if (w->pid == 0) {
		close(to[1]);
		close(from[0]);
		b8_worker_main(trap, o->socket, to[0], from[1], w->samples, runs, batch);
	}
	close(to[0]);
	close(from[1]);
	w->to = to[1];
	w->from = from[0];
	if (w->pid < 0)
		return -errno;
	if (read(w->from, &ret, sizeof(ret)) != sizeof(ret))
		return -EPIPE;
	return ret;
}

static int b8_ask(struct b8_worker *w, int c, unsigned int round)
{
	struct b8_cmd cmd = { .c = c, .round = round };
	int ret;

	if (write(w->to, &cmd, sizeof(cmd)) != sizeof(cmd) ||
	    read(w->from, &ret, sizeof(ret)) != sizeof(ret))
		return -EPIPE;
	return ret;
}

static void b8_stop(struct b8_worker *w)
{
	struct b8_cmd cmd = { .c = -1 };

	if (w->pid <= 0)
		return;
	/* the other worker holds a copy of our pipe: EOF alone would not come */
	if (write(w->to, &cmd, sizeof(cmd)) != sizeof(cmd))
		kill(w->pid, SIGKILL);
	close(w->to);
	close(w->from);
	waitpid(w->pid, NULL, 0);
	w->pid = 0;
}

int bench_b8_trap(struct um_client *c, const struct bench_opts *o)
{
	unsigned int runs = bench_runs(o), batch = o->quick ? 100 : 200;
	size_t per = (size_t)C_NR * (runs + 1) * batch;
	struct b8_worker w[2] = { { 0 } }; /* plain, trapped */
	const char *what = "setup";
	double *samples, *tmp;
	int ret, k;

	samples = mmap(NULL, 2 * per * sizeof(double), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (samples == MAP_FAILED) {
		ret = -errno;
		bench_fail("B8_trap", ret, "mmap of the samples");
		return ret;
	}
	tmp = malloc((size_t)runs * batch * sizeof(double));
	ret = tmp ? 0 : -ENOMEM;
	for (int s = 0; s < 2 && !ret; s++) {
		w[s].samples = samples + s * per;
		what = s ? "the trapped worker (um_connect UM_CONNECT_TRAP_VMA, insert)"
			 : "the plain worker (um_connect, insert)";
		ret = b8_start(&w[s], s == 1, o, runs, batch);
	}
	if (ret)
		goto fail;
	for (k = 0; k < C_NR; k++) {
		double p50[2], p99[2];

		/* a warm-up round into scratch, then plain and trapped in turn */
		for (unsigned int round = 0; round <= runs && !ret; round++)
			for (int s = 0; s < 2 && !ret; s++)
				ret = b8_ask(&w[s], k, round == 0 ? runs : round - 1);
		if (ret) {
			what = cases[k].bench;
			goto fail;
		}
		for (int s = 0; s < 2; s++) {
			memcpy(tmp, w[s].samples + (size_t)k * (runs + 1) * batch,
			       (size_t)runs * batch * sizeof(double));
			p50[s] = bench_percentile(tmp, (size_t)runs * batch, 50);
			p99[s] = bench_percentile(tmp, (size_t)runs * batch, 99);
		}
		bench_report(&(struct bench_result){
			.bench = cases[k].bench,
			.unit = "us",
			.value = p50[1],
			.baseline = p50[0],
			.baseline_name = cases[k].baseline_name,
			.higher_is_better = false,
			.target = NAN,
			.goal = NAN,
			.runs = runs,
			.note = cases[k].note,
			.p99 = p99[1],
			.baseline_p99 = p99[0],
		});
	}
	ret = 0;
	goto out;
fail:
	bench_fail("B8_trap", ret == -EBADMSG ? 0 : ret, "%s%s", what,
		   ret == -EBADMSG ? ": wrong invalidation count (trap mode not in effect?)" : "");
out:
	b8_stop(&w[0]);
	b8_stop(&w[1]);
	free(tmp);
	munmap(samples, 2 * per * sizeof(double));
	(void)c;
	return ret;
}
