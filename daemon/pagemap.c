/* SPDX-License-Identifier: MIT */
/*
 * pagemap.c - reading page-table entries (/proc/PID/pagemap) and page
 * flags (/proc/kpageflags). An entry is 8 bytes at offset addr / 4 KiB * 8.
 */
#include "pagemap.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "uapi_compat.h"
#include "um_page.h"

#define SWP_TYPE_MASK 0x1full
#define SWP_MAX_SWAPFILES 24

ssize_t pagemap_pread(int fd, uint64_t addr, uint64_t n, uint64_t *out)
{
	size_t want = n * sizeof(*out), got = 0;

	while (got < want) {
		ssize_t r = pread(fd, (char *)out + got, want - got,
				  (off_t)(addr / UMP_PAGE_SIZE * sizeof(*out) + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int pagemap_read(int fd, uint64_t addr, uint64_t n, uint64_t *out)
{
	ssize_t r = pagemap_pread(fd, addr, n, out);

	if (r < 0)
		return (int)r;
	return (uint64_t)r == n * sizeof(*out) ? 0 : -EIO;
}

int pagemap_read_all(int fd, uint64_t addr, uint64_t n, uint64_t *out)
{
	ssize_t r = pagemap_pread(fd, addr, n, out);

	if (r < 0)
		return (int)r;
	memset((char *)out + r, 0, n * sizeof(*out) - (size_t)r);
	return 0;
}

int kpageflags_read(int fd, uint64_t pfn, uint64_t *flags)
{
	return pread(fd, flags, sizeof(*flags), (off_t)pfn * 8) == sizeof(*flags) ? 0 : -EIO;
}

bool pagemap_is_swap(uint64_t x)
{
	if (!(x & PM_SWAP))
		return false;
	if (x & PM_PFN_MASK)
		return (x & SWP_TYPE_MASK) < SWP_MAX_SWAPFILES;
	return !(x & PM_UFFD_WP);
}

bool pagemap_is_marker(uint64_t x)
{
	if ((x & (PM_SWAP | PM_PRESENT | PM_UFFD_WP)) != (PM_SWAP | PM_UFFD_WP))
		return false;
	return !(x & PM_PFN_MASK) || (x & SWP_TYPE_MASK) >= SWP_MAX_SWAPFILES;
}
