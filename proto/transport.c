/* SPDX-License-Identifier: MIT */
/*
 * transport.c - one SEQPACKET datagram with SCM_RIGHTS fds each way.
 */
#include "transport.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

union cmsg_space {
	struct cmsghdr align;
	char b[CMSG_SPACE(sizeof(int) * UM_TRANSPORT_MAX_FDS)];
};

int ump_transport_send(int sock, const void *buf, size_t len, const int *fds, unsigned int nfds,
		       int flags)
{
	union cmsg_space ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > UM_TRANSPORT_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	/* SOCK_SEQPACKET sends a record whole or not at all */
	return (size_t)n == len ? 0 : -EIO;
}

/*
 * Take every fd of @mh: the first @max into @fds, the rest closed. Return
 * how many came; *@foreign is set when a control message is not SCM_RIGHTS.
 */
static unsigned int take_fds(struct msghdr *mh, int *fds, unsigned int max, bool *foreign)
{
	unsigned int count = 0;

	*foreign = false;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0)) {
			*foreign = true;
			continue;
		}
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (count < max)
				fds[count] = f;
			else
				close(f);
			count++;
		}
	}
	return count;
}

ssize_t ump_transport_recv(int sock, void *buf, size_t size, int *fds, unsigned int max_fds,
			   unsigned int *nfds, int flags)
{
	union cmsg_space ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = size };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.b,
		.msg_controllen = sizeof(ctl.b),
	};
	unsigned int count;
	bool foreign;
	ssize_t n;

	*nfds = 0;
	do
		n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	count = take_fds(&mh, fds, max_fds, &foreign);
	if (n > 0 && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && !foreign) {
		*nfds = count;
		return n;
	}
	for (unsigned int i = 0; i < count && i < max_fds; i++)
		close(fds[i]);
	if (n == 0)
		return 0;
	return mh.msg_flags & MSG_TRUNC ? -EMSGSIZE : -EBADMSG;
}
