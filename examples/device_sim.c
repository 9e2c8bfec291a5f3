/* SPDX-License-Identifier: MIT */
/*
 * device_sim.c - a simulated device that mirrors another process's memory.
 *
 * The "device" has its own page table (one entry per page: valid, PFN,
 * write-protected) and a small "device memory" cache. It mirrors an
 * interval that a churning owner process inserted (the owner writes,
 * zaps with MADV_DONTNEED and moves pages away and back with mremap) and
 * serves reads through its mirror, as a GPU with its own page table
 * would:
 *
 *   - an entry whose page is still write-protected (UM_PFN_UFFD_WP) is
 *     served from the device's cached copy: any CPU write to that page
 *     must first invalidate the entry (the writer waits for our ack), so
 *     the copy can be trusted exactly as long as the entry is valid;
 *   - an entry the CPU may write without a trap is served "through the
 *     PFN". User space cannot read physical memory, so that path reads
 *     the owner's page through /proc/PID/mem at the same virtual address,
 *     which is what a device reading the PFN would see (same page);
 *   - a missing entry is a device page fault: um_range_fault() (the daemon
 *     faults the page in for the owner), then the entry is programmed
 *     under the update lock if read_retry says nothing changed meanwhile.
 *
 * Every served value is checked, under the update lock (so no sync
 * invalidation can complete meanwhile), against the owner's memory read
 * through /proc/PID/mem. A cached copy that differs is a mirror bug: a CPU
 * write the device was not told about. Changes userfaultfd reports after
 * the fact (mremap) can make the owner's address briefly unreadable: such
 * reads are counted as "unverifiable", not served.
 *
 * Usage (root, umirrord running): UMIRROR_SOCKET=... ./device_sim [SECONDS]
 * Prints a summary; exits non-zero on any mismatch or if nothing was served.
 * DSIM_NO_ZAP=1 / DSIM_NO_MOVE=1 in the environment leave MADV_DONTNEED /
 * mremap out of the owner's churn, to tell which change a mismatch follows.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <umirror.h>

#define PAGE 4096ul
#define NPAGES 64
/* what the owner writes into page @i: a marker, the page index, a generation */
#define TAG(i, gen) (0xd51aull << 48 | (uint64_t)(i) << 32 | ((gen)&0xffffffffu))
#define TAG_PAGE(v) ((v) >> 48 == 0xd51a ? (int64_t)(((v) >> 32) & 0xffff) : -1)

struct entry {
	bool valid;
	bool cached; /* write-protected when mapped: data[] is the device copy */
	uint64_t pfn;
	uint64_t data; /* the device memory's copy of the page's first word */
};

struct device {
	pthread_mutex_t update; /* hmm.rst's driver->update */
	uint64_t base;
	struct entry pt[NPAGES];
	int mem_fd; /* the owner's /proc/PID/mem: the "PFN" read path */
	unsigned long invalidations, reads, cached_reads, refaults, mismatches, unverifiable;
	unsigned long raced; /* differed while a REMOVE's callback was on its way */
};

static void invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct device *d = priv;

	pthread_mutex_lock(&d->update);
	for (uint64_t a = inv->start; a < inv->end; a += PAGE)
		d->pt[(a - d->base) / PAGE].valid = false;
	d->invalidations++;
	pthread_mutex_unlock(&d->update);
}

static const struct um_interval_ops dev_ops = { .invalidate = invalidate };

/* the owner's first word of the page at @addr, read as the CPU sees it now */
static int owner_word(struct device *d, uint64_t addr, uint64_t *out)
{
	return pread(d->mem_fd, out, sizeof(*out), (off_t)addr) == sizeof(*out) ? 0 : -errno;
}

/* device page fault on page @i: fault it in, program the entry (update lock) */
static int device_fault(struct device *d, struct um_interval *iv, int i)
{
	uint64_t pfn;
	struct um_range r = {
		.start = d->base + i * PAGE,
		.end = d->base + (i + 1) * PAGE,
		.pfns = &pfn,
		.default_flags = UM_DEFAULT_VALID,
	};
	long ret;

	d->refaults++;
	ret = um_range_register(&r, iv);
	if (ret)
		return (int)ret;
	for (int tries = 0; tries < 16; tries++) {
		/* sets r.notifier_seq: the value its entries are valid for */
		ret = um_range_fault(&r, 0);
		if (ret == -EBUSY || ret == -EAGAIN)
			continue;
		if (ret < 0)
			return (int)ret; /* -EFAULT: moved away (mremap), a hole now */
		pthread_mutex_lock(&d->update);
		if (um_interval_read_retry(iv, r.notifier_seq)) {
			pthread_mutex_unlock(&d->update);
			continue;
		}
		d->pt[i].valid = pfn & UM_DEFAULT_VALID;
		d->pt[i].pfn = pfn >> UM_DEFAULT_PFN_SHIFT;
		/* still armed: the CPU cannot write it without telling us first */
		d->pt[i].cached = d->pt[i].valid && (pfn & UM_DEFAULT_UFFD_WP) &&
				  owner_word(d, r.start, &d->pt[i].data) == 0;
		pthread_mutex_unlock(&d->update);
		return 0;
	}
	return -EBUSY;
}

/*
 * A served value differed from the owner's page. MADV_DONTNEED is the
 * one change userfaultfd reports only "nearly before": the kernel zaps as
 * soon as the daemon has read the event, so the zap (and even a new write
 * into the zapped page) can run before our callback did. That is the
 * documented window, not a lost invalidation, if the callback for this
 * page follows. A missed invalidation never comes: wait for it for at most
 * the daemon's ack timeout (1 s), a bound, not a measurement.
 */
static bool invalidated_soon(struct device *d, int i)
{
	for (int ms = 0; ms < 1000; ms++) {
		bool gone;

		pthread_mutex_lock(&d->update);
		gone = !d->pt[i].valid;
		pthread_mutex_unlock(&d->update);
		if (gone)
			return true;
		usleep(1000);
	}
	return false;
}

/* serve one read of page @i through the device's page table */
static void device_read(struct device *d, struct um_interval *iv, int i)
{
	uint64_t addr = d->base + i * PAGE, served, truth;

	pthread_mutex_lock(&d->update);
	if (!d->pt[i].valid) {
		pthread_mutex_unlock(&d->update);
		device_fault(d, iv, i);
		return;
	}
	if (owner_word(d, addr, &truth)) {
		d->unverifiable++;
		pthread_mutex_unlock(&d->update);
		return;
	}
	if (d->pt[i].cached) {
		served = d->pt[i].data;
		d->cached_reads++;
	} else if (owner_word(d, addr, &served)) { /* "through the PFN" */
		d->unverifiable++;
		pthread_mutex_unlock(&d->update);
		return;
	}
	d->reads++;
	/*
	 * A cached copy must equal the owner's page: no write can have
	 * happened behind a valid write-protected entry. Through the PFN the
	 * CPU writes on meanwhile (that is coherence), so the served word
	 * need only be this page's: its own tag, or zero.
	 */
	if (d->pt[i].cached ? served != truth : served && TAG_PAGE(served) != i) {
		bool cached = d->pt[i].cached;

		pthread_mutex_unlock(&d->update);
		if (invalidated_soon(d, i)) {
			d->raced++;
			return;
		}
		pthread_mutex_lock(&d->update);
		d->mismatches++;
		fprintf(stderr,
			"device_sim: MISMATCH page %d: served %#" PRIx64 ", owner has %#" PRIx64
			" (%s), and no invalidation came\n",
			i, served, truth, cached ? "cached" : "pfn");
	}
	pthread_mutex_unlock(&d->update);
}

/* --- the owner: inserts the interval, then churns its page tables -------- */

static void owner_main(int to_dev, int from_dev, unsigned int seconds)
{
	struct um_interval *iv;
	struct um_client *c;
	uint64_t msg[2];
	char *p, *scratch;
	time_t end;
	unsigned int gen = 1, moves = 0;

	p = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	scratch = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || scratch == MAP_FAILED || um_connect(NULL, 0, &c))
		_exit(2);
	madvise(p, NPAGES * PAGE, MADV_NOHUGEPAGE);
	for (int i = 0; i < NPAGES; i++)
		*(uint64_t *)(p + i * PAGE) = TAG(i, 0);
	if (um_interval_insert(c, p, NPAGES * PAGE, 0, NULL, NULL, &iv))
		_exit(3);
	msg[0] = um_interval_id(iv);
	msg[1] = (uintptr_t)p;
	if (write(to_dev, msg, sizeof(msg)) != sizeof(msg))
		_exit(4);
	srand(getpid());
	end = time(NULL) + seconds;
	while (time(NULL) < end) {
		int i = rand() % NPAGES, op = rand() % 100;
		char *a = p + i * PAGE;

		if (op < 80) {
			*(uint64_t *)a = TAG(i, gen++);
		} else if (op < 98 && !getenv("DSIM_NO_ZAP")) {
			madvise(a, PAGE, MADV_DONTNEED);
		} else if (moves < 4 && i > 0 && !getenv("DSIM_NO_MOVE")) {
			/* away and back: the interval forgets the page (gone), data stays */
			if (mremap(a, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, scratch) ==
				    MAP_FAILED ||
			    mremap(scratch, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, a) ==
				    MAP_FAILED)
				_exit(5);
			moves++;
		}
		if (op % 8 == 0)
			usleep(50);
	}
	/*
	 * Owner exit is an after-the-fact change: tell the device first and
	 * wait until it stopped serving (closed its end), then go.
	 */
	if (write(to_dev, msg, 1) != 1 || read(from_dev, msg, 1) != 0)
		_exit(6);
	um_interval_remove(iv);
	um_disconnect(c);
	_exit(0);
}

int main(int argc, char **argv)
{
	unsigned int seconds = argc > 1 ? (unsigned int)atoi(argv[1]) : 2;
	struct device d = { .update = PTHREAD_MUTEX_INITIALIZER, .mem_fd = -1 };
	struct um_interval *iv = NULL;
	struct um_client *c;
	uint64_t msg[2];
	char path[64];
	int pipefd[2], back[2], status, ret;
	struct pollfd done = { .events = POLLIN };
	pid_t owner;

	if (!seconds)
		seconds = 2;
	if (pipe(pipefd) || pipe(back))
		return 1;
	owner = fork();
	if (owner < 0)
		return 1;
	if (owner == 0) {
		close(pipefd[0]);
		close(back[1]);
		owner_main(pipefd[1], back[0], seconds);
	}
	close(pipefd[1]);
	close(back[0]);
	done.fd = pipefd[0];
	if (read(pipefd[0], msg, sizeof(msg)) != sizeof(msg)) {
		fprintf(stderr, "device_sim: the owner did not start (umirrord running? root?)\n");
		waitpid(owner, &status, 0);
		return 1;
	}
	d.base = msg[1];
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)owner);
	d.mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	ret = d.mem_fd < 0 ? -errno : um_connect(NULL, 0, &c);
	if (!ret)
		ret = um_interval_subscribe(c, owner, msg[0], 0, &dev_ops, &d, &iv);
	if (ret) {
		fprintf(stderr, "device_sim: cannot mirror the owner: %s\n", strerror(-ret));
		kill(owner, SIGKILL);
		waitpid(owner, &status, 0);
		return 1;
	}
	/* serve reads until the owner says it is done */
	while (poll(&done, 1, 0) == 0)
		for (int k = 0; k < 256; k++)
			device_read(&d, iv, rand() % NPAGES);
	um_interval_remove(iv);
	close(back[1]);
	waitpid(owner, &status, 0);
	um_disconnect(c);
	close(d.mem_fd);
	printf("device_sim: reads served %lu (%lu from device memory), invalidations %lu, "
	       "refaults %lu, unverifiable %lu, raced with a zap %lu, mismatches %lu\n",
	       d.reads, d.cached_reads, d.invalidations, d.refaults, d.unverifiable, d.raced,
	       d.mismatches);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "device_sim: owner failed (status %#x)\n", status);
		return 1;
	}
	return d.mismatches || !d.reads || !d.cached_reads ? 1 : 0;
}
