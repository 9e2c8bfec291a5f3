/* SPDX-License-Identifier: MIT */
/*
 * test_transport.c - ump_transport_send() / ump_transport_recv()
 * (proto/transport.c) over a real SOCK_SEQPACKET socketpair.
 *
 * Every fd that arrives is either handed out or closed (counted in
 * /proc/self/fd), truncation of data and of control data is an error
 * and never a message, and the fd count includes fds beyond the room.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "transport.h"

static int sv[2];

static int pair_setup(void **state)
{
	(void)state;
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
}

static int pair_teardown(void **state)
{
	(void)state;
	close(sv[0]);
	close(sv[1]);
	return 0;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

static void test_no_fd(void **state)
{
	char out[64], in[64];
	unsigned int nfds = 99;
	int fds[1];

	(void)state;
	memset(out, 'x', sizeof(out));
	assert_int_equal(ump_transport_send(sv[0], out, 40, NULL, 0, 0), 0);
	assert_int_equal(ump_transport_recv(sv[1], in, sizeof(in), fds, 1, &nfds, 0), 40);
	assert_int_equal(nfds, 0);
	assert_memory_equal(in, out, 40);
}

static void test_one_fd(void **state)
{
	char in[16];
	unsigned int nfds;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), got = -1;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ump_transport_send(sv[0], "abc", 3, &fd, 1, 0), 0);
	assert_int_equal(ump_transport_recv(sv[1], in, sizeof(in), &got, 1, &nfds, 0), 3);
	assert_int_equal(nfds, 1);
	assert_true(got >= 0 && got != fd);
	assert_true(same_file(fd, got));
	/* received close-on-exec: a fork+exec in the application leaks nothing */
	assert_true(fcntl(got, F_GETFD) & FD_CLOEXEC);
	close(got);
	close(fd);
}

static void test_extra_fds_counted_and_closed(void **state)
{
	char in[16];
	unsigned int nfds;
	int fds[3], got = -1, before;

	(void)state;
	for (int i = 0; i < 3; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(ump_transport_send(sv[0], "x", 1, fds, 3, 0), 0);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	before = open_fds();
	assert_int_equal(ump_transport_recv(sv[1], in, sizeof(in), &got, 1, &nfds, 0), 1);
	/* the decoder must see 3 to refuse a message that may carry 1 */
	assert_int_equal(nfds, 3);
	assert_true(got >= 0);
	assert_int_equal(open_fds(), before + 1);
	close(got);
}

static void test_truncated_data(void **state)
{
	char out[200] = { 0 }, in[100];
	unsigned int nfds = 7;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), got = -1, before;

	(void)state;
	assert_int_equal(ump_transport_send(sv[0], out, sizeof(out), &fd, 1, 0), 0);
	close(fd);
	before = open_fds();
	assert_int_equal(ump_transport_recv(sv[1], in, sizeof(in), &got, 1, &nfds, 0), -EMSGSIZE);
	assert_int_equal(nfds, 0);
	assert_int_equal(open_fds(), before); /* the fd that came is closed */
}

static void test_truncated_control(void **state)
{
	/* more fds than the receive's control space: MSG_CTRUNC */
	enum { N = UM_TRANSPORT_MAX_FDS + 2 };
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int) * N)];
	} ctl;
	struct iovec iov = { .iov_base = "y", .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.b,
			     .msg_controllen = sizeof(ctl.b) };
	struct cmsghdr *c;
	int fds[N], got[UM_TRANSPORT_MAX_FDS], before;
	unsigned int nfds = 7;
	char in[16];

	(void)state;
	memset(&ctl, 0, sizeof(ctl));
	for (int i = 0; i < N; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * N);
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	assert_int_equal(sendmsg(sv[0], &mh, 0), 1);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	before = open_fds();
	assert_int_equal(
		ump_transport_recv(sv[1], in, sizeof(in), got, UM_TRANSPORT_MAX_FDS, &nfds, 0),
		-EBADMSG);
	assert_int_equal(nfds, 0);
	assert_int_equal(open_fds(), before);
}

static void test_foreign_control(void **state)
{
	int one = 1, got = -1;
	unsigned int nfds = 7;
	char in[16];

	(void)state;
	/* with SO_PASSCRED every datagram carries SCM_CREDENTIALS: not ours */
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	assert_int_equal(ump_transport_send(sv[0], "z", 1, NULL, 0, 0), 0);
	assert_int_equal(ump_transport_recv(sv[1], in, sizeof(in), &got, 1, &nfds, 0), -EBADMSG);
	assert_int_equal(nfds, 0);
}

static void test_again_and_eof(void **state)
{
	unsigned int nfds;
	char in[16];
	int got;

	(void)state;
	assert_int_equal(ump_transport_recv(sv[1], in, sizeof(in), &got, 1, &nfds, MSG_DONTWAIT),
			 -EAGAIN);
	close(sv[0]);
	assert_int_equal(ump_transport_recv(sv[1], in, sizeof(in), &got, 1, &nfds, 0), 0);
	assert_int_equal(ump_transport_send(sv[1], "w", 1, NULL, 0, 0), -EPIPE);
	sv[0] = open("/dev/null", O_RDONLY | O_CLOEXEC); /* for the teardown */
}

static void test_full_buffer(void **state)
{
	char out[256] = { 0 };
	int r;

	(void)state;
	do
		r = ump_transport_send(sv[0], out, sizeof(out), NULL, 0, MSG_DONTWAIT);
	while (r == 0);
	assert_int_equal(r, -EAGAIN);
}

static void test_too_many_fds(void **state)
{
	int fds[UM_TRANSPORT_MAX_FDS + 1] = { 0 };

	(void)state;
	assert_int_equal(ump_transport_send(sv[0], "v", 1, fds, UM_TRANSPORT_MAX_FDS + 1, 0),
			 -EINVAL);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, pair_setup, pair_teardown)
	const struct CMUnitTest tests[] = {
		T(test_no_fd),
		T(test_one_fd),
		T(test_extra_fds_counted_and_closed),
		T(test_truncated_data),
		T(test_truncated_control),
		T(test_foreign_control),
		T(test_again_and_eof),
		T(test_full_buffer),
		T(test_too_many_fds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
