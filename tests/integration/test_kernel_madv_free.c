/* SPDX-License-Identifier: MIT */
/*
 * test_kernel_madv_free - a fact of the kernel that README states, checked
 * where the suite runs (no daemon involved): reclaim of anonymous pages
 * freed with MADV_FREE drops their userfaultfd write protection silently.
 *
 * MADV_FREE sends UFFD_EVENT_REMOVE at once but frees nothing then; the
 * pages stay mapped (and umirror re-protects them) until reclaim discards
 * the clean ones, later, with no event. The discarded page's PTE is
 * cleared without a uffd-wp marker (anonymous memory never gets one, with
 * or without WP_UNPOPULATED), so the next write maps a new zeroed page
 * without a fault. MADV_PAGEOUT stands in for memory pressure.
 *
 * Asserted, for each discarded page: no uffd-wp bit left, and a write to
 * one raises no fault within 1 s. Exit 77 (with the reason) where reclaim
 * discarded nothing (MADV_PAGEOUT missing or declined) or userfaultfd-wp
 * is unavailable. If a kernel ever keeps the protection, this fails: then
 * README's table must change.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uapi_compat.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#define PG 4096ul
#define N 16

static int fails;

#define EXPECT(cond, ...)                                                    \
	do {                                                                 \
		if (!(cond)) {                                               \
			printf("test_kernel_madv_free: FAIL: " __VA_ARGS__); \
			printf("\n");                                        \
			fails++;                                             \
		}                                                            \
	} while (0)

static void skip(const char *why)
{
	printf("test_kernel_madv_free: SKIP: %s\n", why);
	exit(77);
}

static uint64_t pagemap(int fd, const char *p)
{
	uint64_t e = 0;

	if (pread(fd, &e, sizeof(e), (off_t)((uintptr_t)p / PG * sizeof(e))) != sizeof(e))
		return 0;
	return e;
}

static void *writer(void *arg)
{
	*(volatile char *)arg = 'w';
	return NULL;
}

/* one round: protect, MADV_FREE, MADV_PAGEOUT, then look; 0 if nothing was discarded */
static int one_round(bool unpopulated)
{
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_PAGEFAULT_FLAG_WP |
			    (unpopulated ? UFFD_FEATURE_WP_UNPOPULATED : 0),
	};
	int pfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	char *m = mmap(NULL, N * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_register reg = { .range = { (uintptr_t)m, N * PG },
				       .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { .range = { (uintptr_t)m, N * PG },
					  .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	int discarded = -1, gone = 0;
	struct pollfd p;
	pthread_t t;

	if (uffd < 0 || pfd < 0 || m == MAP_FAILED)
		skip("no userfaultfd, pagemap or memory");
	if (ioctl(uffd, UFFDIO_API, &api) < 0) {
		if (unpopulated)
			return 0; /* before Linux 6.4: the round without it says it all */
		skip("UFFDIO_API with PAGEFAULT_FLAG_WP refused");
	}
	madvise(m, N * PG, MADV_NOHUGEPAGE);
	memset(m, 'a', N * PG);
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0 || ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
		skip("uffd-wp register/protect of anonymous memory refused");
	for (int i = 0; i < N; i++)
		EXPECT(pagemap(pfd, m + i * PG) & PM_UFFD_WP, "page %d protected before", i);
	if (madvise(m, N * PG, MADV_FREE) < 0)
		skip("MADV_FREE refused");
	if (madvise(m, N * PG, MADV_PAGEOUT) < 0)
		skip("MADV_PAGEOUT refused (before Linux 5.4?)");
	for (int i = 0; i < N; i++) {
		uint64_t e = pagemap(pfd, m + i * PG);

		if (e & PM_PRESENT)
			continue;
		gone++;
		if (discarded < 0)
			discarded = i;
		EXPECT(!(e & PM_UFFD_WP), "page %d discarded, uffd-wp bit kept (%#llx)", i,
		       (unsigned long long)e);
	}
	printf("test_kernel_madv_free: WP_UNPOPULATED %s: %d of %d pages discarded by reclaim\n",
	       unpopulated ? "on" : "off", gone, N);
	if (discarded >= 0) {
		pthread_create(&t, NULL, writer, m + discarded * PG);
		p = (struct pollfd){ .fd = uffd, .events = POLLIN };
		if (poll(&p, 1, 1000) == 1) {
			struct uffd_msg msg;

			printf("test_kernel_madv_free: the write faulted: protection kept\n");
			EXPECT(0,
			       "WP_UNPOPULATED %s: a write to a discarded page faulted "
			       "(README says it does not)",
			       unpopulated ? "on" : "off");
			if (read(uffd, &msg, sizeof(msg)) < 0)
				perror("read");
			wp.range.start = (uintptr_t)m + discarded * PG;
			wp.range.len = PG;
			wp.mode = 0;
			ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
		}
		pthread_join(t, NULL);
		EXPECT(!(pagemap(pfd, m + discarded * PG) & PM_UFFD_WP),
		       "written page unprotected");
	}
	munmap(m, N * PG);
	close(pfd);
	close(uffd);
	return gone;
}

int main(void)
{
	int gone;

	if (geteuid() != 0)
		skip("userfaultfd for anonymous memory may need root "
		     "(vm.unprivileged_userfaultfd)");
	gone = one_round(false);
	gone += one_round(true);
	if (!gone && !fails)
		skip("reclaim (MADV_PAGEOUT) discarded no MADV_FREE page: nothing to look at");
	printf("test_kernel_madv_free: %s\n", fails ? "FAIL" : "PASS");
	return fails ? 1 : 0;
}
