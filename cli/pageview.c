/* SPDX-License-Identifier: MIT */
/*
 * pageview.c - the output show and dirty share (see pageview.h).
 */
#include "pageview.h"

#include <inttypes.h>
#include <stdio.h>

void json_intervals(struct json *j, const struct um_interval_info *iv, size_t niv)
{
	json_key(j, "intervals");
	json_begin_array(j);
	for (size_t i = 0; i < niv; i++) {
		json_begin_object(j);
		json_key(j, "id");
		json_u64(j, iv[i].interval_id);
		json_key(j, "start");
		json_hex(j, iv[i].start);
		json_key(j, "end");
		json_hex(j, iv[i].start + iv[i].length);
		json_key(j, "backend");
		json_string(j, um_backend_str(iv[i].backend));
		json_end_object(j);
	}
	json_end_array(j);
}

void print_intervals(const struct um_interval_info *iv, size_t niv)
{
	for (size_t i = 0; i < niv; i++)
		printf("interval %" PRIu64 " %016" PRIx64 "-%016" PRIx64 ": backend %s\n",
		       iv[i].interval_id, iv[i].start, iv[i].start + iv[i].length,
		       um_backend_str(iv[i].backend));
}

void json_summary(struct json *j, const struct grid_kind *k, unsigned int nk, const uint64_t *count)
{
	json_key(j, "summary");
	json_begin_object(j);
	for (unsigned int i = 0; i < nk; i++) {
		json_key(j, k[i].name);
		json_u64(j, count[i]);
	}
	json_end_object(j);
}

void print_summary(uint64_t n, const struct grid_kind *k, unsigned int nk, const uint64_t *count)
{
	const char *sep = " ";

	printf("%" PRIu64 " pages:", n);
	for (unsigned int i = 0; i < nk; i++)
		if (count[i]) {
			printf("%s%" PRIu64 " %s", sep, count[i], k[i].name);
			sep = ", ";
		}
	printf("\n");
}

struct grid_opts grid_opts_for(const struct opts *o)
{
	return (struct grid_opts){
		.columns = grid_columns(stdout),
		.scale = o->scale,
		.color = o->color,
		.legend = !o->no_legend,
	};
}
