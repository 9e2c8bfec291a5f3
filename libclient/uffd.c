/* SPDX-License-Identifier: MIT */
/*
 * uffd.c - create this process's userfaultfd and hand it to the daemon.
 */
#include "uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "call.h"
#include "uapi_compat.h"

#define ATTACH_TRIES 3

/* Return: 0 with *fd and *mode set, or the last -errno. */
static int uffd_create(int *fd, enum ump_proto_uffd_mode *mode)
{
	const int flags = O_CLOEXEC | O_NONBLOCK;
	int dev, u;

	/* /dev/userfaultfd is the one way an unprivileged owner gets kernel faults too */
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		u = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
		close(dev);
		if (u >= 0) {
			*fd = u;
			*mode = UMP_UFFD_DEV;
			return 0;
		}
	}
	u = (int)syscall(SYS_userfaultfd, flags);
	if (u >= 0) {
		*fd = u;
		*mode = UMP_UFFD_SYSCALL;
		return 0;
	}
	if (errno != EPERM)
		return -errno;
	/* vm.unprivileged_userfaultfd=0: user-mode faults only */
	u = (int)syscall(SYS_userfaultfd, flags | UFFD_USER_MODE_ONLY);
	if (u < 0)
		return -errno;
	*fd = u;
	*mode = UMP_UFFD_USER_ONLY;
	return 0;
}

/*
 * A page the daemon proves the uffd on (ump_attach.probe): fresh and
 * private, so that nothing else writes it while the daemon write-protects
 * it, and written once, so that it is present.
 * Return: the page, or NULL (errno set).
 */
static void *probe_page(void)
{
	void *p = mmap(NULL, UMP_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);

	if (p == MAP_FAILED)
		return NULL;
	*(volatile char *)p = 1;
	return p;
}

/*
 * The first ATTACH's probe is also the daemon's soft-dirty canary
 * (UMP_ATTACH_CANARY): one page per process, made once and never unmapped,
 * since the daemon may write it until it has seen our connection close.
 */
static pthread_once_t canary_once = PTHREAD_ONCE_INIT;
static void *canary;

static void canary_make(void)
{
	canary = probe_page();
}

/*
 * Create a uffd and ATTACH it with @flags and a probe page; close our copy
 * of the uffd and unmap the probe (the canary stays) whatever the daemon
 * answered. A proof
 * that met a fork or mremap of ours in flight (-EAGAIN) is tried again
 * with a new uffd, a few times.
 * Return: as call_roundtrip() (reply->fd the caller's), with *@mode how the
 * uffd was made; -EPERM or another -errno: no uffd could be created.
 */
static int attach_call(struct um_client *c, uint32_t flags, struct conn_msg *reply,
		       enum ump_proto_uffd_mode *mode)
{
	int r = -EAGAIN;

	reply->fd = -1;
	for (int tries = 0; tries < ATTACH_TRIES && r == -EAGAIN; tries++) {
		struct ump_attach a = { .flags = flags };
		void *probe;
		int ufd = -1;

		if (reply->fd >= 0)
			close(reply->fd);
		reply->fd = -1;
		r = uffd_create(&ufd, mode);
		if (r < 0)
			return r;
		if (!(flags & UMP_ATTACH_ASYNC)) {
			pthread_once(&canary_once, canary_make);
			a.flags |= canary ? UMP_ATTACH_CANARY : 0;
		}
		probe = a.flags & UMP_ATTACH_CANARY ? canary : probe_page();
		if (!probe) {
			r = -errno;
			close(ufd);
			return r;
		}
		a.uffd_mode = *mode;
		a.probe = (uint64_t)(uintptr_t)probe;
		r = call_roundtrip(c, UMP_MSG_ATTACH, &a, sizeof(a), ufd, reply,
				   UM_REQUEST_TIMEOUT_MS, NULL);
		/* our copy would keep blocked writers blocked if the daemon died */
		close(ufd);
		if (probe != canary)
			munmap(probe, UMP_PAGE_SIZE);
	}
	return r;
}

int uffd_attach(struct um_client *c)
{
	const struct ump_attach_reply *ar;
	enum ump_proto_uffd_mode mode = UMP_UFFD_DEV;
	struct conn_msg reply;
	struct stat st;
	size_t size;
	void *p;
	int r;

	r = attach_call(c, 0, &reply, &mode);
	if (r < 0)
		goto out;

	ar = reply.msg.body;
	r = -EPROTO;
	if (reply.fd < 0 || !ar->seq_slots || ar->seq_slots > UMP_SEQ_SLOTS_MAX)
		goto out;
	size = (size_t)ar->seq_slots * sizeof(struct ump_seq_slot);
	if (fstat(reply.fd, &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size < size)
		goto out;
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, reply.fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	c->seq_area = p;
	c->seq_slots = ar->seq_slots;
	c->uffd_mode = (enum um_uffd_mode)mode;
	pthread_mutex_unlock(&c->lock);
	r = 0;
out:
	if (reply.fd >= 0)
		close(reply.fd);
	return r;
}

int uffd_attach_async(struct um_client *c)
{
	enum ump_proto_uffd_mode mode = UMP_UFFD_DEV;
	struct conn_msg reply;
	int r;

	r = attach_call(c, UMP_ATTACH_ASYNC, &reply, &mode);
	/* the seq area rides along again (or /dev/null on error): ours is mapped */
	if (reply.fd >= 0)
		close(reply.fd);
	if (r < 0)
		return r;
	c->async_attached = true;
	return 0;
}
