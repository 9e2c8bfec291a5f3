/* SPDX-License-Identifier: MIT */
/*
 * conn.c - the socket to umirrord: its datagrams go through the one
 * transport (proto/transport.c) and the decoder.
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

#include "transport.h"

int conn_open(const char *path, int *fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s, r;

	if (!path)
		path = getenv(UMP_SOCKET_ENV);
	if (!path || !*path)
		path = UMP_DEFAULT_SOCKET;
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
	int r;

	r = ump_transport_send(fd, buf, len, &send_fd, send_fd >= 0 ? 1 : 0, 0);
	return r == -EPIPE || r == -ECONNRESET ? -ENOTCONN : r;
}

/*
 * A failed HELLO/ATTACH/SUBSCRIBE has no fd to pass, but the decoder
 * counts the fd its type carries on success. Such a reply is accepted
 * without it (its fd stays -1) when its status is an error.
 */
static bool is_error_reply(const void *buf, size_t len)
{
	const struct ump_hdr *h = buf;
	const struct ump_reply_hdr *rh = (const void *)(h + 1);

	if (len < sizeof(*h) + sizeof(*rh) || !(h->type & UMP_REPLY))
		return false;
	return ump_proto_fds(h->type) == 1 && rh->status < 0;
}

static int recv_flags(int fd, struct conn_msg *m, int flags)
{
	unsigned int nfds;
	ssize_t n;
	int r;

	m->fd = -1;
	n = ump_transport_recv(fd, m->buf.bytes, sizeof(m->buf.bytes), &m->fd, 1, &nfds, flags);
	if (n == -EAGAIN || n == -EINTR)
		return -EAGAIN;
	/* end of file, an error, a cut datagram: the connection is dead */
	if (n <= 0)
		return -ENOTCONN;
	r = ump_proto_decode(UMP_SIDE_CLIENT, m->buf.bytes, (size_t)n, nfds, &m->msg);
	if (r == -EPROTO && nfds == 0 && is_error_reply(m->buf.bytes, (size_t)n))
		r = ump_proto_decode(UMP_SIDE_CLIENT, m->buf.bytes, (size_t)n,
				     ump_proto_fds(((const struct ump_hdr *)m->buf.bytes)->type),
				     &m->msg);
	if (r < 0) {
		/* a daemon that sends what we cannot parse cannot be trusted further */
		if (m->fd >= 0)
			close(m->fd);
		m->fd = -1;
		return -ENOTCONN;
	}
	return 0;
}

int conn_recv(int fd, struct conn_msg *m)
{
	return recv_flags(fd, m, MSG_DONTWAIT);
}

int conn_recv_wait(int fd, struct conn_msg *m)
{
	return recv_flags(fd, m, 0);
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
