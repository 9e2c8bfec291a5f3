/* SPDX-License-Identifier: MIT */
/*
 * dirtylog.c - the dirty log: a bit per page of an interval written since
 * it was re-armed (dirty.c harvests and re-arms it), set where the daemon
 * learns of a write anyway; and the read-faulting of pages before an arm
 * on kernels without WP_UNPOPULATED.
 */
#include "dirtylog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pagemap.h"
#include "server_types.h"
#include "uapi_compat.h"

#define PM_CHUNK 512 /* pagemap entries per pread: 2 MiB of address space */

/* --- the bitmap ------------------------------------------------------------ */

void bits_set(uint64_t *bm, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to;) {
		if (!(i % 64) && to - i >= 64) {
			bm[i / 64] = ~0ull;
			i += 64;
			continue;
		}
		bm[i / 64] |= 1ull << (i % 64);
		i++;
	}
}

void bits_clear(uint64_t *bm, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to;) {
		if (!(i % 64) && to - i >= 64) {
			bm[i / 64] = 0;
			i += 64;
			continue;
		}
		bm[i / 64] &= ~(1ull << (i % 64));
		i++;
	}
}

uint64_t bits_next(const uint64_t *bm, uint64_t from, uint64_t to, bool set)
{
	uint64_t i = from;

	while (i < to) {
		uint64_t w = set ? bm[i / 64] : ~bm[i / 64];

		w &= ~0ull << (i % 64);
		if (w) {
			i = (i & ~63ull) + (uint64_t)__builtin_ctzll(w);
			return i < to ? i : to;
		}
		i = (i & ~63ull) + 64;
	}
	return to;
}

uint64_t iv_pages(const struct interval *iv)
{
	return (iv->node.end - iv->node.start) / UMP_PAGE_SIZE;
}

int dirty_log_alloc(struct interval *iv)
{
	uint64_t words = (iv_pages(iv) + 63) / 64;

	if (iv->backend == UMP_BACKEND_SCAN)
		return 0;
	/* most intervals are small: their log lives in the interval (B7's memory figure) */
	if (words == 1) {
		iv->dirty_small = 0;
		iv->dirty = &iv->dirty_small;
		return 0;
	}
	iv->dirty = calloc(words, sizeof(uint64_t));
	return iv->dirty ? 0 : -ENOMEM;
}

void dirty_log_free(struct interval *iv)
{
	if (iv->dirty != &iv->dirty_small)
		free(iv->dirty);
	iv->dirty = NULL;
}

void interval_mark_dirty(struct interval *iv, uint64_t start, uint64_t end)
{
	start &= ~(UMP_PAGE_SIZE - 1);
	if (!iv->dirty)
		return;
	if (start < iv->node.start)
		start = iv->node.start;
	if (end > iv->node.end)
		end = iv->node.end;
	if (end <= start)
		return;
	bits_set(iv->dirty, (start - iv->node.start) / UMP_PAGE_SIZE,
		 (end - iv->node.start + UMP_PAGE_SIZE - 1) / UMP_PAGE_SIZE);
}

struct mark_walk {
	uint64_t start, end;
};

static int mark_cb(struct itree_node *n, void *priv)
{
	struct mark_walk *w = priv;

	interval_mark_dirty((struct interval *)n, w->start, w->end);
	return 0;
}

void mm_mark_dirty(struct mm *mm, uint64_t start, uint64_t end)
{
	struct mark_walk w = { start & ~(UMP_PAGE_SIZE - 1), end };

	if (end > w.start)
		itree_query(&mm->tree, w.start, end, mark_cb, &w);
}

static int unprotected_cb(struct itree_node *n, void *priv)
{
	struct interval *iv = (struct interval *)n;
	struct mark_walk *w = priv;

	interval_mark_dirty(iv, w->start, w->end);
	/*
	 * A soft-dirty page unprotected in the middle of a harvest (its
	 * fault read while the harvest waited for an event) may be written
	 * again before the clear wipes its bit: the scan must hear of it.
	 */
	if (iv->backend == UMP_BACKEND_SOFT_DIRTY && iv->mm->srv->hooks.soft_written)
		iv->mm->srv->hooks.soft_written(iv, w->start, w->end);
	return 0;
}

void mm_mark_unprotected(struct mm *mm, uint64_t start, uint64_t end)
{
	struct mark_walk w = { start & ~(UMP_PAGE_SIZE - 1), end };

	if (end > w.start)
		itree_query(&mm->tree, w.start, end, unprotected_cb, &w);
}

/* --- arming without WP_UNPOPULATED ----------------------------------------- */

int mm_prefault(struct mm *mm, uint64_t start, uint64_t end)
{
	uint64_t ents[PM_CHUNK];
	char *buf = NULL;
	int ret = 0;

	if (mm->uffd_features & UFFD_FEATURE_WP_UNPOPULATED)
		return 0;
	if (mm->dead || mm->mem_fd < 0 || mm->pagemap_fd < 0)
		return -EBADF;
	for (uint64_t a = start; a < end;) {
		uint64_t n =
			(end - a) / UMP_PAGE_SIZE < PM_CHUNK ? (end - a) / UMP_PAGE_SIZE : PM_CHUNK;

		ret = pagemap_read(mm->pagemap_fd, a, n, ents);
		if (ret)
			break;
		for (uint64_t i = 0; i < n;) {
			uint64_t j = i;

			while (j < n && !(ents[j] & (PM_PRESENT | PM_SWAP)))
				j++;
			if (j > i) {
				if (!buf && !(buf = malloc(PM_CHUNK * UMP_PAGE_SIZE))) {
					ret = -ENOMEM;
					goto out;
				}
				/* the kernel faults each page in for the owner while it copies */
				if (pread(mm->mem_fd, buf, (j - i) * UMP_PAGE_SIZE,
					  (off_t)(a + i * UMP_PAGE_SIZE)) < 0)
					log_debug("mm %llu: read-fault %#llx+%llu pages: %m",
						  (unsigned long long)mm->id,
						  (unsigned long long)(a + i * UMP_PAGE_SIZE),
						  (unsigned long long)(j - i));
			}
			i = j < n ? j + 1 : n;
		}
		a += n * UMP_PAGE_SIZE;
	}
out:
	free(buf);
	if (ret)
		log_warn("mm %llu: read-faulting before arming: %s", (unsigned long long)mm->id,
			 strerror(-ret));
	return ret;
}
