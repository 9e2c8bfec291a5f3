/* SPDX-License-Identifier: MIT */
/*
 * kfeat.h - what this kernel offers, probed once at start-up.
 */
#ifndef UMD_KFEAT_H
#define UMD_KFEAT_H

#include <stdbool.h>
#include <stdint.h>

struct kfeat {
	uint64_t uffd_offered; /* UFFDIO_API features with features = 0 */
	bool pagemap_scan;     /* PAGEMAP_SCAN ioctl on pagemap */
	bool procmap_query;    /* PROCMAP_QUERY ioctl on maps */
	bool soft_dirty;       /* bit 55 really sets after clear_refs 4 + write */
	/*
	 * The soft-dirty harvest write-protects with uffd-wp around its
	 * clear_refs (dirty.c): after the unprotect a write must still set
	 * bit 55. True for private anonymous memory; Linux 6.1 makes a
	 * shared (shmem) page writable on unprotect, so its writes go unseen.
	 */
	bool soft_dirty_anon, soft_dirty_shmem;
	bool pfn_visible;  /* the daemon reads real PFNs from pagemap */
	bool kpageflags;   /* /proc/kpageflags readable (THP detection) */
	uint64_t zero_pfn; /* PFN of the shared zero page, 0 if unknown */
	bool io_uring;	   /* the daemon's restricted ring exists (uring.c, set by main) */
	uint64_t masked;   /* UM_KFEAT_* switched off by --mask-features */
};

/**
 * kfeat_parse_mask() - parse a --mask-features list: comma-separated
 * names of pagemap_scan, wp_async, wp_unpopulated, procmap_query,
 * io_uring, soft_dirty, or "6.1" (= pagemap_scan, wp_async,
 * wp_unpopulated, procmap_query: what Linux 6.1 lacks).
 * @list: the text (NULL or "" is the empty list)
 * @out: UM_KFEAT_* bits named
 * Return: 0, or -EINVAL after logging the unknown feature (log_error).
 */
int kfeat_parse_mask(const char *list, uint64_t *out);

/**
 * kfeat_apply_mask() - switch off the features of @mask in @kf, so that
 * nothing uses them (the fields read false, the uffd feature bits are
 * gone from uffd_offered) and record the ones the kernel had in
 * kf->masked. io_uring is recorded whenever asked (the ring comes later;
 * its creator checks kf->masked). Waits for nothing.
 */
void kfeat_apply_mask(struct kfeat *kf, uint64_t mask);

/**
 * kfeat_probe() - probe the kernel features the daemon relies on.
 * @kf: filled; fields not detected are false/0
 *
 * Creates and closes a probe userfaultfd, maps and unmaps a few private
 * pages, writes "4" to /proc/self/clear_refs. Waits for nothing.
 * Return: 0, or -errno when no userfaultfd can be created at all (the
 * daemon cannot work without one): what the kernel said (-EPERM, ...),
 * -ENOSYS when it offers no feature. Logs nothing about it: the caller
 * says it once.
 */
int kfeat_probe(struct kfeat *kf);

/**
 * kfeat_mask() - the UM_KFEAT_* bits of @kf, without UMP_KFEAT_PFN_VISIBLE
 * (that one depends on the peer).
 */
uint64_t kfeat_mask(const struct kfeat *kf);

/**
 * kfeat_entry_pfn() - the PFN a /proc/PID/pagemap entry @ent shows: only
 * a present page has one, and pagemap shows 0 to a reader without
 * CAP_SYS_ADMIN. Return: true and *@pfn, or false (*@pfn untouched).
 */
bool kfeat_entry_pfn(uint64_t ent, uint64_t *pfn);

/**
 * kfeat_procmap_covers() - whether a PROCMAP_QUERY answer [@vma_start,
 * @vma_end) holds the address @addr asked about: an answer about another
 * VMA, or fields left zero, is no working ioctl.
 */
bool kfeat_procmap_covers(uint64_t addr, uint64_t vma_start, uint64_t vma_end);

/**
 * kfeat_open_uffd() - a new userfaultfd (O_CLOEXEC|O_NONBLOCK), through
 * /dev/userfaultfd or userfaultfd(2). Return: the fd or -errno.
 */
int kfeat_open_uffd(void);

#endif /* UMD_KFEAT_H */
