/* SPDX-License-Identifier: MIT */
/*
 * uffd.c - create this process's userfaultfd and hand it to the daemon.
 */
#include "uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uapi_compat.h"

#define SEQ_SLOTS_MAX (1u << 20)

/* Return: 0 with *fd and *mode set, or the last -errno. */
static int uffd_create(int *fd, enum um_proto_uffd_mode *mode)
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

int uffd_attach(struct um_client *c)
{
	const struct um_attach_reply *ar;
	enum um_proto_uffd_mode mode = UMP_UFFD_DEV;
	struct um_attach a = { 0 };
	struct conn_msg reply;
	struct stat st;
	size_t size;
	void *p;
	int ufd = -1, r;

	r = uffd_create(&ufd, &mode);
	if (r < 0)
		return r;
	a.uffd_mode = mode;
	r = client_call(c, UM_MSG_ATTACH, &a, sizeof(a), ufd, &reply, UM_REQUEST_TIMEOUT_MS, NULL);
	/* our copy would keep blocked writers blocked if the daemon died */
	close(ufd);
	if (r < 0)
		goto out;

	ar = reply.msg.body;
	r = -EPROTO;
	if (reply.fd < 0 || !ar->seq_slots || ar->seq_slots > SEQ_SLOTS_MAX)
		goto out;
	size = (size_t)ar->seq_slots * sizeof(struct um_seq_slot);
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
	enum um_proto_uffd_mode mode = UMP_UFFD_DEV;
	struct um_attach a = { .flags = UM_ATTACH_ASYNC };
	struct conn_msg reply;
	int ufd = -1, r;

	r = uffd_create(&ufd, &mode);
	if (r < 0)
		return r;
	a.uffd_mode = mode;
	r = client_call(c, UM_MSG_ATTACH, &a, sizeof(a), ufd, &reply, UM_REQUEST_TIMEOUT_MS, NULL);
	close(ufd);
	/* the seq area rides along again (or /dev/null on error): ours is mapped */
	if (reply.fd >= 0)
		close(reply.fd);
	if (r < 0)
		return r;
	c->async_attached = true;
	return 0;
}
