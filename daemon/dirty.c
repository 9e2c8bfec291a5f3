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
 *              what it reports in the same ioctl, under a PROTECT
 *              invalidation from the first written page on (a look
 *              without re-protecting finds it first). A zapped page may come
 *              back as an armed marker (not "written"), so REMOVE and
 *              REMAP spans are kept in the bitmap too and merged in.
 *  SOFT_DIRTY  pagemap bit 55, harvested into the bitmap. clear_refs is
 *              process-wide, so one harvest per address space feeds
 *              every soft-dirty interval's log and scan; writers are held
 *              by a uffd-wp window while bits are read and cleared, and
 *              zaps come as REMOVE events (the memory is registered on
 *              the owner's uffd, protected only during the window).
 *              REARM clears the reported bits of the log.
 * SCAN cannot see writes at all: -EOPNOTSUPP, never "clean".
 *
 * Everything runs on the loop thread.
 */
#include "dirty.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "dirtylog.h"
#include "gone.h"
#include "log.h"
#include "lookup.h"
#include "pagemap.h"
#include "peer.h"
#include "protect.h"
#include "vma.h"
#include "wp.h"
#include "uapi_compat.h"

#define SD_CHUNK 4096 /* the harvest's reads: 16 MiB of address space each */

/* --- soft-dirty ------------------------------------------------------------ */

/* the memory kinds whose writes bit 55 shows through the harvest's window */
static int soft_fits_cb(const struct vma *v, void *priv)
{
	const struct kfeat *kf = priv;

	/* hugetlb has no soft-dirty bit per page: clear_refs skips it */
	if (v->page_size != UMP_PAGE_SIZE)
		return 1;
	return (v->shared ? kf->soft_dirty_shmem : kf->soft_dirty_anon) ? 0 : 1;
}

bool dirty_soft_fits(struct mm *mm, uint64_t start, uint64_t end)
{
	const struct kfeat *kf = &mm->srv->kf;

	if (!kf->soft_dirty || !(kf->soft_dirty_anon || kf->soft_dirty_shmem))
		return false;
	/*
	 * A user-mode-only uffd does not hold the kernel's own writes
	 * (read(2) into the memory) during the window: they would fail with
	 * EFAULT, now and then, whenever a harvest runs.
	 */
	if (mm->uffd_user_only)
		return false;
	return vma_walk(mm, start, end, soft_fits_cb, (void *)kf) == 0;
}

/* the owner still runs: the /proc files just opened are its, not a new process's */
static bool owner_alive(struct mm *mm)
{
	struct pollfd p = { .fd = mm->pidfd, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

int dirty_soft_open(struct mm *mm)
{
	char path[64];

	if (mm->clear_refs_fd >= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)mm->pid);
	mm->clear_refs_fd = open(path, O_WRONLY | O_CLOEXEC);
	if (mm->clear_refs_fd < 0)
		return -errno;
	if (mm->canary) {
		/* without it the harvest works, blind to other clear_refs writers */
		snprintf(path, sizeof(path), "/proc/%d/mem", (int)mm->pid);
		mm->canary_fd = open(path, O_WRONLY | O_CLOEXEC);
		if (mm->canary_fd < 0)
			log_warn("mm %llu: %s for the soft-dirty canary: %m",
				 (unsigned long long)mm->id, path);
	}
	if (!owner_alive(mm)) {
		close(mm->clear_refs_fd);
		if (mm->canary_fd >= 0)
			close(mm->canary_fd);
		mm->clear_refs_fd = mm->canary_fd = -1;
		return -ESRCH;
	}
	return 0;
}

static int any_cb(struct itree_node *n, void *priv)
{
	(void)n;
	(void)priv;
	return 1;
}

/*
 * Right after our clear: write the canary (the owner's page that nothing
 * else writes), which sets its bit 55 again; only a clear by someone else
 * can take it away before our next one.
 */
static void canary_write(struct mm *mm)
{
	static const char one = 1;
	uint64_t e;

	mm->canary_set = false;
	if (mm->canary_fd < 0)
		return;
	/*
	 * A write to a write-protected page would wait for this very thread:
	 * never there (an interval over the library's page, a window).
	 */
	if (itree_query(&mm->tree, mm->canary, mm->canary + UMP_PAGE_SIZE, any_cb, NULL) ||
	    pagemap_read_all(mm->pagemap_fd, mm->canary, 1, &e) || (e & PM_UFFD_WP))
		return;
	if (pwrite(mm->canary_fd, &one, 1, (off_t)mm->canary) == 1) {
		mm->canary_set = true;
		return;
	}
	/* the page is gone (a misbehaving owner): no detection from now on */
	log_warn("mm %llu: soft-dirty canary %#llx not writable (%m): another clear_refs "
		 "writer would go unnoticed",
		 (unsigned long long)mm->id, (unsigned long long)mm->canary);
	close(mm->canary_fd);
	mm->canary_fd = -1;
}

/* did a clear_refs by someone else take bits since our last clear? */
static bool canary_lost(struct mm *mm)
{
	uint64_t e;

	if (!mm->canary_set || pagemap_read_all(mm->pagemap_fd, mm->canary, 1, &e))
		return false;
	return !(e & PM_SOFT_DIRTY);
}

/* pages [@start, @end) of @iv were written: its log and its scan learn it */
static void soft_mark(struct interval *iv, uint64_t start, uint64_t end)
{
	interval_mark_dirty(iv, start, end);
	if (iv->mm->srv->hooks.soft_written)
		iv->mm->srv->hooks.soft_written(iv, start, end);
}

struct soft_wp {
	struct mm *mm;
	struct interval *iv; /* protect: whose log takes what cannot be protected */
	bool wp;
	int err;
};

static int soft_wp_failed(uint64_t a, uint64_t b, int err, void *priv)
{
	struct soft_wp *w = priv;

	if (err == -EFAULT)
		return err;
	/* a part unmapped since insert is a hole to every mirror, as for uffd-wp */
	if (w->wp && !mm_gone(w->mm, a, b)) {
		/* not registered (mapped there after insert), or refused: cannot be seen */
		log_debug("mm %llu: soft-dirty window %#llx-%#llx: %s: counted written",
			  (unsigned long long)w->mm->id, (unsigned long long)a,
			  (unsigned long long)b, strerror(-err));
		soft_mark(w->iv, a, b);
	} else if (err != -ENOENT && !w->err) {
		w->err = err;
	}
	return 0;
}

/*
 * Protect (@wp) or unprotect [@start, @end) now (mm_wp_wait(): VMA by VMA
 * where the kernel wants that, Linux 6.1). With @wp, a part that cannot be
 * protected is counted written in @iv (its writes would go unseen in the
 * window). Return: 0, -EFAULT the owner died, or (unprotect) the first
 * error.
 */
static int soft_wp(struct mm *mm, struct interval *iv, uint64_t start, uint64_t end, bool wp)
{
	struct soft_wp w = { mm, iv, wp, 0 };
	int ret = mm_wp_wait(mm, start, end, wp, soft_wp_failed, &w);

	if (ret < 0 && ret != -EFAULT && wp)
		soft_mark(iv, start, end); /* VMAs unreadable: nothing is known */
	return ret < 0 ? ret : w.err;
}

struct gap_walk {
	struct mm *mm;
	struct interval *iv; /* the soft-dirty interval whose window this is */
	uint64_t cursor, end;
	bool wp;
	int err;
};

static void soft_window_part(struct gap_walk *g, uint64_t a, uint64_t b)
{
	int ret;

	if (b <= a || g->err)
		return;
	ret = soft_wp(g->mm, g->iv, a, b, g->wp);
	if (ret == -EFAULT) {
		g->err = ret;
		return;
	}
	if (ret && !g->wp) {
		/* the writers wait there: hand it to the queue that retries (and logs) */
		log_debug("mm %llu: soft-dirty window %#llx-%#llx not lifted: %s, queued",
			  (unsigned long long)g->mm->id, (unsigned long long)a,
			  (unsigned long long)b, strerror(-ret));
		mm_wp(g->mm, a, b - a, false);
	}
}

static int window_gap_cb(struct itree_node *n, void *priv)
{
	struct interval *iv = (struct interval *)n;
	struct gap_walk *g = priv;

	if (!interval_armed(iv))
		return 0;
	if (n->start > g->cursor)
		soft_window_part(g, g->cursor, n->start < g->end ? n->start : g->end);
	if (n->end > g->cursor)
		g->cursor = n->end;
	return 0;
}

/*
 * Raise (@wp) or lift the window over @iv, except where a UFFD_WP interval
 * covers it: its protection is its own (re-arming a page a mirror may hold
 * writable needs an invalidation first), and a page it leaves writable is
 * counted written at each harvest instead (soft_read_first()).
 * Return: 0, or -EFAULT the owner died.
 */
static int soft_window(struct mm *mm, struct interval *iv, bool wp)
{
	struct gap_walk g = { mm, iv, iv->node.start, iv->node.end, wp, 0 };

	itree_query(&mm->tree, iv->node.start, iv->node.end, window_gap_cb, &g);
	if (g.cursor < iv->node.end)
		soft_window_part(&g, g.cursor, iv->node.end);
	return g.err;
}

/* what the first read of a harvest keeps of a page: 2 bits, not a pagemap entry */
struct soft_first {
	uint64_t *dirty; /* bit 55 was set */
	uint64_t *empty; /* neither present nor swapped */
};

/*
 * The first read of @iv (window up, before the clear) into @f. A mapped
 * page without uffd-wp can be written unseen between this read and the
 * clear (one a UFFD_WP interval left writable, one the window could not
 * protect): it counts as written.
 */
static int soft_read_first(struct interval *iv, struct soft_first *f)
{
	uint64_t ents[SD_CHUNK], n = iv_pages(iv);

	for (uint64_t i = 0; i < n; i += SD_CHUNK) {
		uint64_t k = n - i < SD_CHUNK ? n - i : SD_CHUNK,
			 a = iv->node.start + i * UMP_PAGE_SIZE;
		int ret = pagemap_read_all(iv->mm->pagemap_fd, a, k, ents);
		/* a part unmapped since insert is a hole to every mirror, as for uffd-wp */
		bool gone = mm_gone(iv->mm, a, a + k * UMP_PAGE_SIZE);

		if (ret)
			return ret;
		for (uint64_t j = 0; j < k; j++) {
			bool open = (ents[j] & (PM_PRESENT | PM_SWAP)) && !(ents[j] & PM_UFFD_WP);

			if (open && gone)
				open = !mm_gone(iv->mm, a + j * UMP_PAGE_SIZE,
						a + (j + 1) * UMP_PAGE_SIZE);
			if ((ents[j] & PM_SOFT_DIRTY) || open)
				f->dirty[(i + j) / 64] |= 1ull << ((i + j) % 64);
			if (!(ents[j] & (PM_PRESENT | PM_SWAP)))
				f->empty[(i + j) / 64] |= 1ull << ((i + j) % 64);
		}
	}
	return 0;
}

static bool bit(const uint64_t *bm, uint64_t i)
{
	return bm[i / 64] >> (i % 64) & 1;
}

bool dirty_soft_written(bool first_dirty, bool first_empty, bool unread, uint64_t ent,
			uint64_t zero_pfn)
{
	if (first_dirty)
		return true;
	if (!first_empty)
		return false;
	return unread || ((ent & PM_PRESENT) && (!zero_pfn || (ent & PM_PFN_MASK) != zero_pfn));
}

/*
 * Which pages of @iv were written (second read, after the clear): bit 55
 * at the first read, or a page that appeared where the first read found
 * nothing: without WP_UNPOPULATED an empty page cannot be protected, and
 * its first write makes a soft-dirty page the clear may have wiped. A read
 * fault maps the zero page, which is not counted. An unreadable second
 * read counts every page that was empty.
 */
static void soft_fold(struct interval *iv, const struct soft_first *f)
{
	uint64_t zero = iv->mm->srv->kf.zero_pfn, n = iv_pages(iv), run = 0;
	uint64_t ents[SD_CHUNK] = { 0 };
	bool in_run = false, unread = false;

	for (uint64_t i = 0; i <= n; i++) {
		bool w = false;

		if (i < n && !(i % SD_CHUNK) && !unread) {
			uint64_t k = n - i < SD_CHUNK ? n - i : SD_CHUNK;

			unread = pagemap_read_all(iv->mm->pagemap_fd,
						  iv->node.start + i * UMP_PAGE_SIZE, k, ents);
		}
		if (i < n)
			w = dirty_soft_written(bit(f->dirty, i), bit(f->empty, i), unread,
					       ents[i % SD_CHUNK], zero);
		if (w && !in_run)
			run = i;
		else if (!w && in_run)
			soft_mark(iv, iv->node.start + run * UMP_PAGE_SIZE,
				  iv->node.start + i * UMP_PAGE_SIZE);
		in_run = w;
	}
}

/*
 * clear_refs 4 clears bit 55 in the whole process, so every soft-dirty
 * interval of @mm is harvested together, into each one's log and scan
 * bitmap, and no interval (or scan) re-arming can make another lose a
 * write. Reading the bits and clearing them is not one step, so writers
 * are held meanwhile: the window write-protects the intervals on the
 * owner's uffd (a writer faults and waits, its write lands after the
 * clear and sets the bit again), then bits are read, cleared, read again
 * (pages that appeared), and the window is lifted. @fresh (an interval
 * being inserted) takes part in the window but learns nothing from the
 * bits: its baseline is this clear.
 */
/* the bitmaps of soft_read_first() for each soft-dirty interval of @mm, in order */
static int soft_first_alloc(struct mm *mm, struct soft_first *first)
{
	struct interval *iv;
	unsigned int i = 0;

	list_for_each_entry (iv, &mm->intervals, mm_link) {
		if (iv->backend != UMP_BACKEND_SOFT_DIRTY)
			continue;
		first[i].dirty = calloc((iv_pages(iv) + 63) / 64, 8);
		first[i].empty = calloc((iv_pages(iv) + 63) / 64, 8);
		if (!first[i].dirty || !first[i++].empty)
			return -ENOMEM;
	}
	return 0;
}

/* the window of every soft-dirty interval of @mm up (@wp) or down; -EFAULT: owner gone */
static int soft_windows(struct mm *mm, bool wp)
{
	struct interval *iv;

	list_for_each_entry (iv, &mm->intervals, mm_link) {
		if (iv->backend != UMP_BACKEND_SOFT_DIRTY)
			continue;
		if (soft_window(mm, iv, wp) == -EFAULT)
			return -EFAULT;
	}
	return 0;
}

static int soft_harvest(struct mm *mm, struct interval *fresh)
{
	struct soft_first *first;
	struct interval *iv;
	unsigned int n = 0, i;
	bool stolen;
	int ret = 0, err;

	if (mm->dead)
		return -EFAULT;
	list_for_each_entry (iv, &mm->intervals, mm_link)
		n += iv->backend == UMP_BACKEND_SOFT_DIRTY;
	if (!n)
		return 0;
	if (mm->clear_refs_fd < 0)
		return -EBADF;
	first = calloc(n, sizeof(*first));
	if (!first)
		return -ENOMEM;
	ret = soft_first_alloc(mm, first);
	if (ret)
		goto out;
	/* window up: from here every write to these pages waits for us */
	ret = soft_windows(mm, true);
	if (ret)
		goto out;
	i = 0;
	list_for_each_entry (iv, &mm->intervals, mm_link) {
		if (iv->backend != UMP_BACKEND_SOFT_DIRTY)
			continue;
		ret = soft_read_first(iv, &first[i++]);
		if (ret)
			goto window_off; /* nothing cleared: nothing lost */
	}
	/* after the reads: a clear by someone else during them shows too */
	stolen = canary_lost(mm);
	if (pwrite(mm->clear_refs_fd, "4", 1, 0) != 1) {
		ret = -errno;
		goto window_off; /* the bits stay: the next harvest sees them */
	}
	canary_write(mm);
	if (stolen) {
		mm->sd_stolen++;
		log_warn("mm %llu (pid %d): another process cleared its soft-dirty bits "
			 "(/proc/PID/clear_refs: CRIU?): every soft-dirty interval counted written",
			 (unsigned long long)mm->id, (int)mm->pid);
	}
	i = 0;
	list_for_each_entry (iv, &mm->intervals, mm_link) {
		if (iv->backend != UMP_BACKEND_SOFT_DIRTY)
			continue;
		if (iv != fresh)
			soft_fold(iv, &first[i]);
		/* the writes before that clear are lost: never "clean" */
		if (iv != fresh && stolen)
			soft_mark(iv, iv->node.start, iv->node.end);
		i++;
	}
window_off:
	err = soft_windows(mm, false);
	if (err)
		ret = err;
out:
	for (i = 0; i < n; i++) {
		free(first[i].dirty);
		free(first[i].empty);
	}
	free(first);
	if (ret)
		log_debug("mm %llu: soft-dirty harvest: %s", (unsigned long long)mm->id,
			  strerror(-ret));
	return ret;
}

int dirty_soft_harvest(struct mm *mm)
{
	return soft_harvest(mm, NULL);
}

void dirty_soft_baseline(struct interval *iv)
{
	int ret = soft_harvest(iv->mm, iv);

	if (ret) {
		/* no clean start: never "clean" where nothing is known */
		log_warn("mm %llu: interval %llu: no soft-dirty baseline (%s): all counted written",
			 (unsigned long long)iv->mm->id, (unsigned long long)iv->id,
			 strerror(-ret));
		interval_mark_dirty(iv, iv->node.start, iv->node.end);
	}
}

/* --- harvest ---------------------------------------------------------------- */

/*
 * Runs of set bits in [start, end) of @iv's log into @out (at most @max);
 * with @rearm clear them (and, UFFD_WP, write-protect them again).
 */
static uint64_t harvest_log(struct interval *iv, uint64_t start, uint64_t end, bool rearm, bool wp,
			    struct ump_dirty_rec *out, uint64_t max, uint64_t *walk_end)
{
	uint64_t base = iv->node.start, p = (start - base) / UMP_PAGE_SIZE,
		 e = (end - base) / UMP_PAGE_SIZE;
	struct mm_protect *protect = NULL;
	uint64_t n = 0, first;

	*walk_end = end;
	/* the re-arm takes WRITE from the mirrors holding those pages */
	if (rearm && wp && max && (first = bits_next(iv->dirty, p, e, true)) < e)
		protect = mm_protect_start(iv->mm, base + first * UMP_PAGE_SIZE, end);
	while (p < e) {
		uint64_t q;

		p = bits_next(iv->dirty, p, e, true);
		if (p == e)
			break;
		if (n == max) {
			*walk_end = base + p * UMP_PAGE_SIZE;
			break;
		}
		q = bits_next(iv->dirty, p, e, false);
		out[n].start = base + p * UMP_PAGE_SIZE;
		out[n].end = base + q * UMP_PAGE_SIZE;
		n++;
		if (rearm) {
			bits_clear(iv->dirty, p, q);
			/* on the loop thread: no fault is handled between harvest and arm */
			if (wp)
				mm_wp(iv->mm, base + p * UMP_PAGE_SIZE, (q - p) * UMP_PAGE_SIZE,
				      true);
		}
		p = q;
	}
	/* what was re-protected is what was reported (with @wp: all of it, no log merged) */
	mm_protect_armed_runs(protect, out, n);
	return n;
}

/* the first page of [start, end) WP_ASYNC has seen written, @end if none */
static int first_written(struct interval *iv, uint64_t start, uint64_t end, uint64_t *first)
{
	/* zeroed: memcheck does not know that PAGEMAP_SCAN fills the vector */
	struct page_region r = { 0 };
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = start,
		.end = end,
		.vec = (uint64_t)(uintptr_t)&r,
		.vec_len = 1,
		.max_pages = 1,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
	long got;

	do
		got = ioctl(iv->mm->pagemap_fd, PAGEMAP_SCAN, &arg);
	while (got < 0 && (errno == EINTR || errno == EAGAIN));
	if (got < 0)
		return -errno;
	*first = end;
	if (got == 1 && r.start >= start && r.start < end)
		*first = r.start;
	return 0;
}

uint64_t dirty_add_regions(struct ump_dirty_rec *out, uint64_t n, const struct page_region *vec,
			   long got, uint64_t cur, uint64_t end)
{
	for (long i = 0; i < got; i++) {
		uint64_t s = vec[i].start, e = vec[i].end;

		if (s < cur || e > end || s >= e || (n && s < out[n - 1].end))
			continue; /* never trust more than we asked for */
		if (n && out[n - 1].end == s)
			out[n - 1].end = e;
		else
			out[n++] = (struct ump_dirty_rec){ s, e };
	}
	return n;
}

static int harvest_scan(struct interval *iv, uint64_t start, uint64_t end, bool rearm,
			struct ump_dirty_rec *out, uint64_t max, uint64_t *n_out,
			uint64_t *walk_end)
{
	struct mm_protect *protect = NULL;
	struct page_region *vec;
	uint64_t n = 0, cur = start;
	int ret = 0;

	/*
	 * The re-arm (PM_SCAN_WP_MATCHING) takes WRITE from the mirrors that
	 * may hold those pages, this interval's first: a PROTECT invalidation
	 * from the first page written on, started before the scan protects
	 * anything, as for UFFD_WP. A page written before that one only after
	 * this look is left for the next harvest (still logged by the kernel).
	 */
	if (rearm) {
		ret = first_written(iv, start, end, &cur);
		if (ret)
			return ret == -EPERM ? -EOPNOTSUPP : ret;
		if (cur < end)
			protect = mm_protect_start(iv->mm, cur, end);
	}
	vec = calloc(max, sizeof(*vec)); /* zeroed for memcheck, as above */
	if (!vec) {
		mm_protect_armed(protect);
		return -ENOMEM;
	}
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
		n = dirty_add_regions(out, n, vec, got, cur, end);
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
	/* applied by the scan itself, to exactly what it reported: the invalidation may complete */
	mm_protect_armed_runs(protect, out, n);
	*n_out = n;
	*walk_end = cur;
	return ret;
}

uint64_t dirty_merge_runs(const struct ump_dirty_rec *a, uint64_t na, const struct ump_dirty_rec *b,
			  uint64_t nb, struct ump_dirty_rec *out)
{
	uint64_t i = 0, j = 0, k = 0;

	while (i < na || j < nb) {
		struct ump_dirty_rec r =
			j == nb || (i < na && a[i].start <= b[j].start) ? a[i++] : b[j++];

		if (k && r.start <= out[k - 1].end) {
			if (r.end > out[k - 1].end)
				out[k - 1].end = r.end;
		} else {
			out[k++] = r;
		}
	}
	return k;
}

/*
 * WP_ASYNC: the scan's runs @out[0..*n) (all reported: they are re-armed
 * already) merged with the logged REMOVE/REMAP runs below @walk_end that
 * still fit in @max; those are cleared with @rearm, the others stay logged.
 */
static int merge_log(struct interval *iv, uint64_t start, uint64_t walk_end, bool rearm,
		     struct ump_dirty_rec *out, uint64_t max, uint64_t *n)
{
	uint64_t room = max - *n, nb, lw;
	struct ump_dirty_rec *b, *m;

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
	*n = dirty_merge_runs(out, *n, b, nb, m);
	memcpy(out, m, *n * sizeof(*m));
	free(m);
	free(b);
	return 0;
}

int dirty_request(struct client *c, const struct ump_dirty *req, struct ump_dirty_reply *rep)
{
	struct ump_dirty_rec *out = c->result;
	struct receiver *r;
	bool rearm = req->flags & UMP_DIRTY_REARM;
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
		/* every soft-dirty interval's bits into its log; REARM is then the log's */
		ret = dirty_soft_harvest(mm);
		if (!ret)
			n = harvest_log(iv, req->start, req->end, rearm, false, out, max,
					&walk_end);
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
