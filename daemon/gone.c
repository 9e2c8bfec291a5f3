/* SPDX-License-Identifier: MIT */
/*
 * gone.c - unmapped spans of intervals (gone.h).
 */
#include "gone.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

bool mm_gone(const struct mm *mm, uint64_t start, uint64_t end)
{
	for (unsigned int i = 0; i < mm->ngone; i++)
		if (mm->gone[i].start < end && mm->gone[i].end > start)
			return true;
	return false;
}

void gone_clear(struct mm *mm, uint64_t start, uint64_t end)
{
	struct mm_span *v;
	unsigned int n = 0;

	if (!mm_gone(mm, start, end))
		return;
	/* one span may split in two */
	v = malloc((mm->ngone + 1) * sizeof(*v));
	if (!v) {
		log_error("mm %llu: out of memory: unmapped spans kept",
			  (unsigned long long)mm->id);
		return;
	}
	for (unsigned int i = 0; i < mm->ngone; i++) {
		struct mm_span g = mm->gone[i];

		if (g.end <= start || g.start >= end) {
			v[n++] = g;
			continue;
		}
		if (g.start < start)
			v[n++] = (struct mm_span){ g.start, start };
		if (g.end > end)
			v[n++] = (struct mm_span){ end, g.end };
	}
	free(mm->gone);
	mm->gone = v;
	mm->ngone = n;
	mm->gone_cap = mm->ngone + 1;
}

static int gone_add_one(struct mm *mm, uint64_t start, uint64_t end)
{
	unsigned int i = 0, j;

	/* merge with every span it overlaps or touches, keep the array sorted */
	while (i < mm->ngone && mm->gone[i].end < start)
		i++;
	j = i;
	while (j < mm->ngone && mm->gone[j].start <= end) {
		if (mm->gone[j].start < start)
			start = mm->gone[j].start;
		if (mm->gone[j].end > end)
			end = mm->gone[j].end;
		j++;
	}
	if (i == j) {
		if (mm->ngone + 1 >= mm->gone_cap) {
			unsigned int cap = mm->gone_cap ? mm->gone_cap * 2 : 8;
			struct mm_span *v = realloc(mm->gone, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			mm->gone = v;
			mm->gone_cap = cap;
		}
		memmove(&mm->gone[i + 1], &mm->gone[i], (mm->ngone - i) * sizeof(*mm->gone));
		mm->ngone++;
	} else {
		memmove(&mm->gone[i + 1], &mm->gone[j], (mm->ngone - j) * sizeof(*mm->gone));
		mm->ngone -= j - i - 1;
	}
	mm->gone[i] = (struct mm_span){ start, end };
	return 0;
}

struct gone_walk {
	struct mm *mm;
	uint64_t start, end;
};

static int gone_cb(struct itree_node *n, void *priv)
{
	struct gone_walk *g = priv;

	return gone_add_one(g->mm, n->start > g->start ? n->start : g->start,
			    n->end < g->end ? n->end : g->end);
}

void gone_mark(struct mm *mm, uint64_t start, uint64_t end)
{
	struct gone_walk g = { mm, start & ~(UMP_PAGE_SIZE - 1), end };

	if (end > g.start && itree_query(&mm->tree, g.start, end, gone_cb, &g))
		log_error("mm %llu: out of memory: unmapped span not remembered",
			  (unsigned long long)mm->id);
}
