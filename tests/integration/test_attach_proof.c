/* SPDX-License-Identifier: MIT */
/*
 * test_attach_proof - ATTACH takes only the sender's own userfaultfd.
 *
 * A userfaultfd serves the address space of the process that created it.
 * A peer that passed the uffd of its child (which has the same layout
 * after fork, so every REGISTER at the peer's addresses succeeds in the
 * child) used to get status 0, INSERT 0, and then none of its own writes
 * was ever reported: a blind mirror. The daemon now proves the uffd on a
 * page the peer names (ump_attach.probe: write-protect through the uffd,
 * look at the peer's pagemap) and answers -EBADF otherwise.
 *
 * Raw clients (socket + ump_proto_encode), a child that creates uffds and
 * passes them up (SCM_RIGHTS), and pagemap ground truth:
 *   - the child's uffd, probe a private page both have: -EBADF, and the
 *     connection is not attached (INSERT -EBADFD) but still served;
 *   - the child's uffd, probe a MAP_SHARED page both map (the same
 *     physical page): -EBADF;
 *   - the child's uffd, probe a page the child does not have: -EBADF;
 *   - the own uffd, probe not mapped: -EINVAL;
 *   - the own uffd: 0, INSERT 0, a write to the page is reported
 *     (INVALIDATE event) and the probe page is left unprotected;
 *   - async ATTACH (where the daemon offers WP_ASYNC): the child's uffd
 *     -EBADF, the own 0.
 * Also run with --mask-features 6.1 (ctest compat61/).
 */
#include "harness.h"
#include "rawclient.h"
#include "umirror.h"
#include "umirror_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_UFFDS 4

static int32_t raw_attach(int fd, uint64_t id, int uffd, void *probe, uint32_t flags)
{
	struct ump_attach at = {
		.uffd_mode = UMP_UFFD_SYSCALL,
		.flags = flags,
		.probe = (uint64_t)(uintptr_t)probe,
	};

	raw_send(fd, UMP_MSG_ATTACH, id, &at, sizeof(at), uffd);
	/* the daemon has its own copy now (or closed it) */
	close(uffd);
	return raw_reply(fd, UMP_MSG_ATTACH, id);
}

static int32_t raw_insert(int fd, uint64_t id, void *addr, size_t len, uint32_t flags)
{
	struct ump_insert in = { .start = (uint64_t)(uintptr_t)addr,
				 .length = len,
				 .flags = flags };

	raw_send(fd, UMP_MSG_INSERT, id, &in, sizeof(in), -1);
	return raw_reply(fd, UMP_MSG_INSERT, id);
}

static void raw_still_served(int fd, uint64_t id, const char *after)
{
	raw_send(fd, UMP_MSG_PING, id, NULL, 0, -1);
	CHECK(raw_reply(fd, UMP_MSG_PING, id) == 0, "still served after %s", after);
}

/* --- uffds ------------------------------------------------------------ */

static int new_uffd(void)
{
	int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	CHECK(u >= 0, "userfaultfd: %m");
	return u;
}

/*
 * The child: makes CHILD_UFFDS userfaultfds (each serving the child's
 * address space, which is a copy of the parent's layout), passes them up
 * one per message, then stays alive (its address space with it) until
 * the parent closes the socket.
 */
static void donor_main(int sock)
{
	char c;

	for (int i = 0; i < CHILD_UFFDS; i++) {
		int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

		if (u < 0)
			_exit(2);
		raw_send_bytes(sock, "u", 1, u);
		close(u);
	}
	while (read(sock, &c, 1) > 0)
		;
	_exit(0);
}

static int recv_uffd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))], c;
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	int u = -1;

	CHECK(recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) == 1, "a uffd from the child: %m");
	cm = CMSG_FIRSTHDR(&mh);
	CHECK(cm && cm->cmsg_type == SCM_RIGHTS, "the child's message carries an fd");
	memcpy(&u, CMSG_DATA(cm), sizeof(int));
	return u;
}

static void *map_page(int flags)
{
	void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED, "mmap: %m");
	*(volatile char *)p = 1;
	return p;
}

/* the probe page is the peer's again: present, writable, not uffd-wp */
static void probe_left_alone(void *probe, const char *when)
{
	uint64_t pm = harness_pagemap(probe);

	CHECK((pm & PM_PRESENT) && !(pm & PM_UFFD_WP),
	      "%s: probe page present, not uffd-wp "
	      "(pagemap %#llx)",
	      when, (unsigned long long)pm);
	*(volatile char *)probe = 2; /* would hang (watchdog) if still protected */
}

int main(void)
{
	int sv[2], fd, child_uffd[CHILD_UFFDS];
	void *probe, *shared, *late, *data;
	uint64_t kfeat;
	int32_t ret;
	pid_t donor;
	int status;

	harness_start("test_attach_proof", NULL);

	/* in the child too after the fork: the same addresses exist there */
	probe = map_page(MAP_PRIVATE);
	shared = map_page(MAP_SHARED);
	data = map_page(MAP_PRIVATE);

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %m");
	donor = fork();
	CHECK(donor >= 0, "fork: %m");
	if (donor == 0) {
		close(sv[0]);
		donor_main(sv[1]);
	}
	close(sv[1]);
	for (int i = 0; i < CHILD_UFFDS; i++)
		child_uffd[i] = recv_uffd(sv[0]);
	/* mapped after the fork: the child has nothing here */
	late = map_page(MAP_PRIVATE);

	fd = raw_connect();
	kfeat = raw_hello(fd);

	/* 1. the child's uffd, a private page both have at that address */
	ret = raw_attach(fd, 2, child_uffd[0], probe, 0);
	CHECK(ret == -EBADF, "ATTACH(child's uffd, private probe): %d, want -EBADF", ret);
	probe_left_alone(probe, "refused ATTACH");
	ret = raw_insert(fd, 3, data, PAGE, 0);
	CHECK(ret == -EBADFD, "INSERT after the refused ATTACH: %d, want -EBADFD (not attached)",
	      ret);
	raw_still_served(fd, 4, "ATTACH(child's uffd)");

	/* 2. the child's uffd, a MAP_SHARED page: one physical page in both */
	ret = raw_attach(fd, 5, child_uffd[1], shared, 0);
	CHECK(ret == -EBADF, "ATTACH(child's uffd, shared probe): %d, want -EBADF", ret);
	probe_left_alone(shared, "refused ATTACH (shared probe)");

	/* 3. the child's uffd, a page the child does not have */
	ret = raw_attach(fd, 6, child_uffd[2], late, 0);
	CHECK(ret == -EBADF, "ATTACH(child's uffd, probe only we map): %d, want -EBADF", ret);
	raw_still_served(fd, 7, "three refused ATTACHes");

	/* 4. our own uffd but a probe that is not mapped: a bad argument */
	{
		void *gone = map_page(MAP_PRIVATE);

		CHECK(munmap(gone, PAGE) == 0, "munmap: %m");
		ret = raw_attach(fd, 8, new_uffd(), gone, 0);
		CHECK(ret == -EINVAL, "ATTACH(own uffd, unmapped probe): %d, want -EINVAL", ret);
	}

	/* 5. our own uffd: attached, and our writes are seen */
	ret = raw_attach(fd, 9, new_uffd(), probe, 0);
	CHECK(ret == 0, "ATTACH(own uffd): %d, want 0", ret);
	probe_left_alone(probe, "accepted ATTACH");
	ret = raw_insert(fd, 10, data, PAGE, 0);
	CHECK(ret == 0, "INSERT after ATTACH(own uffd): %d", ret);
	CHECK(harness_pagemap(data) & PM_UFFD_WP,
	      "inserted page write-protected in our page table");
	/* not SYNC: nobody acks, the write completes by itself */
	*(volatile char *)data = 3;
	{
		const struct ump_hdr *h = (const void *)raw_msg;
		const struct ump_ev_invalidate *ev = (const void *)(h + 1);

		CHECK(raw_recv(fd) > 0 && h->type == UMP_EV_INVALIDATE,
		      "an INVALIDATE for our write (got type %#x)", h->type);
		CHECK(ev->start == (uint64_t)(uintptr_t)data && ev->reason == UMP_REASON_WRITE,
		      "the write to the inserted page, reason write (start %#llx reason %u)",
		      (unsigned long long)ev->start, ev->reason);
	}

	/* 6. async ATTACH: the same proof on the second uffd */
	if (kfeat & UMP_KFEAT_WP_ASYNC) {
		ret = raw_attach(fd, 11, child_uffd[3], probe, UMP_ATTACH_ASYNC);
		CHECK(ret == -EBADF, "async ATTACH(child's uffd): %d, want -EBADF", ret);
		probe_left_alone(probe, "refused async ATTACH");
		ret = raw_attach(fd, 12, new_uffd(), probe, UMP_ATTACH_ASYNC);
		CHECK(ret == 0, "async ATTACH(own uffd): %d, want 0", ret);
		probe_left_alone(probe, "accepted async ATTACH");
	} else {
		printf("test_attach_proof: no WP_ASYNC offered: async ATTACH not exercised\n");
		close(child_uffd[3]);
		ret = raw_attach(fd, 11, new_uffd(), probe, UMP_ATTACH_ASYNC);
		CHECK(ret == -EOPNOTSUPP, "async ATTACH without WP_ASYNC: %d", ret);
	}
	raw_still_served(fd, 13, "the async ATTACHes");

	close(fd);
	close(sv[0]);
	CHECK(waitpid(donor, &status, 0) == donor && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the uffd donor exited cleanly (status 0x%x)", status);
	return harness_summary();
}
