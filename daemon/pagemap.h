/* SPDX-License-Identifier: MIT */
/*
 * pagemap.h - the one reader of /proc/PID/pagemap and /proc/kpageflags.
 *
 * Everything that looks at page-table entries (snapshot, settle, the
 * dirty log, the scan, the ATTACH proof) reads them here; the PM_* and
 * KPF_* bits are defined once, in proto/uapi_compat.h. Takes fds only, so
 * it sits below every daemon type.
 */
#ifndef UMD_PAGEMAP_H
#define UMD_PAGEMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/**
 * pagemap_pread() - read up to @n entries of pagemap @fd from @addr into
 * @out, until all are in, end of file or an error (EINTR retried).
 * Waits for the kernel's page-table walk; holds nothing.
 * Return: bytes read (a short count at the end of the address space), or
 * -errno of a failed read.
 */
ssize_t pagemap_pread(int fd, uint64_t addr, uint64_t n, uint64_t *out);

/**
 * pagemap_read() - read exactly @n entries of pagemap @fd from @addr.
 * Return: 0; -EIO a short read; -errno.
 */
int pagemap_read(int fd, uint64_t addr, uint64_t n, uint64_t *out);

/**
 * pagemap_read_all() - read @n entries of pagemap @fd from @addr; a short
 * read (end of the address space) leaves the rest zero (no page).
 * Return: 0 or -errno.
 */
int pagemap_read_all(int fd, uint64_t addr, uint64_t n, uint64_t *out);

/**
 * kpageflags_read() - the KPF_* flags of page frame @pfn from the
 * /proc/kpageflags fd @fd.
 * Return: 0 with *@flags set; -EIO otherwise.
 */
int kpageflags_read(int fd, uint64_t pfn, uint64_t *flags);

/**
 * pagemap_is_swap() - is the non-present entry @x a page in a swap area?
 *
 * pagemap sets bit 62 for every non-present swap-format PTE, not only for
 * pages in a swap area: uffd-wp markers (left by WP_UNPOPULATED and after
 * a zap), migration and hwpoison entries look the same. The entry's type
 * field (bits 0-4, shown to CAP_SYS_ADMIN readers) tells them apart: real
 * swap areas are numbered below MAX_SWAPFILES, the special entries above
 * it (32 - device 3 - migration 3 - hwpoison 1 - marker 1 on x86_64).
 * Without the type (a daemon that cannot see PFNs) an entry carrying the
 * uffd-wp bit is taken for a marker; a swapped page we had protected is
 * then reported as not present instead of swapped, both non-VALID.
 */
bool pagemap_is_swap(uint64_t x);

/**
 * pagemap_is_marker() - is @x a uffd-wp marker alone: swap bit and
 * uffd-wp, no swap file's type?
 */
bool pagemap_is_marker(uint64_t x);

#endif /* UMD_PAGEMAP_H */
