/* SPDX-License-Identifier: MIT */
/*
 * test_dirty - um_interval_dirty() reports exactly the pages written, for
 * every tracking backend this kernel offers through the daemon:
 *
 *  1. the daemon as started (UFFD_WP; WP_ASYNC with UM_INTERVAL_TRACK_ASYNC
 *     when the kernel has WP_ASYNC and PAGEMAP_SCAN), 64 MiB of anonymous
 *     memory, half of it never touched: a known pattern of writes (plain
 *     stores, first stores to never-touched pages, read(2) from a pipe -
 *     the kernel writing on the owner's behalf -, an MADV_DONTNEED span)
 *     comes back as exactly those runs, merged; after REARM nothing; new
 *     writes come back alone; a small max_ranges stops at walk_end and the
 *     rest follows from there. A regular file (ext4 /tmp) MAP_SHARED and
 *     MAP_PRIVATE is refused (-EOPNOTSUPP) without TRACK_ASYNC and tracked
 *     with it by WP_ASYNC, else by the scan alone (DIRTY -EOPNOTSUPP).
 *     With soft-dirty (a kernel without WP_ASYNC) the 64 MiB are kept at
 *     4 KiB pages: test_soft_dirty covers the backend in depth.
 *  2. the daemon restarted with UMIRRORD_MASK_FEATURES=6.1 (no WP_ASYNC,
 *     PAGEMAP_SCAN, WP_UNPOPULATED): status lists them as masked; where
 *     the kernel has soft-dirty (Debian's 6.1, 6.12) TRACK_ASYNC uses it
 *     on anonymous memory, else (this machine) falls back to UFFD_WP (the
 *     same pattern, first writes to never-touched pages included, still
 *     reported); the file gets SCAN, whose harvest is -EOPNOTSUPP, never
 *     "clean".
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NPAGES (64ul << 20 >> 12) /* 64 MiB */
#define TOUCHED (NPAGES / 2)	  /* pages populated before insert */
#define MAXR 64

struct run {
	unsigned long first, n; /* pages */
};

static void write_pages(char *buf, unsigned long first, unsigned long n, char v)
{
	for (unsigned long i = first; i < first + n; i++)
		buf[i * PAGE + 17] = v;
}

/* every page of @want exactly, merged: nothing more, nothing less */
static void expect_runs(const char *what, char *buf, const struct um_dirty_range *got, long n,
			const struct run *want, long nwant)
{
	if (n != nwant)
		for (long i = 0; i < n; i++)
			fprintf(stderr, "%s: got pages [%lu, %lu)\n", what,
				(unsigned long)((got[i].start - (uintptr_t)buf) / PAGE),
				(unsigned long)((got[i].end - (uintptr_t)buf) / PAGE));
	CHECK(n == nwant, "%s: %ld ranges, want %ld", what, n, nwant);
	for (long i = 0; i < n; i++) {
		uint64_t s = (uintptr_t)buf + want[i].first * PAGE;
		uint64_t e = s + want[i].n * PAGE;

		CHECK(got[i].start == s && got[i].end == e,
		      "%s: range %ld is pages [%lu, %lu), want [%lu, %lu)", what, i,
		      (unsigned long)((got[i].start - (uintptr_t)buf) / PAGE),
		      (unsigned long)((got[i].end - (uintptr_t)buf) / PAGE), want[i].first,
		      want[i].first + want[i].n);
	}
}

static long harvest(struct um_interval *iv, char *buf, unsigned int flags,
		    struct um_dirty_range *out, size_t max, uint64_t *walk_end)
{
	return um_interval_dirty(iv, (uintptr_t)buf, (uintptr_t)buf + NPAGES * PAGE, flags, out,
				 max, walk_end);
}

/* the write pattern of the file comment on a fresh 64 MiB mapping */
static void anon_pattern(struct um_client *c, unsigned int flags, enum um_backend want_backend)
{
	static const struct run first[] = {
		{ 1, 3 },    { 100, 1 },  { 200, 4 },	{ 5000, 2 },
		{ 7000, 2 }, { 9000, 1 }, { 12000, 2 },
	};
	static const struct run second[] = { { 1, 1 }, { 300, 1 }, { 12000, 1 } };
	static const struct run sparse[] = { { 20, 1 }, { 40, 1 }, { 60, 1 }, { 80, 1 } };
	struct um_dirty_range out[MAXR];
	uint64_t walk_end, end;
	struct um_interval *iv;
	char name[64], *buf;
	int pipefd[2];
	long n;

	snprintf(name, sizeof(name), "%s", um_backend_str(want_backend));
	buf = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(buf != MAP_FAILED, "mmap 64 MiB: %m");
	/* soft-dirty has one bit per THP: its 2 MiB granularity is test_soft_dirty's */
	if (want_backend == UM_BACKEND_SOFT_DIRTY)
		CHECK(madvise(buf, NPAGES * PAGE, MADV_NOHUGEPAGE) == 0, "MADV_NOHUGEPAGE: %m");
	end = (uintptr_t)buf + NPAGES * PAGE;
	memset(buf, 'a', TOUCHED * PAGE);
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, flags, NULL, NULL, &iv) == 0,
	      "%s: insert 64 MiB", name);
	CHECK(um_interval_backend(iv) == want_backend, "%s: backend %s, want %s", name,
	      um_backend_str(um_interval_backend(iv)), name);

	n = harvest(iv, buf, 0, out, MAXR, &walk_end);
	CHECK(n == 0 && walk_end == end, "%s: nothing written since insert: %ld ranges", name, n);

	/* plain stores, in the populated half */
	write_pages(buf, 1, 3, 'b');
	write_pages(buf, 100, 1, 'b');
	write_pages(buf, 5000, 2, 'b');
	/* the kernel writes for the owner: copy_to_user into protected pages */
	CHECK(pipe(pipefd) == 0, "pipe: %m");
	{
		static char src[2 * PAGE];

		memset(src, 'p', sizeof(src));
		CHECK(write(pipefd[1], src, sizeof(src)) == (ssize_t)sizeof(src), "pipe write: %m");
		CHECK(read(pipefd[0], buf + 7000 * PAGE, sizeof(src)) == (ssize_t)sizeof(src),
		      "%s: read(2) into protected memory: %m", name);
	}
	close(pipefd[0]);
	close(pipefd[1]);
	/* zapped: whatever comes there next is new to a mirror */
	CHECK(madvise(buf + 200 * PAGE, 4 * PAGE, MADV_DONTNEED) == 0, "madvise: %m");
	/* first stores to never-touched pages */
	write_pages(buf, 9000, 1, 'n');
	write_pages(buf, 12000, 2, 'n');

	/* without REARM the harvest is repeatable */
	n = harvest(iv, buf, 0, out, MAXR, &walk_end);
	expect_runs(name, buf, out, n, first, sizeof(first) / sizeof(first[0]));
	n = harvest(iv, buf, UM_DIRTY_REARM, out, MAXR, &walk_end);
	expect_runs(name, buf, out, n, first, sizeof(first) / sizeof(first[0]));
	CHECK(walk_end == end, "%s: walked the whole interval", name);
	CHECK(buf[7000 * PAGE] == 'p' && buf[9000 * PAGE + 17] == 'n', "%s: data landed", name);

	n = harvest(iv, buf, UM_DIRTY_REARM, out, MAXR, &walk_end);
	CHECK(n == 0 && walk_end == end, "%s: nothing after REARM: %ld ranges", name, n);

	/* re-armed pages fault (or are logged) again, never-touched-then-written too */
	write_pages(buf, 1, 1, 'c');
	write_pages(buf, 300, 1, 'c');
	write_pages(buf, 12000, 1, 'c');
	n = harvest(iv, buf, UM_DIRTY_REARM, out, MAXR, &walk_end);
	expect_runs(name, buf, out, n, second, sizeof(second) / sizeof(second[0]));

	/* a small max_ranges stops early; the rest follows from walk_end */
	for (int i = 0; i < 4; i++)
		write_pages(buf, sparse[i].first, 1, 'd');
	n = harvest(iv, buf, UM_DIRTY_REARM, out, 2, &walk_end);
	expect_runs(name, buf, out, n, sparse, 2);
	CHECK(walk_end > (uintptr_t)buf + 41 * PAGE && walk_end <= (uintptr_t)buf + 60 * PAGE,
	      "%s: walk_end %#llx stops before page 60", name, (unsigned long long)walk_end);
	n = um_interval_dirty(iv, walk_end, end, UM_DIRTY_REARM, out, MAXR, &walk_end);
	expect_runs(name, buf, out, n, sparse + 2, 2);
	CHECK(walk_end == end, "%s: the second call walked to the end", name);
	n = harvest(iv, buf, 0, out, MAXR, &walk_end);
	CHECK(n == 0, "%s: all re-armed: %ld ranges", name, n);

	CHECK(um_interval_dirty(iv, (uintptr_t)buf, end + PAGE, 0, out, MAXR, NULL) == -EINVAL,
	      "%s: range outside the interval", name);
	CHECK(um_interval_remove(iv) == 0, "%s: remove", name);
	munmap(buf, NPAGES * PAGE);
}

/* a regular file on /tmp (ext4): sync uffd-wp refuses it */
static void file_case(struct um_client *c, int mapflags, enum um_backend want_backend)
{
	const size_t len = 64 * PAGE;
	struct um_dirty_range out[MAXR];
	const char *kind = mapflags == MAP_SHARED ? "MAP_SHARED" : "MAP_PRIVATE";
	struct um_interval *iv;
	char path[] = "/tmp/umirror-dirty-XXXXXX", *buf;
	int fd, ret;
	long n;

	fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp: %m");
	unlink(path);
	CHECK(ftruncate(fd, len) == 0, "ftruncate: %m");
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, mapflags, fd, 0);
	CHECK(buf != MAP_FAILED, "mmap file: %m");
	memset(buf, 'f', len);

	ret = um_interval_insert(c, buf, len, 0, NULL, NULL, &iv);
	CHECK(ret == -EOPNOTSUPP, "file %s without TRACK_ASYNC: %d, want -EOPNOTSUPP", kind, ret);
	ret = um_interval_insert(c, buf, len, UM_INTERVAL_TRACK_ASYNC, NULL, NULL, &iv);
	CHECK(ret == 0, "file %s with TRACK_ASYNC: %d", kind, ret);
	CHECK(um_interval_backend(iv) == want_backend, "file %s: backend %s, want %s", kind,
	      um_backend_str(um_interval_backend(iv)), um_backend_str(want_backend));
	buf[3 * PAGE] = 'g';
	buf[7 * PAGE + 100] = 'g';
	buf[8 * PAGE + 100] = 'g';
	n = um_interval_dirty(iv, (uintptr_t)buf, (uintptr_t)buf + len, UM_DIRTY_REARM, out, MAXR,
			      NULL);
	if (want_backend == UM_BACKEND_SCAN) {
		CHECK(n == -EOPNOTSUPP, "file %s, scan backend: dirty %ld, want -EOPNOTSUPP", kind,
		      n);
	} else {
		const struct run want[] = { { 3, 1 }, { 7, 2 } };

		expect_runs(kind, buf, out, n, want, 2);
		buf[20 * PAGE] = 'h';
		n = um_interval_dirty(iv, (uintptr_t)buf, (uintptr_t)buf + len, UM_DIRTY_REARM, out,
				      MAXR, NULL);
		expect_runs(kind, buf, out, n, (const struct run[]){ { 20, 1 } }, 1);
	}
	CHECK(um_interval_remove(iv) == 0, "remove file interval");
	munmap(buf, len);
	close(fd);
}

int main(void)
{
	const uint64_t async_need = UM_FEAT_WP_ASYNC | UM_FEAT_PAGEMAP_SCAN;
	const uint64_t set61 = async_need | UM_FEAT_WP_UNPOPULATED | UM_FEAT_PROCMAP_QUERY;
	uint64_t host_kf;
	struct um_status st = UM_STATUS_INIT;
	struct um_client *c;
	enum um_backend async_backend;

	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	/* phase 1 runs on what the kernel has, whatever the caller's environment says */
	unsetenv("UMIRRORD_MASK_FEATURES");
	/* first writes page by page, each its own WRITE (granules: test_write_granule) */
	static const char *const args[] = { "--write-granule", "1", NULL };

	harness_start("test_dirty", args);

	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	CHECK(um_status(c, &st) == 0, "status");
	CHECK(st.kfeatures_masked == 0, "nothing masked: 0x%llx",
	      (unsigned long long)st.kfeatures_masked);
	anon_pattern(c, 0, UM_BACKEND_UFFD_WP);
	if ((st.kfeatures & async_need) == async_need)
		async_backend = UM_BACKEND_WP_ASYNC;
	else if (st.kfeatures & UM_FEAT_SOFT_DIRTY)
		async_backend = UM_BACKEND_SOFT_DIRTY;
	else
		async_backend = UM_BACKEND_UFFD_WP;
	printf("kernel features 0x%llx: TRACK_ASYNC uses %s\n", (unsigned long long)st.kfeatures,
	       um_backend_str(async_backend));
	host_kf = st.kfeatures;
	anon_pattern(c, UM_INTERVAL_TRACK_ASYNC, async_backend);
	/*
	 * Only WP_ASYNC takes a file: soft-dirty cannot hold its writers
	 * during a harvest, sync uffd-wp cannot track it; the scan remains.
	 */
	file_case(c, MAP_SHARED,
		  async_backend == UM_BACKEND_WP_ASYNC ? async_backend : UM_BACKEND_SCAN);
	file_case(c, MAP_PRIVATE,
		  async_backend == UM_BACKEND_WP_ASYNC ? async_backend : UM_BACKEND_SCAN);
	um_disconnect(c);

	/* phase 2: what a 6.1 kernel offers */
	CHECK(setenv("UMIRRORD_MASK_FEATURES", "6.1", 1) == 0, "setenv: %m");
	harness_restart_daemon();
	CHECK(um_connect(NULL, 0, &c) == 0, "connect to the masked daemon");
	CHECK(um_status(c, &st) == 0, "status");
	CHECK(!(st.kfeatures & (async_need | UM_FEAT_WP_UNPOPULATED | UM_FEAT_PROCMAP_QUERY)),
	      "6.1 mask: kfeatures 0x%llx has none of the masked",
	      (unsigned long long)st.kfeatures);
	/* what the kernel has of the 6.1 set is listed masked (nothing, on a real 6.1) */
	CHECK(st.kfeatures_masked == (host_kf & set61), "status lists 0x%llx masked, want 0x%llx",
	      (unsigned long long)st.kfeatures_masked, (unsigned long long)(host_kf & set61));
	printf("6.1 mask: kfeatures 0x%llx, masked 0x%llx, soft-dirty %s\n",
	       (unsigned long long)st.kfeatures, (unsigned long long)st.kfeatures_masked,
	       st.kfeatures & UM_FEAT_SOFT_DIRTY ? "detected" : "not detected");
	async_backend =
		st.kfeatures & UM_FEAT_SOFT_DIRTY ? UM_BACKEND_SOFT_DIRTY : UM_BACKEND_UFFD_WP;
	anon_pattern(c, 0, UM_BACKEND_UFFD_WP);
	anon_pattern(c, UM_INTERVAL_TRACK_ASYNC, async_backend);
	file_case(c, MAP_SHARED, UM_BACKEND_SCAN);
	um_disconnect(c);
	unsetenv("UMIRRORD_MASK_FEATURES");
	return harness_summary();
}
