/* SPDX-License-Identifier: MIT */
/*
 * test_hmm_scenarios - the scenarios of the kernel's hmm-tests.c
 * (tools/testing/selftests/mm) that need no fault API, against umirror,
 * each checked against /proc/self/pagemap: anon_read, anon_read_prot,
 * anon_write, anon_write_child, anon_write_huge (THP), anon_write_hugetlbfs,
 * file_read, the 7-page snapshot matrix and double_map.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPAGES 16
#define HPAGE (2ul << 20)
#define HPAGES (HPAGE / PAGE)
#define MAX_EV 64

static uint64_t zero_pfn;

/* invalidations of one interval, per reason and per page */
struct log {
	pthread_mutex_t lock;
	sem_t sem;
	uint64_t base;
	unsigned int n, nwrite;
	unsigned int per_page[NPAGES];
};

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct log *l = priv;

	(void)iv;
	pthread_mutex_lock(&l->lock);
	l->n++;
	if (inv->reason == UM_REASON_WRITE) {
		l->nwrite++;
		for (uint64_t a = inv->start; a < inv->end; a += PAGE)
			if (a >= l->base && (a - l->base) / PAGE < NPAGES)
				l->per_page[(a - l->base) / PAGE]++;
	}
	pthread_mutex_unlock(&l->lock);
	sem_post(&l->sem);
}

static const struct um_interval_ops log_ops = { .invalidate = on_invalidate };

static void log_init(struct log *l, void *base)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	sem_init(&l->sem, 0, 0);
	l->base = (uintptr_t)base;
}

static uint64_t pm_pfn(const void *addr)
{
	return harness_pagemap(addr) & PM_PFN_MASK;
}

static uint64_t pfn_of(uint64_t entry)
{
	return entry >> UM_DEFAULT_PFN_SHIFT;
}

/* Snapshot [buf, buf + n pages) of @iv in the default encoding, retrying -EAGAIN. */
static long snap(struct um_interval *iv, const void *buf, size_t n, uint64_t *pfns)
{
	struct um_range r = { .start = (uintptr_t)buf,
			      .end = (uintptr_t)buf + n * PAGE,
			      .pfns = pfns };
	long ret;

	CHECK(um_range_register(&r, iv) == 0, "range register");
	ret = harness_snapshot(&r);
	um_range_unregister(&r);
	return ret;
}

/* hmm-tests anon_read: first half pte_none, second half the zero page */
static void anon_read(struct um_client *c)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	uint64_t pfns[NPAGES];
	struct um_interval *iv;
	struct um_status st = UM_STATUS_INIT;
	volatile char sink;

	for (size_t i = NPAGES / 2; i < NPAGES; i++)
		sink = buf[i * PAGE];
	(void)sink;
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0, "insert");
	CHECK(snap(iv, buf, NPAGES, pfns) == NPAGES, "anon_read snapshot");
	CHECK(um_status(c, &st) == 0, "status");
	for (size_t i = 0; i < NPAGES / 2; i++) {
		CHECK(harness_pagemap(buf + i * PAGE) & PM_UFFD_WP, "page %zu armed in pagemap", i);
		if (st.kfeatures & UM_FEAT_WP_UNPOPULATED)
			CHECK(pfns[i] == UM_DEFAULT_UFFD_WP,
			      "untouched page %zu: NONE|UFFD_WP, got %#llx", i,
			      (unsigned long long)pfns[i]);
		else /* no WP_UNPOPULATED: the daemon read-faulted it before arming */
			CHECK((pfns[i] & (UM_DEFAULT_VALID | UM_DEFAULT_ZERO | UM_DEFAULT_UFFD_WP |
					  UM_DEFAULT_WRITE)) ==
				      (UM_DEFAULT_VALID | UM_DEFAULT_ZERO | UM_DEFAULT_UFFD_WP),
			      "untouched page %zu: the armed zero page, got %#llx", i,
			      (unsigned long long)pfns[i]);
	}
	for (size_t i = NPAGES / 2; i < NPAGES; i++)
		CHECK((pfns[i] & (UM_DEFAULT_VALID | UM_DEFAULT_ZERO | UM_DEFAULT_WRITE)) ==
				      (UM_DEFAULT_VALID | UM_DEFAULT_ZERO) &&
			      pfn_of(pfns[i]) == zero_pfn &&
			      pfn_of(pfns[i]) == pm_pfn(buf + i * PAGE),
		      "read page %zu: VALID|ZERO, not WRITE, zero PFN: got %#llx", i,
		      (unsigned long long)pfns[i]);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

/* hmm-tests anon_read_prot: PROT_NONE -EPERM, then PROT_READ reads the zero page */
static void anon_read_prot(struct um_client *c)
{
	char *buf = harness_map_anon(NPAGES, PROT_NONE);
	uint64_t pfns[NPAGES];
	struct um_interval *iv;
	volatile char sink;

	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0,
	      "insert PROT_NONE");
	CHECK(snap(iv, buf, NPAGES, pfns) == -EPERM, "PROT_NONE snapshot is -EPERM");
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(pfns[i] == UM_DEFAULT_ERROR, "PROT_NONE page %zu: ERROR, got %#llx", i,
		      (unsigned long long)pfns[i]);
	CHECK(mprotect(buf, NPAGES * PAGE, PROT_READ) == 0, "mprotect: %m");
	for (size_t i = 0; i < NPAGES; i++)
		sink = buf[i * PAGE];
	(void)sink;
	CHECK(snap(iv, buf, NPAGES, pfns) == NPAGES, "PROT_READ snapshot succeeds");
	for (size_t i = 0; i < NPAGES; i++)
		CHECK((pfns[i] & (UM_DEFAULT_VALID | UM_DEFAULT_ZERO | UM_DEFAULT_WRITE)) ==
				      (UM_DEFAULT_VALID | UM_DEFAULT_ZERO) &&
			      pfn_of(pfns[i]) == zero_pfn &&
			      pfn_of(pfns[i]) == pm_pfn(buf + i * PAGE),
		      "page %zu zero page after PROT_READ: got %#llx", i,
		      (unsigned long long)pfns[i]);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

/* Wait for @n invalidations on @l, then check that no more come. */
static void wait_events(struct log *l, unsigned int n, const char *what)
{
	for (unsigned int i = 0; i < n; i++)
		CHECK(harness_sem_wait_ms(&l->sem, 5000), "%s: invalidation %u arrived", what, i);
	CHECK(!harness_sem_wait_ms(&l->sem, 200), "%s: no extra invalidation", what);
}

/* hmm-tests anon_write: a second thread writes every page */
static void anon_write(struct um_client *c)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	struct harness_writer w;
	uint64_t pfns[NPAGES];
	struct um_interval *iv;
	struct log l;

	memset(buf, 'p', NPAGES * PAGE);
	log_init(&l, buf);
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, &log_ops, &l, &iv) == 0, "insert");
	harness_writer_start(&w, buf, NPAGES * PAGE, 'w');
	harness_writer_join(&w);
	wait_events(&l, NPAGES, "anon_write");
	CHECK(l.n == NPAGES && l.nwrite == NPAGES, "%u invalidations (%u WRITE), want %lu", l.n,
	      l.nwrite, (unsigned long)NPAGES);
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(l.per_page[i] == 1, "page %zu: %u WRITE invalidations", i, l.per_page[i]);
	CHECK(snap(iv, buf, NPAGES, pfns) == NPAGES, "snapshot");
	for (size_t i = 0; i < NPAGES; i++) {
		CHECK((pfns[i] & (UM_DEFAULT_VALID | UM_DEFAULT_WRITE | UM_DEFAULT_UFFD_WP)) ==
				      (UM_DEFAULT_VALID | UM_DEFAULT_WRITE) &&
			      pfn_of(pfns[i]) == pm_pfn(buf + i * PAGE),
		      "written page %zu: VALID|WRITE, PFN of pagemap: got %#llx", i,
		      (unsigned long long)pfns[i]);
		for (size_t j = 0; j < PAGE; j += 512)
			CHECK(buf[i * PAGE + j] == 'w', "data of page %zu intact", i);
	}
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

static char *child_buf;

static void cow_child_main(int in_fd, int out_fd)
{
	char ok = 'k';

	(void)in_fd;
	memset(child_buf, 'c', NPAGES * PAGE);
	for (size_t i = 0; i < NPAGES * PAGE; i += PAGE)
		if (child_buf[i] != 'c')
			ok = 'x';
	if (write(out_fd, &ok, 1) != 1)
		_exit(2);
	_exit(0);
}

/* hmm-tests anon_write_child: the child's COW writes are not the parent's */
static void anon_write_child(struct um_client *c)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	uint64_t before[NPAGES], pfns[NPAGES];
	int to_child, from_child, status;
	struct um_interval *iv;
	struct log l;
	char ok = 0;
	pid_t pid;

	memset(buf, 'p', NPAGES * PAGE);
	log_init(&l, buf);
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, &log_ops, &l, &iv) == 0, "insert");
	CHECK(snap(iv, buf, NPAGES, before) == NPAGES, "snapshot before fork");
	child_buf = buf;
	pid = harness_fork(cow_child_main, &to_child, &from_child);
	CHECK(read(from_child, &ok, 1) == 1 && ok == 'k', "child wrote its copy");
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child exited cleanly (0x%x)", status);
	close(to_child);
	close(from_child);
	/* a never-written interval stays armed across fork: no FORK invalidation either */
	CHECK(!harness_sem_wait_ms(&l.sem, 200) && l.n == 0,
	      "no invalidation for the parent (got %u)", l.n);
	CHECK(snap(iv, buf, NPAGES, pfns) == NPAGES, "snapshot after the child");
	for (size_t i = 0; i < NPAGES; i++) {
		CHECK(pfns[i] == before[i], "page %zu unchanged: %#llx, was %#llx", i,
		      (unsigned long long)pfns[i], (unsigned long long)before[i]);
		CHECK(pfn_of(pfns[i]) == pm_pfn(buf + i * PAGE) && buf[i * PAGE] == 'p',
		      "page %zu: parent's PFN and data", i);
	}
	for (size_t i = 0; i < NPAGES; i += 2)
		buf[i * PAGE] = 'q';
	wait_events(&l, NPAGES / 2, "anon_write_child");
	CHECK(l.nwrite == NPAGES / 2 && l.n == NPAGES / 2, "%u invalidations, %u WRITE", l.n,
	      l.nwrite);
	CHECK(snap(iv, buf, NPAGES, pfns) == NPAGES, "snapshot after the parent's writes");
	for (size_t i = 0; i < NPAGES; i++) {
		bool written = i % 2 == 0;

		CHECK(l.per_page[i] == (written ? 1u : 0u), "page %zu: %u WRITE invalidations", i,
		      l.per_page[i]);
		CHECK(pfn_of(pfns[i]) == pm_pfn(buf + i * PAGE) && (pfns[i] & UM_DEFAULT_VALID),
		      "page %zu: PFN %#llx equals pagemap's %#llx", i,
		      (unsigned long long)pfn_of(pfns[i]),
		      (unsigned long long)pm_pfn(buf + i * PAGE));
		CHECK(!!(pfns[i] & UM_DEFAULT_WRITE) == written &&
			      !!(pfns[i] & UM_DEFAULT_UFFD_WP) == !written,
		      "page %zu: WRITE only when written: %#llx", i, (unsigned long long)pfns[i]);
		CHECK(buf[i * PAGE] == (written ? 'q' : 'p'), "page %zu data", i);
	}
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

/* AnonHugePages of the /proc/self/smaps VMA containing @addr, in kB, or -1. */
static long smaps_anon_huge_kb(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	uintptr_t a = (uintptr_t)addr, s, e;
	bool in = false;
	char line[512];
	long kb = -1;

	CHECK(f != NULL, "open smaps: %m");
	while (fgets(line, sizeof(line), f)) {
		/* a VMA header: "start-end perms ..."; field lines ("Name: ...") fail this */
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &s, &e) == 2) {
			in = a >= s && a < e;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* 2 MiB-aligned 2 MiB inside a fresh 4 MiB mapping; @raw receives the mapping */
static char *map_aligned_2m(void **raw)
{
	char *p = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED, "mmap 4 MiB: %m");
	*raw = p;
	return (char *)(((uintptr_t)p + HPAGE - 1) & ~(HPAGE - 1));
}

static void check_huge_entries(const uint64_t *e, const char *buf, bool raw, const char *what)
{
	uint64_t pfn0 = raw ? e[0] & UM_RAW_PFN_MASK : pfn_of(e[0]);
	uint64_t huge = raw ? UM_RAW_HUGE : UM_DEFAULT_HUGE;
	uint64_t valid = raw ? UM_RAW_PRESENT : UM_DEFAULT_VALID;

	CHECK(pfn0 && (pfn0 & (HPAGES - 1)) == 0, "%s: first PFN %#llx is 2 MiB aligned", what,
	      (unsigned long long)pfn0);
	for (size_t i = 0; i < HPAGES; i++) {
		uint64_t pfn = raw ? e[i] & UM_RAW_PFN_MASK : pfn_of(e[i]);

		CHECK((e[i] & huge) && (e[i] & valid), "%s: entry %zu HUGE|VALID: %#llx", what, i,
		      (unsigned long long)e[i]);
		CHECK(pfn == pfn0 + i && pfn == pm_pfn(buf + i * PAGE),
		      "%s: entry %zu PFN %#llx, want %#llx (pagemap %#llx)", what, i,
		      (unsigned long long)pfn, (unsigned long long)(pfn0 + i),
		      (unsigned long long)pm_pfn(buf + i * PAGE));
	}
}

/* hmm-tests anon_write_huge: a THP is reported HUGE on all 512 entries */
static void anon_write_huge(struct um_client *c)
{
	static uint64_t pfns[HPAGES];
	struct um_interval *iv;
	long kb;
	void *raw;
	char *buf = map_aligned_2m(&raw);

	CHECK(madvise(buf, HPAGE, MADV_HUGEPAGE) == 0, "madvise(MADV_HUGEPAGE): %m");
	memset(buf, 'h', HPAGE);
	kb = smaps_anon_huge_kb(buf);
	if (kb < 2048) {
		printf("anon_write_huge: SKIPPED: the kernel gave no THP (AnonHugePages %ld kB; "
		       "THP fragmentation or disabled)\n",
		       kb);
		munmap(raw, 2 * HPAGE);
		return;
	}
	CHECK(um_interval_insert(c, buf, HPAGE, 0, NULL, NULL, &iv) == 0, "insert THP");
	CHECK(snap(iv, buf, HPAGES, pfns) == (long)HPAGES, "THP snapshot");
	check_huge_entries(pfns, buf, false, "THP");
	CHECK(smaps_anon_huge_kb(buf) >= 2048, "still a THP after insert");
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(raw, 2 * HPAGE);
}

static int read_nr_hugepages(long *v)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "re");
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, "%ld", v) == 1;
	fclose(f);
	return ok ? 0 : -EIO;
}

static int write_nr_hugepages(long v)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "we");
	int ret = 0;

	if (!f)
		return -errno;
	if (fprintf(f, "%ld\n", v) < 0)
		ret = -EIO;
	if (fclose(f) != 0 && !ret)
		ret = -errno;
	return ret;
}

/* nr_hugepages before this test raised it, restored at exit even when a CHECK fails */
static long saved_nr_hugepages = -1;

static void restore_nr_hugepages(void)
{
	if (saved_nr_hugepages >= 0)
		write_nr_hugepages(saved_nr_hugepages);
}

/* hmm-tests anon_write_hugetlbfs: a hugetlb page is HUGE, PFNs contiguous */
static void anon_write_hugetlbfs(struct um_client *c)
{
	static uint64_t e[HPAGES];
	struct um_interval *iv = NULL;
	long old, now;
	char *buf;
	int ret;

	CHECK(read_nr_hugepages(&old) == 0, "read nr_hugepages");
	saved_nr_hugepages = old;
	atexit(restore_nr_hugepages);
	CHECK(write_nr_hugepages(old + 1) == 0, "write nr_hugepages: %m");
	CHECK(read_nr_hugepages(&now) == 0, "read nr_hugepages");
	if (now < old + 1) {
		printf("anon_write_hugetlbfs: SKIPPED: could not reserve a 2 MiB huge page "
		       "(nr_hugepages %ld)\n",
		       now);
		write_nr_hugepages(old);
		return;
	}
	buf = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
		   -1, 0);
	CHECK(buf != MAP_FAILED, "mmap MAP_HUGETLB: %m");
	memset(buf, 't', HPAGE);
	ret = um_interval_insert(c, buf, HPAGE, 0, NULL, NULL, &iv);
	/* the daemon registers hugetlb with UFFD_FEATURE_WP_HUGETLBFS_SHMEM */
	CHECK(ret == 0, "insert hugetlb: %d", ret);
	CHECK(snap(iv, buf, HPAGES, e) == (long)HPAGES, "hugetlb range snapshot");
	check_huge_entries(e, buf, false, "hugetlb range");
	CHECK(um_snapshot_raw(c, getpid(), (uintptr_t)buf, HPAGES, e) == (long)HPAGES,
	      "hugetlb raw snapshot");
	check_huge_entries(e, buf, true, "hugetlb raw");
	CHECK(um_interval_remove(iv) == 0, "remove");
	CHECK(buf[0] == 't' && buf[HPAGE - 1] == 't', "hugetlb data intact");
	munmap(buf, HPAGE);
	CHECK(write_nr_hugepages(old) == 0, "restore nr_hugepages to %ld", old);
	saved_nr_hugepages = -1;
}

/* hmm-tests file_read: a tmpfs file mapped shared read-only */
static void file_read(struct um_client *c)
{
	char path[64], page[PAGE];
	uint64_t pfns[NPAGES];
	struct um_interval *iv;
	volatile char sink;
	char *m;
	int fd;

	snprintf(path, sizeof(path), "/dev/shm/umirror-hmm-%d", (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	CHECK(fd >= 0, "open %s: %m", path);
	unlink(path);
	for (size_t i = 0; i < NPAGES; i++) {
		memset(page, (int)('A' + i), sizeof(page));
		CHECK(pwrite(fd, page, PAGE, (off_t)(i * PAGE)) == PAGE, "pwrite: %m");
	}
	m = mmap(NULL, NPAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mmap: %m");
	for (size_t i = 0; i < NPAGES; i++)
		sink = m[i * PAGE];
	(void)sink;
	CHECK(um_interval_insert(c, m, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0,
	      "insert read-only shmem");
	CHECK(snap(iv, m, NPAGES, pfns) == NPAGES, "snapshot");
	for (size_t i = 0; i < NPAGES; i++) {
		CHECK((pfns[i] & (UM_DEFAULT_VALID | UM_DEFAULT_FILE | UM_DEFAULT_WRITE)) ==
				      (UM_DEFAULT_VALID | UM_DEFAULT_FILE) &&
			      pfn_of(pfns[i]) == pm_pfn(m + i * PAGE) &&
			      pfn_of(pfns[i]) != zero_pfn,
		      "file page %zu: VALID|FILE, not WRITE, pagemap PFN: got %#llx (pagemap "
		      "%#llx)",
		      i, (unsigned long long)pfns[i],
		      (unsigned long long)harness_pagemap(m + i * PAGE));
		CHECK(m[i * PAGE] == (char)('A' + i), "file data of page %zu", i);
	}
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(m, NPAGES * PAGE);
	close(fd);
}

/*
 * hmm-tests anon_read_multiple/snapshot: one range of 7 pages: PROT_NONE,
 * hole, zero page, read-only, read-write never written, read-write written,
 * written then MADV_DONTNEED'd.
 */
static void snapshot_matrix(struct um_client *c)
{
	char *p = harness_map_anon(7, PROT_READ | PROT_WRITE);
	uint64_t e[7];
	volatile char sink;
	long ret;

	CHECK(mprotect(p, PAGE, PROT_NONE) == 0, "mprotect: %m");
	CHECK(munmap(p + PAGE, PAGE) == 0, "munmap: %m");
	sink = p[2 * PAGE];
	(void)sink;
	p[3 * PAGE] = 3;
	CHECK(mprotect(p + 3 * PAGE, PAGE, PROT_READ) == 0, "mprotect: %m");
	p[5 * PAGE] = 5;
	p[6 * PAGE] = 6;
	CHECK(madvise(p + 6 * PAGE, PAGE, MADV_DONTNEED) == 0, "madvise: %m");

	memset(e, 0xa5, sizeof(e));
	ret = um_snapshot_raw(c, getpid(), (uintptr_t)p, 7, e);
	CHECK(ret == -EFAULT, "a hole wins over -EPERM: got %ld", ret);
	CHECK(e[0] & UM_RAW_NOPERM, "PROT_NONE page: NOPERM, got %#llx", (unsigned long long)e[0]);
	CHECK(e[1] & UM_RAW_HOLE, "hole: HOLE, got %#llx", (unsigned long long)e[1]);
	CHECK((e[2] & ~UM_RAW_PFN_MASK) == (UM_RAW_PRESENT | UM_RAW_ZERO) &&
		      (e[2] & UM_RAW_PFN_MASK) == zero_pfn && zero_pfn == pm_pfn(p + 2 * PAGE),
	      "zero page: PRESENT|ZERO, got %#llx", (unsigned long long)e[2]);
	CHECK((e[3] & ~UM_RAW_PFN_MASK) == (UM_RAW_PRESENT | UM_RAW_EXCL) &&
		      (e[3] & UM_RAW_PFN_MASK) == pm_pfn(p + 3 * PAGE),
	      "read-only page: PRESENT|EXCL, not WRITE, got %#llx", (unsigned long long)e[3]);
	CHECK(e[4] == 0 && (harness_pagemap(p + 4 * PAGE) & ~PM_SOFT_DIRTY) == 0,
	      "never-written page: nothing, got %#llx, pagemap %#llx", (unsigned long long)e[4],
	      (unsigned long long)harness_pagemap(p + 4 * PAGE));
	CHECK((e[5] & ~UM_RAW_PFN_MASK) == (UM_RAW_PRESENT | UM_RAW_EXCL | UM_RAW_WRITE) &&
		      (e[5] & UM_RAW_PFN_MASK) == pm_pfn(p + 5 * PAGE),
	      "written page: PRESENT|EXCL|WRITE, got %#llx", (unsigned long long)e[5]);
	CHECK(e[6] == 0 && (harness_pagemap(p + 6 * PAGE) & ~PM_SOFT_DIRTY) == 0,
	      "MADV_DONTNEED'd page: nothing, got %#llx, pagemap %#llx", (unsigned long long)e[6],
	      (unsigned long long)harness_pagemap(p + 6 * PAGE));
	CHECK(p[3 * PAGE] == 3 && p[5 * PAGE] == 5 && p[6 * PAGE] == 0, "data");
	munmap(p, PAGE);
	munmap(p + 2 * PAGE, 5 * PAGE);
}

static long fault_range(struct um_interval *iv, void *buf, size_t n, uint64_t dflt, uint64_t *pfns,
			uint64_t *seq);

struct dm_hello {
	pid_t pid;
	uint64_t interval_id;
	uint64_t start;
};

/* double_map's second subscriber: subscribe, snapshot, send the entries back */
static void double_map_child(int in_fd, int out_fd)
{
	uint64_t pfns[NPAGES];
	struct um_interval *iv;
	struct um_client *c;
	struct dm_hello m;
	long ret;

	alarm(harness_scaled_s(30));
	CHECK(read(in_fd, &m, sizeof(m)) == sizeof(m), "child: hello");
	CHECK(um_connect(NULL, 0, &c) == 0, "child: connect");
	CHECK(um_interval_subscribe(c, m.pid, m.interval_id, 0, NULL, NULL, &iv) == 0,
	      "child: subscribe");
	ret = snap(iv, (void *)(uintptr_t)m.start, NPAGES, pfns);
	CHECK(write(out_fd, &ret, sizeof(ret)) == sizeof(ret), "child: send ret");
	CHECK(write(out_fd, pfns, sizeof(pfns)) == sizeof(pfns), "child: send entries");
	/* a subscriber faults too: the last, never-touched page, for writing */
	ret = fault_range(iv, (char *)(uintptr_t)m.start + (NPAGES - 1) * PAGE, 1,
			  UM_DEFAULT_VALID | UM_DEFAULT_WRITE, pfns, NULL);
	CHECK(write(out_fd, &ret, sizeof(ret)) == sizeof(ret), "child: send fault ret");
	CHECK(write(out_fd, pfns, sizeof(pfns[0])) == sizeof(pfns[0]), "child: send fault entry");
	um_interval_remove(iv);
	um_disconnect(c);
	_exit(0);
}

/* hmm-tests double_map: two mirrors of the same memory see the same entries */
static void double_map(struct um_client *c, pid_t child, int to_child, int from_child)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	uint64_t mine[NPAGES], theirs[NPAGES], fault_e = 0;
	struct dm_hello m = { .pid = getpid(), .start = (uintptr_t)buf };
	struct um_interval *iv;
	struct um_status st = UM_STATUS_INIT;
	volatile char sink;
	long ret;
	int status;

	for (size_t i = 0; i < NPAGES / 2; i++)
		buf[i * PAGE] = (char)i;
	sink = buf[(NPAGES - 2) * PAGE];
	(void)sink;
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0, "insert");
	buf[0] = 'x';
	m.interval_id = um_interval_id(iv);
	CHECK(snap(iv, buf, NPAGES, mine) == NPAGES, "owner snapshot");
	CHECK(write(to_child, &m, sizeof(m)) == sizeof(m), "send hello");
	CHECK(read(from_child, &ret, sizeof(ret)) == sizeof(ret), "child's result");
	CHECK(ret == NPAGES, "child's snapshot returned %ld", ret);
	CHECK(read(from_child, theirs, sizeof(theirs)) == sizeof(theirs), "child's entries");
	CHECK(read(from_child, &ret, sizeof(ret)) == sizeof(ret), "child's fault result");
	CHECK(ret == 1, "subscriber's write fault returned %ld", ret);
	CHECK(read(from_child, &fault_e, sizeof(fault_e)) == sizeof(fault_e),
	      "child's fault entry");
	CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child exited cleanly (0x%x)", status);
	/* the subscriber's write fault populated the owner's page, in the owner */
	CHECK((fault_e & (UM_DEFAULT_VALID | UM_DEFAULT_WRITE)) ==
			      (UM_DEFAULT_VALID | UM_DEFAULT_WRITE) &&
		      pfn_of(fault_e) == pm_pfn(buf + (NPAGES - 1) * PAGE) &&
		      pfn_of(fault_e) != zero_pfn && buf[(NPAGES - 1) * PAGE] == 0,
	      "subscriber write fault: %#llx, owner's pagemap %#llx", (unsigned long long)fault_e,
	      (unsigned long long)harness_pagemap(buf + (NPAGES - 1) * PAGE));
	for (size_t i = 0; i < NPAGES; i++) {
		CHECK(theirs[i] == mine[i], "page %zu: subscriber %#llx, owner %#llx", i,
		      (unsigned long long)theirs[i], (unsigned long long)mine[i]);
		/* the last page was since replaced by the subscriber's write fault */
		if (mine[i] & UM_DEFAULT_VALID && i != NPAGES - 1)
			CHECK(pfn_of(mine[i]) == pm_pfn(buf + i * PAGE), "page %zu PFN", i);
	}
	CHECK(um_status(c, &st) == 0, "status");
	/* without WP_UNPOPULATED the daemon read-faults never-touched pages: zero, armed */
	CHECK((mine[0] & UM_DEFAULT_WRITE) && (mine[1] & UM_DEFAULT_UFFD_WP) &&
		      (mine[NPAGES - 2] & UM_DEFAULT_ZERO) &&
		      (st.kfeatures & UM_FEAT_WP_UNPOPULATED
			       ? mine[NPAGES - 1] == UM_DEFAULT_UFFD_WP
			       : (mine[NPAGES - 1] & UM_DEFAULT_ZERO) &&
					 (mine[NPAGES - 1] & UM_DEFAULT_UFFD_WP)),
	      "the entries differ in kind (write, armed, zero, none)");
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

/* um_range_fault of [buf, buf + n pages) with @dflt on every page */
static long fault_range(struct um_interval *iv, void *buf, size_t n, uint64_t dflt, uint64_t *pfns,
			uint64_t *seq)
{
	struct um_range r = { .start = (uintptr_t)buf,
			      .end = (uintptr_t)buf + n * PAGE,
			      .pfns = pfns,
			      .default_flags = dflt };
	long ret;

	CHECK(um_range_register(&r, iv) == 0, "range register");
	ret = um_range_fault(&r, 0);
	if (seq)
		*seq = r.notifier_seq;
	um_range_unregister(&r);
	return ret;
}

/* hmm-tests anon_read_multiple: fault, change the data, fault again */
static void anon_read_multiple(struct um_client *c)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	uint64_t pfns[NPAGES];
	struct um_interval *iv;

	for (size_t i = 0; i < NPAGES; i++)
		buf[i * PAGE] = (char)i;
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0, "insert");
	for (int round = 0; round < 2; round++) {
		CHECK(fault_range(iv, buf, NPAGES, UM_DEFAULT_VALID, pfns, NULL) == NPAGES,
		      "read fault %d", round);
		for (size_t i = 0; i < NPAGES; i++) {
			CHECK((pfns[i] & UM_DEFAULT_VALID) &&
				      pfn_of(pfns[i]) == pm_pfn(buf + i * PAGE),
			      "round %d page %zu: PFN of pagemap: %#llx", round, i,
			      (unsigned long long)pfns[i]);
			CHECK(buf[i * PAGE] == (char)(i + round), "round %d page %zu data", round,
			      i);
		}
		for (size_t i = 0; i < NPAGES; i++)
			buf[i * PAGE] = (char)(i + round + 1);
	}
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

/* hmm-tests anon_write_prot: -EPERM on PROT_READ, then writable after mprotect */
static void anon_write_prot(struct um_client *c)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ);
	uint64_t pfns[NPAGES];
	struct um_interval *iv;
	long ret;

	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0, "insert");
	CHECK(fault_range(iv, buf, NPAGES, UM_DEFAULT_VALID, pfns, NULL) == NPAGES, "read fault");
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(pfn_of(pfns[i]) == zero_pfn && pm_pfn(buf + i * PAGE) == zero_pfn &&
			      !(pfns[i] & UM_DEFAULT_WRITE),
		      "page %zu: the zero page, read-only", i);
	ret = fault_range(iv, buf, NPAGES, UM_DEFAULT_VALID | UM_DEFAULT_WRITE, pfns, NULL);
	CHECK(ret == -EPERM, "write fault of PROT_READ: %ld", ret);
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(pm_pfn(buf + i * PAGE) == zero_pfn, "page %zu still the zero page", i);
	CHECK(mprotect(buf, NPAGES * PAGE, PROT_READ | PROT_WRITE) == 0, "mprotect: %m");
	CHECK(fault_range(iv, buf, NPAGES, UM_DEFAULT_VALID | UM_DEFAULT_WRITE, pfns, NULL) ==
		      NPAGES,
	      "write fault after mprotect");
	for (size_t i = 0; i < NPAGES; i++) {
		uint64_t pm = harness_pagemap(buf + i * PAGE);

		CHECK((pfns[i] & (UM_DEFAULT_VALID | UM_DEFAULT_WRITE | UM_DEFAULT_ZERO)) ==
				      (UM_DEFAULT_VALID | UM_DEFAULT_WRITE) &&
			      pfn_of(pfns[i]) != zero_pfn &&
			      pfn_of(pfns[i]) == (pm & PM_PFN_MASK) && !(pm & PM_UFFD_WP),
		      "page %zu: zero page replaced by a writable page: %#llx", i,
		      (unsigned long long)pfns[i]);
		CHECK(buf[i * PAGE] == 0, "page %zu zeroes", i);
	}
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

static char *shared_buf;

/* the parent write-faulted the shared page: read it, report PFN and data */
static void shared_child_main(int in_fd, int out_fd)
{
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t e[NPAGES];
	char go;

	if (pm < 0 || read(in_fd, &go, 1) != 1)
		_exit(2);
	for (size_t i = 0; i < NPAGES; i++) {
		volatile char v = shared_buf[i * PAGE];

		if (v != (char)('a' + i) ||
		    pread(pm, &e[i], 8, (off_t)((uintptr_t)(shared_buf + i * PAGE) / PAGE * 8)) !=
			    8)
			_exit(3);
		e[i] &= PM_PFN_MASK;
		shared_buf[i * PAGE + 1] = 'c';
	}
	if (write(out_fd, e, sizeof(e)) != sizeof(e))
		_exit(2);
	_exit(0);
}

/* hmm-tests anon_write_child_shared: MAP_SHARED anon, both see the same pages */
static void anon_write_child_shared(struct um_client *c)
{
	char *buf = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			 -1, 0);
	uint64_t pfns[NPAGES], theirs[NPAGES];
	int to_child, from_child, status;
	struct um_interval *iv;
	pid_t pid;

	CHECK(buf != MAP_FAILED, "mmap: %m");
	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0, "insert");
	shared_buf = buf;
	pid = harness_fork(shared_child_main, &to_child, &from_child);
	CHECK(fault_range(iv, buf, NPAGES, UM_DEFAULT_VALID | UM_DEFAULT_WRITE, pfns, NULL) ==
		      NPAGES,
	      "write fault of shared anon");
	for (size_t i = 0; i < NPAGES; i++) {
		CHECK((pfns[i] & (UM_DEFAULT_VALID | UM_DEFAULT_WRITE | UM_DEFAULT_FILE)) ==
				      (UM_DEFAULT_VALID | UM_DEFAULT_WRITE | UM_DEFAULT_FILE) &&
			      pfn_of(pfns[i]) == pm_pfn(buf + i * PAGE),
		      "page %zu VALID|WRITE|FILE: %#llx", i, (unsigned long long)pfns[i]);
		buf[i * PAGE] = (char)('a' + i);
	}
	CHECK(write(to_child, "g", 1) == 1, "go");
	CHECK(read(from_child, theirs, sizeof(theirs)) == sizeof(theirs), "child's PFNs");
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child saw the parent's data (exit 0x%x)", status);
	for (size_t i = 0; i < NPAGES; i++)
		CHECK(theirs[i] == pfn_of(pfns[i]) && buf[i * PAGE + 1] == 'c',
		      "page %zu: the child maps PFN %#llx, the mirror %#llx; its write is seen", i,
		      (unsigned long long)theirs[i], (unsigned long long)pfn_of(pfns[i]));
	close(to_child);
	close(from_child);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

struct teardown {
	char *buf;
	unsigned int delay_us;
};

static void *teardown_main(void *arg)
{
	struct teardown *t = arg;

	usleep(t->delay_us);
	munmap(t->buf + NPAGES / 2 * PAGE, NPAGES / 2 * PAGE);
	return NULL;
}

/*
 * hmm-tests anon_teardown: a thread unmaps half the buffer while faults
 * run. Each fault fails, or returns entries that are right for the half
 * that stays and were taken before the unmap's invalidation.
 */
static void anon_teardown(struct um_client *c)
{
	unsigned int seed = (unsigned int)getpid(), fails = 0, oks = 0;

	for (int loop = 0; loop < 50; loop++) {
		char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
		struct teardown t = { .buf = buf, .delay_us = rand_r(&seed) % 2000 };
		uint64_t pfns[NPAGES], seqs[64];
		unsigned int nseq = 0;
		struct um_interval *iv;
		pthread_t th;

		for (size_t i = 0; i < NPAGES; i += 2)
			buf[i * PAGE] = (char)(i + 1);
		CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0, "insert");
		CHECK(pthread_create(&th, NULL, teardown_main, &t) == 0, "thread");
		for (int k = 0; k < 64; k++) {
			uint64_t flags = UM_DEFAULT_VALID | (k % 2 ? UM_DEFAULT_WRITE : 0), seq;
			long ret = fault_range(iv, buf, NPAGES, flags, pfns, &seq);

			if (ret < 0) {
				CHECK(ret == -EFAULT || ret == -EBUSY, "teardown fault: %ld", ret);
				fails++;
				continue;
			}
			CHECK(ret == NPAGES, "teardown fault: %ld", ret);
			oks++;
			seqs[nseq++] = seq;
			/* the half that stays: nothing else changes it after the fault */
			for (size_t i = 0; i < NPAGES / 2; i++) {
				CHECK((pfns[i] & UM_DEFAULT_VALID) &&
					      pfn_of(pfns[i]) == pm_pfn(buf + i * PAGE) &&
					      (!(k % 2) || (pfns[i] & UM_DEFAULT_WRITE)),
				      "loop %d fault %d page %zu: %#llx pagemap %#llx", loop, k, i,
				      (unsigned long long)pfns[i],
				      (unsigned long long)harness_pagemap(buf + i * PAGE));
				CHECK(buf[i * PAGE] == (i % 2 ? 0 : (char)(i + 1)), "page %zu data",
				      i);
			}
		}
		CHECK(pthread_join(th, NULL) == 0, "join");
		/*
		 * A success after the unmap would have mirrored a hole as valid.
		 * munmap() returns once the daemon has read the UNMAP event, a
		 * moment before it starts the invalidation: allow it that moment.
		 */
		for (unsigned int k = 0; k < nseq; k++) {
			uint64_t until = harness_now_ms() + 1000;

			while (!um_interval_read_retry(iv, seqs[k]) && harness_now_ms() < until)
				usleep(100);
			CHECK(um_interval_read_retry(iv, seqs[k]),
			      "loop %d: success %u was taken before the unmap's invalidation", loop,
			      k);
		}
		CHECK(um_interval_remove(iv) == 0, "remove");
		munmap(buf, NPAGES / 2 * PAGE);
	}
	printf("anon_teardown: %u faults succeeded, %u failed\n", oks, fails);
}

/*
 * hmm-tests file_write: a regular file (ext4 /tmp here, which userfaultfd
 * can only track with TRACK_ASYNC) mapped shared: write-faulted through the
 * mirror, written by the CPU; the mirror keeps the page cache pages, and
 * the file has the data.
 */
static void file_write(struct um_client *c)
{
	uint64_t pfns[NPAGES];
	struct um_interval *iv;
	char page[PAGE];
	char *m;
	int fd;

	fd = open(harness_path("file_write"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0 && ftruncate(fd, NPAGES * PAGE) == 0, "file: %m");
	m = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mmap: %m");
	CHECK(um_interval_insert(c, m, NPAGES * PAGE, 0, NULL, NULL, &iv) == -EOPNOTSUPP,
	      "a regular file is not tracked synchronously");
	CHECK(um_interval_insert(c, m, NPAGES * PAGE, UM_INTERVAL_TRACK_ASYNC, NULL, NULL, &iv) ==
		      0,
	      "insert with TRACK_ASYNC");
	CHECK(fault_range(iv, m, NPAGES, UM_DEFAULT_VALID | UM_DEFAULT_WRITE, pfns, NULL) == NPAGES,
	      "write fault");
	for (size_t i = 0; i < NPAGES; i++) {
		memset(m + i * PAGE, 'a' + (int)i, PAGE);
		CHECK((pfns[i] & (UM_DEFAULT_VALID | UM_DEFAULT_WRITE | UM_DEFAULT_FILE)) ==
				      (UM_DEFAULT_VALID | UM_DEFAULT_WRITE | UM_DEFAULT_FILE) &&
			      pfn_of(pfns[i]) == pm_pfn(m + i * PAGE),
		      "page %zu: %#llx, pagemap %#llx", i, (unsigned long long)pfns[i],
		      (unsigned long long)harness_pagemap(m + i * PAGE));
	}
	for (size_t i = 0; i < NPAGES; i++) {
		CHECK(pread(fd, page, PAGE, (off_t)(i * PAGE)) == PAGE, "pread");
		CHECK(page[0] == 'a' + (int)i && page[PAGE - 1] == 'a' + (int)i,
		      "file page %zu has the data", i);
	}
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(m, NPAGES * PAGE);
	close(fd);
}

/* hmm-tests compound: a faulted hugetlb page is HUGE on every entry */
static void compound(struct um_client *c)
{
	static uint64_t e[HPAGES];
	struct um_interval *iv;
	long old, now;
	char *buf;

	CHECK(read_nr_hugepages(&old) == 0, "read nr_hugepages");
	saved_nr_hugepages = old;
	CHECK(write_nr_hugepages(old + 1) == 0, "write nr_hugepages: %m");
	CHECK(read_nr_hugepages(&now) == 0, "read nr_hugepages");
	if (now < old + 1) {
		printf("compound: SKIPPED: could not reserve a 2 MiB huge page (nr_hugepages "
		       "%ld)\n",
		       now);
		write_nr_hugepages(old);
		saved_nr_hugepages = -1;
		return;
	}
	buf = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
		   -1, 0);
	CHECK(buf != MAP_FAILED, "mmap MAP_HUGETLB: %m");
	CHECK(um_interval_insert(c, buf, HPAGE, 0, NULL, NULL, &iv) == 0, "insert hugetlb");
	CHECK(fault_range(iv, buf, HPAGES, UM_DEFAULT_VALID | UM_DEFAULT_WRITE, e, NULL) ==
		      (long)HPAGES,
	      "hugetlb write fault");
	check_huge_entries(e, buf, false, "compound");
	for (size_t i = 0; i < HPAGES; i++)
		CHECK(e[i] & UM_DEFAULT_WRITE, "compound entry %zu WRITE", i);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, HPAGE);
	CHECK(write_nr_hugepages(old) == 0, "restore nr_hugepages to %ld", old);
	saved_nr_hugepages = -1;
}

int main(void)
{
	int to_child, from_child;
	struct um_client *c;
	struct um_status st = UM_STATUS_INIT;
	pid_t child;

	if (geteuid() != 0)
		harness_skip("umirrord needs root (userfaultfd of another process, PFNs)");
	/* first writes page by page, each its own WRITE (granules: test_write_granule) */
	static const char *const args[] = { "--write-granule", "1", NULL };

	harness_start("test_hmm_scenarios", args);
	/* fork before connecting: the child must not share our connection */
	child = harness_fork(double_map_child, &to_child, &from_child);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	CHECK(um_status(c, &st) == 0, "status");
	CHECK(st.kfeatures & UM_FEAT_PFN_VISIBLE, "root is shown PFNs");

	zero_pfn = harness_zero_pfn();
	anon_read(c);
	anon_read_prot(c);
	anon_write(c);
	anon_write_child(c);
	anon_write_huge(c);
	anon_write_hugetlbfs(c);
	file_read(c);
	snapshot_matrix(c);
	double_map(c, child, to_child, from_child);
	anon_read_multiple(c);
	anon_write_prot(c);
	anon_write_child_shared(c);
	anon_teardown(c);
	file_write(c);
	compound(c);
	um_disconnect(c);
	return harness_summary();
}
