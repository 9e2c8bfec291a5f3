// SPDX-License-Identifier: MIT
/*
 * test_memory_kinds - every kind of memory a real program has, mirrored:
 * private and shared anonymous, memfd MAP_SHARED and MAP_PRIVATE, a
 * regular (ext4) file MAP_SHARED and MAP_PRIVATE, THP and hugetlb 2 MiB.
 * For each: insert, snapshot, read fault, write fault, each checked page
 * by page against /proc/self/pagemap, and the data checked unchanged
 * (faulting must never rewrite what the owner stored).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

#define HUGE_2M (2ul << 20)

struct kind {
	const char *name;
	size_t len;
	unsigned int iflags; /* um_interval_insert flags */
	bool file;	     /* has a backing file whose content must survive */
	bool private_file;   /* MAP_PRIVATE of a file: a write fault copies */
	bool zero_on_read;   /* a read fault of a never-touched page maps the zero page */
	bool huge;	     /* expect UM_PFN_HUGE once populated */
	bool refused;	     /* insert without TRACK_ASYNC must be refused */
	bool prefill;	     /* populate (with zeros) before insert: THP needs an empty PMD */
	int fd;
	char *mem;
};

static uint64_t zero_pfn;
static long saved_nr_hugepages = -1;

static void restore_hugepages(void)
{
	FILE *f;

	if (saved_nr_hugepages < 0)
		return;
	f = fopen("/proc/sys/vm/nr_hugepages", "w");
	if (f) {
		fprintf(f, "%ld\n", saved_nr_hugepages);
		fclose(f);
	}
}

/* make sure two 2 MiB huge pages exist; false (with a reason) if not */
static bool reserve_hugepages(void)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r+");
	long n = 0;

	if (!f)
		return false;
	if (fscanf(f, "%ld", &n) != 1) {
		fclose(f);
		return false;
	}
	fclose(f);
	if (n >= 2)
		return true;
	saved_nr_hugepages = n;
	atexit(restore_hugepages);
	f = fopen("/proc/sys/vm/nr_hugepages", "w");
	if (!f)
		return false;
	fprintf(f, "%ld\n", n + 2);
	fclose(f);
	f = fopen("/proc/sys/vm/nr_hugepages", "r");
	if (!f || fscanf(f, "%ld", &n) != 1)
		n = 0;
	if (f)
		fclose(f);
	return n >= 2;
}

/* is the page at @addr part of a THP? (/proc/kpageflags bit 22) */
static bool is_thp(const void *addr)
{
	uint64_t pm = harness_pagemap(addr), flags = 0;
	int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	bool thp;

	if (fd < 0 || !(pm & PM_PRESENT))
		thp = false;
	else
		thp = pread(fd, &flags, 8, (pm & PM_PFN_MASK) * 8) == 8 && flags & (1ull << 22);
	if (fd >= 0)
		close(fd);
	return thp;
}

static char pattern(size_t i)
{
	return (char)('a' + i % 23);
}

/* a file of @len bytes holding pattern(), in the test dir (ext4 /tmp) or a memfd */
static int make_file(const char *name, size_t len, bool memfd)
{
	int fd = memfd ? memfd_create(name, MFD_CLOEXEC)
		       : open(harness_path(name), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	char *buf = malloc(len);

	CHECK(fd >= 0 && buf, "create %s: %s", name, strerror(errno));
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(i);
	CHECK(pwrite(fd, buf, len, 0) == (ssize_t)len, "fill %s", name);
	free(buf);
	return fd;
}

static char *map_aligned(size_t len, int flags, int fd)
{
	/* 2 MiB alignment so THP and hugetlb can be used where asked */
	char *raw = mmap(NULL, len + HUGE_2M, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p;

	CHECK(raw != MAP_FAILED, "reserve: %s", strerror(errno));
	p = (char *)(((uintptr_t)raw + HUGE_2M - 1) & ~(HUGE_2M - 1));
	if (p > raw)
		munmap(raw, p - raw);
	munmap(p + len, raw + len + HUGE_2M - (p + len));
	p = mmap(p, len, PROT_READ | PROT_WRITE, flags | MAP_FIXED, fd, 0);
	CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	return p;
}

/* pfns[] (default encoding) against pagemap; @need: bits every page must have */
static void compare(const struct kind *k, const char *step, const uint64_t *pfns, size_t n,
		    uint64_t need)
{
	for (size_t i = 0; i < n; i++) {
		char *addr = k->mem + i * PAGE;
		uint64_t pm = harness_pagemap(addr), e = pfns[i];
		bool present = pm & PM_PRESENT;

		CHECK(!!(e & UM_DEFAULT_VALID) == present, "%s %s page %zu: valid %d, pagemap %d",
		      k->name, step, i, !!(e & UM_DEFAULT_VALID), present);
		if (present)
			CHECK(e >> UM_DEFAULT_PFN_SHIFT == (pm & PM_PFN_MASK),
			      "%s %s page %zu: pfn %#llx, pagemap %#llx", k->name, step, i,
			      (unsigned long long)(e >> UM_DEFAULT_PFN_SHIFT),
			      (unsigned long long)(pm & PM_PFN_MASK));
		CHECK((e & need) == need, "%s %s page %zu: entry %#llx lacks %#llx", k->name, step,
		      i, (unsigned long long)e, (unsigned long long)need);
	}
}

static void check_data(const struct kind *k, const char *step)
{
	size_t bad = 0;
	char *buf;

	for (size_t i = 0; i < k->len; i++)
		bad += k->mem[i] != (k->file ? pattern(i) : 0);
	CHECK(bad == 0, "%s %s: %zu bytes of memory changed by faulting", k->name, step, bad);
	if (!k->file)
		return;
	buf = malloc(k->len);
	CHECK(buf && pread(k->fd, buf, k->len, 0) == (ssize_t)k->len, "%s: read file", k->name);
	for (size_t i = 0; i < k->len; i++)
		bad += buf[i] != pattern(i);
	free(buf);
	CHECK(bad == 0, "%s %s: %zu bytes of the file changed", k->name, step, bad);
}

static long fault(struct um_range *r, uint64_t req)
{
	long ret;

	r->default_flags = req;
	r->pfn_flags_mask = 0;
	for (int tries = 0; tries < 5; tries++) {
		ret = um_range_fault(r, 0);
		if (ret != -EAGAIN && ret != -EBUSY)
			break;
	}
	return ret;
}

static void run_kind(struct um_client *c, struct kind *k)
{
	size_t n = k->len / PAGE;
	uint64_t *pfns = calloc(n, sizeof(*pfns));
	struct um_interval *iv;
	struct um_range r = { 0 };
	long ret;

	CHECK(pfns, "alloc");
	if (k->refused) {
		/* a regular file cannot be write-protected synchronously: refused, not blind */
		ret = um_interval_insert(c, k->mem, k->len, 0, NULL, NULL, &iv);
		CHECK(ret == -EOPNOTSUPP, "%s sync insert: %ld", k->name, ret);
		free(pfns);
		return;
	}
	ret = um_interval_insert(c, k->mem, k->len, k->iflags, NULL, NULL, &iv);
	CHECK(ret == 0, "%s insert: %s", k->name, strerror((int)-ret));
	printf("%s: backend %s\n", k->name, um_backend_str(um_interval_backend(iv)));
	r.start = (uint64_t)(uintptr_t)k->mem;
	r.end = r.start + k->len;
	r.pfns = pfns;
	CHECK(um_range_register(&r, iv) == 0, "%s register", k->name);

	/* 1. snapshot before anything is touched */
	ret = harness_snapshot(&r);
	CHECK(ret == (long)n, "%s snapshot: %ld", k->name, ret);
	compare(k, "snapshot", pfns, n, k->prefill && k->huge ? UM_DEFAULT_HUGE : 0);

	/* 2. read fault: every page present, nothing written */
	ret = fault(&r, UM_DEFAULT_VALID);
	CHECK(ret == (long)n, "%s read fault: %ld", k->name, ret);
	compare(k, "read fault", pfns, n, UM_DEFAULT_VALID | (k->file ? UM_DEFAULT_FILE : 0));
	if (k->zero_on_read)
		for (size_t i = 0; i < n; i++)
			CHECK(pfns[i] & UM_DEFAULT_ZERO && pfns[i] >> 12 == zero_pfn,
			      "%s read fault page %zu: not the zero page (%#llx)", k->name, i,
			      (unsigned long long)pfns[i]);
	check_data(k, "read fault");

	/* 3. write fault: present and writable, copy-on-write broken for private maps */
	ret = fault(&r, UM_DEFAULT_VALID | UM_DEFAULT_WRITE);
	CHECK(ret == (long)n, "%s write fault: %ld", k->name, ret);
	compare(k, "write fault", pfns, n,
		UM_DEFAULT_VALID | UM_DEFAULT_WRITE | (k->huge ? UM_DEFAULT_HUGE : 0));
	for (size_t i = 0; i < n; i++) {
		CHECK(!(pfns[i] & UM_DEFAULT_ZERO), "%s write fault page %zu: zero page", k->name,
		      i);
		if (k->private_file)
			CHECK(!(pfns[i] & UM_DEFAULT_FILE),
			      "%s write fault page %zu: still the file's page", k->name, i);
	}
	check_data(k, "write fault");

	um_range_unregister(&r);
	CHECK(um_interval_remove(iv) == 0, "%s remove", k->name);
	free(pfns);
}

int main(void)
{
	struct um_client *c;
	struct kind kinds[] = {
		{ .name = "private-anon", .len = 64 * PAGE, .zero_on_read = true },
		{ .name = "shared-anon", .len = 64 * PAGE },
		{ .name = "memfd-shared", .len = 64 * PAGE, .file = true },
		{ .name = "memfd-private", .len = 64 * PAGE, .file = true, .private_file = true },
		{ .name = "ext4-shared-sync", .len = 16 * PAGE, .file = true, .refused = true },
		{ .name = "ext4-shared",
		  .len = 64 * PAGE,
		  .file = true,
		  .iflags = UM_INTERVAL_TRACK_ASYNC },
		{ .name = "ext4-private",
		  .len = 64 * PAGE,
		  .file = true,
		  .private_file = true,
		  .iflags = UM_INTERVAL_TRACK_ASYNC },
		{ .name = "thp", .len = HUGE_2M, .huge = true, .prefill = true },
		{ .name = "hugetlb", .len = HUGE_2M, .huge = true },
	};

	harness_start("test_memory_kinds", NULL);
	zero_pfn = harness_zero_pfn();
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		struct kind *k = &kinds[i];
		int flags = MAP_PRIVATE | MAP_ANONYMOUS, fd = -1;

		k->fd = -1;
		if (!strcmp(k->name, "shared-anon")) {
			flags = MAP_SHARED | MAP_ANONYMOUS;
		} else if (!strncmp(k->name, "memfd", 5) || !strncmp(k->name, "ext4", 4)) {
			fd = k->fd = make_file(k->name, k->len, k->name[0] == 'm');
			flags = k->private_file ? MAP_PRIVATE : MAP_SHARED;
		} else if (!strcmp(k->name, "thp") && !harness_thp_possible()) {
			printf("thp: skipped, transparent_hugepage is [never]\n");
			continue;
		} else if (!strcmp(k->name, "hugetlb")) {
			if (!reserve_hugepages()) {
				printf("hugetlb: skipped, no 2 MiB huge pages could be reserved\n");
				continue;
			}
			flags |= MAP_HUGETLB;
		}
		k->mem = map_aligned(k->len, flags, fd);
		if (!strcmp(k->name, "thp"))
			CHECK(madvise(k->mem, k->len, MADV_HUGEPAGE) == 0, "MADV_HUGEPAGE");
		if (k->prefill)
			memset(k->mem, 0, k->len);
		if (!strcmp(k->name, "thp") && !is_thp(k->mem)) {
			printf("thp: skipped, the kernel gave no huge page (fragmented memory?)\n");
			munmap(k->mem, k->len);
			continue;
		} else if (!strcmp(k->name, "private-anon"))
			CHECK(madvise(k->mem, k->len, MADV_NOHUGEPAGE) == 0, "MADV_NOHUGEPAGE");
		run_kind(c, k);
		munmap(k->mem, k->len);
		if (k->fd >= 0)
			close(k->fd);
		printf("%s: ok\n", k->name);
	}
	um_disconnect(c);
	return harness_summary();
}
