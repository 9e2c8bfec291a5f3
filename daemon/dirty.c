/* SPDX-License-Identifier: MIT */
/*
 * dirty.c - which pages of an interval were written since re-armed.
 *
 * Three backends can see writes (struct interval.backend):
 *  UFFD_WP     a bit per page (iv->dirty), set where the daemon learns of
 *              a write anyway: the uffd-wp fault, every unprotect (write
 *              FAULTs too), REMOVE spans (zapped: the next touch is new),
 *              REMAP targets. Harvest is a bitmap walk; REARM clears the
 *              reported bits and write-protects exactly those pages, in
 *              the same loop step, so a later write faults and is logged.
 *  WP_ASYNC    the kernel keeps the log in the page tables: PAGEMAP_SCAN
 *              for PAGE_IS_WRITTEN, with PM_SCAN_WP_MATCHING to re-protect
 *              what it reports in the same ioctl. A zapped page may come
 *              back as an armed marker (not "written"), so REMOVE and
 *              REMAP spans are kept in the bitmap too and merged in.
 *  SOFT_DIRTY  pagemap bit 55; clear_refs is process-wide, so REARM first
 *              folds every soft-dirty interval of the mm into its bitmap.
 * SCAN cannot see writes at all: -EOPNOTSUPP, never "clean".
 *
 * Everything runs on the loop thread.
 */
#include "dirty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"
#include "mm.h"
#include "server.h"
#include "uapi_compat.h"

#define PAGE 4096ull
#define PM_CHUNK 512 /* pagemap entries per pread: 2 MiB of address space */

/* --- the bitmap ------------------------------------------------------------ */

static void bits_set(uint64_t *bm, uint64_t from, uint64_t to)
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

static void bits_clear(uint64_t *bm, uint64_t from, uint64_t to)
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

/* first index in [from, to) whose bit equals @set, or @to */
static uint64_t bits_next(const uint64_t *bm, uint64_t from, uint64_t to, bool set)
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

static uint64_t iv_pages(const struct interval *iv)
{
	return (iv->node.end - iv->node.start) / PAGE;
}

int dirty_log_alloc(struct interval *iv)
{
	if (iv->backend == UMP_BACKEND_SCAN)
		return 0;
	iv->dirty = calloc((iv_pages(iv) + 63) / 64, sizeof(uint64_t));
	return iv->dirty ? 0 : -ENOMEM;
}

void dirty_log_free(struct interval *iv)
{
	free(iv->dirty);
	iv->dirty = NULL;
}

void interval_mark_dirty(struct interval *iv, uint64_t start, uint64_t end)
{
	start &= ~(PAGE - 1);
	if (!iv->dirty)
		return;
	if (start < iv->node.start)
		start = iv->node.start;
	if (end > iv->node.end)
		end = iv->node.end;
	if (end <= start)
		return;
	bits_set(iv->dirty, (start - iv->node.start) / PAGE,
		 (end - iv->node.start + PAGE - 1) / PAGE);
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
	struct mark_walk w = { start & ~(PAGE - 1), end };

	if (end > w.start)
		itree_query(&mm->tree, w.start, end, mark_cb, &w);
}

/* --- arming without WP_UNPOPULATED ----------------------------------------- */

static int pagemap_read(struct mm *mm, uint64_t addr, uint64_t n, uint64_t *ents)
{
	ssize_t got = pread(mm->pagemap_fd, ents, n * 8, (off_t)(addr / PAGE * 8));

	if (got < 0)
		return -errno;
	return (uint64_t)got == n * 8 ? 0 : -EIO;
}

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
		uint64_t n = (end - a) / PAGE < PM_CHUNK ? (end - a) / PAGE : PM_CHUNK;

		ret = pagemap_read(mm, a, n, ents);
		if (ret)
			break;
		for (uint64_t i = 0; i < n;) {
			uint64_t j = i;

			while (j < n && !(ents[j] & (PM_PRESENT | PM_SWAP)))
				j++;
			if (j > i) {
				if (!buf && !(buf = malloc(PM_CHUNK * PAGE))) {
					ret = -ENOMEM;
					goto out;
				}
				/* the kernel faults each page in for the owner while it copies */
				if (pread(mm->mem_fd, buf, (j - i) * PAGE, (off_t)(a + i * PAGE)) < 0)
					log_debug("mm %llu: read-fault %#llx+%llu pages: %m",
						  (unsigned long long)mm->id,
						  (unsigned long long)(a + i * PAGE),
						  (unsigned long long)(j - i));
			}
			i = j < n ? j + 1 : n;
		}
		a += n * PAGE;
	}
out:
	free(buf);
	if (ret)
		log_warn("mm %llu: read-faulting before arming: %s", (unsigned long long)mm->id,
			 strerror(-ret));
	return ret;
}

/* --- soft-dirty ------------------------------------------------------------ */

int dirty_soft_open(struct mm *mm)
{
	char path[64];

	if (mm->clear_refs_fd >= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)mm->pid);
	mm->clear_refs_fd = open(path, O_WRONLY | O_CLOEXEC);
	return mm->clear_refs_fd < 0 ? -errno : 0;
}

/* OR pagemap's soft-dirty bits of [start, end) of @iv into its bitmap */
static int soft_fold(struct interval *iv, uint64_t start, uint64_t end)
{
	uint64_t ents[PM_CHUNK];

	for (uint64_t a = start; a < end;) {
		uint64_t n = (end - a) / PAGE < PM_CHUNK ? (end - a) / PAGE : PM_CHUNK;
		int ret = pagemap_read(iv->mm, a, n, ents);

		if (ret)
			return ret;
		for (uint64_t i = 0; i < n; i++)
			if (ents[i] & PM_SOFT_DIRTY)
				interval_mark_dirty(iv, a + i * PAGE, a + (i + 1) * PAGE);
		a += n * PAGE;
	}
	return 0;
}

/*
 * clear_refs 4 clears every soft-dirty bit of the process: first keep
 * what every soft-dirty interval of the mm has not harvested yet. A write
 * between the fold and the clear is logged in both places or neither: the
 * page is soft-dirty again after the clear only if written after it.
 */
static int soft_rearm(struct mm *mm)
{
	struct interval *iv;
	int ret;

	list_for_each_entry(iv, &mm->intervals, mm_link) {
		if (iv->backend != UMP_BACKEND_SOFT_DIRTY)
			continue;
		ret = soft_fold(iv, iv->node.start, iv->node.end);
		if (ret)
			return ret;
	}
	if (pwrite(mm->clear_refs_fd, "4", 1, 0) != 1)
		return -errno;
	return 0;
}

/* --- harvest ---------------------------------------------------------------- */

/*
 * Runs of set bits in [start, end) of @iv's log into @out (at most @max);
 * with @rearm clear them (and, UFFD_WP, write-protect them again).
 */
static uint64_t harvest_log(struct interval *iv, uint64_t start, uint64_t end, bool rearm,
			    bool wp, struct um_dirty_rec *out, uint64_t max, uint64_t *walk_end)
{
	uint64_t base = iv->node.start, p = (start - base) / PAGE, e = (end - base) / PAGE;
	struct mm_protect *protect = NULL;
	uint64_t n = 0, first;

	*walk_end = end;
	/* the re-arm takes WRITE from the mirrors holding those pages */
	if (rearm && wp && max && (first = bits_next(iv->dirty, p, e, true)) < e)
		protect = mm_protect_start(iv->mm, base + first * PAGE, end);
	while (p < e) {
		uint64_t q;

		p = bits_next(iv->dirty, p, e, true);
		if (p == e)
			break;
		if (n == max) {
			*walk_end = base + p * PAGE;
			break;
		}
		q = bits_next(iv->dirty, p, e, false);
		out[n].start = base + p * PAGE;
		out[n].end = base + q * PAGE;
		n++;
		if (rearm) {
			bits_clear(iv->dirty, p, q);
			/* on the loop thread: no fault is handled between harvest and arm */
			if (wp)
				mm_wp(iv->mm, base + p * PAGE, (q - p) * PAGE, true);
		}
		p = q;
	}
	mm_protect_armed(protect);
	return n;
}

static int harvest_scan(struct interval *iv, uint64_t start, uint64_t end, bool rearm,
			struct um_dirty_rec *out, uint64_t max, uint64_t *n_out,
			uint64_t *walk_end)
{
	struct page_region *vec;
	uint64_t n = 0, cur = start;
	int ret = 0;

	vec = malloc(max * sizeof(*vec));
	if (!vec)
		return -ENOMEM;
	while (cur < end && n < max) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.flags = rearm ? PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC : 0,
			.start = cur,
			.end = end,
			.vec = (uint64_t)(uintptr_t)vec,
			.vec_len = max - n,
			.max_pages = 0,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};
		long got = ioctl(iv->mm->pagemap_fd, PAGEMAP_SCAN, &arg);

		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got < 0) {
			/* PM_SCAN_CHECK_WPASYNC: part of it is not in WP_ASYNC mode */
			ret = errno == EPERM ? -EOPNOTSUPP : -errno;
			break;
		}
		if ((uint64_t)got > arg.vec_len) {
			ret = -EIO;
			break;
		}
		for (long i = 0; i < got; i++) {
			uint64_t s = vec[i].start, e = vec[i].end;

			if (s < cur || e > end || s >= e || (n && s < out[n - 1].end))
				continue; /* never trust more than we asked for */
			if (n && out[n - 1].end == s)
				out[n - 1].end = e;
			else
				out[n++] = (struct um_dirty_rec){ s, e };
		}
		/*
		 * A buffer not filled means the walk covered the range; walk_end
		 * alone is not to be trusted (6.18 returned regions beyond the
		 * walk_end it reported). Full: go on after what it reported.
		 */
		if ((uint64_t)got < arg.vec_len) {
			cur = end;
			break;
		}
		if (arg.walk_end > cur && arg.walk_end <= end)
			cur = arg.walk_end;
		if (n && out[n - 1].end > cur)
			cur = out[n - 1].end;
	}
	free(vec);
	*n_out = n;
	*walk_end = cur;
	return ret;
}

/*
 * WP_ASYNC: the scan's runs @out[0..*n) (all reported: they are re-armed
 * already) merged with the logged REMOVE/REMAP runs below @walk_end that
 * still fit in @max; those are cleared with @rearm, the others stay logged.
 */
static int merge_log(struct interval *iv, uint64_t start, uint64_t walk_end, bool rearm,
		     struct um_dirty_rec *out, uint64_t max, uint64_t *n)
{
	uint64_t room = max - *n, nb, i = 0, j = 0, k = 0, lw;
	struct um_dirty_rec *b, *m;

	if (!room)
		return 0;
	b = malloc(room * sizeof(*b));
	if (!b)
		return -ENOMEM;
	nb = harvest_log(iv, start, walk_end, rearm, false, b, room, &lw);
	m = malloc((*n + nb) * sizeof(*m) + 1);
	if (!m) {
		free(b);
		return -ENOMEM;
	}
	while (i < *n || j < nb) {
		struct um_dirty_rec r = j == nb || (i < *n && out[i].start <= b[j].start) ? out[i++]
											: b[j++];

		if (k && r.start <= m[k - 1].end) {
			if (r.end > m[k - 1].end)
				m[k - 1].end = r.end;
		} else {
			m[k++] = r;
		}
	}
	memcpy(out, m, k * sizeof(*m));
	*n = k;
	free(m);
	free(b);
	return 0;
}

int dirty_request(struct client *c, const struct um_dirty *req, struct um_dirty_reply *rep)
{
	struct um_dirty_rec *out = c->result;
	struct receiver *r;
	bool rearm = req->flags & UM_DIRTY_REARM;
	uint64_t max, n = 0, walk_end = req->start;
	struct interval *iv;
	struct mm *mm;
	int ret = 0;

	memset(rep, 0, sizeof(*rep));
	/* alignment and max_ranges > 0 were checked by the decoder */
	ret = receiver_access(c, req->interval_id, req->start, req->end, &r);
	if (ret)
		return ret;
	iv = r->iv;
	mm = iv->mm;
	rep->backend = iv->backend;
	max = c->result_size / sizeof(*out);
	if (req->max_ranges < max)
		max = req->max_ranges;
	if (!max)
		return -EINVAL;

	switch (iv->backend) {
	case UMP_BACKEND_UFFD_WP:
		if (!iv->dirty)
			return -EOPNOTSUPP;
		n = harvest_log(iv, req->start, req->end, rearm, true, out, max, &walk_end);
		break;
	case UMP_BACKEND_WP_ASYNC:
		ret = harvest_scan(iv, req->start, req->end, rearm, out, max, &n, &walk_end);
		if (!ret && iv->dirty)
			ret = merge_log(iv, req->start, walk_end, rearm, out, max, &n);
		break;
	case UMP_BACKEND_SOFT_DIRTY:
		if (!iv->dirty || mm->clear_refs_fd < 0)
			return -EOPNOTSUPP;
		ret = soft_fold(iv, req->start, req->end);
		if (!ret && rearm)
			ret = soft_rearm(mm);
		if (!ret)
			n = harvest_log(iv, req->start, req->end, rearm, false, out, max, &walk_end);
		break;
	default:
		/* the scan sees changes of mapping, never content: no "clean" from it */
		return -EOPNOTSUPP;
	}
	if (ret) {
		log_debug("mm %llu: dirty harvest of interval %llu: %s", (unsigned long long)mm->id,
			  (unsigned long long)iv->id, strerror(-ret));
		return ret;
	}
	rep->count = n;
	rep->offset = 0;
	rep->walk_end = walk_end;
	return 0;
}
