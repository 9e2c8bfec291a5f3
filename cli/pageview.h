/* SPDX-License-Identifier: MIT */
/*
 * pageview.h - what show and dirty print alike around their page grid:
 * the intervals covering the range, the per-kind summary, the grid's
 * options. Text goes to stdout; JSON into the caller's writer. None of
 * them waits for anything or holds anything.
 */
#ifndef UMIRRORCTL_PAGEVIEW_H
#define UMIRRORCTL_PAGEVIEW_H

#include <stddef.h>
#include <stdint.h>

#include "ctl.h"
#include "grid.h"
#include "json.h"

/** json_intervals() - member "intervals": id, start, end, backend of each. */
void json_intervals(struct json *j, const struct um_interval_info *iv, size_t niv);

/** print_intervals() - one line per interval: id, range, backend. */
void print_intervals(const struct um_interval_info *iv, size_t niv);

/** json_summary() - member "summary": @count[i] pages under @k[i].name. */
void json_summary(struct json *j, const struct grid_kind *k, unsigned int nk,
		  const uint64_t *count);

/** print_summary() - "12 pages: 3 written, 9 clean", kinds counted 0 left out. */
void print_summary(uint64_t n, const struct grid_kind *k, unsigned int nk, const uint64_t *count);

/** grid_opts_for() - the grid options @o asks for, at stdout's width. */
struct grid_opts grid_opts_for(const struct opts *o);

#endif /* UMIRRORCTL_PAGEVIEW_H */
