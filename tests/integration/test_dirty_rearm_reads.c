/* SPDX-License-Identifier: MIT */
/*
 * test_dirty_rearm_reads - a dirty harvest with UM_DIRTY_REARM reads no
 * pagemap for the pages it did not re-protect.
 *
 * A REARM sends a PROTECT invalidation from the first written page to the
 * end of the range before it re-protects (test_insert_protect). When that
 * invalidation completed, the revalidation scan's baseline was taken
 * again by reading the pagemap of its whole span: with two pages written
 * at both ends of 128 MiB, 256 KiB of pagemap per harvest (2 MiB, 8-18 ms,
 * per harvest of 1 GiB in umirror-bench B4) for two pages of news. What
 * the REARM changed is known without a read: the pages it re-protected
 * are armed.
 *
 * The daemon's pagemap reads are preads: /proc/DAEMON/io's rchar counts
 * them (a PAGEMAP_SCAN ioctl is not a read). The test
 *  - checks that the count sees the daemon's pagemap reads at all (a raw
 *    snapshot of the range adds at least its 256 KiB);
 *  - runs 16 REARM harvests of a WP_ASYNC interval (the backend that has a
 *    scan by default) with two pages written at both ends each time, then
 *    16 of a UFFD_WP interval with a scan period set, and asserts that
 *    each set read less than a quarter of the span's pagemap per harvest
 *    (64 KiB; the UFFD_WP writes are WRITE invalidations, 4 KiB of
 *    pagemap and a VMA walk each; before the fix: 256 KiB per harvest);
 *  - checks that the scan's baseline still learns the re-protection: a
 *    WP_ASYNC write (no fault) found by a scan, a REARM, a second write:
 *    the next scan (UM_REVALIDATE_NOW) reports it changed.
 * The daemon runs with a one-hour default scan period: the periodic scan
 * never runs during the test, but WP_ASYNC intervals have a baseline.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NPAGES (32768ul) /* 128 MiB: 256 KiB of pagemap */
#define ROUNDS 16
/*
 * Reads a harvest may do, per harvest: a quarter of the span's pagemap.
 * Before the fix every harvest read all of it. What it reads now: a
 * UFFD_WP write is a WRITE invalidation, whose completion re-baselines
 * its page's 2 MiB block (4 KiB of pagemap) and walks its VMAs (without
 * PROCMAP_QUERY a read of /proc/PID/maps, a few KiB); two of them, and
 * the uffd events.
 */
#define BOUND (NPAGES * 8 / 4)

/* bytes the daemon passed through read()/pread() so far: /proc/PID/io rchar */
static int daemon_rchar(uint64_t *out)
{
	char path[64], line[128];
	FILE *f;
	int ret = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/io", (int)harness_daemon_pid());
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "rchar: %" SCNu64, out) == 1) {
			ret = 0;
			break;
		}
	fclose(f);
	return ret;
}

static uint64_t rchar_now(void)
{
	uint64_t v = 0;
	int ret = daemon_rchar(&v);

	CHECK(ret == 0, "read the daemon's /proc/PID/io: %s", strerror(-ret));
	return v;
}

/* write both ends of @m, then ROUNDS REARM harvests; return the daemon's bytes read meanwhile */
static uint64_t rearm_rounds(struct um_interval *iv, char *m, const char *what)
{
	uint64_t before = rchar_now(), after;

	for (unsigned int r = 0; r < ROUNDS; r++) {
		struct um_dirty_range out[8];
		long nr;

		m[1 * PAGE] = (char)(r + 2);
		m[(NPAGES - 2) * PAGE] = (char)(r + 2);
		nr = um_interval_dirty(iv, (uintptr_t)m, (uintptr_t)m + NPAGES * PAGE,
				       UM_DIRTY_REARM, out, 8, NULL);
		CHECK(nr == 2 && out[0].start == (uintptr_t)m + PAGE &&
			      out[1].start == (uintptr_t)m + (NPAGES - 2) * PAGE,
		      "%s round %u: the two pages written reported (%ld ranges)", what, r, nr);
	}
	after = rchar_now();
	printf("test_dirty_rearm_reads: %s: %u REARM harvests read %" PRIu64
	       " bytes (%lu of pagemap per harvest would be the whole span)\n",
	       what, ROUNDS, after - before, NPAGES * 8);
	return after - before;
}

int main(void)
{
	static const char *const args[] = { "--revalidate-ms", "3600000", NULL };
	struct um_interval *w, *u;
	uint64_t v, before, read, changed = 0;
	struct um_client *c;
	uint64_t *raw;
	char *m, *n;
	int ret;

	harness_start("test_dirty_rearm_reads", args);
	ret = daemon_rchar(&v);
	if (ret) {
		printf("test_dirty_rearm_reads: SKIP: the daemon's /proc/PID/io is not readable "
		       "here (%s): no count of its reads\n",
		       strerror(-ret));
		return SKIP;
	}
	m = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	n = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	raw = malloc(NPAGES * sizeof(*raw));
	CHECK(raw, "malloc");
	/* 4 KiB pages: two writes re-protect two pages, not two huge pages */
	madvise(m, NPAGES * PAGE, MADV_NOHUGEPAGE);
	madvise(n, NPAGES * PAGE, MADV_NOHUGEPAGE);
	memset(m, 1, NPAGES * PAGE);
	memset(n, 1, NPAGES * PAGE);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	ret = um_interval_insert(c, m, NPAGES * PAGE, UM_INTERVAL_TRACK_ASYNC, NULL, NULL, &w);
	CHECK(ret == 0, "insert W with UM_INTERVAL_TRACK_ASYNC: %s", strerror(-ret));
	ret = um_interval_insert(c, n, NPAGES * PAGE, UM_INTERVAL_ASYNC, NULL, NULL, &u);
	CHECK(ret == 0, "insert U (UFFD_WP): %s", strerror(-ret));
	ret = um_interval_revalidate(u, 3600000, 0, NULL);
	CHECK(ret == 0, "a scan period for U: %s", strerror(-ret));

	/* the count sees the daemon's pagemap reads: a raw snapshot is one */
	before = rchar_now();
	CHECK(um_snapshot_raw(c, getpid(), (uintptr_t)m, NPAGES, raw) == (long)NPAGES,
	      "raw snapshot of W's range");
	read = rchar_now() - before;
	CHECK(read >= NPAGES * 8, "rchar counts the snapshot's pagemap read: %" PRIu64 " bytes",
	      read);

	if (um_interval_backend(w) == UM_BACKEND_WP_ASYNC) {
		read = rearm_rounds(w, m, "WP_ASYNC");
		CHECK(read < ROUNDS * BOUND,
		      "WP_ASYNC: REARM harvests read %" PRIu64 " bytes, less than %lu each "
		      "(the span's pagemap is %lu)",
		      read, BOUND, NPAGES * 8);
		/*
		 * The scan's baseline learns that a REARM armed page 1 again.
		 * A write takes the protection away without a fault: the scan
		 * reports it (and takes "not armed" for its baseline); the
		 * REARM arms it; a second write must be reported again.
		 */
		m[1 * PAGE] = 0x55;
		ret = um_interval_revalidate(w, UM_REVALIDATE_DEFAULT, UM_REVALIDATE_NOW, &changed);
		CHECK(ret == 0 && changed >= 1, "scan W now: %s, %" PRIu64 " pages changed",
		      strerror(-ret), changed);
		{
			struct um_dirty_range out[8];
			long nr = um_interval_dirty(w, (uintptr_t)m, (uintptr_t)m + NPAGES * PAGE,
						    UM_DIRTY_REARM, out, 8, NULL);

			CHECK(nr == 1 && out[0].start == (uintptr_t)m + PAGE,
			      "REARM reports page 1 alone: %ld ranges", nr);
		}
		m[1 * PAGE] = 0x56;
		changed = 0;
		ret = um_interval_revalidate(w, UM_REVALIDATE_DEFAULT, UM_REVALIDATE_NOW, &changed);
		CHECK(ret == 0, "scan W now: %s", strerror(-ret));
		CHECK(changed >= 1,
		      "the scan finds the write after the REARM: %" PRIu64 " pages changed",
		      changed);
	} else {
		printf("test_dirty_rearm_reads: TRACK_ASYNC gives %s here, not wp-async: its part "
		       "not run\n",
		       um_backend_str(um_interval_backend(w)));
	}

	read = rearm_rounds(u, n, "UFFD_WP");
	CHECK(read < ROUNDS * BOUND,
	      "UFFD_WP: REARM harvests read %" PRIu64 " bytes, less than %lu each "
	      "(the span's pagemap is %lu)",
	      read, BOUND, NPAGES * 8);

	CHECK(um_interval_remove(w) == 0, "remove W");
	CHECK(um_interval_remove(u) == 0, "remove U");
	um_disconnect(c);
	free(raw);
	return harness_summary();
}
