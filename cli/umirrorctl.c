/* SPDX-License-Identifier: MIT */
/*
 * umirrorctl - look at what umirrord mirrors.
 *
 *   umirrorctl [--socket PATH] [--json] status
 *   umirrorctl [--socket PATH] [--json] list
 *   umirrorctl [--socket PATH] [--json] [GRID] show PID ADDR[+LEN]
 *   umirrorctl [--socket PATH] [--json] [GRID] [--rearm] [--interval MS [--count N]]
 *              dirty PID [ADDR[+LEN]]
 *   umirrorctl [--socket PATH] [--json] [--count N] watch [PID]
 *
 * A plain libumirror client: it never inserts an interval, so it never
 * creates a userfaultfd (dirty subscribes, asynchronously, to the
 * intervals it harvests). The connection is UM_CONNECT_MANUAL: watch
 * dispatches events on the main thread, beside a signalfd.
 *
 * Exit status: 0 ok, 1 error (message on stderr), 2 usage (one line
 * saying what was wrong, then where help is, as ip(8) and systemctl(1) do).
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <umirror.h>

#include "grid.h"
#include "json.h"
#include "uapi_compat.h"
#include "um_page.h"

#define SHOW_MAX_PAGES (1ull << 22) /* 16 GiB: 32 MiB of entries */
#define DEFAULT_SOCKET "/run/umirror/umirrord.sock"

static const char *prog = "umirrorctl";

struct opts {
	const char *socket;
	bool json;
	uint64_t count; /* watch: events, dirty --interval: samples (0: no end) */
	uint64_t scale; /* pages per cell (0: automatic) */
	bool color;	/* from --color=WHEN and the terminal */
	bool no_legend;
	bool rearm;	      /* dirty: re-arm what is reported */
	uint64_t interval_ms; /* dirty: sample every this many ms (0: once) */
};

static int usage(FILE *f, int status)
{
	fprintf(f,
		"Usage: %s [OPTIONS] COMMAND\n"
		"\n"
		"Commands:\n"
		"  status                 daemon version, counters, kernel features\n"
		"  list                   intervals the daemon mirrors\n"
		"  show PID ADDR[+LEN]    page map of a mirrored process (hex ADDR,\n"
		"                         LEN in bytes with optional K/M/G; default one page)\n"
		"  dirty PID [ADDR[+LEN]] pages written since armed, of PID's intervals\n"
		"  watch [PID]            print invalidations until interrupted or PID is gone\n"
		"\n"
		"Options:\n"
		"  -s, --socket PATH      daemon socket (default $%s, else %s)\n"
		"  -j, --json             machine-readable output\n"
		"  -p, --pretty           JSON indented for people (implies --json)\n"
		"  -n, --count N          watch: exit after N invalidations;\n"
		"                         dirty --interval: after N samples\n"
		"      --scale N          show, dirty: N pages per cell (default: automatic)\n"
		"      --color[=WHEN]     auto (a terminal, no $NO_COLOR), always, never\n"
		"      --no-legend        show, dirty: no legend line\n"
		"      --rearm            dirty: re-arm what is reported (the owner's\n"
		"                         own harvest then misses it)\n"
		"  -i, --interval MS      dirty: harvest every MS ms, print the rate\n"
		"  -h, --help             this text\n"
		"  -V, --version          version\n",
		prog, "UMIRROR_SOCKET", DEFAULT_SOCKET);
	return status;
}

/* a usage error: what was wrong, in one line, and where help is; 2 */
static int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
	return 2;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(-err));
	return 1;
}

/* the path um_connect() uses: --socket, else a non-empty $UMIRROR_SOCKET */
static const char *socket_path(const struct opts *o)
{
	const char *env = getenv("UMIRROR_SOCKET");

	if (o->socket)
		return o->socket;
	return env && *env ? env : DEFAULT_SOCKET;
}

/* what a person can do about a failed connect to @path */
static void connect_hint(const char *path, int err)
{
	struct stat st;

	if (err == -EACCES) {
		struct group *gr = stat(path, &st) == 0 ? getgrgid(st.st_gid) : NULL;

		/* the socket's group, which a hand-started daemon may not give umirror */
		fprintf(stderr, "%s: join group %s (or run as root)\n", prog,
			gr && gr->gr_gid ? gr->gr_name : "umirror");
	} else if ((err == -ECONNREFUSED || err == -ENOENT) && stat(path, &st) == 0 &&
		   !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "%s: %s is not a socket\n", prog, path);
	} else if (err == -ECONNREFUSED || err == -ENOENT) {
		fprintf(stderr, "%s: is umirrord running? (systemctl start umirrord.socket)\n",
			prog);
	} else if (err == -EPROTOTYPE) {
		fprintf(stderr, "%s: %s is not a SOCK_SEQPACKET socket: not umirrord's\n", prog,
			path);
	}
}

static int connect_daemon(const struct opts *o, struct um_client **c)
{
	const char *path = socket_path(o);
	int ret = um_connect(path, UM_CONNECT_MANUAL, c);

	if (ret < 0) {
		fprintf(stderr, "%s: cannot connect to umirrord at %s: %s\n", prog, path,
			strerror(-ret));
		connect_hint(path, ret);
		return ret;
	}
	return 0;
}

/* a daemon's -ESRCH for @pid: the process may be alive, just not attached */
static int fail_pid(pid_t pid, int err)
{
	if (err == -ESRCH && (kill(pid, 0) == 0 || errno == EPERM))
		fprintf(stderr,
			"%s: pid %d is not attached to umirrord (only processes "
			"that inserted an interval are)\n",
			prog, (int)pid);
	else if (err == -ESRCH)
		fprintf(stderr, "%s: pid %d: no such process\n", prog, (int)pid);
	else if (err == -EACCES)
		fprintf(stderr,
			"%s: pid %d: not allowed: only root and the process's owner "
			"may look at it\n",
			prog, (int)pid);
	else
		return fail("request", err);
	return 1;
}

/* --- status --------------------------------------------------------------- */

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

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

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

static int cmd_status(struct um_client *c, const struct opts *o)
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

/* --- list ----------------------------------------------------------------- */

static int cmd_list(struct um_client *c, const struct opts *o)
{
	struct um_interval_info *iv = NULL;
	size_t n = 0;
	struct json j;
	int ret;

	ret = um_list(c, &iv, &n);
	if (ret < 0)
		return fail("list", ret);
	if (o->json) {
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
	} else {
		printf("%6s %7s %6s %-33s %10s %8s %8s %4s %-5s %-10s %10s %s\n", "ID", "PID",
		       "UID", "RANGE", "LENGTH", "SEQ", "INVAL", "SUBS", "MODE", "BACKEND",
		       "REVALIDATE", "STATE");
		for (size_t i = 0; i < n; i++) {
			char scan[24] = "off";

			if (iv[i].revalidate_ms)
				snprintf(scan, sizeof(scan), "%ums", iv[i].revalidate_ms);
			printf("%6" PRIu64 " %7d %6u %016" PRIx64 "-%016" PRIx64 " %10" PRIu64
			       " %8" PRIu64 " %8" PRIu64 " %4u %-5s %-10s %10s %s\n",
			       iv[i].interval_id, (int)iv[i].pid, (unsigned int)iv[i].uid,
			       iv[i].start, iv[i].start + iv[i].length, iv[i].length, iv[i].seq,
			       iv[i].invalidations, iv[i].subscribers,
			       iv[i].sync ? "sync" : "async", um_backend_str(iv[i].backend), scan,
			       iv[i].dead ? "dead" : "live");
		}
	}
	free(iv);
	return 0;
}

/* --- show ----------------------------------------------------------------- */

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

/* "1a2b", "0x1a2b": a hex number */
static int parse_hex(const char *s, uint64_t *out)
{
	char *end;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 16);
	return errno || *end ? -EINVAL : 0;
}

/* "4096", "0x1000", "64K", "2M", "1G" */
static int parse_len(const char *s, uint64_t *out)
{
	uint64_t v, mul = 1;
	char *end;

	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		v = strtoull(s + 2, &end, 16);
	else
		v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		mul = 1ull << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mul = 1ull << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mul = 1ull << 30;
		end++;
		break;
	}
	if (*end || v > UINT64_MAX / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

static int parse_pid(const char *s, pid_t *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > INT_MAX)
		return -EINVAL;
	*out = (pid_t)v;
	return 0;
}

/* consecutive entries @a, @b (page after page) say the same thing */
static bool same_run(uint64_t a, uint64_t b)
{
	uint64_t pa = a & UM_RAW_PFN_MASK, pb = b & UM_RAW_PFN_MASK;

	return (a & ~UM_RAW_PFN_MASK) == (b & ~UM_RAW_PFN_MASK) && (pa ? pb == pa + 1 : pb == 0);
}

/* the covering intervals, as show and dirty list them in JSON */
static void json_intervals(struct json *j, const struct um_interval_info *iv, size_t niv)
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

/* the covering intervals, one line each, as show and dirty print them */
static void print_intervals(const struct um_interval_info *iv, size_t niv)
{
	for (size_t i = 0; i < niv; i++)
		printf("interval %" PRIu64 " %016" PRIx64 "-%016" PRIx64 ": backend %s\n",
		       iv[i].interval_id, iv[i].start, iv[i].start + iv[i].length,
		       um_backend_str(iv[i].backend));
}

static void json_summary(struct json *j, const struct grid_kind *k, unsigned int nk,
			 const uint64_t *count)
{
	json_key(j, "summary");
	json_begin_object(j);
	for (unsigned int i = 0; i < nk; i++) {
		json_key(j, k[i].name);
		json_u64(j, count[i]);
	}
	json_end_object(j);
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

static struct grid_opts grid_opts_for(const struct opts *o)
{
	return (struct grid_opts){
		.columns = grid_columns(stdout),
		.scale = o->scale,
		.color = o->color,
		.legend = !o->no_legend,
	};
}

/* "12 pages: 3 written, 9 clean" with the summary's words */
static void print_summary(uint64_t n, const struct grid_kind *k, unsigned int nk,
			  const uint64_t *count)
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

/* @cmd PID ADDR[+LEN]: 0, or 2 after a usage message */
static int parse_range(const char *cmd, int argc, char **argv, pid_t *pid, uint64_t *start,
		       uint64_t *npages)
{
	uint64_t addr, len = UMP_PAGE_SIZE, end;
	char *plus;

	if (argc < 2)
		return usage_error("%s needs PID and ADDR[+LEN]", cmd);
	if (argc > 2)
		return usage_error("%s: unexpected argument '%s'", cmd, argv[2]);
	if (parse_pid(argv[0], pid) < 0)
		return usage_error("%s: bad pid '%s'", cmd, argv[0]);
	plus = strchr(argv[1], '+');
	if (plus)
		*plus++ = '\0';
	if (parse_hex(argv[1], &addr) < 0)
		return usage_error("%s: bad address '%s': want hexadecimal", cmd, argv[1]);
	if (plus && (parse_len(plus, &len) < 0 || len == 0))
		return usage_error("%s: bad length '%s': want a number > 0, K/M/G allowed", cmd,
				   plus);
	if (addr + len < addr || addr + len > UINT64_MAX - UMP_PAGE_SIZE + 1)
		return usage_error("%s: range wraps around", cmd);
	*start = addr & ~(UMP_PAGE_SIZE - 1);
	end = (addr + len + UMP_PAGE_SIZE - 1) & ~(UMP_PAGE_SIZE - 1);
	*npages = (end - *start) / UMP_PAGE_SIZE;
	if (*npages > SHOW_MAX_PAGES)
		return usage_error("%s: range too large (at most %llu pages)", cmd,
				   (unsigned long long)SHOW_MAX_PAGES);
	return 0;
}

static int cmd_show(struct um_client *c, const struct opts *o, pid_t pid, uint64_t start,
		    uint64_t n)
{
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

/* --- dirty ---------------------------------------------------------------- */

enum dkind { D_CLEAN, D_WRITTEN, D_UNMIRRORED, D_MAX };

/* 'w' and '.' mean what they mean in show; ' ' is outside every interval */
static const struct grid_kind dkinds[D_MAX] = {
	[D_CLEAN] = { '.', "clean", NULL },
	[D_WRITTEN] = { 'w', "written", "1;31" },
	[D_UNMIRRORED] = { ' ', "not_mirrored", NULL },
};

#define DIRTY_RANGES 4096 /* ranges per um_interval_dirty() call */

struct dirty_sub {
	struct um_interval *iv;
	uint64_t from, to; /* the part of the asked range inside it */
};

struct dirty_state {
	pid_t pid;
	uint64_t start, npages;
	struct dirty_sub *sub;
	struct um_interval_info *info; /* of sub[i], for the output */
	size_t nsub;
	uint8_t *kind;
	struct um_dirty_range *ranges;
};

/* dirty PID [ADDR[+LEN]]: 0, or 2 after a usage message */
static int parse_dirty(int argc, char **argv, pid_t *pid, uint64_t *start, uint64_t *npages)
{
	if (argc < 1)
		return usage_error("dirty needs PID [ADDR[+LEN]]");
	if (argc == 1) {
		*start = *npages = 0; /* every interval of PID */
		if (parse_pid(argv[0], pid) < 0)
			return usage_error("dirty: bad pid '%s'", argv[0]);
		return 0;
	}
	return parse_range("dirty", argc, argv, pid, start, npages);
}

/*
 * Why @pid has no interval this caller may see: the daemon's answer to a
 * one-page raw snapshot says whether it is attached and whose it is.
 */
static int dirty_no_interval(struct um_client *c, pid_t pid)
{
	uint64_t e;
	long ret = um_snapshot_raw(c, pid, 0, 1, &e);

	if (ret == -ESRCH || ret == -EACCES)
		return fail_pid(pid, (int)ret);
	fprintf(stderr, "%s: pid %d has no interval in that range\n", prog, (int)pid);
	return 1;
}

/* subscribe to every live interval of @pid over the range: 0 or exit status */
static int dirty_subscribe(struct um_client *c, struct dirty_state *d)
{
	struct um_interval_info *all = NULL;
	uint64_t end;
	size_t n = 0;
	int ret;

	ret = um_list(c, &all, &n);
	if (ret < 0)
		return fail("list", ret);
	/* no range given: from the first interval's start to the last one's end */
	if (!d->npages) {
		uint64_t lo = UINT64_MAX, hi = 0;

		for (size_t i = 0; i < n; i++)
			if (all[i].pid == d->pid && !all[i].dead) {
				lo = all[i].start < lo ? all[i].start : lo;
				hi = all[i].start + all[i].length > hi
					     ? all[i].start + all[i].length
					     : hi;
			}
		if (hi > lo && (hi - lo) / UMP_PAGE_SIZE > SHOW_MAX_PAGES) {
			free(all);
			fprintf(stderr,
				"%s: the intervals of pid %d span more than 16 GiB: "
				"give ADDR+LEN\n",
				prog, (int)d->pid);
			return 1;
		}
		if (hi > lo) {
			d->start = lo;
			d->npages = (hi - lo) / UMP_PAGE_SIZE;
		}
	}
	end = d->start + d->npages * UMP_PAGE_SIZE;
	d->sub = calloc(n ? n : 1, sizeof(*d->sub));
	d->info = calloc(n ? n : 1, sizeof(*d->info));
	if (!d->sub || !d->info) {
		free(all);
		return fail("dirty", -ENOMEM);
	}
	for (size_t i = 0; i < n; i++) {
		struct dirty_sub *s = &d->sub[d->nsub];

		if (all[i].pid != d->pid || all[i].dead || !d->npages || all[i].start >= end ||
		    all[i].start + all[i].length <= d->start)
			continue;
		d->info[d->nsub] = all[i];
		s->from = all[i].start > d->start ? all[i].start : d->start;
		s->to = all[i].start + all[i].length < end ? all[i].start + all[i].length : end;
		/* asynchronous: the owner's writers never wait for this tool */
		ret = um_interval_subscribe(c, d->pid, all[i].interval_id, UM_INTERVAL_ASYNC, NULL,
					    NULL, &s->iv);
		if (ret == -ESRCH)
			continue; /* removed since the list */
		if (ret < 0) {
			free(all);
			return ret == -EACCES ? fail_pid(d->pid, ret) : fail("subscribe", ret);
		}
		d->nsub++;
	}
	free(all);
	if (!d->nsub)
		return dirty_no_interval(c, d->pid);
	return 0;
}

/* one harvest of every subscribed interval into d->kind; counts in @count */
static int dirty_sample(struct dirty_state *d, const struct opts *o, uint64_t *count)
{
	memset(d->kind, D_UNMIRRORED, d->npages);
	for (size_t i = 0; i < d->nsub; i++) {
		struct dirty_sub *s = &d->sub[i];
		uint64_t at = s->from;

		memset(d->kind + (s->from - d->start) / UMP_PAGE_SIZE, D_CLEAN,
		       (s->to - s->from) / UMP_PAGE_SIZE);
		while (at < s->to) {
			uint64_t from = at;
			long n = um_interval_dirty(s->iv, at, s->to, o->rearm ? UM_DIRTY_REARM : 0,
						   d->ranges, DIRTY_RANGES, &at);

			if (n == -EOPNOTSUPP) {
				fprintf(stderr,
					"%s: interval %" PRIu64 " (backend %s) cannot see "
					"writes: only the revalidation scan watches it\n",
					prog, d->info[i].interval_id,
					um_backend_str(d->info[i].backend));
				return -EOPNOTSUPP;
			}
			if (n < 0)
				return (int)n;
			for (long r = 0; r < n; r++) {
				/* inside what was asked, whatever the daemon said */
				uint64_t rs =
					d->ranges[r].start > s->from ? d->ranges[r].start : s->from;
				uint64_t re = d->ranges[r].end < s->to ? d->ranges[r].end : s->to;

				if (rs < re)
					memset(d->kind + (rs - d->start) / UMP_PAGE_SIZE, D_WRITTEN,
					       (re - rs) / UMP_PAGE_SIZE);
			}
			if (at <= from)
				return -EIO; /* no progress: do not loop forever */
		}
	}
	memset(count, 0, D_MAX * sizeof(*count));
	for (uint64_t i = 0; i < d->npages; i++)
		count[d->kind[i]]++;
	return 0;
}

/*
 * The rate of one sample, from the one before: with --rearm every sample
 * holds the pages written since the last, without it the set only grows
 * and the new pages are what counts. Either way a page written twice in
 * one interval counts once: a lower bound on the write traffic, the
 * figure a pre-copy migration or incremental checkpoint has to move.
 */
static double dirty_rate(const struct opts *o, uint64_t written, uint64_t before, double secs)
{
	uint64_t pages = o->rearm ? written : written > before ? written - before : 0;

	return secs > 0 ? pages / secs : 0;
}

static void dirty_json(const struct dirty_state *d, const struct opts *o, const uint64_t *count,
		       uint64_t sample, double elapsed, const double *rate)
{
	struct json j;

	json_init(&j, stdout);
	json_begin_object(&j);
	json_key(&j, "pid");
	json_i64(&j, d->pid);
	json_key(&j, "start");
	json_hex(&j, d->start);
	json_key(&j, "npages");
	json_u64(&j, d->npages);
	json_key(&j, "rearm");
	json_bool(&j, o->rearm);
	if (o->interval_ms) {
		json_key(&j, "sample");
		json_u64(&j, sample);
		json_key(&j, "elapsed_s");
		json_double(&j, elapsed, 3);
	}
	json_intervals(&j, d->info, d->nsub);
	/* the written runs, as the daemon merged them (clipped to the range) */
	json_key(&j, "written");
	json_begin_array(&j);
	for (uint64_t i = 0, run; i < d->npages; i += run) {
		for (run = 1; i + run < d->npages && d->kind[i + run] == d->kind[i]; run++)
			;
		if (d->kind[i] != D_WRITTEN)
			continue;
		json_begin_object(&j);
		json_key(&j, "start");
		json_hex(&j, d->start + i * UMP_PAGE_SIZE);
		json_key(&j, "end");
		json_hex(&j, d->start + (i + run) * UMP_PAGE_SIZE);
		json_key(&j, "pages");
		json_u64(&j, run);
		json_end_object(&j);
	}
	json_end_array(&j);
	json_summary(&j, dkinds, D_MAX, count);
	if (rate) {
		json_key(&j, "rate_pages_per_s");
		json_double(&j, *rate, 1);
		json_key(&j, "rate_mib_per_s");
		json_double(&j, *rate * UMP_PAGE_SIZE / (1 << 20), 3);
	}
	json_end_object(&j);
	json_end(&j);
}

static int dirty_text(const struct dirty_state *d, const struct opts *o, const uint64_t *count,
		      uint64_t sample, double elapsed, const double *rate)
{
	struct grid_opts g = grid_opts_for(o);
	int ret;

	g.legend = g.legend && sample <= 1; /* once is enough when repeated */
	if (o->interval_ms)
		printf("sample %" PRIu64 " at %.3f s\n", sample, elapsed);
	if (sample <= 1)
		print_intervals(d->info, d->nsub);
	ret = grid_print(stdout, &g, dkinds, D_MAX, d->start, d->kind, d->npages);
	if (ret < 0)
		return ret;
	print_summary(d->npages, dkinds, D_MAX, count);
	if (rate)
		printf("rate: %.1f pages/s, %.3f MiB/s\n", *rate,
		       *rate * UMP_PAGE_SIZE / (1 << 20));
	fflush(stdout);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Wait @ms, reading (and dropping) the invalidations the subscriptions
 * bring meanwhile. Return: 0 waited, 1 a signal came, or -errno.
 */
static int dirty_wait(struct um_client *c, int sfd, uint64_t ms)
{
	double until = now_s() + ms / 1000.0;
	struct pollfd pfd[2] = {
		{ .fd = um_fd(c), .events = POLLIN },
		{ .fd = sfd, .events = POLLIN },
	};

	for (;;) {
		double left = until - now_s();
		int ret;

		if (left <= 0)
			return 0;
		ret = poll(pfd, 2, (int)(left * 1000) + 1);
		if (ret < 0 && errno != EINTR)
			return -errno;
		if (ret > 0 && pfd[1].revents)
			return 1;
		if (ret > 0 && pfd[0].revents) {
			ret = um_dispatch(c, 0);
			if (ret < 0)
				return ret;
		}
	}
}

static int cmd_dirty(struct um_client *c, const struct opts *o, pid_t pid, uint64_t start,
		     uint64_t npages)
{
	struct dirty_state d = { .pid = pid, .start = start, .npages = npages };
	uint64_t count[D_MAX], before = 0;
	double t0, last, now;
	int sfd = -1, ret, status = 1;
	sigset_t mask;

	/* SIGINT/SIGTERM end a repeated harvest cleanly, as they end watch */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (o->interval_ms) {
		if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
			return fail("sigprocmask", -errno);
		sfd = signalfd(-1, &mask, SFD_CLOEXEC);
		if (sfd < 0)
			return fail("signalfd", -errno);
	}
	ret = dirty_subscribe(c, &d);
	if (ret)
		goto out;
	d.kind = malloc(d.npages);
	d.ranges = calloc(DIRTY_RANGES, sizeof(*d.ranges));
	if (!d.kind || !d.ranges) {
		fail("dirty", -ENOMEM);
		goto out;
	}
	t0 = last = now_s();
	for (uint64_t sample = 1;; sample++) {
		double rate;

		ret = dirty_sample(&d, o, count);
		now = now_s();
		/* the owner went away between samples: what it wrote is all said */
		if (ret == -EFAULT && sample > 1) {
			fprintf(stderr, "%s: pid %d is gone\n", prog, (int)pid);
			status = 0;
			break;
		}
		if (ret < 0) {
			if (ret != -EOPNOTSUPP)
				fail("dirty", ret);
			goto out;
		}
		rate = dirty_rate(o, count[D_WRITTEN], before, now - last);
		if (o->json)
			dirty_json(&d, o, count, sample, now - t0, sample > 1 ? &rate : NULL);
		else if ((ret = dirty_text(&d, o, count, sample, now - t0,
					   sample > 1 ? &rate : NULL)))
			goto out_fail;
		before = count[D_WRITTEN];
		last = now;
		if (!o->interval_ms || (o->count && sample >= o->count)) {
			status = 0;
			break;
		}
		ret = dirty_wait(c, sfd, o->interval_ms);
		if (ret < 0)
			goto out_fail;
		if (ret == 1) {
			ret = 0;
			status = 0;
			break;
		}
	}
	goto out;
out_fail:
	fail(ret == -ENOTCONN ? "dirty: daemon went away" : "dirty", ret);
out:
	for (size_t i = 0; i < d.nsub; i++)
		um_interval_remove(d.sub[i].iv);
	free(d.sub);
	free(d.info);
	free(d.kind);
	free(d.ranges);
	if (sfd >= 0)
		close(sfd);
	return ret > 0 ? ret : status;
}

/* --- watch ---------------------------------------------------------------- */

struct watch_state {
	const struct opts *o;
	uint64_t seen;
	bool released; /* a release came in: is anything of the pid left? */
};

static void on_invalidate(uint64_t interval_id, pid_t pid, const struct um_invalidation *inv,
			  void *priv)
{
	struct watch_state *w = priv;
	struct timespec ts;
	struct tm tm;
	char when[32];

	if (w->o->count && w->seen >= w->o->count)
		return; /* more arrived in the same dispatch: not asked for */
	w->seen++;
	if (inv->reason == UM_REASON_RELEASE)
		w->released = true;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (w->o->json) {
		struct json j;

		json_init(&j, stdout);
		json_begin_object(&j);
		json_key(&j, "time");
		json_double(&j, ts.tv_sec + ts.tv_nsec / 1e9, 6);
		json_key(&j, "pid");
		json_i64(&j, pid);
		json_key(&j, "interval");
		json_u64(&j, interval_id);
		json_key(&j, "reason");
		json_string(&j, um_reason_str(inv->reason));
		json_key(&j, "start");
		json_hex(&j, inv->start);
		json_key(&j, "end");
		json_hex(&j, inv->end);
		json_key(&j, "pages");
		json_u64(&j, (inv->end - inv->start) / UMP_PAGE_SIZE);
		json_key(&j, "seq");
		json_u64(&j, inv->seq);
		json_key(&j, "tid");
		json_i64(&j, inv->tid);
		json_end_object(&j);
		json_end(&j);
		return;
	}
	localtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	printf("%s.%06ld pid %d interval %" PRIu64 " %-7s %016" PRIx64 "-%016" PRIx64 " (%" PRIu64
	       " pages) seq %" PRIu64 "\n",
	       when, ts.tv_nsec / 1000, (int)pid, interval_id, um_reason_str(inv->reason),
	       inv->start, inv->end, (uint64_t)((inv->end - inv->start) / UMP_PAGE_SIZE), inv->seq);
	fflush(stdout);
}

/* watch [PID]: 0, or 2 after a usage message */
static int parse_watch(int argc, char **argv, pid_t *pid)
{
	*pid = 0;
	if (argc > 1)
		return usage_error("watch: unexpected argument '%s'", argv[1]);
	if (argc == 1 && parse_pid(argv[0], pid) < 0)
		return usage_error("watch: bad pid '%s'", argv[0]);
	return 0;
}

/*
 * Whether @pid still has a live interval. After a release: the owner
 * exited (its intervals are listed dead until its connection is gone) or
 * removed its last interval; either way nothing of it is left to watch.
 */
static bool pid_has_live_interval(struct um_client *c, pid_t pid)
{
	struct um_interval_info *iv = NULL;
	bool live = false;
	size_t n = 0;

	if (um_list(c, &iv, &n) < 0)
		return true; /* the next dispatch reports the broken connection */
	for (size_t i = 0; i < n && !live; i++)
		live = iv[i].pid == pid && !iv[i].dead;
	free(iv);
	return live;
}

static int cmd_watch(struct um_client *c, const struct opts *o, pid_t pid)
{
	struct watch_state w = { .o = o };
	struct pollfd pfd[2];
	sigset_t mask;
	int sfd, ret;

	/* SIGINT/SIGTERM end the loop cleanly through a signalfd */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return fail("sigprocmask", -errno);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		return fail("signalfd", -errno);

	ret = um_watch(c, pid, on_invalidate, &w);
	if (ret < 0) {
		close(sfd);
		return pid && (ret == -ESRCH || ret == -EACCES) ? fail_pid(pid, ret)
								: fail("watch", ret);
	}
	pfd[0] = (struct pollfd){ .fd = um_fd(c), .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	while (!o->count || w.seen < o->count) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents) {
			ret = um_dispatch(c, 0);
			if (ret < 0)
				break;
			ret = 0;
		}
		if (pid && w.released) {
			w.released = false;
			if (!pid_has_live_interval(c, pid))
				break;
		}
	}
	close(sfd);
	if (ret < 0)
		return fail(ret == -ENOTCONN ? "watch: daemon went away" : "watch", ret);
	return 0;
}

/* --- main ----------------------------------------------------------------- */

/* a positive decimal number for option @name: 0, or 2 after a usage message */
static int parse_positive(const char *name, const char *arg, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || !*out || *out > max)
		return usage_error("%s wants a positive number%s, not '%s'", name,
				   max < UINT64_MAX ? " (not too large)" : "", arg);
	return 0;
}

enum { OPT_SCALE = 256, OPT_COLOR, OPT_NO_LEGEND, OPT_REARM };

int main(int argc, char **argv)
{
	static const struct option longopts[] = { { "socket", required_argument, NULL, 's' },
						  { "json", no_argument, NULL, 'j' },
						  { "pretty", no_argument, NULL, 'p' },
						  { "count", required_argument, NULL, 'n' },
						  { "scale", required_argument, NULL, OPT_SCALE },
						  { "color", optional_argument, NULL, OPT_COLOR },
						  { "colour", optional_argument, NULL, OPT_COLOR },
						  { "no-legend", no_argument, NULL, OPT_NO_LEGEND },
						  { "rearm", no_argument, NULL, OPT_REARM },
						  { "interval", required_argument, NULL, 'i' },
						  { "help", no_argument, NULL, 'h' },
						  { "version", no_argument, NULL, 'V' },
						  {} };
	struct opts o = { 0 };
	struct um_client *c = NULL;
	uint64_t start = 0, npages = 0;
	const char *cmd, *color = "auto";
	bool grid_opt = false;
	pid_t pid = 0;
	int opt, ret;

	/* getopt names the program after argv[0]: not a build or install path */
	argv[0] = (char *)prog;
	while ((opt = getopt_long(argc, argv, "s:jpn:i:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			o.socket = optarg;
			break;
		case 'j':
			o.json = true;
			break;
		case 'p':
			/* pretty JSON is still JSON: --pretty implies --json */
			o.json = true;
			json_set_pretty(true);
			break;
		case 'n':
			if ((ret = parse_positive("--count", optarg, UINT64_MAX, &o.count)))
				return ret;
			break;
		case 'i':
			/* a day: anything longer is a typo */
			if ((ret = parse_positive("--interval", optarg, 86400000, &o.interval_ms)))
				return ret;
			break;
		case OPT_SCALE:
			if ((ret = parse_positive("--scale", optarg, SHOW_MAX_PAGES, &o.scale)))
				return ret;
			grid_opt = true;
			break;
		case OPT_COLOR:
			color = optarg ? optarg : "always";
			if (grid_want_color(stdout, color) < 0)
				return usage_error("--color wants auto, always or never, not '%s'",
						   color);
			grid_opt = true;
			break;
		case OPT_NO_LEGEND:
			o.no_legend = true;
			grid_opt = true;
			break;
		case OPT_REARM:
			o.rearm = true;
			break;
		case 'h':
			return usage(stdout, 0);
		case 'V':
			printf("umirrorctl %s\n", UMIRROR_VERSION_STRING);
			return 0;
		default:
			/* getopt said what was wrong */
			fprintf(stderr, "Try '%s --help'.\n", prog);
			return 2;
		}
	}
	o.color = grid_want_color(stdout, color) > 0;
	if (optind >= argc)
		return usage_error("no command given (status, list, show, dirty or watch)");
	cmd = argv[optind++];
	argc -= optind;
	argv += optind;

	if (strcmp(cmd, "status") && strcmp(cmd, "list") && strcmp(cmd, "show") &&
	    strcmp(cmd, "dirty") && strcmp(cmd, "watch"))
		return usage_error("unknown command '%s'", cmd);
	if ((!strcmp(cmd, "status") || !strcmp(cmd, "list")) && argc)
		return usage_error("%s takes no arguments, got '%s'", cmd, argv[0]);
	if (o.count && strcmp(cmd, "watch") && !(o.interval_ms && !strcmp(cmd, "dirty")))
		return usage_error("--count only applies to watch and dirty --interval");
	if ((o.rearm || o.interval_ms) && strcmp(cmd, "dirty"))
		return usage_error("--%s only applies to dirty", o.rearm ? "rearm" : "interval");
	if (grid_opt && strcmp(cmd, "show") && strcmp(cmd, "dirty"))
		return usage_error("--scale, --color and --no-legend only apply to show and dirty");
	/* arguments are checked before connecting: usage errors stay 2 */
	if (!strcmp(cmd, "show") && (ret = parse_range("show", argc, argv, &pid, &start, &npages)))
		return ret;
	if (!strcmp(cmd, "dirty") && (ret = parse_dirty(argc, argv, &pid, &start, &npages)))
		return ret;
	if (!strcmp(cmd, "watch") && (ret = parse_watch(argc, argv, &pid)))
		return ret;

	if (connect_daemon(&o, &c) < 0)
		return 1;
	if (!strcmp(cmd, "status"))
		ret = cmd_status(c, &o);
	else if (!strcmp(cmd, "list"))
		ret = cmd_list(c, &o);
	else if (!strcmp(cmd, "show"))
		ret = cmd_show(c, &o, pid, start, npages);
	else if (!strcmp(cmd, "dirty"))
		ret = cmd_dirty(c, &o, pid, start, npages);
	else
		ret = cmd_watch(c, &o, pid);
	um_disconnect(c);
	return ret;
}
