/* SPDX-License-Identifier: MIT */
/*
 * test_snapshot - snapshots (library encoding and raw) against this
 * process's own /proc/self/pagemap, the kernel's ground truth: present
 * anon, never touched, zero page, read-only, PROT_NONE, hole, ext4 file
 * (not insertable), memfd (insertable), and a caller-chosen encoding.
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

#define NPAGES 16

struct vma_kind {
	bool writable;
	bool shared;
};

static const struct vma_kind PRIVATE_RW = { true, false };
static const struct vma_kind PRIVATE_RO = { false, false };
static const struct vma_kind SHARED_RW = { true, true };

static uint64_t zero_pfn;

static const uint64_t default_flags[UM_PFN_FLAG_MAX] = {
	UM_DEFAULT_VALID, UM_DEFAULT_WRITE,	UM_DEFAULT_ZERO, UM_DEFAULT_SWAP,
	UM_DEFAULT_FILE,  UM_DEFAULT_EXCLUSIVE, UM_DEFAULT_HUGE, UM_DEFAULT_UFFD_WP,
};
static const uint64_t default_values[UM_PFN_VALUE_MAX] = {
	UM_DEFAULT_ERROR,
	0,
	UM_DEFAULT_SPECIAL,
};
/* a deliberately different encoding: flags in bits 56-63, PFN shifted by 3 */
static const uint64_t custom_flags[UM_PFN_FLAG_MAX] = {
	1ull << 63, 1ull << 62, 1ull << 61, 1ull << 60,
	1ull << 59, 1ull << 58, 1ull << 57, 1ull << 56,
};
static const uint64_t custom_values[UM_PFN_VALUE_MAX] = { 1ull << 55, 1ull << 54, 1ull << 53 };
#define CUSTOM_SHIFT 3

/* The raw entry the daemon must send for @addr, derived from pagemap. */
static uint64_t expect_raw(const void *addr, struct vma_kind v)
{
	uint64_t pm = harness_pagemap(addr), r = 0;
	bool present = pm & PM_PRESENT;

	if (present)
		r |= UM_RAW_PRESENT | (pm & PM_PFN_MASK);
	/* a swap-format entry of type >= MAX_SWAPFILES (24) is a uffd-wp marker, not swap */
	if ((pm & PM_SWAP) && (pm & 0x1f) < 24)
		r |= UM_RAW_SWAP;
	if (pm & PM_FILE)
		r |= UM_RAW_FILE;
	if (pm & PM_MMAP_EXCLUSIVE)
		r |= UM_RAW_EXCL;
	if (pm & PM_UFFD_WP)
		r |= UM_RAW_UFFD_WP;
	if (present && (pm & PM_PFN_MASK) == zero_pfn)
		r |= UM_RAW_ZERO;
	if (present && v.writable && !(r & (UM_RAW_UFFD_WP | UM_RAW_ZERO)) &&
	    (v.shared || (r & UM_RAW_EXCL)))
		r |= UM_RAW_WRITE;
	return r;
}

/* semantics.md "Library encoding", written independently of libclient */
static uint64_t encode(uint64_t raw, const uint64_t *f, const uint64_t *v, unsigned int shift)
{
	static const struct {
		uint64_t raw;
		int flag;
	} map[] = {
		{ UM_RAW_WRITE, UM_PFN_WRITE }, { UM_RAW_ZERO, UM_PFN_ZERO },
		{ UM_RAW_FILE, UM_PFN_FILE },	{ UM_RAW_EXCL, UM_PFN_EXCLUSIVE },
		{ UM_RAW_HUGE, UM_PFN_HUGE },	{ UM_RAW_UFFD_WP, UM_PFN_UFFD_WP },
	};
	uint64_t e;

	if (raw & (UM_RAW_HOLE | UM_RAW_NOPERM))
		return v[UM_PFN_ERROR];
	if (!(raw & UM_RAW_PRESENT))
		return v[UM_PFN_NONE] | (raw & UM_RAW_SWAP ? f[UM_PFN_SWAP] : 0) |
		       (raw & UM_RAW_UFFD_WP ? f[UM_PFN_UFFD_WP] : 0);
	e = ((raw & UM_RAW_PFN_MASK) << shift) | f[UM_PFN_VALID];
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (raw & map[i].raw)
			e |= f[map[i].flag];
	return e;
}

/* Compare a range snapshot of @buf with pagemap, in both encodings. */
static void check_range(struct um_interval *iv, char *buf, size_t n, struct vma_kind v,
			long want_ret, long noperm_page)
{
	uint64_t pfns[NPAGES], cpfns[NPAGES];
	struct um_range r = { .start = (uintptr_t)buf,
			      .end = (uintptr_t)buf + n * PAGE,
			      .pfns = pfns };
	struct um_range cr = r;
	long ret;

	cr.pfns = cpfns;
	cr.flags = custom_flags;
	cr.values = custom_values;
	cr.pfn_shift = CUSTOM_SHIFT;
	CHECK(um_range_register(&r, iv) == 0, "register");
	CHECK(um_range_register(&cr, iv) == 0, "register custom");
	ret = harness_snapshot(&r);
	CHECK(ret == want_ret, "range snapshot returned %ld, want %ld", ret, want_ret);
	ret = harness_snapshot(&cr);
	CHECK(ret == want_ret, "custom snapshot returned %ld, want %ld", ret, want_ret);
	for (size_t i = 0; i < n; i++) {
		uint64_t raw = expect_raw(buf + i * PAGE, v);

		if ((long)i == noperm_page)
			raw = UM_RAW_NOPERM;
		CHECK(pfns[i] == encode(raw, default_flags, default_values, UM_DEFAULT_PFN_SHIFT),
		      "page %zu: got %#llx want %#llx (pagemap %#llx)", i,
		      (unsigned long long)pfns[i],
		      (unsigned long long)encode(raw, default_flags, default_values, 12),
		      (unsigned long long)harness_pagemap(buf + i * PAGE));
		CHECK(cpfns[i] == encode(raw, custom_flags, custom_values, CUSTOM_SHIFT),
		      "page %zu custom: got %#llx want %#llx", i, (unsigned long long)cpfns[i],
		      (unsigned long long)encode(raw, custom_flags, custom_values, CUSTOM_SHIFT));
	}
	um_range_unregister(&r);
	um_range_unregister(&cr);
}

/* Compare a raw by-pid snapshot of @buf with pagemap; @special pages are
 * expected to carry @special_bit (HOLE / NOPERM) instead. */
static void check_raw(struct um_client *c, char *buf, size_t n, struct vma_kind v, long want_ret,
		      long special, uint64_t special_bit)
{
	uint64_t raw[NPAGES];
	long ret;

	memset(raw, 0xa5, sizeof(raw));
	ret = um_snapshot_raw(c, getpid(), (uintptr_t)buf, n, raw);
	CHECK(ret == want_ret, "raw snapshot returned %ld, want %ld", ret, want_ret);
	for (size_t i = 0; i < n; i++) {
		uint64_t want = expect_raw(buf + i * PAGE, v);

		if ((long)i == special) {
			CHECK(raw[i] & special_bit, "page %zu: %#llx lacks %#llx", i,
			      (unsigned long long)raw[i], (unsigned long long)special_bit);
			continue;
		}
		CHECK(raw[i] == want, "page %zu: raw %#llx want %#llx (pagemap %#llx)", i,
		      (unsigned long long)raw[i], (unsigned long long)want,
		      (unsigned long long)harness_pagemap(buf + i * PAGE));
	}
}

static void test_anon(struct um_client *c)
{
	struct um_status st = UM_STATUS_INIT;
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	struct um_interval *iv;
	uint64_t pfns[NPAGES];
	struct um_range r = { .start = (uintptr_t)buf,
			      .end = (uintptr_t)buf + NPAGES * PAGE,
			      .pfns = pfns };
	volatile char sink;

	for (int i = 0; i < 4; i++)
		buf[i * PAGE] = (char)(i + 1); /* 0-3 present */
	sink = buf[8 * PAGE] + buf[9 * PAGE];  /* 8-9 zero page, 4-7 never touched */
	(void)sink;
	for (int i = 10; i < NPAGES; i++)
		buf[i * PAGE] = (char)i; /* 10-15 present */

	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0, "insert anon");
	buf[0] = 42; /* the first write: page 0 becomes writable again */
	CHECK(mprotect(buf + 15 * PAGE, PAGE, PROT_NONE) == 0, "mprotect: %m");

	check_range(iv, buf, NPAGES, PRIVATE_RW, -EPERM, 15);
	check_raw(c, buf, NPAGES, PRIVATE_RW, -EPERM, 15, UM_RAW_NOPERM);

	/* the cases spelled out, so a failure says which property broke */
	CHECK(um_range_register(&r, iv) == 0, "register");
	CHECK(harness_snapshot(&r) == -EPERM, "PROT_NONE page gives -EPERM");
	CHECK((pfns[0] & (UM_DEFAULT_VALID | UM_DEFAULT_WRITE)) ==
			      (UM_DEFAULT_VALID | UM_DEFAULT_WRITE) &&
		      !(pfns[0] & UM_DEFAULT_UFFD_WP),
	      "written page valid+write, not wp: %#llx", (unsigned long long)pfns[0]);
	CHECK((pfns[1] & UM_DEFAULT_UFFD_WP) && !(pfns[1] & UM_DEFAULT_WRITE) &&
		      (pfns[1] & UM_DEFAULT_EXCLUSIVE),
	      "armed page wp, not write: %#llx", (unsigned long long)pfns[1]);
	CHECK((pfns[1] >> UM_DEFAULT_PFN_SHIFT) == (harness_pagemap(buf + PAGE) & PM_PFN_MASK),
	      "PFN equals pagemap");
	CHECK(um_status(c, &st) == 0, "status");
	if (st.kfeatures & UM_FEAT_WP_UNPOPULATED)
		CHECK(!(pfns[4] & UM_DEFAULT_VALID) && !(pfns[4] & UM_DEFAULT_ERROR),
		      "never touched page is NONE: %#llx", (unsigned long long)pfns[4]);
	else /* no WP_UNPOPULATED: the daemon read-faulted it before arming */
		CHECK((pfns[4] & UM_DEFAULT_ZERO) && (pfns[4] & UM_DEFAULT_UFFD_WP) &&
			      !(pfns[4] & UM_DEFAULT_WRITE),
		      "never touched page is the armed zero page: %#llx",
		      (unsigned long long)pfns[4]);
	CHECK((pfns[8] & UM_DEFAULT_ZERO) && !(pfns[8] & UM_DEFAULT_WRITE) &&
		      (pfns[8] >> UM_DEFAULT_PFN_SHIFT) == zero_pfn,
	      "zero page: %#llx", (unsigned long long)pfns[8]);
	CHECK(pfns[15] == UM_DEFAULT_ERROR, "PROT_NONE page is ERROR: %#llx",
	      (unsigned long long)pfns[15]);
	um_range_unregister(&r);
	CHECK(buf[0] == 42 && buf[1 * PAGE] == 2 && buf[10 * PAGE] == 10, "data intact");
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

static void test_readonly_and_hole(struct um_client *c)
{
	char *ro = harness_map_anon(2, PROT_READ | PROT_WRITE);
	char *h = harness_map_anon(3, PROT_READ | PROT_WRITE);

	memset(ro, 1, 2 * PAGE);
	CHECK(mprotect(ro, 2 * PAGE, PROT_READ) == 0, "mprotect: %m");
	check_raw(c, ro, 2, PRIVATE_RO, 2, -1, 0);
	CHECK(harness_pagemap(ro) & PM_PRESENT, "read-only page present in pagemap");

	memset(h, 1, 3 * PAGE);
	CHECK(munmap(h + PAGE, PAGE) == 0, "munmap: %m");
	check_raw(c, h, 3, PRIVATE_RW, -EFAULT, 1, UM_RAW_HOLE);
	munmap(ro, 2 * PAGE);
	munmap(h, PAGE);
	munmap(h + 2 * PAGE, PAGE);
}

static void test_file(struct um_client *c)
{
	const char *path = harness_path("file");
	char page[PAGE];
	struct um_interval *iv = NULL;
	volatile char sink;
	char *m;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0, "open %s: %m", path);
	memset(page, 'f', sizeof(page));
	for (int i = 0; i < 4; i++)
		CHECK(pwrite(fd, page, PAGE, (off_t)i * PAGE) == PAGE, "pwrite: %m");
	m = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mmap file: %m");
	sink = m[0];
	(void)sink;
	m[PAGE] = 'w';
	check_raw(c, m, 4, SHARED_RW, 4, -1, 0);
	CHECK(harness_pagemap(m) & PM_FILE, "file page has the file bit in pagemap");
	CHECK(um_interval_insert(c, m, 4 * PAGE, 0, NULL, NULL, &iv) == -EOPNOTSUPP,
	      "an ext4 MAP_SHARED mapping cannot be write-protected: -EOPNOTSUPP");
	CHECK(m[PAGE] == 'w', "file data intact");
	munmap(m, 4 * PAGE);
	close(fd);
}

static void test_memfd(struct um_client *c)
{
	struct um_interval *iv;
	volatile char sink;
	char *m;
	int fd = memfd_create("it-snapshot", MFD_CLOEXEC);

	CHECK(fd >= 0, "memfd_create: %m");
	CHECK(ftruncate(fd, 4 * PAGE) == 0, "ftruncate: %m");
	m = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mmap memfd: %m");
	m[0] = 'a';
	m[PAGE] = 'b';
	sink = m[2 * PAGE];
	(void)sink;
	CHECK(um_interval_insert(c, m, 4 * PAGE, 0, NULL, NULL, &iv) == 0, "insert shmem");
	check_range(iv, m, 4, SHARED_RW, 4, -1);
	m[2 * PAGE] = 'c'; /* first write since armed */
	check_range(iv, m, 4, SHARED_RW, 4, -1);
	CHECK(harness_pagemap(m + 2 * PAGE) & PM_PRESENT, "written shmem page present");
	CHECK(m[0] == 'a' && m[PAGE] == 'b' && m[2 * PAGE] == 'c', "shmem data intact");
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(m, 4 * PAGE);
	close(fd);
}

int main(void)
{
	struct um_client *c;
	struct um_status st = UM_STATUS_INIT;

	if (geteuid() != 0)
		harness_skip("umirrord needs root (userfaultfd of another process, PFNs)");
	harness_start("test_snapshot", NULL);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	CHECK(um_status(c, &st) == 0, "status");
	CHECK(st.kfeatures & UM_FEAT_PFN_VISIBLE, "root is shown PFNs (kfeatures %#llx)",
	      (unsigned long long)st.kfeatures);

	zero_pfn = harness_zero_pfn();
	test_anon(c);
	test_readonly_and_hole(c);
	test_file(c);
	test_memfd(c);
	um_disconnect(c);
	return harness_summary();
}
