/* SPDX-License-Identifier: MIT */
/*
 * grid.c - the page picture of umirrorctl show and dirty (see grid.h).
 */
#include "grid.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "um_page.h"

/* "0000000000000000 |" before the cells, "|" after */
#define ROW_OVERHEAD 19

unsigned int grid_columns(FILE *f)
{
	struct winsize ws;
	unsigned int cols = 8;

	if (!isatty(fileno(f)) || ioctl(fileno(f), TIOCGWINSZ, &ws) < 0 || !ws.ws_col)
		return GRID_DEFAULT_COLUMNS;
	while (cols * 2 <= GRID_MAX_COLUMNS && cols * 2 + ROW_OVERHEAD <= ws.ws_col)
		cols *= 2;
	return cols;
}

int grid_want_color(FILE *f, const char *mode)
{
	const char *no = getenv("NO_COLOR");

	if (!mode || !strcmp(mode, "auto"))
		return isatty(fileno(f)) && !(no && *no);
	if (!strcmp(mode, "always"))
		return 1;
	if (!strcmp(mode, "never"))
		return 0;
	return -EINVAL;
}

uint64_t grid_scale(const struct grid_opts *o, uint64_t npages)
{
	uint64_t scale = 1;

	if (o->scale)
		return o->scale;
	while ((npages + scale * o->columns - 1) / (scale * o->columns) > GRID_AUTO_ROWS)
		scale *= 2;
	return scale;
}

/* "4 KiB", "2 MiB", "1 GiB": @bytes in the largest unit that divides it */
static void print_size(FILE *f, uint64_t bytes)
{
	static const char *const unit[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (u < 4 && bytes >= 1024 && bytes % 1024 == 0) {
		bytes /= 1024;
		u++;
	}
	fprintf(f, "%" PRIu64 " %s", bytes, unit[u]);
}

static void print_legend(FILE *f, const struct grid_opts *o, const struct grid_kind *kinds,
			 unsigned int nkinds, const uint64_t *total, uint64_t scale)
{
	bool first = true;

	fprintf(f, "legend:");
	for (unsigned int k = 0; k < nkinds; k++) {
		if (!total[k])
			continue;
		fprintf(f, "%s ", first ? "" : ",");
		if (o->color && kinds[k].color)
			fprintf(f, "\033[%sm%c\033[0m", kinds[k].color, kinds[k].glyph);
		else if (kinds[k].glyph == ' ')
			fprintf(f, "' '");
		else
			fputc(kinds[k].glyph, f);
		fprintf(f, " %s", kinds[k].name);
		first = false;
	}
	fputc('\n', f);
	if (scale > 1) {
		fprintf(f, "scale:  one cell = %" PRIu64 " pages (", scale);
		print_size(f, scale * UMP_PAGE_SIZE);
		fprintf(f, "), drawn as the kind most of them are; counts per row\n");
	}
}

/* one row's cells: glyph of each, and the counts over the row */
struct row {
	char glyph[GRID_MAX_COLUMNS];
	uint8_t kind[GRID_MAX_COLUMNS];
	uint64_t count[GRID_MAX_KINDS];
	unsigned int ncells;
};

static void build_row(struct row *r, const struct grid_kind *kinds, unsigned int nkinds,
		      const uint8_t *kind, uint64_t from, uint64_t npages, unsigned int columns,
		      uint64_t scale)
{
	memset(r->count, 0, sizeof(r->count));
	r->ncells = 0;
	for (unsigned int c = 0; c < columns && from < npages; c++) {
		uint64_t cell[GRID_MAX_KINDS] = { 0 };
		uint64_t to = from + scale < npages ? from + scale : npages;
		unsigned int best = 0;

		for (uint64_t i = from; i < to; i++)
			cell[kind[i]]++;
		/* the most pages; a tie goes to the later kind: "none" comes first */
		for (unsigned int k = 0; k < nkinds; k++) {
			r->count[k] += cell[k];
			if (cell[k] && cell[k] >= cell[best])
				best = k;
		}
		r->kind[c] = (uint8_t)best;
		r->glyph[c] = kinds[best].glyph;
		r->ncells++;
		from = to;
	}
}

static bool row_equal(const struct row *a, const struct row *b)
{
	return a->ncells == b->ncells && !memcmp(a->glyph, b->glyph, a->ncells) &&
	       !memcmp(a->count, b->count, sizeof(a->count));
}

static void print_row(FILE *f, const struct grid_opts *o, const struct grid_kind *kinds,
		      unsigned int nkinds, uint64_t addr, const struct row *r, uint64_t scale)
{
	fprintf(f, "%016" PRIx64 " |", addr);
	for (unsigned int c = 0; c < r->ncells;) {
		const char *sgr = o->color ? kinds[r->kind[c]].color : NULL;
		unsigned int run = c;

		/* one escape per run of a kind, not per cell */
		while (run < r->ncells && r->kind[run] == r->kind[c])
			run++;
		if (sgr)
			fprintf(f, "\033[%sm", sgr);
		fwrite(r->glyph + c, 1, run - c, f);
		if (sgr)
			fprintf(f, "\033[0m");
		c = run;
	}
	fputc('|', f);
	if (scale > 1)
		for (unsigned int k = 0; k < nkinds; k++)
			if (r->count[k])
				fprintf(f, " %c:%" PRIu64,
					kinds[k].glyph == ' ' ? '_' : kinds[k].glyph, r->count[k]);
	fputc('\n', f);
}

int grid_print(FILE *f, const struct grid_opts *o, const struct grid_kind *kinds,
	       unsigned int nkinds, uint64_t start, const uint8_t *kind, uint64_t npages)
{
	uint64_t total[GRID_MAX_KINDS] = { 0 }, scale, per_row;
	struct row *rows;
	bool starred = false;
	int cur = 0;

	/* before grid_scale(), which divides by the columns */
	if (nkinds > GRID_MAX_KINDS || o->columns > GRID_MAX_COLUMNS || !o->columns)
		return -EINVAL;
	scale = grid_scale(o, npages);
	per_row = scale * o->columns;
	rows = calloc(2, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	if (o->legend) {
		for (uint64_t i = 0; i < npages; i++)
			total[kind[i]]++;
		print_legend(f, o, kinds, nkinds, total, scale);
	}
	for (uint64_t from = 0, n = 0; from < npages; from += per_row, n++) {
		build_row(&rows[cur], kinds, nkinds, kind, from, npages, o->columns, scale);
		/* a repeat of the row before: one '*' for the whole run of them */
		if (n && row_equal(&rows[cur], &rows[!cur])) {
			if (!starred)
				fprintf(f, "*\n");
			starred = true;
			continue;
		}
		starred = false;
		print_row(f, o, kinds, nkinds, start + from * UMP_PAGE_SIZE, &rows[cur], scale);
		cur = !cur;
	}
	free(rows);
	return 0;
}
