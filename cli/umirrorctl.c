/* SPDX-License-Identifier: MIT */
/*
 * umirrorctl - look at what umirrord mirrors.
 *
 *   umirrorctl [--socket PATH] [--json] status
 *   umirrorctl [--socket PATH] [--json] list
 *   umirrorctl [--socket PATH] [--json] show PID ADDR[+LEN]
 *   umirrorctl [--socket PATH] [--json] [--count N] watch [PID]
 *
 * A plain libumirror client: it never inserts an interval, so it never
 * creates a userfaultfd. The connection is UM_CONNECT_MANUAL: watch
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

#include "json.h"
#include "uapi_compat.h"

#define PAGE_SIZE ((uint64_t)4096)
#define SHOW_MAX_PAGES (1ull << 22) /* 16 GiB: 32 MiB of entries */
#define MAP_COLUMNS 64
#define DEFAULT_SOCKET "/run/umirror/umirrord.sock"

static const char *prog = "umirrorctl";

struct opts {
	const char *socket;
	bool json;
	uint64_t count; /* watch: stop after this many events (0: never) */
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
		"  watch [PID]            print invalidations until interrupted\n"
		"\n"
		"Options:\n"
		"  -s, --socket PATH      daemon socket (default $%s, else %s)\n"
		"  -j, --json             machine-readable output\n"
		"  -n, --count N          watch: exit after N invalidations\n"
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
		fprintf(stderr, "%s: pid %d is not attached to umirrord (only processes "
			"that inserted an interval are)\n", prog, (int)pid);
	else if (err == -ESRCH)
		fprintf(stderr, "%s: pid %d: no such process\n", prog, (int)pid);
	else if (err == -EPERM || err == -EACCES)
		fprintf(stderr, "%s: pid %d: not allowed: only root and the process's owner "
			"may look at it\n", prog, (int)pid);
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
	printf("%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64 ".%03" PRIu64, s / 3600 % 24,
	       s / 60 % 60, s % 60, ms % 1000);
}

static void status_json(const struct um_status *st)
{
	struct json j;

	json_init(&j, stdout);
	json_begin_object(&j);
	json_key(&j, "daemon_version"); json_string(&j, st->daemon_version);
	json_key(&j, "daemon_pid"); json_i64(&j, st->daemon_pid);
	json_key(&j, "protocol_version"); json_u64(&j, st->protocol_version);
	json_key(&j, "uptime_ms"); json_u64(&j, st->uptime_ms);
	json_key(&j, "clients"); json_u64(&j, st->clients);
	json_key(&j, "address_spaces"); json_u64(&j, st->mms);
	json_key(&j, "intervals"); json_u64(&j, st->intervals);
	json_key(&j, "events"); json_u64(&j, st->events);
	json_key(&j, "uffd_features");
	json_begin_object(&j);
	json_key(&j, "mask"); json_hex(&j, st->uffd_features);
	json_key(&j, "names");
	json_begin_array(&j);
	for (size_t i = 0; i < ARRAY_SIZE(uffd_names); i++)
		if (st->uffd_features & uffd_names[i].bit)
			json_string(&j, uffd_names[i].name);
	json_end_array(&j);
	json_key(&j, "unknown"); json_hex(&j, uffd_unknown(st->uffd_features));
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
	       "invalidations:   %" PRIu64 "\n", st.clients, st.mms, st.intervals, st.events);
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
		       st.kfeatures & kfeat_names[i].bit ? "yes" :
		       st.kfeatures_masked & kfeat_names[i].bit ? "masked (--mask-features)" : "no");
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
			json_key(&j, "id"); json_u64(&j, iv[i].interval_id);
			json_key(&j, "pid"); json_i64(&j, iv[i].pid);
			json_key(&j, "uid"); json_u64(&j, iv[i].uid);
			json_key(&j, "start"); json_hex(&j, iv[i].start);
			json_key(&j, "end"); json_hex(&j, iv[i].start + iv[i].length);
			json_key(&j, "length"); json_u64(&j, iv[i].length);
			json_key(&j, "seq"); json_u64(&j, iv[i].seq);
			json_key(&j, "invalidations"); json_u64(&j, iv[i].invalidations);
			json_key(&j, "subscribers"); json_u64(&j, iv[i].subscribers);
			json_key(&j, "sync"); json_bool(&j, iv[i].sync);
			json_key(&j, "backend"); json_string(&j, um_backend_str(iv[i].backend));
			json_key(&j, "dead"); json_bool(&j, iv[i].dead);
			json_end_object(&j);
		}
		json_end_array(&j);
		json_end(&j);
	} else {
		printf("%6s %7s %6s %-33s %10s %8s %8s %4s %-5s %-10s %s\n", "ID", "PID", "UID",
		       "RANGE", "LENGTH", "SEQ", "INVAL", "SUBS", "MODE", "BACKEND", "STATE");
		for (size_t i = 0; i < n; i++)
			printf("%6" PRIu64 " %7d %6u %016" PRIx64 "-%016" PRIx64 " %10" PRIu64
			       " %8" PRIu64 " %8" PRIu64 " %4u %-5s %-10s %s\n",
			       iv[i].interval_id, (int)iv[i].pid, (unsigned int)iv[i].uid,
			       iv[i].start, iv[i].start + iv[i].length, iv[i].length, iv[i].seq,
			       iv[i].invalidations, iv[i].subscribers,
			       iv[i].sync ? "sync" : "async", um_backend_str(iv[i].backend),
			       iv[i].dead ? "dead" : "live");
	}
	free(iv);
	return 0;
}

/* --- show ----------------------------------------------------------------- */

enum kind { K_NONE, K_ZERO, K_RO, K_RW, K_SWAP, K_HUGE, K_FILE, K_NOPERM, K_HOLE, K_MAX };

static const struct {
	char c;
	const char *name;
} kinds[K_MAX] = {
	[K_NONE] = { '.', "none" },	  [K_ZERO] = { 'z', "zero" },
	[K_RO] = { 'r', "read_only" },	  [K_RW] = { 'w', "writable" },
	[K_SWAP] = { 's', "swapped" },	  [K_HUGE] = { 'H', "huge" },
	[K_FILE] = { 'f', "file" },	  [K_NOPERM] = { '!', "no_permission" },
	[K_HOLE] = { ' ', "hole" },
};

static enum kind classify(uint64_t e)
{
	if (e & UM_RAW_HOLE)
		return K_HOLE;
	if (e & UM_RAW_NOPERM)
		return K_NOPERM;
	if (e & UM_RAW_PRESENT) {
		if (e & UM_RAW_HUGE)
			return K_HUGE;
		if (e & UM_RAW_ZERO)
			return K_ZERO;
		if (e & UM_RAW_FILE)
			return K_FILE;
		return e & UM_RAW_WRITE ? K_RW : K_RO;
	}
	return e & UM_RAW_SWAP ? K_SWAP : K_NONE;
}

static const struct {
	uint64_t bit;
	const char *name;
} raw_names[] = {
	{ UM_RAW_PRESENT, "present" }, { UM_RAW_WRITE, "write" },   { UM_RAW_ZERO, "zero" },
	{ UM_RAW_SWAP, "swap" },       { UM_RAW_FILE, "file" },	    { UM_RAW_EXCL, "exclusive" },
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
	case 'k': case 'K': mul = 1ull << 10; end++; break;
	case 'm': case 'M': mul = 1ull << 20; end++; break;
	case 'g': case 'G': mul = 1ull << 30; end++; break;
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

static void show_json(pid_t pid, uint64_t start, const uint64_t *e, uint64_t n, int status,
		      const uint64_t *count, const struct um_interval_info *iv, size_t niv)
{
	struct json j;

	json_init(&j, stdout);
	json_begin_object(&j);
	json_key(&j, "pid"); json_i64(&j, pid);
	json_key(&j, "start"); json_hex(&j, start);
	json_key(&j, "npages"); json_u64(&j, n);
	json_key(&j, "status"); json_i64(&j, status);
	json_key(&j, "intervals");
	json_begin_array(&j);
	for (size_t i = 0; i < niv; i++) {
		json_begin_object(&j);
		json_key(&j, "id"); json_u64(&j, iv[i].interval_id);
		json_key(&j, "start"); json_hex(&j, iv[i].start);
		json_key(&j, "end"); json_hex(&j, iv[i].start + iv[i].length);
		json_key(&j, "backend"); json_string(&j, um_backend_str(iv[i].backend));
		json_end_object(&j);
	}
	json_end_array(&j);
	json_key(&j, "entries");
	json_begin_array(&j);
	for (uint64_t i = 0; i < n; i++) {
		json_begin_object(&j);
		json_key(&j, "addr"); json_hex(&j, start + i * PAGE_SIZE);
		json_key(&j, "pfn"); json_u64(&j, e[i] & UM_RAW_PFN_MASK);
		json_key(&j, "flags");
		json_begin_array(&j);
		for (size_t b = 0; b < ARRAY_SIZE(raw_names); b++)
			if (e[i] & raw_names[b].bit)
				json_string(&j, raw_names[b].name);
		json_end_array(&j);
		json_end_object(&j);
	}
	json_end_array(&j);
	json_key(&j, "summary");
	json_begin_object(&j);
	for (int k = 0; k < K_MAX; k++) {
		json_key(&j, kinds[k].name);
		json_u64(&j, count[k]);
	}
	json_end_object(&j);
	json_end_object(&j);
	json_end(&j);
}

static void show_text(uint64_t start, const uint64_t *e, uint64_t n, int status,
		      const uint64_t *count)
{
	char line[MAP_COLUMNS + 1];

	printf("legend: ");
	for (int k = 0; k < K_MAX; k++)
		printf("'%c' %s%s", kinds[k].c, kinds[k].name, k + 1 < K_MAX ? ", " : "\n");
	for (uint64_t i = 0; i < n; i += MAP_COLUMNS) {
		uint64_t cols = n - i < MAP_COLUMNS ? n - i : MAP_COLUMNS;

		for (uint64_t k = 0; k < cols; k++)
			line[k] = kinds[classify(e[i + k])].c;
		line[cols] = '\0';
		printf("%016" PRIx64 " |%s|\n", start + i * PAGE_SIZE, line);
	}
	printf("%" PRIu64 " pages:", n);
	for (int k = 0; k < K_MAX; k++)
		if (count[k])
			printf(" %" PRIu64 " %s", count[k], kinds[k].name);
	printf("\n");
	if (status == -EFAULT)
		printf("note: part of the range is not mapped\n");
	else if (status == -EPERM)
		printf("note: part of the range has no read permission\n");
}

/* show PID ADDR[+LEN]: 0, or 2 after a usage message */
static int parse_show(int argc, char **argv, pid_t *pid, uint64_t *start, uint64_t *npages)
{
	uint64_t addr, len = PAGE_SIZE, end;
	char *plus;

	if (argc < 2)
		return usage_error("show needs PID and ADDR[+LEN]");
	if (argc > 2)
		return usage_error("show: unexpected argument '%s'", argv[2]);
	if (parse_pid(argv[0], pid) < 0)
		return usage_error("show: bad pid '%s'", argv[0]);
	plus = strchr(argv[1], '+');
	if (plus)
		*plus++ = '\0';
	if (parse_hex(argv[1], &addr) < 0)
		return usage_error("show: bad address '%s': want hexadecimal", argv[1]);
	if (plus && (parse_len(plus, &len) < 0 || len == 0))
		return usage_error("show: bad length '%s': want a number > 0, K/M/G allowed",
				   plus);
	if (addr + len < addr || addr + len > UINT64_MAX - PAGE_SIZE + 1)
		return usage_error("show: range wraps around");
	*start = addr & ~(PAGE_SIZE - 1);
	end = (addr + len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	*npages = (end - *start) / PAGE_SIZE;
	if (*npages > SHOW_MAX_PAGES)
		return usage_error("show: range too large (at most %llu pages)",
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

	e = calloc(n, sizeof(*e));
	if (!e)
		return fail("show", -ENOMEM);

	/* -EFAULT (holes) and -EPERM (PROT_NONE) still fill every entry */
	ret = um_snapshot_raw(c, pid, start, n, e);
	for (uint64_t i = 0; i < n; i++)
		count[classify(e[i])]++;
	/*
	 * The daemon answers a caller that may not look at @pid with -EPERM
	 * too, and fills nothing: a PROT_NONE -EPERM always comes with at
	 * least one entry marked UM_RAW_NOPERM, a refusal never does.
	 */
	if (ret == -EPERM && !count[K_NOPERM])
		ret = -EACCES;
	if (ret < 0 && ret != -EFAULT && ret != -EPERM) {
		free(e);
		return ret == -ESRCH || ret == -EACCES ? fail_pid(pid, (int)ret) :
							 fail("snapshot", (int)ret);
	}
	/* which intervals cover the range, and how each tracks writes */
	if (um_list(c, &all, &nall) == 0)
		for (size_t i = 0; i < nall; i++)
			if (all[i].pid == pid && all[i].start < start + n * PAGE_SIZE &&
			    all[i].start + all[i].length > start)
				all[niv++] = all[i];
	if (o->json) {
		show_json(pid, start, e, n, ret < 0 ? (int)ret : 0, count, all, niv);
	} else {
		for (size_t i = 0; i < niv; i++)
			printf("interval %" PRIu64 " %016" PRIx64 "-%016" PRIx64 ": backend %s\n",
			       all[i].interval_id, all[i].start, all[i].start + all[i].length,
			       um_backend_str(all[i].backend));
		show_text(start, e, n, ret < 0 ? (int)ret : 0, count);
	}
	free(all);
	free(e);
	return 0;
}

/* --- watch ---------------------------------------------------------------- */

struct watch_state {
	const struct opts *o;
	uint64_t seen;
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
	clock_gettime(CLOCK_REALTIME, &ts);
	if (w->o->json) {
		struct json j;

		json_init(&j, stdout);
		json_begin_object(&j);
		json_key(&j, "time"); json_double(&j, ts.tv_sec + ts.tv_nsec / 1e9, 6);
		json_key(&j, "pid"); json_i64(&j, pid);
		json_key(&j, "interval"); json_u64(&j, interval_id);
		json_key(&j, "reason"); json_string(&j, um_reason_str(inv->reason));
		json_key(&j, "start"); json_hex(&j, inv->start);
		json_key(&j, "end"); json_hex(&j, inv->end);
		json_key(&j, "pages"); json_u64(&j, (inv->end - inv->start) / PAGE_SIZE);
		json_key(&j, "seq"); json_u64(&j, inv->seq);
		json_key(&j, "tid"); json_i64(&j, inv->tid);
		json_end_object(&j);
		json_end(&j);
		return;
	}
	localtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	printf("%s.%06ld pid %d interval %" PRIu64 " %-7s %016" PRIx64 "-%016" PRIx64
	       " (%" PRIu64 " pages) seq %" PRIu64 "\n",
	       when, ts.tv_nsec / 1000, (int)pid, interval_id, um_reason_str(inv->reason),
	       inv->start, inv->end, (inv->end - inv->start) / PAGE_SIZE, inv->seq);
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
		return pid && (ret == -ESRCH || ret == -EPERM || ret == -EACCES) ?
			       fail_pid(pid, ret) : fail("watch", ret);
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
	}
	close(sfd);
	if (ret < 0)
		return fail(ret == -ENOTCONN ? "watch: daemon went away" : "watch", ret);
	return 0;
}

/* --- main ----------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{}
	};
	struct opts o = { 0 };
	struct um_client *c = NULL;
	uint64_t start = 0, npages = 0;
	const char *cmd;
	pid_t pid = 0;
	int opt, ret;

	/* getopt names the program after argv[0]: not a build or install path */
	argv[0] = (char *)prog;
	while ((opt = getopt_long(argc, argv, "s:jn:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			o.socket = optarg;
			break;
		case 'j':
			o.json = true;
			break;
		case 'n': {
			char *end;

			errno = 0;
			o.count = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || !o.count)
				return usage_error("--count wants a positive number, not '%s'",
						   optarg);
			break;
		}
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
	if (optind >= argc)
		return usage_error("no command given (status, list, show or watch)");
	cmd = argv[optind++];
	argc -= optind;
	argv += optind;

	if (strcmp(cmd, "status") && strcmp(cmd, "list") && strcmp(cmd, "show") &&
	    strcmp(cmd, "watch"))
		return usage_error("unknown command '%s'", cmd);
	if ((!strcmp(cmd, "status") || !strcmp(cmd, "list")) && argc)
		return usage_error("%s takes no arguments, got '%s'", cmd, argv[0]);
	if (o.count && strcmp(cmd, "watch"))
		return usage_error("--count only applies to watch");
	/* arguments are checked before connecting: usage errors stay 2 */
	if (!strcmp(cmd, "show") && (ret = parse_show(argc, argv, &pid, &start, &npages)))
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
	else
		ret = cmd_watch(c, &o, pid);
	um_disconnect(c);
	return ret;
}
