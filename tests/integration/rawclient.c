/* SPDX-License-Identifier: MIT */
#include "rawclient.h"

#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

_Alignas(8) char raw_msg[UM_MSG_MAX];

int raw_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0, "socket: %m");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", harness_socket());
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %m");
	return fd;
}

void raw_send_bytes(int fd, const void *data, size_t len, int pass_fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (pass_fd >= 0) {
		struct cmsghdr *cm;

		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	CHECK(sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)len, "sendmsg: %m");
}

void raw_send(int fd, uint16_t type, uint64_t id, const void *body, size_t len, int pass_fd)
{
	_Alignas(8) char m[UM_MSG_MAX];

	raw_send_bytes(fd, m, um_proto_encode(m, type, id, body, len), pass_fd);
}

ssize_t raw_recv(int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = { .iov_base = raw_msg, .iov_len = sizeof(raw_msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct cmsghdr *cm;
	ssize_t n;

	CHECK(poll(&p, 1, 5000) == 1, "daemon answered or hung up within 5 s");
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0 && errno == ECONNRESET)
		return 0;
	CHECK(n >= 0, "recvmsg: %m");
	/* nothing a test reads comes with fds; do not leak the ones that do */
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int rfd;

			memcpy(&rfd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			close(rfd);
		}
	}
	return n;
}

int32_t raw_reply(int fd, uint16_t type, uint64_t id)
{
	const struct um_hdr *h = (const void *)raw_msg;
	const struct um_reply_hdr *r = (const void *)(h + 1);
	ssize_t n = raw_recv(fd);

	CHECK(n >= (ssize_t)(sizeof(*h) + sizeof(*r)), "a reply, not EOF (%zd bytes)", n);
	CHECK(h->magic == UM_PROTO_MAGIC && h->type == (type | UM_REPLY) && h->id == id,
	      "reply type %#x id %llu, want %#x id %llu", h->type, (unsigned long long)h->id,
	      type | UM_REPLY, (unsigned long long)id);
	return r->status;
}

uint64_t raw_hello(int fd)
{
	struct um_hello hello = { .version = UM_PROTO_VERSION, .features = UM_PFEAT_ALL };
	const struct um_hello_reply *hr = (const void *)(raw_msg + sizeof(struct um_hdr));

	raw_send(fd, UM_MSG_HELLO, 1, &hello, sizeof(hello), -1);
	CHECK(raw_reply(fd, UM_MSG_HELLO, 1) == 0, "HELLO accepted");
	return hr->kfeatures;
}
