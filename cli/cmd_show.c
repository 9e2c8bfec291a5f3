/* SPDX-License-Identifier: MIT */
/*
 * cmd_show.c - umirrorctl show: the page map of a mirrored process, one
 * raw snapshot drawn as a grid (text) or as runs of entries (JSON).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "commands.h"
#include "pageview.h"
#include "um_page.h"

/*
 * What a page is, as show draws it. "protected" is armed: present,
 * write-protected by the daemon, its next write reported; "written" is
 * present and writable, which in a mirrored range means written since it
 * was armed. The names are the summary's words in text and JSON alike.
 */
enum kind {
	K_NONE,
	K_ZERO,
	K_PROT,
	K_RO,
	K_WRITTEN,
	K_HUGE_PROT,
	K_HUGE_WRITTEN,
	K_SWAP,
	K_FILE,
	K_NOPERM,
	K_HOLE,
	K_MAX
};

static const struct grid_kind kinds[K_MAX] = {
	[K_NONE] = { '.', "none", NULL },
	[K_ZERO] = { 'z', "zero", "2" },
	[K_PROT] = { 'p', "protected", "32" },
	[K_RO] = { 'r', "read_only", "36" },
	[K_WRITTEN] = { 'w', "written", "1;31" },
	[K_HUGE_PROT] = { 'h', "huge_protected", "1;32" },
	[K_HUGE_WRITTEN] = { 'H', "huge_written", "1;35" },
	[K_SWAP] = { 's', "swapped", "33" },
	[K_FILE] = { 'f', "file", "34" },
	[K_NOPERM] = { '!', "no_permission", "7" },
	[K_HOLE] = { ' ', "hole", NULL },
};

static enum kind classify(uint64_t e)
{
	if (e & UM_RAW_HOLE)
		return K_HOLE;
	if (e & UM_RAW_NOPERM)
		return K_NOPERM;
	if (e & UM_RAW_PRESENT) {
		if (e & UM_RAW_HUGE)
			return e & UM_RAW_WRITE ? K_HUGE_WRITTEN : K_HUGE_PROT;
		if (e & UM_RAW_ZERO)
			return K_ZERO;
		if (e & UM_RAW_FILE)
			return K_FILE;
		if (e & UM_RAW_WRITE)
			return K_WRITTEN;
		return e & UM_RAW_UFFD_WP ? K_PROT : K_RO;
	}
	return e & UM_RAW_SWAP ? K_SWAP : K_NONE;
}

static const struct {
	uint64_t bit;
	const char *name;
} raw_names[] = {
	{ UM_RAW_PRESENT, "present" }, { UM_RAW_WRITE, "write" },     { UM_RAW_ZERO, "zero" },
	{ UM_RAW_SWAP, "swap" },       { UM_RAW_FILE, "file" },	      { UM_RAW_EXCL, "exclusive" },
	{ UM_RAW_HUGE, "huge" },       { UM_RAW_UFFD_WP, "uffd_wp" }, { UM_RAW_NOPERM, "noperm" },
	{ UM_RAW_HOLE, "hole" },
};

/* consecutive entries @a, @b (page after page) say the same thing */
static bool same_run(uint64_t a, uint64_t b)
{
	uint64_t pa = a & UM_RAW_PFN_MASK, pb = b & UM_RAW_PFN_MASK;

	return (a & ~UM_RAW_PFN_MASK) == (b & ~UM_RAW_PFN_MASK) && (pa ? pb == pa + 1 : pb == 0);
}

/*
 * Entries as runs: pages in a row with the same flags and PFNs that follow
 * each other (or none) are one entry with a page count, so 1 GiB never
 * touched is one line, not 262144.
 */
static void show_json(pid_t pid, uint64_t start, const uint64_t *e, uint64_t n, int status,
		      const uint64_t *count, const struct um_interval_info *iv, size_t niv)
{
	struct json j;

	json_init(&j, stdout);
	json_begin_object(&j);
	json_key(&j, "pid");
	json_i64(&j, pid);
	json_key(&j, "start");
	json_hex(&j, start);
	json_key(&j, "npages");
	json_u64(&j, n);
	json_key(&j, "status");
	json_i64(&j, status);
	json_intervals(&j, iv, niv);
	json_key(&j, "entries");
	json_begin_array(&j);
	for (uint64_t i = 0, run; i < n; i += run) {
		for (run = 1; i + run < n && same_run(e[i + run - 1], e[i + run]); run++)
			;
		json_begin_object(&j);
		json_key(&j, "addr");
		json_hex(&j, start + i * UMP_PAGE_SIZE);
		json_key(&j, "pages");
		json_u64(&j, run);
		json_key(&j, "pfn");
		json_u64(&j, e[i] & UM_RAW_PFN_MASK);
		json_key(&j, "kind");
		json_string(&j, kinds[classify(e[i])].name);
		json_key(&j, "flags");
		json_begin_array(&j);
		for (size_t b = 0; b < ARRAY_SIZE(raw_names); b++)
			if (e[i] & raw_names[b].bit)
				json_string(&j, raw_names[b].name);
		json_end_array(&j);
		json_end_object(&j);
	}
	json_end_array(&j);
	json_summary(&j, kinds, K_MAX, count);
	json_end_object(&j);
	json_end(&j);
}

static int show_text(const struct opts *o, uint64_t start, const uint64_t *e, uint64_t n,
		     int status, const uint64_t *count)
{
	struct grid_opts g = grid_opts_for(o);
	uint8_t *kind = malloc(n);
	int ret;

	if (!kind)
		return -ENOMEM;
	for (uint64_t i = 0; i < n; i++)
		kind[i] = (uint8_t)classify(e[i]);
	ret = grid_print(stdout, &g, kinds, K_MAX, start, kind, n);
	free(kind);
	if (ret < 0)
		return ret;
	print_summary(n, kinds, K_MAX, count);
	if (status == -EFAULT)
		printf("note: part of the range is not mapped\n");
	else if (status == -EPERM)
		printf("note: part of the range has no read permission\n");
	return 0;
}

int show_args(int argc, char **argv, struct cmd_args *a)
{
	return range_args("show", argc, argv, &a->pid, &a->start, &a->npages);
}

int cmd_show(struct um_client *c, const struct opts *o, const struct cmd_args *a)
{
	pid_t pid = a->pid;
	uint64_t start = a->start, n = a->npages;
	uint64_t count[K_MAX] = { 0 };
	struct um_interval_info *all = NULL;
	size_t nall = 0, niv = 0;
	uint64_t *e;
	long ret;
	int ret2 = 0;

	e = calloc(n, sizeof(*e));
	if (!e)
		return fail("show", -ENOMEM);

	/*
	 * -EFAULT (holes) and -EPERM (PROT_NONE) still fill every entry;
	 * -EACCES (another user's process) fills nothing.
	 */
	ret = um_snapshot_raw(c, pid, start, n, e);
	for (uint64_t i = 0; i < n; i++)
		count[classify(e[i])]++;
	if (ret < 0 && ret != -EFAULT && ret != -EPERM) {
		free(e);
		return ret == -ESRCH || ret == -EACCES ? fail_pid(pid, (int)ret)
						       : fail("snapshot", (int)ret);
	}
	/* which intervals cover the range, and how each tracks writes */
	if (um_list(c, &all, &nall) == 0)
		for (size_t i = 0; i < nall; i++)
			if (all[i].pid == pid && all[i].start < start + n * UMP_PAGE_SIZE &&
			    all[i].start + all[i].length > start)
				all[niv++] = all[i];
	if (o->json) {
		show_json(pid, start, e, n, ret < 0 ? (int)ret : 0, count, all, niv);
	} else {
		print_intervals(all, niv);
		ret2 = show_text(o, start, e, n, ret < 0 ? (int)ret : 0, count);
	}
	free(all);
	free(e);
	return ret2 < 0 ? fail("show", ret2) : 0;
}
