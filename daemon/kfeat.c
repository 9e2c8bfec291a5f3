/* SPDX-License-Identifier: MIT */
/*
 * kfeat.c - start-up probes. Each feature is detected by using it, never
 * by the kernel version: soft-dirty in particular is "supported" by the
 * clear_refs interface even when CONFIG_MEM_SOFT_DIRTY is off, so we
 * check that the bit really sets.
 */
#include "kfeat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "pagemap.h"
#include "uapi_compat.h"
#include "umirror_proto.h"

int kfeat_open_uffd(void)
{
	int dev, fd;

	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		close(dev);
		if (fd >= 0)
			return fd;
	}
	fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	return fd >= 0 ? fd : -errno;
}

static int read_pagemap(uint64_t addr, uint64_t *ent)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = pagemap_read(fd, addr, 1, ent);
	close(fd);
	return ret;
}

/* 0, or why no userfaultfd could be made (the caller says it, once) */
static int probe_uffd(struct kfeat *kf)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int fd = kfeat_open_uffd(), ret = 0;

	if (fd < 0)
		return fd;
	/* with features 0 the kernel answers with every feature it offers */
	if (ioctl(fd, UFFDIO_API, &api) == 0)
		kf->uffd_offered = api.features;
	else
		ret = -errno;
	close(fd);
	return ret;
}

static void probe_pagemap_scan(struct kfeat *kf, void *page)
{
	struct page_region r;
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (uint64_t)(uintptr_t)page,
		.end = (uint64_t)(uintptr_t)page + UMP_PAGE_SIZE,
		.vec = (uint64_t)(uintptr_t)&r,
		.vec_len = 1,
		.category_anyof_mask = PAGE_IS_PRESENT,
		.return_mask = PAGE_IS_PRESENT,
	};
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	kf->pagemap_scan = ioctl(fd, PAGEMAP_SCAN, &arg) >= 0;
	close(fd);
}

static void probe_procmap_query(struct kfeat *kf, void *page)
{
	struct procmap_query q = {
		.size = sizeof(q),
		.query_addr = (uint64_t)(uintptr_t)page,
	};
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	kf->procmap_query = ioctl(fd, PROCMAP_QUERY, &q) == 0 &&
			    kfeat_procmap_covers(q.query_addr, q.vma_start, q.vma_end);
	close(fd);
}

static void probe_soft_dirty(struct kfeat *kf, volatile char *page)
{
	uint64_t ent;
	int fd;

	page[0] = 1;
	fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "4", 1) != 1) {
		close(fd);
		return;
	}
	close(fd);
	page[0] = 2;
	kf->soft_dirty =
		read_pagemap((uint64_t)(uintptr_t)page, &ent) == 0 && (ent & PM_SOFT_DIRTY);
}

static bool soft_dirty_bit(volatile char *page)
{
	uint64_t ent;

	return read_pagemap((uint64_t)(uintptr_t)page, &ent) == 0 && (ent & PM_SOFT_DIRTY);
}

/*
 * The soft-dirty harvest's window (dirty.c) on @page, a page of @shared
 * memory written once: uffd-wp protect, clear_refs 4, unprotect; then a
 * write must set bit 55 again. The write comes only after a successful
 * unprotect (a write to a protected page would wait here for ever).
 */
static bool probe_soft_dirty_window(const struct kfeat *kf, volatile char *page, bool shared)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = kf->uffd_offered & (UFFD_FEATURE_PAGEFAULT_FLAG_WP |
						(shared ? UFFD_FEATURE_WP_HUGETLBFS_SHMEM : 0)),
	};
	struct uffdio_register reg = {
		.range = { .start = (uint64_t)(uintptr_t)page, .len = UMP_PAGE_SIZE },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect w = { .range = reg.range, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	int uffd = kfeat_open_uffd(), fd = -1;
	bool ok = false;

	if (uffd < 0)
		return false;
	page[0] = 1;
	if (ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg) ||
	    ioctl(uffd, UFFDIO_WRITEPROTECT, &w))
		goto out;
	fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "4", 1) != 1)
		goto unprotect;
	ok = !soft_dirty_bit(page);
unprotect:
	w.mode = 0;
	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w)) {
		ok = false;
		goto out;
	}
	page[0] = 2;
	ok = ok && soft_dirty_bit(page);
out:
	if (fd >= 0)
		close(fd);
	close(uffd);
	return ok;
}

bool kfeat_entry_pfn(uint64_t ent, uint64_t *pfn)
{
	/* not present: the low bits are a swap type and offset, not a PFN */
	if (!(ent & PM_PRESENT) || !(ent & PM_PFN_MASK))
		return false;
	*pfn = ent & PM_PFN_MASK;
	return true;
}

bool kfeat_procmap_covers(uint64_t addr, uint64_t vma_start, uint64_t vma_end)
{
	return vma_start <= addr && addr < vma_end;
}

static void probe_pfns(struct kfeat *kf, volatile char *rw, volatile char *ro)
{
	uint64_t ent, pfn;
	char c;

	rw[0] = 1;
	kf->pfn_visible =
		read_pagemap((uint64_t)(uintptr_t)rw, &ent) == 0 && kfeat_entry_pfn(ent, &pfn);
	/*
	 * A read fault on untouched private anon memory maps the zero page.
	 * The value is used: valgrind's translator drops a load whose value
	 * nothing reads, volatile or not, and the page stayed unmapped.
	 */
	c = ro[0];
	if (c != 0)
		return; /* fresh anonymous memory reads 0: cannot happen */
	if (kf->pfn_visible && read_pagemap((uint64_t)(uintptr_t)ro, &ent) == 0 &&
	    kfeat_entry_pfn(ent, &pfn))
		kf->zero_pfn = pfn;
	if (kf->pfn_visible) {
		int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);

		kf->kpageflags = fd >= 0;
		if (fd >= 0)
			close(fd);
	}
}

int kfeat_probe(struct kfeat *kf)
{
	char *pages, *shm;

	int ret;

	memset(kf, 0, sizeof(*kf));
	ret = probe_uffd(kf);
	if (ret)
		return ret;
	if (!kf->uffd_offered)
		return -ENOSYS;
	pages = mmap(NULL, 3 * UMP_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		     -1, 0);
	if (pages == MAP_FAILED)
		return -errno;
	probe_pfns(kf, pages, pages + UMP_PAGE_SIZE);
	probe_soft_dirty(kf, pages + 2 * UMP_PAGE_SIZE);
	if (kf->soft_dirty)
		kf->soft_dirty_anon = probe_soft_dirty_window(kf, pages + 2 * UMP_PAGE_SIZE, false);
	shm = mmap(NULL, UMP_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (kf->soft_dirty && shm != MAP_FAILED)
		kf->soft_dirty_shmem = probe_soft_dirty_window(kf, shm, true);
	if (shm != MAP_FAILED)
		munmap(shm, UMP_PAGE_SIZE);
	probe_pagemap_scan(kf, pages);
	probe_procmap_query(kf, pages);
	munmap(pages, 3 * UMP_PAGE_SIZE);
	log_info("kernel: uffd features 0x%llx, pagemap_scan %d, procmap_query %d, soft_dirty %d "
		 "(under uffd-wp: anon %d, shmem %d), pfn_visible %d, zero_pfn 0x%llx",
		 (unsigned long long)kf->uffd_offered, kf->pagemap_scan, kf->procmap_query,
		 kf->soft_dirty, kf->soft_dirty_anon, kf->soft_dirty_shmem, kf->pfn_visible,
		 (unsigned long long)kf->zero_pfn);
	return 0;
}

uint64_t kfeat_mask(const struct kfeat *kf)
{
	uint64_t m = 0;

	if (kf->pagemap_scan)
		m |= UMP_KFEAT_PAGEMAP_SCAN;
	if (kf->soft_dirty)
		m |= UMP_KFEAT_SOFT_DIRTY;
	if (kf->procmap_query)
		m |= UMP_KFEAT_PROCMAP_QUERY;
	if (kf->uffd_offered & UFFD_FEATURE_WP_UNPOPULATED)
		m |= UMP_KFEAT_WP_UNPOPULATED;
	if (kf->uffd_offered & UFFD_FEATURE_WP_ASYNC)
		m |= UMP_KFEAT_WP_ASYNC;
	if (kf->io_uring)
		m |= UMP_KFEAT_IO_URING;
	return m;
}

static const struct {
	const char *name;
	uint64_t bits;
} mask_names[] = {
	{ "pagemap_scan", UMP_KFEAT_PAGEMAP_SCAN },
	{ "wp_async", UMP_KFEAT_WP_ASYNC },
	{ "wp_unpopulated", UMP_KFEAT_WP_UNPOPULATED },
	{ "procmap_query", UMP_KFEAT_PROCMAP_QUERY },
	{ "io_uring", UMP_KFEAT_IO_URING },
	{ "soft_dirty", UMP_KFEAT_SOFT_DIRTY },
	{ "6.1", UMP_KFEAT_PAGEMAP_SCAN | UMP_KFEAT_WP_ASYNC | UMP_KFEAT_WP_UNPOPULATED |
			 UMP_KFEAT_PROCMAP_QUERY },
};

int kfeat_parse_mask(const char *list, uint64_t *out)
{
	const char *p = list;

	*out = 0;
	while (p && *p) {
		size_t len = strcspn(p, ", ");
		size_t i;

		for (i = 0; i < sizeof(mask_names) / sizeof(mask_names[0]); i++)
			if (strlen(mask_names[i].name) == len &&
			    !strncmp(p, mask_names[i].name, len))
				break;
		if (len && i == sizeof(mask_names) / sizeof(mask_names[0])) {
			log_error("--mask-features: unknown feature '%.*s' (known: pagemap_scan, "
				  "wp_async, wp_unpopulated, procmap_query, io_uring, soft_dirty, "
				  "6.1)",
				  (int)len, p);
			return -EINVAL;
		}
		if (len)
			*out |= mask_names[i].bits;
		p += len;
		p += strspn(p, ", ");
	}
	return 0;
}

void kfeat_apply_mask(struct kfeat *kf, uint64_t mask)
{
	uint64_t had = kfeat_mask(kf);

	if (mask & UMP_KFEAT_PAGEMAP_SCAN)
		kf->pagemap_scan = false;
	if (mask & UMP_KFEAT_PROCMAP_QUERY)
		kf->procmap_query = false;
	if (mask & UMP_KFEAT_SOFT_DIRTY)
		kf->soft_dirty = kf->soft_dirty_anon = kf->soft_dirty_shmem = false;
	if (mask & UMP_KFEAT_WP_ASYNC)
		kf->uffd_offered &= ~(uint64_t)UFFD_FEATURE_WP_ASYNC;
	if (mask & UMP_KFEAT_WP_UNPOPULATED)
		kf->uffd_offered &= ~(uint64_t)UFFD_FEATURE_WP_UNPOPULATED;
	if (mask & UMP_KFEAT_IO_URING)
		kf->io_uring = false;
	kf->masked = (had & mask) | (mask & UMP_KFEAT_IO_URING);
	if (mask)
		log_info("kernel features masked: 0x%llx (of 0x%llx asked)",
			 (unsigned long long)kf->masked, (unsigned long long)mask);
}
