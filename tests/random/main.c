/* SPDX-License-Identifier: MIT */
/*
 * umirror-check - the randomized differential checker of umirror.
 *
 * Starts umirrord on a private socket (or uses --socket PATH), then for
 * each memory kind and seed runs --steps random operations on memory
 * this process mirrors and checks, after every step, the daemon's
 * snapshots against the kernel's own page tables and every downgrade of a
 * mirrored page against the invalidations the receivers got
 * (docs/SEMANTICS.md is the contract). Prints the seed of every run and a
 * summary line; exits 1 on any divergence or missed invalidation.
 *
 *   umirror-check [--kind K[,K...]|all] [--seed N] [--seeds N] [--steps N]
 *                 [--scan on|off|mix] [--mask-features LIST] [--socket PATH]
 *                 [--ops OP[,OP...]] [--stop-on-fail] [--selftest] [--big] [--trap]
 *
 * --seeds N runs seeds --seed .. --seed+N-1 per kind; with --scan mix (the
 * default) the even ones scan, the odd ones do not. --big is CI's budget
 * (2 seeds x 9000 steps). --ops limits the operations (to find the
 * shortest replay of a failure), --stop-on-fail stops at the first one.
 * --selftest plants faults (a corrupted oracle, a receiver that drops
 * events) and passes only if the checks catch them.
 *
 * --trap connects with UM_CONNECT_TRAP_VMA (docs/SEMANTICS.md "Trap mode")
 * and tightens the checks to "before": mprotect RO/NONE, munmap, mremap,
 * MADV_DONTNEED and mmap MAP_FIXED over a mirrored page return only once
 * the owner's and every synchronous subscriber's callback has run and a
 * snapshot from before reads as stale; mprotect counts as reported (its
 * downgrades must be invalidated with the scan off). The seccomp filter
 * cannot be removed from a process, so the owner is then a forked child
 * of the process that started the daemon.
 *
 * Environment: UMIRROR_CHECK_SEED, UMIRROR_CHECK_SEEDS, UMIRROR_CHECK_STEPS
 * give the defaults of --seed, --seeds, --steps; UMIRROR_CHECK_MAX_STEPS caps
 * the steps per seed whatever was asked (tests/kernels/matrix.sh sets it in
 * its emulated VMs); UMIRROR_CHECK_DEBUG prints why a step's page tables did
 * not hold still.
 */
#include "check.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HUGEPAGES_WANTED 24

const struct kind kinds[K_NR] = {
	[K_ANON] = { "anon", 128, 1 },	 [K_SHARED] = { "shared", 128, 1 },
	[K_MEMFD] = { "memfd", 128, 1 }, [K_THP] = { "thp", 1024, 1 },
	[K_TMPFS] = { "tmpfs", 128, 1 }, [K_HUGETLB] = { "hugetlb", 2048, HPAGE_PAGES },
};

static long saved_nr_hugepages = -1;

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = -1;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

static void write_long(const char *path, long n)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fprintf(f, "%ld\n", n);
		fclose(f);
	}
}

static void restore_hugepages(void)
{
	if (saved_nr_hugepages >= 0)
		write_long("/proc/sys/vm/nr_hugepages", saved_nr_hugepages);
}

/* enough free 2 MiB huge pages for one run (and its forks), or why not */
static const char *reserve_hugepages(void)
{
	static const char *freep = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages";
	long total = read_long("/proc/sys/vm/nr_hugepages"), free_ = read_long(freep);

	if (total < 0 || free_ < 0)
		return "no 2 MiB huge page pool (/proc/sys/vm/nr_hugepages)";
	if (free_ >= HUGEPAGES_WANTED)
		return NULL;
	if (saved_nr_hugepages < 0) {
		saved_nr_hugepages = total;
		atexit(restore_hugepages);
	}
	write_long("/proc/sys/vm/nr_hugepages", total + HUGEPAGES_WANTED - free_);
	if (read_long(freep) < HUGEPAGES_WANTED)
		return "the kernel would not reserve 24 free 2 MiB huge pages";
	return NULL;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: umirror-check [--kind K[,K...]|all] [--seed N] [--seeds N] [--steps N]\n"
		"                     [--scan on|off|mix] [--mask-features LIST] [--socket PATH]\n"
		"                     [--ops OP[,OP...]] [--stop-on-fail] [--selftest] [--big]\n"
		"                     [--trap]\n"
		"kinds: anon shared memfd thp hugetlb tmpfs\n"
		"ops: write span read threads fault dontneed munmap mmap mremap mprotect fork\n"
		"     pageout collapse reinsert sub subsnap subfault combo\n");
	exit(2);
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : def;
}

static uint64_t parse_list(char *arg, const char *const *names, int n)
{
	uint64_t mask = 0;

	for (char *save = NULL, *t = strtok_r(arg, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int i;

		if (!strcmp(t, "all"))
			return (1ull << n) - 1;
		for (i = 0; i < n && strcmp(t, names[i]); i++)
			;
		if (i == n) {
			fprintf(stderr, "umirror-check: unknown name '%s'\n", t);
			usage();
		}
		mask |= 1ull << i;
	}
	return mask;
}

/* what the summary line needs, also from the watchdog */
static struct counters total;
static uint64_t per_kind[K_NR], kmask = (1ull << K_NR) - 1, base_seed;
static char skipped[512];
static const char *mask;

static void print_summary(void)
{
	char line[512];
	int off = snprintf(line, sizeof(line), "umirror-check: %llu steps (",
			   (unsigned long long)total.steps);

	for (int k = 0, first = 1; k < K_NR; k++) {
		if (!(kmask & (1ull << k)))
			continue;
		off += snprintf(line + off, sizeof(line) - (size_t)off, "%s%s %llu",
				first ? "" : ", ", kinds[k].name, (unsigned long long)per_kind[k]);
		first = 0;
	}
	printf("%s), %llu divergences, %llu missed invalidations (%llu unchecked scan-only "
	       "downgrades, %llu unstable steps, %llu evictions)%s, %s path, seed %llu\n",
	       line, (unsigned long long)total.divergences, (unsigned long long)total.misses,
	       (unsigned long long)total.unchecked, (unsigned long long)total.unstable,
	       (unsigned long long)total.evicted, skipped, mask ? mask : "default",
	       (unsigned long long)base_seed);
	fflush(stdout);
}

/*
 * A watchdog per step: a hung step prints what it was doing, then fails.
 * @watched is set and cleared (before the run is freed) under watch_lock,
 * which the watchdog holds while it looks at the run.
 */
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct run *watched;

static void watch(struct run *r)
{
	pthread_mutex_lock(&watch_lock);
	watched = r;
	pthread_mutex_unlock(&watch_lock);
}

static void *watchdog_main(void *arg)
{
	uint64_t last = UINT64_MAX;
	unsigned int same = 0;

	for (;;) {
		struct run *r;

		sleep(1);
		pthread_mutex_lock(&watch_lock);
		r = watched;
		if (!r || r->step != last) {
			last = r ? r->step : UINT64_MAX;
			same = 0;
			pthread_mutex_unlock(&watch_lock);
			continue;
		}
		if (++same == 60) {
			fprintf(stderr, "umirror-check: step %llu of %s seed %llu hangs (60 s)\n",
				(unsigned long long)r->step, r->k->name,
				(unsigned long long)r->seed);
			r->printed = 0;
			report(r, true, "hang", "the step did not finish within 60 s");
			total.steps += r->cnt.steps;
			total.divergences += r->cnt.divergences;
			total.misses += r->cnt.misses;
			per_kind[r->kid] += r->cnt.steps;
			print_summary();
			/* the harness's handler stops the daemon */
			kill(getpid(), SIGALRM);
		}
		pthread_mutex_unlock(&watch_lock);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *kind_names[K_NR], *socket_path = NULL, *scan = "mix";
	uint64_t ops_mask = (1ull << OP_NR) - 1;
	uint64_t seed = env_u64("UMIRROR_CHECK_SEED", 0);
	uint64_t nseeds = env_u64("UMIRROR_CHECK_SEEDS", 1);
	uint64_t steps = env_u64("UMIRROR_CHECK_STEPS", 2000), max_steps;
	bool selftest = false, stop = false, ops_given = false, trap = false;
	const char *extra[8];
	char ops_arg[256] = "";
	struct um_client *c;
	struct um_status st = UM_STATUS_INIT;
	pthread_t wd;
	int nextra = 0, ran = 0;

	for (int i = 0; i < K_NR; i++)
		kind_names[i] = kinds[i].name;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--selftest")) {
			selftest = true;
		} else if (!strcmp(a, "--trap")) {
			trap = true;
		} else if (!strcmp(a, "--stop-on-fail")) {
			stop = true;
		} else if (!strcmp(a, "--big")) {
			/* CI's budget: with both feature paths >= 200,000 steps */
			nseeds = 2;
			steps = 9000;
		} else if (!v) {
			usage();
		} else if (!strcmp(a, "--kind")) {
			kmask = parse_list(v, kind_names, K_NR);
			i++;
		} else if (!strcmp(a, "--seed")) {
			seed = strtoull(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--seeds")) {
			nseeds = strtoull(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--steps")) {
			steps = strtoull(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--scan")) {
			scan = v;
			i++;
		} else if (!strcmp(a, "--mask-features")) {
			mask = v;
			i++;
		} else if (!strcmp(a, "--socket")) {
			socket_path = v;
			i++;
		} else if (!strcmp(a, "--ops")) {
			snprintf(ops_arg, sizeof(ops_arg), "%s", v);
			ops_mask = parse_list(v, op_names, OP_NR);
			ops_given = true;
			i++;
		} else {
			usage();
		}
	}
	if (strcmp(scan, "on") && strcmp(scan, "off") && strcmp(scan, "mix"))
		usage();
	/*
	 * A slow machine's cap, whatever the command line asks: the kernel
	 * matrix sets it for its emulated (TCG) VMs, where a step takes 10-20
	 * times as long, so that the suite's budgets stay the tests' own.
	 */
	max_steps = env_u64("UMIRROR_CHECK_MAX_STEPS", 0);
	if (max_steps && steps > max_steps) {
		printf("umirror-check: %llu steps per seed capped to %llu by "
		       "UMIRROR_CHECK_MAX_STEPS\n",
		       (unsigned long long)steps, (unsigned long long)max_steps);
		steps = max_steps;
	}
	if (!seed) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = ((uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 20)) % 1000000000ull + 1;
	}
	base_seed = seed;
	if (selftest) {
		/* planted faults only: a corrupted oracle and a receiver that drops events */
		kmask = 1ull << K_ANON;
		nseeds = 1;
		steps = steps > 400 ? 400 : steps;
		scan = "off";
		ops_mask = (1ull << OP_WRITE) | (1ull << OP_SPAN) | (1ull << OP_READ) |
			   (1ull << OP_DONTNEED) | (1ull << OP_MUNMAP) | (1ull << OP_MMAP) |
			   (1ull << OP_FAULT) | (1ull << OP_REINSERT);
	}

	if (geteuid() != 0) {
		printf("umirror-check: SKIP: needs root (PFNs in pagemap, /proc/kpageflags)\n");
		return SKIP;
	}
	if (socket_path) {
		setenv("UMIRROR_SOCKET", socket_path, 1);
		signal(SIGPIPE, SIG_IGN);
	} else {
		/* patient with a loaded machine, not with a populate that never comes */
		extra[nextra++] = "--ack-timeout";
		extra[nextra++] = "3000";
		if (mask) {
			extra[nextra++] = "--mask-features";
			extra[nextra++] = mask;
		}
		extra[nextra] = NULL;
		harness_start("umirror-check", extra);
		alarm(0); /* runs take longer than the harness's watchdog; ours is per step */
	}
	if (trap) {
		/*
		 * The filter stays with its process: the owner is a child.
		 * (--selftest --trap plants the fault of not asking for the
		 * mode: the "before" checks must then fail.)
		 */
		pid_t owner = fork();
		int status;

		CHECK(owner >= 0, "fork: %m");
		if (owner > 0) {
			CHECK(waitpid(owner, &status, 0) == owner, "waitpid: %m");
			if (!WIFEXITED(status)) {
				printf("umirror-check: the owner process died of signal %d\n",
				       WIFSIGNALED(status) ? WTERMSIG(status) : 0);
				return 1;
			}
			if (WEXITSTATUS(status) == 0 && !socket_path)
				harness_summary();
			return WEXITSTATUS(status);
		}
	}
	/* before any connection of ours exists: the child must not share it */
	sub_start();
	{
		int ret = um_connect(NULL, trap && !selftest ? UM_CONNECT_TRAP_VMA : 0, &c);

		if (trap && (ret == -EOPNOTSUPP || ret == -ENOSYS)) {
			printf("umirror-check: SKIP: trap mode unavailable (%s): no seccomp user "
			       "notification, or umirrord --trap=forbid\n",
			       strerror(-ret));
			sub_stop();
			return SKIP;
		}
		CHECK(ret == 0, "connect: %s", strerror(-ret));
	}
	CHECK(um_status(c, &st) == 0, "status");
	CHECK(pthread_create(&wd, NULL, watchdog_main, NULL) == 0, "watchdog");
	pthread_detach(wd);
	printf("umirror-check: seed %llu, %llu seed(s) x %llu steps per kind, scan %s, %s "
	       "path%s%s\n",
	       (unsigned long long)seed, (unsigned long long)nseeds, (unsigned long long)steps,
	       scan, mask ? mask : "default", selftest ? ", SELF-TEST" : "",
	       trap ? ", trap mode" : "");

	for (int k = 0; k < K_NR; k++) {
		const char *why = NULL;

		if (!(kmask & (1ull << k)))
			continue;
		if (k == K_HUGETLB)
			why = reserve_hugepages();
		if (k == K_THP && !harness_thp_possible())
			why = "transparent_hugepage is [never]";
		if (why) {
			printf("umirror-check: %s: skipped: %s\n", kinds[k].name, why);
			snprintf(skipped + strlen(skipped), sizeof(skipped) - strlen(skipped),
				 ", %s skipped (%s)", kinds[k].name, why);
			continue;
		}
		for (uint64_t s = 0; s < nseeds; s++) {
			static char replay[512];
			struct run *r = calloc(1, sizeof(*r));
			bool scan_on = !strcmp(scan, "on") || (!strcmp(scan, "mix") && !(s & 1));

			CHECK(r, "out of memory");
			r->k = &kinds[k];
			r->kid = (enum kind_id)k;
			r->seed = seed + s;
			r->nsteps = steps;
			r->scan = scan_on;
			r->selftest = selftest;
			r->trap = trap;
			r->stop_on_fail = stop;
			r->ops_mask = ops_mask;
			r->c = c;
			r->zero_pfn = harness_zero_pfn();
			r->show_pfn = st.kfeatures & UM_FEAT_PFN_VISIBLE;
			snprintf(replay, sizeof(replay),
				 "umirror-check --kind %s --seed %llu --scan %s%s%s%s%s%s%s",
				 kinds[k].name, (unsigned long long)r->seed, scan_on ? "on" : "off",
				 mask ? " --mask-features " : "", mask ? mask : "",
				 ops_given ? " --ops " : "", ops_given ? ops_arg : "",
				 selftest ? " --selftest" : "", trap ? " --trap" : "");
			r->replay = replay;
			printf("umirror-check: run: %s --steps %llu\n", replay,
			       (unsigned long long)steps);
			watch(r);
			if (run_kind(r, &total) == 0) {
				per_kind[k] += r->cnt.steps;
				ran++;
			}
			watch(NULL);
			free(r);
		}
	}
	um_disconnect(c);
	sub_stop();

	print_summary();
	if (selftest) {
		/* every corrupted entry is caught; dropped events are caught when they mattered */
		bool ok = total.planted > 0 && total.planted_div == total.planted &&
			  total.planted_miss > 0 && (!trap || total.trap_misses > 0);

		printf("umirror-check: self-test %s: %llu of %llu corrupted oracle entries caught "
		       "as "
		       "divergences, %llu misses caught from dropped events\n",
		       ok ? "PASS" : "FAIL", (unsigned long long)total.planted_div,
		       (unsigned long long)total.planted, (unsigned long long)total.planted_miss);
		if (trap)
			printf("umirror-check: self-test: %llu trapped calls without the mode "
			       "caught "
			       "returning before their invalidation\n",
			       (unsigned long long)total.trap_misses);
		if (!socket_path && !trap)
			harness_summary();
		return ok ? 0 : 1;
	}
	if (!ran)
		return SKIP;
	if (total.divergences || total.misses)
		return 1;
	/* in trap mode the parent, which started the daemon, stops it */
	if (!socket_path && !trap)
		harness_summary();
	return 0;
}
