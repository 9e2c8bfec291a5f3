/* SPDX-License-Identifier: MIT */
/*
 * fuzz_server.c - libFuzzer target for the daemon's request handling.
 *
 * One server (real kernel probe, real listening socket on a private path)
 * lives for the whole run; every input gets a fresh connection: one end
 * of a SOCK_SEQPACKET socketpair is adopted as an accepted client, the
 * fuzzer writes datagrams to the other end, runs the loop without
 * blocking, reads and discards the replies, hangs up and waits until the
 * server has reaped the client. Every input must leave the server as it
 * found it: no client, no address space, no interval.
 *
 * Input: byte 0 as in fuzz_proto (bits 1-2: how many fds ride with each
 * datagram; /dev/null stands in, so an ATTACH meets a non-uffd), bit 3:
 * send a valid HELLO first. The rest is split into datagrams by the
 * header's own length field (offset 12), the last taking what remains, so
 * tests/fuzz/corpus seeds are single messages and their concatenations are
 * sessions. No uffd ever reaches the daemon: it would write-protect this
 * very process, whose only thread is the one running the daemon's loop.
 *
 * Build: cmake --preset fuzz && cmake --build --preset fuzz; run:
 * fuzz_server -max_total_time=30 <copy of tests/fuzz/corpus>
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dispatch.h"
#include "log.h"
#include "transport.h"

#define FUZZ_INPUT_MAX (16 * 1024)
#define MAX_DGRAMS 256
#define SPIN_MAX 1000 /* loop turns before a hang is a finding */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static struct server srv;
static char dir[] = "/tmp/umirror-fuzz-XXXXXX";
static char sock_path[64];
static int null_fd = -1;

static void teardown(void)
{
	server_shutdown(&srv);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	close(null_fd);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(getenv("UMIRROR_FUZZ_VERBOSE") ? UM_LOG_DEBUG : UM_LOG_ERROR);
	/* a socket unit's fds are not ours to take */
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	if (!mkdtemp(dir)) {
		perror("fuzz_server: mkdtemp");
		exit(1);
	}
	snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
	srv.opt.socket_path = sock_path;
	srv.opt.mode = 0600;
	srv.opt.ack_timeout_ms = 100;
	srv.opt.result_size = 64 * 1024;
	srv.dispatch = dispatch_request;
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0 || uv_loop_init(&loop) || server_init(&srv, &loop)) {
		fprintf(stderr, "fuzz_server: cannot start the server (root and a "
				"userfaultfd are needed)\n");
		rmdir(dir);
		exit(1);
	}
	atexit(teardown);
	return 0;
}

/* read and discard every reply, closing the fds that came with them */
static void drain(int fd)
{
	for (;;) {
		uint64_t buf[UMP_MSG_MAX / 8];
		int fds[UM_TRANSPORT_MAX_FDS];
		unsigned int nfds;
		ssize_t n;

		n = ump_transport_recv(fd, buf, sizeof(buf), fds, UM_TRANSPORT_MAX_FDS, &nfds,
				       MSG_DONTWAIT);
		if (n <= 0 && n != -EMSGSIZE && n != -EBADMSG)
			return;
		for (unsigned int i = 0; i < nfds; i++)
			close(fds[i]);
	}
}

static void turn(int fd)
{
	uv_run(&loop, UV_RUN_NOWAIT);
	drain(fd);
}

/* send one datagram with @nfds stand-in fds; waits out a full socket */
static void send_dgram(int fd, const void *p, size_t len, unsigned int nfds)
{
	int fds[3];

	for (unsigned int i = 0; i < nfds; i++) {
		fds[i] = fcntl(null_fd, F_DUPFD_CLOEXEC, 0);
		if (fds[i] < 0)
			abort();
	}
	for (int spin = 0; spin < SPIN_MAX; spin++) {
		int r = ump_transport_send(fd, p, len, fds, nfds, MSG_DONTWAIT);

		/* sent, or the daemon dropped us (EPIPE...): the rest goes nowhere */
		if (r != -EAGAIN)
			break;
		turn(fd);
	}
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
}

static void send_hello(int fd)
{
	struct ump_hello h = { .version = UMP_PROTO_VERSION };
	uint64_t buf[UMP_MSG_MAX / 8];
	size_t n = ump_proto_encode(buf, UMP_MSG_HELLO, 1, &h, sizeof(h));

	send_dgram(fd, buf, n, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned int nfds, ndgrams = 0;
	size_t off;
	int sv[2], spin;

	if (size < 1 || size > FUZZ_INPUT_MAX)
		return 0;
	nfds = (data[0] >> 1) & 3;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (server_adopt_client(&srv, sv[0]))
		abort();
	if (data[0] & 8)
		send_hello(sv[1]);

	for (off = 1; off < size && ndgrams < MAX_DGRAMS; ndgrams++) {
		size_t left = size - off, len = left;
		uint32_t hlen;

		if (left >= 16) {
			memcpy(&hlen, data + off + 12, sizeof(hlen));
			if (hlen >= 1 && hlen <= left)
				len = hlen;
		}
		send_dgram(sv[1], data + off, len, nfds);
		off += len;
		if (ndgrams % 16 == 15)
			turn(sv[1]);
	}
	for (int i = 0; i < 4; i++)
		turn(sv[1]);

	/* hang up; the server must notice and reap the client */
	close(sv[1]);
	for (spin = 0; spin < SPIN_MAX && srv.nclients; spin++)
		uv_run(&loop, UV_RUN_NOWAIT);
	if (srv.nclients || srv.nmms || srv.nintervals || !list_empty(&srv.mms)) {
		fprintf(stderr,
			"fuzz_server: state left behind: %u clients, %u mms, %u intervals\n",
			srv.nclients, srv.nmms, srv.nintervals);
		abort();
	}
	return 0;
}
