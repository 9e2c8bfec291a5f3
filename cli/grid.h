/* SPDX-License-Identifier: MIT */
/*
 * grid.h - the page picture umirrorctl draws for show and dirty.
 *
 * One cell per page, or per @scale pages when the range is large (the
 * cell then shows the kind most of its pages have, and each row ends with
 * its counts); a row repeating the one before is printed once, then a
 * lone '*' stands for the repeats, as hexdump(1) does. Colour is the
 * caller's choice (grid_want_color()).
 */
#ifndef UMIRRORCTL_GRID_H
#define UMIRRORCTL_GRID_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define GRID_MAX_KINDS 16
#define GRID_MAX_COLUMNS 256
#define GRID_DEFAULT_COLUMNS 64
/* an automatic scale keeps the picture within this many rows */
#define GRID_AUTO_ROWS 32

struct grid_kind {
	char glyph;
	const char *name;  /* summary / JSON key: the same word in both */
	const char *color; /* SGR parameters ("1;31"), or NULL for none */
};

struct grid_opts {
	unsigned int columns; /* cells per row, a power of two >= 8 */
	uint64_t scale;	      /* pages per cell; 0: automatic */
	bool color;
	bool legend;
};

/**
 * grid_columns() - cells per row for output to @f: the widest power of two
 * (8 to GRID_MAX_COLUMNS) that fits the terminal's width with the row's
 * address and counts, or GRID_DEFAULT_COLUMNS when @f is not a terminal.
 * Waits for nothing.
 */
unsigned int grid_columns(FILE *f);

/**
 * grid_want_color() - whether to colour output to @f under @mode ("auto",
 * "always", "never"): auto is a terminal and no non-empty $NO_COLOR
 * (https://no-color.org). Return: 1 yes, 0 no, -EINVAL unknown @mode.
 */
int grid_want_color(FILE *f, const char *mode);

/**
 * grid_scale() - the pages per cell grid_print() uses for @npages pages:
 * @o->scale if set, else the smallest power of two that keeps the picture
 * within GRID_AUTO_ROWS rows.
 */
uint64_t grid_scale(const struct grid_opts *o, uint64_t npages);

/**
 * grid_print() - draw @npages pages from @start, page i of kind @kind[i]
 * (an index into @kinds, < @nkinds <= GRID_MAX_KINDS), to @f: the legend
 * (the kinds that occur, and the scale) unless !@o->legend, then the rows.
 * Holds nothing; waits for nothing. Return: 0; -EINVAL no columns, more
 * than GRID_MAX_COLUMNS, or more than GRID_MAX_KINDS kinds; -ENOMEM.
 */
int grid_print(FILE *f, const struct grid_opts *o, const struct grid_kind *kinds,
	       unsigned int nkinds, uint64_t start, const uint8_t *kind, uint64_t npages);

#endif /* UMIRRORCTL_GRID_H */
