/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c - pagemap + VMAs -> UM_E_* entries.
 *
 * The pagemap is read with one pread straight into the client's result
 * buffer (an entry is 8 bytes either way) and converted in place, one
 * pass per VMA with that VMA's properties hoisted out of the loop. THP
 * candidates cost one extra pread of /proc/kpageflags per 2 MiB block
 * whose PFNs are contiguous; nothing else touches the kernel per page.
 */
#include "snapshot.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"
#include "lookup.h"
#include "pagemap.h"
#include "peer.h"
#include "place.h"
#include "protect.h"
#include "seq.h"
#include "vma.h"
#include "uapi_compat.h"

#define HPAGE (2ull << 20)

static void fill(uint64_t *e, uint64_t n, uint64_t value)
{
	for (uint64_t i = 0; i < n; i++)
		e[i] = value;
}

/* mark the pages of THP-backed 2 MiB blocks in raw entries e[0..n) at addr */
static void mark_thp(struct server *s, uint64_t *e, uint64_t n, uint64_t addr)
{
	uint64_t i = 0;

	while (i < n) {
		uint64_t a = addr + i * UMP_PAGE_SIZE, blk = a & ~(HPAGE - 1);
		uint64_t stop = i + (blk + HPAGE - a) / UMP_PAGE_SIZE, pfn0, flags;
		bool ok = e[i] & PM_PRESENT;

		if (stop > n)
			stop = n;
		/* PFN the block's first page would have if one huge page backs it */
		pfn0 = (e[i] & PM_PFN_MASK) - (a - blk) / UMP_PAGE_SIZE;
		if (pfn0 & 511)
			ok = false;
		for (uint64_t k = i; ok && k < stop; k++)
			ok = (e[k] & PM_PRESENT) &&
			     (e[k] & PM_PFN_MASK) ==
				     pfn0 + (addr + k * UMP_PAGE_SIZE - blk) / UMP_PAGE_SIZE;
		if (ok && !kpageflags_read(s->kpageflags_fd, e[i] & PM_PFN_MASK, &flags) &&
		    (flags & (1ull << KPF_THP))) {
			uint64_t mark =
				SNAPSHOT_RAW_THP |
				((flags & (1ull << KPF_ZERO_PAGE)) ? SNAPSHOT_RAW_HUGE_ZERO : 0);

			for (uint64_t k = i; k < stop; k++)
				e[k] |= mark;
		}
		i = stop;
	}
}

void snapshot_convert_vma(uint64_t *e, uint64_t n, const struct vma *v, uint64_t zero_pfn,
			  bool show_pfn)
{
	uint64_t pfn_mask = show_pfn ? UMP_E_PFN_MASK : 0;
	uint64_t huge = v->page_size > UMP_PAGE_SIZE ? UMP_E_HUGE : 0;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t x = e[i], out;

		if (x & PM_PRESENT) {
			uint64_t pfn = x & PM_PFN_MASK;
			bool zero = (zero_pfn && pfn == zero_pfn) || (x & SNAPSHOT_RAW_HUGE_ZERO);
			bool wp = x & PM_UFFD_WP;

			out = UMP_E_PRESENT | (pfn & pfn_mask) | huge;
			if (zero)
				out |= UMP_E_ZERO;
			if (x & PM_FILE)
				out |= UMP_E_FILE;
			if (x & PM_MMAP_EXCLUSIVE)
				out |= UMP_E_EXCL;
			if (wp)
				out |= UMP_E_UFFD_WP;
			if (x & SNAPSHOT_RAW_THP)
				out |= UMP_E_HUGE;
			/*
			 * A private mapping's file page not copied yet is
			 * exclusively mapped too (one mapper of the page
			 * cache page), but the CPU maps it read-only: the
			 * first write copies it. Only an anonymous page of a
			 * private mapping is written in place.
			 */
			if (v->write && !wp && !zero &&
			    (v->shared || ((x & PM_MMAP_EXCLUSIVE) && !(x & PM_FILE))))
				out |= UMP_E_WRITE;
		} else {
			out = pagemap_is_swap(x) ? UMP_E_SWAP | ((x & PM_FILE) ? UMP_E_FILE : 0)
						 : 0;
			/* an armed never-touched page (WP_UNPOPULATED marker) */
			if (x & PM_UFFD_WP)
				out |= UMP_E_UFFD_WP;
		}
		e[i] = out;
	}
}

int snapshot_fill(struct mm *mm, uint64_t start, uint64_t npages, uint64_t *out, bool show_pfn)
{
	/* beyond the address space: zero, the VMA walk makes these holes */
	if (pagemap_read_all(mm->pagemap_fd, start, npages, out) < 0) {
		fill(out, npages, UMP_E_HOLE);
		return -EFAULT;
	}
	return snapshot_convert(mm, start, npages, out, show_pfn);
}

int snapshot_convert(struct mm *mm, uint64_t start, uint64_t npages, uint64_t *out, bool show_pfn)
{
	struct server *s = mm->srv;
	struct vma_iter it = { .mm = mm };
	uint64_t end = start + npages * UMP_PAGE_SIZE, addr = start;
	bool hole = false, noperm = false;
	struct vma v;

	while (addr < end) {
		uint64_t seg, i = (addr - start) / UMP_PAGE_SIZE;
		int ret = vma_next(&it, addr, &v);

		if (ret && ret != -ENOENT) {
			log_debug("mm %llu: VMA walk: %s", (unsigned long long)mm->id,
				  strerror(-ret));
			fill(out + i, npages - i, UMP_E_HOLE);
			hole = true;
			break;
		}
		if (ret == -ENOENT || v.start >= end) {
			fill(out + i, npages - i, UMP_E_HOLE);
			hole = true;
			break;
		}
		if (v.start > addr) {
			fill(out + i, (v.start - addr) / UMP_PAGE_SIZE, UMP_E_HOLE);
			hole = true;
			addr = v.start;
			i = (addr - start) / UMP_PAGE_SIZE;
		}
		seg = ((v.end < end ? v.end : end) - addr) / UMP_PAGE_SIZE;
		if (!v.read) {
			fill(out + i, seg, UMP_E_NOPERM);
			noperm = true;
		} else {
			if (v.page_size <= UMP_PAGE_SIZE && s->kpageflags_fd >= 0)
				mark_thp(s, out + i, seg, addr);
			snapshot_convert_vma(out + i, seg, &v, s->kf.zero_pfn, show_pfn);
		}
		addr += seg * UMP_PAGE_SIZE;
	}
	vma_iter_done(&it);
	/* unmapped since insert: whatever is mapped there now is not tracked */
	for (unsigned int g = 0; g < mm->ngone; g++) {
		uint64_t gs = mm->gone[g].start > start ? mm->gone[g].start : start;
		uint64_t ge = mm->gone[g].end < end ? mm->gone[g].end : end;

		if (gs >= ge)
			continue;
		fill(out + (gs - start) / UMP_PAGE_SIZE, (ge - gs) / UMP_PAGE_SIZE, UMP_E_HOLE);
		hole = true;
	}
	return hole ? -EFAULT : noperm ? -EPERM : 0;
}

void snapshot_rearm_lost(struct interval *iv, uint64_t start, uint64_t npages, const uint64_t *e,
			 uint64_t seq)
{
	const uint64_t mask = UMP_E_PRESENT | UMP_E_UFFD_WP | UMP_E_WRITE | UMP_E_HOLE;

	/* odd: an invalidation in flight (a held WRITE unprotects such a page on purpose) */
	if (!interval_armed(iv) || (seq & 1) || iv->mm->dead)
		return;
	for (uint64_t i = 0; i < npages;) {
		uint64_t j = i;

		/*
		 * Copied on write: the zero page, a page shared copy-on-write,
		 * a file page (in a private mapping). An exclusive anonymous
		 * page that is not WRITE only lacks the VMA's permission: its
		 * writes keep the PFN.
		 */
		while (j < npages && (e[j] & mask) == UMP_E_PRESENT &&
		       ((e[j] & UMP_E_ZERO) || !(e[j] & UMP_E_EXCL) || (e[j] & UMP_E_FILE)))
			j++;
		if (j > i)
			mm_rearm_lost(iv->mm, start + i * UMP_PAGE_SIZE, start + j * UMP_PAGE_SIZE);
		i = j + 1;
	}
}

int snapshot_fill_interval(struct client *c, struct interval *iv, uint64_t start, uint64_t npages,
			   uint64_t seq)
{
	void (*handed)(struct interval *, uint64_t, uint64_t, const uint64_t *) =
		iv->mm->srv->hooks.handed;
	uint64_t *e = c->result;
	bool scanned = handed && iv->scan;
	int ret;

	/* the scan's identities carry the PFN: read it even when the client may not see it */
	ret = snapshot_fill(iv->mm, start, npages, e, c->pfn_visible || scanned);
	if (scanned) {
		handed(iv, start, npages, e);
		if (!c->pfn_visible)
			for (uint64_t i = 0; i < npages; i++)
				e[i] &= ~UMP_E_PFN_MASK;
	}
	snapshot_rearm_lost(iv, start, npages, e, seq);
	return ret;
}

int snapshot_request(struct client *c, const struct ump_snapshot *req,
		     struct ump_snapshot_reply *rep)
{
	uint64_t max = c->result_size / 8, n = req->npages;
	struct interval *iv = NULL;
	struct mm *mm;
	int ret;

	if (req->interval_id) {
		struct receiver *r;

		ret = receiver_access(c, req->interval_id, req->start,
				      req->start + req->npages * UMP_PAGE_SIZE, &r);
		if (ret)
			return ret;
		iv = r->iv;
		mm = iv->mm;
		rep->seq = interval_seq(iv);
	} else {
		mm = mm_find_pid(c->srv, req->pid);
		if (!mm)
			return -ESRCH;
		/* not -EPERM: that says a page is PROT_NONE */
		if (!client_may_see(c, mm->uid))
			return -EACCES;
		rep->seq = 0;
	}
	/* with nodes, int32 each after the entries (8-byte aligned as n * 8 is) */
	if (req->flags & UMP_SNAP_NODES)
		max = c->result_size / 12;
	if (n > max)
		n = max;
	rep->npages = n;
	rep->offset = 0;
	if (iv)
		ret = snapshot_fill_interval(c, iv, req->start, n, rep->seq);
	else
		ret = snapshot_fill(mm, req->start, n, c->result, c->pfn_visible);
	if (req->flags & UMP_SNAP_NODES) {
		rep->nodes_offset = n * 8;
		/* a failed query leaves -EFAULT per page; the entries still stand */
		place_nodes(mm, req->start, n, (int32_t *)((char *)c->result + n * 8));
	}
	return ret;
}
