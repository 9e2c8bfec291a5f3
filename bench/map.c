// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "map.h"
#include "timing.h"

int bench_map_setup(struct bench_map *m, struct um_client *c, uint64_t pages,
		    uint8_t (*fill)(uint64_t page))
{
	struct um_status st = UM_STATUS_INIT;
	size_t bytes = pages * 4096;
	int ret;

	*m = (struct bench_map){ .c = c, .pages = pages, .pagemap_fd = -1 };
	m->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (m->pagemap_fd < 0)
		return -errno;
	m->pfns = malloc(pages * sizeof(uint64_t));
	m->pm = malloc(pages * sizeof(uint64_t));
	if (!m->pfns || !m->pm)
		return -ENOMEM;
	m->mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->mem == MAP_FAILED) {
		m->mem = NULL;
		return -errno;
	}
	/* real 4 KiB pages, as the brief and DESIGN.md's figures mean */
	madvise(m->mem, bytes, MADV_NOHUGEPAGE);
	for (uint64_t i = 0; i < pages; i++) {
		uint8_t v = fill(i);

		if (v)
			m->mem[i * 4096] = v;
	}
	ret = um_status(c, &st);
	if (ret < 0)
		return ret;
	m->kfeatures = st.kfeatures;
	ret = um_interval_insert(c, m->mem, bytes, 0, NULL, NULL, &m->iv);
	if (ret < 0)
		return ret;
	m->range.start = (uintptr_t)m->mem;
	m->range.end = (uintptr_t)m->mem + bytes;
	m->range.pfns = m->pfns;
	return um_range_register(&m->range, m->iv);
}

void bench_map_teardown(struct bench_map *m)
{
	if (m->range.iv)
		um_range_unregister(&m->range);
	if (m->iv)
		um_interval_remove(m->iv);
	if (m->mem)
		munmap(m->mem, m->pages * 4096);
	if (m->pagemap_fd >= 0)
		close(m->pagemap_fd);
	free(m->pfns);
	free(m->pm);
	*m = (struct bench_map){ .pagemap_fd = -1 };
}

int bench_map_pread(struct bench_map *m, double *ms)
{
	size_t want = m->pages * sizeof(uint64_t);
	off_t off = (off_t)((uintptr_t)m->mem / 4096 * sizeof(uint64_t));
	uint64_t t0;
	ssize_t n;

	t0 = bench_now_ns();
	n = pread(m->pagemap_fd, m->pm, want, off);
	*ms = (double)(bench_now_ns() - t0) / 1e6;
	if (n < 0)
		return -errno;
	return (size_t)n == want ? 0 : -EIO;
}
