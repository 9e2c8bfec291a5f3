/* SPDX-License-Identifier: MIT */
/*
 * test_mremap_multi - mremap(MREMAP_FIXED) over several VMAs, failing part
 * way, and what is moved into an interval afterwards.
 *
 * Since Linux 6.17 mremap() with MREMAP_FIXED and an unchanged length may
 * move several VMAs at once, one after the other; a VMA registered with
 * userfaultfd cannot be moved that way, and the call fails with EFAULT at
 * the first one, after moving the VMAs before it. Only unregistered VMAs
 * move, so the kernel sends no REMAP, only an UNMAP of each destination
 * piece it replaced (when that piece was registered). Older kernels unmap
 * the whole destination first and then fail. Either way the contract
 * holds: a part of an interval unmapped since insert is a hole for good,
 * and in particular no page that no registered VMA covers is ever VALID.
 *
 * The oracle: /proc/self/smaps (VmFlags "uw": registered for uffd-wp).
 * A page of the interval is "gone" once it was seen unregistered or
 * unmapped, or was moved away; gone pages must snapshot HOLE, others not,
 * and every page that became gone in a step must be covered by an
 * UNMAP or REMAP invalidation of that step.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NP 32
#define MAX_EV 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct um_invalidation evs[MAX_EV];
static unsigned int nev;

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	pthread_mutex_lock(&lock);
	if (nev < MAX_EV)
		evs[nev++] = *inv;
	pthread_mutex_unlock(&lock);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

static char *r;	      /* the interval: NP pages */
static bool gone[NP]; /* the oracle: unmapped (or moved away) since insert */
static struct um_interval *iv;
static struct um_client *c;

/* 1: a VMA registered for uffd-wp covers @addr; 0: an unregistered one; -1: none */
static int tracked(const void *addr)
{
	uint64_t a = (uintptr_t)addr, s = 0, e = 0;
	int state = -1;
	bool in = false;
	char line[512];
	FILE *f = fopen("/proc/self/smaps", "re");

	CHECK(f, "open smaps: %m");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " ", &s, &e) == 2 && strchr(line, '-') &&
		    line[0] != 'V') {
			in = s <= a && a < e;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			state = strstr(line, " uw") ? 1 : 0;
			break;
		}
	}
	fclose(f);
	return state;
}

static bool covered_by_event(uint64_t a)
{
	bool hit = false;

	pthread_mutex_lock(&lock);
	for (unsigned int i = 0; i < nev; i++)
		if ((evs[i].reason == UM_REASON_UNMAP || evs[i].reason == UM_REASON_REMAP) &&
		    evs[i].start <= a && a < evs[i].end)
			hit = true;
	pthread_mutex_unlock(&lock);
	return hit;
}

/* wait (at most 5 s) until no event came for 100 ms */
static void quiet(void)
{
	unsigned int n = UINT32_MAX;
	uint64_t t0 = harness_now_ms();

	for (;;) {
		unsigned int now;

		pthread_mutex_lock(&lock);
		now = nev;
		pthread_mutex_unlock(&lock);
		if (now == n || harness_now_ms() - t0 > 5000)
			return;
		n = now;
		usleep(100000);
	}
}

static void begin_step(uint64_t *seq0)
{
	quiet();
	pthread_mutex_lock(&lock);
	nev = 0;
	pthread_mutex_unlock(&lock);
	CHECK(um_interval_read_begin(iv, seq0) == 0, "read_begin");
}

/* after a step: update the oracle, then compare the mirror with it */
static void end_step(uint64_t seq0, const bool *moved_away, const char *what)
{
	uint64_t raw[NP];
	bool newly[NP] = { false }, any = false;
	long n;

	quiet();
	for (int i = 0; i < NP; i++) {
		bool now_gone =
			gone[i] || tracked(r + i * PAGE) != 1 || (moved_away && moved_away[i]);

		newly[i] = now_gone && !gone[i];
		any |= newly[i];
		gone[i] = now_gone;
	}
	n = um_snapshot_raw(c, getpid(), (uintptr_t)r, NP, raw);
	CHECK(n == NP || n == -EFAULT, "%s: raw snapshot: %ld", what, n);
	for (int i = 0; i < NP; i++) {
		CHECK(!!(raw[i] & UM_RAW_HOLE) == gone[i],
		      "%s: page %d: snapshot %#" PRIx64 " (%s), the contract says %s (smaps: %d)",
		      what, i, raw[i], raw[i] & UM_RAW_HOLE ? "hole" : "mapped",
		      gone[i] ? "hole" : "mapped", tracked(r + i * PAGE));
		if (newly[i])
			CHECK(covered_by_event((uintptr_t)r + i * PAGE),
			      "%s: page %d was unmapped: an UNMAP or REMAP invalidation covers it",
			      what, i);
	}
	if (any)
		CHECK(um_interval_read_retry(iv, seq0), "%s: read_retry true", what);
}

static void print_maps(const char *what)
{
	printf("%s:", what);
	for (int i = 0; i < NP; i++)
		printf(" %c", "-ut"[tracked(r + i * PAGE) + 1]);
	printf("   (t tracked, u unregistered, - none)\n");
}

static char *map_at(char *addr, size_t npages, char fill)
{
	char *m = mmap(addr, npages * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	CHECK(m == addr, "mmap at %p: %m", (void *)addr);
	memset(m, fill, npages * PAGE);
	return m;
}

int main(int argc, char **argv)
{
	bool moved[NP];
	uint64_t seq0;
	char *base, *s;
	void *ret;

	harness_start("test_mremap_multi", NULL);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	/*
	 * Attach first: the library's mappings for it (the seq area, the
	 * probe page) must not land in the room reserved below.
	 */
	s = harness_map_anon(1, PROT_READ | PROT_WRITE);
	CHECK(um_interval_insert(c, s, PAGE, 0, &ops, NULL, &iv) == 0 &&
		      um_interval_remove(iv) == 0,
	      "attach");
	/* room around the interval: [base, +128 pages), the interval at page 32 */
	base = mmap(NULL, 128 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(base != MAP_FAILED, "mmap: %m");
	CHECK(munmap(base, 128 * PAGE) == 0, "munmap: %m");
	r = map_at(base + 32 * PAGE, NP, 1);
	madvise(r, NP * PAGE, MADV_NOHUGEPAGE);
	CHECK(um_interval_insert(c, r, NP * PAGE, 0, &ops, NULL, &iv) == 0, "insert");
	end_step(0, NULL, "insert");

	/* a part unmapped and mapped again: gone, not registered */
	begin_step(&seq0);
	CHECK(munmap(r, 2 * PAGE) == 0, "munmap: %m");
	map_at(r, 2, 2);
	end_step(seq0, NULL, "[0,2) unmapped and mapped again");

	/* [0,2) unregistered, [2,8) registered: moves [0,2) to [8,10), then EFAULT */
	begin_step(&seq0);
	ret = mremap(r, 8 * PAGE, 8 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, r + 8 * PAGE);
	printf("mremap [0,8) -> [8,16): %s\n", ret == MAP_FAILED ? strerror(errno) : "moved");
	print_maps("after");
	end_step(seq0, NULL, "mremap of an unregistered and a registered VMA");

	/* an unregistered mapping just before the interval, with the interval's first VMA */
	begin_step(&seq0);
	map_at(r - 2 * PAGE, 2, 3);
	ret = mremap(r - 2 * PAGE, 8 * PAGE, 8 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
		     r + 12 * PAGE);
	printf("mremap [-2,6) -> [12,20): %s\n", ret == MAP_FAILED ? strerror(errno) : "moved");
	print_maps("after");
	end_step(seq0, NULL, "mremap of a VMA before the interval and the interval");
	munmap(r - 2 * PAGE, 2 * PAGE);

	/* two unregistered VMAs with a gap between them, moved into the interval */
	begin_step(&seq0);
	s = map_at(base + 80 * PAGE, 2, 4);
	map_at(s + 3 * PAGE, 2, 5);
	ret = mremap(s, 5 * PAGE, 5 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, r + 20 * PAGE);
	printf("mremap of two VMAs and a gap -> [20,25): %s\n",
	       ret == MAP_FAILED ? strerror(errno) : "moved");
	print_maps("after");
	end_step(seq0, NULL, "two unregistered VMAs moved into the interval");
	munmap(s, 5 * PAGE);

	/* a page later moved into a gone part: from unregistered memory, then from the interval */
	begin_step(&seq0);
	s = map_at(base + 90 * PAGE, 1, 6);
	ret = mremap(s, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, r);
	CHECK(ret == r, "mremap of a page into [0]: %m");
	end_step(seq0, NULL, "an unregistered page moved into a gone page");
	begin_step(&seq0);
	memset(moved, 0, sizeof(moved));
	ret = mremap(r + 26 * PAGE, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, r + PAGE);
	CHECK(ret == r + PAGE, "mremap of page 26 into [1]: %m");
	moved[26] = true;   /* the source of a REMAP: gone */
	moved[1] = gone[1]; /* moved into a gone page: still gone, though registered */
	end_step(seq0, moved, "a registered page moved into a gone page");

	/* what was never touched is still mirrored: a write there is an invalidation */
	begin_step(&seq0);
	r[30 * PAGE] = 7;
	CHECK(um_interval_read_retry(iv, seq0), "a write to a page never unmapped is seen");
	print_maps("end");

	CHECK(um_interval_remove(iv) == 0, "remove");
	um_disconnect(c);
	(void)argc;
	(void)argv;
	return harness_summary();
}
