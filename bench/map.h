// SPDX-License-Identifier: MIT
/*
 * map.h - the fixture B1 and B1s share: an anonymous mapping of 4 KiB
 * pages (no THP), filled by a pattern, mirrored by one interval with a
 * registered range, and this process's pagemap open as the baseline.
 */
#ifndef UMIRROR_BENCH_MAP_H
#define UMIRROR_BENCH_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umirror.h"

struct bench_map {
	struct um_client *c;
	uint8_t *mem;
	uint64_t pages;
	struct um_interval *iv;
	struct um_range range; /* the whole mapping, entries in @pfns */
	uint64_t *pfns;	       /* um_range entries, one per page */
	uint64_t *pm;	       /* pagemap entries of the last bench_map_pread() */
	int pagemap_fd;
	uint64_t kfeatures; /* um_status(): UM_FEAT_* of the daemon's kernel */
};

/*
 * bench_map_setup() - map @pages pages, write fill(i) into the first byte
 * of each page for which it is non-zero (0: leave the page a hole), insert
 * one interval over it and register a range on it.
 * Waits for the INSERT's and the status request's round trips.
 * Return: 0 or -errno; on error call bench_map_teardown() all the same.
 */
int bench_map_setup(struct bench_map *m, struct um_client *c, uint64_t pages,
		    uint8_t (*fill)(uint64_t page));

/* bench_map_teardown() - undo what bench_map_setup() got to; safe twice. */
void bench_map_teardown(struct bench_map *m);

/*
 * bench_map_pread() - one pread of the whole mapping's pagemap entries
 * into @m->pm, timed in @ms. Return: 0, -EIO on a short read, or -errno.
 */
int bench_map_pread(struct bench_map *m, double *ms);

#endif /* UMIRROR_BENCH_MAP_H */
