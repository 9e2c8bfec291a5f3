/* SPDX-License-Identifier: MIT */
/*
 * test_uring - the daemon's io_uring and its pread fallback give the same
 * answers. First with the ring: status says IO_URING, the daemon holds an
 * io_uring fd, snapshots of 64 intervals match pagemap and a scan of all
 * 64 (one batched submission) reports exactly the mprotected ones. Then
 * again with the daemon started under a seccomp filter that makes
 * io_uring_setup fail with ENOSYS: no IO_URING, no io_uring fd, the same
 * results through pread.
 */
#include "harness.h"
#include "umirror.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef NO_URING_WRAPPER
#error "NO_URING_WRAPPER must name the seccomp wrapper (set by CMakeLists.txt)"
#endif

#define NIV 64
#define NP 32 /* pages per interval */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t hit_mask;   /* intervals (by index) that got a REVALIDATE */
static unsigned int nother; /* events that are not a whole-interval REVALIDATE */
static struct um_interval *ivs[NIV];

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	unsigned int i = (unsigned int)(uintptr_t)priv;

	pthread_mutex_lock(&lock);
	if (inv->reason == UM_REASON_REVALIDATE && inv->start == um_interval_start(iv) &&
	    inv->end == um_interval_start(iv) + um_interval_length(iv))
		hit_mask |= 1ull << i;
	else
		nother++;
	pthread_mutex_unlock(&lock);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

/* io_uring fds the daemon holds; each one's fdinfo must describe a ring */
static unsigned int daemon_rings(void)
{
	char dir[64], path[320], target[64];
	unsigned int n = 0;
	struct dirent *d;
	DIR *fds;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)harness_daemon_pid());
	fds = opendir(dir);
	CHECK(fds, "opendir %s: %m", dir);
	while ((d = readdir(fds))) {
		ssize_t len;

		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = 0;
		if (strcmp(target, "anon_inode:[io_uring]"))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)harness_daemon_pid(),
			 d->d_name);
		{
			char buf[4096] = "";
			FILE *f = fopen(path, "re");

			CHECK(f, "open %s: %m", path);
			CHECK(fread(buf, 1, sizeof(buf) - 1, f) > 0, "read %s", path);
			fclose(f);
			CHECK(strstr(buf, "SqMask:"), "%s describes an io_uring", path);
		}
		n++;
	}
	closedir(fds);
	return n;
}

static void phase(bool want_uring, const char *name)
{
	struct um_range ranges[NIV];
	static uint64_t pfns[NIV][NP];
	struct um_client *c;
	struct um_status st = UM_STATUS_INIT;
	uint64_t want_mask = 0, t0;
	bool pfn_visible;
	char *mem;

	CHECK(um_connect(NULL, 0, &c) == 0, "%s: connect", name);
	CHECK(um_status(c, &st) == 0, "%s: status", name);
	CHECK(!!(st.kfeatures & UM_FEAT_IO_URING) == want_uring, "%s: IO_URING %s in kfeatures",
	      name, want_uring ? "present" : "absent");
	CHECK(daemon_rings() == (want_uring ? 1u : 0u), "%s: the daemon holds %s io_uring fd", name,
	      want_uring ? "one" : "no");
	pfn_visible = st.kfeatures & UM_FEAT_PFN_VISIBLE;

	mem = harness_map_anon(NIV * NP, PROT_READ | PROT_WRITE);
	for (size_t p = 0; p < NIV * NP; p++)
		mem[p * PAGE] = (char)(p | 1);
	for (unsigned int i = 0; i < NIV; i++) {
		char *a = mem + (size_t)i * NP * PAGE;
		long n;

		CHECK(um_interval_insert(c, a, NP * PAGE, 0, &ops, (void *)(uintptr_t)i, &ivs[i]) ==
			      0,
		      "%s: insert %u", name, i);
		memset(&ranges[i], 0, sizeof(ranges[i]));
		ranges[i].start = (uintptr_t)a;
		ranges[i].end = (uintptr_t)a + NP * PAGE;
		ranges[i].pfns = pfns[i];
		CHECK(um_range_register(&ranges[i], ivs[i]) == 0, "%s: range %u", name, i);
		n = harness_snapshot(&ranges[i]);
		CHECK(n == NP, "%s: snapshot %u: %ld", name, i, n);
		for (unsigned int p = 0; p < NP; p++) {
			uint64_t pm = harness_pagemap(a + p * PAGE);

			CHECK((pfns[i][p] & UM_DEFAULT_VALID) && (pm & PM_PRESENT),
			      "%s: interval %u page %u valid", name, i, p);
			CHECK(!pfn_visible ||
				      pfns[i][p] >> UM_DEFAULT_PFN_SHIFT == (pm & PM_PFN_MASK),
			      "%s: interval %u page %u PFN matches pagemap", name, i, p);
		}
	}

	/* one period for all: the daemon scans the 64 together, one batch of reads */
	for (unsigned int i = 0; i < NIV; i++)
		CHECK(um_interval_revalidate(ivs[i], 50, 0, NULL) == 0, "%s: period %u", name, i);
	for (unsigned int i = 3; i < NIV; i += 8) {
		CHECK(mprotect(mem + (size_t)i * NP * PAGE, NP * PAGE, PROT_READ) == 0, "mprotect");
		want_mask |= 1ull << i;
	}
	t0 = harness_now_ms();
	for (;;) {
		uint64_t got;

		pthread_mutex_lock(&lock);
		got = hit_mask;
		pthread_mutex_unlock(&lock);
		if (got == want_mask || harness_now_ms() - t0 > 1000)
			break;
		usleep(5000);
	}
	usleep(200000); /* two more periods: nothing else may come */
	pthread_mutex_lock(&lock);
	CHECK(hit_mask == want_mask, "%s: scans reported intervals %#llx, want %#llx", name,
	      (unsigned long long)hit_mask, (unsigned long long)want_mask);
	CHECK(nother == 0, "%s: %u unexpected invalidations", name, nother);
	hit_mask = 0;
	pthread_mutex_unlock(&lock);

	for (unsigned int i = 0; i < NIV; i++) {
		um_range_unregister(&ranges[i]);
		CHECK(um_interval_remove(ivs[i]) == 0, "%s: remove %u", name, i);
	}
	munmap(mem, NIV * NP * PAGE);
	um_disconnect(c);
}

int main(void)
{
	const char *outer = getenv("UMIRRORD_WRAPPER");
	char wrapper[512];

	harness_start("test_uring", NULL);
	phase(true, "with io_uring");

	/* the same daemon, io_uring_setup refused by a seccomp filter around it */
	snprintf(wrapper, sizeof(wrapper), "%s%s%s", NO_URING_WRAPPER, outer ? " " : "",
		 outer ? outer : "");
	CHECK(setenv("UMIRRORD_WRAPPER", wrapper, 1) == 0, "setenv: %m");
	harness_restart_daemon();
	phase(false, "io_uring_setup ENOSYS");
	return harness_summary();
}
