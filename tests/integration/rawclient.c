/* SPDX-License-Identifier: MIT */
#include "rawclient.h"

#include "harness.h"
#include "transport.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

_Alignas(8) char raw_msg[UMP_MSG_MAX];

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
	int ret = ump_transport_send(fd, data, len, &pass_fd, pass_fd >= 0, 0);

	CHECK(ret == 0, "send: %s", strerror(-ret));
}

void raw_send(int fd, uint16_t type, uint64_t id, const void *body, size_t len, int pass_fd)
{
	_Alignas(8) char m[UMP_MSG_MAX];

	raw_send_bytes(fd, m, ump_proto_encode(m, type, id, body, len), pass_fd);
}

ssize_t raw_recv(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	unsigned int nfds = 0;
	ssize_t n;

	CHECK(poll(&p, 1, 5000) == 1, "daemon answered or hung up within 5 s");
	/* nothing a test reads comes with fds: room 0 closes any that do */
	n = ump_transport_recv(fd, raw_msg, sizeof(raw_msg), NULL, 0, &nfds, 0);
	if (n == -ECONNRESET)
		return 0;
	CHECK(n >= 0, "recv: %s", strerror((int)-n));
	return n;
}

int32_t raw_reply(int fd, uint16_t type, uint64_t id)
{
	const struct ump_hdr *h = (const void *)raw_msg;
	const struct ump_reply_hdr *r = (const void *)(h + 1);
	ssize_t n = raw_recv(fd);

	CHECK(n >= (ssize_t)(sizeof(*h) + sizeof(*r)), "a reply, not EOF (%zd bytes)", n);
	CHECK(h->magic == UMP_PROTO_MAGIC && h->type == (type | UMP_REPLY) && h->id == id,
	      "reply type %#x id %llu, want %#x id %llu", h->type, (unsigned long long)h->id,
	      type | UMP_REPLY, (unsigned long long)id);
	return r->status;
}

uint64_t raw_hello(int fd)
{
	struct ump_hello hello = { .version = UMP_PROTO_VERSION, .features = UMP_PFEAT_ALL };
	const struct ump_hello_reply *hr = (const void *)(raw_msg + sizeof(struct ump_hdr));

	raw_send(fd, UMP_MSG_HELLO, 1, &hello, sizeof(hello), -1);
	CHECK(raw_reply(fd, UMP_MSG_HELLO, 1) == 0, "HELLO accepted");
	return hr->kfeatures;
}
