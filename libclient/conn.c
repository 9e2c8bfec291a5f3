/* SPDX-License-Identifier: MIT */
/*
 * conn.c - the socket to umirrord.
 */
#include "conn.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int conn_open(const char *path, int *fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s, r;

	if (!path)
		path = getenv(UM_SOCKET_ENV);
	if (!path || !*path)
		path = UM_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);

	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	do
		r = connect(s, (struct sockaddr *)&sa, sizeof(sa));
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		r = -errno;
		close(s);
		return r;
	}
	*fd = s;
	return 0;
}

int conn_send(int fd, const void *buf, size_t len, int send_fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (send_fd >= 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof(ctl.b);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &send_fd, sizeof(int));
	}
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EPIPE || errno == ECONNRESET ? -ENOTCONN : -errno;
	/* SOCK_SEQPACKET sends a record whole or not at all */
	return (size_t)n == len ? 0 : -EIO;
}

/* Collect the fds of @mh; close all but the first. Return how many came. */
static unsigned int take_fds(struct msghdr *mh, int *first)
{
	unsigned int count = 0;

	*first = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (count++ == 0)
				*first = f;
			else
				close(f);
		}
	}
	return count;
}

/*
 * A failed HELLO/ATTACH/SUBSCRIBE has no fd to pass, but the decoder
 * counts the fd its type carries on success. Such a reply is accepted
 * without it (its fd stays -1) when its status is an error.
 */
static bool is_error_reply(const void *buf, size_t len)
{
	const struct um_hdr *h = buf;
	const struct um_reply_hdr *rh = (const void *)(h + 1);

	if (len < sizeof(*h) + sizeof(*rh) || !(h->type & UM_REPLY))
		return false;
	return um_proto_fds(h->type) == 1 && rh->status < 0;
}

int conn_recv(int fd, struct conn_msg *m)
{
	union {
		struct cmsghdr h;
		/* room for more fds than allowed, so extras are seen and closed */
		char b[CMSG_SPACE(sizeof(int) * 8)];
	} ctl;
	struct iovec iov = { .iov_base = m->buf.bytes, .iov_len = sizeof(m->buf.bytes) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.b,
		.msg_controllen = sizeof(ctl.b),
	};
	unsigned int nfds;
	ssize_t n;
	int r;

	m->fd = -1;
	do
		n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		return -ENOTCONN;
	}
	nfds = take_fds(&mh, &m->fd);
	if (n == 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		r = -ENOTCONN;
		goto fail;
	}
	r = um_proto_decode(UM_SIDE_CLIENT, m->buf.bytes, (size_t)n, nfds, &m->msg);
	if (r == -EPROTO && nfds == 0 && is_error_reply(m->buf.bytes, (size_t)n))
		r = um_proto_decode(UM_SIDE_CLIENT, m->buf.bytes, (size_t)n,
				    um_proto_fds(((const struct um_hdr *)m->buf.bytes)->type), &m->msg);
	if (r < 0) {
		/* a daemon that sends what we cannot parse cannot be trusted further */
		r = -ENOTCONN;
		goto fail;
	}
	return 0;
fail:
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	return r;
}

int conn_poll(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	r = poll(&p, 1, timeout_ms);
	if (r < 0)
		return -errno;
	return r > 0;
}
