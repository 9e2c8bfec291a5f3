/* SPDX-License-Identifier: MIT */
/*
 * test_remove_gone - MADV_DONTNEED of mirrored pages, then the same pages
 * mapped over (MAP_FIXED) while the REMOVE is still unacknowledged. The
 * REMOVE's re-arm comes after the UNMAP: the new mapping is not the
 * interval's (gone: HOLE) and not registered with userfaultfd.
 *
 * The re-arm must leave it alone: not read-fault it (without
 * WP_UNPOPULATED the daemon populates what it arms, and would fill a
 * mapping nobody mirrors, a huge page for hugetlb), not take its pages for
 * pages whose re-arm was lost (the daemon re-armed 8 times and then warned
 * "still N pages unarmed after 8 re-arms": found by umirror-check on
 * hugetlb memory). The daemon's stderr is kept in a file and searched.
 *
 * Anonymous memory always; hugetlb when a huge page can be had.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HPAGE (2ul << 20)

static sem_t entered, go;

/* holds the REMOVE unacknowledged until the test posts @go */
static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	(void)iv;
	(void)priv;
	if (inv->reason != UM_REASON_REMOVE)
		return;
	sem_post(&entered);
	CHECK(harness_sem_wait_ms(&go, 30000), "the test let the REMOVE go");
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

/*
 * [base, base + len) mapped with @flags, written, mirrored; its first
 * @zap bytes zapped, then mapped over while the REMOVE is held.
 */
static void one(struct um_client *c, const char *what, int flags, size_t len, size_t zap)
{
	struct um_interval *iv;
	char *base, *p;
	uint64_t seq;

	base = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (base == MAP_FAILED) {
		printf("test_remove_gone: %s: skipped: mmap: %s\n", what, strerror(errno));
		return;
	}
	memset(base, 1, len);
	CHECK(um_interval_insert(c, base, len, 0, &ops, NULL, &iv) == 0, "%s: insert", what);
	CHECK(madvise(base, zap, MADV_DONTNEED) == 0, "%s: MADV_DONTNEED: %m", what);
	CHECK(harness_sem_wait_ms(&entered, 30000), "%s: the REMOVE came", what);
	/* the UNMAP is read (mmap returns) while the REMOVE waits for its ack */
	p = mmap(base, zap, PROT_READ | PROT_WRITE, flags | MAP_FIXED, -1, 0);
	CHECK(p == base, "%s: MAP_FIXED over the zapped pages: %m", what);
	sem_post(&go);
	CHECK(harness_wait_even(iv, &seq) == 0, "%s: the REMOVE completed", what);
	for (size_t off = 0; off < zap; off += PAGE) {
		uint64_t e = harness_pagemap(base + off) & ~PM_SOFT_DIRTY;

		CHECK(!(e & (PM_PRESENT | PM_UFFD_WP)),
		      "%s: page +%#zx of the new mapping, never touched and not mirrored: "
		      "pagemap %#llx (the REMOVE's re-arm faulted or protected it)",
		      what, off, (unsigned long long)e);
	}
	CHECK(um_interval_remove(iv) == 0, "%s: remove", what);
	munmap(base, len);
}

int main(void)
{
	static const char *const args[] = { "--ack-timeout", "30000", NULL };
	char path[] = "/tmp/test_remove_gone.XXXXXX", *buf, *line;
	size_t got = 0, cap = 1 << 20;
	int log_fd, saved;
	struct um_client *c;
	ssize_t n;

	sem_init(&entered, 0, 0);
	sem_init(&go, 0, 0);
	/* the daemon inherits our stderr: give it a file of its own */
	log_fd = mkstemp(path);
	CHECK(log_fd >= 0, "mkstemp: %m");
	unlink(path);
	saved = dup(2);
	CHECK(saved >= 0 && dup2(log_fd, 2) == 2, "redirect stderr: %m");
	harness_start("test_remove_gone", args);
	CHECK(dup2(saved, 2) == 2, "restore stderr: %m");
	close(saved);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");

	one(c, "anon", MAP_PRIVATE | MAP_ANONYMOUS, 16 * PAGE, 4 * PAGE);
	one(c, "hugetlb", MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, 2 * HPAGE, HPAGE);
	um_disconnect(c);

	/* every warning of the daemon's, on our stderr for the log; none about re-arms */
	buf = malloc(cap);
	CHECK(buf, "out of memory");
	while (got < cap - 1 && (n = pread(log_fd, buf + got, cap - 1 - got, (off_t)got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strstr(line, ": warn: ") && !strstr(line, ": error: "))
			continue;
		fprintf(stderr, "%s\n", line);
		CHECK(!strstr(line, "unarmed"), "the daemon found its re-arm lost: %s", line);
	}
	free(buf);
	close(log_fd);
	return harness_summary();
}
