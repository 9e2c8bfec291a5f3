/* SPDX-License-Identifier: MIT */
/*
 * oracle.c - ground truth for umirror-check: the kernel's own view of the
 * window (/proc/self/pagemap, the VMAs through PROCMAP_QUERY or
 * /proc/self/maps, /proc/kpageflags), and what docs/SEMANTICS.md says a
 * snapshot entry must be for it. Written from the document, not from the
 * daemon: where the two disagree, the checker reports it.
 */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* swap-format pagemap entries of a real swap area have a type below this */
#define MAX_SWAPFILES 24

/* bits of a pagemap entry the kernel leaves zero, used between passes */
#define RAW_THP (1ull << 60)
#define RAW_HUGE_ZERO (1ull << 59)

static int pagemap_fd = -1, maps_fd = -1, kpageflags_fd = -1;
static bool have_query = true;

void oracle_init(struct oracle *o, uint64_t base, size_t n)
{
	memset(o, 0, sizeof(*o));
	o->base = base;
	o->n = n;
	o->pm = calloc(n, sizeof(*o->pm));
	o->vi = calloc(n, sizeof(*o->vi));
	o->capv = 64;
	o->v = calloc(o->capv, sizeof(*o->v));
	CHECK(o->pm && o->vi && o->v, "oracle: out of memory");
}

void oracle_free(struct oracle *o)
{
	free(o->pm);
	free(o->vi);
	free(o->v);
	memset(o, 0, sizeof(*o));
}

static void add_vma(struct oracle *o, uint64_t start, uint64_t end, uint32_t flags)
{
	uint64_t wend = o->base + o->n * PAGE;

	if (o->nv == o->capv) {
		o->capv *= 2;
		o->v = realloc(o->v, o->capv * sizeof(*o->v));
		CHECK(o->v, "oracle: out of memory");
	}
	o->v[o->nv] = (struct ovma){ start, end, flags };
	for (uint64_t a = start > o->base ? start : o->base; a < end && a < wend; a += PAGE)
		o->vi[(a - o->base) / PAGE] = (int32_t)o->nv;
	o->nv++;
}

/* the VMAs meeting the window through PROCMAP_QUERY (Linux 6.11) */
static int read_vmas_query(struct oracle *o)
{
	uint64_t addr = o->base, wend = o->base + o->n * PAGE;

	while (addr < wend) {
		struct procmap_query q = {
			.size = sizeof(q),
			.query_flags = PROCMAP_QUERY_COVERING_OR_NEXT_VMA,
			.query_addr = addr,
		};
		uint32_t f = 0;

		if (ioctl(maps_fd, PROCMAP_QUERY, &q) < 0)
			return errno == ENOENT ? 0 : -errno;
		if (q.vma_start >= wend)
			break;
		if (q.vma_flags & PROCMAP_QUERY_VMA_READABLE)
			f |= OV_R;
		if (q.vma_flags & PROCMAP_QUERY_VMA_WRITABLE)
			f |= OV_W;
		if (q.vma_flags & PROCMAP_QUERY_VMA_SHARED)
			f |= OV_S;
		if (q.vma_page_size > PAGE)
			f |= OV_HUGETLB;
		add_vma(o, q.vma_start, q.vma_end, f);
		addr = q.vma_end;
	}
	return 0;
}

/* the same from the text of /proc/self/maps (kernels before 6.11) */
static int read_vmas_text(struct oracle *o)
{
	uint64_t wend = o->base + o->n * PAGE;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char perms[8];
		uint64_t s, e;
		uint32_t fl = 0;

		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s", &s, &e, perms) != 3)
			continue;
		if (e <= o->base || s >= wend)
			continue;
		fl |= perms[0] == 'r' ? OV_R : 0;
		fl |= perms[1] == 'w' ? OV_W : 0;
		fl |= perms[3] == 's' ? OV_S : 0;
		fl |= strstr(line, "/anon_hugepage") || strstr(line, "hugetlb") ? OV_HUGETLB : 0;
		add_vma(o, s, e, fl);
	}
	fclose(f);
	return 0;
}

int oracle_read(struct oracle *o)
{
	size_t len = o->n * sizeof(uint64_t);
	int ret;

	if (pagemap_fd < 0) {
		pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		maps_fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
		kpageflags_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
		if (pagemap_fd < 0 || maps_fd < 0)
			return -errno;
	}
	if (pread(pagemap_fd, o->pm, len, (off_t)(o->base / PAGE * 8)) != (ssize_t)len)
		return -EIO;
	for (size_t i = 0; i < o->n; i++)
		o->vi[i] = -1;
	o->nv = 0;
	if (have_query) {
		ret = read_vmas_query(o);
		if (ret != -ENOTTY && ret != -EINVAL)
			return ret;
		have_query = false;
		o->nv = 0;
		for (size_t i = 0; i < o->n; i++)
			o->vi[i] = -1;
	}
	return read_vmas_text(o);
}

bool oracle_same(const struct oracle *a, const struct oracle *b)
{
	if (a->nv != b->nv || memcmp(a->pm, b->pm, a->n * sizeof(*a->pm)))
		return false;
	/* field by field: struct ovma has padding */
	for (size_t i = 0; i < a->nv; i++)
		if (a->v[i].start != b->v[i].start || a->v[i].end != b->v[i].end ||
		    a->v[i].flags != b->v[i].flags)
			return false;
	return true;
}

void oracle_copy(struct oracle *dst, const struct oracle *src)
{
	if (dst->capv < src->nv) {
		dst->capv = src->capv;
		dst->v = realloc(dst->v, dst->capv * sizeof(*dst->v));
		CHECK(dst->v, "oracle: out of memory");
	}
	memcpy(dst->pm, src->pm, src->n * sizeof(*src->pm));
	memcpy(dst->vi, src->vi, src->n * sizeof(*src->vi));
	memcpy(dst->v, src->v, src->nv * sizeof(*src->v));
	dst->nv = src->nv;
}

uint32_t oracle_vma(const struct oracle *o, size_t w)
{
	return o->vi[w] < 0 ? 0 : o->v[o->vi[w]].flags | OV_MAPPED;
}

/*
 * SEMANTICS "SNAPSHOT", THP: a present page of a 4 KiB-page VMA is HUGE
 * when the part of its 2 MiB block that lies in both the VMA and the
 * asked range maps consecutive PFNs from a 512-aligned one and kpageflags
 * says that PFN is THP (the huge zero page too: then also ZERO).
 */
static void mark_thp(uint64_t *e, size_t n, uint64_t addr)
{
	size_t i = 0;

	while (i < n) {
		uint64_t a = addr + i * PAGE, blk = a & ~(HPAGE - 1), pfn0, flags;
		size_t stop = i + (blk + HPAGE - a) / PAGE;
		bool ok = e[i] & PM_PRESENT;

		if (stop > n)
			stop = n;
		pfn0 = (e[i] & PM_PFN_MASK) - (a - blk) / PAGE;
		if (pfn0 & (HPAGE_PAGES - 1))
			ok = false;
		for (size_t k = i; ok && k < stop; k++)
			ok = (e[k] & PM_PRESENT) &&
			     (e[k] & PM_PFN_MASK) == pfn0 + (addr + k * PAGE - blk) / PAGE;
		if (ok && kpageflags_fd >= 0 &&
		    pread(kpageflags_fd, &flags, 8, (off_t)((e[i] & PM_PFN_MASK) * 8)) == 8 &&
		    (flags & (1ull << KPF_THP))) {
			uint64_t mark =
				RAW_THP | ((flags & (1ull << KPF_ZERO_PAGE)) ? RAW_HUGE_ZERO : 0);

			for (size_t k = i; k < stop; k++)
				e[k] |= mark;
		}
		i = stop;
	}
}

/* SEMANTICS: bit 62 alone is not swap; only a swap area's type (< 24) is */
static bool is_swap(uint64_t x)
{
	if (!(x & PM_SWAP))
		return false;
	if (x & PM_PFN_MASK)
		return (x & 0x1f) < MAX_SWAPFILES;
	return !(x & PM_UFFD_WP);
}

static uint64_t convert(uint64_t x, uint32_t vf, uint64_t zero_pfn, bool show_pfn)
{
	uint64_t out;

	if (x & PM_PRESENT) {
		uint64_t pfn = x & PM_PFN_MASK;
		bool zero = (zero_pfn && pfn == zero_pfn) || (x & RAW_HUGE_ZERO);
		bool wp = x & PM_UFFD_WP;

		out = E_PRESENT | (show_pfn ? pfn & E_PFN : 0);
		if (vf & OV_HUGETLB)
			out |= E_HUGE;
		if (zero)
			out |= E_ZERO;
		if (x & PM_FILE)
			out |= E_FILE;
		if (x & PM_MMAP_EXCLUSIVE)
			out |= E_EXCL;
		if (wp)
			out |= E_UFFD_WP;
		if (x & RAW_THP)
			out |= E_HUGE;
		/*
		 * WRITE: a CPU write would not trap. A private mapping's page
		 * is written in place only when it is anonymous and mapped
		 * by this process alone; a file page there is copied first.
		 */
		if ((vf & OV_W) && !wp && !zero &&
		    ((vf & OV_S) || ((x & PM_MMAP_EXCLUSIVE) && !(x & PM_FILE))))
			out |= E_WRITE;
		return out;
	}
	out = is_swap(x) ? E_SWAP | ((x & PM_FILE) ? E_FILE : 0) : 0;
	if (x & PM_UFFD_WP)
		out |= E_UFFD_WP;
	return out;
}

int oracle_expect(const struct oracle *o, const uint8_t *gone, size_t w, size_t n,
		  uint64_t zero_pfn, bool show_pfn, uint64_t *out)
{
	bool hole = false, noperm = false;
	size_t i = 0;

	while (i < n) {
		size_t p = w + i, seg;
		const struct ovma *v;

		if (o->vi[p] < 0) {
			out[i++] = E_HOLE;
			hole = true;
			continue;
		}
		v = &o->v[o->vi[p]];
		seg = (v->end - (o->base + p * PAGE)) / PAGE;
		if (seg > n - i)
			seg = n - i;
		if (!(v->flags & OV_R)) {
			for (size_t k = 0; k < seg; k++)
				out[i + k] = E_NOPERM;
			noperm = true;
		} else {
			memcpy(out + i, o->pm + p, seg * sizeof(*out));
			if (!(v->flags & OV_HUGETLB))
				mark_thp(out + i, seg, o->base + p * PAGE);
			for (size_t k = 0; k < seg; k++)
				out[i + k] = convert(out[i + k], v->flags, zero_pfn, show_pfn);
		}
		i += seg;
	}
	/* unmapped since insert: whatever is there now is not tracked */
	for (i = 0; i < n; i++)
		if (gone[w + i]) {
			out[i] = E_HOLE;
			hole = true;
		}
	return hole ? -EFAULT : noperm ? -EPERM : 0;
}

uint64_t encode_default(uint64_t raw)
{
	uint64_t bits = (raw >> 52) & 0xff;

	if (raw & (E_HOLE | E_NOPERM))
		return UM_DEFAULT_ERROR;
	if (!(raw & E_PRESENT))
		return bits & ((E_SWAP | E_UFFD_WP) >> 52);
	return ((raw & E_PFN) << UM_DEFAULT_PFN_SHIFT) | bits;
}

const char *entry_str(uint64_t e, char *buf, size_t len)
{
	static const char *const names[] = { "valid", "write", "zero", "swap",
					     "file",  "excl",  "huge", "uffd-wp" };
	size_t off;

	if (e & UM_DEFAULT_ERROR) {
		snprintf(buf, len, "error(hole/noperm)");
		return buf;
	}
	off = (size_t)snprintf(buf, len, "pfn %#llx", (unsigned long long)(e >> 12));
	if (!(e & UM_DEFAULT_VALID))
		off = (size_t)snprintf(buf, len, "none");
	for (int i = 0; i < 8 && off < len; i++)
		if (e & (1ull << i))
			off += (size_t)snprintf(buf + off, len - off, " %s", names[i]);
	return buf;
}

bool downgrade(uint64_t held, uint64_t now)
{
	if (held & UM_DEFAULT_ERROR)
		return false; /* nothing held */
	if (now & UM_DEFAULT_ERROR)
		return true; /* hole or no access now */
	if (!(held & UM_DEFAULT_VALID))
		return false; /* a mirror cannot hold a page that is not there */
	if (!(now & UM_DEFAULT_VALID))
		return true;
	if ((held >> 12) != (now >> 12))
		return true;
	if ((held & UM_DEFAULT_ZERO) != (now & UM_DEFAULT_ZERO))
		return true;
	return (held & UM_DEFAULT_WRITE) && !(now & UM_DEFAULT_WRITE);
}
