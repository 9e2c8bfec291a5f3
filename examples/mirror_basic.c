/* SPDX-License-Identifier: MIT */
/*
 * mirror_basic.c - mirror part of your own address space into a "device".
 *
 * The pattern of the kernel's hmm.rst (mmu_interval_notifier + hmm_range),
 * with libumirror. The "device" is an array of page-table entries guarded
 * by an update mutex:
 *   - the invalidate callback takes the update lock and clears the entries
 *     of the span it is told about;
 *   - the mirror loop takes a snapshot with no lock held, then takes the
 *     update lock and programs the device only if read_retry says no
 *     invalidation started since read_begin.
 *
 * Then it changes the CPU page tables (write, madvise, mremap, munmap) and
 * after each change checks the device against /proc/self/pagemap.
 *
 * Run as root next to umirrord:  UMIRROR_SOCKET=/tmp/x.sock ./mirror_basic [SLEEP_S]
 * (root, so that PFNs are visible and compared; others compare presence).
 * Exit status 0 only if every check passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <umirror.h>

#define PAGE 4096ul
#define NPAGES 64

struct device {
	pthread_mutex_t update; /* hmm.rst's driver->update */
	pthread_cond_t changed; /* signalled by invalidate (for this demo only) */
	uint64_t base;		/* CPU address of entry 0 */
	uint64_t pte[NPAGES];	/* um_range entries; 0 = not mapped on the device */
	unsigned long invalidations;
};

static struct device dev = {
	.update = PTHREAD_MUTEX_INITIALIZER,
	.changed = PTHREAD_COND_INITIALIZER,
};
static bool mapped[NPAGES]; /* which pages of the buffer we still have mapped */
static bool pfn_visible;

/* Runs on libumirror's event thread. It must not touch the mirrored buffer. */
static void dev_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct device *d = priv;
	uint64_t first = (inv->start - d->base) / PAGE, last = (inv->end - d->base) / PAGE;

	pthread_mutex_lock(&d->update);
	for (uint64_t i = first; i < last && i < NPAGES; i++)
		d->pte[i] = 0;
	d->invalidations++;
	pthread_cond_broadcast(&d->changed);
	pthread_mutex_unlock(&d->update);
	printf("    invalidate: %-6s pages %2" PRIu64 "-%2" PRIu64 " seq %" PRIu64 "%s\n",
	       um_reason_str(inv->reason), first, last - 1, inv->seq, inv->sync ? " (sync)" : "");
}

static void dev_release(struct um_interval *iv, int error, void *priv)
{
	printf("    release: %s\n", strerror(-error));
}

static const struct um_interval_ops dev_ops = {
	.invalidate = dev_invalidate,
	.release = dev_release,
};

/* Mirror pages [first, first + n) into the device: the hmm.rst loop. */
static int mirror_pages(struct um_interval *iv, unsigned int first, unsigned int n)
{
	uint64_t pfns[NPAGES];
	struct um_range range = {
		.start = dev.base + first * PAGE,
		.end = dev.base + (first + n) * PAGE,
		.pfns = pfns,
	};
	long ret;

	ret = um_range_register(&range, iv);
	if (ret < 0)
		return ret;
again:
	/* the kernel's range.notifier_seq = mmu_interval_read_begin(): the
	 * snapshot is checked against it, and read_retry below too */
	ret = um_interval_read_begin(iv, &range.notifier_seq);
	if (ret < 0)
		goto out;
	ret = um_range_snapshot(&range); /* no lock held: this waits for the daemon */
	if (ret == -EAGAIN)
		goto again;
	if (ret < 0)
		goto out;

	pthread_mutex_lock(&dev.update);
	if (um_interval_read_retry(iv, range.notifier_seq)) {
		pthread_mutex_unlock(&dev.update);
		goto again;
	}
	/* valid until the next invalidate, which needs this lock first */
	for (unsigned int i = 0; i < n; i++)
		dev.pte[first + i] = pfns[i] & UM_DEFAULT_VALID ? pfns[i] : 0;
	pthread_mutex_unlock(&dev.update);
	ret = 0;
out:
	um_range_unregister(&range);
	return ret;
}

/* Mirror every run of pages that is still mapped (holes would be -EFAULT). */
static int mirror_all(struct um_interval *iv)
{
	for (unsigned int i = 0, n; i < NPAGES; i += n) {
		int ret;

		for (n = 0; i + n < NPAGES && mapped[i + n] == mapped[i]; n++)
			;
		if (mapped[i] && (ret = mirror_pages(iv, i, n)) < 0)
			return ret;
	}
	return 0;
}

/*
 * munmap, mremap and madvise return once the daemon has read the kernel's
 * event, not once our callback ran: wait until it has, like a driver would
 * wait for its device to acknowledge.
 */
static int wait_invalidations(unsigned long count)
{
	struct timespec deadline;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 2;
	pthread_mutex_lock(&dev.update);
	while (dev.invalidations < count && ret == 0)
		ret = pthread_cond_timedwait(&dev.changed, &dev.update, &deadline);
	pthread_mutex_unlock(&dev.update);
	return ret ? -ETIMEDOUT : 0;
}

/* Compare the device with the CPU page table. Return: mismatches. */
static int verify(int pagemap)
{
	uint64_t pm[NPAGES];
	int bad = 0, valid = 0;

	if (pread(pagemap, pm, sizeof(pm), dev.base / PAGE * 8) != sizeof(pm)) {
		perror("pagemap");
		return 1;
	}
	pthread_mutex_lock(&dev.update);
	for (int i = 0; i < NPAGES; i++) {
		bool cpu = mapped[i] && (pm[i] >> 63) & 1, dv = dev.pte[i] & UM_DEFAULT_VALID;
		uint64_t cpu_pfn = pm[i] & ((1ull << 55) - 1), dev_pfn = dev.pte[i] >> 12;

		valid += dv;
		if (cpu != dv || (cpu && pfn_visible && cpu_pfn != dev_pfn)) {
			printf("    MISMATCH page %2d: cpu %s pfn %#" PRIx64
			       ", device %s pfn %#" PRIx64 "\n",
			       i, cpu ? "present" : "absent", cpu_pfn, dv ? "valid" : "invalid",
			       dev_pfn);
			bad++;
		}
	}
	pthread_mutex_unlock(&dev.update);
	printf("    device: %2d of %d entries valid, matches pagemap: %s\n", valid, NPAGES,
	       bad ? "NO" : "ok");
	return bad;
}

/* Before a CPU page-table change: name it. Return: invalidations so far. */
static unsigned long step(const char *name)
{
	unsigned long n;

	printf("%s\n", name);
	pthread_mutex_lock(&dev.update);
	n = dev.invalidations;
	pthread_mutex_unlock(&dev.update);
	return n;
}

/* After it: wait for its invalidation, re-mirror, verify. Return: 1 if bad. */
static int check(unsigned long expect, struct um_interval *iv, int pagemap)
{
	int ret, bad = 0;

	if (wait_invalidations(expect) < 0) {
		printf("    no invalidation arrived\n");
		bad++;
	}
	ret = mirror_all(iv);
	if (ret < 0) {
		printf("    mirror: %s\n", strerror(-ret));
		bad++;
	}
	bad += verify(pagemap);
	return bad != 0;
}

int main(int argc, char **argv)
{
	unsigned int sleep_s = argc > 1 ? (unsigned int)atoi(argv[1]) : 0;
	struct um_client *c = NULL;
	struct um_interval *iv = NULL;
	struct um_status st = UM_STATUS_INIT;
	char *buf, *spot;
	int pagemap, ret, failed = 0;
	unsigned long seen;

	setvbuf(stdout, NULL, _IOLBF, 0);
	pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pagemap < 0) {
		perror("/proc/self/pagemap");
		return 1;
	}
	ret = um_connect(NULL, 0, &c); /* NULL: $UMIRROR_SOCKET or the default */
	if (ret < 0) {
		fprintf(stderr, "um_connect: %s\n", strerror(-ret));
		return 1;
	}
	if (um_status(c, &st) == 0)
		pfn_visible = st.kfeatures & UM_FEAT_PFN_VISIBLE;

	/* The memory to mirror: 64 pages, all touched. */
	buf = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	spot = mmap(NULL, 8 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED || spot == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(buf, 0x5a, NPAGES * PAGE);
	dev.base = (uintptr_t)buf;
	for (int i = 0; i < NPAGES; i++)
		mapped[i] = true;

	ret = um_interval_insert(c, buf, NPAGES * PAGE, 0, &dev_ops, &dev, &iv);
	if (ret < 0) {
		fprintf(stderr, "um_interval_insert: %s\n", strerror(-ret));
		return 1;
	}
	printf("pid %d mirrors %p-%p (interval %" PRIu64 ", PFNs %s)\n", (int)getpid(), buf,
	       buf + NPAGES * PAGE, um_interval_id(iv), pfn_visible ? "compared" : "hidden");

	step("initial mirror");
	failed += check(0, iv, pagemap);

	seen = step("write page 5");
	buf[5 * PAGE] = 1; /* waits until dev_invalidate has returned */
	failed += check(seen + 1, iv, pagemap);

	seen = step("madvise(DONTNEED) pages 8-11");
	madvise(buf + 8 * PAGE, 4 * PAGE, MADV_DONTNEED);
	failed += check(seen + 1, iv, pagemap);

	seen = step("mremap pages 16-23 elsewhere (MREMAP_FIXED)");
	if (mremap(buf + 16 * PAGE, 8 * PAGE, 8 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, spot) ==
	    MAP_FAILED)
		perror("mremap");
	for (int i = 16; i < 24; i++)
		mapped[i] = false;
	failed += check(seen + 1, iv, pagemap);

	seen = step("munmap pages 32-39");
	munmap(buf + 32 * PAGE, 8 * PAGE);
	for (int i = 32; i < 40; i++)
		mapped[i] = false;
	failed += check(seen + 1, iv, pagemap);

	if (sleep_s) {
		printf("sleeping %us: umirrorctl show %d %p+%luK\n", sleep_s, (int)getpid(), buf,
		       NPAGES * PAGE / 1024);
		sleep(sleep_s);
	}
	um_interval_remove(iv);
	um_disconnect(c);
	printf("%s\n", failed ? "FAILED" : "all checks passed");
	return failed ? 1 : 0;
}
