/* SPDX-License-Identifier: MIT */
/*
 * cmd_status.c - umirrorctl status and list: the daemon as a whole, and
 * the intervals it mirrors.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "json.h"
#include "uapi_compat.h"

static const struct {
	uint64_t bit;
	const char *name;
} uffd_names[] = {
	{ UFFD_FEATURE_PAGEFAULT_FLAG_WP, "PAGEFAULT_FLAG_WP" },
	{ UFFD_FEATURE_EVENT_FORK, "EVENT_FORK" },
	{ UFFD_FEATURE_EVENT_REMAP, "EVENT_REMAP" },
	{ UFFD_FEATURE_EVENT_REMOVE, "EVENT_REMOVE" },
	{ UFFD_FEATURE_MISSING_HUGETLBFS, "MISSING_HUGETLBFS" },
	{ UFFD_FEATURE_MISSING_SHMEM, "MISSING_SHMEM" },
	{ UFFD_FEATURE_EVENT_UNMAP, "EVENT_UNMAP" },
	{ UFFD_FEATURE_SIGBUS, "SIGBUS" },
	{ UFFD_FEATURE_THREAD_ID, "THREAD_ID" },
	{ UFFD_FEATURE_MINOR_HUGETLBFS, "MINOR_HUGETLBFS" },
	{ UFFD_FEATURE_MINOR_SHMEM, "MINOR_SHMEM" },
	{ UFFD_FEATURE_EXACT_ADDRESS, "EXACT_ADDRESS" },
	{ UFFD_FEATURE_WP_HUGETLBFS_SHMEM, "WP_HUGETLBFS_SHMEM" },
	{ UFFD_FEATURE_WP_UNPOPULATED, "WP_UNPOPULATED" },
	{ UFFD_FEATURE_POISON, "POISON" },
	{ UFFD_FEATURE_WP_ASYNC, "WP_ASYNC" },
	{ UFFD_FEATURE_MOVE, "MOVE" },
};

static const struct {
	uint64_t bit;
	const char *name, *key;
} kfeat_names[] = {
	{ UM_FEAT_PAGEMAP_SCAN, "PAGEMAP_SCAN", "pagemap_scan" },
	{ UM_FEAT_SOFT_DIRTY, "soft-dirty", "soft_dirty" },
	{ UM_FEAT_PROCMAP_QUERY, "PROCMAP_QUERY", "procmap_query" },
	{ UM_FEAT_PFN_VISIBLE, "PFNs visible to this caller", "pfn_visible" },
	{ UM_FEAT_WP_UNPOPULATED, "WP_UNPOPULATED", "wp_unpopulated" },
	{ UM_FEAT_WP_ASYNC, "WP_ASYNC", "wp_async" },
	{ UM_FEAT_IO_URING, "io_uring", "io_uring" },
};

/* bits of @mask no name above describes */
static uint64_t uffd_unknown(uint64_t mask)
{
	for (size_t i = 0; i < ARRAY_SIZE(uffd_names); i++)
		mask &= ~uffd_names[i].bit;
	return mask;
}

static void print_uptime(uint64_t ms)
{
	uint64_t s = ms / 1000;

	if (s >= 86400)
		printf("%" PRIu64 "d ", s / 86400);
	printf("%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64 ".%03" PRIu64, s / 3600 % 24, s / 60 % 60,
	       s % 60, ms % 1000);
}

static void status_json(const struct um_status *st)
{
	struct json j;

	json_init(&j, stdout);
	json_begin_object(&j);
	json_key(&j, "daemon_version");
	json_string(&j, st->daemon_version);
	json_key(&j, "daemon_pid");
	json_i64(&j, st->daemon_pid);
	json_key(&j, "protocol_version");
	json_u64(&j, st->protocol_version);
	json_key(&j, "uptime_ms");
	json_u64(&j, st->uptime_ms);
	json_key(&j, "clients");
	json_u64(&j, st->clients);
	json_key(&j, "address_spaces");
	json_u64(&j, st->mms);
	json_key(&j, "intervals");
	json_u64(&j, st->intervals);
	json_key(&j, "invalidations");
	json_u64(&j, st->events);
	json_key(&j, "uffd_features");
	json_begin_object(&j);
	json_key(&j, "mask");
	json_hex(&j, st->uffd_features);
	json_key(&j, "names");
	json_begin_array(&j);
	for (size_t i = 0; i < ARRAY_SIZE(uffd_names); i++)
		if (st->uffd_features & uffd_names[i].bit)
			json_string(&j, uffd_names[i].name);
	json_end_array(&j);
	json_key(&j, "unknown");
	json_hex(&j, uffd_unknown(st->uffd_features));
	json_end_object(&j);
	json_key(&j, "kernel");
	json_begin_object(&j);
	for (size_t i = 0; i < ARRAY_SIZE(kfeat_names); i++) {
		json_key(&j, kfeat_names[i].key);
		json_bool(&j, st->kfeatures & kfeat_names[i].bit);
	}
	json_end_object(&j);
	/* present in the kernel but switched off with --mask-features */
	json_key(&j, "masked");
	json_begin_array(&j);
	for (size_t i = 0; i < ARRAY_SIZE(kfeat_names); i++)
		if (st->kfeatures_masked & kfeat_names[i].bit)
			json_string(&j, kfeat_names[i].key);
	json_end_array(&j);
	json_end_object(&j);
	json_end(&j);
}

int cmd_status(struct um_client *c, const struct opts *o, const struct cmd_args *a)
{
	struct um_status st = UM_STATUS_INIT;
	uint64_t unknown;
	int ret;

	ret = um_status(c, &st);
	if (ret < 0)
		return fail("status", ret);
	if (o->json) {
		status_json(&st);
		return 0;
	}
	printf("daemon:          umirrord %s, pid %d, protocol %u\n", st.daemon_version,
	       (int)st.daemon_pid, st.protocol_version);
	printf("uptime:          ");
	print_uptime(st.uptime_ms);
	printf("\nclients:         %u\naddress spaces:  %u\nintervals:       %u\n"
	       "invalidations:   %" PRIu64 "\n",
	       st.clients, st.mms, st.intervals, st.events);
	printf("uffd features:   %#" PRIx64, st.uffd_features);
	for (size_t i = 0; i < ARRAY_SIZE(uffd_names); i++)
		if (st.uffd_features & uffd_names[i].bit)
			printf(" %s", uffd_names[i].name);
	unknown = uffd_unknown(st.uffd_features);
	if (unknown)
		printf(" (unknown bits %#" PRIx64 ")", unknown);
	printf("\nkernel:\n");
	for (size_t i = 0; i < ARRAY_SIZE(kfeat_names); i++)
		printf("  %-28s %s\n", kfeat_names[i].name,
		       st.kfeatures & kfeat_names[i].bit	  ? "yes"
		       : st.kfeatures_masked & kfeat_names[i].bit ? "masked (--mask-features)"
								  : "no");
	return 0;
}

static void list_json(const struct um_interval_info *iv, size_t n)
{
	struct json j;

	json_init(&j, stdout);
	json_begin_array(&j);
	for (size_t i = 0; i < n; i++) {
		json_begin_object(&j);
		json_key(&j, "id");
		json_u64(&j, iv[i].interval_id);
		json_key(&j, "pid");
		json_i64(&j, iv[i].pid);
		json_key(&j, "uid");
		json_u64(&j, iv[i].uid);
		json_key(&j, "start");
		json_hex(&j, iv[i].start);
		json_key(&j, "end");
		json_hex(&j, iv[i].start + iv[i].length);
		json_key(&j, "length");
		json_u64(&j, iv[i].length);
		json_key(&j, "seq");
		json_u64(&j, iv[i].seq);
		json_key(&j, "invalidations");
		json_u64(&j, iv[i].invalidations);
		json_key(&j, "subscribers");
		json_u64(&j, iv[i].subscribers);
		json_key(&j, "sync");
		json_bool(&j, iv[i].sync);
		json_key(&j, "backend");
		json_string(&j, um_backend_str(iv[i].backend));
		json_key(&j, "revalidate_ms");
		json_u64(&j, iv[i].revalidate_ms);
		json_key(&j, "dead");
		json_bool(&j, iv[i].dead);
		json_end_object(&j);
	}
	json_end_array(&j);
	json_end(&j);
}

static void list_text(const struct um_interval_info *iv, size_t n)
{
	printf("%6s %7s %6s %-33s %10s %8s %8s %4s %-5s %-10s %10s %s\n", "ID", "PID", "UID",
	       "RANGE", "LENGTH", "SEQ", "INVAL", "SUBS", "MODE", "BACKEND", "REVALIDATE", "STATE");
	for (size_t i = 0; i < n; i++) {
		char scan[24] = "off";

		if (iv[i].revalidate_ms)
			snprintf(scan, sizeof(scan), "%ums", iv[i].revalidate_ms);
		printf("%6" PRIu64 " %7d %6u %016" PRIx64 "-%016" PRIx64 " %10" PRIu64 " %8" PRIu64
		       " %8" PRIu64 " %4u %-5s %-10s %10s %s\n",
		       iv[i].interval_id, (int)iv[i].pid, (unsigned int)iv[i].uid, iv[i].start,
		       iv[i].start + iv[i].length, iv[i].length, iv[i].seq, iv[i].invalidations,
		       iv[i].subscribers, iv[i].sync ? "sync" : "async",
		       um_backend_str(iv[i].backend), scan, iv[i].dead ? "dead" : "live");
	}
}

int cmd_list(struct um_client *c, const struct opts *o, const struct cmd_args *a)
{
	struct um_interval_info *iv = NULL;
	size_t n = 0;
	int ret;

	ret = um_list(c, &iv, &n);
	if (ret < 0)
		return fail("list", ret);
	if (o->json)
		list_json(iv, n);
	else
		list_text(iv, n);
	free(iv);
	return 0;
}
