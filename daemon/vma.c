/* SPDX-License-Identifier: MIT */
/*
 * vma.c - the VMAs of an owner's address space, in ascending order:
 * PROCMAP_QUERY on /proc/PID/maps where the kernel has it, else the text
 * of /proc/PID/maps streamed.
 */
#include "vma.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "mm_types.h"
#include "uapi_compat.h"

int vma_next(struct vma_iter *it, uint64_t addr, struct vma *v)
{
	if (it->mm->maps_fd >= 0) {
		struct procmap_query q = {
			.size = sizeof(q),
			.query_flags = PROCMAP_QUERY_COVERING_OR_NEXT_VMA,
			.query_addr = addr,
		};

		if (ioctl(it->mm->maps_fd, PROCMAP_QUERY, &q) < 0)
			return -errno;
		v->start = q.vma_start;
		v->end = q.vma_end;
		v->page_size = q.vma_page_size;
		v->inode = q.inode;
		v->offset = q.vma_offset;
		v->read = q.vma_flags & PROCMAP_QUERY_VMA_READABLE;
		v->write = q.vma_flags & PROCMAP_QUERY_VMA_WRITABLE;
		v->exec = q.vma_flags & PROCMAP_QUERY_VMA_EXECUTABLE;
		v->shared = q.vma_flags & PROCMAP_QUERY_VMA_SHARED;
		v->anon = !q.inode && !v->shared;
		return 0;
	}
	if (!it->maps) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/maps", (int)it->mm->pid);
		it->maps = fopen(path, "re");
		if (!it->maps)
			return -errno;
	}
	for (;;) {
		char line[512], perms[8];
		uint64_t s, e, off = 0, inode = 0;

		if (!fgets(line, sizeof(line), it->maps))
			return -ENOENT;
		/* a long name: the rest of the line is read as garbage and fails sscanf */
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %*x:%*x %" SCNu64, &s, &e,
			   perms, &off, &inode) < 3 ||
		    strlen(perms) < 4)
			continue;
		if (e <= addr)
			continue;
		v->start = s;
		v->end = e;
		/*
		 * maps does not show KernelPageSize; MAP_HUGETLB memory is named
		 * so (a hugetlbfs file is not recognised here). Only "> 4096"
		 * matters to the callers.
		 */
		v->page_size = strstr(line, " /anon_hugepage") ? 2ull << 20 : UMP_PAGE_SIZE;
		v->inode = inode;
		v->offset = off;
		v->read = perms[0] == 'r';
		v->write = perms[1] == 'w';
		v->exec = perms[2] == 'x';
		v->shared = perms[3] == 's';
		v->anon = !inode && !v->shared;
		return 0;
	}
}

void vma_iter_done(struct vma_iter *it)
{
	if (it->maps)
		fclose(it->maps);
}

/* holes, and with @perms missing read (or @write) permission */
static int vma_test(struct mm *mm, uint64_t start, uint64_t end, bool perms, bool write)
{
	struct vma_iter it = { .mm = mm };
	uint64_t addr = start;
	bool perm = false;
	struct vma v;
	int ret = 0;

	while (addr < end) {
		ret = vma_next(&it, addr, &v);
		if (ret == -ENOENT || (!ret && v.start > addr)) {
			ret = -EFAULT;
			break;
		}
		if (ret)
			break;
		/* a hole further on still wins over a permission problem */
		if (perms && (!v.read || (write && !v.write)))
			perm = true;
		addr = v.end;
	}
	vma_iter_done(&it);
	return ret ? ret : perm ? -EPERM : 0;
}

int vma_covered(struct mm *mm, uint64_t start, uint64_t end)
{
	return vma_test(mm, start, end, false, false);
}

int vma_check(struct mm *mm, uint64_t start, uint64_t end, bool write)
{
	return vma_test(mm, start, end, true, write);
}

int vma_walk(struct mm *mm, uint64_t start, uint64_t end,
	     int (*cb)(const struct vma *v, void *priv), void *priv)
{
	struct vma_iter it = { .mm = mm };
	uint64_t addr = start;
	struct vma v;
	int ret = 0;

	while (addr < end) {
		ret = vma_next(&it, addr, &v);
		if (ret == -ENOENT || (!ret && v.start >= end)) {
			ret = 0;
			break;
		}
		if (ret)
			break;
		ret = cb(&v, priv);
		if (ret)
			break;
		addr = v.end;
	}
	vma_iter_done(&it);
	return ret;
}
