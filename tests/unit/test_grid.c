/* SPDX-License-Identifier: MIT */
/*
 * test_grid.c - the page picture of umirrorctl show and dirty (cli/grid.c):
 * the exact text of the legend, rows, repeated rows and scaled cells (the
 * majority kind, ties to the later kind, counts per row), colour escapes
 * once per run, the automatic scale, and what it refuses.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "grid.h"

enum { NONE, WRITTEN, HOLE, NKINDS };

static const struct grid_kind kinds[NKINDS] = {
	[NONE] = { '.', "none", NULL },
	[WRITTEN] = { 'w', "written", "1;31" },
	[HOLE] = { ' ', "hole", NULL },
};

/* grid_print()'s text for @kind[0..@n) from @start, checked against @want */
static void check_print(const struct grid_opts *o, uint64_t start, const uint8_t *kind, uint64_t n,
			const char *want)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(grid_print(f, o, kinds, NKINDS, start, kind, n), 0);
	fclose(f);
	assert_string_equal(buf, want);
	free(buf);
}

static void test_rows_and_repeats(void **state)
{
	const struct grid_opts o = { .columns = 8, .legend = true };
	uint8_t k[20] = { 0 };

	k[16] = WRITTEN;
	k[17] = WRITTEN;
	k[18] = HOLE;
	check_print(&o, 0x1000, k, 20,
		    "legend: . none, w written, ' ' hole\n"
		    "0000000000001000 |........|\n"
		    "*\n"
		    "0000000000011000 |ww .|\n");
}

/* one '*' for a run of repeats however long, and again after a different row */
static void test_star_runs(void **state)
{
	const struct grid_opts o = { .columns = 8 };
	uint8_t k[56] = { 0 };

	memset(k + 24, WRITTEN, 8); /* row 3 differs */
	check_print(&o, 0, k, 56,
		    "0000000000000000 |........|\n"
		    "*\n"
		    "0000000000018000 |wwwwwwww|\n"
		    "0000000000020000 |........|\n"
		    "*\n");
}

/* the legend names only kinds that occur, and quotes a blank glyph */
static void test_legend_only_present(void **state)
{
	const struct grid_opts o = { .columns = 8, .legend = true };
	const uint8_t k[2] = { HOLE, HOLE };

	check_print(&o, 0, k, 2, "legend: ' ' hole\n0000000000000000 |  |\n");
}

static void test_scaled_cells(void **state)
{
	const struct grid_opts o = { .columns = 8, .scale = 2, .legend = true };
	/* cells: {none, w} {w, w} {hole, none} {none, hole} */
	const uint8_t k[8] = { NONE, WRITTEN, WRITTEN, WRITTEN, HOLE, NONE, NONE, HOLE };

	/* a tie goes to the later kind; a blank's count is under '_' */
	check_print(&o, 0, k, 8,
		    "legend: . none, w written, ' ' hole\n"
		    "scale:  one cell = 2 pages (8 KiB), drawn as the kind most of them are; "
		    "counts per row\n"
		    "0000000000000000 |ww  | .:3 w:3 _:2\n");
}

/* scaled rows with the same picture but other counts are not repeats */
static void test_scaled_repeat_needs_counts(void **state)
{
	const struct grid_opts o = { .columns = 8, .scale = 3 };
	uint8_t k[48] = { 0 };

	/* row 1: cells of {w,w,.}; row 2: cells of {w,w,w}: both all 'w' */
	for (int i = 0; i < 24; i++)
		k[i] = i % 3 == 2 ? NONE : WRITTEN;
	memset(k + 24, WRITTEN, 24);
	check_print(&o, 0, k, 48,
		    "0000000000000000 |wwwwwwww| .:8 w:16\n"
		    "0000000000018000 |wwwwwwww| w:24\n");
}

/* one escape per run of a kind, none for a kind without colour */
static void test_color(void **state)
{
	const struct grid_opts o = { .columns = 8, .color = true, .legend = true };
	const uint8_t k[4] = { WRITTEN, WRITTEN, NONE, WRITTEN };

	check_print(&o, 0, k, 4,
		    "legend: . none, \033[1;31mw\033[0m written\n"
		    "0000000000000000 |\033[1;31mww\033[0m.\033[1;31mw\033[0m|\n");
}

static void test_empty(void **state)
{
	const struct grid_opts o = { .columns = 8, .legend = true };

	check_print(&o, 0, NULL, 0, "legend:\n");
}

static void test_scale(void **state)
{
	struct grid_opts o = { .columns = 64 };

	assert_int_equal(grid_scale(&o, 0), 1);
	assert_int_equal(grid_scale(&o, 64 * GRID_AUTO_ROWS), 1);
	assert_int_equal(grid_scale(&o, 64 * GRID_AUTO_ROWS + 1), 2);
	assert_int_equal(grid_scale(&o, 2 * 64 * GRID_AUTO_ROWS), 2);
	assert_int_equal(grid_scale(&o, 2 * 64 * GRID_AUTO_ROWS + 1), 4);
	/* 16 GiB, the most show asks for: still within the rows */
	assert_true((4194304 + grid_scale(&o, 4194304) * 64 - 1) / (grid_scale(&o, 4194304) * 64) <=
		    GRID_AUTO_ROWS);
	o.scale = 5;
	assert_int_equal(grid_scale(&o, 1 << 20), 5);
}

static void test_refused(void **state)
{
	FILE *f = fopen("/dev/null", "w");
	const uint8_t k[1] = { 0 };
	struct grid_opts o = { .columns = 0 };

	assert_non_null(f);
	assert_int_equal(grid_print(f, &o, kinds, NKINDS, 0, k, 1), -EINVAL);
	o.columns = GRID_MAX_COLUMNS * 2;
	assert_int_equal(grid_print(f, &o, kinds, NKINDS, 0, k, 1), -EINVAL);
	o.columns = 8;
	assert_int_equal(grid_print(f, &o, kinds, GRID_MAX_KINDS + 1, 0, k, 1), -EINVAL);
	fclose(f);
}

static void test_want_color(void **state)
{
	FILE *f = fopen("/dev/null", "w");

	assert_non_null(f);
	assert_int_equal(grid_want_color(f, "always"), 1);
	assert_int_equal(grid_want_color(f, "never"), 0);
	assert_int_equal(grid_want_color(f, "auto"), 0); /* not a terminal */
	assert_int_equal(grid_want_color(f, "sometimes"), -EINVAL);
	assert_int_equal(grid_columns(f), GRID_DEFAULT_COLUMNS);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows_and_repeats),
		cmocka_unit_test(test_star_runs),
		cmocka_unit_test(test_legend_only_present),
		cmocka_unit_test(test_scaled_cells),
		cmocka_unit_test(test_scaled_repeat_needs_counts),
		cmocka_unit_test(test_color),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_scale),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_want_color),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
